//! Copying host trees in (`Filesystem::copy_in`, `copy_dir_contents`): the
//! host walk runs on its own thread and hands entries and file data over in
//! batches, so these cases aim at the seams: files ending just before, at
//! and after a batch's data size, holes across those edges, more entries
//! than one batch holds, hard links far apart, and errors on either side.
//! (Whole trees against the kernel's view: `ext4-cli/tests/copy_in.rs`.)

mod common;

use std::os::unix::fs::FileExt;
use std::path::Path;

use common::{assert_clean, have_fsck, open_ro};
use ext4_fs::populate::CopyOptions;
use ext4_fs::{Error, FileType, Filesystem, OpenOptions};

const MIB: usize = 1 << 20;

/// Bytes that differ from file to file and are never a whole zero block.
fn data(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i / 7 + seed * 31) % 251) as u8 | 1).collect()
}

/// A source file: name, size, and the (offset, length) runs of data in it;
/// the rest is holes.
type Spec = (String, usize, Vec<(usize, usize)>);

fn files() -> Vec<Spec> {
    let mut v = Vec::new();
    for (k, len) in [0, 1, 4095, 4096, MIB - 1, MIB, MIB + 1, 3 * MIB + 5].into_iter().enumerate() {
        v.push((format!("size-{k}-{len}"), len, vec![(0, len)]));
    }
    // Holes across the 1 MiB edges: data, 2 MiB of zeros from just before an
    // edge, data, and a trailing hole.
    v.push(("holes".into(), 6 * MIB, vec![(0, MIB - 8192), (3 * MIB + 4096, MIB)]));
    v.push(("only-a-hole".into(), 2 * MIB, vec![]));
    v
}

fn make_source(root: &Path) {
    std::fs::create_dir_all(root.join("many")).unwrap();
    for (name, len, runs) in files() {
        let f = std::fs::File::create(root.join(&name)).unwrap();
        for &(at, n) in &runs {
            f.write_all_at(&data(at + len, n), at as u64).unwrap();
        }
        f.set_len(len as u64).unwrap();
    }
    // More entries than a batch carries, small files between them.
    for i in 0..700 {
        std::fs::write(root.join("many").join(format!("f{i:04}")), data(i, i % 300)).unwrap();
    }
    // Hard links: first name early, the others hundreds of entries later.
    std::fs::write(root.join("a-linked"), b"one inode, three names").unwrap();
    std::fs::hard_link(root.join("a-linked"), root.join("many/zz-linked")).unwrap();
    std::fs::hard_link(root.join("a-linked"), root.join("zz-linked")).unwrap();
    std::os::unix::fs::symlink("size-2-4095", root.join("link")).unwrap();
}

fn fresh_image(tag: &str) -> common::Scratch {
    common::format_ext4(tag, 64 << 20, 4096, 256, "")
}

fn open_bulk(path: &Path) -> Filesystem {
    Filesystem::open_path(path, OpenOptions { bulk: true, ..OpenOptions::read_write() }).unwrap()
}

#[test]
fn batches_carry_every_byte_hole_and_link() {
    let src = tempfile::tempdir().unwrap();
    make_source(src.path());
    let img = fresh_image("populate-seams");
    {
        let mut fs = open_bulk(&img.path);
        fs.copy_dir_contents(src.path(), 2, &CopyOptions::default(), &mut |_| {}).unwrap();
        fs.close().unwrap();
    }
    if have_fsck() {
        assert_clean(&img.path);
    }
    let fs = open_ro(&img.path);
    for (name, len, runs) in files() {
        let path = format!("/{name}");
        let mut want = vec![0; len];
        for &(at, n) in &runs {
            want[at..at + n].copy_from_slice(&data(at + len, n));
        }
        let got = fs.read(&path).unwrap();
        assert!(got == want, "{path}: {} bytes read back, other than the {len} written", got.len());
        // Whole zero blocks stay holes: the blocks used are those of the
        // data runs (rounded out to blocks), and no more.
        let data_blocks: u64 = runs.iter().map(|&(at, n)| ((at + n).div_ceil(4096) - at / 4096) as u64).sum();
        let md = fs.metadata(&path).unwrap();
        let used = md.blocks * 512 / 4096;
        assert!(used >= data_blocks && used <= data_blocks + 2, "{path}: {used} blocks for {data_blocks} blocks of data");
    }
    for i in 0..700 {
        assert_eq!(fs.read(format!("/many/f{i:04}")).unwrap(), data(i, i % 300), "/many/f{i:04}");
    }
    let ino = fs.metadata("/a-linked").unwrap().ino;
    for p in ["/many/zz-linked", "/zz-linked"] {
        assert_eq!(fs.metadata(p).unwrap().ino, ino, "{p} is not a link to /a-linked");
    }
    assert_eq!(fs.metadata("/a-linked").unwrap().nlink, 3);
    assert_eq!(fs.read_link("/link").unwrap(), b"size-2-4095");
    assert_eq!(fs.lookup_nofollow("/link").and_then(|i| fs.stat(i)).unwrap().file_type, FileType::Symlink);
}

#[test]
fn a_missing_source_is_named_and_nothing_is_made() {
    let img = fresh_image("populate-missing");
    let dir = ext4_testkit::scratch_dir("populate-missing");
    let missing = dir.path().join("no-such-source");
    let mut fs = common::open_rw(&img.path);
    let before = fs.read_dir("/").unwrap().len();
    let e = fs.copy_in(&missing, 2, b"x", &CopyOptions::default(), &mut |_| {}).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
    assert!(e.to_string().contains(&missing.display().to_string()), "the message does not name the source: {e}");
    let e = fs.copy_dir_contents(&missing, 2, &CopyOptions::default(), &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains(&missing.display().to_string()), "the message does not name the source: {e}");
    assert_eq!(fs.read_dir("/").unwrap().len(), before, "a failed copy left an entry");
    fs.close().unwrap();
    if have_fsck() {
        assert_clean(&img.path);
    }
}

/// The image side fails (no space) while the walker is still reading ahead:
/// the copy returns the error instead of waiting on the walker, and what
/// was made so far is a consistent image.
#[test]
fn running_out_of_space_midway_stops_the_walk() {
    let src = tempfile::tempdir().unwrap();
    for d in 0..4 {
        let dir = src.path().join(format!("d{d}"));
        std::fs::create_dir(&dir).unwrap();
        for f in 0..40 {
            std::fs::write(dir.join(format!("f{f}")), data(d * 40 + f, 300 * 1024)).unwrap();
        }
    }
    let img = common::format_ext4("populate-full", 16 << 20, 4096, 256, "");
    let mut fs = common::open_rw(&img.path);
    let e = fs.copy_in(src.path(), 2, b"tree", &CopyOptions::default(), &mut |_| {}).unwrap_err();
    assert!(matches!(e, Error::NoSpace), "{e:?}");
    fs.close().unwrap();
    if have_fsck() {
        assert_clean(&img.path);
    }
}

/// A tree deeper than a path can name (900 levels of 200-byte names: paths
/// of 180 KB against PATH_MAX 4,096): the walk opens each level relative to
/// the one above, and neither side recurses per level. (One descriptor per
/// level stays open: under the usual limit of 1,024.)
#[test]
fn a_tree_deeper_than_path_max_is_copied_whole() {
    use rustix::fs::{Mode, OFlags, mkdirat, openat};
    const DEPTH: usize = 900;
    let name = "d".repeat(200);
    let src = tempfile::tempdir().unwrap();
    let mut dir = openat(rustix::fs::CWD, src.path(), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
    for _ in 0..DEPTH {
        mkdirat(&dir, name.as_str(), Mode::from_raw_mode(0o755)).unwrap();
        dir = openat(&dir, name.as_str(), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
    }
    let bottom = openat(&dir, "bottom", OFlags::WRONLY | OFlags::CREATE, Mode::from_raw_mode(0o644)).unwrap();
    rustix::io::write(&bottom, b"at the bottom").unwrap();
    drop((bottom, dir));

    let img = fresh_image("populate-deep");
    let mut fs = open_bulk(&img.path);
    let top = fs.copy_in(src.path(), 2, b"deep", &CopyOptions::default(), &mut |_| {}).unwrap();
    fs.close().unwrap();
    if have_fsck() {
        assert_clean(&img.path);
    }
    let fs = open_ro(&img.path);
    let mut ino = top;
    for level in 0..DEPTH {
        ino = fs.lookup_in(ino, name.as_bytes()).unwrap().unwrap_or_else(|| panic!("level {level} is missing"));
    }
    let file = fs.lookup_in(ino, b"bottom").unwrap().expect("the file at the bottom");
    let mut buf = [0; 32];
    let n = fs.read_at(file, 0, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"at the bottom");
}

/// A copy keeps the source's owners and modes unless asked to make the
/// inodes the caller's: then a setgid directory's group and setgid bit,
/// the umask, and no setgid for an outsider's group-executable file, as
/// `cp` without `-p` would get from the kernel.
#[test]
fn copies_as_the_caller_when_asked() {
    use std::os::unix::fs::PermissionsExt;
    let src = tempfile::tempdir().unwrap();
    let root = src.path().join("tree");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/tool"), b"#!/bin/sh\n").unwrap();
    for (p, mode) in [("sub/tool", 0o2775), ("sub", 0o770), ("", 0o755)] {
        std::fs::set_permissions(root.join(p), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let img = fresh_image("populate-caller");
    let mut fs = common::open_rw(&img.path);
    let s = fs.mkdir("/s", 0o777).unwrap();
    fs.set_attr(s, ext4_fs::SetAttr { gid: Some(100), ..Default::default() }).unwrap();
    fs.set_attr(s, ext4_fs::SetAttr { perm: Some(0o2777), ..Default::default() }).unwrap();
    fs.copy_in(&root, s, b"kept", &CopyOptions::default(), &mut |_| {}).unwrap();
    fs.set_caller(ext4_fs::Caller { umask: 0o027, ..ext4_fs::Caller::user(1000, 1000) });
    fs.copy_in(&root, s, b"mine", &CopyOptions { as_caller: true, ..CopyOptions::default() }, &mut |_| {}).unwrap();
    fs.close().unwrap();
    if have_fsck() {
        assert_clean(&img.path);
    }
    let fs = open_ro(&img.path);
    let owner_mode = |p: &str| fs.metadata(p).map(|m| (m.uid, m.gid, m.permissions)).unwrap();
    let host = std::fs::metadata(root.join("sub/tool")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(owner_mode("/s/kept/sub/tool"), (host.uid(), host.gid(), 0o2775), "a restore keeps owner and mode");
    assert_eq!(owner_mode("/s/kept/sub"), (host.uid(), host.gid(), 0o770));
    assert_eq!(owner_mode("/s/mine"), (1000, 100, 0o2750), "a directory takes the group and setgid bit, less the umask");
    assert_eq!(owner_mode("/s/mine/sub"), (1000, 100, 0o2750));
    assert_eq!(owner_mode("/s/mine/sub/tool"), (1000, 100, 0o750), "an outsider's setgid executable loses setgid");
}

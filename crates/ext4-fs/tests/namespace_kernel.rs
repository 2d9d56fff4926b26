//! Namespace changes handed between the kernel and the library (issue 5).
//!
//! * The kernel writes a tree (the make-tree.py small tree copied in by
//!   `cp -a`, plus an htree directory and nested directories of its own);
//!   the library renames and deletes in it; the kernel mounts the result,
//!   sees the tree the library sees, changes it again, and `e2fsck -fn`
//!   stays silent after each writer.
//! * The library builds a tree (with an htree directory) on each test
//!   image kind; the kernel renames and deletes in it; the library reads
//!   back exactly what the kernel saw, and `e2fsck -fn` stays silent.
//!
//! Both need root and loop devices (`ext4_testkit::require`).

mod common;

use std::path::Path;

use common::{KINDS, Kind, assert_clean, format, have_fsck, open_ro, open_rw};
use ext4_fs::{FileType, Filesystem, RenameMode, Timestamp};
use ext4_testkit::fixtures;
use ext4_testkit::oracle::{LoopMount, can_loop_mount};
use ext4_testkit::snapshot::Snapshot;

fn can_run() -> bool {
    have_fsck() && ext4_testkit::require(can_loop_mount(), "kernel interop needs root and loop devices")
}

/// A name of varied length for entry `i`.
fn name(i: usize) -> String {
    let len = if i % 9 == 0 { 120 + (i * 11) % 135 } else { 3 + (i * 7) % 30 };
    let mut n = format!("{i}-");
    while n.len() < len {
        n.push((b'a' + ((i + n.len()) % 26) as u8) as char);
    }
    n
}

/// Fails with the differences when two snapshots differ.
fn assert_same(expected: &Snapshot, actual: &Snapshot, what: &str) {
    let diff = expected.diff(actual);
    assert!(diff.is_empty(), "{what}: {} differences, first: {:#?}", diff.len(), &diff[..diff.len().min(10)]);
}

/// The library looks every path of a snapshot up one by one (through the index).
fn assert_lookups(fs: &Filesystem, snap: &Snapshot) {
    for (path, node) in &snap.nodes {
        let full = [b"/", &path[..]].concat();
        let ino = fs.lookup_nofollow(&full).unwrap_or_else(|e| panic!("lookup {}: {e}", String::from_utf8_lossy(&full)));
        assert_eq!(fs.stat(ino).unwrap().file_type, node.kind, "{}", String::from_utf8_lossy(&full));
    }
}

/// A scratch copy of a cached fixture image, removed on drop.
struct Copy(tempfile::TempPath);

fn copy_fixture(name: &str) -> Option<Copy> {
    let p = fixtures::profile(name).expect("known profile");
    if let Some(why) = fixtures::unavailable(&p) {
        ext4_testkit::require(false, &format!("{name}: {why}"));
        return None;
    }
    let (img, _) = fixtures::image(&p).expect("fixture builds");
    let dest = Copy(ext4_testkit::scratch_file(&format!("nsk-{name}")));
    let out = std::process::Command::new("cp").arg("--sparse=always").arg(&img).arg(&dest.0).output().expect("cp runs");
    assert!(out.status.success(), "cp: {}", String::from_utf8_lossy(&out.stderr));
    Some(dest)
}

/// Every entry under `dir` (library view), depth first: (path, type).
fn walk(fs: &Filesystem, dir: &str, out: &mut Vec<(String, FileType)>) {
    let mut entries = fs.read_dir(dir).unwrap();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    for e in entries {
        let p = format!("{}/{}", dir.trim_end_matches('/'), e.name_lossy());
        let kind = fs.stat(e.ino).unwrap().file_type;
        out.push((p.clone(), kind));
        if kind == FileType::Directory {
            walk(fs, &p, out);
        }
    }
}

/// Removes a tree through the library, deepest entries first.
fn remove_tree(fs: &mut Filesystem, dir: &str) {
    let mut all = Vec::new();
    walk(fs, dir, &mut all);
    for (p, kind) in all.iter().rev() {
        if *kind == FileType::Directory { fs.remove_dir(p) } else { fs.remove_file(p) }.unwrap_or_else(|e| panic!("remove {p}: {e}"));
    }
    fs.remove_dir(dir).unwrap();
}

/// The kernel's additions to the fixture: an htree directory and nested directories.
fn kernel_adds(mount: &Path) {
    let big = mount.join("kbig");
    std::fs::create_dir(&big).unwrap();
    for i in 0..3000 {
        std::fs::write(big.join(name(i)), if i % 10 == 0 { name(i).into_bytes() } else { Vec::new() }).unwrap();
    }
    for d in 0..8 {
        let dir = mount.join(format!("kdirs/d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        if d % 2 == 0 {
            std::fs::write(dir.join("file"), format!("dir {d}")).unwrap();
        }
    }
}

/// The library's changes to the kernel-written tree.
fn library_changes(fs: &mut Filesystem) {
    // The kernel's htree directory: remove a third, rename within, move out.
    for i in 0..3000 {
        let p = format!("/kbig/{}", name(i));
        if i % 3 == 0 {
            fs.remove_file(&p).unwrap();
        } else if i % 5 == 1 {
            fs.rename(&p, format!("/kbig/r{}", &name(i)[..name(i).len().min(200)])).unwrap();
        } else if i % 7 == 2 {
            fs.rename(&p, format!("/kdirs/d{}/{}", (i % 4) * 2, name(i))).unwrap();
        }
    }
    // Directories across parents, over an empty directory, exchanged with a file.
    // (Even-numbered ones hold files, odd-numbered ones are empty.)
    fs.rename("/kdirs/d1", "/kdirs/d2/d1").unwrap();
    assert_eq!(fs.rename("/kdirs/d0", "/kdirs/d2").unwrap_err().errno(), 39, "ENOTEMPTY");
    fs.rename("/kdirs/d5", "/kdirs/d3").unwrap_or_else(|e| panic!("d5 over d3: {e}"));
    fs.rename_with("/kdirs/d4", format!("/kbig/{}", name(4)), RenameMode::Exchange).unwrap();
    assert_eq!(fs.rename_with("/kdirs/d6", "/kdirs/d7", RenameMode::NoReplace).unwrap_err().errno(), 17, "EEXIST");
    // The make-tree.py part: every fourth file goes, every sixth moves up a level,
    // and one whole directory is removed.
    let mut all = Vec::new();
    walk(fs, "/", &mut all);
    let top: Vec<String> =
        all.iter().filter(|(p, k)| *k == FileType::Directory && p.matches('/').count() == 1).map(|(p, _)| p.clone()).collect();
    let victim =
        top.iter().find(|p| !p.starts_with("/k") && *p != "/lost+found" && *p != "/bigdir").expect("a top directory of the tree").clone();
    remove_tree(fs, &victim);
    let mut n = 0;
    for (p, kind) in &all {
        if p.starts_with(&format!("{victim}/")) || p.starts_with("/k") || p.starts_with("/lost+found") || *kind == FileType::Directory {
            continue;
        }
        n += 1;
        if n % 4 == 0 {
            fs.remove_file(p).unwrap_or_else(|e| panic!("remove {p}: {e}"));
        } else if n % 6 == 0 {
            let (dir, file) = p.rsplit_once('/').unwrap();
            let up = dir.rsplit_once('/').map_or("", |(d, _)| d);
            let to = format!("{up}/up{n}-{}", &file[..file.len().min(200)]);
            fs.rename(p, &to).unwrap_or_else(|e| panic!("rename {p} -> {to}: {e}"));
        }
    }
    println!("library: removed {victim}, changed {n} files of the fixture");
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn library_renames_and_deletes_in_a_kernel_written_tree() {
    if !can_run() {
        return;
    }
    let Some(img) = copy_fixture("ext4-kernel") else {
        return;
    };
    let m = LoopMount::new(&img.0, "").expect("mount");
    kernel_adds(m.path());
    m.unmount().unwrap();
    assert_clean(&img.0);

    let mut fs = open_rw(&img.0);
    fs.set_fixed_time(Some(Timestamp::from_secs(1_700_000_100)));
    library_changes(&mut fs);
    fs.close().unwrap();
    assert_clean(&img.0);

    let fs = open_ro(&img.0);
    let ours = Snapshot::from_image(&fs, b"/").unwrap();
    assert!(fs.lookup("/kdirs/d2/d1").is_ok() && fs.lookup("/kdirs/d5").is_err());
    assert!(fs.metadata(format!("/kbig/{}", name(4))).unwrap().is_dir(), "exchanged with /kdirs/d4");
    drop(fs);

    // The kernel sees the library's tree, then changes it again.
    let m = LoopMount::new(&img.0, "").expect("mount after the library");
    assert_same(&ours, &Snapshot::from_host(m.path()).unwrap(), "kernel view after the library's changes");
    let k = m.path();
    for i in (0..3000).filter(|i| i % 3 == 1) {
        let p = k.join("kbig").join(name(i));
        if p.is_file() {
            std::fs::remove_file(&p).unwrap();
        }
    }
    std::fs::rename(k.join("kdirs/d2"), k.join("kbig/d2-moved")).unwrap();
    for i in 0..500 {
        std::fs::write(k.join("kbig").join(format!("k2-{}", name(i))), b"x").unwrap();
    }
    let theirs = Snapshot::from_host(k).unwrap();
    m.unmount().unwrap();
    assert_clean(&img.0);
    let fs = open_ro(&img.0);
    let again = Snapshot::from_image(&fs, b"/").unwrap();
    assert_same(&theirs, &again, "library view after the kernel's second changes");
    assert_lookups(&fs, &again);
}

/// The library's tree: nested directories, files, symlinks, hard links and an htree directory.
fn library_builds(fs: &mut Filesystem) {
    for d in ["/d0/a/b", "/d1", "/d2/x", "/d3/y/z", "/big"] {
        fs.create_dir_all(d, 0o755).unwrap();
    }
    for (i, d) in ["/d0", "/d0/a", "/d0/a/b", "/d1", "/d2/x", "/d3/y/z"].iter().enumerate() {
        fs.write_file(format!("{d}/f{i}"), format!("file {i} in {d}").as_bytes()).unwrap();
        fs.symlink(format!("../f{i}"), format!("{d}/short{i}")).unwrap();
        fs.symlink("t/".repeat(100 + i), format!("{d}/long{i}")).unwrap();
    }
    fs.hard_link("/d0/f0", "/d1/f0-link").unwrap();
    fs.hard_link("/d0/f0", "/d3/f0-link").unwrap();
    for i in 0..2000 {
        let p = format!("/big/{}", name(i));
        if i % 40 == 0 {
            fs.mkdir(&p, 0o700).unwrap();
        } else {
            fs.write_file(&p, &name(i).as_bytes()[..i % 17 % name(i).len()]).unwrap();
        }
    }
}

/// The kernel's renames and deletes in the library's tree.
fn kernel_changes(k: &Path) {
    for i in 0..2000 {
        let p = k.join("big").join(name(i));
        if i % 3 == 0 {
            if i % 40 == 0 { std::fs::remove_dir(&p) } else { std::fs::remove_file(&p) }.unwrap();
        } else if i % 4 == 1 {
            std::fs::rename(&p, k.join("big").join(format!("kr-{}", name(i)))).unwrap();
        } else if i % 5 == 2 {
            std::fs::rename(&p, k.join("d1").join(name(i))).unwrap();
        }
    }
    std::fs::rename(k.join("d2"), k.join("d0/a/d2-moved")).unwrap();
    std::fs::remove_dir_all(k.join("d3")).unwrap();
    std::fs::rename(k.join("d0/f0"), k.join("d0/a/f1")).unwrap();
    std::fs::hard_link(k.join("d1/f0-link"), k.join("big/hl")).unwrap();
    std::os::unix::fs::symlink("k".repeat(300), k.join("big/klong")).unwrap();
    std::fs::write(k.join("big/new"), b"kernel").unwrap();
}

fn kernel_renames_in(kind: &Kind) {
    let img = format(kind, 64 << 20, "nsk");
    let mut fs = open_rw(&img.path);
    fs.set_fixed_time(Some(Timestamp::from_secs(1_700_000_100)));
    library_builds(&mut fs);
    fs.close().unwrap();
    assert_clean(&img.path);
    let ours = Snapshot::from_image(&open_ro(&img.path), b"/").unwrap();

    let m = LoopMount::new(&img.path, "").unwrap_or_else(|e| panic!("{}: mount: {e}", kind.name));
    let before = Snapshot::from_host(m.path()).unwrap();
    assert_same(&ours, &before, &format!("{}: kernel view of the library's tree", kind.name));
    kernel_changes(m.path());
    let theirs = Snapshot::from_host(m.path()).unwrap();
    m.unmount().unwrap();
    assert_clean(&img.path);

    let fs = open_ro(&img.path);
    let back = Snapshot::from_image(&fs, b"/").unwrap();
    assert_same(&theirs, &back, &format!("{}: library view after the kernel's changes", kind.name));
    assert_lookups(&fs, &back);
    assert!(back.nodes.len() > 1000, "{}: {} entries", kind.name, back.nodes.len());
    println!("{}: {} entries agree", kind.name, back.nodes.len());
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn kernel_renames_and_deletes_in_a_library_written_tree() {
    if !can_run() {
        return;
    }
    for kind in KINDS {
        kernel_renames_in(kind);
    }
}

/// The library grows and renames inside htrees that e2fsprogs built with
/// other hashes and block sizes (`mke2fs -d` leaves directories linear;
/// `e2fsck -fyD` indexes them with the image's hash: TEA with 128-byte
/// inodes, half-MD4 on ext2 1k and ext3 2k); e2fsck and the kernel agree
/// with the result.
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn library_grows_htrees_made_by_mke2fs() {
    if !can_run() {
        return;
    }
    for profile in ["ext4-128-tea", "ext2-1k", "ext3-2k"] {
        let Some(img) = copy_fixture(profile) else {
            continue;
        };
        let out = std::process::Command::new("e2fsck").arg("-fyD").arg(&img.0).output().expect("e2fsck runs");
        assert!(matches!(out.status.code(), Some(0 | 1)), "e2fsck -fyD: {}", String::from_utf8_lossy(&out.stdout));
        let mut fs = open_rw(&img.0);
        fs.set_fixed_time(Some(Timestamp::from_secs(1_700_000_100)));
        assert!(fs.metadata("/bigdir").unwrap().flags.contains(ext4_fs::InodeFlags::INDEX), "{profile}: /bigdir is an htree");
        let old: Vec<String> = fs.read_dir("/bigdir").unwrap().iter().map(|e| e.name_lossy().into_owned()).collect();
        for (k, n) in old.iter().enumerate() {
            if k % 2 == 0 {
                fs.rename(format!("/bigdir/{n}"), format!("/bigdir/m{k}-{}", &n[..n.len().min(200)])).unwrap();
            }
        }
        for i in 0..1500 {
            fs.create(format!("/bigdir/{}", name(i)), 0o644).unwrap();
        }
        fs.close().unwrap();
        assert_clean(&img.0);
        let fs = open_ro(&img.0);
        let ours = Snapshot::from_image(&fs, b"/").unwrap();
        assert_lookups(&fs, &ours);
        drop(fs);
        let m = LoopMount::new(&img.0, "ro").expect("mount");
        assert_same(&ours, &Snapshot::from_host(m.path()).unwrap(), &format!("{profile}: kernel view"));
        m.unmount().unwrap();
        println!("{profile}: {} old names renamed or kept, 1500 added; kernel agrees", old.len());
    }
}

//! `ext4 get -r` against the kernel: trees the kernel wrote (extents,
//! indirect maps, inline data, holes, unwritten extents, hard links,
//! symlinks, device nodes, xattrs, owners, modes, times) come out exactly as
//! the kernel showed them, through each way of copying data (the kernel's
//! `copy_file_range` and `sendfile`, or reads through the library), into the
//! image's filesystem and another one, holes staying holes; and an image
//! whose journal still needs recovery comes out as the kernel last saw it.
//! Every xattr namespace root may set comes out (`trusted.*`, `security.*`,
//! ACLs) as the kernel shows it; a host error on one entry is reported
//! with every other and the rest is copied; data the kernel cannot copy
//! (past the destination's size limit) goes by read and write.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use ext4_testkit::oracle::{LoopMount, can_loop_mount, have_e2fsprogs};
use ext4_testkit::snapshot::Snapshot;

fn sh(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn mke2fs(image: &Path, args: &[&str], size: &str) {
    sh(Command::new("mke2fs").args(["-q", "-F"]).args(args).arg(image).arg(size));
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(u32::from(seed % 31)) as u8 ^ seed).collect()
}

/// Fills a mounted filesystem with every kind of thing `get` must carry
/// (unwritten extents where the filesystem has extents).
fn populate(root: &Path, extents: bool) {
    use std::os::unix::fs::FileExt;
    let d = root.join("dir/sub");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    std::fs::write(root.join("tiny"), b"fits inline").unwrap();
    std::fs::write(d.join("small"), pattern(5000, 1)).unwrap();
    std::fs::write(d.join("big"), pattern((1 << 20) + 3, 2)).unwrap();
    // Holes at the start, in the middle and at the end.
    let f = std::fs::File::create(root.join("holes")).unwrap();
    f.write_all_at(&pattern(10_000, 3), 1 << 20).unwrap();
    f.write_all_at(&pattern(7_000, 4), 3 << 20).unwrap();
    f.set_len(9 << 20).unwrap();
    drop(f);
    if extents {
        // Unwritten extents around a written one.
        sh(Command::new("fallocate").args(["-l", "1M"]).arg(root.join("prealloc")));
        let f = std::fs::OpenOptions::new().write(true).open(root.join("prealloc")).unwrap();
        f.write_all_at(&pattern(4096, 5), 512 << 10).unwrap();
    }
    std::fs::hard_link(d.join("small"), root.join("small-link")).unwrap();
    std::os::unix::fs::symlink("dir/sub/small", root.join("short-link")).unwrap();
    std::os::unix::fs::symlink("x".repeat(300), root.join("long-link")).unwrap();
    sh(Command::new("mkfifo").arg(root.join("fifo")));
    sh(Command::new("mknod").arg(root.join("chr")).args(["c", "4", "64"]));
    xattr::set(d.join("small"), "user.note", b"a value").unwrap();
    xattr::set(root.join("dir"), "user.dir", &pattern(300, 6)).unwrap();
    std::os::unix::fs::chown(d.join("big"), Some(1234), Some(5678)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join("tiny"), std::fs::Permissions::from_mode(0o4751)).unwrap();
    std::fs::set_permissions(d.join("big"), std::fs::Permissions::from_mode(0o400)).unwrap();
    let t = filetime::FileTime::from_unix_time(1_000_000_007, 123_456_789);
    filetime::set_file_times(root.join("holes"), t, t).unwrap();
    filetime::set_file_times(&d, t, t).unwrap();
}

fn snapshot(root: &Path) -> Snapshot {
    let mut s = Snapshot::from_host(root).unwrap();
    s.remove_tree(b"lost+found");
    s
}

/// `ext4 get -r IMAGE / OUT` with the kernel-copy setting `mode`; returns OUT's tree.
fn extract(image: &Path, out: &Path, mode: &str) -> Snapshot {
    let _ = std::fs::remove_dir_all(out);
    let mut c = Command::new(common::EXT4);
    c.args(["get", "-r"]).arg(image).arg("/").arg(out).env("EXT4_KERNEL_COPY", mode);
    sh(&mut c);
    snapshot(out)
}

fn assert_same(got: &Snapshot, expected: &Snapshot, what: &str) {
    let diff = expected.diff(got);
    assert!(diff.is_empty(), "{what}: {} differences, first: {:?}", diff.len(), &diff[..diff.len().min(4)]);
}

/// A directory on another filesystem than `than`, if the machine has one.
fn other_fs(than: &Path) -> Option<PathBuf> {
    let dev = std::fs::metadata(than).ok()?.dev();
    let shm = Path::new("/dev/shm");
    (std::fs::metadata(shm).ok()?.dev() != dev).then(|| tempfile::tempdir_in(shm).ok().map(|t| t.keep())).flatten()
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn kernel_trees_come_out_exactly() {
    if !ext4_testkit::require(have_e2fsprogs() && can_loop_mount(), "needs e2fsprogs, root and loop devices") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let elsewhere = other_fs(tmp.path());
    let configs: &[(&str, &[&str])] = &[
        ("ext4-4k", &["-t", "ext4", "-b", "4096"]),
        ("ext4-1k-inline", &["-t", "ext4", "-b", "1024", "-O", "inline_data"]),
        ("ext2", &["-t", "ext2"]),
    ];
    for (name, args) in configs {
        let image = tmp.path().join(format!("{name}.img"));
        mke2fs(&image, args, "64M");
        let m = LoopMount::new(&image, "").expect("mount");
        populate(m.path(), !name.starts_with("ext2"));
        let expected = snapshot(m.path());
        m.unmount().expect("umount");
        let mut outs = vec![(tmp.path().join(format!("{name}-out")), "same filesystem")];
        if let Some(e) = &elsewhere {
            outs.push((e.join(format!("{name}-out")), "another filesystem"));
        }
        for (out, place) in &outs {
            for mode in ["copy_file_range", "sendfile", "none"] {
                let what = format!("{name}, {place}, {mode}");
                let got = extract(&image, out, mode);
                assert_same(&got, &expected, &what);
                // Holes stay holes: 17,000 bytes of data in a 9 MiB file.
                let blocks = std::fs::metadata(out.join("holes")).unwrap().blocks();
                assert!(blocks * 512 < 1 << 20, "{what}: the holes were filled ({blocks} sectors)");
                let sub = std::fs::metadata(out.join("dir/sub")).unwrap();
                assert_eq!((sub.mtime(), sub.mtime_nsec()), (1_000_000_007, 123_456_789), "{what}: directory times");
            }
        }
    }
    if let Some(e) = elsewhere {
        let _ = std::fs::remove_dir_all(e);
    }
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn a_journal_needing_recovery_is_read_as_the_kernel_left_it() {
    if !ext4_testkit::require(have_e2fsprogs() && can_loop_mount(), "needs e2fsprogs, root and loop devices") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("crashed.img");
    mke2fs(&image, &["-t", "ext4"], "64M");
    // Without delayed allocation, ordered mode writes file data before the
    // commit the shutdown forces: the recovered tree is the one seen.
    let m = LoopMount::new(&image, "nodelalloc").expect("mount");
    populate(m.path(), true);
    sh(Command::new("sync").arg("-f").arg(m.path()));
    std::fs::write(m.path().join("dir/after-sync"), pattern(70_000, 9)).unwrap();
    std::fs::rename(m.path().join("tiny"), m.path().join("dir/tiny-moved")).unwrap();
    std::fs::remove_file(m.path().join("empty")).unwrap();
    let expected = snapshot(m.path());
    let py = "import fcntl,os,struct,sys; fd=os.open(sys.argv[1], os.O_RDONLY); fcntl.ioctl(fd, 0x8004587d, struct.pack('I', 1))";
    sh(Command::new("python3").arg("-c").arg(py).arg(m.path()));
    m.unmount().expect("umount");
    let sb = std::fs::read(&image).unwrap();
    assert!(u32::from_le_bytes(sb[1024 + 0x60..1024 + 0x64].try_into().unwrap()) & 0x4 != 0, "the shutdown left no journal to recover");
    let before = std::fs::read(&image).unwrap();
    let got = extract(&image, &tmp.path().join("out"), "copy_file_range");
    assert_same(&got, &expected, "journal not replayed on the image");
    assert!(std::fs::read(&image).unwrap() == before, "a read-only get changed the image");
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn a_corrupt_file_is_reported_and_the_rest_copied() {
    if !ext4_testkit::require(have_e2fsprogs(), "needs e2fsprogs") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..3000 {
        std::fs::write(src.join(format!("f{i}")), format!("file {i}\n")).unwrap();
    }
    std::fs::write(src.join("big"), pattern(100_000, 7)).unwrap();
    let image = tmp.path().join("img");
    sh(Command::new("mke2fs").args(["-q", "-F", "-t", "ext4", "-O", "^metadata_csum", "-d"]).arg(&src).arg(&image).arg("64M"));
    // The first extent of /big now points past the end of the filesystem.
    sh(Command::new("debugfs").args(["-w", "-R", "sif /big block[5] 99999999"]).arg(&image));
    let mut child = Command::new(common::EXT4)
        .args(["get", "-r"])
        .arg(&image)
        .arg("/")
        .arg(tmp.path().join("out"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A hang would be the bug: give up after a minute.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("ext4 get hangs after a failed copy");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a corrupt file was extracted without an error");
    assert!(err.contains("/big") && err.contains("EUCLEAN"), "the error does not name the file and the corruption: {err}");
    for i in [0, 1234, 2999] {
        let got = std::fs::read_to_string(tmp.path().join(format!("out/f{i}"))).unwrap();
        assert_eq!(got, format!("file {i}\n"), "the other files are copied");
    }
}

/// An ACL in the form `setxattr` takes (`posix_acl_xattr`): owner rw-,
/// user 1000 r--, group r--, mask r--, other ---.
fn acl_xattr() -> Vec<u8> {
    let mut v = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in [(1u16, 6u16, u32::MAX), (2, 4, 1000), (4, 4, u32::MAX), (0x10, 4, u32::MAX), (0x20, 0, u32::MAX)] {
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&perm.to_le_bytes());
        v.extend_from_slice(&id.to_le_bytes());
    }
    v
}

/// Every xattr of every entry below `root`, read without following links.
fn all_xattrs(root: &Path) -> std::collections::BTreeMap<String, Vec<(String, Vec<u8>)>> {
    let mut out = std::collections::BTreeMap::new();
    for name in ["file", "dir", "dir/inner", "link", "fifo"] {
        let p = root.join(name);
        let mut v: Vec<(String, Vec<u8>)> =
            xattr::list(&p).unwrap().map(|n| (n.to_string_lossy().into_owned(), xattr::get(&p, &n).unwrap().unwrap_or_default())).collect();
        v.sort();
        out.insert(name.to_string(), v);
    }
    out
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn every_xattr_namespace_comes_out_as_root() {
    if !ext4_testkit::require(have_e2fsprogs() && can_loop_mount(), "needs e2fsprogs, root and loop devices") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("x.img");
    mke2fs(&image, &["-t", "ext4"], "64M");
    let m = LoopMount::new(&image, "").expect("mount");
    let r = m.path();
    std::fs::write(r.join("file"), b"data").unwrap();
    std::fs::create_dir_all(r.join("dir/inner")).unwrap();
    std::os::unix::fs::symlink("file", r.join("link")).unwrap();
    sh(Command::new("mkfifo").arg(r.join("fifo")));
    xattr::set(r.join("file"), "user.u", b"user value").unwrap();
    xattr::set(r.join("file"), "trusted.t", b"trusted value").unwrap();
    xattr::set(r.join("file"), "security.s", b"security value").unwrap();
    xattr::set(r.join("file"), "system.posix_acl_access", &acl_xattr()).unwrap();
    xattr::set(r.join("dir"), "system.posix_acl_default", &acl_xattr()).unwrap();
    xattr::set(r.join("dir"), "trusted.big", &pattern(700, 8)).unwrap();
    xattr::set(r.join("dir/inner"), "user.inner", b"i").unwrap();
    xattr::set(r.join("link"), "trusted.on-the-link", b"l").unwrap();
    xattr::set(r.join("fifo"), "security.on-the-fifo", b"f").unwrap();
    let expected = all_xattrs(r);
    m.unmount().unwrap();
    assert!(expected["file"].len() == 4 && expected["link"].len() == 1, "the kernel kept them: {expected:?}");
    let out = tmp.path().join("out");
    sh(Command::new(common::EXT4).args(["get", "-r"]).arg(&image).arg("/").arg(&out));
    assert_eq!(all_xattrs(&out), expected, "xattrs as the kernel showed them");
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn host_errors_are_reported_and_the_rest_copied() {
    if !ext4_testkit::require(have_e2fsprogs(), "needs e2fsprogs") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("d/deeper")).unwrap();
    for (name, data) in [("a", "file a"), ("d/x", "file x"), ("d/deeper/y", "file y"), ("z", "file z")] {
        std::fs::write(src.join(name), data).unwrap();
    }
    let image = tmp.path().join("img");
    sh(Command::new("mke2fs").args(["-q", "-F", "-t", "ext4", "-d"]).arg(&src).arg(&image).arg("16M"));
    // The host has a directory where the image has file a, and a file where it has directory d.
    let out = tmp.path().join("out");
    std::fs::create_dir_all(out.join("a")).unwrap();
    std::fs::write(out.join("d"), b"in the way").unwrap();
    let r = Command::new(common::EXT4).args(["get", "-r"]).arg(&image).arg("/").arg(&out).output().unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success(), "the problems must fail the command:\n{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.iter().any(|l| l.contains(&*out.join("a").to_string_lossy()) && l.contains("EISDIR")), "file a:\n{err}");
    assert!(lines.iter().any(|l| l.contains(&*out.join("d").to_string_lossy()) && l.contains("EEXIST")), "directory d:\n{err}");
    assert!(err.contains("2 problem(s)"), "{err}");
    assert_eq!(std::fs::read_to_string(out.join("z")).unwrap(), "file z", "the rest is copied");
    assert_eq!(std::fs::read(out.join("d")).unwrap(), b"in the way", "what was in the way is left alone");
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn data_past_the_destination_size_limit_is_copied() {
    if !ext4_testkit::require(have_e2fsprogs() && can_loop_mount(), "needs e2fsprogs, root and loop devices") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // A 3 TiB sparse image whose one file's data lies at 2.5 TiB (its
    // extent pointed there by debugfs, the data written there by hand).
    let image = tmp.path().join("big.img");
    mke2fs(&image, &["-t", "ext4", "-O", "^has_journal,^resize_inode", "-N", "4096", "-E", "lazy_itable_init=1,nodiscard"], "3T");
    let data = pattern(8192, 11);
    let local = tmp.path().join("local");
    std::fs::write(&local, &data).unwrap();
    // 2.5 TiB in 4 KiB blocks, half-way into a group that holds no metadata.
    let far: u64 = (5 << 27) + 32768 + 16384;
    sh(Command::new("debugfs").arg("-w").arg("-R").arg(format!("write {} data", local.display())).arg(&image));
    sh(Command::new("debugfs").arg("-w").arg("-R").arg(format!("sif /data block[5] {far}")).arg(&image));
    std::os::unix::fs::FileExt::write_all_at(&std::fs::OpenOptions::new().write(true).open(&image).unwrap(), &data, far * 4096).unwrap();
    let ex = ext4_testkit::oracle::debugfs(&image, "stat /data");
    assert!(ex.contains(&far.to_string()), "the extent points at 2.5 TiB:\n{ex}");
    // Copied onto ext2 with 1 KiB blocks, whose files end at 2 TiB: the
    // kernel's sendfile refuses offsets past that (EOVERFLOW), as it does
    // past 16 TiB of an image copied onto ext4 with 4 KiB blocks.
    let small = tmp.path().join("small.img");
    mke2fs(&small, &["-t", "ext2", "-b", "1024"], "64M");
    let dest = LoopMount::new(&small, "").expect("mount the destination");
    for mode in ["copy_file_range", "sendfile"] {
        let out = dest.path().join(mode);
        let mut c = Command::new(common::EXT4);
        c.args(["get", "-r"]).arg(&image).arg("/").arg(&out).env("EXT4_KERNEL_COPY", mode);
        sh(&mut c);
        assert!(std::fs::read(out.join("data")).unwrap() == data, "{mode}: the data at 2.5 TiB");
    }
    dest.unmount().unwrap();
}

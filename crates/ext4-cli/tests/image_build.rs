//! Image building (issue 20): `ext4 mkfs -d TREE --all-root` with
//! SOURCE_DATE_EPOCH gives the same bytes from two copies of a tree that
//! differ in owners and times (as two hosts' checkouts do), e2fsck and the
//! kernel accept the image, and the kernel sees the tree with root's
//! owners and times clamped; an fs_config file sets owners, modes and
//! file capabilities the kernel then reports.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::{EXT4, assert_clean, have_fsck, is_root};
use ext4_testkit::oracle::{LoopMount, can_loop_mount};
use ext4_testkit::snapshot::Snapshot;
use ext4_testkit::tree::{TreeOptions, TreeProfile};

/// Before the tree's own times (`tree::FIXED_TIME`), so the clamp changes every one.
const EPOCH: i64 = 1_600_000_000;

/// `ext4 mkfs ARGS` with SOURCE_DATE_EPOCH set; panics unless it succeeds.
fn mkfs(args: &[&dyn AsRef<std::ffi::OsStr>]) {
    let out = Command::new(EXT4).arg("mkfs").args(args).env("SOURCE_DATE_EPOCH", EPOCH.to_string()).output().unwrap();
    assert!(out.status.success(), "ext4 mkfs: {}", String::from_utf8_lossy(&out.stderr));
}

/// Gives every entry under `root` the owner `ids` and times shifted by `shift` seconds.
fn restamp(root: &Path, ids: (u32, u32), shift: i64) {
    let snap = Snapshot::from_host(root).unwrap();
    for (path, node) in &snap.nodes {
        let p = root.join(std::ffi::OsStr::new(std::str::from_utf8(path).unwrap()));
        std::os::unix::fs::lchown(&p, Some(ids.0), Some(ids.1)).unwrap();
        let t = filetime::FileTime::from_unix_time(node.mtime.0 + shift, 7);
        filetime::set_symlink_file_times(&p, t, t).unwrap();
    }
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn two_copies_of_a_tree_give_the_same_image() {
    if !have_fsck() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("host-a"), dir.path().join("host-b"));
    for (copy, ids, shift) in [(&a, (1000, 1000), 0), (&b, (4242, 77), 86_400 * 400)] {
        ext4_testkit::tree::make(copy, TreeOptions { big_xattrs: false, ..TreeOptions::new(TreeProfile::Small) }).unwrap();
        restamp(copy, ids, shift);
    }
    let (img_a, img_b) = (dir.path().join("a.img"), dir.path().join("b.img"));
    mkfs(&[&"-q", &"-d", &a, &"--all-root", &img_a, &"64M"]);
    mkfs(&[&"-q", &"-d", &b, &"--all-root", &img_b, &"64M"]);
    let (x, y) = (std::fs::read(&img_a).unwrap(), std::fs::read(&img_b).unwrap());
    let first = x.iter().zip(&y).position(|(p, q)| p != q);
    assert!(first.is_none() && x.len() == y.len(), "the images differ first at byte {first:?}");
    assert_clean(&img_a, "after mkfs -d --all-root");

    if !ext4_testkit::require(is_root() && can_loop_mount(), "needs root and loop devices") {
        return;
    }
    let m = LoopMount::new(&img_a, "ro").unwrap();
    let mut seen = Snapshot::from_host(m.path()).unwrap();
    let lost = std::fs::symlink_metadata(m.path().join("lost+found")).unwrap();
    let root_md = std::fs::symlink_metadata(m.path()).unwrap();
    m.unmount().unwrap();
    seen.remove_tree(b"lost+found");
    let mut want = Snapshot::from_host(&a).unwrap();
    for n in want.nodes.values_mut() {
        (n.uid, n.gid, n.mtime) = (0, 0, (EPOCH, 0));
    }
    let diff = want.diff(&seen);
    assert!(diff.is_empty(), "the kernel sees another tree:\n{}", diff.join("\n"));
    assert!(want.nodes.len() > 20, "the tree has entries of every kind");
    assert_eq!((root_md.uid(), root_md.mtime(), lost.ctime()), (0, EPOCH, EPOCH), "the root and lost+found are clamped too");
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn fs_config_sets_owners_modes_and_capabilities() {
    if !have_fsck() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("bin")).unwrap();
    for f in ["bin/sh", "bin/ping", "readme"] {
        std::fs::write(src.join(f), f).unwrap();
    }
    let config = dir.path().join("fs_config");
    std::fs::write(&config, "# rules: the last match wins\n** 1000 1000 0644\n/ 0 0 0755\nbin 0 2000 0751\nbin/* 0 2000 0755\nbin/ping 0 0 4755 capabilities=0x2000\n").unwrap();
    let img = dir.path().join("img");
    mkfs(&[&"-q", &"-d", &src, &"--fs-config", &config, &img, &"16M"]);
    assert_clean(&img, "after mkfs -d --fs-config");
    let out = Command::new(EXT4).args(["xattr", "get", "-e", "hex"]).arg(&img).args(["/bin/ping", "security.capability"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0x0100000200200000000000000000000000000000");

    if !ext4_testkit::require(is_root() && can_loop_mount(), "needs root and loop devices") {
        return;
    }
    let m = LoopMount::new(&img, "ro").unwrap();
    let md = |p: &str| {
        let md = std::fs::symlink_metadata(m.path().join(p)).unwrap();
        (md.uid(), md.gid(), md.mode() & 0o7777)
    };
    let seen = [md("."), md("bin"), md("bin/sh"), md("bin/ping"), md("readme")];
    let caps = xattr::get(m.path().join("bin/ping"), "security.capability").unwrap();
    m.unmount().unwrap();
    assert_eq!(seen, [(0, 0, 0o755), (0, 2000, 0o751), (0, 2000, 0o755), (0, 0, 0o4755), (1000, 1000, 0o644)]);
    assert_eq!(caps.as_deref(), Some(&[1u8, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..]), "CAP_NET_RAW, effective");
}

#[test]
fn put_r_takes_the_build_options_too() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/f"), "f").unwrap();
    let img = dir.path().join("img");
    common::ok(&[&"mkfs", &"-q", &img, &"16M"], None);
    common::ok(&[&"put", &"-r", &"--owner", &"5:6", &"--mtime", &"1970-01-01T00:16:40Z", &img, &src, &"/"], None);
    for p in ["/src", "/src/sub", "/src/sub/f"] {
        let v: serde_json::Value = serde_json::from_slice(&common::ok(&[&"stat", &"--json", &img, &p], None).stdout).unwrap();
        assert_eq!(
            (v["uid"].as_u64(), v["gid"].as_u64(), v["mtime"]["epoch"].as_i64(), v["ctime"]["epoch"].as_i64()),
            (Some(5), Some(6), Some(1000), Some(1000)),
            "{p}"
        );
    }
    let out = common::run(&[&"put", &"-r", &"--owner", &"root", &img, &src, &"/again"], None);
    assert_eq!(out.status.code(), Some(2), "a bad owner is a usage error");
}

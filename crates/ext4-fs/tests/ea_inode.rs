//! Values in EA inodes (`ea_inode`): values too big for an xattr block, and
//! values that no longer fit beside the others, go to EA inodes as the
//! kernel puts them there; replacing, removing and deleting free them.
//! e2fsck checks the EA inodes (flag, reference count, value hash), the
//! kernel reads every value, and what the kernel stored the library reads
//! and frees.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{assert_clean, have_fsck, open_ro, open_rw};
use ext4_fs::{Filesystem, XattrMode};
use ext4_testkit::oracle::{LoopMount, can_loop_mount, dumpe2fs, have_tool};

fn value(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed) ^ (i >> 8) as u8).collect()
}

/// "Free inodes:" and "Free blocks:" per dumpe2fs.
fn free(img: &Path) -> (u64, u64) {
    let h = dumpe2fs(img, true);
    let num = |label: &str| -> u64 { h.lines().find_map(|l| l.strip_prefix(label)).unwrap().trim().parse().unwrap() };
    (num("Free inodes:"), num("Free blocks:"))
}

fn xattrs(fs: &Filesystem, path: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let ino = fs.lookup(path).unwrap();
    fs.xattrs_ino(ino).unwrap().into_iter().map(|x| (x.name, x.value)).collect()
}

/// Values as the kernel sees them (`getfattr`), by name.
fn kernel_value(path: &Path, name: &str) -> Vec<u8> {
    let out = Command::new("getfattr").args(["--only-values", "-n", name]).arg(path).output().unwrap();
    assert!(out.status.success(), "getfattr {name} {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn big_values_live_in_ea_inodes() {
    if !have_fsck() {
        return;
    }
    let img = common::format_ext4("ea-inode", 32 << 20, 4096, 256, "ea_inode");
    let baseline = {
        let mut fs = open_rw(&img.path);
        for p in ["/a", "/b", "/c"] {
            fs.write_file(p, b"data").unwrap();
        }
        fs.close().unwrap();
        free(&img.path)
    };
    let (huge, big, mid) = (value(1, 65536), value(2, 10_000), value(3, 1500));
    {
        let mut fs = open_rw(&img.path);
        let a = fs.lookup("/a").unwrap();
        fs.set_xattr(a, b"user.huge", &huge, XattrMode::Any).unwrap();
        fs.set_xattr(a, b"user.big", &big, XattrMode::Any).unwrap();
        fs.set_xattr(a, b"user.small", b"s", XattrMode::Any).unwrap();
        // Three values that fit a 4 KiB block only two at a time.
        let c = fs.lookup("/c").unwrap();
        for (i, n) in [b"user.m1", b"user.m2", b"user.m3"].iter().enumerate() {
            fs.set_xattr(c, *n, &value(10 + i as u8, mid.len()), XattrMode::Any).unwrap();
        }
        fs.close().unwrap();
    }
    assert_clean(&img.path);
    let (inodes, _) = free(&img.path);
    assert_eq!(inodes, baseline.0 - 3, "expected EA inodes for user.huge, user.big and one of /c's values");
    {
        let fs = open_ro(&img.path);
        let x = xattrs(&fs, "/a");
        assert_eq!(x[&b"user.huge".to_vec()], huge);
        assert_eq!(x[&b"user.big".to_vec()], big);
        assert_eq!(x[&b"user.small".to_vec()], b"s");
        assert_eq!(xattrs(&fs, "/c").len(), 3);
    }
    if ext4_testkit::require(can_loop_mount() && have_tool("getfattr"), "kernel check (needs root, loop devices and getfattr)") {
        let m = LoopMount::new(&img.path, "ro").unwrap();
        assert_eq!(kernel_value(&m.path().join("a"), "user.huge"), huge);
        assert_eq!(kernel_value(&m.path().join("a"), "user.big"), big);
        for (i, n) in ["user.m1", "user.m2", "user.m3"].iter().enumerate() {
            assert_eq!(kernel_value(&m.path().join("c"), n), value(10 + i as u8, mid.len()), "/c {n}");
        }
        m.unmount().unwrap();
    }

    // Replace, remove, delete: every EA inode goes.
    {
        let mut fs = open_rw(&img.path);
        let a = fs.lookup("/a").unwrap();
        fs.set_xattr(a, b"user.huge", &value(4, 20_000), XattrMode::Replace).unwrap();
        fs.set_xattr(a, b"user.big", b"now small", XattrMode::Replace).unwrap();
        fs.close().unwrap();
    }
    assert_clean(&img.path);
    assert_eq!(free(&img.path).0, baseline.0 - 2, "EA inodes left: user.huge's new value and /c's");
    {
        let mut fs = open_rw(&img.path);
        let a = fs.lookup("/a").unwrap();
        fs.remove_xattr(a, b"user.huge").unwrap();
        fs.remove_file("/c").unwrap();
        fs.close().unwrap();
    }
    assert_clean(&img.path);
    let (inodes, blocks) = free(&img.path);
    assert_eq!(inodes, baseline.0 + 1, "EA inodes or /c left behind");
    // /a's two small values fit its body; /c's data block is free again.
    assert_eq!(blocks, baseline.1 + 1, "blocks not returned");
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, setfattr)]
fn values_the_kernel_put_in_ea_inodes_are_read_and_freed() {
    if !have_fsck() || !ext4_testkit::require(can_loop_mount() && have_tool("setfattr"), "needs root, loop devices and attr") {
        return;
    }
    let img = common::format_ext4("ea-inode-k", 32 << 20, 4096, 256, "ea_inode");
    let baseline = free(&img.path);
    let v = value(9, 30_000);
    {
        let m = LoopMount::new(&img.path, "").unwrap();
        let f = m.path().join("k");
        std::fs::write(&f, b"kernel").unwrap();
        let hex = format!("0x{}", v.iter().map(|b| format!("{b:02x}")).collect::<String>());
        let out = Command::new("setfattr").args(["-n", "user.big", "-v", &hex]).arg(&f).output().unwrap();
        assert!(out.status.success(), "setfattr: {}", String::from_utf8_lossy(&out.stderr));
        m.unmount().unwrap();
    }
    assert_eq!(free(&img.path).0, baseline.0 - 2, "the kernel did not use an EA inode");
    let mut fs = open_rw(&img.path);
    assert_eq!(xattrs(&fs, "/k")[&b"user.big".to_vec()], v);
    fs.remove_file("/k").unwrap();
    fs.close().unwrap();
    assert_clean(&img.path);
    assert_eq!(free(&img.path), baseline, "the kernel's EA inode was not freed with its file");
}

/// Setting again a value that went to an EA inode because the block was
/// full (the retry after ENOSPC) frees the EA inode it replaces and charges
/// the owner once. Found by `attrs_model`.
#[ext4_testkit::oracle_test(e2fsprogs)]
fn replacing_a_value_moved_out_for_room_frees_the_old_ea_inode() {
    if !have_fsck() {
        return;
    }
    let img = common::format_ext4("ea-inode-retry", 16 << 20, 1024, 256, "ea_inode");
    {
        let mut fs = open_rw(&img.path);
        let d = fs.mkdir("/d", 0o755).unwrap();
        fs.set_xattr(d, b"user.a0", &value(0, 737), XattrMode::Any).unwrap();
        for _ in 0..2 {
            fs.set_xattr(d, b"security.a23mnopqrstu", &value(5, 201), XattrMode::Any).unwrap();
        }
        fs.close().unwrap();
    }
    assert_clean(&img.path);
    let fs = open_ro(&img.path);
    let x = xattrs(&fs, "/d");
    assert_eq!(x[&b"security.a23mnopqrstu".to_vec()], value(5, 201));
    assert_eq!(x[&b"user.a0".to_vec()], value(0, 737));
}

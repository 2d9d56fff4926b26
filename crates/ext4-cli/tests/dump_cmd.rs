//! `ext4 dump` against dumpe2fs: the same text, line for line (dumpe2fs
//! run with `TZ=UTC`, as `ext4 dump` prints times), with and without `-h`,
//! on every fixture image, on images the kernel built and aged through a
//! loop mount (one of them left needing recovery), and on mke2fs layouts
//! the fixtures do not cover; `--json` parses and agrees with the text.

mod common;

use std::path::Path;
use std::process::Command;

use common::{have_fsck, ok};
use ext4_testkit::aging::built::kernel_built;
use ext4_testkit::aging::config::{Scale, matrix};
use ext4_testkit::fixtures;
use ext4_testkit::oracle::can_loop_mount;

/// dumpe2fs's standard output with `args`, times in UTC.
fn dumpe2fs(image: &Path, args: &[&str]) -> String {
    let mut c = Command::new("dumpe2fs");
    c.env("TZ", "UTC").env_remove("DUMPE2FS_IGNORE_80COL").args(args);
    let out = c.arg(image).output().expect("dumpe2fs runs");
    assert!(out.status.success(), "dumpe2fs {}: {}", image.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("dumpe2fs prints text")
}

fn dump(image: &Path, args: &[&str]) -> String {
    let mut all: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"dump"];
    all.extend(args.iter().map(|a| a as &dyn AsRef<std::ffi::OsStr>));
    all.push(&image);
    String::from_utf8(ok(&all, None).stdout).expect("ext4 dump prints text")
}

/// The first differing line of two reports, with its neighbours.
fn first_difference(a: &str, b: &str) -> Option<String> {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let i = (0..la.len().max(lb.len())).find(|&i| la.get(i) != lb.get(i))?;
    let show = |l: &[&str]| l[i.saturating_sub(2)..(i + 3).min(l.len())].join("\n");
    Some(format!("line {}:\n--- dumpe2fs\n{}\n--- ext4 dump\n{}", i + 1, show(&la), show(&lb)))
}

/// Both reports of `image`, full and `-h`, equal dumpe2fs's (and the
/// full one in hexadecimal, `-x`).
fn check(image: &Path, what: &str) {
    for args in [&[][..], &["-h"][..], &["-x"][..]] {
        let want = dumpe2fs(image, args);
        let got = dump(image, args);
        if let Some(d) = first_difference(&want, &got) {
            panic!("{what} ({}): ext4 dump {args:?} differs from dumpe2fs at {d}", image.display());
        }
    }
    check_json(image, what);
}

/// The JSON report parses and carries what the text says.
fn check_json(image: &Path, what: &str) {
    let v: serde_json::Value = serde_json::from_str(&dump(image, &["--json"])).unwrap_or_else(|e| panic!("{what}: JSON: {e}"));
    let text = dumpe2fs(image, &[]);
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)).map(|s| s.trim().to_string());
    assert_eq!(v["superblock"]["block_count"].as_u64().map(|n| n.to_string()), field("Block count:"), "{what}");
    assert_eq!(v["superblock"]["free_inodes"].as_u64().map(|n| n.to_string()), field("Free inodes:"), "{what}");
    let groups = v["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), text.lines().filter(|l| l.starts_with("Group ") && l.contains(": (Blocks ")).count(), "{what}");
    let free: u64 = groups.iter().map(|g| g["free_blocks"].as_u64().expect("a number")).sum();
    let first = text.lines().find(|l| l.contains(" free blocks, ") || l.contains(" free clusters, ")).expect("a group line");
    assert!(first.trim().starts_with(&groups[0]["free_blocks"].to_string()), "{what}: {first}");
    assert!(free > 0, "{what}");
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn every_fixture_dumps_as_dumpe2fs() {
    if !have_fsck() {
        return;
    }
    for p in fixtures::PROFILES {
        if let Some(why) = fixtures::unavailable(p) {
            if !ext4_testkit::require(false, &format!("fixture {}: {why}", p.name)) {
                continue;
            }
        }
        let (image, _) = fixtures::image(p).expect("fixture image");
        check(&image, p.name);
    }
}

/// Images the kernel built (htrees, extent trees, shared xattr blocks, EA
/// inodes, orphan file, 1 KiB blocks, ext2, no checksums, no flex_bg),
/// then one more mounted and shut down so that it needs recovery.
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn kernel_built_images_dump_as_dumpe2fs() {
    if !have_fsck() || !ext4_testkit::require(can_loop_mount(), "kernel-built images need root and loop devices") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let all = matrix();
    for name in ["ext4-1k", "ext2", "seed-orphanfile", "largedir-eainode", "nocsum", "noflex"] {
        let cfg = all.iter().find(|c| c.name == name).expect("a configuration");
        let image = dir.path().join(format!("{name}.img"));
        kernel_built(cfg, Scale::Quick, 7, &image).unwrap_or_else(|e| panic!("{name}: {e}"));
        check(&image, name);
        std::fs::remove_file(&image).expect("remove image");
    }
    let image = dir.path().join("crashed.img");
    let cfg = all.iter().find(|c| c.name == "ext4-4k").expect("a configuration");
    kernel_built(cfg, Scale::Quick, 8, &image).expect("kernel build");
    shut_down_after_writes(&image);
    let text = dump(&image, &["-h"]);
    assert!(text.lines().any(|l| l.starts_with("Filesystem features:") && l.contains("needs_recovery")), "{text}");
    check(&image, "needs recovery");
}

/// Mounts `image`, writes, and shuts the filesystem down with its log
/// flushed (`EXT4_IOC_SHUTDOWN`): the image needs recovery.
fn shut_down_after_writes(image: &Path) {
    let m = ext4_testkit::oracle::LoopMount::new(image, "").expect("mount");
    for i in 0..50 {
        std::fs::write(m.path().join(format!("late{i}")), vec![i as u8; 5000]).expect("write");
    }
    let script = "import fcntl,os,struct,sys; fd=os.open(sys.argv[1],os.O_RDONLY); fcntl.ioctl(fd,0x8004587d,struct.pack('I',1))";
    let out = Command::new("python3").arg("-c").arg(script).arg(m.path()).output().expect("python3 runs");
    assert!(out.status.success(), "shutdown ioctl: {}", String::from_utf8_lossy(&out.stderr));
    common::unmount(m);
}

/// Layouts the fixtures leave out: bigalloc, meta_bg, sparse_super2, no
/// flex_bg with 1 KiB blocks, RAID hints, a label, mount options, MMP.
#[ext4_testkit::oracle_test(e2fsprogs)]
fn other_layouts_dump_as_dumpe2fs() {
    if !have_fsck() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let layouts: &[&[&str]] = &[
        &["-t", "ext4", "-O", "bigalloc", "-C", "16384"],
        &["-t", "ext4", "-O", "meta_bg,^resize_inode", "-b", "1024"],
        &["-t", "ext4", "-O", "sparse_super2,^flex_bg", "-b", "1024"],
        &["-t", "ext4", "-O", "^metadata_csum,uninit_bg,^64bit", "-E", "stride=4,stripe_width=16", "-L", "a label"],
        &["-t", "ext4", "-O", "mmp,quota,fast_commit", "-g", "4096", "-N", "3000"],
        &["-t", "ext3", "-O", "^sparse_super,^resize_inode", "-r", "1", "-m", "0"],
        // Features the library cannot read files with: the report still works.
        &["-t", "ext4", "-O", "casefold,encrypt,project,quota"],
    ];
    for (i, args) in layouts.iter().enumerate() {
        let image = dir.path().join(format!("l{i}.img"));
        let out = Command::new("mke2fs").args(["-q", "-F"]).args(*args).arg(&image).arg("96M").output().expect("mke2fs runs");
        assert!(out.status.success(), "mke2fs {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let out = Command::new("tune2fs").args(["-o", "journal_data,nobarrier", "-E", "mount_opts=nodelalloc"]).arg(&image).output();
        assert!(out.expect("tune2fs runs").status.success());
        check(&image, &format!("mke2fs {args:?}"));
    }
}

//! Link-count limits through `ext4 mount`, against the kernel's ext4 on
//! the same kind of image: a file takes 65,000 links, then EMLINK; a
//! directory's count is exact up to 65,000 and then becomes 1 under
//! `dir_nlink`, or mkdir fails with EMLINK without it. e2fsck stays silent
//! and the kernel reads the counts FUSE left. (pjdfstest's
//! `link::link_count_max` cannot run on a FUSE mount: glibc's
//! `pathconf(_PC_LINK_MAX)` knows no limit for FUSE's `f_type`, so the suite
//! skips it; this test stands in for it.)

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ext4_testkit::oracle::{LoopMount, can_loop_mount, e2fsck_problems, have_e2fsprogs};

const EMLINK: i32 = 31;
/// Enough subdirectories to pass the limit with either feature set.
const SUBDIRS: usize = 65_005;

/// What a mount did at the limits.
#[derive(Debug, PartialEq)]
struct Limits {
    /// The file's link count when `link` failed, and its errno.
    file_links: (u64, Option<i32>),
    /// Subdirectories made before mkdir failed (or all of them), and its errno.
    subdirs: (usize, Option<i32>),
    /// The parent's count with 64,998 subdirectories (2 + 64,998 = the limit).
    nlink_at_limit: u64,
    /// The parent's count at the end.
    nlink_after: u64,
}

fn limits(root: &Path) -> Limits {
    let file = root.join("f");
    std::fs::write(&file, b"x").unwrap();
    std::fs::create_dir(root.join("links")).unwrap();
    let mut file_err = None;
    for i in 1..=65_001 {
        if let Err(e) = std::fs::hard_link(&file, root.join("links").join(i.to_string())) {
            file_err = e.raw_os_error();
            break;
        }
    }
    let parent = root.join("many");
    std::fs::create_dir(&parent).unwrap();
    let (mut made, mut dir_err, mut nlink_at_limit) = (0, None, 0);
    for i in 0..SUBDIRS {
        if let Err(e) = std::fs::create_dir(parent.join(i.to_string())) {
            dir_err = e.raw_os_error();
            break;
        }
        made += 1;
        if made == 64_998 {
            nlink_at_limit = std::fs::metadata(&parent).unwrap().nlink();
        }
    }
    Limits {
        file_links: (std::fs::metadata(&file).unwrap().nlink(), file_err),
        subdirs: (made, dir_err),
        nlink_at_limit,
        nlink_after: std::fs::metadata(&parent).unwrap().nlink(),
    }
}

fn mke2fs(image: &Path, features: &str) {
    let _ = std::fs::remove_file(image);
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-b", "1024", "-N", "140000", "-O", features])
        .arg(image)
        .arg("180M")
        .output()
        .unwrap();
    assert!(out.status.success(), "mke2fs: {}", String::from_utf8_lossy(&out.stderr));
}

fn check(features: &str, dir: &Path) {
    let started = Instant::now();
    let (kimg, fimg) = (dir.join("kernel.img"), dir.join("fuse.img"));
    mke2fs(&kimg, features);
    mke2fs(&fimg, features);
    let m = LoopMount::new(&kimg, "").expect("kernel mounts");
    let kernel = limits(m.path());
    m.unmount().unwrap();
    let mnt: PathBuf = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let fuse = common::with_fuse(&fimg, &mnt, "", limits);
    assert_eq!(kernel.file_links, (65_000, Some(EMLINK)), "-O {features}: the kernel's own limit");
    assert_eq!(fuse, kernel, "-O {features}: ext4 mount (left) against the kernel (right)");
    if let Some(p) = e2fsck_problems(&fimg) {
        panic!("-O {features}: e2fsck after the FUSE session:\n{p}");
    }
    let m = LoopMount::new(&fimg, "ro").expect("kernel mounts the FUSE image");
    assert_eq!(std::fs::metadata(m.path().join("many")).unwrap().nlink(), kernel.nlink_after, "-O {features}: the kernel's view");
    assert_eq!(std::fs::metadata(m.path().join("f")).unwrap().nlink(), kernel.file_links.0);
    m.unmount().unwrap();
    println!("-O {features}: {kernel:?} on both, {:.1?}", started.elapsed());
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, fuse)]
fn link_limits_match_the_kernel() {
    if !ext4_testkit::require(
        can_loop_mount() && Path::new("/dev/fuse").exists() && have_e2fsprogs(),
        "needs root, loop mounts, /dev/fuse and e2fsprogs",
    ) {
        return;
    }
    let dir_tmp = ext4_testkit::scratch_dir("ext4-fuse-links");
    let dir = dir_tmp.path().to_path_buf();
    for features in ["dir_nlink", "^dir_nlink"] {
        check(features, &dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

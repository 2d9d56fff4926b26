//! Multi-mount protection against the kernel: while the kernel has an
//! `mmp` filesystem mounted (its kmmpd thread advancing the MMP sequence),
//! a writable open is refused and a read-only one works; after the
//! unmount a writable open takes the block, keeps the kernel from mounting
//! while it holds it, gives it back clean at close (as `debugfs dump_mmp`
//! shows), and e2fsck is silent.

use std::path::Path;
use std::process::Command;

use ext4_fs::{Error, Filesystem, OpenOptions};
use ext4_testkit::oracle::{LoopMount, assert_fsck_clean, can_loop_mount, debugfs, have_e2fsprogs};

/// The MMP sequence `debugfs dump_mmp` reports.
fn mmp_sequence(img: &Path) -> String {
    let out = debugfs(img, "dump_mmp");
    let line = out.lines().find_map(|l| l.strip_prefix("sequence: ")).unwrap_or_else(|| panic!("no sequence in:\n{out}"));
    line.trim().to_string()
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn writes_are_refused_while_the_kernel_has_it_mounted() {
    if !ext4_testkit::require(have_e2fsprogs() && can_loop_mount(), "needs e2fsprogs, root and loop devices") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("mmp.img");
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-O", "mmp", "-E", "mmp_update_interval=1"])
        .arg(&img)
        .arg("64M")
        .output()
        .unwrap();
    assert!(out.status.success(), "mke2fs: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mmp_sequence(&img), "ff4d4d50", "mke2fs leaves the block clean");

    let m = LoopMount::new(&img, "").expect("the kernel mounts it");
    std::fs::write(m.path().join("from-the-kernel"), b"k").unwrap();
    match Filesystem::open_path(&img, OpenOptions::read_write()) {
        Err(Error::Busy(why)) => println!("refused while mounted: {why}"),
        Err(e) => panic!("refused for the wrong reason: {e}"),
        Ok(_) => panic!("a writable open went through while the kernel has the filesystem mounted"),
    }
    Filesystem::open_path(&img, OpenOptions::read_only()).expect("a read-only open needs no MMP");
    m.unmount().unwrap();
    assert_eq!(mmp_sequence(&img), "ff4d4d50", "the kernel leaves the block clean");

    let mut fs = Filesystem::open_path(&img, OpenOptions::read_write()).expect("writable open after the unmount");
    assert_eq!(mmp_sequence(&img), "e24d4d50", "held with the fsck sequence while open");
    assert!(LoopMount::new(&img, "").is_err(), "the kernel must not mount it while the library holds it");
    fs.write_file(b"/from-the-library", b"written while holding the MMP block").unwrap();
    fs.close().unwrap();
    assert_eq!(mmp_sequence(&img), "ff4d4d50", "given back clean at close");
    assert_fsck_clean(&img);

    let m = LoopMount::new(&img, "").expect("the kernel mounts it again");
    assert_eq!(std::fs::read(m.path().join("from-the-library")).unwrap(), b"written while holding the MMP block");
    m.unmount().unwrap();
}

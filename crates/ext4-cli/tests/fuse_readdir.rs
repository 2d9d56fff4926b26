//! Directory listings through `ext4 mount` that take many READDIR requests:
//! each request resumes after the last entry of the one before (its
//! position cookie) and reads the directory from that block on. A listing
//! of a big directory, linear on 1 KiB blocks and an htree, returns every
//! name exactly once, before and after removals, and the kernel's view
//! agrees with a kernel mount of the same image afterwards.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect()
}

/// Every name once: the listing has no duplicates and equals `want`.
fn assert_lists(dir: &Path, want: &BTreeSet<String>, when: &str) {
    let got = names(dir);
    let set: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(got.len(), set.len(), "{when}: a name listed twice");
    assert_eq!(&set, want, "{when}: the listing differs");
}

#[ext4_testkit::oracle_test(e2fsprogs, root, fuse)]
fn big_directories_list_every_name_once() {
    let root = common::is_root();
    if !ext4_testkit::require(root && Path::new("/dev/fuse").exists() && common::have_fsck(), "needs root, /dev/fuse and e2fsprogs") {
        return;
    }
    let dir_tmp = ext4_testkit::scratch_dir("ext4-fuse-readdir");
    let dir = dir_tmp.path().to_path_buf();
    let img = dir.join("img");
    let mk = Command::new("mke2fs").args(["-q", "-F", "-t", "ext4", "-b", "1024", "-N", "8192"]).arg(&img).arg("32M").status().unwrap();
    assert!(mk.success());
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();

    let mut want = BTreeSet::new();
    common::with_fuse(&img, &mnt, "", |mnt| {
        // Names of 40-odd bytes: a 1 KiB block holds about 20, one READDIR
        // reply a few hundred, so 3000 names take many of both.
        let big = mnt.join("big");
        std::fs::create_dir(&big).unwrap();
        for i in 0..3000 {
            let name = format!("entry-with-a-name-long-enough-to-fill-{i:05}");
            std::fs::write(big.join(&name), b"").unwrap();
            want.insert(name);
        }
        assert_lists(&big, &want, "after creating 3000 names");
        for i in (0..3000).step_by(3) {
            let name = format!("entry-with-a-name-long-enough-to-fill-{i:05}");
            std::fs::remove_file(big.join(&name)).unwrap();
            want.remove(&name);
        }
        assert_lists(&big, &want, "after removing a third");
    });
    common::assert_clean(&img, "after listing through the mount");

    // The kernel reads the same directory.
    if ext4_testkit::require(ext4_testkit::oracle::can_loop_mount(), "no loop mounts: the kernel's listing") {
        let kernel = ext4_testkit::oracle::LoopMount::new(&img, "ro").expect("kernel mounts");
        assert_lists(&kernel.path().join("big"), &want, "through the kernel");
        common::unmount(kernel);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

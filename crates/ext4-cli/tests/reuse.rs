//! The reproductions of issue 18, item 1: freed space is reused within one
//! session, through `ext4 batch` and through `ext4 mount`, as the kernel
//! reuses it (its commit makes the frees durable first).
//!
//! * `write /f --from blob20` eight times in one batch on a 64 MiB image
//!   (ext4, ext4 without a journal, ext2), and eight `write` + `rm` pairs.
//! * Through `ext4 mount`: `cp` of 20 MiB and `rm`, fifty times on a 64 MiB
//!   image; `df` shows the space free again after each `rm`, once the
//!   kernel has forgotten the inode (the kernel's ext4 frees an unlinked
//!   inode at eviction too); `e2fsck -fn` silent after the unmount.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{assert_clean, have_fsck, is_root, ok, run, with_fuse};
use ext4_fs::{Filesystem, OpenOptions};
use ext4_testkit::noise as blob;

const MIB: usize = 1 << 20;

fn mke2fs(img: &Path, args: &[&str]) {
    let out = Command::new("mke2fs").args(["-q", "-F"]).args(args).arg(img).arg("64M").output().expect("mke2fs runs");
    assert!(out.status.success(), "mke2fs: {}", String::from_utf8_lossy(&out.stderr));
}

const KINDS: [(&str, &[&str]); 3] = [
    ("ext4", &["-t", "ext4", "-b", "4096"]),
    ("ext4-nojournal", &["-t", "ext4", "-b", "4096", "-O", "^has_journal"]),
    ("ext2", &["-t", "ext2", "-b", "4096"]),
];

#[ext4_testkit::oracle_test(e2fsprogs)]
fn batch_overwrites_a_20_mib_file_eight_times() {
    if !have_fsck() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let blob20 = dir.path().join("blob20");
    std::fs::write(&blob20, blob(20, 20 * MIB)).unwrap();
    let from = blob20.to_str().unwrap();
    for (name, args) in KINDS {
        let img = dir.path().join(format!("{name}.img"));
        mke2fs(&img, args);
        let script = format!("write /f --from {from}\n").repeat(8);
        ok(&[&"batch", &img], Some(script.as_bytes()));
        assert_clean(&img, &format!("{name}: after eight overwrites"));

        let pairs = format!("write /g --from {from}\nrm /g\n").repeat(8);
        ok(&[&"batch", &img], Some(pairs.as_bytes()));
        assert_clean(&img, &format!("{name}: after eight write and rm pairs"));
        let fs = Filesystem::open_path(&img, OpenOptions::read_only()).unwrap();
        assert!(fs.read("/f").unwrap() == blob(20, 20 * MIB), "{name}: /f holds the blob");
        assert!(fs.metadata("/g").is_err(), "{name}: /g is removed");

        // What truly does not fit still fails, whole, with ENOSPC.
        let blob60 = dir.path().join("blob60");
        std::fs::write(&blob60, blob(60, 60 * MIB)).unwrap();
        let out = run(&[&"batch", &img], Some(format!("rm /f\nwrite /h --from {}\n", blob60.display()).as_bytes()));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("line 2") && err.contains("(ENOSPC)"), "{name}: {err}");
        assert_clean(&img, &format!("{name}: after a write that does not fit"));
    }
}

/// `df`'s numbers for a mount: (total, available) blocks.
fn df(dir: &Path) -> (u64, u64) {
    let out = Command::new("stat").args(["-f", "-c", "%b %a"]).arg(dir).output().expect("stat -f runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u64> = text.split_whitespace().map(|x| x.parse().unwrap()).collect();
    (v[0], v[1])
}

#[ext4_testkit::oracle_test(e2fsprogs, root, fuse)]
fn fuse_copies_and_removes_a_20_mib_file_fifty_times() {
    if !have_fsck() || !ext4_testkit::require(is_root() && Path::new("/dev/fuse").exists(), "needs root and /dev/fuse") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let blob20 = dir.path().join("blob20");
    std::fs::write(&blob20, blob(21, 20 * MIB)).unwrap();
    for (name, args) in [KINDS[0], KINDS[2]] {
        let img = dir.path().join(format!("{name}.img"));
        mke2fs(&img, args);
        let free = |img: &Path| Filesystem::open_path(img, OpenOptions::read_only()).unwrap().statfs().free_blocks;
        let before = free(&img);
        let mnt = dir.path().join("mnt");
        std::fs::create_dir_all(&mnt).unwrap();
        with_fuse(&img, &mnt, "", |m| {
            let (_, avail0) = df(m);
            for i in 0..50 {
                let out = Command::new("cp").arg(&blob20).arg(m.join("f")).output().unwrap();
                assert!(out.status.success(), "{name}: cp {}: {}", i + 1, String::from_utf8_lossy(&out.stderr));
                let (total, avail) = df(m);
                assert!(avail + 20 * MIB as u64 / 4096 <= avail0 + 8, "{name}: df after cp {}: {avail} of {total} available", i + 1);
                std::fs::remove_file(m.join("f")).unwrap();
                // The blocks go when the kernel forgets the inode (it queues
                // FORGET behind other requests): wait for that, briefly.
                let since = Instant::now();
                let (total, avail) = loop {
                    let (total, avail) = df(m);
                    if avail + 8 >= avail0 || since.elapsed() > Duration::from_secs(5) {
                        break (total, avail);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                };
                assert!(avail + 8 >= avail0, "{name}: df after rm {}: {avail} of {total} available, {avail0} at first", i + 1);
            }
            let out = Command::new("sync").arg("-f").arg(m).output().unwrap();
            assert!(out.status.success());
        });
        assert_clean(&img, &format!("{name}: after fifty cp and rm through ext4 mount"));
        let fs = Filesystem::open_path(&img, OpenOptions::read_only()).unwrap();
        assert!(fs.metadata("/f").is_err());
        assert_eq!(fs.statfs().free_blocks, before, "{name}: free blocks after the loop");
    }
}

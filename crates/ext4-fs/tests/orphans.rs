//! Orphan records written by the library: a file unlinked while open, and
//! big truncates and deletes done in steps, are recorded on the orphan
//! list (no `orphan_file`) or in the orphan file, so that a crash leaves
//! work the next mount finishes. The crash is a copy of the image taken
//! after `sync`; the kernel (and the library) mount that copy, process the
//! orphans, and e2fsck is then silent with every block accounted for.

mod common;

use std::path::Path;

use common::{Kind, have_fsck, open_ro, open_rw};
use ext4_mkfs::{FsType, Profile};
use ext4_testkit::oracle::{LoopMount, can_loop_mount, dumpe2fs};

const KINDS: [Kind; 2] = [
    Kind { name: "orph-list", fs_type: FsType::Ext4, block_size: 4096, features: "^orphan_file", profile: &Profile::UPSTREAM, mke2fs: &[] },
    Kind { name: "orph-file", fs_type: FsType::Ext4, block_size: 1024, features: "", profile: &Profile::UPSTREAM, mke2fs: &[] },
];

fn data(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(13) ^ seed).collect()
}

/// "Free blocks:" and "Free inodes:" of the superblock, per dumpe2fs.
fn free_counts(img: &Path) -> (u64, u64) {
    let h = dumpe2fs(img, true);
    let num = |label: &str| -> u64 {
        let line = h.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no {label} in:\n{h}"));
        line[label.len()..].trim().parse().unwrap()
    };
    (num("Free blocks:"), num("Free inodes:"))
}

/// A copy of `img` as it is now: what a crash at this instant leaves.
fn crash_copy(img: &Path, tag: &str) -> common::Scratch {
    let scratch = common::Scratch::new(&format!("orphans-{tag}.img"));
    std::fs::copy(img, &scratch.path).unwrap();
    scratch
}

/// Mounts a crash copy with the kernel (journal replay, orphan cleanup) and
/// unmounts it; then e2fsck must be silent.
fn kernel_recovers(copy: &Path) -> bool {
    if !ext4_testkit::require(can_loop_mount(), "kernel recovery (needs root and loop devices)") {
        return false;
    }
    let m = LoopMount::new(copy, "").expect("kernel mounts the crash copy");
    m.unmount().unwrap();
    common::assert_clean(copy);
    true
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn open_unlinked_file_is_an_orphan_until_released() {
    if !have_fsck() {
        return;
    }
    for kind in &KINDS {
        let img = common::format(kind, 32 << 20, "open");
        let before = free_counts(&img.path);
        let mut fs = open_rw(&img.path);
        let ino = fs.write_file("/gone", &data(1, 300_000)).unwrap();
        fs.pin(ino);
        fs.remove_file("/gone").unwrap();
        fs.write_at(ino, 300_000, &data(2, 10_000)).unwrap();
        fs.sync().unwrap();
        let crashed = crash_copy(&img.path, &format!("{}-k", kind.name));
        let crashed_lib = crash_copy(&img.path, &format!("{}-l", kind.name));
        // Still readable through the handle.
        let mut buf = [0u8; 20];
        assert_eq!(fs.read_at(ino, 299_990, &mut buf).unwrap(), 20);
        assert_eq!(buf[..], [&data(1, 300_000)[299_990..], &data(2, 10)[..]].concat());
        fs.release(ino).unwrap();
        fs.close().unwrap();
        common::assert_clean(&img.path);
        assert_eq!(free_counts(&img.path), before, "{}: space not returned after release", kind.name);

        if kernel_recovers(&crashed.path) {
            assert_eq!(free_counts(&crashed.path), before, "{}: the kernel did not free the orphan", kind.name);
        }
        open_rw(&crashed_lib.path).close().unwrap();
        common::assert_clean(&crashed_lib.path);
        assert_eq!(free_counts(&crashed_lib.path), before, "{}: the library did not free the orphan", kind.name);
    }
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn big_truncate_and_delete_go_in_steps_under_an_orphan_record() {
    if !have_fsck() {
        return;
    }
    for kind in &KINDS {
        let img = common::format(kind, 32 << 20, "steps");
        let before = free_counts(&img.path);
        let content = data(3, 3 << 20);
        {
            let mut fs = open_rw(&img.path);
            fs.write_file("/big", &content).unwrap();
            fs.write_file("/doomed", &content[..2 << 20]).unwrap();
            fs.close().unwrap();
        }
        let mut fs = open_rw(&img.path);
        fs.set_transaction_limits(4, 64);
        let ino = fs.lookup("/big").unwrap();
        fs.truncate(ino, 5000).unwrap();
        fs.remove_file("/doomed").unwrap();
        fs.sync().unwrap();
        fs.close().unwrap();
        common::assert_clean(&img.path);
        let ro = open_ro(&img.path);
        assert_eq!(ro.read("/big").unwrap(), &content[..5000]);
        assert!(ro.lookup("/doomed").is_err());
        drop(ro);
        let (free_blocks, free_inodes) = free_counts(&img.path);
        let bs = u64::from(kind.block_size);
        // What is left: /big's 5000 bytes (and no map block).
        assert_eq!(free_blocks, before.0 - 5000u64.div_ceil(bs), "{}", kind.name);
        assert_eq!(free_inodes, before.1 - 1, "{}", kind.name);
    }
}

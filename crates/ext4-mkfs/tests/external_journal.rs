//! External journal devices as mke2fs 1.47.0 makes them (`-O
//! journal_dev`, with and without metadata_csum, 1, 2 and 4 KiB blocks),
//! byte for byte with the UUID, hash seed and time fixed; a filesystem on
//! one (`-J device=`) takes its block size. (Filesystems on a journal
//! device compared with mke2fs' need a loop device: ext4-cli's
//! `tests/journal_device.rs`.)

mod common;

use std::process::Command;

use common::*;
use ext4_mkfs::Profile;

const M: u64 = 1 << 20;

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn journal_devices_are_byte_identical() {
    if !have_e2fsprogs() {
        return;
    }
    for args in [
        &["-t", "ext4", "-O", "journal_dev", "-b", "4096"][..],
        &["-t", "ext4", "-O", "journal_dev", "-b", "1024"],
        &["-t", "ext4", "-O", "journal_dev", "-b", "2048", "-L", "jlabel"],
        &["-O", "journal_dev", "-b", "4096"],
        &["-t", "ext4", "-O", "journal_dev"],
    ] {
        for size in [8 * M, 33 * M] {
            let theirs = TempFile::sparse("jdev-mke2fs.img", size);
            let ours = TempFile::sparse("jdev-ours.img", size);
            let args = strings(args);
            run_mke2fs(theirs.path(), &Profile::DEBIAN, &args, None).expect("mke2fs");
            let opts = options_from_args(Profile::DEBIAN, &args, None).expect("options");
            run_ours(ours.path(), &opts).expect("our format");
            let d = byte_differences(ours.path(), theirs.path(), 16);
            assert!(d.is_empty(), "{args:?}, {size} bytes: images differ at {d:?}");
        }
    }
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn a_journal_device_of_another_block_size_is_refused() {
    if !have_e2fsprogs() {
        return;
    }
    let journal = TempFile::sparse("jdev-1k.img", 8 * M);
    run_mke2fs(journal.path(), &Profile::DEBIAN, &strings(&["-O", "journal_dev", "-b", "1024"]), None).expect("mke2fs");
    let fs = TempFile::sparse("fs-4k.img", 64 * M);
    let args = strings(&["-t", "ext4", "-b", "4096", "-J", &format!("device={}", journal.path().display())]);
    let opts = options_from_args(Profile::DEBIAN, &args, None).expect("options");
    let err = run_ours(fs.path(), &opts).expect_err("refused");
    assert!(matches!(err, ext4_mkfs::MkfsError::JournalDevice { .. }), "{err}");
    // Without -b the filesystem takes the device's block size.
    let args = strings(&["-t", "ext4", "-J", &format!("device={}", journal.path().display())]);
    let opts = options_from_args(Profile::DEBIAN, &args, None).expect("options");
    let r = run_ours(fs.path(), &opts).expect("format");
    assert_eq!(r.layout.block_size, 1024);
    let out = Command::new("e2fsck").arg("-fn").arg("-j").arg(journal.path()).arg(fs.path()).output().expect("e2fsck");
    assert!(out.status.success(), "e2fsck -fn -j: {}", String::from_utf8_lossy(&out.stdout));
}

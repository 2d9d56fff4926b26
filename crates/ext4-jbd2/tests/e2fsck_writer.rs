//! The writer against e2fsck: transactions encoded by this crate into a
//! fresh mke2fs image's journal are replayed by `e2fsck -fy -E
//! journal_only`; the blocks home must hold what was committed (escaped
//! block included, revoked block untouched), `e2fsck -fn` must be clean,
//! and this crate's own recovery of a copy must give the same image.

mod common;

use std::path::Path;

use common::*;
use ext4_blockdev::{BlockDevice, FileDevice};
use ext4_jbd2::format::{CHECKSUM_CRC32C, COMPAT_CHECKSUM, INCOMPAT_CSUM_V2, INCOMPAT_CSUM_V3};
use ext4_jbd2::{CommitTime, DeviceJournal, JournalWriter, read_superblock, set_mount_features, write_superblock};
use ext4_ondisk::{Incompat, RoCompat, Superblock};
use zerocopy::IntoBytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Csum {
    /// As the kernel mounts it: v3 with metadata_csum, none without.
    Mount,
    None,
    V1,
    V2,
}

struct Case {
    name: &'static str,
    mkfs: &'static [&'static str],
    csum: Csum,
    /// Put a transaction across the end of the log.
    wrap: bool,
}

const CASES: &[Case] = &[
    Case { name: "4k metadata_csum (csum v3)", mkfs: &["-b", "4096"], csum: Csum::Mount, wrap: false },
    Case { name: "4k metadata_csum, wrapping", mkfs: &["-b", "4096"], csum: Csum::Mount, wrap: true },
    Case { name: "4k csum v2, wrapping", mkfs: &["-b", "4096"], csum: Csum::V2, wrap: true },
    Case { name: "1k metadata_csum, wrapping", mkfs: &["-b", "1024"], csum: Csum::Mount, wrap: true },
    Case { name: "4k ^64bit ^metadata_csum", mkfs: &["-b", "4096", "-O", "^64bit,^metadata_csum"], csum: Csum::None, wrap: true },
    Case { name: "4k ^64bit ^metadata_csum, csum v1", mkfs: &["-b", "4096", "-O", "^64bit,^metadata_csum"], csum: Csum::V1, wrap: true },
    Case { name: "1k ^metadata_csum, csum v1", mkfs: &["-b", "1024", "-O", "^metadata_csum"], csum: Csum::V1, wrap: false },
    Case { name: "4k 16 MiB journal", mkfs: &["-b", "4096", "-J", "size=16"], csum: Csum::Mount, wrap: false },
];

/// `n` free blocks from `goal` on, found by debugfs' `ffb`.
fn free_blocks(img: &Path, n: usize, goal: u64) -> Vec<u64> {
    let out = debugfs(img, &format!("ffb {n} {goal}"));
    let list: Vec<u64> = out
        .split("Free blocks found:")
        .nth(1)
        .unwrap_or_else(|| panic!("ffb: {out}"))
        .split_whitespace()
        .map_while(|w| w.parse().ok())
        .collect();
    assert_eq!(list.len(), n, "ffb: {out}");
    list
}

fn pattern(bs: u32, seed: u8, magic: bool) -> Vec<u8> {
    let mut b: Vec<u8> = (0..bs as usize).map(|i| seed.wrapping_mul(31).wrapping_add((i % 251) as u8)).collect();
    if magic {
        b[..4].copy_from_slice(&0xC03B_3998u32.to_be_bytes());
    }
    b
}

fn set_journal_csum(sb: &mut ext4_jbd2::format::JournalSuperblock, csum: Csum) {
    let incompat = sb.s_feature_incompat.get() & !(INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3);
    match csum {
        Csum::Mount => return,
        Csum::None => sb.s_feature_incompat.set(incompat),
        Csum::V1 => {
            sb.s_feature_incompat.set(incompat);
            sb.s_feature_compat.set(sb.s_feature_compat.get() | COMPAT_CHECKSUM);
        }
        Csum::V2 => {
            sb.s_feature_incompat.set(incompat | INCOMPAT_CSUM_V2);
            sb.s_checksum_type = CHECKSUM_CRC32C;
        }
    }
    sb.update_checksum();
}

/// Commits the case's transactions into `img`'s journal; returns the
/// expected content of every touched home block.
fn write_transactions(img: &Path, case: &Case) -> Vec<(u64, Vec<u8>)> {
    let fs_sb = superblock(img);
    let bs = block_size(img);
    let free = free_blocks(img, 40, u64::from(fs_sb.s_blocks_count_lo.get()) / 2);
    let (runs, _) = journal_runs(img);
    let dev = FileDevice::open(img, false).unwrap();
    let mut j = DeviceJournal::new(&dev, bs, runs).unwrap();

    let mut jsb = read_superblock(&mut j, bs).unwrap();
    let bit64 = fs_sb.s_feature_incompat.get() & Incompat::BIT64.bits() != 0;
    let csum = fs_sb.s_feature_ro_compat.get() & RoCompat::METADATA_CSUM.bits() != 0;
    set_mount_features(&mut jsb, bit64, csum);
    set_journal_csum(&mut jsb, case.csum);
    write_superblock(&mut j, bs, &jsb).unwrap();
    let mut w = JournalWriter::open(&mut j, bs).unwrap();
    let mut time = CommitTime::now();

    if case.wrap {
        // A filler transaction of blocks whose home content it repeats,
        // checkpointed, so the next transactions start near the log end.
        let target = w.geometry().log_blocks() - 8;
        let filler_len = (1..target).rev().find(|&k| w.blocks_needed(k, 0) <= target).unwrap();
        let filler: Vec<(u64, Vec<u8>)> = std::iter::repeat_n(free[39], filler_len as usize).map(|b| (b, vec![0; bs as usize])).collect();
        w.commit(&mut j, &filler, &[], time).unwrap();
        w.checkpoint(&mut j).unwrap();
        time.sec += 1;
    }
    let mut expect: Vec<(u64, Vec<u8>)> = Vec::new();
    let tx1: Vec<(u64, Vec<u8>)> = (0..12).map(|i| (free[i], pattern(bs, i as u8, i == 4))).collect();
    w.commit(&mut j, &tx1, &[], time).unwrap();
    time.sec += 1;
    // Rewrite two blocks (one now escaped), revoke a third: its home stays zero.
    let tx2 = vec![(free[1], pattern(bs, 101, true)), (free[2], pattern(bs, 102, false))];
    w.commit(&mut j, &tx2, &[free[3]], time).unwrap();
    time.sec += 1;
    // A block revoked in an earlier transaction and written again later.
    let tx3 = vec![(free[20], pattern(bs, 120, false))];
    w.commit(&mut j, &tx3, &[free[5]], time).unwrap();
    time.sec += 1;
    let tx4 = vec![(free[5], pattern(bs, 105, false))];
    w.commit(&mut j, &tx4, &[], time).unwrap();
    if case.wrap {
        assert!(w.head() < 100, "{}: the log did not wrap (head {})", case.name, w.head());
    }
    for (b, d) in tx1.iter().chain(&tx2).chain(&tx3).chain(&tx4) {
        expect.retain(|(x, _)| x != b);
        expect.push((*b, d.clone()));
    }
    expect.retain(|(b, _)| *b != free[3]);
    expect.push((free[3], vec![0; bs as usize]));

    // The kernel keeps needs_recovery set while a journal is in use.
    let mut buf = vec![0u8; 1024];
    dev.read_at(1024, &mut buf).unwrap();
    let mut sb = Superblock::from_bytes(&buf).unwrap();
    sb.s_feature_incompat.set(sb.s_feature_incompat.get() | Incompat::RECOVER.bits());
    sb.update_checksum();
    dev.write_at(1024, sb.as_bytes()).unwrap();
    dev.flush().unwrap();
    expect
}

fn check(case: &Case) {
    let dir = tempfile::tempdir().unwrap();
    let img = mkfs(dir.path(), "a.img", case.mkfs);
    let bs = block_size(&img);
    let expect = write_transactions(&img, case);
    let other = dir.path().join("b.img");
    std::fs::copy(&img, &other).unwrap();

    let out = recover_with_e2fsck(&img);
    assert!(out.contains("recovering journal"), "{}: e2fsck did not replay:\n{out}", case.name);
    let bytes = std::fs::read(&img).unwrap();
    for (b, d) in &expect {
        let at = *b as usize * bs as usize;
        assert!(&bytes[at..at + bs as usize] == d.as_slice(), "{}: block {b} after e2fsck's replay", case.name);
    }
    let (code, fsck) = fsck_n(&img);
    assert_eq!(code, 0, "{}: e2fsck -fn after the replay:\n{fsck}", case.name);

    let rec = recover_with_library(&other);
    assert_eq!(rec.transactions(), 4, "{}", case.name);
    compare_images(case.name, &other, &img, bs, EXT4_SB_ALLOWED);
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn e2fsck_replays_what_the_writer_commits() {
    if !have_e2fsprogs("e2fsck_replays_what_the_writer_commits") {
        return;
    }
    for case in CASES {
        check(case);
    }
}

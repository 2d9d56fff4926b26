//! The writer and recovery checked against each other and a model: what the
//! encoder commits, recovery gives back exactly (newest unrevoked copy of
//! each block), for every block size, tag format, checksum version, with
//! escapes, revokes and wrap-around. Corrupt journals never panic.

use std::collections::BTreeMap;

use ext4_jbd2::format::{
    BlockType, CHECKSUM_CRC32C, COMPAT_CHECKSUM, Header, INCOMPAT_64BIT, INCOMPAT_CSUM_V2, INCOMPAT_CSUM_V3, INCOMPAT_REVOKE, JBD2_MAGIC,
    JournalSuperblock,
};
use ext4_jbd2::{CommitTime, JournalError, JournalIo, JournalWriter, MemoryJournal, Recovery, scan, write_superblock};
use ext4_testkit::rng::Rng;
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Csum {
    None,
    V1,
    V2,
    V3,
}

/// A formatted in-memory journal.
fn journal(bs: u32, maxlen: u32, bit64: bool, csum: Csum, sequence: u32) -> MemoryJournal {
    let mut sb = JournalSuperblock::zeroed();
    sb.s_header = Header::new(BlockType::SuperblockV2, 0);
    sb.s_blocksize.set(bs);
    sb.s_maxlen.set(maxlen);
    sb.s_first.set(1);
    sb.s_sequence.set(sequence);
    sb.s_uuid = *b"0123456789abcdef";
    sb.s_nr_users.set(1);
    let mut incompat = INCOMPAT_REVOKE;
    if bit64 {
        incompat |= INCOMPAT_64BIT;
    }
    match csum {
        Csum::None => {}
        Csum::V1 => sb.s_feature_compat.set(COMPAT_CHECKSUM),
        Csum::V2 => incompat |= INCOMPAT_CSUM_V2,
        Csum::V3 => incompat |= INCOMPAT_CSUM_V3,
    }
    sb.s_feature_incompat.set(incompat);
    if matches!(csum, Csum::V2 | Csum::V3) {
        sb.s_checksum_type = CHECKSUM_CRC32C;
    }
    sb.update_checksum();
    let mut j = MemoryJournal::new(bs, u64::from(maxlen));
    write_superblock(&mut j, bs, &sb).unwrap();
    j
}

fn block(bs: u32, seed: u8, magic: bool) -> Vec<u8> {
    let mut b: Vec<u8> = (0..bs as usize).map(|i| seed.wrapping_add((i / 5) as u8)).collect();
    if magic {
        b[..4].copy_from_slice(&JBD2_MAGIC.to_be_bytes());
    }
    b
}

/// A committed, not yet checkpointed transaction of the model.
struct ModelTx {
    blocks: Vec<(u64, Vec<u8>)>,
    revoked: Vec<u64>,
}

/// What recovery must give back: per block, the newest copy not revoked by
/// the same or a later live transaction (a revoke of a block the same
/// transaction writes is cancelled).
fn expected(live: &[ModelTx]) -> BTreeMap<u64, Vec<u8>> {
    let mut out = BTreeMap::new();
    for (i, tx) in live.iter().enumerate() {
        for (b, d) in &tx.blocks {
            let later_revoke = live[i + 1..].iter().any(|t| t.revoked.contains(b));
            if !later_revoke {
                out.insert(*b, d.clone());
            } else {
                out.remove(b);
            }
        }
    }
    // A block revoked later and never rewritten after the revoke is gone.
    out
}

fn recovered(j: &mut MemoryJournal, bs: u32) -> (Recovery, BTreeMap<u64, Vec<u8>>) {
    let rec = scan(j, bs).unwrap();
    let mut out = BTreeMap::new();
    for b in rec.blocks().collect::<Vec<_>>() {
        let mut buf = vec![0; bs as usize];
        assert!(rec.read_block(j, b, &mut buf).unwrap());
        out.insert(b, buf);
    }
    (rec, out)
}

#[derive(Debug, Clone)]
enum Op {
    Commit { blocks: Vec<(u64, u8, bool)>, revoked: Vec<u64> },
    Checkpoint,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (
            prop::collection::vec((0u64..40, any::<u8>(), prop::bool::weighted(0.2)), 0..30),
            prop::collection::vec(0u64..40, 0..6)
        )
            .prop_map(|(blocks, revoked)| Op::Commit { blocks, revoked }),
        1 => Just(Op::Checkpoint),
    ]
}

fn csum() -> impl Strategy<Value = Csum> {
    prop_oneof![Just(Csum::None), Just(Csum::V1), Just(Csum::V2), Just(Csum::V3)]
}

/// Runs `ops` through a writer, checking after each step that recovery of
/// the journal gives back the model's blocks.
fn run_model(bs: u32, maxlen: u32, bit64: bool, csum: Csum, ops: &[Op], high_blocks: bool) {
    let mut j = journal(bs, maxlen, bit64, csum, 7);
    let mut w = JournalWriter::open(&mut j, bs).unwrap();
    let mut live: Vec<ModelTx> = Vec::new();
    let base = if high_blocks && bit64 { 1u64 << 33 } else { 0 };
    let mut time = 1_700_000_000;
    for op in ops {
        match op {
            Op::Checkpoint => {
                w.checkpoint(&mut j).unwrap();
                live.clear();
            }
            Op::Commit { blocks, revoked } => {
                let blocks: Vec<(u64, Vec<u8>)> = blocks.iter().map(|&(b, seed, magic)| (base + b, block(bs, seed, magic))).collect();
                let revoked: Vec<u64> = revoked.iter().map(|b| base + b).collect();
                time += 1;
                let t = CommitTime { sec: time, nsec: 5 };
                match w.commit(&mut j, &blocks, &revoked, t) {
                    Ok(_) => {}
                    Err(JournalError::NoSpace { .. }) => {
                        w.checkpoint(&mut j).unwrap();
                        live.clear();
                        if w.commit(&mut j, &blocks, &revoked, t).is_err() {
                            continue;
                        }
                    }
                    Err(e) => panic!("{e}"),
                }
                let kept = revoked.iter().copied().filter(|r| !blocks.iter().any(|(b, _)| b == r)).collect();
                live.push(ModelTx { blocks, revoked: kept });
            }
        }
        let (rec, got) = recovered(&mut j, bs);
        assert_eq!(got, expected(&live));
        assert!(rec.warnings().is_empty(), "{:?}", rec.warnings());
        assert_eq!(rec.needs_recovery(), !live.is_empty());
        if rec.needs_recovery() {
            assert_eq!(rec.transactions() as usize, live.len());
            assert_eq!(rec.end_sequence(), w.next_sequence());
        }
    }
    // Replay, finish, and the journal is empty and writable again.
    let mut sb = ext4_jbd2::read_superblock(&mut j, bs).unwrap();
    let rec = scan(&mut j, bs).unwrap();
    rec.finish(&mut sb);
    write_superblock(&mut j, bs, &sb).unwrap();
    let again = scan(&mut j, bs).unwrap();
    assert!(!again.needs_recovery());
    let w2 = JournalWriter::open(&mut j, bs).unwrap();
    if rec.needs_recovery() {
        assert!(ext4_jbd2::geometry::tid_gt(w2.next_sequence(), rec.end_sequence()));
    }
}

proptest! {
    #![proptest_config(ext4_testkit::prop::config(200, "roundtrip"))]

    #[test]
    fn encoder_output_recovers_exactly(
        bs in prop_oneof![Just(1024u32), Just(4096u32)],
        maxlen in 40u32..200,
        bit64 in any::<bool>(),
        csum in csum(),
        high in any::<bool>(),
        ops in prop::collection::vec(op(), 1..12),
    ) {
        run_model(bs, maxlen, bit64, csum, &ops, high);
    }

    /// Random bytes over random blocks of a journal with live transactions:
    /// recovery returns a result or an error, never panics, and never
    /// reports a block the journal does not hold.
    #[test]
    fn corrupt_journals_never_panic(
        bs in prop_oneof![Just(1024u32), Just(4096u32)],
        bit64 in any::<bool>(),
        csum in csum(),
        damage in prop::collection::vec((0u64..64, 0usize..4096, any::<u8>()), 1..40),
        whole in prop::collection::vec((1u64..64, any::<u8>()), 0..3),
    ) {
        let maxlen = 64;
        let mut j = journal(bs, maxlen, bit64, csum, 3);
        let mut w = JournalWriter::open(&mut j, bs).unwrap();
        for i in 0..3u8 {
            let blocks: Vec<(u64, Vec<u8>)> = (0..5).map(|k| (u64::from(k * 3 + i), block(bs, i * 10 + k, k == 2))).collect();
            w.commit(&mut j, &blocks, &[u64::from(i) + 20], CommitTime { sec: 100 + u64::from(i), nsec: 0 }).unwrap();
        }
        for (b, off, v) in damage {
            let off = b as usize * bs as usize + off % bs as usize;
            j.data[off] ^= v | 1;
        }
        for (b, seed) in whole {
            let r = b as usize * bs as usize..(b as usize + 1) * bs as usize;
            let mut rng = Rng::new(u64::from(seed));
            j.data[r].fill_with(|| rng.next_u64() as u8);
        }
        if let Ok(rec) = scan(&mut j, bs) {
            let mut buf = vec![0; bs as usize];
            for b in rec.blocks().collect::<Vec<_>>() {
                prop_assert!(rec.read_block(&mut j, b, &mut buf).unwrap());
                prop_assert!(rec.copy_of(b).unwrap().jblock < u64::from(maxlen));
            }
        }
    }

    /// A journal of random blocks behind a valid superblock with a random
    /// start and sequence, and random superblock bytes.
    #[test]
    fn random_logs_never_panic(
        bs in prop_oneof![Just(1024u32), Just(4096u32)],
        bit64 in any::<bool>(),
        csum in csum(),
        start in 0u32..80,
        seed in any::<u32>(),
        sb_damage in prop::collection::vec((0usize..1024, any::<u8>()), 0..4),
    ) {
        let maxlen = 64;
        let mut j = journal(bs, maxlen, bit64, csum, 9);
        let mut rng = Rng::new(u64::from(seed));
        j.data[bs as usize..].fill_with(|| rng.next_u64() as u8);
        let x = rng.next_u64();
        // Sprinkle headers of the expected sequence so the walk goes deep.
        for b in 1..u64::from(maxlen) {
            if x.rotate_left(b as u32) & 1 == 0 {
                let kind = [1u32, 2, 5][(b % 3) as usize];
                let off = b as usize * bs as usize;
                j.data[off..off + 4].copy_from_slice(&JBD2_MAGIC.to_be_bytes());
                j.data[off + 4..off + 8].copy_from_slice(&kind.to_be_bytes());
                j.data[off + 8..off + 12].copy_from_slice(&(9 + (b as u32 % 4)).to_be_bytes());
            }
        }
        let mut sb = ext4_jbd2::read_superblock(&mut j, bs).unwrap();
        sb.s_start.set(start);
        sb.update_checksum();
        write_superblock(&mut j, bs, &sb).unwrap();
        for (off, v) in sb_damage {
            j.data[off] ^= v;
        }
        let _ = scan(&mut j, bs);
        let _ = JournalWriter::open(&mut j, bs);
    }
}

#[test]
fn escaped_blocks_come_back_with_the_magic() {
    for csum in [Csum::None, Csum::V1, Csum::V2, Csum::V3] {
        let mut j = journal(1024, 100, true, csum, 1);
        let mut w = JournalWriter::open(&mut j, 1024).unwrap();
        let data = block(1024, 9, true);
        w.commit(&mut j, &[(5, data.clone())], &[], CommitTime::default()).unwrap();
        let rec = scan(&mut j, 1024).unwrap();
        assert!(rec.copy_of(5).unwrap().escaped);
        let jb = rec.copy_of(5).unwrap().jblock as usize;
        assert_eq!(&j.data[jb * 1024..jb * 1024 + 4], &[0; 4], "stored escaped");
        let mut buf = vec![0; 1024];
        rec.read_block(&mut j, 5, &mut buf).unwrap();
        assert_eq!(buf, data);
    }
}

#[test]
fn wrap_around_the_log_end() {
    let (bs, maxlen) = (1024, 50);
    let mut j = journal(bs, maxlen, false, Csum::V3, 1);
    let mut w = JournalWriter::open(&mut j, bs).unwrap();
    let filler: Vec<(u64, Vec<u8>)> = (0..40).map(|b| (b, block(bs, 1, false))).collect();
    w.commit(&mut j, &filler, &[], CommitTime::default()).unwrap();
    w.checkpoint(&mut j).unwrap();
    let start = w.head();
    let blocks: Vec<(u64, Vec<u8>)> = (100..120).map(|b| (b, block(bs, b as u8, b == 110))).collect();
    w.commit(&mut j, &blocks, &[], CommitTime::default()).unwrap();
    assert!(w.head() < start, "the transaction wrapped");
    let (rec, got) = recovered(&mut j, bs);
    assert_eq!(got, blocks.into_iter().collect());
    assert!(rec.blocks().any(|b| rec.copy_of(b).unwrap().jblock < start));
}

#[test]
fn no_space_is_an_error_and_changes_nothing() {
    let mut j = journal(1024, 30, false, Csum::None, 1);
    let mut w = JournalWriter::open(&mut j, 1024).unwrap();
    let blocks: Vec<(u64, Vec<u8>)> = (0..40).map(|b| (b, block(1024, 1, false))).collect();
    let before = j.data.clone();
    let err = w.commit(&mut j, &blocks, &[], CommitTime::default()).unwrap_err();
    assert!(matches!(err, JournalError::NoSpace { needed: 42, free: 28 }), "{err}");
    assert_eq!(j.data, before);
    assert!(w.is_empty());
}

#[test]
fn bad_input_is_refused() {
    let mut j = journal(1024, 30, false, Csum::None, 1);
    let w = JournalWriter::open(&mut j, 1024).unwrap();
    let t = CommitTime::default();
    assert!(matches!(w.encode(&[(1, vec![0u8; 512])], &[], t), Err(JournalError::InvalidInput(_))));
    assert!(matches!(w.encode(&[(1 << 32, vec![0u8; 1024])], &[], t), Err(JournalError::InvalidInput(_))));
    assert!(matches!(w.encode::<Vec<u8>>(&[], &[1 << 40], t), Err(JournalError::InvalidInput(_))));
}

#[test]
fn a_journal_needing_recovery_is_not_writable() {
    let mut j = journal(1024, 30, false, Csum::None, 1);
    let mut w = JournalWriter::open(&mut j, 1024).unwrap();
    w.commit(&mut j, &[(3, block(1024, 1, false))], &[], CommitTime::default()).unwrap();
    assert!(matches!(JournalWriter::open(&mut j, 1024), Err(JournalError::Superblock { field: "s_start", .. })));
}

#[test]
fn descriptor_layout_matches_the_kernel() {
    // 4 KiB, csum v3 (16-byte tags): the kernel fills 253 tags per
    // descriptor (4084 - 32 = 4052 left after the first, closes when fewer
    // than 16 + 16 + 4 remain).
    let mut j = journal(4096, 600, true, Csum::V3, 1);
    let w = JournalWriter::open(&mut j, 4096).unwrap();
    assert_eq!(w.blocks_needed(253, 0), 1 + 253 + 1);
    assert_eq!(w.blocks_needed(254, 0), 2 + 254 + 1);
    // 32-bit tags without checksums are 8 bytes: 4084 - 24 = 4060, closes below 24.
    let mut j = journal(4096, 600, false, Csum::None, 1);
    let w = JournalWriter::open(&mut j, 4096).unwrap();
    assert_eq!(w.blocks_needed(506, 0), 1 + 506 + 1);
    assert_eq!(w.blocks_needed(507, 0), 2 + 507 + 1);
    // Revoke records: (4096 - 16) / 4 per block without checksums.
    assert_eq!(w.blocks_needed(0, 1020), 1 + 1);
    assert_eq!(w.blocks_needed(0, 1021), 2 + 1);
}

#[test]
fn flushes_order_the_commit_block() {
    let mut j = journal(1024, 60, true, Csum::V2, 1);
    let mut w = JournalWriter::open(&mut j, 1024).unwrap();
    let f0 = j.flushes;
    w.commit(&mut j, &[(3, block(1024, 1, false))], &[], CommitTime::default()).unwrap();
    // superblock write (flush), body flush, commit flush.
    assert_eq!(j.flushes - f0, 3);
    assert_eq!(j.len_blocks(), 60);
}

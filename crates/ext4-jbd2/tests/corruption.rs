//! One test per recovery check: take a valid journal written by the writer,
//! damage one thing, and assert the exact outcome the kernel's recovery
//! would have (a warning and a clean stop, or a specific error).

use ext4_jbd2::format::{
    BlockType, CHECKSUM_CRC32C, COMMIT_CHKSUM_OFFSET, COMMIT_SEC_OFFSET, COMPAT_CHECKSUM, Header, INCOMPAT_ASYNC_COMMIT, INCOMPAT_CSUM_V2,
    INCOMPAT_CSUM_V3, INCOMPAT_REVOKE, JournalSuperblock, commit_block_checksum, descriptor_block_checksum,
};
use ext4_jbd2::{
    CommitTime, EncodedTransaction, JournalError, JournalWriter, LogDamage, LogProblem, MemoryJournal, RecoveryWarning, scan,
    write_superblock,
};
use zerocopy::IntoBytes;

const BS: u32 = 1024;

fn superblock(compat: u32, incompat: u32) -> JournalSuperblock {
    let mut sb = JournalSuperblock::zeroed();
    sb.s_header = Header::new(BlockType::SuperblockV2, 0);
    sb.s_blocksize.set(BS);
    sb.s_maxlen.set(64);
    sb.s_first.set(1);
    sb.s_sequence.set(10);
    sb.s_uuid = [7; 16];
    sb.s_feature_compat.set(compat);
    sb.s_feature_incompat.set(INCOMPAT_REVOKE | incompat);
    if incompat & (INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3) != 0 {
        sb.s_checksum_type = CHECKSUM_CRC32C;
    }
    sb.update_checksum();
    sb
}

/// Home blocks and their data.
type Blocks = Vec<(u64, Vec<u8>)>;

/// A journal with three transactions: 11 writes blocks 1..4, 12 rewrites
/// block 2 and revokes block 3, 13 writes block 9. Returns them encoded.
fn three(compat: u32, incompat: u32) -> (MemoryJournal, Vec<EncodedTransaction>) {
    let mut j = MemoryJournal::new(BS, 64);
    write_superblock(&mut j, BS, &superblock(compat, incompat)).unwrap();
    let mut w = JournalWriter::open(&mut j, BS).unwrap();
    let txs: [(Blocks, Vec<u64>); 3] = [
        ((1..5).map(|b| (b, vec![b as u8; BS as usize])).collect(), vec![]),
        (vec![(2, vec![0x22; BS as usize])], vec![3]),
        (vec![(9, vec![0x99; BS as usize])], vec![]),
    ];
    let mut out = Vec::new();
    for (i, (blocks, revoked)) in txs.iter().enumerate() {
        let enc = w.encode(blocks, revoked, CommitTime { sec: 1000 + i as u64, nsec: 0 }).unwrap();
        w.write(&mut j, &enc).unwrap();
        out.push(enc);
    }
    (j, out)
}

fn block_mut(j: &mut MemoryJournal, jblock: u64) -> &mut [u8] {
    let at = jblock as usize * BS as usize;
    &mut j.data[at..at + BS as usize]
}

fn rewrite_commit(j: &mut MemoryJournal, jblock: u64, sec: u64) {
    let b = block_mut(j, jblock);
    b[COMMIT_SEC_OFFSET..COMMIT_SEC_OFFSET + 8].copy_from_slice(&sec.to_be_bytes());
    let c = commit_block_checksum(superblock(0, 0).csum_seed(), b);
    b[COMMIT_CHKSUM_OFFSET..COMMIT_CHKSUM_OFFSET + 4].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn intact_journal_replays_everything() {
    for (compat, incompat) in [(0, 0), (COMPAT_CHECKSUM, 0), (0, INCOMPAT_CSUM_V2), (0, INCOMPAT_CSUM_V3)] {
        let (mut j, _) = three(compat, incompat);
        let rec = scan(&mut j, BS).unwrap();
        assert_eq!(rec.transactions(), 3);
        assert_eq!(rec.blocks().collect::<Vec<_>>(), vec![1, 2, 4, 9]);
        assert_eq!(rec.copy_of(2).unwrap().sequence, 12);
        assert_eq!(rec.revoke_hits(), 1);
        assert_eq!(rec.end_sequence(), 14);
        assert_eq!(rec.next_sequence(), 15, "e2fsck skips one id past the end");
        assert!(rec.warnings().is_empty());
    }
}

#[test]
fn clean_journal_needs_nothing() {
    let mut j = MemoryJournal::new(BS, 64);
    write_superblock(&mut j, BS, &superblock(0, INCOMPAT_CSUM_V3)).unwrap();
    let rec = scan(&mut j, BS).unwrap();
    assert!(!rec.needs_recovery());
    assert_eq!(rec.block_count(), 0);
    let mut sb = superblock(0, INCOMPAT_CSUM_V3);
    let before = sb.as_bytes().to_vec();
    rec.finish(&mut sb);
    assert_eq!(sb.as_bytes(), &before[..], "finish leaves a clean journal alone");
}

#[test]
fn data_checksum_failure_skips_the_block_and_keeps_the_older_copy() {
    for incompat in [INCOMPAT_CSUM_V2, INCOMPAT_CSUM_V3] {
        let (mut j, txs) = three(0, incompat);
        let data_jblock = txs[1].body.iter().find(|(_, d)| d[0] == 0x22).unwrap().0;
        block_mut(&mut j, data_jblock)[100] ^= 1;
        let rec = scan(&mut j, BS).unwrap();
        assert_eq!(rec.transactions(), 3);
        assert_eq!(rec.copy_of(2).unwrap().sequence, 11, "the copy of transaction 11 is replayed");
        assert_eq!(rec.warnings(), &[RecoveryWarning::DataChecksum { fs_block: 2, jblock: data_jblock, sequence: 12 }]);
        assert!(rec.has_block_errors());
    }
}

#[test]
fn bad_commit_checksum_ends_the_log_before_the_transaction() {
    let (mut j, txs) = three(0, INCOMPAT_CSUM_V3);
    block_mut(&mut j, txs[1].commit.0)[COMMIT_CHKSUM_OFFSET] ^= 1;
    let rec = scan(&mut j, BS).unwrap();
    assert_eq!(rec.transactions(), 1);
    assert_eq!(rec.failed_commit(), Some(12));
    assert_eq!(rec.warnings(), &[RecoveryWarning::CommitChecksum { sequence: 12, jblock: txs[1].commit.0 }]);
    assert_eq!(rec.copy_of(2).unwrap().sequence, 11);
    assert!(rec.copy_of(9).is_none());
    assert!(rec.has_errors());
    // Transaction 13 is still in the log: the sequence moves past any
    // transaction the 63-block log can hold.
    assert_eq!(rec.next_sequence(), 11 + 63 + 1);
}

#[test]
fn bad_commit_checksum_with_async_commit_is_not_a_failed_commit() {
    let (mut j, txs) = three(0, INCOMPAT_CSUM_V3 | INCOMPAT_ASYNC_COMMIT);
    block_mut(&mut j, txs[1].commit.0)[COMMIT_CHKSUM_OFFSET] ^= 1;
    let rec = scan(&mut j, BS).unwrap();
    assert_eq!(rec.transactions(), 1);
    assert_eq!(rec.failed_commit(), None);
    assert!(rec.copy_of(9).is_none(), "later transactions are scanned but not replayed");
}

#[test]
fn v1_commit_checksum_covers_descriptor_and_data() {
    let (mut j, txs) = three(COMPAT_CHECKSUM, 0);
    let data_jblock = txs[2].body.last().unwrap().0;
    block_mut(&mut j, data_jblock)[7] ^= 0x80;
    let rec = scan(&mut j, BS).unwrap();
    assert_eq!(rec.transactions(), 2);
    assert_eq!(rec.failed_commit(), Some(13));
}

#[test]
fn bad_descriptor_checksum_with_a_newer_commit_is_damage_that_ends_the_log() {
    let (mut j, txs) = three(0, INCOMPAT_CSUM_V3);
    let desc = txs[2].body[0].0;
    block_mut(&mut j, desc)[40] ^= 1;
    let rec = scan(&mut j, BS).unwrap();
    assert_eq!(rec.transactions(), 2, "the transactions before the damage are replayed");
    let damage = LogDamage { sequence: 13, jblock: txs[2].commit.0, problem: LogProblem::TransactionChecksum };
    assert_eq!(rec.damage(), Some(&damage));
    assert!(rec.copy_of(9).is_none());
    assert_eq!(rec.copy_of(2).unwrap().sequence, 12);
    assert!(rec.has_errors());
    assert_eq!(rec.next_sequence(), 11 + 63 + 1);
}

#[test]
fn bad_descriptor_checksum_with_an_older_commit_is_a_stale_log() {
    let (mut j, txs) = three(0, INCOMPAT_CSUM_V3);
    block_mut(&mut j, txs[2].body[0].0)[40] ^= 1;
    rewrite_commit(&mut j, txs[2].commit.0, 5);
    let rec = scan(&mut j, BS).unwrap();
    assert_eq!(rec.transactions(), 2);
    assert_eq!(rec.warnings(), &[RecoveryWarning::StaleBlocks { sequence: 13, jblock: txs[2].commit.0 }]);
}

#[test]
fn bad_revoke_checksum_with_a_newer_commit_is_damage_that_ends_the_log() {
    let (mut j, txs) = three(0, INCOMPAT_CSUM_V2);
    let revoke = txs[1].body[0].0;
    assert_eq!(&block_mut(&mut j, revoke)[4..8], &(BlockType::Revoke as u32).to_be_bytes());
    block_mut(&mut j, revoke)[20] ^= 1;
    let rec = scan(&mut j, BS).unwrap();
    assert_eq!(rec.transactions(), 1);
    assert!(matches!(rec.damage(), Some(LogDamage { sequence: 12, problem: LogProblem::TransactionChecksum, .. })), "{rec:?}");
    assert_eq!(rec.blocks().collect::<Vec<_>>(), vec![1, 2, 3, 4], "no revoke of transaction 12 applies");
}

#[test]
fn revoke_count_beyond_the_block_is_damage_that_ends_the_log() {
    let (mut j, txs) = three(0, 0);
    let revoke = txs[1].body[0].0;
    block_mut(&mut j, revoke)[12..16].copy_from_slice(&(BS + 4).to_be_bytes());
    let rec = scan(&mut j, BS).unwrap();
    assert_eq!(rec.transactions(), 1);
    let damage = LogDamage { sequence: 12, jblock: revoke, problem: LogProblem::RevokeCount { count: 1028 } };
    assert_eq!(rec.damage(), Some(&damage));
}

#[test]
fn a_clean_end_is_no_error() {
    let (mut j, txs) = three(0, INCOMPAT_CSUM_V3);
    block_mut(&mut j, txs[2].body[0].0)[0] ^= 1;
    let rec = scan(&mut j, BS).unwrap();
    assert!(!rec.has_errors());
    assert_eq!(rec.end_sequence(), 13);
    assert_eq!(rec.next_sequence(), 14, "one past the end, as the kernel and e2fsck restart the log");
}

#[test]
fn bad_magic_or_sequence_ends_the_log() {
    let (mut j, txs) = three(0, INCOMPAT_CSUM_V3);
    block_mut(&mut j, txs[2].body[0].0)[0] ^= 1;
    assert_eq!(scan(&mut j, BS).unwrap().transactions(), 2);
    let (mut j, txs) = three(0, INCOMPAT_CSUM_V3);
    block_mut(&mut j, txs[1].body[0].0)[11] ^= 1;
    assert_eq!(scan(&mut j, BS).unwrap().transactions(), 1);
}

#[test]
fn a_log_that_never_ends_stops_after_one_lap() {
    let mut j = MemoryJournal::new(BS, 64);
    let mut sb = superblock(0, 0);
    sb.s_start.set(1);
    write_superblock(&mut j, BS, &sb).unwrap();
    for b in 1..64 {
        let blk = block_mut(&mut j, b);
        blk[..12].copy_from_slice(Header::new(BlockType::Revoke, 10).as_bytes());
        blk[12..16].copy_from_slice(&16u32.to_be_bytes());
    }
    let rec = scan(&mut j, BS).unwrap();
    assert_eq!(rec.transactions(), 0);
    assert_eq!(rec.warnings(), &[RecoveryWarning::EndlessLog { jblock: 1 }]);
}

#[test]
fn superblock_checks() {
    type Damage = fn(&mut JournalSuperblock);
    let cases: &[(&str, Damage, &str)] = &[
        ("bad magic", |sb| sb.s_header.h_magic.set(1), "h_magic"),
        ("descriptor type", |sb| sb.s_header.h_blocktype.set(1), "h_blocktype"),
        ("csum v2 and v3", |sb| sb.s_feature_incompat.set(INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3), "s_feature_incompat"),
        (
            "v1 with v3",
            |sb| {
                sb.s_feature_incompat.set(INCOMPAT_CSUM_V3);
                sb.s_feature_compat.set(COMPAT_CHECKSUM);
            },
            "s_feature_compat",
        ),
        ("checksum type", |sb| sb.s_checksum_type = 1, "s_checksum_type"),
        ("block size", |sb| sb.s_blocksize.set(4096), "s_blocksize"),
        ("maxlen beyond the journal", |sb| sb.s_maxlen.set(65), "s_maxlen"),
        ("first zero", |sb| sb.s_first.set(0), "s_first"),
        ("first beyond", |sb| sb.s_first.set(64), "s_first"),
        ("start beyond", |sb| sb.s_start.set(64), "s_start"),
    ];
    for (what, damage, field) in cases {
        let mut sb = superblock(0, INCOMPAT_CSUM_V3);
        damage(&mut sb);
        if *field != "s_checksum" {
            sb.update_checksum();
        }
        let mut j = MemoryJournal::new(BS, 64);
        write_superblock(&mut j, BS, &sb).unwrap();
        match scan(&mut j, BS) {
            Err(JournalError::Superblock { field: f, .. }) => assert_eq!(f, *field, "{what}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    let mut sb = superblock(0, INCOMPAT_CSUM_V3);
    sb.s_sequence.set(99);
    let mut j = MemoryJournal::new(BS, 64);
    write_superblock(&mut j, BS, &sb).unwrap();
    assert!(matches!(scan(&mut j, BS), Err(JournalError::Superblock { field: "s_checksum", .. })));
    let mut sb = superblock(0, 0x8000);
    sb.update_checksum();
    write_superblock(&mut j, BS, &sb).unwrap();
    assert!(matches!(scan(&mut j, BS), Err(JournalError::Unsupported(_))));
}

#[test]
fn descriptor_tail_checksum_is_what_the_writer_stores() {
    let (mut j, txs) = three(0, INCOMPAT_CSUM_V3);
    let desc = block_mut(&mut j, txs[0].body[0].0).to_vec();
    let seed = superblock(0, INCOMPAT_CSUM_V3).csum_seed();
    assert_eq!(&desc[BS as usize - 4..], &descriptor_block_checksum(seed, &desc).to_be_bytes());
}

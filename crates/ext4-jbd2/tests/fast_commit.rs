//! One test per rule of the fast-commit area scan (`ext4_fc_replay_scan`):
//! a valid area is built record by record, one thing is changed, and the
//! outcome must be the kernel's: the records of the complete fast commits,
//! nothing (a stale or absent area), or the error that fails its recovery.

use ext4_jbd2::fast_commit::{FastCommits, scan as scan_area};
use ext4_jbd2::format::{BlockType, CHECKSUM_CRC32C, Header, INCOMPAT_CSUM_V3, INCOMPAT_FAST_COMMIT, INCOMPAT_REVOKE, JournalSuperblock};
use ext4_jbd2::{JournalError, LogProblem, MemoryJournal, scan, write_superblock};
use ext4_ondisk::fast_commit::{
    FcDelRange, FcDentryInfo, FcHead, FcTail, FcTl, TAG_CREAT, TAG_DEL_RANGE, TAG_HEAD, TAG_INODE, TAG_PAD, TAG_TAIL, TL_SIZE, fc_crc,
};
use ext4_ondisk::le::U32;
use zerocopy::IntoBytes;

const BS: usize = 1024;
const MAXLEN: u64 = 1100;
const FC_BLOCKS: u32 = 16;
/// The first block of the area the kernel uses (`j_fc_first`).
const FC_FIRST: u64 = MAXLEN - FC_BLOCKS as u64 + 1;
/// The transaction the area must follow: the log is empty from `s_sequence`.
const TID: u32 = 10;
const INODE_SIZE: usize = 256;

/// A fast-commit area under construction, block by block.
#[derive(Default)]
struct Area {
    blocks: Vec<Vec<u8>>,
    cur: Vec<u8>,
    crc: u32,
}

impl Area {
    /// An area opening with a head for `tid`.
    fn new(tid: u32) -> Self {
        let mut a = Area::default();
        a.record(TAG_HEAD, FcHead { fc_features: 0.into(), fc_tid: tid.into() }.as_bytes());
        a
    }

    fn record(&mut self, tag: u16, value: &[u8]) {
        let tl = FcTl { fc_tag: tag.into(), fc_len: (value.len() as u16).into() };
        let mut bytes = tl.as_bytes().to_vec();
        bytes.extend_from_slice(value);
        assert!(self.cur.len() + bytes.len() <= BS, "record does not fit");
        self.crc = fc_crc(self.crc, &bytes);
        self.cur.extend_from_slice(&bytes);
    }

    fn inode(&mut self, ino: u32) {
        let mut v = U32::new(ino).as_bytes().to_vec();
        v.extend_from_slice(&[0x11; 160]);
        self.record(TAG_INODE, &v);
    }

    fn del_range(&mut self, ino: u32) {
        self.record(TAG_DEL_RANGE, FcDelRange { fc_ino: ino.into(), fc_lblk: 3.into(), fc_len: 2.into() }.as_bytes());
    }

    fn create(&mut self, ino: u32, name: &[u8]) {
        let mut v = FcDentryInfo { fc_parent_ino: 2.into(), fc_ino: ino.into() }.as_bytes().to_vec();
        v.extend_from_slice(name);
        self.record(TAG_CREAT, &v);
    }

    /// Closes a fast commit with a tail for `tid` (its crc right if `good`),
    /// filling the rest of the block as the kernel does.
    fn tail(&mut self, tid: u32, good: bool) {
        let len = BS - self.cur.len() - TL_SIZE;
        let tl = FcTl { fc_tag: TAG_TAIL.into(), fc_len: (len as u16).into() };
        let mut bytes = tl.as_bytes().to_vec();
        bytes.extend_from_slice(U32::new(tid).as_bytes());
        let crc = fc_crc(self.crc, &bytes) ^ u32::from(!good);
        bytes.truncate(TL_SIZE);
        bytes.extend_from_slice(FcTail { fc_tid: tid.into(), fc_crc: crc.into() }.as_bytes());
        bytes.resize(TL_SIZE + len, 0);
        self.cur.extend_from_slice(&bytes);
        self.crc = 0;
        self.next_block();
    }

    /// Fills the block with a PAD record and starts the next one.
    fn pad(&mut self) {
        let len = BS - self.cur.len() - TL_SIZE;
        self.record(TAG_PAD, &vec![0; len]);
        self.next_block();
    }

    fn next_block(&mut self) {
        let mut b = std::mem::take(&mut self.cur);
        b.resize(BS, 0);
        self.blocks.push(b);
    }

    /// Writes the area (and any unfinished block) from `first` on.
    fn write(mut self, j: &mut MemoryJournal, first: u64) {
        if !self.cur.is_empty() {
            self.next_block();
        }
        for (i, b) in self.blocks.iter().enumerate() {
            let at = (first as usize + i) * BS;
            j.data[at..at + BS].copy_from_slice(b);
        }
    }
}

/// A journal with a fast-commit area, its log empty but needing recovery
/// (`s_start` set) unless `clean`.
fn journal(clean: bool) -> MemoryJournal {
    let mut sb = JournalSuperblock::zeroed();
    sb.s_header = Header::new(BlockType::SuperblockV2, 0);
    sb.s_blocksize.set(BS as u32);
    sb.s_maxlen.set(MAXLEN as u32);
    sb.s_first.set(1);
    sb.s_start.set(if clean { 0 } else { 1 });
    sb.s_sequence.set(TID);
    sb.s_uuid = [7; 16];
    sb.s_feature_incompat.set(INCOMPAT_REVOKE | INCOMPAT_CSUM_V3 | INCOMPAT_FAST_COMMIT);
    sb.s_checksum_type = CHECKSUM_CRC32C;
    sb.s_num_fc_blks.set(FC_BLOCKS);
    sb.update_checksum();
    let mut j = MemoryJournal::new(BS as u32, MAXLEN);
    write_superblock(&mut j, BS as u32, &sb).unwrap();
    j
}

/// Scans as the filesystem does: the log, then the area for its end.
fn read(j: &mut MemoryJournal) -> Result<FastCommits, JournalError> {
    let rec = scan(j, BS as u32).unwrap();
    match (rec.geometry(), rec.fast_commit_tid()) {
        (Some(geo), Some(tid)) => {
            assert_eq!(tid, TID);
            let geo = geo.clone();
            scan_area(j, &geo, tid, INODE_SIZE)
        }
        _ => Ok(FastCommits::default()),
    }
}

fn check(area: Area, first: u64, expected: Result<(usize, Vec<u16>), LogProblem>) {
    let mut j = journal(false);
    area.write(&mut j, first);
    match (read(&mut j), expected) {
        (Ok(fc), Ok((commits, tags))) => {
            assert_eq!(fc.commits, commits);
            assert_eq!(fc.records.iter().map(|r| r.tag).collect::<Vec<_>>(), tags);
        }
        (Err(JournalError::Corrupt { problem, .. }), Err(want)) => {
            assert_eq!(std::mem::discriminant(&problem), std::mem::discriminant(&want), "{problem} is not {want}")
        }
        (got, want) => panic!("got {got:?}, want {want:?}"),
    }
}

/// One complete fast commit: HEAD, INODE, CREAT, TAIL.
fn one_commit() -> Area {
    let mut a = Area::new(TID);
    a.inode(12);
    a.create(12, b"f");
    a.tail(TID, true);
    a
}

#[test]
fn complete_fast_commits_are_returned_in_order() {
    let mut a = one_commit();
    a.del_range(12);
    a.pad();
    a.inode(13);
    a.tail(TID, true);
    let tags = vec![TAG_HEAD, TAG_INODE, TAG_CREAT, TAG_TAIL, TAG_DEL_RANGE, TAG_PAD, TAG_INODE, TAG_TAIL];
    check(a, FC_FIRST, Ok((2, tags)));
}

#[test]
fn records_after_the_last_tail_are_dropped() {
    let mut a = one_commit();
    a.inode(13);
    check(a, FC_FIRST, Ok((1, vec![TAG_HEAD, TAG_INODE, TAG_CREAT, TAG_TAIL])));
}

#[test]
fn an_area_without_a_head_in_its_first_block_is_empty() {
    // The block before `j_fc_first` is the main log's end, never the area.
    check(one_commit(), FC_FIRST - 1, Ok((0, vec![])));
}

#[test]
fn a_head_for_another_transaction_means_a_stale_area() {
    let mut a = Area::new(TID - 1);
    a.inode(12);
    a.tail(TID - 1, true);
    check(a, FC_FIRST, Ok((0, vec![])));
}

#[test]
fn a_head_with_unknown_features_fails() {
    let mut a = Area::default();
    a.record(TAG_HEAD, FcHead { fc_features: 1.into(), fc_tid: TID.into() }.as_bytes());
    a.tail(TID, true);
    check(a, FC_FIRST, Err(LogProblem::FastCommitFeatures { features: 1 }));
}

#[test]
fn a_head_after_a_block_without_one_is_not_read() {
    check(one_commit(), FC_FIRST + 1, Ok((0, vec![])));
}

#[test]
fn fast_commits_up_to_the_journal_end_fail() {
    let mut a = Area::new(TID);
    a.tail(TID, true);
    for _ in FC_FIRST + 1..MAXLEN {
        a.inode(12);
        a.tail(TID, true);
    }
    check(a, FC_FIRST, Err(LogProblem::FastCommitPastJournal { len: MAXLEN }));
}

#[test]
fn fast_commits_up_to_the_area_end_read_the_block_after() {
    // A journal inode longer than `s_maxlen`: the kernel reads block
    // `s_maxlen` as part of the area.
    let mut j = journal(false);
    j.data.resize((MAXLEN as usize + 1) * BS, 0);
    let mut a = Area::new(TID);
    a.tail(TID, true);
    for _ in FC_FIRST + 1..=MAXLEN {
        a.inode(12);
        a.tail(TID, true);
    }
    a.write(&mut j, FC_FIRST);
    let fc = read(&mut j).unwrap();
    assert_eq!(fc.commits, (MAXLEN - FC_FIRST + 1) as usize);
}

#[test]
fn a_bad_first_tail_crc_fails() {
    let mut a = Area::new(TID);
    a.inode(12);
    a.tail(TID, false);
    check(a, FC_FIRST, Err(LogProblem::FastCommitTail { tid: TID, expected_tid: TID, crc: 0, computed: 0 }));
}

#[test]
fn a_first_tail_for_another_transaction_fails() {
    let mut a = Area::new(TID);
    a.inode(12);
    a.tail(TID + 1, true);
    check(a, FC_FIRST, Err(LogProblem::FastCommitTail { tid: TID + 1, expected_tid: TID, crc: 0, computed: 0 }));
}

#[test]
fn a_bad_tail_after_a_good_one_ends_the_area() {
    let mut a = one_commit();
    a.inode(13);
    a.tail(TID, false);
    check(a, FC_FIRST, Ok((1, vec![TAG_HEAD, TAG_INODE, TAG_CREAT, TAG_TAIL])));
}

#[test]
fn a_bad_record_length_before_any_tail_fails() {
    let mut a = Area::new(TID);
    a.record(TAG_DEL_RANGE, &[0; 11]);
    a.tail(TID, true);
    check(a, FC_FIRST, Err(LogProblem::FastCommitRecord { offset: 0, reason: String::new() }));
}

#[test]
fn a_bad_record_length_after_a_tail_ends_the_area() {
    let mut a = one_commit();
    a.record(TAG_CREAT, FcDentryInfo { fc_parent_ino: 2.into(), fc_ino: 3.into() }.as_bytes());
    a.tail(TID, true);
    check(a, FC_FIRST, Ok((1, vec![TAG_HEAD, TAG_INODE, TAG_CREAT, TAG_TAIL])));
}

#[test]
fn an_unknown_tag_after_a_tail_ends_the_area() {
    let mut a = one_commit();
    a.record(0x0A, &[]);
    a.tail(TID, true);
    check(a, FC_FIRST, Ok((1, vec![TAG_HEAD, TAG_INODE, TAG_CREAT, TAG_TAIL])));
}

#[test]
fn an_unknown_tag_before_any_tail_fails() {
    let mut a = Area::new(TID);
    a.record(0x0A, &[]);
    a.tail(TID, true);
    check(a, FC_FIRST, Err(LogProblem::FastCommitRecord { offset: 0, reason: String::new() }));
}

#[test]
fn a_record_past_the_block_end_fails() {
    let mut a = Area::new(TID);
    let mut b = std::mem::take(&mut a.cur);
    b.extend_from_slice(FcTl { fc_tag: TAG_PAD.into(), fc_len: (BS as u16).into() }.as_bytes());
    a.cur = b;
    check(a, FC_FIRST, Err(LogProblem::FastCommitRecord { offset: 0, reason: String::new() }));
}

#[test]
fn a_clean_log_ignores_the_area() {
    let mut j = journal(true);
    one_commit().write(&mut j, FC_FIRST);
    let fc = read(&mut j).unwrap();
    assert!(fc.is_empty() && fc.records.is_empty());
}

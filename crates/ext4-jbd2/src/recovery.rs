//! Journal recovery as jbd2's `fs/jbd2/recovery.c` (and e2fsck's copy of
//! it) does it: PASS_SCAN finds the end of the log, PASS_REVOKE collects
//! revoke records, PASS_REPLAY picks the newest unrevoked copy of each block.
//!
//! [`scan`] runs the three passes without writing anything; the result,
//! [`Recovery`], then serves reads from the journal (read-only open),
//! replays ([`Recovery::replay`]) and gives the superblock to write
//! afterwards ([`Recovery::finish`]).
//!
//! The checks, and what ends the log, are those of e2fsck 1.47's copy of
//! `recovery.c` (the oracle every test compares with). One decision
//! differs, on purpose: a transaction whose descriptor or revoke block
//! fails its checksum while its commit block is newer than the last one
//! (`-EFSBADCRC` in PASS_SCAN), or whose revoke block counts past its end
//! (`-EINVAL`), is damage ([`LogDamage`]) that ends the log before that
//! transaction, and the transactions before it are replayed. The kernel
//! refuses to mount such a journal and e2fsck discards the whole log;
//! replaying the valid prefix keeps every transaction that was committed
//! whole, and the caller records the error so that a full check follows.

use std::collections::{BTreeMap, HashMap};

use crate::error::{BoxError, IoOp, JournalError, LogProblem};
use crate::format::{
    BlockType, CHECKSUM_CRC32, COMMIT_CHKSUM_OFFSET, COMMIT_SEC_OFFSET, CRC32_CHKSUM_SIZE, FLAG_ESCAPE, FLAG_LAST_TAG, FLAG_SAME_UUID,
    Header, JBD2_MAGIC, JournalSuperblock, REVOKE_COUNT_OFFSET, REVOKE_HEADER_SIZE, TAG_UUID_SIZE, be32_at, be64_at, commit_block_checksum,
    crc32_be, data_block_checksum, descriptor_block_checksum, parse_tag,
};
use crate::geometry::{JournalGeometry, tid_geq, tid_gt};
use crate::io::{JournalIo, read_block, read_superblock};

/// Where the newest replayable copy of a filesystem block lives in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalCopy {
    /// Journal block holding the copy.
    pub jblock: u64,
    /// The copy's first 4 bytes were the jbd2 magic, stored as zero.
    pub escaped: bool,
    /// Transaction the copy belongs to.
    pub sequence: u32,
}

/// Something recovery skipped or ignored, as the kernel does with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecoveryWarning {
    /// A data block failed its tag checksum and was not replayed
    /// ("JBD2: Invalid checksum recovering data block"). The kernel then
    /// fails the mount and e2fsck forces a full check.
    DataChecksum {
        /// Home block.
        fs_block: u64,
        /// Journal block of the bad copy.
        jblock: u64,
        /// Transaction.
        sequence: u32,
    },
    /// A commit block failed its checksum: the log ends before this
    /// transaction (`j_failed_commit`; e2fsck reports the transaction as
    /// corrupt and sets `s_errno`).
    CommitChecksum {
        /// The transaction that was not replayed.
        sequence: u32,
        /// Journal block of its commit block.
        jblock: u64,
    },
    /// A checksum mismatch in a transaction whose commit time went backwards:
    /// stale blocks of an older log, the log ends there.
    StaleBlocks {
        /// The transaction number the stale blocks carried.
        sequence: u32,
        /// Journal block of the commit block.
        jblock: u64,
    },
    /// A tag names a block past the end of the filesystem: its copy is not
    /// replayed (e2fsck writes it past the end of the image; the kernel's
    /// write fails and so does the mount).
    BeyondEnd {
        /// Home block named by the tag.
        fs_block: u64,
        /// Journal block of the copy.
        jblock: u64,
        /// Transaction.
        sequence: u32,
    },
    /// The log ran once around the journal without ending; the scan stopped.
    EndlessLog {
        /// Journal block where the scan stopped.
        jblock: u64,
    },
}

/// Damage that ended the log before its last transaction: the transactions
/// before `sequence` are replayed, the rest of the log is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDamage {
    /// The first transaction not replayed.
    pub sequence: u32,
    /// Journal block where the damage was found.
    pub jblock: u64,
    /// What is wrong.
    pub problem: LogProblem,
}

impl std::fmt::Display for LogDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "transaction {} (journal block {}): {}", self.sequence, self.jblock, self.problem)
    }
}

/// What recovery found in the log: the blocks to write home and the
/// sequence numbers to continue with.
#[derive(Debug, Clone)]
pub struct Recovery {
    geo: Option<JournalGeometry>,
    block_size: u32,
    start_sequence: u32,
    end_sequence: u32,
    copies: BTreeMap<u64, JournalCopy>,
    failed_commit: Option<u32>,
    damage: Option<LogDamage>,
    warnings: Vec<RecoveryWarning>,
    revoke_hits: u64,
}

/// Reads the journal superblock of `io` and runs the three passes of
/// recovery for a filesystem of `block_size`. Writes nothing.
pub fn scan(io: &mut impl JournalIo, block_size: u32) -> Result<Recovery, JournalError> {
    let sb = read_superblock(io, block_size)?;
    let geo = JournalGeometry::new(&sb, block_size, io.len_blocks())?;
    scan_with(io, geo)
}

/// [`scan`] with an already validated superblock.
pub fn scan_with(io: &mut impl JournalIo, geo: JournalGeometry) -> Result<Recovery, JournalError> {
    let mut rec = Recovery {
        block_size: geo.block_size,
        start_sequence: geo.sequence,
        end_sequence: geo.sequence,
        geo: None,
        copies: BTreeMap::new(),
        failed_commit: None,
        damage: None,
        warnings: Vec::new(),
        revoke_hits: 0,
    };
    if geo.start == 0 {
        return Ok(rec);
    }
    let mut walk = Walk { io, geo: &geo, buf: vec![0; geo.block_size as usize], data: Vec::new() };
    let mut state = PassState::default();
    for pass in [Pass::Scan, Pass::Revoke, Pass::Replay] {
        walk.pass(pass, &mut state)?;
    }
    rec.end_sequence = state.end.unwrap_or(geo.sequence);
    rec.copies = state.copies;
    rec.failed_commit = state.failed_commit;
    rec.damage = state.damage;
    rec.warnings = state.warnings;
    rec.revoke_hits = state.revoke_hits;
    rec.geo = Some(geo);
    Ok(rec)
}

impl Recovery {
    /// Whether the log held anything (`s_start != 0`).
    pub fn needs_recovery(&self) -> bool {
        self.geo.is_some()
    }

    /// Filesystem blocks with a copy to write home, ascending.
    pub fn blocks(&self) -> impl Iterator<Item = u64> + '_ {
        self.copies.keys().copied()
    }

    /// Number of blocks to write home.
    pub fn block_count(&self) -> usize {
        self.copies.len()
    }

    /// Where the copy of `fs_block` to replay lives, if any.
    pub fn copy_of(&self, fs_block: u64) -> Option<JournalCopy> {
        self.copies.get(&fs_block).copied()
    }

    /// The first transaction of the log (`s_sequence`).
    pub fn start_sequence(&self) -> u32 {
        self.start_sequence
    }

    /// The validated journal superblock of a log that needs recovery.
    pub fn geometry(&self) -> Option<&JournalGeometry> {
        self.geo.as_ref()
    }

    /// The transaction whose fast commits recovery must replay after the
    /// log (`info->end_transaction`), when the journal has a fast-commit
    /// area and the log needs recovery.
    pub fn fast_commit_tid(&self) -> Option<u32> {
        self.geo.as_ref().filter(|g| g.features.fast_commit).map(|_| self.end_sequence)
    }

    /// The first transaction not replayed (`info.end_transaction`).
    pub fn end_sequence(&self) -> u32 {
        self.end_sequence
    }

    /// Number of committed transactions replayed.
    pub fn transactions(&self) -> u32 {
        self.end_sequence.wrapping_sub(self.start_sequence)
    }

    /// The sequence the journal superblock gets after replay:
    /// `end_transaction + 1`, as the kernel and e2fsck restart the log, so
    /// that stale commit blocks can never match. When the log ended early
    /// (a bad commit block or [`LogDamage`]), committed transactions may
    /// lie beyond the end, with numbers up to one per log block past the
    /// start: the sequence moves past all of them.
    pub fn next_sequence(&self) -> u32 {
        let Some(geo) = &self.geo else { return self.start_sequence };
        let next = self.end_sequence.wrapping_add(1);
        if self.failed_commit.is_none() && self.damage.is_none() {
            return next;
        }
        let past_log = self.start_sequence.wrapping_add(geo.log_blocks() as u32).wrapping_add(1);
        if tid_gt(past_log, next) { past_log } else { next }
    }

    /// The transaction whose commit block failed its checksum, if any.
    pub fn failed_commit(&self) -> Option<u32> {
        self.failed_commit
    }

    /// The damage that ended the log early, if any.
    pub fn damage(&self) -> Option<&LogDamage> {
        self.damage.as_ref()
    }

    /// Whether recovery met anything the kernel treats as an error (a bad
    /// commit block, damage, a data block that failed its checksum): the
    /// caller records an error on the filesystem so that a full check
    /// follows, as e2fsck does after such a replay.
    pub fn has_errors(&self) -> bool {
        self.failed_commit.is_some() || self.damage.is_some() || self.has_block_errors()
    }

    /// What was skipped or ignored.
    pub fn warnings(&self) -> &[RecoveryWarning] {
        &self.warnings
    }

    /// Whether a data block failed its checksum (the kernel fails such a
    /// recovery after replaying the rest, e2fsck then forces a full check)
    /// or was left out as lying past the end of the filesystem. The caller
    /// should not consider the filesystem clean.
    pub fn has_block_errors(&self) -> bool {
        self.warnings.iter().any(|w| matches!(w, RecoveryWarning::DataChecksum { .. } | RecoveryWarning::BeyondEnd { .. }))
    }

    /// Leaves out the copies of blocks at or past `blocks_count` (a damaged
    /// tag), each with a [`RecoveryWarning::BeyondEnd`].
    pub fn exclude_beyond(&mut self, blocks_count: u64) {
        let beyond = self.copies.split_off(&blocks_count);
        for (fs_block, c) in beyond {
            self.warnings.push(RecoveryWarning::BeyondEnd { fs_block, jblock: c.jblock, sequence: c.sequence });
        }
    }

    /// Number of tagged blocks skipped because a later (or the same)
    /// transaction revoked them.
    pub fn revoke_hits(&self) -> u64 {
        self.revoke_hits
    }

    /// Reads the journal's copy of `fs_block` (unescaped) into `buf` (one
    /// block). Returns `false`, leaving `buf` alone, if the journal has none.
    pub fn read_block(&self, io: &mut impl JournalIo, fs_block: u64, buf: &mut [u8]) -> Result<bool, JournalError> {
        let Some(copy) = self.copies.get(&fs_block) else {
            return Ok(false);
        };
        if buf.len() != self.block_size as usize {
            return Err(JournalError::InvalidInput(format!("buffer of {} bytes for a block of {}", buf.len(), self.block_size)));
        }
        read_block(io, copy.jblock, buf)?;
        if copy.escaped {
            buf[..4].copy_from_slice(&JBD2_MAGIC.to_be_bytes());
        }
        Ok(true)
    }

    /// Writes every block home through `write_home(fs_block, data)`, in
    /// ascending block order. The caller flushes its device afterwards, then
    /// writes [`Recovery::finish`]'s superblock.
    pub fn replay<E: Into<BoxError>>(
        &self,
        io: &mut impl JournalIo,
        mut write_home: impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<(), JournalError> {
        let mut buf = vec![0; self.block_size as usize];
        for &b in self.copies.keys() {
            self.read_block(io, b, &mut buf)?;
            write_home(b, &buf).map_err(|e| JournalError::io(IoOp::WriteHome, b, e))?;
        }
        Ok(())
    }

    /// Updates `sb` as e2fsck leaves it after a replay: `s_start = 0` (the
    /// log is empty), `s_sequence` = [`Recovery::next_sequence`], and a
    /// fresh checksum. Leaves a journal that did not need recovery alone.
    ///
    /// With a bad commit block ([`Recovery::failed_commit`]) e2fsck first
    /// stores -EINVAL in `s_errno`, then moves it to the ext4 superblock as
    /// `EXT2_ERROR_FS` and clears it again; the caller should mark the
    /// filesystem as having errors itself.
    pub fn finish(&self, sb: &mut JournalSuperblock) {
        if !self.needs_recovery() {
            return;
        }
        sb.s_start.set(0);
        sb.s_sequence.set(self.next_sequence());
        sb.update_checksum();
    }
}

/// Scans, replays through `write_home`, then writes the finished journal
/// superblock and flushes the journal. The caller flushes its device inside
/// `write_home`'s last call or before, and clears `needs_recovery` after.
///
/// Only the log's blocks are written: fast commits after it (see
/// [`Recovery::fast_commit_tid`] and [`crate::fast_commit::scan`]) are the
/// filesystem's to apply, before the superblock is finished; a caller that
/// cannot apply them should use [`scan`] and refuse a journal that has them.
pub fn recover<E: Into<BoxError>>(
    io: &mut impl JournalIo,
    block_size: u32,
    write_home: impl FnMut(u64, &[u8]) -> Result<(), E>,
) -> Result<Recovery, JournalError> {
    let mut sb = read_superblock(io, block_size)?;
    let geo = JournalGeometry::new(&sb, block_size, io.len_blocks())?;
    let rec = scan_with(io, geo)?;
    if rec.needs_recovery() {
        rec.replay(io, write_home)?;
        rec.finish(&mut sb);
        crate::io::write_superblock(io, block_size, &sb)?;
    }
    Ok(rec)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Scan,
    Revoke,
    Replay,
}

/// What the passes carry between them (`struct recovery_info` and the revoke table).
#[derive(Default)]
struct PassState {
    end: Option<u32>,
    failed_commit: Option<u32>,
    damage: Option<LogDamage>,
    revoked: HashMap<u64, u32>,
    copies: BTreeMap<u64, JournalCopy>,
    warnings: Vec<RecoveryWarning>,
    revoke_hits: u64,
}

/// Per-pass variables of `do_one_pass`.
struct Cursor {
    next_id: u32,
    block: u64,
    walked: u64,
    crc32_sum: u32,
    need_check_commit_time: bool,
    last_commit_time: u64,
}

/// What to do after a log block.
enum Step {
    Continue,
    Done,
}

struct Walk<'a, I> {
    io: &'a mut I,
    geo: &'a JournalGeometry,
    buf: Vec<u8>,
    data: Vec<u8>,
}

impl<I: JournalIo> Walk<'_, I> {
    /// One pass over the log (`do_one_pass`).
    fn pass(&mut self, pass: Pass, st: &mut PassState) -> Result<(), JournalError> {
        let mut c = Cursor {
            next_id: self.geo.sequence,
            block: self.geo.start,
            walked: 0,
            crc32_sum: !0,
            need_check_commit_time: false,
            last_commit_time: 0,
        };
        loop {
            if pass != Pass::Scan && st.end.is_some_and(|end| tid_geq(c.next_id, end)) {
                break;
            }
            if c.walked >= self.geo.log_blocks() {
                if pass == Pass::Scan {
                    st.warnings.push(RecoveryWarning::EndlessLog { jblock: c.block });
                }
                break;
            }
            if let Step::Done = self.step(pass, st, &mut c)? {
                break;
            }
        }
        match (pass, st.end) {
            (Pass::Scan, None) => st.end = Some(c.next_id),
            (Pass::Scan, Some(_)) => {}
            (_, end) => {
                let expected = end.unwrap_or(c.next_id);
                if expected != c.next_id {
                    return Err(JournalError::Corrupt {
                        jblock: c.block,
                        sequence: c.next_id,
                        problem: LogProblem::PassMismatch { found: c.next_id, expected },
                    });
                }
            }
        }
        Ok(())
    }

    /// Reads the next log block and handles it.
    fn step(&mut self, pass: Pass, st: &mut PassState, c: &mut Cursor) -> Result<Step, JournalError> {
        let cur = c.block;
        self.read(cur, false)?;
        c.block = self.geo.next(cur);
        c.walked += 1;
        let Some(h) = Header::parse(&self.buf) else {
            return Ok(Step::Done);
        };
        if h.h_sequence.get() != c.next_id {
            return Ok(Step::Done);
        }
        match h.block_type() {
            Some(BlockType::Descriptor) => self.descriptor(pass, st, c, cur),
            Some(BlockType::Commit) => self.commit(pass, st, c, cur),
            Some(BlockType::Revoke) => self.revoke(pass, st, c, cur),
            _ => Ok(Step::Done),
        }
    }

    /// Reads journal block `jblock` into `self.buf`, or `self.data` if `data`.
    fn read(&mut self, jblock: u64, data: bool) -> Result<(), JournalError> {
        if jblock >= self.geo.maxlen {
            let problem = LogProblem::OutOfRange { len: self.geo.maxlen };
            return Err(JournalError::Corrupt { jblock, sequence: 0, problem });
        }
        if data {
            self.data.resize(self.buf.len(), 0);
            read_block(self.io, jblock, &mut self.data)
        } else {
            read_block(self.io, jblock, &mut self.buf)
        }
    }

    fn tail_checksum_ok(&self) -> bool {
        if !self.geo.features.csum_v2_or_v3() {
            return true;
        }
        let n = self.buf.len() - crate::format::BLOCK_TAIL_SIZE;
        be32_at(&self.buf, n) == descriptor_block_checksum(self.geo.csum_seed, &self.buf)
    }

    fn descriptor(&mut self, pass: Pass, st: &mut PassState, c: &mut Cursor, cur: u64) -> Result<Step, JournalError> {
        if !self.tail_checksum_ok() {
            // PASS_SCAN can meet stale blocks of an older log: decide at the commit block.
            if pass != Pass::Scan {
                let problem = LogProblem::DescriptorChecksum;
                return Err(JournalError::Corrupt { jblock: cur, sequence: c.next_id, problem });
            }
            c.need_check_commit_time = true;
        }
        let tags = self.tags();
        match pass {
            Pass::Scan if self.geo.features.checksum_v1 && !c.need_check_commit_time && st.end.is_none() => {
                c.crc32_sum = crc32_be(c.crc32_sum, &self.buf);
                for _ in 0..tags.len() {
                    let b = c.block;
                    c.block = self.geo.next(b);
                    c.walked += 1;
                    self.read(b, true)?;
                    c.crc32_sum = crc32_be(c.crc32_sum, &self.data);
                }
            }
            Pass::Scan | Pass::Revoke => {
                let n = tags.len() as u64;
                c.block = self.geo.advance(c.block, n % self.geo.log_blocks());
                c.walked += n;
            }
            Pass::Replay => {
                for (blocknr, flags, checksum) in tags {
                    let jblock = c.block;
                    c.block = self.geo.next(jblock);
                    c.walked += 1;
                    self.replay_tag(st, c.next_id, jblock, blocknr, flags, checksum)?;
                }
            }
        }
        Ok(Step::Continue)
    }

    /// The tags of the descriptor in `self.buf` as (block, flags, checksum),
    /// walked as `count_tags` walks them.
    fn tags(&self) -> Vec<(u64, u32, u32)> {
        let f = &self.geo.features;
        let tag_bytes = f.tag_bytes();
        let size = self.buf.len() - f.tail_bytes();
        let mut pos = crate::format::HEADER_SIZE;
        let mut out = Vec::new();
        while pos + tag_bytes <= size {
            let Some(t) = parse_tag(&self.buf[pos..], f.csum_v3, f.csum_v2, f.bit64) else {
                break;
            };
            out.push((t.blocknr, t.flags, t.checksum));
            pos += tag_bytes;
            if t.flags & FLAG_SAME_UUID == 0 {
                pos += TAG_UUID_SIZE;
            }
            if t.flags & FLAG_LAST_TAG != 0 {
                break;
            }
        }
        out
    }

    fn replay_tag(
        &mut self,
        st: &mut PassState,
        sequence: u32,
        jblock: u64,
        blocknr: u64,
        flags: u32,
        checksum: u32,
    ) -> Result<(), JournalError> {
        if st.revoked.get(&blocknr).is_some_and(|&rseq| !tid_gt(sequence, rseq)) {
            st.revoke_hits += 1;
            return Ok(());
        }
        if self.geo.features.csum_v2_or_v3() {
            self.read(jblock, true)?;
            let mut sum = data_block_checksum(self.geo.csum_seed, sequence, &self.data);
            if self.geo.features.csum_v2 {
                sum &= 0xFFFF;
            }
            if sum != checksum {
                st.warnings.push(RecoveryWarning::DataChecksum { fs_block: blocknr, jblock, sequence });
                return Ok(());
            }
        }
        st.copies.insert(blocknr, JournalCopy { jblock, escaped: flags & FLAG_ESCAPE != 0, sequence });
        Ok(())
    }

    /// A commit block. Checksums are checked in PASS_SCAN only; where
    /// e2fsck's code leaves its `switch` with `break` (a failed commit),
    /// the walk goes on to the next block with the same transaction
    /// number, which then normally ends the log.
    fn commit(&mut self, pass: Pass, st: &mut PassState, c: &mut Cursor, cur: u64) -> Result<Step, JournalError> {
        if pass != Pass::Scan {
            c.next_id = c.next_id.wrapping_add(1);
            return Ok(Step::Continue);
        }
        let commit_time = be64_at(&self.buf, COMMIT_SEC_OFFSET);
        if c.need_check_commit_time {
            // A bad checksum earlier in this transaction: damage if the
            // commit is not older than the last one, else stale blocks.
            if commit_time >= c.last_commit_time {
                st.damaged(c.next_id, cur, LogProblem::TransactionChecksum);
            } else {
                st.warnings.push(RecoveryWarning::StaleBlocks { sequence: c.next_id, jblock: cur });
            }
            return Ok(Step::Done);
        }
        let good = if self.geo.features.checksum_v1 {
            if let Some(end) = st.end {
                st.failed_commit = Some(end);
                return Ok(Step::Continue);
            }
            self.v1_commit_checksum_ok(c.crc32_sum)
        } else {
            !self.geo.features.csum_v2_or_v3()
                || be32_at(&self.buf, COMMIT_CHKSUM_OFFSET) == commit_block_checksum(self.geo.csum_seed, &self.buf)
        };
        if good && self.geo.features.checksum_v1 {
            c.crc32_sum = !0;
        }
        if !good {
            if commit_time < c.last_commit_time {
                st.warnings.push(RecoveryWarning::StaleBlocks { sequence: c.next_id, jblock: cur });
                return Ok(Step::Done);
            }
            st.end = Some(c.next_id);
            st.warnings.push(RecoveryWarning::CommitChecksum { sequence: c.next_id, jblock: cur });
            if !self.geo.features.async_commit {
                st.failed_commit = Some(c.next_id);
                return Ok(Step::Continue);
            }
        }
        c.last_commit_time = commit_time;
        c.next_id = c.next_id.wrapping_add(1);
        Ok(Step::Continue)
    }

    /// The v1 commit checksum: the running crc32 of the transaction, or an
    /// unused (all zero) checksum field.
    fn v1_commit_checksum_ok(&self, crc32_sum: u32) -> bool {
        let found = be32_at(&self.buf, COMMIT_CHKSUM_OFFSET);
        let (kind, size) = (self.buf[12], self.buf[13]);
        (found == crc32_sum && kind == CHECKSUM_CRC32 && size == CRC32_CHKSUM_SIZE) || (kind == 0 && size == 0 && found == 0)
    }

    /// A revoke block: its checksum and record count are checked in
    /// PASS_SCAN, its records collected in PASS_REVOKE.
    fn revoke(&mut self, pass: Pass, st: &mut PassState, c: &mut Cursor, cur: u64) -> Result<Step, JournalError> {
        let count = be32_at(&self.buf, REVOKE_COUNT_OFFSET);
        let count_ok = count as usize <= self.buf.len() - self.geo.features.tail_bytes();
        match pass {
            Pass::Scan if !self.tail_checksum_ok() => c.need_check_commit_time = true,
            Pass::Scan if !count_ok => {
                // e2fsck fails in PASS_REVOKE (-EINVAL), newer kernels in
                // PASS_SCAN: the log ends before this transaction.
                st.damaged(c.next_id, cur, LogProblem::RevokeCount { count });
                return Ok(Step::Done);
            }
            Pass::Revoke if !count_ok => {
                let problem = LogProblem::RevokeCount { count };
                return Err(JournalError::Corrupt { jblock: cur, sequence: c.next_id, problem });
            }
            Pass::Revoke => self.revoke_records(st, c.next_id, count as usize),
            _ => {}
        }
        Ok(Step::Continue)
    }

    /// Records the revoke records of the block in `self.buf` (`scan_revoke_records`).
    fn revoke_records(&self, st: &mut PassState, sequence: u32, count: usize) {
        let rec = self.geo.features.revoke_record_bytes();
        let mut off = REVOKE_HEADER_SIZE;
        while off + rec <= count {
            let blocknr = if rec == 4 { u64::from(be32_at(&self.buf, off)) } else { be64_at(&self.buf, off) };
            off += rec;
            let seq = st.revoked.entry(blocknr).or_insert(sequence);
            if tid_gt(sequence, *seq) {
                *seq = sequence;
            }
        }
    }
}

impl PassState {
    /// Ends the log before transaction `sequence` because of damage found
    /// at `jblock` (an end already known from a bad commit stays).
    fn damaged(&mut self, sequence: u32, jblock: u64, problem: LogProblem) {
        self.end.get_or_insert(sequence);
        self.damage.get_or_insert(LogDamage { sequence, jblock, problem });
    }
}

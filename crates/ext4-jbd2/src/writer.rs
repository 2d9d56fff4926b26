//! The transaction writer: [`JournalWriter`] encodes a transaction into log
//! blocks as the kernel's `jbd2_journal_commit_transaction` lays them out
//! (revoke blocks, descriptor blocks with their tags, the data blocks, a
//! commit block), writes it in a crash-safe order, and moves the log tail
//! when the caller has checkpointed.

use std::collections::{BTreeSet, VecDeque};

use zerocopy::IntoBytes;

use crate::error::JournalError;
use crate::format::{
    BLOCK_TAIL_SIZE, BlockType, CHECKSUM_CRC32, CHECKSUM_CRC32C, COMMIT_CHKSUM_OFFSET, COMMIT_SEC_OFFSET, COMPAT_CHECKSUM,
    CRC32_CHKSUM_SIZE, FLAG_ESCAPE, FLAG_LAST_TAG, FLAG_SAME_UUID, HEADER_SIZE, Header, INCOMPAT_64BIT, INCOMPAT_CSUM_V2, INCOMPAT_CSUM_V3,
    INCOMPAT_REVOKE, JBD2_MAGIC, JournalSuperblock, REVOKE_COUNT_OFFSET, REVOKE_HEADER_SIZE, TAG_UUID_SIZE, Tag, commit_block_checksum,
    crc32_be, data_block_checksum, descriptor_block_checksum, write_tag,
};
use crate::geometry::JournalGeometry;
use crate::io::{JournalIo, flush, read_superblock, write_block, write_superblock};

/// The time stamped in a commit block (`h_commit_sec`, `h_commit_nsec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitTime {
    /// Seconds since the epoch.
    pub sec: u64,
    /// Nanoseconds.
    pub nsec: u32,
}

impl CommitTime {
    /// The current time.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Self { sec: d.as_secs(), nsec: d.subsec_nanos() }
    }
}

/// A transaction encoded into journal blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedTransaction {
    /// Transaction id (`h_sequence` of every block).
    pub sequence: u32,
    /// Journal block of the first block.
    pub start: u64,
    /// Revoke, descriptor and data blocks with their journal block numbers,
    /// in log order.
    pub body: Vec<(u64, Vec<u8>)>,
    /// The commit block and its journal block number.
    pub commit: (u64, Vec<u8>),
    /// The journal block after the commit block: where the next transaction goes.
    pub next_head: u64,
}

impl EncodedTransaction {
    /// Number of journal blocks, commit block included.
    pub fn len_blocks(&self) -> u64 {
        self.body.len() as u64 + 1
    }
}

/// A committed transaction not yet checkpointed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Live {
    sequence: u32,
    start: u64,
}

/// Writes transactions into a journal that needs no recovery.
///
/// Crash-safe order (the caller's part in brackets): [file data written
/// and flushed; `needs_recovery` set in the ext4 superblock and flushed]
/// -> [`JournalWriter::commit`] (body, journal superblock if the log was
/// empty, flush, commit block, flush) -> [write the blocks home, flush] ->
/// [`JournalWriter::checkpoint`] (log empty: `s_start = 0`) -> [clear
/// `needs_recovery` when the filesystem is closed].
#[derive(Debug, Clone)]
pub struct JournalWriter {
    geo: JournalGeometry,
    sb: JournalSuperblock,
    head: u64,
    next_sequence: u32,
    live: VecDeque<Live>,
}

impl JournalWriter {
    /// Reads and validates the journal superblock of `io`. The journal must
    /// be empty (`s_start == 0`): replay it first.
    pub fn open(io: &mut impl JournalIo, block_size: u32) -> Result<Self, JournalError> {
        let sb = read_superblock(io, block_size)?;
        Self::new(sb, block_size, io.len_blocks())
    }

    /// A writer for the journal with superblock `sb` (see [`JournalWriter::open`]).
    pub fn new(sb: JournalSuperblock, block_size: u32, journal_blocks: u64) -> Result<Self, JournalError> {
        let geo = JournalGeometry::new(&sb, block_size, journal_blocks)?;
        if geo.start != 0 {
            return Err(JournalError::superblock("s_start", "the journal needs recovery before it can be written"));
        }
        // As the kernel does for a clean journal: one past s_sequence, so no
        // stale commit block can ever match.
        let next_sequence = geo.sequence.wrapping_add(1);
        Ok(Self { head: geo.first, next_sequence, live: VecDeque::new(), geo, sb })
    }

    /// The validated journal geometry.
    pub fn geometry(&self) -> &JournalGeometry {
        &self.geo
    }

    /// The journal superblock as last written (or read).
    pub fn superblock(&self) -> &JournalSuperblock {
        &self.sb
    }

    /// The id the next transaction gets.
    pub fn next_sequence(&self) -> u32 {
        self.next_sequence
    }

    /// The journal block where the next transaction starts.
    pub fn head(&self) -> u64 {
        self.head
    }

    /// Whether every committed transaction has been checkpointed.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Free log blocks for new transactions. One block is kept free so the
    /// head never reaches the tail.
    pub fn free_blocks(&self) -> u64 {
        let n = self.geo.log_blocks();
        let used = match self.live.front() {
            None => 0,
            Some(t) => (self.head + n - t.start) % n,
        };
        n - used - 1
    }

    /// Journal blocks a transaction of `blocks` tagged blocks and `revokes`
    /// revoke records takes, commit block included.
    pub fn blocks_needed(&self, blocks: u64, revokes: u64) -> u64 {
        let revoke_blocks = revokes.div_ceil(self.revokes_per_block() as u64);
        let descriptors = blocks.div_ceil(self.tags_per_descriptor() as u64);
        revoke_blocks + descriptors + blocks + 1
    }

    fn revokes_per_block(&self) -> usize {
        let f = &self.geo.features;
        (self.geo.block_size as usize - REVOKE_HEADER_SIZE - f.tail_bytes()) / f.revoke_record_bytes()
    }

    /// Tags per descriptor block, as the kernel fills them: a descriptor is
    /// closed when less than a tag, a UUID and the tail are left.
    fn tags_per_descriptor(&self) -> usize {
        let f = &self.geo.features;
        let tag = f.tag_bytes();
        let mut left = self.geo.block_size as usize - HEADER_SIZE - tag - TAG_UUID_SIZE;
        let mut n = 1;
        while left >= tag + TAG_UUID_SIZE + f.tail_bytes() {
            left -= tag;
            n += 1;
        }
        n
    }

    /// Encodes a transaction writing `blocks` (home block, one block of
    /// data) and revoking `revoked`, starting at the head. Revokes of
    /// blocks the transaction also writes are dropped (the kernel cancels
    /// them). Fails if it does not fit in the free log.
    pub fn encode<B: AsRef<[u8]>>(
        &self,
        blocks: &[(u64, B)],
        revoked: &[u64],
        time: CommitTime,
    ) -> Result<EncodedTransaction, JournalError> {
        self.check_input(blocks, revoked)?;
        let written: BTreeSet<u64> = blocks.iter().map(|(b, _)| *b).collect();
        let revoked: Vec<u64> = revoked.iter().copied().collect::<BTreeSet<u64>>().into_iter().filter(|b| !written.contains(b)).collect();
        let needed = self.blocks_needed(blocks.len() as u64, revoked.len() as u64);
        if needed > self.free_blocks() {
            return Err(JournalError::NoSpace { needed, free: self.free_blocks() });
        }
        let mut enc = Encoder { w: self, seq: self.next_sequence, at: self.head, body: Vec::new(), crc32_sum: !0 };
        for chunk in revoked.chunks(self.revokes_per_block()) {
            enc.revoke_block(chunk);
        }
        for chunk in blocks.chunks(self.tags_per_descriptor()) {
            enc.descriptor_and_data(chunk);
        }
        let commit = (enc.at, enc.commit_block(time));
        let next_head = self.geo.next(enc.at);
        Ok(EncodedTransaction { sequence: self.next_sequence, start: self.head, body: enc.body, commit, next_head })
    }

    fn check_input<B: AsRef<[u8]>>(&self, blocks: &[(u64, B)], revoked: &[u64]) -> Result<(), JournalError> {
        let bs = self.geo.block_size as usize;
        if let Some((b, d)) = blocks.iter().find(|(_, d)| d.as_ref().len() != bs) {
            return Err(JournalError::InvalidInput(format!("block {b}: {} bytes of data, the block size is {bs}", d.as_ref().len())));
        }
        let bit64 = self.geo.features.bit64;
        let too_big = |b: u64| !bit64 && b > u64::from(u32::MAX);
        if let Some(b) = blocks.iter().map(|(b, _)| *b).chain(revoked.iter().copied()).find(|&b| too_big(b)) {
            return Err(JournalError::InvalidInput(format!("block {b} needs the journal's 64bit feature")));
        }
        if !revoked.is_empty() && !self.geo.features.revoke {
            return Err(JournalError::InvalidInput("revokes need the journal's revoke feature".into()));
        }
        Ok(())
    }

    /// Writes a transaction (see [`JournalWriter::encode`]) durably: the
    /// body, the journal superblock if the log was empty, flush, the commit
    /// block, flush. Returns its id. The caller then writes the blocks home
    /// and calls [`JournalWriter::checkpoint`].
    pub fn commit<B: AsRef<[u8]>>(
        &mut self,
        io: &mut impl JournalIo,
        blocks: &[(u64, B)],
        revoked: &[u64],
        time: CommitTime,
    ) -> Result<u32, JournalError> {
        let enc = self.encode(blocks, revoked, time)?;
        self.write(io, &enc)?;
        Ok(enc.sequence)
    }

    /// Writes an already encoded transaction (the next one: made by
    /// [`JournalWriter::encode`] on this writer's current state).
    pub fn write(&mut self, io: &mut impl JournalIo, enc: &EncodedTransaction) -> Result<(), JournalError> {
        if enc.sequence != self.next_sequence || enc.start != self.head {
            return Err(JournalError::InvalidInput(format!(
                "transaction {} at {} is not the next one ({} at {})",
                enc.sequence, enc.start, self.next_sequence, self.head
            )));
        }
        for (jblock, data) in &enc.body {
            write_block(io, *jblock, data)?;
        }
        if self.live.is_empty() {
            self.set_tail(io, enc.start, enc.sequence)?;
        }
        flush(io)?;
        write_block(io, enc.commit.0, &enc.commit.1)?;
        flush(io)?;
        self.live.push_back(Live { sequence: enc.sequence, start: enc.start });
        self.head = enc.next_head;
        self.next_sequence = enc.sequence.wrapping_add(1);
        Ok(())
    }

    /// Releases every committed transaction once the caller has written
    /// their blocks home and flushed: the journal superblock gets
    /// `s_start = 0` (log empty) and `s_sequence` = the next id.
    pub fn checkpoint(&mut self, io: &mut impl JournalIo) -> Result<(), JournalError> {
        self.checkpoint_through(io, self.next_sequence.wrapping_sub(1))
    }

    /// Releases the committed transactions up to `sequence` (included),
    /// moving the tail to the oldest one left, or emptying the log.
    pub fn checkpoint_through(&mut self, io: &mut impl JournalIo, sequence: u32) -> Result<(), JournalError> {
        while self.live.front().is_some_and(|t| !crate::geometry::tid_gt(t.sequence, sequence)) {
            self.live.pop_front();
        }
        match self.live.front().copied() {
            Some(t) => self.set_tail(io, t.start, t.sequence)?,
            None => self.set_tail(io, 0, self.next_sequence)?,
        }
        flush(io)
    }

    /// Writes `s_start`/`s_sequence` (the log tail) to the journal superblock.
    fn set_tail(&mut self, io: &mut impl JournalIo, start: u64, sequence: u32) -> Result<(), JournalError> {
        self.sb.s_start.set(start as u32);
        self.sb.s_sequence.set(sequence);
        self.sb.update_checksum();
        write_superblock(io, self.geo.block_size, &self.sb)
    }
}

/// Sets the journal features the kernel sets when it mounts a filesystem
/// read-write (`ext4_set_journal_csum_feature_set` and friends): revoke,
/// 64-bit tags for a 64bit filesystem, and checksum v3 (crc32c) with
/// `metadata_csum`. Returns whether `sb` changed; the caller writes it
/// (with [`crate::write_superblock`]) while the journal is empty. A v1
/// superblock cannot hold features and is left alone.
pub fn set_mount_features(sb: &mut JournalSuperblock, fs_64bit: bool, metadata_csum: bool) -> bool {
    if sb.s_header.block_type() != Some(BlockType::SuperblockV2) {
        return false;
    }
    let (compat, incompat) = (sb.s_feature_compat.get(), sb.s_feature_incompat.get());
    let mut new_incompat = incompat | INCOMPAT_REVOKE;
    if fs_64bit {
        new_incompat |= INCOMPAT_64BIT;
    }
    let mut new_compat = compat;
    if metadata_csum {
        new_incompat = (new_incompat | INCOMPAT_CSUM_V3) & !INCOMPAT_CSUM_V2;
        new_compat &= !COMPAT_CHECKSUM;
    }
    let csum_type = if metadata_csum { CHECKSUM_CRC32C } else { sb.s_checksum_type };
    if (new_compat, new_incompat, csum_type) == (compat, incompat, sb.s_checksum_type) {
        return false;
    }
    sb.s_feature_compat.set(new_compat);
    sb.s_feature_incompat.set(new_incompat);
    sb.s_checksum_type = csum_type;
    sb.update_checksum();
    true
}

/// A fresh, empty v2 journal superblock, as `ext2fs_create_journal_superblock2`
/// writes one for an internal journal (one user, the log from block 1),
/// starting at transaction `sequence`; for rebuilding one that cannot be read.
pub fn fresh_superblock(block_size: u32, maxlen: u32, uuid: [u8; 16], sequence: u32) -> JournalSuperblock {
    let mut sb = JournalSuperblock::zeroed();
    sb.s_header = Header::new(BlockType::SuperblockV2, 0);
    sb.s_blocksize.set(block_size);
    sb.s_maxlen.set(maxlen);
    sb.s_nr_users.set(1);
    sb.s_first.set(1);
    sb.s_sequence.set(sequence);
    sb.s_uuid = uuid;
    sb
}

/// Lays out the blocks of one transaction.
struct Encoder<'a> {
    w: &'a JournalWriter,
    seq: u32,
    at: u64,
    body: Vec<(u64, Vec<u8>)>,
    crc32_sum: u32,
}

impl Encoder<'_> {
    fn push(&mut self, block: Vec<u8>) {
        self.body.push((self.at, block));
        self.at = self.w.geo.next(self.at);
    }

    fn new_block(&self, kind: BlockType) -> Vec<u8> {
        let mut b = vec![0; self.w.geo.block_size as usize];
        b[..HEADER_SIZE].copy_from_slice(Header::new(kind, self.seq).as_bytes());
        b
    }

    fn set_tail_checksum(&self, b: &mut [u8]) {
        if self.w.geo.features.csum_v2_or_v3() {
            let c = descriptor_block_checksum(self.w.geo.csum_seed, b);
            let n = b.len() - BLOCK_TAIL_SIZE;
            b[n..].copy_from_slice(&c.to_be_bytes());
        }
    }

    fn revoke_block(&mut self, records: &[u64]) {
        let mut b = self.new_block(BlockType::Revoke);
        let mut off = REVOKE_HEADER_SIZE;
        for &r in records {
            if self.w.geo.features.bit64 {
                b[off..off + 8].copy_from_slice(&r.to_be_bytes());
                off += 8;
            } else {
                b[off..off + 4].copy_from_slice(&(r as u32).to_be_bytes());
                off += 4;
            }
        }
        b[REVOKE_COUNT_OFFSET..REVOKE_COUNT_OFFSET + 4].copy_from_slice(&(off as u32).to_be_bytes());
        self.set_tail_checksum(&mut b);
        self.push(b);
    }

    fn descriptor_and_data<B: AsRef<[u8]>>(&mut self, blocks: &[(u64, B)]) {
        let f = self.w.geo.features;
        let mut desc = self.new_block(BlockType::Descriptor);
        let mut data = Vec::with_capacity(blocks.len());
        let mut pos = HEADER_SIZE;
        for (i, (home, d)) in blocks.iter().enumerate() {
            let mut d = d.as_ref().to_vec();
            let mut flags = 0;
            if d[..4] == JBD2_MAGIC.to_be_bytes() {
                d[..4].fill(0);
                flags |= FLAG_ESCAPE;
            }
            if i > 0 {
                flags |= FLAG_SAME_UUID;
            }
            if i + 1 == blocks.len() {
                flags |= FLAG_LAST_TAG;
            }
            let checksum = match (f.csum_v3, f.csum_v2) {
                (true, _) => data_block_checksum(self.w.geo.csum_seed, self.seq, &d),
                (false, true) => data_block_checksum(self.w.geo.csum_seed, self.seq, &d) & 0xFFFF,
                _ => 0,
            };
            write_tag(&mut desc[pos..], &Tag { blocknr: *home, flags, checksum }, f.csum_v3, f.csum_v2, f.bit64);
            pos += f.tag_bytes();
            if i == 0 {
                desc[pos..pos + TAG_UUID_SIZE].copy_from_slice(&self.w.geo.uuid);
                pos += TAG_UUID_SIZE;
            }
            data.push(d);
        }
        self.set_tail_checksum(&mut desc);
        if f.checksum_v1 {
            self.crc32_sum = crc32_be(self.crc32_sum, &desc);
            for d in &data {
                self.crc32_sum = crc32_be(self.crc32_sum, d);
            }
        }
        self.push(desc);
        for d in data {
            self.push(d);
        }
    }

    fn commit_block(&self, time: CommitTime) -> Vec<u8> {
        let mut b = self.new_block(BlockType::Commit);
        if self.w.geo.features.checksum_v1 {
            b[12] = CHECKSUM_CRC32;
            b[13] = CRC32_CHKSUM_SIZE;
            b[COMMIT_CHKSUM_OFFSET..COMMIT_CHKSUM_OFFSET + 4].copy_from_slice(&self.crc32_sum.to_be_bytes());
        }
        b[COMMIT_SEC_OFFSET..COMMIT_SEC_OFFSET + 8].copy_from_slice(&time.sec.to_be_bytes());
        b[COMMIT_SEC_OFFSET + 8..COMMIT_SEC_OFFSET + 12].copy_from_slice(&time.nsec.to_be_bytes());
        if self.w.geo.features.csum_v2_or_v3() {
            let c = commit_block_checksum(self.w.geo.csum_seed, &b);
            b[COMMIT_CHKSUM_OFFSET..COMMIT_CHKSUM_OFFSET + 4].copy_from_slice(&c.to_be_bytes());
        }
        b
    }
}

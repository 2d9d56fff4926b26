//! [`JournalGeometry`]: the validated numbers of a journal superblock (the
//! checks of the kernel's `journal_load` and e2fsck's `e2fsck_journal_load`).

use crate::error::JournalError;
use crate::format::{
    BlockType, CHECKSUM_CRC32C, COMPAT_CHECKSUM, INCOMPAT_64BIT, INCOMPAT_ASYNC_COMMIT, INCOMPAT_CSUM_V2, INCOMPAT_CSUM_V3,
    INCOMPAT_FAST_COMMIT, INCOMPAT_REVOKE, JBD2_MAGIC, JournalSuperblock, KNOWN_INCOMPAT, MIN_JOURNAL_BLOCKS, SUPERBLOCK_SIZE, tag_bytes,
};

/// The journal features that change the log's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JournalFeatures {
    /// `COMPAT_CHECKSUM`: crc32 of each transaction in its commit block (v1).
    pub checksum_v1: bool,
    /// `INCOMPAT_REVOKE`.
    pub revoke: bool,
    /// `INCOMPAT_64BIT`: 64-bit block numbers in tags and revoke records.
    pub bit64: bool,
    /// `INCOMPAT_ASYNC_COMMIT`: a bad commit checksum ends the log instead of failing it.
    pub async_commit: bool,
    /// `INCOMPAT_CSUM_V2`.
    pub csum_v2: bool,
    /// `INCOMPAT_CSUM_V3`.
    pub csum_v3: bool,
    /// `INCOMPAT_FAST_COMMIT`: the last `s_num_fc_blks` blocks are the fast-commit area.
    pub fast_commit: bool,
}

impl JournalFeatures {
    /// Whether crc32c checksums (v2 or v3) protect every log block.
    pub fn csum_v2_or_v3(&self) -> bool {
        self.csum_v2 || self.csum_v3
    }

    /// Size of one block tag (`journal_tag_bytes`), without the UUID.
    pub fn tag_bytes(&self) -> usize {
        tag_bytes(self.csum_v3, self.csum_v2, self.bit64)
    }

    /// Size of one revoke record.
    pub fn revoke_record_bytes(&self) -> usize {
        if self.bit64 { 8 } else { 4 }
    }

    /// Bytes at the end of descriptor and revoke blocks kept for the checksum tail.
    pub fn tail_bytes(&self) -> usize {
        if self.csum_v2_or_v3() { crate::format::BLOCK_TAIL_SIZE } else { 0 }
    }
}

/// A journal superblock, validated, with the numbers derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalGeometry {
    /// Journal block size, equal to the filesystem's.
    pub block_size: u32,
    /// `s_first`: first block of the log.
    pub first: u64,
    /// End of the log area (exclusive): `s_maxlen`, less the fast-commit area.
    pub last: u64,
    /// `s_maxlen`: blocks of the journal.
    pub maxlen: u64,
    /// Features.
    pub features: JournalFeatures,
    /// Seed of v2/v3 checksums (crc32c of the UUID).
    pub csum_seed: u32,
    /// `s_uuid`.
    pub uuid: [u8; 16],
    /// `s_start` (0: the log is empty).
    pub start: u64,
    /// `s_sequence`: the first transaction expected in the log.
    pub sequence: u32,
}

impl JournalGeometry {
    /// Validates `sb` for a filesystem of `fs_block_size` whose journal has
    /// `journal_blocks` blocks (the journal inode's size).
    pub fn new(sb: &JournalSuperblock, fs_block_size: u32, journal_blocks: u64) -> Result<Self, JournalError> {
        if sb.s_header.h_magic.get() != JBD2_MAGIC {
            return Err(JournalError::superblock("h_magic", format!("{:#x} is not the jbd2 magic", sb.s_header.h_magic.get())));
        }
        let v2 = match sb.s_header.block_type() {
            Some(BlockType::SuperblockV1) => false,
            Some(BlockType::SuperblockV2) => true,
            Some(t) => {
                return Err(JournalError::superblock("h_blocktype", format!("{t:?} block where the superblock should be")));
            }
            None => {
                return Err(JournalError::Unsupported(format!("superblock type {}", sb.s_header.h_blocktype.get())));
            }
        };
        let features = if v2 { features_of(sb)? } else { JournalFeatures::default() };
        if features.csum_v2_or_v3() {
            if sb.s_checksum_type != CHECKSUM_CRC32C {
                return Err(JournalError::superblock("s_checksum_type", format!("{} is not crc32c", sb.s_checksum_type)));
            }
            if sb.s_checksum.get() != sb.compute_checksum() {
                return Err(JournalError::superblock("s_checksum", "superblock checksum mismatch"));
            }
        }
        if sb.s_blocksize.get() != fs_block_size || (fs_block_size as usize) < SUPERBLOCK_SIZE {
            return Err(JournalError::superblock(
                "s_blocksize",
                format!("{} differs from the filesystem block size {fs_block_size}", sb.s_blocksize.get()),
            ));
        }
        let maxlen = u64::from(sb.s_maxlen.get());
        if maxlen > journal_blocks {
            return Err(JournalError::superblock("s_maxlen", format!("{maxlen} blocks, the journal has only {journal_blocks}")));
        }
        let first = u64::from(sb.s_first.get());
        if first == 0 || first >= maxlen {
            return Err(JournalError::superblock("s_first", format!("{first} is outside the journal of {maxlen} blocks")));
        }
        let last = if features.fast_commit { log_end_with_fast_commit(sb, maxlen)? } else { maxlen };
        if first >= last {
            return Err(JournalError::superblock("s_first", format!("{first} leaves no log before block {last}")));
        }
        let start = u64::from(sb.s_start.get());
        if start >= maxlen {
            return Err(JournalError::superblock("s_start", format!("{start} is outside the journal of {maxlen} blocks")));
        }
        let csum_seed = if features.csum_v2_or_v3() { sb.csum_seed() } else { 0 };
        Ok(Self {
            block_size: fs_block_size,
            first,
            last,
            maxlen,
            features,
            csum_seed,
            uuid: sb.s_uuid,
            start,
            sequence: sb.s_sequence.get(),
        })
    }

    /// Number of blocks in the circular log.
    pub fn log_blocks(&self) -> u64 {
        self.last - self.first
    }

    /// The log block after `b`, wrapping from the end of the log to `first`.
    pub fn next(&self, b: u64) -> u64 {
        self.advance(b, 1)
    }

    /// The log block `n` blocks after `b` (`n` below the log size), wrapping.
    pub fn advance(&self, b: u64, n: u64) -> u64 {
        let v = b + n;
        if v >= self.last { v - self.log_blocks() } else { v }
    }
}

fn features_of(sb: &JournalSuperblock) -> Result<JournalFeatures, JournalError> {
    let incompat = sb.s_feature_incompat.get();
    if incompat & !KNOWN_INCOMPAT != 0 {
        return Err(JournalError::Unsupported(format!("incompat features {:#x}", incompat & !KNOWN_INCOMPAT)));
    }
    if sb.s_feature_ro_compat.get() != 0 {
        return Err(JournalError::Unsupported(format!("ro_compat features {:#x}", sb.s_feature_ro_compat.get())));
    }
    let f = JournalFeatures {
        checksum_v1: sb.s_feature_compat.get() & COMPAT_CHECKSUM != 0,
        revoke: incompat & INCOMPAT_REVOKE != 0,
        bit64: incompat & INCOMPAT_64BIT != 0,
        async_commit: incompat & INCOMPAT_ASYNC_COMMIT != 0,
        csum_v2: incompat & INCOMPAT_CSUM_V2 != 0,
        csum_v3: incompat & INCOMPAT_CSUM_V3 != 0,
        fast_commit: incompat & INCOMPAT_FAST_COMMIT != 0,
    };
    if f.csum_v2 && f.csum_v3 {
        return Err(JournalError::superblock("s_feature_incompat", "csum v2 and v3 both set"));
    }
    if f.csum_v2_or_v3() && f.checksum_v1 {
        return Err(JournalError::superblock("s_feature_compat", "checksum v1 set with csum v2/v3"));
    }
    Ok(f)
}

/// End of the main log when the last `s_num_fc_blks` blocks (256 if 0) are
/// the fast-commit area.
fn log_end_with_fast_commit(sb: &JournalSuperblock, maxlen: u64) -> Result<u64, JournalError> {
    let fc = match sb.s_num_fc_blks.get() {
        0 => u64::from(crate::format::DEFAULT_FAST_COMMIT_BLOCKS),
        n => u64::from(n),
    };
    match maxlen.checked_sub(fc) {
        Some(last) if last >= u64::from(MIN_JOURNAL_BLOCKS) => Ok(last),
        _ => Err(JournalError::superblock("s_num_fc_blks", format!("{fc} fast-commit blocks in {maxlen}"))),
    }
}

/// `tid_gt`: whether transaction `a` is after `b`, sequence numbers wrapping.
pub fn tid_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// `tid_geq`: whether transaction `a` is `b` or after it.
pub fn tid_geq(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

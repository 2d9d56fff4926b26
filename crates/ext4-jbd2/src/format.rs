//! On-disk structures of the jbd2 journal. Every field is big-endian.

use zerocopy::big_endian::{U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use ext4_ondisk::checksum::crc32c;

/// `h_magic` of every journal metadata block.
pub const JBD2_MAGIC: u32 = 0xC03B_3998;
/// Smallest journal mke2fs creates, in blocks.
pub const MIN_JOURNAL_BLOCKS: u32 = 1024;
/// Fast-commit blocks mke2fs reserves by default.
pub const DEFAULT_FAST_COMMIT_BLOCKS: u32 = 256;
/// Size of the journal superblock.
pub const SUPERBLOCK_SIZE: usize = 1024;

/// `h_blocktype` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum BlockType {
    /// Descriptor block: tags of the blocks that follow.
    Descriptor = 1,
    /// Commit block: ends a transaction.
    Commit = 2,
    /// Version 1 superblock.
    SuperblockV1 = 3,
    /// Version 2 superblock.
    SuperblockV2 = 4,
    /// Revoke block.
    Revoke = 5,
    /// Fast-commit block.
    FastCommit = 6,
}

impl BlockType {
    /// Decodes a block type.
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::Descriptor,
            2 => Self::Commit,
            3 => Self::SuperblockV1,
            4 => Self::SuperblockV2,
            5 => Self::Revoke,
            6 => Self::FastCommit,
            _ => return None,
        })
    }
}

/// Compat feature: checksum v1 in commit blocks.
pub const COMPAT_CHECKSUM: u32 = 0x1;
/// Incompat feature: revoke blocks.
pub const INCOMPAT_REVOKE: u32 = 0x1;
/// Incompat feature: 64-bit block numbers.
pub const INCOMPAT_64BIT: u32 = 0x2;
/// Incompat feature: asynchronous commit.
pub const INCOMPAT_ASYNC_COMMIT: u32 = 0x4;
/// Incompat feature: checksum v2.
pub const INCOMPAT_CSUM_V2: u32 = 0x8;
/// Incompat feature: checksum v3.
pub const INCOMPAT_CSUM_V3: u32 = 0x10;
/// Incompat feature: fast commits.
pub const INCOMPAT_FAST_COMMIT: u32 = 0x20;
/// Incompat features this crate understands.
pub const KNOWN_INCOMPAT: u32 =
    INCOMPAT_REVOKE | INCOMPAT_64BIT | INCOMPAT_ASYNC_COMMIT | INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3 | INCOMPAT_FAST_COMMIT;

/// Checksum type byte for crc32c.
pub const CHECKSUM_CRC32C: u8 = 4;
/// Checksum type byte for crc32 (v1).
pub const CHECKSUM_CRC32: u8 = 1;

/// Tag flag: the block was escaped (its first 4 bytes were the magic).
pub const FLAG_ESCAPE: u32 = 1;
/// Tag flag: same UUID as the previous tag (no UUID follows).
pub const FLAG_SAME_UUID: u32 = 2;
/// Tag flag: block deleted by this transaction (unused).
pub const FLAG_DELETED: u32 = 4;
/// Tag flag: last tag of the descriptor.
pub const FLAG_LAST_TAG: u32 = 8;

/// `journal_header_t`.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct Header {
    /// [`JBD2_MAGIC`].
    pub h_magic: U32,
    /// [`BlockType`].
    pub h_blocktype: U32,
    /// Transaction id.
    pub h_sequence: U32,
}

impl Header {
    /// A header for a block of `kind` in transaction `seq`.
    pub fn new(kind: BlockType, seq: u32) -> Self {
        Self { h_magic: JBD2_MAGIC.into(), h_blocktype: (kind as u32).into(), h_sequence: seq.into() }
    }

    /// Reads the header at the start of `block`, if it carries the magic.
    pub fn parse(block: &[u8]) -> Option<Self> {
        let h = Self::read_from_bytes(block.get(..12)?).ok()?;
        (h.h_magic.get() == JBD2_MAGIC).then_some(h)
    }

    /// The block type, if known.
    pub fn block_type(&self) -> Option<BlockType> {
        BlockType::from_u32(self.h_blocktype.get())
    }
}

/// `journal_superblock_t`.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct JournalSuperblock {
    /// Header (block type 3 or 4).
    pub s_header: Header,
    /// Journal block size.
    pub s_blocksize: U32,
    /// Total blocks in the journal.
    pub s_maxlen: U32,
    /// First block of log information.
    pub s_first: U32,
    /// First commit id expected in the log.
    pub s_sequence: U32,
    /// Block number of the start of the log; 0 if the journal is empty.
    pub s_start: U32,
    /// Error value set by `journal_abort`.
    pub s_errno: U32,
    /// Compatible features.
    pub s_feature_compat: U32,
    /// Incompatible features.
    pub s_feature_incompat: U32,
    /// Read-only compatible features.
    pub s_feature_ro_compat: U32,
    /// Journal UUID.
    pub s_uuid: [u8; 16],
    /// Number of filesystems sharing the journal.
    pub s_nr_users: U32,
    /// Block number of the dynamic superblock copy.
    pub s_dynsuper: U32,
    /// Limit of journal blocks per transaction.
    pub s_max_transaction: U32,
    /// Limit of data blocks per transaction.
    pub s_max_trans_data: U32,
    /// Checksum type.
    pub s_checksum_type: u8,
    /// Padding.
    pub s_padding2: [u8; 3],
    /// Fast-commit blocks at the end of the journal.
    pub s_num_fc_blks: U32,
    /// Padding.
    pub s_padding: [U32; 41],
    /// crc32c of the superblock.
    pub s_checksum: U32,
    /// UUIDs of the filesystems sharing the journal.
    pub s_users: [u8; 768],
}
const _: () = assert!(size_of::<JournalSuperblock>() == SUPERBLOCK_SIZE);
const _: () = assert!(core::mem::offset_of!(JournalSuperblock, s_checksum) == 0xFC);

impl JournalSuperblock {
    /// A zeroed superblock.
    pub fn zeroed() -> Self {
        Self::new_zeroed()
    }

    /// Copies the superblock out of the first 1024 bytes of `block`.
    pub fn from_bytes(block: &[u8]) -> Option<Self> {
        Self::read_from_bytes(block.get(..SUPERBLOCK_SIZE)?).ok()
    }

    /// Whether an incompat feature is set (only meaningful for v2).
    pub fn has_incompat(&self, f: u32) -> bool {
        self.s_header.h_blocktype.get() == BlockType::SuperblockV2 as u32 && self.s_feature_incompat.get() & f != 0
    }

    /// Whether checksum v2 or v3 is on.
    pub fn csum_v2_or_v3(&self) -> bool {
        self.has_incompat(INCOMPAT_CSUM_V2) || self.has_incompat(INCOMPAT_CSUM_V3)
    }

    /// The seed of every v2/v3 checksum: crc32c of the journal UUID.
    pub fn csum_seed(&self) -> u32 {
        crc32c(!0, &self.s_uuid)
    }

    /// The checksum this superblock should carry.
    pub fn compute_checksum(&self) -> u32 {
        let mut copy = self.clone();
        copy.s_checksum.set(0);
        crc32c(!0, copy.as_bytes())
    }

    /// Recomputes `s_checksum` if checksums v2/v3 are on.
    pub fn update_checksum(&mut self) {
        if self.csum_v2_or_v3() {
            let c = self.compute_checksum();
            self.s_checksum.set(c);
        }
    }

    /// Size in bytes of one block tag (`journal_tag_bytes`), without the UUID.
    pub fn tag_bytes(&self) -> usize {
        tag_bytes(self.has_incompat(INCOMPAT_CSUM_V3), self.has_incompat(INCOMPAT_CSUM_V2), self.has_incompat(INCOMPAT_64BIT))
    }
}

/// Size of a block tag for the given features.
pub fn tag_bytes(csum_v3: bool, csum_v2: bool, bit64: bool) -> usize {
    if csum_v3 {
        return 16;
    }
    let sz = 12 + if csum_v2 { 2 } else { 0 };
    if bit64 { sz } else { sz - 4 }
}

/// A decoded descriptor tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// Home block number of the journaled block.
    pub blocknr: u64,
    /// Tag flags.
    pub flags: u32,
    /// Data checksum (16 bits with v2, 32 with v3).
    pub checksum: u32,
}

/// Decodes the tag at the start of `b`, or `None` if `b` is shorter than a
/// tag. The flags are read as the kernel reads them for every tag format:
/// the 16 bits at offset 6 (for csum v3 the low half of `t_flags`).
pub fn parse_tag(b: &[u8], csum_v3: bool, csum_v2: bool, bit64: bool) -> Option<Tag> {
    let b = b.get(..tag_bytes(csum_v3, csum_v2, bit64))?;
    let be32 = |o: usize| u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let be16 = |o: usize| u32::from(u16::from_be_bytes([b[o], b[o + 1]]));
    let hi = if bit64 { u64::from(be32(8)) << 32 } else { 0 };
    let checksum = if csum_v3 {
        be32(12)
    } else if csum_v2 {
        be16(4)
    } else {
        0
    };
    Some(Tag { blocknr: u64::from(be32(0)) | hi, flags: be16(6), checksum })
}

/// Encodes a tag at the start of `b`.
pub fn write_tag(b: &mut [u8], t: &Tag, csum_v3: bool, csum_v2: bool, bit64: bool) {
    let n = tag_bytes(csum_v3, csum_v2, bit64);
    b[..n].fill(0);
    b[0..4].copy_from_slice(&(t.blocknr as u32).to_be_bytes());
    if csum_v3 {
        b[4..8].copy_from_slice(&t.flags.to_be_bytes());
        b[8..12].copy_from_slice(&((t.blocknr >> 32) as u32).to_be_bytes());
        b[12..16].copy_from_slice(&t.checksum.to_be_bytes());
        return;
    }
    if csum_v2 {
        b[4..6].copy_from_slice(&(t.checksum as u16).to_be_bytes());
    }
    b[6..8].copy_from_slice(&(t.flags as u16).to_be_bytes());
    if bit64 {
        b[8..12].copy_from_slice(&((t.blocknr >> 32) as u32).to_be_bytes());
    }
}

/// `struct commit_header`.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct CommitHeader {
    /// Header (block type 2).
    pub h: Header,
    /// Checksum type (v1).
    pub h_chksum_type: u8,
    /// Checksum size (v1).
    pub h_chksum_size: u8,
    /// Padding.
    pub h_padding: [u8; 2],
    /// Checksums; `h_chksum[0]` holds the block checksum with v2/v3.
    pub h_chksum: [U32; 8],
    /// Commit time, seconds.
    pub h_commit_sec: U64,
    /// Commit time, nanoseconds.
    pub h_commit_nsec: U32,
}
const _: () = assert!(size_of::<CommitHeader>() == 60);

/// Offset of `h_chksum[0]` in a commit block.
pub const COMMIT_CHKSUM_OFFSET: usize = 16;
/// Size of `journal_header_t`, where descriptor tags start.
pub const HEADER_SIZE: usize = 12;
/// Size of the revoke block header (`journal_header_t` + `r_count`).
pub const REVOKE_HEADER_SIZE: usize = 16;
/// Size of the checksum tail of descriptor and revoke blocks.
pub const BLOCK_TAIL_SIZE: usize = 4;

/// Offset of `h_commit_sec` in a commit block.
pub const COMMIT_SEC_OFFSET: usize = 48;
/// Offset of `r_count` in a revoke block.
pub const REVOKE_COUNT_OFFSET: usize = 12;
/// Size of the UUID that follows the first tag of a descriptor block.
pub const TAG_UUID_SIZE: usize = 16;
/// `h_chksum_size` of a v1 (crc32) commit checksum.
pub const CRC32_CHKSUM_SIZE: u8 = 4;

/// The kernel's `crc32_be(seed, data)`: CRC-32 with polynomial 0x04C11DB7,
/// most significant bit first, no inversion. The v1 commit checksum
/// (`COMPAT_CHECKSUM`) runs it over descriptor and data blocks from `!0`.
pub fn crc32_be(seed: u32, data: &[u8]) -> u32 {
    data.iter().fold(seed, |crc, &b| {
        let c = crc ^ (u32::from(b) << 24);
        CRC32_BE_TABLE[(c >> 24) as usize] ^ (c << 8)
    })
}

const CRC32_BE_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut k = 0;
        while k < 8 {
            c = if c & 0x8000_0000 != 0 { (c << 1) ^ 0x04C1_1DB7 } else { c << 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// Reads the big-endian `u32` at `off` of `b` (0 past the end).
pub(crate) fn be32_at(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4).map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Reads the big-endian `u64` at `off` of `b` (0 past the end).
pub(crate) fn be64_at(b: &[u8], off: usize) -> u64 {
    (u64::from(be32_at(b, off)) << 32) | u64::from(be32_at(b, off + 4))
}

/// Checksum of a descriptor or revoke block (`jbd2_descriptor_block_csum`):
/// the whole block with its 4-byte tail taken as zero.
pub fn descriptor_block_checksum(seed: u32, block: &[u8]) -> u32 {
    let n = block.len().saturating_sub(BLOCK_TAIL_SIZE);
    crc32c(crc32c(seed, &block[..n]), &[0; 4])
}

/// Checksum of a commit block (`jbd2_commit_block_csum`): the whole block with `h_chksum[0]` as zero.
pub fn commit_block_checksum(seed: u32, block: &[u8]) -> u32 {
    let head = block.get(..COMMIT_CHKSUM_OFFSET).unwrap_or(block);
    let rest = block.get(COMMIT_CHKSUM_OFFSET + 4..).unwrap_or(&[]);
    crc32c(crc32c(crc32c(seed, head), &[0; 4]), rest)
}

/// Checksum of a journaled data block for its tag (`jbd2_block_tag_csum`):
/// the transaction sequence (big-endian), then the block. v2 keeps 16 bits.
pub fn data_block_checksum(seed: u32, sequence: u32, block: &[u8]) -> u32 {
    crc32c(crc32c(seed, &sequence.to_be_bytes()), block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_be_matches_the_mpeg2_check_value() {
        // CRC-32/MPEG-2 (init !0, no reflection, no final xor) of "123456789".
        assert_eq!(crc32_be(!0, b"123456789"), 0x0376_E6E7);
        assert_eq!(crc32_be(!0, b""), !0);
    }

    #[test]
    fn tag_sizes() {
        assert_eq!(tag_bytes(false, false, false), 8);
        assert_eq!(tag_bytes(false, false, true), 12);
        assert_eq!(tag_bytes(false, true, false), 10);
        assert_eq!(tag_bytes(false, true, true), 14);
        assert_eq!(tag_bytes(true, false, false), 16);
    }

    #[test]
    fn tags_round_trip() {
        for (v3, v2, b64) in [(false, false, false), (false, false, true), (false, true, true), (true, false, true), (true, false, false)] {
            let t = Tag {
                blocknr: if b64 { 0x1_2345_6789 } else { 0x2345_6789 },
                flags: FLAG_LAST_TAG | FLAG_SAME_UUID,
                checksum: if v3 {
                    0xDEAD_BEEF
                } else if v2 {
                    0xBEEF
                } else {
                    0
                },
            };
            let mut b = [0u8; 16];
            write_tag(&mut b, &t, v3, v2, b64);
            assert_eq!(parse_tag(&b, v3, v2, b64), Some(t));
            assert_eq!(parse_tag(&b[..tag_bytes(v3, v2, b64) - 1], v3, v2, b64), None);
        }
    }
}

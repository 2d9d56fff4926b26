//! Htree (hashed directory) interior blocks: the dx root in directory
//! block 0 and dx nodes below it, each an array of (hash, block) pairs
//! hidden inside directory entries, with an optional 8-byte checksum tail.

use crate::checksum::crc32c;
use crate::{FormatError, Structure};

/// Offset of `dx_root_info` in the root block (after the `.` and `..` entries).
pub const ROOT_INFO_OFFSET: usize = 24;
/// Offset of the count/limit header in the root block.
pub const ROOT_COUNT_OFFSET: usize = 32;
/// Offset of the count/limit header in a node block (after a fake empty entry).
pub const NODE_COUNT_OFFSET: usize = 8;
/// Size of a (hash, block) pair.
pub const DX_ENTRY_SIZE: usize = 8;
/// Size of `struct dx_tail`.
pub const DX_TAIL_SIZE: usize = 8;
/// Deepest index without `large_dir` (levels below the root).
pub const MAX_LEVELS: u8 = 2;
/// Deepest index with `large_dir`.
pub const MAX_LEVELS_LARGEDIR: u8 = 3;

/// Directory hash algorithms (`s_def_hash_version`, `dx_root_info.hash_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashVersion {
    /// Legacy (signed chars).
    Legacy,
    /// Half MD4 (signed chars).
    HalfMd4,
    /// TEA (signed chars).
    Tea,
    /// Legacy, unsigned chars.
    LegacyUnsigned,
    /// Half MD4, unsigned chars.
    HalfMd4Unsigned,
    /// TEA, unsigned chars.
    TeaUnsigned,
    /// SipHash (casefolded encrypted directories).
    SipHash,
}

impl HashVersion {
    /// Decodes a hash version byte.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Legacy,
            1 => Self::HalfMd4,
            2 => Self::Tea,
            3 => Self::LegacyUnsigned,
            4 => Self::HalfMd4Unsigned,
            5 => Self::TeaUnsigned,
            6 => Self::SipHash,
            _ => return None,
        })
    }

    /// The byte stored on disk.
    pub fn to_u8(self) -> u8 {
        match self {
            Self::Legacy => 0,
            Self::HalfMd4 => 1,
            Self::Tea => 2,
            Self::LegacyUnsigned => 3,
            Self::HalfMd4Unsigned => 4,
            Self::TeaUnsigned => 5,
            Self::SipHash => 6,
        }
    }

    /// The unsigned variant of a signed version, as the kernel picks when the
    /// superblock has `FLAGS_UNSIGNED_HASH` (versions on disk stay signed).
    pub fn with_unsigned(self, unsigned: bool) -> Self {
        match (self, unsigned) {
            (Self::Legacy, true) => Self::LegacyUnsigned,
            (Self::HalfMd4, true) => Self::HalfMd4Unsigned,
            (Self::Tea, true) => Self::TeaUnsigned,
            (v, _) => v,
        }
    }
}

/// `struct dx_root_info`, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DxRootInfo {
    /// Hash version byte.
    pub hash_version: u8,
    /// Always 8.
    pub info_length: u8,
    /// Levels of index below the root (0: the root points at leaves).
    pub indirect_levels: u8,
    /// Unused flags.
    pub unused_flags: u8,
}

/// A validated view of the (hash, block) array of a dx root or node.
#[derive(Debug, Clone, Copy)]
pub struct DxEntries<'a> {
    bytes: &'a [u8],
    count_offset: usize,
    /// Capacity of the array.
    pub limit: u16,
    /// Entries in use (the first has no hash).
    pub count: u16,
}

impl<'a> DxEntries<'a> {
    /// The (hash, block) pair `i`; the hash of pair 0 is always 0.
    pub fn get(&self, i: usize) -> (u32, u32) {
        let off = self.count_offset + i * DX_ENTRY_SIZE;
        let hash = if i == 0 { 0 } else { crate::get_u32(self.bytes, off) };
        (hash, crate::get_u32(self.bytes, off + 4))
    }

    /// Offset of the count/limit header in the block.
    pub fn count_offset(&self) -> usize {
        self.count_offset
    }

    /// Index of the last entry whose hash is <= `hash` (`dx_probe`'s binary search).
    pub fn find(&self, hash: u32) -> usize {
        let (mut lo, mut hi) = (1usize, usize::from(self.count));
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.get(mid).0 > hash { hi = mid } else { lo = mid + 1 }
        }
        lo - 1
    }
}

/// Capacity of a dx root block.
pub fn root_limit(block_size: u32, csum: bool) -> u16 {
    let tail = if csum { DX_TAIL_SIZE } else { 0 };
    ((block_size as usize - ROOT_COUNT_OFFSET - tail) / DX_ENTRY_SIZE) as u16
}

/// Capacity of a dx node block.
pub fn node_limit(block_size: u32, csum: bool) -> u16 {
    let tail = if csum { DX_TAIL_SIZE } else { 0 };
    ((block_size as usize - NODE_COUNT_OFFSET - tail) / DX_ENTRY_SIZE) as u16
}

fn parse_entries(block: &[u8], count_offset: usize, expected_limit: u16) -> Result<DxEntries<'_>, FormatError> {
    const S: Structure = Structure::DxNode;
    let limit = crate::get_u16(block, count_offset);
    let count = crate::get_u16(block, count_offset + 2);
    if limit != expected_limit {
        return Err(FormatError::bad(S, "limit", limit.into(), "does not match the block size"));
    }
    if count == 0 || count > limit {
        return Err(FormatError::bad(S, "count", count.into(), "zero or above limit"));
    }
    Ok(DxEntries { bytes: block, count_offset, limit, count })
}

/// Parses a dx root block: the root info and the entry array.
pub fn parse_root(block: &[u8], csum: bool) -> Result<(DxRootInfo, DxEntries<'_>), FormatError> {
    const S: Structure = Structure::DxNode;
    let info = DxRootInfo {
        hash_version: block[ROOT_INFO_OFFSET + 4],
        info_length: block[ROOT_INFO_OFFSET + 5],
        indirect_levels: block[ROOT_INFO_OFFSET + 6],
        unused_flags: block[ROOT_INFO_OFFSET + 7],
    };
    if info.info_length != 8 {
        return Err(FormatError::bad(S, "info_length", info.info_length.into(), "must be 8"));
    }
    if info.indirect_levels >= MAX_LEVELS_LARGEDIR {
        return Err(FormatError::bad(S, "indirect_levels", info.indirect_levels.into(), "too deep"));
    }
    let entries = parse_entries(block, ROOT_COUNT_OFFSET, root_limit(block.len() as u32, csum))?;
    Ok((info, entries))
}

/// Parses a dx node block.
pub fn parse_node(block: &[u8], csum: bool) -> Result<DxEntries<'_>, FormatError> {
    parse_entries(block, NODE_COUNT_OFFSET, node_limit(block.len() as u32, csum))
}

/// Where a block's dx count and limit are, if it looks like an index block
/// (libext2fs' `ext2fs_get_dx_countlimit`): a node starts with an empty
/// entry spanning the block (offset 8); a root with `.` of 12 bytes, `..`
/// spanning the rest and a valid root info (offset 32). `None` for a leaf,
/// or when count or limit exceed what the block can hold.
pub fn count_limit_offset(block: &[u8]) -> Option<usize> {
    let bs = block.len() as u32;
    let rec_len = |pos: usize| crate::dir::rec_len_from_disk(crate::get_u16(block, pos + 4), bs);
    let off = if rec_len(0) == bs && crate::get_u16(block, 6) == 0 {
        NODE_COUNT_OFFSET
    } else if rec_len(0) == 12 && block.len() >= ROOT_COUNT_OFFSET + 4 && rec_len(12) == bs - 12 {
        let info_ok = crate::get_u32(block, ROOT_INFO_OFFSET) == 0 && block[ROOT_INFO_OFFSET + 5] == 8;
        if !info_ok {
            return None;
        }
        ROOT_COUNT_OFFSET
    } else {
        return None;
    };
    let sane = (block.len() - off) / DX_ENTRY_SIZE;
    let (limit, count) = (usize::from(crate::get_u16(block, off)), usize::from(crate::get_u16(block, off + 2)));
    (limit <= sane && count <= sane).then_some(off)
}

/// Writes the root info of a dx root block.
pub fn write_root_info(block: &mut [u8], info: DxRootInfo) {
    crate::put_u32(block, ROOT_INFO_OFFSET, 0);
    block[ROOT_INFO_OFFSET + 4] = info.hash_version;
    block[ROOT_INFO_OFFSET + 5] = info.info_length;
    block[ROOT_INFO_OFFSET + 6] = info.indirect_levels;
    block[ROOT_INFO_OFFSET + 7] = info.unused_flags;
}

/// Writes the limit and count at `count_offset`.
pub fn write_count_limit(block: &mut [u8], count_offset: usize, limit: u16, count: u16) {
    crate::put_u16(block, count_offset, limit);
    crate::put_u16(block, count_offset + 2, count);
}

/// Writes pair `i` of the array at `count_offset` (the hash of pair 0 is the count/limit header and is not written).
pub fn write_entry(block: &mut [u8], count_offset: usize, i: usize, hash: u32, blk: u32) {
    let off = count_offset + i * DX_ENTRY_SIZE;
    if i != 0 {
        crate::put_u32(block, off, hash);
    }
    crate::put_u32(block, off + 4, blk);
}

/// Checksum of a dx block (`ext4_dx_csum`): the bytes up to the last used
/// entry, then the tail's reserved word and a zeroed checksum.
pub fn dx_checksum(inode_seed: u32, block: &[u8], count_offset: usize, count: u16, limit: u16) -> u32 {
    let size = count_offset + usize::from(count) * DX_ENTRY_SIZE;
    let tail = count_offset + usize::from(limit) * DX_ENTRY_SIZE;
    let c = crc32c(inode_seed, &block[..size]);
    let c = crc32c(c, &block[tail..tail + 4]);
    crc32c(c, &[0; 4])
}

/// Checks the tail checksum of a dx block whose entries were parsed as `e`.
pub fn verify_dx_block(inode_seed: u32, block: &[u8], e: &DxEntries<'_>) -> Result<(), FormatError> {
    let tail = e.count_offset + usize::from(e.limit) * DX_ENTRY_SIZE;
    if tail + DX_TAIL_SIZE > block.len() {
        return Err(FormatError::bad(Structure::DxNode, "limit", e.limit.into(), "no room for the checksum tail"));
    }
    let stored = crate::get_u32(block, tail + 4);
    FormatError::check_csum(Structure::DxNode, stored, dx_checksum(inode_seed, block, e.count_offset, e.count, e.limit))
}

/// Computes and stores the tail checksum of a dx block.
///
/// `dt_reserved` is covered by the checksum and kept as found, as
/// `ext4_dx_csum_set` keeps it: a root the kernel converted from a linear
/// block holds the old entry tail's bytes there (`0c 00 00 de`).
pub fn set_dx_block_checksum(inode_seed: u32, block: &mut [u8], count_offset: usize) {
    let limit = crate::get_u16(block, count_offset);
    let count = crate::get_u16(block, count_offset + 2);
    let tail = count_offset + usize::from(limit) * DX_ENTRY_SIZE;
    let c = dx_checksum(inode_seed, block, count_offset, count, limit);
    crate::put_u32(block, tail + 4, c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_round_trip_and_find() {
        let mut b = vec![0u8; 1024];
        let limit = root_limit(1024, true);
        write_root_info(&mut b, DxRootInfo { hash_version: 1, info_length: 8, indirect_levels: 0, unused_flags: 0 });
        write_count_limit(&mut b, ROOT_COUNT_OFFSET, limit, 3);
        write_entry(&mut b, ROOT_COUNT_OFFSET, 0, 0, 1);
        write_entry(&mut b, ROOT_COUNT_OFFSET, 1, 100, 2);
        write_entry(&mut b, ROOT_COUNT_OFFSET, 2, 200, 3);
        set_dx_block_checksum(3, &mut b, ROOT_COUNT_OFFSET);
        let (info, e) = parse_root(&b, true).unwrap();
        assert_eq!(info.hash_version, 1);
        verify_dx_block(3, &b, &e).unwrap();
        assert_eq!(e.get(e.find(50)).1, 1);
        assert_eq!(e.get(e.find(100)).1, 2);
        assert_eq!(e.get(e.find(u32::MAX)).1, 3);
        b[ROOT_COUNT_OFFSET + 12] ^= 1;
        let (_, e) = parse_root(&b, true).unwrap();
        assert!(matches!(verify_dx_block(3, &b, &e), Err(FormatError::Checksum { structure: Structure::DxNode, .. })));
    }

    #[test]
    fn stale_tail_reserved_bytes_are_kept_and_covered() {
        // A root converted by the kernel keeps the linear block's tail in `dt_reserved`.
        let mut b = vec![0u8; 4096];
        let limit = root_limit(4096, true);
        write_root_info(&mut b, DxRootInfo { hash_version: 1, info_length: 8, indirect_levels: 0, unused_flags: 0 });
        write_count_limit(&mut b, ROOT_COUNT_OFFSET, limit, 1);
        write_entry(&mut b, ROOT_COUNT_OFFSET, 0, 0, 1);
        b[4088..4092].copy_from_slice(&[0x0c, 0, 0, 0xde]);
        set_dx_block_checksum(7, &mut b, ROOT_COUNT_OFFSET);
        assert_eq!(&b[4088..4092], &[0x0c, 0, 0, 0xde]);
        let (_, e) = parse_root(&b, true).unwrap();
        verify_dx_block(7, &b, &e).unwrap();
        let mut changed = b.clone();
        changed[4089] = 1;
        assert!(verify_dx_block(7, &changed, &e).is_err(), "dt_reserved is under the checksum");
    }

    #[test]
    fn bad_count_is_refused() {
        let mut b = vec![0u8; 1024];
        write_count_limit(&mut b, NODE_COUNT_OFFSET, node_limit(1024, false), 0);
        assert!(matches!(parse_node(&b, false), Err(FormatError::BadField { field: "count", .. })));
    }
}

//! Orphan file blocks (`orphan_file`): an array of inode numbers followed by
//! an 8-byte tail holding a magic number and a checksum.

use crate::checksum::{crc32c, inode_seed};
use crate::{FormatError, Structure};

/// `ob_magic`.
pub const ORPHAN_BLOCK_MAGIC: u32 = 0x0B10_CA04;
/// Size of `struct ext4_orphan_block_tail`.
pub const TAIL_SIZE: usize = 8;

/// Inode slots in one orphan block.
pub fn inodes_per_block(block_size: u32) -> usize {
    (block_size as usize - TAIL_SIZE) / 4
}

/// Checksum of an orphan file block: seeded with the orphan file inode's
/// seed, over the physical block number and the slots (`ext4_orphan_file_block_csum`).
pub fn orphan_block_checksum(fs_seed: u32, ino: u32, generation: u32, block_nr: u64, block: &[u8]) -> u32 {
    let c = inode_seed(fs_seed, ino, generation);
    let c = crc32c(c, &block_nr.to_le_bytes());
    crc32c(c, &block[..block.len() - TAIL_SIZE])
}

/// Checks the magic and checksum of an orphan file block.
pub fn verify_orphan_block(fs_seed: u32, ino: u32, generation: u32, block_nr: u64, block: &[u8], csum: bool) -> Result<(), FormatError> {
    let t = block.len() - TAIL_SIZE;
    let magic = crate::get_u32(block, t);
    if magic != ORPHAN_BLOCK_MAGIC {
        return Err(FormatError::BadMagic { structure: Structure::OrphanBlock, found: magic });
    }
    if !csum {
        return Ok(());
    }
    let stored = crate::get_u32(block, t + 4);
    FormatError::check_csum(Structure::OrphanBlock, stored, orphan_block_checksum(fs_seed, ino, generation, block_nr, block))
}

/// Writes the tail (magic and, with `csum`, the checksum) of an orphan file block.
pub fn set_orphan_block_tail(fs_seed: u32, ino: u32, generation: u32, block_nr: u64, block: &mut [u8], csum: bool) {
    let t = block.len() - TAIL_SIZE;
    crate::put_u32(block, t, ORPHAN_BLOCK_MAGIC);
    let c = if csum { orphan_block_checksum(fs_seed, ino, generation, block_nr, block) } else { 0 };
    crate::put_u32(block, t + 4, c);
}

/// The inode numbers stored in an orphan block (nonzero slots).
pub fn orphan_inodes(block: &[u8]) -> impl Iterator<Item = u32> + '_ {
    block[..block.len() - TAIL_SIZE].chunks_exact(4).map(|c| crate::get_u32(c, 0)).filter(|&i| i != 0)
}

/// Slot `index`'s inode number (0 when free).
pub fn orphan_slot(block: &[u8], index: usize) -> u32 {
    crate::get_u32(block, index * 4)
}

/// Stores `ino` (0 frees the slot) in slot `index`; the tail is the caller's.
pub fn set_orphan_slot(block: &mut [u8], index: usize, ino: u32) {
    crate::put_u32(block, index * 4, ino);
}

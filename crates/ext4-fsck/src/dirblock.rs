//! Directory block checksums as libext2fs verifies them on read
//! (`ext2fs_dir_block_csum_verify`): a leaf with a checksum tail, or an
//! htree node with a dx tail; anything else fails.

use ext4_ondisk::dir::{TAIL_FT, TAIL_SIZE};

use crate::fs::Fs;

/// Where an htree node's count/limit header is, if the block looks like
/// one (`__get_dx_countlimit`): `Err(true)` when it looks like one but its
/// counts are absurd.
pub(crate) fn dx_countlimit(bs: u32, block: &[u8]) -> Result<usize, bool> {
    // Raw 16-bit fields, as libext2fs compares them.
    let rec_len = u32::from(ext4_ondisk::get_u16(block, 4));
    let off = if rec_len == bs && block[6] == 0 && block[7] == 0 {
        8
    } else if rec_len == 12 {
        let rl2 = u32::from(ext4_ondisk::get_u16(block, 16));
        if rl2 != bs - 12 {
            return Err(false);
        }
        if ext4_ondisk::get_u32(block, 24) != 0 || block[29] != 8 {
            return Err(false);
        }
        32
    } else {
        return Err(false);
    };
    let max = (bs as usize - off) / 8;
    let limit = usize::from(ext4_ondisk::get_u16(block, off));
    let count = usize::from(ext4_ondisk::get_u16(block, off + 2));
    if limit > max || count > max {
        return Err(true);
    }
    Ok(off)
}

/// Whether a leaf block ends in a well-formed checksum tail, walking its
/// `rec_len`s as `__get_dirent_tail` does.
pub(crate) fn has_tail(bs: u32, block: &[u8]) -> bool {
    let top = block.len() - TAIL_SIZE;
    let mut d = 0usize;
    while d < top {
        let rec_len = ext4_ondisk::get_u16(block, d + 4) as usize;
        if rec_len < 8 || rec_len & 3 != 0 {
            return false;
        }
        d += rec_len;
    }
    let _ = bs;
    d == top
        && ext4_ondisk::get_u32(block, top) == 0
        && ext4_ondisk::get_u16(block, top + 4) as usize == TAIL_SIZE
        && block[top + 6] == 0
        && block[top + 7] == TAIL_FT
}

/// `ext2fs_dir_block_csum_verify` for a block of directory `ino` whose
/// generation is `generation` (`None` when the inode cannot be read, which
/// makes the check fail as in libext2fs).
pub(crate) fn csum_ok(fs: &Fs<'_>, ino: u32, generation: Option<u32>, block: &[u8]) -> bool {
    if !fs.csum() {
        return true;
    }
    let bs = fs.bs();
    if has_tail(bs, block) {
        let Some(g) = generation else { return false };
        let seed = ext4_ondisk::checksum::inode_seed(fs.csum_seed(), ino, g);
        return ext4_ondisk::dir::verify_dir_block(seed, block).is_ok();
    }
    let Ok(off) = dx_countlimit(bs, block) else { return false };
    let limit = usize::from(ext4_ondisk::get_u16(block, off));
    let count = usize::from(ext4_ondisk::get_u16(block, off + 2));
    if off + limit * 8 > bs as usize - 8 {
        return false;
    }
    let Some(g) = generation else { return false };
    let seed = ext4_ondisk::checksum::inode_seed(fs.csum_seed(), ino, g);
    let tail = off + limit * 8;
    let size = (off + count * 8).min(block.len());
    let c = ext4_ondisk::checksum::crc32c(seed, &block[..size]);
    let c = ext4_ondisk::checksum::crc32c(c, &block[tail..tail + 4]);
    let c = ext4_ondisk::checksum::crc32c(c, &[0; 4]);
    ext4_ondisk::get_u32(block, tail + 4) == c
}

/// The generation of inode `ino` if its record reads and passes its
/// checksum (what `ext2fs_read_inode` gives the checksum functions).
pub(crate) fn generation(fs: &Fs<'_>, ino: u32) -> crate::Result<Option<u32>> {
    let Some(raw) = fs.read_inode_raw(ino)? else { return Ok(None) };
    if !crate::pass1::inode_csum_ok(fs, ino, &raw) {
        return Ok(None);
    }
    Ok(ext4_ondisk::inode::raw::parse_lenient(&raw).ok().map(|i| i.generation))
}

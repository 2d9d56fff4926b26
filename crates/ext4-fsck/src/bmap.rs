//! Logical to physical block lookups and extent header checks, with
//! libext2fs' tolerance (`ext2fs_bmap2`, `ext2fs_extent_header_verify`):
//! the passes need single lookups (an htree root, a symlink's block, the
//! journal's first block) on trees they have not validated yet.

use ext4_ondisk::extent::{EXTENT_MAGIC, ExtentNode, verify_extent_block};
use ext4_ondisk::inode::{Inode, InodeFlags};

use crate::error::Result;
use crate::fs::Fs;

/// Why a lookup failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BmapErr {
    /// An extent header is invalid.
    BadHeader,
    /// An extent block fails its checksum.
    Csum,
    /// An indirect or extent block lies outside the filesystem or the device.
    BadBlock,
}

/// `ext2fs_extent_header_verify`: magic, entries within `eh_max`, and
/// `eh_max` what a node of `size` bytes holds (or up to two less).
pub(crate) fn header_ok(node: &[u8], size: usize) -> bool {
    if node.len() < 12 {
        return false;
    }
    let magic = ext4_ondisk::get_u16(node, 0);
    let entries = ext4_ondisk::get_u16(node, 2);
    let max = ext4_ondisk::get_u16(node, 4);
    let cap = (size - 12) / 12;
    magic == EXTENT_MAGIC && entries <= max && usize::from(max) <= cap && usize::from(max) + 2 >= cap
}

/// The physical block holding logical block `lblk` of `inode` (`Ok(None)`:
/// a hole), checking extent block checksums when `csum` is given.
pub(crate) fn bmap(fs: &Fs<'_>, ino: u32, inode: &Inode, lblk: u64, csum: bool) -> Result<std::result::Result<Option<u64>, BmapErr>> {
    if inode.flags.contains(InodeFlags::EXTENTS) { extent_bmap(fs, ino, inode, lblk, csum, false) } else { indirect_bmap(fs, inode, lblk) }
}

/// Where to read logical block `lblk` of a file from, checking extent
/// block checksums: unwritten extents read as holes (`ext2fs_file_read`).
pub(crate) fn bmap_read(fs: &Fs<'_>, ino: u32, inode: &Inode, lblk: u64) -> Result<std::result::Result<Option<u64>, BmapErr>> {
    if inode.flags.contains(InodeFlags::EXTENTS) { extent_bmap(fs, ino, inode, lblk, true, true) } else { indirect_bmap(fs, inode, lblk) }
}

fn extent_bmap(
    fs: &Fs<'_>,
    ino: u32,
    inode: &Inode,
    lblk: u64,
    csum: bool,
    unwritten_as_hole: bool,
) -> Result<std::result::Result<Option<u64>, BmapErr>> {
    if inode.block.iter().all(|&b| b == 0) {
        return Ok(Ok(None));
    }
    if !header_ok(&inode.block, inode.block.len()) {
        return Ok(Err(BmapErr::BadHeader));
    }
    let seed = ext4_ondisk::checksum::inode_seed(fs.csum_seed(), ino, inode.generation);
    let mut buf = inode.block.to_vec();
    let max_depth = ext4_ondisk::get_u16(&buf, 6);
    for _level in 0..=max_depth {
        let Ok(node) = ExtentNode::parse(&buf) else { return Ok(Err(BmapErr::BadHeader)) };
        let n = usize::from(node.header.entries);
        if node.is_leaf() {
            for e in node.extents() {
                if lblk >= u64::from(e.logical) && lblk < e.logical_end() {
                    if e.unwritten && unwritten_as_hole {
                        return Ok(Ok(None));
                    }
                    return Ok(Ok(Some(e.start + (lblk - u64::from(e.logical)))));
                }
            }
            return Ok(Ok(None));
        }
        if n == 0 {
            return Ok(Ok(None));
        }
        let mut pick = node.index(0);
        for i in 1..n {
            let ix = node.index(i);
            if u64::from(ix.logical) > lblk {
                break;
            }
            pick = ix;
        }
        if !fs.block_ok(pick.leaf) {
            return Ok(Err(BmapErr::BadBlock));
        }
        let Some(child) = fs.img.block(pick.leaf)? else { return Ok(Err(BmapErr::BadBlock)) };
        if !header_ok(&child, child.len()) {
            return Ok(Err(BmapErr::BadHeader));
        }
        if csum && fs.csum() {
            let parsed = ExtentNode::parse(&child).map_err(|_| ()).ok();
            if parsed.is_none_or(|p| verify_extent_block(seed, &child, &p).is_err()) {
                return Ok(Err(BmapErr::Csum));
            }
        }
        buf = child;
    }
    Ok(Ok(None))
}

fn indirect_bmap(fs: &Fs<'_>, inode: &Inode, lblk: u64) -> Result<std::result::Result<Option<u64>, BmapErr>> {
    let per = u64::from(fs.bs()) / 4;
    let word = |i: usize| u64::from(ext4_ondisk::get_u32(&inode.block, i * 4));
    if lblk < 12 {
        return Ok(Ok(Some(word(lblk as usize)).filter(|&b| b != 0)));
    }
    let mut rest = lblk - 12;
    let (mut blk, depth) = if rest < per {
        (word(12), 1)
    } else if rest - per < per * per {
        rest -= per;
        (word(13), 2)
    } else {
        rest -= per + per * per;
        if rest >= per * per * per {
            return Ok(Ok(None));
        }
        (word(14), 3)
    };
    for level in (0..depth).rev() {
        if blk == 0 {
            return Ok(Ok(None));
        }
        if !fs.block_ok(blk) {
            return Ok(Err(BmapErr::BadBlock));
        }
        let Some(b) = fs.img.block(blk)? else { return Ok(Err(BmapErr::BadBlock)) };
        let idx = (rest / per.pow(level)) % per;
        blk = u64::from(ext4_ondisk::get_u32(&b, idx as usize * 4));
    }
    Ok(Ok(Some(blk).filter(|&b| b != 0)))
}

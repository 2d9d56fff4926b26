//! An extent tree in pass 1 (`check_blocks_extents`, `scan_extent_node`):
//! every entry in range and in order, index starts matching their
//! children, leaves not overlapping, blocks marked, directory blocks listed.

use ext4_ondisk::extent::{extent_block_checksum, raw_extent, raw_index, tail_offset};
use ext4_ondisk::features::Incompat;
use ext4_ondisk::inode::InodeFlags;

use super::blocks::{Pb, add_dir_blocks, mark_block_used, mark_blocks_used, unaligned_cluster};
use super::inode::InodeCheck;
use crate::bmap::header_ok;
use crate::ctx::{Ctx, Flow};
use crate::problem::{At, Code};

/// Why descending into a child node failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DownErr {
    /// The child's header is invalid (reported, then skipped).
    Header,
    /// Anything else: the walk stops.
    Fatal,
}

/// The deepest tree the block size allows (`ext2fs_max_extent_depth`).
fn max_extent_depth(bs: u32) -> u32 {
    let log2 = |n: u64| 63 - n.leading_zeros();
    let per_block = (u64::from(bs) - 12) / 12;
    1 + (log2(u64::from(u32::MAX)) - log2(4)) / log2(per_block)
}

/// A walk over one inode's extent tree.
struct Scan {
    max_depth: u16,
    eof_block: u64,
    /// The inode's checksum seed, if its record passed its checksum
    /// (block checksums need its generation).
    seed: Option<u32>,
    /// Blocks of the nodes above the current one (cycle detection).
    path: Vec<u64>,
}

/// Checks the extent tree of `c`'s inode.
pub(super) fn check_blocks_extents(ctx: &mut Ctx<'_, '_>, c: &InodeCheck, pb: &mut Pb) -> Flow {
    if !header_ok(&c.inode.block, 60) {
        ctx.ask(Code::MissingExtentHeader, c.at, format!("inode {} has an extent flag but no valid extent header", c.ino));
        return Ok(());
    }
    let max_depth = ext4_ondisk::get_u16(&c.inode.block, 6);
    let bs = ctx.fs.bs();
    if u32::from(max_depth) > max_extent_depth(bs) {
        ctx.ask(Code::ExtentBadMaxDepth, c.at, format!("inode {} has an extent tree {max_depth} levels deep", c.ino));
    }
    pb.next_lblock = 0;
    let blocks = c.inode.size.div_ceil(u64::from(bs));
    let seed = (ctx.fs.geo.inode_size == 128 || crate::pass1::inode_csum_ok(&ctx.fs, c.ino, &c.raw))
        .then(|| ext4_ondisk::checksum::inode_seed(ctx.fs.csum_seed(), c.ino, c.inode.generation));
    let mut s = Scan { max_depth, eof_block: blocks.wrapping_sub(1), seed, path: Vec::new() };
    let root = c.inode.block.to_vec();
    let failed = s.node(ctx, c, pb, &root, 0, 0, 0, true, blocks, false)?;
    if failed {
        ctx.ask(Code::ExtentIterateFailure, c.at, format!("walking the extent tree of inode {} failed", c.ino));
    }
    Ok(())
}

impl Scan {
    /// One node (`scan_extent_node`); `Ok(true)` when the walk must stop.
    #[allow(clippy::too_many_arguments)]
    fn node(
        &mut self,
        ctx: &mut Ctx<'_, '_>,
        c: &InodeCheck,
        pb: &mut Pb,
        buf: &[u8],
        level: u16,
        mut start_block: u64,
        end_block: u64,
        try_repairs: bool,
        end_blk: u64,
        failed_csum: bool,
    ) -> Flow<bool> {
        let entries = usize::from(ext4_ondisk::get_u16(buf, 2));
        let is_leaf = level == self.max_depth;
        for i in 0..entries {
            let (lblk, len, pblk, uninit) = if is_leaf {
                let e = raw_extent(buf, i);
                (u64::from(e.logical), u64::from(e.len), e.start, e.unwritten)
            } else {
                let ix = raw_index(buf, i);
                let next = if i + 1 < entries { u64::from(raw_index(buf, i + 1).logical) } else { end_blk };
                (u64::from(ix.logical), u64::from(next.wrapping_sub(u64::from(ix.logical)) as u32), ix.leaf, false)
            };
            let last_lblk = lblk.wrapping_add(len).wrapping_sub(1);
            let problem = self.entry_problem(ctx, c, pb, is_leaf, lblk, len, pblk, uninit, last_lblk, start_block, end_block);
            let at = At::ino_block(c.ino, pblk);
            if try_repairs && pb.is_dir && problem.is_none() && uninit {
                ctx.ask(Code::UninitDblock, at, format!("directory {} has an unwritten extent at logical {lblk}", c.ino));
            }
            if let Some(code) = problem.filter(|_| try_repairs) {
                let d = format!("inode {}: extent (logical {lblk}, physical {pblk}, length {len}) is invalid", c.ino);
                ctx.ask(code, at, d);
                continue;
            }
            if !is_leaf {
                let child_end = if i + 1 < entries { u64::from(raw_index(buf, i + 1).logical) } else { end_blk };
                if self.index(ctx, c, pb, pblk, lblk, last_lblk, level, child_end)? {
                    return Ok(true);
                }
                continue;
            }
            self.leaf(ctx, c, pb, lblk, len, pblk, uninit, try_repairs)?;
            start_block = last_lblk;
            if !pb.is_dir && !uninit {
                pb.last_init_lblock = last_lblk as i64;
            }
        }
        if failed_csum {
            ctx.ask(
                Code::ExtentOnlyCsumInvalid,
                At::ino(c.ino),
                format!("an extent block of inode {} passes checks, but its checksum does not match", c.ino),
            );
        }
        Ok(false)
    }

    /// The problem with an entry, if any, in e2fsck's order.
    #[allow(clippy::too_many_arguments)]
    fn entry_problem(
        &self,
        ctx: &Ctx<'_, '_>,
        c: &InodeCheck,
        pb: &mut Pb,
        is_leaf: bool,
        lblk: u64,
        len: u64,
        pblk: u64,
        uninit: bool,
        last_lblk: u64,
        start_block: u64,
        end_block: u64,
    ) -> Option<Code> {
        let fs = &ctx.fs;
        let mut problem = if pblk == 0 || !fs.block_ok(pblk) {
            Some(Code::ExtentBadStartBlk)
        } else if lblk < start_block {
            Some(Code::OutOfOrderExtents)
        } else if end_block != 0 && last_lblk > end_block && !(last_lblk > self.eof_block && (uninit || pb.verity)) {
            Some(Code::ExtentEndOutOfBounds)
        } else if is_leaf && len == 0 {
            Some(Code::ExtentLengthZero)
        } else if is_leaf && pblk + len > fs.blocks_count() {
            Some(Code::ExtentEndsBeyond)
        } else if is_leaf
            && pb.is_dir
            && !pb.size_high
            && !fs.incompat(Incompat::LARGEDIR)
            && lblk + len > 1u64 << (21 - fs.sb.s_log_block_size.get().min(21))
        {
            Some(Code::ToobigDir)
        } else {
            None
        };
        if is_leaf && problem.is_none() && len > 0 {
            if lblk < pb.next_lblock {
                problem = Some(Code::ExtentCollision);
            } else if lblk + len > pb.next_lblock {
                pb.next_lblock = lblk + len;
            }
        }
        let _ = c;
        problem
    }

    /// An index entry: descend, check the child's start, scan it, then
    /// mark the child block. `Ok(true)` when the walk must stop.
    #[allow(clippy::too_many_arguments)]
    fn index(
        &mut self,
        ctx: &mut Ctx<'_, '_>,
        c: &InodeCheck,
        pb: &mut Pb,
        blk: u64,
        lblk: u64,
        last_lblk: u64,
        level: u16,
        child_end: u64,
    ) -> Flow<bool> {
        let at = At::ino_block(c.ino, blk);
        let mut next_try_repairs = true;
        if c.ino != 7 && blk < ctx.fs.blocks_count() && ctx.metadata.contains(blk) {
            next_try_repairs = false;
            ctx.ask(Code::CriticalMetadataCollision, at, format!("inode {} extent block {blk} is critical metadata", c.ino));
        }
        let (child, child_failed) = match self.down(ctx, blk)? {
            Ok(x) => x,
            Err(DownErr::Header) if next_try_repairs => {
                ctx.ask(Code::ExtentHeaderInvalid, at, format!("inode {}: extent block {blk} has an invalid header", c.ino));
                return Ok(false);
            }
            Err(_) => return Ok(true),
        };
        let child_leaf = level + 1 == self.max_depth;
        let first = if child_leaf { u64::from(raw_extent(&child, 0).logical) } else { u64::from(raw_index(&child, 0).logical) };
        if first != lblk {
            let d = format!("inode {}: index at logical {lblk} but its node starts at {first}", c.ino);
            ctx.ask(Code::ExtentIndexStartInvalid, at, d);
        }
        self.path.push(blk);
        let stop = self.node(ctx, c, pb, &child, level + 1, first, last_lblk, next_try_repairs, child_end, child_failed)?;
        self.path.pop();
        if stop {
            return Ok(true);
        }
        mark_block_used(ctx, blk);
        pb.num_blocks += 1;
        Ok(false)
    }

    /// Reads a child node (`EXT2_EXTENT_DOWN`): (block, failed checksum).
    fn down(&self, ctx: &Ctx<'_, '_>, blk: u64) -> Flow<Result<(Vec<u8>, bool), DownErr>> {
        if self.path.contains(&blk) {
            return Ok(Err(DownErr::Fatal));
        }
        let Some(b) = ctx.fs.img.block(blk)? else { return Ok(Err(DownErr::Fatal)) };
        if !header_ok(&b, b.len()) {
            return Ok(Err(DownErr::Header));
        }
        let failed = ctx.fs.csum() && {
            let max = ext4_ondisk::get_u16(&b, 4);
            let off = tail_offset(max);
            match self.seed {
                Some(seed) if off + 4 <= b.len() => ext4_ondisk::get_u32(&b, off) != extent_block_checksum(seed, &b, max),
                _ => true,
            }
        };
        if ext4_ondisk::get_u16(&b, 2) == 0 {
            return Ok(Err(DownErr::Fatal));
        }
        Ok(Ok((b, failed)))
    }

    /// A leaf extent: directory holes, blocks marked in use, counts.
    #[allow(clippy::too_many_arguments)]
    fn leaf(
        &mut self,
        ctx: &mut Ctx<'_, '_>,
        c: &InodeCheck,
        pb: &mut Pb,
        lblk: u64,
        len: u64,
        pblk: u64,
        uninit: bool,
        try_repairs: bool,
    ) -> Flow {
        let ratio = ctx.fs.ratio();
        let at = At::ino_block(c.ino, pblk);
        if try_repairs && pb.is_dir && ((pb.last_block + 1) as u64) < lblk {
            ctx.ask(Code::CollapseDblock, at, format!("directory {} has a hole before logical block {lblk}", c.ino));
        }
        if pb.is_dir {
            for j in 0..len {
                add_dir_blocks(ctx, pb, pblk + j, (lblk + j) as i64);
            }
        }
        if unaligned_cluster(ctx, pb.previous_block, pb.last_block, pblk, lblk) {
            for j in 0..len {
                ctx.ask(Code::MisalignedCluster, at, format!("inode {} logical block {} is misaligned in its cluster", c.ino, lblk + j));
                mark_block_used(ctx, pblk + j);
                mark_block_used(ctx, pblk + j);
            }
        }
        let blk = if ratio > 1 && pb.previous_block != 0 && pblk / ratio == pb.previous_block / ratio {
            (pblk / ratio + 1) * ratio
        } else {
            pblk / ratio * ratio
        };
        if blk < pblk + len {
            mark_blocks_used(ctx, blk, pblk + len - blk);
            pb.num_blocks += (pblk + len - blk).div_ceil(ratio);
        }
        pb.last_block = lblk.wrapping_add(len).wrapping_sub(1) as i64;
        pb.previous_block = pblk + len - 1;
        let _ = (uninit, c.inode.flags.contains(InodeFlags::EXTENTS));
        Ok(())
    }
}

//! An inode's blocks (`check_blocks`): its xattr block, its extent tree or
//! indirect map with every block marked in use, its directory blocks
//! listed for pass 2, its htree root, then its size and `i_blocks`.

use ext4_ondisk::features::{Incompat, RoCompat};
use ext4_ondisk::inode::{Inode, InodeFlags};
use ext4_ondisk::superblock::creator_os;

use super::inode::InodeCheck;
use crate::bmap::header_ok;
use crate::ctx::{Ctx, DirBlock, DxBlock, DxDir, Flow};
use crate::problem::{At, Code};

/// What an iteration callback wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cb {
    /// Go on.
    Continue,
    /// Stop the iteration.
    Abort,
}

/// Why an iteration stopped early (libext2fs' `BLOCK_ERROR` codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IterErr {
    /// An indirect block outside the filesystem.
    BadIndBlock,
    /// A map block that cannot be read.
    Read,
    /// An extent tree node that is invalid.
    Extent,
    /// Inline data has no blocks.
    Inline,
}

/// Block counts of the indirect levels (`BLOCK_COUNT_IND` ...).
const COUNT_IND: i64 = -1;
const COUNT_DIND: i64 = -2;
const COUNT_TIND: i64 = -3;
const COUNT_TRANSLATOR: i64 = -4;

/// The callback of [`iterate`]: (context, block, logical block or
/// `COUNT_*`, the map block holding the reference) -> next step.
pub(crate) type Visit<'f, 'd, 'o> = dyn FnMut(&mut Ctx<'d, 'o>, u64, i64, u64) -> Cb + 'f;

/// `ext2fs_block_iterate3`, reading only: every block of the map, map
/// blocks before what they map; holes too when `hole`. Returns why the
/// walk stopped early, if it did.
pub(crate) fn iterate<'d, 'o>(
    ctx: &mut Ctx<'d, 'o>,
    ino: u32,
    inode: &Inode,
    hole: bool,
    f: &mut Visit<'_, 'd, 'o>,
) -> Flow<Option<IterErr>> {
    if inode.flags.contains(InodeFlags::INLINE_DATA) {
        return Ok(Some(IterErr::Inline));
    }
    if ctx.fs.sb.s_creator_os.get() == creator_os::HURD {
        let translator = inode.version as u32;
        if translator != 0 && f(ctx, u64::from(translator), COUNT_TRANSLATOR, 0) == Cb::Abort {
            return Ok(None);
        }
    }
    if inode.flags.contains(InodeFlags::EXTENTS) {
        return iterate_extents(ctx, ino, inode, f);
    }
    let mut it = Walk { bcount: 0, hole, err: None, per: u64::from(ctx.fs.bs()) / 4 };
    for k in 0..12 {
        let b = u64::from(ext4_ondisk::get_u32(&inode.block, k * 4));
        if (b != 0 || hole) && f(ctx, b, it.bcount as i64, 0) == Cb::Abort {
            return Ok(it.err);
        }
        it.bcount += 1;
    }
    for (k, level) in [(12usize, 1u32), (13, 2), (14, 3)] {
        let b = u64::from(ext4_ondisk::get_u32(&inode.block, k * 4));
        if b != 0 || hole {
            if it.level(ctx, b, level, 0, f)? == Cb::Abort {
                break;
            }
        } else {
            it.bcount += it.per.pow(level);
        }
    }
    Ok(it.err)
}

/// The state of an indirect map walk.
struct Walk {
    bcount: u64,
    hole: bool,
    err: Option<IterErr>,
    per: u64,
}

impl Walk {
    /// An indirect block of `level` (1: indirect, 2: double, 3: triple).
    fn level<'d, 'o>(&mut self, ctx: &mut Ctx<'d, 'o>, blk: u64, level: u32, ref_blk: u64, f: &mut Visit<'_, 'd, 'o>) -> Flow<Cb> {
        let count = [COUNT_IND, COUNT_DIND, COUNT_TIND][level as usize - 1];
        if f(ctx, blk, count, ref_blk) == Cb::Abort {
            self.bcount += self.per.pow(level);
            return Ok(Cb::Abort);
        }
        if blk == 0 {
            self.bcount += self.per.pow(level);
            return Ok(Cb::Continue);
        }
        if !ctx.fs.block_ok(blk) {
            self.err = Some(IterErr::BadIndBlock);
            return Ok(Cb::Continue);
        }
        let Some(buf) = ctx.fs.img.block(blk)? else {
            self.err = Some(IterErr::Read);
            return Ok(Cb::Continue);
        };
        for i in 0..self.per as usize {
            let child = u64::from(ext4_ondisk::get_u32(&buf, i * 4));
            if level == 1 {
                if (child != 0 || self.hole) && f(ctx, child, self.bcount as i64, blk) == Cb::Abort {
                    return Ok(Cb::Abort);
                }
                self.bcount += 1;
                continue;
            }
            if child == 0 && !self.hole {
                self.bcount += self.per.pow(level - 1);
                continue;
            }
            let before = self.err;
            let r = self.level(ctx, child, level - 1, blk, f)?;
            if r == Cb::Abort || (self.err.is_some() && before.is_none()) {
                return Ok(r);
            }
        }
        Ok(Cb::Continue)
    }
}

/// The extent branch of `ext2fs_block_iterate3`: index blocks (count -1)
/// then the blocks of each leaf extent, in tree order.
fn iterate_extents<'d, 'o>(ctx: &mut Ctx<'d, 'o>, ino: u32, inode: &Inode, f: &mut Visit<'_, 'd, 'o>) -> Flow<Option<IterErr>> {
    if inode.block.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    if !header_ok(&inode.block, 60) {
        return Ok(Some(IterErr::Extent));
    }
    let depth = ext4_ondisk::get_u16(&inode.block, 6);
    let seed = ext4_ondisk::checksum::inode_seed(ctx.fs.csum_seed(), ino, inode.generation);
    let mut blockcnt = 0u64;
    walk_extent_node(ctx, &inode.block, depth, 0, seed, &mut vec![], &mut blockcnt, f)
}

#[allow(clippy::too_many_arguments)]
fn walk_extent_node<'d, 'o>(
    ctx: &mut Ctx<'d, 'o>,
    node: &[u8],
    max_depth: u16,
    level: u16,
    seed: u32,
    path: &mut Vec<u64>,
    blockcnt: &mut u64,
    f: &mut Visit<'_, 'd, 'o>,
) -> Flow<Option<IterErr>> {
    let Ok(n) = ext4_ondisk::extent::ExtentNode::parse(node) else { return Ok(Some(IterErr::Extent)) };
    for i in 0..usize::from(n.header.entries) {
        if level == max_depth {
            let e = n.extent(i);
            if e.logical_end() <= *blockcnt {
                continue;
            }
            for j in 0..u64::from(e.len) {
                if f(ctx, e.start + j, (u64::from(e.logical) + j) as i64, 0) == Cb::Abort {
                    return Ok(None);
                }
            }
            *blockcnt = e.logical_end();
            continue;
        }
        let ix = n.index(i);
        if f(ctx, ix.leaf, COUNT_IND, 0) == Cb::Abort {
            return Ok(None);
        }
        if path.contains(&ix.leaf) || ix.leaf >= ctx.fs.blocks_count() {
            return Ok(Some(IterErr::Extent));
        }
        let Some(child) = ctx.fs.img.block(ix.leaf)? else { return Ok(Some(IterErr::Read)) };
        if !header_ok(&child, child.len()) || ext4_ondisk::get_u16(&child, 2) == 0 {
            return Ok(Some(IterErr::Extent));
        }
        if ctx.fs.csum() {
            let ok = ext4_ondisk::extent::ExtentNode::parse(&child)
                .is_ok_and(|p| ext4_ondisk::extent::verify_extent_block(seed, &child, &p).is_ok());
            if !ok {
                return Ok(Some(IterErr::Extent));
            }
        }
        path.push(ix.leaf);
        let r = walk_extent_node(ctx, &child, max_depth, level + 1, seed, path, blockcnt, f)?;
        path.pop();
        if r.is_some() {
            return Ok(r);
        }
    }
    Ok(None)
}

/// What `check_blocks` accumulates (`struct process_block_struct`).
pub(super) struct Pb {
    pub(super) ino: u32,
    pub(super) is_dir: bool,
    pub(super) is_reg: bool,
    /// Clusters the inode uses (xattr values and blocks included).
    pub(super) num_blocks: u64,
    /// Largest cluster count a file may map.
    pub(super) max_blocks: u64,
    /// Last logical block mapped (-1: none).
    pub(super) last_block: i64,
    /// Last logical block mapped and initialized (-1: none).
    pub(super) last_init_lblock: i64,
    /// Last directory block listed for pass 2.
    pub(super) last_db_block: i64,
    pub(super) num_illegal: u32,
    pub(super) suppress: bool,
    pub(super) previous_block: u64,
    /// Next logical block an extent may start at without overlapping.
    pub(super) next_lblock: u64,
    pub(super) size_high: bool,
    pub(super) verity: bool,
}

/// `check_blocks` for the inode of `c`; `ibody_quota` is what its
/// in-inode xattrs' EA inodes charge.
pub(super) fn check_blocks(ctx: &mut Ctx<'_, '_>, c: &mut InodeCheck, ibody_quota: super::xattrs::EaQuota) -> Flow {
    let fs = &ctx.fs;
    let t = c.inode.mode & 0xF000;
    let mut pb = Pb {
        ino: c.ino,
        is_dir: t == 0x4000,
        is_reg: t == 0x8000,
        num_blocks: ibody_quota.blocks / fs.ratio(),
        max_blocks: 1u64 << (31 - fs.sb.s_log_block_size.get().min(21)),
        last_block: -1,
        last_init_lblock: -1,
        last_db_block: -1,
        num_illegal: 0,
        suppress: false,
        previous_block: 0,
        next_lblock: 0,
        size_high: c.inode.size >> 32 != 0,
        verity: c.inode.flags.contains(InodeFlags::VERITY),
    };
    let mut ea_inodes = ibody_quota.inodes;
    if let Some(q) = super::xattrs::check_ext_attr(ctx, c)? {
        pb.num_blocks += q.blocks / ctx.fs.ratio();
        ea_inodes += q.inodes;
    }
    let inline = ctx.fs.incompat(Incompat::INLINE_DATA) && c.inode.flags.contains(InodeFlags::INLINE_DATA);
    if inline {
        inline_dir_blocks(ctx, c, &pb)?;
    } else if super::inode::has_valid_blocks(&ctx.fs, &c.inode) {
        if ctx.fs.incompat(Incompat::EXTENTS) && c.inode.flags.contains(InodeFlags::EXTENTS) {
            super::extents::check_blocks_extents(ctx, c, &mut pb)?;
        } else {
            let inode = c.inode.clone();
            let err = iterate(ctx, c.ino, &inode, pb.is_dir, &mut |ctx, blk, cnt, ref_blk| {
                process_block(ctx, &mut pb, &inode, blk, cnt, ref_blk)
            })?;
            pb.last_init_lblock = pb.last_block;
            if let Some(e) = err {
                let d = format!("inode {}: walking the block map failed ({e:?})", c.ino);
                return Err(ctx.fatal(Code::BlockIterate, c.at, d));
            }
        }
    }
    finish_blocks(ctx, c, &mut pb, ea_inodes)
}

/// The directory "blocks" of an inline directory: `i_block`, and the
/// `system.data` value when it holds entries.
fn inline_dir_blocks(ctx: &mut Ctx<'_, '_>, c: &InodeCheck, pb: &Pb) -> Flow {
    if !pb.is_dir {
        return Ok(());
    }
    ctx.dblist.push(DirBlock { ino: c.ino, blk: 0, blockcnt: 0 });
    let size = super::special::inline_size(&ctx.fs, c.ino, &c.raw, false)?;
    if size.is_some_and(|s| s > 60) {
        ctx.dblist.push(DirBlock { ino: c.ino, blk: 0, blockcnt: 1 });
    }
    Ok(())
}

/// Marks cluster of `b` in use, noting it if it already was (`mark_block_used`).
pub(super) fn mark_block_used(ctx: &mut Ctx<'_, '_>, b: u64) {
    let c = ctx.fs.b2c(b);
    if ctx.found.mark(c) {
        if ctx.fs.ro_compat(RoCompat::SHARED_BLOCKS) {
            return;
        }
        ctx.dups.mark(c);
    }
}

/// Marks `num` blocks from `b` (`mark_blocks_used`).
pub(super) fn mark_blocks_used(ctx: &mut Ctx<'_, '_>, b: u64, num: u64) {
    let (c0, c1) = (ctx.fs.b2c(b), ctx.fs.b2c(b + num - 1));
    if ctx.found.is_clear(c0, c1 - c0 + 1) {
        ctx.found.insert(c0, c1 - c0 + 1);
        return;
    }
    let ratio = ctx.fs.ratio();
    let mut i = 0;
    while i < num {
        mark_block_used(ctx, b + i);
        i += ratio;
    }
}

/// Whether a bigalloc mapping puts a logical cluster across physical ones
/// or at a different offset (`has_unaligned_cluster_map`).
pub(super) fn unaligned_cluster(ctx: &Ctx<'_, '_>, last_pblk: u64, last_lblk: i64, pblk: u64, lblk: u64) -> bool {
    let ratio = ctx.fs.ratio();
    if ratio == 1 {
        return false;
    }
    let mask = ratio - 1;
    if lblk & mask != pblk & mask {
        return true;
    }
    last_pblk != 0 && lblk & mask != 0 && lblk / ratio == (last_lblk as u64) / ratio && pblk / ratio != last_pblk / ratio
}

/// `process_block`: one block of an indirect map.
fn process_block(ctx: &mut Ctx<'_, '_>, pb: &mut Pb, inode: &Inode, blk: u64, blockcnt: i64, ref_blk: u64) -> Cb {
    if pb.is_dir && blockcnt == 0 && blk == 0 {
        ctx.dblist.push(DirBlock { ino: pb.ino, blk: 0, blockcnt: 0 });
        pb.last_db_block += 1;
    }
    if blk == 0 {
        return Cb::Continue;
    }
    let fs = &ctx.fs;
    let log = fs.sb.s_log_block_size.get().min(21);
    let mut problem = None;
    if pb.is_dir && !fs.incompat(Incompat::LARGEDIR) && !pb.size_high && blockcnt > (1i64 << (21 - log)) {
        problem = Some(Code::ToobigDir);
    }
    if pb.is_dir && pb.num_blocks + 1 >= pb.max_blocks {
        problem = Some(Code::ToobigDir);
    }
    if pb.is_reg && pb.num_blocks + 1 >= pb.max_blocks {
        problem = Some(Code::ToobigReg);
    }
    if !pb.is_dir && !pb.is_reg && blockcnt > 0 {
        problem = Some(Code::ToobigSymlink);
    }
    if !fs.block_ok(blk) {
        problem = Some(Code::IllegalBlockNum);
    }
    let at = At::ino_block(pb.ino, blk);
    if blockcnt < 0 && pb.ino != 7 && blk < fs.blocks_count() && ctx.metadata.contains(blk) {
        ctx.ask(Code::CriticalMetadataCollision, at, format!("inode {} map block {blk} is critical metadata", pb.ino));
    }
    if let Some(code) = problem {
        pb.num_illegal += 1;
        if pb.ino != 7 && ref_blk != 0 && ctx.metadata.contains(ref_blk) {
            return Cb::Continue;
        }
        if !pb.suppress && pb.num_illegal % 12 == 0 {
            ctx.ask(Code::TooManyBadBlocks, At::ino(pb.ino), format!("inode {} has too many illegal blocks", pb.ino));
            pb.suppress = true;
        }
        ctx.ask(code, at, format!("inode {} block {blk} (logical {blockcnt}) is invalid", pb.ino));
        return Cb::Continue;
    }
    let ratio = ctx.fs.ratio();
    if pb.ino == 7 {
        if blockcnt == COUNT_DIND {
            mark_block_used(ctx, blk);
        }
        pb.num_blocks += 1;
    } else if !(ratio > 1 && pb.previous_block != 0 && blk / ratio == pb.previous_block / ratio && blk % ratio == (blockcnt as u64) % ratio)
    {
        mark_block_used(ctx, blk);
        pb.num_blocks += 1;
    } else if blockcnt >= 0 && unaligned_cluster(ctx, pb.previous_block, pb.last_block, blk, blockcnt as u64) {
        ctx.ask(Code::MisalignedCluster, at, format!("inode {} logical block {blockcnt} is misaligned in its cluster", pb.ino));
        mark_block_used(ctx, blk);
        mark_block_used(ctx, blk);
    }
    if blockcnt >= 0 {
        pb.last_block = blockcnt;
    }
    pb.previous_block = blk;
    if pb.is_dir && blockcnt >= 0 {
        add_dir_blocks(ctx, pb, blk, blockcnt);
    }
    let _ = inode;
    Cb::Continue
}

/// Lists directory block `blockcnt` at `blk` for pass 2, with the holes before it.
pub(super) fn add_dir_blocks(ctx: &mut Ctx<'_, '_>, pb: &mut Pb, blk: u64, blockcnt: i64) {
    // With large_dir (and no inline data) pass 2 skips holes: listing
    // them would only cost memory (a corrupt map can claim 2^32 of them).
    let holes_checked = !ctx.fs.incompat(Incompat::LARGEDIR) || ctx.fs.incompat(Incompat::INLINE_DATA);
    if !holes_checked {
        pb.last_db_block = pb.last_db_block.max(blockcnt - 1);
    }
    loop {
        pb.last_db_block += 1;
        if pb.last_db_block >= blockcnt {
            break;
        }
        ctx.dblist.push(DirBlock { ino: pb.ino, blk: 0, blockcnt: pb.last_db_block as u32 });
    }
    ctx.dblist.push(DirBlock { ino: pb.ino, blk, blockcnt: blockcnt as u32 });
}

/// The largest size an indirect-mapped file can have (`ext2_max_sizes`).
fn max_indirect_size(log: u32) -> u64 {
    let bits = 10 + log;
    let bpp = 1u64 << (bits - 2);
    (12 + bpp + bpp * bpp + bpp * bpp * bpp) * (1u64 << bits)
}

/// After the map: htree root, empty directories, size and `i_blocks`.
fn finish_blocks(ctx: &mut Ctx<'_, '_>, c: &mut InodeCheck, pb: &mut Pb, ea_inodes: u64) -> Flow {
    let ino = c.ino;
    if c.inode.flags.contains(InodeFlags::INDEX) && !handle_htree(ctx, c)? {
        add_dx_dir(ctx, ino, (pb.last_block + 1) as u32)?;
    }
    if pb.num_blocks == 0 && pb.is_dir && !c.inode.flags.contains(InodeFlags::INLINE_DATA) {
        ctx.ask(Code::ZeroLengthDir, c.at, format!("directory {ino} has no blocks"));
    }
    if crate::quota::charged(&ctx.fs, ino, &c.inode) {
        let space = pb.num_blocks * ctx.fs.cluster_size();
        ctx.quota.charge(&c.inode, &c.raw, space as i64, ea_inodes as i64 + 1);
    }
    let fs = &ctx.fs;
    let huge = fs.ro_compat(RoCompat::HUGE_FILE) && c.inode.flags.contains(InodeFlags::HUGE_FILE);
    let mut expect = pb.num_blocks;
    if !huge {
        expect *= u64::from(fs.bs()) / 512;
    }
    expect *= fs.ratio();
    check_size(ctx, c, pb)?;
    let fs = &ctx.fs;
    if c.inode.mode & 0xF000 == 0x8000 && c.inode.size >= 0x8000_0000 {
        ctx.large_files += 1;
    }
    let blocks_hi = ext4_ondisk::inode::raw::blocks_high(&c.raw);
    let stored = (c.inode.blocks & 0xFFFF_FFFF) | if fs.ro_compat(RoCompat::HUGE_FILE) { u64::from(blocks_hi) << 32 } else { 0 };
    if fs.sb.s_creator_os.get() != creator_os::HURD
        && (expect != stored || (huge && blocks_hi != 0))
        && ctx.ask_inode_fix(Code::BadIBlocks, c.at, format!("inode {ino}: i_blocks is {stored}, should be {expect}"))
    {
        ctx.fix_inode(ino, |raw| {
            use ext4_ondisk::inode::InodeRaw;
            ext4_ondisk::put_u32(raw, std::mem::offset_of!(InodeRaw, i_blocks_lo), expect as u32);
            ext4_ondisk::put_u16(raw, std::mem::offset_of!(InodeRaw, l_i_blocks_high), (expect >> 32) as u16);
        })?;
    }
    let fs = &ctx.fs;
    let t = c.inode.mode & 0xF000;
    if fs.ro_compat(RoCompat::BIGALLOC)
        && (t == 0x8000 || t == 0x4000)
        && data_blocks(fs.bs(), &c.inode, huge) > 0
        && (ino == 2 || ino >= fs.first_ino())
        && !c.inode.flags.intersects(InodeFlags::EXTENTS | InodeFlags::INLINE_DATA)
    {
        ctx.ask(Code::NoBigallocBlockmapFiles, c.at, format!("inode {ino} is block-mapped on a bigalloc filesystem"));
    }
    Ok(())
}

/// `ext2fs_inode_data_blocks2`: `i_blocks` in blocks, less the xattr block.
fn data_blocks(bs: u32, i: &Inode, huge: bool) -> u64 {
    let blocks = if huge { i.blocks } else { i.blocks / (u64::from(bs) / 512) };
    blocks.saturating_sub(u64::from(i.file_acl != 0))
}

/// The size checks of `check_blocks` (`bad_size` 1 to 7).
fn check_size(ctx: &mut Ctx<'_, '_>, c: &InodeCheck, pb: &Pb) -> Flow {
    let fs = &ctx.fs;
    let size = c.inode.size;
    let bits = fs.geo.block_bits;
    let bs = u64::from(fs.bs());
    let last = (pb.last_block + 1) as u64;
    let extent_file = fs.incompat(Incompat::EXTENTS) && c.inode.flags.contains(InodeFlags::EXTENTS);
    let mut bad = 0;
    let mut should_be = last.wrapping_mul(bs);
    if pb.is_dir {
        let nblock = u64::from((size >> bits) as u32);
        if c.inode.flags.contains(InodeFlags::INLINE_DATA) {
            let sz = super::special::inline_size(fs, c.ino, &c.raw, false)?;
            if sz != Some(size) {
                bad = 7;
                should_be = sz.unwrap_or(0);
            }
        } else if size & (bs - 1) != 0 {
            bad = 5;
        } else if nblock > last {
            bad = 1;
        } else if nblock < last && last - nblock > u64::from(fs.sb.s_prealloc_dir_blocks) {
            bad = 2;
        }
    } else if pb.last_init_lblock >= 0 && size < (pb.last_init_lblock as u64).wrapping_mul(bs) && !pb.verity {
        bad = 3;
    } else if !extent_file && size > max_indirect_size(fs.sb.s_log_block_size.get().min(6)) {
        bad = 4;
    } else if extent_file && size > (1u64 << (32 + bits)) - 1 {
        bad = 6;
    }
    if bad != 0 && c.inode.mode & 0xF000 != 0xA000 {
        let msg = format!("inode {}: i_size is {size}, should be {should_be} (case {bad})", c.ino);
        // A size the superblock's features do not allow is left to a
        // repair of the features (not done yet).
        let allowed = should_be < 0x8000_0000 || ctx.fs.ro_compat(RoCompat::LARGE_FILE);
        let fixed = if allowed { ctx.ask_inode_fix(Code::BadISize, c.at, msg) } else { ctx.ask_unrepaired(Code::BadISize, c.at, msg) };
        if fixed {
            let size = if c.inode.mode & 0xF000 == 0x4000 { should_be & 0xFFFF_FFFF } else { should_be };
            ctx.fix_inode(c.ino, |raw| {
                use ext4_ondisk::inode::InodeRaw;
                ext4_ondisk::put_u32(raw, std::mem::offset_of!(InodeRaw, i_size_lo), size as u32);
                ext4_ondisk::put_u32(raw, std::mem::offset_of!(InodeRaw, i_size_high), (size >> 32) as u32);
            })?;
        }
    }
    Ok(())
}

/// `handle_htree`: whether the htree flag must go (the root is unusable);
/// `Ok(false)` keeps the directory indexed for pass 2.
fn handle_htree(ctx: &mut Ctx<'_, '_>, c: &InodeCheck) -> Flow<bool> {
    let ino = c.ino;
    let at = c.at;
    let is_dir = c.inode.mode & 0xF000 == 0x4000;
    let mut bad = !is_dir && ctx.ask(Code::HtreeNodir, at, format!("inode {ino} has the htree flag but is not a directory"));
    bad |= !ctx.fs.compat(ext4_ondisk::features::Compat::DIR_INDEX)
        && ctx.ask(Code::HtreeSet, at, format!("inode {ino} has the htree flag without dir_index"));
    if bad {
        return Ok(true);
    }
    let blk = match crate::bmap::bmap(&ctx.fs, ino, &c.inode, 0, true)? {
        Ok(Some(b)) if ctx.fs.block_ok(b) => b,
        _ => return Ok(ctx.ask(Code::HtreeBadroot, at, format!("htree directory {ino} has an invalid root node"))),
    };
    let Some(block) = ctx.fs.img.block(blk)? else {
        return Ok(ctx.ask(Code::HtreeBadroot, at, format!("htree directory {ino} has an unreadable root node")));
    };
    let reserved_zero = ext4_ondisk::get_u32(&block, 24);
    let (hash_version, info_length, levels, flags) = (block[28], block[29], block[30], block[31]);
    if (reserved_zero != 0 || info_length < 8) && ctx.ask(Code::HtreeBadroot, at, format!("htree directory {ino} has an invalid root node"))
    {
        return Ok(true);
    }
    if !matches!(hash_version, 0 | 1 | 2 | 6)
        && ctx.ask(Code::HtreeHashv, at, format!("htree directory {ino} has unsupported hash version {hash_version}"))
    {
        return Ok(true);
    }
    let in_dirent = c.inode.flags.contains(InodeFlags::ENCRYPT) && c.inode.flags.contains(InodeFlags::CASEFOLD);
    if in_dirent && hash_version != 6 && ctx.ask(Code::HtreeNeedsSiphash, at, format!("htree directory {ino} needs SipHash")) {
        return Ok(true);
    }
    if !in_dirent && hash_version == 6 && ctx.ask(Code::HtreeCannotSiphash, at, format!("htree directory {ino} cannot use SipHash")) {
        return Ok(true);
    }
    if flags & 1 != 0 && ctx.ask(Code::HtreeIncompat, at, format!("htree directory {ino} has an incompatible root flag")) {
        return Ok(true);
    }
    if levels > 3 && ctx.ask(Code::HtreeDepth, at, format!("htree directory {ino} is {levels} levels deep")) {
        return Ok(true);
    }
    let largedir = ctx.fs.incompat(Incompat::LARGEDIR);
    let max_levels = if largedir { 3 } else { 2 };
    if levels > max_levels && !largedir {
        let blockbits = u64::from(ctx.fs.geo.block_bits) + 10;
        let idx_pb = 1u64 << (blockbits - 3);
        let limit = (idx_pb - 1) * (idx_pb - 2);
        if c.inode.size < limit << blockbits
            && c.inode.blocks < limit << (blockbits - 9)
            && ctx.ask(Code::HtreeDepth, at, format!("htree directory {ino} is {levels} levels deep"))
        {
            return Ok(true);
        }
    }
    if levels > 2 || c.inode.size >= 0x8000_0000 {
        ctx.large_dirs += 1;
    }
    Ok(false)
}

/// Most htree blocks followed per directory (a directory of 64 GiB of 4
/// KiB blocks); beyond, the check stops as e2fsck would run out of memory.
const MAX_DX_BLOCKS: u32 = 1 << 24;

/// `e2fsck_add_dx_dir`: an htree directory of `numblocks` blocks for pass 2.
fn add_dx_dir(ctx: &mut Ctx<'_, '_>, ino: u32, numblocks: u32) -> Flow {
    if numblocks > MAX_DX_BLOCKS {
        let d = format!("htree directory {ino} claims {numblocks} blocks");
        return Err(ctx.fatal(Code::HtreeBadroot, At::ino(ino), d));
    }
    let casefolded = ctx.inodes.has(ino, crate::inodes::flag::CASEFOLD);
    let dx = DxDir { numblocks, hashversion: 0, depth: 0, blocks: vec![DxBlock::default(); numblocks as usize], casefolded };
    ctx.dx_dirs.insert(ino, dx);
    Ok(())
}

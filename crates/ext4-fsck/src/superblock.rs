//! The checks before the passes (e2fsck's `check_super_block`, MMP, the
//! features it knows, the resize inode) and after them (the orphan file).
//!
//! As in e2fsck, what these find does not decide the verdict by itself
//! (e2fsck marks the filesystem valid again before pass 1); what cannot be
//! checked past stops the check.

use ext4_ondisk::features::{Compat, Incompat, RoCompat};
use ext4_ondisk::group_desc::GroupDescFlags;
use ext4_ondisk::inode::Inode;
use ext4_ondisk::mmp::{MMP_MAGIC, MMP_SEQ_CLEAN, MMP_SEQ_FSCK, MMP_SEQ_MAX, MmpBlock};

use crate::ctx::{Ctx, Flow};
use crate::open::{COMPAT_SUPP, RO_COMPAT_SUPP};
use crate::problem::{At, Code};

/// Everything before pass 1, in e2fsck's order.
pub(crate) fn check_before_passes(ctx: &mut Ctx<'_, '_>) -> Flow {
    check_mmp(ctx)?;
    crate::journal::check(ctx)?;
    check_features(ctx)?;
    check_super_block(ctx)?;
    check_resize_inode(ctx)
}

/// Everything after pass 5.
pub(crate) fn check_after_passes(ctx: &mut Ctx<'_, '_>) -> Flow {
    crate::orphan::check_orphan_file(ctx)?;
    crate::quota::check(ctx)
}

/// `e2fsck_check_mmp`: the MMP block must be readable, valid, and not in
/// use by a check; a read-only check does not wait for a running node.
fn check_mmp(ctx: &mut Ctx<'_, '_>) -> Flow {
    let fs = &ctx.fs;
    if !fs.incompat(Incompat::MMP) {
        return Ok(());
    }
    let blk = fs.sb.s_mmp_block.get();
    if blk <= fs.first_data_block() || blk >= fs.blocks_count() {
        return Err(ctx.fatal(Code::MmpInvalidBlk, At::block(blk), format!("MMP block {blk} is outside the filesystem")));
    }
    let Some(data) = fs.img.block(blk)? else {
        return Err(ctx.fatal(Code::MmpInvalidBlk, At::block(blk), format!("MMP block {blk} is beyond the end of the device")));
    };
    let seed = fs.csum().then(|| fs.csum_seed());
    let raw = MmpBlock::parse(&data, None).ok();
    let Some(m) = raw else {
        return Err(ctx.fatal(Code::MmpInvalidMagic, At::block(blk), "MMP block has a bad magic number"));
    };
    if seed.is_some_and(|seed| m.mmp_checksum.get() != m.compute_checksum(seed)) {
        return Err(ctx.fatal(Code::MmpCsumInvalid, At::block(blk), "MMP block checksum does not match"));
    }
    debug_assert_eq!(m.mmp_magic.get(), MMP_MAGIC);
    let seq = m.mmp_seq.get();
    if seq == MMP_SEQ_FSCK || (seq != MMP_SEQ_CLEAN && seq > MMP_SEQ_MAX) {
        return Err(ctx.fatal(
            Code::MmpInUse,
            At::block(blk),
            format!("MMP block says the filesystem is being checked or in an unknown state (sequence {seq:#x})"),
        ));
    }
    Ok(())
}

/// Features e2fsck does not know stop it, as does an unknown casefold encoding.
fn check_features(ctx: &mut Ctx<'_, '_>) -> Flow {
    let sb = &ctx.fs.sb;
    let compat = Compat::from_bits_retain(sb.s_feature_compat.get()) - COMPAT_SUPP;
    let ro = RoCompat::from_bits_retain(sb.s_feature_ro_compat.get()) - RO_COMPAT_SUPP;
    if !compat.is_empty() || !ro.is_empty() {
        let d = format!("unsupported features: compat {:#x}, ro_compat {:#x}", compat.bits(), ro.bits());
        return Err(ctx.fatal(Code::UnsupportedFeature, At::NONE, d));
    }
    // Only UTF-8 12.1 (encoding 1) exists.
    if ctx.fs.incompat(Incompat::CASEFOLD) && ctx.fs.sb.s_encoding.get() != 1 {
        let d = format!("unsupported casefold encoding {}", ctx.fs.sb.s_encoding.get());
        return Err(ctx.fatal(Code::UnsupportedFeature, At::NONE, d));
    }
    Ok(())
}

/// A superblock value e2fsck cannot work with stops the check (`check_super_value`).
fn value_in(ctx: &mut Ctx<'_, '_>, what: &str, v: u64, min: Option<u64>, max: Option<u64>, pow2: bool) -> Flow {
    if min.is_some_and(|m| v < m) || max.is_some_and(|m| v > m) || (pow2 && v & v.wrapping_sub(1) != 0) {
        return Err(ctx.fatal(Code::MiscCorruptSuper, At::NONE, format!("superblock field {what} = {v} is invalid")));
    }
    Ok(())
}

/// `check_super_block`: the superblock's values, then every group descriptor.
fn check_super_block(ctx: &mut Ctx<'_, '_>) -> Flow {
    check_super_values(ctx)?;
    check_super_features(ctx);
    check_descriptors(ctx);
    check_super_times(ctx);
    Ok(())
}

/// The numeric fields of the superblock.
fn check_super_values(ctx: &mut Ctx<'_, '_>) -> Flow {
    let sb = ctx.fs.sb.clone();
    let bs = u64::from(ctx.fs.bs());
    let ratio = ctx.fs.ratio();
    let ipb = bs / u64::from(ctx.fs.geo.inode_size);
    let bpg = u64::from(sb.s_blocks_per_group.get());
    let ipg_max = u64::from((ipb * bpg.saturating_sub(4)) as u32);
    let ipg_max = ipg_max.min(65536 - ipb);
    let cpg_max = (8 * bs).min(65528);
    let bpg_max = (8 * bs * ratio).min(65528 * ratio);
    let blks_max = if ctx.fs.incompat(Incompat::BIT64) { (1u64 << 48) - 1 } else { (1u64 << 32) - 1 };
    let blocks = sb.blocks_count();
    value_in(ctx, "inodes_count", sb.s_inodes_count.get().into(), Some(1), None, false)?;
    value_in(ctx, "blocks_count", blocks, Some(1), Some(blks_max.min((1u64 << 32) * 65528 * ratio)), false)?;
    value_in(ctx, "first_data_block", sb.s_first_data_block.get().into(), None, Some(blocks), false)?;
    value_in(ctx, "log_block_size", sb.s_log_block_size.get().into(), Some(0), Some(6), false)?;
    let log = u64::from(sb.s_log_block_size.get());
    value_in(ctx, "log_cluster_size", sb.s_log_cluster_size.get().into(), Some(log), Some(19), false)?;
    value_in(ctx, "clusters_per_group", sb.s_clusters_per_group.get().into(), Some(8), Some(cpg_max), false)?;
    value_in(ctx, "blocks_per_group", bpg, Some(8), Some(bpg_max), false)?;
    value_in(ctx, "inodes_per_group", sb.s_inodes_per_group.get().into(), Some(ipb), Some(ipg_max), false)?;
    value_in(ctx, "r_blocks_count", sb.r_blocks_count(), None, Some(blocks / 2), false)?;
    value_in(ctx, "reserved_gdt_blocks", sb.s_reserved_gdt_blocks.get().into(), None, Some(bs / 4), false)?;
    value_in(ctx, "desc_size", sb.s_desc_size.get().into(), None, Some(1024), true)?;
    let should_be = u64::from(sb.s_inodes_per_group.get()) * u64::from(ctx.fs.geo.group_count);
    if should_be > u64::from(u32::MAX) || u64::from(sb.s_inodes_count.get()) != should_be {
        let d = format!("inode count {} should be {should_be}", sb.s_inodes_count.get());
        ctx.ask(Code::InodeCountWrong, At::NONE, d.clone());
        return Err(ctx.fatal(Code::MiscCorruptSuper, At::NONE, d));
    }
    if sb.s_rev_level.get() > 0 {
        value_in(ctx, "first_ino", sb.s_first_ino.get().into(), Some(11), Some(sb.s_inodes_count.get().into()), false)?;
    }
    let dev_blocks = ctx.fs.img.len() / bs;
    if dev_blocks < blocks {
        let d = format!("the filesystem has {blocks} blocks but the device only {dev_blocks}");
        ctx.ask(Code::FsSizeWrong, At::NONE, d);
    }
    let should_be = u32::from(sb.s_log_block_size.get() == 0 && ratio == 1);
    if sb.s_first_data_block.get() != should_be {
        let d = format!("first data block {} should be {should_be}", sb.s_first_data_block.get());
        return Err(ctx.fatal(Code::FirstDataBlock, At::NONE, d));
    }
    check_extra_isize(ctx);
    Ok(())
}

/// `s_min_extra_isize` and `s_want_extra_isize` must fit the inode.
fn check_extra_isize(ctx: &mut Ctx<'_, '_>) {
    let isz = ctx.fs.geo.inode_size;
    if isz <= 128 {
        return;
    }
    let max = isz - 128;
    for (code, v) in
        [(Code::BadMinExtraIsize, ctx.fs.sb.s_min_extra_isize.get()), (Code::BadWantExtraIsize, ctx.fs.sb.s_want_extra_isize.get())]
    {
        let v = u32::from(v);
        if v != 0 && (!(4..=max).contains(&v) || v & 3 != 0) {
            ctx.ask(code, At::NONE, format!("extra inode size {v} is invalid"));
        }
    }
}

/// Feature combinations e2fsck corrects.
fn check_super_features(ctx: &mut Ctx<'_, '_>) {
    let f = &ctx.fs;
    let checks = [
        (f.csum() && f.ro_compat(RoCompat::GDT_CSUM), Code::MetaAndGdtCsumSet),
        (!f.csum() && f.incompat(Incompat::CSUM_SEED), Code::CsumSeedWithoutMetaCsum),
        (f.incompat(Incompat::BIT64) && !f.incompat(Incompat::EXTENTS), Code::Bit64WithoutExtents),
        (f.incompat(Incompat::META_BG) && u64::from(f.sb.s_first_meta_bg.get()) > f.desc_blocks, Code::FirstMetaBgTooBig),
    ];
    for (bad, code) in checks {
        if bad {
            ctx.ask(code, At::NONE, code.description());
        }
    }
}

/// Every group descriptor: tables inside the group (the filesystem with
/// `flex_bg`), checksums, uninit flags.
fn check_descriptors(ctx: &mut Ctx<'_, '_>) {
    let flex = ctx.fs.incompat(Incompat::FLEX_BG);
    let csum_flag = ctx.fs.group_csum();
    let itb = ctx.fs.itable_blocks();
    let count = ctx.fs.geo.group_count;
    for g in 0..count {
        let (first, last) = if flex {
            (ctx.fs.first_data_block(), ctx.fs.blocks_count() - 1)
        } else {
            (ctx.fs.group_first_block(g), ctx.fs.group_last_block(g))
        };
        let gd = ctx.fs.groups[g as usize].clone();
        let at = At::group(g);
        if gd.block_bitmap < first || gd.block_bitmap > last {
            ctx.ask(Code::BbNotGroup, at, format!("block bitmap of group {g} at {} is not in the group", gd.block_bitmap));
        }
        if gd.block_bitmap == 0 {
            flag_invalid(ctx, g, 0);
        }
        if gd.inode_bitmap < first || gd.inode_bitmap > last {
            ctx.ask(Code::IbNotGroup, at, format!("inode bitmap of group {g} at {} is not in the group", gd.inode_bitmap));
        }
        if gd.inode_bitmap == 0 {
            flag_invalid(ctx, g, 1);
        }
        if gd.inode_table < first || gd.inode_table.saturating_add(itb - 1) > last {
            ctx.ask(Code::ItableNotGroup, at, format!("inode table of group {g} at {} is not in the group", gd.inode_table));
        }
        if gd.inode_table == 0 {
            flag_invalid(ctx, g, 2);
        }
        if !ctx.fs.desc_csum_ok[g as usize] && ctx.ask(Code::GdtCsum, at, format!("group descriptor {g} checksum is {:#06x}", gd.checksum))
        {
            // As e2fsck: nothing in the group is trusted to be unused; the
            // checksum is recomputed when the descriptor is written.
            let d = &mut ctx.fs.groups[g as usize];
            d.flags.remove(GroupDescFlags::BLOCK_UNINIT | GroupDescFlags::INODE_UNINIT);
            d.itable_unused = 0;
            ctx.mark_group_dirty(g);
            ctx.restart = true;
        }
        let uninit = gd.flags.intersects(GroupDescFlags::BLOCK_UNINIT | GroupDescFlags::INODE_UNINIT);
        if !csum_flag && (uninit || gd.itable_unused != 0) {
            ctx.ask(Code::GdtUninit, at, format!("group {g} has uninit flags without group checksums"));
        }
        if g + 1 == count && gd.flags.contains(GroupDescFlags::BLOCK_UNINIT) {
            ctx.ask(Code::BbUninitLast, at, format!("the last group {g} is BLOCK_UNINIT"));
        }
        let ipg = ctx.fs.geo.inodes_per_group;
        if csum_flag && (gd.itable_unused > gd.free_inodes_count || gd.itable_unused > ipg) {
            let d = format!("group {g}: {} unused inodes but {} free", gd.itable_unused, gd.free_inodes_count);
            ctx.ask(Code::GdtItableUnused, at, d);
        }
    }
}

/// Marks a group's bitmap or table (0, 1, 2) as missing.
fn flag_invalid(ctx: &mut Ctx<'_, '_>, g: u32, which: u8) {
    let v = match which {
        0 => &mut ctx.invalid_block_bitmap,
        1 => &mut ctx.invalid_inode_bitmap,
        _ => &mut ctx.invalid_inode_table,
    };
    v[g as usize] = true;
    ctx.invalid_bitmaps += 1;
}

/// Last mount and write times in the future (a clock problem, not an inconsistency).
fn check_super_times(ctx: &mut Ctx<'_, '_>) {
    let now = ctx.now as u32;
    let (mtime, wtime) = (ctx.fs.sb.s_mtime.get(), ctx.fs.sb.s_wtime.get());
    if mtime > now.saturating_add(86400) {
        ctx.ask(Code::FutureSbLastMount, At::NONE, format!("last mount time {mtime} is in the future"));
    }
    if wtime > now.saturating_add(86400) {
        ctx.ask(Code::FutureSbLastWrite, At::NONE, format!("last write time {wtime} is in the future"));
    }
}

/// `check_resize_inode`: with `resize_inode`, inode 7 maps only its
/// double-indirect block, whose entries point at the reserved GDT blocks
/// and their backups.
fn check_resize_inode(ctx: &mut Ctx<'_, '_>) -> Flow {
    let resize = ctx.fs.compat(Compat::RESIZE_INODE);
    if resize && ctx.fs.incompat(Incompat::META_BG) {
        ctx.ask(Code::DisableResizeInode, At::ino(7), "resize_inode and meta_bg are both set");
    }
    let reserved = u64::from(ctx.fs.sb.s_reserved_gdt_blocks.get());
    if !resize && reserved != 0 {
        ctx.ask(Code::NonzeroReservedGdtBlocks, At::NONE, format!("{reserved} reserved GDT blocks without resize_inode"));
    }
    let Some(raw) = ctx.fs.read_inode_raw(7)? else { return Ok(()) };
    if ctx.fs.csum() && ext4_ondisk::inode::verify_inode_checksum(ctx.fs.csum_seed(), 7, &raw).is_err() {
        return Ok(());
    }
    let Ok(inode) = Inode::parse(&raw) else { return Ok(()) };
    let words: Vec<u32> = (0..15).map(|i| ext4_ondisk::get_u32(&inode.block, i * 4)).collect();
    if !resize {
        if words.iter().any(|&w| w != 0) {
            ctx.ask(Code::ClearResizeInode, At::ino(7), "the resize inode maps blocks without resize_inode");
        }
        return Ok(());
    }
    if !resize_inode_valid(ctx, &inode, &words)? {
        ctx.ask(Code::ResizeInodeInvalid, At::ino(7), "the resize inode is not valid");
    }
    Ok(())
}

/// Whether the resize inode maps exactly what mke2fs would have it map.
fn resize_inode_valid(ctx: &Ctx<'_, '_>, inode: &Inode, words: &[u32]) -> crate::Result<bool> {
    let fs = &ctx.fs;
    let dind = u64::from(words[13]);
    if words.iter().enumerate().any(|(i, &w)| i != 13 && w != 0)
        || dind == 0
        || inode.links_count == 0
        || inode.mode & 0x8000 == 0
        || !fs.block_ok(dind)
    {
        return Ok(false);
    }
    let Some(dind_buf) = fs.img.block(dind)? else { return Ok(false) };
    let per = u64::from(fs.bs()) / 4;
    let mut gdt_off = fs.desc_blocks;
    let mut pblk = fs.first_data_block() + 1 + fs.desc_blocks;
    if fs.bs() == 1024 && fs.first_data_block() == 0 {
        pblk += 1;
    }
    for _ in 0..u64::from(fs.sb.s_reserved_gdt_blocks.get()) / 4 {
        gdt_off %= per;
        if u64::from(ext4_ondisk::get_u32(&dind_buf, gdt_off as usize * 4)) != pblk {
            return Ok(false);
        }
        let Some(ind) = (pblk < fs.blocks_count()).then(|| fs.img.block(pblk)).transpose()?.flatten() else {
            return Ok(false);
        };
        let mut ind_off = 0usize;
        for j in 1..fs.geo.group_count {
            if !fs.has_super(j) {
                continue;
            }
            let expect = pblk.wrapping_add(u64::from(j) * u64::from(fs.geo.blocks_per_group)) as u32;
            if ind_off * 4 + 4 > ind.len() || ext4_ondisk::get_u32(&ind, ind_off * 4) != expect {
                return Ok(false);
            }
            ind_off += 1;
        }
        gdt_off += 1;
        pblk += 1;
    }
    Ok(true)
}

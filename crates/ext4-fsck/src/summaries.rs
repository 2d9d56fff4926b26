//! Pass 5's repair: the group summaries rewritten from what passes 1-4
//! found in use (e2fsck copies its found maps over the bitmaps and
//! recounts). Each group's block and inode bitmap is rewritten unless the
//! group is uninitialized and may stay so; padding bits are set; the
//! bitmap checksums, free counts, directory counts and flags go into the
//! descriptor, and the totals into the superblock.

use ext4_ondisk::group_desc::{GroupDesc, GroupDescFlags};

use crate::ctx::{Ctx, Flow};
use crate::inodes::flag;
use crate::runset::RunSet;

/// Rewrites every group's summaries (see the module documentation).
pub(crate) fn rewrite(ctx: &mut Ctx<'_, '_>, uninit: &RunSet) -> Flow {
    let mut free_clusters = 0u64;
    let mut free_inodes = 0u64;
    for g in 0..ctx.fs.geo.group_count {
        let mut gd = ctx.fs.groups[g as usize].clone();
        free_clusters += block_side(ctx, g, &mut gd, uninit)?;
        free_inodes += inode_side(ctx, g, &mut gd)?;
        if gd != ctx.fs.groups[g as usize] {
            ctx.fs.groups[g as usize] = gd;
            ctx.mark_group_dirty(g);
        }
    }
    let free_blocks = free_clusters * ctx.fs.ratio();
    let sb = &mut ctx.fs.layout.sb;
    let mut dirty = false;
    if sb.free_blocks_count() != free_blocks {
        sb.set_free_blocks_count(free_blocks);
        dirty = true;
    }
    if u64::from(sb.s_free_inodes_count.get()) != free_inodes {
        sb.s_free_inodes_count.set(free_inodes as u32);
        dirty = true;
    }
    if dirty {
        ctx.mark_super_dirty();
    }
    Ok(())
}

/// Sets bits `from..to` of `bits`.
fn set_bits(bits: &mut [u8], from: u64, to: u64) {
    for i in from..to {
        bits[(i / 8) as usize] |= 1 << (i % 8);
    }
}

/// Number of set bits among the first `n` of `bits`.
fn count_set(bits: &[u8], n: u64) -> u64 {
    (0..n).filter(|&i| bits[(i / 8) as usize] & (1 << (i % 8)) != 0).count() as u64
}

/// Group `g`'s block bitmap; returns its free clusters.
fn block_side(ctx: &mut Ctx<'_, '_>, g: u32, gd: &mut GroupDesc, uninit: &RunSet) -> Flow<u64> {
    let fs = &ctx.fs;
    let (ratio, bs) = (fs.ratio(), fs.bs() as usize);
    let cpg = u64::from(fs.geo.clusters_per_group);
    let nbytes = (cpg / 8) as usize;
    let base = fs.b2c(fs.first_data_block()) + u64::from(g) * cpg;
    let count = (fs.b2c(fs.blocks_count() - 1) + 1 - base).min(cpg);
    let mut actual = vec![0u8; nbytes];
    ctx.found.fill_bitmap(base, &mut actual);
    let free = count - count_set(&actual, count);
    if fs.group_csum() && gd.flags.contains(GroupDescFlags::BLOCK_UNINIT) {
        // An uninit group stays so if nothing but the metadata the
        // kernel computes for it is in use.
        let mut computed = vec![0u8; nbytes];
        for (s, e) in uninit.runs_in(base * ratio, (base + cpg) * ratio) {
            set_bits(&mut computed, s / ratio - base, e.div_ceil(ratio) - base);
        }
        if computed == actual && count == cpg {
            gd.free_blocks_count = free as u32;
            return Ok(free);
        }
        gd.flags.remove(GroupDescFlags::BLOCK_UNINIT);
    }
    let mut block = vec![0xffu8; bs];
    block[..nbytes].copy_from_slice(&actual);
    set_bits(&mut block, count, cpg);
    if fs.csum() {
        gd.block_bitmap_csum = ext4_ondisk::checksum::bitmap(fs.csum_seed(), &block[..nbytes]);
        if fs.geo.desc_size < 64 {
            gd.block_bitmap_csum &= 0xFFFF;
        }
    }
    gd.free_blocks_count = free as u32;
    ctx.write_block(gd.block_bitmap, &block)?;
    Ok(free)
}

/// Group `g`'s inode bitmap; returns its free inodes.
fn inode_side(ctx: &mut Ctx<'_, '_>, g: u32, gd: &mut GroupDesc) -> Flow<u64> {
    let fs = &ctx.fs;
    let ipg = fs.geo.inodes_per_group;
    let nbytes = (ipg / 8) as usize;
    let first = g * ipg + 1;
    let mut bits = vec![0u8; nbytes];
    let (mut used, mut dirs, mut last) = (0u64, 0u32, 0u32);
    for r in ctx.inodes.range(first, first + ipg - 1) {
        if r.flags & flag::USED != 0 {
            let i = r.ino - first;
            set_bits(&mut bits, u64::from(i), u64::from(i) + 1);
            used += 1;
            last = i + 1;
            dirs += u32::from(r.flags & flag::DIR != 0);
        }
    }
    let free = u64::from(ipg) - used;
    gd.free_inodes_count = free as u32;
    gd.used_dirs_count = dirs;
    if fs.group_csum() {
        if gd.flags.contains(GroupDescFlags::INODE_UNINIT) {
            if used == 0 {
                return Ok(free);
            }
            gd.flags.remove(GroupDescFlags::INODE_UNINIT);
        }
        // Inodes in use must lie before the unused tail of the table.
        gd.itable_unused = gd.itable_unused.min(ipg - last);
    }
    let mut block = vec![0xffu8; fs.bs() as usize];
    block[..nbytes].copy_from_slice(&bits);
    if fs.csum() {
        gd.inode_bitmap_csum = ext4_ondisk::checksum::bitmap(fs.csum_seed(), &bits);
        if fs.geo.desc_size < 64 {
            gd.inode_bitmap_csum &= 0xFFFF;
        }
    }
    ctx.write_block(gd.inode_bitmap, &block)?;
    Ok(free)
}

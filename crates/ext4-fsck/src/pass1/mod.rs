//! Pass 1: every inode of the inode tables, in order: its mode, flags and
//! times, its block map (extent tree or indirect blocks) with every block
//! marked in use, its size and `i_blocks`, its xattrs, inline data and
//! special meaning (bad blocks, root, journal, quota, orphan file).
//! Blocks claimed twice are reported at the end (e2fsck's pass 1b-d).

mod blocks;
mod dup;
mod extents;
mod inode;
mod special;
mod xattrs;

use ext4_ondisk::features::Incompat;
use ext4_ondisk::group_desc::GroupDescFlags;

use crate::ctx::{Ctx, Flow};
use crate::problem::{At, Code};

pub(crate) use blocks::{Cb, iterate};
pub(crate) use inode::csum_ok as inode_csum_ok;
pub(crate) use special::{check_device_inode, check_symlink};

/// Inode table blocks read at once (`EXT2_INODE_SCAN_DEFAULT_BUFFER_BLOCKS`).
const SCAN_BLOCKS: u64 = 8;

/// Runs pass 1.
pub(crate) fn run(ctx: &mut Ctx<'_, '_>) -> Flow {
    special::read_bad_blocks_list(ctx)?;
    ctx.quota = crate::quota::QuotaUsage::new(&ctx.fs);
    mark_table_blocks(ctx);
    let fs = &ctx.fs;
    if fs.incompat(Incompat::MMP) {
        let b = fs.sb.s_mmp_block.get();
        if b > fs.first_data_block() && b < fs.blocks_count() {
            ctx.mark_block(b);
        }
    }
    let mut scan = inode::Scan::new(ctx);
    for g in 0..ctx.fs.geo.group_count {
        ctx.progress(u64::from(g), u64::from(ctx.fs.geo.group_count))?;
        scan_group(ctx, &mut scan, g)?;
    }
    finish(ctx)
}

/// Reads group `g`'s inode table and checks each inode in use range
/// (`ext2fs_get_next_inode_full` and the pass 1 loop).
fn scan_group(ctx: &mut Ctx<'_, '_>, scan: &mut inode::Scan, g: u32) -> Flow {
    let fs = &ctx.fs;
    let gd = &fs.groups[g as usize];
    let table = gd.inode_table;
    let itb = fs.itable_blocks();
    if table != 0 && (table < fs.first_data_block() || table.saturating_add(itb - 1) >= fs.blocks_count()) {
        let d = format!("inode table of group {g} at {table} is outside the filesystem");
        return Err(ctx.fatal(Code::ItableNotGroup, At::group(g), d));
    }
    let ipg = fs.geo.inodes_per_group;
    let mut inodes_left = ipg;
    if fs.group_csum() {
        inodes_left = ipg.saturating_sub(gd.itable_unused);
        if gd.flags.contains(GroupDescFlags::INODE_UNINIT) {
            return Ok(());
        }
    }
    if inodes_left == 0 || table == 0 {
        return Ok(());
    }
    let isz = u64::from(fs.geo.inode_size);
    let bs = u64::from(fs.bs());
    let ipb = bs / isz;
    let blocks = (u64::from(inodes_left) + ipb - 1) * isz / bs;
    let first_ino = g * ipg + 1;
    let mut done = 0u32;
    let mut chunk_start = 0u64;
    while chunk_start < blocks && done < inodes_left {
        let n = SCAN_BLOCKS.min(blocks - chunk_start);
        let mut buf = vec![0u8; (n * bs) as usize];
        if !ctx.fs.img.read_bytes((table + chunk_start) * bs, &mut buf)? {
            let d = format!("inode table of group {g} lies beyond the end of the device");
            return Err(ctx.fatal(Code::ItableNotGroup, At::group(g), d));
        }
        let in_buf = ((n * bs / isz) as u32).min(inodes_left - done);
        let mut bad = vec![false; n as usize];
        for (k, b) in bad.iter_mut().enumerate() {
            if ctx.bad_blocks.contains(table + chunk_start + k as u64) {
                *b = true;
                buf[k * bs as usize..(k + 1) * bs as usize].fill(0);
            }
        }
        let status = scan.block_status(ctx, &buf, first_ino + done, in_buf);
        for i in 0..in_buf {
            let ino = first_ino + done + i;
            if bad[(u64::from(i) * isz / bs) as usize] {
                in_bad_block(ctx, ino);
                continue;
            }
            let raw = buf[(u64::from(i) * isz) as usize..(u64::from(i + 1) * isz) as usize].to_vec();
            let st = status[(u64::from(i) / ipb) as usize];
            scan.inode(ctx, ino, raw, st)?;
        }
        done += in_buf;
        chunk_start += n;
    }
    Ok(())
}

/// An inode whose table block is on the bad blocks list: in use, but
/// unreadable (e2fsck's `inode_bb_map`).
fn in_bad_block(ctx: &mut Ctx<'_, '_>, ino: u32) {
    if ino == 1 {
        ctx.ask(Code::BadblocksInBadblocks, At::ino(1), "the bad blocks list says the bad blocks inode's table block is bad");
    }
    ctx.inodes.set(ino, crate::inodes::flag::BB | crate::inodes::flag::USED);
}

/// Marks the superblock copies, descriptors, bitmaps and inode tables of
/// every group in use (`mark_table_blocks`), noting tables that overlap.
/// Overlaps are found block by block (with bigalloc, tables share clusters).
fn mark_table_blocks(ctx: &mut Ctx<'_, '_>) {
    let itb = ctx.fs.itable_blocks();
    let mut blocks = crate::runset::RunSet::new();
    for g in 0..ctx.fs.geo.group_count {
        let mut runs = Vec::new();
        ctx.fs.super_and_bgd_runs(g, |s, n| runs.push((s, n)));
        for (s, n) in runs {
            blocks.insert(s, n);
            ctx.metadata.insert(s, n);
        }
        let gd = ctx.fs.groups[g as usize].clone();
        let at = At::group(g);
        if gd.inode_table != 0 {
            for b in gd.inode_table..gd.inode_table.saturating_add(itb) {
                if blocks.contains(b) {
                    if !ctx.invalid_inode_table[g as usize] {
                        let d = format!("inode table of group {g} conflicts with other metadata at block {b}");
                        if ctx.ask(Code::ItableConflict, At { block: Some(b), ..at }, d) {
                            ctx.invalid_inode_table[g as usize] = true;
                            ctx.invalid_bitmaps += 1;
                        }
                    }
                } else {
                    blocks.insert(b, 1);
                    ctx.metadata.insert(b, 1);
                }
            }
        }
        for (blk, code, what) in [(gd.block_bitmap, Code::BbConflict, "block bitmap"), (gd.inode_bitmap, Code::IbConflict, "inode bitmap")]
        {
            if blk == 0 {
                continue;
            }
            if blocks.contains(blk) {
                ctx.ask(code, At { block: Some(blk), ..at }, format!("{what} of group {g} at {blk} conflicts with other metadata"));
            } else {
                blocks.insert(blk, 1);
                ctx.metadata.insert(blk, 1);
            }
        }
    }
    for (s, e) in blocks.runs_in(0, u64::MAX) {
        let (a, b) = (ctx.fs.b2c(s), ctx.fs.b2c(e - 1));
        ctx.found.insert(a, b - a + 1);
    }
}

/// After the scan: xattr block reference counts, large directories, then
/// the blocks claimed twice.
fn finish(ctx: &mut Ctx<'_, '_>) -> Flow {
    ctx.inodes.reindex();
    xattrs::adjust_refcounts(ctx)?;
    if ctx.invalid_bitmaps > 0 {
        handle_fs_bad_blocks(ctx);
    }
    if ctx.large_dirs > 0 && !ctx.fs.incompat(Incompat::LARGEDIR) {
        ctx.ask(Code::FeatureLargeDirs, At::NONE, "directories need large_dir");
    }
    if ctx.dups.count_in(0, u64::MAX) > 0 && !ctx.fs.ro_compat(ext4_ondisk::features::RoCompat::SHARED_BLOCKS) {
        ctx.pass = crate::problem::Pass::Duplicates;
        dup::run(ctx)?;
        ctx.pass = crate::problem::Pass::Inodes;
    }
    Ok(())
}

/// Groups whose bitmap or table location is missing or overlaps other
/// metadata would have their tables moved (`handle_fs_bad_blocks`); a
/// check that does not repair leaves the filesystem inconsistent.
fn handle_fs_bad_blocks(ctx: &mut Ctx<'_, '_>) {
    for g in 0..ctx.fs.geo.group_count as usize {
        for (bad, what) in [
            (ctx.invalid_block_bitmap[g], "block bitmap"),
            (ctx.invalid_inode_bitmap[g], "inode bitmap"),
            (ctx.invalid_inode_table[g], "inode table"),
        ] {
            if bad {
                let code = match what {
                    "block bitmap" => Code::BbConflict,
                    "inode bitmap" => Code::IbConflict,
                    _ => Code::ItableConflict,
                };
                ctx.ask(code, At::group(g as u32), format!("the {what} of group {g} must be relocated"));
            }
        }
    }
}

/// The file type code of a mode (`ext2_file_type`), 0 if invalid.
pub(crate) fn ftype_of(mode: u16) -> u8 {
    ext4_ondisk::FileType::from_mode(mode).map_or(0, |t| t.dir_entry_code())
}

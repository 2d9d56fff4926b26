//! Pass 5: the group summaries. Each group's on-disk bitmaps are read one
//! group at a time (as `ext2fs_read_bitmaps` presents them: uninit groups
//! computed, missing bitmaps zero) and compared with what passes 1-4
//! found in use; then free counts, directory counts, bitmap padding and
//! bitmap checksums.

use ext4_ondisk::group_desc::{GroupDescFlags, bitmap_csum_matches};

use crate::ctx::{Ctx, Flow};
use crate::inodes::flag;
use crate::problem::{At, Code};
use crate::runset::RunSet;

/// Runs pass 5.
pub(crate) fn run(ctx: &mut Ctx<'_, '_>) -> Flow {
    if ctx.invalid_bitmaps > 0 {
        return Err(ctx.fatal(Code::BlockBitmapEnd, At::NONE, "bitmaps cannot be read: some group has no valid bitmap location"));
    }
    ctx.hold_unless_clean();
    let start = ctx.problems.len();
    let uninit = uninit_group_blocks(ctx);
    check_block_bitmaps(ctx, &uninit)?;
    check_inode_bitmaps(ctx)?;
    if ctx.problems[start..].iter().any(|p| p.fixed) {
        crate::summaries::rewrite(ctx, &uninit)?;
    }
    Ok(())
}

/// Blocks `mark_uninit_bg_group_blocks` sets for `BLOCK_UNINIT` groups:
/// their superblock copy, descriptors, inode table and bitmaps, wherever
/// those lie.
fn uninit_group_blocks(ctx: &Ctx<'_, '_>) -> RunSet {
    let fs = &ctx.fs;
    let mut set = RunSet::new();
    for g in 0..fs.geo.group_count {
        let gd = &fs.groups[g as usize];
        if !gd.flags.contains(GroupDescFlags::BLOCK_UNINIT) {
            continue;
        }
        fs.super_and_bgd_runs(g, |s, n| {
            set.insert(s, n);
        });
        if gd.inode_table != 0 {
            set.insert(gd.inode_table, fs.itable_blocks());
        }
        for b in [gd.block_bitmap, gd.inode_bitmap] {
            if b != 0 && b < fs.blocks_count() {
                set.insert(b, 1);
            }
        }
    }
    set
}

/// Reads a bitmap block as `read_bitmaps_range_start` does: zeros for an
/// uninit group with a valid descriptor checksum or a location past the
/// end; also whether its padding bytes are all set.
fn read_bitmap(ctx: &mut Ctx<'_, '_>, g: u32, blk: u64, uninit: bool, nbytes: usize) -> Flow<(Vec<u8>, bool)> {
    let fs = &ctx.fs;
    let skip = (fs.group_csum() && uninit && fs.desc_csum_ok[g as usize]) || blk >= fs.blocks_count();
    if skip {
        return Ok((vec![0u8; fs.bs() as usize], true));
    }
    let Some(b) = fs.img.block(blk)? else {
        return Err(ctx.fatal(Code::BlockBitmapEnd, At::group(g), format!("the bitmap of group {g} at block {blk} cannot be read")));
    };
    let tail_ok = b[nbytes..].iter().all(|&x| x == 0xff);
    Ok((b, tail_ok))
}

/// Bit `i` of `bits`.
fn bit(bits: &[u8], i: u64) -> bool {
    bits[(i / 8) as usize] & (1 << (i % 8)) != 0
}

/// Reports a run of differing bits.
fn report_run(ctx: &mut Ctx<'_, '_>, used: bool, block: bool, first: u64, last: u64) {
    let (code, kind) = match (block, used) {
        (true, true) => (Code::BlockUsed, "in use but not marked in the block bitmap"),
        (true, false) => (Code::BlockUnused, "marked in the block bitmap but not in use"),
        (false, true) => (Code::InodeUsed, "in use but not marked in the inode bitmap"),
        (false, false) => (Code::InodeUnused, "marked in the inode bitmap but not in use"),
    };
    let what = if block { "block" } else { "inode" };
    let range = if first == last { format!("{what} {first}") } else { format!("{what}s {first}-{last}") };
    let at = if block { At::block(first) } else { At::ino(first as u32) };
    ctx.ask(code, at, format!("{range}: {kind}"));
}

/// Collects differing bits into runs of the same kind.
#[derive(Default)]
struct Runs {
    cur: Option<(bool, u64, u64)>,
    any: bool,
}

impl Runs {
    fn add(&mut self, ctx: &mut Ctx<'_, '_>, block: bool, used: bool, n: u64, step: u64) {
        self.any = true;
        match &mut self.cur {
            Some((u, _, last)) if *u == used && *last + step == n => *last = n,
            _ => {
                self.flush(ctx, block);
                self.cur = Some((used, n, n));
            }
        }
    }

    fn flush(&mut self, ctx: &mut Ctx<'_, '_>, block: bool) {
        if let Some((used, first, last)) = self.cur.take() {
            report_run(ctx, used, block, first, last);
        }
    }
}

/// `check_block_bitmaps`, `check_block_end` and `check_block_bitmap_checksum`.
fn check_block_bitmaps(ctx: &mut Ctx<'_, '_>, uninit: &RunSet) -> Flow {
    let fs = &ctx.fs;
    let ratio = fs.ratio();
    let cpg = u64::from(fs.geo.clusters_per_group);
    let nbytes = (cpg / 8) as usize;
    let first_cluster = fs.b2c(fs.first_data_block());
    let last_cluster = fs.b2c(fs.blocks_count() - 1);
    let groups = fs.geo.group_count;
    let mut runs = Runs::default();
    let (mut free_total, mut tail_problem, mut csum_bad) = (0u64, false, Vec::new());
    let mut free_array = vec![0u64; groups as usize];
    let mut padding_bad = false;
    for g in 0..groups {
        ctx.progress(u64::from(g), u64::from(groups) * 2)?;
        let gd = ctx.fs.groups[g as usize].clone();
        let bu = gd.flags.contains(GroupDescFlags::BLOCK_UNINIT);
        let (mut disk, tail_ok) = read_bitmap(ctx, g, gd.block_bitmap, bu, nbytes)?;
        tail_problem |= !tail_ok;
        let base = first_cluster + u64::from(g) * cpg;
        // Blocks of uninit groups count as marked, wherever they are.
        for (s, e) in uninit.runs_in(base * ratio, (base + cpg) * ratio) {
            for c in s / ratio..e.div_ceil(ratio) {
                let i = c - base;
                disk[(i / 8) as usize] |= 1 << (i % 8);
            }
        }
        let fs = &ctx.fs;
        if fs.csum() && !bu {
            let computed = ext4_ondisk::checksum::bitmap(fs.csum_seed(), &disk[..nbytes]);
            if !bitmap_csum_matches(&fs.geo, gd.block_bitmap_csum, computed) {
                csum_bad.push(g);
            }
        }
        let count = (last_cluster + 1 - base).min(cpg);
        if g + 1 == groups && count < cpg && (count..cpg).any(|i| !bit(&disk, i)) {
            padding_bad = true;
        }
        let mut actual = vec![0u8; nbytes];
        ctx.found.fill_bitmap(base, &mut actual);
        let mut free = 0u64;
        let whole = count == cpg && actual[..] == disk[..nbytes];
        if whole {
            free = cpg - actual.iter().map(|b| u64::from(b.count_ones())).sum::<u64>();
        } else {
            for i in 0..count {
                let (a, d) = (bit(&actual, i), bit(&disk, i));
                if a != d {
                    if a && bu {
                        let blk = (base + i) * ratio;
                        ctx.ask(
                            Code::BlockUninit,
                            At { block: Some(blk), group: Some(g), ino: None },
                            format!("group {g} is BLOCK_UNINIT but block {blk} is in use"),
                        );
                    }
                    runs.add(ctx, true, a, (base + i) * ratio, ratio);
                }
                if !d {
                    free += 1;
                }
            }
        }
        free_array[g as usize] = free;
        free_total += free;
    }
    runs.flush(ctx, true);
    if runs.any {
        ctx.ask(Code::BlockBitmapEnd, At::NONE, "the block bitmap differs from the blocks in use");
    }
    for g in 0..groups {
        let stored = u64::from(ctx.fs.groups[g as usize].free_blocks_count);
        if free_array[g as usize] != stored {
            let d = format!("group {g}: free block count is {stored}, counted {}", free_array[g as usize]);
            ctx.ask(Code::FreeBlockCountGroup, At::group(g), d);
        }
    }
    let free_blocks = free_total * ratio;
    let stored = ctx.fs.sb.free_blocks_count();
    if free_blocks != stored {
        ctx.ask(Code::FreeBlockCount, At::NONE, format!("free block count is {stored}, counted {free_blocks}"));
    }
    if padding_bad || tail_problem {
        ctx.ask(Code::BlockBmapPadding, At::NONE, "the padding at the end of a block bitmap is not set");
    }
    for g in csum_bad {
        ctx.ask(Code::BlockBitmapCsumInvalid, At::group(g), format!("group {g}: block bitmap checksum does not match"));
    }
    Ok(())
}

/// `check_inode_bitmaps`, `check_inode_end` and `check_inode_bitmap_checksum`.
fn check_inode_bitmaps(ctx: &mut Ctx<'_, '_>) -> Flow {
    let fs = &ctx.fs;
    let ipg = fs.geo.inodes_per_group;
    let nbytes = (ipg / 8) as usize;
    let groups = fs.geo.group_count;
    let csum_flag = fs.group_csum();
    let mut runs = Runs::default();
    let (mut free_total, mut tail_problem, mut csum_bad) = (0u64, false, Vec::new());
    let mut counts = Vec::with_capacity(groups as usize);
    for g in 0..groups {
        ctx.progress(u64::from(groups + g), u64::from(groups) * 2)?;
        let gd = ctx.fs.groups[g as usize].clone();
        let iu = gd.flags.contains(GroupDescFlags::INODE_UNINIT);
        let (disk, tail_ok) = read_bitmap(ctx, g, gd.inode_bitmap, iu, nbytes)?;
        tail_problem |= !tail_ok;
        let fs = &ctx.fs;
        if fs.csum() && !iu {
            let computed = ext4_ondisk::checksum::bitmap(fs.csum_seed(), &disk[..nbytes]);
            if !bitmap_csum_matches(&fs.geo, gd.inode_bitmap_csum, computed) {
                csum_bad.push(g);
            }
        }
        let first = g * ipg + 1;
        let skip = csum_flag && iu;
        let recs: Vec<(u32, u8)> = ctx.inodes.range(first, first + ipg - 1).iter().map(|r| (r.ino, r.flags)).collect();
        let used = |ino: u32| recs.binary_search_by_key(&ino, |r| r.0).ok().map(|i| recs[i].1).filter(|f| f & flag::USED != 0);
        let (mut free, mut dirs) = (0u64, 0u64);
        if skip && recs.iter().all(|r| r.1 & flag::USED == 0) {
            free = u64::from(ipg);
        } else {
            for i in 0..ipg {
                let ino = first + i;
                let actual = used(ino);
                let on_disk = !skip && bit(&disk, u64::from(i));
                if actual.is_some() != on_disk {
                    if actual.is_some() && skip {
                        ctx.ask(
                            Code::InodeUninit,
                            At { ino: Some(ino), group: Some(g), block: None },
                            format!("group {g} is INODE_UNINIT but inode {ino} is in use"),
                        );
                    }
                    runs.add(ctx, false, actual.is_some(), u64::from(ino), 1);
                }
                if on_disk {
                    if actual.is_some_and(|f| f & flag::DIR != 0) {
                        dirs += 1;
                    }
                } else {
                    free += 1;
                }
            }
        }
        counts.push((free, dirs));
        free_total += free;
    }
    runs.flush(ctx, false);
    if runs.any {
        ctx.ask(Code::InodeBitmapEnd, At::NONE, "the inode bitmap differs from the inodes in use");
    }
    for (g, &(free, dirs)) in counts.iter().enumerate() {
        let gd = &ctx.fs.groups[g];
        let (sf, sd) = (u64::from(gd.free_inodes_count), u64::from(gd.used_dirs_count));
        if free != sf {
            ctx.ask(Code::FreeInodeCountGroup, At::group(g as u32), format!("group {g}: free inode count is {sf}, counted {free}"));
        }
        if dirs != sd {
            ctx.ask(Code::FreeDirCountGroup, At::group(g as u32), format!("group {g}: directory count is {sd}, counted {dirs}"));
        }
    }
    let stored = u64::from(ctx.fs.sb.s_free_inodes_count.get());
    if free_total != stored {
        ctx.ask(Code::FreeInodeCount, At::NONE, format!("free inode count is {stored}, counted {free_total}"));
    }
    if tail_problem {
        ctx.ask(Code::InodeBmapPadding, At::NONE, "the padding at the end of an inode bitmap is not set");
    }
    for g in csum_bad {
        ctx.ask(Code::InodeBitmapCsumInvalid, At::group(g), format!("group {g}: inode bitmap checksum does not match"));
    }
    Ok(())
}

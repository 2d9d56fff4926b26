//! Block and inode allocation on an open filesystem: bitmaps through the
//! metadata cache, groups initialized lazily, counts kept exact in the
//! group descriptors and the superblock.
//!
//! Blocks freed in the running transaction stay marked in use until it
//! commits ([`Txn::apply_pending_frees`](crate::txn::Txn)): they cannot be handed out
//! again before the change that freed them is durable, so a crash never
//! leaves a committed file pointing at another file's new data.

use ext4_alloc::bitmap;
use ext4_alloc::group::{GroupCounts, group_for_dir, group_for_file};
use ext4_alloc::init::{uninit_block_bitmap, uninit_inode_bitmap};
use ext4_ondisk::{GroupDescFlags, Structure};

use crate::error::{Error, Location, Result};
use crate::fs::Filesystem;
use crate::txn::Txn;

/// Which free blocks an allocation may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pool {
    /// What the caller may have: never the reserve for allocations that
    /// must not fail, root's reserved blocks only if it may use them.
    Normal,
    /// Every free block: map blocks needed to free space (extent splits of
    /// truncates and hole punches) or to map written data, which the kernel
    /// takes with `EXT4_GET_BLOCKS_METADATA_NOFAIL`.
    NoFail,
}

impl Filesystem {
    /// Blocks kept back for allocations that must not fail, as the
    /// kernel's `s_resv_clusters` after `ext4_calculate_resv_clusters`: 2 %
    /// of the clusters, at most 4096 (none without extents, whose estimates
    /// are exact).
    pub(crate) fn resv_blocks(&self) -> u64 {
        if !self.geo.features.incompat.contains(ext4_ondisk::Incompat::EXTENTS) {
            return 0;
        }
        let ratio = self.cluster_ratio();
        (self.geo.blocks_count / ratio / 50).min(4096) * ratio
    }

    /// Blocks per cluster (1 without bigalloc).
    pub(crate) fn cluster_ratio(&self) -> u64 {
        u64::from(self.geo.cluster_ratio.max(1))
    }

    /// Clusters that may be allocated now from `pool` (`ext4_has_free_clusters`):
    /// a normal allocation leaves the reserve for allocations that must not
    /// fail, and root's reserved blocks unless the caller may use them.
    /// Filling a fresh image in bulk takes every free cluster, as mke2fs -d does.
    fn allocatable_clusters(&self, pool: Pool) -> u64 {
        let ratio = self.cluster_ratio();
        let free = self.sb.free_blocks_count() / ratio;
        if pool == Pool::NoFail || self.opts.bulk {
            return free;
        }
        let root = if self.caller_may_use_root_reserve() { 0 } else { self.sb.r_blocks_count() / ratio };
        free.saturating_sub(self.resv_blocks() / ratio + root)
    }

    /// The parts of [`crate::txn::AllocState::excluded`] inside group `g`,
    /// as (bit index, length) in the group's bitmap (clusters).
    fn excluded_in_group(&self, g: u32) -> Vec<(usize, usize)> {
        let first = self.geo.group_first_block(g);
        let end = first + u64::from(self.geo.blocks_in_group(g));
        let ratio = self.cluster_ratio();
        self.write
            .alloc
            .excluded
            .iter()
            .filter_map(|&(s, l)| {
                let (a, b) = (s.max(first), s.saturating_add(l).min(end));
                let (from, to) = ((a - first) / ratio, (b - first).div_ceil(ratio));
                (a < b).then(|| (from as usize, (to - from) as usize))
            })
            .collect()
    }

    /// The counts the group policy looks at.
    fn group_counts(&self) -> Vec<GroupCounts> {
        self.groups
            .iter()
            .map(|g| GroupCounts { free_blocks: g.free_blocks_count, free_inodes: g.free_inodes_count, used_dirs: g.used_dirs_count })
            .collect()
    }

    /// Counts that disagree with bitmaps mean corruption.
    fn counts_disagree(&self, what: &str) -> Error {
        Error::corrupt(Structure::GroupDesc, Location::Superblock, what.to_string())
    }
}

impl Txn<'_> {
    /// Makes sure group `g`'s block bitmap is initialized on disk (clearing
    /// `BLOCK_UNINIT`), and returns its block number.
    pub(crate) fn block_bitmap(&mut self, g: u32) -> Result<u64> {
        let gd = &self.groups[g as usize];
        let block = gd.block_bitmap;
        if self.geo.has_group_csum() && gd.flags.contains(GroupDescFlags::BLOCK_UNINIT) {
            let map = uninit_block_bitmap(&self.geo, g, gd);
            self.write_meta(block, map)?;
            self.group_mut(g).flags.remove(GroupDescFlags::BLOCK_UNINIT);
            self.mark_group_dirty(g, true, false);
            // Built here: its descriptor checksum is only computed at commit.
            self.alloc_mut().verified_bitmaps.insert((g, true));
        } else {
            self.verify_bitmap(g, block, true)?;
        }
        Ok(block)
    }

    /// Checks a bitmap's checksum the first time it is used after opening.
    fn verify_bitmap(&mut self, g: u32, block: u64, is_block_bitmap: bool) -> Result<()> {
        if !self.geo.metadata_csum() || !self.opts.verify_checksums || !self.alloc_mut().verified_bitmaps.insert((g, is_block_bitmap)) {
            return Ok(());
        }
        let (n, stored, structure) = if is_block_bitmap {
            (self.geo.clusters_per_group as usize / 8, self.groups[g as usize].block_bitmap_csum, Structure::BlockBitmap)
        } else {
            (self.geo.inodes_per_group as usize / 8, self.groups[g as usize].inode_bitmap_csum, Structure::InodeBitmap)
        };
        let seed = self.geo.csum_seed;
        let computed = self.read_meta(block, |d| ext4_ondisk::checksum::bitmap(seed, &d[..n]))?;
        if !ext4_ondisk::group_desc::bitmap_csum_matches(&self.geo, stored, computed) {
            self.alloc_mut().verified_bitmaps.remove(&(g, is_block_bitmap));
            let e = ext4_ondisk::FormatError::Checksum { structure, stored, computed };
            return Err(Error::format(&e, Location::Group(g)));
        }
        Ok(())
    }

    /// Makes sure group `g`'s inode bitmap is initialized (clearing
    /// `INODE_UNINIT`, and `BLOCK_UNINIT` too as the kernel does), and returns its block.
    fn inode_bitmap(&mut self, g: u32) -> Result<u64> {
        self.block_bitmap(g)?;
        let gd = &self.groups[g as usize];
        let block = gd.inode_bitmap;
        if self.geo.has_group_csum() && gd.flags.contains(GroupDescFlags::INODE_UNINIT) {
            self.write_meta(block, uninit_inode_bitmap(&self.geo))?;
            let ipg = self.geo.inodes_per_group;
            let gd = self.group_mut(g);
            gd.flags.remove(GroupDescFlags::INODE_UNINIT);
            gd.itable_unused = ipg;
            self.mark_group_dirty(g, false, true);
            self.alloc_mut().verified_bitmaps.insert((g, false));
        } else {
            self.verify_bitmap(g, block, false)?;
        }
        Ok(block)
    }

    /// Allocates up to `want` contiguous blocks near `goal` for file data,
    /// directories, xattrs or map growth; returns the first block and the
    /// count (at least 1). `NoSpace` if none may be taken. With bigalloc
    /// whole clusters are taken: the first block starts a cluster and the
    /// count is a multiple of the cluster size.
    pub(crate) fn alloc_blocks(&mut self, goal: u64, want: u32) -> Result<(u64, u32)> {
        self.alloc_blocks_from(goal, want, Pool::Normal)
    }

    /// Allocates up to `want` contiguous blocks (whole clusters) near `goal` from `pool`.
    pub(crate) fn alloc_blocks_from(&mut self, goal: u64, want: u32, pool: Pool) -> Result<(u64, u32)> {
        let allocatable = self.allocatable_clusters(pool);
        if allocatable == 0 {
            return Err(Error::NoSpace);
        }
        let ratio = self.cluster_ratio();
        let want = u64::from(want.max(1)).div_ceil(ratio).min(allocatable) as usize;
        let geo = &self.geo;
        let goal = goal.clamp(u64::from(geo.first_data_block), geo.blocks_count - 1);
        let (goal_group, goal_idx) = geo.block_group(goal);
        let goal_idx = (u64::from(goal_idx) / ratio) as usize;
        let n = geo.group_count;
        let mut best: Option<(u32, usize, usize)> = None;
        for i in 0..n {
            let g = (goal_group + i) % n;
            if self.groups[g as usize].free_blocks_count == 0 {
                continue;
            }
            let bb = self.block_bitmap(g)?;
            let limit = self.geo.clusters_in_group(g) as usize;
            let start = if i == 0 { goal_idx } else { 0 };
            let excluded = self.excluded_in_group(g);
            let found = self.read_meta(bb, |d| {
                if excluded.is_empty() {
                    return bitmap::find_free_run(d, limit, start, want);
                }
                let mut d = d.to_vec();
                for &(s, l) in &excluded {
                    bitmap::set_range(&mut d, s, l);
                }
                bitmap::find_free_run(&d, limit, start, want)
            })?;
            match found {
                Some((s, l)) if l == want => {
                    best = Some((g, s, l));
                    break;
                }
                Some((s, l)) if best.is_none_or(|(_, _, bl)| l > bl) => best = Some((g, s, l)),
                _ => {}
            }
            // A run from the goal group is good enough once nothing better is near.
            if best.is_some() && i >= 1 {
                break;
            }
        }
        let Some((g, s, l)) = best else {
            return Err(self.counts_disagree("free block count is positive but every bitmap is full"));
        };
        // A bitmap may show a longer free run than the counts allow (a damaged image).
        let blocks = l as u64 * ratio;
        let (Some(group_free), Some(free)) =
            (self.groups[g as usize].free_blocks_count.checked_sub(l as u32), self.sb.free_blocks_count().checked_sub(blocks))
        else {
            return Err(self.counts_disagree("the block bitmap has more free blocks than the free block count"));
        };
        let bb = self.groups[g as usize].block_bitmap;
        self.modify_meta(bb, |d| bitmap::set_range(d, s, l))?;
        self.group_mut(g).free_blocks_count = group_free;
        self.sb_mut().set_free_blocks_count(free);
        self.mark_group_dirty(g, true, false);
        let first = self.geo.group_first_block(g) + s as u64 * ratio;
        let blocks = blocks.min(self.geo.blocks_count - first);
        self.alloc_mut().add_fresh(first, blocks);
        Ok((first, blocks as u32))
    }

    /// Marks blocks `start .. start + count` in use where their bits are
    /// clear, with the counts (for blocks a replay finds mapped, as the
    /// kernel's `ext4_mb_mark_bb`). Returns how many were clear.
    pub(crate) fn claim_blocks(&mut self, start: u64, count: u64) -> Result<u64> {
        let end = start.checked_add(count).filter(|&e| e <= self.geo.blocks_count && start >= u64::from(self.geo.first_data_block));
        let Some(end) = end else {
            return Err(Error::corrupt(
                Structure::BlockBitmap,
                Location::Block(start),
                format!("claiming {count} blocks outside the filesystem"),
            ));
        };
        let mut claimed = 0;
        let mut b = start;
        while b < end {
            let (g, idx) = self.geo.block_group(b);
            let n = (end - b).min(u64::from(self.geo.blocks_in_group(g) - idx));
            let bb = self.block_bitmap(g)?;
            let clear =
                self.read_meta(bb, |d| (idx as usize..(idx + n as u32) as usize).filter(|&i| !bitmap::bits(d)[i]).collect::<Vec<_>>())?;
            if !clear.is_empty() {
                let k = clear.len() as u64;
                let (Some(group_free), Some(free)) =
                    (self.groups[g as usize].free_blocks_count.checked_sub(k as u32), self.sb.free_blocks_count().checked_sub(k))
                else {
                    return Err(self.counts_disagree("the block bitmap has more free blocks than the free block count"));
                };
                self.modify_meta(bb, |d| clear.iter().for_each(|&i| bitmap::set_range(d, i, 1)))?;
                self.group_mut(g).free_blocks_count = group_free;
                self.sb_mut().set_free_blocks_count(free);
                self.mark_group_dirty(g, true, false);
                claimed += k;
            }
            b += n;
        }
        Ok(claimed)
    }

    /// Marks inode `ino` in use if its bit is clear, with the counts
    /// (`ext4_mark_inode_used`). Returns whether it was free.
    pub(crate) fn claim_inode(&mut self, ino: u32, is_dir: bool) -> Result<bool> {
        let (g, idx) = self.geo.inode_group(ino);
        let ib = self.inode_bitmap(g)?;
        if self.read_meta(ib, |d| bitmap::bits(d)[idx as usize])? {
            return Ok(false);
        }
        let (Some(group_free), Some(free)) =
            (self.groups[g as usize].free_inodes_count.checked_sub(1), self.sb.s_free_inodes_count.get().checked_sub(1))
        else {
            return Err(self.counts_disagree("the inode bitmap has more free inodes than the free inode count"));
        };
        self.modify_meta(ib, |d| bitmap::set_range(d, idx as usize, 1))?;
        self.claim_inode_table(g, idx)?;
        let gd = self.group_mut(g);
        gd.free_inodes_count = group_free;
        if is_dir {
            gd.used_dirs_count = gd.used_dirs_count.saturating_add(1);
        }
        self.sb_mut().s_free_inodes_count.set(free);
        self.mark_group_dirty(g, false, true);
        Ok(true)
    }

    /// Counts inode `ino` (in use) as a directory in its group's
    /// `bg_used_dirs_count` if `is_dir`, else not, when its record changed
    /// type in place (a fast-commit replay writing a reused number).
    pub(crate) fn recount_dir(&mut self, ino: u32, was_dir: bool, is_dir: bool) {
        let (g, _) = self.geo.inode_group(ino);
        let gd = self.group_mut(g);
        match (was_dir, is_dir) {
            (false, true) => gd.used_dirs_count = gd.used_dirs_count.saturating_add(1),
            (true, false) => gd.used_dirs_count = gd.used_dirs_count.saturating_sub(1),
            _ => return,
        }
        self.mark_group_dirty(g, false, false);
    }

    /// Frees `count` blocks from `start` when the running transaction
    /// commits; with bigalloc, the whole clusters they lie in (which of a
    /// file's clusters may go is the caller's decision). `meta` marks
    /// former metadata blocks: their cached copies are dropped and the
    /// journal revokes them.
    pub(crate) fn free_blocks(&mut self, start: u64, count: u64, meta: bool) -> Result<()> {
        let end = start.checked_add(count).filter(|&e| e <= self.geo.blocks_count && start >= u64::from(self.geo.first_data_block));
        let Some(end) = end else {
            return Err(Error::corrupt(
                Structure::BlockBitmap,
                Location::Block(start),
                format!("freeing {count} blocks outside the filesystem"),
            ));
        };
        if count == 0 {
            return Ok(());
        }
        if meta {
            for b in start..end {
                self.forget_meta(b);
            }
            self.alloc_mut().revoked.extend(start..end);
        }
        let first = self.geo.cluster_start(start);
        let last = (self.geo.cluster_start(end - 1) + self.cluster_ratio()).min(self.geo.blocks_count);
        self.alloc_mut().pending_free.push((first, last - first));
        Ok(())
    }

    /// Clears the bits of every cluster freed in the running transaction
    /// (called when it commits).
    pub(crate) fn apply_pending_frees(&mut self) -> Result<()> {
        let frees = std::mem::take(&mut self.alloc_mut().pending_free);
        self.alloc_mut().freed_in_commit.extend_from_slice(&frees);
        let ratio = self.cluster_ratio();
        for (start, count) in frees {
            let mut b = start;
            let end = start + count;
            while b < end {
                let (g, idx) = self.geo.block_group(b);
                let n = (end - b).min(u64::from(self.geo.blocks_in_group(g) - idx));
                let (c, nc) = (u64::from(idx) / ratio, n.div_ceil(ratio));
                let bb = self.block_bitmap(g)?;
                let all_used = self.read_meta(bb, |d| bitmap::range_is_used(d, c as usize, nc as usize))?;
                if !all_used {
                    return Err(Error::corrupt(
                        Structure::BlockBitmap,
                        Location::Group(g),
                        format!("freeing block {b}+{n} that is already free"),
                    ));
                }
                // Counts that would pass the group's or the volume's size
                // are corrupt; checked before anything changes.
                let group_free = add_within(self.groups[g as usize].free_blocks_count.into(), nc, self.geo.clusters_in_group(g).into());
                let free = add_within(self.sb.free_blocks_count(), nc * ratio, self.sb.blocks_count());
                let (Some(group_free), Some(free)) = (group_free, free) else {
                    return Err(self.counts_disagree("a free block count exceeds the blocks it counts"));
                };
                self.modify_meta(bb, |d| bitmap::clear_range(d, c as usize, nc as usize))?;
                self.group_mut(g).free_blocks_count = group_free as u32;
                self.sb_mut().set_free_blocks_count(free);
                self.mark_group_dirty(g, true, false);
                b += n;
            }
        }
        Ok(())
    }

    /// Allocates an inode for a child of `parent` (a directory if `is_dir`).
    pub(crate) fn alloc_inode(&mut self, parent: u32, is_dir: bool) -> Result<u32> {
        if self.sb.s_free_inodes_count.get() == 0 {
            return Err(Error::NoSpace);
        }
        let (parent_group, _) = self.geo.inode_group(parent);
        let counts = self.group_counts();
        let top = parent == ext4_ondisk::ino::ROOT;
        let flex = self.geo.groups_per_flex;
        let first = if is_dir {
            self.alloc_mut().next_generation = self.alloc_mut().next_generation.wrapping_mul(1_103_515_245).wrapping_add(12345);
            group_for_dir(&counts, parent_group, top, flex, self.write.alloc.next_generation >> 8)
        } else {
            group_for_file(&counts, parent_group, flex)
        };
        let Some(first) = first else {
            return Err(self.counts_disagree("free inode count is positive but no group has one"));
        };
        let n = self.geo.group_count;
        for i in 0..n {
            let g = (first + i) % n;
            if self.groups[g as usize].free_inodes_count == 0 {
                continue;
            }
            if let Some(ino) = self.alloc_inode_in(g, is_dir)? {
                return Ok(ino);
            }
        }
        Err(self.counts_disagree("free inode counts are positive but every inode bitmap is full"))
    }

    /// Takes the first free inode of group `g`.
    pub(crate) fn alloc_inode_in(&mut self, g: u32, is_dir: bool) -> Result<Option<u32>> {
        let ib = self.inode_bitmap(g)?;
        let ipg = self.geo.inodes_per_group as usize;
        // Reserved inodes of group 0 are never handed out.
        let from = if g == 0 { self.geo.first_ino as usize - 1 } else { 0 };
        let Some(idx) = self.read_meta(ib, |d| bitmap::bits(d)[from..ipg].first_zero().map(|i| i + from))? else {
            return Ok(None);
        };
        self.modify_meta(ib, |d| bitmap::set_range(d, idx, 1))?;
        self.claim_inode_table(g, idx as u32)?;
        let gd = self.group_mut(g);
        gd.free_inodes_count -= 1;
        if is_dir {
            gd.used_dirs_count = gd.used_dirs_count.saturating_add(1);
        }
        let free = self.sb.s_free_inodes_count.get() - 1;
        self.sb_mut().s_free_inodes_count.set(free);
        self.mark_group_dirty(g, false, true);
        Ok(Some(g * self.geo.inodes_per_group + idx as u32 + 1))
    }

    /// Moves the group's "unused inode table" boundary past `idx`, zeroing
    /// the records it uncovers when the table was never zeroed.
    fn claim_inode_table(&mut self, g: u32, idx: u32) -> Result<()> {
        if !self.geo.has_group_csum() {
            return Ok(());
        }
        let ipg = self.geo.inodes_per_group;
        let gd = &self.groups[g as usize];
        let boundary = ipg - gd.itable_unused.min(ipg);
        if idx < boundary {
            return Ok(());
        }
        if !gd.flags.contains(GroupDescFlags::ITABLE_ZEROED) {
            for i in boundary..=idx {
                let ino = g * ipg + i + 1;
                let (block, off) = self.inode_location(ino)?;
                let isz = self.geo.inode_size as usize;
                self.modify_meta(block, |d| d[off..off + isz].fill(0))?;
            }
        }
        self.group_mut(g).itable_unused = ipg - idx - 1;
        Ok(())
    }

    /// Frees inode `ino` (its record is the caller's business).
    pub(crate) fn free_inode(&mut self, ino: u32, was_dir: bool) -> Result<()> {
        let (g, idx) = self.geo.inode_group(ino);
        let ib = self.inode_bitmap(g)?;
        let used = self.read_meta(ib, |d| bitmap::bits(d)[idx as usize])?;
        if !used {
            return Err(Error::corrupt(Structure::InodeBitmap, Location::Inode(ino), "freeing an inode that is already free"));
        }
        let group_free = add_within(self.groups[g as usize].free_inodes_count.into(), 1, self.geo.inodes_per_group.into());
        let free = add_within(self.sb.s_free_inodes_count.get().into(), 1, self.sb.s_inodes_count.get().into());
        let (Some(group_free), Some(free)) = (group_free, free) else {
            return Err(self.counts_disagree("a free inode count exceeds the inodes it counts"));
        };
        self.modify_meta(ib, |d| bitmap::clear_range(d, idx as usize, 1))?;
        let gd = self.group_mut(g);
        gd.free_inodes_count = group_free as u32;
        if was_dir {
            gd.used_dirs_count = gd.used_dirs_count.saturating_sub(1);
        }
        self.sb_mut().s_free_inodes_count.set(free as u32);
        self.mark_group_dirty(g, false, true);
        Ok(())
    }

    /// Records that group `g`'s descriptor (and which bitmaps) changed.
    pub(crate) fn mark_group_dirty(&mut self, g: u32, block_bitmap: bool, inode_bitmap: bool) {
        let e = self.alloc_mut().dirty_groups.entry(g).or_default();
        e.0 |= block_bitmap;
        e.1 |= inode_bitmap;
    }
}

/// `count + n` when it stays within `limit` (what a free count may reach
/// when things are freed); `None` means the count was corrupt.
fn add_within(count: u64, n: u64, limit: u64) -> Option<u64> {
    count.checked_add(n).filter(|&c| c <= limit)
}

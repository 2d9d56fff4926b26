//! The filesystem being built, in memory: block map, group descriptors,
//! inode bitmap, and libext2fs' allocation primitives with their side
//! effects on group flags and counts (lib/ext2fs/alloc.c, alloc_stats.c),
//! so that every later placement matches mke2fs'.

use std::collections::{BTreeMap, BTreeSet};

use ext4_ondisk::GroupDescFlags;
use ext4_ondisk::inode::Inode;

use crate::MkfsError;
use crate::blockmap::BlockMap;
use crate::shape::{FIRST_INO, Shape};

/// One group's descriptor while it is being built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupState {
    /// `bg_block_bitmap`.
    pub block_bitmap: u64,
    /// `bg_inode_bitmap`.
    pub inode_bitmap: u64,
    /// `bg_inode_table`.
    pub inode_table: u64,
    /// `bg_used_dirs_count`.
    pub used_dirs: u32,
    /// `bg_itable_unused`.
    pub itable_unused: u32,
    /// `bg_flags`.
    pub flags: GroupDescFlags,
}

/// The filesystem under construction.
#[derive(Debug, Clone)]
pub struct Model {
    /// The geometry.
    pub shape: Shape,
    /// Used blocks.
    pub map: BlockMap,
    /// Group descriptors.
    pub groups: Vec<GroupState>,
    /// Used inodes (the inode bitmap; few are used by a new filesystem).
    pub inodes_used: BTreeSet<u32>,
    /// Inodes to write, by number.
    pub inodes: BTreeMap<u32, Inode>,
    /// Blocks to write, by number: each block's bytes up to its last
    /// non-zero byte (the rest of the block is zeros). Most blocks of a new
    /// filesystem are nearly empty: the 1024 reserved GDT blocks of a large
    /// filesystem hold a few dozen bytes each, and keeping them whole was
    /// most of a format's memory (and its page faults).
    pub blocks: BTreeMap<u64, Vec<u8>>,
    /// Ranges of blocks to zero: `(start, count)`.
    pub zero_ranges: Vec<(u64, u64)>,
    /// Inodes whose in-inode xattr area starts with the xattr magic.
    pub xattr_magic: BTreeSet<u32>,
}

impl Model {
    /// A model with sb/GDT blocks reserved and the initial group flags and
    /// `itable_unused` set (the group loop of `ext2fs_initialize`, 1.47.0).
    pub fn new(shape: Shape) -> Model {
        let mut map = BlockMap::new();
        let csum = shape.csum();
        let mut groups = vec![GroupState::default(); shape.group_count as usize];
        let mut reserved_inos = FIRST_INO;
        for (g, gs) in groups.iter_mut().enumerate() {
            let g = g as u32;
            for (s, n) in shape.reserved_ranges(g) {
                map.mark(s, n);
            }
            if csum {
                if g + 1 != shape.group_count {
                    gs.flags |= GroupDescFlags::BLOCK_UNINIT;
                }
                gs.flags |= GroupDescFlags::INODE_UNINIT;
                let mut inodes = shape.inodes_per_group;
                if reserved_inos > 0 {
                    if inodes > reserved_inos {
                        inodes -= reserved_inos;
                        reserved_inos = 0;
                    } else {
                        reserved_inos -= inodes;
                        inodes = 0;
                    }
                }
                gs.itable_unused = inodes;
            }
        }
        Model {
            shape,
            map,
            groups,
            inodes_used: BTreeSet::new(),
            inodes: BTreeMap::new(),
            blocks: BTreeMap::new(),
            zero_ranges: Vec::new(),
            xattr_magic: BTreeSet::new(),
        }
    }

    fn count(&self) -> u64 {
        self.shape.blocks_count
    }

    fn fdb(&self) -> u64 {
        self.shape.first_data_block
    }

    /// Free blocks in group `g` now.
    pub fn group_free_blocks(&self, g: u32) -> u64 {
        let (s, e) = (self.shape.group_first(g), self.shape.group_last(g) + 1);
        (e - s) - self.map.count_used(s, e)
    }

    /// Free blocks of every group now: one pass over the used extents
    /// instead of a range query per group (131,072 groups at 16 TiB).
    pub fn free_blocks_per_group(&self) -> Vec<u64> {
        let s = &self.shape;
        let (fdb, bpg) = (self.fdb(), u64::from(s.blocks_per_group));
        let mut free: Vec<u64> = (0..s.group_count).map(|g| s.group_last(g) + 1 - s.group_first(g)).collect();
        for (mut a, z) in self.map.extents_in(fdb, self.count()) {
            while a < z {
                let g = ((a - fdb) / bpg) as usize;
                let end = z.min(fdb + (g as u64 + 1) * bpg);
                if let Some(f) = free.get_mut(g) {
                    *f = f.saturating_sub(end - a);
                }
                a = end;
            }
        }
        free
    }

    /// Free inodes in group `g` now.
    pub fn group_free_inodes(&self, g: u32) -> u32 {
        let ipg = self.shape.inodes_per_group;
        let first = g * ipg + 1;
        let used = self.inodes_used.range(first..first + ipg).count() as u32;
        ipg - used
    }

    /// Clears `BLOCK_UNINIT` of group `g` (`ext2fs_clear_block_uninit`).
    pub fn clear_block_uninit(&mut self, g: u32) {
        if let Some(gs) = self.groups.get_mut(g as usize) {
            gs.flags.remove(GroupDescFlags::BLOCK_UNINIT);
        }
    }

    /// `ext2fs_get_free_blocks2`: the first `b` from `start` (wrapping to
    /// the first data block unless `finish > start`) before `finish` with
    /// `num` free blocks.
    pub fn get_free_blocks(&self, start: u64, finish: u64, num: u64) -> Option<u64> {
        let num = num.max(1);
        let count = self.count();
        if num > count {
            return None;
        }
        let limit = count - num + 1;
        let finish = if finish == 0 { start } else { finish };
        let mut b = if start == 0 { self.fdb() } else { start };
        let mut wraps = 0;
        loop {
            if b >= limit {
                if finish > start || wraps > 0 {
                    return None;
                }
                wraps += 1;
                b = self.fdb();
            }
            let seg_end = if finish > b { finish.min(limit) } else { limit };
            if let Some(x) = self.map.first_free_run(b, seg_end, num) {
                return Some(x);
            }
            if seg_end == finish {
                return None;
            }
            b = limit;
        }
    }

    /// `ext2fs_new_block2`: the first free block from `goal`, wrapping.
    pub fn new_block(&mut self, goal: u64) -> Result<u64, MkfsError> {
        let goal = if goal == 0 || goal >= self.count() { self.fdb() } else { goal };
        let b = self
            .map
            .first_zero(goal, self.count() - 1)
            .or_else(|| if goal > self.fdb() { self.map.first_zero(self.fdb(), goal - 1) } else { None })
            .ok_or(MkfsError::NoSpace { what: "a block" })?;
        self.clear_block_uninit(self.shape.group_of(b));
        Ok(b)
    }

    /// `ext2fs_block_alloc_stats2(+1)` / `_range`: marks blocks used.
    pub fn claim(&mut self, start: u64, len: u64) {
        self.map.mark(start, len);
        let mut b = start;
        while b < start + len {
            let g = self.shape.group_of(b);
            self.clear_block_uninit(g);
            b = self.shape.group_last(g) + 1;
        }
    }

    /// `ext2fs_alloc_block2`: a new block near `goal`, claimed.
    pub fn alloc_block(&mut self, goal: u64) -> Result<u64, MkfsError> {
        let b = self.new_block(goal)?;
        self.claim(b, 1);
        Ok(b)
    }

    /// `ext2fs_new_range` without flags: the first free run from `goal`
    /// (wrapping), at most `len` long; clears `BLOCK_UNINIT` where it lies.
    pub fn new_range(&mut self, goal: u64, len: u64) -> Result<(u64, u64), MkfsError> {
        let max = self.count();
        let goal = if goal == 0 || goal >= max { self.fdb() } else { goal };
        let start = match self.map.first_zero(goal, max - 1) {
            Some(s) => s,
            None if goal != self.fdb() => {
                self.map.first_zero(self.fdb(), max - 1).ok_or(MkfsError::NoSpace { what: "a block range" })?
            }
            None => {
                return Err(MkfsError::NoSpace { what: "a block range" });
            }
        };
        let last = (start + len - 1).min(max - 1);
        let end = self.map.first_set(start, last).unwrap_or(last + 1);
        let mut b = start;
        while b < end {
            self.clear_block_uninit(self.shape.group_of(b));
            b += u64::from(self.shape.blocks_per_group);
        }
        Ok((start, end - start))
    }

    /// Clears `INODE_UNINIT` (and `BLOCK_UNINIT`, as the kernel does) of a
    /// group about to have an inode allocated (`check_inode_uninit`).
    fn check_inode_uninit(&mut self, g: u32) {
        if !self.shape.csum() {
            return;
        }
        if let Some(gs) = self.groups.get_mut(g as usize) {
            if gs.flags.contains(GroupDescFlags::INODE_UNINIT) {
                gs.flags.remove(GroupDescFlags::INODE_UNINIT | GroupDescFlags::BLOCK_UNINIT);
            }
        }
    }

    /// `ext2fs_new_inode`: the first free inode from the parent's group.
    pub fn new_inode(&mut self, dir: u32) -> Result<u32, MkfsError> {
        let ipg = self.shape.inodes_per_group;
        let total = self.shape.inodes_count;
        let mut start = if dir > 0 { (dir - 1) / ipg * ipg + 1 } else { 0 };
        start = start.max(FIRST_INO);
        if start > total {
            return Err(MkfsError::NoSpace { what: "an inode" });
        }
        let mut i = start;
        loop {
            let in_group = (i - 1) % ipg;
            self.check_inode_uninit((i - 1) / ipg);
            let mut upto = i + (ipg - in_group);
            if i < start && upto >= start {
                upto = start - 1;
            }
            upto = upto.min(total);
            if let Some(free) = (i..=upto).find(|n| !self.inodes_used.contains(n)) {
                return Ok(free);
            }
            i = upto + 1;
            if i > total {
                i = FIRST_INO;
            }
            if i == start {
                return Err(MkfsError::NoSpace { what: "an inode" });
            }
        }
    }

    /// `ext2fs_inode_alloc_stats2(+1)`: marks an inode used.
    pub fn inode_alloc(&mut self, ino: u32, is_dir: bool) {
        let ipg = self.shape.inodes_per_group;
        let g = (ino - 1) / ipg;
        let csum = self.shape.csum();
        self.inodes_used.insert(ino);
        let gs = &mut self.groups[g as usize];
        if is_dir {
            gs.used_dirs += 1;
        }
        gs.flags.remove(GroupDescFlags::INODE_UNINIT);
        if csum {
            let first_unused = ipg - gs.itable_unused + g * ipg + 1;
            if ino >= first_unused {
                gs.itable_unused = g * ipg + ipg - ino;
            }
        }
    }

    /// Total free blocks.
    pub fn free_blocks(&self) -> u64 {
        let fdb = self.fdb();
        (self.count() - fdb) - self.map.count_used(fdb, self.count())
    }

    /// Records a block's contents for writing (kept without its trailing zeros).
    pub fn put_block(&mut self, b: u64, mut data: Vec<u8>) {
        // 64 bytes at a time (the OR folds vectorize), then byte by byte.
        let mut end = data.len();
        while end >= 64 && data[end - 64..end].iter().fold(0, |a, &x| a | x) == 0 {
            end -= 64;
        }
        while end > 0 && data[end - 1] == 0 {
            end -= 1;
        }
        if end < data.len() {
            data.truncate(end);
            data.shrink_to_fit();
        }
        self.blocks.insert(b, data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{FormatOptions, FsType};

    fn model(size: u64) -> Model {
        let mut o = FormatOptions::new(FsType::Ext2);
        o.time = Some(1);
        let p = crate::resolve::resolve(size, &o).unwrap();
        Model::new(Shape::new(&p, &mut Vec::new()).unwrap())
    }

    #[test]
    fn free_block_search_wraps_like_libext2fs() {
        let mut m = model(8 << 20);
        let n = m.shape.blocks_count;
        m.map.mark(1, n - 1);
        m.map = BlockMap::new();
        m.map.mark(1, 100);
        m.map.mark(500, n - 500);
        // From 600 to the end nothing is free: wrap to the start.
        assert_eq!(m.get_free_blocks(600, 0, 10), Some(101));
        // finish > start forbids the wrap.
        assert_eq!(m.get_free_blocks(600, 700, 10), None);
        assert_eq!(m.get_free_blocks(50, 450, 10), Some(101));
        assert_eq!(m.get_free_blocks(50, 101, 10), None);
        assert_eq!(m.get_free_blocks(50, 102, 10), Some(101));
        assert_eq!(m.new_block(600).unwrap(), 101);
        assert_eq!(m.new_range(0, 1000).unwrap(), (101, 399));
    }
}

//! Allocation for the files a tune creates (journal, orphan file), placed
//! where libext2fs places them so that the result matches tune2fs': the
//! first free block or run from a goal, wrapping (`ext2fs_new_block2`,
//! `ext2fs_new_range`), the first free inode from the root's group
//! (`ext2fs_new_inode`), and block maps grown at their end with node
//! blocks where libext2fs splits (a full root of 4 extents moves to a leaf
//! placed before the first extent; an indirect block goes next to the
//! block it follows).

use ext4_alloc::bitmap;
use ext4_alloc::init::uninit_block_bitmap;
use ext4_extent::{MapCtx, MapIo, Run};
use ext4_ondisk::extent::{self, Extent};
use ext4_ondisk::inode::GOOD_OLD_INODE_SIZE;
use ext4_ondisk::{GroupDescFlags, Inode, InodeFlags};

use super::Session;
use crate::error::{Error, Result};
use crate::inode::InodeBuf;

/// `EXT2_NDIR_BLOCKS`.
const NDIR: usize = 12;
/// Extents in an inode's `i_block`.
const ROOT_CAPACITY: usize = 4;
/// The longest initialized extent.
pub(super) const MAX_EXTENT_LEN: u64 = 32768;

/// 16 random bytes (a version 4 UUID), from the kernel's generator.
pub fn random_uuid() -> [u8; 16] {
    let mut u = [0u8; 16];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut u)).is_err() {
        // No generator: the clock's nanoseconds, spread.
        let t = crate::time::now();
        let mut x = (t.secs as u64) << 32 ^ u64::from(t.nsec) ^ 0x9E37_79B9_7F4A_7C15;
        for b in &mut u {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
    u[6] = (u[6] & 0x0F) | 0x40;
    u[8] = (u[8] & 0x3F) | 0x80;
    u
}

impl Session<'_> {
    /// Group `g`'s block bitmap as libext2fs sees it (an uninitialized
    /// group's built, not yet written).
    fn group_block_bitmap(&self, g: u32) -> Result<Vec<u8>> {
        let d = &self.fs.groups[g as usize];
        if self.fs.geo.has_group_csum() && d.flags.contains(GroupDescFlags::BLOCK_UNINIT) {
            return Ok(uninit_block_bitmap(&self.fs.geo, g, d));
        }
        self.fs.read_meta(d.block_bitmap, <[u8]>::to_vec)
    }

    /// Whether block `b` is free.
    fn block_free(&self, b: u64) -> Result<bool> {
        let (g, i) = self.fs.geo.block_group(b);
        Ok(!bitmap::bits(&self.group_block_bitmap(g)?)[i as usize])
    }

    /// The first free block at or after `goal` up to the end, then from
    /// the first data block (`ext2fs_new_block2`).
    pub(super) fn first_free_block(&self, goal: u64) -> Result<u64> {
        let geo = &self.fs.geo;
        let first = u64::from(geo.first_data_block);
        let goal = if goal < first || goal >= geo.blocks_count { first } else { goal };
        let (gg, gi) = geo.block_group(goal);
        for k in 0..=geo.group_count {
            let g = (gg + k) % geo.group_count;
            let from = if k == 0 { gi as usize } else { 0 };
            let limit = if k == geo.group_count { gi as usize } else { geo.blocks_in_group(g) as usize };
            if let Some(i) = bitmap::find_free(&self.group_block_bitmap(g)?, limit, from) {
                return Ok(geo.group_first_block(g) + i as u64);
            }
        }
        Err(Error::NoSpace)
    }

    /// The first free run at or after `goal`, at most `len` long
    /// (`ext2fs_new_range` without flags); runs may cross groups.
    pub(super) fn free_run(&self, goal: u64, len: u64) -> Result<(u64, u64)> {
        let start = self.first_free_block(goal)?;
        let end = (start + len).min(self.fs.geo.blocks_count);
        let mut n = 1;
        while start + n < end && self.block_free(start + n)? {
            n += 1;
        }
        Ok((start, n))
    }

    /// Takes blocks `start..start + len` (`ext2fs_block_alloc_stats_range`):
    /// marks them, initializes the groups they lie in, counts them.
    pub(super) fn claim_blocks(&mut self, start: u64, len: u64) -> Result<()> {
        let mut b = start;
        while b < start + len {
            let (g, i) = self.fs.geo.block_group(b);
            let n = (start + len - b).min(u64::from(self.fs.geo.blocks_in_group(g) - i));
            self.fs.op_without_undo(|t| {
                let bb = t.block_bitmap(g)?;
                t.modify_meta(bb, |d| bitmap::set_range(d, i as usize, n as usize))?;
                let gd = t.group_mut(g);
                gd.free_blocks_count = gd.free_blocks_count.saturating_sub(n as u32);
                let free = t.sb.free_blocks_count().saturating_sub(n);
                t.sb_mut().set_free_blocks_count(free);
                t.mark_group_dirty(g, true, false);
                Ok(())
            })?;
            b += n;
        }
        self.descs_changed = true;
        Ok(())
    }

    /// Allocates one block: the first free from `goal`.
    pub(super) fn alloc_block_at(&mut self, goal: u64) -> Result<u64> {
        let b = self.first_free_block(goal)?;
        self.claim_blocks(b, 1)?;
        Ok(b)
    }

    /// Allocates the first free inode from the root's group on
    /// (`ext2fs_new_inode` for a file in `/`, then `ext2fs_inode_alloc_stats2`).
    pub(super) fn alloc_inode_first_free(&mut self) -> Result<u32> {
        for g in 0..self.fs.geo.group_count {
            if self.fs.groups[g as usize].free_inodes_count == 0 {
                continue;
            }
            if let Some(ino) = self.fs.op_without_undo(|t| t.alloc_inode_in(g, false))? {
                self.descs_changed = true;
                return Ok(ino);
            }
        }
        Err(Error::NoSpace)
    }
}

impl Session<'_> {
    /// Writes inode `ino` as a new regular file of `blocks` blocks mapped
    /// by `plan` (mode 0600, one link, the times now), as
    /// `ext2fs_write_new_inode` writes the files tune2fs creates, with the
    /// map's node blocks; returns the inode.
    pub(super) fn write_new_file_inode(&mut self, ino: u32, plan: &MapPlan, blocks: u32) -> Result<InodeBuf> {
        let bs = u64::from(self.fs.geo.block_size);
        let large = self.fs.geo.inode_size as usize > GOOD_OLD_INODE_SIZE;
        let now = self.fs.now();
        // `sizeof(struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE`.
        let mut inode = Inode::empty(if large { 32 } else { 0 });
        inode.mode = 0o100600;
        inode.links_count = 1;
        inode.size = u64::from(blocks) * bs;
        inode.blocks = (u64::from(blocks) + plan.map_blocks.len() as u64) * (bs / 512);
        (inode.atime, inode.ctime, inode.mtime) = (now, now, now);
        if large {
            inode.crtime = now;
        }
        if plan.extents {
            inode.flags.insert(InodeFlags::EXTENTS);
        }
        let mut ib = InodeBuf { ino, inode, raw: vec![0u8; self.fs.geo.inode_size as usize] };
        let ctx = self.fs.map_ctx(&ib);
        let blocks = plan.encode(&ctx, &mut ib.inode.block)?;
        self.fs.op_without_undo(|t| blocks.into_iter().try_for_each(|(b, data)| t.write_meta(b, data)))?;
        ib.inode.write(&mut ib.raw);
        self.put_inode_raw(ino, &mut ib.raw)?;
        Ok(ib)
    }

    /// Calls `f` with every inode in use, group by group (uninitialized
    /// groups skipped).
    pub(super) fn for_each_inode_in_use(&mut self, mut f: impl FnMut(&mut Self, InodeBuf) -> Result<()>) -> Result<()> {
        let geo = self.fs.geo.clone();
        let ipg = geo.inodes_per_group as usize;
        for g in 0..geo.group_count {
            let d = self.fs.groups[g as usize].clone();
            if geo.has_group_csum() && d.flags.contains(GroupDescFlags::INODE_UNINIT) {
                continue;
            }
            let used: Vec<bool> = self.fs.read_meta(d.inode_bitmap, |b| (0..ipg).map(|i| b[i / 8] & (1 << (i % 8)) != 0).collect())?;
            for i in (0..ipg).filter(|&i| used[i]) {
                let ib = self.fs.read_inode_raw(g * geo.inodes_per_group + i as u32 + 1)?;
                f(self, ib)?;
            }
        }
        Ok(())
    }
}

/// A file's block map grown at its end, as libext2fs grows it.
pub(super) struct MapPlan {
    /// Extent tree (`true`) or indirect map.
    pub(super) extents: bool,
    block_size: u32,
    /// Extents in logical order.
    list: Vec<Extent>,
    /// Leaf blocks of a depth-1 tree: (block, extents held, first extent).
    leaves: Vec<(u64, usize, Extent)>,
    /// The root's extents when it split: libext2fs leaves them behind the index.
    root_stale: Vec<Extent>,
    /// Indirect map: direct pointers, then IND, DIND, TIND.
    direct: [u64; NDIR],
    top: [u64; 3],
    /// Indirect blocks and their entries.
    nodes: std::collections::BTreeMap<u64, Vec<u32>>,
    /// Map blocks, in allocation order.
    pub(super) map_blocks: Vec<u64>,
    /// Data runs (logical, physical, length).
    pub(super) runs: Vec<(u32, u64, u32)>,
}

impl MapPlan {
    pub(super) fn new(extents: bool, block_size: u32) -> Self {
        Self {
            extents,
            block_size,
            list: Vec::new(),
            leaves: Vec::new(),
            root_stale: Vec::new(),
            direct: [0; NDIR],
            top: [0; 3],
            nodes: Default::default(),
            map_blocks: Vec::new(),
            runs: Vec::new(),
        }
    }

    fn note_run(&mut self, lblk: u32, pblk: u64, len: u32) {
        match self.runs.last_mut() {
            Some((l, p, n)) if *l + *n == lblk && *p + u64::from(*n) == pblk => *n += len,
            _ => self.runs.push((lblk, pblk, len)),
        }
    }

    /// Adds an extent after the last one (`ext2fs_extent_insert`),
    /// allocating a leaf where libext2fs splits.
    pub(super) fn push_extent(&mut self, s: &mut Session<'_>, lblk: u32, pblk: u64, len: u32) -> Result<()> {
        let e = Extent { logical: lblk, len, start: pblk, unwritten: false };
        self.note_run(lblk, pblk, len);
        let leaf_capacity = usize::from(extent::node_capacity(self.block_size as usize, true));
        if self.leaves.is_empty() && self.list.len() == ROOT_CAPACITY {
            let block = s.alloc_block_at(self.list[0].start.wrapping_sub(1))?;
            self.map_blocks.push(block);
            self.root_stale = self.list.clone();
            self.leaves.push((block, ROOT_CAPACITY, self.list[0]));
        } else if let Some(&(_, count, first)) = self.leaves.last() {
            if count >= leaf_capacity {
                if self.leaves.len() >= ROOT_CAPACITY {
                    return Err(Error::Unsupported("a new file too fragmented for an extent tree of depth 1".into()));
                }
                let block = s.alloc_block_at(first.start.wrapping_sub(1))?;
                self.map_blocks.push(block);
                self.leaves.push((block, 0, e));
            }
        }
        if let Some(last) = self.leaves.last_mut() {
            last.1 += 1;
        }
        self.list.push(e);
        Ok(())
    }

    /// Appends one block, merging it into the last extent when contiguous
    /// (`ext2fs_extent_set_bmap` while iterating).
    pub(super) fn append_extent_block(&mut self, s: &mut Session<'_>, lblk: u32, pblk: u64) -> Result<()> {
        if let Some(e) = self.list.last_mut() {
            if e.logical + e.len == lblk && e.start + u64::from(e.len) == pblk && u64::from(e.len) < MAX_EXTENT_LEN {
                e.len += 1;
                self.note_run(lblk, pblk, 1);
                return Ok(());
            }
        }
        self.push_extent(s, lblk, pblk, 1)
    }

    /// Maps logical block `lblk` (the next one) through an indirect map,
    /// allocating it and the indirect blocks it needs (`BMAP_ALLOC`).
    pub(super) fn push_indirect(&mut self, s: &mut Session<'_>, lblk: u32, first_goal: u64) -> Result<u64> {
        let apb = u64::from(self.block_size / 4);
        let mut n = u64::from(lblk);
        let b = if n < NDIR as u64 {
            let goal = if n > 0 { self.direct[n as usize - 1] } else { first_goal };
            let b = s.alloc_block_at(goal)?;
            self.direct[n as usize] = b;
            b
        } else {
            n -= NDIR as u64;
            if n < apb {
                let ind = self.top_block(s, 0)?;
                self.child(s, ind, n as usize, false)?
            } else if n - apb < apb * apb {
                n -= apb;
                let dind = self.top_block(s, 1)?;
                let ind = self.child(s, dind, (n / apb) as usize, true)?;
                self.child(s, ind, (n % apb) as usize, false)?
            } else {
                n -= apb + apb * apb;
                let tind = self.top_block(s, 2)?;
                let dind = self.child(s, tind, (n / apb / apb) as usize, true)?;
                let ind = self.child(s, dind, (n / apb % apb) as usize, true)?;
                self.child(s, ind, (n % apb) as usize, false)?
            }
        };
        self.note_run(lblk, b, 1);
        Ok(b)
    }

    /// Entry `index` of indirect block `parent`, allocated next to its left
    /// sibling (or the parent) when empty.
    fn child(&mut self, s: &mut Session<'_>, parent: u64, index: usize, is_node: bool) -> Result<u64> {
        let apb = self.block_size as usize / 4;
        let entries = self.nodes.entry(parent).or_insert_with(|| vec![0; apb]);
        if entries[index] != 0 {
            return Ok(entries[index].into());
        }
        let goal = if index > 0 { u64::from(entries[index - 1]) } else { parent };
        let b = s.alloc_block_at(goal)?;
        self.nodes.get_mut(&parent).expect("created above")[index] = b as u32;
        if is_node {
            self.map_blocks.push(b);
            self.nodes.insert(b, vec![0; apb]);
        }
        Ok(b)
    }

    /// The top indirect block of `level` (IND, DIND, TIND), allocated after
    /// the one before it.
    fn top_block(&mut self, s: &mut Session<'_>, level: usize) -> Result<u64> {
        if self.top[level] == 0 {
            let goal = if level == 0 { self.direct[NDIR - 1] } else { self.top[level - 1] };
            let b = s.alloc_block_at(goal)?;
            self.top[level] = b;
            self.map_blocks.push(b);
            self.nodes.insert(b, vec![0; self.block_size as usize / 4]);
        }
        Ok(self.top[level])
    }

    /// Encodes the map with `ext4-extent` into `root` (node blocks from the
    /// plan) and returns the node blocks' contents to write.
    pub(super) fn encode(&self, ctx: &MapCtx, root: &mut [u8; 60]) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut io = PlannedIo { planned: self.map_blocks.iter().copied().collect(), written: Default::default() };
        let kind = if self.extents { ext4_extent::MapKind::Extents } else { ext4_extent::MapKind::Indirect };
        if self.extents {
            ext4_extent::tree::init(root);
        }
        for &(logical, physical, len) in &self.runs {
            let run = Run { logical, physical, len, unwritten: false };
            ext4_extent::map_range(kind, root, ctx, &mut io, run).map_err(|e| Error::Unsupported(format!("building a block map: {e}")))?;
        }
        for (i, e) in self.root_stale.iter().enumerate().skip(self.leaves.len()) {
            extent::write_extent(root, i, e);
        }
        if !io.planned.is_empty() {
            return Err(Error::Unsupported("building a block map: fewer node blocks used than planned".into()));
        }
        Ok(io.written.into_iter().collect())
    }
}

/// Block access for encoding a planned map: node blocks come from the
/// plan in order, written blocks stay in memory.
struct PlannedIo {
    planned: std::collections::VecDeque<u64>,
    written: std::collections::BTreeMap<u64, Vec<u8>>,
}

impl MapIo for PlannedIo {
    type Error = ext4_extent::MapError;

    fn read_block(&mut self, block: u64, buf: &mut [u8]) -> std::result::Result<(), Self::Error> {
        match self.written.get(&block) {
            Some(d) => buf.copy_from_slice(d),
            None => buf.fill(0),
        }
        Ok(())
    }

    fn write_block(&mut self, block: u64, data: &[u8]) -> std::result::Result<(), Self::Error> {
        self.written.insert(block, data.to_vec());
        Ok(())
    }

    fn alloc_block(&mut self, _goal: u64) -> std::result::Result<u64, Self::Error> {
        self.planned.pop_front().ok_or(ext4_extent::MapError::BadPhysical { start: 0, len: 1 })
    }

    fn free_blocks(&mut self, _start: u64, _count: u64, _meta: bool) -> std::result::Result<(), Self::Error> {
        Ok(())
    }
}

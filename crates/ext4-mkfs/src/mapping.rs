//! The block maps of the files mke2fs creates (journal, orphan file,
//! lost+found, directories): where libext2fs puts the map's own blocks, in
//! the order it allocates them, with the I/O it makes; the maps themselves
//! are then encoded by `ext4-extent`, which takes its node blocks from the
//! placements planned here.
//!
//! Extent trees only grow at their end here: an inode root of 4 extents
//! splits into a leaf block placed just before the first extent
//! (`extent_node_split`: goal = first extent - 1); a full leaf gets a
//! sibling placed just before its own first extent. Indirect maps allocate
//! each indirect block just before the first block it maps, as
//! `ext2fs_bmap2(BMAP_ALLOC)` does.

use std::collections::{BTreeMap, VecDeque};

use ext4_extent::{MapCtx, MapIo, Run};
use ext4_ondisk::extent::{self, Extent};
use ext4_ondisk::inode::InodeFlags;

use crate::MkfsError;
use crate::build::Build;
use crate::kbytes::Io;
use crate::model::Model;

/// Which kind of block map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKind {
    /// An extent tree.
    Extents,
    /// The classic direct/indirect map.
    Indirect,
}

/// `EXT2_NDIR_BLOCKS`.
const NDIR: usize = 12;
/// Extents in the inode's `i_block`.
const ROOT_CAPACITY: usize = 4;
/// Longest initialized extent.
const MAX_LEN: u32 = 32768;

/// A file's block map being planned.
#[derive(Debug, Clone)]
pub struct Mapping {
    kind: MapKind,
    block_size: u32,
    /// Extents in logical order.
    extents: Vec<Extent>,
    /// Leaf blocks of a depth-1 tree and how many extents each holds.
    leaves: Vec<(u64, usize, Extent)>,
    /// The root's extents when it split: libext2fs leaves them in `i_block`
    /// behind the index entries.
    root_stale: Vec<Extent>,
    /// Indirect map: direct pointers.
    direct: [u32; NDIR],
    /// Indirect map: `i_block[12..15]` (IND, DIND, TIND).
    top: [u64; 3],
    /// Indirect map: entries of each indirect block.
    nodes: BTreeMap<u64, Vec<u32>>,
    /// Data runs in logical order.
    runs: Vec<(u32, u64, u32)>,
    /// Map blocks in allocation order.
    map_blocks: Vec<u64>,
    /// The I/O libext2fs makes for indirect-map changes, drained by the caller.
    pub io: Vec<Io>,
}

impl Mapping {
    /// An empty map.
    pub fn new(kind: MapKind, block_size: u32) -> Self {
        Self {
            kind,
            block_size,
            extents: Vec::new(),
            leaves: Vec::new(),
            root_stale: Vec::new(),
            direct: [0; NDIR],
            top: [0; 3],
            nodes: BTreeMap::new(),
            runs: Vec::new(),
            map_blocks: Vec::new(),
            io: Vec::new(),
        }
    }

    fn leaf_capacity(&self) -> usize {
        extent::node_capacity(self.block_size as usize, true).into()
    }

    fn note_run(&mut self, lblk: u32, pblk: u64, len: u32) {
        match self.runs.last_mut() {
            Some((l, p, n)) if *l + *n == lblk && *p + u64::from(*n) == pblk => *n += len,
            _ => self.runs.push((lblk, pblk, len)),
        }
    }

    /// Adds an extent at the end of the file (`ext2fs_extent_insert` after
    /// the last one), allocating a node block where libext2fs splits.
    pub fn push_extent(&mut self, m: &mut Model, lblk: u32, pblk: u64, len: u32) -> Result<(), MkfsError> {
        let e = Extent { logical: lblk, len, start: pblk, unwritten: false };
        self.note_run(lblk, pblk, len);
        if self.leaves.is_empty() && self.extents.len() == ROOT_CAPACITY {
            // Root split: everything moves to a leaf placed before the first extent.
            let block = m.alloc_block(self.extents[0].start.wrapping_sub(1))?;
            self.map_blocks.push(block);
            self.root_stale = self.extents.clone();
            self.leaves.push((block, ROOT_CAPACITY, self.extents[0]));
        } else if let Some(&(_, count, first)) = self.leaves.last() {
            if count >= self.leaf_capacity() {
                if self.leaves.len() >= ROOT_CAPACITY {
                    return Err(MkfsError::NoSpace { what: "an extent tree of depth 1 (the file is too fragmented)" });
                }
                let block = m.alloc_block(first.start.wrapping_sub(1))?;
                self.map_blocks.push(block);
                self.leaves.push((block, 0, e));
            }
        }
        if let Some(last) = self.leaves.last_mut() {
            last.1 += 1;
        }
        self.extents.push(e);
        Ok(())
    }

    /// Records already allocated blocks mapped by direct pointers (an
    /// indirect map of at most 12 blocks).
    pub fn add_direct_run(&mut self, lblk: u32, pblk: u64, len: u32) {
        self.note_run(lblk, pblk, len);
    }

    /// Appends one block at the end of the file, merging it into the last
    /// extent when contiguous (`ext2fs_extent_set_bmap` while iterating).
    pub fn append_block(&mut self, m: &mut Model, lblk: u32, pblk: u64) -> Result<(), MkfsError> {
        if let Some(e) = self.extents.last_mut() {
            if e.logical + e.len == lblk && e.start + u64::from(e.len) == pblk && e.len < MAX_LEN {
                e.len += 1;
                self.note_run(lblk, pblk, 1);
                return Ok(());
            }
        }
        self.push_extent(m, lblk, pblk, 1)
    }

    /// One step of `block_ind_bmap`: reads node `parent` and returns its
    /// entry `index`, allocating the child (next to its left sibling, or
    /// the parent) and rewriting the parent when the entry is empty.
    fn child(&mut self, m: &mut Model, parent: u64, index: usize, is_node: bool) -> Result<u64, MkfsError> {
        let apb = self.block_size as usize / 4;
        self.io.push(Io::ReadBlock(parent));
        let entries = self.nodes.entry(parent).or_insert_with(|| vec![0; apb]);
        if entries[index] != 0 {
            return Ok(entries[index].into());
        }
        let goal = if index > 0 { u64::from(entries[index - 1]) } else { parent };
        let b = m.alloc_block(goal)?;
        self.nodes.get_mut(&parent).expect("created above")[index] = b as u32;
        // alloc_block3 writes the zeroed child, then the parent is written.
        self.io.extend([Io::WriteBlock(b), Io::WriteBlock(parent)]);
        if is_node {
            self.map_blocks.push(b);
            self.nodes.insert(b, vec![0; apb]);
        }
        Ok(b)
    }

    /// Allocates the top-level indirect block `level` (0 IND, 1 DIND, 2 TIND).
    fn top_block(&mut self, m: &mut Model, level: usize) -> Result<u64, MkfsError> {
        if self.top[level] == 0 {
            let goal = if level == 0 { u64::from(self.direct[NDIR - 1]) } else { self.top[level - 1] };
            let b = m.alloc_block(goal)?;
            self.io.push(Io::WriteBlock(b));
            self.top[level] = b;
            self.map_blocks.push(b);
            self.nodes.insert(b, vec![0; self.block_size as usize / 4]);
        }
        Ok(self.top[level])
    }

    /// Maps logical block `lblk` (the next one) through the indirect map,
    /// allocating it and any indirect block it needs (`BMAP_ALLOC`).
    /// `first_goal` is where block 0 goes (`ext2fs_find_inode_goal`).
    pub fn push_indirect(&mut self, m: &mut Model, lblk: u32, first_goal: u64) -> Result<u64, MkfsError> {
        let apb = u64::from(self.block_size / 4);
        let mut n = u64::from(lblk);
        let b = if n < NDIR as u64 {
            let goal = if n > 0 { u64::from(self.direct[n as usize - 1]) } else { first_goal };
            let b = m.alloc_block(goal)?;
            self.io.push(Io::WriteBlock(b));
            self.direct[n as usize] = b as u32;
            b
        } else {
            n -= NDIR as u64;
            if n < apb {
                let ind = self.top_block(m, 0)?;
                self.child(m, ind, n as usize, false)?
            } else if n - apb < apb * apb {
                n -= apb;
                let dind = self.top_block(m, 1)?;
                let ind = self.child(m, dind, (n / apb) as usize, true)?;
                self.child(m, ind, (n % apb) as usize, false)?
            } else {
                n -= apb + apb * apb;
                let tind = self.top_block(m, 2)?;
                let dind = self.child(m, tind, (n / apb / apb) as usize, true)?;
                let ind = self.child(m, dind, (n / apb % apb) as usize, true)?;
                self.child(m, ind, (n % apb) as usize, false)?
            }
        };
        self.note_run(lblk, b, 1);
        Ok(b)
    }

    /// The I/O of `ext2fs_block_iterate3(BLOCK_FLAG_APPEND)` having built
    /// this indirect map one block at a time: each node is written zeroed
    /// when allocated, read, and written again once its entries are set.
    pub fn iterate_io(&self) -> Vec<Io> {
        let mut out = Vec::new();
        let mut remaining = self.runs.iter().map(|r| u64::from(r.2)).sum::<u64>();
        for &d in self.direct.iter().take(remaining.min(NDIR as u64) as usize) {
            out.push(Io::WriteBlock(d.into()));
        }
        remaining = remaining.saturating_sub(NDIR as u64);
        for (level, &top) in self.top.iter().enumerate() {
            if remaining == 0 || top == 0 {
                break;
            }
            self.iterate_node(top, level + 1, &mut remaining, &mut out);
        }
        out
    }

    fn iterate_node(&self, block: u64, level: usize, remaining: &mut u64, out: &mut Vec<Io>) {
        out.extend([Io::WriteBlock(block), Io::ReadBlock(block)]);
        for &e in self.nodes.get(&block).map(Vec::as_slice).unwrap_or(&[]) {
            if *remaining == 0 || e == 0 {
                break;
            }
            if level == 1 {
                out.push(Io::WriteBlock(e.into()));
                *remaining -= 1;
            } else {
                self.iterate_node(e.into(), level - 1, remaining, out);
            }
        }
        out.push(Io::WriteBlock(block));
    }

    /// The leaf blocks of the extent tree (empty at depth 0).
    pub fn leaves(&self) -> Vec<u64> {
        self.leaves.iter().map(|l| l.0).collect()
    }

    /// The data runs `(logical, physical, length)`.
    pub fn runs(&self) -> Vec<(u32, u64, u32)> {
        self.runs.clone()
    }

    /// The blocks the map itself occupies, in allocation order.
    pub fn map_blocks(&self) -> Vec<u64> {
        self.map_blocks.clone()
    }

    /// Encodes the map with `ext4-extent` into `inode.block` (setting the
    /// EXTENTS flag for extent trees) and records its node blocks for
    /// writing.
    pub fn finish(&self, b: &mut Build, ino: u32, inode: &mut ext4_ondisk::Inode) -> Result<(), MkfsError> {
        let s = &b.model.shape;
        let ctx = MapCtx {
            block_size: s.block_size,
            first_data_block: s.first_data_block as u32,
            blocks_count: s.blocks_count,
            csum_seed: b.inode_csum_seed(ino),
        };
        let mut io = PlannedIo { planned: self.map_blocks.iter().copied().collect(), written: BTreeMap::new() };
        let mut root = [0u8; 60];
        match self.kind {
            MapKind::Extents => {
                ext4_extent::tree::init(&mut root);
                for e in &self.extents {
                    let run = Run { logical: e.logical, physical: e.start, len: e.len, unwritten: false };
                    ext4_extent::map_range(ext4_extent::MapKind::Extents, &mut root, &ctx, &mut io, run)?;
                }
                self.restore_stale_root(&mut root);
                inode.flags |= InodeFlags::EXTENTS;
            }
            MapKind::Indirect => {
                for &(logical, physical, len) in &self.runs {
                    let run = Run { logical, physical, len, unwritten: false };
                    ext4_extent::map_range(ext4_extent::MapKind::Indirect, &mut root, &ctx, &mut io, run)?;
                }
            }
        }
        if !io.planned.is_empty() {
            return Err(MkfsError::MapPlan { reason: "fewer map blocks used than planned" });
        }
        inode.block = root;
        for (blk, data) in io.written {
            b.model.put_block(blk, data);
        }
        Ok(())
    }

    /// libext2fs turns a full root into an index by rewriting its header
    /// and first entries only: the old extents stay behind them.
    fn restore_stale_root(&self, root: &mut [u8; 60]) {
        for (i, e) in self.root_stale.iter().enumerate().skip(self.leaves.len()) {
            extent::write_extent(root, i, e);
        }
    }
}

/// Block access for `ext4-extent` while encoding a planned map: node
/// blocks come from the plan, in order; written blocks are kept in memory.
struct PlannedIo {
    planned: VecDeque<u64>,
    written: BTreeMap<u64, Vec<u8>>,
}

impl MapIo for PlannedIo {
    type Error = MkfsError;

    fn read_block(&mut self, block: u64, buf: &mut [u8]) -> Result<(), MkfsError> {
        match self.written.get(&block) {
            Some(data) => buf.copy_from_slice(data),
            None => buf.fill(0),
        }
        Ok(())
    }

    fn write_block(&mut self, block: u64, data: &[u8]) -> Result<(), MkfsError> {
        self.written.insert(block, data.to_vec());
        Ok(())
    }

    fn alloc_block(&mut self, _goal: u64) -> Result<u64, MkfsError> {
        self.planned.pop_front().ok_or(MkfsError::MapPlan { reason: "more map blocks needed than planned" })
    }

    fn free_blocks(&mut self, _start: u64, _count: u64, _meta: bool) -> Result<(), MkfsError> {
        Err(MkfsError::MapPlan { reason: "a map edit that frees blocks" })
    }
}

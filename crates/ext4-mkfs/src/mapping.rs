//! The block maps of the files mke2fs creates with many blocks (journal,
//! orphan file, lost+found): which blocks the map's own nodes take, in the
//! order libext2fs allocates them, and their encoding.
//!
//! Extent trees grow only at their end here: an inode root of 4 extents,
//! split into one leaf block placed just before the first extent
//! (`extent_node_split`: goal = first extent - 1), then further leaves
//! that take the last extent of the full one (the "no balance" split at
//! EOF). Indirect maps allocate each indirect block just before the first
//! block it maps, as `ext2fs_bmap2(BMAP_ALLOC)` does.

use std::collections::BTreeMap;

use ext4_ondisk::extent::{self, Extent, ExtentIndex, NodeHeader};
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

/// A leaf block of a depth-1 tree and the extents it holds.
#[derive(Debug, Clone)]
struct Leaf {
    block: u64,
    extents: Vec<Extent>,
    /// An entry moved out by a split, still present past `extents` (libext2fs
    /// only lowers `eh_entries`).
    stale: Option<Extent>,
}

/// A file's block map under construction.
#[derive(Debug, Clone)]
pub struct Mapping {
    kind: MapKind,
    block_size: u32,
    /// Extents while the tree has depth 0.
    root: Vec<Extent>,
    /// The root's extents when it was split, left in `i_block`.
    root_stale: Vec<Extent>,
    /// Leaves once it has depth 1.
    leaves: Vec<Leaf>,
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
            root: Vec::new(),
            root_stale: Vec::new(),
            leaves: Vec::new(),
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
    /// the last one), splitting nodes as libext2fs does.
    pub fn push_extent(&mut self, m: &mut Model, lblk: u32, pblk: u64, len: u32) -> Result<(), MkfsError> {
        let e = Extent { logical: lblk, len, start: pblk, unwritten: false };
        self.note_run(lblk, pblk, len);
        if self.leaves.is_empty() {
            if self.root.len() < ROOT_CAPACITY {
                self.root.push(e);
                return Ok(());
            }
            // Root split: everything moves to a leaf placed before the first extent.
            let block = m.alloc_block(self.root[0].start.wrapping_sub(1))?;
            self.map_blocks.push(block);
            let extents = std::mem::take(&mut self.root);
            // The inode keeps the old extents behind the new index entry.
            self.root_stale = extents.clone();
            self.leaves.push(Leaf { block, extents, stale: None });
        }
        let cap = self.leaf_capacity();
        let last = self.leaves.len() - 1;
        if self.leaves[last].extents.len() >= cap {
            if self.leaves.len() >= ROOT_CAPACITY {
                return Err(MkfsError::NoSpace { what: "an extent tree of depth 1 (the file is too fragmented)" });
            }
            let goal = self.leaves[last].extents[0].start.wrapping_sub(1);
            let block = m.alloc_block(goal)?;
            self.map_blocks.push(block);
            let moved = self.leaves[last].extents.pop().expect("a full leaf");
            self.leaves[last].stale = Some(moved);
            self.leaves.push(Leaf { block, extents: vec![moved], stale: None });
        }
        self.leaves.last_mut().expect("a leaf").extents.push(e);
        Ok(())
    }

    /// Appends one block at the end of the file, merging it into the last
    /// extent when contiguous (`ext2fs_extent_set_bmap` while iterating).
    pub fn append_block(&mut self, m: &mut Model, lblk: u32, pblk: u64) -> Result<(), MkfsError> {
        let last = match self.leaves.last_mut() {
            Some(l) => l.extents.last_mut(),
            None => self.root.last_mut(),
        };
        if let Some(e) = last {
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
        self.leaves.iter().map(|l| l.block).collect()
    }

    /// The data runs `(logical, physical, length)`.
    pub fn runs(&self) -> Vec<(u32, u64, u32)> {
        self.runs.clone()
    }

    /// The blocks the map itself occupies.
    pub fn map_blocks(&self) -> Vec<u64> {
        self.map_blocks.clone()
    }

    /// Writes the map into `inode.block` (and the EXTENTS flag) and records
    /// the map's blocks (with checksums) for writing.
    pub fn finish(&self, b: &mut Build, ino: u32, inode: &mut ext4_ondisk::Inode) -> Result<(), MkfsError> {
        match self.kind {
            MapKind::Extents => self.finish_extents(b, ino, inode),
            MapKind::Indirect => {
                for (i, &d) in self.direct.iter().enumerate() {
                    ext4_ondisk::put_u32(&mut inode.block, i * 4, d);
                }
                for (i, &t) in self.top.iter().enumerate() {
                    ext4_ondisk::put_u32(&mut inode.block, (NDIR + i) * 4, t as u32);
                }
                for (&blk, entries) in &self.nodes {
                    let mut buf = vec![0u8; self.block_size as usize];
                    for (i, &e) in entries.iter().enumerate() {
                        ext4_ondisk::put_u32(&mut buf, i * 4, e);
                    }
                    b.model.put_block(blk, buf);
                }
                Ok(())
            }
        }
    }

    fn finish_extents(&self, b: &mut Build, ino: u32, inode: &mut ext4_ondisk::Inode) -> Result<(), MkfsError> {
        inode.flags |= InodeFlags::EXTENTS;
        inode.block = [0; 60];
        let root_max = ROOT_CAPACITY as u16;
        if self.leaves.is_empty() {
            let h = NodeHeader { entries: self.root.len() as u16, max: root_max, depth: 0, generation: 0 };
            extent::write_header(&mut inode.block, h);
            for (i, e) in self.root.iter().enumerate() {
                extent::write_extent(&mut inode.block, i, e);
            }
            return Ok(());
        }
        let h = NodeHeader { entries: self.leaves.len() as u16, max: root_max, depth: 1, generation: 0 };
        extent::write_header(&mut inode.block, h);
        for (i, e) in self.root_stale.iter().enumerate() {
            extent::write_extent(&mut inode.block, i, e);
        }
        let seed = b.inode_csum_seed(ino);
        for (i, leaf) in self.leaves.iter().enumerate() {
            extent::write_index(
                &mut inode.block,
                i,
                &ExtentIndex { logical: leaf.extents[0].logical, leaf: leaf.block },
            );
            let mut buf = vec![0u8; self.block_size as usize];
            let lh = NodeHeader {
                entries: leaf.extents.len() as u16,
                max: self.leaf_capacity() as u16,
                depth: 0,
                generation: 0,
            };
            extent::write_header(&mut buf, lh);
            for (j, e) in leaf.extents.iter().enumerate() {
                extent::write_extent(&mut buf, j, e);
            }
            if let Some(e) = &leaf.stale {
                extent::write_extent(&mut buf, leaf.extents.len(), e);
            }
            if let Some(seed) = seed {
                extent::set_extent_block_checksum(seed, &mut buf);
            }
            b.model.put_block(leaf.block, buf);
        }
        Ok(())
    }
}

//! ext4 logical-to-physical block maps: extent trees and indirect block maps (no I/O).
//!
//! An inode maps its logical blocks to device blocks in one of two ways, both
//! rooted in the 60-byte `i_block`:
//!
//! * [`tree`]: extent trees (`EXTENTS` inode flag). The root node lives in
//!   `i_block`; deeper nodes are blocks with a checksum tail.
//! * [`indirect`]: ext2/ext3 maps: 12 direct pointers, then single, double
//!   and triple indirect blocks of 32-bit pointers; 0 is a hole.
//!
//! The crate reads and edits these maps but does no I/O: every block it
//! reads, writes, allocates or frees goes through the caller's [`MapIo`], so
//! the caller journals writes and keeps `i_blocks` exact. The free functions
//! here ([`lookup`], [`for_each_run`], [`map_range`], [`unmap_range`],
//! [`for_each_map_block`]) dispatch on [`MapKind`].
//!
//! Checked on every read (the kernel's `__ext4_ext_check` and e2fsck's
//! rules; errors are structured [`MapError`]s, no input panics): node
//! headers and checksums (when [`MapCtx::csum_seed`] is given), a child's
//! depth is its parent's minus one (so no cycles), a child's first entry
//! starts at its index key and its entries end before the next key,
//! entries ordered without overlap, pointers inside the data blocks,
//! non-root extent nodes not empty, indirect blocks not shared. Kept by
//! every write, besides those: nodes written with full `eh_max` and a fresh
//! checksum tail; no empty indirect block left; an emptied map is exactly a
//! fresh one (`tree::init`, or zeros); an edit that splits, frees or empties
//! extent nodes leaves the tree in the shape e2fsck accepts without offering
//! to optimize it (see [`tree`]).
//!
//! On an error after the map started changing (an I/O or allocation error
//! from [`MapIo`], damage found midway), the map may be half edited:
//! callers roll the whole operation back, as `ext4-fs` does with its
//! transactions. Refused requests ([`MapError::AlreadyMapped`],
//! [`MapError::BeyondMap`], ...) change nothing.

#![forbid(unsafe_code)]

mod coalesce;
mod error;
pub mod indirect;
pub mod tree;

use core::ops::ControlFlow;

pub use error::{Corruption, MapError};

/// Block access for map operations, implemented by the caller (`ext4-fs` on
/// its transaction, `ext4-mkfs` on its image, tests on memory).
pub trait MapIo {
    /// The caller's error; map errors convert into it.
    type Error: From<MapError>;
    /// Reads device block `block` (an extent node or an indirect block) into
    /// `buf` (`block_size` bytes).
    fn read_block(&mut self, block: u64, buf: &mut [u8]) -> Result<(), Self::Error>;
    /// Writes a map block (the caller journals it).
    fn write_block(&mut self, block: u64, data: &[u8]) -> Result<(), Self::Error>;
    /// Allocates one block for map metadata near `goal` (0: no preference).
    fn alloc_block(&mut self, goal: u64) -> Result<u64, Self::Error>;
    /// Frees `count` blocks from `start`; `meta` is true for map blocks (the
    /// journal revokes those), false for file data.
    fn free_blocks(&mut self, start: u64, count: u64, meta: bool) -> Result<(), Self::Error>;
}

/// What a map needs to know about its filesystem and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapCtx {
    /// Block size in bytes (a power of two from 1024 to 65536).
    pub block_size: u32,
    /// `s_first_data_block`: pointers must lie above it.
    pub first_data_block: u32,
    /// `s_blocks_count`: pointers must lie below it.
    pub blocks_count: u64,
    /// The inode's `metadata_csum` seed (`ext4_ondisk::checksum::inode_seed`),
    /// `None` without `metadata_csum`.
    pub csum_seed: Option<u32>,
}

impl MapCtx {
    /// Refuses block sizes the format does not have.
    pub(crate) fn check(&self) -> Result<(), MapError> {
        let bs = self.block_size;
        if !(1024..=65536).contains(&bs) || !bs.is_power_of_two() {
            return Err(MapError::BadBlockSize { block_size: bs });
        }
        Ok(())
    }

    /// Whether blocks `start .. start + count` are data blocks of the
    /// filesystem. Like the kernel's `ext4_inode_block_valid`, block
    /// `s_first_data_block` itself (the superblock's) is not.
    pub(crate) fn blocks_valid(&self, start: u64, count: u64) -> bool {
        start > u64::from(self.first_data_block) && start.checked_add(count).is_some_and(|end| end <= self.blocks_count)
    }

    /// The block size as a buffer length.
    pub(crate) fn block_len(&self) -> usize {
        self.block_size as usize
    }
}

/// A run of logical blocks mapped to consecutive physical blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Run {
    /// First logical block.
    pub logical: u32,
    /// First physical block.
    pub physical: u64,
    /// Number of blocks (at least 1 in every run this crate reports).
    pub len: u32,
    /// Allocated but not written (extent trees only): reads as zeros.
    pub unwritten: bool,
}

impl Run {
    /// One past the last logical block, as u64 (it may be 2^32).
    pub fn logical_end(&self) -> u64 {
        u64::from(self.logical) + u64::from(self.len)
    }
}

/// The answer of [`lookup`] for one logical block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The block is mapped: the run starts at the asked block and ends where
    /// its extent (or, for indirect maps, the physically contiguous part
    /// within the same indirect block) ends.
    Mapped(Run),
    /// The block is a hole.
    Hole {
        /// The next mapped logical block, if any.
        next: Option<u32>,
    },
}

/// Which kind of block map an inode has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MapKind {
    /// An extent tree (`EXTENTS` inode flag).
    Extents,
    /// An ext2/ext3 indirect block map.
    Indirect,
}

/// Looks up logical block `logical`.
pub fn lookup<I: MapIo>(kind: MapKind, root: &[u8; 60], ctx: &MapCtx, io: &mut I, logical: u32) -> Result<Lookup, I::Error> {
    match kind {
        MapKind::Extents => tree::lookup(root, ctx, io, logical),
        MapKind::Indirect => indirect::lookup(root, ctx, io, logical),
    }
}

/// Calls `f` with every mapped run in logical order, coalescing runs that
/// are logically and physically contiguous and in the same written state.
/// Stops early when `f` breaks.
pub fn for_each_run<I: MapIo>(
    kind: MapKind,
    root: &[u8; 60],
    ctx: &MapCtx,
    io: &mut I,
    f: impl FnMut(Run) -> ControlFlow<()>,
) -> Result<(), I::Error> {
    match kind {
        MapKind::Extents => tree::for_each_run(root, ctx, io, f),
        MapKind::Indirect => indirect::for_each_run(root, ctx, io, f),
    }
}

/// Calls `f` with every map block (extent tree node or indirect block) of
/// the map, parents before children. Stops early when `f` breaks.
pub fn for_each_map_block<I: MapIo>(
    kind: MapKind,
    root: &[u8; 60],
    ctx: &MapCtx,
    io: &mut I,
    f: impl FnMut(u64) -> ControlFlow<()>,
) -> Result<(), I::Error> {
    match kind {
        MapKind::Extents => tree::for_each_node_block(root, ctx, io, f),
        MapKind::Indirect => indirect::for_each_indirect_block(root, ctx, io, f),
    }
}

/// Maps `run.len` logical blocks from `run.logical` to physical blocks from
/// `run.physical`. The range must be unmapped; `unwritten` needs an extent
/// tree. The data blocks are the caller's; map blocks come from
/// [`MapIo::alloc_block`].
pub fn map_range<I: MapIo>(kind: MapKind, root: &mut [u8; 60], ctx: &MapCtx, io: &mut I, run: Run) -> Result<(), I::Error> {
    match kind {
        MapKind::Extents => tree::map_range(root, ctx, io, run),
        MapKind::Indirect => indirect::map_range(root, ctx, io, run),
    }
}

/// Unmaps logical blocks `start .. end` (`end` exclusive, up to 2^32): frees
/// their data blocks (`meta = false`) and the map blocks left empty
/// (`meta = true`). Truncating to 0 (`start = 0`, `end = 1 << 32`) leaves the
/// root exactly as a fresh, empty map.
pub fn unmap_range<I: MapIo>(kind: MapKind, root: &mut [u8; 60], ctx: &MapCtx, io: &mut I, start: u32, end: u64) -> Result<(), I::Error> {
    match kind {
        MapKind::Extents => tree::unmap_range(root, ctx, io, start, end),
        MapKind::Indirect => indirect::unmap_range(root, ctx, io, start, end),
    }
}

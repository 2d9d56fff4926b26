//! Extent trees (`EXTENTS` inode flag): the root node in `i_block`, index
//! and leaf nodes in blocks (kernel doc "Extent Tree").
//!
//! Writes follow the kernel: an extent merges with a neighbour when they
//! are logically and physically contiguous in the same state and fit one
//! extent (32768 blocks, 32767 unwritten); a full node splits after the
//! entry being written (so appends leave full nodes behind); a full root
//! moves its entries one level down; index keys follow the first block of
//! their child. Removal frees emptied nodes, and the root pulls its
//! children back while they fit in it.
//!
//! Unlike the kernel, an edit that splits, frees or empties nodes ends by
//! checking the tree against e2fsck's shape rules (no level with more than
//! a block of free slots, none that a level above could hold) and rebuilds
//! it packed when they fail, so random writes and punched holes never leave
//! a tree that `e2fsck -fn` offers to optimize.

mod edit;
mod leaf;
mod node;
mod read;
mod shape;

use core::ops::ControlFlow;

use ext4_ondisk::extent::{self, Extent, NodeHeader};

use self::edit::Editor;
use self::node::EXT_MAX_BLOCKS;
use self::read::Visit;
pub(crate) use self::read::lookup;
use crate::coalesce::coalesced;
use crate::{Lookup, MapCtx, MapError, MapIo, Run};

/// Makes `root` an empty tree, as the kernel does for a new file: a header
/// with `eh_max` 4, depth 0, no entries, the rest zero.
pub fn init(root: &mut [u8; 60]) {
    root.fill(0);
    extent::write_header(root, NodeHeader { entries: 0, max: node::ROOT_CAPACITY as u16, depth: 0, generation: 0 });
}

/// Number of logical blocks an extent tree can map: blocks 0 to 2^32 - 2
/// (the kernel's `EXT_MAX_BLOCKS` is one past the last).
pub const MAX_LOGICAL_BLOCKS: u64 = EXT_MAX_BLOCKS;

/// Calls `f` with the coalesced runs in logical order.
pub(crate) fn for_each_run<I: MapIo>(
    root: &[u8; 60],
    ctx: &MapCtx,
    io: &mut I,
    f: impl FnMut(Run) -> ControlFlow<()>,
) -> Result<(), I::Error> {
    coalesced(f, |push| {
        read::walk(root, ctx, io, &mut |v| match v {
            Visit::Node(_) => ControlFlow::Continue(()),
            Visit::Extent(e) => push(Run { logical: e.logical, physical: e.start, len: e.len, unwritten: e.unwritten }),
        })
    })
}

/// Calls `f` with every node block, parents first.
pub(crate) fn for_each_node_block<I: MapIo>(
    root: &[u8; 60],
    ctx: &MapCtx,
    io: &mut I,
    mut f: impl FnMut(u64) -> ControlFlow<()>,
) -> Result<(), I::Error> {
    read::walk(root, ctx, io, &mut |v| match v {
        Visit::Node(n) => n.block.map_or(ControlFlow::Continue(()), &mut f),
        Visit::Extent(_) => ControlFlow::Continue(()),
    })
}

/// Maps `run`, in extents of at most the maximal length.
pub(crate) fn map_range<I: MapIo>(root: &mut [u8; 60], ctx: &MapCtx, io: &mut I, run: Run) -> Result<(), I::Error> {
    ctx.check()?;
    if run.len == 0 {
        return Ok(());
    }
    let end = run.logical_end();
    if end > EXT_MAX_BLOCKS {
        return Err(MapError::BeyondMap { end, limit: EXT_MAX_BLOCKS }.into());
    }
    if !ctx.blocks_valid(run.physical, run.len.into()) {
        return Err(MapError::BadPhysical { start: run.physical, len: run.len.into() }.into());
    }
    match lookup(root, ctx, io, run.logical)? {
        Lookup::Mapped(_) => {
            return Err(MapError::AlreadyMapped { logical: run.logical }.into());
        }
        Lookup::Hole { next: Some(n) } if u64::from(n) < end => {
            return Err(MapError::AlreadyMapped { logical: n }.into());
        }
        Lookup::Hole { .. } => {}
    }
    let mut ed = Editor::new(ctx, io, run.physical);
    let mut done = 0;
    while done < run.len {
        let len = (run.len - done).min(leaf::max_len(run.unwritten));
        let e = Extent { logical: run.logical + done, len, start: run.physical + u64::from(done), unwritten: run.unwritten };
        ed.edit_leaf(root, e.logical, &mut |v| leaf::insert(v, e))?;
        done += len;
    }
    ed.tidy(root)
}

/// Unmaps `[start, end)`, one leaf at a time, then tidies the tree.
pub(crate) fn unmap_range<I: MapIo>(root: &mut [u8; 60], ctx: &MapCtx, io: &mut I, start: u32, end: u64) -> Result<(), I::Error> {
    ctx.check()?;
    let end = end.min(1 << 32);
    let mut ed = Editor::new(ctx, io, 0);
    let mut freed = Vec::new();
    let from = u64::from(start);
    ed.edit_leaves(root, start, end, &mut |v| leaf::remove(v, from, end, &mut freed))?;
    for (s, n) in freed {
        ed.io.free_blocks(s, n, false)?;
    }
    ed.tidy(root)
}

/// Marks logical blocks `[start, start + len)` written where they are mapped
/// unwritten, splitting extents at the bounds and merging the written parts
/// with written neighbours. Holes and written blocks in the range are left
/// as they are.
pub fn mark_written<I: MapIo>(root: &mut [u8; 60], ctx: &MapCtx, io: &mut I, start: u32, len: u32) -> Result<(), I::Error> {
    ctx.check()?;
    let end = u64::from(start) + u64::from(len);
    if end > EXT_MAX_BLOCKS {
        return Err(MapError::BeyondMap { end, limit: EXT_MAX_BLOCKS }.into());
    }
    let mut ed = Editor::new(ctx, io, 0);
    let from = u64::from(start);
    ed.edit_leaves(root, start, end, &mut |v| leaf::convert(v, from, end))?;
    ed.tidy(root)
}

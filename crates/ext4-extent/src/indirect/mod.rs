//! Indirect block maps (ext2/ext3): `i_block[0..12]` point at data blocks,
//! `i_block[12]` at a block of pointers to data (single indirect),
//! `[13]` at a block of pointers to such blocks (double), `[14]` triple.
//! Pointers are 32-bit block numbers; 0 is a hole.
//!
//! Writes allocate missing indirect blocks (filled with zeros, then the new
//! pointers) and removal frees the indirect blocks left all zero, as ext2
//! does; the inode's `i_block` is zero again once nothing is mapped.

mod write;

use core::ops::ControlFlow;
use std::collections::HashSet;

use ext4_ondisk::get_u32;

use crate::coalesce::coalesced;
use crate::error::{Corruption, corrupt};
use crate::{Lookup, MapCtx, MapError, MapIo, Run};

pub(crate) use write::{map_range, unmap_range};

/// Direct pointers in `i_block` (`EXT2_NDIR_BLOCKS`).
const DIRECT: u64 = 12;

/// Number of logical blocks an indirect map can address with blocks of
/// `block_size` bytes: 12 + p + p² + p³ for p = block_size / 4 pointers per
/// block, at most 2^32 (logical block numbers are 32 bits). Limits on the
/// file size from `i_blocks` are the caller's.
pub fn max_logical_blocks(block_size: u32) -> u64 {
    let p = u64::from(block_size / 4);
    (DIRECT + p + p * p + p * p * p).min(1 << 32)
}

/// One pointer of `i_block`: slot index, level (0 = data pointer), and the
/// first logical block it covers.
#[derive(Debug, Clone, Copy)]
struct Slot {
    index: usize,
    level: u32,
    base: u64,
}

/// Shape of an indirect map for one block size.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// Pointers per block.
    p: u64,
}

impl Shape {
    fn new(ctx: &MapCtx) -> Self {
        Self { p: u64::from(ctx.block_size / 4) }
    }

    /// Logical blocks covered by a pointer at `level`.
    fn span(&self, level: u32) -> u64 {
        self.p.pow(level)
    }

    /// The 15 slots of `i_block` with what they cover.
    fn slots(&self) -> [Slot; 15] {
        core::array::from_fn(|i| match i {
            0..12 => Slot { index: i, level: 0, base: i as u64 },
            _ => {
                let level = (i - 11) as u32;
                let base = DIRECT + (1..level).map(|l| self.span(l)).sum::<u64>();
                Slot { index: i, level, base }
            }
        })
    }

    /// Child indices of a pointer at `level` covering from `base` that
    /// intersect `[from, to)`.
    fn children(&self, level: u32, base: u64, from: u64, to: u64) -> core::ops::Range<usize> {
        let span = self.span(level - 1);
        let end = to.min(base + self.span(level));
        let first = from.saturating_sub(base) / span;
        let last = end.saturating_sub(base).div_ceil(span);
        first as usize..last.max(first) as usize
    }

    /// End of the run of logical blocks whose pointers sit in the same block
    /// (or in the direct slots) as those of `logical`.
    fn pointer_block_end(&self, logical: u64) -> u64 {
        if logical < DIRECT { DIRECT } else { DIRECT + ((logical - DIRECT) / self.p + 1) * self.p }
    }
}

/// Checks a pointer found in map block `at` (`None`: `i_block`).
fn check_pointer(ctx: &MapCtx, ptr: u32, at: Option<u64>) -> Result<(), MapError> {
    if ctx.blocks_valid(ptr.into(), 1) { Ok(()) } else { Err(corrupt(at, Corruption::BadPointer { pointer: ptr.into(), count: 1 })) }
}

/// What a walk meets in logical order: an indirect block, or a mapped block.
enum Visit {
    Block(u64),
    Data { logical: u64, physical: u64 },
}

struct Walker<'a, I> {
    ctx: &'a MapCtx,
    io: &'a mut I,
    shape: Shape,
    /// Indirect blocks met so far: one met twice is corruption, and
    /// refusing it bounds a walk by the number of distinct blocks.
    seen: HashSet<u64>,
}

impl<'a, I> Walker<'a, I> {
    fn new(ctx: &'a MapCtx, io: &'a mut I) -> Self {
        Self { ctx, io, shape: Shape::new(ctx), seen: HashSet::new() }
    }
}

impl<I: MapIo> Walker<'_, I> {
    /// Visits the mapped blocks in `[from, to)` and the indirect blocks on the way.
    fn walk(&mut self, root: &[u8; 60], from: u64, to: u64, f: &mut dyn FnMut(Visit) -> ControlFlow<()>) -> Result<(), I::Error> {
        for s in self.shape.slots() {
            if s.base >= to || s.base + self.shape.span(s.level) <= from {
                continue;
            }
            let ptr = get_u32(root, 4 * s.index);
            if ptr == 0 {
                continue;
            }
            self.enter(ptr, s.level, None)?;
            if self.walk_ptr(ptr, s.level, s.base, from, to, f)?.is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Checks a nonzero pointer at `level` found in block `at` (`None`: `i_block`).
    fn enter(&mut self, ptr: u32, level: u32, at: Option<u64>) -> Result<(), MapError> {
        check_pointer(self.ctx, ptr, at)?;
        if level > 0 && !self.seen.insert(ptr.into()) {
            return Err(corrupt(at, Corruption::SharedBlock { block: ptr.into() }));
        }
        Ok(())
    }

    /// Recursion depth is the level, at most 3.
    fn walk_ptr(
        &mut self,
        ptr: u32,
        level: u32,
        base: u64,
        from: u64,
        to: u64,
        f: &mut dyn FnMut(Visit) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, I::Error> {
        if level == 0 {
            return Ok(f(Visit::Data { logical: base, physical: ptr.into() }));
        }
        if f(Visit::Block(ptr.into())).is_break() {
            return Ok(ControlFlow::Break(()));
        }
        let mut buf = vec![0u8; self.ctx.block_len()];
        self.io.read_block(ptr.into(), &mut buf)?;
        let span = self.shape.span(level - 1);
        for i in self.shape.children(level, base, from, to) {
            let child = get_u32(&buf, 4 * i);
            if child == 0 {
                continue;
            }
            self.enter(child, level - 1, Some(ptr.into()))?;
            if self.walk_ptr(child, level - 1, base + i as u64 * span, from, to, f)?.is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    }
}

/// Looks up `logical`: the physically contiguous run from it within its
/// pointer block, or the next mapped block.
pub(crate) fn lookup<I: MapIo>(root: &[u8; 60], ctx: &MapCtx, io: &mut I, logical: u32) -> Result<Lookup, I::Error> {
    ctx.check()?;
    let shape = Shape::new(ctx);
    let n = u64::from(logical);
    let stop = shape.pointer_block_end(n);
    let mut found: Option<Run> = None;
    let mut next = None;
    let mut w = Walker::new(ctx, io);
    w.walk(root, n, max_logical_blocks(ctx.block_size), &mut |v| {
        let Visit::Data { logical: l, physical } = v else {
            return ControlFlow::Continue(());
        };
        match &mut found {
            None if l == n => found = Some(Run { logical, physical, len: 1, unwritten: false }),
            None => {
                next = Some(l as u32);
                return ControlFlow::Break(());
            }
            Some(r) if l == r.logical_end() && physical == r.physical + u64::from(r.len) && l < stop => r.len += 1,
            Some(_) => return ControlFlow::Break(()),
        }
        ControlFlow::Continue(())
    })?;
    Ok(match found {
        Some(r) => Lookup::Mapped(r),
        None => Lookup::Hole { next },
    })
}

/// Calls `f` with the coalesced runs in logical order.
pub(crate) fn for_each_run<I: MapIo>(
    root: &[u8; 60],
    ctx: &MapCtx,
    io: &mut I,
    f: impl FnMut(Run) -> ControlFlow<()>,
) -> Result<(), I::Error> {
    ctx.check()?;
    coalesced(f, |push| {
        Walker::new(ctx, io).walk(root, 0, max_logical_blocks(ctx.block_size), &mut |v| match v {
            Visit::Data { logical, physical } => push(Run { logical: logical as u32, physical, len: 1, unwritten: false }),
            Visit::Block(_) => ControlFlow::Continue(()),
        })
    })
}

/// Calls `f` with every indirect block, parents first.
pub(crate) fn for_each_indirect_block<I: MapIo>(
    root: &[u8; 60],
    ctx: &MapCtx,
    io: &mut I,
    mut f: impl FnMut(u64) -> ControlFlow<()>,
) -> Result<(), I::Error> {
    ctx.check()?;
    let mut w = Walker::new(ctx, io);
    w.walk(root, 0, max_logical_blocks(ctx.block_size), &mut |v| match v {
        Visit::Block(b) => f(b),
        Visit::Data { .. } => ControlFlow::Continue(()),
    })
}

/// Reads every pointer under `[from, to)`, checking them all (before a
/// removal, so that damage found midway cannot leave it half done).
fn check_range<I: MapIo>(root: &[u8; 60], ctx: &MapCtx, io: &mut I, from: u64, to: u64) -> Result<(), I::Error> {
    Walker::new(ctx, io).walk(root, from, to, &mut |_| ControlFlow::Continue(()))
}

/// The first mapped logical block in `[from, to)`, if any.
fn first_mapped<I: MapIo>(root: &[u8; 60], ctx: &MapCtx, io: &mut I, from: u64, to: u64) -> Result<Option<u64>, I::Error> {
    let mut first = None;
    let mut w = Walker::new(ctx, io);
    w.walk(root, from, to, &mut |v| match v {
        Visit::Data { logical, .. } => {
            first = Some(logical);
            ControlFlow::Break(())
        }
        Visit::Block(_) => ControlFlow::Continue(()),
    })?;
    Ok(first)
}

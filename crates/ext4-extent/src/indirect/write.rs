//! Writing indirect maps: mapping a range (allocating missing indirect
//! blocks) and unmapping one (freeing data and emptied indirect blocks).

use ext4_ondisk::{get_u32, put_u32};

use super::{Shape, check_pointer, check_range, first_mapped, max_logical_blocks};
use crate::{MapCtx, MapError, MapIo, Run};

/// Maps `run` (unmapped, written, below the map's limit and 2^32 physically).
pub(crate) fn map_range<I: MapIo>(root: &mut [u8; 60], ctx: &MapCtx, io: &mut I, run: Run) -> Result<(), I::Error> {
    ctx.check()?;
    if run.unwritten {
        return Err(MapError::UnwrittenOnIndirect.into());
    }
    if run.len == 0 {
        return Ok(());
    }
    let (start, end) = (u64::from(run.logical), run.logical_end());
    let limit = max_logical_blocks(ctx.block_size);
    if end > limit {
        return Err(MapError::BeyondMap { end, limit }.into());
    }
    let len = u64::from(run.len);
    if !ctx.blocks_valid(run.physical, len) || run.physical + len > 1 << 32 {
        return Err(MapError::BadPhysical { start: run.physical, len }.into());
    }
    if let Some(l) = first_mapped(root, ctx, io, start, end)? {
        return Err(MapError::AlreadyMapped { logical: l as u32 }.into());
    }
    let mut w = Writer { ctx, io, shape: Shape::new(ctx) };
    for s in w.shape.slots() {
        if s.base >= end || s.base + w.shape.span(s.level) <= start {
            continue;
        }
        let mut ptr = get_u32(root, 4 * s.index);
        if ptr != 0 {
            check_pointer(ctx, ptr, None)?;
        }
        w.map_ptr(&mut ptr, s.level, s.base, &run)?;
        put_u32(root, 4 * s.index, ptr);
    }
    Ok(())
}

/// Unmaps `[start, end)`.
pub(crate) fn unmap_range<I: MapIo>(root: &mut [u8; 60], ctx: &MapCtx, io: &mut I, start: u32, end: u64) -> Result<(), I::Error> {
    ctx.check()?;
    let (start, end) = (u64::from(start), end.min(max_logical_blocks(ctx.block_size)));
    if start >= end {
        return Ok(());
    }
    check_range(root, ctx, io, start, end)?;
    let mut w = Writer { ctx, io, shape: Shape::new(ctx) };
    let mut frees = DataFrees::default();
    for s in w.shape.slots() {
        if s.base >= end || s.base + w.shape.span(s.level) <= start {
            continue;
        }
        let mut ptr = get_u32(root, 4 * s.index);
        if ptr == 0 {
            continue;
        }
        check_pointer(ctx, ptr, None)?;
        w.unmap_ptr(&mut ptr, s.level, s.base, start, end, &mut frees)?;
        put_u32(root, 4 * s.index, ptr);
    }
    frees.flush(w.io)
}

struct Writer<'a, I> {
    ctx: &'a MapCtx,
    io: &'a mut I,
    shape: Shape,
}

impl<I: MapIo> Writer<'_, I> {
    /// Maps the part of `run` under pointer `ptr` at `level` covering from
    /// `base`, allocating the pointer's block if it is 0. Recursion depth is
    /// the level, at most 3.
    fn map_ptr(&mut self, ptr: &mut u32, level: u32, base: u64, run: &Run) -> Result<(), I::Error> {
        let offset = base.saturating_sub(u64::from(run.logical));
        if level == 0 {
            // In range by construction: `run.physical + run.len` is at most 2^32.
            *ptr = (run.physical + offset) as u32;
            return Ok(());
        }
        let (block, mut buf) = if *ptr == 0 {
            (self.alloc(run.physical + offset)?, vec![0u8; self.ctx.block_len()])
        } else {
            let mut buf = vec![0u8; self.ctx.block_len()];
            self.io.read_block((*ptr).into(), &mut buf)?;
            (*ptr, buf)
        };
        let span = self.shape.span(level - 1);
        for i in self.shape.children(level, base, run.logical.into(), run.logical_end()) {
            let mut child = get_u32(&buf, 4 * i);
            let child_base = base + i as u64 * span;
            if child != 0 && level == 1 {
                return Err(MapError::AlreadyMapped { logical: child_base as u32 }.into());
            }
            if child != 0 {
                check_pointer(self.ctx, child, Some(block.into()))?;
            }
            self.map_ptr(&mut child, level - 1, child_base, run)?;
            put_u32(&mut buf, 4 * i, child);
        }
        self.io.write_block(block.into(), &buf)?;
        *ptr = block;
        Ok(())
    }

    /// Unmaps `[start, end)` under nonzero pointer `ptr` at `level` covering
    /// from `base`; clears `ptr` if nothing is left under it.
    fn unmap_ptr(&mut self, ptr: &mut u32, level: u32, base: u64, start: u64, end: u64, frees: &mut DataFrees) -> Result<(), I::Error> {
        if level == 0 {
            frees.add(self.io, (*ptr).into())?;
            *ptr = 0;
            return Ok(());
        }
        let block = u64::from(*ptr);
        let mut buf = vec![0u8; self.ctx.block_len()];
        self.io.read_block(block, &mut buf)?;
        let span = self.shape.span(level - 1);
        let mut changed = false;
        for i in self.shape.children(level, base, start, end) {
            let mut child = get_u32(&buf, 4 * i);
            if child == 0 {
                continue;
            }
            check_pointer(self.ctx, child, Some(block))?;
            self.unmap_ptr(&mut child, level - 1, base + i as u64 * span, start, end, frees)?;
            put_u32(&mut buf, 4 * i, child);
            changed = true;
        }
        if buf.iter().all(|&b| b == 0) {
            self.io.free_blocks(block, 1, true)?;
            *ptr = 0;
        } else if changed {
            self.io.write_block(block, &buf)?;
        }
        Ok(())
    }

    /// One indirect block near `goal`, checked to be a data block below 2^32.
    fn alloc(&mut self, goal: u64) -> Result<u32, I::Error> {
        let block = self.io.alloc_block(goal)?;
        match u32::try_from(block) {
            Ok(b) if self.ctx.blocks_valid(block, 1) => Ok(b),
            _ => Err(MapError::BadPhysical { start: block, len: 1 }.into()),
        }
    }
}

/// Data blocks to free, gathered into physically contiguous ranges.
#[derive(Default)]
struct DataFrees {
    pending: Option<(u64, u64)>,
}

impl DataFrees {
    fn add<I: MapIo>(&mut self, io: &mut I, block: u64) -> Result<(), I::Error> {
        match &mut self.pending {
            Some((s, n)) if *s + *n == block => {
                *n += 1;
                Ok(())
            }
            _ => {
                self.flush(io)?;
                self.pending = Some((block, 1));
                Ok(())
            }
        }
    }

    fn flush<I: MapIo>(&mut self, io: &mut I) -> Result<(), I::Error> {
        match self.pending.take() {
            Some((s, n)) => io.free_blocks(s, n, false),
            None => Ok(()),
        }
    }
}

//! Reading an extent tree: lookup of one block and ordered walks.

use core::ops::ControlFlow;

use ext4_ondisk::extent::Extent;

use super::node::{Entries, Node, child_index, child_next, read_child};
use crate::{Lookup, MapCtx, MapIo, Run};

/// Looks up `logical`, descending one node per level (at most 6 nodes).
pub(crate) fn lookup<I: MapIo>(root: &[u8; 60], ctx: &MapCtx, io: &mut I, logical: u32) -> Result<Lookup, I::Error> {
    ctx.check()?;
    let mut node = Node::decode_root(root, ctx)?;
    let mut next = None;
    // Each step goes one level down (a child's depth is checked to be its parent's minus one).
    loop {
        let ix = match &node.entries {
            Entries::Leaf(v) => return Ok(find_in_leaf(v, logical, next)),
            Entries::Index(ix) => ix,
        };
        let i = child_index(ix, logical);
        next = child_next(ix, i, next);
        node = read_child(io, ctx, ix[i], node.depth, next)?;
    }
}

/// The extent of a leaf holding `logical`, trimmed to start there, or the hole's end.
fn find_in_leaf(v: &[Extent], logical: u32, next: Option<u32>) -> Lookup {
    let p = v.partition_point(|e| e.logical <= logical);
    if let Some(e) = p.checked_sub(1).map(|i| v[i]) {
        if u64::from(logical) < e.logical_end() {
            let skip = logical - e.logical;
            return Lookup::Mapped(Run { logical, physical: e.start + u64::from(skip), len: e.len - skip, unwritten: e.unwritten });
        }
    }
    Lookup::Hole { next: v.get(p).map(|e| e.logical).or(next) }
}

/// What a walk meets, in order: a node (before its entries), or an extent.
pub(crate) enum Visit<'n> {
    /// A node, the root first.
    Node(&'n Node),
    /// A leaf extent.
    Extent(Extent),
}

/// Walks the whole tree depth first in logical order.
pub(crate) fn walk<I: MapIo>(
    root: &[u8; 60],
    ctx: &MapCtx,
    io: &mut I,
    f: &mut dyn FnMut(Visit<'_>) -> ControlFlow<()>,
) -> Result<(), I::Error> {
    ctx.check()?;
    let node = Node::decode_root(root, ctx)?;
    if f(Visit::Node(&node)).is_break() {
        return Ok(());
    }
    walk_node(&node, None, ctx, io, f).map(|_| ())
}

/// Recursion depth is bounded by the root's depth (at most 5): each child's depth is checked.
fn walk_node<I: MapIo>(
    node: &Node,
    next: Option<u32>,
    ctx: &MapCtx,
    io: &mut I,
    f: &mut dyn FnMut(Visit<'_>) -> ControlFlow<()>,
) -> Result<ControlFlow<()>, I::Error> {
    match &node.entries {
        Entries::Leaf(v) => {
            for e in v {
                if f(Visit::Extent(*e)).is_break() {
                    return Ok(ControlFlow::Break(()));
                }
            }
        }
        Entries::Index(ix) => {
            for (i, idx) in ix.iter().enumerate() {
                let child_bound = child_next(ix, i, next);
                let child = read_child(io, ctx, *idx, node.depth, child_bound)?;
                if f(Visit::Node(&child)).is_break() {
                    return Ok(ControlFlow::Break(()));
                }
                if walk_node(&child, child_bound, ctx, io, f)?.is_break() {
                    return Ok(ControlFlow::Break(()));
                }
            }
        }
    }
    Ok(ControlFlow::Continue(()))
}

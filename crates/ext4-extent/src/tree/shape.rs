//! The shape e2fsck wants a tree in, and the packed rebuild that restores it.
//!
//! e2fsck (`e2fsck_should_rebuild_extents`, e2fsck/extents.c) adds up, per
//! level, the entries and the capacities of the nodes (a non-root node that
//! is not full counts one slot less), and offers to rebuild a tree when a
//! level has more than one block of free slots ("could be narrower") or
//! fewer entries than a level above could hold ("could be shorter").
//! Random inserts and punched holes leave such trees, as in the kernel;
//! this crate rebuilds them packed when an edit has made one, so that
//! `e2fsck -fn` stays silent.

use core::ops::ControlFlow;

use ext4_ondisk::extent::{Extent, ExtentIndex, MAX_DEPTH};

use super::edit::Editor;
use super::node::{Entries, Node, ROOT_CAPACITY, block_capacity};
use super::read::{Visit, walk};
use crate::{MapError, MapIo};

/// Entries and capacity of one level, as e2fsck counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Level {
    pub(crate) entries: usize,
    pub(crate) capacity: usize,
}

/// Whether e2fsck would call a tree with these levels shorter or narrower than needed.
pub(crate) fn e2fsck_would_rebuild(levels: &[Level], per_block: usize) -> bool {
    levels
        .iter()
        .enumerate()
        .any(|(i, l)| l.capacity.saturating_sub(l.entries) > per_block || levels[..i].iter().any(|above| l.entries < above.capacity))
}

/// A whole tree seen at once.
#[derive(Debug, Default)]
struct Survey {
    /// Per level from the root.
    levels: Vec<Level>,
    /// Every extent, in order.
    extents: Vec<Extent>,
    /// Every node block.
    blocks: Vec<u64>,
}

impl<I: MapIo> Editor<'_, I> {
    /// Rebuilds the tree packed if e2fsck would want it rebuilt.
    pub(crate) fn keep_e2fsck_shape(&mut self, root: &mut [u8; 60]) -> Result<(), I::Error> {
        let s = self.survey(root)?;
        if s.levels.len() > 1 && e2fsck_would_rebuild(&s.levels, block_capacity(self.ctx)) {
            self.rebuild(root, s.extents, s.blocks)?;
        }
        Ok(())
    }

    /// Per-level counts, all extents, and all node blocks of the tree.
    fn survey(&mut self, root: &[u8; 60]) -> Result<Survey, I::Error> {
        let Survey { mut levels, mut extents, mut blocks } = Survey::default();
        let mut top = 0u16;
        walk(root, self.ctx, self.io, &mut |v| {
            match v {
                Visit::Node(n) => {
                    if n.block.is_none() {
                        top = n.depth;
                        levels = vec![Level::default(); usize::from(top) + 1];
                    }
                    blocks.extend(n.block);
                    let (entries, max) = (n.entries.len(), usize::from(n.max));
                    let l = &mut levels[usize::from(top - n.depth)];
                    l.entries += entries;
                    // e2fsck's allowance: a non-root node that is not full counts one slot less.
                    l.capacity += if n.block.is_some() && entries < max { max - 1 } else { max };
                }
                Visit::Extent(e) => extents.push(e),
            }
            ControlFlow::Continue(())
        })?;
        Ok(Survey { levels, extents, blocks })
    }

    /// Writes `extents` as a packed tree: nodes of one entry less than full
    /// (no free slot in e2fsck's count, yet room for one insert), the
    /// shallowest depth that fits. Reuses the old node blocks first.
    fn rebuild(&mut self, root: &mut [u8; 60], extents: Vec<Extent>, mut old: Vec<u64>) -> Result<(), I::Error> {
        old.sort_unstable_by(|a, b| b.cmp(a));
        let per_node = block_capacity(self.ctx) - 1;
        let mut entries = Entries::Leaf(extents);
        let mut depth = 0u16;
        while entries.len() > ROOT_CAPACITY {
            if depth >= MAX_DEPTH {
                return Err(MapError::TooDeep.into());
            }
            let mut index = Vec::new();
            while !entries.is_empty() {
                let rest = entries.split_off(per_node);
                let block = match old.pop() {
                    Some(b) => b,
                    None => self.alloc()?,
                };
                let key = entries.first_key().unwrap_or(0);
                let node = Node::new_block(block, depth, core::mem::replace(&mut entries, rest), self.ctx);
                super::node::write_node(self.io, self.ctx, block, &node)?;
                index.push(ExtentIndex { logical: key, leaf: block });
            }
            entries = Entries::Index(index);
            depth += 1;
        }
        for b in old {
            self.io.free_blocks(b, 1, true)?;
        }
        let generation = Node::decode_root(root, self.ctx)?.generation;
        let top = Node { block: None, depth, max: ROOT_CAPACITY as u16, generation, entries };
        top.encode_root(root);
        Ok(())
    }
}

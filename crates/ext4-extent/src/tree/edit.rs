//! Editing one leaf of an extent tree and repairing the path above it:
//! node writes, splits of overfull nodes, removal of emptied ones, index
//! keys, growth of the root in depth and shrinking it back.

use ext4_ondisk::extent::{Extent, ExtentIndex, MAX_DEPTH};

use super::leaf::Touched;
use super::node::{Entries, Node, ROOT_CAPACITY, block_capacity, child_index, child_next, read_child, write_node};
use crate::{MapCtx, MapError, MapIo};

/// An edit of one leaf's extents.
pub(crate) type LeafEdit<'e> = dyn FnMut(&mut Vec<Extent>) -> Touched + 'e;

/// Tree surgery with the caller's I/O.
pub(crate) struct Editor<'a, I> {
    pub(crate) ctx: &'a MapCtx,
    pub(crate) io: &'a mut I,
    /// Goal for new node blocks.
    pub(crate) goal: u64,
    /// Whether an edit split, freed or grew a node, or took entries out of
    /// one: the changes after which e2fsck may find the tree badly shaped.
    pub(crate) reshaped: bool,
}

impl<'a, I: MapIo> Editor<'a, I> {
    /// An editor whose new node blocks go near `goal`.
    pub(crate) fn new(ctx: &'a MapCtx, io: &'a mut I, goal: u64) -> Self {
        Self { ctx, io, goal, reshaped: false }
    }

    /// Applies `edit` to each leaf that may hold blocks of `[start, end)`, in order.
    pub(crate) fn edit_leaves(&mut self, root: &mut [u8; 60], start: u32, end: u64, edit: &mut LeafEdit<'_>) -> Result<(), I::Error> {
        let mut cur = start;
        while u64::from(cur) < end {
            // The leaf for `cur` covers it or starts after it, so `next` is past `cur`.
            match self.edit_leaf(root, cur, edit)? {
                Some(n) if n > cur => cur = n,
                _ => break,
            }
        }
        Ok(())
    }

    /// Applies `edit` to the leaf covering `logical` (the last one whose
    /// range starts at or before it, else the first) and repairs the path.
    /// Returns where the next leaf starts (`None`: this was the last).
    pub(crate) fn edit_leaf(&mut self, root: &mut [u8; 60], logical: u32, edit: &mut LeafEdit<'_>) -> Result<Option<u32>, I::Error> {
        let mut node = Node::decode_root(root, self.ctx)?;
        let (next, t) = self.edit_node(&mut node, logical, None, edit)?;
        if t.changed {
            self.store_root(node, t.pos, root)?;
        }
        Ok(next)
    }

    /// Recursion depth is bounded by the root's depth (at most 5).
    fn edit_node(
        &mut self,
        node: &mut Node,
        logical: u32,
        next: Option<u32>,
        edit: &mut LeafEdit<'_>,
    ) -> Result<(Option<u32>, Touched), I::Error> {
        let depth = node.depth;
        let ix = match &mut node.entries {
            Entries::Leaf(v) => {
                let before = v.len();
                let t = edit(v);
                self.reshaped |= v.len() < before;
                if t.near != 0 {
                    self.goal = t.near;
                }
                return Ok((next, t));
            }
            Entries::Index(ix) => ix,
        };
        let i = child_index(ix, logical);
        let bound = child_next(ix, i, next);
        let mut child = read_child(self.io, self.ctx, ix[i], depth, bound)?;
        let (leaf_next, t) = self.edit_node(&mut child, logical, bound, edit)?;
        if !t.changed {
            return Ok((leaf_next, Touched::NONE));
        }
        Ok((leaf_next, self.settle_child(ix, i, child, t.pos)?))
    }

    /// Stores changed child `i` of index entries `ix`: frees it if empty,
    /// else splits it if overfull and writes it; then fixes `ix` (keys,
    /// removed or added entries). Reports how `ix` changed.
    fn settle_child(&mut self, ix: &mut Vec<ExtentIndex>, i: usize, mut child: Node, pos: usize) -> Result<Touched, I::Error> {
        let block = ix[i].leaf;
        let Some(key) = child.entries.first_key() else {
            self.reshaped = true;
            self.io.free_blocks(block, 1, true)?;
            ix.remove(i);
            return Ok(Touched { changed: true, pos: i.saturating_sub(1), near: 0 });
        };
        let extra = self.split(&mut child, pos, block_capacity(self.ctx))?;
        self.reshaped |= !extra.is_empty();
        write_node(self.io, self.ctx, block, &child)?;
        let changed = !extra.is_empty() || ix[i].logical != key;
        ix[i].logical = key;
        for (k, (b, n)) in extra.iter().enumerate() {
            write_node(self.io, self.ctx, *b, n)?;
            ix.insert(i + 1 + k, ExtentIndex { logical: n.entries.first_key().unwrap_or(0), leaf: *b });
        }
        Ok(Touched { changed, pos: i + extra.len(), near: 0 })
    }

    /// Moves the entries of an overfull `node` after `pos` (at most
    /// `capacity` kept) into new blocks, as the kernel's `ext4_ext_split`
    /// does: an append leaves the old node full and starts a new one.
    fn split(&mut self, node: &mut Node, pos: usize, capacity: usize) -> Result<Vec<(u64, Node)>, I::Error> {
        let mut out = Vec::new();
        if node.entries.len() <= capacity {
            return Ok(out);
        }
        let mut rest = node.entries.split_off((pos + 1).clamp(1, capacity));
        while !rest.is_empty() {
            let tail = rest.split_off(capacity);
            let block = self.alloc()?;
            out.push((block, Node::new_block(block, node.depth, rest, self.ctx)));
            rest = tail;
        }
        Ok(out)
    }

    /// Stores a changed root: an emptied tree becomes a fresh one; an
    /// overfull root moves its entries into a new block one level down (the
    /// kernel's `ext4_ext_grow_indepth`).
    fn store_root(&mut self, mut node: Node, mut pos: usize, root: &mut [u8; 60]) -> Result<(), I::Error> {
        if node.entries.is_empty() {
            super::init(root);
            return Ok(());
        }
        while node.entries.len() > ROOT_CAPACITY {
            if node.depth >= MAX_DEPTH {
                return Err(MapError::TooDeep.into());
            }
            self.reshaped = true;
            let block = self.alloc()?;
            let entries = core::mem::replace(&mut node.entries, Entries::empty(node.depth + 1));
            let mut child = Node::new_block(block, node.depth, entries, self.ctx);
            let extra = self.split(&mut child, pos, block_capacity(self.ctx))?;
            let mut ix = vec![ExtentIndex { logical: child.entries.first_key().unwrap_or(0), leaf: block }];
            write_node(self.io, self.ctx, block, &child)?;
            for (b, n) in &extra {
                write_node(self.io, self.ctx, *b, n)?;
                ix.push(ExtentIndex { logical: n.entries.first_key().unwrap_or(0), leaf: *b });
            }
            pos = extra.len();
            node.entries = Entries::Index(ix);
            node.depth += 1;
        }
        node.encode_root(root);
        Ok(())
    }

    /// Pulls the root's children up into the root while they fit in it
    /// together, freeing their blocks, so that a tree that lost entries is
    /// no deeper than needed (an empty one is depth 0, as when fresh).
    fn shrink(&mut self, root: &mut [u8; 60]) -> Result<(), I::Error> {
        let mut node = Node::decode_root(root, self.ctx)?;
        let mut changed = false;
        while let Some((entries, blocks)) = self.children_if_they_fit(&node)? {
            for b in blocks {
                self.io.free_blocks(b, 1, true)?;
            }
            node.entries = entries;
            node.depth -= 1;
            changed = true;
        }
        if changed {
            node.encode_root(root);
        }
        Ok(())
    }

    /// All entries of the root's children and their blocks, if they fit the root.
    fn children_if_they_fit(&mut self, node: &Node) -> Result<Option<(Entries, Vec<u64>)>, I::Error> {
        let Entries::Index(ix) = &node.entries else {
            return Ok(None);
        };
        let mut all = Entries::empty(node.depth - 1);
        for (i, idx) in ix.iter().enumerate() {
            let child = read_child(self.io, self.ctx, *idx, node.depth, child_next(ix, i, None))?;
            all.append(child.entries);
            if all.len() > ROOT_CAPACITY {
                return Ok(None);
            }
        }
        Ok(Some((all, ix.iter().map(|e| e.leaf).collect())))
    }

    /// After an edit that reshaped the tree: pulls the root's children up
    /// while they fit, then rebuilds the tree packed if e2fsck would.
    pub(crate) fn tidy(&mut self, root: &mut [u8; 60]) -> Result<(), I::Error> {
        if self.reshaped {
            self.shrink(root)?;
            self.keep_e2fsck_shape(root)?;
        }
        Ok(())
    }

    /// One block for a node, checked to be a data block.
    pub(crate) fn alloc(&mut self) -> Result<u64, I::Error> {
        let block = self.io.alloc_block(self.goal)?;
        if !self.ctx.blocks_valid(block, 1) {
            return Err(MapError::BadPhysical { start: block, len: 1 }.into());
        }
        Ok(block)
    }
}

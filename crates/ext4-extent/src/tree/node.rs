//! One extent tree node: decoded and validated from `i_block` or a block,
//! and encoded back with full capacity and a fresh checksum tail.

use ext4_ondisk::extent::{self, Extent, ExtentIndex, ExtentNode, NodeHeader};

use crate::error::{Corruption, corrupt};
use crate::{MapCtx, MapError, MapIo};

/// One past the last logical block an extent may cover (`EXT_MAX_BLOCKS`):
/// the kernel refuses extents whose end wraps to 2^32.
pub(crate) const EXT_MAX_BLOCKS: u64 = 0xFFFF_FFFF;
/// Entries of the root node in `i_block` (`ext4_ext_space_root`).
pub(crate) const ROOT_CAPACITY: usize = 4;

/// The entries of a node: extents in leaves (depth 0), index entries above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entries {
    /// Leaf entries.
    Leaf(Vec<Extent>),
    /// Index entries.
    Index(Vec<ExtentIndex>),
}

impl Entries {
    /// No entries, of the kind a node of `depth` holds.
    pub(crate) fn empty(depth: u16) -> Self {
        if depth == 0 { Self::Leaf(Vec::new()) } else { Self::Index(Vec::new()) }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Leaf(v) => v.len(),
            Self::Index(v) => v.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first logical block covered (the parent's key for this node).
    pub(crate) fn first_key(&self) -> Option<u32> {
        match self {
            Self::Leaf(v) => v.first().map(|e| e.logical),
            Self::Index(v) => v.first().map(|e| e.logical),
        }
    }

    /// Splits off the entries from `at` (at most `len`).
    pub(crate) fn split_off(&mut self, at: usize) -> Self {
        match self {
            Self::Leaf(v) => Self::Leaf(v.split_off(at.min(v.len()))),
            Self::Index(v) => Self::Index(v.split_off(at.min(v.len()))),
        }
    }

    /// Appends the entries of `other`, which holds the same kind.
    pub(crate) fn append(&mut self, other: Self) {
        match (self, other) {
            (Self::Leaf(a), Self::Leaf(mut b)) => a.append(&mut b),
            (Self::Index(a), Self::Index(mut b)) => a.append(&mut b),
            // Nodes of one depth hold one kind of entries (decode derives the kind from the depth).
            _ => debug_assert!(false, "appending entries of another kind"),
        }
    }
}

/// A decoded node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// The block holding the node; `None` for the root in `i_block`.
    pub(crate) block: Option<u64>,
    /// `eh_depth`.
    pub(crate) depth: u16,
    /// `eh_max` as found (nodes are always written with full capacity).
    pub(crate) max: u16,
    /// `eh_generation`, kept as found.
    pub(crate) generation: u32,
    /// The valid entries.
    pub(crate) entries: Entries,
}

/// What a parent's index entry says about the child it points to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// The child's first entry must start here (`ei_block`).
    pub(crate) key: u32,
    /// The child's entries must end at or before here (the parent's next key).
    pub(crate) next: Option<u32>,
}

/// Entries of a node in a block of `block_size` bytes, less the checksum tail.
pub(crate) fn block_capacity(ctx: &MapCtx) -> usize {
    usize::from(extent::node_capacity(ctx.block_len(), true))
}

impl Node {
    /// A new node block at `depth` holding `entries`.
    pub(crate) fn new_block(block: u64, depth: u16, entries: Entries, ctx: &MapCtx) -> Self {
        Self { block: Some(block), depth, max: block_capacity(ctx) as u16, generation: 0, entries }
    }

    /// Decodes and checks the root node in `i_block`.
    pub(crate) fn decode_root(bytes: &[u8; 60], ctx: &MapCtx) -> Result<Self, MapError> {
        let raw = ExtentNode::parse(bytes).map_err(|e| corrupt(None, e))?;
        if raw.header.entries == 0 && raw.header.depth > 0 {
            return Err(corrupt(None, Corruption::EmptyNode));
        }
        decode_entries(&raw, None, ctx, None)
    }

    /// Decodes and checks node block `block` (its bytes), expected at `depth` within `bounds`.
    pub(crate) fn decode_block(bytes: &[u8], block: u64, depth: u16, bounds: Bounds, ctx: &MapCtx) -> Result<Self, MapError> {
        let at = Some(block);
        // `parse` bounds eh_max by the buffer; for every block size that is
        // exactly the kernel's capacity with the tail (2^k mod 12 is 4 or 8).
        let raw = ExtentNode::parse(bytes).map_err(|e| corrupt(at, e))?;
        if let Some(seed) = ctx.csum_seed {
            extent::verify_extent_block(seed, bytes, &raw).map_err(|e| corrupt(at, e))?;
        }
        if raw.header.depth != depth {
            return Err(corrupt(at, Corruption::DepthMismatch { expected: depth, found: raw.header.depth }));
        }
        if raw.header.entries == 0 {
            return Err(corrupt(at, Corruption::EmptyNode));
        }
        decode_entries(&raw, at, ctx, Some(bounds))
    }

    /// Encodes the root into `i_block`, with `eh_max` 4 and unused slots zeroed.
    pub(crate) fn encode_root(&self, out: &mut [u8; 60]) {
        out.fill(0);
        self.encode_into(out, ROOT_CAPACITY);
    }

    /// Encodes a node block with `eh_max` at full capacity and the checksum tail set.
    pub(crate) fn encode_block(&self, ctx: &MapCtx) -> Vec<u8> {
        let mut buf = vec![0u8; ctx.block_len()];
        self.encode_into(&mut buf, block_capacity(ctx));
        if let Some(seed) = ctx.csum_seed {
            extent::set_extent_block_checksum(seed, &mut buf);
        }
        buf
    }

    fn encode_into(&self, buf: &mut [u8], capacity: usize) {
        debug_assert!(self.entries.len() <= capacity, "node over capacity");
        let header =
            NodeHeader { entries: self.entries.len() as u16, max: capacity as u16, depth: self.depth, generation: self.generation };
        extent::write_header(buf, header);
        match &self.entries {
            Entries::Leaf(v) => v.iter().enumerate().for_each(|(i, e)| extent::write_extent(buf, i, e)),
            Entries::Index(v) => v.iter().enumerate().for_each(|(i, e)| extent::write_index(buf, i, e)),
        }
    }
}

/// Reads and checks the child that index entry `idx` of a node at `parent_depth` points to.
pub(crate) fn read_child<I: MapIo>(
    io: &mut I,
    ctx: &MapCtx,
    idx: ExtentIndex,
    parent_depth: u16,
    next: Option<u32>,
) -> Result<Node, I::Error> {
    let mut buf = vec![0u8; ctx.block_len()];
    io.read_block(idx.leaf, &mut buf)?;
    let bounds = Bounds { key: idx.logical, next };
    Ok(Node::decode_block(&buf, idx.leaf, parent_depth - 1, bounds, ctx)?)
}

/// Writes a node block.
pub(crate) fn write_node<I: MapIo>(io: &mut I, ctx: &MapCtx, block: u64, node: &Node) -> Result<(), I::Error> {
    io.write_block(block, &node.encode_block(ctx))
}

fn decode_entries(raw: &ExtentNode<'_>, at: Option<u64>, ctx: &MapCtx, bounds: Option<Bounds>) -> Result<Node, MapError> {
    let entries = if raw.is_leaf() { Entries::Leaf(decode_extents(raw, at, ctx)?) } else { Entries::Index(decode_indexes(raw, at, ctx)?) };
    if let Some(b) = bounds {
        check_bounds(&entries, b, at)?;
    }
    let h = raw.header;
    Ok(Node { block: at, depth: h.depth, max: h.max, generation: h.generation, entries })
}

/// Leaf entries: nonzero lengths, below `EXT_MAX_BLOCKS`, valid blocks, ordered without overlap.
fn decode_extents(raw: &ExtentNode<'_>, at: Option<u64>, ctx: &MapCtx) -> Result<Vec<Extent>, MapError> {
    let mut out: Vec<Extent> = Vec::with_capacity(usize::from(raw.header.entries));
    for e in raw.extents() {
        if e.len == 0 {
            return Err(corrupt(at, Corruption::ZeroLength { logical: e.logical }));
        }
        if e.logical_end() > EXT_MAX_BLOCKS {
            return Err(corrupt(at, Corruption::BeyondMaxLogical { logical: e.logical, len: e.len }));
        }
        if !ctx.blocks_valid(e.start, u64::from(e.len)) {
            return Err(corrupt(at, Corruption::BadPointer { pointer: e.start, count: e.len.into() }));
        }
        if let Some(prev) = out.last() {
            if u64::from(e.logical) < prev.logical_end() {
                return Err(corrupt(at, Corruption::OutOfOrder { logical: e.logical, previous_end: prev.logical_end() }));
            }
        }
        out.push(e);
    }
    Ok(out)
}

/// Index entries: valid child blocks, strictly increasing keys.
fn decode_indexes(raw: &ExtentNode<'_>, at: Option<u64>, ctx: &MapCtx) -> Result<Vec<ExtentIndex>, MapError> {
    let mut out: Vec<ExtentIndex> = Vec::with_capacity(usize::from(raw.header.entries));
    for e in raw.indexes() {
        if !ctx.blocks_valid(e.leaf, 1) {
            return Err(corrupt(at, Corruption::BadPointer { pointer: e.leaf, count: 1 }));
        }
        if let Some(prev) = out.last() {
            if e.logical <= prev.logical {
                return Err(corrupt(at, Corruption::OutOfOrder { logical: e.logical, previous_end: u64::from(prev.logical) + 1 }));
            }
        }
        out.push(e);
    }
    Ok(out)
}

/// The child starts exactly at its key and ends before the parent's next key.
fn check_bounds(entries: &Entries, b: Bounds, at: Option<u64>) -> Result<(), MapError> {
    if let Some(first) = entries.first_key() {
        if first != b.key {
            return Err(corrupt(at, Corruption::IndexKeyMismatch { key: b.key, first }));
        }
    }
    let end = match entries {
        Entries::Leaf(v) => v.last().map(|e| e.logical_end()),
        Entries::Index(v) => v.last().map(|e| u64::from(e.logical) + 1),
    };
    match (end, b.next) {
        (Some(end), Some(limit)) if end > u64::from(limit) => Err(corrupt(at, Corruption::BeyondParent { end, limit })),
        _ => Ok(()),
    }
}

/// The child of an index node to descend into for `logical`: the last whose
/// key is at or before it, or the first.
pub(crate) fn child_index(ix: &[ExtentIndex], logical: u32) -> usize {
    ix.partition_point(|e| e.logical <= logical).saturating_sub(1)
}

/// The bound of child `i`: the next key, else the parent's own bound.
pub(crate) fn child_next(ix: &[ExtentIndex], i: usize, parent_next: Option<u32>) -> Option<u32> {
    ix.get(i + 1).map(|e| e.logical).or(parent_next)
}

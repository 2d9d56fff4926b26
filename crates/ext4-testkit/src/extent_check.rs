//! Test support: an in-memory `MapIo` with a checking allocator, and map
//! checkers that decode trees and indirect maps with `ext4-ondisk` alone
//! (independently of the crate under test).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ext4_fs::extent::{MapCtx, MapError, MapIo, Run};
use ext4_fs::ondisk::extent::{ExtentNode, INIT_MAX_LEN, UNWRITTEN_MAX_LEN, node_capacity, verify_extent_block};

/// An error of the test I/O: a map error, or a misuse the test catches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestError {
    /// From the crate.
    Map(MapError),
    /// Misuse of the I/O: reading a block never written, writing a block
    /// not allocated for the map, freeing a block not in use, no space.
    Io(String),
}

impl From<MapError> for TestError {
    fn from(e: MapError) -> Self {
        Self::Map(e)
    }
}

/// Blocks in memory, with an allocator that knows which blocks the map
/// owns (`meta`) and which the file's data owns (`data`).
#[derive(Debug, Clone)]
pub struct MemIo {
    /// Block size in bytes.
    pub block_size: usize,
    /// The blocks written, by number.
    pub blocks: HashMap<u64, Vec<u8>>,
    /// Allocatable blocks: `first .. end`, less `meta` and `data`.
    pub first: u64,
    /// The end of the allocatable blocks.
    pub end: u64,
    /// Blocks the map owns (tree nodes, indirect blocks).
    pub meta: BTreeSet<u64>,
    /// Blocks the file's data owns.
    pub data: BTreeSet<u64>,
    /// Data blocks freed through `free_blocks(.., false)`, in order.
    pub freed_data: Vec<u64>,
    /// Map blocks freed.
    pub freed_meta: Vec<u64>,
    /// Map blocks allocated.
    pub allocated_meta: Vec<u64>,
    /// When set, `alloc_block` fails after this many more allocations.
    pub alloc_budget: Option<usize>,
    /// Number of block writes.
    pub writes: usize,
    /// Number of block reads.
    pub reads: usize,
}

impl MemIo {
    /// All data blocks of `ctx` free.
    pub fn new(ctx: &MapCtx) -> Self {
        Self {
            block_size: ctx.block_size as usize,
            blocks: HashMap::new(),
            first: u64::from(ctx.first_data_block) + 1,
            end: ctx.blocks_count,
            meta: BTreeSet::new(),
            data: BTreeSet::new(),
            freed_data: Vec::new(),
            freed_meta: Vec::new(),
            allocated_meta: Vec::new(),
            alloc_budget: None,
            writes: 0,
            reads: 0,
        }
    }

    /// Whether `b` is neither map nor data.
    pub fn is_free(&self, b: u64) -> bool {
        (self.first..self.end).contains(&b) && !self.meta.contains(&b) && !self.data.contains(&b)
    }

    /// The first run of `len` free blocks from `from`, if any before the end.
    fn free_run_from(&self, mut from: u64, len: u64) -> Option<u64> {
        from = from.max(self.first);
        while from + len <= self.end {
            let busy = self.meta.range(from..from + len).next_back().max(self.data.range(from..from + len).next_back());
            match busy {
                Some(&b) => from = b + 1,
                None => return Some(from),
            }
        }
        None
    }

    /// Allocates `len` contiguous data blocks at or after `goal` (wrapping), if any.
    pub fn alloc_data(&mut self, goal: u64, len: u64) -> Option<u64> {
        let start = self.free_run_from(goal, len).or_else(|| self.free_run_from(self.first, len))?;
        self.data.extend(start..start + len);
        Some(start)
    }

    /// Marks blocks as data owned by the file (for maps built by hand).
    pub fn claim_data(&mut self, start: u64, len: u64) {
        for b in start..start + len {
            assert!(self.is_free(b), "block {b} claimed twice");
            self.data.insert(b);
        }
    }

    /// Stores a map block built by hand, owned by the map.
    pub fn put_meta(&mut self, block: u64, bytes: Vec<u8>) {
        assert!(self.is_free(block), "block {block} claimed twice");
        self.meta.insert(block);
        self.blocks.insert(block, bytes);
    }

    /// Takes the data blocks freed since the last call, as a set.
    pub fn take_freed_data(&mut self) -> BTreeSet<u64> {
        let set: BTreeSet<u64> = self.freed_data.iter().copied().collect();
        assert_eq!(set.len(), self.freed_data.len(), "a data block freed twice");
        self.freed_data.clear();
        set
    }
}

impl MapIo for MemIo {
    type Error = TestError;

    fn read_block(&mut self, block: u64, buf: &mut [u8]) -> Result<(), TestError> {
        let b = self.blocks.get(&block).ok_or_else(|| TestError::Io(format!("read of block {block}, never written")))?;
        if !self.meta.contains(&block) {
            return Err(TestError::Io(format!("read of block {block}, not a map block")));
        }
        buf.copy_from_slice(b);
        self.reads += 1;
        Ok(())
    }

    fn write_block(&mut self, block: u64, data: &[u8]) -> Result<(), TestError> {
        if !self.meta.contains(&block) {
            return Err(TestError::Io(format!("write to block {block}, not allocated for the map")));
        }
        if data.len() != self.block_size {
            return Err(TestError::Io(format!("write of {} bytes", data.len())));
        }
        self.blocks.insert(block, data.to_vec());
        self.writes += 1;
        Ok(())
    }

    fn alloc_block(&mut self, goal: u64) -> Result<u64, TestError> {
        if let Some(n) = &mut self.alloc_budget {
            if *n == 0 {
                return Err(TestError::Io("no space (budget)".into()));
            }
            *n -= 1;
        }
        let b = self.free_run_from(goal, 1).or_else(|| self.free_run_from(self.first, 1));
        let b = b.ok_or_else(|| TestError::Io("no space".into()))?;
        self.meta.insert(b);
        self.allocated_meta.push(b);
        Ok(b)
    }

    fn free_blocks(&mut self, start: u64, count: u64, meta: bool) -> Result<(), TestError> {
        for b in start..start + count {
            let owned = if meta { self.meta.remove(&b) } else { self.data.remove(&b) };
            if !owned {
                return Err(TestError::Io(format!("free of block {b} (meta {meta}) not owned")));
            }
            if meta {
                self.blocks.remove(&b);
                self.freed_meta.push(b);
            } else {
                self.freed_data.push(b);
            }
        }
        Ok(())
    }
}

/// A block context.
pub fn ctx(block_size: u32, csum: bool) -> MapCtx {
    MapCtx { block_size, first_data_block: u32::from(block_size == 1024), blocks_count: 400_000, csum_seed: csum.then_some(0x1234_5678) }
}

/// What the independent checker found in a map.
#[derive(Debug, Default, Clone)]
pub struct Found {
    /// Logical block -> (physical block, unwritten).
    pub blocks: BTreeMap<u32, (u64, bool)>,
    /// Map blocks (tree nodes or indirect blocks).
    pub map_blocks: BTreeSet<u64>,
    /// Tree depth (0 for indirect maps).
    pub depth: u16,
    /// Per level (0 = root) of a tree: (entries, e2fsck's "max entries" with its
    /// one-free-slot allowance for non-full blocks), as e2fsck's pass 1 adds them up.
    pub levels: Vec<(usize, usize)>,
    /// Number of leaf extents.
    pub extents: usize,
}

/// The bytes of a fresh tree root: magic, 0 entries, eh_max 4, depth 0, rest zero.
pub fn fresh_root() -> [u8; 60] {
    let mut r = [0u8; 60];
    r[0] = 0x0A;
    r[1] = 0xF3;
    r[4] = 4;
    r
}

/// Decodes and checks an extent tree with `ext4-ondisk` only. Panics with
/// a message on any broken invariant.
pub fn check_tree(root: &[u8; 60], ctx: &MapCtx, io: &MemIo) -> Found {
    check_tree_with(root, ctx, &mut |b| io.blocks.get(&b).cloned())
}

/// As [`check_tree`], reading blocks through `read`.
pub fn check_tree_with(root: &[u8; 60], ctx: &MapCtx, read: &mut dyn FnMut(u64) -> Option<Vec<u8>>) -> Found {
    let node = ExtentNode::parse(root).expect("root parses");
    assert_eq!(node.header.max, 4, "root eh_max");
    let mut found = Found { depth: node.header.depth, ..Found::default() };
    found.levels = vec![(0, 0); usize::from(node.header.depth) + 1];
    if node.header.entries == 0 {
        assert_eq!(root, &fresh_root(), "an empty tree is a fresh root");
    }
    walk(root, None, node.header.depth, None, None, 0, ctx, read, &mut found);
    if node.header.depth > 0 {
        let level1 = found.levels[1].0;
        assert!(level1 > 4, "depth {} but the root's children hold only {level1} entries", node.header.depth);
    }
    found
}

#[allow(clippy::too_many_arguments)]
fn walk(
    bytes: &[u8],
    block: Option<u64>,
    depth: u16,
    key: Option<u32>,
    next: Option<u32>,
    level: usize,
    ctx: &MapCtx,
    read: &mut dyn FnMut(u64) -> Option<Vec<u8>>,
    found: &mut Found,
) {
    let node = ExtentNode::parse(bytes).unwrap_or_else(|e| panic!("node {block:?}: {e}"));
    assert_eq!(node.header.depth, depth, "node {block:?} depth");
    let entries = usize::from(node.header.entries);
    let max = usize::from(node.header.max);
    if let Some(b) = block {
        assert_eq!(node.header.max, node_capacity(ctx.block_size as usize, true), "node {b} eh_max");
        assert!(entries > 0, "node {b} is empty");
        if let Some(seed) = ctx.csum_seed {
            verify_extent_block(seed, bytes, &node).unwrap_or_else(|e| panic!("node {b}: {e}"));
        }
        assert!(found.map_blocks.insert(b), "node {b} reached twice");
    }
    let stat = &mut found.levels[level];
    stat.0 += entries;
    stat.1 += if level > 0 && entries < max { max - 1 } else { max };
    let limit = next.map_or(0xFFFF_FFFF, u64::from);
    let mut prev_end = 0u64;
    if node.is_leaf() {
        for (i, e) in node.extents().enumerate() {
            if i == 0 {
                if let Some(k) = key {
                    assert_eq!(e.logical, k, "node {block:?}: first extent vs index key");
                }
            }
            assert!(e.len > 0 && e.len <= if e.unwritten { UNWRITTEN_MAX_LEN } else { INIT_MAX_LEN });
            assert!(u64::from(e.logical) >= prev_end, "node {block:?}: extents out of order");
            assert!(e.logical_end() <= limit, "node {block:?}: extent beyond parent's range");
            assert!(e.start > u64::from(ctx.first_data_block) && e.start + u64::from(e.len) <= ctx.blocks_count);
            prev_end = e.logical_end();
            found.extents += 1;
            for k in 0..e.len {
                let old = found.blocks.insert(e.logical + k, (e.start + u64::from(k), e.unwritten));
                assert!(old.is_none(), "logical block mapped twice");
            }
        }
        return;
    }
    let idx: Vec<_> = node.indexes().collect();
    for (i, ix) in idx.iter().enumerate() {
        if i == 0 {
            if let Some(k) = key {
                assert_eq!(ix.logical, k, "node {block:?}: first index vs parent key");
            }
        } else {
            assert!(ix.logical > idx[i - 1].logical, "node {block:?}: index keys out of order");
        }
        assert!(u64::from(ix.logical) < limit, "node {block:?}: index beyond parent's range");
        let child_next = idx.get(i + 1).map(|n| n.logical).or(next);
        let child = read(ix.leaf).unwrap_or_else(|| panic!("node block {} missing", ix.leaf));
        walk(&child, Some(ix.leaf), depth - 1, Some(ix.logical), child_next, level + 1, ctx, read, found);
    }
}

/// Whether e2fsck would call the tree shorter or narrower than needed
/// (e2fsck/extents.c, `e2fsck_should_rebuild_extents`): true when clean.
pub fn e2fsck_shape_ok(found: &Found, block_size: u32) -> bool {
    let per_block = (block_size as usize - 12) / 12;
    for (i, &(num, max)) in found.levels.iter().enumerate() {
        if max.saturating_sub(num) > per_block {
            return false;
        }
        if found.levels[..i].iter().any(|&(_, m)| num < m) {
            return false;
        }
    }
    true
}

/// Decodes an indirect map with `ext4-ondisk` only; checks that no
/// reachable indirect block is all zero and none is reached twice.
pub fn check_indirect(root: &[u8; 60], ctx: &MapCtx, io: &MemIo) -> Found {
    check_indirect_with(root, ctx, &mut |b| io.blocks.get(&b).cloned())
}

/// As [`check_indirect`], reading blocks through `read`.
pub fn check_indirect_with(root: &[u8; 60], ctx: &MapCtx, read: &mut dyn FnMut(u64) -> Option<Vec<u8>>) -> Found {
    let p = u64::from(ctx.block_size / 4);
    let mut found = Found::default();
    let mut base = 12u64;
    for i in 0..15usize {
        let ptr = ext4_fs::ondisk::get_u32(root, 4 * i);
        let (level, b) = if i < 12 { (0, i as u64) } else { (i as u32 - 11, base) };
        if i >= 12 {
            base += p.pow(level);
        }
        if ptr != 0 {
            ind_walk(u64::from(ptr), level, b, p, read, &mut found);
        }
    }
    found
}

fn ind_walk(ptr: u64, level: u32, base: u64, p: u64, read: &mut dyn FnMut(u64) -> Option<Vec<u8>>, found: &mut Found) {
    if level == 0 {
        found.blocks.insert(base as u32, (ptr, false));
        return;
    }
    assert!(found.map_blocks.insert(ptr), "indirect block {ptr} reached twice");
    let buf = read(ptr).unwrap_or_else(|| panic!("indirect block {ptr} missing"));
    assert!(buf.iter().any(|&b| b != 0), "indirect block {ptr} is all zero");
    for i in 0..p {
        let c = ext4_fs::ondisk::get_u32(&buf, 4 * i as usize);
        if c != 0 {
            ind_walk(u64::from(c), level - 1, base + i * p.pow(level - 1), p, read, found);
        }
    }
}

/// Maximal runs of a block model, as `for_each_run` must report them.
pub fn model_runs(model: &BTreeMap<u32, (u64, bool)>) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    for (&l, &(p, u)) in model {
        if let Some(r) = out.last_mut() {
            if r.logical_end() == u64::from(l) && r.physical + u64::from(r.len) == p && r.unwritten == u {
                r.len += 1;
                continue;
            }
        }
        out.push(Run { logical: l, physical: p, len: 1, unwritten: u });
    }
    out
}

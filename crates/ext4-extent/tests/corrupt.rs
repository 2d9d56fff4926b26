//! One test per check: take a valid map built by hand, damage one field,
//! and assert the exact error. Also the requests the map refuses.

use ext4_testkit::extent_check as common;

use std::ops::ControlFlow;

use common::{MemIo, TestError};
use ext4_extent::{Corruption, Lookup, MapCtx, MapError, MapIo, MapKind, Run, tree};
use ext4_ondisk::extent::{
    Extent, ExtentIndex, NodeHeader, node_capacity, set_extent_block_checksum, write_extent, write_header, write_index,
};
use ext4_ondisk::{FormatError, put_u16, put_u32};

const CHILD: u64 = 500;
const LEAF_A: u64 = 600;
const LEAF_B: u64 = 601;

fn ctx() -> MapCtx {
    common::ctx(1024, true)
}

fn ext(logical: u32, len: u32, start: u64) -> Extent {
    Extent { logical, len, start, unwritten: false }
}

/// A node's bytes: `len` bytes, full capacity, the given entries.
fn leaf_bytes(len: usize, depth: u16, extents: &[Extent]) -> Vec<u8> {
    let mut b = vec![0u8; len];
    let max = if len == 60 { 4 } else { node_capacity(len, true) };
    write_header(&mut b, NodeHeader { entries: extents.len() as u16, max, depth, generation: 0 });
    extents.iter().enumerate().for_each(|(i, e)| write_extent(&mut b, i, e));
    b
}

fn index_bytes(len: usize, depth: u16, idx: &[ExtentIndex]) -> Vec<u8> {
    let mut b = vec![0u8; len];
    let max = if len == 60 { 4 } else { node_capacity(len, true) };
    write_header(&mut b, NodeHeader { entries: idx.len() as u16, max, depth, generation: 0 });
    idx.iter().enumerate().for_each(|(i, e)| write_index(&mut b, i, e));
    b
}

fn root_of(bytes: Vec<u8>) -> [u8; 60] {
    bytes.try_into().expect("60 bytes")
}

/// A depth-2 tree: root -> index block CHILD -> leaves LEAF_A (0..10, 20..30)
/// and LEAF_B (100..110), all checksummed.
fn depth2() -> ([u8; 60], MemIo) {
    let c = ctx();
    let mut io = MemIo::new(&c);
    let put = |io: &mut MemIo, block: u64, mut bytes: Vec<u8>| {
        set_extent_block_checksum(c.csum_seed.unwrap(), &mut bytes);
        io.put_meta(block, bytes);
    };
    put(&mut io, LEAF_A, leaf_bytes(1024, 0, &[ext(0, 10, 1000), ext(20, 10, 1020)]));
    put(&mut io, LEAF_B, leaf_bytes(1024, 0, &[ext(100, 10, 1100)]));
    let idx = [ExtentIndex { logical: 0, leaf: LEAF_A }, ExtentIndex { logical: 100, leaf: LEAF_B }];
    put(&mut io, CHILD, index_bytes(1024, 1, &idx));
    io.claim_data(1000, 10);
    io.claim_data(1020, 10);
    io.claim_data(1100, 10);
    let root = root_of(index_bytes(60, 2, &[ExtentIndex { logical: 0, leaf: CHILD }]));
    (root, io)
}

/// Reads the whole tree; the first error, if any.
fn read_all(root: &[u8; 60], io: &mut MemIo) -> Result<(), TestError> {
    ext4_extent::for_each_run(MapKind::Extents, root, &ctx(), io, |_| ControlFlow::Continue(()))
}

fn corrupt(block: Option<u64>, reason: impl Into<Corruption>) -> Result<(), TestError> {
    Err(TestError::Map(MapError::Corrupt { block, reason: reason.into() }))
}

/// Rewrites block `b` with `f` applied, re-checksummed unless `keep_csum`.
fn damage(io: &mut MemIo, b: u64, keep_csum: bool, f: impl FnOnce(&mut Vec<u8>)) {
    let bytes = io.blocks.get_mut(&b).unwrap();
    f(bytes);
    if !keep_csum {
        set_extent_block_checksum(ctx().csum_seed.unwrap(), bytes);
    }
}

/// Damages block `b` of the depth-2 tree with `f` and checks the error.
fn check_block(b: u64, f: impl FnOnce(&mut Vec<u8>), want: Result<(), TestError>) {
    let (root, mut io) = depth2();
    damage(&mut io, b, false, f);
    assert_eq!(read_all(&root, &mut io), want);
}

/// Damages the root of the depth-2 tree with `f` and checks the error.
fn check_root(f: impl FnOnce(&mut [u8; 60]), want: Result<(), TestError>) {
    let (mut root, mut io) = depth2();
    f(&mut root);
    assert_eq!(read_all(&root, &mut io), want);
}

fn entry(i: usize) -> usize {
    12 * (i + 1)
}

#[test]
fn intact_tree_reads() {
    let (root, mut io) = depth2();
    assert_eq!(read_all(&root, &mut io), Ok(()));
    let l = ext4_extent::lookup(MapKind::Extents, &root, &ctx(), &mut io, 50).unwrap();
    assert_eq!(l, Lookup::Hole { next: Some(100) });
}

#[test]
fn bad_magic() {
    check_root(
        |r| put_u16(r, 0, 0xF30B),
        corrupt(None, FormatError::BadMagic { structure: ext4_ondisk::Structure::ExtentNode, found: 0xF30B }),
    );
    let want = corrupt(Some(LEAF_B), FormatError::BadMagic { structure: ext4_ondisk::Structure::ExtentNode, found: 0 });
    check_block(LEAF_B, |b| put_u16(b, 0, 0), want);
}

fn bad_field(block: Option<u64>, field: &str) -> impl Fn(&Result<(), TestError>) -> bool + '_ {
    move |r| {
        matches!(r, Err(TestError::Map(MapError::Corrupt { block: b, reason: Corruption::Format(FormatError::BadField { field: f, .. }) }))
            if *b == block && *f == field)
    }
}

#[test]
fn bad_header_fields() {
    let (mut root, mut io) = depth2();
    put_u16(&mut root, 2, 5); // eh_entries above eh_max
    assert!(bad_field(None, "eh_entries")(&read_all(&root, &mut io)));
    let (mut root, mut io) = depth2();
    put_u16(&mut root, 4, 0); // eh_max 0
    assert!(bad_field(None, "eh_max")(&read_all(&root, &mut io)));
    let (mut root, mut io) = depth2();
    put_u16(&mut root, 6, 6); // deeper than 5
    assert!(bad_field(None, "eh_depth")(&read_all(&root, &mut io)));
    let (root, mut io) = depth2();
    damage(&mut io, CHILD, true, |b| put_u16(b, 4, 85)); // eh_max beyond the block
    assert!(bad_field(Some(CHILD), "eh_max")(&read_all(&root, &mut io)));
}

#[test]
fn checksum_mismatch_names_the_block() {
    let (root, mut io) = depth2();
    damage(&mut io, LEAF_A, true, |b| b[100] ^= 1); // an unused entry slot, still covered
    let r = read_all(&root, &mut io);
    assert!(
        matches!(
            r,
            Err(TestError::Map(MapError::Corrupt { block: Some(LEAF_A), reason: Corruption::Format(FormatError::Checksum { .. }) }))
        ),
        "{r:?}"
    );
    // Without metadata_csum the same bytes read.
    let c = MapCtx { csum_seed: None, ..ctx() };
    let r = ext4_extent::for_each_run(MapKind::Extents, &root, &c, &mut io, |_| ControlFlow::Continue(()));
    assert_eq!(r, Ok(()));
}

#[test]
fn child_depth_must_be_parent_minus_one() {
    check_block(LEAF_A, |b| put_u16(b, 6, 1), corrupt(Some(LEAF_A), Corruption::DepthMismatch { expected: 0, found: 1 }));
    // A child pointing back at its parent is refused the same way: no cycle.
    let (root, mut io) = depth2();
    damage(&mut io, CHILD, false, |b| put_u32(b, entry(0) + 4, CHILD as u32));
    assert_eq!(read_all(&root, &mut io), corrupt(Some(CHILD), Corruption::DepthMismatch { expected: 0, found: 1 }));
}

#[test]
fn empty_nodes() {
    check_block(LEAF_B, |b| put_u16(b, 2, 0), corrupt(Some(LEAF_B), Corruption::EmptyNode));
    check_root(|r| put_u16(r, 2, 0), corrupt(None, Corruption::EmptyNode));
}

#[test]
fn zero_length_extent() {
    check_block(LEAF_A, |b| put_u16(b, entry(1) + 4, 0), corrupt(Some(LEAF_A), Corruption::ZeroLength { logical: 20 }));
}

#[test]
fn extents_out_of_order_or_overlapping() {
    // Second extent starts inside the first.
    check_block(LEAF_A, |b| put_u32(b, entry(1), 5), corrupt(Some(LEAF_A), Corruption::OutOfOrder { logical: 5, previous_end: 10 }));
    // Index keys not increasing (the first child then also mismatches; order is checked first).
    check_block(CHILD, |b| put_u32(b, entry(1), 0), corrupt(Some(CHILD), Corruption::OutOfOrder { logical: 0, previous_end: 1 }));
}

#[test]
fn index_key_must_match_child() {
    check_block(CHILD, |b| put_u32(b, entry(1), 99), corrupt(Some(LEAF_B), Corruption::IndexKeyMismatch { key: 99, first: 100 }));
}

#[test]
fn child_beyond_next_key() {
    // LEAF_A's second extent now reaches block 100, where LEAF_B's range starts.
    check_block(LEAF_A, |b| put_u16(b, entry(1) + 4, 81), corrupt(Some(LEAF_A), Corruption::BeyondParent { end: 101, limit: 100 }));
}

#[test]
fn extent_beyond_last_logical_block() {
    let c = ctx();
    let mut io = MemIo::new(&c);
    let root = root_of(leaf_bytes(60, 0, &[ext(0xFFFF_FFF0, 16, 1000)]));
    let r = ext4_extent::lookup(MapKind::Extents, &root, &c, &mut io, 0);
    assert_eq!(r.map(|_| ()), corrupt(None, Corruption::BeyondMaxLogical { logical: 0xFFFF_FFF0, len: 16 }));
}

#[test]
fn pointers_outside_data_blocks() {
    // Block 1 is the superblock's block with 1k blocks (s_first_data_block).
    check_block(LEAF_B, |b| put_u32(b, entry(0) + 8, 1), corrupt(Some(LEAF_B), Corruption::BadPointer { pointer: 1, count: 10 }));
    // Runs past s_blocks_count.
    check_block(
        LEAF_B,
        |b| put_u32(b, entry(0) + 8, 399_995),
        corrupt(Some(LEAF_B), Corruption::BadPointer { pointer: 399_995, count: 10 }),
    );
    // Index pointing outside.
    check_root(|r| put_u32(r, entry(0) + 4, 0), corrupt(None, Corruption::BadPointer { pointer: 0, count: 1 }));
}

#[test]
fn indirect_pointers_outside_data_blocks() {
    let c = ctx();
    let mut io = MemIo::new(&c);
    let mut root = [0u8; 60];
    put_u32(&mut root, 0, 400_000);
    let r = ext4_extent::lookup(MapKind::Indirect, &root, &c, &mut io, 0).map(|_| ());
    assert_eq!(r, corrupt(None, Corruption::BadPointer { pointer: 400_000, count: 1 }));
    let mut ind = vec![0u8; 1024];
    put_u32(&mut ind, 8, 1);
    io.put_meta(700, ind);
    let mut root = [0u8; 60];
    put_u32(&mut root, 4 * 12, 700);
    let r = ext4_extent::lookup(MapKind::Indirect, &root, &c, &mut io, 14).map(|_| ());
    assert_eq!(r, corrupt(Some(700), Corruption::BadPointer { pointer: 1, count: 1 }));
}

#[test]
fn indirect_block_referenced_twice() {
    let c = ctx();
    let mut io = MemIo::new(&c);
    let mut ind = vec![0u8; 1024];
    put_u32(&mut ind, 0, 5000);
    io.put_meta(700, ind);
    // The double indirect block points twice at the same indirect block.
    let mut dind = vec![0u8; 1024];
    put_u32(&mut dind, 0, 700);
    put_u32(&mut dind, 4, 700);
    io.put_meta(701, dind);
    let mut root = [0u8; 60];
    put_u32(&mut root, 4 * 13, 701);
    assert_eq!(read_all_kind(MapKind::Indirect, &root, &mut io), corrupt(Some(701), Corruption::SharedBlock { block: 700 }));
    // The single indirect block is also the double's child.
    put_u32(&mut root, 4 * 12, 700);
    put_u32(&mut io.blocks.get_mut(&701).unwrap()[..], 4, 0);
    assert_eq!(read_all_kind(MapKind::Indirect, &root, &mut io), corrupt(Some(701), Corruption::SharedBlock { block: 700 }));
}

fn read_all_kind(kind: MapKind, root: &[u8; 60], io: &mut MemIo) -> Result<(), TestError> {
    ext4_extent::for_each_run(kind, root, &ctx(), io, |_| ControlFlow::Continue(()))
}

/// Requests the map refuses, each leaving it unchanged.
#[test]
fn refused_requests() {
    let (root, io) = depth2();
    let c = ctx();
    let check = |kind: MapKind, run: Run, want: MapError| {
        let (mut r, mut i) = (root, io.clone());
        if kind == MapKind::Indirect {
            r = [0; 60];
        }
        let before = r;
        let got = ext4_extent::map_range(kind, &mut r, &c, &mut i, run);
        assert_eq!(got, Err(TestError::Map(want)));
        assert_eq!(r, before);
        assert_eq!(i.blocks, io.blocks);
    };
    let run = |logical, physical, len, unwritten| Run { logical, physical, len, unwritten };
    check(MapKind::Extents, run(25, 5000, 1, false), MapError::AlreadyMapped { logical: 25 });
    check(MapKind::Extents, run(40, 5000, 70, false), MapError::AlreadyMapped { logical: 100 });
    check(MapKind::Extents, run(0xFFFF_FFFE, 5000, 2, false), MapError::BeyondMap { end: 1 << 32, limit: 0xFFFF_FFFF });
    check(MapKind::Extents, run(40, 1, 1, false), MapError::BadPhysical { start: 1, len: 1 });
    check(MapKind::Extents, run(40, 399_999, 2, false), MapError::BadPhysical { start: 399_999, len: 2 });
    check(MapKind::Indirect, run(0, 5000, 1, true), MapError::UnwrittenOnIndirect);
    let limit = ext4_extent::indirect::max_logical_blocks(1024);
    check(MapKind::Indirect, run(limit as u32, 5000, 1, false), MapError::BeyondMap { end: limit + 1, limit });
    let bad = MapCtx { block_size: 1000, ..c };
    let (mut r, mut i) = (root, io.clone());
    let got = ext4_extent::map_range(MapKind::Extents, &mut r, &bad, &mut i, run(40, 5000, 1, false));
    assert_eq!(got, Err(TestError::Map(MapError::BadBlockSize { block_size: 1000 })));
}

/// An allocator handing out a block outside the filesystem is caught.
#[test]
fn bad_allocation_is_refused() {
    struct BadAlloc(MemIo);
    impl MapIo for BadAlloc {
        type Error = TestError;
        fn read_block(&mut self, b: u64, buf: &mut [u8]) -> Result<(), TestError> {
            self.0.read_block(b, buf)
        }
        fn write_block(&mut self, b: u64, d: &[u8]) -> Result<(), TestError> {
            self.0.write_block(b, d)
        }
        fn alloc_block(&mut self, _goal: u64) -> Result<u64, TestError> {
            Ok(1 << 40)
        }
        fn free_blocks(&mut self, s: u64, n: u64, m: bool) -> Result<(), TestError> {
            self.0.free_blocks(s, n, m)
        }
    }
    let c = ctx();
    let mut io = BadAlloc(MemIo::new(&c));
    let mut root = [0u8; 60];
    let got =
        ext4_extent::map_range(MapKind::Indirect, &mut root, &c, &mut io, Run { logical: 20, physical: 5000, len: 1, unwritten: false });
    assert_eq!(got, Err(TestError::Map(MapError::BadPhysical { start: 1 << 40, len: 1 })));
    tree::init(&mut root);
    for k in 0..4 {
        let run = Run { logical: 2 * k, physical: 5000 + u64::from(k) * 2, len: 1, unwritten: false };
        ext4_extent::map_range(MapKind::Extents, &mut root, &c, &mut io, run).unwrap();
    }
    let got =
        ext4_extent::map_range(MapKind::Extents, &mut root, &c, &mut io, Run { logical: 20, physical: 6000, len: 1, unwritten: false });
    assert_eq!(got, Err(TestError::Map(MapError::BadPhysical { start: 1 << 40, len: 1 })));
}

/// A depth-5 tree whose path to its last leaf is full at every level:
/// appending one more extent would need depth 6.
#[test]
fn growth_beyond_depth_five_is_refused() {
    let c = ctx();
    let mut io = MemIo::new(&c);
    let cap = usize::from(node_capacity(1024, true));
    let seed = c.csum_seed.unwrap();
    // Leaf: `cap` extents of one block at 10_000, 10_002, ...
    let first_leaf_key = 10_000u32;
    let extents: Vec<Extent> = (0..cap as u32).map(|i| ext(first_leaf_key + 2 * i, 1, 20_000 + u64::from(i))).collect();
    let mut bytes = leaf_bytes(1024, 0, &extents);
    set_extent_block_checksum(seed, &mut bytes);
    let mut child = (1000u64, first_leaf_key);
    io.put_meta(child.0, bytes);
    // Each level: a full node whose last entry is the path child; the other
    // entries point at blocks never read.
    for depth in 1..=4u16 {
        let keys = (0..cap as u32).map(|i| child.1 - (cap as u32 - 1) + i);
        let idx: Vec<ExtentIndex> = keys
            .enumerate()
            .map(|(i, k)| ExtentIndex { logical: k, leaf: if i == cap - 1 { child.0 } else { 30_000 + i as u64 } })
            .collect();
        let mut bytes = index_bytes(1024, depth, &idx);
        set_extent_block_checksum(seed, &mut bytes);
        let block = 1000 + u64::from(depth);
        io.put_meta(block, bytes);
        child = (block, idx[0].logical);
    }
    let idx: Vec<ExtentIndex> =
        (0..4u32).map(|i| ExtentIndex { logical: child.1 - 3 + i, leaf: if i == 3 { child.0 } else { 31_000 } }).collect();
    let mut root = root_of(index_bytes(60, 5, &idx));
    io.claim_data(20_000, cap as u64);
    let got = ext4_extent::map_range(
        MapKind::Extents,
        &mut root,
        &c,
        &mut io,
        Run { logical: 50_000, physical: 40_000, len: 1, unwritten: false },
    );
    assert_eq!(got, Err(TestError::Map(MapError::TooDeep)));
}

//! Property tests: random map / unmap / mark-written / lookup sequences on
//! both kinds of maps, checked after every step against a block model, an
//! independent decoder of the on-disk bytes, and the allocator's books.

use ext4_testkit::extent_check as common;

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use common::{MemIo, TestError, check_indirect, check_tree, e2fsck_shape_ok, fresh_root, model_runs};
use ext4_extent::{Lookup, MapCtx, MapError, MapKind, Run, indirect, tree};
use proptest::prelude::*;

type Model = BTreeMap<u32, (u64, bool)>;

/// One step of a test.
#[derive(Debug, Clone)]
enum Op {
    /// Map `len` fresh data blocks at `logical`; `glue` puts them right
    /// after the physical block of `logical - 1` when possible (to merge).
    Map {
        logical: u32,
        len: u32,
        unwritten: bool,
        glue: bool,
        goal: u64,
    },
    Unmap {
        start: u32,
        len: u32,
    },
    Truncate {
        start: u32,
    },
    MarkWritten {
        start: u32,
        len: u32,
    },
    Lookup {
        logical: u32,
    },
}

/// A test state: one inode's map with its I/O and the model of it.
struct State {
    kind: MapKind,
    ctx: MapCtx,
    root: [u8; 60],
    io: MemIo,
    model: Model,
}

impl State {
    fn new(kind: MapKind, ctx: MapCtx) -> Self {
        let mut root = [0u8; 60];
        if kind == MapKind::Extents {
            tree::init(&mut root);
        }
        Self { kind, ctx, root, io: MemIo::new(&ctx), model: Model::new() }
    }

    fn limit(&self) -> u64 {
        match self.kind {
            MapKind::Extents => tree::MAX_LOGICAL_BLOCKS,
            MapKind::Indirect => indirect::max_logical_blocks(self.ctx.block_size),
        }
    }

    fn map(&mut self, run: Run) -> Result<(), TestError> {
        ext4_extent::map_range(self.kind, &mut self.root, &self.ctx, &mut self.io, run)
    }

    fn unmap(&mut self, start: u32, end: u64) -> Result<(), TestError> {
        ext4_extent::unmap_range(self.kind, &mut self.root, &self.ctx, &mut self.io, start, end)
    }

    fn lookup(&mut self, logical: u32) -> Lookup {
        ext4_extent::lookup(self.kind, &self.root, &self.ctx, &mut self.io, logical).expect("lookup")
    }

    /// Asserts that a refused request changed nothing.
    fn refused(&mut self, f: impl FnOnce(&mut Self) -> Result<(), TestError>, want: MapError) {
        let before = (self.root, self.io.blocks.clone(), self.io.meta.clone());
        let r = f(self);
        assert_eq!(r, Err(TestError::Map(want)));
        assert_eq!(self.root, before.0);
        assert_eq!(self.io.blocks, before.1);
        assert_eq!(self.io.meta, before.2);
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Map { logical, len, unwritten, glue, goal } => self.do_map(logical, len, unwritten, glue, goal),
            Op::Unmap { start, len } => self.do_unmap(start, u64::from(start) + u64::from(len)),
            Op::Truncate { start } => self.do_unmap(start, 1 << 32),
            Op::MarkWritten { start, len } => self.do_mark_written(start, len),
            Op::Lookup { logical } => self.check_lookup(logical),
        }
    }

    fn do_map(&mut self, logical: u32, len: u32, unwritten: bool, glue: bool, goal: u64) {
        let end = u64::from(logical) + u64::from(len);
        let probe = Run { logical, physical: 5000, len, unwritten };
        if self.kind == MapKind::Indirect && unwritten {
            return self.refused(|s| s.map(probe), MapError::UnwrittenOnIndirect);
        }
        if end > self.limit() {
            let limit = self.limit();
            return self.refused(|s| s.map(probe), MapError::BeyondMap { end, limit });
        }
        if let Some((&first, _)) = self.model.range(logical..).next().filter(|(l, _)| u64::from(**l) < end) {
            let physical = self.ctx.blocks_count - u64::from(len);
            return self.refused(|s| s.map(Run { physical, ..probe }), MapError::AlreadyMapped { logical: first });
        }
        let glued = logical.checked_sub(1).and_then(|l| self.model.get(&l)).map(|&(p, _)| p + 1);
        let goal = if glue { glued.unwrap_or(goal) } else { goal };
        let Some(physical) = self.io.alloc_data(goal, len.into()) else {
            return;
        };
        self.map(Run { logical, physical, len, unwritten }).expect("map_range");
        for k in 0..len {
            self.model.insert(logical + k, (physical + u64::from(k), unwritten));
        }
    }

    fn do_unmap(&mut self, start: u32, end: u64) {
        let gone: Vec<u32> = self.model.range(start..).map(|(&l, _)| l).take_while(|&l| u64::from(l) < end).collect();
        let want: std::collections::BTreeSet<u64> = gone.iter().map(|l| self.model[l].0).collect();
        self.unmap(start, end).expect("unmap_range");
        gone.iter().for_each(|l| {
            self.model.remove(l);
        });
        assert_eq!(self.io.take_freed_data(), want, "data blocks freed");
    }

    fn do_mark_written(&mut self, start: u32, len: u32) {
        if self.kind == MapKind::Indirect {
            return;
        }
        let end = u64::from(start) + u64::from(len);
        if end > tree::MAX_LOGICAL_BLOCKS {
            let r = |s: &mut Self| tree::mark_written(&mut s.root, &s.ctx, &mut s.io, start, len);
            return self.refused(r, MapError::BeyondMap { end, limit: tree::MAX_LOGICAL_BLOCKS });
        }
        tree::mark_written(&mut self.root, &self.ctx, &mut self.io, start, len).expect("mark_written");
        for (_, v) in self.model.range_mut(start..).take_while(|(l, _)| u64::from(**l) < end) {
            v.1 = false;
        }
        assert!(self.io.take_freed_data().is_empty());
    }

    /// `lookup` agrees with the model at `logical`.
    fn check_lookup(&mut self, logical: u32) {
        match self.lookup(logical) {
            Lookup::Mapped(run) => {
                assert_eq!(run.logical, logical);
                assert!(run.len >= 1);
                for k in 0..run.len {
                    let want = (run.physical + u64::from(k), run.unwritten);
                    assert_eq!(self.model.get(&(logical + k)), Some(&want), "lookup({logical}) run block {k}");
                }
            }
            Lookup::Hole { next } => {
                assert!(!self.model.contains_key(&logical), "lookup({logical}) says hole");
                let want = self.model.range(logical..).next().map(|(&l, _)| l);
                assert_eq!(next, want, "lookup({logical}) next");
            }
        }
    }

    /// Everything agrees: decoded map, runs, lookups, and the block books.
    fn check(&mut self) -> common::Found {
        let found = match self.kind {
            MapKind::Extents => check_tree(&self.root, &self.ctx, &self.io),
            MapKind::Indirect => check_indirect(&self.root, &self.ctx, &self.io),
        };
        assert_eq!(found.blocks, self.model, "decoded map vs model");
        if self.kind == MapKind::Extents {
            assert!(e2fsck_shape_ok(&found, self.ctx.block_size), "e2fsck would rebuild: {:?}", found.levels);
        }
        assert_eq!(found.map_blocks, self.io.meta, "map blocks reachable vs allocated");
        let mut runs = Vec::new();
        ext4_extent::for_each_run(self.kind, &self.root, &self.ctx, &mut self.io, |r| {
            runs.push(r);
            ControlFlow::Continue(())
        })
        .expect("for_each_run");
        assert_eq!(runs, model_runs(&self.model), "for_each_run vs model");
        let mut blocks = std::collections::BTreeSet::new();
        ext4_extent::for_each_map_block(self.kind, &self.root, &self.ctx, &mut self.io, |b| {
            blocks.insert(b);
            ControlFlow::Continue(())
        })
        .expect("for_each_map_block");
        assert_eq!(blocks, self.io.meta, "for_each_map_block vs allocated");
        let keys: Vec<u32> = self.model.keys().copied().collect();
        for l in [keys.first(), keys.last()].into_iter().flatten() {
            self.check_lookup(*l);
            self.check_lookup(l.saturating_sub(1));
            self.check_lookup(l.saturating_add(1));
        }
        if self.model.is_empty() {
            let empty = if self.kind == MapKind::Extents { fresh_root() } else { [0; 60] };
            assert_eq!(self.root, empty, "an empty map is a fresh one");
            assert!(self.io.meta.is_empty());
        }
        found
    }
}

fn logical(limit_region: u32) -> impl Strategy<Value = u32> {
    prop_oneof![
        6 => 0..600u32,
        2 => 0..4000u32,
        1 => limit_region..limit_region + 3000,
        1 => (u32::MAX - 40)..u32::MAX,
    ]
}

fn op(limit_region: u32) -> impl Strategy<Value = Op> {
    let len = prop_oneof![30 => 1..40u32, 4 => 1..300u32, 1 => 32760..32780u32];
    prop_oneof![
        6 => (logical(limit_region), len.clone(), any::<bool>(), any::<bool>(), 0..400_000u64)
            .prop_map(|(logical, len, unwritten, glue, goal)| Op::Map { logical, len, unwritten, glue, goal }),
        2 => (logical(limit_region), 1..500u32).prop_map(|(start, len)| Op::Unmap { start, len }),
        1 => logical(limit_region).prop_map(|start| Op::Truncate { start }),
        2 => (logical(limit_region), 1..200u32).prop_map(|(start, len)| Op::MarkWritten { start, len }),
        2 => logical(limit_region).prop_map(|logical| Op::Lookup { logical }),
    ]
}

fn run_ops(kind: MapKind, block_size: u32, csum: bool, ops: &[Op]) {
    let mut s = State::new(kind, common::ctx(block_size, csum));
    for op in ops {
        s.apply(op);
        s.check();
    }
    s.do_unmap(0, 1 << 32);
    s.check();
    assert!(s.io.data.is_empty(), "data blocks leaked");
}

fn cases(default: u32) -> ProptestConfig {
    ext4_testkit::prop::config(default, "model")
}

proptest! {
    #![proptest_config(cases(96))]

    #[test]
    fn extents_1k(ops in prop::collection::vec(op(60_000), 1..60), csum in any::<bool>()) {
        run_ops(MapKind::Extents, 1024, csum, &ops);
    }

    #[test]
    fn extents_4k(ops in prop::collection::vec(op(60_000), 1..60), csum in any::<bool>()) {
        run_ops(MapKind::Extents, 4096, csum, &ops);
    }

    /// Around 65,804 the 1k map passes from double to triple indirect blocks.
    #[test]
    fn indirect_1k(ops in prop::collection::vec(op(64_500), 1..60)) {
        run_ops(MapKind::Indirect, 1024, false, &ops);
    }

    /// Around 1,049,612 the 4k map passes from double to triple indirect blocks.
    #[test]
    fn indirect_4k(ops in prop::collection::vec(op(1_048_000), 1..60)) {
        run_ops(MapKind::Indirect, 4096, false, &ops);
    }
}

/// Maps `n` single-block extents at even logical blocks in the order given,
/// each far from the others physically, checking every `every` steps.
fn fill_sparse(s: &mut State, order: &[u32], every: usize) {
    for (i, &k) in order.iter().enumerate() {
        let goal = 2000 + 3 * u64::from(k);
        s.apply(&Op::Map { logical: 2 * k, len: 1, unwritten: k % 3 == 0, glue: false, goal });
        if i % every == every - 1 {
            s.check();
        }
    }
    s.check();
}

proptest! {
    #![proptest_config(cases(6))]

    /// 700 discontiguous extents in random order with 1k blocks: depth 2.
    #[test]
    fn deep_tree_random_order(
        order in Just((0..700u32).collect::<Vec<_>>()).prop_shuffle(),
        punches in prop::collection::vec((0..1400u32, 1..300u32), 1..12),
        csum in any::<bool>(),
    ) {
        let mut s = State::new(MapKind::Extents, common::ctx(1024, csum));
        fill_sparse(&mut s, &order, 25);
        prop_assert!(s.check().depth >= 2, "depth {}", s.check().depth);
        for (start, len) in punches {
            s.apply(&Op::MarkWritten { start, len: len / 2 });
            s.check();
            s.apply(&Op::Unmap { start, len });
            s.check();
        }
        s.do_unmap(0, 1 << 32);
        s.check();
        prop_assert!(s.io.data.is_empty());
    }
}

/// Appending and truncating from the end keep the tree in the shape e2fsck
/// wants (no "could be narrower / shorter"), through depth 2 and back.
#[test]
fn append_and_truncate_keep_e2fsck_shape() {
    for block_size in [1024, 4096] {
        let mut s = State::new(MapKind::Extents, common::ctx(block_size, true));
        let n = if block_size == 1024 { 800 } else { 1500 };
        let order: Vec<u32> = (0..n).collect();
        for &k in &order {
            s.apply(&Op::Map { logical: 2 * k, len: 1, unwritten: false, glue: false, goal: 2000 + 3 * u64::from(k) });
            let found = s.check();
            assert!(e2fsck_shape_ok(&found, block_size), "after {k} appends: {:?}", found.levels);
        }
        let found = s.check();
        assert!(found.depth >= 2);
        // One leaf write per append, a few more per split: no rebuild on the way.
        let nodes = found.map_blocks.len();
        assert!(s.io.writes <= n as usize + 3 * nodes, "{} writes for {n} appends and {nodes} nodes", s.io.writes);
        let mut end = 2 * n;
        while end > 0 {
            end = end.saturating_sub(37);
            s.do_unmap(end, 1 << 32);
            let found = s.check();
            assert!(e2fsck_shape_ok(&found, block_size), "after truncate to {end}: {:?}", found.levels);
        }
        assert_eq!(s.root, fresh_root());
    }
}

/// Depth 3 with 1k blocks (more than 4 * 84 * 84 extents): slow, so only
/// with `EXT4_EXTENT_SLOW=1`.
#[test]
fn depth_three_slow() {
    if std::env::var_os("EXT4_EXTENT_SLOW").is_none() {
        println!("SKIPPED: depth-3 tree test runs with EXT4_EXTENT_SLOW=1");
        return;
    }
    let mut s = State::new(MapKind::Extents, common::ctx(1024, true));
    let n = 30_000u32;
    // A fixed scramble of the order (multiplication by a unit mod n).
    let order: Vec<u32> = (0..n).map(|i| (u64::from(i) * 7919 % u64::from(n)) as u32).collect();
    s.io = MemIo::new(&MapCtx { blocks_count: 400_000, ..s.ctx });
    fill_sparse(&mut s, &order, 5000);
    let found = s.check();
    assert_eq!(found.depth, 3);
    println!(
        "{n} extents in scrambled order: {} reads, {} writes, {} node blocks allocated, {} nodes at the end",
        s.io.reads,
        s.io.writes,
        s.io.allocated_meta.len(),
        found.map_blocks.len()
    );
    for start in (0..2 * n).step_by(4999) {
        s.apply(&Op::Unmap { start, len: 3000 });
        s.check();
    }
    s.do_unmap(0, 1 << 32);
    s.check();
}

//! Extent tree reads over the tests' in-memory `MapIo` (4 KiB blocks,
//! `metadata_csum` on, so node checksums are verified on every read): lookup
//! of a random logical block in a depth-0 and a depth-2 tree, and a walk of
//! all runs. Run with `cargo bench -p ext4-extent`.

// criterion_group! declares an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::ops::ControlFlow;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ext4_extent::{Lookup, MapCtx, MapKind, Run, for_each_run, lookup, map_range};
use ext4_testkit::extent_check::{MemIo, check_tree, ctx, fresh_root};
use ext4_testkit::rng::Rng;

/// Logical blocks between the starts of two extents: 4 mapped, 4 a hole.
const STRIDE: u32 = 8;

/// A tree of `extents` extents of 4 blocks each, one every [`STRIDE`]
/// logical blocks, built through `map_range` and checked with the tests'
/// independent decoder to have depth `depth`.
fn tree(c: &MapCtx, extents: u32, depth: u16) -> ([u8; 60], MemIo) {
    let mut io = MemIo::new(c);
    let mut root = fresh_root();
    for i in 0..extents {
        let physical = io.alloc_data(0, 4).expect("space");
        let run = Run { logical: i * STRIDE, physical, len: 4, unwritten: false };
        map_range(MapKind::Extents, &mut root, c, &mut io, run).expect("map");
    }
    let found = check_tree(&root, c, &io);
    assert_eq!((found.depth, found.extents), (depth, extents as usize), "tree shape");
    (root, io)
}

fn extent_tree(c: &mut Criterion) {
    let mc = ctx(4096, true);
    let mut g = c.benchmark_group("extent");
    for (extents, depth) in [(4, 0), (3000, 2)] {
        let (root, mut io) = tree(&mc, extents, depth);
        let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
        let targets: Vec<u32> = (0..1024).map(|_| (rng.next_u64() % u64::from(extents * STRIDE)) as u32).collect();
        let mut i = 0;
        g.bench_function(BenchmarkId::new("lookup_random", format!("depth{depth}")), |b| {
            b.iter(|| {
                i = (i + 1) % targets.len();
                let r = lookup(MapKind::Extents, black_box(&root), &mc, &mut io, targets[i]).expect("lookup");
                matches!(r, Lookup::Mapped(_))
            })
        });
        g.bench_function(BenchmarkId::new("for_each_run", format!("depth{depth}")), |b| {
            b.iter(|| {
                let mut n = 0u32;
                for_each_run(MapKind::Extents, black_box(&root), &mc, &mut io, |_| {
                    n += 1;
                    ControlFlow::Continue(())
                })
                .expect("walk");
                assert_eq!(n, extents);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, extent_tree);
criterion_main!(benches);

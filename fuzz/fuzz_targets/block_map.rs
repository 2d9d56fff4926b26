//! Block map walks over fuzz bytes: extent trees and indirect maps (first
//! byte picks), through lookup, run and map-block iteration, then a map and
//! an unmap edit on whatever the bytes describe.
#![no_main]

use std::ops::ControlFlow;

use ext4_fs::extent::{self, MapCtx, MapKind, Run};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 61 {
        return;
    }
    let mode = data[0];
    let kind = if mode & 1 == 0 { MapKind::Extents } else { MapKind::Indirect };
    let block_size = if mode & 2 == 0 { 1024 } else { 4096 };
    let mut root = [0u8; 60];
    root.copy_from_slice(&data[1..61]);
    let mut io = ext4_fuzz::MemMap::new(block_size, &data[61..]);
    let ctx = MapCtx {
        block_size: block_size as u32,
        first_data_block: u32::from(block_size == 1024),
        blocks_count: 1 << 20,
        csum_seed: (mode & 4 != 0).then_some(0xdead_beef),
    };
    for logical in [0u32, 1, 11, 12, 13, 268, 1000, 65_536, 1 << 24, u32::MAX] {
        let _ = extent::lookup(kind, &root, &ctx, &mut io, logical);
    }
    // Fuzzed indirect blocks full of pointers describe millions of blocks:
    // the walks stop early (the same code runs, fewer times).
    let mut runs = 0;
    let _ = extent::for_each_run(kind, &root, &ctx, &mut io, |_| {
        runs += 1;
        if runs > 10_000 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    });
    let mut map_blocks = 0;
    let _ = extent::for_each_map_block(kind, &root, &ctx, &mut io, |_| {
        map_blocks += 1;
        if map_blocks > 10_000 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    });
    if mode & 8 != 0 {
        let logical = ext4_fuzz::word(data, 61) % 70_000;
        let run = Run { logical, physical: 9000, len: 1 + u32::from(mode >> 4), unwritten: false };
        let _ = extent::map_range(kind, &mut root, &ctx, &mut io, run);
        let _ = extent::unmap_range(kind, &mut root, &ctx, &mut io, logical / 2, u64::from(logical) + 40);
        let _ = extent::for_each_run(kind, &root, &ctx, &mut io, |_| ControlFlow::Continue(()));
    }
});

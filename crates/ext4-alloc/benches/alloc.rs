//! Bitmap searches of the allocator over one 32768-bit group bitmap (4 KiB
//! blocks) that is nearly full, half full or fragmented, and the Orlov group
//! choice over 8192 groups. Run with `cargo bench -p ext4-alloc`.

// criterion_group! declares an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ext4_alloc::bitmap::{count_free, find_free, find_free_run, set_range};
use ext4_alloc::group::{GroupCounts, group_for_dir, group_for_file};
use ext4_testkit::rng::Rng;

const BITS: usize = 32768;

/// The three bitmaps searched, by name.
fn bitmaps() -> Vec<(&'static str, Vec<u8>)> {
    // Nearly full: every bit used but 16 single free bits and one free run of 64 near the end.
    let mut nearly_full = vec![0xFFu8; BITS / 8];
    for i in 0..16 {
        let bit = 2003 * i + 1000;
        nearly_full[bit / 8] &= !(1 << (bit % 8));
    }
    nearly_full[(BITS - 256) / 8..(BITS - 256) / 8 + 8].fill(0);
    // Half full: the first half used, as after a sequential fill.
    let mut half = vec![0u8; BITS / 8];
    set_range(&mut half, 0, BITS / 2);
    // Fragmented: random used runs of 1..32 bits and free runs of 1..8 bits (about 80 % used).
    let mut frag = vec![0u8; BITS / 8];
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    let mut pos = 0;
    while pos < BITS {
        let used = (1 + rng.next_u64() % 32) as usize;
        set_range(&mut frag, pos, used.min(BITS - pos));
        pos += used + (1 + rng.next_u64() % 8) as usize;
    }
    vec![("nearly_full", nearly_full), ("half_full", half), ("fragmented", frag)]
}

fn bitmap_search(c: &mut Criterion) {
    let maps = bitmaps();
    let mut g = c.benchmark_group("bitmap");
    for (name, map) in &maps {
        // Goals spread over the group, as the block goals of different inodes are.
        let goals: Vec<usize> = (0..64).map(|i| i * 509 % BITS).collect();
        let mut i = 0;
        g.bench_with_input(BenchmarkId::new("find_free", name), map, |b, m| {
            b.iter(|| {
                i = (i + 1) % goals.len();
                find_free(black_box(m), BITS, goals[i])
            })
        });
        for want in [8, 256] {
            let mut i = 0;
            g.bench_with_input(BenchmarkId::new(format!("find_free_run_{want}"), name), map, |b, m| {
                b.iter(|| {
                    i = (i + 1) % goals.len();
                    find_free_run(black_box(m), BITS, goals[i], want)
                })
            });
        }
        g.bench_with_input(BenchmarkId::new("count_free", name), map, |b, m| b.iter(|| count_free(black_box(m), BITS)));
    }
    g.finish();
}

fn group_choice(c: &mut Criterion) {
    let mut rng = Rng::new(42);
    let groups: Vec<GroupCounts> = (0..8192)
        .map(|_| GroupCounts {
            free_blocks: (rng.next_u64() % 32768) as u32,
            free_inodes: (rng.next_u64() % 8192) as u32,
            used_dirs: (rng.next_u64() % 100) as u32,
        })
        .collect();
    let mut g = c.benchmark_group("group");
    g.bench_function("for_dir_orlov_8192_groups", |b| b.iter(|| group_for_dir(black_box(&groups), 17, true, 16, 12345)));
    g.bench_function("for_file_8192_groups", |b| b.iter(|| group_for_file(black_box(&groups), 17, 16)));
    g.finish();
}

criterion_group!(benches, bitmap_search, group_choice);
criterion_main!(benches);

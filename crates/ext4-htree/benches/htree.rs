//! Directory hot paths: the half-MD4 and TEA hashes of a 20-byte name, and
//! lookup and insert in an indexed directory of 10k entries (4 KiB blocks,
//! `metadata_csum` on) held in memory. Run with `cargo bench -p ext4-htree`.

// criterion_group! declares an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ext4_htree::{DirCtx, name_hash};
use ext4_ondisk::dx::HashVersion;
use ext4_testkit::mem::MemDir;

fn dir_ctx() -> DirCtx {
    DirCtx {
        block_size: 4096,
        csum_seed: Some(0x1234_5678),
        verify_checksums: true,
        filetype: true,
        dir_index: true,
        large_dir: false,
        hash_seed: [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476],
        default_hash: HashVersion::HalfMd4,
        unsigned_hash: false,
        inodes_count: 1 << 20,
    }
}

/// The `i`th name: 20 bytes, as a typical generated file name.
fn name(i: u32) -> Vec<u8> {
    format!("IMG_{i:08}_ed.jpeg").into_bytes()
}

const ENTRIES: u32 = 10_000;

/// A directory holding `name(0) .. name(ENTRIES)`, indexed.
fn directory(c: &DirCtx) -> MemDir {
    let mut dir = MemDir::from_blocks(c.block_size as usize, vec![ext4_htree::new_dir_block(c, 2, 2)], u32::MAX);
    let mut indexed = false;
    for i in 0..ENTRIES {
        ext4_htree::insert(c, &mut dir, &mut indexed, &name(i), 100 + i, 1).expect("insert");
    }
    assert!(indexed, "10k entries make an htree");
    dir
}

fn hashes(c: &mut Criterion) {
    let seed = dir_ctx().hash_seed;
    let n = name(1234);
    assert_eq!(n.len(), 20);
    let mut g = c.benchmark_group("hash");
    g.bench_function("half_md4_20b", |b| b.iter(|| name_hash(HashVersion::HalfMd4, black_box(&seed), black_box(&n))));
    g.bench_function("tea_20b", |b| b.iter(|| name_hash(HashVersion::Tea, black_box(&seed), black_box(&n))));
    g.finish();
}

fn htree(c: &mut Criterion) {
    let ctx = dir_ctx();
    let mut dir = directory(&ctx);
    let mut g = c.benchmark_group("htree_10k");
    // Names made before timing: hits spread over the directory, misses never inserted.
    let hits: Vec<(Vec<u8>, u32)> = (0..1024).map(|k| (k * 9973) % ENTRIES).map(|i| (name(i), 100 + i)).collect();
    let misses: Vec<Vec<u8>> = (0..1024).map(|k| name(ENTRIES + 1 + k * 9973)).collect();
    let mut k = 0;
    g.bench_function("lookup_hit", |b| {
        b.iter(|| {
            k = (k + 1) % hits.len();
            let found = ext4_htree::lookup(&ctx, &mut dir, true, black_box(&hits[k].0)).expect("lookup");
            assert_eq!(found.map(|f| f.inode), Some(hits[k].1));
        })
    });
    g.bench_function("lookup_miss", |b| {
        b.iter(|| {
            k = (k + 1) % misses.len();
            let found = ext4_htree::lookup(&ctx, &mut dir, true, black_box(&misses[k])).expect("lookup");
            assert!(found.is_none());
        })
    });
    // Each insert goes into a fresh copy of the 10k directory (copying is not timed).
    let mut k = 0u32;
    g.bench_function("insert", |b| {
        b.iter_batched_ref(
            || {
                k = (k + 1) % 1_000_000;
                (dir.clone(), name(ENTRIES + 1 + k))
            },
            |(d, n)| {
                let mut indexed = true;
                ext4_htree::insert(&ctx, d, &mut indexed, n, 42, 1).expect("insert");
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, hashes, htree);
criterion_main!(benches);

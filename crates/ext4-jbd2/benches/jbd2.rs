//! The journal's hot paths on an in-memory journal (4 KiB blocks, csum v3,
//! 64bit, revoke): encoding and committing transactions of 16 and of 256
//! metadata blocks, and scanning / recovering a journal holding 15
//! transactions of 256 blocks. Run with `cargo bench -p ext4-jbd2`.

// criterion_group! declares an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ext4_jbd2::format::{BlockType, CHECKSUM_CRC32C, Header, INCOMPAT_64BIT, INCOMPAT_CSUM_V3, INCOMPAT_REVOKE, JournalSuperblock};
use ext4_jbd2::{CommitTime, JournalWriter, MemoryJournal, scan, write_superblock};

const BS: u32 = 4096;
const JOURNAL_BLOCKS: u32 = 8192;
const TIME: CommitTime = CommitTime { sec: 1_700_000_000, nsec: 0 };

/// A formatted, empty in-memory journal of 32 MiB.
fn journal() -> MemoryJournal {
    let mut sb = JournalSuperblock::zeroed();
    sb.s_header = Header::new(BlockType::SuperblockV2, 0);
    sb.s_blocksize.set(BS);
    sb.s_maxlen.set(JOURNAL_BLOCKS);
    sb.s_first.set(1);
    sb.s_sequence.set(1);
    sb.s_uuid = *b"0123456789abcdef";
    sb.s_nr_users.set(1);
    sb.s_feature_incompat.set(INCOMPAT_REVOKE | INCOMPAT_64BIT | INCOMPAT_CSUM_V3);
    sb.s_checksum_type = CHECKSUM_CRC32C;
    sb.update_checksum();
    let mut j = MemoryJournal::new(BS, u64::from(JOURNAL_BLOCKS));
    write_superblock(&mut j, BS, &sb).expect("superblock");
    j
}

/// `n` metadata blocks with distinct home blocks and contents.
fn transaction(n: u64, salt: u64) -> Vec<(u64, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let home = 1000 + (salt * 257 + i) * 37 % 100_000;
            (home, (0..BS as usize).map(|k| (k as u64 ^ home ^ (k as u64 >> 8)) as u8).collect())
        })
        .collect()
}

fn commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("journal");
    for n in [16u64, 256] {
        let blocks = transaction(n, 1);
        let revoked: Vec<u64> = (0..n / 8).map(|i| 500_000 + i).collect();
        let mut io = journal();
        let mut w = JournalWriter::open(&mut io, BS).expect("open");
        g.throughput(Throughput::Bytes(n * u64::from(BS)));
        g.bench_function(BenchmarkId::new("encode", format!("{n}_blocks")), |b| {
            b.iter(|| w.encode(black_box(&blocks), black_box(&revoked), TIME).expect("fits"))
        });
        // Steady state: commit, checkpointing only when the log is full.
        let needed = w.blocks_needed(n, revoked.len() as u64);
        g.bench_function(BenchmarkId::new("commit", format!("{n}_blocks")), |b| {
            b.iter(|| {
                if w.free_blocks() < needed {
                    w.checkpoint(&mut io).expect("checkpoint");
                }
                w.commit(&mut io, black_box(&blocks), &revoked, TIME).expect("commit")
            })
        });
    }
    g.finish();
}

fn recovery(c: &mut Criterion) {
    const TRANSACTIONS: u64 = 15;
    let mut io = journal();
    let mut w = JournalWriter::open(&mut io, BS).expect("open");
    for t in 0..TRANSACTIONS {
        // Each transaction revokes 8 blocks the one before wrote.
        let revoked: Vec<u64> = if t == 0 { Vec::new() } else { transaction(8, t - 1).iter().map(|(b, _)| *b).collect() };
        w.commit(&mut io, &transaction(256, t), &revoked, TIME).expect("commit");
    }
    let mut g = c.benchmark_group("journal");
    g.throughput(Throughput::Bytes(TRANSACTIONS * 256 * u64::from(BS)));
    g.bench_function("scan_15x256", |b| {
        b.iter(|| {
            let rec = scan(black_box(&mut io), BS).expect("scan");
            assert_eq!(u64::from(rec.transactions()), TRANSACTIONS);
            rec
        })
    });
    // Scan and replay home (into a 4 MiB buffer standing in for the device).
    let mut home = vec![0u8; 1024 * BS as usize];
    g.bench_function("recover_15x256", |b| {
        b.iter(|| {
            let rec = scan(&mut io, BS).expect("scan");
            rec.replay(&mut io, |block, data| {
                let at = (block % 1024) as usize * BS as usize;
                home[at..at + data.len()].copy_from_slice(data);
                Ok::<(), std::io::Error>(())
            })
            .expect("replay");
            rec.block_count()
        })
    });
    g.finish();
}

criterion_group!(benches, commit, recovery);
criterion_main!(benches);

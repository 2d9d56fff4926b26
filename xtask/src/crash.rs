//! `cargo xtask crash`: explores the crash states of every workload of
//! `ext4_testkit::crash` on journaled ext4 (1 KiB blocks with
//! metadata_csum, 4 KiB blocks), ext3 and bigalloc (1 KiB and 4 KiB
//! blocks, 16 a cluster, made by mke2fs), with many write reorderings per
//! flush epoch, and fails if any state recovers badly.
//!
//! Options: `--reorders N` (random subsets per epoch, default 48),
//! `--quick` (4 reorders: a few minutes), `--workload NAME` (only that one).

use std::time::Instant;

use ext4_mkfs::FsType;
use ext4_testkit::crash::{Config, explore, workloads};

use crate::Result;

pub fn run(args: &[&str]) -> Result {
    let mut reorders = 48;
    if args.contains(&"--quick") {
        reorders = 4;
    }
    if let Some(i) = args.iter().position(|a| *a == "--reorders") {
        reorders = args.get(i + 1).and_then(|v| v.parse().ok()).ok_or("--reorders needs a number")?;
    }
    let only = match args.iter().position(|a| *a == "--workload") {
        Some(i) => Some(*args.get(i + 1).ok_or("--workload needs a name")?),
        None => None,
    };
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let configs = [
        Config {
            fs_type: FsType::Ext4,
            block_size: 1024,
            size: 4 << 20,
            reorders_per_epoch: reorders,
            e2fsck_replay_every: 200,
            seed: 11,
            threads,
            mke2fs: &[],
        },
        Config {
            fs_type: FsType::Ext4,
            block_size: 4096,
            size: 8 << 20,
            reorders_per_epoch: reorders,
            e2fsck_replay_every: 200,
            seed: 12,
            threads,
            mke2fs: &[],
        },
        Config {
            fs_type: FsType::Ext3,
            block_size: 1024,
            size: 4 << 20,
            reorders_per_epoch: reorders,
            e2fsck_replay_every: 200,
            seed: 13,
            threads,
            mke2fs: &[],
        },
        Config {
            fs_type: FsType::Ext4,
            block_size: 1024,
            size: 8 << 20,
            reorders_per_epoch: reorders,
            e2fsck_replay_every: 200,
            seed: 14,
            threads,
            mke2fs: &["-t", "ext4", "-b", "1024", "-O", "bigalloc", "-C", "16384"],
        },
        Config {
            fs_type: FsType::Ext4,
            block_size: 4096,
            size: 16 << 20,
            reorders_per_epoch: reorders,
            e2fsck_replay_every: 200,
            seed: 15,
            threads,
            mke2fs: &["-t", "ext4", "-b", "4096", "-O", "bigalloc", "-C", "65536"],
        },
    ];
    let start = Instant::now();
    let (mut states, mut distinct, mut replays, mut failed) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for cfg in &configs {
        for w in workloads() {
            if only.is_some_and(|n| n != w.name) {
                continue;
            }
            if w.needs_extents && cfg.fs_type != FsType::Ext4 {
                continue;
            }
            let t = Instant::now();
            let r = explore(&w, cfg)?;
            println!(
                "{:>16} on {:<16} {:>7} states, {:>6} distinct recovered images (e2fsck -fn each), {:>4} e2fsck replays, {:>4} failed  [{:.0?}]",
                w.name,
                cfg.label(),
                r.states,
                r.distinct_recovered,
                r.e2fsck_replays,
                r.failed,
                t.elapsed()
            );
            states += r.states;
            distinct += r.distinct_recovered;
            replays += r.e2fsck_replays;
            failed += r.failed;
            failures.extend(r.failures);
        }
    }
    println!(
        "crash: {states} crash states, {distinct} distinct recovered images checked by e2fsck, {replays} replayed by e2fsck too, {failed} failed, in {:.0?}",
        start.elapsed()
    );
    if failed > 0 {
        for f in failures.iter().take(10) {
            eprintln!("{f}\n---");
        }
        return Err(format!("{failed} crash states recovered badly"));
    }
    Ok(())
}

//! A CI-sized sample of `cargo xtask crash`: every workload, every write
//! boundary and a few reorderings per flush epoch, on journaled ext4 (with
//! and without metadata_csum's journal checksums), ext3, and bigalloc
//! (made by mke2fs).

use ext4_mkfs::FsType;
use ext4_testkit::crash::{Config, explore, workloads};
use ext4_testkit::oracle::have_e2fsprogs;

#[ext4_testkit::oracle_test(e2fsprogs)]
fn crash_states_recover_atomically_and_clean() {
    if !ext4_testkit::require(have_e2fsprogs(), "needs e2fsprogs") {
        return;
    }
    let configs = [
        Config {
            fs_type: FsType::Ext4,
            block_size: 1024,
            size: 4 << 20,
            reorders_per_epoch: 2,
            e2fsck_replay_every: 50,
            seed: 1,
            threads: 2,
            mke2fs: &[],
        },
        Config {
            fs_type: FsType::Ext3,
            block_size: 1024,
            size: 4 << 20,
            reorders_per_epoch: 1,
            e2fsck_replay_every: 50,
            seed: 2,
            threads: 2,
            mke2fs: &[],
        },
        Config {
            fs_type: FsType::Ext4,
            block_size: 1024,
            size: 8 << 20,
            reorders_per_epoch: 1,
            e2fsck_replay_every: 50,
            seed: 3,
            threads: 2,
            mke2fs: &["-t", "ext4", "-b", "1024", "-O", "bigalloc", "-C", "16384"],
        },
    ];
    let mut total = 0;
    let mut failures = Vec::new();
    for cfg in &configs {
        for w in workloads() {
            if w.needs_extents && cfg.fs_type != FsType::Ext4 {
                continue;
            }
            let r = explore(&w, cfg).unwrap_or_else(|e| panic!("{} on {}: {e}", w.name, cfg.label()));
            println!(
                "{} on {}: {} states, {} distinct recovered images, {} e2fsck replays",
                w.name,
                cfg.label(),
                r.states,
                r.distinct_recovered,
                r.e2fsck_replays
            );
            assert!(r.states > 10, "{}: too few crash states", w.name);
            total += r.states;
            failures.extend(r.failures);
        }
    }
    println!("{total} crash states checked");
    assert!(
        failures.is_empty(),
        "{} failures, first: {}",
        failures.len(),
        failures.iter().take(3).cloned().collect::<Vec<_>>().join("\n---\n")
    );
}

//! Issue 18's differential harness, a sample for CI: one random command
//! script through `ext4 batch`, through `ext4 mount` with the kernel's
//! system calls, and through a kernel loop mount; every line ends alike and
//! the three trees agree (`ext4_testkit::aging::cli`). The seed varies per
//! run (`EXT4_AGING_SEED` replays); long runs: `cargo xtask aging --cli`.

mod common;

use std::path::{Path, PathBuf};

use ext4_testkit::aging::cli::{self, CliOptions};
use ext4_testkit::aging::config::matrix;
use ext4_testkit::oracle::{can_loop_mount, have_e2fsprogs};

fn oracles() -> bool {
    ext4_testkit::require(have_e2fsprogs() && can_loop_mount(), "needs e2fsprogs, root and loop devices")
        && ext4_testkit::require(Path::new("/dev/fuse").exists(), "needs /dev/fuse for ext4 mount")
}

fn run(names: &[&str], ops: usize, long: bool) {
    let seed = ext4_testkit::rng::seed_from_env("EXT4_AGING_SEED");
    let dir = tempfile::Builder::new().prefix("ext4-three-way").tempdir().unwrap();
    let (max_len, big_percent) = if long { (8 << 20, 30) } else { (1 << 20, 3) };
    for cfg in matrix().into_iter().filter(|c| names.contains(&c.name)) {
        let o = CliOptions {
            seed,
            ops,
            max_len,
            big_percent,
            budget: 40 << 20,
            min_written: if long { 10 * (64 << 20) } else { 0 },
            work_dir: dir.path().to_path_buf(),
            ext4: PathBuf::from(common::EXT4),
        };
        let r = cli::run(&cfg, &o).unwrap_or_else(|e| panic!("{} (EXT4_AGING_SEED={seed:#x}): {e}", cfg.name));
        println!("{}: {} lines, {} refused alike, {} MiB written", cfg.name, r.library_ops, r.refused_alike, r.bytes_written >> 20);
        if long {
            assert!(
                r.bytes_written >= 10 * (64 << 20),
                "{}: only {} MiB written (EXT4_AGING_SEED={seed:#x})",
                cfg.name,
                r.bytes_written >> 20
            );
        }
    }
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, fuse)]
fn a_random_script_ends_alike_three_ways() {
    if oracles() {
        run(&["ext4-4k", "ext4-1k", "nojournal"], 500, false);
    }
}

/// Over ten times the 64 MiB image in files of 4-8 MiB: freed space must be
/// reusable as the kernel reuses it.
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, fuse)]
fn ten_times_the_image_in_big_files() {
    if oracles() {
        run(&["ext4-4k", "ext2"], 1200, true);
    }
}

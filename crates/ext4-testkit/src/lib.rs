//! Test support shared by the integration tests and `cargo xtask`.
//!
//! * [`aging`]: kernel-aging differential runs: the kernel and the library
//!   take turns on one image while a reference copy gets every step
//!   through the kernel; e2fsck and three views of the tree judge.
//! * [`crash`]: crash-state exploration of workloads on a recording device
//!   (every write boundary and reorderings within flush epochs), judged by
//!   recovery with the library and e2fsck.
//! * [`fixtures`]: deterministic source trees ([`tree`])
//!   and images made from them by `mke2fs -d` or by the kernel, built on
//!   demand into a cache directory and reused.
//! * [`mutate`]: template images with their metadata located, and a
//!   mutator that damages one metadata range (robustness and checker tests).
//! * [`oracle`]: the independent judges: `e2fsck -fn`, `dumpe2fs`,
//!   `debugfs`, kernel loop mounts.
//! * [`rng`]: the deterministic generator and the printed run seeds.
//! * [`tree`]: the deterministic tree generator (small, medium, large).
//! * [`snapshot`]: a tree's names, types, modes, owners, sizes, times,
//!   link targets, xattrs, hard-link structure and content hashes, taken
//!   from a host directory or from an image through `ext4-fs`, and compared.
//! * [`noise`]: file data that neither repeats nor compresses.

#![forbid(unsafe_code)]

pub mod aging;
pub mod crash;
pub mod fixtures;
pub mod mutate;
pub mod oracle;
pub mod rng;
pub mod snapshot;
pub mod tree;

use std::path::{Path, PathBuf};

/// The workspace root (the directory holding the top `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("crates/<name> is two levels deep").to_path_buf()
}

/// The shared material beside the project root (`../shared`, or
/// `$EXT4_SHARED_DIR` for checkouts that live elsewhere, such as worktrees).
pub fn shared_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("EXT4_SHARED_DIR") {
        return PathBuf::from(d);
    }
    workspace_root().parent().map(|p| p.join("shared")).unwrap_or_else(|| PathBuf::from("../shared"))
}

/// Where built fixtures are cached (`target/fixtures`, or `$EXT4_FIXTURES_DIR`).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("EXT4_FIXTURES_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target").join("fixtures"))
}

/// Whether a missing oracle must fail the test (`EXT4_REQUIRE_ORACLES` set
/// to anything but `0`, as `.ci/run` does) instead of skipping it.
pub fn oracles_required() -> bool {
    std::env::var_os("EXT4_REQUIRE_ORACLES").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Returns `false` and prints the standard skip line if `cond` is false;
/// panics instead when [`oracles_required`], so CI cannot pass by skipping.
pub fn require(cond: bool, what: &str) -> bool {
    if !cond {
        assert!(!oracles_required(), "required oracle missing (EXT4_REQUIRE_ORACLES is set): {what}");
        println!("SKIPPED: {what}");
    }
    cond
}

/// `len` bytes that neither repeat nor compress, the same for the same
/// `seed` (xorshift), for file contents that must not match by chance.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

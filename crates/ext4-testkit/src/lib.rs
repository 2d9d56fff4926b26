//! Test support shared by the integration tests and `cargo xtask`.
//!
//! * [`crash`]: crash-state exploration of workloads on a recording device
//!   (every write boundary and reorderings within flush epochs), judged by
//!   recovery with the library and e2fsck.
//! * [`fixtures`]: deterministic source trees (`shared/bench/make-tree.py`)
//!   and images made from them by `mke2fs -d` or by the kernel, built on
//!   demand into a cache directory and reused.
//! * [`oracle`]: the independent judges: `e2fsck -fn`, `dumpe2fs`,
//!   `debugfs`, kernel loop mounts.
//! * [`snapshot`]: a tree's names, types, modes, owners, sizes, times,
//!   link targets, xattrs, hard-link structure and content hashes, taken
//!   from a host directory or from an image through `ext4-fs`, and compared.
//! * [`noise`]: file data that neither repeats nor compresses.

#![forbid(unsafe_code)]

pub mod crash;
pub mod fixtures;
pub mod oracle;
pub mod snapshot;

use std::path::{Path, PathBuf};

/// The workspace root (the directory holding the top `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("crates/<name> is two levels deep").to_path_buf()
}

/// The shared material beside the project root (`../shared`).
pub fn shared_dir() -> PathBuf {
    workspace_root().parent().map(|p| p.join("shared")).unwrap_or_else(|| PathBuf::from("../shared"))
}

/// Where built fixtures are cached (`target/fixtures`, or `$EXT4_FIXTURES_DIR`).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("EXT4_FIXTURES_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target").join("fixtures"))
}

/// Prints the standard skip line and returns `false` if `cond` is false.
pub fn require(cond: bool, what: &str) -> bool {
    if !cond {
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

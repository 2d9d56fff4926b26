//! Test support shared by the integration tests and `cargo xtask`.
//!
//! * [`aging`]: kernel-aging differential runs: the kernel and the library
//!   take turns on one image while a reference copy gets every step
//!   through the kernel; e2fsck and three views of the tree judge.
//! * [`extent_check`]: the extent tests' in-memory `MapIo` with a checking
//!   allocator, and map decoders independent of `ext4-extent`.
//! * [`fio`]: fio's verified writes through `ext4 mount`, judged by e2fsck
//!   and the kernel.
//! * [`fsops`]: operation sequences over a small image (the `ops` fuzz
//!   target and its replay).
//! * [`fuzz`]: the fuzz targets' template images and bodies, shared by
//!   `fuzz/` and the test that replays its regression inputs.
//! * [`hostile`]: a bounded walk of a hostile image, a write workload, and
//!   a runner that turns panics and hangs into reports.
//! * [`mem`]: in-memory `DirIo` and `MapIo` over plain bytes.
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
//! * [`prop`]: the property tests' proptest configuration (case counts,
//!   committed regression files).
//! * [`rng`]: the deterministic generator and the printed run seeds.
//! * [`tree`]: the deterministic tree generator (small, medium, large).
//! * [`snapshot`]: a tree's names, types, modes, owners, sizes, times,
//!   link targets, xattrs, hard-link structure and content hashes, taken
//!   from a host directory or from an image through `ext4-fs`, and compared.
//! * [`noise`]: file data that neither repeats nor compresses.

#![forbid(unsafe_code)]

pub mod aging;
pub mod crash;
pub mod extent_check;
pub mod fio;
pub mod fixtures;
pub mod fsops;
pub mod fuzz;
pub mod hostile;
pub mod mem;
pub mod mutate;
pub mod oracle;
pub mod prop;
pub mod rng;
pub mod snapshot;
pub mod tree;

use std::path::{Path, PathBuf};

/// `#[ext4_testkit::oracle_test(NAME, ...)]` in place of `#[test]`: the test
/// is reported as ignored, with the reason, when an oracle it names was
/// missing at build time; it still calls [`require`] itself, which fails
/// it in CI. Names: `e2fsprogs`, `root`, `loop_mount`, `fuse`, or a tool.
pub use ext4_testkit_macros::oracle_test;

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

/// A fresh temporary directory (`tempfile`, removed on drop) whose name
/// starts with `ext4-TAG-`, for scratch images, trees and mount points.
pub fn scratch_dir(tag: &str) -> tempfile::TempDir {
    scratch_dir_in(&std::env::temp_dir(), tag)
}

/// [`scratch_dir`] under `base` (`/dev/shm` for images that belong on
/// tmpfs). Mode 0755, as `create_dir` makes it: tests that act as other
/// users through a mount below it must be able to reach it.
pub fn scratch_dir_in(base: &Path, tag: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new().prefix(&scratch_prefix(tag)).tempdir_in(base).expect("a temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod a temporary directory");
    dir
}

/// A fresh empty temporary file (`tempfile`, removed when the returned
/// path drops) whose name starts with `ext4-TAG-`, for a scratch image.
pub fn scratch_file(tag: &str) -> tempfile::TempPath {
    tempfile::Builder::new().prefix(&scratch_prefix(tag)).suffix(".img").tempfile().expect("a temporary file").into_temp_path()
}

/// `ext4-TAG-` with the tag cut to 40 safe characters.
fn scratch_prefix(tag: &str) -> String {
    let tag = tag.strip_prefix("ext4-").unwrap_or(tag);
    let tag: String = tag.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).take(40).collect();
    format!("ext4-{tag}-")
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
/// `seed` ([`rng::Rng`]), for file contents that must not match by chance.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = rng::Rng::new(seed);
    (0..len).map(|_| (rng.next_u64() >> 32) as u8).collect()
}

//! Every committed fuzz regression input (`fuzz/regressions/TARGET/*`,
//! minimized crashes and hand-made seeds) replayed through the same target
//! body the fuzzer runs (`ext4_testkit::fuzz::targets`), without
//! libFuzzer: no input may panic, run past its time budget, or make an
//! allocation over `ext4_bounded_alloc::ALLOC_LIMIT`.
//!
//! Generic: a file dropped into `fuzz/regressions/TARGET/` is replayed by
//! the next `cargo test`; a directory naming no target fails the test.
//! (`tests/ops_replay.rs` also runs e2fsck on the results of the `ops` inputs.)
//!
//! The fuzz builds have debug assertions and overflow checks (`-O -a`):
//! run this test without `--release` to replay with them (a release build
//! wraps an overflow that panics under the fuzzer; it says so when it runs).
//! `FUZZ_REPLAY_CORPUS=1` also replays the local corpora `fuzz/corpus/TARGET/`
//! (not committed; after a campaign).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ext4_testkit::fuzz::targets;
use ext4_testkit::hostile::{self, Outcome};

#[global_allocator]
static ALLOC: ext4_bounded_alloc::BoundedAlloc = ext4_bounded_alloc::BoundedAlloc;

/// libFuzzer's `-timeout=30` of `cargo xtask fuzz`, with room for a debug build.
const BUDGET: Duration = Duration::from_secs(60);

fn fuzz_dir() -> PathBuf {
    ext4_testkit::workspace_root().join("fuzz")
}

/// The subdirectories of `dir` and their files, sorted.
fn listing(dir: &Path) -> Vec<(String, Vec<PathBuf>)> {
    let sorted = |d: &Path| {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
        v.sort();
        v
    };
    sorted(dir)
        .into_iter()
        .filter(|p| p.is_dir())
        .map(|p| (p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), sorted(&p)))
        .collect()
}

/// Replays every file of every `TARGET/` directory under `dir`; returns
/// (inputs replayed, failures).
fn replay(dir: &Path) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for (target, files) in listing(dir) {
        if !targets::TARGETS.iter().any(|(n, _)| *n == target) {
            failures.push(format!("{}: no fuzz target named {target}", dir.join(&target).display()));
            continue;
        }
        let start = Instant::now();
        let mut slowest = (Duration::ZERO, String::new());
        for file in files.iter().filter(|f| f.is_file()) {
            // A running campaign may replace a corpus input under us.
            let Ok(data) = std::fs::read(file) else { continue };
            let name = format!("{target}/{}", file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
            let (t, case) = (target.clone(), name.clone());
            let one = Instant::now();
            let outcome = hostile::run_case(&case, BUDGET, move || targets::run(&t, &data));
            if one.elapsed() > slowest.0 {
                slowest = (one.elapsed(), name.clone());
            }
            match outcome {
                Outcome::Done(_) => {}
                Outcome::Panicked(msg) => failures.push(format!("{name}: panicked: {msg}")),
                Outcome::TimedOut => failures.push(format!("{name}: over {} s", BUDGET.as_secs())),
            }
            replayed += 1;
        }
        println!(
            "{target:<12} {:>5} inputs of {} in {} ms (slowest {} ms: {})",
            files.len(),
            dir.display(),
            hostile::ms(start),
            slowest.0.as_millis(),
            slowest.1
        );
    }
    (replayed, failures)
}

#[test]
fn every_target_of_the_fuzz_crate_has_a_body_here() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("read fuzz/Cargo.toml");
    let mut bins = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin && let Some(v) = line.strip_prefix("name = ") {
            bins.push(v.trim_matches('"').to_string());
        }
    }
    let mut ours: Vec<String> = targets::TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    bins.sort();
    ours.sort();
    assert!(!bins.is_empty(), "no [[bin]] in fuzz/Cargo.toml");
    assert_eq!(bins, ours, "fuzz/Cargo.toml's targets and ext4_testkit::fuzz::targets::TARGETS differ");
}

#[test]
fn committed_regression_inputs_replay_without_a_crash() {
    if !cfg!(debug_assertions) {
        println!("NOTE: no debug assertions here (--release): overflows wrap instead of panicking as under the fuzzer");
    }
    let dir = fuzz_dir().join("regressions");
    let (replayed, failures) = replay(&dir);
    println!("{replayed} committed regression inputs replayed");
    // The committed crashes of image, superblock, group_desc, inode and xattr, and the ops seeds.
    assert!(replayed >= 9, "only {replayed} inputs under {}", dir.display());
    assert!(failures.is_empty(), "{} regression inputs failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn local_corpora_replay_without_a_crash_when_asked() {
    if std::env::var_os("FUZZ_REPLAY_CORPUS").is_none() {
        println!("SKIPPED: FUZZ_REPLAY_CORPUS not set (the local corpora are not committed)");
        return;
    }
    let (replayed, failures) = replay(&fuzz_dir().join("corpus"));
    println!("{replayed} corpus inputs replayed");
    assert!(failures.is_empty(), "{} corpus inputs failed:\n{}", failures.len(), failures.join("\n"));
}

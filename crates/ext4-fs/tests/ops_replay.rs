//! The `ops` fuzz target's inputs replayed as an ordinary test, with the
//! oracle the fuzzer cannot afford per execution: e2fsck -fn on every
//! resulting image must be silent.
//!
//! Replays the committed inputs of `fuzz/regressions/ops/` (hand-made seeds
//! and minimized crashes), then the local corpus `fuzz/corpus/ops/` when a
//! campaign left one (sorted, within a time budget).
//! `OPS_REPLAY_SECS=N` gives the corpus N seconds (default 40).
//! `OPS_WRITE_SEEDS=1` writes the hand-made seeds into `fuzz/regressions/ops/`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ext4_testkit::fsops::{self, Op};

/// Time the local corpus may take (the committed inputs always run whole);
/// `OPS_REPLAY_SECS` changes it (after a long campaign).
fn corpus_budget() -> Duration {
    Duration::from_secs(std::env::var("OPS_REPLAY_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(40))
}

fn seeds() -> Vec<(&'static str, u8, Vec<Op>)> {
    use Op::*;
    vec![
        (
            "seed-files",
            0,
            vec![
                Create { path: 0, perm: 0o644 },
                WriteAt { path: 0, offset: 0, len: 5000, byte: b'a' },
                WriteAt { path: 0, offset: 300, len: 9000, byte: b'b' },
                Truncate { path: 0, size: 50 },
                Fallocate { path: 0, offset: 100, len: 4000, keep_size: false },
                PunchHole { path: 0, offset: 20, len: 200 },
                Sync,
                Reopen,
                Link { from: 0, to: 1 },
                Unlink { path: 0 },
            ],
        ),
        (
            "seed-tree",
            1,
            vec![
                Mkdir { path: 3, perm: 0o755 },
                Mkdir { path: 6, perm: 0o700 },
                Create { path: 7, perm: 0o600 },
                WriteAt { path: 7, offset: 0x8003, len: 1000, byte: 7 },
                Symlink { target_len: 10, path: 4 },
                Symlink { target_len: 200, path: 5 },
                Rename { from: 7, to: 0, mode: 0 },
                Rename { from: 4, to: 5, mode: 2 },
                Rmdir { path: 6 },
                Rmdir { path: 3 },
                Reopen,
                Unlink { path: 4 },
            ],
        ),
        (
            "seed-xattrs",
            2,
            vec![
                Create { path: 0, perm: 0o644 },
                WriteAt { path: 0, offset: 0, len: 40, byte: b'x' },
                SetXattr { path: 0, name: 0, len: 10, byte: 1, mode: 0 },
                SetXattr { path: 0, name: 4, len: 2000, byte: 2, mode: 1 },
                SetXattr { path: 0, name: 1, len: 100, byte: 3, mode: 2 },
                RemoveXattr { path: 0, name: 0 },
                SetAttr { path: 0, perm: Some(0o4755), uid: Some(1000), mtime: Some(1_600_000_000), flags: None },
                SetAttr { path: 0, perm: None, uid: None, mtime: None, flags: Some(3) },
                Unlink { path: 0 },
                SetAttr { path: 0, perm: None, uid: None, mtime: None, flags: Some(0) },
                WriteAt { path: 0, offset: 1, len: 9000, byte: b'y' },
                Sync,
            ],
        ),
        (
            // Found by the corpus replay: chattr +ia on a symlink left flags e2fsck clears.
            "flags-on-symlink",
            0,
            vec![
                Symlink { target_len: 5, path: 0 },
                SetAttr { path: 0, perm: None, uid: None, mtime: None, flags: Some(3) },
                Mkdir { path: 3, perm: 0o755 },
                SetAttr { path: 3, perm: None, uid: None, mtime: None, flags: Some(3) },
            ],
        ),
    ]
}

fn regressions() -> PathBuf {
    ext4_testkit::workspace_root().join("fuzz/regressions/ops")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    v.sort();
    v
}

fn e2fsck_available() -> bool {
    std::process::Command::new("e2fsck").arg("-V").output().is_ok()
}

/// Runs one input and checks its result with e2fsck; returns a problem.
fn check(input: &Path, scratch: &Path) -> Option<String> {
    // A running campaign may have replaced a corpus input since the listing.
    let Ok(data) = std::fs::read(input) else { return None };
    let (image, _) = fsops::run(&data);
    std::fs::write(scratch, image.to_vec()).expect("write image");
    ext4_testkit::oracle::e2fsck_problems(scratch).map(|p| format!("{}: {:?}\n{p}", input.display(), fsops::decode(&data)))
}

#[test]
fn hand_made_seeds_decode_as_written_and_are_committed() {
    for (name, config, ops) in seeds() {
        let bytes = fsops::encode(config, &ops);
        assert_eq!(fsops::decode(&bytes), (config, ops.clone()), "{name}: the encoder disagrees with arbitrary's decoding");
        let path = regressions().join(name);
        if std::env::var_os("OPS_WRITE_SEEDS").is_some() {
            std::fs::create_dir_all(regressions()).expect("mkdir");
            std::fs::write(&path, &bytes).expect("write seed");
        }
        assert_eq!(
            std::fs::read(&path).ok(),
            Some(bytes),
            "{} is not the encoding of {name} (OPS_WRITE_SEEDS=1 rewrites it)",
            path.display()
        );
    }
}

#[test]
fn seeds_do_what_they_say() {
    // The seeds must reach the code they are for: most operations succeed.
    for (name, config, ops) in seeds() {
        let (_, st) = fsops::run(&fsops::encode(config, &ops));
        assert!(st.ok as usize >= ops.len() / 2, "{name}: only {} of {} operations succeeded", st.ok, ops.len());
    }
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn replayed_inputs_leave_e2fsck_silent() {
    if !ext4_testkit::require(e2fsck_available(), "e2fsck not installed") {
        return;
    }
    let scratch = ext4_testkit::scratch_file("ops-replay");
    let committed = inputs(&regressions());
    assert!(committed.len() >= seeds().len(), "fuzz/regressions/ops holds the seeds");
    let mut problems = Vec::new();
    for input in &committed {
        problems.extend(check(input, &scratch));
    }
    let corpus = inputs(&ext4_testkit::workspace_root().join("fuzz/corpus/ops"));
    let start = Instant::now();
    let mut replayed = 0;
    for input in &corpus {
        if start.elapsed() > corpus_budget() {
            break;
        }
        problems.extend(check(input, &scratch));
        replayed += 1;
    }
    let _ = std::fs::remove_file(&scratch);
    println!("{} committed inputs and {replayed} of {} corpus inputs replayed, e2fsck -fn on each", committed.len(), corpus.len());
    assert!(problems.is_empty(), "{} results not e2fsck-clean:\n{}", problems.len(), problems.join("\n"));
}

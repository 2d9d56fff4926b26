//! A repair interrupted anywhere leaves the filesystem as it was before
//! the repair or as the repair leaves it, once the journal is recovered.
//!
//! A damaged image (wrong link count, dtime on a file in use, wrong free
//! counts: repairs in pass 1, 4 and 5) is repaired on a recording device.
//! Every crash state is rebuilt: each prefix of the writes, and random
//! subsets of the writes issued since the last flush (a disk may persist
//! those in any order). Each is recovered twice and judged:
//!
//! * by `ext4_fsck::replay_journal`: every block outside the journal must
//!   equal the image before the repair, or every one the image after it;
//! * by `e2fsck -E journal_only`: `e2fsck -fn` must then report exactly
//!   what it reported before the repair, or nothing.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use ext4_blockdev::{MemoryDevice, RecordedOp, RecordingDevice, recording_replay as replay};
use ext4_fsck::{Mode, Options};
use ext4_testkit::mutate::make_small_tree;
use ext4_testkit::oracle::have_e2fsprogs;
use ext4_testkit::rng::{Rng, seed_from_env};

/// Random subsets tried per flush epoch.
const SUBSETS_PER_EPOCH: usize = 6;

/// Runs a command and panics unless it exits 0.
fn run(c: &mut Command) -> String {
    let out = c.output().expect("command runs");
    assert!(out.status.success(), "{c:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The damaged image's bytes and the blocks of its journal.
fn damaged_image(work: &Path) -> (Vec<u8>, BTreeSet<u64>) {
    let tree = work.join("tree");
    make_small_tree(&tree).unwrap();
    let img = work.join("img");
    let features = "has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize";
    run(Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-b", "1024", "-g", "1024", "-N", "512", "-O", features, "-d"])
        .arg(&tree)
        .arg(&img)
        .arg("4M"));
    for cmd in ["sif /small links_count 3", "sif /medium dtime 1000", "set_bg 1 free_blocks_count 5", "set_bg 1 checksum calc"] {
        // -n: the first change leaves checksums debugfs would refuse.
        run(Command::new("debugfs").args(["-n", "-w", "-R", cmd]).arg(&img));
    }
    let journal = run(Command::new("debugfs").args(["-n", "-R", "blocks <8>"]).arg(&img));
    let blocks = journal.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    (std::fs::read(&img).unwrap(), blocks)
}

/// `e2fsck -fn`'s problem lines with digits masked, and its exit status.
fn e2fsck_lines(img: &Path) -> (i32, Vec<String>) {
    let out = Command::new("e2fsck").arg("-fn").arg(img).output().expect("e2fsck runs");
    let path = img.display().to_string();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Pass ") && !l.starts_with(&path) && !l.contains("*****"))
        .map(|l| l.chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect())
        .collect();
    (out.status.code().unwrap_or(-1), lines)
}

/// Whether `a` and `b` hold the same bytes in every block outside `journal`.
fn same_outside(a: &[u8], b: &[u8], journal: &BTreeSet<u64>, bs: usize) -> bool {
    a.chunks(bs).zip(b.chunks(bs)).enumerate().all(|(i, (x, y))| journal.contains(&(i as u64)) || x == y)
}

/// Every crash state of `ops` on `pre`: each prefix, and random subsets of
/// each flush epoch's writes on top of the epochs before it.
fn crash_states(pre: &[u8], ops: &[RecordedOp], rng: &mut Rng) -> Vec<(String, Vec<u8>)> {
    let mut states = Vec::new();
    let mut epoch_start = 0;
    for k in 0..=ops.len() {
        states.push((format!("prefix {k}"), replay(pre, &ops[..k])));
        let at_flush = k == ops.len() || matches!(ops[k], RecordedOp::Flush);
        if at_flush && k > epoch_start + 1 {
            let base = replay(pre, &ops[..epoch_start]);
            for n in 0..SUBSETS_PER_EPOCH {
                let subset: Vec<RecordedOp> = ops[epoch_start..k].iter().filter(|_| rng.chance(50)).cloned().collect();
                states.push((format!("epoch {epoch_start}..{k} subset {n}"), replay(&base, &subset)));
            }
        }
        if at_flush {
            epoch_start = k + 1;
        }
    }
    states
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn interrupted_repairs_recover_to_before_or_after() {
    if !ext4_testkit::require(have_e2fsprogs(), "e2fsprogs not installed") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (pre, journal) = damaged_image(work.path());
    assert!(!journal.is_empty(), "the image has a journal");
    let scratch = work.path().join("state");
    std::fs::write(&scratch, &pre).unwrap();
    let (pre_code, pre_lines) = e2fsck_lines(&scratch);
    assert_eq!(pre_code, 4, "the image is damaged: {pre_lines:?}");

    let dev = RecordingDevice::new(MemoryDevice::from_vec(pre.clone()));
    let opts = Options { mode: Mode::Repair, now: Some(1_800_000_000), ..Options::default() };
    let report = ext4_fsck::check(&dev, opts).expect("repair runs");
    let (inner, ops) = dev.into_parts();
    let post = inner.into_vec();
    assert!(report.problems.iter().any(|p| p.fixed), "{report:?}");
    std::fs::write(&scratch, &post).unwrap();
    assert_eq!(e2fsck_lines(&scratch), (0, Vec::new()), "the repair leaves e2fsck -fn silent");

    let bs = 1024;
    let seed = seed_from_env("EXT4_FSCK_CRASH_SEED");
    let mut rng = Rng::new(seed);
    let states = crash_states(&pre, &ops, &mut rng);
    let mut bad = Vec::new();
    for (name, state) in &states {
        let dev = MemoryDevice::from_vec(state.clone());
        ext4_fsck::replay_journal(&dev).expect("replay runs");
        let ours = dev.into_vec();
        if !same_outside(&ours, &pre, &journal, bs) && !same_outside(&ours, &post, &journal, bs) {
            bad.push(format!("{name}: after our recovery, neither before nor after the repair"));
        }
        std::fs::write(&scratch, state).unwrap();
        let _ = Command::new("e2fsck").args(["-p", "-E", "journal_only"]).arg(&scratch).output().expect("e2fsck runs");
        let lines = e2fsck_lines(&scratch).1;
        if lines != pre_lines && !lines.is_empty() {
            bad.push(format!("{name}: after e2fsck's recovery, e2fsck -fn reports {lines:?}"));
        }
    }
    println!("{} crash states of {} recorded operations (seed {seed:#x}), {} bad", states.len(), ops.len(), bad.len());
    assert!(bad.is_empty(), "EXT4_FSCK_CRASH_SEED={seed:#x}:\n{}", bad.join("\n"));
}

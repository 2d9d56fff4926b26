//! Verdict parity with `e2fsck -fn`: `ext4_fsck::check` must call a
//! filesystem clean exactly where e2fsck exits 0, on
//!
//! * the 202 images of e2fsprogs' fsck test suite (`../shared/corpus`,
//!   skipped when absent: a fresh clone has no `../shared`);
//! * mutated images: bytes flipped in the metadata of mke2fs-made,
//!   library-made and kernel-made templates (`ext4_testkit::mutate`).
//!   `EXT4_FSCK_PARITY_CASES` sets the number of cases (default 60),
//!   `EXT4_FSCK_PARITY_SEED` the seed (printed; from the clock by default),
//!   `EXT4_FSCK_PARITY_CASE` replays one case, `EXT4_FSCK_PARITY_KEEP=DIR`
//!   keeps the images that disagree;
//! * the fixtures of `ext4_testkit::fixtures`.
//!
//! e2fsck runs under a time limit of its own (it loops forever on a few
//! damaged images); a run it cannot finish counts as "not clean".

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{e2fsck_status, parallel, templates, work_dir};
use ext4_fsck::{Options, Report};
use ext4_testkit::fixtures::{self, Profile};
use ext4_testkit::mutate::{make_small_tree, mutate};
use ext4_testkit::oracle::have_e2fsprogs;
use ext4_testkit::rng::{Rng, seed_from_env};

/// Our verdict on the image file `img`.
fn ours(img: &Path) -> Report {
    let dev = ext4_fsck_dev(img);
    ext4_fsck::check(&dev, Options::default()).expect("check runs")
}

fn ext4_fsck_dev(img: &Path) -> ext4_blockdev::MemoryDevice {
    ext4_blockdev::MemoryDevice::from_vec(std::fs::read(img).expect("image readable"))
}

/// One comparison; `Some(message)` on a mismatch.
fn compare(name: &str, img: &Path) -> Option<String> {
    let e2 = e2fsck_status(img);
    let r = ours(img);
    let e2_clean = e2 == Some(0);
    if e2_clean == r.is_clean() {
        return None;
    }
    let shown: Vec<String> = r.problems.iter().filter(|p| p.counts).take(5).map(|p| format!("{} {}", p.code, p.detail)).collect();
    Some(format!("{name}: e2fsck exit {e2:?}, ours {} {shown:?}", r.outcome.name()))
}

#[test]
fn corpus_verdicts_match_e2fsck() {
    let corpus = ext4_testkit::shared_dir().join("corpus/e2fsprogs-fsck");
    if !corpus.is_dir() {
        println!("SKIPPED: {} not present", corpus.display());
        return;
    }
    if !ext4_testkit::require(have_e2fsprogs(), "e2fsprogs not installed") {
        return;
    }
    let mut names: Vec<PathBuf> =
        std::fs::read_dir(&corpus).unwrap().flatten().map(|e| e.path()).filter(|p| p.join("image.gz").exists()).collect();
    names.sort();
    let work = work_dir("corpus");
    let bad = parallel(&names, |dir| {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let img = work.join(format!("{name}.img"));
        let out = Command::new("zcat").arg(dir.join("image.gz")).output().expect("zcat runs");
        std::fs::write(&img, out.stdout).unwrap();
        let r = compare(&name, &img);
        let _ = std::fs::remove_file(&img);
        r
    });
    let _ = std::fs::remove_dir_all(&work);
    println!("corpus: {} images, {} mismatches", names.len(), bad.len());
    assert!(bad.is_empty(), "verdicts differ from e2fsck -fn on {} corpus images:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn fixture_verdicts_match_e2fsck() {
    if !ext4_testkit::require(have_e2fsprogs(), "e2fsprogs not installed") {
        return;
    }
    let profiles: Vec<Profile> = fixtures::PROFILES.iter().copied().filter(|p| fixtures::unavailable(p).is_none()).collect();
    for p in fixtures::PROFILES {
        if let Some(why) = fixtures::unavailable(p) {
            ext4_testkit::require(false, &format!("fixture {}: {why}", p.name));
        }
    }
    let bad = parallel(&profiles, |p| {
        let (img, _) = fixtures::image(p).expect("fixture image");
        let r = ours(&img);
        if !r.is_clean() {
            return Some(format!("{}: {:?}", p.name, r.errors_left().take(5).collect::<Vec<_>>()));
        }
        compare(p.name, &img)
    });
    assert!(bad.is_empty(), "fixture verdicts differ:\n{}", bad.join("\n"));
}

#[test]
fn mutated_verdicts_match_e2fsck() {
    if !ext4_testkit::require(have_e2fsprogs(), "e2fsprogs not installed") {
        return;
    }
    let work = work_dir("mutation");
    let tree = work.join("tree");
    make_small_tree(&tree).unwrap();
    let templates = templates(&tree, &work);
    let cases: u64 = std::env::var("EXT4_FSCK_PARITY_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let only: Option<u64> = std::env::var("EXT4_FSCK_PARITY_CASE").ok().and_then(|s| s.parse().ok());
    let seed = seed_from_env("EXT4_FSCK_PARITY_SEED");
    let list: Vec<u64> = (0..cases).filter(|c| only.is_none_or(|o| o == *c)).collect();
    let clean = std::sync::atomic::AtomicU64::new(0);
    let bad = parallel(&list, |&case| {
        let mut rng = Rng::new(seed ^ case.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let t = &templates[rng.index(templates.len())];
        let mut bytes = t.bytes.to_vec();
        let what = mutate(t, &mut bytes, &mut rng);
        let img = work.join(format!("case-{case}.img"));
        std::fs::write(&img, &bytes).unwrap();
        let name = format!("case {case} ({}): {what}", t.name);
        let r = compare(&name, &img);
        if let (Some(_), Some(keep)) = (&r, std::env::var_os("EXT4_FSCK_PARITY_KEEP")) {
            let _ = std::fs::copy(&img, Path::new(&keep).join(format!("case-{case}.img")));
        }
        if r.is_none() && ours(&img).is_clean() {
            clean.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let _ = std::fs::remove_file(&img);
        r
    });
    let _ = std::fs::remove_dir_all(&work);
    println!("mutation parity: {} cases, {} clean by both, {} mismatches (seed {seed:#x})", list.len(), clean.into_inner(), bad.len());
    assert!(
        bad.is_empty(),
        "verdicts differ from e2fsck -fn (replay with EXT4_FSCK_PARITY_SEED={seed:#x} EXT4_FSCK_PARITY_CASE=N):\n{}",
        bad.join("\n")
    );
}

//! Repairs (`Mode::Repair`, `ext4 fsck -y`) judged by `e2fsck -fn`, on the
//! e2fsprogs corpus (skipped without `../shared`) and on mutated images:
//!
//! * no repair makes a filesystem worse: every problem `e2fsck -fn`
//!   reports after the repair it reported before (its lines compared with
//!   the numbers masked, since a count that was wrong stays wrong by a
//!   different amount);
//! * where e2fsck reports nothing, nothing but what e2fsck -n repairs
//!   silently (`PR_NO_NOMSG` problems: a missing file type) is repaired;
//! * after the repair, our verdict is e2fsck's (clean or repaired exactly
//!   where `e2fsck -fn` then exits 0).
//!
//! And the files `e2fsck -fy` keeps are kept: where both repairs end
//! clean, the two trees are read through `ext4-fs` and compared (every
//! difference is printed; the test fails only on an entry e2fsck keeps
//! that ours lacks, or a file e2fsck keeps with contents that ours has
//! with other contents, lost+found aside).
//!
//! Each run prints how many damaged images end clean and lists the rest by
//! the first line e2fsck still prints. `EXT4_FSCK_REPAIR_CASES` sets the
//! number of mutated cases (default 40), `EXT4_FSCK_REPAIR_SEED` the seed,
//! `EXT4_FSCK_REPAIR_CASE` replays one case.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use common::{E2FSCK_LIMIT, parallel, templates, work_dir};
use ext4_fsck::{Mode, Options, Outcome};
use ext4_testkit::mutate::{make_small_tree, mutate};
use ext4_testkit::oracle::have_e2fsprogs;
use ext4_testkit::rng::{Rng, seed_from_env};

/// What `e2fsck -fn` says about an image: exit status and problem lines
/// with digits masked, in its order (`None` if it did not finish in time).
fn e2fsck_view(img: &Path) -> Option<(i32, Vec<String>)> {
    let out = Command::new("timeout").arg(E2FSCK_LIMIT).arg("e2fsck").arg("-fn").arg(img).output().expect("e2fsck runs");
    let code = out.status.code().filter(|&c| c != 124)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let path = img.display().to_string();
    let lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Pass ") && !l.starts_with(&path) && !l.contains("*****"))
        .map(|l| l.chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect::<String>())
        .collect();
    Some((code, lines))
}

/// How one repair went.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    /// e2fsck reported nothing before (and it was left alone).
    WasClean,
    /// e2fsck finds it clean after the repair.
    Repaired,
    /// Problems remain; the first line e2fsck still prints.
    Left(String),
}

/// Repairs the image file `img` and judges the result; `Err` says what
/// broke a rule of the module documentation.
fn repair_case(img: &Path) -> Result<Option<Verdict>, String> {
    // A journal needing recovery is replayed before anything is judged:
    // e2fsck -n skips it, but the filesystem is what the replay makes it
    // (the kernel and e2fsck -y replay it first too).
    let dev = ext4_blockdev::MemoryDevice::from_vec(std::fs::read(img).unwrap());
    if ext4_fsck::replay_journal(&dev).map_err(|e| format!("replay failed: {e}"))? {
        std::fs::write(img, dev.to_vec()).unwrap();
    }
    let Some((_, before)) = e2fsck_view(img) else { return Ok(None) };
    let bytes = dev.to_vec();
    let opts = Options { mode: Mode::Repair, now: Some(1_800_000_000), ..Options::default() };
    let report = match ext4_fsck::check(&dev, opts) {
        Ok(r) => r,
        // A refusal to write is no failure, if nothing was written.
        Err(e) if e.to_string().contains("could not be replayed") && dev.to_vec() == bytes => {
            return Ok(Some(Verdict::Left(format!("ext4 fsck refuses: {e}"))));
        }
        Err(e) => return Err(format!("repair failed: {e}")),
    };
    let after_bytes = dev.into_vec();
    if before.is_empty() && after_bytes == bytes {
        return Ok(Some(Verdict::WasClean));
    }
    if before.is_empty() && report.problems.iter().any(|p| p.fixed && p.counts) {
        return Err("an error was repaired where e2fsck -fn reports nothing".into());
    }
    std::fs::write(img, &after_bytes).unwrap();
    let Some((after_code, after)) = e2fsck_view(img) else { return Err("e2fsck does not finish after the repair".into()) };
    let before: BTreeSet<&String> = before.iter().collect();
    let new: Vec<&String> = after.iter().filter(|l| !before.contains(l)).collect();
    if !new.is_empty() {
        let fixed: Vec<String> = report.problems.iter().filter(|p| p.fixed).map(|p| format!("{} {}", p.code, p.detail)).collect();
        return Err(format!("worse: e2fsck -fn now also reports {new:?}; we fixed {fixed:?}"));
    }
    let ours_clean = matches!(report.outcome, Outcome::Clean | Outcome::Repaired);
    if ours_clean != (after_code == 0) {
        return Err(format!("after the repair ours says {}, e2fsck exits {after_code}", report.outcome.name()));
    }
    Ok(Some(match after_code {
        0 if before.is_empty() => Verdict::WasClean,
        0 => Verdict::Repaired,
        _ => Verdict::Left(after.into_iter().next().unwrap_or_default()),
    }))
}

/// Runs `cases` (name, image writer) and prints the tally; returns the failures.
fn run_cases<T: Sync>(tag: &str, items: &[T], write: impl Fn(&T, &Path) -> String + Sync) -> Vec<String> {
    let work = work_dir(tag);
    let verdicts = Mutex::new(Vec::new());
    let serial = std::sync::atomic::AtomicUsize::new(0);
    let bad = parallel(items, |item| {
        let img = work.join(format!("{}.img", serial.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
        let name = write(item, &img);
        let r = repair_case(&img);
        let _ = std::fs::remove_file(&img);
        match r {
            Ok(Some(v)) => {
                verdicts.lock().unwrap().push((v, name));
                None
            }
            Ok(None) => None,
            Err(e) => Some(format!("{name}: {e}")),
        }
    });
    let _ = std::fs::remove_dir_all(&work);
    let mut v = verdicts.into_inner().unwrap();
    v.sort();
    let damaged = v.iter().filter(|(v, _)| *v != Verdict::WasClean).count();
    let repaired = v.iter().filter(|(v, _)| *v == Verdict::Repaired).count();
    println!("{tag}: {} images, {damaged} damaged, {repaired} clean after ext4 fsck -y, {} failures", v.len(), bad.len());
    for (verdict, name) in &v {
        if let Verdict::Left(line) = verdict {
            println!("  left: {name}: {line}");
        }
    }
    bad
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn corpus_repairs_never_make_things_worse() {
    let corpus = ext4_testkit::shared_dir().join("corpus/e2fsprogs-fsck");
    if !corpus.is_dir() {
        println!("SKIPPED: {} not present", corpus.display());
        return;
    }
    if !ext4_testkit::require(have_e2fsprogs(), "e2fsprogs not installed") {
        return;
    }
    let mut names: Vec<std::path::PathBuf> =
        std::fs::read_dir(&corpus).unwrap().flatten().map(|e| e.path()).filter(|p| p.join("image.gz").exists()).collect();
    names.sort();
    let bad = run_cases("repair-corpus", &names, |dir, img| {
        let out = Command::new("zcat").arg(dir.join("image.gz")).output().expect("zcat runs");
        std::fs::write(img, out.stdout).unwrap();
        dir.file_name().unwrap().to_string_lossy().into_owned()
    });
    assert!(bad.is_empty(), "repairs broke a rule on {} corpus images:\n{}", bad.len(), bad.join("\n"));
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn mutated_repairs_never_make_things_worse() {
    if !ext4_testkit::require(have_e2fsprogs(), "e2fsprogs not installed") {
        return;
    }
    let work = work_dir("repair-templates");
    let tree = work.join("tree");
    make_small_tree(&tree).unwrap();
    let templates = templates(&tree, &work);
    let cases: u64 = std::env::var("EXT4_FSCK_REPAIR_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(40);
    let seed = seed_from_env("EXT4_FSCK_REPAIR_SEED");
    let only: Option<u64> = std::env::var("EXT4_FSCK_REPAIR_CASE").ok().and_then(|s| s.parse().ok());
    let list: Vec<u64> = (0..cases).filter(|c| only.is_none_or(|o| o == *c)).collect();
    let bad = run_cases("repair-mutated", &list, |&case, img| {
        let mut rng = Rng::new(seed ^ case.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let t = &templates[rng.index(templates.len())];
        let mut bytes = t.bytes.to_vec();
        let what = mutate(t, &mut bytes, &mut rng);
        std::fs::write(img, &bytes).unwrap();
        format!("case {case} ({}): {what}", t.name)
    });
    let _ = std::fs::remove_dir_all(&work);
    println!("seed {seed:#x}");
    assert!(bad.is_empty(), "repairs broke a rule (EXT4_FSCK_REPAIR_SEED={seed:#x}):\n{}", bad.join("\n"));
}

/// The tree of the image file `img` through ext4-fs, if it opens.
fn tree_of(img: &Path) -> Option<ext4_testkit::snapshot::Snapshot> {
    let dev = ext4_blockdev::FileDevice::open(img, true).ok()?;
    let fs = ext4_fs::Filesystem::open(dev, ext4_fs::OpenOptions::read_only()).ok()?;
    let mut snap = ext4_testkit::snapshot::Snapshot::from_image(&fs, b"/").ok()?;
    snap.remove_tree(b"/lost+found");
    Some(snap)
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn corpus_repairs_keep_what_e2fsck_keeps() {
    let corpus = ext4_testkit::shared_dir().join("corpus/e2fsprogs-fsck");
    if !corpus.is_dir() {
        println!("SKIPPED: {} not present", corpus.display());
        return;
    }
    if !ext4_testkit::require(have_e2fsprogs(), "e2fsprogs not installed") {
        return;
    }
    let mut names: Vec<std::path::PathBuf> =
        std::fs::read_dir(&corpus).unwrap().flatten().map(|e| e.path()).filter(|p| p.join("image.gz").exists()).collect();
    names.sort();
    let work = work_dir("repair-trees");
    let compared = std::sync::atomic::AtomicUsize::new(0);
    let bad = parallel(&names, |dir| {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let (ours, theirs) = (work.join(format!("{name}.ours")), work.join(format!("{name}.e2fsck")));
        let out = Command::new("zcat").arg(dir.join("image.gz")).output().expect("zcat runs");
        std::fs::write(&ours, &out.stdout).unwrap();
        std::fs::write(&theirs, &out.stdout).unwrap();
        let r = (|| {
            let before = e2fsck_view(&ours)?;
            let dev = ext4_blockdev::MemoryDevice::from_vec(out.stdout.clone());
            let opts = Options { mode: Mode::Repair, now: Some(1_800_000_000), ..Options::default() };
            ext4_fsck::check(&dev, opts).ok()?;
            std::fs::write(&ours, dev.into_vec()).unwrap();
            let fixed = Command::new("timeout").arg(E2FSCK_LIMIT).arg("e2fsck").arg("-fy").arg(&theirs).output().ok()?;
            fixed.status.code().filter(|&c| c != 124)?;
            // Only images both repairs leave clean, that were damaged.
            if before.1.is_empty() || e2fsck_view(&ours)?.0 != 0 || e2fsck_view(&theirs)?.0 != 0 {
                return None;
            }
            let (a, b) = (tree_of(&theirs)?, tree_of(&ours)?);
            compared.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let diff = a.diff(&b);
            for d in &diff {
                println!("  {name}: e2fsck -fy vs ours: {d}");
            }
            // Lost: an entry e2fsck keeps that ours lacks, or a file e2fsck
            // keeps with contents whose contents differ in ours.
            let lost: Vec<String> = a
                .nodes
                .iter()
                .filter(|(p, n)| b.nodes.get(*p).is_none_or(|m| n.size > 0 && n.sha256 != m.sha256))
                .map(|(p, _)| String::from_utf8_lossy(p).into_owned())
                .collect();
            (!lost.is_empty()).then(|| format!("{name}: files e2fsck keeps are lost or changed: {lost:?}"))
        })();
        let _ = std::fs::remove_file(&ours);
        let _ = std::fs::remove_file(&theirs);
        r
    });
    let _ = std::fs::remove_dir_all(&work);
    println!("repair-trees: {} images compared with e2fsck -fy's repair, {} losing files", compared.into_inner(), bad.len());
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

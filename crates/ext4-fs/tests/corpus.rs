//! Every image of e2fsprogs' fsck test suite (`shared/corpus/e2fsprogs-fsck`,
//! almost all deliberately damaged) is opened read-only (with and without
//! checksum verification) and walked whole — every directory listed and
//! looked up, every inode stat'ed, every file read, every symlink read and
//! followed, every xattr listed — then, on a scratch copy in memory, opened
//! read-write, written to (create, write, xattrs, mkdir, rename, truncate,
//! unlink, rmdir, sync), closed, reopened and walked again.
//!
//! Errors are fine; a panic, a walk over its time budget, or an allocation
//! over `ext4_bounded_alloc::ALLOC_LIMIT` fails the test (every image is tried first and
//! all failures are listed).
//!
//! `EXT4_CORPUS_BUDGET_SECS` sets the per-image budget (default 30 s).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ext4_fs::{Filesystem, MemoryDevice, OpenOptions};
use ext4_testkit::hostile::{self, Limits, Outcome, WalkStats};

#[global_allocator]
static ALLOC: ext4_bounded_alloc::BoundedAlloc = ext4_bounded_alloc::BoundedAlloc;

/// What happened to one image.
/// A read-write session: (calls, calls that failed, the close's result).
type RwStats = (u64, u64, Result<(), String>);

#[derive(Debug, Default)]
struct Report {
    /// Read-only open: `Ok(walk)` or the error.
    ro: Option<Result<WalkStats, String>>,
    /// Read-only open without checksum verification.
    ro_nocsum: Option<Result<WalkStats, String>>,
    /// Read-write open: `Ok((calls, errors, close result))` or the error.
    rw: Option<Result<RwStats, String>>,
    /// The walk after the writes and a reopen.
    after: Option<Result<WalkStats, String>>,
}

fn corpus_dir() -> PathBuf {
    ext4_testkit::shared_dir().join("corpus").join("e2fsprogs-fsck")
}

fn gunzip(path: &Path) -> Vec<u8> {
    let out = Command::new("gzip").arg("-dc").arg(path).output().expect("gzip runs");
    assert!(out.status.success(), "gzip -dc {} failed", path.display());
    out.stdout
}

fn open_walk(bytes: Vec<u8>, opts: OpenOptions) -> Result<WalkStats, String> {
    let fs = Filesystem::open(MemoryDevice::from_vec(bytes), opts).map_err(|e| e.to_string())?;
    Ok(hostile::walk(&fs, Limits::default()))
}

/// Everything done to one image.
fn exercise(bytes: Vec<u8>) -> Report {
    let mut r = Report { ro: Some(open_walk(bytes.clone(), OpenOptions::read_only())), ..Report::default() };
    r.ro_nocsum = Some(open_walk(bytes.clone(), OpenOptions { verify_checksums: false, ..OpenOptions::read_only() }));
    let dev = std::sync::Arc::new(MemoryDevice::from_vec(bytes));
    match Filesystem::open(dev.clone(), OpenOptions::read_write()) {
        Err(e) => r.rw = Some(Err(e.to_string())),
        Ok(mut fs) => {
            let (calls, errors) = hostile::write_workload(&mut fs);
            let closed = fs.close().map_err(|e| e.to_string());
            r.rw = Some(Ok((calls, errors, closed)));
            r.after = Some(open_walk(dev.to_vec(), OpenOptions::read_only()));
        }
    }
    r
}

fn short(e: &str) -> String {
    e.chars().take(110).collect()
}

#[ext4_testkit::oracle_test(gzip)]
fn every_corpus_image_is_walked_and_written_without_panic_or_hang() {
    let dir = corpus_dir();
    if !dir.is_dir() {
        // An extra corpus beside the repository (CI has it); a fresh clone
        // does not, and the README's commands must pass there.
        println!("SKIPPED: corpus not found at {}", dir.display());
        return;
    }
    if !ext4_testkit::require(Command::new("gzip").arg("--version").output().is_ok(), "gzip not installed") {
        return;
    }
    let budget = Duration::from_secs(std::env::var("EXT4_CORPUS_BUDGET_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30));
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    names.sort();
    let start = Instant::now();
    let (mut images, mut ro_ok, mut ro_err, mut nocsum_ok, mut rw_ok, mut rw_err, mut close_err, mut after_ok) = (0, 0, 0, 0, 0, 0, 0, 0);
    let mut totals = WalkStats::default();
    let mut failures = Vec::new();
    for d in &names {
        let img = d.join("image.gz");
        if !img.exists() {
            continue;
        }
        images += 1;
        let name = d.file_name().unwrap().to_string_lossy().to_string();
        let bytes = gunzip(&img);
        let t = Instant::now();
        let rep = match hostile::run_case(&name, budget, move || exercise(bytes)) {
            Outcome::Done(r) => r,
            Outcome::Panicked(m) => {
                failures.push(format!("{name}: PANIC {m}"));
                continue;
            }
            Outcome::TimedOut => {
                failures.push(format!("{name}: HANG (over {budget:?})"));
                continue;
            }
        };
        let mut line = format!("{name:<34} {:>5} ms ", hostile::ms(t));
        match rep.ro.as_ref().unwrap() {
            Ok(w) => {
                ro_ok += 1;
                add(&mut totals, w);
                line +=
                    &format!("ro: walked {} dirs {} files {} links, {}/{} calls failed", w.dirs, w.files, w.symlinks, w.errors, w.calls);
            }
            Err(e) => {
                ro_err += 1;
                line += &format!("ro: refused: {}", short(e));
            }
        }
        if let Some(Ok(w)) = &rep.ro_nocsum {
            nocsum_ok += 1;
            add(&mut totals, w);
        }
        match rep.rw.as_ref().unwrap() {
            Ok((calls, errs, closed)) => {
                rw_ok += 1;
                line += &format!("; rw: {errs}/{calls} writes failed");
                if let Err(e) = closed {
                    close_err += 1;
                    line += &format!(", close: {}", short(e));
                }
            }
            Err(e) => {
                rw_err += 1;
                line += &format!("; rw refused: {}", short(e));
            }
        }
        if let Some(Ok(w)) = &rep.after {
            after_ok += 1;
            add(&mut totals, w);
        }
        println!("{line}");
    }
    println!(
        "corpus: {images} images in {:.1} s; read-only: {ro_ok} opened and walked, {ro_err} refused with an error; \
         without checksums: {nocsum_ok} opened; read-write: {rw_ok} opened and written ({close_err} close errors), \
         {rw_err} refused; {after_ok} reopened and walked after writing",
        start.elapsed().as_secs_f64()
    );
    println!(
        "walks: {} dirs, {} files, {} symlinks, {} bytes read, {} of {} calls returned an error",
        totals.dirs, totals.files, totals.symlinks, totals.bytes, totals.errors, totals.calls
    );
    assert!(images >= 200, "expected the 202 corpus images, found {images}");
    assert!(failures.is_empty(), "{} image(s) crashed or hung:\n{}", failures.len(), failures.join("\n"));
}

fn add(t: &mut WalkStats, w: &WalkStats) {
    t.dirs += w.dirs;
    t.files += w.files;
    t.symlinks += w.symlinks;
    t.bytes += w.bytes;
    t.errors += w.errors;
    t.calls += w.calls;
}

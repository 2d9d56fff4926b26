//! Device faults: each workload (create and write files, a directory tree,
//! renames, unlinks and truncates, xattrs) runs on a `FaultDevice` over a
//! fresh mke2fs image in memory, with the n-th write (or flush) failing,
//! for every n until the workload completes without reaching the fault.
//!
//! Two kinds of fault:
//! * a dead device (sticky: that operation and every later one of its kind
//!   fail): the workload stops at the first error, the filesystem is
//!   dropped — a crash at that instant;
//! * a transient failure (only that one operation fails): the workload
//!   carries on past the error and closes the filesystem normally.
//!
//! Asserted for every n: nothing panics; when the fault was reached, some
//! call returned an error; the device contents then open read-write (the
//! journal replays) and close; and on journaled filesystems (ext3, ext4)
//! `e2fsck -fn` is silent on the result.
//!
//! Unjournaled (ext2) filesystems cannot be consistent after a crash at
//! every instant: a dead device there is only required not to panic and to
//! leave an image the library reopens (the e2fsck verdicts are counted and
//! printed). A transient fault on ext2 is held to the same bar as on a
//! journal: the failed operation is undone in memory and the close writes
//! a consistent image, so e2fsck must be silent.
//!
//! `EXT4_FAULTS_STRIDE=k` tries every k-th n only (default 1: every n);
//! `EXT4_FAULTS_ONLY=text` runs the modes whose name contains `text`;
//! `EXT4_FAULTS_KEEP=DIR` keeps the images that fail in DIR.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ext4_fs::blockdev::{FaultDevice, FaultPlan, Op};
use ext4_fs::{Filesystem, MemoryDevice, OpenOptions, Result, XattrMode};
use ext4_testkit::fixtures::{self, Profile, TreeSize, Writer};
use ext4_testkit::hostile::{self, Outcome};
use ext4_testkit::oracle::{e2fsck_problems, have_e2fsprogs};

const fn profile(name: &'static str, mke2fs_args: &'static [&'static str], size: &'static str) -> Profile {
    Profile { name, mke2fs_args, conf_defaults: "", size, tree: TreeSize::Small, writer: Writer::Mke2fs }
}

/// The images: (profile, journaled).
const IMAGES: &[(Profile, bool)] = &[
    (profile("fault-ext4-1k", &["-t", "ext4", "-b", "1024", "-N", "512"], "4M"), true),
    (profile("fault-ext4-4k", &["-t", "ext4", "-b", "4096", "-N", "512", "-O", "metadata_csum_seed,orphan_file"], "8M"), true),
    (profile("fault-ext3-1k", &["-t", "ext3", "-b", "1024", "-N", "512"], "4M"), true),
    (profile("fault-ext2-1k", &["-t", "ext2", "-b", "1024", "-N", "512"], "4M"), false),
];

/// Modes (substrings of "image/workload/op kind") that fail today because of
/// library bugs outside this test, with the bug. Their failures are printed
/// but do not fail the test unless `EXT4_FAULTS_STRICT=1`; a listed mode that
/// passes fails the test, so the entry is removed when the bug is fixed.
const KNOWN_BROKEN: &[(&str, &str)] = &[];

/// A workload: its setup (run once, without faults) and its steps.
struct Workload {
    name: &'static str,
    setup: fn(&mut Filesystem) -> Result<()>,
    steps: &'static [fn(&mut Filesystem) -> Result<()>],
}

fn data(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn nothing(_: &mut Filesystem) -> Result<()> {
    Ok(())
}

fn setup_files(fs: &mut Filesystem) -> Result<()> {
    fs.mkdir("/d1", 0o755)?;
    fs.mkdir("/d2", 0o755)?;
    fs.mkdir("/d2/sub", 0o755)?;
    for i in 0..16 {
        fs.write_file(format!("/d1/file-{i:02}"), &data(700 * i + 1, i as u8))?;
    }
    fs.write_file("/big", &data(300_000, 9))?;
    Ok(())
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "create+write",
        setup: nothing,
        steps: &[
            |fs| fs.write_file("/a", &data(5000, 1)).map(drop),
            |fs| fs.write_file("/b", &data(70_000, 2)).map(drop),
            |fs| {
                let f = fs.create("/c", 0o600)?;
                fs.write_at(f, 3 << 20, b"sparse end")?;
                fs.write_at(f, 4096, &data(9000, 3)).map(drop)
            },
            |fs| fs.sync(),
            |fs| fs.write_file("/a", &data(12_000, 4)).map(drop),
            |fs| fs.symlink("/a/long/target/".repeat(10), "/link").map(drop),
        ],
    },
    Workload {
        name: "mkdir-tree",
        setup: nothing,
        steps: &[
            |fs| fs.create_dir_all("/t/u/v", 0o755).map(drop),
            |fs| {
                for i in 0..24 {
                    fs.mkdir(format!("/t/dir-with-a-long-name-{i:03}"), 0o755)?;
                }
                Ok(())
            },
            |fs| fs.sync(),
            |fs| {
                for i in 0..20 {
                    fs.create(format!("/t/u/file-with-a-long-name-{i:03}"), 0o644)?;
                }
                Ok(())
            },
        ],
    },
    Workload {
        name: "rename",
        setup: setup_files,
        steps: &[
            |fs| fs.rename("/d1/file-01", "/d2/moved-01"),
            |fs| fs.rename("/d1/file-02", "/d1/file-03"),
            |fs| fs.rename("/d2/sub", "/d1/sub"),
            |fs| fs.sync(),
            |fs| fs.rename("/big", "/d1/sub/big"),
            |fs| {
                for i in 4..16 {
                    fs.rename(format!("/d1/file-{i:02}"), format!("/d2/renamed-{i:02}"))?;
                }
                Ok(())
            },
        ],
    },
    Workload {
        name: "unlink+truncate",
        setup: setup_files,
        steps: &[
            |fs| fs.remove_file("/big"),
            |fs| {
                for i in 0..8 {
                    fs.remove_file(format!("/d1/file-{i:02}"))?;
                }
                Ok(())
            },
            |fs| fs.remove_dir("/d2/sub"),
            |fs| fs.sync(),
            |fs| {
                let f = fs.lookup("/d1/file-15")?;
                fs.truncate(f, 100)?;
                fs.truncate(f, 50_000)
            },
            |fs| fs.remove_dir("/d2"),
        ],
    },
    Workload {
        name: "xattrs",
        setup: setup_files,
        steps: &[
            |fs| {
                let f = fs.lookup("/d1/file-01")?;
                fs.set_xattr(f, b"user.small", b"v", XattrMode::Any)?;
                fs.set_xattr(f, b"user.big", &data(800, 1), XattrMode::Any)
            },
            |fs| {
                for i in 2..10 {
                    let f = fs.lookup(format!("/d1/file-{i:02}"))?;
                    fs.set_xattr(f, b"user.shared", &data(500, 7), XattrMode::Any)?;
                }
                Ok(())
            },
            |fs| fs.sync(),
            |fs| {
                let f = fs.lookup("/d1/file-01")?;
                fs.set_xattr(f, b"user.big", &data(300, 2), XattrMode::Replace)?;
                fs.remove_xattr(f, b"user.small")
            },
            |fs| {
                let f = fs.lookup("/d1/file-05")?;
                fs.remove_xattr(f, b"user.shared")
            },
        ],
    },
];

/// A fresh image with the workload's setup done.
fn base_image(p: &Profile, w: &Workload, dir: &std::path::Path) -> Vec<u8> {
    let path = dir.join(format!("{}.img", p.name));
    fixtures::mke2fs(&path, p, None).expect("mke2fs");
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let dev = Arc::new(MemoryDevice::from_vec(bytes));
    let mut fs = Filesystem::open(dev.clone(), OpenOptions::read_write()).expect("open fresh image");
    (w.setup)(&mut fs).expect("setup");
    fs.close().expect("close after setup");
    dev.to_vec()
}

/// What one faulted run did.
struct Run {
    /// Whether the fault was reached.
    hit: bool,
    /// Whether some call returned an error.
    failed: bool,
    /// The device contents afterwards.
    bytes: Vec<u8>,
}

/// Runs the workload with `plan`; `sticky` faults stop it at the first
/// error and drop the filesystem, transient ones carry on and close.
fn faulted(base: Vec<u8>, w: &'static Workload, plan: FaultPlan) -> Run {
    let dev = Arc::new(FaultDevice::new(MemoryDevice::from_vec(base)));
    dev.set_plan(Some(plan));
    let mut failed = false;
    match Filesystem::open(dev.clone(), OpenOptions::read_write()) {
        Err(_) => failed = true,
        Ok(mut fs) => {
            for step in w.steps {
                if step(&mut fs).is_err() {
                    failed = true;
                    if plan.sticky {
                        break;
                    }
                }
            }
            if plan.sticky && failed {
                drop(fs);
            } else if fs.close().is_err() {
                failed = true;
            }
        }
    }
    let (_, writes, flushes) = dev.counts();
    let seen = if plan.op == Op::Write { writes } else { flushes };
    Run { hit: seen > plan.nth, failed, bytes: dev.inner().to_vec() }
}

/// Reopens the device contents (replaying the journal) and closes them;
/// returns what e2fsck, or the library walking the result, found wrong.
fn reopen_and_check(bytes: Vec<u8>, path: &std::path::Path) -> std::result::Result<Option<String>, String> {
    let dev = Arc::new(MemoryDevice::from_vec(bytes));
    let fs = Filesystem::open(dev.clone(), OpenOptions::read_write()).map_err(|e| format!("reopen: {e}"))?;
    let walked = hostile::walk(&fs, hostile::Limits::default());
    fs.close().map_err(|e| format!("close after reopen: {e}"))?;
    std::fs::write(path, dev.to_vec()).unwrap();
    let fsck = e2fsck_problems(path);
    Ok(match walked.first_corrupt {
        Some(e) => Some(format!(
            "the library's walk: {} of {} calls found damage, first: {e}\n{}",
            walked.corrupt,
            walked.calls,
            fsck.unwrap_or_default()
        )),
        None => fsck,
    })
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn failed_writes_and_flushes_leave_recoverable_images() {
    if !ext4_testkit::require(have_e2fsprogs(), "e2fsprogs not installed") {
        return;
    }
    let stride = std::env::var("EXT4_FAULTS_STRIDE").ok().and_then(|s| s.parse().ok()).unwrap_or(1u64).max(1);
    let only = std::env::var("EXT4_FAULTS_ONLY").ok();
    let keep = std::env::var_os("EXT4_FAULTS_KEEP").map(PathBuf::from);
    let scratch = ext4_testkit::scratch_dir("faults");
    let dir: PathBuf = scratch.path().to_path_buf();
    let check_path = dir.join("check.img");
    let start = Instant::now();
    let strict = std::env::var_os("EXT4_FAULTS_STRICT").is_some();
    let mut failures = Vec::new();
    let mut known = Vec::new();
    let mut ext2_unclean = Vec::new();
    let mut total_runs = 0u64;
    for (p, journaled) in IMAGES {
        for w in WORKLOADS {
            let base = base_image(p, w, &dir);
            for (op, sticky) in [(Op::Write, true), (Op::Write, false), (Op::Flush, true), (Op::Flush, false)] {
                let mode = format!("{}/{}/{op}{}", p.name, w.name, if sticky { " dead" } else { " once" });
                if only.as_ref().is_some_and(|o| !mode.contains(o.as_str())) {
                    continue;
                }
                let (mut runs, mut clean, mut unclean) = (0u64, 0u64, 0u64);
                let failures_before = failures.len();
                let mut n = 0u64;
                loop {
                    let plan = FaultPlan { op, nth: n, sticky };
                    let b = base.clone();
                    let name = format!("{mode} n={n}");
                    let run = match hostile::run_case(&name, Duration::from_secs(60), move || faulted(b, w, plan)) {
                        Outcome::Done(r) => r,
                        Outcome::Panicked(m) => {
                            failures.push(format!("{name}: PANIC {m}"));
                            break;
                        }
                        Outcome::TimedOut => {
                            failures.push(format!("{name}: HANG"));
                            break;
                        }
                    };
                    if !run.hit {
                        break;
                    }
                    runs += 1;
                    if !run.failed {
                        failures.push(format!("{name}: the fault was reached but no call returned an error"));
                    }
                    if let Some(k) = &keep {
                        std::fs::create_dir_all(k).unwrap();
                        std::fs::write(k.join(format!("{}.img", name.replace(['/', ' ', '='], "_"))), &run.bytes).unwrap();
                    }
                    match reopen_and_check(run.bytes, &check_path) {
                        Err(e) => failures.push(format!("{name}: {e}")),
                        Ok(None) => clean += 1,
                        Ok(Some(problems)) => {
                            unclean += 1;
                            if *journaled || !sticky {
                                failures.push(format!("{name}: e2fsck -fn after reopening:\n{problems}"));
                            } else if ext2_unclean.len() < 3 {
                                ext2_unclean.push(format!("{name}: {}", problems.lines().take(6).collect::<Vec<_>>().join(" | ")));
                            }
                        }
                    }
                    n += stride;
                }
                total_runs += runs;
                let bad = failures.len() - failures_before;
                println!("{mode:<44} {runs:>4} faults reached: {clean} e2fsck-clean, {unclean} not, {bad} failures");
                if let Some((_, bug)) = KNOWN_BROKEN.iter().find(|(m, _)| mode.contains(m)).filter(|_| !strict) {
                    let panicked = failures[failures_before..].iter().any(|f| f.contains("PANIC") || f.contains("HANG"));
                    if bad == 0 {
                        if *journaled || !sticky {
                            failures.push(format!("{mode}: listed as broken ({bug}) but passed: remove it from KNOWN_BROKEN"));
                        }
                    } else if !panicked {
                        known.push((*bug, format!("{mode} ({bad} of {runs})")));
                        failures.truncate(failures_before);
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("{total_runs} faulted runs in {:.1} s", start.elapsed().as_secs_f64());
    for (bug, _) in KNOWN_BROKEN {
        let modes: Vec<&str> = known.iter().filter(|(b, _)| b == bug).map(|(_, m)| m.as_str()).collect();
        if !modes.is_empty() {
            println!("KNOWN BUG (EXT4_FAULTS_STRICT=1 fails on it): {bug}\n    failing: {}", modes.join(", "));
        }
    }
    for l in &ext2_unclean {
        println!("ext2 after a dead device (expected without a journal): {l}");
    }
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
}

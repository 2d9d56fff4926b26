//! Crash-state exploration: a workload runs on a recording device; every
//! state a crash could leave (each write boundary, and random subsets of
//! the writes issued since the last flush, which a disk may persist in any
//! order) is rebuilt, recovered — by the library and by e2fsck — and judged:
//!
//! * the recovered tree is one the workload passed through at an operation
//!   boundary, no older than the last completed `sync` (atomic operations,
//!   durable syncs);
//! * `e2fsck -fn` is silent on the recovered image (run once per distinct
//!   recovered image).

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::process::Command;
use std::sync::{Arc, Mutex};

use ext4_fs::blockdev::{MemoryDevice, RecordedOp, RecordingDevice};
use ext4_fs::{Filesystem, OpenOptions, Timestamp};
use ext4_mkfs::{self as mkfs, FormatOptions, FsType, Profile};

use crate::oracle::e2fsck_problems;
use crate::rng::Rng;
use crate::snapshot::Snapshot;

/// What a workload calls after each operation: `(fs, durable)`, durable
/// right after a `sync`.
pub type PointFn<'a> = dyn FnMut(&mut Filesystem, bool) + 'a;

/// A workload: operations on an open filesystem. After every operation it
/// calls `point(fs, false)`; after `fs.sync()` it calls `point(fs, true)`.
pub struct Workload {
    /// Name shown in reports.
    pub name: &'static str,
    /// Whether it needs extent-mapped files (ext4).
    pub needs_extents: bool,
    /// The operations.
    pub run: fn(&mut Filesystem, &mut PointFn<'_>),
}

/// The filesystem a workload runs on, and how hard to look.
#[derive(Debug, Clone)]
pub struct Config {
    /// Filesystem type.
    pub fs_type: FsType,
    /// Block size.
    pub block_size: u32,
    /// Image size in bytes.
    pub size: u64,
    /// Random write subsets tried per flush epoch, besides every in-order prefix.
    pub reorders_per_epoch: usize,
    /// Also recover every `n`-th distinct crash image with `e2fsck -E journal_only` (0: never).
    pub e2fsck_replay_every: usize,
    /// Seed of the subset choice.
    pub seed: u64,
    /// Worker threads.
    pub threads: usize,
    /// mke2fs arguments for a configuration the project's formatter does
    /// not make (bigalloc); empty: ext4-mkfs formats the image.
    pub mke2fs: &'static [&'static str],
}

impl Config {
    /// A short name for reports (with mke2fs' `-O` features when it formats).
    pub fn label(&self) -> String {
        let features = self.mke2fs.iter().skip_while(|a| **a != "-O").nth(1).map(|f| format!("-{f}")).unwrap_or_default();
        format!("{}-{}k{features}", self.fs_type.name(), self.block_size / 1024)
    }
}

/// What an exploration found.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Crash states recovered and judged.
    pub states: usize,
    /// Distinct recovered images (each checked by e2fsck).
    pub distinct_recovered: usize,
    /// Crash images also recovered by e2fsck.
    pub e2fsck_replays: usize,
    /// Descriptions of failed states (at most 20 kept).
    pub failures: Vec<String>,
    /// Failed states in all.
    pub failed: usize,
}

/// The tree of an open filesystem, without `lost+found`.
fn tree(fs: &Filesystem) -> Snapshot {
    let mut s = Snapshot::from_image(fs, b"/").unwrap_or_default();
    s.remove_tree(b"lost+found");
    s
}

/// A point the workload passed: the log length then, its tree, and whether a sync had just returned.
struct Point {
    ops: usize,
    tree: Snapshot,
    durable: bool,
}

/// One crash state: the log prefix certainly on disk, and which writes of the next epoch made it.
struct State {
    durable_ops: usize,
    epoch_writes: Vec<usize>,
}

fn format(cfg: &Config) -> Result<Vec<u8>, String> {
    if !cfg.mke2fs.is_empty() {
        let path = crate::scratch_file("crash");
        let made = crate::fixtures::mke2fs_sized(&path, cfg.size, cfg.mke2fs).and_then(|()| std::fs::read(&path));
        return made.map_err(|e| e.to_string());
    }
    let dev = Arc::new(MemoryDevice::new(cfg.size as usize));
    let opts = FormatOptions::new(cfg.fs_type)
        .profile(Profile::UPSTREAM)
        .size_bytes(cfg.size)
        .block_size(cfg.block_size)
        .uuid([7; 16])
        .hash_seed([9; 16])
        .time(1_700_000_000);
    mkfs::format(&*dev, &opts, &mut |_| std::ops::ControlFlow::Continue(())).map_err(|e| e.to_string())?;
    Ok(dev.to_vec())
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

fn apply(image: &mut [u8], op: &RecordedOp) {
    if let RecordedOp::Write { offset, data } = op {
        let o = *offset as usize;
        image[o..o + data.len()].copy_from_slice(data);
    }
}

/// Runs `w` on a fresh filesystem of `cfg` and judges its crash states.
pub fn explore(w: &Workload, cfg: &Config) -> Result<Report, String> {
    let base = format(cfg)?;
    let journal = {
        let fs = Filesystem::open(Arc::new(MemoryDevice::from_vec(base.clone())), OpenOptions::read_only()).map_err(|e| e.to_string())?;
        let bs = u64::from(fs.geometry().block_size);
        let mut log: Vec<(usize, usize)> =
            fs.journal_extents().iter().map(|&(b, n)| ((b * bs) as usize, ((b + n) * bs) as usize)).collect();
        // The journal superblock stays in the hash: only the log is noise.
        if let Some(first) = log.first_mut() {
            first.0 += bs as usize;
        }
        log
    };
    let dev = Arc::new(RecordingDevice::new(MemoryDevice::from_vec(base.clone())));
    let mut fs = Filesystem::open(Arc::clone(&dev), OpenOptions::read_write()).map_err(|e| e.to_string())?;
    fs.set_fixed_time(Some(Timestamp { secs: 1_700_000_000, nsec: 0 }));
    let mut points = vec![Point { ops: dev.op_count(), tree: tree(&fs), durable: true }];
    {
        let dev2 = Arc::clone(&dev);
        let mut point = |fs: &mut Filesystem, durable: bool| points.push(Point { ops: dev2.op_count(), tree: tree(fs), durable });
        (w.run)(&mut fs, &mut point);
    }
    // A crash: the filesystem is never closed.
    std::mem::forget(fs);
    let log = dev.log();

    // The crash states: flush epochs, their in-order prefixes and random subsets.
    let mut states = Vec::new();
    let mut rng = Rng::new(cfg.seed);
    let mut start = 0;
    for end in (0..=log.len()).filter(|&i| i == log.len() || matches!(log[i], RecordedOp::Flush)) {
        let writes: Vec<usize> = (start..end).filter(|&i| matches!(log[i], RecordedOp::Write { .. })).collect();
        for k in 0..=writes.len() {
            states.push(State { durable_ops: start, epoch_writes: writes[..k].to_vec() });
        }
        if writes.len() > 1 {
            let mut seen = HashSet::new();
            for _ in 0..cfg.reorders_per_epoch {
                let subset: Vec<usize> = writes.iter().copied().filter(|_| rng.chance(50)).collect();
                if seen.insert(subset.clone()) {
                    states.push(State { durable_ops: start, epoch_writes: subset });
                }
            }
        }
        start = end + 1;
    }

    // Durable images at each epoch start, built incrementally.
    let mut durable_images: Vec<(usize, Arc<Vec<u8>>)> = Vec::new();
    let mut image = base.clone();
    let mut applied = 0;
    for s in &states {
        if durable_images.last().is_none_or(|(ops, _)| *ops != s.durable_ops) {
            for op in &log[applied..s.durable_ops.min(log.len())] {
                apply(&mut image, op);
            }
            applied = s.durable_ops.min(log.len());
            durable_images.push((s.durable_ops, Arc::new(image.clone())));
        }
    }

    let report = Mutex::new(Report::default());
    let checked_recovered = Mutex::new(HashSet::new());
    let checked_crash = Mutex::new(0usize);
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for t in 0..cfg.threads.max(1) {
            let (states, log, points, durable_images, journal) = (&states, &log, &points, &durable_images, &journal);
            let (report, checked_recovered, checked_crash, next) = (&report, &checked_recovered, &checked_crash, &next);
            scope.spawn(move || {
                let scratch = crate::scratch_file(&format!("crash-{t}"));
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(s) = states.get(i) else { break };
                    let base = &durable_images.iter().find(|(ops, _)| *ops == s.durable_ops).expect("built").1;
                    let mut img = (**base).clone();
                    for &k in &s.epoch_writes {
                        apply(&mut img, &log[k]);
                    }
                    let verdict = judge(cfg, &img, journal, s, points, checked_recovered, checked_crash, &scratch);
                    let mut r = report.lock().unwrap_or_else(|e| e.into_inner());
                    r.states += 1;
                    match verdict {
                        Ok((new_recovered, replayed)) => {
                            r.distinct_recovered += usize::from(new_recovered);
                            r.e2fsck_replays += usize::from(replayed);
                        }
                        Err(e) => {
                            r.failed += 1;
                            if r.failures.len() < 20 {
                                r.failures.push(format!(
                                    "{} on {}: crash after {} durable ops + writes {:?}: {e}",
                                    w.name,
                                    cfg.label(),
                                    s.durable_ops,
                                    s.epoch_writes
                                ));
                            }
                        }
                    }
                }
            });
        }
    });
    Ok(report.into_inner().unwrap_or_else(|e| e.into_inner()))
}

/// Recovers one crash image and judges it (`journal`: byte ranges of the log). Returns whether its recovered
/// image was new (and so checked by e2fsck) and whether e2fsck replayed it too.
#[allow(clippy::too_many_arguments)]
fn judge(
    cfg: &Config,
    img: &[u8],
    journal: &[(usize, usize)],
    s: &State,
    points: &[Point],
    checked_recovered: &Mutex<HashSet<u64>>,
    checked_crash: &Mutex<usize>,
    scratch: &std::path::Path,
) -> Result<(bool, bool), String> {
    // The window of acceptable trees: from the last sync durable before the crash
    // to the next sync (the one that may have been under way).
    let first = points.iter().rposition(|p| p.durable && p.ops <= s.durable_ops).unwrap_or(0);
    let last = points[first + 1..].iter().position(|p| p.durable).map(|k| first + 1 + k).unwrap_or(points.len() - 1);
    let window = &points[first..=last];

    let mem = Arc::new(MemoryDevice::from_vec(img.to_vec()));
    let fs = Filesystem::open(Arc::clone(&mem), OpenOptions::read_write()).map_err(|e| format!("open (replay) failed: {e}"))?;
    let got = tree(&fs);
    fs.close().map_err(|e| format!("close failed: {e}"))?;
    if !window.iter().any(|p| p.tree.diff(&got).is_empty()) {
        let d = window[0].tree.diff(&got);
        return Err(format!("recovered tree is not a state between syncs (vs last sync: {:?})", &d[..d.len().min(3)]));
    }
    let recovered = mem.to_vec();
    // After recovery the log (s_start = 0) is dead space to e2fsck: states
    // that differ only there are the same filesystem.
    let mut key = recovered.clone();
    for &(a, b) in journal {
        let end = b.min(key.len());
        key[a..end].fill(0);
    }
    let new = checked_recovered.lock().unwrap_or_else(|e| e.into_inner()).insert(hash(&key));
    if new {
        std::fs::write(scratch, &recovered).map_err(|e| e.to_string())?;
        if let Some(p) = e2fsck_problems(scratch) {
            return Err(format!("e2fsck after the library's recovery:\n{p}"));
        }
    }
    let mut replayed = false;
    if cfg.e2fsck_replay_every > 0 {
        let turn = {
            let mut n = checked_crash.lock().unwrap_or_else(|e| e.into_inner());
            *n += 1;
            *n % cfg.e2fsck_replay_every == 0
        };
        if turn {
            replayed = true;
            std::fs::write(scratch, img).map_err(|e| e.to_string())?;
            let out = Command::new("e2fsck").args(["-y", "-E", "journal_only"]).arg(scratch).output().map_err(|e| e.to_string())?;
            if out.status.code().unwrap_or(8) >= 4 {
                return Err(format!("e2fsck journal replay failed: {}", String::from_utf8_lossy(&out.stdout)));
            }
            let fs = Filesystem::open_path(scratch, OpenOptions::read_only()).map_err(|e| format!("open after e2fsck's replay: {e}"))?;
            let theirs = tree(&fs);
            drop(fs);
            if !window.iter().any(|p| p.tree.diff(&theirs).is_empty()) {
                return Err("e2fsck's recovery shows a tree between operations".into());
            }
        }
    }
    Ok((new, replayed))
}

fn data(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i / 3 + seed * 31) as u8).collect()
}

/// The workloads `cargo xtask crash` and the tests explore.
pub fn workloads() -> Vec<Workload> {
    vec![
        Workload {
            name: "create",
            needs_extents: false,
            run: |fs, point| {
                for i in 0..16 {
                    fs.write_file(format!("/f{i}"), &data(i, 100 + i * 300)).unwrap();
                    point(fs, false);
                    if i % 3 == 2 {
                        fs.sync().unwrap();
                        point(fs, true);
                    }
                }
            },
        },
        Workload {
            name: "overwrite",
            needs_extents: false,
            run: |fs, point| {
                let ino = fs.write_file("/file", &data(1, 20_000)).unwrap();
                fs.sync().unwrap();
                point(fs, true);
                for i in 0..8u64 {
                    fs.write_at(ino, i * 3000 + 500, &data(i as usize + 2, 4000)).unwrap();
                    point(fs, false);
                    fs.sync().unwrap();
                    point(fs, true);
                }
            },
        },
        Workload {
            name: "rename",
            needs_extents: false,
            run: |fs, point| {
                fs.create_dir_all("/a", 0o755).unwrap();
                fs.create_dir_all("/b", 0o755).unwrap();
                for i in 0..8 {
                    fs.write_file(format!("/a/x{i}"), &data(i, 50)).unwrap();
                }
                fs.sync().unwrap();
                point(fs, true);
                for i in 0..8 {
                    let to = if i % 2 == 0 { format!("/b/y{i}") } else { format!("/a/x{}", i - 1) };
                    fs.rename(format!("/a/x{i}"), to).unwrap();
                    point(fs, false);
                    if i % 2 == 1 {
                        fs.sync().unwrap();
                        point(fs, true);
                    }
                }
                fs.rename("/b", "/a/b").unwrap();
                point(fs, false);
                fs.sync().unwrap();
                point(fs, true);
            },
        },
        Workload {
            name: "unlink",
            needs_extents: false,
            run: |fs, point| {
                for i in 0..12 {
                    fs.write_file(format!("/u{i}"), &data(i, 5000)).unwrap();
                }
                fs.sync().unwrap();
                point(fs, true);
                for i in (0..12).step_by(2) {
                    fs.remove_file(format!("/u{i}")).unwrap();
                    point(fs, false);
                    fs.sync().unwrap();
                    point(fs, true);
                }
            },
        },
        Workload {
            name: "mkdir-tree",
            needs_extents: false,
            run: |fs, point| {
                for i in 0..5 {
                    for j in 0..3 {
                        fs.create_dir_all(format!("/d{i}/e{j}/f"), 0o750).unwrap();
                        point(fs, false);
                    }
                    fs.sync().unwrap();
                    point(fs, true);
                }
                for i in 0..5 {
                    fs.remove_dir(format!("/d{i}/e1/f")).unwrap();
                    point(fs, false);
                    fs.remove_dir(format!("/d{i}/e1")).unwrap();
                    point(fs, false);
                }
                fs.sync().unwrap();
                point(fs, true);
            },
        },
        Workload {
            name: "xattrs",
            needs_extents: false,
            run: |fs, point| {
                let ino = fs.write_file("/x", b"x").unwrap();
                let ino2 = fs.write_file("/y", b"y").unwrap();
                for i in 0..8 {
                    let value = data(i, if i % 3 == 0 { 300 } else { 20 });
                    fs.set_xattr(ino, format!("user.k{i}").as_bytes(), &value, ext4_fs::XattrMode::Any).unwrap();
                    fs.set_xattr(ino2, format!("user.k{i}").as_bytes(), &value, ext4_fs::XattrMode::Any).unwrap();
                    point(fs, false);
                    if i % 2 == 1 {
                        fs.remove_xattr(ino, format!("user.k{}", i - 1).as_bytes()).unwrap();
                        fs.remove_xattr(ino2, format!("user.k{}", i - 1).as_bytes()).unwrap();
                        point(fs, false);
                        fs.sync().unwrap();
                        point(fs, true);
                    }
                }
            },
        },
        Workload {
            name: "truncate",
            needs_extents: false,
            run: |fs, point| {
                let ino = fs.write_file("/t", &data(3, 60_000)).unwrap();
                fs.sync().unwrap();
                point(fs, true);
                for size in [50_000u64, 70_000, 1000, 0, 30_000, 12_345] {
                    fs.truncate(ino, size).unwrap();
                    point(fs, false);
                    fs.sync().unwrap();
                    point(fs, true);
                }
            },
        },
        Workload {
            name: "big-dir",
            needs_extents: false,
            run: |fs, point| {
                fs.create_dir_all("/big", 0o755).unwrap();
                for i in 0..240 {
                    fs.write_file(format!("/big/entry-with-a-long-name-{i:05}"), b"").unwrap();
                    point(fs, false);
                    if i % 40 == 39 {
                        fs.sync().unwrap();
                        point(fs, true);
                    }
                }
                for i in (0..240).step_by(3) {
                    fs.remove_file(format!("/big/entry-with-a-long-name-{i:05}")).unwrap();
                    point(fs, false);
                }
                fs.sync().unwrap();
                point(fs, true);
            },
        },
        Workload {
            name: "fsync-heavy",
            needs_extents: false,
            run: |fs, point| {
                let ino = fs.create("/log", 0o644).unwrap();
                for i in 0..20u64 {
                    fs.write_at(ino, i * 700, &data(i as usize, 700)).unwrap();
                    point(fs, false);
                    fs.sync().unwrap();
                    point(fs, true);
                }
            },
        },
        Workload {
            name: "links",
            needs_extents: false,
            run: |fs, point| {
                fs.write_file("/orig", &data(5, 3000)).unwrap();
                fs.sync().unwrap();
                point(fs, true);
                for i in 0..5 {
                    fs.hard_link("/orig", format!("/hl{i}")).unwrap();
                    point(fs, false);
                    fs.symlink(format!("/orig-{}", "s".repeat(i * 40)), format!("/sl{i}")).unwrap();
                    point(fs, false);
                    fs.sync().unwrap();
                    point(fs, true);
                }
                fs.remove_file("/orig").unwrap();
                point(fs, false);
                fs.remove_file("/hl0").unwrap();
                point(fs, false);
                fs.sync().unwrap();
                point(fs, true);
            },
        },
        Workload {
            name: "punch-fallocate",
            needs_extents: true,
            run: |fs, point| {
                let ino = fs.write_file("/p", &data(7, 80_000)).unwrap();
                fs.sync().unwrap();
                point(fs, true);
                for i in 0..5u64 {
                    fs.punch_hole(ino, i * 15_000, 6000).unwrap();
                    point(fs, false);
                    fs.fallocate(ino, 100_000 + i * 8192, 8192, i % 2 == 0).unwrap();
                    point(fs, false);
                    fs.sync().unwrap();
                    point(fs, true);
                }
            },
        },
        Workload {
            // Bigalloc's partial clusters: holes punched inside clusters the
            // file keeps, then written again (blocks of a cluster allocated
            // by an earlier transaction), and truncates that end mid-cluster.
            name: "cluster-holes",
            needs_extents: true,
            run: |fs, point| {
                let ino = fs.write_file("/c", &data(9, 70_000)).unwrap();
                fs.sync().unwrap();
                point(fs, true);
                for i in 0..4u64 {
                    fs.punch_hole(ino, 1024 + i * 17_000, 2048).unwrap();
                    point(fs, false);
                    fs.sync().unwrap();
                    point(fs, true);
                    fs.write_at(ino, 1024 + i * 17_000, &data(i as usize + 20, 1500)).unwrap();
                    point(fs, false);
                    fs.truncate(ino, 66_000 - i * 9000).unwrap();
                    point(fs, false);
                    fs.sync().unwrap();
                    point(fs, true);
                }
                fs.write_at(ino, 90_000, &data(30, 3000)).unwrap();
                point(fs, false);
                fs.sync().unwrap();
                point(fs, true);
            },
        },
        Workload {
            name: "orphans",
            needs_extents: false,
            run: |fs, point| {
                let open = fs.write_file("/open", &data(5, 40_000)).unwrap();
                let big = fs.write_file("/big", &data(7, 120_000)).unwrap();
                fs.write_file("/big2", &data(8, 90_000)).unwrap();
                fs.sync().unwrap();
                point(fs, true);
                // Tiny transactions and steps from here on, so that crashes
                // land between the steps of big truncates and deletes.
                fs.set_transaction_limits(2, 8);
                // A file unlinked while open lives on, recorded as an orphan.
                fs.pin(open);
                fs.remove_file("/open").unwrap();
                point(fs, false);
                fs.sync().unwrap();
                point(fs, true);
                fs.write_at(open, 40_000, &data(6, 5000)).unwrap();
                fs.sync().unwrap();
                point(fs, true);
                fs.release(open).unwrap();
                point(fs, false);
                fs.sync().unwrap();
                point(fs, true);
                // A big truncate and a big delete, in steps.
                fs.truncate(big, 10_000).unwrap();
                point(fs, false);
                fs.sync().unwrap();
                point(fs, true);
                fs.remove_file("/big2").unwrap();
                point(fs, false);
                fs.sync().unwrap();
                point(fs, true);
            },
        },
        Workload {
            name: "reuse-after-commit",
            needs_extents: false,
            run: |fs, point| {
                // Most of the room in one file: a second copy fits only in
                // the blocks the first one frees, which an allocation may
                // take only after the transaction freeing them commits
                // (the retry commits it, between two operations).
                let bs = u64::from(fs.geometry().block_size);
                let len = (fs.statfs().free_blocks * bs * 55 / 100) as usize;
                let ino = fs.create("/big", 0o644).unwrap();
                fs.write_at(ino, 0, &data(1, len)).unwrap();
                fs.sync().unwrap();
                point(fs, true);
                // Blocks free outside the running transaction's frees.
                let committed_free = |fs: &Filesystem| fs.superblock().free_blocks_count() * bs;
                for i in 0..3 {
                    fs.truncate(ino, 0).unwrap();
                    point(fs, false);
                    assert!(len as u64 > committed_free(fs), "the write must need the blocks the truncate freed");
                    fs.write_at(ino, 0, &data(i + 2, len)).unwrap();
                    point(fs, false);
                }
                fs.sync().unwrap();
                point(fs, true);
                fs.remove_file("/big").unwrap();
                point(fs, false);
                for i in 0..2 {
                    let other = fs.create("/other", 0o644).unwrap();
                    point(fs, false);
                    assert!((len + len / 2) as u64 > committed_free(fs), "the write must need the blocks removed before");
                    fs.write_at(other, 0, &data(i + 10, len + len / 2)).unwrap();
                    point(fs, false);
                    fs.remove_file("/other").unwrap();
                    point(fs, false);
                }
                fs.sync().unwrap();
                point(fs, true);
            },
        },
        Workload {
            name: "fragmented",
            needs_extents: false,
            run: |fs, point| {
                let a = fs.create("/frag-a", 0o644).unwrap();
                let b = fs.create("/frag-b", 0o644).unwrap();
                for i in 0..30u64 {
                    fs.write_at(a, i * 2048, &data(i as usize, 1024)).unwrap();
                    fs.write_at(b, i * 2048, &data(i as usize + 1, 1024)).unwrap();
                    point(fs, false);
                    if i % 6 == 5 {
                        fs.sync().unwrap();
                        point(fs, true);
                    }
                }
            },
        },
    ]
}

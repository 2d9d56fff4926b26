//! Fast commits against the kernel: the kernel runs a random workload with
//! fsyncs on a `fast_commit` filesystem (`fast_commit/workload.py`) and is
//! shut down without flushing its log, so the last changes exist only as
//! fast commits. A copy recovered by the kernel (loop mount) is the
//! reference; the library must show the same tree in its read-only view of
//! the crash image and after a writable open of another copy, whose image
//! e2fsck must then find clean and the kernel must read the same.
//!
//! Where the kernel refuses to recover a crash image, the library must
//! refuse to open it too.
//!
//! Cases: `EXT4_FC_CASES` workloads (4 by default), seeds from
//! `EXT4_FC_SEED` onward (the clock by default); every seed is printed
//! with the fast-commit records its recovery replays. The seed also picks
//! the block size (1 KiB or 4 KiB) and the features besides `fast_commit`
//! (mke2fs's defaults; without `metadata_csum`; with `orphan_file` and
//! `metadata_csum_seed`; without `flex_bg` and `64bit`).
//!
//! Beyond the snapshot (names, types, modes, owners, sizes, contents,
//! modification times, links), the change time of every entry but the
//! directories is compared exactly.
//!
//! Directory times: the kernel's replay stamps the directories whose
//! entries it changes with the time of the recovery, as the library does
//! with its own; a directory whose time is after the crash in both trees is
//! compared without it.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use ext4_fs::{FileType, Filesystem, OpenOptions};
use ext4_testkit::oracle::{LoopMount, can_loop_mount, e2fsck_problems, have_e2fsprogs};
use ext4_testkit::snapshot::Snapshot;

/// A scratch directory for one case (its path, and the directory removed on drop).
struct Scratch(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = ext4_testkit::scratch_dir(tag);
        Self(dir.path().to_path_buf(), dir)
    }
}

fn workload_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fast_commit/workload.py")
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The kernel's crash image for `seed`; returns the shutdown time (ns).
fn kernel_crash_image(image: &Path, seed: u64) -> Result<i128, String> {
    let bs = if seed % 2 == 0 { "4096" } else { "1024" };
    let features = match seed % 6 {
        2 => "fast_commit,^metadata_csum",
        3 => "fast_commit,orphan_file,metadata_csum_seed",
        5 => "fast_commit,^flex_bg,^64bit",
        _ => "fast_commit",
    };
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-O", features, "-b", bs])
        .arg(image)
        .arg("64M")
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("mke2fs: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let m = LoopMount::new(image, "").map_err(|e| e.to_string())?;
    let out = Command::new("python3").arg(workload_script()).arg(m.path()).arg(seed.to_string()).output().map_err(|e| e.to_string())?;
    m.unmount().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("workload: {}", String::from_utf8_lossy(&out.stderr)));
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().map_err(|e| format!("workload output: {e}"))
}

/// A tree and the change times of its entries other than directories
/// (the snapshot compares modification times only).
type Tree = (Snapshot, BTreeMap<Vec<u8>, (i64, u32)>);

/// The kernel's recovery of a copy of `crash`: its tree, or why it refused.
fn kernel_recovery(crash: &Path, copy: &Path) -> Result<Tree, String> {
    std::fs::copy(crash, copy).map_err(|e| e.to_string())?;
    let m = LoopMount::new(copy, "").map_err(|e| e.to_string())?;
    let tree = Snapshot::from_host(m.path()).map_err(|e| e.to_string()).and_then(|mut snap| {
        snap.remove_tree(b"lost+found");
        let mut ctimes = BTreeMap::new();
        for path in snap.nodes.iter().filter(|(_, n)| n.kind != FileType::Directory).map(|(p, _)| p) {
            let md = std::fs::symlink_metadata(m.path().join(std::ffi::OsStr::from_bytes(path))).map_err(|e| e.to_string())?;
            ctimes.insert(path.clone(), (md.ctime(), md.ctime_nsec() as u32));
        }
        Ok((snap, ctimes))
    });
    m.unmount().map_err(|e| e.to_string())?;
    tree
}

fn library_tree(fs: &Filesystem) -> Result<Tree, String> {
    let mut snap = Snapshot::from_image(fs, b"/").map_err(|e| e.to_string())?;
    snap.remove_tree(b"lost+found");
    let mut ctimes = BTreeMap::new();
    for path in snap.nodes.iter().filter(|(_, n)| n.kind != FileType::Directory).map(|(p, _)| p) {
        let mut abs = b"/".to_vec();
        abs.extend_from_slice(path);
        let md = fs.symlink_metadata(&abs).map_err(|e| e.to_string())?;
        ctimes.insert(path.clone(), (md.ctime.secs, md.ctime.nsec));
    }
    Ok((snap, ctimes))
}

/// Clears the time of directories stamped after the crash in both trees.
fn forget_replay_stamps(expected: &mut Snapshot, got: &mut Snapshot, crash_ns: i128) {
    let after = |t: (i64, u32)| i128::from(t.0) * 1_000_000_000 + i128::from(t.1) >= crash_ns;
    for (path, e) in expected.nodes.iter_mut() {
        if e.kind != FileType::Directory {
            continue;
        }
        if let Some(g) = got.nodes.get_mut(path) {
            if g.kind == FileType::Directory && after(e.mtime) && after(g.mtime) {
                e.mtime = (0, 0);
                g.mtime = (0, 0);
            }
        }
    }
}

fn same(expected: &Tree, got: Tree, crash_ns: i128, what: &str) -> Result<(), String> {
    let (mut expected, mut got) = ((expected.0.clone(), &expected.1), got);
    forget_replay_stamps(&mut expected.0, &mut got.0, crash_ns);
    let mut diff = expected.0.diff(&got.0);
    for (path, t) in expected.1 {
        if got.1.get(path).is_some_and(|g| g != t) {
            diff.push(format!("{}: ctime {t:?} != {:?}", String::from_utf8_lossy(path), got.1[path]));
        }
    }
    if diff.is_empty() { Ok(()) } else { Err(format!("{what}: {} differences, first: {:?}", diff.len(), &diff[..diff.len().min(6)])) }
}

/// Whether e2fsck's report on the library's image holds nothing but
/// optimization hints (`... could be shorter.  Optimize? no`, exit status
/// 0) that it also gives on the kernel's recovery: extent trees the
/// kernel left deeper than needed before the crash, which no replay
/// touched.
fn only_inherited_hints(ours: &str, kernel: &str) -> bool {
    let problems = |text: &str| -> Vec<String> {
        text.lines()
            .skip(1)
            .filter(|l| !(l.is_empty() || l.starts_with("e2fsck ") || l.starts_with("Pass ") || l.contains(" files (")))
            .map(str::to_owned)
            .collect()
    };
    let theirs = problems(kernel);
    ours.starts_with("exit Some(0)") && problems(ours).iter().all(|l| l.ends_with("Optimize? no") && theirs.contains(l))
}

/// How many records of complete fast commits the crash image holds for
/// its recovery (`EXT4_FC_TAG_*` records other than HEAD, PAD and TAIL),
/// read through the journal inode's blocks as `fs` maps them.
fn fast_commit_records(fs: &Filesystem, crash: &Path) -> Result<String, String> {
    use ext4_fs::jbd2::{DeviceJournal, JournalRun, fast_commit};
    let dev = ext4_fs::FileDevice::open(crash, true).map_err(|e| e.to_string())?;
    let bs = fs.geometry().block_size;
    let extents = fs.journal_extents();
    let runs = extents.iter().scan(0, |j, &(device_block, len)| {
        let r = JournalRun { jblock: *j, device_block, len };
        *j += len;
        Some(r)
    });
    let mut io = DeviceJournal::new(&dev, bs, runs.collect()).map_err(|e| e.to_string())?;
    let rec = ext4_fs::jbd2::scan(&mut io, bs).map_err(|e| e.to_string())?;
    let (Some(geo), Some(tid)) = (rec.geometry(), rec.fast_commit_tid()) else { return Ok("no log".into()) };
    let fc = fast_commit::scan(&mut io, geo, tid, fs.geometry().inode_size as usize).map_err(|e| e.to_string())?;
    let names = ["ADD_RANGE", "DEL_RANGE", "CREAT", "LINK", "UNLINK", "INODE"];
    let counts: Vec<String> = (1..=6u16)
        .map(|t| (names[usize::from(t) - 1], fc.records.iter().filter(|r| r.tag == t).count()))
        .filter(|&(_, n)| n > 0)
        .map(|(name, n)| format!("{n} {name}"))
        .collect();
    Ok(format!("{} fast commits: {}", fc.commits, counts.join(", ")))
}

/// One workload: the kernel's crash image, recovered by the kernel and by
/// the library both ways.
fn run_case(seed: u64) -> Result<String, String> {
    let dir = Scratch::new(&format!("fc-{seed}"));
    let crash = dir.0.join("crash.img");
    let crash_ns = kernel_crash_image(&crash, seed)?;
    let kernel = kernel_recovery(&crash, &dir.0.join("kernel.img"));
    let before = std::fs::read(&crash).map_err(|e| e.to_string())?;
    let read_only = Filesystem::open_path(&crash, OpenOptions::read_only());
    if std::fs::read(&crash).map_err(|e| e.to_string())? != before {
        return Err("the read-only open changed the image".into());
    }
    let ours = dir.0.join("ours.img");
    std::fs::copy(&crash, &ours).map_err(|e| e.to_string())?;
    let writable = Filesystem::open_path(&ours, OpenOptions::read_write());
    let records;
    let expected = match (kernel, read_only, writable) {
        (Err(k), Err(r), Err(w)) => return Ok(format!("the kernel refuses ({}); so does the library: {r}; {w}", k.trim())),
        (Ok(expected), Ok(r), Ok(w)) => {
            records = fast_commit_records(&r, &crash)?;
            same(&expected, library_tree(&r)?, crash_ns, "read-only view")?;
            same(&expected, library_tree(&w)?, crash_ns, "after a writable open")?;
            w.close().map_err(|e| format!("close: {e}"))?;
            expected
        }
        (k, r, w) => {
            return Err(format!(
                "kernel {:?}, read-only open {:?}, writable open {:?}",
                k.err(),
                r.err().map(|e| e.to_string()),
                w.err().map(|e| e.to_string())
            ));
        }
    };
    let kernel_report = e2fsck_problems(&dir.0.join("kernel.img"));
    if let Some(p) = e2fsck_problems(&ours) {
        if !only_inherited_hints(&p, kernel_report.as_deref().unwrap_or_default()) {
            return Err(format!("e2fsck -fn on the library's recovery:\n{p}"));
        }
    }
    let again = kernel_recovery(&ours, &dir.0.join("again.img")).map_err(|e| format!("the kernel mounting the library's recovery: {e}"))?;
    same(&expected, again, crash_ns, "the kernel reading the library's recovery")?;
    let flagged = if kernel_report.is_some() { "; e2fsck flags the kernel's own recovery" } else { "" };
    Ok(format!("{} entries; {records}{flagged}", expected.0.nodes.len()))
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, python3)]
fn kernel_fast_commit_crashes_recover_as_the_kernel_does() {
    if !have_oracles() {
        return;
    }
    let cases = env_u64("EXT4_FC_CASES").unwrap_or(4);
    let base = env_u64("EXT4_FC_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() % 1_000_000).unwrap_or(0) * 1000
    });
    let mut failures = Vec::new();
    let mut kernel_flagged = 0;
    for seed in base..base + cases {
        match run_case(seed) {
            Ok(what) => {
                kernel_flagged += usize::from(what.contains("e2fsck flags"));
                println!("seed {seed}: ok ({what})");
            }
            Err(e) => {
                println!("seed {seed}: FAILED: {e}");
                failures.push(seed);
            }
        }
    }
    println!(
        "{} cases from seed {base}: {} failed {failures:?}; e2fsck flagged the kernel's own recovery in {kernel_flagged}",
        cases,
        failures.len()
    );
    assert!(failures.is_empty(), "failing seeds {failures:?} (rerun one with EXT4_FC_SEED=<seed> EXT4_FC_CASES=1)");
}

/// Python that fsyncs through a full commit of this filesystem only
/// (`sync()` would commit every mounted filesystem, other tests' too).
const PY_PRELUDE: &str = "import ctypes,fcntl,os,struct,sys,time\n\
    os.chdir(sys.argv[1])\n\
    def syncfs():\n    fd = os.open('.', os.O_RDONLY); ctypes.CDLL(None).syncfs(fd); os.close(fd)\n\
    def put(p, d, mode='wb'):\n    f = open(p, mode); f.write(d); f.flush(); os.fsync(f.fileno()); f.close()\n\
    def crash(fd):\n    print(time.time_ns()); fcntl.ioctl(fd, 0x8004587d, struct.pack('I', 2))\n";

/// A crash image made by the Python `script` (after [`PY_PRELUDE`]) on a
/// fresh filesystem with `features`, and the time it printed.
fn scripted_crash(dir: &Path, features: &str, script: &str) -> (PathBuf, i128) {
    let crash = dir.join(format!("crash-{}.img", ext4_testkit::oracle::unique()));
    let out =
        Command::new("mke2fs").args(["-q", "-F", "-t", "ext4", "-b", "1024", "-O", features]).arg(&crash).arg("16M").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m = LoopMount::new(&crash, "").unwrap();
    let out = Command::new("python3").arg("-c").arg(format!("{PY_PRELUDE}{script}")).arg(m.path()).output().unwrap();
    m.unmount().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (crash, String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0))
}

/// The first of up to five attempts that gives `Some`: a full commit
/// forced from outside (another process's `sync`, the commit timer) can
/// overtake the fast commits a scripted crash is after.
fn until<T>(what: &str, mut attempt: impl FnMut() -> Option<T>) -> T {
    (0..5).find_map(|_| attempt()).unwrap_or_else(|| panic!("five crash images without {what}"))
}

fn scratch(tag: &str) -> Scratch {
    Scratch::new(&format!("fc-{tag}"))
}

fn have_oracles() -> bool {
    ext4_testkit::require(
        have_e2fsprogs() && can_loop_mount() && ext4_testkit::oracle::have_tool("python3"),
        "e2fsprogs, python3 and loop mounts (root)",
    )
}

/// A fast commit holding a file that was unlinked while open: the kernel's
/// replay copies the inode record without links, then fails to read it
/// back and refuses to mount. The library refuses both opens and says why.
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, python3)]
fn kernel_refusal_of_an_open_unlinked_inode_is_mirrored() {
    if !have_oracles() {
        return;
    }
    let dir = scratch("refuse");
    let script = "open('a','w').write('a'); syncfs()\n\
                  fd = os.open('a', os.O_WRONLY | os.O_APPEND); os.unlink('a'); os.write(fd, b'more'); os.fsync(fd); crash(fd)\n";
    let crash = until("a kernel refusal", || {
        let (crash, _) = scripted_crash(&dir.0, "fast_commit", script);
        kernel_recovery(&crash, &dir.0.join("kernel.img")).is_err().then_some(crash)
    });
    for opts in [OpenOptions::read_only(), OpenOptions::read_write()] {
        let ours = dir.0.join("ours.img");
        std::fs::copy(&crash, &ours).unwrap();
        let e = Filesystem::open_path(&ours, opts).expect_err("the library must refuse too").to_string();
        assert!(e.contains("fast-commit") && e.contains("without links"), "{e}");
    }
}

/// Fast commits on an `inline_data` filesystem: the kernel's replay reads
/// inline inodes' data as block maps, so the library does not follow it
/// there and refuses both opens, saying so, rather than drop fsync'd data.
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, python3)]
fn fast_commits_with_inline_data_are_refused() {
    if !have_oracles() {
        return;
    }
    let dir = scratch("inline");
    let script = "open('a','w').write('a'); syncfs()\n\
                  fd = os.open('b', os.O_WRONLY | os.O_CREAT); os.write(fd, b'fsynced'); os.fsync(fd); crash(fd)\n";
    let errors = until("fast commits to replay", || {
        let (crash, _) = scripted_crash(&dir.0, "fast_commit,inline_data", script);
        let open = |opts| {
            let ours = dir.0.join("ours.img");
            std::fs::copy(&crash, &ours).unwrap();
            Filesystem::open_path(&ours, opts).err().map(|e| e.to_string())
        };
        // Without fast commits to replay, both opens succeed: try again.
        Some([open(OpenOptions::read_only())?, open(OpenOptions::read_write()).expect("refused read-only, so refused writable")])
    });
    for e in errors {
        assert!(e.contains("fast commits") && e.contains("inline_data"), "{e}");
    }
}

/// A crash while the library recovers: the writes of a writable open that
/// replays fast commits are recorded, and the image as it was after each
/// of them is opened again. Every such image must recover to the kernel's
/// tree, and e2fsck must find it clean after the open that recovered it
/// closed.
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, python3)]
fn a_crash_during_fast_commit_replay_replays_again() {
    use ext4_fs::blockdev::{MemoryDevice, RecordedOp, RecordingDevice, recording_replay};
    if !have_oracles() {
        return;
    }
    let dir = scratch("again");
    let script = "os.mkdir('d'); put('d/old', b'o' * 5000); put('gone', b'g' * 3000); syncfs()\n\
                  put('new', os.urandom(20000)); put('d/old', b'more' * 1000, 'ab')\n\
                  os.link('new', 'd/linked'); os.unlink('gone'); os.rename('d/old', 'moved'); os.mkdir('e')\n\
                  put('e/f', b'f' * 100); os.truncate('new', 1500); put('last', b'l')\n\
                  crash(os.open('.', os.O_RDONLY))\n";
    let (crash, crash_ns, base, log, records) = until("fast commits with CREAT and ADD_RANGE", || {
        let (crash, crash_ns) = scripted_crash(&dir.0, "fast_commit", script);
        let base = std::fs::read(&crash).unwrap();
        let rec = std::sync::Arc::new(RecordingDevice::new(MemoryDevice::from_vec(base.clone())));
        let fs = Filesystem::open(std::sync::Arc::clone(&rec), OpenOptions::read_write()).unwrap();
        let records = fast_commit_records(&fs, &crash).unwrap();
        // The open's writes (the recovery); the crash is just after one of them.
        let log = rec.log();
        drop(fs);
        (records.contains("CREAT") && records.contains("ADD_RANGE")).then_some((crash, crash_ns, base, log, records))
    });
    let expected = kernel_recovery(&crash, &dir.0.join("kernel.img")).expect("the kernel recovers it");
    let writes: Vec<usize> = log.iter().enumerate().filter(|(_, op)| matches!(op, RecordedOp::Write { .. })).map(|(i, _)| i + 1).collect();
    println!("{records}; the recovery writes {} times", writes.len());
    assert!(writes.len() > 10, "the recovery writes {} times", writes.len());
    for &end in &writes {
        let state = recording_replay(&base, &log[..end]);
        let image = dir.0.join("state.img");
        std::fs::write(&image, &state).unwrap();
        let fs = Filesystem::open_path(&image, OpenOptions::read_write()).unwrap_or_else(|e| panic!("after write {end}: {e}"));
        same(&expected, library_tree(&fs).unwrap(), crash_ns, &format!("recovered again after write {end}")).unwrap();
        fs.close().unwrap();
        if let Some(p) = e2fsck_problems(&image) {
            panic!("after write {end} of {}: e2fsck -fn:\n{p}", log.len());
        }
    }
}

/// After the library recovered fast commits, its own journaled writes
/// (full commits) and a crash: the kernel replays the library's log and
/// must not take the fast commits still in the area for new ones. Its tree
/// is the one the library showed before the crash, and e2fsck is silent.
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, python3)]
fn the_kernel_replays_the_library_log_after_a_fast_commit_recovery() {
    use ext4_fs::blockdev::{MemoryDevice, RecordingDevice, recording_replay};
    if !have_oracles() {
        return;
    }
    let dir = scratch("after");
    let script = "put('a', b'a' * 3000); syncfs()\n\
                  put('b', os.urandom(9000)); put('a', b'more', 'ab'); os.link('b', 'c'); os.unlink('a'); put('d', b'd')\n\
                  crash(os.open('.', os.O_RDONLY))\n";
    let base = until("fast commits to replay", || {
        let (crash, _) = scripted_crash(&dir.0, "fast_commit", script);
        let fs = Filesystem::open_path(&crash, OpenOptions::read_only()).unwrap();
        let records = fast_commit_records(&fs, &crash).unwrap();
        (records.contains("ADD_RANGE") && records.contains("UNLINK")).then(|| std::fs::read(&crash).unwrap())
    });
    let rec = std::sync::Arc::new(RecordingDevice::new(MemoryDevice::from_vec(base.clone())));
    let mut fs = Filesystem::open(std::sync::Arc::clone(&rec), OpenOptions::read_write()).unwrap();
    fs.write_file("/written-after", &[7u8; 5000]).unwrap();
    fs.mkdir("/dir-after", 0o755).unwrap();
    fs.remove_file("/c").unwrap();
    fs.rename("/b", "/dir-after/b").unwrap();
    fs.sync().unwrap();
    let expected = library_tree(&fs).unwrap();
    // The crash: the image as the sync left it, the log not checkpointed.
    let state = recording_replay(&base, &rec.log());
    drop(fs);
    let (sb, _) = ext4_fs::read_superblock(&MemoryDevice::from_vec(state.clone())).unwrap();
    assert!(sb.features().incompat.contains(ext4_fs::ondisk::Incompat::RECOVER), "the library's log needs recovery");
    let image = dir.0.join("state.img");
    std::fs::write(&image, &state).unwrap();
    let kernel = kernel_recovery(&image, &dir.0.join("kernel.img")).expect("the kernel recovers the library's log");
    same(&expected, kernel, i128::MAX, "the kernel's recovery of the library's log").unwrap();
    if let Some(p) = e2fsck_problems(&dir.0.join("kernel.img")) {
        panic!("e2fsck -fn after the kernel replayed the library's log:\n{p}");
    }
}

/// Damaged fast commits never panic: one to four bits of a kernel's
/// fast-commit area are flipped at random, the tail checksums are made right again (so
/// the damage reaches the replay, not just the scan), and both opens must
/// answer with a filesystem or an error. `EXT4_FC_FUZZ` sets the number
/// of damaged images (100 by default); the seed is printed.
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, python3)]
fn damaged_fast_commits_give_errors_not_panics() {
    use ext4_fs::blockdev::MemoryDevice;
    use ext4_fs::jbd2::{DeviceJournal, JournalGeometry, JournalRun};
    if !have_oracles() {
        return;
    }
    let dir = scratch("fuzz");
    let script = "os.mkdir('d'); put('d/x', b'x' * 3000); put('y', b'y' * 100); syncfs()\n\
                  put('d/x', b'more' * 900, 'ab'); put('n', os.urandom(7000)); os.link('n', 'd/m'); os.unlink('y')\n\
                  os.mkdir('e'); put('e/f', b'f'); os.rename('d/x', 'e/x'); os.truncate('n', 10); put('z', b'z')\n\
                  crash(os.open('.', os.O_RDONLY))\n";
    let (base, area) = until("fast commits to replay", || {
        let (crash, _) = scripted_crash(&dir.0, "fast_commit", script);
        let fs = Filesystem::open_path(&crash, OpenOptions::read_only()).unwrap();
        if !fast_commit_records(&fs, &crash).unwrap().contains("CREAT") {
            return None;
        }
        let dev = ext4_fs::FileDevice::open(&crash, true).unwrap();
        let bs = fs.geometry().block_size;
        let extents = fs.journal_extents();
        let runs: Vec<JournalRun> = extents
            .iter()
            .scan(0, |j, &(device_block, len)| {
                let r = JournalRun { jblock: *j, device_block, len };
                *j += len;
                Some(r)
            })
            .collect();
        let mut io = DeviceJournal::new(&dev, bs, runs.clone()).unwrap();
        let jsb = ext4_fs::jbd2::read_superblock(&mut io, bs).unwrap();
        let geo = JournalGeometry::new(&jsb, bs, extents.iter().map(|e| e.1).sum()).unwrap();
        // Device byte offsets of the area's blocks, in order.
        let device_block = |j: u64| runs.iter().find(|r| (r.jblock..r.jblock + r.len).contains(&j)).map(|r| r.device_block + j - r.jblock);
        let area: Vec<u64> = (geo.last + 1..geo.maxlen).filter_map(device_block).map(|b| b * u64::from(bs)).collect();
        Some((std::fs::read(&crash).unwrap(), (area, bs as usize)))
    });
    let (area, bs) = area;
    let used: Vec<u64> = area.iter().copied().take_while(|&o| base[o as usize..o as usize + bs].iter().any(|&b| b != 0)).collect();
    let cases = env_u64("EXT4_FC_FUZZ").unwrap_or(100);
    let seed = env_u64("EXT4_FC_SEED").unwrap_or_else(|| std::process::id().into());
    println!("fuzzing {} bytes of fast commits, {cases} images from seed {seed}", used.len() * bs);
    let mut rng = ext4_testkit::rng::Rng::new(seed);
    let mut next = move || rng.next_u64();
    let (mut opened, mut refused) = (0, 0);
    for _ in 0..cases {
        let mut img = base.clone();
        for _ in 0..1 + next() % 4 {
            let block = used[(next() % used.len() as u64) as usize] as usize;
            img[block + (next() % bs as u64) as usize] ^= 1 << (next() % 8);
        }
        fix_tail_crcs(&mut img, &used, bs);
        for opts in [OpenOptions::read_only(), OpenOptions::read_write()] {
            match Filesystem::open(MemoryDevice::from_vec(img.clone()), opts) {
                Ok(fs) => {
                    opened += 1;
                    look_around(&fs);
                }
                Err(_) => refused += 1,
            }
        }
    }
    println!("{opened} opens succeeded, {refused} refused");
}

/// Reads what an open filesystem shows, errors allowed: every entry's
/// metadata, link targets and the first 64 KiB of files (a damaged size
/// may claim terabytes of holes), at most 10 000 entries.
fn look_around(fs: &Filesystem) {
    let mut dirs = vec![ext4_fs::ondisk::ino::ROOT];
    let mut seen = std::collections::HashSet::new();
    let mut buf = vec![0u8; 65536];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = fs.dir_entries(d) else { continue };
        for e in entries.into_iter().filter(|e| e.name != b"." && e.name != b"..") {
            if !seen.insert(e.ino) || seen.len() > 10_000 {
                continue;
            }
            let Ok(md) = fs.stat(e.ino) else { continue };
            match md.file_type {
                FileType::Directory => dirs.push(e.ino),
                FileType::Symlink => drop(fs.read_link_ino(e.ino)),
                FileType::Regular => drop(fs.read_at(e.ino, 0, &mut buf)),
                _ => {}
            }
        }
    }
}

/// Recomputes the crc of every tail in the fast-commit blocks at `blocks`
/// (device offsets) of `img`, walking the records as the scan does.
fn fix_tail_crcs(img: &mut [u8], blocks: &[u64], bs: usize) {
    use ext4_fs::ondisk::fast_commit::{TAG_TAIL, TAIL_CRC_COVERED, TL_SIZE, fc_crc, read_tl};
    let mut crc = 0;
    for &b in blocks {
        let block = &mut img[b as usize..b as usize + bs];
        let mut pos = 0;
        while let Some((tag, len)) = read_tl(block, pos) {
            let end = pos + TL_SIZE + usize::from(len);
            if end > bs {
                break;
            }
            if tag == TAG_TAIL && usize::from(len) >= 8 {
                crc = fc_crc(crc, &block[pos..pos + TL_SIZE + TAIL_CRC_COVERED]);
                let at = pos + TL_SIZE + TAIL_CRC_COVERED;
                block[at..at + 4].copy_from_slice(zerocopy::IntoBytes::as_bytes(&ext4_fs::ondisk::le::U32::new(crc)));
                crc = 0;
            } else {
                crc = fc_crc(crc, &block[pos..end]);
            }
            pos = end;
        }
    }
}

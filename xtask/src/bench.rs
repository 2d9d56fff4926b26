//! `cargo xtask bench [mkfs | fuse | read] [--medium] [--reps N]`: each job
//! side by side with its reference on the same input in the same run,
//! alternating repetitions so that load changes hit both, on tmpfs; prints
//! medians and the ratio (ours / reference; below 1 is faster).
//!
//! Jobs: populate (`ext4 mkfs -d` vs `mke2fs -d`), extract (`ext4 get -r`
//! vs `debugfs rdump`), reading every file through the library (vs the
//! `ext4-view` crate), format of a 32 GiB sparse image (`ext4 mkfs` vs
//! `mke2fs`), the cost of journaling (the same library workload with and
//! without a journal), htree inserts (10k vs 100k entries, per entry), and
//! with `--medium` the FUSE job too. `bench fuse`: `cp -a` of the medium
//! tree into `ext4 mount`, `fuse2fs` and a kernel loop mount (`--small` for
//! the small tree). `bench mkfs`: formatting alone, 64 MiB to 16 TiB.
//! `bench read`: the read-every-file job alone. `bench fsck [--large]`:
//! `ext4 fsck -n` vs `e2fsck -fn` on clean images of the medium (and
//! large) tree.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ext4_fs::{FileDevice, Filesystem, OpenOptions};
use ext4_mkfs::{self as mkfs, FormatOptions, FsType, Profile};

use crate::{Result, sh};

pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| ext4_testkit::workspace_root().join("target"))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The fewest repetitions of the 32 GiB format (milliseconds each).
const FORMAT_REPS: usize = 41;

/// Times `a` and `b` alternately (so that a change in the machine's load
/// hits both alike) and returns their medians; `clean` runs, untimed,
/// before each (removing the last run's output).
fn time_pair(
    reps: usize,
    mut clean: impl FnMut() -> Result,
    mut a: impl FnMut() -> Result,
    mut b: impl FnMut() -> Result,
) -> std::result::Result<(Duration, Duration), String> {
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        clean()?;
        let t = Instant::now();
        a()?;
        ta.push(t.elapsed());
        clean()?;
        let t = Instant::now();
        b()?;
        tb.push(t.elapsed());
    }
    Ok((median(ta), median(tb)))
}

/// Removes a file if it is there.
fn remove_file(p: &Path) -> Result {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("{}: {e}", p.display())),
        _ => Ok(()),
    }
}

fn quiet(cmd: &mut Command) -> Result {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() { Ok(()) } else { Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr))) }
}

struct Row {
    job: &'static str,
    ours: Duration,
    reference: Duration,
    reference_name: &'static str,
    target: &'static str,
}

/// Peak resident memory of the children so far (kB), from getrusage via /proc is not
/// available for children; the `time -f %M` tool would do, so measure with it when present.
fn peak_kb(cmd: &mut Command) -> Option<u64> {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        return None;
    }
    let mut t = Command::new(time);
    t.arg("-f").arg("%M").arg(cmd.get_program()).args(cmd.get_args());
    let out = t.output().ok()?;
    String::from_utf8_lossy(&out.stderr).lines().last()?.trim().parse().ok()
}

/// `bench mkfs`: formatting alone, at several sparse image sizes.
fn mkfs_only(reps: usize) -> Result {
    sh(crate::cargo().args(["build", "--release", "-q", "-p", "ext4-cli"]))?;
    let ext4 = target_dir().join("release/ext4");
    let shm = ext4_testkit::scratch_dir_in(Path::new("/dev/shm"), "bench-mkfs");
    let img = shm.path().join("img");
    let common = ["-q", "-F", "-t", "ext4", "-U", "01234567-89ab-cdef-0123-456789abcdef"];
    println!("{:<10} {:>10} {:>10} {:>7}", "size", "ext4 mkfs", "mke2fs", "ratio");
    for size in ["64M", "1G", "32G", "1T", "16T"] {
        let (ours, reference) = time_pair(
            reps,
            || remove_file(&img),
            || quiet(Command::new(&ext4).arg("mkfs").args(common).arg(&img).arg(size)),
            || quiet(Command::new("mke2fs").args(common).arg(&img).arg(size)),
        )?;
        println!("{size:<10} {ours:>10.3?} {reference:>10.3?} {:>7.2}", ours.as_secs_f64() / reference.as_secs_f64().max(1e-9));
    }
    let _ = std::fs::remove_file(&img);
    Ok(())
}

/// Runs `cmd` and returns its exit status code (a checker's verdict).
fn status(cmd: &mut Command) -> std::result::Result<i32, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    out.status.code().ok_or_else(|| format!("{cmd:?} was killed"))
}

/// `bench fsck`: `ext4 fsck -n` against `e2fsck -fn` on images of the
/// medium tree (and with `--large` the large one), made by `mke2fs -d` on
/// tmpfs. Both must find the image clean; prints medians, the ratio and
/// peak memory.
fn fsck(reps: usize, large: bool) -> Result {
    sh(crate::cargo().args(["build", "--release", "-q", "-p", "ext4-cli"]))?;
    let ext4 = target_dir().join("release/ext4");
    let scratch = ext4_testkit::scratch_dir_in(Path::new("/dev/shm"), "bench-fsck");
    let work = scratch.path().to_path_buf();
    let img = work.join("img");
    let common = ["-q", "-F", "-t", "ext4", "-U", "01234567-89ab-cdef-0123-456789abcdef"];
    let mut sizes = vec![(ext4_testkit::fixtures::TreeSize::Medium, "2G")];
    if large {
        sizes.push((ext4_testkit::fixtures::TreeSize::Large, "8G"));
    }
    println!("== ext4 fsck -n vs e2fsck -fn, images by mke2fs -d on tmpfs, median of {reps}");
    println!("{:<8} {:>10} {:>10} {:>7} {:>12} {:>12}", "tree", "ext4 fsck", "e2fsck", "ratio", "peak ours", "peak e2fsck");
    let r = (|| {
        for (size, image_size) in sizes {
            let src = ext4_testkit::fixtures::tree(size).map_err(|e| e.to_string())?;
            remove_file(&img)?;
            quiet(Command::new("mke2fs").args(common).arg("-d").arg(&src).arg(&img).arg(image_size))?;
            let ours_cmd = || {
                let mut c = Command::new(&ext4);
                c.arg("fsck").arg("-n").arg(&img);
                c
            };
            let e2_cmd = || {
                let mut c = Command::new("e2fsck");
                c.arg("-fn").arg(&img);
                c
            };
            let (a, b) = (status(&mut ours_cmd())?, status(&mut e2_cmd())?);
            if a != 0 || b != 0 {
                return Err(format!("{}: not clean (ext4 fsck {a}, e2fsck {b})", size.name()));
            }
            let (ours, reference) = time_pair(reps, || Ok(()), || quiet(&mut ours_cmd()), || quiet(&mut e2_cmd()))?;
            let kb = |p: Option<u64>| p.map_or("-".to_string(), |k| format!("{} MiB", k / 1024));
            println!(
                "{:<8} {ours:>10.3?} {reference:>10.3?} {:>7.2} {:>12} {:>12}",
                size.name(),
                ours.as_secs_f64() / reference.as_secs_f64().max(1e-9),
                kb(peak_kb(&mut ours_cmd())),
                kb(peak_kb(&mut e2_cmd()))
            );
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&work);
    r
}

pub fn run(args: &[&str]) -> Result {
    let medium = args.contains(&"--medium");
    let reps = args.iter().position(|a| *a == "--reps").and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(3);
    match args.first() {
        Some(&"mkfs") => return mkfs_only(reps),
        Some(&"fuse") => return fuse(reps, args.contains(&"--small")),
        Some(&"read") => return read_only(reps, medium),
        Some(&"layers") => return layers(),
        Some(&"fsck") => return fsck(reps, args.contains(&"--large")),
        _ => {}
    }
    sh(crate::cargo().args(["build", "--release", "-q", "-p", "ext4-cli"]))?;
    let ext4 = target_dir().join("release/ext4");
    let size = if medium { ext4_testkit::fixtures::TreeSize::Medium } else { ext4_testkit::fixtures::TreeSize::Small };
    let src = ext4_testkit::fixtures::tree(size).map_err(|e| e.to_string())?;
    let shm = ext4_testkit::scratch_dir_in(Path::new("/dev/shm"), "bench");
    let work = shm.path().to_path_buf();
    let img = work.join("img");
    let image_size = if medium { "2G" } else { "256M" };
    let common = ["-q", "-F", "-t", "ext4", "-U", "01234567-89ab-cdef-0123-456789abcdef"];
    let mut rows = Vec::new();
    println!("== tree {} ({}), images on tmpfs, median of {reps}", src.display(), if medium { "medium" } else { "small" });

    // Populate.
    let (ours, reference) = time_pair(
        reps,
        || remove_file(&img),
        || quiet(Command::new(&ext4).arg("mkfs").args(common).arg("-d").arg(&src).arg(&img).arg(image_size)),
        || quiet(Command::new("mke2fs").args(common).arg("-d").arg(&src).arg(&img).arg(image_size)),
    )?;
    rows.push(Row { job: "populate (mkfs -d)", ours, reference, reference_name: "mke2fs -d", target: "<= 0.33" });
    let populate_peak = {
        let _ = std::fs::remove_file(&img);
        peak_kb(Command::new(&ext4).arg("mkfs").args(common).arg("-d").arg(&src).arg(&img).arg(image_size))
    };

    // Extract (from the image our populate made last).
    let out = work.join("out");
    let (ours, reference) = time_pair(
        reps,
        || {
            let _ = std::fs::remove_dir_all(&out);
            std::fs::create_dir_all(&out).map_err(|e| e.to_string())
        },
        || quiet(Command::new(&ext4).args(["get", "-r"]).arg(&img).arg("/").arg(&out)),
        || quiet(Command::new("debugfs").arg("-R").arg(format!("rdump / {}", out.display())).arg(&img)),
    )?;
    rows.push(Row { job: "extract (get -r)", ours, reference, reference_name: "debugfs rdump", target: "<= 0.5" });
    let extract_peak = {
        let _ = std::fs::remove_dir_all(&out);
        peak_kb(Command::new(&ext4).args(["get", "-r"]).arg(&img).arg("/").arg(&out))
    };
    let _ = std::fs::remove_dir_all(&out);

    // Read every file through a library: ours against the ext4-view crate
    // (the image our populate made; both single-threaded, same buffer size).
    let sums = std::cell::RefCell::new(Vec::new());
    let (ours, reference) = time_pair(
        reps,
        || Ok(()),
        || read_all_ours(&img).map(|s| sums.borrow_mut().push(s)),
        || read_all_ext4_view(&img).map(|s| sums.borrow_mut().push(s)),
    )?;
    let sums = sums.into_inner();
    if sums.windows(2).any(|w| w[0] != w[1]) {
        return Err(format!("the two readers disagree on the files' contents: {sums:?}"));
    }
    rows.push(Row { job: "read every file (library)", ours, reference, reference_name: "ext4-view crate", target: "<= 1" });

    // Format a 32 GiB sparse image. A run takes a few milliseconds, so a
    // median of a handful is mostly scheduler noise: at least FORMAT_REPS.
    let big = work.join("big");
    let (ours, reference) = time_pair(
        reps.max(FORMAT_REPS),
        || remove_file(&big),
        || quiet(Command::new(&ext4).arg("mkfs").args(common).arg(&big).arg("32G")),
        || quiet(Command::new("mke2fs").args(common).arg(&big).arg("32G")),
    )?;
    let _ = std::fs::remove_file(&big);
    rows.push(Row { job: "format 32 GiB sparse (41+ runs)", ours, reference, reference_name: "mke2fs", target: "<= 1" });

    // The cost of journaling: one workload with and without a journal.
    let (journaled, plain) =
        time_pair(reps, || Ok(()), || journal_workload(&work.join("j"), true), || journal_workload(&work.join("j"), false))?;
    rows.push(Row {
        job: "workload with journal",
        ours: journaled,
        reference: plain,
        reference_name: "same, no journal",
        target: "(cost)",
    });

    // Htree inserts: time per entry at 100k over time per entry at 10k.
    let small = htree_inserts(&work.join("h"), 10_000)?;
    let large = htree_inserts(&work.join("h"), 100_000)?;
    rows.push(Row {
        job: "htree insert/entry 100k",
        ours: large / 100_000,
        reference: small / 10_000,
        reference_name: "per entry at 10k",
        target: "~1 (O(log n))",
    });

    println!("{:<28} {:>10} {:>10}  {:<18} {:>7}  target", "job", "ours", "reference", "", "ratio");
    for r in &rows {
        let ratio = r.ours.as_secs_f64() / r.reference.as_secs_f64().max(1e-9);
        println!("{:<28} {:>10.3?} {:>10.3?}  {:<18} {:>7.2}  {}", r.job, r.ours, r.reference, r.reference_name, ratio, r.target);
    }
    if let Some(kb) = populate_peak {
        println!("peak memory: populate {} MiB", kb / 1024);
    }
    if let Some(kb) = extract_peak {
        println!("peak memory: extract {} MiB", kb / 1024);
    }
    let _ = std::fs::remove_dir_all(&work);
    if medium {
        // The FUSE target, on the same tree (as `bench fuse`).
        if let Err(e) = fuse(reps, false) {
            println!("FUSE copy-in: not measured: {e}");
        }
    }
    Ok(())
}

/// `bench read`: only the read-every-file job, on an image of the tree.
fn read_only(reps: usize, medium: bool) -> Result {
    sh(crate::cargo().args(["build", "--release", "-q", "-p", "ext4-cli"]))?;
    let ext4 = target_dir().join("release/ext4");
    let size = if medium { ext4_testkit::fixtures::TreeSize::Medium } else { ext4_testkit::fixtures::TreeSize::Small };
    let src = ext4_testkit::fixtures::tree(size).map_err(|e| e.to_string())?;
    let shm = ext4_testkit::scratch_dir_in(Path::new("/dev/shm"), "bench-read");
    let img = shm.path().join("img");
    quiet(Command::new(&ext4).args(["mkfs", "-q", "-F", "-t", "ext4", "-d"]).arg(&src).arg(&img).arg(if medium { "2G" } else { "256M" }))?;
    let timed = time_pair(reps, || Ok(()), || read_all_ours(&img).map(drop), || read_all_ext4_view(&img).map(drop));
    let (a, b) = (read_all_ours(&img), read_all_ext4_view(&img));
    let _ = std::fs::remove_file(&img);
    let (ours, reference) = timed?;
    if a != b {
        return Err(format!("the two readers disagree: {a:?} / {b:?}"));
    }
    let a = a?;
    println!(
        "read every file ({} files, {} MB): library {ours:.3?}, ext4-view {reference:.3?}, ratio {:.2} (target <= 1)",
        a.files,
        a.bytes >> 20,
        ours.as_secs_f64() / reference.as_secs_f64()
    );
    Ok(())
}

/// What a reader saw: regular files, bytes, and an XOR of the data's
/// 64-bit words (each file's words at their offsets), to check that both
/// readers read the same.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct ReadSum {
    files: u64,
    bytes: u64,
    xor: u64,
}

impl ReadSum {
    fn add(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        let mut words = chunk.chunks_exact(8);
        for w in &mut words {
            self.xor ^= u64::from_le_bytes(w.try_into().expect("8 bytes"));
        }
        for (i, &b) in words.remainder().iter().enumerate() {
            self.xor ^= u64::from(b) << (8 * i);
        }
    }
}

/// Size of the read buffer of both readers.
const READ_BUF: usize = 1 << 20;

/// Opens `img` with the library and reads every regular file whole.
fn read_all_ours(img: &Path) -> std::result::Result<ReadSum, String> {
    fn walk(fs: &Filesystem, dir: u32, buf: &mut [u8], sum: &mut ReadSum) -> ext4_fs::Result<()> {
        for e in fs.dir_entries(dir)? {
            if e.name == b"." || e.name == b".." {
                continue;
            }
            match e.file_type {
                Some(ext4_fs::FileType::Directory) => walk(fs, e.ino, buf, sum)?,
                Some(ext4_fs::FileType::Regular) => {
                    sum.files += 1;
                    let mut off = 0u64;
                    loop {
                        let n = fs.read_at(e.ino, off, buf)?;
                        if n == 0 {
                            break;
                        }
                        sum.add(&buf[..n]);
                        off += n as u64;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
    let fs = Filesystem::open_path(img, OpenOptions::read_only()).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; READ_BUF];
    let mut sum = ReadSum::default();
    walk(&fs, ext4_fs::ondisk::ino::ROOT, &mut buf, &mut sum).map_err(|e| e.to_string())?;
    Ok(sum)
}

/// The same with the `ext4-view` crate.
fn read_all_ext4_view(img: &Path) -> std::result::Result<ReadSum, String> {
    fn walk(
        fs: &ext4_view::Ext4,
        dir: ext4_view::PathBuf,
        buf: &mut [u8],
        sum: &mut ReadSum,
    ) -> std::result::Result<(), ext4_view::Ext4Error> {
        for e in fs.read_dir(&dir)? {
            let e = e?;
            let name = e.file_name();
            if name.as_ref() == b"." || name.as_ref() == b".." {
                continue;
            }
            let ft = e.file_type()?;
            if ft.is_dir() {
                walk(fs, e.path(), buf, sum)?;
            } else if ft.is_regular_file() {
                sum.files += 1;
                let mut f = fs.open(&e.path())?;
                loop {
                    let n = f.read_bytes(buf)?;
                    if n == 0 {
                        break;
                    }
                    sum.add(&buf[..n]);
                }
            }
        }
        Ok(())
    }
    let fs = ext4_view::Ext4::load_from_path(img).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; READ_BUF];
    let mut sum = ReadSum::default();
    walk(&fs, ext4_view::PathBuf::new("/"), &mut buf, &mut sum).map_err(|e| e.to_string())?;
    Ok(sum)
}

fn format_image(path: &Path, size: u64, journal: bool) -> Result {
    let _ = std::fs::remove_file(path);
    let dev = FileDevice::create(path, size).map_err(|e| e.to_string())?;
    let mut opts =
        FormatOptions::new(FsType::Ext4).profile(Profile::UPSTREAM).size_bytes(size).uuid([7; 16]).hash_seed([9; 16]).time(1_700_000_000);
    if !journal {
        opts = opts.features("^has_journal").map_err(|e| e.to_string())?;
    }
    mkfs::format(&dev, &opts, &mut |_| std::ops::ControlFlow::Continue(())).map_err(|e| e.to_string())?;
    Ok(())
}

/// Creates, writes, overwrites, renames and deletes files, syncing often.
fn journal_workload(path: &Path, journal: bool) -> Result {
    format_image(path, 256 << 20, journal)?;
    let mut fs = Filesystem::open_path(path, OpenOptions::read_write()).map_err(|e| e.to_string())?;
    let data = vec![0x5au8; 16 << 10];
    for d in 0..20 {
        fs.create_dir_all(format!("/d{d}"), 0o755).map_err(|e| e.to_string())?;
        for f in 0..100 {
            let ino = fs.write_file(format!("/d{d}/f{f}"), &data).map_err(|e| e.to_string())?;
            fs.write_at(ino, 4096, &data[..4096]).map_err(|e| e.to_string())?;
        }
        for f in (0..100).step_by(3) {
            fs.rename(format!("/d{d}/f{f}"), format!("/d{d}/g{f}")).map_err(|e| e.to_string())?;
        }
        for f in (1..100).step_by(3) {
            fs.remove_file(format!("/d{d}/f{f}")).map_err(|e| e.to_string())?;
        }
        fs.sync().map_err(|e| e.to_string())?;
    }
    fs.close().map_err(|e| e.to_string())?;
    Ok(())
}

/// Time to insert `n` empty files into one directory.
fn htree_inserts(path: &Path, n: usize) -> std::result::Result<Duration, String> {
    format_image(path, 2 << 30, true)?; // enough inodes for 100k entries
    let mut fs = Filesystem::open_path(path, OpenOptions::read_write()).map_err(|e| e.to_string())?;
    fs.create_dir_all("/big", 0o755).map_err(|e| e.to_string())?;
    let t = Instant::now();
    for i in 0..n {
        fs.create(format!("/big/entry-{i:08}-with-some-length"), 0o644).map_err(|e| e.to_string())?;
    }
    fs.sync().map_err(|e| e.to_string())?;
    let d = t.elapsed();
    fs.close().map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(path);
    Ok(d)
}

/// Where `bench fuse` copies a tree to.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    Ext4Mount,
    Fuse2fs,
    Kernel,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Ext4Mount => "ext4 mount",
            Target::Fuse2fs => "fuse2fs",
            Target::Kernel => "kernel",
        }
    }
}

/// Formats `img`, mounts it as `target`, and times `cp -a SRC/. MNT` plus the
/// unmount (and, for FUSE servers, until the server has closed the image).
fn copy_into(target: Target, ext4: &Path, src: &Path, img: &Path, mnt: &Path) -> std::result::Result<Duration, String> {
    let _ = std::fs::remove_file(img);
    quiet(Command::new("mke2fs").args(["-q", "-F", "-t", "ext4", "-E", "lazy_itable_init=0,nodiscard"]).arg(img).arg("2G"))?;
    let cp = || quiet(Command::new("cp").arg("-a").arg(src.join(".")).arg(mnt));
    match target {
        Target::Ext4Mount | Target::Fuse2fs => {
            let m = if target == Target::Ext4Mount {
                ext4_testkit::fio::FuseMount::new(ext4, img, mnt, "")?
            } else {
                let mut c = Command::new("fuse2fs");
                c.arg("-f").arg(img).arg(mnt);
                ext4_testkit::fio::FuseMount::spawn(c, mnt)?
            };
            let t = Instant::now();
            let copied = cp();
            let unmounted = m.unmount();
            copied?;
            unmounted?;
            Ok(t.elapsed())
        }
        Target::Kernel => {
            quiet(Command::new("mount").args(["-t", "ext4", "-o", "loop"]).arg(img).arg(mnt))?;
            let t = Instant::now();
            let copied = cp();
            let unmounted = ext4_testkit::fio::umount(mnt);
            copied?;
            unmounted?;
            Ok(t.elapsed())
        }
    }
}

/// `bench fuse`: `cp -a` of a make-tree.py tree into `ext4 mount`, fuse2fs and
/// the kernel, repetitions interleaved so machine load spreads evenly.
fn fuse(reps: usize, small: bool) -> Result {
    if let Some(why) = ext4_testkit::fio::missing().filter(|w| !w.starts_with("fio")) {
        return Err(why.into());
    }
    if Command::new("fuse2fs").arg("--version").output().is_err() {
        return Err("fuse2fs not installed (apt-get install fuse2fs)".into());
    }
    sh(crate::cargo().args(["build", "--release", "-q", "-p", "ext4-cli"]))?;
    let ext4 = target_dir().join("release/ext4");
    let size = if small { ext4_testkit::fixtures::TreeSize::Small } else { ext4_testkit::fixtures::TreeSize::Medium };
    let tree = ext4_testkit::fixtures::tree(size).map_err(|e| e.to_string())?;
    let shm = ext4_testkit::scratch_dir_in(Path::new("/dev/shm"), "bench-fuse");
    let work = shm.path().to_path_buf();
    let (src, img, mnt) = (work.join("src"), work.join("img"), work.join("mnt"));
    std::fs::create_dir_all(&mnt).map_err(|e| e.to_string())?;
    let r = (|| {
        quiet(Command::new("cp").arg("-a").arg(&tree).arg(&src))?;
        let targets = [Target::Ext4Mount, Target::Fuse2fs, Target::Kernel];
        println!(
            "== cp -a of the {} tree ({}) into a fresh 2 GiB ext4 image on tmpfs, source on tmpfs; mount excluded, \
             unmount and the server's close included; {reps} interleaved runs",
            if small { "small" } else { "medium" },
            tree.display()
        );
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); targets.len()];
        for rep in 0..reps {
            for (i, &t) in targets.iter().enumerate() {
                let d = copy_into(t, &ext4, &src, &img, &mnt)?;
                println!("   run {}: {:<10} {d:>9.2?}", rep + 1, t.name());
                times[i].push(d);
                let problems = if rep + 1 == reps { ext4_testkit::oracle::e2fsck_problems(&img) } else { None };
                if let Some(p) = problems {
                    println!("   e2fsck -fn after {} is not silent:\n{p}", t.name());
                }
            }
        }
        let medians: Vec<Duration> = times.into_iter().map(median).collect();
        let ratio = |i: usize| medians[0].as_secs_f64() / medians[i].as_secs_f64().max(1e-9);
        println!("{:<12} {:>10}  ext4 mount / target", "target", "median");
        for (i, t) in targets.iter().enumerate() {
            println!("{:<12} {:>10.2?}  {:.2}", t.name(), medians[i], ratio(i));
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&work);
    r
}

/// `bench layers`: the criterion micro-benchmarks of the layer crates (checksums and parsers,
/// bitmap search, extent lookup, htree hash / lookup / insert, journal commit and recovery),
/// short runs, then the median of each benchmark (from criterion's `estimates.json`).
fn layers() -> Result {
    let started = std::time::SystemTime::now();
    let mut cmd = crate::cargo();
    cmd.arg("bench");
    for c in ["ext4-ondisk", "ext4-alloc", "ext4-extent", "ext4-htree", "ext4-jbd2"] {
        cmd.args(["-p", c]);
    }
    // Only the criterion targets: libtest harnesses would refuse criterion's options.
    cmd.args(["--bench", "*", "--", "--warm-up-time", "1", "--measurement-time", "2"]);
    sh(&mut cmd)?;
    let mut rows = Vec::new();
    collect_medians(&target_dir().join("criterion"), started, &mut rows);
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let fmt = |ns: f64| match ns {
        n if n < 1e3 => format!("{n:.1} ns"),
        n if n < 1e6 => format!("{:.2} µs", n / 1e3),
        n => format!("{:.2} ms", n / 1e6),
    };
    println!("{:<44} {:>12}", "benchmark", "median");
    for (id, ns) in rows {
        println!("{id:<44} {:>12}", fmt(ns));
    }
    Ok(())
}

/// The median point estimates (ns) of the benchmarks under `dir` measured since `since`,
/// keyed by their id (`group/function/parameter`).
fn collect_medians(dir: &Path, since: std::time::SystemTime, rows: &mut Vec<(String, f64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let path = e.path();
        let est = path.join("new/estimates.json");
        let fresh = std::fs::metadata(&est).and_then(|m| m.modified()).is_ok_and(|t| t >= since);
        if fresh {
            let json = std::fs::read_to_string(&est).unwrap_or_default();
            // {"mean":{...},"median":{"confidence_interval":{...},"point_estimate":N,...},...}
            let median = json.split("\"median\":").nth(1).and_then(|m| m.split("\"point_estimate\":").nth(1));
            let value = median.and_then(|v| v.split([',', '}']).next()).and_then(|v| v.trim().parse::<f64>().ok());
            let root = target_dir().join("criterion");
            if let (Some(ns), Ok(id)) = (value, path.strip_prefix(&root)) {
                rows.push((id.display().to_string(), ns));
            }
        } else if path.is_dir() && path.file_name().is_some_and(|n| n != "report" && n != "base" && n != "new") {
            collect_medians(&path, since, rows);
        }
    }
}

//! Big files through the kernel (issue 4, "done when" 4): a sparse 5 GiB
//! file (a few ranges far apart, one across the 4 GiB line) on ext4 and on
//! ext3 (triple indirect blocks), and an ext4 file of 100,000 extents (every
//! other 4 KiB block written). Written by the library, the kernel reads the
//! same bytes (each range, and a streaming SHA-256 of the whole file by
//! `openssl dgst`) and `filefrag`/`debugfs` show the expected mapping;
//! written by the kernel, the library reads the same bytes.

mod common;

use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{KINDS, Kind, format, open_ro, open_rw};
use ext4_fs::Filesystem;
use ext4_testkit::oracle::{LoopMount, can_loop_mount, debugfs, e2fsck_problems, have_e2fsprogs, have_tool};

/// A written byte range of the test file.
#[derive(Debug, Clone, Copy)]
struct Range {
    off: u64,
    len: u64,
}

/// The byte at `pos` of a written range: depends on the position (a misplaced block shows) and is never zero (a hole shows).
fn byte(pos: u64) -> u8 {
    (pos.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8 | 1
}

fn bytes(r: Range) -> Vec<u8> {
    (r.off..r.off + r.len).map(byte).collect()
}

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// The 5 GiB file: unaligned ranges at the start, at 1 GiB, across 4 GiB, and ending the file.
fn five_gib_ranges() -> Vec<Range> {
    vec![
        Range { off: 0, len: MIB + 123 },
        Range { off: GIB + 4095, len: 2 * MIB },
        Range { off: 4 * GIB - MIB - 7, len: 3 * MIB },
        Range { off: 5 * GIB - 64 * 1024, len: 64 * 1024 },
    ]
}

const EXTENTS: u64 = 100_000;

/// Every other 4 KiB block, 100,000 of them.
fn every_other_block() -> Vec<Range> {
    (0..EXTENTS).map(|i| Range { off: 2 * i * 4096, len: 4096 }).collect()
}

fn size_of(ranges: &[Range]) -> u64 {
    ranges.iter().map(|r| r.off + r.len).max().unwrap_or(0)
}

/// Blocks `[first, last]` that hold data, merged where adjacent.
fn block_runs(ranges: &[Range], bs: u64) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for r in ranges {
        let (a, b) = (r.off / bs, (r.off + r.len - 1) / bs);
        match runs.last_mut() {
            Some(last) if a <= last.1 + 1 => last.1 = last.1.max(b),
            _ => runs.push((a, b)),
        }
    }
    runs
}

fn merge(mut runs: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    runs.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (a, b) in runs {
        match out.last_mut() {
            Some(last) if a <= last.1 + 1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// SHA-256 (hex) of what `feed` writes, computed by `openssl dgst`.
fn sha256_of(feed: impl FnOnce(&mut dyn Write)) -> String {
    let mut child =
        Command::new("openssl").args(["dgst", "-sha256", "-r"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("openssl runs");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        feed(&mut stdin);
    }
    let out = child.wait_with_output().expect("openssl finishes");
    assert!(out.status.success(), "openssl dgst failed");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().expect("a digest").to_string()
}

/// SHA-256 of a host file (read by the kernel), by `openssl dgst`.
fn sha256_file(path: &Path) -> String {
    let out = Command::new("openssl").args(["dgst", "-sha256", "-r"]).arg(path).output().expect("openssl runs");
    assert!(out.status.success(), "openssl dgst {} failed", path.display());
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().expect("a digest").to_string()
}

/// Streams the expected file: zeros in the holes, the ranges' bytes.
fn write_expected(ranges: &[Range], w: &mut dyn Write) {
    let zeros = vec![0u8; MIB as usize];
    let mut pos = 0u64;
    for r in ranges {
        while pos < r.off {
            let n = (r.off - pos).min(MIB);
            w.write_all(&zeros[..n as usize]).expect("pipe");
            pos += n;
        }
        w.write_all(&bytes(*r)).expect("pipe");
        pos = r.off + r.len;
    }
}

/// Streams file `ino` as the library reads it.
fn write_library(fs: &Filesystem, ino: u32, w: &mut dyn Write) {
    let mut buf = vec![0u8; MIB as usize];
    let mut off = 0u64;
    loop {
        let n = fs.read_at(ino, off, &mut buf).expect("library read");
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n]).expect("pipe");
        off += n as u64;
    }
}

/// The logical block runs `filefrag -v` reports, merged, and its extent count.
fn filefrag(path: &Path) -> (Vec<(u64, u64)>, usize) {
    let out = Command::new("filefrag").arg("-v").arg(path).output().expect("filefrag runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "filefrag failed: {text}");
    let mut runs = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 4 || fields[0].trim().parse::<u64>().is_err() {
            continue;
        }
        let (a, b) = fields[1].split_once("..").unwrap_or_else(|| panic!("filefrag line {line:?}"));
        runs.push((a.trim().parse().expect("logical start"), b.trim().parse().expect("logical end")));
    }
    let count = runs.len();
    (merge(runs), count)
}

/// Leaf extents of `path` as `debugfs ex` lists them: logical runs (merged) and count.
fn debugfs_extents(image: &Path, path: &str) -> (Vec<(u64, u64)>, usize) {
    let text = debugfs(image, &format!("ex {path}"));
    let mut runs = Vec::new();
    for line in text.lines() {
        // " 2/ 2 337/340 ...  1024 -  1024  8195 - 8195  1 " : level/depth first.
        let t: Vec<&str> = line.split_whitespace().collect();
        let Some((level, depth)) = line.trim().split_once('/').and_then(|(l, rest)| {
            let d = rest.split_whitespace().next()?;
            Some((l.trim().parse::<u32>().ok()?, d.parse::<u32>().ok()?))
        }) else {
            continue;
        };
        if level != depth {
            continue;
        }
        let dash = t.iter().position(|s| *s == "-").unwrap_or_else(|| panic!("debugfs ex line {line:?}"));
        runs.push((t[dash - 1].parse().expect("logical start"), t[dash + 1].parse().expect("logical end")));
    }
    let count = runs.len();
    (merge(runs), count)
}

/// Unmounts, retrying for a few seconds while the mount is busy (a process
/// elsewhere on the machine walking /tmp can hold it for a moment).
fn unmount(m: LoopMount) {
    let dir = m.path().to_path_buf();
    let Err(first) = m.unmount() else {
        return;
    };
    for _ in 0..50 {
        let mounted = std::fs::read_to_string("/proc/mounts").unwrap().lines().any(|l| l.split(' ').nth(1) == dir.to_str());
        if !mounted {
            let _ = std::fs::remove_dir(&dir);
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let _ = Command::new("umount").arg(&dir).output();
    }
    panic!("{}: still mounted after retries: {first}", dir.display());
}

fn kind(name: &str) -> &'static Kind {
    KINDS.iter().find(|k| k.name == name).expect("known kind")
}

fn prerequisites() -> bool {
    ext4_testkit::require(have_e2fsprogs(), "e2fsprogs not installed")
        && ext4_testkit::require(can_loop_mount(), "needs root and loop devices for kernel mounts")
        && ext4_testkit::require(have_tool("filefrag"), "filefrag not installed")
        && ext4_testkit::require(Command::new("openssl").arg("version").output().is_ok(), "openssl not installed")
}

/// Library writes `ranges` into `/big`; the kernel reads them back.
fn library_to_kernel(kind: &Kind, image_size: u64, ranges: &[Range], expected_sha: &str) -> std::time::Duration {
    let tag = format!("big-lib-{}", ranges.len());
    let bs = u64::from(kind.block_size);
    let img = format(kind, image_size, &tag);
    let t = std::time::Instant::now();
    let mut fs = open_rw(&img.path);
    let ino = fs.create("/big", 0o644).unwrap();
    for r in ranges {
        fs.write_at(ino, r.off, &bytes(*r)).unwrap();
    }
    let lib_blocks = fs.stat(ino).unwrap().blocks;
    fs.close().unwrap();
    let took = t.elapsed();
    if let Some(p) = e2fsck_problems(&img.path) {
        panic!("{}: e2fsck -fn after library writes:\n{p}", kind.name);
    }
    let want_runs = block_runs(ranges, bs);
    if kind.fs_type == ext4_mkfs::FsType::Ext4 {
        let (runs, n) = debugfs_extents(&img.path, "/big");
        assert_eq!(runs, want_runs, "{}: debugfs ex logical runs", kind.name);
        assert!(n >= want_runs.len(), "{}: {n} leaf extents for {} runs", kind.name, want_runs.len());
    }
    let m = LoopMount::new(&img.path, "ro").unwrap();
    let path = m.path().join("big");
    let md = std::fs::metadata(&path).unwrap();
    assert_eq!(md.len(), size_of(ranges), "{}: size seen by the kernel", kind.name);
    assert_eq!(md.blocks(), lib_blocks, "{}: i_blocks seen by the kernel", kind.name);
    let f = std::fs::File::open(&path).unwrap();
    for r in ranges {
        let mut buf = vec![0u8; r.len as usize];
        f.read_exact_at(&mut buf, r.off).unwrap();
        assert!(buf == bytes(*r), "{}: kernel reads other bytes at {r:?}", kind.name);
    }
    drop(f);
    let (runs, n) = filefrag(&path);
    assert_eq!(runs, want_runs, "{}: filefrag logical runs", kind.name);
    if ranges.len() as u64 == EXTENTS {
        assert_eq!(n, EXTENTS as usize, "{}: filefrag extent count", kind.name);
    }
    assert_eq!(sha256_file(&path), expected_sha, "{}: SHA-256 of the whole file read by the kernel", kind.name);
    unmount(m);
    took
}

/// The kernel writes `ranges` into `/big`; the library reads them back.
fn kernel_to_library(kind: &Kind, image_size: u64, ranges: &[Range], expected_sha: &str) {
    let tag = format!("big-kernel-{}", ranges.len());
    let img = format(kind, image_size, &tag);
    let m = LoopMount::new(&img.path, "").unwrap();
    let path = m.path().join("big");
    let f = std::fs::File::create(&path).unwrap();
    for r in ranges {
        f.write_all_at(&bytes(*r), r.off).unwrap();
    }
    f.sync_all().unwrap();
    let kernel_blocks = f.metadata().unwrap().blocks();
    drop(f);
    let (_, kernel_extents) = filefrag(&path);
    unmount(m);
    if let Some(p) = e2fsck_problems(&img.path) {
        panic!("{}: e2fsck -fn after kernel writes:\n{p}", kind.name);
    }
    let fs = open_ro(&img.path);
    let ino = fs.lookup("/big").unwrap();
    let md = fs.stat(ino).unwrap();
    assert_eq!((md.size, md.blocks), (size_of(ranges), kernel_blocks), "{}: size and i_blocks read by the library", kind.name);
    for r in ranges {
        let mut buf = vec![0u8; r.len as usize];
        assert_eq!(fs.read_at(ino, r.off, &mut buf).unwrap(), buf.len());
        assert!(buf == bytes(*r), "{}: library reads other bytes at {r:?}", kind.name);
    }
    if ranges.len() as u64 == EXTENTS {
        assert_eq!(kernel_extents, EXTENTS as usize, "{}: the kernel made one extent per written block", kind.name);
    }
    let got = sha256_of(|w| write_library(&fs, ino, w));
    assert_eq!(got, expected_sha, "{}: SHA-256 of the whole file read by the library", kind.name);
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, filefrag, openssl)]
fn sparse_five_gib_file_round_trips_through_the_kernel() {
    if !prerequisites() {
        return;
    }
    let ranges = five_gib_ranges();
    let t = std::time::Instant::now();
    let sha = sha256_of(|w| write_expected(&ranges, w));
    println!("expected SHA-256 of 5 GiB in {:?}", t.elapsed());
    // ext4: extents past 2^32 bytes; ext3: the last range needs triple indirect blocks.
    for name in ["ext4-4k", "ext3-4k"] {
        let t = std::time::Instant::now();
        library_to_kernel(kind(name), 64 * MIB, &ranges, &sha);
        kernel_to_library(kind(name), 64 * MIB, &ranges, &sha);
        println!("{name}: 5 GiB sparse file both ways in {:?}", t.elapsed());
    }
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, filefrag, openssl)]
fn file_of_100k_extents_round_trips_through_the_kernel() {
    if !prerequisites() {
        return;
    }
    let ranges = every_other_block();
    let sha = sha256_of(|w| write_expected(&ranges, w));
    let k = kind("ext4-4k");
    let t = std::time::Instant::now();
    let writes = library_to_kernel(k, GIB, &ranges, &sha);
    println!("library wrote {EXTENTS} one-block extents in {writes:?}");
    kernel_to_library(k, GIB, &ranges, &sha);
    println!("100k extents both ways in {:?}", t.elapsed());
}

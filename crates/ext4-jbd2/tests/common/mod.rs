//! Test glue shared by the e2fsprogs oracle tests: images made by mke2fs,
//! the journal inode's location from debugfs, recovery with this crate
//! written home into the image, and block-by-block image comparison.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ext4_blockdev::{BlockDevice, FileDevice};
use ext4_jbd2::{DeviceJournal, JournalRun, Recovery};
use ext4_ondisk::{Incompat, Superblock};
use zerocopy::IntoBytes;

/// Whether mke2fs, debugfs and e2fsck run (`ext4_testkit::require`).
pub fn have_e2fsprogs(test: &str) -> bool {
    let ok = ["mke2fs", "debugfs", "e2fsck"]
        .iter()
        .all(|t| Command::new(t).arg("-V").output().is_ok_and(|o| o.status.success() || !o.stderr.is_empty()));
    ext4_testkit::require(ok, &format!("{test}: mke2fs, debugfs and e2fsck (e2fsprogs) are needed"))
}

/// Runs a command, panicking with its output if it fails; returns its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{stdout}{stderr}", out.status);
    stdout
}

/// Makes a 64 MiB ext4 image with `mke2fs -q -F -t ext4 <args>`, reproducibly.
pub fn mkfs(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let img = dir.join(name);
    let mut cmd = Command::new("mke2fs");
    cmd.env("E2FSPROGS_FAKE_TIME", "1700000000")
        .args(["-q", "-F", "-t", "ext4", "-U", "01234567-89ab-cdef-0123-456789abcdef"])
        .args(["-E", "lazy_itable_init=0,nodiscard"])
        .args(args)
        .arg(&img)
        .arg("64M");
    run(&mut cmd);
    img
}

/// Runs `cmds` (one debugfs request a line) with `debugfs -w -f`.
pub fn debugfs_write(img: &Path, cmds: &str) -> String {
    let file = img.with_extension("cmds");
    std::fs::write(&file, cmds).unwrap();
    let out = run(Command::new("debugfs").arg("-w").arg("-f").arg(&file).arg(img));
    assert!(!out.contains("rror") && !out.contains("not open"), "debugfs:\n{out}");
    out
}

/// Runs one read-only debugfs request.
pub fn debugfs(img: &Path, req: &str) -> String {
    run(Command::new("debugfs").arg("-R").arg(req).arg(img))
}

/// The primary ext4 superblock of `img`.
pub fn superblock(img: &Path) -> Superblock {
    let bytes = std::fs::read(img).unwrap();
    Superblock::from_bytes(&bytes[1024..2048]).unwrap()
}

/// Filesystem block size of `img`.
pub fn block_size(img: &Path) -> u32 {
    1024 << superblock(img).s_log_block_size.get()
}

/// The journal inode's block runs, from `debugfs -R "stat <8>"`, and its
/// size in blocks. mke2fs does not always make it contiguous: in a
/// one-group flex_bg filesystem (64 MiB, 4 KiB blocks) it fills the gaps
/// between the bitmaps first, e.g. `(0-9):15-24, (10-24):26-40, ...`; so
/// the runs are used as they are, and only checked to cover the inode.
pub fn journal_runs(img: &Path) -> (Vec<JournalRun>, u64) {
    let stat = debugfs(img, "stat <8>");
    let size: u64 = stat
        .split("Size: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no size in:\n{stat}"));
    let mut runs = Vec::new();
    let extents = stat.split("EXTENTS:").nth(1).unwrap_or_else(|| panic!("no extents in:\n{stat}"));
    for item in extents.split(',') {
        let item = item.trim();
        // "(0-1023):1234-2257" or "(5):1239"; index blocks "(ETB0):..." are skipped.
        let Some((logical, physical)) = item.strip_prefix('(').and_then(|s| s.split_once("):")) else {
            continue;
        };
        if logical.starts_with("ETB") {
            continue;
        }
        let range = |s: &str| -> (u64, u64) {
            let mut p = s.trim().split('-').map(|x| x.trim().parse::<u64>().unwrap());
            let a = p.next().unwrap();
            (a, p.next().unwrap_or(a))
        };
        let (l0, l1) = range(logical);
        let (p0, _) = range(physical);
        runs.push(JournalRun { jblock: l0, device_block: p0, len: l1 - l0 + 1 });
    }
    let bs = u64::from(block_size(img));
    for w in runs.windows(2) {
        assert_eq!(w[0].jblock + w[0].len, w[1].jblock, "journal has a hole: {runs:?}");
    }
    assert_eq!(runs.iter().map(|r| r.len).sum::<u64>(), size / bs, "journal runs do not cover the inode");
    (runs, size / bs)
}

/// Recovers `img` with this crate: blocks written home, the journal
/// superblock finished, `needs_recovery` cleared in the ext4 superblock.
pub fn recover_with_library(img: &Path) -> Recovery {
    let bs = block_size(img);
    let (runs, _) = journal_runs(img);
    let dev = FileDevice::open(img, false).unwrap();
    let mut journal = DeviceJournal::new(&dev, bs, runs).unwrap();
    let rec = ext4_jbd2::recover(&mut journal, bs, |b, data| {
        dev.write_at(b * u64::from(bs), data)?;
        Ok::<_, ext4_blockdev::DeviceError>(())
    })
    .unwrap();
    dev.flush().unwrap();
    let mut buf = vec![0u8; 1024];
    dev.read_at(1024, &mut buf).unwrap();
    let mut sb = Superblock::from_bytes(&buf).unwrap();
    let incompat = sb.s_feature_incompat.get() & !Incompat::RECOVER.bits();
    sb.s_feature_incompat.set(incompat);
    sb.update_checksum();
    dev.write_at(1024, sb.as_bytes()).unwrap();
    dev.flush().unwrap();
    rec
}

/// Recovers `img` with `e2fsck -fy -E journal_only`, returning its output.
pub fn recover_with_e2fsck(img: &Path) -> String {
    let out = Command::new("e2fsck").args(["-fy", "-E", "journal_only"]).arg(img).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // 0: nothing changed, 1: errors corrected (the replay); anything else is a failure.
    assert!(out.status.code().is_some_and(|c| c <= 1), "e2fsck -E journal_only failed:\n{text}");
    text
}

/// `e2fsck -fn`: exit status and output.
pub fn fsck_n(img: &Path) -> (i32, String) {
    let out = Command::new("e2fsck").arg("-fn").arg(img).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// Byte ranges (offset, length, name, reason) allowed to differ between the
/// library's recovery and e2fsck's.
pub type Allowed = &'static [(usize, usize, &'static str, &'static str)];

/// Fields of the ext4 superblock (offsets from byte 1024) that e2fsck
/// legitimately writes differently from a plain replay.
pub const EXT4_SB_ALLOWED: Allowed = &[
    (0x178, 8, "s_kbytes_written", "e2fsck adds the bytes its I/O manager wrote during the replay; the library does not count writes"),
    (0x30, 4, "s_wtime", "libext2fs stamps the write time whenever it writes the superblock (ext2fs_flush)"),
    (0x274, 1, "s_wtime_hi", "high byte of the same time stamp"),
    (0x40, 4, "s_lastcheck", "e2fsck's cleanup stamps its check time even with -E journal_only (unix.c: sb->s_lastcheck = ctx->now)"),
    (0x277, 1, "s_lastcheck_hi", "high byte of the same time stamp"),
    (0x3FC, 4, "s_checksum", "follows from the fields above"),
];

/// Compares two images block by block; differences outside `allowed`
/// (ext4 superblock fields) fail the test with a list.
pub fn compare_images(what: &str, a: &Path, b: &Path, block_size: u32, allowed: Allowed) {
    compare_images_except(what, a, b, block_size, allowed, &[]);
}

/// [`compare_images`], with more byte ranges `(device offset, length,
/// name)` allowed to differ.
pub fn compare_images_except(what: &str, a: &Path, b: &Path, block_size: u32, allowed: Allowed, extra: &[(u64, u64, &str)]) {
    let x = std::fs::read(a).unwrap();
    let y = std::fs::read(b).unwrap();
    assert_eq!(x.len(), y.len());
    let mut bad = Vec::new();
    for (i, (p, q)) in x.chunks(block_size as usize).zip(y.chunks(block_size as usize)).enumerate() {
        if p == q {
            continue;
        }
        let base = i * block_size as usize;
        for off in (0..p.len()).filter(|&o| p[o] != q[o]) {
            let abs = base + off;
            let ok = (abs >= 1024 && allowed.iter().any(|&(o, l, _, _)| (1024 + o..1024 + o + l).contains(&abs)))
                || extra.iter().any(|&(o, l, _)| (o..o + l).contains(&(abs as u64)));
            if !ok {
                bad.push(format!("block {i} byte {off}: library {:#04x}, e2fsck {:#04x}", p[off], q[off]));
            }
        }
    }
    assert!(bad.is_empty(), "{what}: {} bytes differ:\n{}", bad.len(), bad.iter().take(40).cloned().collect::<Vec<_>>().join("\n"));
}

/// A data file of `n` blocks: block `i` is filled with a pattern of `i`;
/// blocks listed in `magic` start with the jbd2 magic (so they are escaped).
pub fn pattern_file(path: &Path, block_size: u32, n: usize, magic: &[usize]) {
    let mut d = Vec::with_capacity(n * block_size as usize);
    for i in 0..n {
        let mut b: Vec<u8> = (0..block_size as usize).map(|j| (i * 7 + j / 3 + 1) as u8).collect();
        if magic.contains(&i) {
            b[..4].copy_from_slice(&0xC03B_3998u32.to_be_bytes());
        }
        d.extend_from_slice(&b);
    }
    std::fs::write(path, d).unwrap();
}

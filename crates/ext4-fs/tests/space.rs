//! Space over long runs (issue 18, item 1): blocks freed by earlier
//! operations of the running transaction are not reused before it commits,
//! so an allocation that runs out commits and tries again, as the kernel
//! does after `ext4_should_retry_alloc`, instead of answering ENOSPC on a
//! mostly empty filesystem.
//!
//! * Eight overwrites of a 20 MiB file, and eight write-and-remove pairs,
//!   in one session on 64 MiB images (ext4 with and without a journal,
//!   ext3, ext2): every write succeeds, the data reads back, `e2fsck -fn`
//!   is silent.
//! * Blocks freed in a transaction are not handed out again before it
//!   commits (`debugfs` shows the new file elsewhere) unless nothing else
//!   is free, and then only after the commit.
//! * `statfs` equals the kernel's `statvfs` on kernel-aged images, with the
//!   overhead stored or counted, and counts blocks freed by the running
//!   transaction as free, as the kernel does.
//! * ENOSPC comes where the kernel gives it, for root and for another user:
//!   filling a kernel-made image stops with no more blocks left than the
//!   kernel leaves, and never inside root's reserve (for others) or the
//!   reserve kept for allocations that must not fail.

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_clean, have_fsck, open_ro, open_rw};
use ext4_fs::{Caller, Error, Filesystem, StatFs};
use ext4_testkit::noise as data;
use ext4_testkit::oracle::{LoopMount, can_loop_mount, debugfs};

const MIB: usize = 1 << 20;

/// A scratch image made by mke2fs, removed on drop.
struct Image(tempfile::TempPath);

/// `mke2fs -q -F ARGS IMAGE SIZE` on a fresh scratch file.
fn mke2fs(tag: &str, args: &[&str], size: &str) -> Image {
    let path = ext4_testkit::scratch_file(&format!("space-{tag}"));
    let out = Command::new("mke2fs").args(["-q", "-F"]).args(args).arg(&path).arg(size).output().expect("mke2fs runs");
    assert!(out.status.success(), "mke2fs {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Image(path)
}

/// The filesystems of the issue: 64 MiB, 4 KiB blocks, with and without a journal, and ext2.
const KINDS: [(&str, &[&str]); 5] = [
    ("ext4", &["-t", "ext4", "-b", "4096"]),
    ("ext4-nojournal", &["-t", "ext4", "-b", "4096", "-O", "^has_journal"]),
    ("ext3", &["-t", "ext3", "-b", "4096"]),
    ("ext2", &["-t", "ext2", "-b", "4096"]),
    ("ext4-1k", &["-t", "ext4", "-b", "1024"]),
];

#[ext4_testkit::oracle_test(e2fsprogs)]
fn overwrites_and_write_remove_pairs_reuse_freed_space() {
    if !have_fsck() {
        return;
    }
    for (name, args) in KINDS {
        let img = mke2fs(&format!("reuse-{name}"), args, "64M");
        let mut fs = open_rw(&img.0);
        let start = fs.statfs();
        for i in 0..8 {
            let d = data(i, 20 * MIB);
            fs.write_file("/f", &d).unwrap_or_else(|e| panic!("{name}: overwrite {}: {e}", i + 1));
            assert!(fs.read("/f").unwrap() == d, "{name}: /f after overwrite {}", i + 1);
        }
        let with_f = fs.statfs().free_blocks;
        for i in 0..8 {
            fs.write_file("/g", &data(100 + i, 20 * MIB)).unwrap_or_else(|e| panic!("{name}: write {} of /g: {e}", i + 1));
            fs.remove_file("/g").unwrap();
            // What the removal freed counts as free at once, as in the kernel.
            assert_eq!(fs.statfs().free_blocks, with_f, "{name}: free blocks after removal {}", i + 1);
        }
        assert!(start.free_blocks - with_f >= (20 * MIB / start.block_size as usize) as u64, "{name}: /f holds its blocks");
        fs.close().unwrap();
        assert_clean(&img.0);
        let fs = open_ro(&img.0);
        assert!(fs.read("/f").unwrap() == data(7, 20 * MIB), "{name}: /f after reopening");
        assert!(fs.metadata("/g").is_err(), "{name}: /g is gone");
    }
}

/// The device blocks of `path`, as debugfs lists them.
fn blocks_of(img: &Path, path: &str) -> Vec<u64> {
    debugfs(img, &format!("blocks {path}")).split_whitespace().map(|b| b.parse().expect("a block number")).collect()
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn freed_blocks_wait_for_the_commit_that_frees_them() {
    if !have_fsck() {
        return;
    }
    let img = mke2fs("wait", &["-t", "ext4", "-b", "4096"], "64M");
    let mut fs = open_rw(&img.0);
    fs.write_file("/a", &data(1, 8 * MIB)).unwrap();
    fs.close().unwrap();
    let a = blocks_of(&img.0, "/a");
    assert_eq!(a.len(), 8 * MIB / 4096);

    // Room elsewhere: /b does not take /a's blocks in the transaction that freed them.
    let mut fs = open_rw(&img.0);
    fs.remove_file("/a").unwrap();
    fs.write_file("/b", &data(2, 8 * MIB)).unwrap();
    fs.close().unwrap();
    assert_clean(&img.0);
    let b = blocks_of(&img.0, "/b");
    assert!(b.iter().all(|x| !a.contains(x)), "/b reuses blocks /a freed in the same transaction");

    // No room elsewhere: /c gets the freed blocks, after a commit made the removal durable.
    let mut fs = open_rw(&img.0);
    let fill = fs.statfs().free_blocks as usize * 4096 - (kernel_reserve(&fs) as usize + 64) * 4096;
    fs.write_file("/fill", &data(3, fill)).unwrap();
    fs.sync().unwrap();
    fs.remove_file("/b").unwrap();
    let before = fs.superblock().free_blocks_count();
    fs.write_file("/c", &data(4, 4 * MIB)).unwrap();
    assert!(fs.superblock().free_blocks_count() > before, "the removal of /b was committed before /c took its space");
    // More than is free even after the commit: nothing of it stays.
    let too_big = fs.statfs().free_blocks as usize * 4096 + MIB;
    assert!(matches!(fs.write_file("/d", &data(5, too_big)), Err(Error::NoSpace)));
    assert_eq!(fs.metadata("/d").unwrap().size, 0);
    fs.close().unwrap();
    assert_clean(&img.0);
    let fs = open_ro(&img.0);
    assert!(fs.read("/c").unwrap() == data(4, 4 * MIB) && fs.read("/fill").unwrap() == data(3, fill));
}

/// Blocks the kernel keeps from every ordinary allocation, root's too
/// (`s_resv_clusters` from `ext4_calculate_resv_clusters`): 2 % of the
/// blocks, at most 4096, with extents.
fn kernel_reserve(fs: &Filesystem) -> u64 {
    let geo = fs.geometry();
    if geo.features.incompat.contains(ext4_fs::ondisk::Incompat::EXTENTS) { (geo.blocks_count / 50).min(4096) } else { 0 }
}

fn can_mount() -> bool {
    have_fsck()
        && ext4_testkit::require(can_loop_mount(), "needs root and loop devices")
        && ext4_testkit::require(ext4_testkit::oracle::have_tool("python3"), "needs python3 for statvfs and users")
}

/// Runs a python3 program and returns its standard output.
fn python(program: &str) -> String {
    let out = Command::new("python3").arg("-c").arg(program).output().expect("python3 runs");
    assert!(out.status.success(), "python3: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The kernel's `statvfs` of a mounted directory, in the library's terms.
fn kernel_statfs(dir: &Path) -> [u64; 5] {
    let out = python(&format!(
        "import os; s = os.statvfs({:?}); print(s.f_blocks, s.f_bfree, s.f_bavail, s.f_files, s.f_ffree)",
        dir.to_str().unwrap()
    ));
    let v: Vec<u64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    [v[0], v[1], v[2], v[3], v[4]]
}

fn ours(s: &StatFs) -> [u64; 5] {
    [s.blocks, s.free_blocks, s.available_blocks, s.inodes, s.free_inodes]
}

/// Files written and some removed through the kernel.
fn age(img: &Path) {
    let m = LoopMount::new(img, "").expect("loop mount");
    for i in 0..12u64 {
        std::fs::write(m.path().join(format!("f{i}")), data(i, (i as usize + 1) * 300_000)).unwrap();
    }
    std::fs::create_dir(m.path().join("d")).unwrap();
    for i in (0..12).step_by(3) {
        std::fs::remove_file(m.path().join(format!("f{i}"))).unwrap();
    }
    m.unmount().unwrap();
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, python3)]
fn statfs_equals_the_kernels() {
    if !can_mount() {
        return;
    }
    let cases: [(&str, &[&str], &str, bool); 6] = [
        ("ext4-4k", &["-t", "ext4", "-b", "4096"], "64M", false),
        ("ext4-1k", &["-t", "ext4", "-b", "1024"], "64M", false),
        ("ext4-counted", &["-t", "ext4", "-b", "4096", "-O", "^resize_inode"], "96M", true),
        ("ext3-counted", &["-t", "ext3", "-b", "1024"], "40M", true),
        ("ext2", &["-t", "ext2", "-b", "4096"], "64M", false),
        ("ext4-flex-nojournal", &["-t", "ext4", "-b", "4096", "-G", "4", "-O", "^has_journal"], "300M", true),
    ];
    for (name, args, size, zero_overhead) in cases {
        let img = mke2fs(&format!("statfs-{name}"), args, size);
        age(&img.0);
        if zero_overhead {
            // The kernel counts the overhead itself when the superblock has none.
            let out = Command::new("debugfs").args(["-w", "-R", "ssv overhead_clusters 0"]).arg(&img.0).output().unwrap();
            assert!(out.status.success(), "{name}: debugfs ssv: {}", String::from_utf8_lossy(&out.stderr));
        }
        let lib = ours(&open_ro(&img.0).statfs());
        let m = LoopMount::new(&img.0, "ro").expect("loop mount");
        let kernel = kernel_statfs(m.path());
        m.unmount().unwrap();
        assert_eq!(lib, kernel, "{name}: statfs [blocks, free, available, inodes, free inodes], ours then the kernel's");

        // Blocks freed by the running transaction count as free, as the kernel counts them.
        let copy = Image(ext4_testkit::scratch_file("space-copy"));
        std::fs::copy(&img.0, &copy.0).unwrap();
        let mut fs = open_rw(&img.0);
        fs.remove_file("/f11").unwrap();
        let lib = ours(&fs.statfs());
        drop(fs);
        let m = LoopMount::new(&copy.0, "").expect("loop mount");
        std::fs::remove_file(m.path().join("f11")).unwrap();
        let kernel = kernel_statfs(m.path());
        m.unmount().unwrap();
        assert_eq!(lib, kernel, "{name}: statfs after a removal, ours then the kernel's");
        println!("{name}: statfs {lib:?} as the kernel's");
    }
}

/// Writes into `dir/fill` until even one block does not fit; returns the
/// free blocks left.
fn fill_library(fs: &mut Filesystem, who: &str) -> u64 {
    let ino = fs.create("/open/fill", 0o666).unwrap();
    let bs = fs.geometry().block_size as usize;
    let (mut off, mut chunk) = (0u64, 256 << 10);
    loop {
        match fs.write_at(ino, off, &data(off, chunk)) {
            Ok(n) => off += n as u64,
            Err(Error::NoSpace) if chunk > bs => chunk /= 2,
            Err(Error::NoSpace) => break,
            Err(e) => panic!("{who}: {e}"),
        }
    }
    fs.statfs().free_blocks
}

/// Fills `dir/fill` through the kernel as `uid` (with `dd`, then `sync`),
/// then one more block; returns the free blocks left.
fn fill_kernel(img: &Path, uid: u32) -> u64 {
    let m = LoopMount::new(img, "").expect("loop mount");
    let dir = m.path().join("open");
    let as_user = |cmd: &str| {
        Command::new("setpriv")
            .args(["--reuid", &uid.to_string(), "--regid", &uid.to_string(), "--clear-groups", "sh", "-c", cmd])
            .current_dir(&dir)
            .output()
            .expect("setpriv runs")
    };
    as_user("dd if=/dev/zero of=fill bs=64k 2>/dev/null; sync; dd if=/dev/zero of=more bs=1k 2>/dev/null; sync");
    let free = kernel_statfs(m.path())[1];
    m.unmount().unwrap();
    free
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, python3, setpriv)]
fn no_space_where_the_kernel_gives_it() {
    if !can_mount() || !ext4_testkit::require(ext4_testkit::oracle::have_tool("setpriv"), "needs setpriv to write as a user") {
        return;
    }
    for (name, args) in
        [("ext4-4k", &["-t", "ext4", "-b", "4096"][..]), ("ext4-1k", &["-t", "ext4", "-b", "1024"]), ("ext2", &["-t", "ext2"])]
    {
        for (who, uid) in [("root", 0), ("a user", 1000)] {
            let img = mke2fs(&format!("fill-{name}-{uid}"), args, "48M");
            let m = LoopMount::new(&img.0, "").expect("loop mount");
            std::fs::create_dir(m.path().join("open")).unwrap();
            python(&format!("import os; os.chmod({:?}, 0o777)", m.path().join("open").to_str().unwrap()));
            m.unmount().unwrap();
            let copy = Image(ext4_testkit::scratch_file("space-copy"));
            std::fs::copy(&img.0, &copy.0).unwrap();

            let mut fs = open_rw(&img.0);
            fs.set_caller(Caller::user(uid, uid));
            let reserve = kernel_reserve(&fs) + if uid == 0 { 0 } else { fs.superblock().r_blocks_count() };
            let ours = fill_library(&mut fs, &format!("{name} as {who}"));
            fs.close().unwrap();
            assert_clean(&img.0);
            let kernel = fill_kernel(&copy.0, uid);
            println!("{name} as {who}: {ours} blocks left free by us, {kernel} by the kernel, reserve {reserve}");
            assert!(ours >= reserve, "{name} as {who}: we allocated into the reserve ({ours} free, reserve {reserve})");
            assert!(ours <= kernel + 3, "{name} as {who}: ENOSPC with {ours} blocks free, the kernel goes on to {kernel}");
        }
    }
}

/// Written data takes ordinary blocks, but the extent blocks that map it
/// may come from the reserve, as the kernel maps written data at writeback
/// (`EXT4_GET_BLOCKS_METADATA_NOFAIL`): with one ordinary block left, a
/// write into a hole of a file whose inode holds no more extents succeeds,
/// taking one block for the data and one from the reserve for a leaf.
#[ext4_testkit::oracle_test(e2fsprogs)]
fn the_map_of_written_data_may_take_the_reserve() {
    if !have_fsck() {
        return;
    }
    let img = mke2fs("leaf", &["-t", "ext4", "-b", "4096"], "32M");
    let mut fs = open_rw(&img.0);
    let frag = fs.create("/frag", 0o644).unwrap();
    for i in 0..4u64 {
        fs.write_at(frag, i * 2 * 4096, &data(i, 4096)).unwrap();
    }
    assert_eq!(fs.stat(frag).unwrap().blocks, 4 * 8, "four extents in the inode, no leaf yet");
    let reserve = kernel_reserve(&fs);
    let filler = fs.create("/filler", 0o644).unwrap();
    let spare = |fs: &Filesystem| fs.statfs().free_blocks - reserve;
    fs.write_at(filler, 0, &data(9, (spare(&fs) as usize - 4) * 4096)).unwrap();
    while spare(&fs) > 1 {
        let end = fs.stat(filler).unwrap().size;
        fs.write_at(filler, end, &data(end, 4096)).unwrap();
    }
    assert_eq!(spare(&fs), 1);
    fs.write_at(frag, 100 * 4096, &data(100, 4096)).unwrap();
    assert_eq!(fs.statfs().free_blocks, reserve - 1, "the data took the last ordinary block, the leaf one of the reserve");
    assert!(matches!(fs.write_at(frag, 200 * 4096, &data(200, 4096)), Err(Error::NoSpace)), "no ordinary block is left");
    fs.close().unwrap();
    assert_clean(&img.0);
    assert!(open_ro(&img.0).read("/frag").unwrap()[100 * 4096..] == data(100, 4096)[..]);
}

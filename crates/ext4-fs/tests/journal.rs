//! The journal, against the oracles:
//!
//! * the kernel writes, then is shut down with its log flushed but not
//!   checkpointed: the library's replay gives the same image, block for
//!   block, as `e2fsck -E journal_only`'s (superblock fields named below
//!   excepted), and the tree the kernel saw; a read-only open without
//!   replay sees the same tree through the journal;
//! * the library writes and "crashes" (states at flush boundaries): the
//!   kernel replays the library's journal and shows the last synced state
//!   or the one being committed, and e2fsck is then silent. (Every write
//!   boundary, recovered by the library and e2fsck, is judged by
//!   `ext4-testkit`'s crash explorer.)

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use ext4_fs::blockdev::{MemoryDevice, RecordedOp, RecordingDevice, recording_replay};
use ext4_fs::{Filesystem, OpenOptions};
use ext4_testkit::oracle::{LoopMount, can_loop_mount, e2fsck_problems, have_e2fsprogs};
use ext4_testkit::snapshot::Snapshot;

fn scratch(tag: &str) -> tempfile::TempPath {
    ext4_testkit::scratch_file(&format!("journal-{tag}"))
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("runs");
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn mke2fs(path: &Path, args: &[&str], size: &str) {
    let _ = std::fs::remove_file(path);
    run(Command::new("mke2fs")
        .args(["-q", "-F", "-U", "01234567-89ab-cdef-0123-456789abcdef", "-E", "hash_seed=11111111-2222-3333-4444-555555555555"])
        .args(args)
        .arg(path)
        .arg(size));
}

/// Writes a small tree through the kernel, then shuts the filesystem down
/// with the log flushed (committed, not checkpointed). Returns what the
/// kernel showed just before.
fn kernel_crash(image: &Path) -> Snapshot {
    // Without delayed allocation, ordered mode writes file data before the
    // commit that the shutdown forces, so the recovered tree is the one seen.
    let m = LoopMount::new(image, "nodelalloc").expect("mount");
    let root = m.path();
    for d in 0..4 {
        let dir = root.join(format!("dir{d}"));
        std::fs::create_dir(&dir).unwrap();
        for f in 0..60 {
            let data: Vec<u8> = (0..(f * 97 + d * 13) % 9000).map(|i| (i * 7 + f) as u8).collect();
            std::fs::write(dir.join(format!("file-{f:03}-with-a-longer-name")), data).unwrap();
        }
    }
    // Part of the log is committed but not checkpointed before the rest.
    run(Command::new("sync").arg("-f").arg(root));
    std::fs::rename(root.join("dir0/file-001-with-a-longer-name"), root.join("dir1/moved")).unwrap();
    std::fs::write(root.join("dir1/after-sync"), b"written after the sync").unwrap();
    std::fs::remove_file(root.join("dir2/file-002-with-a-longer-name")).unwrap();
    std::os::unix::fs::symlink("dir1/moved", root.join("link")).unwrap();
    std::fs::remove_dir_all(root.join("dir3")).unwrap();
    let mut snap = Snapshot::from_host(root).unwrap();
    snap.remove_tree(b"lost+found");
    let py = "import fcntl,os,struct,sys; fd=os.open(sys.argv[1], os.O_RDONLY); fcntl.ioctl(fd, 0x8004587d, struct.pack('I', 1))";
    run(Command::new("python3").arg("-c").arg(py).arg(root));
    m.unmount().expect("umount");
    snap
}

fn assert_same(got: &Snapshot, expected: &Snapshot, what: &str) {
    let diff = expected.diff(got);
    assert!(diff.is_empty(), "{what}: {} differences, first: {:?}", diff.len(), &diff[..diff.len().min(4)]);
}

fn needs_recovery(image: &Path) -> bool {
    let sb = std::fs::read(image).unwrap();
    u32::from_le_bytes(sb[1024 + 0x60..1024 + 0x64].try_into().unwrap()) & 0x4 != 0
}

fn tree(fs: &Filesystem) -> Snapshot {
    let mut s = Snapshot::from_image(fs, b"/").expect("walk");
    s.remove_tree(b"lost+found");
    s
}

/// Superblock fields that may differ after the two replays, by byte range
/// (offsets in the superblock) and why.
const SB_FIELDS_E2FSCK_SETS: &[(usize, usize, &str)] = &[
    (0x30, 0x34, "s_wtime: e2fsck stamps its write time"),
    (
        0x0C,
        0x14,
        "s_free_blocks_count_lo, s_free_inodes_count: the library recomputes them from the group descriptors after a replay, as the kernel does at mount (and e2fsck's full check); e2fsck's replay alone keeps the kernel's stale values",
    ),
    (0x158, 0x15C, "s_free_blocks_count_hi: as above"),
    (
        0x64,
        0x68,
        "s_feature_ro_compat: orphan_present, cleared by the library's orphan processing as by the kernel's mount; e2fsck's replay alone keeps it",
    ),
    (0x40, 0x44, "s_lastcheck: e2fsck stamps it"),
    (0x178, 0x180, "s_kbytes_written: e2fsck counts its own writes"),
    (0x274, 0x275, "s_wtime_hi"),
    (0x276, 0x277, "s_lastcheck_hi"),
    (0x3FC, 0x400, "s_checksum: covers the fields above"),
];

fn compare_with_e2fsck_replay(ours: &[u8], theirs: &[u8], what: &str) {
    assert_eq!(ours.len(), theirs.len());
    let mut bad = Vec::new();
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        if a == b {
            continue;
        }
        let allowed = (1024..2048).contains(&i) && SB_FIELDS_E2FSCK_SETS.iter().any(|&(s, e, _)| (s..e).contains(&(i - 1024)));
        if !allowed {
            bad.push(i);
        }
    }
    assert!(
        bad.is_empty(),
        "{what}: {} bytes differ from e2fsck's replay, first at byte {} (block {} of 1k)",
        bad.len(),
        bad[0],
        bad[0] / 1024
    );
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn kernel_journals_replay_like_e2fsck() {
    if !ext4_testkit::require(have_e2fsprogs() && can_loop_mount(), "needs e2fsprogs, root and loop devices") {
        return;
    }
    let configs: &[(&str, &[&str])] = &[
        ("ext4-4k", &["-t", "ext4", "-b", "4096"]),
        ("ext4-1k", &["-t", "ext4", "-b", "1024"]),
        ("ext4-csum-seed-orphan", &["-t", "ext4", "-O", "metadata_csum_seed,orphan_file"]),
        ("ext4-32bit-nocsum", &["-t", "ext4", "-O", "^64bit,^metadata_csum"]),
        ("ext3-4k", &["-t", "ext3"]),
    ];
    for (name, args) in configs {
        let base = scratch(name);
        mke2fs(&base, args, "64M");
        let expected = kernel_crash(&base);
        assert!(needs_recovery(&base), "{name}: the shutdown left no journal to recover");

        // A read-only open serves the journal's copies without writing.
        let before = std::fs::read(&base).unwrap();
        {
            let fs = Filesystem::open_path(&base, OpenOptions::read_only()).expect("read-only open");
            assert_same(&tree(&fs), &expected, &format!("{name}: read-only view through the journal"));
        }
        assert!(std::fs::read(&base).unwrap() == before, "{name}: a read-only open wrote to the image");

        let theirs = scratch(&format!("{name}-e2fsck"));
        std::fs::copy(&base, &theirs).unwrap();
        // Without -f: the replay only (with -f e2fsck goes on to check and repair).
        let out = Command::new("e2fsck").args(["-y", "-E", "journal_only"]).arg(&theirs).output().unwrap();
        assert!(out.status.code().unwrap_or(8) < 4, "{name}: e2fsck journal_only: {}", String::from_utf8_lossy(&out.stdout));

        // The library replays at a writable open.
        Filesystem::open_path(&base, OpenOptions::read_write()).expect("replaying open").close().unwrap();
        assert!(!needs_recovery(&base), "{name}: needs_recovery still set");
        compare_with_e2fsck_replay(&std::fs::read(&base).unwrap(), &std::fs::read(&theirs).unwrap(), name);
        if let Some(p) = e2fsck_problems(&base) {
            panic!("{name}: e2fsck after the library's replay:\n{p}");
        }
        let fs = Filesystem::open_path(&base, OpenOptions::read_only()).unwrap();
        assert_same(&tree(&fs), &expected, &format!("{name}: tree after replay"));
        drop(fs);
        let _ = std::fs::remove_file(&base);
        let _ = std::fs::remove_file(&theirs);
        println!("{name}: replay equals e2fsck's, tree equals the kernel's");
    }
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn kernel_orphans_are_processed_at_open() {
    if !ext4_testkit::require(have_e2fsprogs() && can_loop_mount(), "needs e2fsprogs, root and loop devices") {
        return;
    }
    let configs: &[(&str, &[&str])] =
        &[("orphan-list", &["-t", "ext4", "-O", "^orphan_file"]), ("orphan-file", &["-t", "ext4", "-O", "orphan_file"])];
    for (name, args) in configs {
        let img = scratch(name);
        mke2fs(&img, args, "64M");
        let m = LoopMount::new(&img, "nodelalloc").expect("mount");
        std::fs::write(m.path().join("kept"), b"kept").unwrap();
        // Files unlinked while open are orphans when the filesystem goes down.
        let py = "import fcntl,os,struct,sys\n\
                  r=sys.argv[1]; fs=[]\n\
                  for i in range(3):\n\
                  \x20 p=os.path.join(r,'gone%d'%i); f=open(p,'wb'); f.write(b'x'*300000); f.flush(); os.fsync(f.fileno()); os.unlink(p); fs.append(f)\n\
                  fd=os.open(r, os.O_RDONLY); os.fsync(fd); fcntl.ioctl(fd, 0x8004587d, struct.pack('I', 1))";
        run(Command::new("python3").arg("-c").arg(py.replace("\\n", "\n")).arg(m.path()));
        m.unmount().expect("umount");
        let before = e2fsck_problems(&img);
        assert!(before.is_some(), "{name}: the image should need orphan processing");
        Filesystem::open_path(&img, OpenOptions::read_write()).expect("open").close().unwrap();
        if let Some(p) = e2fsck_problems(&img) {
            panic!("{name}: e2fsck after the library processed the orphans:\n{p}");
        }
        let fs = Filesystem::open_path(&img, OpenOptions::read_only()).unwrap();
        let names: Vec<String> = fs.read_dir("/").unwrap().iter().map(|e| e.name_lossy().into_owned()).collect();
        assert_eq!(names.iter().filter(|n| n.starts_with("gone")).count(), 0);
        assert_eq!(fs.read("/kept").unwrap(), b"kept");
        drop(fs);
        let _ = std::fs::remove_file(&img);
        println!("{name}: orphans freed, e2fsck silent");
    }
}

/// One step of the crash workload.
fn step(fs: &mut Filesystem, i: usize) {
    match i % 6 {
        0 => {
            for k in 0..4 {
                fs.create_dir_all(format!("/d{k}/sub{i}"), 0o755).unwrap();
            }
        }
        1 => {
            let data: Vec<u8> = (0..(i * 1500) % 20000).map(|k| (k + i) as u8).collect();
            fs.write_file(format!("/d{}/f{i}", (i + 3) % 4), &data).unwrap();
        }
        2 => {
            let _ = fs.rename(format!("/d{}/f{}", (i + 2) % 4, i - 1), format!("/r{i}"));
        }
        3 => {
            for k in 0..30 {
                fs.write_file(format!("/d{}/many-{i}-{k}", i % 4), b"x").unwrap();
            }
        }
        4 => {
            let names: Vec<String> = fs
                .read_dir(format!("/d{}", (i + 1) % 4))
                .map(|v| v.iter().map(|e| e.name_lossy().into_owned()).collect())
                .unwrap_or_default();
            for n in names.iter().step_by(2) {
                let _ = fs.remove_file(format!("/d{}/{n}", (i + 1) % 4));
            }
        }
        _ => {
            let _ = fs.symlink(format!("/d{}", i % 4), format!("/s{i}"));
        }
    }
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn kernel_replays_journals_the_library_left() {
    // Every write boundary is judged by `ext4-testkit`'s crash explorer
    // (tests/crash.rs there, `cargo xtask crash`); here the kernel is the
    // one replaying: crash states at flush boundaries, mounted by the kernel.
    if !ext4_testkit::require(have_e2fsprogs() && can_loop_mount(), "needs e2fsprogs, root and loop devices") {
        return;
    }
    for kind in common::KINDS.iter().filter(|k| k.fs_type != ext4_mkfs::FsType::Ext2) {
        let img = common::format(kind, 8 << 20, "crash");
        let base = std::fs::read(&img.path).unwrap();
        let dev = Arc::new(RecordingDevice::new(MemoryDevice::from_vec(base.clone())));
        let mut fs = Filesystem::open(Arc::clone(&dev), OpenOptions::read_write()).unwrap();
        fs.set_fixed_time(Some(ext4_fs::ondisk::Timestamp { secs: 1_700_000_000, nsec: 0 }));
        let mut synced = vec![(dev.op_count(), tree(&fs))];
        for i in 0..12 {
            step(&mut fs, i);
            fs.sync().unwrap();
            synced.push((dev.op_count(), tree(&fs)));
        }
        std::mem::forget(fs); // a crash: no close, nothing checkpointed
        let log = dev.log();
        let flushes: Vec<usize> = log.iter().enumerate().filter(|(_, o)| matches!(o, RecordedOp::Flush)).map(|(i, _)| i + 1).collect();
        // The last flush (a live log needing replay) and a spread of earlier ones.
        let mut cuts: Vec<usize> = flushes.iter().copied().step_by((flushes.len() / 6).max(1)).collect();
        cuts.push(*flushes.last().unwrap());
        let mut replayed = 0;
        for cut in cuts {
            let image = recording_replay(&base, &log[..cut]);
            let j = synced.iter().rposition(|(ops, _)| *ops <= cut).unwrap_or(0);
            let allowed: Vec<&Snapshot> = synced[j..(j + 2).min(synced.len())].iter().map(|(_, s)| s).collect();
            let path = scratch(&format!("{}-cut{cut}", kind.name));
            std::fs::write(&path, &image).unwrap();
            replayed += usize::from(needs_recovery(&path));
            let m = LoopMount::new(&path, "").unwrap_or_else(|e| panic!("{}: kernel mount of the crash state at op {cut}: {e}", kind.name));
            let mut seen = Snapshot::from_host(m.path()).unwrap();
            seen.remove_tree(b"lost+found");
            m.unmount().unwrap();
            assert!(
                allowed.iter().any(|s| s.diff(&seen).is_empty()),
                "{}: crash at op {cut}: the kernel's recovery shows a state between syncs",
                kind.name
            );
            if let Some(p) = e2fsck_problems(&path) {
                panic!("{}: crash at op {cut}, recovered by the kernel:\n{p}", kind.name);
            }
            let _ = std::fs::remove_file(&path);
        }
        assert!(replayed > 0, "{}: no crash state needed recovery", kind.name);
        println!("{}: the kernel recovered {replayed} library journals", kind.name);
    }
}

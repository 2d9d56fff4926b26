//! External journals (`mke2fs -O journal_dev`, `mke2fs -J device=`),
//! against the oracles:
//!
//! * the kernel writes through its external journal and is shut down with
//!   the log flushed: the library, given the journal device, replays it
//!   and shows the tree the kernel saw, and e2fsck is silent;
//! * the library writes through the journal device and "crashes" after a
//!   sync: e2fsck's replay and the kernel's (a mount) show the synced tree,
//!   and a clean close leaves both images `e2fsck -fn` silent;
//! * opening without the device, with another journal device, or a
//!   journal device as a filesystem fails with a message saying so.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use ext4_fs::{FileDevice, Filesystem, OpenOptions};
use ext4_testkit::fixtures::{mke2fs_external_journal, mke2fs_sized};
use ext4_testkit::oracle::{LoopDevice, LoopMount, can_loop_mount, e2fsck_problems_with_journal, have_e2fsprogs};
use ext4_testkit::snapshot::Snapshot;

/// A filesystem image and its journal device image, removed on drop.
struct Pair {
    image: PathBuf,
    journal: PathBuf,
    /// The journal's UUID.
    uuid: String,
    /// Holds both files; removed on drop.
    _dir: tempfile::TempDir,
}

impl Pair {
    /// A copy of both files in a scratch directory of its own.
    fn copy(&self, tag: &str) -> Pair {
        let dir = ext4_testkit::scratch_dir(&format!("extjournal-{tag}"));
        let (image, journal) = (dir.path().join("fs.img"), dir.path().join("fs.journal"));
        std::fs::copy(&self.image, &image).unwrap();
        std::fs::copy(&self.journal, &journal).unwrap();
        Pair { image, journal, uuid: self.uuid.clone(), _dir: dir }
    }
}

fn oracles() -> bool {
    ext4_testkit::require(have_e2fsprogs() && can_loop_mount(), "external journals need e2fsprogs, root and loop devices")
}

fn pair(tag: &str, block_size: &str) -> Pair {
    let dir = ext4_testkit::scratch_dir(&format!("extjournal-{tag}"));
    let (image, journal) = (dir.path().join("fs.img"), dir.path().join("fs.journal"));
    let uuid = mke2fs_external_journal(&image, 32 << 20, &journal, 8 << 20, &["-t", "ext4", "-b", block_size]).expect("mke2fs");
    Pair { image, journal, uuid, _dir: dir }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("runs");
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn tree(fs: &Filesystem) -> Snapshot {
    let mut s = Snapshot::from_image(fs, b"/").expect("walk");
    s.remove_tree(b"lost+found");
    s
}

fn assert_same(got: &Snapshot, expected: &Snapshot, what: &str) {
    let diff = expected.diff(got);
    assert!(diff.is_empty(), "{what}: {} differences, first: {:?}", diff.len(), &diff[..diff.len().min(4)]);
}

fn assert_clean(p: &Pair, what: &str) {
    if let Some(out) = e2fsck_problems_with_journal(&p.image, Some(&p.journal)) {
        panic!("{what}: e2fsck -fn -j:\n{out}");
    }
}

fn needs_recovery(image: &Path) -> bool {
    let (_, geo) = ext4_fs::read_superblock(&FileDevice::open(image, true).unwrap()).unwrap();
    geo.features.incompat.contains(ext4_fs::ondisk::Incompat::RECOVER)
}

/// Mounts `p` through the kernel with its journal device attached to a loop device.
fn kernel_mount(p: &Pair, options: &str) -> (LoopMount, LoopDevice) {
    let dev = LoopDevice::new(&p.journal).expect("losetup");
    let opts = format!("journal_path={}{}{options}", dev.path().display(), if options.is_empty() { "" } else { "," });
    (LoopMount::new(&p.image, &opts).expect("mount"), dev)
}

fn kernel_view(p: &Pair) -> Snapshot {
    let (m, dev) = kernel_mount(p, "");
    let mut s = Snapshot::from_host(m.path()).expect("walk");
    s.remove_tree(b"lost+found");
    m.unmount().expect("umount");
    dev.detach().expect("losetup -d");
    s
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn the_library_replays_what_the_kernel_logged_on_the_device() {
    if !oracles() {
        return;
    }
    for bs in ["4096", "1024"] {
        let p = pair(&format!("kernel-{bs}"), bs);
        let (m, dev) = kernel_mount(&p, "nodelalloc");
        let root = m.path();
        for d in 0..3 {
            std::fs::create_dir(root.join(format!("d{d}"))).unwrap();
            for f in 0..40 {
                let data: Vec<u8> = (0..(f * 131 + d * 7) % 7000).map(|i| (i + f) as u8).collect();
                std::fs::write(root.join(format!("d{d}/file-{f:02}")), data).unwrap();
            }
        }
        run(Command::new("sync").arg("-f").arg(root));
        std::fs::rename(root.join("d0/file-01"), root.join("d1/moved")).unwrap();
        std::fs::remove_dir_all(root.join("d2")).unwrap();
        let mut seen = Snapshot::from_host(root).unwrap();
        seen.remove_tree(b"lost+found");
        let py = "import fcntl,os,struct,sys; fd=os.open(sys.argv[1], os.O_RDONLY); fcntl.ioctl(fd, 0x8004587d, struct.pack('I', 1))";
        run(Command::new("python3").arg("-c").arg(py).arg(root));
        m.unmount().expect("umount");
        dev.detach().expect("losetup -d");
        assert!(needs_recovery(&p.image), "{bs}: the shutdown left a log to replay");

        let fs = Filesystem::open_path_with_journal(&p.image, &p.journal, OpenOptions::read_only()).unwrap();
        assert_same(&tree(&fs), &seen, &format!("{bs}: read-only view through the device's log"));
        drop(fs);
        // Without the device, a read-only open still reads (what was checkpointed), and says why.
        let fs = Filesystem::open_path(&p.image, OpenOptions::read_only()).unwrap();
        assert!(fs.journal_ignored().is_some_and(|w| w.contains(&p.uuid)), "{:?}", fs.journal_ignored());
        Snapshot::from_image(&fs, b"/").expect("a walk without the journal");
        drop(fs);
        let e = Filesystem::open_path(&p.image, OpenOptions::read_write()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("needs recovery"), "{e}");
        // Recovery alone, and clearing, on copies.
        let copy = |tag: &str| p.copy(tag);
        let dev = |path: &Path| FileDevice::open(path, false).unwrap();
        let r = copy("recover");
        let fs = Filesystem::recover_external_journal(dev(&r.image), dev(&r.journal)).unwrap();
        assert_same(&tree(&fs), &seen, &format!("{bs}: recovery alone"));
        drop(fs);
        assert!(!needs_recovery(&r.image), "{bs}: recovery clears needs_recovery");
        let c = copy("clear");
        let done = Filesystem::clear_external_journal(dev(&c.image), dev(&c.journal)).unwrap();
        assert!(done.discarded && done.rebuilt.is_none(), "{bs}: {done:?}");
        assert!(!needs_recovery(&c.image), "{bs}: clearing clears needs_recovery");
        let fs = Filesystem::open_path_with_journal(&c.image, &c.journal, OpenOptions::read_only()).unwrap();
        assert!(fs.journal_recovery().is_none(), "{bs}: nothing left in the log");

        let fs = Filesystem::open_path_with_journal(&p.image, &p.journal, OpenOptions::read_write()).unwrap();
        assert!(fs.journal_recovery().is_some_and(|r| r.transactions() > 0), "{bs}: transactions replayed");
        assert_same(&tree(&fs), &seen, &format!("{bs}: after the library's replay"));
        fs.close().unwrap();
        assert_clean(&p, &format!("{bs}: after the library's replay"));
        assert_same(&kernel_view(&p), &seen, &format!("{bs}: the kernel after the library's replay"));
    }
}

/// The library's workload: a tree, a sync, then more changes.
fn library_workload(fs: &mut Filesystem) -> Snapshot {
    fs.set_transaction_limits(64, 1 << 20);
    for d in 0..3 {
        fs.mkdir(format!("/lib{d}"), 0o755).unwrap();
        for f in 0..50 {
            let data: Vec<u8> = (0..(f * 211 + d) % 9000).map(|i| (i * 3 + f) as u8).collect();
            fs.write_file(format!("/lib{d}/f{f}"), &data).unwrap();
        }
    }
    fs.remove_file("/lib1/f7").unwrap();
    fs.rename("/lib2", "/lib0/moved").unwrap();
    fs.sync().unwrap();
    tree(fs)
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn the_kernel_and_e2fsck_replay_what_the_library_logged_on_the_device() {
    if !oracles() {
        return;
    }
    let p = pair("library", "4096");
    let mut fs = Filesystem::open_path_with_journal(&p.image, &p.journal, OpenOptions::read_write()).unwrap();
    let synced = library_workload(&mut fs);
    // A crash: the filesystem is never closed; the log holds what was synced.
    std::mem::forget(fs);
    assert!(needs_recovery(&p.image), "the library left needs_recovery set");

    let copy = p.copy("copy");
    let out = Command::new("e2fsck").args(["-fy", "-E", "journal_only", "-j"]).arg(&copy.journal).arg(&copy.image).output().unwrap();
    assert!(out.status.code().unwrap_or(8) < 4, "e2fsck's replay: {}", String::from_utf8_lossy(&out.stdout));
    assert_clean(&copy, "after e2fsck's replay");
    let fs = Filesystem::open_path_with_journal(&copy.image, &copy.journal, OpenOptions::read_only()).unwrap();
    assert_same(&tree(&fs), &synced, "after e2fsck's replay");
    drop(fs);

    assert_same(&kernel_view(&p), &synced, "after the kernel's replay");
    assert_clean(&p, "after the kernel's replay");

    // A clean session after the kernel's: closed, nothing left to replay.
    let mut fs = Filesystem::open_path_with_journal(&p.image, &p.journal, OpenOptions::read_write()).unwrap();
    fs.write_file("/after", b"a clean close").unwrap();
    fs.close().unwrap();
    assert!(!needs_recovery(&p.image));
    assert_clean(&p, "after a clean close");
    assert_eq!(kernel_view(&p).nodes.len(), synced.nodes.len() + 1, "the kernel sees the last file");
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn opens_without_the_right_journal_device_fail_and_say_why() {
    if !oracles() {
        return;
    }
    let p = pair("errors", "4096");
    let rw = OpenOptions::read_write();
    let err = |r: ext4_fs::Result<Filesystem>| r.err().map(|e| e.to_string()).unwrap_or_default();
    // A clean filesystem reads without its journal device, but is not written.
    Filesystem::open_path(&p.image, OpenOptions::read_only()).expect("a clean read-only open");
    let e = err(Filesystem::open_path(&p.image, rw.clone()));
    assert!(e.contains("external device") && e.contains(&p.uuid), "{e}");
    // A journal device is not a filesystem.
    let e = err(Filesystem::open_path(&p.journal, OpenOptions::read_only()));
    assert!(e.contains("external journal device"), "{e}");
    // Another journal device (another UUID) is refused.
    let other = p.journal.with_extension("other");
    mke2fs_sized(&other, 4 << 20, &["-t", "ext4", "-O", "journal_dev", "-b", "4096"]).unwrap();
    let e = err(Filesystem::open_path_with_journal(&p.image, &other, rw.clone()));
    assert!(e.contains("UUID"), "{e}");
    let _ = std::fs::remove_file(&other);
    // A filesystem as the journal device is refused.
    let e = err(Filesystem::open_path_with_journal(&p.image, &p.image, OpenOptions::read_only()));
    assert!(e.contains("not an external journal"), "{e}");
    // The journal device's own summary.
    let info = ext4_fs::read_journal_device(&FileDevice::open(&p.journal, true).unwrap()).unwrap().expect("a journal device");
    let fs_uuid = Filesystem::open_path(&p.image, OpenOptions::read_only()).unwrap().superblock().s_uuid;
    assert_eq!(info.users(), vec![fs_uuid], "the filesystem is the journal's one user");
    assert!(info.geometry.is_ok(), "{:?}", info.geometry);
}

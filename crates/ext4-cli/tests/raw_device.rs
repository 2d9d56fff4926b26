//! Raw block devices: a loop device with 4096-byte logical sectors
//! (`losetup --sector-size 4096`) formatted, filled and read back through
//! `RawDevice` with direct I/O, a recording device under its alignment
//! layer showing every request whole sectors in aligned memory (and the
//! kernel, which refuses anything else under `O_DIRECT`, agreeing). Its
//! size and sector sizes are `blockdev`'s; `e2fsck -fn` is silent and the
//! kernel mounts what was written; while the kernel has it mounted, a
//! writable open is refused, by the library and by `ext4`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use ext4_fs::blockdev::{DeviceError, RawDevice, RawOptions};
use ext4_fs::{BlockDevice, Filesystem, OpenOptions};

/// One request that reached the device: read or write, offset, length,
/// and its buffer's address.
type Request = (&'static str, u64, usize, usize);

/// Records every request made to the device under it.
struct Recorder<D> {
    inner: D,
    log: Arc<Mutex<Vec<Request>>>,
}

impl<D> Recorder<D> {
    fn note(&self, op: &'static str, offset: u64, len: usize, ptr: *const u8) {
        self.log.lock().unwrap().push((op, offset, len, ptr as usize));
    }
}

impl<D: BlockDevice> BlockDevice for Recorder<D> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> ext4_fs::blockdev::Result<()> {
        self.note("read", offset, buf.len(), buf.as_ptr());
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> ext4_fs::blockdev::Result<()> {
        self.note("write", offset, buf.len(), buf.as_ptr());
        self.inner.write_at(offset, buf)
    }
    fn flush(&self) -> ext4_fs::blockdev::Result<()> {
        self.inner.flush()
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn sector_size(&self) -> u32 {
        self.inner.sector_size()
    }
    fn write_zeroes(&self, offset: u64, len: u64) -> ext4_fs::blockdev::Result<()> {
        self.note("zero", offset, len as usize, std::ptr::null());
        self.inner.write_zeroes(offset, len)
    }
}

/// A loop device with 4096-byte logical sectors, detached on drop.
struct Loop4k(PathBuf);

impl Loop4k {
    fn new(file: &Path) -> Self {
        let out = Command::new("losetup").args(["--sector-size", "4096", "-f", "--show"]).arg(file).output().unwrap();
        assert!(out.status.success(), "losetup: {}", String::from_utf8_lossy(&out.stderr));
        Self(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    }
}

impl Drop for Loop4k {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).output();
    }
}

/// `blockdev FLAG DEVICE` as a number (BLKGETSIZE64, BLKSSZGET, BLKPBSZGET).
fn blockdev(flag: &str, dev: &Path) -> u64 {
    let out = Command::new("blockdev").arg(flag).arg(dev).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| panic!("blockdev {flag}: {out:?}"))
}

/// The files the test writes: sizes that end inside a sector and span many.
fn files() -> Vec<(String, Vec<u8>)> {
    [1usize, 5000, 4096, 300_001]
        .iter()
        .enumerate()
        .map(|(i, &n)| (format!("/d/f{i}"), (0..n).map(|k| (k * 31 + i) as u8).collect()))
        .collect()
}

#[test]
fn four_k_sector_loop_device() {
    let ok = common::is_root() && ext4_testkit::oracle::can_loop_mount() && common::have_fsck();
    if !ext4_testkit::require(ok, "needs root, loop devices and e2fsprogs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let backing = dir.path().join("disk");
    std::fs::File::create(&backing).unwrap().set_len(64 << 20).unwrap();
    let lo = Loop4k::new(&backing);

    let raw = RawDevice::open(&lo.0, RawOptions::read_write().direct(true)).unwrap();
    assert_eq!(u64::from(raw.logical_sector_size()), blockdev("--getss", &lo.0));
    assert_eq!(raw.logical_sector_size(), 4096);
    assert_eq!(u64::from(raw.physical_sector_size()), blockdev("--getpbsz", &lo.0).max(4096));
    assert_eq!(raw.len(), blockdev("--getsize64", &lo.0));

    let log = Arc::new(Mutex::new(Vec::new()));
    let dev = raw.map_inner(|f| Recorder { inner: f, log: log.clone() });
    let opts = ext4_mkfs::FormatOptions::default();
    let report = ext4_mkfs::format(&dev, &opts, &mut |_| std::ops::ControlFlow::Continue(())).unwrap();
    // 64 MiB is mke2fs' "small" type (1 KiB blocks): raised to the sector.
    assert_eq!(report.layout.block_size, 4096);
    let mut fs = Filesystem::open(dev, OpenOptions::read_write()).unwrap();
    fs.mkdir("/d", 0o755).unwrap();
    for (path, data) in files() {
        fs.write_file(&path, &data).unwrap();
    }
    fs.symlink("f1", "/d/link").unwrap();
    fs.close().unwrap();

    let raw = RawDevice::open(&lo.0, RawOptions::read_only().direct(true)).unwrap();
    let fs = Filesystem::open(raw.map_inner(|f| Recorder { inner: f, log: log.clone() }), OpenOptions::read_only()).unwrap();
    for (path, data) in files() {
        assert_eq!(fs.read(&path).unwrap(), data, "{path}");
    }
    drop(fs);

    let log = log.lock().unwrap();
    assert!(log.iter().filter(|r| r.0 == "write").count() > 10, "the format and the files wrote through the recorder");
    let unaligned: Vec<_> = log.iter().filter(|(_, off, len, ptr)| off % 4096 != 0 || len % 4096 != 0 || ptr % 4096 != 0).collect();
    assert!(unaligned.is_empty(), "requests not on whole 4096-byte sectors: {unaligned:?}");

    // The CLI opens a block device through RawDevice too; its plan has
    // the blocks the format made.
    let plan = String::from_utf8(common::ok(&[&"mkfs", &"-n", &lo.0], None).stdout).unwrap();
    assert!(plan.contains("Block size=4096"), "{plan}");
    common::ok(&[&"write", &lo.0, &"/d/cli", &"by the cli"], None);
    assert_eq!(common::ok(&[&"cat", &lo.0, &"/d/cli"], None).stdout, b"by the cli");
    common::assert_clean(&lo.0, "after the format and fill through RawDevice");
    mounted_is_refused(&lo.0);
}

/// While the kernel has the device mounted: its files are there, and a
/// writable open is refused (`O_EXCL`), by the library and by the CLI.
fn mounted_is_refused(dev: &Path) {
    let mnt = tempfile::tempdir().unwrap();
    let out = Command::new("mount").args(["-t", "ext4"]).arg(dev).arg(mnt.path()).output().unwrap();
    assert!(out.status.success(), "mount: {}", String::from_utf8_lossy(&out.stderr));
    let seen: Vec<_> = files().iter().map(|(p, _)| std::fs::read(mnt.path().join(&p[1..]))).collect();
    let by_cli = std::fs::read(mnt.path().join("d/cli"));
    let lib = RawDevice::open(dev, RawOptions::read_write()).map(|_| ());
    let cli = common::run(&[&"write", &dev, &"/x", &"text"], None);
    let _ = Command::new("umount").arg(mnt.path()).output();
    for ((path, data), got) in files().iter().zip(seen) {
        assert_eq!(&got.unwrap(), data, "the kernel's {path}");
    }
    assert_eq!(by_cli.unwrap(), b"by the cli");
    assert!(matches!(lib, Err(DeviceError::Busy { .. })), "{lib:?}");
    let msg = String::from_utf8_lossy(&cli.stderr);
    assert!(!cli.status.success() && msg.contains("in use") && msg.contains("EBUSY"), "{msg}");
}

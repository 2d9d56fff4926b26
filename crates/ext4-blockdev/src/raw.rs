//! [`RawDevice`]: a real disk (a Linux block device), used as the kernel
//! expects raw disks to be used.
//!
//! * Size and sector sizes from the kernel: the logical sector size
//!   (`BLKSSZGET`) every request is aligned to, through
//!   [`SectorAligned`], and the physical one (`BLKPBSZGET`). The size is
//!   the block device inode's, from `lseek(SEEK_END)`: the kernel's
//!   `bdev_nr_bytes`, the number `BLKGETSIZE64` returns, without an
//!   ioctl that no safe wrapper offers (this crate has no unsafe code).
//! * Writable opens are exclusive (`O_EXCL` on a block device): the
//!   kernel refuses them while the device is mounted or claimed by
//!   another exclusive opener, so a mounted filesystem is never written
//!   behind the kernel's back ([`DeviceError::Busy`]).
//! * Optionally direct (`O_DIRECT`): no page cache, and then the kernel
//!   itself refuses any request that is not aligned.
//!
//! macOS (`DKIOCGETBLOCKSIZE`, `DKIOCGETBLOCKCOUNT`, `O_EXLOCK`) and
//! Windows (`IOCTL_DISK_GET_LENGTH_INFO`, `FSCTL_LOCK_VOLUME`) are not
//! built yet: [`RawDevice::open`] says so there.

use std::path::Path;

use crate::{BlockDevice, FileDevice, Result, SectorAligned};

/// How to open a raw device.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct RawOptions {
    /// Refuse writes (and open without `O_EXCL`: a mounted device can be read).
    pub read_only: bool,
    /// Direct I/O (`O_DIRECT`): past the page cache.
    pub direct: bool,
}

impl RawOptions {
    /// Read-write, buffered.
    pub fn read_write() -> Self {
        Self::default()
    }

    /// Read-only, buffered.
    pub fn read_only() -> Self {
        Self { read_only: true, ..Self::default() }
    }

    /// With direct I/O (or without).
    pub fn direct(mut self, direct: bool) -> Self {
        self.direct = direct;
        self
    }
}

/// A block device, every request aligned to its logical sector size.
#[derive(Debug)]
pub struct RawDevice<D = FileDevice> {
    aligned: SectorAligned<D>,
    physical_sector: u32,
}

impl RawDevice {
    /// Opens the block device at `path` (`O_EXCL` unless read-only).
    pub fn open(path: impl AsRef<Path>, opts: RawOptions) -> Result<Self> {
        imp::open(path.as_ref(), opts)
    }
}

impl<D: BlockDevice> RawDevice<D> {
    /// The logical sector size: every request to the device is a multiple of it.
    pub fn logical_sector_size(&self) -> u32 {
        self.aligned.sector_size()
    }

    /// The physical sector size (at least the logical one).
    pub fn physical_sector_size(&self) -> u32 {
        self.physical_sector
    }

    /// The device under the alignment layer.
    pub fn inner(&self) -> &D {
        self.aligned.inner()
    }

    /// Applies `f` to the device under the alignment layer (to watch the
    /// requests that reach it).
    pub fn map_inner<E: BlockDevice>(self, f: impl FnOnce(D) -> E) -> RawDevice<E> {
        RawDevice { aligned: self.aligned.map_inner(f), physical_sector: self.physical_sector }
    }
}

impl<D: BlockDevice> BlockDevice for RawDevice<D> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.aligned.read_at(offset, buf)
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        self.aligned.write_at(offset, buf)
    }

    fn flush(&self) -> Result<()> {
        self.aligned.flush()
    }

    fn len(&self) -> u64 {
        self.aligned.len()
    }

    fn sector_size(&self) -> u32 {
        self.aligned.sector_size()
    }

    fn is_read_only(&self) -> bool {
        self.aligned.is_read_only()
    }

    fn write_zeroes(&self, offset: u64, len: u64) -> Result<()> {
        self.aligned.write_zeroes(offset, len)
    }

    fn discard(&self, offset: u64, len: u64) -> Result<()> {
        self.aligned.discard(offset, len)
    }
}

/// Whether `path` is a block device.
pub fn is_block_device(path: impl AsRef<Path>) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device())
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::fs::OpenOptions;
    use std::os::unix::fs::OpenOptionsExt;
    use std::path::Path;

    use rustix::fs::OFlags;

    use super::{RawDevice, RawOptions};
    use crate::{DeviceError, FileDevice, Op, Result, SectorAligned};

    /// Opens, sizes and aligns a Linux block device.
    pub fn open(path: &Path, opts: RawOptions) -> Result<RawDevice> {
        let mut flags = OFlags::empty();
        if !opts.read_only {
            flags |= OFlags::EXCL;
        }
        if opts.direct {
            flags |= OFlags::DIRECT;
        }
        let file =
            OpenOptions::new().read(true).write(!opts.read_only).custom_flags(flags.bits() as i32).open(path).map_err(
                |source| match source.raw_os_error() {
                    Some(e) if e == rustix::io::Errno::BUSY.raw_os_error() => DeviceError::Busy { path: path.display().to_string() },
                    _ => DeviceError::Io { op: Op::Open, offset: 0, source },
                },
            )?;
        let io = |source: std::io::Error| DeviceError::Io { op: Op::Open, offset: 0, source };
        if !std::os::unix::fs::FileTypeExt::is_block_device(&file.metadata().map_err(io)?.file_type()) {
            return Err(io(std::io::Error::other(format!("{} is not a block device", path.display()))));
        }
        let logical = rustix::fs::ioctl_blksszget(&file).map_err(|e| io(e.into()))?;
        let physical = rustix::fs::ioctl_blkpbszget(&file).map_err(|e| io(e.into()))?.max(logical);
        let dev = FileDevice::from_file(file, opts.read_only)?;
        Ok(RawDevice { aligned: SectorAligned::new(dev, logical, opts.direct)?, physical_sector: physical })
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::path::Path;

    use super::{RawDevice, RawOptions};
    use crate::{DeviceError, Op, Result};

    /// Raw devices are built for Linux only so far.
    pub fn open(path: &Path, _: RawOptions) -> Result<RawDevice> {
        let why = format!("{}: raw devices are supported on Linux only so far", path.display());
        Err(DeviceError::Io { op: Op::Open, offset: 0, source: std::io::Error::new(std::io::ErrorKind::Unsupported, why) })
    }
}

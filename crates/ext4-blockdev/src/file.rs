//! An image file or a raw device.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::path::Path;

use crate::{BlockDevice, DeviceError, Op, Result, check_range};

/// A device backed by a file (or a raw block device node).
#[derive(Debug)]
pub struct FileDevice {
    file: File,
    len: u64,
    read_only: bool,
}

fn io(op: Op, offset: u64) -> impl FnOnce(std::io::Error) -> DeviceError {
    move |source| DeviceError::Io { op, offset, source }
}

impl FileDevice {
    /// Opens an existing file or device, read-write or read-only.
    pub fn open(path: impl AsRef<Path>, read_only: bool) -> Result<Self> {
        let file = OpenOptions::new().read(true).write(!read_only).open(path).map_err(io(Op::Open, 0))?;
        Self::from_file(file, read_only)
    }

    /// Opens a file, creating it if needed and extending it to at least
    /// `len` bytes (never shrinking it), as mke2fs does with image files.
    pub fn create(path: impl AsRef<Path>, len: u64) -> Result<Self> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io(Op::Open, 0))?;
        let meta = file.metadata().map_err(io(Op::Open, 0))?;
        if meta.is_file() && meta.len() < len {
            file.set_len(len).map_err(io(Op::Write, len))?;
        }
        Self::from_file(file, false)
    }

    /// Wraps an open file; its length is measured by seeking to the end
    /// (which also works for block devices, whose metadata length is 0).
    pub fn from_file(mut file: File, read_only: bool) -> Result<Self> {
        let len = file.seek(SeekFrom::End(0)).map_err(io(Op::Open, 0))?;
        Ok(Self { file, len, read_only })
    }

    /// The underlying file.
    pub fn file(&self) -> &File {
        &self.file
    }
}

#[cfg(unix)]
fn pread(f: &File, buf: &mut [u8], off: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, off)
}

#[cfg(unix)]
fn pwrite(f: &File, buf: &[u8], off: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, buf, off)
}

#[cfg(windows)]
fn pread(f: &File, mut buf: &mut [u8], mut off: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = f.seek_read(buf, off)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        off += n as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn pwrite(f: &File, mut buf: &[u8], mut off: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = f.seek_write(buf, off)?;
        buf = &buf[n..];
        off += n as u64;
    }
    Ok(())
}

impl BlockDevice for FileDevice {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(Op::Read, offset, buf.len(), self.len)?;
        pread(&self.file, buf, offset).map_err(io(Op::Read, offset))
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        if self.read_only {
            return Err(DeviceError::ReadOnly);
        }
        check_range(Op::Write, offset, buf.len(), self.len)?;
        pwrite(&self.file, buf, offset).map_err(io(Op::Write, offset))
    }

    fn flush(&self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.file.sync_data().map_err(io(Op::Flush, 0))
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Zeroes a range, writing only the chunks that do not read as zeros
    /// already: a fresh image file stays sparse (as mke2fs leaves it, which
    /// zeroes with `fallocate`), and nothing is allocated on tmpfs. On Linux
    /// the file's holes are skipped without reading them (`SEEK_DATA`).
    fn write_zeroes(&self, offset: u64, len: u64) -> Result<()> {
        if self.read_only {
            return Err(DeviceError::ReadOnly);
        }
        check_range(Op::Write, offset, usize::try_from(len).unwrap_or(usize::MAX), self.len)?;
        #[cfg(target_os = "linux")]
        if let Some(r) = self.write_zeroes_around_holes(offset, len) {
            return r;
        }
        self.zero_where_not_zero(offset, len)
    }
}

impl FileDevice {
    /// Zeroes `[offset, offset + len)` by writing zeros over the file's data
    /// regions only: holes already read as zeros and stay holes. `None` when
    /// the filesystem cannot tell holes from data (`SEEK_DATA` unsupported).
    #[cfg(target_os = "linux")]
    fn write_zeroes_around_holes(&self, offset: u64, len: u64) -> Option<Result<()>> {
        use rustix::fs::{SeekFrom, seek};
        let end = offset + len;
        let mut at = offset;
        while at < end {
            let data = match seek(&self.file, SeekFrom::Data(at)) {
                Ok(d) => d,
                // No data past `at`: the rest is a hole.
                Err(rustix::io::Errno::NXIO) => break,
                Err(_) if at == offset => return None,
                Err(e) => return Some(Err(io(Op::Read, at)(e.into()))),
            };
            if data >= end {
                break;
            }
            let hole = match seek(&self.file, SeekFrom::Hole(data)) {
                Ok(h) => h.min(end),
                Err(e) => return Some(Err(io(Op::Read, data)(e.into()))),
            };
            if let Err(e) = self.zero_where_not_zero(data, hole - data) {
                return Some(Err(e));
            }
            at = hole;
        }
        Some(Ok(()))
    }

    /// Zeroes `[offset, offset + len)`, writing only the chunks that are not
    /// zero already (so holes in a sparse file stay holes).
    fn zero_where_not_zero(&self, offset: u64, len: u64) -> Result<()> {
        const CHUNK: u64 = 1 << 20;
        let zeros = vec![0u8; CHUNK.min(len) as usize];
        let mut buf = zeros.clone();
        let mut done = 0;
        while done < len {
            let n = (len - done).min(CHUNK) as usize;
            let at = offset + done;
            pread(&self.file, &mut buf[..n], at).map_err(io(Op::Read, at))?;
            // A slice comparison is a memcmp: fast enough to scan holes.
            if buf[..n] != zeros[..n] {
                pwrite(&self.file, &zeros[..n], at).map_err(io(Op::Write, at))?;
            }
            done += n as u64;
        }
        Ok(())
    }
}

//! [`SectorAligned`]: a device that hands its inner device only whole,
//! aligned sectors, whatever it is asked for.
//!
//! Raw disks accept nothing else: macOS `/dev/rdiskN`, Windows
//! `\\.\PhysicalDriveN` and Linux block devices opened with `O_DIRECT`
//! refuse a request whose offset or length is not a multiple of the
//! logical sector size (and, for direct I/O, whose memory is not aligned
//! too). A request that is not aligned goes through a bounce buffer: a
//! read reads the sectors that cover it; a write reads the first and last
//! sectors it covers in part, patches them and writes the whole run.

use std::sync::Mutex;

use crate::{BlockDevice, DeviceError, IO_ALIGN, IoBuf, Op, Result, check_range};

/// Whole sectors of `inner`, whatever the requests.
#[derive(Debug)]
pub struct SectorAligned<D> {
    inner: D,
    sector: u64,
    /// Memory must be aligned too (direct I/O): every request bounces.
    direct: bool,
    /// Serializes writes: a read-modify-write of a shared sector must not
    /// interleave with another write to it.
    writing: Mutex<()>,
}

impl<D: BlockDevice> SectorAligned<D> {
    /// Aligns requests to `inner` on `sector` bytes (a power of two, at
    /// least 512); with `direct`, buffers handed to `inner` are also
    /// aligned in memory on the sector size (at most [`IO_ALIGN`]).
    pub fn new(inner: D, sector: u32, direct: bool) -> Result<Self> {
        if !sector.is_power_of_two() || sector < 512 || (direct && sector as usize > IO_ALIGN) {
            return Err(DeviceError::Io {
                op: Op::Open,
                offset: 0,
                source: std::io::Error::other(format!("unusable sector size {sector}")),
            });
        }
        Ok(Self { inner, sector: u64::from(sector), direct, writing: Mutex::new(()) })
    }

    /// The inner device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// Applies `f` to the inner device (to put a wrapper between the two).
    pub fn map_inner<E: BlockDevice>(self, f: impl FnOnce(D) -> E) -> SectorAligned<E> {
        SectorAligned { inner: f(self.inner), sector: self.sector, direct: self.direct, writing: Mutex::new(()) }
    }

    /// Whether `[offset, offset + len)` and `buf` can go to the inner device as they are.
    fn aligned(&self, offset: u64, len: usize, ptr: *const u8) -> bool {
        let whole = offset % self.sector == 0 && len as u64 % self.sector == 0;
        whole && (!self.direct || (ptr as usize) as u64 % self.sector == 0)
    }

    /// The whole sectors that cover `[offset, offset + len)`: start and length.
    fn cover(&self, offset: u64, len: usize) -> (u64, usize) {
        let start = offset - offset % self.sector;
        let end = (offset + len as u64).div_ceil(self.sector) * self.sector;
        (start, (end - start) as usize)
    }

    /// Writes zeros over whole sectors `[start, start + len)` in chunks.
    fn zero_sectors(&self, start: u64, len: u64) -> Result<()> {
        const CHUNK: u64 = 1 << 20;
        let zeros = IoBuf::zeroed(CHUNK.min(len) as usize);
        let mut done = 0;
        while done < len {
            let n = (len - done).min(CHUNK);
            self.inner.write_at(start + done, &zeros[..n as usize])?;
            done += n;
        }
        Ok(())
    }
}

impl<D: BlockDevice> BlockDevice for SectorAligned<D> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(Op::Read, offset, buf.len(), self.len())?;
        if self.aligned(offset, buf.len(), buf.as_ptr()) {
            return self.inner.read_at(offset, buf);
        }
        let (start, len) = self.cover(offset, buf.len());
        let mut bounce = IoBuf::zeroed(len);
        self.inner.read_at(start, &mut bounce)?;
        let at = (offset - start) as usize;
        buf.copy_from_slice(&bounce[at..at + buf.len()]);
        Ok(())
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        check_range(Op::Write, offset, buf.len(), self.len())?;
        let _guard = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        if self.aligned(offset, buf.len(), buf.as_ptr()) {
            return self.inner.write_at(offset, buf);
        }
        let (start, len) = self.cover(offset, buf.len());
        let mut bounce = IoBuf::zeroed(len);
        let s = self.sector as usize;
        // Only the partial first and last sectors need their old bytes.
        if offset % self.sector != 0 || len == s {
            self.inner.read_at(start, &mut bounce[..s])?;
        }
        if (offset + buf.len() as u64) % self.sector != 0 && len > s {
            self.inner.read_at(start + (len - s) as u64, &mut bounce[len - s..])?;
        }
        let at = (offset - start) as usize;
        bounce[at..at + buf.len()].copy_from_slice(buf);
        self.inner.write_at(start, &bounce)
    }

    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    fn len(&self) -> u64 {
        self.inner.len() - self.inner.len() % self.sector
    }

    fn sector_size(&self) -> u32 {
        self.sector as u32
    }

    fn is_read_only(&self) -> bool {
        self.inner.is_read_only()
    }

    /// Zeros: the partial sectors at either end by read-modify-write, the
    /// whole ones in between from an aligned buffer of zeros.
    fn write_zeroes(&self, offset: u64, len: u64) -> Result<()> {
        check_range(Op::Write, offset, usize::try_from(len).unwrap_or(usize::MAX), self.len())?;
        let first = offset.div_ceil(self.sector) * self.sector;
        let last = (offset + len) / self.sector * self.sector;
        if first >= last {
            return self.write_at(offset, &vec![0; len as usize]);
        }
        self.write_at(offset, &vec![0; (first - offset) as usize])?;
        self.write_at(last, &vec![0; (offset + len - last) as usize])?;
        let _guard = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        self.zero_sectors(first, last - first)
    }

    /// Passes on the whole sectors of the range (a hint: partial ones are left).
    fn discard(&self, offset: u64, len: u64) -> Result<()> {
        let first = offset.div_ceil(self.sector) * self.sector;
        let last = (offset.saturating_add(len)) / self.sector * self.sector;
        if first < last { self.inner.discard(first, last - first) } else { Ok(()) }
    }
}

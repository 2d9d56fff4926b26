//! A window at an offset inside another device: a partition.

use crate::{BlockDevice, Op, Result, check_range};

/// The bytes `[offset, offset + len)` of an inner device, seen as a device.
#[derive(Debug)]
pub struct WindowDevice<D> {
    inner: D,
    offset: u64,
    len: u64,
}

impl<D: BlockDevice> WindowDevice<D> {
    /// A window of `len` bytes at `offset`; `len = None` extends to the end.
    /// Fails if the window does not fit in the inner device.
    pub fn new(inner: D, offset: u64, len: Option<u64>) -> Result<Self> {
        let avail = inner.len().saturating_sub(offset);
        let len = len.unwrap_or(avail);
        check_range(Op::Open, offset, len as usize, inner.len())?;
        Ok(Self { inner, offset, len })
    }

    /// The inner device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// Offset of the window in the inner device.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

impl<D: BlockDevice> BlockDevice for WindowDevice<D> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(Op::Read, offset, buf.len(), self.len)?;
        self.inner.read_at(self.offset + offset, buf)
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        check_range(Op::Write, offset, buf.len(), self.len)?;
        self.inner.write_at(self.offset + offset, buf)
    }

    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn sector_size(&self) -> u32 {
        self.inner.sector_size()
    }

    fn is_read_only(&self) -> bool {
        self.inner.is_read_only()
    }

    fn write_zeroes(&self, offset: u64, len: u64) -> Result<()> {
        check_range(Op::Write, offset, len as usize, self.len)?;
        self.inner.write_zeroes(self.offset + offset, len)
    }

    fn discard(&self, offset: u64, len: u64) -> Result<()> {
        check_range(Op::Write, offset, len as usize, self.len)?;
        self.inner.discard(self.offset + offset, len)
    }
}

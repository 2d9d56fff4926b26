//! A device that records every write and flush, so that a test can rebuild
//! the device as it was at any instant, or as a crash between two flushes
//! could have left it.

use std::sync::Mutex;

use crate::{BlockDevice, Result};

/// One recorded operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedOp {
    /// Bytes written at an offset.
    Write {
        /// Byte offset.
        offset: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// A flush (barrier).
    Flush,
}

/// Wraps a device and logs every write and flush made through it.
#[derive(Debug)]
pub struct RecordingDevice<D> {
    inner: D,
    log: Mutex<Vec<RecordedOp>>,
}

impl<D: BlockDevice> RecordingDevice<D> {
    /// Starts recording on top of `inner` (whose current contents are the base state).
    pub fn new(inner: D) -> Self {
        Self { inner, log: Mutex::new(Vec::new()) }
    }

    /// The operations so far.
    pub fn log(&self) -> Vec<RecordedOp> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Number of operations so far.
    pub fn op_count(&self) -> usize {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The inner device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// Unwraps the inner device and the log.
    pub fn into_parts(self) -> (D, Vec<RecordedOp>) {
        (self.inner, self.log.into_inner().unwrap_or_else(|e| e.into_inner()))
    }
}

impl<D: BlockDevice> BlockDevice for RecordingDevice<D> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_at(offset, buf)
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        self.inner.write_at(offset, buf)?;
        self.log.lock().unwrap_or_else(|e| e.into_inner()).push(RecordedOp::Write { offset, data: buf.to_vec() });
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        self.inner.flush()?;
        self.log.lock().unwrap_or_else(|e| e.into_inner()).push(RecordedOp::Flush);
        Ok(())
    }

    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn sector_size(&self) -> u32 {
        self.inner.sector_size()
    }

    fn is_read_only(&self) -> bool {
        self.inner.is_read_only()
    }
}

/// Applies `ops` to `base` (a device image) and returns the result.
pub fn replay(base: &[u8], ops: &[RecordedOp]) -> Vec<u8> {
    let mut img = base.to_vec();
    for op in ops {
        if let RecordedOp::Write { offset, data } = op {
            let o = *offset as usize;
            img[o..o + data.len()].copy_from_slice(data);
        }
    }
    img
}

//! Block devices for ext4: every byte the project reads or writes goes
//! through the [`BlockDevice`] trait.
//!
//! Implementations: [`FileDevice`] (an image file or a raw device, on any
//! OS), [`MemoryDevice`] (tests, fuzzing), [`WindowDevice`] (a partition: a
//! window at an offset inside another device), [`RecordingDevice`] (keeps
//! every write and flush so that crash states can be replayed),
//! [`FaultDevice`] (fails chosen operations) and [`OverlayDevice`] (writes
//! kept in memory over a base that is never written).
//!
//! [`RawDevice`] is a real disk: sized and aligned as the kernel says,
//! opened exclusively; [`SectorAligned`] turns any request into whole
//! sectors of the device under it.
//!
//! [`partition`] reads MBR and GPT partition tables and opens partition N
//! as a [`WindowDevice`].
//!
//! The trait is positional (`pread`/`pwrite` style) and takes `&self`, so one
//! device can serve several readers; implementations synchronize internally.
//! [`IoBuf`] is a page-aligned byte buffer for data written out in bulk
//! (the kernel copies faster from some alignments than from others).

#![forbid(unsafe_code)]

mod aligned;
mod fault;
mod file;
mod iobuf;
mod memory;
mod overlay;
pub mod partition;
mod raw;
mod recording;
mod window;

use std::sync::Arc;

pub use aligned::SectorAligned;
pub use fault::{FaultDevice, FaultPlan, Op};
pub use file::FileDevice;
pub use iobuf::{IO_ALIGN, IoBuf};
pub use memory::MemoryDevice;
pub use overlay::OverlayDevice;
pub use raw::{RawDevice, RawOptions, is_block_device};
pub use recording::{RecordedOp, RecordingDevice, replay as recording_replay};
pub use window::WindowDevice;

/// What went wrong on a device.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// An access beyond the end of the device.
    #[error("{op} of {len} bytes at offset {offset} is beyond the end of the device ({device_len} bytes)")]
    OutOfRange {
        /// The operation.
        op: Op,
        /// Byte offset of the access.
        offset: u64,
        /// Length of the access.
        len: u64,
        /// Length of the device.
        device_len: u64,
    },
    /// A write to a device opened read-only.
    #[error("the device is read-only")]
    ReadOnly,
    /// The operating system reported an error.
    #[error("{op} at offset {offset}: {source}")]
    Io {
        /// The operation.
        op: Op,
        /// Byte offset of the access (0 for flush).
        offset: u64,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A block device that is mounted or held exclusively by another program.
    #[error("{path} is in use (mounted, or held by another program): refused, as the kernel refuses exclusive opens of it")]
    Busy {
        /// The device.
        path: String,
    },
    /// An error injected by [`FaultDevice`].
    #[error("injected {op} failure at offset {offset}")]
    Injected {
        /// The operation.
        op: Op,
        /// Byte offset of the access.
        offset: u64,
    },
}

impl DeviceError {
    /// The errno a kernel would report for this error.
    pub fn errno(&self) -> i32 {
        const EIO: i32 = 5;
        const EROFS: i32 = 30;
        const ENOSPC: i32 = 28;
        const EBUSY: i32 = 16;
        match self {
            Self::ReadOnly => EROFS,
            Self::OutOfRange { .. } => ENOSPC,
            Self::Io { source, .. } => source.raw_os_error().unwrap_or(EIO),
            Self::Injected { .. } => EIO,
            Self::Busy { .. } => EBUSY,
        }
    }
}

impl DeviceError {
    /// The `io::ErrorKind` of this error, the same on every OS.
    pub fn kind(&self) -> std::io::ErrorKind {
        use std::io::ErrorKind as K;
        match self {
            Self::ReadOnly => K::ReadOnlyFilesystem,
            Self::OutOfRange { .. } => K::StorageFull,
            Self::Io { source, .. } => source.kind(),
            Self::Busy { .. } => K::ResourceBusy,
            Self::Injected { .. } => K::Other,
        }
    }
}

/// Result of device operations.
pub type Result<T, E = DeviceError> = std::result::Result<T, E>;

/// A random-access store of bytes: a disk, a partition, an image file.
pub trait BlockDevice: Send + Sync {
    /// Fills `buf` with the bytes at `offset`. Short reads are errors.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;

    /// Writes `buf` at `offset`. Short writes are errors.
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()>;

    /// Makes every completed write durable (a barrier: `fsync`).
    fn flush(&self) -> Result<()>;

    /// Length in bytes.
    fn len(&self) -> u64;

    /// Whether the device has no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Logical sector size: the smallest unit of atomic writes.
    fn sector_size(&self) -> u32 {
        512
    }

    /// Whether writes are refused.
    fn is_read_only(&self) -> bool {
        false
    }

    /// Writes `len` zero bytes at `offset`. Devices that can zero cheaply
    /// (sparse files) override this.
    fn write_zeroes(&self, offset: u64, len: u64) -> Result<()> {
        const CHUNK: u64 = 1 << 20;
        let zeros = vec![0u8; CHUNK.min(len) as usize];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(CHUNK);
            self.write_at(offset + done, &zeros[..n as usize])?;
            done += n;
        }
        Ok(())
    }

    /// Tells the device that a range is no longer used. A hint: the default does nothing.
    fn discard(&self, _offset: u64, _len: u64) -> Result<()> {
        Ok(())
    }
}

/// Checks that `[offset, offset + len)` lies within a device of `device_len` bytes.
pub fn check_range(op: Op, offset: u64, len: usize, device_len: u64) -> Result<()> {
    let len = len as u64;
    match offset.checked_add(len) {
        Some(end) if end <= device_len => Ok(()),
        _ => Err(DeviceError::OutOfRange { op, offset, len, device_len }),
    }
}

macro_rules! forward {
    ($($t:ty),*) => {$(
        impl<T: BlockDevice + ?Sized> BlockDevice for $t {
            fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> { (**self).read_at(offset, buf) }
            fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> { (**self).write_at(offset, buf) }
            fn flush(&self) -> Result<()> { (**self).flush() }
            fn len(&self) -> u64 { (**self).len() }
            fn sector_size(&self) -> u32 { (**self).sector_size() }
            fn is_read_only(&self) -> bool { (**self).is_read_only() }
            fn write_zeroes(&self, offset: u64, len: u64) -> Result<()> { (**self).write_zeroes(offset, len) }
            fn discard(&self, offset: u64, len: u64) -> Result<()> { (**self).discard(offset, len) }
        }
    )*};
}
forward!(&T, Box<T>, Arc<T>);

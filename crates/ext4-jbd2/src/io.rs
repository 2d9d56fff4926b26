//! [`JournalIo`]: block I/O by journal block number, so that this crate knows
//! nothing of the journal inode's block map or of the device; with
//! implementations over a [`BlockDevice`] ([`DeviceJournal`]) and memory
//! ([`MemoryJournal`]).

use ext4_blockdev::{BlockDevice, DeviceError};

use crate::error::{IoOp, JournalError};
use crate::format::{JournalSuperblock, SUPERBLOCK_SIZE};

/// Block I/O on a journal by journal block number. Buffers are exactly one
/// journal block long.
///
/// In an internal journal block 0 holds the journal superblock. On an
/// external journal device journal block numbers are device block numbers
/// (as the kernel's `jbd2_journal_bmap` takes them), and the superblock
/// follows the device's ext4 superblock ([`superblock_block`]).
pub trait JournalIo {
    /// The error of an I/O operation.
    type Error: std::error::Error + Send + Sync + 'static;
    /// Number of blocks of the journal.
    fn len_blocks(&self) -> u64;
    /// The journal block holding the journal superblock.
    fn superblock_block(&self) -> u64 {
        0
    }
    /// Reads journal block `jblock` into `buf`.
    fn read(&mut self, jblock: u64, buf: &mut [u8]) -> Result<(), Self::Error>;
    /// Writes `data` to journal block `jblock`.
    fn write(&mut self, jblock: u64, data: &[u8]) -> Result<(), Self::Error>;
    /// Makes every completed write durable.
    fn flush(&mut self) -> Result<(), Self::Error>;
}

/// Reads journal block `jblock`, mapping errors to [`JournalError::Io`].
pub(crate) fn read_block(io: &mut impl JournalIo, jblock: u64, buf: &mut [u8]) -> Result<(), JournalError> {
    io.read(jblock, buf).map_err(|e| JournalError::io(IoOp::Read, jblock, e))
}

/// Writes journal block `jblock`, mapping errors to [`JournalError::Io`].
pub(crate) fn write_block(io: &mut impl JournalIo, jblock: u64, data: &[u8]) -> Result<(), JournalError> {
    io.write(jblock, data).map_err(|e| JournalError::io(IoOp::Write, jblock, e))
}

/// Flushes the journal, mapping errors to [`JournalError::Io`].
pub(crate) fn flush(io: &mut impl JournalIo) -> Result<(), JournalError> {
    io.flush().map_err(|e| JournalError::io(IoOp::Flush, 0, e))
}

/// The journal block of an external journal device that holds the journal
/// superblock: the one after the block of the device's ext4 superblock
/// (`ext2fs_journal_sb_start`: 2 with 1 KiB blocks, else 1).
pub fn superblock_block(block_size: u32) -> u64 {
    if block_size == 1024 { 2 } else { 1 }
}

/// Reads the journal superblock (the first 1024 bytes of its block).
pub fn read_superblock(io: &mut impl JournalIo, block_size: u32) -> Result<JournalSuperblock, JournalError> {
    if (block_size as usize) < SUPERBLOCK_SIZE {
        return Err(JournalError::superblock("s_blocksize", format!("block size {block_size} is below 1024")));
    }
    let mut buf = vec![0; block_size as usize];
    let at = io.superblock_block();
    read_block(io, at, &mut buf)?;
    JournalSuperblock::from_bytes(&buf).ok_or_else(|| JournalError::superblock("s_header", "short block"))
}

/// Writes `sb` over the first 1024 bytes of its block, keeping the rest of
/// the block, and flushes.
pub fn write_superblock(io: &mut impl JournalIo, block_size: u32, sb: &JournalSuperblock) -> Result<(), JournalError> {
    use zerocopy::IntoBytes;
    if (block_size as usize) < SUPERBLOCK_SIZE {
        return Err(JournalError::superblock("s_blocksize", format!("block size {block_size} is below 1024")));
    }
    let mut buf = vec![0; block_size as usize];
    let at = io.superblock_block();
    read_block(io, at, &mut buf)?;
    buf[..SUPERBLOCK_SIZE].copy_from_slice(sb.as_bytes());
    write_block(io, at, &buf)?;
    flush(io)
}

/// A run of journal blocks stored contiguously on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalRun {
    /// First journal block of the run.
    pub jblock: u64,
    /// Device block (in filesystem block units) holding `jblock`.
    pub device_block: u64,
    /// Number of blocks.
    pub len: u64,
}

/// Errors of [`DeviceJournal`].
#[derive(Debug, thiserror::Error)]
pub enum DeviceJournalError {
    /// The journal block is not mapped (a hole in the journal inode).
    #[error("journal block {0} is not mapped")]
    Unmapped(u64),
    /// The buffer is not one block long.
    #[error("buffer of {len} bytes, the block size is {block_size}")]
    BadBuffer {
        /// Buffer length.
        len: usize,
        /// Block size.
        block_size: u32,
    },
    /// The device failed.
    #[error(transparent)]
    Device(#[from] DeviceError),
}

/// A journal stored on a [`BlockDevice`] as a list of runs (the journal
/// inode's extents, or one run for a contiguous or external journal).
pub struct DeviceJournal<'d> {
    dev: &'d dyn BlockDevice,
    block_size: u32,
    runs: Vec<JournalRun>,
    /// Where the journal superblock is (see [`JournalIo::superblock_block`]).
    sb_block: u64,
}

impl<'d> DeviceJournal<'d> {
    /// A journal made of `runs` (in any order; overlapping runs are refused).
    pub fn new(dev: &'d dyn BlockDevice, block_size: u32, mut runs: Vec<JournalRun>) -> Result<Self, JournalError> {
        runs.retain(|r| r.len > 0);
        runs.sort_by_key(|r| r.jblock);
        for w in runs.windows(2) {
            if w[0].jblock.saturating_add(w[0].len) > w[1].jblock {
                return Err(JournalError::InvalidInput(format!("journal runs overlap at journal block {}", w[1].jblock)));
            }
        }
        Ok(Self { dev, block_size, runs, sb_block: 0 })
    }

    /// A contiguous journal of `len` blocks starting at device block `start`.
    pub fn contiguous(dev: &'d dyn BlockDevice, block_size: u32, start: u64, len: u64) -> Self {
        Self { dev, block_size, runs: vec![JournalRun { jblock: 0, device_block: start, len }], sb_block: 0 }
    }

    /// The journal of an external journal device of `len` blocks: journal
    /// block numbers are device block numbers, and the superblock is at
    /// [`superblock_block`].
    pub fn external(dev: &'d dyn BlockDevice, block_size: u32, len: u64) -> Self {
        let runs = vec![JournalRun { jblock: 0, device_block: 0, len }];
        Self { dev, block_size, runs, sb_block: superblock_block(block_size) }
    }

    fn offset(&self, jblock: u64, len: usize) -> Result<u64, DeviceJournalError> {
        if len != self.block_size as usize {
            return Err(DeviceJournalError::BadBuffer { len, block_size: self.block_size });
        }
        let i = self.runs.partition_point(|r| r.jblock <= jblock);
        let run = i.checked_sub(1).map(|i| self.runs[i]).filter(|r| jblock - r.jblock < r.len);
        let run = run.ok_or(DeviceJournalError::Unmapped(jblock))?;
        let dblock = run.device_block + (jblock - run.jblock);
        dblock.checked_mul(u64::from(self.block_size)).ok_or(DeviceJournalError::Unmapped(jblock))
    }
}

impl JournalIo for DeviceJournal<'_> {
    type Error = DeviceJournalError;

    fn len_blocks(&self) -> u64 {
        self.runs.last().map_or(0, |r| r.jblock + r.len)
    }

    fn superblock_block(&self) -> u64 {
        self.sb_block
    }

    fn read(&mut self, jblock: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        let off = self.offset(jblock, buf.len())?;
        Ok(self.dev.read_at(off, buf)?)
    }

    fn write(&mut self, jblock: u64, data: &[u8]) -> Result<(), Self::Error> {
        let off = self.offset(jblock, data.len())?;
        Ok(self.dev.write_at(off, data)?)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(self.dev.flush()?)
    }
}

/// Errors of [`MemoryJournal`].
#[derive(Debug, thiserror::Error)]
#[error("journal block {jblock} out of range or buffer not one block ({len} bytes)")]
pub struct MemoryJournalError {
    /// The block asked for.
    pub jblock: u64,
    /// The buffer length.
    pub len: usize,
}

/// A journal in memory (tests, fuzzing, tools).
#[derive(Debug, Clone)]
pub struct MemoryJournal {
    /// Block size.
    pub block_size: u32,
    /// The journal's bytes.
    pub data: Vec<u8>,
    /// Number of flushes (tests check write ordering with it).
    pub flushes: u64,
}

impl MemoryJournal {
    /// A zeroed journal of `blocks` blocks.
    pub fn new(block_size: u32, blocks: u64) -> Self {
        Self { block_size, data: vec![0; (blocks * u64::from(block_size)) as usize], flushes: 0 }
    }

    fn range(&self, jblock: u64, len: usize) -> Result<std::ops::Range<usize>, MemoryJournalError> {
        let err = MemoryJournalError { jblock, len };
        if len != self.block_size as usize || jblock >= self.len_blocks() {
            return Err(err);
        }
        let start = jblock as usize * len;
        Ok(start..start + len)
    }
}

impl JournalIo for MemoryJournal {
    type Error = MemoryJournalError;

    fn len_blocks(&self) -> u64 {
        (self.data.len() / self.block_size.max(1) as usize) as u64
    }

    fn read(&mut self, jblock: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        let r = self.range(jblock, buf.len())?;
        buf.copy_from_slice(&self.data[r]);
        Ok(())
    }

    fn write(&mut self, jblock: u64, data: &[u8]) -> Result<(), Self::Error> {
        let r = self.range(jblock, data.len())?;
        self.data[r].copy_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.flushes += 1;
        Ok(())
    }
}

//! Block maps of inodes seen through `ext4-extent`: the read-only adapter
//! and reading of file data.

use ext4_extent::{Lookup, MapCtx, MapIo, MapKind};
use ext4_ondisk::{InodeFlags, Structure};

use crate::error::{Error, Result};
use crate::fs::Filesystem;
use crate::inode::InodeBuf;
use crate::layer::{LayerError, LayerResultExt, corrupt_in};

/// Read-only map access: map blocks come through the metadata cache.
pub(crate) struct ReadMap<'a> {
    pub(crate) fs: &'a Filesystem,
}

impl MapIo for ReadMap<'_> {
    type Error = LayerError;

    fn read_block(&mut self, block: u64, buf: &mut [u8]) -> Result<(), LayerError> {
        Ok(self.fs.read_meta_into(block, buf)?)
    }

    fn write_block(&mut self, _block: u64, _data: &[u8]) -> Result<(), LayerError> {
        Err(Error::ReadOnly.into())
    }

    fn alloc_block(&mut self, _goal: u64) -> Result<u64, LayerError> {
        Err(Error::ReadOnly.into())
    }

    fn free_blocks(&mut self, _start: u64, _count: u64, _meta: bool) -> Result<(), LayerError> {
        Err(Error::ReadOnly.into())
    }
}

impl Filesystem {
    /// The map context of an inode.
    pub(crate) fn map_ctx(&self, ib: &InodeBuf) -> MapCtx {
        MapCtx {
            block_size: self.geo.block_size,
            first_data_block: self.geo.first_data_block,
            blocks_count: self.geo.blocks_count,
            csum_seed: self.inode_seed(ib.ino, ib.inode.generation),
        }
    }

    /// Which kind of map an inode uses.
    pub(crate) fn map_kind(ib: &InodeBuf) -> MapKind {
        if ib.inode.flags.contains(InodeFlags::EXTENTS) { MapKind::Extents } else { MapKind::Indirect }
    }

    /// Looks up logical block `logical` of a block-mapped inode.
    pub(crate) fn lookup_block(&self, ib: &InodeBuf, logical: u32) -> Result<Lookup> {
        let ctx = self.map_ctx(ib);
        ext4_extent::lookup(Self::map_kind(ib), &ib.inode.block, &ctx, &mut ReadMap { fs: self }, logical).in_inode(ib.ino)
    }

    /// Calls `f(logical, len)` for every mapped run of a block-mapped inode, in logical order.
    pub(crate) fn for_each_mapped_run(&self, ib: &InodeBuf, mut f: impl FnMut(u64, u64)) -> Result<()> {
        let ctx = self.map_ctx(ib);
        ext4_extent::for_each_run(Self::map_kind(ib), &ib.inode.block, &ctx, &mut ReadMap { fs: self }, |r| {
            f(u64::from(r.logical), u64::from(r.len));
            std::ops::ControlFlow::Continue(())
        })
        .in_inode(ib.ino)
    }

    /// Blocks an inode holds (`i_blocks` in filesystem blocks).
    pub(crate) fn inode_fs_blocks(&self, ib: &InodeBuf) -> u64 {
        if ib.inode.flags.contains(InodeFlags::HUGE_FILE) {
            ib.inode.blocks
        } else {
            ib.inode.blocks / u64::from(self.geo.block_size / 512)
        }
    }

    /// Reads up to `buf.len()` bytes of a block-mapped inode's data at
    /// `offset`, stopping at `limit` (the file size). Holes and unwritten
    /// extents read as zeros. Returns the bytes read.
    pub(crate) fn read_mapped(&self, ib: &InodeBuf, offset: u64, buf: &mut [u8], limit: u64) -> Result<usize> {
        if offset >= limit {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(limit - offset) as usize;
        let bs = u64::from(self.geo.block_size);
        let mut done = 0usize;
        while done < n {
            let pos = offset + done as u64;
            let logical =
                u32::try_from(pos / bs).map_err(|_| corrupt_in(Structure::Inode, ib.ino, "size beyond the addressable blocks"))?;
            let in_block = pos % bs;
            let left = (n - done) as u64;
            match self.lookup_block(ib, logical)? {
                Lookup::Mapped(run) => {
                    let len = (u64::from(run.len) * bs - in_block).min(left) as usize;
                    let dst = &mut buf[done..done + len];
                    if run.unwritten {
                        dst.fill(0);
                    } else {
                        self.read_data(run.physical, in_block, dst)?;
                    }
                    done += len;
                }
                Lookup::Hole { next } => {
                    let hole_end = next.map_or(u64::MAX, |nx| u64::from(nx) * bs);
                    let len = (hole_end.saturating_sub(pos)).min(left).max(1) as usize;
                    buf[done..done + len].fill(0);
                    done += len;
                }
            }
        }
        Ok(n)
    }
}

/// Where a stretch of a file's bytes is, for readers that copy without
/// passing the data through the library (`copy_file_range`, `sendfile`
/// from [`Filesystem::host_file`]). See [`Filesystem::data_run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataRun {
    /// The next `len` bytes of the file are the device's bytes at `device_offset`.
    Device {
        /// Byte offset on the device.
        device_offset: u64,
        /// Bytes in the run (never past the end of the file).
        len: u64,
    },
    /// The next `len` bytes read as zeros (a hole or an unwritten extent).
    Zeros {
        /// Bytes in the run (never past the end of the file).
        len: u64,
    },
    /// The next `len` bytes must be read with [`Filesystem::read_at`]: inline
    /// data, or a filesystem whose newest copies of some blocks are not on
    /// the device yet (a journal not replayed, journaled data in memory).
    ReadThrough {
        /// Bytes in the run (never past the end of the file).
        len: u64,
    },
}

impl DataRun {
    /// Bytes in the run.
    pub fn len(&self) -> u64 {
        match *self {
            DataRun::Device { len, .. } | DataRun::Zeros { len } | DataRun::ReadThrough { len } => len,
        }
    }

    /// Whether the run is empty (never, for a run [`Filesystem::data_run`] returns).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Filesystem {
    /// The run of regular-file data starting at byte `offset` of inode
    /// `ino`, or `None` at or past the end of the file. A run describes the
    /// file from `offset` up to the end of one extent (or hole), so a copy
    /// loop calls this once per extent rather than once per block. The
    /// device offsets are checked against the filesystem's size.
    pub fn data_run(&self, ino: u32, offset: u64) -> Result<Option<DataRun>> {
        let ib = self.read_inode(ino)?;
        if ib.is_dir() {
            return Err(Error::IsADirectory(format!("inode {ino}")));
        }
        let size = ib.inode.size;
        if offset >= size {
            return Ok(None);
        }
        let rest = size - offset;
        if ib.inode.flags.contains(InodeFlags::ENCRYPT) {
            return Err(Error::Unsupported(format!("inode {ino} is encrypted")));
        }
        if ib.inode.has_inline_data() {
            return Ok(Some(DataRun::ReadThrough { len: rest }));
        }
        let bs = u64::from(self.geo.block_size);
        let logical = u32::try_from(offset / bs).map_err(|_| corrupt_in(Structure::Inode, ino, "size beyond the addressable blocks"))?;
        let in_block = offset % bs;
        Ok(Some(match self.lookup_block(&ib, logical)? {
            Lookup::Mapped(run) => {
                let len = (u64::from(run.len) * bs - in_block).min(rest);
                if run.unwritten {
                    DataRun::Zeros { len }
                } else if !self.device_data_current() {
                    DataRun::ReadThrough { len }
                } else {
                    self.check_data_range(run.physical, (in_block + len).div_ceil(bs))?;
                    DataRun::Device { device_offset: run.physical * bs + in_block, len }
                }
            }
            Lookup::Hole { next } => {
                let end = next.map_or(u64::MAX, |nx| u64::from(nx) * bs);
                DataRun::Zeros { len: end.saturating_sub(offset).clamp(1, rest) }
            }
        }))
    }
}

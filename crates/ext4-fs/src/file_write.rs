//! Writing regular files: data at any offset (holes stay holes), size
//! changes, preallocation and hole punching.

use ext4_extent::{Lookup, MapKind, Run};
use ext4_ondisk::{FileType, InodeFlags, RoCompat};

use crate::error::{Error, Result};
use crate::fs::Filesystem;
use crate::inode::InodeBuf;
use crate::txn::Txn;

/// Files at least this large need `large_file`.
const LARGE_FILE_SIZE: u64 = 1 << 31;

impl Filesystem {
    /// The largest file size the inode's map can address.
    pub(crate) fn max_file_size(&self, ib: &InodeBuf) -> u64 {
        let bs = u64::from(self.geo.block_size);
        match Self::map_kind(ib) {
            // Logical block numbers are 32 bits; the last one stays unused as the kernel does.
            MapKind::Extents => (u64::from(u32::MAX)) * bs,
            MapKind::Indirect => ext4_extent::indirect::max_logical_blocks(self.geo.block_size) * bs,
        }
    }

    /// Reads an inode that must be a regular file the caller may write.
    fn writable_file(&self, ino: u32) -> Result<InodeBuf> {
        let ib = self.read_inode(ino)?;
        match ib.file_type() {
            FileType::Regular => {}
            FileType::Directory => return Err(Error::IsADirectory(format!("inode {ino}"))),
            _ => {
                return Err(Error::InvalidArgument(format!("inode {ino} is not a regular file")));
            }
        }
        if ib.inode.flags.contains(InodeFlags::IMMUTABLE) {
            return Err(Error::NotPermitted("the file is immutable"));
        }
        Ok(ib)
    }

    /// Writes `data` at `offset` of file `ino`; returns the bytes written.
    pub fn write_at(&mut self, ino: u32, offset: u64, data: &[u8]) -> Result<usize> {
        self.op(|txn| {
            let mut ib = txn.writable_file(ino)?;
            if ib.inode.flags.contains(InodeFlags::APPEND) && offset != ib.inode.size {
                return Err(Error::NotPermitted("the file is append-only"));
            }
            let end = offset.checked_add(data.len() as u64).ok_or(Error::FileTooLarge)?;
            if end > txn.max_file_size(&ib) {
                return Err(Error::FileTooLarge);
            }
            if data.is_empty() {
                return Ok(0);
            }
            if ib.inode.has_inline_data() || txn.starts_inline(&ib, end)? {
                txn.write_inline(&mut ib, offset, data)?;
            } else {
                txn.write_blocks(&mut ib, offset, data)?;
            }
            if end > ib.inode.size {
                txn.set_size(&mut ib, end);
            }
            let now = txn.now();
            ib.inode.mtime = now;
            ib.inode.ctime = now;
            txn.write_inode(&mut ib)?;
            Ok(data.len())
        })
    }

    /// Sets the size of file `ino`: shrinking frees the blocks past the end
    /// and zeroes the tail of the last block; growing leaves a hole.
    pub fn truncate(&mut self, ino: u32, size: u64) -> Result<()> {
        self.op(|txn| {
            let mut ib = txn.writable_file(ino)?;
            if ib.inode.flags.contains(InodeFlags::APPEND) && size < ib.inode.size {
                return Err(Error::NotPermitted("the file is append-only"));
            }
            if size > txn.max_file_size(&ib) {
                return Err(Error::FileTooLarge);
            }
            let bs = u64::from(txn.geo.block_size);
            if size < ib.inode.size && txn.needs_steps(&ib, size.div_ceil(bs))? {
                // Too big for one transaction: the new size and an orphan
                // record now, the blocks past it in steps after this operation.
                txn.zero_block_tail(&ib, size)?;
                txn.set_size(&mut ib, size);
                txn.orphan_add(&mut ib)?;
                txn.handles_mut().deferred.push(crate::orphan::Deferred::Truncate(ino));
            } else {
                txn.truncate_inode(&mut ib, size)?;
            }
            let now = txn.now();
            ib.inode.mtime = now;
            ib.inode.ctime = now;
            txn.write_inode(&mut ib)
        })
    }

    /// Preallocates `[offset, offset + len)` of file `ino` as unwritten
    /// extents (reading as zeros); with `keep_size` the size does not grow.
    pub fn fallocate(&mut self, ino: u32, offset: u64, len: u64, keep_size: bool) -> Result<()> {
        self.op(|txn| {
            let mut ib = txn.writable_file(ino)?;
            if ib.inode.has_inline_data() {
                txn.inline_to_blocks(&mut ib)?;
            }
            if Self::map_kind(&ib) != MapKind::Extents {
                return Err(Error::Unsupported("fallocate needs an extent-mapped file".into()));
            }
            let end = offset.checked_add(len).filter(|&e| e <= txn.max_file_size(&ib)).ok_or(Error::FileTooLarge)?;
            if len == 0 {
                return Err(Error::InvalidArgument("fallocate of zero bytes".into()));
            }
            let bs = u64::from(txn.geo.block_size);
            let mut logical = (offset / bs) as u32;
            let last = end.div_ceil(bs);
            while u64::from(logical) < last {
                match txn.lookup_block(&ib, logical)? {
                    Lookup::Mapped(run) => logical += run.len,
                    Lookup::Hole { next } => {
                        let room = next.map_or(last, |nx| u64::from(nx).min(last)) - u64::from(logical);
                        let want = room.min(u64::from(ext4_ondisk::extent::UNWRITTEN_MAX_LEN)) as u32;
                        let (physical, got) = txn.alloc_file_blocks(&mut ib, logical, want)?;
                        txn.map_run(&mut ib, Run { logical, physical, len: got, unwritten: true })?;
                        logical += got;
                    }
                }
            }
            if !keep_size && end > ib.inode.size {
                txn.set_size(&mut ib, end);
            }
            ib.inode.ctime = txn.now();
            txn.write_inode(&mut ib)
        })
    }

    /// Deallocates `[offset, offset + len)` of file `ino`: partial blocks at
    /// the edges are zeroed, whole blocks are freed. The size is kept.
    pub fn punch_hole(&mut self, ino: u32, offset: u64, len: u64) -> Result<()> {
        self.op(|txn| {
            let mut ib = txn.writable_file(ino)?;
            if ib.inode.flags.contains(InodeFlags::APPEND) {
                return Err(Error::NotPermitted("the file is append-only"));
            }
            let size = ib.inode.size;
            let end = offset.saturating_add(len).min(size.max(offset));
            if offset >= end {
                return Ok(());
            }
            if ib.inode.has_inline_data() {
                let zeros = vec![0u8; (end - offset) as usize];
                txn.write_inline(&mut ib, offset, &zeros)?;
            } else {
                let bs = u64::from(txn.geo.block_size);
                let first_full = offset.div_ceil(bs);
                let end_full = end / bs;
                txn.zero_range_in_block(&ib, offset, end.min(first_full * bs))?;
                if end_full > first_full {
                    txn.unmap(&mut ib, first_full as u32, end_full)?;
                    txn.zero_range_in_block(&ib, end_full * bs, end)?;
                } else if end > first_full * bs {
                    txn.zero_range_in_block(&ib, first_full * bs, end)?;
                }
            }
            let now = txn.now();
            ib.inode.mtime = now;
            ib.inode.ctime = now;
            txn.write_inode(&mut ib)
        })
    }
}

impl Txn<'_> {
    /// Records a size: `large_file` is switched on the first time a file reaches 2 GiB.
    fn set_size(&mut self, ib: &mut InodeBuf, size: u64) {
        ib.inode.size = size;
        if size >= LARGE_FILE_SIZE && !self.geo.features.ro_compat.contains(RoCompat::LARGE_FILE) {
            self.change_features(|f| f.ro_compat.insert(RoCompat::LARGE_FILE));
        }
    }

    /// Writes `data` at `offset` of a block-mapped file.
    pub(crate) fn write_blocks(&mut self, ib: &mut InodeBuf, offset: u64, data: &[u8]) -> Result<()> {
        let bs = u64::from(self.geo.block_size);
        let mut done = 0usize;
        while done < data.len() {
            let pos = offset + done as u64;
            let logical = (pos / bs) as u32;
            let left = &data[done..];
            let n = match self.lookup_block(ib, logical)? {
                Lookup::Mapped(run) if !run.unwritten => {
                    let n = ((u64::from(run.len) * bs - pos % bs) as usize).min(left.len());
                    self.write_data(run.physical, pos % bs, &left[..n])?;
                    n
                }
                Lookup::Mapped(run) => {
                    let n = self.fill_blocks(run.physical, run.len, pos % bs, left)?;
                    let blocks = (pos % bs + n as u64).div_ceil(bs) as u32;
                    self.mark_written(ib, logical, blocks)?;
                    n
                }
                Lookup::Hole { next } => {
                    let want_blocks = (pos % bs + left.len() as u64).div_ceil(bs);
                    let room = next.map_or(u64::MAX, |nx| u64::from(nx - logical));
                    let want = want_blocks.min(room).min(u64::from(ext4_ondisk::extent::INIT_MAX_LEN)) as u32;
                    let (physical, got) = self.alloc_file_blocks(ib, logical, want)?;
                    let n = self.fill_blocks(physical, got, pos % bs, left)?;
                    // On failure the whole operation is rolled back, these blocks included.
                    self.map_data_run(ib, Run { logical, physical, len: got, unwritten: false })?;
                    n
                }
            };
            done += n;
        }
        Ok(())
    }

    /// Writes as much of `data` as fits in `len` fresh blocks from `physical`,
    /// starting `skip` bytes into the first; the rest of each touched block
    /// is zero. Returns the bytes of `data` written.
    fn fill_blocks(&mut self, physical: u64, len: u32, skip: u64, data: &[u8]) -> Result<usize> {
        let bs = u64::from(self.geo.block_size) as usize;
        let skip = skip as usize;
        let n = (len as usize * bs - skip).min(data.len());
        let mut b = physical;
        let mut done = 0;
        if skip > 0 || n < bs {
            // First block partial: pad it.
            let mut block = vec![0u8; bs];
            let k = (bs - skip).min(n);
            block[skip..skip + k].copy_from_slice(&data[..k]);
            self.write_data(b, 0, &block)?;
            done = k;
            b += 1;
        }
        let full = (n - done) / bs * bs;
        if full > 0 {
            self.write_data(b, 0, &data[done..done + full])?;
            done += full;
            b += (full / bs) as u64;
        }
        if done < n {
            let mut block = vec![0u8; bs];
            block[..n - done].copy_from_slice(&data[done..n]);
            self.write_data(b, 0, &block)?;
            done = n;
        }
        Ok(done)
    }

    /// Changes an inode's size and frees what lies past it (any block-mapped
    /// or inline inode; the caller writes the inode).
    pub(crate) fn truncate_inode(&mut self, ib: &mut InodeBuf, size: u64) -> Result<()> {
        if ib.inode.has_inline_data() {
            return self.truncate_inline(ib, size);
        }
        let bs = u64::from(self.geo.block_size);
        if size < ib.inode.size {
            self.zero_block_tail(ib, size)?;
        }
        // Blocks past the end go, including preallocated ones past the old size.
        let first_gone = size.div_ceil(bs);
        if first_gone <= u64::from(u32::MAX) {
            self.unmap(ib, first_gone as u32, 1u64 << 32)?;
        }
        self.set_size(ib, size);
        Ok(())
    }

    /// Zeroes the bytes from `pos` to the end of its block, if that block is written.
    fn zero_block_tail(&mut self, ib: &InodeBuf, pos: u64) -> Result<()> {
        let bs = u64::from(self.geo.block_size);
        let in_block = pos % bs;
        if in_block == 0 {
            return Ok(());
        }
        if let Lookup::Mapped(run) = self.lookup_block(ib, (pos / bs) as u32)? {
            if !run.unwritten {
                let zeros = vec![0u8; (bs - in_block) as usize];
                self.write_data(run.physical, in_block, &zeros)?;
            }
        }
        Ok(())
    }

    /// Zeroes `[from, to)` (within one block) where that block is written.
    fn zero_range_in_block(&mut self, ib: &InodeBuf, from: u64, to: u64) -> Result<()> {
        if from >= to {
            return Ok(());
        }
        let bs = u64::from(self.geo.block_size);
        if let Lookup::Mapped(run) = self.lookup_block(ib, (from / bs) as u32)? {
            if !run.unwritten {
                let zeros = vec![0u8; (to - from) as usize];
                self.write_data(run.physical, from % bs, &zeros)?;
            }
        }
        Ok(())
    }
}

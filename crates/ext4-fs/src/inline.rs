//! Inline data (`inline_data`) files: data kept in the inode's `i_block`
//! (60 bytes) and its `system.data` xattr, as `fs/ext4/inline.c` does.
//!
//! A regular file on an `inline_data` filesystem becomes inline at its first
//! write if the data fits (`ext4_try_to_write_inline_data`); a write or a
//! growing truncate past the room moves the data to a block
//! (`ext4_convert_inline_data_to_extent`). The `system.data` value always
//! holds `i_size - 60` bytes (none below 60), as after the kernel's
//! `ext4_inline_data_truncate`.

use ext4_ondisk::inode::I_BLOCK_SIZE;
use ext4_ondisk::{FileType, Incompat, InodeFlags};

use crate::error::Result;
use crate::fs::Filesystem;
use crate::inode::InodeBuf;
use crate::txn::Txn;

impl Filesystem {
    /// Bytes an inline inode can hold (`ext4_get_max_inline_size`): 0 when
    /// the filesystem has no `inline_data` or the inode body no room.
    pub(crate) fn inline_capacity(&self, ib: &InodeBuf) -> Result<u64> {
        if !self.geo.features.incompat.contains(Incompat::INLINE_DATA) || ib.inode.extra_isize == 0 {
            return Ok(0);
        }
        Ok(self.inline_value_room(ib)?.map_or(0, |room| (I_BLOCK_SIZE + room) as u64))
    }

    /// Whether a write ending at `end` starts inline data in a regular file
    /// that holds nothing yet (the kernel's `EXT4_STATE_MAY_INLINE_DATA`).
    pub(crate) fn starts_inline(&self, ib: &InodeBuf, end: u64) -> Result<bool> {
        if ib.inode.has_inline_data() || ib.file_type() != FileType::Regular || ib.inode.size != 0 {
            return Ok(false);
        }
        let xattr_block = if ib.inode.file_acl != 0 { u64::from(self.geo.block_size * self.geo.cluster_ratio) } else { 0 };
        let huge = self.geo.features.ro_compat.contains(ext4_ondisk::RoCompat::HUGE_FILE);
        if ib.inode.allocated_bytes(self.geo.block_size, huge) != xattr_block || ib.inode.flags.contains(InodeFlags::ENCRYPT) {
            return Ok(false);
        }
        Ok(end <= self.inline_capacity(ib)?)
    }

    /// The whole inline data of an inode (`i_size` bytes).
    pub(crate) fn inline_bytes(&self, ib: &InodeBuf) -> Result<Vec<u8>> {
        let mut data = vec![0u8; ib.inode.size as usize];
        let n = self.read_inode_data(ib, 0, &mut data)?;
        data.truncate(n);
        Ok(data)
    }
}

impl Txn<'_> {
    /// Stores `data` as the inode's inline data: `i_block`, then `system.data`
    /// (the caller sets `i_size` and writes the inode).
    pub(crate) fn store_inline(&mut self, ib: &mut InodeBuf, data: &[u8]) -> Result<()> {
        let head = data.len().min(I_BLOCK_SIZE);
        ib.inode.block = [0; I_BLOCK_SIZE];
        ib.inode.block[..head].copy_from_slice(&data[..head]);
        ib.inode.flags.remove(InodeFlags::EXTENTS);
        ib.inode.flags.insert(InodeFlags::INLINE_DATA);
        self.set_inline_value(ib, Some(&data[head..]))
    }

    /// Writes into an inline-data file, or into a file starting inline data;
    /// past the inline room the data moves to blocks first.
    pub(crate) fn write_inline(&mut self, ib: &mut InodeBuf, offset: u64, data: &[u8]) -> Result<()> {
        let end = offset + data.len() as u64;
        if end > self.inline_capacity(ib)? {
            self.inline_to_blocks(ib)?;
            return self.write_blocks(ib, offset, data);
        }
        let mut bytes = if ib.inode.has_inline_data() { self.inline_bytes(ib)? } else { Vec::new() };
        if (bytes.len() as u64) < end {
            bytes.resize(end as usize, 0);
        }
        bytes[offset as usize..end as usize].copy_from_slice(data);
        self.store_inline(ib, &bytes)
    }

    /// Truncates an inline-data file: shrinking keeps it inline, growing
    /// moves it to blocks as the kernel's `ext4_setattr` does.
    pub(crate) fn truncate_inline(&mut self, ib: &mut InodeBuf, size: u64) -> Result<()> {
        if size > ib.inode.size {
            self.inline_to_blocks(ib)?;
            return self.truncate_inode(ib, size);
        }
        let mut bytes = self.inline_bytes(ib)?;
        bytes.truncate(size as usize);
        self.store_inline(ib, &bytes)?;
        ib.inode.size = size;
        Ok(())
    }

    /// Moves an inline-data file's contents to blocks: `system.data` goes,
    /// `i_block` becomes an empty map, the data is written to a block.
    pub(crate) fn inline_to_blocks(&mut self, ib: &mut InodeBuf) -> Result<()> {
        let data = self.inline_bytes(ib)?;
        self.clear_inline(ib)?;
        if data.is_empty() { Ok(()) } else { self.write_blocks(ib, 0, &data) }
    }

    /// Ends an inode's inline data (removes `system.data`, clears the flag)
    /// and gives it an empty block map.
    pub(crate) fn clear_inline(&mut self, ib: &mut InodeBuf) -> Result<()> {
        self.set_inline_value(ib, None)?;
        ib.inode.flags.remove(InodeFlags::INLINE_DATA);
        ib.inode.block = [0; I_BLOCK_SIZE];
        if self.geo.features.incompat.contains(Incompat::EXTENTS) {
            ib.inode.flags.insert(InodeFlags::EXTENTS);
            ext4_extent::tree::init(&mut ib.inode.block);
        }
        Ok(())
    }
}

//! Inline data (`inline_data`): small files and directories kept in the
//! inode's `i_block` and its `system.data` xattr.

use ext4_ondisk::Structure;

use crate::error::{Error, Result};
use crate::fs::Filesystem;
use crate::inode::InodeBuf;
use crate::layer::corrupt_in;

impl Filesystem {
    /// Writes into an inline-data file.
    pub(crate) fn write_inline(&mut self, ib: &mut InodeBuf, _offset: u64, _data: &[u8]) -> Result<()> {
        Err(Error::Unsupported(format!("inode {}: writing inline-data files is not supported yet", ib.ino)))
    }

    /// Truncates an inline-data file.
    pub(crate) fn truncate_inline(&mut self, ib: &mut InodeBuf, _size: u64) -> Result<()> {
        Err(Error::Unsupported(format!("inode {}: truncating inline-data files is not supported yet", ib.ino)))
    }

    /// Moves an inline-data file's contents to blocks.
    pub(crate) fn inline_to_blocks(&mut self, ib: &mut InodeBuf) -> Result<()> {
        Err(corrupt_in(Structure::Inode, ib.ino, "converting inline data to blocks is not supported yet"))
    }
}

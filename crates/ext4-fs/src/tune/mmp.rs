//! Multi-mount protection turned on (`ext2fs_mmp_init`: the first free
//! block, a clean MMP block in it) or off (the block freed).

use super::Session;
use crate::error::{Error, Result};

/// `EXT4_MMP_UPDATE_INTERVAL`.
const DEFAULT_INTERVAL: u16 = 5;
/// `EXT4_MMP_MAX_UPDATE_INTERVAL`.
const MAX_INTERVAL: u16 = 300;

impl Session<'_> {
    /// `-O mmp`.
    pub(super) fn enable_mmp(&mut self) -> Result<()> {
        let sb = &mut self.fs.sb;
        match sb.s_mmp_interval.get() {
            0 => sb.s_mmp_interval.set(DEFAULT_INTERVAL),
            i if i > MAX_INTERVAL => return Err(Error::InvalidArgument(format!("mmp_update_interval too big: {i}"))),
            _ => {}
        }
        let block = self.alloc_block_at(0)?;
        self.fs.sb.s_mmp_block.set(block);
        crate::mmp::reset(&self.fs, block)?;
        let i = self.fs.sb.s_mmp_interval.get();
        self.out.notes.push(format!("Multiple mount protection has been enabled with update interval {i}s."));
        Ok(())
    }

    /// `-E clear_mmp`: a fresh, clean MMP block (`tune` refused it
    /// without `-f`, which skipped taking the block at the open).
    pub(super) fn clear_mmp(&mut self) -> Result<()> {
        let block = self.fs.sb.s_mmp_block.get();
        if self.fs.sb.features().incompat.contains(ext4_ondisk::Incompat::MMP) && block != 0 && block < self.fs.geo.blocks_count {
            crate::mmp::reset(&self.fs, block)?;
        }
        Ok(())
    }

    /// `-O ^mmp`: the block is freed when it is a valid MMP block (else
    /// only forgotten, as tune2fs does).
    pub(super) fn disable_mmp(&mut self) -> Result<()> {
        // What this open holds goes with the feature: nothing to give back.
        self.fs.mmp = None;
        let block = self.fs.sb.s_mmp_block.get();
        let valid = block > u64::from(self.fs.geo.first_data_block)
            && block < self.fs.geo.blocks_count
            && crate::mmp::read_block(&self.fs, block).is_ok();
        if valid {
            self.fs.op_without_undo(|t| t.free_blocks(block, 1, true))?;
            self.fs.op_without_undo(|t| t.apply_pending_frees())?;
            self.descs_changed = true;
        } else {
            self.out.notes.push(format!("the MMP block {block} is not valid: forgotten, not freed"));
        }
        let sb = &mut self.fs.sb;
        sb.s_mmp_block.set(0);
        sb.s_mmp_interval.set(0);
        Ok(())
    }
}

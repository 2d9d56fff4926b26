//! Group checksums starting or ending: `uninit_bg` (or `metadata_csum`,
//! which takes its place) on means every group starts out initialized
//! with a zeroed table (`enable_uninit_bg`); off means the bitmaps of
//! uninitialized groups are built and written, unused inodes zeroed where
//! the table was never zeroed, and every group's flags cleared
//! (`disable_uninit_bg`).

use ext4_alloc::init::{uninit_block_bitmap, uninit_inode_bitmap};
use ext4_ondisk::GroupDescFlags;

use super::Session;
use crate::error::Result;

impl Session<'_> {
    /// Every group initialized, its inode table zeroed, nothing unused.
    pub(super) fn enable_uninit_bg(&mut self) {
        for gd in &mut self.fs.groups {
            gd.itable_unused = 0;
            gd.flags = GroupDescFlags::ITABLE_ZEROED;
        }
        self.descs_changed = true;
    }

    /// Initializes what the flags left uninitialized, then clears them.
    /// tune2fs zeroes unused inodes only when `uninit_bg` itself goes
    /// (`for_metadata_csum` false); both ways, a table never zeroed (no
    /// `ITABLE_ZEROED`) is zeroed here where it is not in use, so that a
    /// check that now reads every inode finds no garbage.
    pub(super) fn disable_uninit_bg(&mut self, for_metadata_csum: bool) -> Result<()> {
        let had_csum = self.old.kind != ext4_ondisk::superblock::CsumKind::None;
        for g in 0..self.fs.geo.group_count {
            let gd = self.fs.groups[g as usize].clone();
            if had_csum && gd.flags.contains(GroupDescFlags::BLOCK_UNINIT) {
                let map = uninit_block_bitmap(&self.fs.geo, g, &gd);
                self.fs.op_without_undo(|t| t.write_meta(gd.block_bitmap, map))?;
            }
            if had_csum && gd.flags.contains(GroupDescFlags::INODE_UNINIT) {
                self.fs.op_without_undo(|t| t.write_meta(gd.inode_bitmap, uninit_inode_bitmap(&t.geo)))?;
            }
            let never_zeroed = had_csum && !gd.flags.contains(GroupDescFlags::ITABLE_ZEROED);
            if !for_metadata_csum || never_zeroed {
                self.zero_unused_inodes(g)?;
            }
            let gd = &mut self.fs.groups[g as usize];
            gd.itable_unused = 0;
            gd.flags = GroupDescFlags::empty();
        }
        self.descs_changed = true;
        Ok(())
    }

    /// Zeroes every inode of group `g` that its bitmap says is free and
    /// that is not zero already (`zero_empty_inodes`).
    fn zero_unused_inodes(&mut self, g: u32) -> Result<()> {
        let geo = self.fs.geo.clone();
        let ib = self.fs.groups[g as usize].inode_bitmap;
        let used: Vec<bool> =
            self.fs.read_meta(ib, |d| (0..geo.inodes_per_group as usize).map(|i| d[i / 8] & (1 << (i % 8)) != 0).collect())?;
        let isz = geo.inode_size as usize;
        for (i, _) in used.iter().enumerate().filter(|(_, u)| !**u) {
            let ino = g * geo.inodes_per_group + i as u32 + 1;
            let (block, off) = self.fs.inode_location(ino)?;
            if self.fs.read_meta(block, |d| d[off..off + isz].iter().any(|&b| b != 0))? {
                self.fs.op_without_undo(|t| t.modify_meta(block, |d| d[off..off + isz].fill(0)))?;
            }
        }
        Ok(())
    }
}

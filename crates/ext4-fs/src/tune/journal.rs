//! The internal journal removed (`remove_journal_inode`: its blocks freed,
//! the inode's first 128 bytes zeroed, the superblock's journal fields
//! cleared) or added (`ext2fs_add_journal_inode3`: mke2fs' size for the
//! filesystem or the one asked for, blocks from the group with the most
//! free blocks near the middle, zeroed, a fresh jbd2 superblock, inode 8
//! and its backup in `s_jnl_blocks`).

use ext4_jbd2::format::{MIN_JOURNAL_BLOCKS, SUPERBLOCK_SIZE};
use ext4_ondisk::inode::GOOD_OLD_INODE_SIZE;
use ext4_ondisk::{Compat, Incompat, InodeFlags};

use super::alloc::{MAX_EXTENT_LEN, MapPlan};
use super::{JournalSize, Session};
use crate::error::{Error, Result};
use crate::inode::InodeBuf;
use crate::map::ReadMap;

/// An inode's data runs `(start, length)` and map blocks.
pub(super) type InodeBlocks = (Vec<(u64, u64)>, Vec<u64>);

/// The internal journal's inode.
const JOURNAL_INO: u32 = ext4_ondisk::ino::JOURNAL;
/// `EXT2_JOURNAL_TO_FC_BLKS_RATIO`: fast-commit blocks per journal block.
const FC_RATIO: u32 = 64;
/// The largest journal mke2fs and tune2fs make, in blocks.
const MAX_JOURNAL_BLOCKS: u64 = 10_240_000;

/// `ext2fs_default_journal_size`: mke2fs' journal for a filesystem of
/// `blocks` blocks, or `None` below 2048 blocks.
fn default_journal_blocks(blocks: u64) -> Option<u32> {
    Some(match blocks {
        0..2048 => return None,
        2048..32768 => 1024,
        32768..262_144 => 4096,
        262_144..524_288 => 8192,
        524_288..4_194_304 => 16384,
        4_194_304..8_388_608 => 32768,
        8_388_608..16_777_216 => 65536,
        16_777_216..33_554_432 => 131_072,
        _ => 262_144,
    })
}

impl Session<'_> {
    /// Stores inode record `raw` of `ino` with its checksum (current scheme).
    pub(super) fn put_inode_raw(&mut self, ino: u32, raw: &mut [u8]) -> Result<()> {
        if self.fs.geo.metadata_csum() {
            ext4_ondisk::inode::set_inode_checksum(self.fs.geo.csum_seed, ino, raw);
        }
        let (block, off) = self.fs.inode_location(ino)?;
        self.fs.op_without_undo(|t| t.modify_meta(block, |d| d[off..off + raw.len()].copy_from_slice(raw)))
    }

    /// Every block of an inode's map: its data runs `(start, length)` and its map blocks.
    pub(super) fn inode_blocks(&self, ib: &InodeBuf) -> Result<InodeBlocks> {
        let ctx = self.raw_map_ctx(ib);
        let kind = crate::fs::Filesystem::map_kind(ib);
        let (mut runs, mut meta) = (Vec::new(), Vec::new());
        ext4_extent::for_each_run(kind, &ib.inode.block, &ctx, &mut ReadMap { fs: &self.fs }, |r| {
            runs.push((r.physical, u64::from(r.len)));
            std::ops::ControlFlow::Continue(())
        })
        .map_err(|e| e.into_error(ib.ino))?;
        ext4_extent::for_each_map_block(kind, &ib.inode.block, &ctx, &mut ReadMap { fs: &self.fs }, |b| {
            meta.push(b);
            std::ops::ControlFlow::Continue(())
        })
        .map_err(|e| e.into_error(ib.ino))?;
        Ok((runs, meta))
    }

    /// `^has_journal`.
    pub(super) fn remove_journal(&mut self) -> Result<()> {
        if self.fs.sb.features().incompat.contains(Incompat::RECOVER) {
            return Err(Error::InvalidArgument("the journal needs recovery: run e2fsck before removing it".into()));
        }
        let ino = self.fs.sb.s_journal_inum.get();
        if ino == 0 {
            if self.fs.sb.s_journal_dev.get() != 0 {
                return Err(Error::Unsupported("removing an external journal".into()));
            }
            return Ok(());
        }
        let mut ib = self.fs.read_inode_raw(ino)?;
        if ino == JOURNAL_INO {
            let (runs, meta) = self.inode_blocks(&ib)?;
            for (start, len) in runs {
                self.fs.op_without_undo(|t| t.free_blocks(start, len, false))?;
            }
            for b in meta {
                self.fs.op_without_undo(|t| t.free_blocks(b, 1, true))?;
            }
            self.fs.op_without_undo(|t| t.apply_pending_frees())?;
            let bs = u64::from(self.fs.geo.block_size);
            let journal = (ib.inode.size / bs) as u32;
            let sb = &mut self.fs.sb;
            sb.s_overhead_clusters.set(sb.s_overhead_clusters.get().saturating_sub(journal));
            // As tune2fs writes a zeroed `struct ext2_inode`: the first 128 bytes.
            ib.raw[..GOOD_OLD_INODE_SIZE].fill(0);
            self.descs_changed = true;
        } else {
            ib.inode.flags.remove(InodeFlags::IMMUTABLE);
            ib.inode.write(&mut ib.raw);
        }
        self.put_inode_raw(ino, &mut ib.raw)?;
        let sb = &mut self.fs.sb;
        sb.s_journal_inum.set(0);
        sb.s_jnl_blocks.iter_mut().for_each(|w| w.set(0));
        self.out.notes.push("Journal removed".into());
        Ok(())
    }

    /// The journal's and its fast-commit area's sizes in blocks (`figure_journal_size`).
    fn journal_size(&self, size: JournalSize) -> Result<(u32, u32)> {
        let sb = &self.fs.sb;
        let default =
            default_journal_blocks(sb.blocks_count()).ok_or_else(|| Error::InvalidArgument("filesystem too small for a journal".into()))?;
        let fast_commit = sb.features().compat.contains(Compat::FAST_COMMIT);
        let mut fc = if fast_commit { default / FC_RATIO } else { 0 };
        let mut journal = default;
        if let JournalSize::Mib(mib) = size {
            let blocks = mib.saturating_mul(1024) / u64::from(self.fs.geo.block_size / 1024);
            if !fast_commit {
                fc = 0;
            }
            let total = blocks + u64::from(fc);
            if !(u64::from(MIN_JOURNAL_BLOCKS)..=MAX_JOURNAL_BLOCKS).contains(&total) {
                return Err(Error::InvalidArgument(format!(
                    "the requested journal is {total} blocks; it must be between 1024 and 10240000 blocks"
                )));
            }
            if total > sb.free_blocks_count() / 2 {
                return Err(Error::InvalidArgument("the requested journal is too big for the filesystem".into()));
            }
            journal = blocks as u32;
        }
        Ok((journal, fc))
    }

    /// `get_midpoint_journal_block`: the first block of the group with the
    /// most free blocks around the middle of the filesystem.
    fn midpoint_journal_block(&self) -> u64 {
        let geo = &self.fs.geo;
        let free = |g: u32| self.fs.groups[g as usize].free_blocks_count;
        let (mut group, _) = geo.block_group((geo.blocks_count - u64::from(geo.first_data_block)) / 2);
        let log_flex = 1u32 << self.fs.sb.s_log_groups_per_flex.min(31);
        let start = if self.fs.sb.s_log_groups_per_flex > 0 && group > log_flex {
            group &= !(log_flex - 1);
            while group < geo.group_count && free(group) == 0 {
                group += 1;
            }
            if group == geo.group_count {
                group = 0;
            }
            group
        } else {
            group.saturating_sub(1)
        };
        let end = if group + 1 < geo.group_count { group + 1 } else { group };
        let mut best = start;
        for g in start + 1..=end {
            if free(g) > free(best) {
                best = g;
            }
        }
        geo.group_first_block(best)
    }

    /// `-j`, `-J size=`, `-O has_journal`: a new internal journal.
    pub(super) fn add_journal(&mut self, size: JournalSize) -> Result<()> {
        if self.fs.sb.features().compat.contains(Compat::HAS_JOURNAL) {
            return Err(Error::InvalidArgument("the filesystem already has a journal".into()));
        }
        let (journal, fc) = self.journal_size(size)?;
        let total = journal + fc;
        if self.fs.read_inode_raw(JOURNAL_INO)?.inode.blocks > 0 {
            return Err(Error::Exists(format!("inode {JOURNAL_INO} (it holds blocks)")));
        }
        let plan = self.allocate_journal(u64::from(total))?;
        self.write_journal_blocks(&plan, total, fc)?;
        let ib = self.write_new_file_inode(JOURNAL_INO, &plan, total)?;
        let sb = &mut self.fs.sb;
        for (i, w) in sb.s_jnl_blocks.iter_mut().take(15).enumerate() {
            w.set(ext4_ondisk::get_u32(&ib.inode.block, i * 4));
        }
        sb.s_jnl_blocks[15].set((ib.inode.size >> 32) as u32);
        sb.s_jnl_blocks[16].set(ib.inode.size as u32);
        sb.s_jnl_backup_type = 1;
        sb.s_journal_inum.set(JOURNAL_INO);
        sb.s_journal_dev.set(0);
        sb.s_journal_uuid = [0; 16];
        sb.s_overhead_clusters.set(sb.s_overhead_clusters.get().wrapping_add(total));
        let mut w = sb.features();
        w.compat.insert(Compat::HAS_JOURNAL);
        sb.set_features(w);
        self.out.notes.push("Creating journal inode: done".into());
        self.refresh_geometry(true)
    }

    /// The journal's blocks, placed as libext2fs places them: extents from
    /// the midpoint group (`extent_fallocate`), or one block at a time
    /// through an indirect map from the inode's group.
    fn allocate_journal(&mut self, total: u64) -> Result<MapPlan> {
        let extents = self.fs.sb.features().incompat.contains(Incompat::EXTENTS);
        let mut plan = MapPlan::new(extents, self.fs.geo.block_size);
        if !extents {
            let first_goal = self.fs.geo.group_first_block(0);
            for lblk in 0..total {
                plan.push_indirect(self, lblk as u32, first_goal)?;
            }
            return Ok(plan);
        }
        let goal = self.midpoint_journal_block();
        let mut pblk = self.first_free_block(goal)?;
        let mut lblk = 0u64;
        while lblk < total {
            let (start, got) = self.free_run(pblk, (total - lblk).min(MAX_EXTENT_LEN))?;
            self.claim_blocks(start, got)?;
            plan.push_extent(self, lblk as u32, start, got as u32)?;
            lblk += got;
            pblk = start + got;
            if pblk >= self.fs.geo.blocks_count {
                pblk = u64::from(self.fs.geo.first_data_block);
            }
        }
        Ok(plan)
    }

    /// Zeroes the journal and writes its jbd2 superblock into block 0.
    fn write_journal_blocks(&mut self, plan: &MapPlan, total: u32, fc: u32) -> Result<()> {
        let bs = u64::from(self.fs.geo.block_size);
        for &(_, p, n) in &plan.runs {
            self.fs.dev.write_zeroes(p * bs, u64::from(n) * bs)?;
        }
        let first = plan.runs.first().map(|r| r.1).ok_or(Error::NoSpace)?;
        let mut jsb = ext4_jbd2::fresh_superblock(self.fs.geo.block_size, total, self.fs.sb.s_uuid, 1);
        jsb.s_num_fc_blks.set(fc);
        self.fs.dev.write_at(first * bs, &zerocopy::IntoBytes::as_bytes(&jsb)[..SUPERBLOCK_SIZE])?;
        Ok(())
    }
}

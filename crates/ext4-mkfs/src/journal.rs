//! The internal journal (inode 8): its size (`ext2fs_default_journal_size`,
//! `figure_journal_size`), where it goes (`get_midpoint_journal_block`),
//! how its blocks are allocated (`ext2fs_fallocate` for extents, one block
//! at a time through the indirect map otherwise) and its jbd2 superblock.

use ext4_jbd2::format::{BlockType, Header, JournalSuperblock};
use ext4_ondisk::Incompat;
use zerocopy::IntoBytes;

use crate::MkfsError;
use crate::build::Build;
use crate::error::Warning;
use crate::features::has_incompat;
use crate::kbytes::Io;
use crate::mapping::Mapping;

/// `EXT_INIT_MAX_LEN`: the longest initialized extent.
const MAX_EXTENT_LEN: u64 = 32768;
/// Smallest and largest journal mke2fs creates, in blocks.
const JOURNAL_MIN: i64 = 1024;
const JOURNAL_MAX: i64 = 10_240_000;

/// Where the journal went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalLayout {
    /// Journal blocks (`s_maxlen`).
    pub blocks: u32,
    /// Its data runs: `(logical, physical, length)`.
    pub runs: Vec<(u32, u64, u32)>,
    /// Blocks of its block map (extent tree nodes or indirect blocks).
    pub map_blocks: Vec<u64>,
}

/// `ext2fs_default_journal_size`: the journal size for a filesystem of
/// `blocks` blocks, or `None` below 2048 blocks.
pub fn default_journal_size(blocks: u64) -> Option<u32> {
    Some(match blocks {
        0..2048 => return None,
        2048..32768 => 1024,
        32768..262144 => 4096,
        262144..524288 => 8192,
        524288..4194304 => 16384,
        4194304..8388608 => 32768,
        8388608..16777216 => 65536,
        16777216..33554432 => 131072,
        _ => 262144,
    })
}

impl Build {
    /// Free blocks right after `ext2fs_initialize`, before the group tables
    /// are placed (what `figure_journal_size` compares against).
    fn free_after_initialize(&self) -> u64 {
        let s = &self.model.shape;
        let flex = s.log_groups_per_flex > 0;
        (0..s.group_count)
            .map(|g| {
                let used = u64::from(s.group_meta(g).used_blks);
                let tables = if flex { 0 } else { 2 + u64::from(s.inode_blocks_per_group) };
                s.group_blocks(g).saturating_sub(used + tables)
            })
            .sum()
    }

    /// `figure_journal_size`: the journal's size in blocks, or `None` when
    /// the filesystem is too small for one (the journal is then dropped).
    pub(crate) fn figure_journal_size(&mut self) -> Result<Option<u32>, MkfsError> {
        let Some(default) = default_journal_size(self.model.shape.blocks_count) else {
            self.warnings.push(Warning::NoRoomForJournal);
            return Ok(None);
        };
        let requested = self.params.journal_size;
        if requested <= 0 {
            return Ok(Some(default));
        }
        let bs_k = i64::from(self.model.shape.block_size / 1024);
        let blocks = requested * 1024 / bs_k;
        if !(JOURNAL_MIN..=JOURNAL_MAX).contains(&blocks) {
            return Err(MkfsError::InvalidJournalSize {
                blocks: blocks as u64,
                reason: "must be between 1024 and 10240000 blocks",
            });
        }
        if blocks as u64 > self.free_after_initialize() / 2 {
            return Err(MkfsError::InvalidJournalSize { blocks: blocks as u64, reason: "too big for the filesystem" });
        }
        Ok(Some(blocks as u32))
    }

    /// `get_midpoint_journal_block`: the first block of the group with the
    /// most free blocks near the middle of the filesystem.
    fn midpoint_journal_block(&self) -> u64 {
        let s = &self.model.shape;
        let m = &self.model;
        let mut group = s.group_of((s.blocks_count - s.first_data_block) / 2);
        let log_flex = 1u32 << s.log_groups_per_flex;
        let start;
        if s.log_groups_per_flex > 0 && group > log_flex {
            group &= !(log_flex - 1);
            while group < s.group_count && m.group_free_blocks(group) == 0 {
                group += 1;
            }
            if group == s.group_count {
                group = 0;
            }
            start = group;
        } else {
            start = group.saturating_sub(1);
        }
        let end = if group + 1 < s.group_count { group + 1 } else { group };
        let mut best = start;
        for g in start + 1..=end {
            if m.group_free_blocks(g) > m.group_free_blocks(best) {
                best = g;
            }
        }
        s.group_first(best)
    }

    /// The data runs of an extent-mapped journal (`extent_fallocate` from
    /// `goal`), with the extent tree's blocks placed as libext2fs places them.
    fn allocate_extent_journal(&mut self, goal: u64, len: u64) -> Result<Mapping, MkfsError> {
        let max = self.model.shape.blocks_count;
        let fdb = self.model.shape.first_data_block;
        let mut pblk = self.model.map.first_zero(goal, max - 1).unwrap_or(goal);
        let mut mapping = Mapping::new(crate::mapping::MapKind::Extents, self.model.shape.block_size);
        let ino = ext4_ondisk::ino::JOURNAL;
        self.io.push(Io::ReadInode(ino));
        let mut lblk = 0u64;
        while lblk < len {
            let want = (len - lblk).min(MAX_EXTENT_LEN);
            let (start, got) = self.model.new_range(pblk, want)?;
            self.model.claim(start, got);
            let before = mapping.leaves();
            mapping.push_extent(&mut self.model, lblk as u32, start, got as u32)?;
            self.log_extent_insert(ino, &before, &mapping.leaves());
            lblk += got;
            pblk = start + got;
            if pblk >= max {
                pblk = fdb;
            }
        }
        Ok(mapping)
    }

    /// The blocks of a block-mapped journal, allocated one logical block at
    /// a time as `ext2fs_bmap2(BMAP_ALLOC)` does.
    fn allocate_indirect_journal(&mut self, len: u64) -> Result<Mapping, MkfsError> {
        let goal = self.inode_goal(ext4_ondisk::ino::JOURNAL);
        let mut mapping = Mapping::new(crate::mapping::MapKind::Indirect, self.model.shape.block_size);
        let ino = ext4_ondisk::ino::JOURNAL;
        self.io.push(Io::ReadInode(ino));
        for lblk in 0..len {
            mapping.push_indirect(&mut self.model, lblk as u32, goal)?;
            self.io.append(&mut mapping.io);
            self.io.push(Io::WriteInode(ino));
        }
        Ok(mapping)
    }

    /// Creates the journal inode and its superblock.
    pub(crate) fn create_journal(&mut self, blocks: u32) -> Result<(), MkfsError> {
        let extents = has_incompat(&self.model.shape.features, Incompat::EXTENTS);
        let len = u64::from(blocks);
        let mapping = if extents {
            let goal = match self.params.journal_location {
                Some(l) => l,
                None => self.midpoint_journal_block(),
            };
            self.allocate_extent_journal(goal, len)?
        } else {
            self.allocate_indirect_journal(len)?
        };
        let runs = mapping.runs();
        // Extent-mapped journals are zeroed unless lazy; block-mapped ones
        // always are (the slow path of ext2fs_fallocate zeroes regardless).
        let zero = !extents || !(self.params.lazy_journal_init || self.params.assume_prezeroed);
        if zero {
            for &(_, p, n) in &runs {
                self.model.zero_ranges.push((p, n.into()));
            }
        }
        let first = runs.first().map(|r| r.1).ok_or(MkfsError::NoSpace { what: "the journal" })?;
        self.model.put_block(first, self.journal_superblock(blocks));
        self.io.push(Io::WriteInodeFull(ext4_ondisk::ino::JOURNAL));
        if let Some(&leaf) = mapping.leaves().first() {
            self.io.push(Io::ReadBlock(leaf));
        }
        self.io.push(Io::WriteBlock(first));

        let mut inode = self.new_inode_record(0o100600);
        inode.links_count = 1;
        self.set_file_size(&mut inode, len * self.model.shape.bs());
        let map_blocks = mapping.map_blocks();
        inode.blocks = (len + map_blocks.len() as u64) * (self.model.shape.bs() / 512);
        mapping.finish(self, ext4_ondisk::ino::JOURNAL, &mut inode)?;
        self.jnl_blocks = Some(jnl_backup(&inode));
        self.model.inodes.insert(ext4_ondisk::ino::JOURNAL, inode);
        self.journal = Some(JournalLayout { blocks, runs, map_blocks });
        Ok(())
    }

    /// The I/O of inserting one extent at the end of `ino`'s tree, given
    /// its leaf blocks before and after (a new one means a split).
    pub(crate) fn log_extent_insert(&mut self, ino: u32, before: &[u64], after: &[u64]) {
        if after.is_empty() {
            self.io.push(Io::WriteInode(ino));
            return;
        }
        if let Some(&new) = after.get(before.len()) {
            self.io.extend([Io::WriteBlock(new), Io::ReadInode(ino), Io::WriteBlock(new)]);
            match before.last() {
                Some(&old) => self.io.extend([Io::WriteBlock(old), Io::WriteInode(ino)]),
                None => self.io.push(Io::WriteInode(ino)),
            }
        }
        let leaf = *after.last().expect("a leaf");
        self.io.extend([Io::ReadBlock(leaf), Io::ReadInode(ino), Io::WriteBlock(leaf)]);
    }

    /// The jbd2 superblock block (`ext2fs_create_journal_superblock2`).
    fn journal_superblock(&self, blocks: u32) -> Vec<u8> {
        let mut jsb = JournalSuperblock::zeroed();
        jsb.s_header = Header::new(BlockType::SuperblockV2, 0);
        jsb.s_blocksize.set(self.model.shape.block_size);
        jsb.s_maxlen.set(blocks);
        jsb.s_nr_users.set(1);
        jsb.s_first.set(1);
        jsb.s_sequence.set(1);
        jsb.s_uuid = self.params.uuid;
        let mut block = vec![0u8; self.model.shape.block_size as usize];
        block[..ext4_jbd2::format::SUPERBLOCK_SIZE].copy_from_slice(jsb.as_bytes());
        block
    }
}

/// `s_jnl_blocks`: a copy of the journal inode's `i_block`, then
/// `i_size_high` and `i_size`.
fn jnl_backup(inode: &ext4_ondisk::Inode) -> [u32; 17] {
    let mut w = [0u32; 17];
    for (i, slot) in w.iter_mut().take(15).enumerate() {
        *slot = ext4_ondisk::get_u32(&inode.block, i * 4);
    }
    w[15] = (inode.size >> 32) as u32;
    w[16] = inode.size as u32;
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_sizes() {
        let check = |blocks, want| assert_eq!(default_journal_size(blocks), want, "{blocks}");
        check(2047, None);
        check(2048, Some(1024));
        check(65536, Some(4096));
        check(1 << 20, Some(16384));
        check(8 << 20, Some(65536));
        check(1 << 32, Some(262144));
    }
}

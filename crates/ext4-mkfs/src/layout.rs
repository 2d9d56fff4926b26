//! [`Layout`]: the plan of a format, for a dry run (`mke2fs -n`) and for
//! the report of a real one, with a `Display` that resembles mke2fs'
//! verbose summary.

use core::fmt;

use ext4_ondisk::GroupDescFlags;
use ext4_ondisk::features::FeatureWords;

use crate::build::Build;
use crate::error::Warning;
use crate::journal::JournalLayout;

/// Where one block group's metadata lies and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLayout {
    /// Group number.
    pub group: u32,
    /// First block.
    pub first_block: u64,
    /// Last block.
    pub last_block: u64,
    /// Superblock copy (the primary in group 0), if any.
    pub superblock: Option<u64>,
    /// Group descriptor copy: `(first block, blocks)`, if any.
    pub descriptors: Option<(u64, u64)>,
    /// Reserved GDT blocks: `(first block, blocks)`, if any.
    pub reserved_gdt: Option<(u64, u64)>,
    /// Block bitmap.
    pub block_bitmap: u64,
    /// Inode bitmap.
    pub inode_bitmap: u64,
    /// First inode table block.
    pub inode_table: u64,
    /// Free blocks.
    pub free_blocks: u64,
    /// Free inodes.
    pub free_inodes: u32,
    /// Directories.
    pub used_dirs: u32,
    /// Never-used inodes at the end of the table.
    pub itable_unused: u32,
    /// `bg_flags`.
    pub flags: GroupDescFlags,
}

/// The complete plan of a format.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Block size in bytes.
    pub block_size: u32,
    /// Blocks in the filesystem.
    pub blocks_count: u64,
    /// Blocks reserved for the superuser.
    pub reserved_blocks: u64,
    /// Free blocks after the format.
    pub free_blocks: u64,
    /// Inodes.
    pub inodes_count: u32,
    /// Free inodes after the format.
    pub free_inodes: u32,
    /// Inode size in bytes.
    pub inode_size: u32,
    /// First data block (1 with 1 KiB blocks, else 0).
    pub first_data_block: u64,
    /// Blocks per group.
    pub blocks_per_group: u32,
    /// Inodes per group.
    pub inodes_per_group: u32,
    /// Inode table blocks per group.
    pub inode_table_blocks: u32,
    /// Reserved GDT blocks.
    pub reserved_gdt_blocks: u32,
    /// Group descriptor size.
    pub desc_size: u32,
    /// Groups per flex group (0 without flex_bg).
    pub groups_per_flex: u32,
    /// Feature words.
    pub features: FeatureWords,
    /// Filesystem UUID.
    pub uuid: [u8; 16],
    /// Directory hash seed.
    pub hash_seed: [u8; 16],
    /// Volume label.
    pub label: String,
    /// RAID stride and stripe width.
    pub raid: (u32, u32),
    /// Byte offset of the filesystem on the device.
    pub offset: u64,
    /// The block groups.
    pub groups: Vec<GroupLayout>,
    /// The journal, if any.
    pub journal: Option<JournalLayout>,
    /// The orphan file's inode, if any.
    pub orphan_file_inode: Option<u32>,
    /// The MMP block, if any.
    pub mmp_block: Option<u64>,
    /// `s_overhead_clusters`.
    pub overhead_blocks: u64,
    /// Timestamp written everywhere.
    pub time: u32,
    /// Things mke2fs would warn about.
    pub warnings: Vec<Warning>,
}

impl Layout {
    /// The layout of a computed format.
    pub(crate) fn of(b: &Build) -> Layout {
        let s = &b.model.shape;
        let free = b.model.free_blocks_per_group();
        let groups = (0..s.group_count)
            .map(|g| {
                let m = s.group_meta(g);
                let gs = &b.model.groups[g as usize];
                let desc_n = u64::from(if m.new_desc_blk.is_some() { 1 } else { s.desc_blocks });
                GroupLayout {
                    group: g,
                    first_block: s.group_first(g),
                    last_block: s.group_last(g),
                    superblock: m.super_blk,
                    descriptors: m.old_desc_blk.map(|d| (d, desc_n)).or(m.new_desc_blk.map(|d| (d, 1))),
                    reserved_gdt: m
                        .old_desc_blk
                        .filter(|_| s.reserved_gdt_blocks > 0)
                        .map(|d| (d + u64::from(s.desc_blocks), u64::from(s.reserved_gdt_blocks))),
                    block_bitmap: gs.block_bitmap,
                    inode_bitmap: gs.inode_bitmap,
                    inode_table: gs.inode_table,
                    free_blocks: free[g as usize],
                    free_inodes: b.model.group_free_inodes(g),
                    used_dirs: gs.used_dirs,
                    itable_unused: gs.itable_unused,
                    flags: gs.flags,
                }
            })
            .collect();
        Layout {
            block_size: s.block_size,
            blocks_count: s.blocks_count,
            reserved_blocks: s.r_blocks_count,
            free_blocks: b.model.free_blocks(),
            inodes_count: s.inodes_count,
            free_inodes: s.inodes_count - b.model.inodes_used.len() as u32,
            inode_size: s.inode_size,
            first_data_block: s.first_data_block,
            blocks_per_group: s.blocks_per_group,
            inodes_per_group: s.inodes_per_group,
            inode_table_blocks: s.inode_blocks_per_group,
            reserved_gdt_blocks: s.reserved_gdt_blocks,
            desc_size: s.desc_size,
            groups_per_flex: s.flex_size(),
            features: s.features,
            uuid: b.params.uuid,
            hash_seed: b.params.hash_seed,
            label: String::from_utf8_lossy(&b.params.label).into_owned(),
            raid: (b.params.raid_stride, b.params.raid_stripe_width),
            offset: b.params.offset,
            groups,
            journal: b.journal.clone(),
            orphan_file_inode: (b.orphan_ino != 0).then_some(b.orphan_ino),
            mmp_block: (b.mmp_block != 0).then_some(b.mmp_block),
            overhead_blocks: b.overhead,
            time: b.params.time,
            warnings: b.warnings.clone(),
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let log = self.block_size.trailing_zeros() - 10;
        writeln!(f, "Filesystem label={}", self.label)?;
        writeln!(f, "OS type: Linux")?;
        writeln!(f, "Block size={} (log={log})", self.block_size)?;
        writeln!(f, "Fragment size={} (log={log})", self.block_size)?;
        writeln!(f, "Stride={} blocks, Stripe width={} blocks", self.raid.0, self.raid.1)?;
        writeln!(f, "{} inodes, {} blocks", self.inodes_count, self.blocks_count)?;
        let pct = 100.0 * self.reserved_blocks as f64 / self.blocks_count as f64;
        writeln!(f, "{} blocks ({pct:.2}%) reserved for the super user", self.reserved_blocks)?;
        writeln!(f, "First data block={}", self.first_data_block)?;
        if self.reserved_gdt_blocks > 0 {
            let per = u64::from(self.block_size / self.desc_size);
            let desc_blocks = (self.groups.len() as u64).div_ceil(per);
            let max = (u64::from(self.reserved_gdt_blocks) + desc_blocks) * per * u64::from(self.blocks_per_group);
            writeln!(f, "Maximum filesystem blocks={max}")?;
        }
        let n = self.groups.len();
        writeln!(f, "{n} block group{}", if n == 1 { "" } else { "s" })?;
        writeln!(f, "{} blocks per group, {} fragments per group", self.blocks_per_group, self.blocks_per_group)?;
        writeln!(f, "{} inodes per group", self.inodes_per_group)?;
        writeln!(f, "Filesystem UUID: {}", crate::parse::format_uuid(&self.uuid))?;
        let backups: Vec<String> =
            self.groups.iter().skip(1).filter_map(|g| g.superblock).map(|b| b.to_string()).collect();
        if !backups.is_empty() {
            writeln!(f, "Superblock backups stored on blocks:")?;
            for chunk in backups.chunks(8) {
                writeln!(f, "\t{}", chunk.join(", "))?;
            }
        }
        if let Some(j) = &self.journal {
            let where_ = j.runs.first().map_or(0, |r| r.1);
            writeln!(f, "Journal: {} blocks from block {where_} ({} runs)", j.blocks, j.runs.len())?;
        }
        for w in &self.warnings {
            writeln!(f, "Warning: {w}")?;
        }
        Ok(())
    }
}

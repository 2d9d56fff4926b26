//! What a dumpe2fs-style report shows, as stored on the device: the
//! superblock, each group's descriptor with the checksum it should carry,
//! its bitmaps (an uninitialized one as libext2fs reads it), the journal
//! superblock and the MMP block. Everything but the journal superblock is
//! read straight from the device, not through the journal or the cache,
//! as dumpe2fs reads it.

use ext4_jbd2::format::JournalSuperblock;
use ext4_ondisk::group_desc::{GroupDesc, group_desc_checksum};
use ext4_ondisk::mmp::MmpBlock;
use ext4_ondisk::superblock::Superblock;
use ext4_ondisk::{GroupDescFlags, Structure};

use crate::error::{Error, Location, Result};
use crate::fs::Filesystem;

/// One group as a report shows it.
#[derive(Debug, Clone)]
pub struct GroupReport {
    /// The group number.
    pub group: u32,
    /// The descriptor as stored.
    pub desc: GroupDesc,
    /// The descriptor checksum it should carry (0 without group checksums).
    pub expected_checksum: u16,
    /// The block (cluster) bitmap, `clusters_per_group` bits: as stored, or
    /// for a `BLOCK_UNINIT` group the group's own metadata only.
    pub block_bitmap: Vec<u8>,
    /// The inode bitmap, `inodes_per_group` bits: as stored, or empty
    /// (all zero) for an `INODE_UNINIT` group.
    pub inode_bitmap: Vec<u8>,
}

impl Filesystem {
    /// Opens the image or device at `path` read-only for a report: as
    /// [`Filesystem::open_path`], but incompatible features this library
    /// cannot read files with (`casefold`, `encrypt`, ...) do not refuse
    /// the open; the structures a report shows do not depend on them.
    pub fn open_for_report(path: impl AsRef<std::path::Path>) -> Result<Self> {
        Self::open_device_for_report(ext4_blockdev::FileDevice::open(path, true)?)
    }

    /// [`Filesystem::open_for_report`] on a device (a partition, ...).
    pub fn open_device_for_report(dev: impl ext4_blockdev::BlockDevice + 'static) -> Result<Self> {
        Self::open_with(Box::new(dev), None, crate::OpenOptions::read_only(), crate::journal::JournalOpen::Inspect)
    }

    /// The primary superblock as stored on the device.
    pub fn stored_superblock(&self) -> Result<Superblock> {
        crate::fs::read_superblock(&*self.dev).map(|(sb, _)| sb)
    }

    /// Every group descriptor as stored on the device, with the checksum
    /// each should carry.
    pub fn stored_group_descs(&self) -> Result<Vec<(GroupDesc, u16)>> {
        let geo = &self.geo;
        let ds = geo.desc_size as usize;
        let mut out = Vec::with_capacity(geo.group_count as usize);
        let mut block = vec![0u8; self.block_size()];
        let mut loaded = None;
        for g in 0..geo.group_count {
            let b = geo.group_desc_block(g);
            if loaded != Some(b) {
                self.read_device_block(b, &mut block)?;
                loaded = Some(b);
            }
            let off = (g % geo.descs_per_block) as usize * ds;
            let raw = &block[off..off + ds];
            let gd = GroupDesc::parse(raw, ds).map_err(|e| Error::format(&e, Location::Group(g)))?;
            out.push((gd, group_desc_checksum(geo, g, raw)));
        }
        Ok(out)
    }

    /// Calls `f` with every group's report, in group order; stops at the
    /// first error (the library's, or one `f` returns).
    pub fn for_each_group_report<E: From<Error>>(&self, mut f: impl FnMut(GroupReport) -> Result<(), E>) -> Result<(), E> {
        let descs = self.stored_group_descs()?;
        let marks = self.uninit_marks(&descs);
        for (g, (desc, expected)) in descs.into_iter().enumerate() {
            let g = g as u32;
            let csum_ok = self.geo.has_group_csum() && desc.checksum == expected;
            let mut block_bitmap = self.report_bitmap(&desc, desc.block_bitmap, GroupDescFlags::BLOCK_UNINIT, csum_ok, true)?;
            for &bit in marks.get(&g).into_iter().flatten() {
                block_bitmap[bit as usize / 8] |= 1 << (bit % 8);
            }
            let inode_bitmap = self.report_bitmap(&desc, desc.inode_bitmap, GroupDescFlags::INODE_UNINIT, csum_ok, false)?;
            f(GroupReport { group: g, desc, expected_checksum: expected, block_bitmap, inode_bitmap })?;
        }
        Ok(())
    }

    /// A bitmap as libext2fs reads it: zeros when the group is flagged
    /// uninitialized under a valid checksum or the bitmap lies past the end.
    fn report_bitmap(&self, desc: &GroupDesc, at: u64, uninit: GroupDescFlags, csum_ok: bool, blocks: bool) -> Result<Vec<u8>> {
        let bits = if blocks { self.geo.clusters_per_group } else { self.geo.inodes_per_group };
        let n = bits as usize / 8;
        if (csum_ok && desc.flags.contains(uninit)) || at >= self.geo.blocks_count {
            return Ok(vec![0; n]);
        }
        let mut block = vec![0u8; self.block_size()];
        self.read_device_block(at, &mut block)?;
        block.truncate(n);
        Ok(block)
    }

    /// The bits libext2fs sets for `BLOCK_UNINIT` groups after reading the
    /// bitmaps (`mark_uninit_bg_group_blocks`): each such group's
    /// superblock and descriptor copies, inode table and bitmaps, wherever
    /// they lie; by group, as bit numbers within that group's bitmap.
    fn uninit_marks(&self, descs: &[(GroupDesc, u16)]) -> std::collections::BTreeMap<u32, Vec<u32>> {
        let geo = &self.geo;
        let mut marks: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
        let mut mark = |b: u64| {
            if b >= geo.blocks_count {
                return;
            }
            let first_cluster = u64::from(geo.first_data_block) / u64::from(geo.cluster_ratio);
            let rel = (b / u64::from(geo.cluster_ratio)).saturating_sub(first_cluster);
            let cpg = u64::from(geo.clusters_per_group);
            marks.entry((rel / cpg) as u32).or_default().push((rel % cpg) as u32);
        };
        for (g, (d, _)) in descs.iter().enumerate().filter(|(_, (d, _))| d.flags.contains(GroupDescFlags::BLOCK_UNINIT)) {
            let l = geo.group_layout(g as u32);
            if let Some(s) = l.super_blk.or((g == 0).then_some(0)) {
                mark(s);
            }
            if g == 0 && geo.block_size == 1024 && geo.cluster_ratio > 1 {
                mark(0);
            }
            if let Some(d) = l.old_desc_blk {
                let n = if geo.meta_bg() { geo.first_meta_bg } else { geo.gdt_blocks() + geo.reserved_gdt_blocks };
                (d..(d + u64::from(n)).min(geo.blocks_count)).for_each(&mut mark);
            }
            l.new_desc_blk.into_iter().for_each(&mut mark);
            if d.inode_table != 0 {
                (d.inode_table..d.inode_table + u64::from(geo.inode_table_blocks)).for_each(&mut mark);
            }
            [d.block_bitmap, d.inode_bitmap].into_iter().filter(|&b| b != 0).for_each(&mut mark);
        }
        marks
    }

    /// The journal superblock of an internal journal, if the filesystem has one.
    pub fn journal_superblock(&self) -> Result<Option<JournalSuperblock>> {
        let runs = self.journal.runs();
        if runs.is_empty() {
            return Ok(None);
        }
        let bs = self.geo.block_size;
        let mut io = ext4_jbd2::DeviceJournal::new(&*self.dev, bs, runs).map_err(crate::journal::journal_error)?;
        ext4_jbd2::read_superblock(&mut io, bs).map(Some).map_err(crate::journal::journal_error)
    }

    /// The MMP block of an `mmp` filesystem, checked as `ext2fs_mmp_read`
    /// checks it (magic, and checksum with `metadata_csum`).
    pub fn mmp_block(&self) -> Result<Option<MmpBlock>> {
        let block = self.sb.s_mmp_block.get();
        if !self.geo.features.incompat.contains(ext4_ondisk::Incompat::MMP) || block == 0 {
            return Ok(None);
        }
        if block >= self.geo.blocks_count {
            return Err(Error::corrupt(Structure::Mmp, Location::Superblock, format!("s_mmp_block {block} is outside the filesystem")));
        }
        let mut buf = vec![0u8; self.block_size()];
        self.read_device_block(block, &mut buf)?;
        let seed = self.geo.metadata_csum().then_some(self.geo.csum_seed);
        MmpBlock::parse(&buf, seed).map(Some).map_err(|e| Error::format(&e, Location::Block(block)))
    }

    /// Reads device block `b` as stored, bypassing the cache and the journal.
    fn read_device_block(&self, b: u64, buf: &mut [u8]) -> Result<()> {
        if b >= self.geo.blocks_count {
            return Err(Error::corrupt(Structure::Superblock, Location::Block(b), "block number beyond the end of the filesystem"));
        }
        self.dev.read_at(b * u64::from(self.geo.block_size), buf)?;
        Ok(())
    }
}

//! The filesystem as a check sees it: the device (with the repairs not yet
//! committed laid over it), the superblock and group descriptors in use,
//! and the layout arithmetic of e2fsprogs (where the superblock copies,
//! descriptors and tables of each group are).

use std::cell::RefCell;
use std::collections::BTreeMap;

use ext4_blockdev::BlockDevice;
use ext4_ondisk::features::{Compat, Incompat, RoCompat};
use ext4_ondisk::group_desc::GroupDesc;
use ext4_ondisk::superblock::{Geometry, Superblock};

use crate::error::Result;

/// The device, read by block, with pending repairs overlaid.
pub(crate) struct Image<'d> {
    dev: &'d dyn BlockDevice,
    block_size: u32,
    /// Blocks changed by repairs and not yet committed, by byte offset
    /// (each `block_size` long; the block size is fixed before the first
    /// write).
    pending: BTreeMap<u64, Box<[u8]>>,
    /// The inode table block read last, by block number: the passes after
    /// pass 1 read inodes one at a time, mostly in table order.
    last_itable: RefCell<Option<(u64, Box<[u8]>)>>,
}

impl<'d> Image<'d> {
    /// Reads `dev` in blocks of `block_size` bytes.
    pub(crate) fn new(dev: &'d dyn BlockDevice, block_size: u32) -> Self {
        Self { dev, block_size, pending: BTreeMap::new(), last_itable: RefCell::new(None) }
    }

    /// Copies `len` bytes at `off` of inode table block `blk` into a new
    /// vector, through a one-block cache; `None` past the end of the device.
    pub(crate) fn itable_bytes(&self, blk: u64, off: usize, len: usize) -> Result<Option<Vec<u8>>> {
        let mut last = self.last_itable.borrow_mut();
        if last.as_ref().is_none_or(|(b, _)| *b != blk) {
            let Some(data) = self.block(blk)? else { return Ok(None) };
            *last = Some((blk, data.into()));
        }
        Ok(last.as_ref().map(|(_, d)| d[off..off + len].to_vec()))
    }

    /// The device.
    pub(crate) fn device(&self) -> &'d dyn BlockDevice {
        self.dev
    }

    /// Device length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.dev.len()
    }

    /// Reads `buf.len()` bytes at byte `offset`, pending repairs included;
    /// `Ok(false)` when they lie beyond the end of the device (a short read).
    pub(crate) fn read_bytes(&self, offset: u64, buf: &mut [u8]) -> Result<bool> {
        let end = match offset.checked_add(buf.len() as u64) {
            Some(end) if end <= self.dev.len() => end,
            _ => return Ok(false),
        };
        self.dev.read_at(offset, buf)?;
        if let Some(len) = self.pending.values().next().map(|b| b.len() as u64) {
            for (&at, data) in self.pending.range(offset.saturating_sub(len - 1)..end) {
                let (from, to) = (at.max(offset), (at + len).min(end));
                if from < to {
                    buf[(from - offset) as usize..(to - offset) as usize].copy_from_slice(&data[(from - at) as usize..(to - at) as usize]);
                }
            }
        }
        Ok(true)
    }

    /// Reads block `blk` into `buf` (one block); `Ok(false)` past the end of the device.
    pub(crate) fn read(&self, blk: u64, buf: &mut [u8]) -> Result<bool> {
        let Some(off) = blk.checked_mul(u64::from(self.block_size)) else { return Ok(false) };
        if let Some(p) = self.pending.get(&off) {
            buf.copy_from_slice(p);
            return Ok(true);
        }
        self.read_bytes(off, buf)
    }

    /// Reads block `blk` into a new buffer; `None` past the end of the device.
    pub(crate) fn block(&self, blk: u64) -> Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; self.block_size as usize];
        Ok(self.read(blk, &mut buf)?.then_some(buf))
    }

    /// Reads in blocks of `block_size` bytes from now on (before any write).
    pub(crate) fn set_block_size(&mut self, block_size: u32) {
        debug_assert!(self.pending.is_empty() || block_size == self.block_size);
        self.last_itable.replace(None);
        self.block_size = block_size;
    }

    /// Replaces block `blk` (one block of data) until the repairs are
    /// committed; `false` when it lies beyond the end of the device.
    pub(crate) fn write(&mut self, blk: u64, data: &[u8]) -> bool {
        let bs = u64::from(self.block_size);
        debug_assert_eq!(data.len() as u64, bs);
        match blk.checked_mul(bs) {
            Some(off) if off + bs <= self.dev.len() => {
                self.last_itable.replace(None);
                self.pending.insert(off, data.into());
                true
            }
            _ => false,
        }
    }

    /// The pending blocks: (block number, data), in block order.
    pub(crate) fn pending(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        let bs = u64::from(self.block_size);
        self.pending.iter().map(move |(&off, d)| (off / bs, &d[..]))
    }

    /// A copy of the pending blocks, to go back to with [`Image::restore`].
    pub(crate) fn snapshot(&self) -> BTreeMap<u64, Box<[u8]>> {
        self.pending.clone()
    }

    /// Drops the pending blocks written since `snap` was taken.
    pub(crate) fn restore(&mut self, snap: BTreeMap<u64, Box<[u8]>>) {
        self.last_itable.replace(None);
        self.pending = snap;
    }

    /// Forgets every pending block (after they are committed).
    pub(crate) fn clear_pending(&mut self) {
        self.last_itable.replace(None);
        self.pending.clear();
    }

    /// Number of pending blocks.
    pub(crate) fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Block size in bytes.
    pub(crate) fn block_size(&self) -> u32 {
        self.block_size
    }
}

/// Where a group's superblock copy and descriptor blocks are
/// (`ext2fs_super_and_bgd_loc2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct GroupMeta {
    /// The superblock copy, 0 if none (group 0 always has one, at block 0 or 1).
    pub super_blk: u64,
    /// The first descriptor block of the contiguous (non-`meta_bg`) copy, 0 if none.
    pub old_desc_blk: u64,
    /// The `meta_bg` descriptor block, 0 if none.
    pub new_desc_blk: u64,
    /// Blocks these take.
    pub used: u64,
}

/// The superblock in use and the layout arithmetic that follows from it.
#[derive(Clone)]
pub(crate) struct Layout {
    /// The superblock in use (the primary, or a backup).
    pub sb: Superblock,
    /// Numbers derived from it (not all validated: see `open`).
    pub geo: Geometry,
    /// Blocks of group descriptors (`fs->desc_blocks`).
    pub desc_blocks: u64,
}

/// The filesystem being checked.
pub(crate) struct Fs<'d> {
    /// The device.
    pub img: Image<'d>,
    /// The superblock and layout.
    pub layout: Layout,
    /// The group descriptors in use.
    pub groups: Vec<GroupDesc>,
    /// Whether each descriptor's checksum matched when read.
    pub desc_csum_ok: Vec<bool>,
    /// The block number of the backup superblock in use, if the primary was unusable.
    pub backup_sb: Option<u64>,
}

impl core::ops::Deref for Fs<'_> {
    type Target = Layout;
    fn deref(&self) -> &Layout {
        &self.layout
    }
}

impl core::ops::DerefMut for Fs<'_> {
    fn deref_mut(&mut self) -> &mut Layout {
        &mut self.layout
    }
}

impl Layout {
    /// Block size in bytes.
    pub fn bs(&self) -> u32 {
        self.geo.block_size
    }

    /// Blocks in the filesystem.
    pub fn blocks_count(&self) -> u64 {
        self.geo.blocks_count
    }

    /// Inodes in the filesystem.
    pub fn inodes_count(&self) -> u32 {
        self.sb.s_inodes_count.get()
    }

    /// First block that may hold data (`s_first_data_block`).
    pub fn first_data_block(&self) -> u64 {
        u64::from(self.geo.first_data_block)
    }

    /// Whether block `b` is inside the filesystem (`first_data_block <= b < blocks_count`).
    pub fn block_ok(&self, b: u64) -> bool {
        b >= self.first_data_block() && b < self.blocks_count()
    }

    /// First non-reserved inode.
    pub fn first_ino(&self) -> u32 {
        self.geo.first_ino
    }

    /// Whether a compat feature is set.
    pub fn compat(&self, f: Compat) -> bool {
        Compat::from_bits_retain(self.sb.s_feature_compat.get()).contains(f)
    }

    /// Whether an incompat feature is set.
    pub fn incompat(&self, f: Incompat) -> bool {
        Incompat::from_bits_retain(self.sb.s_feature_incompat.get()).contains(f)
    }

    /// Whether a ro-compat feature is set.
    pub fn ro_compat(&self, f: RoCompat) -> bool {
        RoCompat::from_bits_retain(self.sb.s_feature_ro_compat.get()).contains(f)
    }

    /// Whether `metadata_csum` is on.
    pub fn csum(&self) -> bool {
        self.ro_compat(RoCompat::METADATA_CSUM)
    }

    /// Whether group descriptors carry checksums (`ext2fs_has_group_desc_csum`).
    pub fn group_csum(&self) -> bool {
        self.csum() || self.ro_compat(RoCompat::GDT_CSUM)
    }

    /// The seed of `metadata_csum` checksums.
    pub fn csum_seed(&self) -> u32 {
        self.geo.csum_seed
    }

    /// Blocks per cluster.
    pub fn ratio(&self) -> u64 {
        u64::from(self.geo.cluster_ratio)
    }

    /// Bytes per cluster.
    pub fn cluster_size(&self) -> u64 {
        u64::from(self.bs()) * self.ratio()
    }

    /// The cluster holding block `b`.
    pub fn b2c(&self, b: u64) -> u64 {
        b / self.ratio()
    }

    /// First block of group `g`.
    pub fn group_first_block(&self, g: u32) -> u64 {
        self.geo.group_first_block(g)
    }

    /// Last block of group `g`.
    pub fn group_last_block(&self, g: u32) -> u64 {
        if g + 1 == self.geo.group_count {
            self.blocks_count() - 1
        } else {
            self.group_first_block(g) + u64::from(self.geo.blocks_per_group) - 1
        }
    }

    /// Blocks of inode table per group.
    pub fn itable_blocks(&self) -> u64 {
        u64::from(self.geo.inode_table_blocks)
    }

    /// Whether group `g` has a superblock copy (`ext2fs_bg_has_super`).
    pub fn has_super(&self, g: u32) -> bool {
        self.geo.group_has_super(g)
    }

    /// Descriptor blocks in the contiguous copy after each superblock.
    fn old_desc_blocks(&self) -> u64 {
        if self.incompat(Incompat::META_BG) {
            u64::from(self.sb.s_first_meta_bg.get())
        } else {
            self.desc_blocks + u64::from(self.sb.s_reserved_gdt_blocks.get())
        }
    }

    /// Where group `g`'s superblock copy and descriptors are.
    pub fn group_meta(&self, g: u32) -> GroupMeta {
        let mut group_block = self.group_first_block(g);
        if group_block == 0 && self.bs() == 1024 {
            group_block = 1;
        }
        let has_super = self.has_super(g);
        let mut m = GroupMeta::default();
        if has_super {
            m.super_blk = group_block;
            m.used += 1;
        }
        let per = u64::from(self.geo.descs_per_block);
        let meta_bg = u64::from(g) / per;
        if !self.incompat(Incompat::META_BG) || meta_bg < u64::from(self.sb.s_first_meta_bg.get()) {
            if has_super {
                m.old_desc_blk = group_block + 1;
                m.used += self.old_desc_blocks();
            }
        } else {
            let r = u64::from(g) % per;
            if r == 0 || r == 1 || r == per - 1 {
                m.new_desc_blk = group_block + u64::from(has_super);
                m.used += 1;
            }
        }
        m
    }

    /// Calls `f(start, count)` for the runs of blocks group `g`'s superblock
    /// copy and descriptors take (`ext2fs_reserve_super_and_bgd`).
    pub fn super_and_bgd_runs(&self, g: u32, mut f: impl FnMut(u64, u64)) {
        let m = self.group_meta(g);
        if m.super_blk != 0 || g == 0 {
            f(m.super_blk, 1);
        }
        if g == 0 && self.bs() == 1024 && self.ratio() > 1 {
            f(0, 1);
        }
        if m.old_desc_blk != 0 {
            let mut n = self.old_desc_blocks();
            if m.old_desc_blk + n >= self.blocks_count() {
                n = self.blocks_count().saturating_sub(m.old_desc_blk);
            }
            if n > 0 {
                f(m.old_desc_blk, n);
            }
        }
        if m.new_desc_blk != 0 {
            f(m.new_desc_blk, 1);
        }
    }

    /// The block holding descriptor block `i` of the primary copy (as
    /// `ext2fs_open2` reads it).
    pub fn primary_desc_block(&self, i: u64) -> u64 {
        let fdb = self.first_data_block();
        let zero_adjust = u64::from(self.bs() == 1024 && fdb == 0);
        let first_meta_bg = if self.incompat(Incompat::META_BG) {
            u64::from(self.sb.s_first_meta_bg.get()).min(self.desc_blocks)
        } else {
            self.desc_blocks
        };
        if i < first_meta_bg { fdb + zero_adjust + 1 + i } else { self.descriptor_block(fdb, i) }
    }

    /// The block holding descriptor block `i` of the copy whose superblock is
    /// at `group_block` (`ext2fs_descriptor_block_loc2`).
    pub fn descriptor_block(&self, group_block: u64, i: u64) -> u64 {
        let zero_adjust = u64::from(i == 0 && self.bs() == 1024 && self.ratio() > 1);
        if !self.incompat(Incompat::META_BG) || i < u64::from(self.sb.s_first_meta_bg.get()) {
            return group_block + i + 1 + zero_adjust;
        }
        let bg = (u64::from(self.geo.descs_per_block) * i).min(u64::from(u32::MAX)) as u32;
        let mut has_super = u64::from(self.has_super(bg));
        let mut ret = self.group_first_block(bg);
        let bpg = u64::from(self.geo.blocks_per_group);
        if group_block != self.first_data_block() && ret + has_super + bpg < self.blocks_count() {
            ret += bpg;
            has_super = u64::from(self.has_super(bg.saturating_add(1)));
        }
        ret + has_super + zero_adjust
    }
}

impl Fs<'_> {
    /// Where inode `ino`'s record is: (block, byte offset), if its group's
    /// inode table is set.
    pub fn inode_loc(&self, ino: u32) -> Option<(u64, usize)> {
        if ino == 0 || ino > self.inodes_count() {
            return None;
        }
        let (g, idx) = self.geo.inode_group(ino);
        let table = self.groups.get(g as usize)?.inode_table;
        if table == 0 {
            return None;
        }
        let off = u64::from(idx) * u64::from(self.geo.inode_size);
        Some((table + off / u64::from(self.bs()), (off % u64::from(self.bs())) as usize))
    }

    /// Reads inode `ino`'s raw record (`inode_size` bytes); `None` if it cannot be located or read.
    pub fn read_inode_raw(&self, ino: u32) -> Result<Option<Vec<u8>>> {
        let Some((blk, off)) = self.inode_loc(ino) else { return Ok(None) };
        if blk >= self.blocks_count() {
            return Ok(None);
        }
        self.img.itable_bytes(blk, off, self.geo.inode_size as usize)
    }
}

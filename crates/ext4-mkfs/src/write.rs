//! Writing a computed format to a device, in an order that leaves no valid
//! superblock until the very end: zap the old superblock, discard and
//! zero what must read as zeros, write metadata and contents, bitmaps,
//! backups and descriptors, and only then the primary superblock.

use std::ops::ControlFlow;

use ext4_blockdev::{BlockDevice, IO_ALIGN, IoBuf};
use ext4_ondisk::Geometry;
use ext4_ondisk::superblock::{SUPERBLOCK_OFFSET, Superblock};
use zerocopy::IntoBytes;

use crate::MkfsError;
use crate::build::Build;
use crate::superblock::backup_superblock;

/// The stages of a format, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Discarding the device.
    Discard,
    /// Zeroing inode tables, the journal and the end of the device.
    Zeroing,
    /// Writing inodes, directories, the journal superblock, map blocks.
    Contents,
    /// Writing block and inode bitmaps.
    Bitmaps,
    /// Writing backup superblocks and group descriptor tables.
    Descriptors,
    /// Writing the primary superblock: the filesystem becomes valid.
    Superblock,
}

/// What [`crate::format`] reports to its progress callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The current stage.
    pub phase: Phase,
    /// Bytes written or zeroed so far.
    pub bytes_done: u64,
    /// Bytes the whole format writes or zeroes.
    pub bytes_total: u64,
}

/// The writer: a device, the filesystem's byte offset on it and progress.
struct Writer<'a> {
    dev: &'a dyn BlockDevice,
    offset: u64,
    bs: u64,
    done: u64,
    total: u64,
    progress: &'a mut dyn FnMut(Progress) -> ControlFlow<()>,
    /// Where blocks from unaligned buffers are copied before being written.
    scratch: IoBuf,
}

/// The largest zeroing request made at once, so that progress moves.
const ZERO_CHUNK: u64 = 256 << 20;

/// The most bytes of adjacent blocks written at once.
const BATCH: usize = 64 << 10;

impl Writer<'_> {
    fn report(&mut self, phase: Phase) -> Result<(), MkfsError> {
        let p = Progress { phase, bytes_done: self.done.min(self.total), bytes_total: self.total };
        match (self.progress)(p) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(MkfsError::Cancelled),
        }
    }

    fn write_block(&mut self, block: u64, data: &[u8]) -> Result<(), MkfsError> {
        self.write_bytes(self.offset + block * self.bs, data)
    }

    /// Writes from a page-aligned buffer, copying `data` into one if it is
    /// not (see [`IoBuf`]: the kernel's copy is slower from a misaligned one).
    fn write_bytes(&mut self, at: u64, data: &[u8]) -> Result<(), MkfsError> {
        if data.as_ptr() as usize % IO_ALIGN == 0 {
            self.dev.write_at(at, data)?;
        } else {
            self.scratch.clear();
            self.scratch.extend_from_slice(data);
            self.dev.write_at(at, &self.scratch)?;
        }
        self.done += data.len() as u64;
        Ok(())
    }

    fn zero_blocks(&mut self, start: u64, count: u64) -> Result<(), MkfsError> {
        let mut at = start * self.bs;
        let mut left = count * self.bs;
        while left > 0 {
            let n = left.min(ZERO_CHUNK);
            self.dev.write_zeroes(self.offset + at, n)?;
            self.done += n;
            at += n;
            left -= n;
            if left > 0 {
                self.report(Phase::Zeroing)?;
            }
        }
        Ok(())
    }
}

/// Erases the old primary superblock (`zap_sector(2, 6)`: bytes 1024 to
/// 4096), so that the device holds no valid filesystem until the end.
pub(crate) fn zap_superblock(dev: &dyn BlockDevice, offset: u64) -> Result<(), MkfsError> {
    dev.write_at(offset + 1024, &[0u8; 3072])?;
    Ok(())
}

/// Bytes written as data blocks (everything but zeroing).
fn content_blocks(b: &Build) -> u64 {
    b.model.blocks.len() as u64 + b.inode_table_blocks().len() as u64
}

/// Writes the whole format.
pub(crate) fn write(
    dev: &dyn BlockDevice,
    b: &Build,
    discarded: bool,
    progress: &mut dyn FnMut(Progress) -> ControlFlow<()>,
) -> Result<(), MkfsError> {
    let s = &b.model.shape;
    let bs = s.bs();
    let zero_total: u64 = b.model.zero_ranges.iter().map(|&(_, n)| n * bs).sum();
    let groups = u64::from(s.group_count);
    let total = 3072 + zero_total + (content_blocks(b) + 2 * groups + u64::from(s.desc_blocks)) * bs + 1024;
    let mut w = Writer { dev, offset: b.params.offset, bs, done: 0, total, progress, scratch: IoBuf::new() };

    // The old superblock is already gone (zap_superblock).
    w.done += 3072;
    if !b.bsd_label {
        // mke2fs also erases the boot sector (zap_sector(0, 2)).
        dev.write_at(b.params.offset, &[0u8; 1024])?;
    }
    w.report(if discarded { Phase::Discard } else { Phase::Zeroing })?;

    let mut zeros = b.model.zero_ranges.clone();
    zeros.sort_unstable();
    for (start, n) in zeros {
        w.zero_blocks(start, n)?;
    }
    w.report(Phase::Contents)?;

    // Blocks come in order; adjacent ones (the reserved GDT blocks, a
    // directory's blocks) go out in one write of up to BATCH bytes. Each is
    // stored without its trailing zeros and padded here.
    let mut batch = IoBuf::new();
    let mut batch_start = 0u64;
    for (&blk, data) in &b.model.blocks {
        let next = batch_start + batch.len() as u64 / bs;
        if !batch.is_empty() && (blk != next || batch.len() >= BATCH) {
            w.write_block(batch_start, &batch)?;
            batch.clear();
        }
        if batch.is_empty() {
            batch_start = blk;
        }
        batch.extend_from_slice(data);
        batch.resize(batch.len() + (bs as usize - data.len()));
    }
    if !batch.is_empty() {
        w.write_block(batch_start, &batch)?;
    }
    for (blk, bytes) in b.inode_table_blocks() {
        w.write_block(blk, &bytes)?;
    }
    if b.mmp_block != 0 {
        w.write_block(b.mmp_block, &b.mmp_block_bytes())?;
    }
    w.report(Phase::Bitmaps)?;

    let mut csums = Vec::with_capacity(s.group_count as usize);
    for g in 0..s.group_count {
        let gs = &b.model.groups[g as usize];
        let bb = b.writes_block_bitmap(g).then(|| b.block_bitmap(g));
        let ib = b.writes_inode_bitmap(g).then(|| b.inode_bitmap(g));
        if let Some(bytes) = &bb {
            w.write_block(gs.block_bitmap, bytes)?;
        }
        if let Some(bytes) = &ib {
            w.write_block(gs.inode_bitmap, bytes)?;
        }
        csums.push(b.bitmap_checksums(bb.as_deref(), ib.as_deref()));
        if g % 4096 == 4095 {
            w.report(Phase::Bitmaps)?;
        }
    }
    w.report(Phase::Descriptors)?;

    let kbytes = b.kbytes_written();
    let mut primary = b.superblock(kbytes);
    primary.update_checksum();
    let geo = Geometry::new(&primary).map_err(|_| MkfsError::NoSpace { what: "a consistent superblock" })?;
    write_descriptors(&mut w, b, &geo, &primary, &csums)?;

    w.report(Phase::Superblock)?;
    dev.flush()?;
    dev.write_at(b.params.offset + SUPERBLOCK_OFFSET, primary.as_bytes())?;
    dev.flush()?;
    w.done += 1024;
    w.report(Phase::Superblock)?;
    Ok(())
}

/// Writes every group's backup superblock and descriptor copies, and the
/// primary descriptor table (`ext2fs_flush`).
fn write_descriptors(
    w: &mut Writer<'_>,
    b: &Build,
    geo: &Geometry,
    primary: &Superblock,
    csums: &[[u32; 2]],
) -> Result<(), MkfsError> {
    let s = &b.model.shape;
    let meta_bg = crate::features::has_incompat(&s.features, ext4_ondisk::Incompat::META_BG);
    let old_desc_blocks = if meta_bg { s.first_meta_bg.min(s.desc_blocks) } else { s.desc_blocks };
    let free = b.model.free_blocks_per_group();
    let table: Vec<Vec<u8>> = (0..s.desc_blocks).map(|i| b.gdt_block(geo, i, csums, &free)).collect();
    // The old-style copies are written in one request each, as mke2fs does.
    let mut old_copy = IoBuf::new();
    for block in table.iter().take(old_desc_blocks as usize) {
        old_copy.extend_from_slice(block);
    }
    for g in 0..s.group_count {
        let m = s.group_meta(g);
        if let (Some(sb_blk), true) = (m.super_blk, g > 0) {
            let copy = backup_superblock(primary, g);
            w.write_bytes(w.offset + sb_blk * w.bs, copy.as_bytes())?;
        }
        if let (Some(d), false) = (m.old_desc_blk, old_copy.is_empty()) {
            w.write_block(d, &old_copy)?;
        }
        if let Some(d) = m.new_desc_blk {
            let meta_group = g / s.descs_per_block();
            w.write_block(d, &table[meta_group as usize])?;
        }
        if g % 4096 == 4095 {
            w.report(Phase::Descriptors)?;
        }
    }
    Ok(())
}

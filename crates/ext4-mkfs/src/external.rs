//! External journals: the journal device `mke2fs -O journal_dev` makes
//! (`create_journal_dev`), and the device `mke2fs -J device=` hands a new
//! filesystem (`ext2fs_add_journal_device`).
//!
//! A journal device is an ext4 superblock with `journal_dev` and no groups
//! or inodes (what `ext2fs_initialize` leaves before it would lay groups
//! out), then a jbd2 superblock in the next block with no users and the
//! log after it; the whole device is zeroed first unless
//! `lazy_journal_init`.

use std::ops::ControlFlow;

use ext4_blockdev::BlockDevice;
use ext4_jbd2::format::{BlockType, Header, JournalSuperblock};
use ext4_ondisk::superblock::{EXT4_MAGIC, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, Superblock};
use ext4_ondisk::{Incompat, RoCompat};
use zerocopy::IntoBytes;

use crate::MkfsError;
use crate::features::{has_incompat, has_ro};
use crate::journal::JournalLayout;
use crate::layout::Layout;
use crate::resolve::Params;
use crate::write::{Phase, Progress};

/// `sizeof(struct ext2_inode_large)`: inodes at least this large get `s_min_extra_isize`.
const LARGE_INODE: u32 = 160;

/// The ext4 superblock of a journal device, as mke2fs closes it.
fn device_superblock(p: &Params) -> Superblock {
    let mut sb = Superblock::zeroed();
    crate::superblock::set_identity(&mut sb, p);
    sb.set_features(p.features);
    sb.set_blocks_count(p.blocks_count);
    sb.s_first_data_block.set(u32::from(p.block_size == 1024));
    sb.s_log_block_size.set(p.log_block_size);
    sb.s_log_cluster_size.set(p.log_block_size);
    sb.s_blocks_per_group.set(p.block_size * 8);
    sb.s_clusters_per_group.set(p.block_size * 8);
    let inode_size = if p.inode_size == 0 { 128 } else { p.inode_size };
    sb.s_inode_size.set(inode_size as u16);
    if inode_size >= LARGE_INODE {
        sb.s_min_extra_isize.set((LARGE_INODE - 128) as u16);
        sb.s_want_extra_isize.set((LARGE_INODE - 128) as u16);
    }
    if has_ro(&p.features, RoCompat::METADATA_CSUM) {
        sb.s_checksum_type = ext4_ondisk::superblock::CHECKSUM_TYPE_CRC32C;
        sb.s_kbytes_written.set(kbytes_written(p.block_size));
    }
    sb.update_checksum();
    sb
}

/// `s_kbytes_written` as mke2fs leaves it on a journal device: 1 (for
/// metadata_csum), the 3 KiB `zap_sector` writes over the old superblock,
/// and `ext2fs_close`'s estimate of the superblock and (zero) descriptor
/// blocks still to write; the journal superblock itself sits in the I/O
/// cache then, and zeroing goes through `fallocate`, which is not counted.
fn kbytes_written(block_size: u32) -> u64 {
    1 + 3 + 1 / u64::from(block_size / 1024)
}

/// The jbd2 superblock of a journal device (`ext2fs_create_journal_superblock2`
/// for `journal_dev`): the whole device, no users, the log after it.
fn journal_superblock(p: &Params) -> JournalSuperblock {
    let mut jsb = JournalSuperblock::zeroed();
    jsb.s_header = Header::new(BlockType::SuperblockV2, 0);
    jsb.s_blocksize.set(p.block_size);
    jsb.s_maxlen.set(p.blocks_count as u32);
    jsb.s_first.set(ext4_jbd2::superblock_block(p.block_size) as u32 + 1);
    jsb.s_sequence.set(1);
    jsb.s_uuid = p.uuid;
    jsb
}

/// Checks what a journal device can be (the log counts its blocks in 32 bits).
fn check(p: &Params) -> Result<(), MkfsError> {
    let sb_block = ext4_jbd2::superblock_block(p.block_size);
    if p.blocks_count > u64::from(u32::MAX) {
        return Err(MkfsError::TooLarge {
            blocks: p.blocks_count,
            block_size: p.block_size,
            reason: "a journal has at most 2^32 blocks",
        });
    }
    if p.blocks_count < sb_block + 2 {
        return Err(MkfsError::TooSmall {
            blocks: p.blocks_count,
            reason: "no room for a journal after its superblocks",
        });
    }
    Ok(())
}

/// The layout of a journal device, for the report and dry runs.
pub(crate) fn journal_device_layout(p: &Params) -> Result<Layout, MkfsError> {
    check(p)?;
    let sb_block = ext4_jbd2::superblock_block(p.block_size);
    let log = p.blocks_count - sb_block - 1;
    Ok(Layout {
        block_size: p.block_size,
        blocks_count: p.blocks_count,
        reserved_blocks: 0,
        free_blocks: 0,
        inodes_count: 0,
        free_inodes: 0,
        inode_size: if p.inode_size == 0 { 128 } else { p.inode_size },
        first_data_block: u64::from(p.block_size == 1024),
        blocks_per_group: p.block_size * 8,
        inodes_per_group: 0,
        inode_table_blocks: 0,
        reserved_gdt_blocks: 0,
        desc_size: 0,
        groups_per_flex: 0,
        features: p.features,
        uuid: p.uuid,
        hash_seed: p.hash_seed,
        label: String::from_utf8_lossy(&p.label).into_owned(),
        raid: (p.raid_stride, p.raid_stripe_width),
        offset: p.offset,
        groups: Vec::new(),
        journal: Some(JournalLayout {
            blocks: p.blocks_count as u32,
            runs: vec![(0, sb_block + 1, log as u32)],
            map_blocks: Vec::new(),
        }),
        orphan_file_inode: None,
        mmp_block: None,
        overhead_blocks: 0,
        time: p.time,
        warnings: p.warnings.clone(),
    })
}

/// Writes a journal device (`mke2fs -O journal_dev`): the old superblock
/// zapped, the device zeroed (unless `lazy_journal_init`), the jbd2
/// superblock, and last the ext4 superblock.
pub(crate) fn format_journal_device(
    dev: &dyn BlockDevice,
    p: &Params,
    progress: &mut dyn FnMut(Progress) -> ControlFlow<()>,
) -> Result<Layout, MkfsError> {
    let layout = journal_device_layout(p)?;
    let bs = u64::from(p.block_size);
    let bytes = p.blocks_count * bs;
    if p.offset.saturating_add(bytes) > dev.len() {
        return Err(MkfsError::DeviceTooSmall { need: bytes, offset: p.offset, have: dev.len() });
    }
    crate::write::zap_superblock(dev, p.offset)?;
    let mut report = |phase, done| match progress(Progress { phase, bytes_done: done, bytes_total: bytes }) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(MkfsError::Cancelled),
    };
    if !p.lazy_journal_init && !p.assume_prezeroed {
        report(Phase::Zeroing, 0)?;
        dev.write_zeroes(p.offset, bytes)?;
    }
    report(Phase::Contents, 0)?;
    let mut block = vec![0u8; bs as usize];
    block[..ext4_jbd2::format::SUPERBLOCK_SIZE].copy_from_slice(journal_superblock(p).as_bytes());
    dev.write_at(p.offset + ext4_jbd2::superblock_block(p.block_size) * bs, &block)?;
    report(Phase::Superblock, bytes)?;
    dev.write_at(p.offset + SUPERBLOCK_OFFSET, &device_superblock(p).as_bytes()[..SUPERBLOCK_SIZE])?;
    dev.flush()?;
    Ok(layout)
}

/// The external journal device of `-J device=`, as the new filesystem
/// names it.
#[derive(Debug, Clone)]
pub(crate) struct ExternalJournal {
    /// Its block size (the filesystem's, unless `-b` says otherwise and is refused).
    pub(crate) block_size: u32,
    /// Its UUID, for `s_journal_uuid`.
    pub(crate) uuid: [u8; 16],
    /// Its device number, for `s_journal_dev` (0 for an image file).
    pub(crate) rdev: u32,
    /// Its jbd2 superblock.
    jsb: JournalSuperblock,
    /// Its ext4 superblock as read.
    sb_raw: Vec<u8>,
}

/// Reads the journal device `dev` (named `path`, device number `rdev`) as
/// `ext2fs_add_journal_device` checks it: a `journal_dev` superblock and a
/// v2 jbd2 superblock of the same block size.
pub(crate) fn read_external_journal(
    dev: &dyn BlockDevice,
    path: &str,
    rdev: u32,
) -> Result<ExternalJournal, MkfsError> {
    let bad = |reason: &str| MkfsError::JournalDevice { path: path.to_string(), reason: reason.to_string() };
    let mut raw = vec![0u8; SUPERBLOCK_SIZE];
    dev.read_at(SUPERBLOCK_OFFSET, &mut raw)?;
    let sb = Superblock::from_bytes(&raw).map_err(|e| bad(&e.to_string()))?;
    if sb.s_magic.get() != EXT4_MAGIC || !has_incompat(&sb.features(), Incompat::JOURNAL_DEV) {
        return Err(bad("not an external journal device (make one with -O journal_dev)"));
    }
    let log = sb.s_log_block_size.get();
    if log > 6 {
        return Err(bad("its block size is above 64 KiB"));
    }
    let block_size = 1024u32 << log;
    let mut block = vec![0u8; block_size as usize];
    dev.read_at(ext4_jbd2::superblock_block(block_size) * u64::from(block_size), &mut block)?;
    let jsb = JournalSuperblock::from_bytes(&block).ok_or_else(|| bad("short journal superblock"))?;
    if jsb.s_header.h_magic.get() != ext4_jbd2::format::JBD2_MAGIC
        || jsb.s_header.block_type() != Some(BlockType::SuperblockV2)
    {
        return Err(bad("no v2 journal superblock"));
    }
    if jsb.s_blocksize.get() != block_size {
        return Err(bad("its journal superblock gives another block size"));
    }
    if jsb.s_nr_users.get() as usize > jsb.s_users.len() / 16 {
        return Err(bad("its journal superblock lists too many users"));
    }
    Ok(ExternalJournal { block_size, uuid: sb.s_uuid, rdev, jsb, sb_raw: raw })
}

/// Adds the filesystem `fs_uuid` to the users of the journal on `dev`
/// (unless it is one already), as `ext2fs_add_journal_device` does.
pub(crate) fn add_user(dev: &dyn BlockDevice, j: &ExternalJournal, fs_uuid: [u8; 16]) -> Result<(), MkfsError> {
    let mut jsb = j.jsb.clone();
    let n = jsb.s_nr_users.get() as usize;
    if !jsb.s_users.chunks_exact(16).take(n).any(|u| u == fs_uuid) {
        if n * 16 >= jsb.s_users.len() {
            return Err(MkfsError::JournalDevice {
                path: String::new(),
                reason: "the journal has the most users it can list".into(),
            });
        }
        jsb.s_users[n * 16..n * 16 + 16].copy_from_slice(&fs_uuid);
        jsb.s_nr_users.set(n as u32 + 1);
        // mke2fs leaves a checksum stale; the kernel would refuse it.
        jsb.update_checksum();
    }
    let bs = u64::from(j.block_size);
    let at = ext4_jbd2::superblock_block(j.block_size) * bs;
    dev.write_at(at, jsb.as_bytes())?;
    // mke2fs closes the device it opened read-write: `ext2fs_close` counts
    // the 1 KiB it wrote and its estimate of the superblock to come in
    // `s_kbytes_written` (when counting), and writes the superblock.
    let mut sb = Superblock::from_bytes(&j.sb_raw)
        .map_err(|e| MkfsError::JournalDevice { path: String::new(), reason: e.to_string() })?;
    let kbytes = sb.s_kbytes_written.get();
    if kbytes != 0 {
        sb.s_kbytes_written.set(kbytes + 1 + 1 / (bs / 1024));
        sb.update_checksum();
        dev.write_at(SUPERBLOCK_OFFSET, &sb.as_bytes()[..SUPERBLOCK_SIZE])?;
    }
    dev.flush()?;
    Ok(())
}

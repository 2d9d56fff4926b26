//! Committing repairs, and replaying the journal before them.
//!
//! Repairs collect in the image's pending blocks; nothing reaches the
//! device until the rounds are over. Then, when the filesystem has an
//! internal journal that is empty, readable, untouched by the repairs and
//! large enough, every pending block goes into one jbd2 transaction:
//!
//! 1. the superblock on the device gets `needs_recovery` (flush);
//! 2. the transaction is written and committed (the journal writer
//!    flushes before and after the commit block);
//! 3. the blocks are written home (flush), the superblock still with
//!    `needs_recovery`;
//! 4. the journal is emptied (flush);
//! 5. the superblock is written without `needs_recovery` (flush).
//!
//! A crash before the commit block is durable leaves the filesystem as it
//! was (plus a `needs_recovery` flag over an empty or uncommitted log,
//! which recovery clears); after it, recovery replays the whole repair. So
//! every crash recovers to the filesystem before or after the repair.
//! Without a usable journal the blocks are written in place, as e2fsck
//! does (a crash then can leave part of the repair).

use ext4_blockdev::BlockDevice;
use ext4_jbd2::{CommitTime, DeviceJournal, JournalRun, JournalWriter};
use ext4_ondisk::Superblock;
use ext4_ondisk::features::{Compat, Incompat};
use ext4_ondisk::inode::raw as iraw;

use crate::error::Result;
use crate::fs::{Fs, Image};

/// Byte offset and size of the primary superblock.
const SB_OFFSET: u64 = 1024;
const SB_SIZE: usize = 1024;

/// How the repairs were written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Committed {
    /// In one journal transaction, then home.
    Journaled,
    /// In place (no usable journal); the reason.
    InPlace(&'static str),
}

/// The journal inode's blocks as runs, if the filesystem has an internal
/// journal whose map can be read whole.
fn journal_runs(fs: &Fs<'_>) -> Result<Option<(u32, Vec<JournalRun>)>> {
    if !fs.compat(Compat::HAS_JOURNAL) || fs.incompat(Incompat::JOURNAL_DEV) || fs.sb.s_journal_uuid != [0; 16] {
        return Ok(None);
    }
    let ino = fs.sb.s_journal_inum.get();
    let Some(raw) = fs.read_inode_raw(ino)? else { return Ok(None) };
    if !crate::pass1::inode_csum_ok(fs, ino, &raw) {
        return Ok(None);
    }
    let Ok(inode) = iraw::parse_lenient(&raw) else { return Ok(None) };
    let blocks = inode.size / u64::from(fs.bs());
    if blocks == 0 || blocks > 1 << 24 {
        return Ok(None);
    }
    let mut runs: Vec<JournalRun> = Vec::new();
    for l in 0..blocks {
        let Ok(Some(p)) = crate::bmap::bmap(fs, ino, &inode, l, true)? else { return Ok(None) };
        if !fs.block_ok(p) {
            return Ok(None);
        }
        match runs.last_mut() {
            Some(r) if r.jblock + r.len == l && r.device_block + r.len == p => r.len += 1,
            _ => runs.push(JournalRun { jblock: l, device_block: p, len: 1 }),
        }
    }
    Ok(Some((ino, runs)))
}

/// Reads the primary superblock's bytes as the device holds them.
fn device_sb(dev: &dyn BlockDevice) -> Result<Vec<u8>> {
    let mut b = vec![0u8; SB_SIZE];
    dev.read_at(SB_OFFSET, &mut b)?;
    Ok(b)
}

/// `sb` (1024 bytes) with `needs_recovery` set or cleared; its checksum is
/// recomputed only if it matched before.
fn with_recover(sb: &[u8], on: bool) -> Vec<u8> {
    let Ok(mut s) = Superblock::from_bytes(sb) else { return sb.to_vec() };
    let csum_was_ok = s.has_metadata_csum() && s.verify_checksum().is_ok();
    let mut f = s.s_feature_incompat.get();
    if on {
        f |= Incompat::RECOVER.bits();
    } else {
        f &= !Incompat::RECOVER.bits();
    }
    s.s_feature_incompat.set(f);
    if csum_was_ok {
        s.update_checksum();
    }
    zerocopy::IntoBytes::as_bytes(&s).to_vec()
}

/// Writes the pending blocks of `img` to its device (see the module
/// documentation) and forgets them.
pub(crate) fn commit(img: &mut Image<'_>, now: i64) -> Result<Committed> {
    let dev = img.device();
    let how = match journaled_plan(img)? {
        Ok(runs) => commit_journaled(img, runs, now)?,
        Err(why) => Committed::InPlace(why),
    };
    if let Committed::InPlace(_) = how {
        let bs = u64::from(img.block_size());
        for (blk, data) in img.pending() {
            dev.write_at(blk * bs, data)?;
        }
        dev.flush()?;
    }
    img.clear_pending();
    Ok(how)
}

/// Whether the repairs can go through the journal: its runs if so, why not otherwise.
fn journaled_plan(img: &Image<'_>) -> Result<std::result::Result<Vec<JournalRun>, &'static str>> {
    let dev = img.device();
    // The filesystem as it is on the device, without the repairs.
    let mut notes = crate::open::OpenNotes::default();
    let Ok(before) = crate::open::open(Image::new(dev, 1024), &mut notes)? else { return Ok(Err("the device has no usable superblock")) };
    if before.backup_sb.is_some() {
        return Ok(Err("the primary superblock is unusable"));
    }
    if before.incompat(Incompat::RECOVER) {
        // Writing now would be undone by a later replay.
        return Err(crate::error::CheckError::Commit("the journal needs recovery and could not be replayed".into()));
    }
    let Some((ino, runs)) = journal_runs(&before)? else { return Ok(Err("no usable internal journal")) };
    // The repairs must leave the journal inode and its blocks alone.
    let on_device = before.read_inode_raw(ino)?;
    let Some((blk, off)) = before.inode_loc(ino) else { return Ok(Err("the journal inode has no inode table")) };
    let mut b = vec![0u8; before.bs() as usize];
    let with_repairs = img.read(blk, &mut b)?.then(|| b[off..off + before.geo.inode_size as usize].to_vec());
    if on_device != with_repairs {
        return Ok(Err("the repairs change the journal inode"));
    }
    let bs = u64::from(img.block_size());
    if bs != u64::from(before.bs()) {
        return Ok(Err("block size changed"));
    }
    for (blk, _) in img.pending() {
        if runs.iter().any(|r| blk >= r.device_block && blk < r.device_block + r.len) {
            return Ok(Err("the repairs change the journal's blocks"));
        }
    }
    Ok(Ok(runs))
}

/// The journaled commit (steps 1-5 of the module documentation); falls
/// back to writing in place when the journal cannot take the transaction.
fn commit_journaled(img: &Image<'_>, runs: Vec<JournalRun>, now: i64) -> Result<Committed> {
    let dev = img.device();
    let bs = img.block_size();
    let Ok(mut io) = DeviceJournal::new(dev, bs, runs) else { return Ok(Committed::InPlace("the journal's blocks overlap")) };
    let Ok(mut writer) = JournalWriter::open(&mut io, bs) else {
        return Ok(Committed::InPlace("the journal superblock is unusable or the journal is not empty"));
    };
    // The pending blocks, the superblock's with `needs_recovery` set.
    let sb_blk = SB_OFFSET / u64::from(bs);
    let sb_off = (SB_OFFSET % u64::from(bs)) as usize;
    let mut blocks: Vec<(u64, Vec<u8>)> = img.pending().map(|(b, d)| (b, d.to_vec())).collect();
    let final_sb = match blocks.iter_mut().find(|(b, _)| *b == sb_blk) {
        Some((_, d)) => {
            let fin = d[sb_off..sb_off + SB_SIZE].to_vec();
            d[sb_off..sb_off + SB_SIZE].copy_from_slice(&with_recover(&fin, true));
            fin
        }
        None => {
            let mut d = vec![0u8; bs as usize];
            dev.read_at(sb_blk * u64::from(bs), &mut d)?;
            let fin = d[sb_off..sb_off + SB_SIZE].to_vec();
            d[sb_off..sb_off + SB_SIZE].copy_from_slice(&with_recover(&fin, true));
            blocks.push((sb_blk, d));
            fin
        }
    };
    if writer.blocks_needed(blocks.len() as u64, 0) > writer.free_blocks() {
        return Ok(Committed::InPlace("the repairs do not fit in the journal"));
    }
    // 1. needs_recovery on the device's superblock.
    let on_disk = device_sb(dev)?;
    dev.write_at(SB_OFFSET, &with_recover(&on_disk, true))?;
    dev.flush()?;
    // 2. The transaction.
    let time = CommitTime { sec: now.max(0) as u64, nsec: 0 };
    if let Err(e) = writer.commit(&mut io, &blocks, &[], time) {
        // Nothing was committed: undo step 1 and write in place.
        dev.write_at(SB_OFFSET, &on_disk)?;
        dev.flush()?;
        let _ = e;
        return Ok(Committed::InPlace("the journal could not take the transaction"));
    }
    // 3. Home.
    for (blk, data) in &blocks {
        dev.write_at(blk * u64::from(bs), data)?;
    }
    dev.flush()?;
    // 4. The journal is empty again.
    writer.checkpoint(&mut io).map_err(|e| crate::error::CheckError::Commit(e.to_string()))?;
    // 5. needs_recovery off.
    dev.write_at(SB_OFFSET, &with_recover(&final_sb, false))?;
    dev.flush()?;
    Ok(Committed::Journaled)
}

/// Why the filesystem must not be repaired yet, going by the primary
/// superblock on the device (whatever copy the check would use): its
/// journal still needs recovery, or inodes wait on the orphan list or in
/// the orphan file for the deletion or truncation e2fsck makes before
/// anything else (not implemented here).
pub(crate) fn not_repairable(dev: &dyn BlockDevice) -> Result<Option<&'static str>> {
    if dev.len() < SB_OFFSET + SB_SIZE as u64 {
        return Ok(None);
    }
    let sb = device_sb(dev)?;
    let Ok(s) = Superblock::from_bytes(&sb) else { return Ok(None) };
    Ok(if s.s_feature_incompat.get() & Incompat::RECOVER.bits() != 0 {
        Some("the journal needs recovery and could not be replayed")
    } else if s.s_last_orphan.get() != 0 || s.s_feature_ro_compat.get() & ext4_ondisk::features::RoCompat::ORPHAN_PRESENT.bits() != 0 {
        Some("orphaned inodes wait to be deleted or truncated, which this checker does not do")
    } else {
        None
    })
}

/// Replays the journal of a filesystem that needs recovery, as e2fsck
/// does before a repair: the logged blocks go home, the journal is emptied
/// and `needs_recovery` cleared. Replaying is idempotent, so a crash here
/// only means replaying again. Returns whether a replay happened.
pub(crate) fn replay_journal(dev: &dyn BlockDevice) -> Result<bool> {
    let mut notes = crate::open::OpenNotes::default();
    let Ok(fs) = crate::open::open(Image::new(dev, 1024), &mut notes)? else { return Ok(false) };
    if fs.backup_sb.is_some() || !fs.incompat(Incompat::RECOVER) {
        return Ok(false);
    }
    let Some((_, runs)) = journal_runs(&fs)? else { return Ok(false) };
    let bs = fs.bs();
    let blocks = fs.blocks_count();
    let Ok(mut io) = DeviceJournal::new(dev, bs, runs) else { return Ok(false) };
    let r = ext4_jbd2::recover(&mut io, bs, |b, data: &[u8]| -> std::result::Result<(), ext4_blockdev::DeviceError> {
        if b < blocks { dev.write_at(b * u64::from(bs), data) } else { Ok(()) }
    });
    if r.is_err() {
        return Ok(false);
    }
    dev.flush()?;
    let sb = device_sb(dev)?;
    dev.write_at(SB_OFFSET, &with_recover(&sb, false))?;
    dev.flush()?;
    Ok(true)
}

//! The filesystem's view of its jbd2 journal: replay at open, the
//! read-only overlay when replay is not wanted, and journaled commits.
//!
//! Commit protocol (ordered mode): file data is written in place before
//! the commit; the metadata blocks of a transaction go to the log
//! (descriptors and copies, flush, commit block, flush), then home, then
//! the device is flushed. The log tail moves (checkpoint) only when a new
//! transaction needs the space and at close; a crash at any instant leaves
//! a log whose replay restores the last committed transaction. The
//! superblock's `needs_recovery` is set (and flushed) before the first
//! journaled commit and cleared after the final checkpoint at close.
//!
//! Damage, as the kernel and e2fsck meet it: recovery that ends at a bad
//! commit block, at a damaged transaction, or skips a data block that
//! fails its checksum replays what it can and records the error on the
//! filesystem as the kernel's `ext4_error` does (`EXT4_ERROR_FS`, the error
//! count, first and last error), so that a full check follows. An error
//! the kernel left in the journal (`s_errno`) moves to the filesystem at
//! a writable open (`ext4_clear_journal_err`). A journal superblock that
//! cannot be read refuses a writable open; a read-only open ignores the
//! journal; [`Filesystem::clear_journal`] empties it.

use std::collections::{BTreeSet, HashSet};

use ext4_blockdev::BlockDevice;
use ext4_extent::Lookup;
use ext4_jbd2::{
    CommitTime, DeviceJournal, FastCommits, JournalError, JournalGeometry, JournalIo, JournalRun, JournalWriter, LogProblem, Recovery,
    RecoveryWarning,
};
use ext4_ondisk::superblock::{ERROR_INFO, ErrorRecord, Geometry, STATE_ERROR, STATE_VALID, SUPERBLOCK_OFFSET, Superblock, errcode};
use ext4_ondisk::{Compat, Incompat, RoCompat, Structure};
use zerocopy::IntoBytes;

use crate::error::{Error, Location, Result};
use crate::fs::Filesystem;
use crate::journal_dev::{ExternalJournal, uuid_text};

/// Inode number of the internal journal (`s_journal_inum` is normally 8).
const JOURNAL_INO_DEFAULT: u32 = 8;

/// How an open treats the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JournalOpen {
    /// Replay (writable) or read through it (read-only), then journal commits.
    Normal,
    /// Replay only, as `e2fsck -E journal_only`: no journal writer, no
    /// orphan processing; the filesystem is read-only afterwards.
    RecoverOnly,
    /// Leave the journal alone (to clear it).
    Skip,
    /// A read-only open for reports: incompatible features this library
    /// does not handle are shown rather than refused.
    Inspect,
}

/// Journal state kept by an open filesystem.
#[derive(Default)]
pub(crate) struct JournalState {
    /// The journal inode's blocks (internal journals).
    runs: Vec<JournalRun>,
    /// For a read-only open of a journal needing recovery: the scanned log,
    /// whose newest committed copies reads see instead of the home blocks.
    overlay: Option<Recovery>,
    /// The transaction writer of a writable open with a journal.
    writer: Option<JournalWriter>,
    /// Whether `needs_recovery` is set on disk by this open.
    recover_set: bool,
    /// Home blocks with a copy in a transaction still in the log: freeing
    /// one must revoke it, or a replay would write the old copy over the
    /// block's next use.
    logged: HashSet<u64>,
    /// The log replayed at this open.
    replayed: Option<Recovery>,
    /// Why a read-only open ignores the journal (its superblock cannot be read).
    ignored: Option<String>,
    /// The error the kernel left in the journal (`s_errno`), moved to the filesystem at this open.
    prior_errno: Option<i32>,
    /// For a read-only open whose recovery has fast commits: the whole
    /// recovery was applied to an in-memory overlay of the device, whose
    /// reads the filesystem now sees.
    replayed_in_memory: bool,
    /// The external journal device, when the filesystem's journal is on one.
    pub(crate) external: Option<ExternalJournal>,
}

impl JournalState {
    /// Stops journaling after a failed commit: nothing more is written.
    pub(crate) fn abort(&mut self) {
        self.writer = None;
        self.recover_set = false;
    }

    /// Whether commits go through the journal.
    pub(crate) fn is_journaling(&self) -> bool {
        self.writer.is_some()
    }

    /// The internal journal's runs (empty without one).
    pub(crate) fn runs(&self) -> Vec<JournalRun> {
        self.runs.clone()
    }

    pub(crate) fn has_overlay(&self) -> bool {
        self.replayed_in_memory || self.overlay.as_ref().is_some_and(|r| r.block_count() > 0)
    }

    /// The journal as block I/O: on the external journal device if there
    /// is one, else through the journal inode's runs on `dev`.
    fn device<'d>(&'d self, dev: &'d dyn BlockDevice, block_size: u32) -> Result<DeviceJournal<'d>> {
        if let Some(ext) = &self.external {
            return Ok(ext.io(block_size));
        }
        DeviceJournal::new(dev, block_size, self.runs.clone()).map_err(journal_error)
    }

    /// Reads the journal's copy of `block` into `buf`, if the overlay has one.
    pub(crate) fn read_overlay(&self, dev: &dyn BlockDevice, block_size: u32, block: u64, buf: &mut [u8]) -> Result<bool> {
        let Some(rec) = &self.overlay else { return Ok(false) };
        if rec.copy_of(block).is_none() {
            return Ok(false);
        }
        let mut io = self.device(dev, block_size)?;
        rec.read_block(&mut io, block, buf).map_err(journal_error)
    }
}

/// What [`Filesystem::clear_journal`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearedJournal {
    /// Whether the log held transactions (or `needs_recovery` was set):
    /// they are discarded and the filesystem is marked for a full check.
    pub discarded: bool,
    /// Why the journal superblock was written anew, if it could not be read.
    pub rebuilt: Option<String>,
}

impl Filesystem {
    /// Where the internal journal lives: runs of (first device block,
    /// length), in journal order (empty without an internal journal).
    pub fn journal_extents(&self) -> Vec<(u64, u64)> {
        self.journal.runs.iter().map(|r| (r.device_block, r.len)).collect()
    }

    /// The log found at this open: replayed (a writable open) or read
    /// through (a read-only one); `None` when the journal was clean.
    pub fn journal_recovery(&self) -> Option<&Recovery> {
        self.journal.replayed.as_ref().or(self.journal.overlay.as_ref())
    }

    /// Why a read-only open ignores the journal: its superblock cannot be
    /// read, so reads see the filesystem as last checkpointed.
    pub fn journal_ignored(&self) -> Option<&str> {
        self.journal.ignored.as_deref()
    }

    /// The error (a negative errno) the kernel had recorded in the journal
    /// (`s_errno`) and this writable open moved to the filesystem.
    pub fn journal_prior_error(&self) -> Option<i32> {
        self.journal.prior_errno
    }

    /// Replays the journal of the filesystem on `dev` and changes nothing
    /// else (as `e2fsck -E journal_only`: no orphan processing, no journal
    /// features set); the journal's recorded error moves to the filesystem.
    /// Returns the filesystem, read-only, to read the result.
    pub fn recover_journal(dev: impl BlockDevice + 'static) -> Result<Filesystem> {
        Self::recover(Box::new(dev), None)
    }

    /// [`Filesystem::recover_journal`] for a filesystem whose journal is on
    /// the external journal device `journal`.
    pub fn recover_external_journal(dev: impl BlockDevice + 'static, journal: impl BlockDevice + 'static) -> Result<Filesystem> {
        Self::recover(Box::new(dev), Some(Box::new(journal)))
    }

    fn recover(dev: Box<dyn BlockDevice>, journal: Option<Box<dyn BlockDevice>>) -> Result<Filesystem> {
        let mut fs = Filesystem::open_with(dev, journal, crate::OpenOptions::read_write(), JournalOpen::RecoverOnly)?;
        fs.read_only_reason = Some("opened to recover the journal only".into());
        Ok(fs)
    }

    /// Empties the journal of the filesystem on `dev` without replaying it,
    /// as e2fsck does when told not to replay (or when the journal
    /// superblock is invalid, which is then written anew): the log starts
    /// empty, `needs_recovery` is cleared, and if transactions were
    /// discarded the filesystem is marked not clean (`EXT4_VALID_FS`
    /// cleared), so that a full check follows.
    pub fn clear_journal(dev: impl BlockDevice + 'static) -> Result<ClearedJournal> {
        Self::clear(Box::new(dev), None)
    }

    /// [`Filesystem::clear_journal`] for a filesystem whose journal is on
    /// the external journal device `journal`.
    pub fn clear_external_journal(dev: impl BlockDevice + 'static, journal: impl BlockDevice + 'static) -> Result<ClearedJournal> {
        Self::clear(Box::new(dev), Some(Box::new(journal)))
    }

    fn clear(dev: Box<dyn BlockDevice>, journal: Option<Box<dyn BlockDevice>>) -> Result<ClearedJournal> {
        let mut fs = Filesystem::open_with(dev, journal, crate::OpenOptions::read_write(), JournalOpen::Skip)?;
        let r = clear(&mut fs);
        fs.read_only_reason = Some("journal cleared".into());
        r
    }
}

/// The work of [`Filesystem::clear_journal`].
fn clear(fs: &mut Filesystem) -> Result<ClearedJournal> {
    if fs.journal.runs.is_empty() && fs.journal.external.is_none() {
        return Err(Error::InvalidArgument("the filesystem has no journal here (none, or an external one not given)".into()));
    }
    let bs = fs.geo.block_size;
    let mut io = fs.journal.device(&*fs.dev, bs)?;
    let len = io.len_blocks();
    let found = ext4_jbd2::read_superblock(&mut io, bs).and_then(|sb| JournalGeometry::new(&sb, bs, len).map(|g| (sb, g)));
    let needs_recovery = fs.geo.features.incompat.contains(Incompat::RECOVER);
    let (jsb, discarded, rebuilt) = match found {
        Ok((mut jsb, geo)) => {
            let discarded = geo.start != 0 || needs_recovery;
            // Stale transactions stay in the log: start past any of them.
            let next = geo.sequence.wrapping_add(geo.log_blocks() as u32).wrapping_add(1);
            jsb.s_start.set(0);
            jsb.s_errno.set(0);
            jsb.s_sequence.set(if discarded { next } else { geo.sequence });
            jsb.update_checksum();
            (jsb, discarded, None)
        }
        Err(e @ JournalError::Io { .. }) => return Err(journal_error(e)),
        Err(e) => {
            let now = fs.now();
            // As e2fsck: a sequence no stale block is likely to carry.
            let seq = (now.secs as u32) ^ now.nsec.rotate_left(16) ^ 0x9E37_79B9;
            let maxlen = u32::try_from(len).map_err(|_| Error::Unsupported("a journal of 2^32 blocks or more".into()))?;
            let jsb = match &fs.journal.external {
                None => ext4_jbd2::fresh_superblock(bs, maxlen, fs.sb.s_uuid, seq),
                Some(_) => external_superblock(bs, maxlen, fs, seq),
            };
            (jsb, true, Some(e.to_string()))
        }
    };
    ext4_jbd2::write_superblock(&mut io, bs, &jsb).map_err(journal_error)?;
    fs.dev.flush()?;
    fs.patch_superblock_on_disk(|sb| {
        let mut f = sb.features();
        f.incompat.remove(Incompat::RECOVER);
        sb.set_features(f);
        if discarded {
            sb.s_state.set(sb.s_state.get() & !STATE_VALID);
        }
    })?;
    Ok(ClearedJournal { discarded, rebuilt })
}

/// A fresh superblock for an external journal device, as mke2fs leaves
/// one after `-J device=` (the log after the superblock, the filesystem its
/// one user).
fn external_superblock(bs: u32, maxlen: u32, fs: &Filesystem, seq: u32) -> ext4_jbd2::format::JournalSuperblock {
    let mut jsb = ext4_jbd2::fresh_superblock(bs, maxlen, fs.sb.s_journal_uuid, seq);
    jsb.s_first.set(ext4_jbd2::superblock_block(bs) as u32 + 1);
    jsb.s_users[..16].copy_from_slice(&fs.sb.s_uuid);
    jsb
}

/// A journal error as the facade reports it.
pub(crate) fn journal_error(e: JournalError) -> Error {
    match e {
        JournalError::NoSpace { .. } => Error::NoSpace,
        JournalError::Unsupported(what) => Error::Unsupported(format!("journal: {what}")),
        JournalError::Io { .. } => Error::Device(ext4_blockdev::DeviceError::Io {
            op: ext4_blockdev::Op::Read,
            offset: 0,
            source: std::io::Error::other(e.to_string()),
        }),
        other => Error::corrupt(Structure::Journal, Location::Inode(JOURNAL_INO_DEFAULT), other.to_string()),
    }
}

/// Opens the journal of `fs` (group descriptors loaded): replays it when
/// it needs recovery and the open is writable, or builds the read overlay
/// otherwise; then moves an error the kernel left in it to the filesystem
/// and prepares the writer for a writable open.
pub(crate) fn open_journal(fs: &mut Filesystem, mode: JournalOpen) -> Result<()> {
    let features = fs.geo.features;
    let needs_recovery = features.incompat.contains(Incompat::RECOVER);
    if !features.compat.contains(Compat::HAS_JOURNAL) {
        if fs.journal.external.is_some() {
            return Err(Error::InvalidArgument("the filesystem has no journal: no journal device is wanted".into()));
        }
        if needs_recovery && fs.is_writable() && mode != JournalOpen::Skip {
            return Err(Error::corrupt(Structure::Superblock, Location::Superblock, "needs_recovery is set but there is no journal"));
        }
        return Ok(());
    }
    let ino = fs.sb.s_journal_inum.get();
    if ino != 0 && fs.journal.external.is_some() {
        return Err(Error::InvalidArgument(format!("the filesystem's journal is internal (inode {ino}): no journal device is wanted")));
    }
    if ino == 0 && fs.journal.external.is_none() {
        return without_external_journal(fs, mode);
    }
    if ino != 0 {
        fs.journal.runs = journal_runs(fs, ino)?;
    }
    if mode == JournalOpen::Skip {
        return Ok(());
    }
    if needs_recovery && fs.is_writable() && !fs.opts.replay_journal {
        fs.read_only_reason = Some("the journal needs recovery and replay is off".into());
    }
    if let Err(e) = check_superblock(fs) {
        if fs.is_writable() || matches!(e, JournalError::Io { .. }) {
            return Err(unusable(e, ino));
        }
        fs.journal.ignored = Some(e.to_string());
        return Ok(());
    }
    if needs_recovery {
        if fs.is_writable() {
            replay(fs, ino)?;
        } else {
            let mut io = fs.journal.device(&*fs.dev, fs.geo.block_size)?;
            let mut rec = ext4_jbd2::scan(&mut io, fs.geo.block_size).map_err(journal_error)?;
            rec.exclude_beyond(fs.geo.blocks_count);
            let fc = fast_commits(&mut io, &rec, fs.geo.inode_size)?;
            if fc.is_empty() {
                fs.journal.overlay = Some(rec);
                // The superblock and descriptors may have newer copies in the log.
                reload_metadata(fs)?;
            } else {
                replay_in_memory(fs, ino)?;
            }
        }
    }
    if !fs.is_writable() || fs.opts.bulk {
        return Ok(());
    }
    clear_journal_err(fs)?;
    if mode == JournalOpen::Normal {
        start_writer(fs)?;
    }
    Ok(())
}

/// An open of a filesystem whose journal is on an external device that
/// was not given: a read-only open reads without it (what a log needing
/// recovery holds is not seen, and [`Filesystem::journal_ignored`] says
/// so), and so does a bulk fill of a fresh image (`OpenOptions::bulk`
/// writes no journal); writing and recovery need the device.
fn without_external_journal(fs: &mut Filesystem, mode: JournalOpen) -> Result<()> {
    let uuid = uuid_text(&fs.sb.s_journal_uuid);
    let needs_recovery = fs.geo.features.incompat.contains(Incompat::RECOVER);
    if needs_recovery && !fs.is_writable() && mode == JournalOpen::Normal {
        fs.journal.ignored = Some(format!("it is on an external device (UUID {uuid}) that was not given, and needs recovery"));
        return Ok(());
    }
    if needs_recovery && mode != JournalOpen::Skip {
        return Err(Error::InvalidArgument(format!(
            "the filesystem's journal is on an external device (UUID {uuid}) and needs recovery: give the journal device"
        )));
    }
    if fs.is_writable() && mode == JournalOpen::Normal && !fs.opts.bulk {
        return Err(Error::InvalidArgument(format!(
            "the filesystem's journal is on an external device (UUID {uuid}): give the journal device to write"
        )));
    }
    Ok(())
}

/// Reads and validates the journal superblock (`journal_load`'s checks; on
/// an external device, a log that starts after the superblock).
fn check_superblock(fs: &Filesystem) -> std::result::Result<(), JournalError> {
    let bs = fs.geo.block_size;
    let mut io = match &fs.journal.external {
        Some(ext) => ext.io(bs),
        None => DeviceJournal::new(&*fs.dev, bs, fs.journal.runs.clone())?,
    };
    let jsb = ext4_jbd2::read_superblock(&mut io, bs)?;
    let geo = JournalGeometry::new(&jsb, bs, io.len_blocks())?;
    if geo.first <= io.superblock_block() {
        let reason = format!("the log starts at block {}, not after the superblock", geo.first);
        return Err(JournalError::Superblock { field: "s_first", reason });
    }
    Ok(())
}

/// The error of a writable open whose journal superblock cannot be used:
/// what is wrong, and what to do.
fn unusable(e: JournalError, ino: u32) -> Error {
    if let JournalError::Io { .. } = e {
        return journal_error(e);
    }
    let what = format!(
        "the journal cannot be used ({e}): open the filesystem read-only to read it without the journal, or clear the journal \
         (`ext4 journal clear --force`, or e2fsck -fy), which discards any transactions it holds"
    );
    Error::corrupt(Structure::Journal, Location::Inode(ino), what)
}

/// `ext4_clear_journal_err`: an error the kernel recorded in the journal
/// (`jbd2_journal_abort` stores it in `s_errno`) marks the filesystem as
/// having errors, then is cleared from the journal.
fn clear_journal_err(fs: &mut Filesystem) -> Result<()> {
    let bs = fs.geo.block_size;
    let mut io = fs.journal.device(&*fs.dev, bs)?;
    let mut jsb = ext4_jbd2::read_superblock(&mut io, bs).map_err(journal_error)?;
    let errno = jsb.s_errno.get() as i32;
    if errno == 0 {
        return Ok(());
    }
    fs.sb.s_state.set(fs.sb.s_state.get() | STATE_ERROR);
    fs.patch_superblock_on_disk(|sb| sb.s_state.set(sb.s_state.get() | STATE_ERROR))?;
    jsb.s_errno.set(0);
    jsb.update_checksum();
    ext4_jbd2::write_superblock(&mut io, bs, &jsb).map_err(journal_error)?;
    fs.journal.prior_errno = Some(errno);
    Ok(())
}

/// Prepares the transaction writer of a writable open: skips a stale log,
/// sets the journal features the filesystem needs, bounds the transactions.
fn start_writer(fs: &mut Filesystem) -> Result<()> {
    let bs = fs.geo.block_size;
    let mut io = fs.journal.device(&*fs.dev, bs)?;
    let mut jsb = ext4_jbd2::read_superblock(&mut io, bs).map_err(journal_error)?;
    if jsb.s_start.get() != 0 {
        // A log with data but no needs_recovery: stale, as the kernel
        // decides (jbd2_journal_skip_recovery) — skip it, moving the
        // sequence past everything in it.
        let rec = ext4_jbd2::scan(&mut io, bs).map_err(journal_error)?;
        if rec.needs_recovery() {
            rec.finish(&mut jsb);
        } else {
            jsb.s_start.set(0);
            jsb.update_checksum();
        }
        ext4_jbd2::write_superblock(&mut io, bs, &jsb).map_err(journal_error)?;
    }
    let bit64 = fs.geo.features.incompat.contains(Incompat::BIT64);
    let csum = fs.geo.features.ro_compat.contains(RoCompat::METADATA_CSUM);
    if ext4_jbd2::set_mount_features(&mut jsb, bit64, csum) {
        ext4_jbd2::write_superblock(&mut io, bs, &jsb).map_err(journal_error)?;
    }
    let writer = JournalWriter::new(jsb, bs, io.len_blocks()).map_err(journal_error)?;
    // Commit well before a transaction could outgrow the log.
    let quarter = usize::try_from(writer.geometry().log_blocks() / 4).unwrap_or(usize::MAX);
    fs.write.session.commit_blocks = fs.write.session.commit_blocks.min(quarter.max(64));
    fs.journal.writer = Some(writer);
    Ok(())
}

/// The journal inode's blocks as runs; holes and unwritten extents are corruption.
fn journal_runs(fs: &Filesystem, ino: u32) -> Result<Vec<JournalRun>> {
    let ib = fs.read_inode(ino)?;
    let bs = u64::from(fs.geo.block_size);
    let blocks = ib.inode.size / bs;
    let bad = |why: String| Error::corrupt(Structure::Journal, Location::Inode(ino), why);
    if blocks < 1024 {
        return Err(bad(format!("journal inode of {} bytes", ib.inode.size)));
    }
    let mut runs = Vec::new();
    let mut logical = 0u64;
    while logical < blocks {
        let l = u32::try_from(logical).map_err(|_| bad("journal too large".into()))?;
        match fs.lookup_block(&ib, l)? {
            Lookup::Mapped(run) if !run.unwritten => {
                let len = u64::from(run.len).min(blocks - logical);
                runs.push(JournalRun { jblock: logical, device_block: run.physical, len });
                logical += len;
            }
            _ => return Err(bad(format!("journal block {logical} is not mapped"))),
        }
    }
    Ok(runs)
}

/// The fast commits recovery must replay after the log of `rec` (none
/// when the journal has no fast-commit area or it is stale); an area the
/// kernel would refuse is an error.
fn fast_commits(io: &mut DeviceJournal<'_>, rec: &Recovery, inode_size: u32) -> Result<FastCommits> {
    match (rec.geometry(), rec.fast_commit_tid()) {
        (Some(geo), Some(tid)) => ext4_jbd2::fast_commit::scan(io, geo, tid, inode_size as usize).map_err(journal_error),
        _ => Ok(FastCommits::default()),
    }
}

/// A read-only open of a journal with fast commits to replay: the whole
/// recovery (log and fast commits) is applied to an in-memory overlay of
/// the device, which the image never sees; reads go through it.
fn replay_in_memory(fs: &mut Filesystem, ino: u32) -> Result<()> {
    let base = std::mem::replace(&mut fs.dev, Box::new(ext4_blockdev::MemoryDevice::new(0)));
    fs.dev = Box::new(ext4_blockdev::OverlayDevice::new(base));
    fs.journal.replayed_in_memory = true;
    let reason = fs.read_only_reason.take();
    let r = replay(fs, ino);
    fs.read_only_reason = reason;
    r
}

/// Replays the log home (writable open), then the fast commits after it,
/// clears `needs_recovery`, records any error recovery met, and reloads
/// what the replay may have changed. The journal superblock is finished
/// last, so that a crash before replays everything again, as the kernel's
/// recovery would.
fn replay(fs: &mut Filesystem, ino: u32) -> Result<()> {
    let bs = fs.geo.block_size;
    let blocks_count = fs.geo.blocks_count;
    let dev = &*fs.dev;
    let mut io = fs.journal.device(dev, bs)?;
    let mut rec = ext4_jbd2::scan(&mut io, bs).map_err(journal_error)?;
    rec.exclude_beyond(blocks_count);
    // As the kernel's PASS_SCAN: a fast-commit area it refuses fails the
    // recovery before anything is written.
    let fc = fast_commits(&mut io, &rec, fs.geo.inode_size)?;
    fs.check_fast_commit_replay(&fc)?;
    // The kernel keeps the error information it found over the journal's
    // older copy of the superblock (ext4_load_journal).
    let (before, _) = crate::fs::read_superblock(dev)?;
    rec.replay(&mut io, |b, data: &[u8]| dev.write_at(b * u64::from(bs), data)).map_err(journal_error)?;
    dev.flush()?;
    if !fc.is_empty() {
        // Without a journal writer yet, its commits go home directly.
        crate::txn::start(fs)?;
        reload_metadata(fs)?;
        fs.replay_fast_commits(&fc)?;
    }
    let mut io = fs.journal.device(&*fs.dev, bs)?;
    let mut jsb = ext4_jbd2::read_superblock(&mut io, bs).map_err(journal_error)?;
    rec.finish(&mut jsb);
    ext4_jbd2::write_superblock(&mut io, bs, &jsb).map_err(journal_error)?;
    // The replay may have rewritten the superblock and descriptors.
    fs.reset_cache();
    reload_metadata(fs)?;
    let error = recovery_error(&rec, fs.now().secs, ino);
    // As e2fsck does after a replay: the superblock's free counts from the
    // group descriptors (the kernel keeps only the descriptors exact), in
    // the same write that clears `needs_recovery`, so that no crash leaves
    // a recovered filesystem with the log's stale counts.
    let free_blocks: u64 = fs.groups.iter().map(|g| u64::from(g.free_blocks_count)).sum::<u64>() * u64::from(fs.geo.cluster_ratio);
    let free_inodes: u64 = fs.groups.iter().map(|g| u64::from(g.free_inodes_count)).sum();
    fs.patch_superblock_on_disk(|sb| {
        let mut f = sb.features();
        f.incompat.remove(Incompat::RECOVER);
        sb.set_features(f);
        sb.as_mut_bytes()[ERROR_INFO].copy_from_slice(&before.as_bytes()[ERROR_INFO]);
        sb.s_state.set(sb.s_state.get() | (before.s_state.get() & STATE_ERROR));
        if let Some(e) = &error {
            sb.record_error(e);
        }
        sb.set_free_blocks_count(free_blocks);
        sb.s_free_inodes_count.set(free_inodes as u32);
    })?;
    reload_metadata(fs)?;
    fs.journal.replayed = Some(rec);
    Ok(())
}

/// The error a recovery records on the filesystem, if it met one: a bad
/// commit block (the kernel's `j_failed_commit`, -EFSCORRUPTED), damage
/// that ended the log, data blocks that failed their checksum
/// (-EFSBADCRC), or tags naming blocks past the end of the filesystem.
fn recovery_error(rec: &Recovery, now: i64, ino: u32) -> Option<ErrorRecord<'static>> {
    let code = match rec.damage().map(|d| &d.problem) {
        Some(LogProblem::TransactionChecksum | LogProblem::DescriptorChecksum) => errcode::EFSBADCRC,
        Some(_) => errcode::EFSCORRUPTED,
        None if rec.failed_commit().is_some() => errcode::EFSCORRUPTED,
        None if rec.warnings().iter().any(|w| matches!(w, RecoveryWarning::DataChecksum { .. })) => errcode::EFSBADCRC,
        None if rec.has_block_errors() => errcode::EFSCORRUPTED,
        None => return None,
    };
    Some(ErrorRecord { time: now, ino, block: 0, func: "jbd2_journal_recover", line: 0, errcode: code })
}

/// Re-reads the superblock (through the overlay, if any) and the group descriptors.
fn reload_metadata(fs: &mut Filesystem) -> Result<()> {
    fs.reset_cache();
    let bs = u64::from(fs.geo.block_size);
    let block = SUPERBLOCK_OFFSET / bs;
    let off = (SUPERBLOCK_OFFSET % bs) as usize;
    let raw = fs.read_meta(block, |d| d[off..off + ext4_ondisk::superblock::SUPERBLOCK_SIZE].to_vec())?;
    let sb = Superblock::from_bytes(&raw).map_err(|e| Error::format(&e, Location::Superblock))?;
    let geo = Geometry::new(&sb).map_err(|e| Error::format(&e, Location::Superblock))?;
    if geo.blocks_count != fs.geo.blocks_count || geo.block_size != fs.geo.block_size {
        return Err(Error::corrupt(Structure::Journal, Location::Superblock, "the journal's copy of the superblock changes the geometry"));
    }
    fs.sb = sb;
    fs.geo = geo;
    fs.groups = fs.load_groups()?;
    Ok(())
}

/// Called at the start of every commit: before the first journaled one,
/// `needs_recovery` goes to disk (so that a crash replays the log).
pub(crate) fn before_commit(fs: &mut Filesystem) -> Result<()> {
    if fs.journal.writer.is_none() || fs.journal.recover_set {
        return Ok(());
    }
    // On disk: the superblock as last committed (the one in memory holds
    // the running transaction's counts), with only the flag added.
    fs.change_features_now(|f| f.incompat.insert(Incompat::RECOVER))?;
    fs.journal.recover_set = true;
    Ok(())
}

/// Writes a committed transaction's blocks: through the journal when the
/// filesystem has one, then home; without a journal, home in a safe order.
pub(crate) fn commit_blocks(fs: &mut Filesystem, blocks: &[(u64, Box<[u8]>)], revoked: &BTreeSet<u64>, freed: &[(u64, u64)]) -> Result<()> {
    let Some(mut writer) = fs.journal.writer.take() else { return write_home(fs, blocks) };
    let mut logged = std::mem::take(&mut fs.journal.logged);
    let r = journaled_commit(fs, &mut writer, &mut logged, blocks, revoked, freed);
    fs.journal.writer = Some(writer);
    fs.journal.logged = logged;
    r
}

fn journaled_commit(
    fs: &Filesystem,
    w: &mut JournalWriter,
    logged: &mut HashSet<u64>,
    blocks: &[(u64, Box<[u8]>)],
    revoked: &BTreeSet<u64>,
    freed: &[(u64, u64)],
) -> Result<()> {
    let bs = fs.geo.block_size;
    let mut io = fs.journal.device(&*fs.dev, bs)?;
    let written: HashSet<u64> = blocks.iter().map(|(b, _)| *b).collect();
    // Freed blocks with a copy in the log (former metadata or journaled data).
    let mut freed = freed.to_vec();
    freed.sort_unstable();
    let in_freed = |b: u64| {
        let i = freed.partition_point(|&(s, _)| s <= b);
        i > 0 && b < freed[i - 1].0 + freed[i - 1].1
    };
    let mut revoke: BTreeSet<u64> = revoked.clone();
    revoke.extend(logged.iter().copied().filter(|&b| in_freed(b)));
    let mut revoked: Vec<u64> = revoke.into_iter().filter(|b| !written.contains(b)).collect();
    let mut needed = w.blocks_needed(blocks.len() as u64, revoked.len() as u64);
    if needed > w.free_blocks() && !w.is_empty() {
        // Every earlier transaction is home and flushed: free the log; no
        // copy is left to revoke.
        w.checkpoint(&mut io).map_err(journal_error)?;
        logged.clear();
        revoked.clear();
        needed = w.blocks_needed(blocks.len() as u64, 0);
    }
    if needed > w.free_blocks() {
        // Larger than the whole log: write home in the safe order instead.
        return write_home(fs, blocks);
    }
    let now = fs.now();
    let time = CommitTime { sec: now.secs.max(0) as u64, nsec: now.nsec };
    w.commit(&mut io, blocks, &revoked, time).map_err(journal_error)?;
    logged.extend(written);
    let bsz = u64::from(bs);
    for (b, data) in blocks {
        fs.dev.write_at(b * bsz, data)?;
    }
    fs.dev.flush()?;
    Ok(())
}

/// Writes blocks to their home locations in a safe order and flushes.
fn write_home(fs: &Filesystem, blocks: &[(u64, Box<[u8]>)]) -> Result<()> {
    let bs = u64::from(fs.geo.block_size);
    let bitmaps: HashSet<u64> = fs.groups.iter().flat_map(|g| [g.block_bitmap, g.inode_bitmap]).collect();
    let gdt_end = fs.geo.superblock_block() + 1 + u64::from(fs.geo.gdt_blocks());
    let class = |b: u64| {
        if bitmaps.contains(&b) {
            0
        } else if b < gdt_end {
            2
        } else {
            1
        }
    };
    for pass in 0..3 {
        for (b, data) in blocks.iter().filter(|(b, _)| class(*b) == pass) {
            fs.dev.write_at(b * bs, data)?;
        }
        if pass == 0 {
            fs.dev.flush()?;
        }
    }
    fs.dev.flush()?;
    Ok(())
}

/// Closes the journal cleanly after the final commit: empties the log and
/// clears `needs_recovery`.
pub(crate) fn close(fs: &mut Filesystem) -> Result<()> {
    if let Some(mut w) = fs.journal.writer.take() {
        if !w.is_empty() {
            let r = fs.journal.device(&*fs.dev, fs.geo.block_size).and_then(|mut io| w.checkpoint(&mut io).map_err(journal_error));
            if let Err(e) = r {
                // The log still holds transactions: needs_recovery must stay.
                fs.journal.recover_set = false;
                return Err(e);
            }
        }
        fs.journal.logged.clear();
    }
    if fs.journal.recover_set {
        fs.change_features_now(|f| f.incompat.remove(Incompat::RECOVER))?;
        fs.journal.recover_set = false;
    }
    Ok(())
}

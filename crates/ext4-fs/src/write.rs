//! The running transaction: every metadata change joins it through
//! [`Filesystem::modify_meta`] / [`Filesystem::write_meta`], and
//! [`Filesystem::commit`] makes it durable in one step — through the
//! journal when there is one, else by writing blocks home and flushing.
//!
//! File data is written straight to the device before the commit that
//! references it (ordered mode).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use ext4_ondisk::group_desc::update_group_desc_checksum;
use ext4_ondisk::superblock::{SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE};
use ext4_ondisk::{Structure, Timestamp, checksum};
use zerocopy::IntoBytes;

use crate::error::{Error, Location, Result};
use crate::fs::Filesystem;

/// Dirty metadata blocks after which an operation boundary commits.
const DEFAULT_COMMIT_BLOCKS: usize = 4096;

/// State that exists only on a writable filesystem.
pub(crate) struct WriteState {
    /// Groups whose descriptor changed: (block bitmap changed, inode bitmap changed).
    pub(crate) dirty_groups: BTreeMap<u32, (bool, bool)>,
    /// Blocks freed in the running transaction, applied at commit.
    pub(crate) pending_free: Vec<(u64, u64)>,
    /// Former metadata blocks freed in the running transaction (journal revokes).
    pub(crate) revoked: BTreeSet<u64>,
    /// Open handles per inode: an inode whose last link goes while it is
    /// open lives on until its last handle is released.
    pub(crate) orphans: HashSet<u32>,
    /// Handle counts of open inodes.
    pub(crate) open: HashMap<u32, u64>,
    /// Who performs the operations.
    pub(crate) caller: crate::caller::Caller,
    /// Source of generation numbers and directory spreading.
    pub(crate) next_generation: u32,
    /// Commit once this many metadata blocks are dirty.
    pub(crate) commit_blocks: usize,
    /// A fixed time for every timestamp (reproducible images), else the clock.
    pub(crate) fixed_time: Option<Timestamp>,
    /// What the operation in progress changed, to undo it if it fails.
    pub(crate) undo: Option<Undo>,
    /// Bitmaps whose checksum was verified since opening: (group, is block bitmap).
    pub(crate) verified_bitmaps: HashSet<(u32, bool)>,
    /// Blocks allocated in the running transaction (start -> end): data
    /// written there goes straight to the device (nothing reaches it before
    /// the commit that maps it); other data blocks are journaled.
    pub(crate) fresh: BTreeMap<u64, u64>,
    /// Whether file data blocks are held in the block cache (journaled
    /// overwrites): data reads then look there first.
    pub(crate) data_cached: bool,
    /// The ranges freed by the transaction being committed (for revokes).
    pub(crate) freed_in_commit: Vec<(u64, u64)>,
    /// Xattr blocks written in this session, by content hash, for sharing.
    pub(crate) xattr_share: crate::xattr_write::ShareCache,
    /// Inodes with an orphan record on disk, and where it is.
    pub(crate) orphan_records: HashMap<u32, crate::orphan::OrphanRecord>,
    /// Work an operation left to be done in steps after it.
    pub(crate) deferred: Vec<crate::orphan::Deferred>,
    /// Blocks freed per transaction by big truncates and deletes.
    pub(crate) step_blocks: u64,
    /// Operations finished (committed or undone) since opening: what a
    /// lookup saw stays true while this is unchanged.
    pub(crate) ops_done: u64,
    /// The last name a lookup found absent: (`ops_done` then, directory,
    /// name). A create of that name right after (FUSE sends LOOKUP, then
    /// MKNOD) needs no second search of the directory.
    pub(crate) absent: std::sync::Mutex<Option<(u64, u32, Vec<u8>)>>,
    /// Block ranges (start, count) the allocator must not hand out: during
    /// a fast-commit replay, the blocks its records map
    /// (`ext4_fc_replay_check_excluded`).
    pub(crate) excluded: Vec<(u64, u64)>,
}

/// A block's cached state saved for undo: its bytes and whether they were dirty.
type SavedBlock = Option<(Box<[u8]>, bool)>;

/// The state before the operation in progress touched it.
pub(crate) struct Undo {
    blocks: HashMap<u64, SavedBlock>,
    groups: HashMap<u32, ext4_ondisk::GroupDesc>,
    dirty_groups: BTreeMap<u32, (bool, bool)>,
    sb: ext4_ondisk::Superblock,
    pending_free: usize,
    revoked: BTreeSet<u64>,
    orphans: HashSet<u32>,
    orphan_records: HashMap<u32, crate::orphan::OrphanRecord>,
    deferred: usize,
    /// Bulk mode: nothing is saved, a failure cannot be undone.
    bulk: bool,
}

impl Default for WriteState {
    fn default() -> Self {
        Self {
            dirty_groups: BTreeMap::new(),
            pending_free: Vec::new(),
            revoked: BTreeSet::new(),
            orphans: HashSet::new(),
            open: HashMap::new(),
            caller: crate::caller::Caller::root(),
            next_generation: 0,
            commit_blocks: DEFAULT_COMMIT_BLOCKS,
            fixed_time: None,
            undo: None,
            verified_bitmaps: HashSet::new(),
            fresh: BTreeMap::new(),
            data_cached: false,
            freed_in_commit: Vec::new(),
            xattr_share: Default::default(),
            orphan_records: HashMap::new(),
            deferred: Vec::new(),
            step_blocks: crate::orphan::DEFAULT_STEP_BLOCKS,
            ops_done: 0,
            absent: std::sync::Mutex::new(None),
            excluded: Vec::new(),
        }
    }
}

impl WriteState {
    /// Records blocks `start..start + len` as allocated in the running transaction.
    pub(crate) fn add_fresh(&mut self, start: u64, len: u64) {
        self.fresh.insert(start, start + len);
    }

    /// Whether `block` was allocated in the running transaction.
    pub(crate) fn is_fresh(&self, block: u64) -> bool {
        self.fresh.range(..=block).next_back().is_some_and(|(_, &end)| block < end)
    }

    /// Remembers that a lookup found no `name` in `dir`.
    pub(crate) fn note_absent(&self, dir: u32, name: &[u8]) {
        *self.absent.lock().unwrap_or_else(|e| e.into_inner()) = Some((self.ops_done, dir, name.to_vec()));
    }

    /// Whether a lookup found no `name` in `dir` and no operation has
    /// finished since (the operation in progress has changed nothing yet
    /// when it asks first).
    pub(crate) fn known_absent(&self, dir: u32, name: &[u8]) -> bool {
        let memo = self.absent.lock().unwrap_or_else(|e| e.into_inner());
        memo.as_ref().is_some_and(|(at, d, n)| *at == self.ops_done && *d == dir && n == name)
    }

    /// Whether `ino` is an orphan kept alive by an open handle.
    pub(crate) fn is_orphan_or_open(&self, ino: u32) -> bool {
        self.orphans.contains(&ino) || self.open.contains_key(&ino)
    }
}

/// Prepares a freshly opened filesystem for writing.
pub(crate) fn start(fs: &mut Filesystem) -> Result<()> {
    fs.write.next_generation = fs.sb.s_wtime.get() ^ fs.sb.s_free_inodes_count.get().rotate_left(16) ^ 0x9E37_79B9;
    fs.write.fixed_time = crate::time::fixed_time_from_env();
    Ok(())
}

impl Filesystem {
    /// The current time for timestamps.
    pub(crate) fn now(&self) -> Timestamp {
        self.write.fixed_time.unwrap_or_else(crate::time::now)
    }

    /// Uses `t` for every timestamp written from now on (reproducible images);
    /// `None` returns to the clock.
    pub fn set_fixed_time(&mut self, t: Option<Timestamp>) {
        self.write.fixed_time = t;
    }

    /// Bounds the journal space one transaction takes: a commit at the next
    /// operation boundary once `commit_blocks` metadata blocks are dirty
    /// (only lowers the limit the journal's size sets), and big truncates
    /// and deletes freeing `step_blocks` blocks per transaction, each step
    /// covered by the inode's orphan record as in the kernel.
    pub fn set_transaction_limits(&mut self, commit_blocks: usize, step_blocks: u64) {
        self.write.commit_blocks = self.write.commit_blocks.min(commit_blocks.max(1));
        self.write.step_blocks = step_blocks.max(1);
    }

    /// A fresh inode generation number.
    pub(crate) fn new_generation(&mut self) -> u32 {
        self.write.next_generation = self.write.next_generation.wrapping_mul(1_103_515_245).wrapping_add(12345);
        self.write.next_generation
    }

    /// Runs one mutating operation: on success it may commit (at this
    /// boundary only); on failure everything it changed in memory is put back,
    /// so the running transaction holds only whole operations.
    ///
    /// An operation that finds no space while blocks freed by earlier
    /// operations wait for the commit (they may not be reused before it) is
    /// undone, the running transaction committed, and the operation run
    /// again, as the kernel retries after `ext4_should_retry_alloc` forced a
    /// commit. The commit holds only whole operations, and the blocks it
    /// frees are reused only after it is durable.
    pub(crate) fn op<R>(&mut self, mut f: impl FnMut(&mut Self) -> Result<R>) -> Result<R> {
        if !self.is_writable() {
            return Err(Error::ReadOnly);
        }
        if self.write.undo.is_some() {
            // Nested: part of the operation in progress.
            return f(self);
        }
        let v = match self.attempt(&mut f) {
            Err(Error::NoSpace) if self.commit_frees_space() => {
                self.commit()?;
                self.attempt(&mut f)?
            }
            r => r?,
        };
        self.maybe_commit()?;
        // Big truncates and deletes continue in steps of their own.
        while let Some(d) = self.write.deferred.pop() {
            self.finish_in_steps(d)?;
        }
        Ok(v)
    }

    /// Runs `f` as one operation: undone if it fails.
    fn attempt<R>(&mut self, f: &mut impl FnMut(&mut Self) -> Result<R>) -> Result<R> {
        self.write.undo = Some(Undo {
            blocks: HashMap::new(),
            groups: HashMap::new(),
            dirty_groups: self.write.dirty_groups.clone(),
            sb: self.sb.clone(),
            pending_free: self.write.pending_free.len(),
            revoked: self.write.revoked.clone(),
            orphans: self.write.orphans.clone(),
            orphan_records: self.write.orphan_records.clone(),
            deferred: self.write.deferred.len(),
            bulk: self.opts.bulk,
        });
        let r = f(self);
        let undo = self.write.undo.take().expect("set above");
        self.write.ops_done += 1;
        match r {
            Ok(v) => Ok(v),
            Err(e) if undo.bulk => {
                self.read_only_reason = Some(format!("an operation failed while filling the image in bulk mode ({e}); discard the image"));
                Err(e)
            }
            Err(e) => {
                self.rollback(undo);
                Err(e)
            }
        }
    }

    /// Whether a commit would give the allocator blocks it may not use now:
    /// ones freed by earlier operations of the running transaction (the
    /// kernel's `s_mb_free_pending`).
    fn commit_frees_space(&self) -> bool {
        self.is_writable() && !self.opts.bulk && !self.write.pending_free.is_empty()
    }

    fn rollback(&mut self, undo: Undo) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        for (b, state) in undo.blocks {
            cache.restore(b, state);
        }
        drop(cache);
        for (g, gd) in undo.groups {
            self.groups[g as usize] = gd;
        }
        self.write.dirty_groups = undo.dirty_groups;
        self.sb = undo.sb;
        self.write.pending_free.truncate(undo.pending_free);
        self.write.revoked = undo.revoked;
        self.write.orphans = undo.orphans;
        self.write.orphan_records = undo.orphan_records;
        self.write.deferred.truncate(undo.deferred);
        // Blocks the failed operation wrote or freed may be registered: forget them all.
        self.write.xattr_share.clear();
    }

    /// Saves block `block`'s state the first time the current operation touches it.
    fn undo_save(&mut self, block: u64) {
        if let Some(u) = &mut self.write.undo {
            if u.bulk {
                return;
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = u.blocks.entry(block) {
                slot.insert(self.cache.lock().unwrap_or_else(|e| e.into_inner()).save(block));
            }
        }
    }

    /// Group `g`'s descriptor for modification (saved for undo, marked dirty).
    pub(crate) fn group_mut(&mut self, g: u32) -> &mut ext4_ondisk::GroupDesc {
        if let Some(u) = self.write.undo.as_mut().filter(|u| !u.bulk) {
            u.groups.entry(g).or_insert_with(|| self.groups[g as usize].clone());
        }
        &mut self.groups[g as usize]
    }

    fn check_writable(&self, block: u64) -> Result<()> {
        if !self.is_writable() {
            return Err(Error::ReadOnly);
        }
        if block >= self.geo.blocks_count {
            return Err(Error::corrupt(Structure::Superblock, Location::Block(block), "block number beyond the end of the filesystem"));
        }
        Ok(())
    }

    /// Modifies metadata block `block` in place: the block joins the running
    /// transaction before `f` changes it.
    pub(crate) fn modify_meta<R>(&mut self, block: u64, f: impl FnOnce(&mut [u8]) -> R) -> Result<R> {
        self.check_writable(block)?;
        self.read_meta(block, |_| ())?;
        self.undo_save(block);
        let mut cache = self.cache();
        let data = cache.get_mut(block).expect("just cached");
        Ok(f(data))
    }

    /// Replaces the whole contents of metadata block `block` (no read needed).
    pub(crate) fn write_meta(&mut self, block: u64, data: impl Into<Box<[u8]>>) -> Result<()> {
        self.check_writable(block)?;
        let data = data.into();
        debug_assert_eq!(data.len(), self.block_size());
        self.undo_save(block);
        self.cache().insert_dirty(block, data);
        Ok(())
    }

    /// Drops a freed metadata block from the cache (its pending changes too).
    pub(crate) fn forget_meta(&mut self, block: u64) {
        self.undo_save(block);
        self.cache().forget(block);
    }

    /// Drops cached copies of blocks whose data was just written to the
    /// device: a block that once held a journaled overwrite or metadata and
    /// was freed and reused would otherwise shadow its new data (reads
    /// consult the cache first once journaled data is cached).
    fn forget_cached_data(&mut self, blocks: std::ops::Range<u64>) {
        let mut cache = self.cache();
        for b in blocks {
            cache.forget(b);
        }
    }

    /// Writes file data at byte `offset` of device block `block`. Blocks
    /// allocated in the running transaction (and every block without a
    /// journal) are written straight to the device: the data reaches the
    /// disk before the commit that maps it (ordered mode). With a journal,
    /// blocks that were already part of a file are overwritten through the
    /// journal, so that an overwrite is atomic like every other change.
    pub(crate) fn write_data(&mut self, block: u64, offset: u64, data: &[u8]) -> Result<()> {
        self.check_writable(block)?;
        let bs = u64::from(self.geo.block_size);
        let end = (offset + data.len() as u64).div_ceil(bs);
        self.check_data_range(block, end)?;
        if !self.journal.is_journaling() || (block..block + end).all(|b| self.write.is_fresh(b)) {
            self.dev.write_at(block * bs + offset, data)?;
            self.forget_cached_data(block..block + end);
            return Ok(());
        }
        let mut pos = block * bs + offset;
        let mut done = 0;
        while done < data.len() {
            let (b, o) = (pos / bs, (pos % bs) as usize);
            let n = (bs as usize - o).min(data.len() - done);
            let piece = &data[done..done + n];
            if self.write.is_fresh(b) {
                self.dev.write_at(pos, piece)?;
                self.forget_cached_data(b..b + 1);
            } else {
                self.write.data_cached = true;
                if n == bs as usize {
                    self.write_meta(b, piece.to_vec())?;
                } else {
                    self.modify_meta(b, |d| d[o..o + n].copy_from_slice(piece))?;
                }
            }
            done += n;
            pos += n as u64;
        }
        Ok(())
    }

    /// Commits at an operation boundary if the transaction has grown large.
    pub(crate) fn maybe_commit(&mut self) -> Result<()> {
        if self.cache().dirty_count() >= self.write.commit_blocks || self.write.pending_free.len() > 65536 {
            self.commit()?;
        }
        Ok(())
    }

    /// Makes every change so far durable: pending frees are applied, group
    /// descriptors and the superblock are written into their blocks with
    /// fresh checksums, then the dirty blocks are written (through the
    /// journal if there is one) and the device is flushed.
    pub fn commit(&mut self) -> Result<()> {
        if !self.is_writable() {
            return Ok(());
        }
        let r = self.commit_inner();
        if let Err(e) = &r {
            if self.journal.is_journaling() {
                self.abort(e);
            }
        }
        r
    }

    fn commit_inner(&mut self) -> Result<()> {
        self.apply_pending_frees()?;
        if self.cache().dirty_count() == 0 && self.write.dirty_groups.is_empty() {
            return Ok(());
        }
        crate::mmp::update(self)?;
        crate::journal::before_commit(self)?;
        self.flush_group_descs()?;
        self.flush_superblock()?;
        let blocks = self.cache().take_dirty();
        let revoked = std::mem::take(&mut self.write.revoked);
        let freed = std::mem::take(&mut self.write.freed_in_commit);
        if let Err(e) = crate::journal::commit_blocks(self, &blocks, &revoked, &freed) {
            if !self.journal.is_journaling() {
                // Without a journal nothing can be replayed: keep every block
                // dirty so that the next commit (or close) writes them all again.
                let mut cache = self.cache();
                for (b, data) in blocks {
                    cache.insert_dirty(b, data);
                }
            }
            return Err(e);
        }
        self.write.fresh.clear();
        Ok(())
    }

    /// After a failed commit the in-memory state is ahead of the disk in ways
    /// that cannot be undone: like the kernel aborting its journal, the
    /// filesystem turns read-only and writes nothing more — not even at
    /// close, so `needs_recovery` stays set and the next open replays the
    /// log up to the last complete transaction.
    fn abort(&mut self, e: &Error) {
        self.read_only_reason = Some(format!("aborted after a failed commit: {e}"));
        self.journal.abort();
    }

    /// Writes the descriptors of changed groups, with bitmap and descriptor checksums.
    fn flush_group_descs(&mut self) -> Result<()> {
        let dirty = std::mem::take(&mut self.write.dirty_groups);
        for (g, (bb_changed, ib_changed)) in dirty {
            if self.geo.metadata_csum() {
                let gd = &self.groups[g as usize];
                let (bb, ib) = (gd.block_bitmap, gd.inode_bitmap);
                if bb_changed {
                    let n = self.geo.clusters_per_group as usize / 8;
                    let c = self.read_meta(bb, |d| checksum::bitmap(self.geo.csum_seed, &d[..n]))?;
                    self.groups[g as usize].block_bitmap_csum = c;
                }
                if ib_changed {
                    let n = self.geo.inodes_per_group as usize / 8;
                    let c = self.read_meta(ib, |d| checksum::bitmap(self.geo.csum_seed, &d[..n]))?;
                    self.groups[g as usize].inode_bitmap_csum = c;
                }
            }
            let block = self.geo.group_desc_block(g);
            let ds = self.geo.desc_size as usize;
            let off = (g % self.geo.descs_per_block) as usize * ds;
            let gd = self.groups[g as usize].clone();
            let geo = self.geo.clone();
            self.modify_meta(block, |d| {
                let raw = &mut d[off..off + ds];
                gd.write(raw, ds);
                update_group_desc_checksum(&geo, g, raw);
            })?;
        }
        Ok(())
    }

    /// Writes the in-memory superblock into its block, with its checksum.
    pub(crate) fn flush_superblock(&mut self) -> Result<()> {
        self.sb.s_wtime.set(self.now().secs as u32);
        self.sb.s_wtime_hi = (self.now().secs >> 32) as u8;
        self.sb.update_checksum();
        let bs = u64::from(self.geo.block_size);
        let block = SUPERBLOCK_OFFSET / bs;
        let off = (SUPERBLOCK_OFFSET % bs) as usize;
        let bytes = self.sb.as_bytes().to_vec();
        self.modify_meta(block, |d| d[off..off + SUPERBLOCK_SIZE].copy_from_slice(&bytes))
    }

    /// Commits and flushes: after `sync` returns, every change is durable.
    pub fn sync(&mut self) -> Result<()> {
        self.commit()?;
        if self.is_writable() {
            if let Err(e) = self.dev.flush() {
                let e = Error::from(e);
                self.abort(&e);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Commits, closes the journal cleanly and releases the device.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    /// Takes a handle on inode `ino`: if its last link is removed while a
    /// handle is held, the inode lives on (an orphan) until its last handle
    /// is dropped by [`Filesystem::release`] or [`Filesystem::release_n`].
    pub fn pin(&mut self, ino: u32) {
        *self.write.open.entry(ino).or_insert(0) += 1;
    }

    /// Drops a handle taken by [`Filesystem::pin`]; the last handle of an
    /// unlinked inode frees it.
    pub fn release(&mut self, ino: u32) -> Result<()> {
        self.release_n(ino, 1)
    }

    /// Drops `n` handles at once (a FUSE `FORGET` of `n` lookups); more than
    /// are held drops them all. The last handle of an unlinked inode frees it.
    pub fn release_n(&mut self, ino: u32, n: u64) -> Result<()> {
        let Some(held) = self.write.open.get_mut(&ino) else {
            return Ok(());
        };
        *held = held.saturating_sub(n);
        if *held > 0 {
            return Ok(());
        }
        self.write.open.remove(&ino);
        if self.write.orphans.remove(&ino) {
            self.finish_in_steps(crate::orphan::Deferred::Release(ino))?;
        }
        Ok(())
    }

    /// What `close` and `Drop` do.
    pub(crate) fn shutdown(&mut self) -> Result<()> {
        if !self.is_writable() {
            return crate::mmp::stop(self);
        }
        let orphans: Vec<u32> = self.write.orphans.drain().collect();
        self.write.open.clear();
        for ino in orphans {
            self.finish_in_steps(crate::orphan::Deferred::Release(ino))?;
        }
        let r = self.commit().and_then(|()| crate::journal::close(self)).and_then(|()| Ok(self.dev.flush()?));
        match r {
            // A journaled close that failed half-way must not be retried by
            // `Drop`: clearing needs_recovery over a log that still holds
            // transactions would lose them. (Without a journal a retry
            // rewrites every block still dirty, which is what is wanted.)
            Err(e) => {
                if self.journal.is_journaling() {
                    self.abort(&e);
                }
                Err(e)
            }
            Ok(()) => {
                self.read_only_reason = Some("closed".into());
                crate::mmp::stop(self)
            }
        }
    }
}

impl Drop for Filesystem {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; `close` reports them.
        let _ = self.shutdown();
    }
}

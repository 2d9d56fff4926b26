//! The transaction handle: every metadata change is made through a
//! [`Txn`], and a `Txn` exists only inside [`Filesystem::op`] (or the
//! commit path in [`commit`]).
//!
//! `op` opens a `Txn` on the filesystem, runs one operation with it, and
//! then either keeps the changes in the running transaction (committing it
//! at this boundary if it has grown large, see [`commit`]) or, if the
//! operation failed, puts back everything it changed in memory. Reads stay
//! on `&Filesystem` (a `Txn` derefs to it); the mutating primitives
//! ([`Txn::modify_meta`], [`Txn::write_meta`], [`Txn::group_mut`],
//! [`Txn::write_inode`], [`Txn::write_data`]) exist only on a `Txn`, so a
//! signature that takes `&mut Txn` is one that changes the disk.
//!
//! File data is written straight to the device before the commit that
//! references it (ordered mode), or through the journal when it overwrites
//! a block that was already part of a file.

mod commit;
mod state;

use std::collections::HashMap;
use std::ops::Deref;

use ext4_ondisk::{GroupDesc, Structure, Superblock, Timestamp};

use crate::error::{Error, Location, Result};
use crate::fs::Filesystem;
pub(crate) use state::{AllocState, Handles, WriteState};

/// A running operation's handle on the filesystem: reads through `Deref`,
/// writes through its own methods, every change recorded for the undo.
pub(crate) struct Txn<'fs> {
    fs: &'fs mut Filesystem,
    /// What the operation changed, to undo it if it fails; `None` when
    /// nothing is saved (bulk filling, whole-filesystem rewrites, the
    /// commit path): a failure then turns the filesystem read-only.
    undo: Option<Undo>,
}

impl Deref for Txn<'_> {
    type Target = Filesystem;

    fn deref(&self) -> &Filesystem {
        self.fs
    }
}

/// A block's cached state saved for undo: its bytes and whether they were dirty.
type SavedBlock = Option<(Box<[u8]>, bool)>;

/// The state before the operation in progress touched it.
struct Undo {
    blocks: HashMap<u64, SavedBlock>,
    groups: HashMap<u32, GroupDesc>,
    sb: Superblock,
    geo: ext4_ondisk::superblock::Geometry,
    alloc: state::AllocSnapshot,
    handles: state::HandlesSnapshot,
}

impl Undo {
    fn new(fs: &Filesystem) -> Self {
        Self {
            blocks: HashMap::new(),
            groups: HashMap::new(),
            sb: fs.sb.clone(),
            geo: fs.geo.clone(),
            alloc: fs.write.alloc.snapshot(),
            handles: fs.write.handles.snapshot(),
        }
    }

    /// Puts `fs` back as it was when `self` was made.
    fn restore(self, fs: &mut Filesystem) {
        let mut cache = fs.cache.lock().unwrap_or_else(|e| e.into_inner());
        for (b, state) in self.blocks {
            cache.restore(b, state);
        }
        drop(cache);
        for (g, gd) in self.groups {
            fs.groups[g as usize] = gd;
        }
        fs.sb = self.sb;
        fs.geo = self.geo;
        fs.write.alloc.restore(self.alloc);
        fs.write.handles.restore(self.handles);
        // Blocks the failed operation wrote or freed may be registered: forget them all.
        fs.write.xattr_share.clear();
    }
}

/// Prepares a freshly opened filesystem for writing.
pub(crate) fn start(fs: &mut Filesystem) -> Result<()> {
    fs.write.alloc.next_generation = fs.sb.s_wtime.get() ^ fs.sb.s_free_inodes_count.get().rotate_left(16) ^ 0x9E37_79B9;
    fs.write.session.fixed_time = crate::time::fixed_time_from_env();
    Ok(())
}

impl Filesystem {
    /// The current time for timestamps.
    pub(crate) fn now(&self) -> Timestamp {
        self.write.session.fixed_time.unwrap_or_else(crate::time::now)
    }

    /// Uses `t` for every timestamp written from now on (reproducible images);
    /// `None` returns to the clock.
    pub fn set_fixed_time(&mut self, t: Option<Timestamp>) {
        self.write.session.fixed_time = t;
    }

    /// Runs one mutating operation on a [`Txn`]: on success it may commit
    /// (at this boundary only); on failure everything it changed in memory
    /// is put back, so the running transaction holds only whole operations.
    ///
    /// An operation that finds no space while blocks freed by earlier
    /// operations wait for the commit (they may not be reused before it) is
    /// undone, the running transaction committed, and the operation run
    /// again, as the kernel retries after `ext4_should_retry_alloc` forced a
    /// commit. The commit holds only whole operations, and the blocks it
    /// frees are reused only after it is durable.
    ///
    /// Big truncates and deletes that the operation left to be finished
    /// ([`crate::orphan::Deferred`]) continue after it, in steps that are
    /// operations of their own.
    pub(crate) fn op<R>(&mut self, mut f: impl FnMut(&mut Txn<'_>) -> Result<R>) -> Result<R> {
        if !self.is_writable() {
            return Err(Error::ReadOnly);
        }
        let v = match self.attempt(&mut f) {
            Err(Error::NoSpace) if self.commit_frees_space() => {
                self.commit()?;
                self.attempt(&mut f)?
            }
            r => r?,
        };
        self.maybe_commit()?;
        while let Some(d) = self.write.handles.deferred.pop() {
            self.finish_in_steps(d)?;
        }
        Ok(v)
    }

    /// Runs `f` as one operation: undone if it fails.
    fn attempt<R>(&mut self, f: &mut impl FnMut(&mut Txn<'_>) -> Result<R>) -> Result<R> {
        let undo = (!self.opts.bulk).then(|| Undo::new(self));
        let mut txn = Txn { fs: self, undo };
        let r = f(&mut txn);
        let undo = txn.undo.take();
        self.write.lookup.ops_done += 1;
        match (r, undo) {
            (Ok(v), _) => Ok(v),
            (Err(e), Some(undo)) => {
                undo.restore(self);
                Err(e)
            }
            (Err(e), None) => {
                self.read_only_reason = Some(format!("an operation failed while filling the image in bulk mode ({e}); discard the image"));
                Err(e)
            }
        }
    }

    /// Runs `f` on a [`Txn`] that saves nothing for an undo: for rewrites
    /// of the whole filesystem (tune) whose undo copies would be as big as
    /// the metadata. If `f` fails the in-memory state is ahead of the disk
    /// in ways that cannot be put back, so the filesystem turns read-only
    /// (nothing more is written, not even at close). Nothing is committed
    /// here: the caller commits when the rewrite is whole.
    pub(crate) fn op_without_undo<R>(&mut self, f: impl FnOnce(&mut Txn<'_>) -> Result<R>) -> Result<R> {
        if !self.is_writable() {
            return Err(Error::ReadOnly);
        }
        let r = f(&mut Txn { fs: self, undo: None });
        self.write.lookup.ops_done += 1;
        if let Err(e) = &r {
            self.read_only_reason =
                Some(format!("a change that cannot be undone failed half-way ({e}); the image was left as it was before it"));
        }
        r
    }

    /// Whether a commit would give the allocator blocks it may not use now:
    /// ones freed by earlier operations of the running transaction (the
    /// kernel's `s_mb_free_pending`).
    fn commit_frees_space(&self) -> bool {
        self.is_writable() && !self.opts.bulk && !self.write.alloc.pending_free.is_empty()
    }
}

impl Txn<'_> {
    /// Saves block `block`'s state the first time the operation touches it.
    fn undo_save(&mut self, block: u64) {
        if let Some(u) = &mut self.undo {
            if let std::collections::hash_map::Entry::Vacant(slot) = u.blocks.entry(block) {
                slot.insert(self.fs.cache().save(block));
            }
        }
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
        let mut cache = self.fs.cache();
        let data = cache.get_mut(block).expect("just cached");
        Ok(f(data))
    }

    /// Replaces the whole contents of metadata block `block` (no read needed).
    pub(crate) fn write_meta(&mut self, block: u64, data: impl Into<Box<[u8]>>) -> Result<()> {
        self.check_writable(block)?;
        let data = data.into();
        debug_assert_eq!(data.len(), self.block_size());
        self.undo_save(block);
        self.fs.cache().insert_dirty(block, data);
        Ok(())
    }

    /// Drops a freed metadata block from the cache (its pending changes too).
    pub(crate) fn forget_meta(&mut self, block: u64) {
        self.undo_save(block);
        self.fs.cache().forget(block);
    }

    /// Drops cached copies of blocks whose data was just written to the
    /// device: a block that once held a journaled overwrite or metadata and
    /// was freed and reused would otherwise shadow its new data (reads
    /// consult the cache first once journaled data is cached).
    fn forget_cached_data(&mut self, blocks: std::ops::Range<u64>) {
        let mut cache = self.fs.cache();
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
        if !self.journal.is_journaling() || (block..block + end).all(|b| self.write.alloc.is_fresh(b)) {
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
            if self.write.alloc.is_fresh(b) {
                self.dev.write_at(pos, piece)?;
                self.forget_cached_data(b..b + 1);
            } else {
                self.fs.write.session.data_cached = true;
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

    /// Group `g`'s descriptor for modification (saved for undo).
    pub(crate) fn group_mut(&mut self, g: u32) -> &mut GroupDesc {
        if let Some(u) = &mut self.undo {
            u.groups.entry(g).or_insert_with(|| self.fs.groups[g as usize].clone());
        }
        &mut self.fs.groups[g as usize]
    }

    /// The in-memory superblock for modification (the undo holds a copy
    /// from the operation's start; the commit writes it with its checksum).
    pub(crate) fn sb_mut(&mut self) -> &mut Superblock {
        &mut self.fs.sb
    }

    /// Changes feature bits in the running transaction: the superblock's
    /// words and the geometry's copy that readers consult, together (and
    /// both restored by an undo).
    pub(crate) fn change_features(&mut self, f: impl FnOnce(&mut ext4_ondisk::features::FeatureWords)) {
        let mut w = self.sb.features();
        f(&mut w);
        self.fs.sb.set_features(w);
        self.fs.geo.features = w;
    }

    /// The allocator's transaction state.
    pub(crate) fn alloc_mut(&mut self) -> &mut AllocState {
        &mut self.fs.write.alloc
    }

    /// Open handles, orphans and deferred work.
    pub(crate) fn handles_mut(&mut self) -> &mut Handles {
        &mut self.fs.write.handles
    }

    /// The session's shared xattr blocks.
    pub(crate) fn xattr_share_mut(&mut self) -> &mut crate::xattr_write::ShareCache {
        &mut self.fs.write.xattr_share
    }

    /// A fresh inode generation number.
    pub(crate) fn new_generation(&mut self) -> u32 {
        let g = &mut self.fs.write.alloc.next_generation;
        *g = g.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *g
    }
}

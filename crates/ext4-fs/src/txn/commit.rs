//! The commit policy: when the running transaction becomes durable
//! (a large transaction at an operation boundary, [`Filesystem::commit`],
//! [`Filesystem::sync`], [`Filesystem::close`] and `Drop`), and how (the
//! group descriptors and the superblock written into their blocks with
//! fresh checksums, then every dirty block through the journal if there is
//! one, else home).

use ext4_ondisk::checksum;
use ext4_ondisk::group_desc::update_group_desc_checksum;
use ext4_ondisk::superblock::{SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE};
use zerocopy::IntoBytes;

use super::Txn;
use crate::error::{Error, Result};
use crate::fs::Filesystem;

impl Filesystem {
    /// Bounds the journal space one transaction takes: a commit at the next
    /// operation boundary once `commit_blocks` metadata blocks are dirty
    /// (only lowers the limit the journal's size sets), and big truncates
    /// and deletes freeing `step_blocks` blocks per transaction, each step
    /// covered by the inode's orphan record as in the kernel.
    pub fn set_transaction_limits(&mut self, commit_blocks: usize, step_blocks: u64) {
        let s = &mut self.write.session;
        s.commit_blocks = s.commit_blocks.min(commit_blocks.max(1));
        self.write.handles.step_blocks = step_blocks.max(1);
    }

    /// Commits at an operation boundary if the transaction has grown large.
    pub(crate) fn maybe_commit(&mut self) -> Result<()> {
        if self.cache().dirty_count() >= self.write.session.commit_blocks || self.write.alloc.pending_free.len() > 65536 {
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
        let mut txn = Txn { fs: self, undo: None };
        txn.apply_pending_frees()?;
        if txn.cache().dirty_count() == 0 && txn.write.alloc.dirty_groups.is_empty() {
            return Ok(());
        }
        crate::mmp::update(txn.fs)?;
        crate::journal::before_commit(txn.fs)?;
        txn.flush_group_descs()?;
        txn.flush_superblock()?;
        let blocks = self.cache().take_dirty();
        let revoked = std::mem::take(&mut self.write.alloc.revoked);
        let freed = std::mem::take(&mut self.write.alloc.freed_in_commit);
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
        self.write.alloc.fresh.clear();
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
        *self.write.handles.open.entry(ino).or_insert(0) += 1;
    }

    /// Drops a handle taken by [`Filesystem::pin`]; the last handle of an
    /// unlinked inode frees it.
    pub fn release(&mut self, ino: u32) -> Result<()> {
        self.release_n(ino, 1)
    }

    /// Drops `n` handles at once (a FUSE `FORGET` of `n` lookups); more than
    /// are held drops them all. The last handle of an unlinked inode frees it.
    pub fn release_n(&mut self, ino: u32, n: u64) -> Result<()> {
        let Some(held) = self.write.handles.open.get_mut(&ino) else {
            return Ok(());
        };
        *held = held.saturating_sub(n);
        if *held > 0 {
            return Ok(());
        }
        self.write.handles.open.remove(&ino);
        if self.write.handles.orphans.remove(&ino) {
            self.finish_in_steps(crate::orphan::Deferred::Release(ino))?;
        }
        Ok(())
    }

    /// What `close` and `Drop` do: the inodes that open handles kept alive
    /// are freed, the running transaction is committed, the journal closed
    /// cleanly and the device flushed.
    pub(crate) fn shutdown(&mut self) -> Result<()> {
        if !self.is_writable() {
            return crate::mmp::stop(self);
        }
        let orphans: Vec<u32> = self.write.handles.orphans.drain().collect();
        self.write.handles.open.clear();
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

impl Txn<'_> {
    /// Writes the descriptors of changed groups, with bitmap and descriptor checksums.
    fn flush_group_descs(&mut self) -> Result<()> {
        let dirty = std::mem::take(&mut self.fs.write.alloc.dirty_groups);
        for (g, (bb_changed, ib_changed)) in dirty {
            if self.geo.metadata_csum() {
                let gd = &self.groups[g as usize];
                let (bb, ib) = (gd.block_bitmap, gd.inode_bitmap);
                if bb_changed {
                    let n = self.geo.clusters_per_group as usize / 8;
                    let c = self.read_meta(bb, |d| checksum::bitmap(self.geo.csum_seed, &d[..n]))?;
                    self.group_mut(g).block_bitmap_csum = c;
                }
                if ib_changed {
                    let n = self.geo.inodes_per_group as usize / 8;
                    let c = self.read_meta(ib, |d| checksum::bitmap(self.geo.csum_seed, &d[..n]))?;
                    self.group_mut(g).inode_bitmap_csum = c;
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
        let now = self.now();
        let sb = self.sb_mut();
        sb.s_wtime.set(now.secs as u32);
        sb.s_wtime_hi = (now.secs >> 32) as u8;
        sb.update_checksum();
        let bs = u64::from(self.geo.block_size);
        let block = SUPERBLOCK_OFFSET / bs;
        let off = (SUPERBLOCK_OFFSET % bs) as usize;
        let bytes = self.sb.as_bytes().to_vec();
        self.modify_meta(block, |d| d[off..off + SUPERBLOCK_SIZE].copy_from_slice(&bytes))
    }
}

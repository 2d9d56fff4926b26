//! Orphan processing at a writable open, as the kernel's mount does
//! (`ext4_orphan_cleanup`): inodes on the orphan list (`s_last_orphan`,
//! chained through `i_dtime`) or in the orphan file are finished off —
//! freed when they have no links left, truncated to their size otherwise —
//! and the list, the orphan file and the `orphan_present` flag are cleared.

use std::collections::BTreeSet;

use ext4_extent::Lookup;
use ext4_ondisk::orphan;
use ext4_ondisk::{Compat, RoCompat, Structure};

use crate::error::{Error, Location, Result};
use crate::fs::Filesystem;
use crate::inode::InodeBuf;
use crate::txn::Txn;

/// An orphan file block holding entries (its device block).
struct OrphanBlock {
    physical: u64,
}

impl Filesystem {
    /// Finds and processes every orphan inode (writable opens only).
    pub(crate) fn process_orphans(&mut self) -> Result<()> {
        let list = self.orphan_list()?;
        let (file_blocks, file_inodes) = self.orphan_file_entries()?;
        let present = self.geo.features.ro_compat.contains(RoCompat::ORPHAN_PRESENT);
        if list.is_empty() && file_inodes.is_empty() && !present {
            return Ok(());
        }
        let inodes: BTreeSet<u32> = list.iter().chain(&file_inodes).copied().collect();
        if inodes.is_empty() {
            // Only the flag is stale: clear it in place, a single-sector write.
            return self.change_features_now(|f| f.ro_compat.remove(RoCompat::ORPHAN_PRESENT));
        }
        self.op(|txn| {
            for &ino in &inodes {
                let mut ib = txn.read_inode_raw(ino)?;
                if ib.inode.links_count == 0 {
                    if ib.inode.mode != 0 {
                        txn.release_inode(&mut ib)?;
                    }
                } else {
                    let size = ib.inode.size;
                    txn.truncate_inode(&mut ib, size)?;
                    ib.inode.dtime = 0;
                    txn.write_inode(&mut ib)?;
                }
            }
            txn.sb_mut().s_last_orphan.set(0);
            txn.clear_orphan_blocks(&file_blocks)?;
            txn.change_features(|f| f.ro_compat.remove(RoCompat::ORPHAN_PRESENT));
            txn.flush_superblock()
        })?;
        self.commit()
    }

    /// The inodes of the orphan list, in chain order.
    fn orphan_list(&self) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let mut next = self.sb.s_last_orphan.get();
        while next != 0 {
            if next > self.geo.inodes_count || next < self.geo.first_ino || !seen.insert(next) {
                return Err(Error::corrupt(Structure::Superblock, Location::Inode(next), "bad inode on the orphan list"));
            }
            out.push(next);
            next = self.read_inode_raw(next)?.inode.dtime;
        }
        Ok(out)
    }

    /// The orphan file's inode and its blocks in order (`None` without the
    /// feature); a hole is corruption.
    fn orphan_file_blocks(&self) -> Result<Option<(InodeBuf, Vec<u64>)>> {
        let ino = self.sb.s_orphan_file_inum.get();
        if !self.geo.features.compat.contains(Compat::ORPHAN_FILE) || ino == 0 {
            return Ok(None);
        }
        let ib = self.read_inode(ino)?;
        let bs = u64::from(self.geo.block_size);
        let mut blocks = Vec::new();
        for logical in 0..(ib.inode.size / bs).min(u64::from(u32::MAX)) as u32 {
            let Lookup::Mapped(run) = self.lookup_block(&ib, logical)? else {
                return Err(Error::corrupt(Structure::OrphanBlock, Location::Inode(ino), format!("orphan file block {logical} is a hole")));
            };
            blocks.push(run.physical);
        }
        Ok(Some((ib, blocks)))
    }

    /// The orphan file's blocks that hold entries, and the entries.
    fn orphan_file_entries(&self) -> Result<(Vec<OrphanBlock>, Vec<u32>)> {
        let Some((ib, physicals)) = self.orphan_file_blocks()? else {
            return Ok((Vec::new(), Vec::new()));
        };
        let ino = ib.ino;
        let csum = self.geo.metadata_csum();
        let (mut blocks, mut inodes) = (Vec::new(), Vec::new());
        for physical in physicals {
            let entries: Vec<u32> = self.read_meta(physical, |d| -> Result<Vec<u32>> {
                orphan::verify_orphan_block(self.geo.csum_seed, ino, ib.inode.generation, physical, d, csum && self.opts.verify_checksums)
                    .map_err(|e| Error::format(&e, Location::InodeBlock { ino, block: physical }))?;
                Ok(orphan::orphan_inodes(d).collect())
            })??;
            for &e in &entries {
                if e > self.geo.inodes_count || e < self.geo.first_ino {
                    return Err(Error::corrupt(
                        Structure::OrphanBlock,
                        Location::InodeBlock { ino, block: physical },
                        format!("entry {e}"),
                    ));
                }
            }
            if !entries.is_empty() {
                blocks.push(OrphanBlock { physical });
                inodes.extend(entries);
            }
        }
        Ok((blocks, inodes))
    }
}

impl Txn<'_> {
    /// Empties the orphan file blocks that held entries.
    fn clear_orphan_blocks(&mut self, blocks: &[OrphanBlock]) -> Result<()> {
        if blocks.is_empty() {
            return Ok(());
        }
        let ino = self.sb.s_orphan_file_inum.get();
        let generation = self.read_inode(ino)?.inode.generation;
        let (seed, csum) = (self.geo.csum_seed, self.geo.metadata_csum());
        for b in blocks {
            let physical = b.physical;
            self.modify_meta(physical, |d| {
                let t = d.len() - orphan::TAIL_SIZE;
                d[..t].fill(0);
                orphan::set_orphan_block_tail(seed, ino, generation, physical, d, csum);
            })?;
        }
        Ok(())
    }
}

/// Where an inode's orphan record lives on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrphanRecord {
    /// Slot `index` of orphan file block `physical`.
    File { physical: u64, index: usize },
    /// On the list chained from `s_last_orphan` through `i_dtime`.
    List,
}

/// Work left after an operation, done in steps of their own transactions
/// while the inode's orphan record makes a crash finish it at the next open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deferred {
    /// Free the blocks past `i_size`, then drop the orphan record.
    Truncate(u32),
    /// Free the blocks of an inode without links, then the inode.
    Release(u32),
}

/// Blocks freed per transaction when a big file is truncated or deleted.
pub(crate) const DEFAULT_STEP_BLOCKS: u64 = 1 << 15;

impl Filesystem {
    /// A free slot of the orphan file: (block, slot index).
    fn orphan_file_free_slot(&self) -> Result<Option<(u64, usize)>> {
        let Some((_, physicals)) = self.orphan_file_blocks()? else {
            return Ok(None);
        };
        let taken: BTreeSet<(u64, usize)> = self
            .write
            .handles
            .orphan_records
            .values()
            .filter_map(|r| match *r {
                OrphanRecord::File { physical, index } => Some((physical, index)),
                OrphanRecord::List => None,
            })
            .collect();
        for physical in physicals {
            let free = self.read_meta(physical, |d| {
                (0..orphan::inodes_per_block(d.len() as u32)).find(|&i| orphan::orphan_slot(d, i) == 0 && !taken.contains(&(physical, i)))
            })?;
            if let Some(index) = free {
                return Ok(Some((physical, index)));
            }
        }
        Ok(None)
    }

    /// Whether freeing inode `ib`'s blocks from logical block `from` on is
    /// big enough to be done in steps.
    pub(crate) fn needs_steps(&self, ib: &InodeBuf, from: u64) -> Result<bool> {
        if !self.has_block_map(ib) || !self.journal.is_journaling() {
            return Ok(false);
        }
        let step = self.write.handles.step_blocks;
        // i_blocks bounds what is mapped (data and map blocks).
        if self.inode_fs_blocks(ib) <= step {
            return Ok(false);
        }
        Ok(self.step_cuts(ib, from)?.len() > 2)
    }

    /// Logical cut points `from = c0 < c1 < … < ck = 2^32` such that each
    /// `[c(i), c(i+1))` maps at most one step of blocks.
    fn step_cuts(&self, ib: &InodeBuf, from: u64) -> Result<Vec<u64>> {
        let step = self.write.handles.step_blocks.max(1);
        let mut cuts = vec![from];
        let mut count = 0u64;
        self.for_each_mapped_run(ib, |logical, len| {
            let (mut start, end) = (logical.max(from), logical + len);
            while start < end {
                let take = (end - start).min(step - count);
                count += take;
                start += take;
                if count == step {
                    cuts.push(start);
                    count = 0;
                }
            }
        })?;
        if cuts.last() == Some(&(1 << 32)) {
            cuts.pop();
        }
        cuts.push(1 << 32);
        cuts.dedup();
        Ok(cuts)
    }

    /// Frees inode `ino`'s blocks past `i_size` in steps (one transaction
    /// each, the last one first), then finishes `what`.
    pub(crate) fn finish_in_steps(&mut self, what: Deferred) -> Result<()> {
        let (Deferred::Truncate(ino) | Deferred::Release(ino)) = what;
        let ib = self.read_inode_raw(ino)?;
        let bs = u64::from(self.geo.block_size);
        let from = if matches!(what, Deferred::Release(_)) { 0 } else { ib.inode.size.div_ceil(bs).min(1 << 32) };
        let cuts = if self.has_block_map(&ib) { self.step_cuts(&ib, from)? } else { Vec::new() };
        for w in cuts.windows(2).rev() {
            let (start, end) = (w[0] as u32, w[1]);
            self.op(|txn| {
                let mut ib = txn.read_inode_raw(ino)?;
                txn.unmap(&mut ib, start, end)?;
                txn.write_inode(&mut ib)
            })?;
        }
        self.op(|txn| {
            let mut ib = txn.read_inode_raw(ino)?;
            match what {
                Deferred::Release(_) => txn.release_inode(&mut ib),
                Deferred::Truncate(_) => {
                    txn.orphan_del(&mut ib)?;
                    txn.write_inode(&mut ib)
                }
            }
        })
    }
}

impl Txn<'_> {
    /// Records inode `ib` as an orphan, as `ext4_orphan_add` does: in the
    /// orphan file when it has a free slot, else at the head of the list
    /// (`s_last_orphan`, the old head kept in `i_dtime`; the caller writes
    /// `ib`). Without a journal the kernel keeps no orphans, nor does this.
    pub(crate) fn orphan_add(&mut self, ib: &mut InodeBuf) -> Result<()> {
        if !self.journal.is_journaling() || self.write.handles.orphan_records.contains_key(&ib.ino) {
            return Ok(());
        }
        if let Some((physical, index)) = self.orphan_file_free_slot()? {
            self.set_orphan_file_slot(physical, index, ib.ino)?;
            self.change_features(|f| f.ro_compat.insert(RoCompat::ORPHAN_PRESENT));
            self.handles_mut().orphan_records.insert(ib.ino, OrphanRecord::File { physical, index });
            return Ok(());
        }
        ib.inode.dtime = self.sb.s_last_orphan.get();
        self.sb_mut().s_last_orphan.set(ib.ino);
        self.handles_mut().orphan_records.insert(ib.ino, OrphanRecord::List);
        Ok(())
    }

    /// Drops inode `ib`'s orphan record, if it has one (`ext4_orphan_del`;
    /// the caller writes `ib`).
    pub(crate) fn orphan_del(&mut self, ib: &mut InodeBuf) -> Result<()> {
        let Some(record) = self.handles_mut().orphan_records.remove(&ib.ino) else {
            return Ok(());
        };
        match record {
            OrphanRecord::File { physical, index } => {
                self.set_orphan_file_slot(physical, index, 0)?;
                if !self.write.handles.orphan_records.values().any(|r| matches!(r, OrphanRecord::File { .. })) {
                    self.change_features(|f| f.ro_compat.remove(RoCompat::ORPHAN_PRESENT));
                }
            }
            OrphanRecord::List => {
                let next = ib.inode.dtime;
                if self.sb.s_last_orphan.get() == ib.ino {
                    self.sb_mut().s_last_orphan.set(next);
                } else {
                    // Find the inode whose link points at this one.
                    let mut prev = self.sb.s_last_orphan.get();
                    let mut steps = 0u32;
                    loop {
                        if prev == 0 || steps > self.geo.inodes_count {
                            return Err(Error::corrupt(
                                Structure::Superblock,
                                Location::Inode(ib.ino),
                                "inode missing from the orphan list",
                            ));
                        }
                        let mut p = self.read_inode_raw(prev)?;
                        if p.inode.dtime == ib.ino {
                            p.inode.dtime = next;
                            self.write_inode(&mut p)?;
                            break;
                        }
                        prev = p.inode.dtime;
                        steps += 1;
                    }
                }
            }
        }
        ib.inode.dtime = 0;
        Ok(())
    }

    /// Stores `orphan` (0: frees it) in slot `index` of orphan file block
    /// `physical`, with a fresh tail.
    fn set_orphan_file_slot(&mut self, physical: u64, index: usize, orphan: u32) -> Result<()> {
        let ino = self.sb.s_orphan_file_inum.get();
        let generation = self.read_inode(ino)?.inode.generation;
        let (seed, csum) = (self.geo.csum_seed, self.geo.metadata_csum());
        self.modify_meta(physical, |d| {
            orphan::set_orphan_slot(d, index, orphan);
            orphan::set_orphan_block_tail(seed, ino, generation, physical, d, csum);
        })
    }
}

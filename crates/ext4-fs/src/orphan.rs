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
        self.op(|fs| {
            for &ino in &inodes {
                let mut ib = fs.read_inode_raw(ino)?;
                if ib.inode.links_count == 0 {
                    if ib.inode.mode != 0 {
                        fs.release_inode(&mut ib)?;
                    }
                } else {
                    let size = ib.inode.size;
                    fs.truncate_inode(&mut ib, size)?;
                    ib.inode.dtime = 0;
                    fs.write_inode(&mut ib)?;
                }
            }
            fs.sb.s_last_orphan.set(0);
            fs.clear_orphan_blocks(&file_blocks)?;
            let mut f = fs.sb.features();
            f.ro_compat.remove(RoCompat::ORPHAN_PRESENT);
            fs.sb.set_features(f);
            fs.geo.features = f;
            fs.flush_superblock()
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

    /// The orphan file's blocks that hold entries, and the entries.
    fn orphan_file_entries(&self) -> Result<(Vec<OrphanBlock>, Vec<u32>)> {
        let ino = self.sb.s_orphan_file_inum.get();
        if !self.geo.features.compat.contains(Compat::ORPHAN_FILE) || ino == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        let ib = self.read_inode(ino)?;
        let bs = u64::from(self.geo.block_size);
        let csum = self.geo.metadata_csum();
        let (mut blocks, mut inodes) = (Vec::new(), Vec::new());
        for logical in 0..(ib.inode.size / bs).min(u64::from(u32::MAX)) as u32 {
            let Lookup::Mapped(run) = self.lookup_block(&ib, logical)? else {
                return Err(Error::corrupt(Structure::OrphanBlock, Location::Inode(ino), format!("orphan file block {logical} is a hole")));
            };
            let physical = run.physical;
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

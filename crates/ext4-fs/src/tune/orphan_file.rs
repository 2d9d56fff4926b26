//! The orphan file removed (`ext2fs_truncate_orphan_file`, the inode
//! freed) or created (`ext2fs_create_orphan_file`: the first free inode,
//! blocks one at a time from the first free block on, each an empty
//! orphan block with its tail).

use ext4_extent::Lookup;
use ext4_ondisk::inode::GOOD_OLD_INODE_SIZE;
use ext4_ondisk::{Compat, Incompat, RoCompat, Structure};

use super::Session;
use super::alloc::MapPlan;
use crate::error::{Error, Location, Result};
use crate::inode::InodeBuf;

impl Session<'_> {
    /// `ext2fs_default_orphan_file_blocks`: 32 blocks below 128 Ki blocks,
    /// then 1/4096 of the filesystem up to 512 blocks.
    pub(super) fn default_orphan_file_blocks(&self) -> u64 {
        let blocks = self.fs.sb.blocks_count();
        let n = match blocks {
            0..131_072 => 32,
            131_072..2_097_152 => blocks / 4096,
            _ => 512,
        };
        let mask = u64::from(self.fs.geo.cluster_ratio) - 1;
        (n + mask) & !mask
    }

    /// The device blocks of the orphan file, in order (a hole is corruption).
    pub(super) fn orphan_file_physical_blocks(&self, ib: &InodeBuf) -> Result<Vec<u64>> {
        let bs = u64::from(self.fs.geo.block_size);
        let ctx = self.raw_map_ctx(ib);
        let kind = crate::fs::Filesystem::map_kind(ib);
        let mut out = Vec::new();
        for logical in 0..(ib.inode.size / bs).min(u64::from(u32::MAX)) as u32 {
            let found = ext4_extent::lookup(kind, &ib.inode.block, &ctx, &mut crate::map::ReadMap { fs: &self.fs }, logical)
                .map_err(|e| e.into_error(ib.ino))?;
            let Lookup::Mapped(run) = found else {
                return Err(Error::corrupt(
                    Structure::OrphanBlock,
                    Location::Inode(ib.ino),
                    format!("orphan file block {logical} is a hole"),
                ));
            };
            out.push(run.physical);
        }
        Ok(out)
    }

    /// Frees every block of the orphan file and zeroes its first 128 bytes.
    fn truncate_orphan_file(&mut self, ino: u32) -> Result<()> {
        let mut ib = self.fs.read_inode_raw(ino)?;
        let (runs, meta) = self.inode_blocks(&ib)?;
        for (start, len) in runs {
            self.fs.op_without_undo(|t| t.free_blocks(start, len, false))?;
        }
        for b in meta {
            self.fs.op_without_undo(|t| t.free_blocks(b, 1, true))?;
        }
        self.fs.op_without_undo(|t| t.apply_pending_frees())?;
        ib.raw[..GOOD_OLD_INODE_SIZE].fill(0);
        self.put_inode_raw(ino, &mut ib.raw)?;
        self.descs_changed = true;
        Ok(())
    }

    /// `^orphan_file`.
    pub(super) fn remove_orphan_file(&mut self) -> Result<()> {
        if self.fs.sb.features().ro_compat.contains(RoCompat::ORPHAN_PRESENT) && !self.t.force {
            return Err(Error::InvalidArgument("the orphan file holds entries (orphan_present): run e2fsck first".into()));
        }
        let ino = self.fs.sb.s_orphan_file_inum.get();
        if ino != 0 {
            self.truncate_orphan_file(ino)?;
            self.fs.op_without_undo(|t| t.free_inode(ino, false))?;
        }
        self.fs.sb.s_orphan_file_inum.set(0);
        let mut w = self.fs.sb.features();
        w.compat.remove(Compat::ORPHAN_FILE);
        w.ro_compat.remove(RoCompat::ORPHAN_PRESENT);
        self.fs.sb.set_features(w);
        Ok(())
    }

    /// Creates (or recreates) the orphan file with `n` blocks.
    pub(super) fn create_orphan_file(&mut self, n: u64) -> Result<()> {
        let n = u32::try_from(n).map_err(|_| Error::InvalidArgument(format!("orphan file of {n} blocks")))?;
        let mut ino = self.fs.sb.s_orphan_file_inum.get();
        if ino == 0 {
            ino = self.alloc_inode_first_free()?;
        } else if self.fs.read_inode_raw(ino)?.inode.size != 0 {
            self.truncate_orphan_file(ino)?;
        }
        let extents = self.fs.sb.features().incompat.contains(Incompat::EXTENTS);
        let bs = self.fs.geo.block_size;
        let mut plan = MapPlan::new(extents, bs);
        let csum = self.fs.geo.metadata_csum();
        let seed = self.fs.geo.csum_seed;
        let mut last = 0u64;
        for lblk in 0..n {
            let b = if extents {
                let b = self.alloc_block_at(last)?;
                plan.append_extent_block(self, lblk, b)?;
                b
            } else {
                plan.push_indirect(self, lblk, last)?
            };
            let mut data = vec![0u8; bs as usize];
            ext4_ondisk::orphan::set_orphan_block_tail(seed, ino, 0, b, &mut data, csum);
            self.fs.op_without_undo(|t| t.write_meta(b, data))?;
            last = b;
        }
        self.write_new_file_inode(ino, &plan, n)?;
        self.fs.sb.s_orphan_file_inum.set(ino);
        let mut w = self.fs.sb.features();
        w.compat.insert(Compat::ORPHAN_FILE);
        self.fs.sb.set_features(w);
        self.descs_changed = true;
        Ok(())
    }
}

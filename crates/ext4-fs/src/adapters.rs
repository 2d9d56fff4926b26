//! Write-side adapters: the layer crates' I/O traits implemented on the
//! running transaction, counting every block they allocate or free so the
//! inode's `i_blocks` stays exact.

use ext4_extent::{Lookup, MapIo, Run};
use ext4_htree::DirIo;
use ext4_ondisk::Structure;

use crate::allocate::Pool;
use crate::error::{Error, Location, Result};
use crate::fs::Filesystem;
use crate::inode::InodeBuf;
use crate::layer::{LayerError, LayerResultExt};
use crate::txn::Txn;

/// Map block access for one inode on a writable filesystem.
pub(crate) struct WriteMap<'a, 'fs> {
    pub(crate) fs: &'a mut Txn<'fs>,
    /// Goal for new map blocks.
    pub(crate) goal: u64,
    /// Blocks allocated minus blocks freed through this adapter.
    pub(crate) delta: i64,
    /// Where new map blocks come from.
    pub(crate) pool: Pool,
    /// With bigalloc, the data runs unmapped through this adapter: which of
    /// their clusters may go is decided once the map is final
    /// ([`Txn::free_file_clusters`]).
    pub(crate) freed_data: Vec<(u64, u64)>,
}

impl<'a, 'fs> WriteMap<'a, 'fs> {
    /// An adapter taking new map blocks near `goal` from `pool`.
    fn new(fs: &'a mut Txn<'fs>, goal: u64, pool: Pool) -> Self {
        Self { fs, goal, delta: 0, pool, freed_data: Vec::new() }
    }
}

impl MapIo for WriteMap<'_, '_> {
    type Error = LayerError;

    fn read_block(&mut self, block: u64, buf: &mut [u8]) -> Result<(), LayerError> {
        Ok(self.fs.read_meta_into(block, buf)?)
    }

    fn write_block(&mut self, block: u64, data: &[u8]) -> Result<(), LayerError> {
        Ok(self.fs.write_meta(block, data.to_vec())?)
    }

    fn alloc_block(&mut self, goal: u64) -> Result<u64, LayerError> {
        let goal = if goal == 0 { self.goal } else { goal };
        let (b, _) = self.fs.alloc_blocks_from(goal, 1, self.pool)?;
        // A map block takes a whole cluster.
        let ratio = self.fs.cluster_ratio();
        self.delta += ratio as i64;
        self.goal = b + ratio;
        Ok(b)
    }

    fn free_blocks(&mut self, start: u64, count: u64, meta: bool) -> Result<(), LayerError> {
        let ratio = self.fs.cluster_ratio();
        if ratio > 1 && !meta {
            self.freed_data.push((start, count));
            return Ok(());
        }
        self.fs.free_blocks(start, count, meta)?;
        let clusters = if count == 0 { 0 } else { (start + count - 1) / ratio - start / ratio + 1 };
        self.delta -= (clusters * ratio) as i64;
        Ok(())
    }
}

impl Filesystem {
    /// Adds `delta` filesystem blocks to an inode's `i_blocks` (512-byte
    /// units, or blocks when the inode has `HUGE_FILE`).
    pub(crate) fn add_blocks(&self, ib: &mut InodeBuf, delta: i64) -> Result<()> {
        let huge = ib.inode.flags.contains(ext4_ondisk::InodeFlags::HUGE_FILE);
        let unit = if huge { 1 } else { i64::from(self.geo.block_size / 512) };
        let v = ib.inode.blocks as i64 + delta * unit;
        if !(0..1 << 48).contains(&v) {
            return Err(Error::corrupt(Structure::Inode, Location::Inode(ib.ino), "i_blocks out of range"));
        }
        ib.inode.blocks = v as u64;
        Ok(())
    }

    /// A goal for new blocks of an inode: just after its last mapped block
    /// before `logical`, else the start of its group's flex group.
    pub(crate) fn block_goal(&self, ib: &InodeBuf, logical: u32) -> Result<u64> {
        if logical > 0 {
            if let Lookup::Mapped(run) = self.lookup_block(ib, logical - 1)? {
                return Ok(run.physical + u64::from(run.len));
            }
        }
        let (g, _) = self.geo.inode_group(ib.ino);
        let flex_first = g - g % self.geo.groups_per_flex.max(1);
        Ok(self.geo.group_first_block(flex_first))
    }
}

impl Txn<'_> {
    /// Maps `[run.logical, +run.len)` of an inode to `run.physical`, growing
    /// its map (map blocks counted in `i_blocks`; the data blocks are the caller's).
    pub(crate) fn map_run(&mut self, ib: &mut InodeBuf, run: Run) -> Result<()> {
        self.map_run_from(ib, run, Pool::Normal)
    }

    /// [`Self::map_run`] for file data, whose map blocks may come from the
    /// reserve: the kernel maps written data at writeback with
    /// `EXT4_GET_BLOCKS_METADATA_NOFAIL`, the data itself counted earlier.
    pub(crate) fn map_data_run(&mut self, ib: &mut InodeBuf, run: Run) -> Result<()> {
        self.map_run_from(ib, run, Pool::NoFail)
    }

    fn map_run_from(&mut self, ib: &mut InodeBuf, run: Run, pool: Pool) -> Result<()> {
        let ctx = self.map_ctx(ib);
        let kind = Filesystem::map_kind(ib);
        let mut io = WriteMap::new(self, run.physical, pool);
        let mut root = ib.inode.block;
        let r = ext4_extent::map_range(kind, &mut root, &ctx, &mut io, run);
        let delta = io.delta;
        ib.inode.block = root;
        self.add_blocks(ib, delta)?;
        r.in_inode(ib.ino)
    }

    /// Unmaps logical blocks `[start, end)` of an inode, freeing data and map blocks.
    pub(crate) fn unmap(&mut self, ib: &mut InodeBuf, start: u32, end: u64) -> Result<()> {
        let ctx = self.map_ctx(ib);
        let kind = Filesystem::map_kind(ib);
        let goal = self.geo.group_first_block(self.geo.inode_group(ib.ino).0);
        // Freeing space must not fail for want of a map block (`EXT4_EX_NOFAIL`).
        let mut io = WriteMap::new(self, goal, Pool::NoFail);
        let mut root = ib.inode.block;
        let r = ext4_extent::unmap_range(kind, &mut root, &ctx, &mut io, start, end);
        let (delta, freed) = (io.delta, io.freed_data);
        ib.inode.block = root;
        self.add_blocks(ib, delta)?;
        r.in_inode(ib.ino)?;
        if !freed.is_empty() {
            let gone = self.free_file_clusters(ib, &freed, start, end)?;
            self.add_blocks(ib, -(gone as i64))?;
        }
        Ok(())
    }

    /// Marks `[start, start + len)` of an extent-mapped inode written (its
    /// splits may take map blocks from the reserve, as at writeback).
    pub(crate) fn mark_written(&mut self, ib: &mut InodeBuf, start: u32, len: u32) -> Result<()> {
        let ctx = self.map_ctx(ib);
        let goal = self.geo.group_first_block(self.geo.inode_group(ib.ino).0);
        let mut io = WriteMap::new(self, goal, Pool::NoFail);
        let mut root = ib.inode.block;
        let r = ext4_extent::tree::mark_written(&mut root, &ctx, &mut io, start, len);
        let delta = io.delta;
        ib.inode.block = root;
        self.add_blocks(ib, delta)?;
        r.in_inode(ib.ino)
    }
}

/// Directory block access for one directory on a writable filesystem; the
/// directory inode (size, map, `i_blocks`) is updated in `dir` and written
/// back by the caller.
pub(crate) struct WriteDir<'a, 'fs> {
    pub(crate) fs: &'a mut Txn<'fs>,
    pub(crate) dir: &'a mut InodeBuf,
}

impl DirIo for WriteDir<'_, '_> {
    type Error = LayerError;

    fn block_count(&self) -> u32 {
        (self.dir.inode.size / u64::from(self.fs.geo.block_size)).min(u64::from(u32::MAX)) as u32
    }

    fn read_block(&mut self, logical: u32, buf: &mut [u8]) -> Result<(), LayerError> {
        let block = self.fs.dir_block(self.dir, logical)?;
        Ok(self.fs.read_meta_into(block, buf)?)
    }

    fn write_block(&mut self, logical: u32, data: &[u8]) -> Result<(), LayerError> {
        let block = self.fs.dir_block(self.dir, logical)?;
        Ok(self.fs.write_meta(block, data.to_vec())?)
    }

    fn append_block(&mut self) -> Result<u32, LayerError> {
        let logical = self.block_count();
        let bs = u64::from(self.fs.geo.block_size);
        let max_size = if self.fs.geo.features.incompat.contains(ext4_ondisk::Incompat::LARGEDIR) { u64::MAX } else { 1 << 31 };
        if self.dir.inode.size + bs > max_size {
            return Err(Error::NoSpace.into());
        }
        let (block, _) = self.fs.alloc_file_blocks(self.dir, logical, 1)?;
        self.fs.map_run(self.dir, Run { logical, physical: block, len: 1, unwritten: false })?;
        self.fs.write_meta(block, vec![0u8; bs as usize])?;
        self.dir.inode.size += bs;
        Ok(logical)
    }
}

//! Inline-data directories: entries in `i_block` after the 4-byte parent
//! and in the `system.data` value, grown and moved to a block as
//! `fs/ext4/inline.c` does (`ext4_try_create_inline_dir`,
//! `ext4_try_add_inline_entry`, `ext4_convert_inline_data_nolock`).

use ext4_extent::Run;
use ext4_htree::linear::{Region, RegionError};
use ext4_ondisk::dir as d;
use ext4_ondisk::inode::I_BLOCK_SIZE;
use ext4_ondisk::{FileType, Incompat, Structure};

use crate::error::{Error, Result};
use crate::fs::Filesystem;
use crate::inode::InodeBuf;
use crate::layer::corrupt_in;
use crate::txn::Txn;

/// Bytes of `i_block` holding the parent's inode number (`EXT4_INLINE_DOTDOT_SIZE`).
const DOTDOT_SIZE: usize = 4;

impl Filesystem {
    fn inline_dir_region(&self) -> Region {
        Region {
            block_size: self.geo.block_size,
            filetype: self.geo.features.incompat.contains(Incompat::FILETYPE),
            inodes_count: self.geo.inodes_count,
        }
    }

    fn region_error(dir: &InodeBuf, e: RegionError) -> Error {
        match e {
            RegionError::Exists => Error::Exists("name".into()),
            RegionError::Corrupt(detail) => corrupt_in(Structure::DirBlock, dir.ino, format!("inline directory: {detail}")),
        }
    }

    /// The `system.data` value of an inline inode.
    fn inline_value(&self, ib: &InodeBuf) -> Result<Vec<u8>> {
        Ok(self.read_xattr(ib, b"system.data")?.unwrap_or_default())
    }

    /// Stretches the last record of `value[..old]` over the grown value, or
    /// covers an empty one with an unused record (`ext4_update_final_de`).
    fn extend_final_entry(&self, dir: &InodeBuf, value: &mut [u8], old: usize) -> Result<()> {
        let region = self.inline_dir_region();
        let bs = region.block_size;
        let mut last = None;
        for e in region.records(&value[..old]) {
            let e = e.map_err(|e| Filesystem::region_error(dir, e))?;
            last = Some((e.offset as usize, e.rec_len));
        }
        match last {
            Some((pos, rec_len)) => d::set_rec_len(value, pos, rec_len + (value.len() - old) as u32, bs),
            None => d::write_entry(value, 0, 0, value.len() as u32, &[], 0, bs),
        }
        Ok(())
    }

    /// Points an inline directory's `..` at `parent` (the caller writes the inode).
    pub(crate) fn inline_set_parent(&self, dir: &mut InodeBuf, parent: u32) {
        ext4_ondisk::put_u32(&mut dir.inode.block, 0, parent);
    }
}

impl Txn<'_> {
    /// Runs `f` on each entry region in turn (`i_block` after the parent,
    /// then `system.data`) until it returns `Some`; a changed part is stored back (the caller writes the inode).
    fn in_inline_parts<R>(
        &mut self,
        dir: &mut InodeBuf,
        mut f: impl FnMut(&Region, &mut [u8]) -> std::result::Result<Option<R>, RegionError>,
    ) -> Result<Option<R>> {
        let region = self.inline_dir_region();
        let mut head = dir.inode.block;
        if let Some(r) = f(&region, &mut head[DOTDOT_SIZE..]).map_err(|e| Filesystem::region_error(dir, e))? {
            dir.inode.block = head;
            return Ok(Some(r));
        }
        let mut value = self.inline_value(dir)?;
        if let Some(r) = f(&region, &mut value).map_err(|e| Filesystem::region_error(dir, e))? {
            self.set_inline_value(dir, Some(&value))?;
            return Ok(Some(r));
        }
        Ok(None)
    }

    /// Makes a new directory inline: parent first, one unused record over
    /// the rest of `i_block`, an empty `system.data`. `false` when the
    /// filesystem or the inode has no room for inline data.
    pub(crate) fn init_inline_dir(&mut self, child: &mut InodeBuf, parent: u32) -> Result<bool> {
        if self.inline_capacity(child)? == 0 {
            return Ok(false);
        }
        let mut block = [0u8; I_BLOCK_SIZE];
        ext4_ondisk::put_u32(&mut block, 0, parent);
        self.inline_dir_region().fill(&mut block[DOTDOT_SIZE..], &[]);
        self.store_inline(child, &block)?;
        child.inode.size = I_BLOCK_SIZE as u64;
        child.inode.links_count = 2;
        Ok(true)
    }

    /// Adds `name -> ino` to an inline directory: in `i_block`, else in
    /// `system.data`, grown to all the room the body has. `false` when the
    /// directory was moved to a block instead (the caller adds it there).
    pub(crate) fn inline_add_entry(&mut self, dir: &mut InodeBuf, name: &[u8], ino: u32, ft: u8) -> Result<bool> {
        if self.in_inline_parts(dir, |r, region| r.insert(region, name, ino, ft).map(|o| o.map(drop)))?.is_some() {
            return Ok(true);
        }
        let mut value = self.inline_value(dir)?;
        let old = value.len();
        let room = self.inline_value_room(dir)?.unwrap_or(0);
        // `ext4_update_inline_dir`: growing by less than the smallest entry is no room.
        if room > old + d::rec_len_for(1) {
            let region = self.inline_dir_region();
            value.resize(room, 0);
            self.extend_final_entry(dir, &mut value, old)?;
            if region.insert(&mut value, name, ino, ft).map_err(|e| Filesystem::region_error(dir, e))?.is_some() {
                self.set_inline_value(dir, Some(&value))?;
                dir.inode.size = (I_BLOCK_SIZE + room) as u64;
                return Ok(true);
            }
        }
        self.inline_dir_to_block(dir)?;
        Ok(false)
    }

    /// Removes `name` from an inline directory; returns the inode it named.
    pub(crate) fn inline_remove_entry(&mut self, dir: &mut InodeBuf, name: &[u8]) -> Result<Option<u32>> {
        self.in_inline_parts(dir, |r, region| r.remove(region, name))
    }

    /// Points the entry `name` of an inline directory at `ino`; returns the inode it named.
    pub(crate) fn inline_retarget(&mut self, dir: &mut InodeBuf, name: &[u8], ino: u32, ft: u8) -> Result<Option<u32>> {
        self.in_inline_parts(dir, |r, region| r.retarget(region, name, ino, ft))
    }

    /// Moves an inline directory into one block: `.`, `..`, then its entries
    /// packed, the last one reaching the checksum tail.
    pub(crate) fn inline_dir_to_block(&mut self, dir: &mut InodeBuf) -> Result<()> {
        let region = self.inline_dir_region();
        let parent = ext4_ondisk::get_u32(&dir.inode.block, 0);
        let value = self.inline_value(dir)?;
        let mut names: Vec<(u32, Vec<u8>, u8)> = Vec::new();
        for part in [&dir.inode.block[DOTDOT_SIZE..], &value[..]] {
            region
                .for_each(part, |e| {
                    names.push((e.inode, e.name.to_vec(), e.file_type));
                    true
                })
                .map_err(|e| Filesystem::region_error(dir, e))?;
        }
        let dir_ft = if region.filetype { FileType::Directory.dir_entry_code() } else { 0 };
        let mut entries: Vec<(u32, &[u8], u8)> = vec![(dir.ino, b".", dir_ft), (parent, b"..", dir_ft)];
        entries.extend(names.iter().map(|(i, n, t)| (*i, &n[..], *t)));
        let bs = self.block_size();
        let seed = self.inode_seed(dir.ino, dir.inode.generation);
        let end = bs - if seed.is_some() { d::TAIL_SIZE } else { 0 };
        if Region::packed_len(&entries) > end {
            return Err(corrupt_in(Structure::DirBlock, dir.ino, "inline directory entries do not fit one block"));
        }
        let mut block = vec![0u8; bs];
        region.fill(&mut block[..end], &entries);
        if let Some(seed) = seed {
            d::write_tail(&mut block);
            d::set_dir_block_checksum(seed, &mut block);
        }
        self.clear_inline(dir)?;
        let (physical, _) = self.alloc_file_blocks(dir, 0, 1)?;
        self.map_run(dir, Run { logical: 0, physical, len: 1, unwritten: false })?;
        self.write_meta(physical, block)?;
        dir.inode.size = bs as u64;
        Ok(())
    }
}

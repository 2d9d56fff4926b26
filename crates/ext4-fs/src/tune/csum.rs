//! Rewriting every checksum (tune2fs' `rewrite_metadata_checksums`), for
//! `metadata_csum` on or off and for a new checksum seed (a new UUID, or
//! `metadata_csum_seed` off): group descriptors and bitmaps, then every
//! inode in use (EA inodes first, whose value hashes other inodes' entries
//! mix in), each with its extent blocks, directory blocks and xattr
//! block, then the orphan file's blocks and the MMP block.
//!
//! When the filesystem had checksums, a first pass checks every one of
//! them with the old scheme and changes nothing: a damaged structure stops
//! the change before anything is written.

use std::collections::HashSet;

use ext4_extent::{MapCtx, MapKind};
use ext4_ondisk::checksum::{bitmap, crc32c, inode_seed};
use ext4_ondisk::inode::{set_inode_checksum, verify_inode_checksum};
use ext4_ondisk::superblock::{CHECKSUM_TYPE_CRC32C, CsumKind};
use ext4_ondisk::xattr::{BLOCK_HEADER_SIZE, XATTR_MAGIC, ea_inode_entries, mix_ea_inode_hash, set_entry_hash};
use ext4_ondisk::{GroupDescFlags, Inode, InodeFlags, Structure, Timestamp};

use super::{Rewrite, Session};
use crate::error::{Error, Location, Result};
use crate::inode::InodeBuf;
use crate::map::ReadMap;

/// Which pass of a rewrite runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pass {
    /// Check every old checksum; write nothing.
    Verify,
    /// Write every structure with the new scheme.
    Write,
}

/// Which inodes a pass over the tables visits.
#[derive(Debug, Clone, Copy)]
enum Visit {
    /// EA inodes only.
    EaInodes,
    /// The others `Rewrite` selects.
    Others(Rewrite),
}

impl Visit {
    fn wants(self, inode: &Inode) -> bool {
        let ea = inode.flags.contains(InodeFlags::EA_INODE);
        match self {
            Visit::EaInodes => ea,
            Visit::Others(_) if ea => false,
            Visit::Others(r) if inode.mode & ext4_ondisk::inode::S_IFMT == 0x4000 => r.dirs,
            Visit::Others(r) => r.others,
        }
    }
}

impl Session<'_> {
    /// The whole rewrite: a verifying pass over old checksums, then the
    /// switch to the new scheme and the writing pass.
    pub(super) fn rewrite_checksums(&mut self, what: Rewrite) -> Result<()> {
        self.fs.opts.verify_checksums = false;
        if self.old.kind == CsumKind::MetadataCsum {
            self.walk(what, Pass::Verify)?;
        }
        self.mark_busy()?;
        self.refresh_geometry(false)?;
        self.rewrite_bitmap_checksums()?;
        self.descs_changed = true;
        self.walk(what, Pass::Write)?;
        self.rewrite_orphan_file()?;
        self.rewrite_mmp()?;
        self.fs.sb.s_checksum_type = if self.fs.geo.metadata_csum() { CHECKSUM_TYPE_CRC32C } else { 0 };
        Ok(())
    }

    /// The seed structures are checked with (verify pass) or written with
    /// (write pass, `None` without checksums).
    pub(super) fn pass_seed(&self, pass: Pass) -> Option<u32> {
        match pass {
            Pass::Verify => (self.old.kind == CsumKind::MetadataCsum).then_some(self.old.seed),
            Pass::Write => self.fs.geo.metadata_csum().then_some(self.fs.geo.csum_seed),
        }
    }

    /// EA inodes first (their hashes feed other inodes' entries), then the rest.
    fn walk(&mut self, what: Rewrite, pass: Pass) -> Result<()> {
        let mut xattr_blocks = HashSet::new();
        if what.ea && self.fs.sb.features().incompat.contains(ext4_ondisk::Incompat::EA_INODE) {
            self.inode_pass(Visit::EaInodes, pass, &mut xattr_blocks)?;
        }
        self.inode_pass(Visit::Others(what), pass, &mut xattr_blocks)
    }

    /// The bitmaps' checksums in the descriptors, for every group whose
    /// bitmaps are initialized (`write_bitmaps`); without `metadata_csum`
    /// the old values stay, as tune2fs leaves them.
    fn rewrite_bitmap_checksums(&mut self) -> Result<()> {
        let geo = self.fs.geo.clone();
        if !geo.metadata_csum() {
            return Ok(());
        }
        let (bb_len, ib_len) = (geo.clusters_per_group as usize / 8, geo.inodes_per_group as usize / 8);
        for g in 0..geo.group_count as usize {
            let d = self.fs.groups[g].clone();
            if !d.flags.contains(GroupDescFlags::BLOCK_UNINIT) {
                let c = self.fs.read_meta(d.block_bitmap, |b| bitmap(geo.csum_seed, &b[..bb_len]))?;
                self.fs.groups[g].block_bitmap_csum = c;
            }
            if !d.flags.contains(GroupDescFlags::INODE_UNINIT) {
                let c = self.fs.read_meta(d.inode_bitmap, |b| bitmap(geo.csum_seed, &b[..ib_len]))?;
                self.fs.groups[g].inode_bitmap_csum = c;
            }
        }
        Ok(())
    }

    /// One pass over the inode tables as libext2fs' inode scan sees them:
    /// with group checksums, uninitialized groups and the unused end of
    /// each table are skipped.
    fn inode_pass(&mut self, visit: Visit, pass: Pass, xattr_blocks: &mut HashSet<u64>) -> Result<()> {
        let geo = self.fs.geo.clone();
        let lazy = match pass {
            Pass::Verify => self.old.kind != CsumKind::None,
            Pass::Write => geo.has_group_csum(),
        };
        for g in 0..geo.group_count {
            let d = self.fs.groups[g as usize].clone();
            if lazy && d.flags.contains(GroupDescFlags::INODE_UNINIT) {
                continue;
            }
            let count = if lazy { geo.inodes_per_group.saturating_sub(d.itable_unused) } else { geo.inodes_per_group };
            let used: Vec<bool> =
                self.fs.read_meta(d.inode_bitmap, |b| (0..count as usize).map(|i| b[i / 8] & (1 << (i % 8)) != 0).collect())?;
            for (i, in_use) in used.into_iter().enumerate() {
                let ino = g * geo.inodes_per_group + i as u32 + 1;
                let (block, off) = self.fs.inode_location(ino)?;
                let isz = geo.inode_size as usize;
                let raw = self.fs.read_meta(block, |b| b[off..off + isz].to_vec())?;
                let zero = raw.iter().all(|&b| b == 0);
                // A free inode that is zero stays as it is; a reserved one
                // in use gets its checksum even when zero, as tune2fs writes it.
                if zero && (!in_use || pass == Pass::Verify) {
                    continue;
                }
                let wanted = Inode::parse(&raw).map_or(true, |inode| visit.wants(&inode));
                if wanted {
                    self.rewrite_inode(ino, raw, in_use, pass, xattr_blocks)?;
                }
            }
            if pass == Pass::Write {
                self.fs.maybe_commit()?;
            }
        }
        Ok(())
    }

    /// One inode (`rewrite_one_inode`): a free one that is not zero is
    /// zeroed; one in use gets its EA value hash, its in-inode entries'
    /// hashes, its extent blocks, directory blocks and xattr block, then
    /// its own checksum.
    fn rewrite_inode(&mut self, ino: u32, mut raw: Vec<u8>, in_use: bool, pass: Pass, xattr_blocks: &mut HashSet<u64>) -> Result<()> {
        if !in_use {
            if pass == Pass::Verify {
                return Ok(());
            }
            raw.fill(0);
        }
        let inode = Inode::parse(&raw).map_err(|e| Error::format(&e, Location::Inode(ino)))?;
        let mut ib = InodeBuf { ino, inode, raw };
        if in_use {
            if let (Pass::Verify, Some(seed)) = (pass, self.pass_seed(pass)) {
                verify_inode_checksum(seed, ino, &ib.raw).map_err(|e| Error::format(&e, Location::Inode(ino)))?;
            }
            self.rewrite_inode_parts(&mut ib, pass, xattr_blocks)?;
        }
        if pass == Pass::Write {
            if let Some(seed) = self.pass_seed(pass) {
                set_inode_checksum(seed, ino, &mut ib.raw);
            }
            let (block, off) = self.fs.inode_location(ino)?;
            let raw = &ib.raw;
            self.fs.op_without_undo(|t| t.modify_meta(block, |d| d[off..off + raw.len()].copy_from_slice(raw)))?;
        }
        Ok(())
    }

    /// What hangs off an inode in use.
    fn rewrite_inode_parts(&mut self, ib: &mut InodeBuf, pass: Pass, xattr_blocks: &mut HashSet<u64>) -> Result<()> {
        let flags = ib.inode.flags;
        if flags.contains(InodeFlags::EA_INODE) && pass == Pass::Write {
            let hash = crc32c(self.fs.geo.csum_seed, &self.inode_value(ib)?);
            ib.inode.atime = Timestamp { secs: i64::from(hash), nsec: ib.inode.atime.nsec };
            ib.inode.write(&mut ib.raw);
        }
        if pass == Pass::Write {
            self.refresh_inode_ea_hashes(ib)?;
        }
        let inline = flags.contains(InodeFlags::INLINE_DATA);
        if flags.contains(InodeFlags::EXTENTS) && !inline {
            self.rewrite_extent_blocks(ib, pass)?;
        }
        if ib.is_dir() && !inline {
            self.rewrite_directory(ib, pass)?;
        }
        let acl = ib.inode.file_acl;
        if acl != 0 && xattr_blocks.insert(acl) {
            self.rewrite_xattr_block(ib.ino, acl, pass)?;
        }
        Ok(())
    }

    /// The map context of a rewrite: no checksum checks by the map layer
    /// (the passes check and set them themselves).
    pub(super) fn raw_map_ctx(&self, ib: &InodeBuf) -> MapCtx {
        MapCtx { csum_seed: None, ..self.fs.map_ctx(ib) }
    }

    /// The seed of inode `ib`'s own blocks in a pass (`None` without checksums).
    pub(super) fn inode_block_seed(&self, ib: &InodeBuf, pass: Pass) -> Option<u32> {
        self.pass_seed(pass).map(|s| inode_seed(s, ib.ino, ib.inode.generation))
    }

    /// Every extent tree block below the inode: checked, or given its new tail.
    fn rewrite_extent_blocks(&mut self, ib: &InodeBuf, pass: Pass) -> Result<()> {
        let Some(seed) = self.inode_block_seed(ib, pass) else { return Ok(()) };
        let ctx = self.raw_map_ctx(ib);
        let mut blocks = Vec::new();
        ext4_extent::for_each_map_block(MapKind::Extents, &ib.inode.block, &ctx, &mut ReadMap { fs: &self.fs }, |b| {
            blocks.push(b);
            std::ops::ControlFlow::Continue(())
        })
        .map_err(|e| e.into_error(ib.ino))?;
        let at = |block| Location::InodeBlock { ino: ib.ino, block };
        for b in blocks {
            if pass == Pass::Verify {
                self.fs.read_meta(b, |d| -> Result<()> {
                    let node = ext4_ondisk::extent::ExtentNode::parse(d).map_err(|e| Error::format(&e, at(b)))?;
                    ext4_ondisk::extent::verify_extent_block(seed, d, &node).map_err(|e| Error::format(&e, at(b)))
                })??;
            } else {
                self.fs.op_without_undo(|t| t.modify_meta(b, |d| ext4_ondisk::extent::set_extent_block_checksum(seed, d)))?;
            }
        }
        Ok(())
    }

    /// The value of an EA inode (at most 64 KiB), read through its map.
    fn inode_value(&self, ib: &InodeBuf) -> Result<Vec<u8>> {
        let size = usize::try_from(ib.inode.size).ok().filter(|&s| s <= crate::XATTR_SIZE_MAX);
        let size = size.ok_or_else(|| Error::corrupt(Structure::Inode, Location::Inode(ib.ino), "EA inode larger than 64 KiB"))?;
        let bs = u64::from(self.fs.geo.block_size);
        let mut value = vec![0u8; size];
        let ctx = self.raw_map_ctx(ib);
        let mut runs = Vec::new();
        ext4_extent::for_each_run(crate::fs::Filesystem::map_kind(ib), &ib.inode.block, &ctx, &mut ReadMap { fs: &self.fs }, |r| {
            runs.push(r);
            std::ops::ControlFlow::Continue(())
        })
        .map_err(|e| e.into_error(ib.ino))?;
        for r in runs.into_iter().filter(|r| !r.unwritten) {
            let start = u64::from(r.logical) * bs;
            if start >= size as u64 {
                break;
            }
            let end = (r.logical_end() * bs).min(size as u64);
            self.fs.read_data(r.physical, 0, &mut value[start as usize..end as usize])?;
        }
        Ok(value)
    }

    /// The value hash an EA inode carries now (rewritten by the first pass).
    fn ea_hash(&self, inum: u32) -> Result<u32> {
        let ea = self.fs.read_inode_raw(inum)?;
        Ok(ea.inode.atime.secs as u32)
    }

    /// The hashes of in-inode entries whose values live in EA inodes.
    fn refresh_inode_ea_hashes(&mut self, ib: &mut InodeBuf) -> Result<()> {
        let area = ib.xattr_area();
        if area.len() < 4 || ext4_ondisk::get_u32(area, 0) != XATTR_MAGIC {
            return Ok(());
        }
        let entries = ea_inode_entries(&area[4..], 0, Structure::InodeXattrs).map_err(|e| Error::format(&e, Location::Inode(ib.ino)))?;
        for (pos, inum, name_hash) in entries {
            let hash = mix_ea_inode_hash(name_hash, self.ea_hash(inum)?);
            set_entry_hash(&mut ib.xattr_area_mut()[4..], pos, hash);
        }
        Ok(())
    }

    /// An xattr block: checked, or rewritten with fresh EA entry hashes,
    /// its block hash and its checksum.
    fn rewrite_xattr_block(&mut self, ino: u32, block: u64, pass: Pass) -> Result<()> {
        let at = Location::InodeBlock { ino, block };
        let mut data = self.fs.read_meta(block, <[u8]>::to_vec)?;
        ext4_ondisk::xattr::parse_block_header(&data).map_err(|e| Error::format(&e, at))?;
        let seed = self.pass_seed(pass);
        if pass == Pass::Verify {
            if let Some(seed) = seed {
                ext4_ondisk::xattr::verify_xattr_block(seed, block, &data).map_err(|e| Error::format(&e, at))?;
            }
            return Ok(());
        }
        let entries = ea_inode_entries(&data, BLOCK_HEADER_SIZE, Structure::XattrBlock).map_err(|e| Error::format(&e, at))?;
        if !entries.is_empty() {
            for (pos, inum, name_hash) in entries {
                let hash = mix_ea_inode_hash(name_hash, self.ea_hash(inum)?);
                set_entry_hash(&mut data, pos, hash);
            }
            ext4_ondisk::xattr::rehash_block(&mut data).map_err(|e| Error::format(&e, at))?;
        }
        if let Some(seed) = seed {
            ext4_ondisk::xattr::set_xattr_block_checksum(seed, block, &mut data);
        }
        self.fs.op_without_undo(|t| t.write_meta(block, data))
    }

    /// The orphan file's block tails: the checksum with `metadata_csum`,
    /// zero without (what e2fsck expects of an empty orphan file). tune2fs
    /// leaves them, and e2fsck then finds every block "not clean".
    fn rewrite_orphan_file(&mut self) -> Result<()> {
        let ino = self.fs.sb.s_orphan_file_inum.get();
        if !self.fs.sb.features().compat.contains(ext4_ondisk::Compat::ORPHAN_FILE) || ino == 0 {
            return Ok(());
        }
        let ib = self.fs.read_inode_raw(ino)?;
        let csum = self.fs.geo.metadata_csum();
        let seed = self.fs.geo.csum_seed;
        for b in self.orphan_file_physical_blocks(&ib)? {
            self.fs.op_without_undo(|t| {
                t.modify_meta(b, |d| ext4_ondisk::orphan::set_orphan_block_tail(seed, ino, ib.inode.generation, b, d, csum))
            })?;
        }
        Ok(())
    }

    /// The MMP block's checksum under the new seed (`ext2fs_mmp_update2`).
    fn rewrite_mmp(&mut self) -> Result<()> {
        if !self.fs.geo.metadata_csum() {
            return Ok(());
        }
        let block = self.fs.sb.s_mmp_block.get();
        if !self.fs.sb.features().incompat.contains(ext4_ondisk::Incompat::MMP) || block == 0 || block >= self.fs.geo.blocks_count {
            return Ok(());
        }
        let seed = self.fs.geo.csum_seed;
        let bad = |e: &ext4_ondisk::FormatError| Error::format(e, Location::Block(block));
        let mut data = self.fs.read_meta(block, <[u8]>::to_vec)?;
        let mut m = ext4_ondisk::mmp::MmpBlock::parse(&data, None).map_err(|e| bad(&e))?;
        m.mmp_checksum.set(m.compute_checksum(seed));
        data[..1024].copy_from_slice(zerocopy::IntoBytes::as_bytes(&m));
        self.fs.op_without_undo(|t| t.write_meta(block, data))
    }
}

//! Fast-commit replay: after the log replay, the records of the journal's
//! fast-commit area ([`ext4_jbd2::fast_commit`]) are applied as the kernel's
//! `ext4_fc_replay` applies them, through the library's own inode, extent,
//! directory and allocation code.
//!
//! The tree that results is the kernel's: inode records copied from INODE
//! records (all but the block map), ranges mapped and unmapped, names
//! created, linked and unlinked, directories touched by a name change
//! stamped with the replay's time. The counters are right where the
//! kernel's are not: inodes the kernel leaves allocated without a name
//! (directories it unlinked, inodes whose CREAT linked nothing) are freed
//! after the records; a second pass marks every block of the replayed
//! inodes in use and recomputes their `i_blocks`, and the link counts of
//! the directories whose entries changed are counted again (the kernel
//! leaves new directories at one link and their parents one short).

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use ext4_extent::{Lookup, MapKind, Run};
use ext4_jbd2::FastCommits;
use ext4_ondisk::extent::Extent;
use ext4_ondisk::fast_commit::{FcDentry, FcTag};
use ext4_ondisk::{FileType, Incompat, Inode, InodeFlags, RoCompat, Structure};

use crate::error::{Error, Location, Result};
use crate::fs::Filesystem;
use crate::inode::InodeBuf;
use crate::layer::LayerResultExt;
use crate::map::ReadMap;
use crate::namespace::LINK_MAX;
use crate::txn::Txn;

/// What the replay touched, for the counting pass (`fc_modified_inodes`).
#[derive(Default)]
struct Touched {
    /// Inodes whose record or map a record changed, in order.
    inodes: Vec<u32>,
    /// Directories whose entries changed, and directories created.
    dirs: BTreeSet<u32>,
    /// Inodes the kernel's replay leaves allocated without a name:
    /// directories it unlinked (one link less, not freed) and inodes whose
    /// CREAT linked no name. Freed after the records if still nameless.
    nameless: BTreeSet<u32>,
    /// Directories a CREAT gave their first block without counting it in
    /// `i_blocks` (the kernel's replay leaves 0 there): the kernel's
    /// eviction truncates only inodes with blocks, so deleting one keeps
    /// its block map.
    uncounted: BTreeSet<u32>,
    /// Inodes deleted with their block map kept. An INODE record reusing
    /// the number takes the map over; otherwise it is freed after the
    /// records.
    kept_maps: BTreeSet<u32>,
}

impl Touched {
    fn inode(&mut self, ino: u32) {
        if !self.inodes.contains(&ino) {
            self.inodes.push(ino);
        }
    }
}

impl Filesystem {
    /// Refuses fast commits this replay does not follow the kernel on:
    /// `inline_data` (the kernel's replay reads inline inodes' data as
    /// block maps) and `bigalloc` (bitmaps of clusters).
    pub(crate) fn check_fast_commit_replay(&self, fc: &FastCommits) -> Result<()> {
        let f = &self.geo.features;
        if !fc.is_empty() && (f.incompat.contains(Incompat::INLINE_DATA) || f.ro_compat.contains(RoCompat::BIGALLOC)) {
            return Err(Error::Unsupported(format!(
                "replaying {} fast commits on a filesystem with inline_data or bigalloc; let the kernel recover it (mount it)",
                fc.commits
            )));
        }
        Ok(())
    }

    /// Applies `fc` (complete fast commits) and commits: one transaction
    /// with the records, one with the counts made right. The blocks the
    /// records map are kept from the allocator meanwhile.
    pub(crate) fn replay_fast_commits(&mut self, fc: &FastCommits) -> Result<()> {
        self.check_fast_commit_replay(fc)?;
        let isz = self.geo.inode_size as usize;
        let mut tags = Vec::with_capacity(fc.records.len());
        for r in &fc.records {
            let tag = r.decode(isz).map_err(|e| Error::format(&e, Location::Block(r.jblock)))?;
            tags.push(tag);
        }
        self.write.alloc.excluded = tags
            .iter()
            .filter_map(|t| match t {
                FcTag::AddRange { extent, .. } => Some((extent.start, u64::from(extent.len))),
                _ => None,
            })
            .collect();
        let r = self.apply_fast_commits(&tags);
        self.write.alloc.excluded.clear();
        r
    }

    fn apply_fast_commits(&mut self, tags: &[FcTag<'_>]) -> Result<()> {
        let mut touched = Touched::default();
        self.op(|txn| {
            tags.iter().try_for_each(|t| txn.fc_record(t, &mut touched))?;
            txn.fc_free_kept_maps(&touched)?;
            txn.fc_free_nameless(&touched)
        })?;
        self.commit()?;
        self.op(|txn| txn.fc_fix_counts(&touched))?;
        self.commit()
    }

    /// An inode the replay may change, or `None` where the kernel's
    /// `ext4_iget` fails and the record is skipped (free, or corrupt).
    fn fc_iget(&self, ino: u32) -> Result<Option<InodeBuf>> {
        match self.read_inode(ino) {
            Ok(ib) => Ok(Some(ib)),
            Err(Error::Device(e)) => Err(Error::Device(e)),
            Err(_) => Ok(None),
        }
    }

    /// The raw record of `ino` as the inode table holds it, unchecked
    /// (`ext4_get_fc_inode_loc`).
    fn fc_raw_record(&self, ino: u32) -> Result<Vec<u8>> {
        let (block, off) = self.inode_location(ino)?;
        let isz = self.geo.inode_size as usize;
        let (g, idx) = self.geo.inode_group(ino);
        let gd = &self.groups[g as usize];
        if self.geo.has_group_csum() && idx >= self.geo.inodes_per_group.saturating_sub(gd.itable_unused) {
            return Ok(vec![0; isz]);
        }
        self.read_meta(block, |d| d[off..off + isz].to_vec())
    }

    /// The data and map blocks of an inode, as (start, count) runs.
    fn fc_map_blocks(&self, ib: &InodeBuf) -> Result<Vec<(u64, u64)>> {
        let mut runs = Vec::new();
        if !self.has_block_map(ib) {
            return Ok(runs);
        }
        let ctx = self.map_ctx(ib);
        let kind = Filesystem::map_kind(ib);
        ext4_extent::for_each_run(kind, &ib.inode.block, &ctx, &mut ReadMap { fs: self }, |r| {
            runs.push((r.physical, u64::from(r.len)));
            ControlFlow::Continue(())
        })
        .in_inode(ib.ino)?;
        ext4_extent::for_each_map_block(kind, &ib.inode.block, &ctx, &mut ReadMap { fs: self }, |b| {
            runs.push((b, 1));
            ControlFlow::Continue(())
        })
        .in_inode(ib.ino)?;
        Ok(runs)
    }

    /// Sets `i_blocks` from what the inode holds: its data and map blocks
    /// and its xattr block (`ext4_ext_replay_set_iblocks` leaves the xattr
    /// block out). Returns whether it changed.
    fn fc_count_blocks(&self, ib: &mut InodeBuf) -> Result<bool> {
        let blocks: u64 = self.fc_map_blocks(ib)?.iter().map(|r| r.1).sum::<u64>() + u64::from(ib.inode.file_acl != 0);
        let unit = if ib.inode.flags.contains(InodeFlags::HUGE_FILE) { 1 } else { u64::from(self.geo.block_size / 512) };
        let changed = ib.inode.blocks != blocks * unit;
        ib.inode.blocks = blocks * unit;
        Ok(changed)
    }

    /// A directory's link count: two, plus one per subdirectory; one when
    /// that passes `LINK_MAX` under `dir_nlink`.
    fn fc_dir_links(&self, d: &InodeBuf) -> Result<u16> {
        let mut subdirs = 0u32;
        let mut err = None;
        self.for_each_dir_entry(d, |e| {
            if e.name == b"." || e.name == b".." {
                return ControlFlow::Continue(());
            }
            let is_dir = match e.file_type {
                Some(t) => t == FileType::Directory,
                None => match self.read_inode(e.ino) {
                    Ok(c) => c.is_dir(),
                    Err(x) => {
                        err = Some(x);
                        return ControlFlow::Break(());
                    }
                },
            };
            subdirs += u32::from(is_dir);
            ControlFlow::Continue(())
        })?;
        if let Some(e) = err {
            return Err(e);
        }
        let links = 2 + subdirs;
        if links >= u32::from(LINK_MAX) && self.geo.features.ro_compat.contains(RoCompat::DIR_NLINK) {
            return Ok(1);
        }
        Ok(links.min(u32::from(LINK_MAX)) as u16)
    }
}

impl Txn<'_> {
    /// One record (`ext4_fc_replay`'s switch).
    fn fc_record(&mut self, tag: &FcTag<'_>, touched: &mut Touched) -> Result<()> {
        match *tag {
            FcTag::Inode { ino, raw } => self.fc_inode(ino, raw, touched),
            FcTag::AddRange { ino, extent } => self.fc_add_range(ino, extent, touched),
            FcTag::DelRange { ino, lblk, len } => self.fc_del_range(ino, lblk, len, touched),
            FcTag::Create(d) => self.fc_create(d, touched),
            FcTag::Link(d) => self.fc_link(d, touched),
            FcTag::Unlink(d) => self.fc_unlink(d, touched),
            FcTag::Pad | FcTag::Tail { .. } | FcTag::Head { .. } => Ok(()),
        }
    }

    /// INODE (`ext4_fc_replay_inode`): the record is copied but for its
    /// block map, the inode marked in use.
    fn fc_inode(&mut self, ino: u32, src: &[u8], touched: &mut Touched) -> Result<()> {
        if ino == 0 || ino > self.geo.inodes_count {
            return Ok(());
        }
        touched.inode(ino);
        touched.uncounted.remove(&ino);
        touched.kept_maps.remove(&ino);
        let mut raw = self.fc_raw_record(ino)?;
        let was_dir = Inode::parse(&raw).is_ok_and(|i| i.links_count > 0 && i.file_type() == Some(FileType::Directory));
        ext4_ondisk::fast_commit::apply_inode_record(&mut raw, src);
        let inode = Inode::parse(&raw).map_err(|e| Error::format(&e, Location::Inode(ino)))?;
        if inode.links_count == 0 || inode.file_type().is_none() {
            // `ext4_iget` refuses the record just written: the kernel fails the recovery.
            let why = "a fast-commit INODE record without links or with an invalid mode (the kernel fails this recovery)";
            return Err(Error::corrupt(Structure::FastCommit, Location::Inode(ino), why));
        }
        let is_dir = inode.file_type() == Some(FileType::Directory);
        if !self.claim_inode(ino, is_dir)? {
            // Already in use: a number reused in place may change type.
            self.recount_dir(ino, was_dir, is_dir);
        }
        let mut ib = InodeBuf { ino, inode, raw };
        self.write_inode(&mut ib)
    }

    /// ADD_RANGE (`ext4_fc_replay_add_range`): each part of the extent is
    /// mapped where it was a hole, moved where it pointed elsewhere, and
    /// given the record's written state where it already matched.
    fn fc_add_range(&mut self, ino: u32, ex: Extent, touched: &mut Touched) -> Result<()> {
        let Some(mut ib) = self.fc_iget(ino)? else { return Ok(()) };
        touched.inode(ino);
        if Filesystem::map_kind(&ib) != MapKind::Extents {
            return Err(Error::Unsupported(format!("fast-commit ADD_RANGE for inode {ino}, which has no extent tree")));
        }
        // The record's `i_blocks` may not match the map yet; the map
        // changes below count from the exact value.
        self.fc_count_blocks(&mut ib)?;
        let end = ex.logical_end();
        if end > 1 << 32 || ex.start.checked_add(u64::from(ex.len)).is_none_or(|e| e > self.geo.blocks_count) {
            let why = format!("ADD_RANGE of blocks {}+{} at logical block {} is outside the filesystem", ex.start, ex.len, ex.logical);
            return Err(Error::corrupt(Structure::FastCommit, Location::Inode(ino), why));
        }
        let mut cur = u64::from(ex.logical);
        while cur < end {
            // Below `end`, so within u32; `len` likewise.
            let (at, want) = (cur as u32, (end - cur).min(u64::from(u32::MAX)) as u32);
            let physical = ex.start + (cur - u64::from(ex.logical));
            let len = match self.lookup_block(&ib, at)? {
                Lookup::Hole { next } => {
                    let len = next.map_or(want, |n| (n - at).min(want));
                    self.fc_map(&mut ib, Run { logical: at, physical, len, unwritten: ex.unwritten })?;
                    len
                }
                Lookup::Mapped(run) => {
                    let len = run.len.min(want);
                    if run.physical == physical && run.unwritten && !ex.unwritten {
                        self.mark_written(&mut ib, at, len)?;
                    } else if run.physical != physical || run.unwritten != ex.unwritten {
                        // The old blocks are freed (`ext4_mb_mark_bb(.., 0)`).
                        self.unmap(&mut ib, at, cur + u64::from(len))?;
                        self.fc_map(&mut ib, Run { logical: at, physical, len, unwritten: ex.unwritten })?;
                    }
                    len
                }
            };
            cur += u64::from(len);
        }
        self.write_inode(&mut ib)
    }

    /// Maps `run` in `ib` and marks its blocks in use.
    fn fc_map(&mut self, ib: &mut InodeBuf, run: Run) -> Result<()> {
        self.map_run(ib, run)?;
        self.claim_blocks(run.physical, u64::from(run.len)).map(drop)
    }

    /// DEL_RANGE (`ext4_fc_replay_del_range`): the range is unmapped and its blocks freed.
    fn fc_del_range(&mut self, ino: u32, lblk: u32, len: u32, touched: &mut Touched) -> Result<()> {
        let Some(mut ib) = self.fc_iget(ino)? else { return Ok(()) };
        touched.inode(ino);
        if len == 0 || !self.has_block_map(&ib) {
            return Ok(());
        }
        self.fc_count_blocks(&mut ib)?;
        self.unmap(&mut ib, lblk, (u64::from(lblk) + u64::from(len)).min(1 << 32))?;
        self.write_inode(&mut ib)
    }

    /// CREAT (`ext4_fc_replay_create`): a directory gets its first block,
    /// then the name is linked and the inode left with one link.
    fn fc_create(&mut self, d: FcDentry<'_>, touched: &mut Touched) -> Result<()> {
        if d.ino == 0 || d.ino > self.geo.inodes_count {
            return Err(Error::corrupt(Structure::FastCommit, Location::Inode(d.ino), "CREAT of an inode number out of range"));
        }
        let raw = self.fc_raw_record(d.ino)?;
        let is_dir = Inode::parse(&raw).is_ok_and(|i| i.file_type() == Some(FileType::Directory));
        self.claim_inode(d.ino, is_dir)?;
        let Some(mut ib) = self.fc_iget(d.ino)? else {
            let why = "CREAT of an inode whose record is not in use (the kernel fails this recovery)";
            return Err(Error::corrupt(Structure::FastCommit, Location::Inode(d.ino), why));
        };
        if ib.is_dir() {
            // Without its parent, or with block 0 already mapped (an inode
            // number reused after an unlinked directory: `ext4_append`
            // fails), the kernel links no name.
            if self.fc_iget(d.parent)?.is_none() || !matches!(self.lookup_block(&ib, 0)?, Lookup::Hole { .. }) {
                touched.nameless.insert(d.ino);
                return Ok(());
            }
            self.init_dir(&mut ib, d.parent)?;
            touched.uncounted.insert(d.ino);
            self.write_inode(&mut ib)?;
            touched.dirs.insert(d.ino);
            touched.inode(d.ino);
        }
        if !self.fc_link_name(d, &mut ib, touched)? {
            touched.nameless.insert(d.ino);
        }
        ib.inode.links_count = 1;
        self.write_inode(&mut ib)
    }

    /// LINK (`ext4_fc_replay_link`).
    fn fc_link(&mut self, d: FcDentry<'_>, touched: &mut Touched) -> Result<()> {
        let Some(mut ib) = self.fc_iget(d.ino)? else { return Ok(()) };
        self.fc_link_name(d, &mut ib, touched)?;
        self.write_inode(&mut ib)
    }

    /// `ext4_fc_replay_link_internal`: adds `d.name` in `d.parent` unless
    /// the parent is gone or the name exists; the inode gains a link.
    /// Returns whether the name was added.
    fn fc_link_name(&mut self, d: FcDentry<'_>, ib: &mut InodeBuf, touched: &mut Touched) -> Result<bool> {
        let Some(mut dir) = self.fc_iget(d.parent)? else { return Ok(false) };
        if !dir.is_dir() || self.lookup_entry(&dir, d.name)?.is_some() {
            return Ok(false);
        }
        self.add_entry(&mut dir, d.name, ib.ino, ib.file_type())?;
        touched.dirs.insert(d.parent);
        touched.nameless.remove(&ib.ino);
        ib.inode.links_count = ib.inode.links_count.saturating_add(1);
        ib.inode.ctime = self.now();
        Ok(true)
    }

    /// UNLINK (`ext4_fc_replay_unlink`): the name goes, the inode loses a
    /// link, and an inode left without links is freed (the kernel's orphan
    /// cleanup at mount does it there).
    fn fc_unlink(&mut self, d: FcDentry<'_>, touched: &mut Touched) -> Result<()> {
        let Some(mut ib) = self.fc_iget(d.ino)? else { return Ok(()) };
        let Some(mut dir) = self.fc_iget(d.parent)? else { return Ok(()) };
        match self.lookup_entry(&dir, d.name)? {
            None => return Ok(()),
            Some((found, _)) if found != d.ino => {
                let why = format!("UNLINK of a name that points at inode {found}, not {} (the kernel fails this recovery)", d.ino);
                return Err(Error::corrupt(Structure::FastCommit, Location::Inode(d.parent), why));
            }
            Some(_) => {}
        }
        self.remove_entry(&mut dir, d.name)?;
        touched.dirs.insert(d.parent);
        ib.inode.ctime = dir.inode.ctime;
        if ib.inode.links_count <= 1 {
            // The last link: the kernel's `iput` evicts and deletes it.
            if touched.uncounted.remove(&d.ino) {
                return self.fc_delete_keeping_map(&mut ib, touched);
            }
            return self.fc_release(&mut ib);
        }
        ib.inode.links_count -= 1;
        if ib.is_dir() {
            // One link less, still allocated: an INODE record for a reused
            // number finds its block map (see `fc_create`).
            touched.nameless.insert(d.ino);
        }
        self.write_inode(&mut ib)
    }

    /// Frees an inode the records left without links, its `i_blocks`
    /// first made exact (a copied record's may be behind its map).
    fn fc_release(&mut self, ib: &mut InodeBuf) -> Result<()> {
        self.fc_count_blocks(ib)?;
        self.release_inode(ib)
    }

    /// The kernel's eviction of an inode whose `i_blocks` is 0: the
    /// inode is freed, its record (size 0, no links) keeps its block map
    /// and the blocks stay allocated.
    fn fc_delete_keeping_map(&mut self, ib: &mut InodeBuf, touched: &mut Touched) -> Result<()> {
        let was_dir = ib.is_dir();
        self.orphan_del(ib)?;
        ib.inode.size = 0;
        ib.inode.links_count = 0;
        ib.inode.dtime = self.now().secs as u32;
        self.write_inode(ib)?;
        self.free_inode(ib.ino, was_dir)?;
        touched.kept_maps.insert(ib.ino);
        Ok(())
    }

    /// Frees the blocks of inodes deleted with their map kept that no
    /// INODE record reused (the kernel leaves them allocated, unowned).
    fn fc_free_kept_maps(&mut self, touched: &Touched) -> Result<()> {
        for &ino in &touched.kept_maps {
            let mut ib = self.read_inode_raw(ino)?;
            if ib.inode.links_count == 0 && self.has_block_map(&ib) {
                self.fc_count_blocks(&mut ib)?;
                self.unmap(&mut ib, 0, 1 << 32)?;
                self.write_inode(&mut ib)?;
            }
        }
        Ok(())
    }

    /// Frees what the records left allocated without a name (the kernel
    /// leaves them for e2fsck), so that the counts stay right; a directory
    /// that took entries meanwhile is left as the kernel leaves it. A
    /// directory whose blocks no longer match its record (a reused number
    /// keeps the old block map under a new generation) holds nothing.
    fn fc_free_nameless(&mut self, touched: &Touched) -> Result<()> {
        for &ino in &touched.nameless {
            let Some(mut ib) = self.fc_iget(ino)? else { continue };
            let empty = !ib.is_dir()
                || match self.dir_is_empty(&ib) {
                    Ok(empty) => empty,
                    Err(Error::Device(e)) => return Err(Error::Device(e)),
                    Err(_) => true,
                };
            if empty {
                self.fc_release(&mut ib)?;
            }
        }
        Ok(())
    }

    /// The counting pass (`ext4_fc_set_bitmaps_and_counters`, made exact):
    /// the blocks of every replayed inode in use, its `i_blocks` counted,
    /// and the link counts of the directories that changed.
    fn fc_fix_counts(&mut self, touched: &Touched) -> Result<()> {
        for &ino in &touched.inodes {
            let Some(mut ib) = self.fc_iget(ino)? else { continue };
            for (start, len) in self.fc_map_blocks(&ib)? {
                self.claim_blocks(start, len)?;
            }
            if self.fc_count_blocks(&mut ib)? {
                self.write_inode(&mut ib)?;
            }
        }
        for &dir in &touched.dirs {
            let Some(mut d) = self.fc_iget(dir)? else { continue };
            if !d.is_dir() {
                continue;
            }
            let links = self.fc_dir_links(&d)?;
            if d.inode.links_count != links {
                d.inode.links_count = links;
                self.write_inode(&mut d)?;
            }
        }
        Ok(())
    }
}

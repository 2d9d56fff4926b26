//! A directory's blocks in a checksum rewrite (tune2fs' `rewrite_dir_block`):
//! with `metadata_csum` on, each leaf gets a checksum tail (its last entry
//! shortened where there is room) and each index block a limit that
//! leaves room for its tail; off, a leaf's tail goes back to the entry
//! before it and an index block's limit to its full capacity. Without
//! `dir_index`, index blocks are taken as leaves and the htree flag goes.
//! A leaf without room for a tail gives up its last entry, which goes
//! back into the directory through the htree code once every block has
//! its tail (back into the same leaf when it fits, else into a split or
//! a new block); tune2fs leaves such a directory for `e2fsck -fD`. A
//! directory whose index has a full block (no room for its tail without a
//! split) is rebuilt from its entries through the htree code.

use std::collections::HashSet;

use ext4_extent::MapKind;
use ext4_ondisk::dir::{TAIL_SIZE, parse_entry, rec_len_for, set_dir_block_checksum, set_rec_len, verify_dir_block, write_tail};
use ext4_ondisk::dx::{
    DX_ENTRY_SIZE, DX_TAIL_SIZE, MAX_LEVELS_LARGEDIR, NODE_COUNT_OFFSET, ROOT_COUNT_OFFSET, ROOT_INFO_OFFSET, count_limit_offset,
    set_dx_block_checksum, verify_dx_block,
};
use ext4_ondisk::{Compat, InodeFlags};

use super::csum::Pass;
use super::{CheckRequest, Session};
use crate::error::{Error, Location, Result};
use crate::inode::InodeBuf;
use crate::map::ReadMap;

/// What a block needs.
enum Outcome {
    /// Nothing (already right, or a case tune2fs leaves alone).
    Keep,
    /// Write it back (with its checksum when the new scheme has them).
    Write,
    /// No room for a checksum: the directory needs rebuilding.
    NoRoom,
}

/// An entry taken out of a leaf to make room for its tail.
struct Evicted {
    name: Vec<u8>,
    ino: u32,
    file_type: u8,
}

impl Session<'_> {
    /// Every data block of directory `ib`; with `dir_index` gone, its
    /// htree flag too.
    pub(super) fn rewrite_directory(&mut self, ib: &mut InodeBuf, pass: Pass) -> Result<()> {
        let is_htree = ib.inode.flags.contains(InodeFlags::INDEX);
        let clear_htree = !self.fs.sb.features().compat.contains(Compat::DIR_INDEX);
        let seed = self.inode_block_seed(ib, pass);
        let mut evicted = Vec::new();
        let blocks = self.dir_blocks(ib)?;
        let index = if is_htree { self.index_blocks(&blocks)? } else { HashSet::new() };
        if pass == Pass::Write && seed.is_some() && !clear_htree && self.index_full(&blocks, &index)? {
            return self.rebuild_directory(ib, &blocks, &index);
        }
        for &(logical, block) in &blocks {
            let at = Location::DirBlock { ino: ib.ino, logical };
            let mut data = self.fs.read_meta(block, <[u8]>::to_vec)?;
            // The old layout is checked as it was: with its index blocks.
            let indexed = is_htree && (!clear_htree || pass == Pass::Verify) && index.contains(&logical);
            let dx = if indexed { count_limit_offset(&data) } else { None };
            if pass == Pass::Verify {
                if let Some(seed) = seed {
                    verify_block(seed, &data, dx, at)?;
                }
                continue;
            }
            let bs = self.fs.geo.block_size;
            let outcome = match dx {
                Some(off) => self.fix_dx_block(&mut data, off, seed),
                None => match fix_leaf(&mut data, seed.is_some(), bs).map_err(|e| Error::format(&e, at))? {
                    Outcome::NoRoom => {
                        evicted.push(evict_last(&mut data, bs).map_err(|e| Error::format(&e, at))?);
                        fix_leaf(&mut data, true, bs).map_err(|e| Error::format(&e, at))?
                    }
                    o => o,
                },
            };
            match outcome {
                Outcome::Keep => {}
                Outcome::NoRoom => self.request_check(CheckRequest::Directories),
                Outcome::Write => {
                    if let (Some(seed), None) = (seed, dx) {
                        set_dir_block_checksum(seed, &mut data);
                    }
                    self.fs.op_without_undo(|t| t.write_meta(block, data))?;
                }
            }
        }
        if pass == Pass::Write && is_htree && clear_htree {
            ib.inode.flags.remove(InodeFlags::INDEX);
            ib.inode.write(&mut ib.raw);
        }
        self.reinsert(ib, evicted)
    }

    /// Whether an index block of the directory is full: no room for its
    /// checksum tail without a split.
    fn index_full(&self, blocks: &[(u32, u64)], index: &HashSet<u32>) -> Result<bool> {
        for &(_, block) in blocks.iter().filter(|(l, _)| index.contains(l)) {
            let full = self.fs.read_meta(block, |d| {
                count_limit_offset(d).is_some_and(|off| ext4_ondisk::get_u16(d, off) == ext4_ondisk::get_u16(d, off + 2))
            })?;
            if full {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Rebuilds a directory whose index has a full block (tune2fs leaves
    /// it for `e2fsck -fD`): its entries are read, its blocks freed, and
    /// the entries inserted again from a fresh first block through the
    /// htree code, with checksums, which splits the index as it grows.
    fn rebuild_directory(&mut self, ib: &mut InodeBuf, blocks: &[(u32, u64)], index: &HashSet<u32>) -> Result<()> {
        let bs = self.fs.geo.block_size;
        let (mut entries, mut parent) = (Vec::new(), None);
        for &(logical, block) in blocks.iter().filter(|(l, _)| *l == 0 || !index.contains(l)) {
            let at = Location::DirBlock { ino: ib.ino, logical };
            let data = self.fs.read_meta(block, <[u8]>::to_vec)?;
            // A root holds `.` and `..` only, in its first 24 bytes.
            let end = if index.contains(&logical) { 24 } else { data.len() };
            let mut pos = 0;
            while pos < end {
                let e = parse_entry(&data, pos, bs, true).map_err(|e| Error::format(&e, at))?;
                match e.name {
                    b"." => {}
                    b".." => parent = Some(e.inode),
                    _ if e.inode != 0 => entries.push(Evicted { name: e.name.to_vec(), ino: e.inode, file_type: e.file_type }),
                    _ => {}
                }
                pos += e.rec_len as usize;
            }
        }
        let ino = ib.ino;
        let parent = parent.ok_or_else(|| Error::corrupt(ext4_ondisk::Structure::DirBlock, Location::Inode(ino), "no `..` entry"))?;
        self.fs.op_without_undo(|t| {
            t.unmap(ib, 0, 1 << 32)?;
            ib.inode.size = 0;
            ib.inode.flags.remove(InodeFlags::INDEX);
            let ctx = t.dir_ctx(ib);
            let mut io = crate::adapters::WriteDir { fs: t, dir: ib };
            let first = ext4_htree::DirIo::append_block(&mut io).map_err(|e| e.into_error(ino))?;
            ext4_htree::DirIo::write_block(&mut io, first, &ext4_htree::new_dir_block(&ctx, ino, parent)).map_err(|e| e.into_error(ino))?;
            let mut indexed = false;
            for e in entries {
                ext4_htree::insert(&ctx, &mut io, &mut indexed, &e.name, e.ino, e.file_type).map_err(|err| err.into_error(ino))?;
            }
            ib.inode.flags.set(InodeFlags::INDEX, indexed);
            Ok(())
        })?;
        ib.inode.write(&mut ib.raw);
        self.out.notes.push(format!("directory inode {ino} rebuilt: its index had a full block"));
        Ok(())
    }

    /// Puts evicted entries back through the htree code (every block of
    /// the directory now has its tail).
    fn reinsert(&mut self, ib: &mut InodeBuf, evicted: Vec<Evicted>) -> Result<()> {
        if evicted.is_empty() {
            return Ok(());
        }
        let ctx = self.fs.dir_ctx(ib);
        let mut indexed = self.fs.is_indexed(ib);
        let ino = ib.ino;
        self.fs.op_without_undo(|t| {
            let mut io = crate::adapters::WriteDir { fs: t, dir: ib };
            for e in evicted.into_iter().filter(|e| e.ino != 0) {
                ext4_htree::insert(&ctx, &mut io, &mut indexed, &e.name, e.ino, e.file_type).map_err(|err| err.into_error(ino))?;
            }
            Ok(())
        })?;
        ib.inode.flags.set(InodeFlags::INDEX, indexed);
        ib.inode.write(&mut ib.raw);
        Ok(())
    }

    /// The logical blocks of an htree's index: the root and the nodes its
    /// levels point to. (tune2fs guesses index nodes from their look, and
    /// takes an emptied leaf for one.)
    fn index_blocks(&self, blocks: &[(u32, u64)]) -> Result<HashSet<u32>> {
        let physical = |l: u32| blocks.iter().find(|b| b.0 == l).map(|b| b.1);
        let mut set = HashSet::new();
        let Some(root) = physical(0) else { return Ok(set) };
        let data = self.fs.read_meta(root, <[u8]>::to_vec)?;
        if count_limit_offset(&data) != Some(ROOT_COUNT_OFFSET) {
            return Ok(set);
        }
        set.insert(0);
        let levels = data[ROOT_INFO_OFFSET + 6];
        let mut frontier = children(&data, ROOT_COUNT_OFFSET);
        for _ in 0..levels.min(MAX_LEVELS_LARGEDIR) {
            let mut next = Vec::new();
            for l in frontier {
                let Some(p) = physical(l).filter(|_| set.insert(l)) else { continue };
                let node = self.fs.read_meta(p, <[u8]>::to_vec)?;
                if count_limit_offset(&node) == Some(NODE_COUNT_OFFSET) {
                    next.extend(children(&node, NODE_COUNT_OFFSET));
                }
            }
            frontier = next;
        }
        Ok(set)
    }

    /// The directory's mapped blocks: (logical, device block), in order.
    fn dir_blocks(&self, ib: &InodeBuf) -> Result<Vec<(u32, u64)>> {
        let ctx = self.raw_map_ctx(ib);
        let kind = if ib.inode.flags.contains(InodeFlags::EXTENTS) { MapKind::Extents } else { MapKind::Indirect };
        let mut out = Vec::new();
        ext4_extent::for_each_run(kind, &ib.inode.block, &ctx, &mut ReadMap { fs: &self.fs }, |r| {
            out.extend((0..r.len).map(|i| (r.logical + i, r.physical + u64::from(i))));
            std::ops::ControlFlow::Continue(())
        })
        .map_err(|e| e.into_error(ib.ino))?;
        Ok(out)
    }

    /// An index block: its limit for the new scheme, and its checksum.
    fn fix_dx_block(&self, data: &mut [u8], off: usize, seed: Option<u32>) -> Outcome {
        let limit = ext4_ondisk::get_u16(data, off);
        let count = ext4_ondisk::get_u16(data, off + 2);
        let Some(seed) = seed else {
            let max = ((data.len() - off) / DX_ENTRY_SIZE) as u16;
            if limit == max {
                return Outcome::Keep;
            }
            ext4_ondisk::dx::write_count_limit(data, off, max, count);
            return Outcome::Write;
        };
        if count == limit {
            return Outcome::NoRoom;
        }
        let max = ((data.len() - off - DX_TAIL_SIZE) / DX_ENTRY_SIZE) as u16;
        ext4_ondisk::dx::write_count_limit(data, off, max, count);
        set_dx_block_checksum(seed, data, off);
        Outcome::Write
    }
}

impl Session<'_> {
    /// `filetype` on or off: every live entry of every directory gets its
    /// inode's type, or none (what e2fsck would otherwise do after
    /// tune2fs); each changed block gets its checksum again. Inline
    /// directories are left to e2fsck, which is asked for.
    pub(super) fn set_entry_types(&mut self, on: bool) -> Result<()> {
        self.for_each_inode_in_use(|s, ib| {
            if !ib.is_dir() || ib.inode.links_count == 0 {
                return Ok(());
            }
            if ib.inode.flags.contains(InodeFlags::INLINE_DATA) {
                s.request_check(CheckRequest::Full);
                return Ok(());
            }
            s.set_dir_entry_types(&ib, on)
        })
    }

    /// One directory's entries (see [`Session::set_entry_types`]).
    fn set_dir_entry_types(&mut self, ib: &InodeBuf, on: bool) -> Result<()> {
        let bs = self.fs.geo.block_size;
        let seed = self.inode_block_seed(ib, Pass::Write);
        let blocks = self.dir_blocks(ib)?;
        let index = if ib.inode.flags.contains(InodeFlags::INDEX) { self.index_blocks(&blocks)? } else { HashSet::new() };
        for &(logical, block) in &blocks {
            let at = Location::DirBlock { ino: ib.ino, logical };
            let mut data = self.fs.read_meta(block, <[u8]>::to_vec)?;
            let dx = if index.contains(&logical) { count_limit_offset(&data) } else { None };
            // An index node's only entry is empty; a root's are `.` and `..`.
            let end = match dx {
                Some(NODE_COUNT_OFFSET) => continue,
                Some(_) => 24,
                None => data.len() - if seed.is_some() { TAIL_SIZE } else { 0 },
            };
            let mut pos = 0;
            let mut changed = false;
            while pos < end {
                let e = parse_entry(&data, pos, bs, true).map_err(|e| Error::format(&e, at))?;
                let (child, old, len) = (e.inode, e.file_type, e.rec_len as usize);
                if child != 0 {
                    let ft = if on { self.fs.read_inode_raw(child)?.file_type().dir_entry_code() } else { 0 };
                    if ft != old {
                        data[pos + 7] = ft;
                        changed = true;
                    }
                }
                pos += len;
            }
            if !changed {
                continue;
            }
            match (seed, dx) {
                (Some(seed), Some(off)) => set_dx_block_checksum(seed, &mut data, off),
                (Some(seed), None) => set_dir_block_checksum(seed, &mut data),
                (None, _) => {}
            }
            self.fs.op_without_undo(|t| t.write_meta(block, data))?;
        }
        Ok(())
    }
}

/// The logical blocks an index block's entries point to.
fn children(data: &[u8], off: usize) -> Vec<u32> {
    let count = usize::from(ext4_ondisk::get_u16(data, off + 2)).min((data.len() - off) / DX_ENTRY_SIZE);
    (0..count).map(|i| ext4_ondisk::get_u32(data, off + i * DX_ENTRY_SIZE + 4)).collect()
}

/// Checks a block's old checksum: an index block's tail, or a leaf's.
fn verify_block(seed: u32, data: &[u8], dx: Option<usize>, at: Location) -> Result<()> {
    let bad = |e: ext4_ondisk::FormatError| Error::format(&e, at);
    match dx {
        Some(off) => {
            let limit = ext4_ondisk::get_u16(data, off);
            let count = ext4_ondisk::get_u16(data, off + 2);
            let entries = if off == ROOT_COUNT_OFFSET {
                ext4_ondisk::dx::parse_root(data, true).map(|(_, e)| e)
            } else {
                ext4_ondisk::dx::parse_node(data, true)
            }
            .map_err(|e| Error::corrupt(ext4_ondisk::Structure::DxNode, at, format!("{e} (limit {limit}, count {count})")))?;
            verify_dx_block(seed, data, &entries).map_err(bad)
        }
        None => verify_dir_block(seed, data).map_err(bad),
    }
}

/// Takes the last live entry out of a leaf (its space goes to the entry
/// before it, or it becomes empty when it is the first), so that the
/// block has room for a tail.
fn evict_last(data: &mut [u8], bs: u32) -> std::result::Result<Evicted, ext4_ondisk::FormatError> {
    let (mut pos, mut last, mut before) = (0usize, None, None);
    while pos < data.len() {
        let e = parse_entry(data, pos, bs, true)?;
        before = last;
        last = Some((pos, e.rec_len as usize, Evicted { name: e.name.to_vec(), ino: e.inode, file_type: e.file_type }));
        pos += e.rec_len as usize;
    }
    let (at, rec_len, out) = last.expect("a leaf holds at least one entry");
    match before {
        Some((prev, prev_len, _)) => set_rec_len(data, prev, (prev_len + rec_len) as u32, bs),
        None => ext4_ondisk::dir::set_inode(data, at, 0),
    }
    Ok(out)
}

/// A leaf block: with checksums, a tail (reusing an empty 12-byte last
/// entry, else shortening the last entry); without, the tail's bytes
/// given back to the entry before it.
fn fix_leaf(data: &mut [u8], csum: bool, bs: u32) -> std::result::Result<Outcome, ext4_ondisk::FormatError> {
    let (mut pos, mut last, mut before) = (0usize, None, None);
    while pos < data.len() {
        let e = parse_entry(data, pos, bs, true)?;
        before = last;
        last = Some((pos, e.inode, e.rec_len as usize, e.name.len()));
        pos += e.rec_len as usize;
    }
    let Some((at, inode, rec_len, name_len)) = last else { return Ok(Outcome::Keep) };
    if !csum {
        let Some((prev, _, prev_len, _)) = before else { return Ok(Outcome::Keep) };
        if inode != 0 || name_len != 0 || rec_len != TAIL_SIZE {
            return Ok(Outcome::Keep);
        }
        set_rec_len(data, prev, (prev_len + TAIL_SIZE) as u32, bs);
        return Ok(Outcome::Write);
    }
    if inode == 0 && rec_len == TAIL_SIZE {
        write_tail(data);
        return Ok(Outcome::Write);
    }
    if rec_len <= rec_len_for(name_len) + TAIL_SIZE {
        return Ok(Outcome::NoRoom);
    }
    set_rec_len(data, at, (rec_len - TAIL_SIZE) as u32, bs);
    write_tail(data);
    Ok(Outcome::Write)
}

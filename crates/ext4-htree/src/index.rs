//! The htree index: probing from the root to a leaf, following hash
//! collisions into the next leaf, and growing the tree (leaf splits, index
//! node splits, new levels, the switch from a linear directory).

use ext4_ondisk::dir as d;
use ext4_ondisk::dx::{self, DxRootInfo, HashVersion};
use ext4_ondisk::{get_u16, get_u32};

use crate::{DirCtx, DirError, DirIo, dot_entry, hash, read_leaf_for_write, write_leaf};

/// Block numbers in index entries keep their top four bits for future use.
const BLOCK_MASK: u32 = 0x0fff_ffff;

/// One index block on the path from the root to a leaf.
pub(crate) struct Frame {
    logical: u32,
    buf: Vec<u8>,
    /// Offset of the count/limit header.
    co: usize,
    /// The entry followed.
    at: usize,
}

impl Frame {
    fn limit(&self) -> usize {
        usize::from(get_u16(&self.buf, self.co))
    }

    fn count(&self) -> usize {
        usize::from(get_u16(&self.buf, self.co + 2))
    }

    fn set_count(&mut self, n: usize) {
        let limit = self.limit() as u16;
        dx::write_count_limit(&mut self.buf, self.co, limit, n as u16);
    }

    fn full(&self) -> bool {
        self.count() >= self.limit()
    }

    fn hash(&self, i: usize) -> u32 {
        if i == 0 { 0 } else { get_u32(&self.buf, self.co + i * dx::DX_ENTRY_SIZE) }
    }

    fn block(&self, i: usize) -> u32 {
        get_u32(&self.buf, self.co + i * dx::DX_ENTRY_SIZE + 4) & BLOCK_MASK
    }

    fn set(&mut self, i: usize, hash: u32, block: u32) {
        dx::write_entry(&mut self.buf, self.co, i, hash, block);
    }

    /// Index of the last entry whose hash is at most `hash`.
    fn find(&self, hash: u32) -> usize {
        let (mut lo, mut hi) = (1, self.count());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.hash(mid) > hash { hi = mid } else { lo = mid + 1 }
        }
        lo - 1
    }

    /// Inserts `(hash, block)` right after the entry followed (`dx_insert_block`).
    fn insert_after_at(&mut self, hash: u32, block: u32) {
        let count = self.count();
        for i in (self.at + 1..count).rev() {
            let (h, b) = (self.hash(i), self.block(i));
            self.set(i + 1, h, b);
        }
        self.set(self.at + 1, hash, block);
        self.set_count(count + 1);
    }

    fn write<I: DirIo>(&mut self, ctx: &DirCtx, io: &mut I) -> Result<(), I::Error> {
        if let Some(seed) = ctx.csum_seed {
            dx::set_dx_block_checksum(seed, &mut self.buf, self.co);
        }
        io.write_block(self.logical, &self.buf)
    }
}

/// A path through the index for one hash.
pub(crate) struct Index {
    frames: Vec<Frame>,
    version: HashVersion,
    hash: u32,
}

fn checksum_error(block: u32, e: ext4_ondisk::FormatError) -> DirError {
    DirError::Corrupt { block, detail: e.to_string(), checksum: matches!(e, ext4_ondisk::FormatError::Checksum { .. }), index: true }
}

/// Reads and checks the root block; returns it with its info and hash version.
fn load_root<I: DirIo>(ctx: &DirCtx, io: &mut I) -> Result<(Frame, DxRootInfo, HashVersion), I::Error> {
    if io.block_count() < 2 {
        return Err(DirError::corrupt_index(0, "indexed directory with fewer than two blocks").into());
    }
    let mut buf = vec![0u8; ctx.block_size as usize];
    io.read_block(0, &mut buf)?;
    let dot = dot_entry(ctx, &buf, false)?;
    let dotdot = dot_entry(ctx, &buf, true)?;
    let dotdot_len = d::rec_len_from_disk(get_u16(&buf, 16), ctx.block_size);
    if dot.offset != 0 || dotdot.offset != 12 || dotdot_len != ctx.block_size - 12 {
        return Err(DirError::corrupt_index(0, "htree root: '.' and '..' are not laid out as an index root").into());
    }
    let csum = ctx.csum_seed.is_some();
    let (info, entries) = dx::parse_root(&buf, csum).map_err(|e| checksum_error(0, e))?;
    if let (Some(seed), true) = (ctx.csum_seed, ctx.verify_checksums) {
        dx::verify_dx_block(seed, &buf, &entries).map_err(|e| checksum_error(0, e))?;
    }
    let version = match HashVersion::from_u8(info.hash_version) {
        Some(HashVersion::SipHash) => {
            return Err(DirError::Unsupported("SipHash (casefolded encrypted) directory".into()).into());
        }
        Some(v) => v.with_unsigned(ctx.unsigned_hash),
        None => {
            return Err(DirError::corrupt_index(0, format!("htree root: unknown hash version {}", info.hash_version)).into());
        }
    };
    if info.unused_flags & 1 != 0 {
        return Err(DirError::Unsupported("htree root with unknown hash flags".into()).into());
    }
    if usize::from(info.indirect_levels) + 1 > ctx.max_levels() {
        return Err(DirError::corrupt_index(0, format!("htree root: {} index levels", info.indirect_levels)).into());
    }
    let co = entries.count_offset();
    Ok((Frame { logical: 0, buf, co, at: 0 }, info, version))
}

/// Reads and checks index node `logical`.
fn load_node<I: DirIo>(ctx: &DirCtx, io: &mut I, logical: u32) -> Result<Frame, I::Error> {
    check_child(io, 0, logical)?;
    let mut buf = vec![0u8; ctx.block_size as usize];
    io.read_block(logical, &mut buf)?;
    let fake_len = d::rec_len_from_disk(get_u16(&buf, 4), ctx.block_size);
    if get_u32(&buf, 0) != 0 || fake_len != ctx.block_size {
        return Err(DirError::corrupt_index(logical, "htree node does not start with an empty entry covering the block").into());
    }
    let entries = dx::parse_node(&buf, ctx.csum_seed.is_some()).map_err(|e| checksum_error(logical, e))?;
    if let (Some(seed), true) = (ctx.csum_seed, ctx.verify_checksums) {
        dx::verify_dx_block(seed, &buf, &entries).map_err(|e| checksum_error(logical, e))?;
    }
    let co = entries.count_offset();
    Ok(Frame { logical, buf, co, at: 0 })
}

/// Checks that an index entry of block `from` points inside the directory and not at the root.
fn check_child<I: DirIo>(io: &I, from: u32, logical: u32) -> Result<(), DirError> {
    if logical == 0 || logical >= io.block_count() {
        return Err(DirError::corrupt_index(from, format!("htree entry points at block {logical}, outside the directory")));
    }
    Ok(())
}

impl Index {
    /// Walks from the root to the leaf where `name` belongs (`dx_probe`).
    pub(crate) fn probe<I: DirIo>(ctx: &DirCtx, io: &mut I, name: &[u8]) -> Result<Self, I::Error> {
        let (root, info, version) = load_root(ctx, io)?;
        let hash = hash::name_hash(version, &ctx.hash_seed, name).ok_or_else(|| DirError::Unsupported("hash".into()))?.major;
        let mut index = Self { frames: vec![root], version, hash };
        index.descend(ctx, io, 0, usize::from(info.indirect_levels) + 1)?;
        Ok(index)
    }

    /// Picks the entries for `self.hash` from frame `from` down, loading the nodes below.
    fn descend<I: DirIo>(&mut self, ctx: &DirCtx, io: &mut I, from: usize, levels: usize) -> Result<(), I::Error> {
        self.frames.truncate(from + 1);
        loop {
            let f = self.frames.last_mut().expect("the root frame is always there");
            f.at = f.find(self.hash);
            let child = f.block(f.at);
            let from_block = f.logical;
            check_child(io, from_block, child)?;
            if self.frames.len() == levels {
                return Ok(());
            }
            let node = load_node(ctx, io, child)?;
            self.frames.push(node);
        }
    }

    /// The leaf block the path ends at.
    pub(crate) fn leaf(&self) -> u32 {
        let f = self.frames.last().expect("the root frame is always there");
        f.block(f.at)
    }

    /// Moves to the next leaf if the hash continues there (a collision
    /// chain marked by the low bit of the next index hash,
    /// `ext4_htree_next_block`). Returns false when the search is over.
    pub(crate) fn next_leaf<I: DirIo>(&mut self, ctx: &DirCtx, io: &mut I) -> Result<bool, I::Error> {
        let levels = self.frames.len();
        let mut k = levels - 1;
        loop {
            let f = &self.frames[k];
            if f.at + 1 < f.count() {
                break;
            }
            if k == 0 {
                return Ok(false);
            }
            k -= 1;
        }
        let f = &mut self.frames[k];
        f.at += 1;
        if f.hash(f.at) & !1 != self.hash {
            return Ok(false);
        }
        for j in k + 1..levels {
            let parent = &self.frames[j - 1];
            let child = parent.block(parent.at);
            check_child(io, parent.logical, child)?;
            self.frames[j] = load_node(ctx, io, child)?;
        }
        check_child(io, self.frames[levels - 1].logical, self.leaf())?;
        Ok(true)
    }

    /// Every index block (root included), ascending, for listing leaves.
    pub(crate) fn interior_blocks<I: DirIo>(ctx: &DirCtx, io: &mut I) -> Result<Vec<u32>, I::Error> {
        let (root, info, _) = load_root(ctx, io)?;
        let mut all = vec![0u32];
        let mut level: Vec<Frame> = vec![root];
        for _ in 0..info.indirect_levels {
            let mut next = Vec::new();
            for f in &level {
                for i in 0..f.count() {
                    let child = f.block(i);
                    if all.contains(&child) {
                        return Err(DirError::corrupt_index(f.logical, format!("htree block {child} referenced twice")).into());
                    }
                    all.push(child);
                    next.push(load_node(ctx, io, child)?);
                }
            }
            level = next;
        }
        for f in &level {
            for i in 0..f.count() {
                check_child(io, f.logical, f.block(i))?;
            }
        }
        all.sort_unstable();
        Ok(all)
    }

    /// Makes room in the lowest index block: splits the lowest full block
    /// whose parent has room, or adds a level under the root.
    fn grow<I: DirIo>(&mut self, ctx: &DirCtx, io: &mut I) -> Result<(), I::Error> {
        let levels = self.frames.len();
        let mut k = levels - 1;
        while k > 0 && self.frames[k - 1].full() {
            k -= 1;
        }
        if k == 0 {
            if levels >= ctx.max_levels() {
                return Err(DirError::IndexFull.into());
            }
            let new = io.append_block()?;
            let root = &mut self.frames[0];
            let mut node = new_node(ctx, new);
            let count = root.count();
            for i in 0..count {
                node.set(i, root.hash(i), root.block(i));
            }
            node.set_count(count);
            root.set_count(1);
            root.set(0, 0, new);
            root.buf[dx::ROOT_INFO_OFFSET + 6] += 1;
            node.write(ctx, io)?;
            return self.frames[0].write(ctx, io);
        }
        let new = io.append_block()?;
        let f = &mut self.frames[k];
        let count = f.count();
        let keep = count / 2;
        let split_hash = f.hash(keep);
        let mut node = new_node(ctx, new);
        for i in keep..count {
            node.set(i - keep, f.hash(i), f.block(i));
        }
        node.set_count(count - keep);
        f.set_count(keep);
        f.write(ctx, io)?;
        node.write(ctx, io)?;
        let parent = &mut self.frames[k - 1];
        parent.insert_after_at(split_hash, new);
        parent.write(ctx, io)
    }

    /// Splits the full leaf in `buf` (`do_split`): the entries sorted by
    /// hash, the upper part (at most half the block) moves to a new leaf,
    /// and the index gets the new leaf's first hash (low bit set when the
    /// hash continues from the old leaf). Both leaves are rebuilt packed;
    /// the new entry goes into the one its hash belongs to; all are written.
    fn split_leaf<I: DirIo>(
        &mut self,
        ctx: &DirCtx,
        io: &mut I,
        leaf: u32,
        buf: &[u8],
        new_entry: (&[u8], u32, u8),
    ) -> Result<(), I::Error> {
        let end = ctx.leaf_end();
        struct Live {
            hash: u32,
            size: usize,
            ino: u32,
            name: Vec<u8>,
            ft: u8,
        }
        let mut live = Vec::new();
        ctx.region()
            .for_each(&buf[..end], |e| {
                live.push(Live { hash: 0, size: e.rec_len as usize, ino: e.inode, name: e.name.to_vec(), ft: e.file_type });
                true
            })
            .map_err(|e| DirError::from_region(leaf, e))?;
        for l in &mut live {
            l.hash = hash::name_hash(self.version, &ctx.hash_seed, &l.name).map(|h| h.major).unwrap_or(0);
        }
        let count = live.len();
        if count < 2 {
            return Err(DirError::corrupt(leaf, "full leaf with fewer than two entries").into());
        }
        let mut order: Vec<usize> = (0..count).collect();
        order.sort_by_key(|&i| live[i].hash);
        // Move entries from the top while the moved part stays under half a block.
        let half = ctx.block_size as usize / 2;
        let (mut size, mut moved) = (0, 0);
        let mut stopped_at = None;
        for (i, &j) in order.iter().enumerate().rev() {
            if size + live[j].size / 2 > half {
                stopped_at = Some(i);
                break;
            }
            size += live[j].size;
            moved += 1;
        }
        let split = if stopped_at.is_some_and(|i| i > 0) { count - moved } else { count / 2 };
        let split_hash = live[order[split]].hash;
        let continued = u32::from(split_hash == live[order[split - 1]].hash);
        let mut goes = vec![false; count];
        for &j in &order[split..] {
            goes[j] = true;
        }
        let upper: Vec<(u32, &[u8], u8)> = order[split..].iter().map(|&j| (live[j].ino, &live[j].name[..], live[j].ft)).collect();
        let lower: Vec<(u32, &[u8], u8)> = (0..count).filter(|&j| !goes[j]).map(|j| (live[j].ino, &live[j].name[..], live[j].ft)).collect();
        let new = io.append_block()?;
        let bs = ctx.block_size as usize;
        let (mut b1, mut b2) = (vec![0u8; bs], vec![0u8; bs]);
        ctx.region().fill(&mut b1[..end], &lower);
        ctx.region().fill(&mut b2[..end], &upper);
        let (name, ino, ft) = new_entry;
        let (target, tbuf) = if self.hash >= split_hash { (new, &mut b2) } else { (leaf, &mut b1) };
        if ctx.region().insert(&mut tbuf[..end], name, ino, ft).map_err(|e| DirError::from_region(target, e))?.is_none() {
            return Err(DirError::corrupt(target, "no room for the entry after a leaf split").into());
        }
        let f = self.frames.last_mut().expect("the root frame is always there");
        f.insert_after_at(split_hash | continued, new);
        f.write(ctx, io)?;
        write_leaf(ctx, io, leaf, &mut b1)?;
        write_leaf(ctx, io, new, &mut b2)
    }
}

/// An empty index node at `logical`.
fn new_node(ctx: &DirCtx, logical: u32) -> Frame {
    let mut buf = vec![0u8; ctx.block_size as usize];
    d::write_entry(&mut buf, 0, 0, ctx.block_size, &[], 0, ctx.block_size);
    let co = dx::NODE_COUNT_OFFSET;
    dx::write_count_limit(&mut buf, co, dx::node_limit(ctx.block_size, ctx.csum_seed.is_some()), 0);
    Frame { logical, buf, co, at: 0 }
}

/// Adds `name` to an htree directory (`ext4_dx_add_entry`).
pub(crate) fn insert<I: DirIo>(ctx: &DirCtx, io: &mut I, name: &[u8], ino: u32, file_type: u8) -> Result<(), I::Error> {
    let mut buf = vec![0u8; ctx.block_size as usize];
    loop {
        let mut index = Index::probe(ctx, io, name)?;
        let leaf = index.leaf();
        let end = read_leaf_for_write(ctx, io, leaf, &mut buf)?;
        if ctx.region().insert(&mut buf[..end], name, ino, file_type).map_err(|e| DirError::from_region(leaf, e))?.is_some() {
            return write_leaf(ctx, io, leaf, &mut buf);
        }
        if index.frames.last().is_some_and(Frame::full) {
            index.grow(ctx, io)?;
            continue;
        }
        return index.split_leaf(ctx, io, leaf, &buf, (name, ino, file_type));
    }
}

/// Whether the first block can become an htree root: `.` then `..` at
/// offset 12, and a hash this crate computes.
pub(crate) fn can_convert<I: DirIo>(ctx: &DirCtx, io: &mut I) -> Result<bool, I::Error> {
    if ctx.default_hash == HashVersion::SipHash {
        return Ok(false);
    }
    let mut buf = vec![0u8; ctx.block_size as usize];
    io.read_block(0, &mut buf)?;
    let dotdot = dot_entry(ctx, &buf, true)?;
    Ok(dotdot.offset == 12)
}

/// Turns a full single-block directory into an htree and adds `name`
/// (`make_indexed_dir`): the entries after `..` move to a new block 1,
/// block 0 becomes the root, and block 1 is split at once.
pub(crate) fn convert<I: DirIo>(ctx: &DirCtx, io: &mut I, name: &[u8], ino: u32, file_type: u8) -> Result<(), I::Error> {
    let bs = ctx.block_size as usize;
    let mut root = vec![0u8; bs];
    let end = read_leaf_for_write(ctx, io, 0, &mut root)?;
    let dotdot_len = d::rec_len_from_disk(get_u16(&root, 16), ctx.block_size) as usize;
    if 12 + dotdot_len > end {
        return Err(DirError::corrupt(0, "'..' runs into the checksum tail").into());
    }
    let mut entries: Vec<(u32, Vec<u8>, u8)> = Vec::new();
    ctx.region()
        .for_each(&root[12 + dotdot_len..end], |e| {
            entries.push((e.inode, e.name.to_vec(), e.file_type));
            true
        })
        .map_err(|e| DirError::from_region(0, e))?;
    let moved: Vec<(u32, &[u8], u8)> = entries.iter().map(|(i, n, f)| (*i, &n[..], *f)).collect();
    let one = io.append_block()?;
    let mut leaf = vec![0u8; bs];
    ctx.region().fill(&mut leaf[..ctx.leaf_end()], &moved);
    write_leaf(ctx, io, one, &mut leaf)?;

    root[24..].fill(0);
    d::set_rec_len(&mut root, 12, ctx.block_size - 12, ctx.block_size);
    let info = DxRootInfo { hash_version: ctx.default_hash.to_u8(), info_length: 8, indirect_levels: 0, unused_flags: 0 };
    dx::write_root_info(&mut root, info);
    let co = dx::ROOT_COUNT_OFFSET;
    dx::write_count_limit(&mut root, co, dx::root_limit(ctx.block_size, ctx.csum_seed.is_some()), 1);
    dx::write_entry(&mut root, co, 0, 0, one);
    let mut frame = Frame { logical: 0, buf: root, co, at: 0 };
    frame.write(ctx, io)?;

    let version = ctx.default_hash.with_unsigned(ctx.unsigned_hash);
    let hash = hash::name_hash(version, &ctx.hash_seed, name).ok_or_else(|| DirError::Unsupported("hash".into()))?.major;
    let mut index = Index { frames: vec![frame], version, hash };
    index.split_leaf(ctx, io, one, &leaf, (name, ino, file_type))
}

/// Points `..` of an htree directory at `parent`.
pub(crate) fn set_parent<I: DirIo>(ctx: &DirCtx, io: &mut I, parent: u32) -> Result<(), I::Error> {
    let (mut root, _, _) = load_root(ctx, io)?;
    d::set_inode(&mut root.buf, 12, parent);
    root.write(ctx, io)
}

//! ext4 directories: linear entry blocks, the htree index and name hashes.
//!
//! The crate does no I/O of its own: a directory is reached through
//! [`DirIo`] (read, write and append logical directory blocks), and every
//! operation works on whole blocks, keeping their checksums (`metadata_csum`)
//! up to date. The layout decisions follow the kernel's `fs/ext4/namei.c`,
//! so directories look as the kernel would have left them:
//!
//! * [`hash`]: the legacy, half-MD4 and TEA name hashes.
//! * [`linear`]: entry chains inside one block (or inline-data region).
//! * this module: [`for_each_entry`], [`lookup`], [`insert`] (with the
//!   switch to an htree when the first block fills, leaf splits, index
//!   node splits and new index levels), [`remove`], [`replace`],
//!   [`set_parent`] and [`new_dir_block`].
//!
//! Damage is reported as [`DirError::Corrupt`] naming the logical block;
//! nothing is written when a block on the way is damaged.

#![forbid(unsafe_code)]

pub mod hash;
mod index;
pub mod linear;

use std::ops::ControlFlow;

use ext4_ondisk::dir as d;
use ext4_ondisk::dx::HashVersion;

pub use hash::{NameHash, name_hash};
use index::Index;
use linear::{Region, RegionError};

/// What the directory code needs to know about the filesystem and the directory.
#[derive(Debug, Clone)]
pub struct DirCtx {
    /// Block size in bytes.
    pub block_size: u32,
    /// The directory inode's checksum seed, when the filesystem has `metadata_csum`.
    pub csum_seed: Option<u32>,
    /// Whether checksums are verified on read (they are always written).
    pub verify_checksums: bool,
    /// The `filetype` feature: entries carry a file type.
    pub filetype: bool,
    /// The `dir_index` feature: full single-block directories become htrees.
    pub dir_index: bool,
    /// The `large_dir` feature: three index levels.
    pub large_dir: bool,
    /// `s_hash_seed`.
    pub hash_seed: [u32; 4],
    /// `s_def_hash_version`, the hash of new htrees.
    pub default_hash: HashVersion,
    /// `EXT2_FLAGS_UNSIGNED_HASH`: names hash with unsigned bytes.
    pub unsigned_hash: bool,
    /// `s_inodes_count`: entries pointing above it are damage.
    pub inodes_count: u32,
}

impl DirCtx {
    fn region(&self) -> Region {
        Region { block_size: self.block_size, filetype: self.filetype, inodes_count: self.inodes_count }
    }

    /// Bytes of a leaf block that hold entries (all but the checksum tail).
    fn leaf_end(&self) -> usize {
        self.block_size as usize - if self.csum_seed.is_some() { d::TAIL_SIZE } else { 0 }
    }

    /// Deepest index allowed, counting the root.
    fn max_levels(&self) -> usize {
        usize::from(if self.large_dir { ext4_ondisk::dx::MAX_LEVELS_LARGEDIR } else { ext4_ondisk::dx::MAX_LEVELS })
    }
}

/// Access to one directory's blocks, by logical block number.
pub trait DirIo {
    /// The caller's error; directory errors convert into it.
    type Error: From<DirError>;
    /// Number of blocks of the directory (`i_size / block_size`).
    fn block_count(&self) -> u32;
    /// Reads logical block `logical` into `buf` (one block).
    fn read_block(&mut self, logical: u32, buf: &mut [u8]) -> Result<(), Self::Error>;
    /// Writes logical block `logical`.
    fn write_block(&mut self, logical: u32, data: &[u8]) -> Result<(), Self::Error>;
    /// Adds a zeroed block at the end of the directory; returns its logical number.
    fn append_block(&mut self) -> Result<u32, Self::Error>;
}

/// Why a directory operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirError {
    /// A directory block is damaged.
    #[error("directory block {block}: {detail}")]
    Corrupt {
        /// Logical block.
        block: u32,
        /// What is wrong.
        detail: String,
        /// Whether the damage is a checksum mismatch.
        checksum: bool,
        /// Whether the block is an index block (htree root or node) rather than a leaf.
        index: bool,
    },
    /// The name exists already.
    #[error("the name exists already")]
    Exists,
    /// The name is not in the directory.
    #[error("no such entry")]
    NotFound,
    /// The htree has reached its deepest level and the leaf is full.
    #[error("directory index full (enable large_dir for a third level)")]
    IndexFull,
    /// The name is empty, `.`, `..`, longer than 255 bytes, or holds `/` or NUL.
    #[error("invalid name")]
    InvalidName,
    /// The directory uses something this crate does not handle.
    #[error("unsupported directory: {0}")]
    Unsupported(String),
}

impl DirError {
    /// Whether this reports on-disk damage.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Self::Corrupt { .. })
    }

    /// Whether this reports a lack of space.
    pub fn is_no_space(&self) -> bool {
        matches!(self, Self::IndexFull)
    }

    pub(crate) fn corrupt(block: u32, detail: impl Into<String>) -> Self {
        Self::Corrupt { block, detail: detail.into(), checksum: false, index: false }
    }

    pub(crate) fn corrupt_index(block: u32, detail: impl Into<String>) -> Self {
        Self::Corrupt { block, detail: detail.into(), checksum: false, index: true }
    }

    fn from_region(block: u32, e: RegionError) -> Self {
        match e {
            RegionError::Corrupt(detail) => Self::corrupt(block, detail),
            RegionError::Exists => Self::Exists,
        }
    }
}

/// An entry seen while listing a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Logical block holding the entry.
    pub block: u32,
    /// Byte offset of the entry in its block.
    pub offset: u32,
    /// Inode number.
    pub inode: u32,
    /// File type code (0 without `filetype`).
    pub file_type: u8,
    /// Name.
    pub name: &'a [u8],
}

/// An entry found by [`lookup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// Inode number.
    pub inode: u32,
    /// File type code (0 without `filetype`).
    pub file_type: u8,
    /// Logical block holding the entry.
    pub block: u32,
    /// Byte offset of the entry in its block.
    pub offset: u32,
}

/// Reads leaf block `logical`, checks its tail checksum and returns the
/// length of its entry region.
fn read_leaf<I: DirIo>(ctx: &DirCtx, io: &mut I, logical: u32, buf: &mut [u8]) -> Result<usize, I::Error> {
    io.read_block(logical, buf)?;
    Ok(leaf_region(ctx, logical, buf)?)
}

/// The entry region of a leaf block, after the checksum check.
fn leaf_region(ctx: &DirCtx, logical: u32, buf: &[u8]) -> Result<usize, DirError> {
    let Some(seed) = ctx.csum_seed else {
        return Ok(buf.len());
    };
    if !d::has_tail(buf) {
        if ctx.verify_checksums {
            return Err(DirError::Corrupt { block: logical, detail: "no checksum tail".into(), checksum: true, index: false });
        }
        return Ok(buf.len());
    }
    if ctx.verify_checksums {
        d::verify_dir_block(seed, buf).map_err(|e| DirError::Corrupt {
            block: logical,
            detail: e.to_string(),
            checksum: true,
            index: false,
        })?;
    }
    Ok(ctx.leaf_end())
}

/// Finishes and writes a leaf block (checksum tail when needed).
fn write_leaf<I: DirIo>(ctx: &DirCtx, io: &mut I, logical: u32, buf: &mut [u8]) -> Result<(), I::Error> {
    if let Some(seed) = ctx.csum_seed {
        d::write_tail(buf);
        d::set_dir_block_checksum(seed, buf);
    }
    io.write_block(logical, buf)
}

fn is_dot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

fn check_name(name: &[u8]) -> Result<(), DirError> {
    if name.is_empty() || name.len() > d::NAME_MAX || is_dot(name) || name.contains(&b'/') || name.contains(&0) {
        return Err(DirError::InvalidName);
    }
    Ok(())
}

/// Calls `f` for every in-use entry of the directory, `.` and `..`
/// included, in block order (the leaf blocks of an htree; index blocks are
/// skipped). `indexed` says whether the directory uses its htree.
pub fn for_each_entry<I: DirIo>(
    ctx: &DirCtx,
    io: &mut I,
    indexed: bool,
    f: impl FnMut(Entry<'_>) -> ControlFlow<()>,
) -> Result<(), I::Error> {
    for_each_entry_from(ctx, io, indexed, 0, f)
}

/// [`for_each_entry`] from logical block `first` on: a listing resumed
/// after the blocks it has already returned reads only the rest.
pub fn for_each_entry_from<I: DirIo>(
    ctx: &DirCtx,
    io: &mut I,
    indexed: bool,
    first: u32,
    mut f: impl FnMut(Entry<'_>) -> ControlFlow<()>,
) -> Result<(), I::Error> {
    let interior = if indexed { Index::interior_blocks(ctx, io)? } else { Vec::new() };
    let mut buf = vec![0u8; ctx.block_size as usize];
    let region = ctx.region();
    for logical in first..io.block_count() {
        if interior.binary_search(&logical).is_ok() {
            if logical == 0 && list_dots(ctx, io, &mut buf, &mut f)?.is_break() {
                return Ok(());
            }
            continue;
        }
        let end = read_leaf(ctx, io, logical, &mut buf)?;
        let mut flow = ControlFlow::Continue(());
        region
            .for_each(&buf[..end], |e| {
                flow = f(Entry { block: logical, offset: e.offset, inode: e.inode, file_type: e.file_type, name: e.name });
                flow.is_continue()
            })
            .map_err(|e| DirError::from_region(logical, e))?;
        if flow.is_break() {
            return Ok(());
        }
    }
    Ok(())
}

/// `.` and `..` of an htree root (already validated by the index walk).
fn list_dots<I: DirIo>(
    ctx: &DirCtx,
    io: &mut I,
    buf: &mut [u8],
    f: &mut impl FnMut(Entry<'_>) -> ControlFlow<()>,
) -> Result<ControlFlow<()>, I::Error> {
    io.read_block(0, buf)?;
    for (name, e) in [(&b"."[..], dot_entry(ctx, buf, false)?), (&b".."[..], dot_entry(ctx, buf, true)?)] {
        if f(Entry { block: 0, offset: e.offset, inode: e.inode, file_type: e.file_type, name }).is_break() {
            return Ok(ControlFlow::Break(()));
        }
    }
    Ok(ControlFlow::Continue(()))
}

/// Finds `name` in the directory.
pub fn lookup<I: DirIo>(ctx: &DirCtx, io: &mut I, indexed: bool, name: &[u8]) -> Result<Option<Found>, I::Error> {
    let mut buf = vec![0u8; ctx.block_size as usize];
    let hit = find(ctx, io, indexed, name, &mut buf)?;
    let Some((block, offset)) = hit else {
        return Ok(None);
    };
    let e = d::parse_entry(&buf, offset as usize, ctx.block_size, ctx.filetype).map_err(|e| DirError::corrupt(block, e.to_string()))?;
    Ok(Some(Found { inode: e.inode, file_type: e.file_type, block, offset }))
}

/// The `.` entry (or, with `second`, the `..` entry) at the start of block 0.
pub(crate) fn dot_entry(ctx: &DirCtx, buf: &[u8], second: bool) -> Result<Found, DirError> {
    let bad = |what: &str, detail: String| DirError::corrupt(0, format!("'{what}' entry: {detail}"));
    let first = d::parse_entry(buf, 0, ctx.block_size, ctx.filetype).map_err(|e| bad(".", e.to_string()))?;
    if first.name != b"." {
        return Err(bad(".", "the first entry is not '.'".into()));
    }
    let e = if second {
        let pos = first.rec_len as usize;
        if pos >= buf.len() {
            return Err(bad("..", "missing".into()));
        }
        let e = d::parse_entry(buf, pos, ctx.block_size, ctx.filetype).map_err(|e| bad("..", e.to_string()))?;
        if e.name != b".." {
            return Err(bad("..", "the second entry is not '..'".into()));
        }
        e
    } else {
        first
    };
    if e.inode > ctx.inodes_count {
        return Err(bad(if second { ".." } else { "." }, format!("inode {} out of range", e.inode)));
    }
    Ok(Found { inode: e.inode, file_type: e.file_type, block: 0, offset: e.offset })
}

/// The entry region of a leaf block about to change (see [`read_leaf_for_write`]).
fn writable_region(ctx: &DirCtx, logical: u32, buf: &[u8]) -> Result<usize, DirError> {
    let end = leaf_region(ctx, logical, buf)?;
    if ctx.csum_seed.is_some() && end != ctx.leaf_end() {
        return Err(DirError::Corrupt { block: logical, detail: "no checksum tail".into(), checksum: true, index: false });
    }
    Ok(end)
}

/// Reads a leaf block that is about to change: with checksums on, it must
/// have its tail (a block without one has no room for it).
fn read_leaf_for_write<I: DirIo>(ctx: &DirCtx, io: &mut I, logical: u32, buf: &mut [u8]) -> Result<usize, I::Error> {
    io.read_block(logical, buf)?;
    Ok(writable_region(ctx, logical, buf)?)
}

/// Locates `name`: its block (left in `buf`) and offset.
fn find<I: DirIo>(ctx: &DirCtx, io: &mut I, indexed: bool, name: &[u8], buf: &mut [u8]) -> Result<Option<(u32, u32)>, I::Error> {
    if is_dot(name) {
        // `.` and `..` live in block 0 only, in linear and indexed directories alike.
        if io.block_count() == 0 {
            return Ok(None);
        }
        io.read_block(0, buf)?;
        let e = dot_entry(ctx, buf, name == b"..")?;
        return Ok((e.inode != 0).then_some((0, e.offset)));
    }
    if indexed {
        let mut index = Index::probe(ctx, io, name)?;
        loop {
            let leaf = index.leaf();
            let end = read_leaf(ctx, io, leaf, buf)?;
            if let Some(e) = ctx.region().find(&buf[..end], name).map_err(|e| DirError::from_region(leaf, e))? {
                return Ok(Some((leaf, e.offset)));
            }
            if !index.next_leaf(ctx, io)? {
                return Ok(None);
            }
        }
    }
    for logical in 0..io.block_count() {
        let end = read_leaf(ctx, io, logical, buf)?;
        if let Some(e) = ctx.region().find(&buf[..end], name).map_err(|e| DirError::from_region(logical, e))? {
            return Ok(Some((logical, e.offset)));
        }
    }
    Ok(None)
}

/// Adds entry `name -> ino` with type code `file_type`. The caller makes
/// sure the name is absent (see [`lookup`]); a duplicate met on the way is
/// refused with [`DirError::Exists`], but the blocks past the slot used are
/// not searched, as in the kernel. A linear directory
/// whose single block is full becomes an htree when `dir_index` is on;
/// `indexed` is updated then (the caller sets the inode's index flag).
/// Directory size limits are the [`DirIo::append_block`]'s to enforce.
pub fn insert<I: DirIo>(ctx: &DirCtx, io: &mut I, indexed: &mut bool, name: &[u8], ino: u32, file_type: u8) -> Result<(), I::Error> {
    check_name(name)?;
    if *indexed {
        return index::insert(ctx, io, name, ino, file_type);
    }
    let mut buf = vec![0u8; ctx.block_size as usize];
    let region = ctx.region();
    let blocks = io.block_count();
    if blocks == 0 {
        return Err(DirError::corrupt(0, "directory has no blocks").into());
    }
    for logical in 0..blocks {
        let end = read_leaf_for_write(ctx, io, logical, &mut buf)?;
        if region.insert(&mut buf[..end], name, ino, file_type).map_err(|e| DirError::from_region(logical, e))?.is_some() {
            return write_leaf(ctx, io, logical, &mut buf);
        }
    }
    if blocks == 1 && ctx.dir_index && index::can_convert(ctx, io)? {
        index::convert(ctx, io, name, ino, file_type)?;
        *indexed = true;
        return Ok(());
    }
    let logical = io.append_block()?;
    let end = ctx.leaf_end();
    region.fill(&mut buf[..end], &[(ino, name, file_type)]);
    write_leaf(ctx, io, logical, &mut buf)
}

/// Removes entry `name`; returns the inode it pointed at, or `None` when absent.
pub fn remove<I: DirIo>(ctx: &DirCtx, io: &mut I, indexed: bool, name: &[u8]) -> Result<Option<u32>, I::Error> {
    check_name(name)?;
    let mut buf = vec![0u8; ctx.block_size as usize];
    let Some((logical, _)) = find(ctx, io, indexed, name, &mut buf)? else {
        return Ok(None);
    };
    let end = writable_region(ctx, logical, &buf)?;
    let ino = ctx.region().remove(&mut buf[..end], name).map_err(|e| DirError::from_region(logical, e))?;
    write_leaf(ctx, io, logical, &mut buf)?;
    Ok(ino)
}

/// Points the existing entry `name` at `ino` (type `file_type`), as a
/// rename over an existing name does. Returns the inode it pointed at.
pub fn replace<I: DirIo>(ctx: &DirCtx, io: &mut I, indexed: bool, name: &[u8], ino: u32, file_type: u8) -> Result<u32, I::Error> {
    check_name(name)?;
    let mut buf = vec![0u8; ctx.block_size as usize];
    let Some((logical, _)) = find(ctx, io, indexed, name, &mut buf)? else {
        return Err(DirError::NotFound.into());
    };
    let end = writable_region(ctx, logical, &buf)?;
    let old = ctx.region().retarget(&mut buf[..end], name, ino, file_type).map_err(|e| DirError::from_region(logical, e))?;
    write_leaf(ctx, io, logical, &mut buf)?;
    Ok(old.unwrap_or(0))
}

/// Points the directory's `..` at `parent`.
pub fn set_parent<I: DirIo>(ctx: &DirCtx, io: &mut I, indexed: bool, parent: u32) -> Result<(), I::Error> {
    let mut buf = vec![0u8; ctx.block_size as usize];
    if io.block_count() == 0 {
        return Err(DirError::corrupt(0, "directory has no blocks").into());
    }
    if indexed {
        return index::set_parent(ctx, io, parent);
    }
    read_leaf_for_write(ctx, io, 0, &mut buf)?;
    let dotdot = dot_entry(ctx, &buf, true)?;
    d::set_inode(&mut buf, dotdot.offset as usize, parent);
    write_leaf(ctx, io, 0, &mut buf)
}

/// The first block of a new directory: `.` and `..`, then the checksum tail if any.
pub fn new_dir_block(ctx: &DirCtx, ino: u32, parent: u32) -> Vec<u8> {
    let mut buf = vec![0u8; ctx.block_size as usize];
    let ft = if ctx.filetype { ext4_ondisk::FileType::Directory.dir_entry_code() } else { 0 };
    let end = ctx.leaf_end();
    ctx.region().fill(&mut buf[..end], &[(ino, b".", ft), (parent, b"..", ft)]);
    if let Some(seed) = ctx.csum_seed {
        d::write_tail(&mut buf);
        d::set_dir_block_checksum(seed, &mut buf);
    }
    buf
}

/// Whether the directory holds nothing but `.` and `..`.
pub fn is_empty<I: DirIo>(ctx: &DirCtx, io: &mut I, indexed: bool) -> Result<bool, I::Error> {
    let mut empty = true;
    for_each_entry(ctx, io, indexed, |e| {
        if is_dot(e.name) {
            ControlFlow::Continue(())
        } else {
            empty = false;
            ControlFlow::Break(())
        }
    })?;
    Ok(empty)
}

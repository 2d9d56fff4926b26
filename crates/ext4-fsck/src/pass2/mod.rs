//! Pass 2: every directory block pass 1 listed, entry by entry (record
//! lengths, `.` and `..`, inode numbers, file types, names, duplicates),
//! counting the links to each inode; htree index blocks are parsed and
//! the index checked against the hashes found.

mod entry;
mod htree;

use std::collections::HashMap;

use ext4_ondisk::features::{Compat, Incompat, RoCompat};
use ext4_ondisk::inode::{InodeFlags, raw as iraw};

use crate::ctx::{Ctx, DirBlock, DxKind, Flow};
use crate::inodes::flag;
use crate::problem::{At, Code};

pub(crate) use entry::process_bad_inode;

/// Runs pass 2.
pub(crate) fn run(ctx: &mut Ctx<'_, '_>) -> Flow {
    if let Some(root) = ctx.dirs.get_mut(2) {
        root.parent = 2;
    }
    let mut list = std::mem::take(&mut ctx.dblist);
    if ctx.fs.compat(Compat::DIR_INDEX) {
        list.sort_by_key(|d| (d.blockcnt != 0, d.blk, d.ino, d.blockcnt));
    }
    let mut st = State::default();
    let total = list.len() as u64;
    for (i, db) in list.iter().enumerate() {
        if i % 1024 == 0 {
            ctx.progress(i as u64, total)?;
        }
        check_dir_block(ctx, &mut st, db)?;
    }
    htree::verify_all(ctx, &st);
    if ctx.large_files > 0 && !ctx.fs.ro_compat(RoCompat::LARGE_FILE) {
        ctx.ask(Code::FeatureLargeFiles, At::NONE, "files over 2 GiB without large_file");
    }
    Ok(())
}

/// What pass 2 remembers between blocks.
#[derive(Default)]
pub(super) struct State {
    /// Generation of each directory inode whose record passes its checksum.
    generations: HashMap<u32, Option<u32>>,
    /// Directories that e2fsck would rebuild (duplicate names): their
    /// index is not verified.
    pub rehash: std::collections::BTreeSet<u32>,
    /// Repairs to the entries of the block being checked: (offset, what).
    pub fixes: Vec<(usize, entry::EntryFix)>,
}

/// One directory block being checked.
pub(super) struct Block {
    /// The directory.
    pub ino: u32,
    /// Its logical block number.
    pub blockcnt: u32,
    /// The physical block (0 for inline data).
    pub blk: u64,
    /// The block's bytes (for inline data: `i_block` then `system.data`).
    pub buf: Vec<u8>,
    /// Where the entries of this block start in `buf`.
    pub start: usize,
    /// Where they end.
    pub end: usize,
    /// Inline data size, 0 for a block.
    pub inline_size: usize,
    /// Its entries may be repaired: a leaf block whose checksum (if the
    /// filesystem has them) was right, so rewriting it trusts nothing new.
    pub fixable: bool,
    /// The directory's checksum seed, when it has one.
    pub seed: Option<u32>,
}

/// `check_dir_block`.
fn check_dir_block(ctx: &mut Ctx<'_, '_>, st: &mut State, db: &DirBlock) -> Flow {
    let ino = db.ino;
    if !ctx.inodes.has(ino, flag::USED) {
        return Ok(());
    }
    let fs = &ctx.fs;
    let at = At::ino_block(ino, db.blk);
    let raw = fs.read_inode_raw(ino)?.unwrap_or_default();
    let mut inline_size = 0usize;
    if fs.incompat(Incompat::INLINE_DATA) {
        if !crate::pass1::inode_csum_ok(fs, ino, &raw) {
            return Err(ctx.fatal(Code::ReadDirblock, at, format!("directory inode {ino} fails its checksum")));
        }
        let inode = iraw::parse_lenient(&raw).ok();
        if inode.as_ref().is_some_and(|i| i.flags.contains(InodeFlags::INLINE_DATA)) {
            match crate::xattr::read_all(fs, ino, &raw, true)? {
                Ok(a) => inline_size = 60 + a.iter().find(|x| crate::xattr::is_system_data(x)).map_or(0, |x| x.size),
                Err(_) => return Err(ctx.fatal(Code::ReadDirblock, at, format!("directory {ino}: inline data cannot be read"))),
            }
        }
    }
    if db.blk == 0 && fs.incompat(Incompat::LARGEDIR) && !fs.incompat(Incompat::INLINE_DATA) {
        return Ok(());
    }
    if db.blk == 0 && inline_size == 0 {
        ctx.ask(Code::DirectoryHole, at, format!("directory {ino} has a hole at block {}", db.blockcnt));
        return Ok(());
    }
    let (buf, failed_csum) = if inline_size != 0 {
        (inline_buffer(ctx, ino, &raw, inline_size)?, false)
    } else {
        let Some(b) = ctx.fs.img.block(db.blk)? else {
            return Err(ctx.fatal(Code::ReadDirblock, at, format!("directory {ino} block {} cannot be read", db.blk)));
        };
        let generation = *match st.generations.get(&ino) {
            Some(g) => g,
            None => {
                let g = crate::dirblock::generation(&ctx.fs, ino)?;
                st.generations.entry(ino).or_insert(g)
            }
        };
        let ok = crate::dirblock::csum_ok(&ctx.fs, ino, generation, &b);
        (b, !ok)
    };
    if inline_size != 0 && ((inline_size & 3) != 0 || (inline_size > 60 && inline_size < 60 + 12)) {
        ctx.ask(Code::BadInlineDirSize, At::ino(ino), format!("inline directory {ino} has a bad size {inline_size}"));
    }
    let generation = st.generations.get(&ino).copied().flatten();
    let seed = generation.map(|g| ext4_ondisk::checksum::inode_seed(ctx.fs.csum_seed(), ino, g));
    let mut b = Block { ino, blockcnt: db.blockcnt, blk: db.blk, buf, start: 0, end: 0, inline_size, fixable: false, seed };
    let kind = htree::classify(ctx, &b)?;
    let is_leaf = kind.is_none_or(|k| k == DxKind::Leaf);
    let fs = &ctx.fs;
    b.fixable = inline_size == 0
        && db.blk != 0
        && is_leaf
        && !failed_csum
        && (!fs.csum() || (seed.is_some() && crate::dirblock::has_tail(fs.bs(), &b.buf)));
    let csum = ctx.fs.csum() && inline_size == 0;
    let mut de_csum = if csum && is_leaf { 12 } else { 0 };
    let mut failed = failed_csum;
    if is_leaf && inline_size == 0 && failed && !crate::dirblock::has_tail(ctx.fs.bs(), &b.buf) {
        de_csum = 0;
        ctx.ask(Code::LeafNodeMissingCsum, at, format!("directory {ino} block {} has no checksum tail", db.blockcnt));
        failed = false;
    }
    if inline_size != 0 {
        if db.blockcnt != 0 {
            b.start = 60;
            b.end = inline_size;
            if b.end == b.start {
                return Ok(());
            }
        } else {
            b.start = 0;
            b.end = 60;
        }
    } else {
        b.end = ctx.fs.bs() as usize - de_csum;
    }
    let modified = entry::check_entries(ctx, st, &mut b, kind)?;
    if kind.is_some_and(|k| k != DxKind::Leaf) {
        htree::parse_int_node(ctx, &b, failed)?;
    }
    if is_leaf && failed && !modified {
        ctx.ask(
            Code::LeafNodeOnlyCsumInvalid,
            at,
            format!("directory {ino} block {} passes checks, but its checksum does not match", db.blockcnt),
        );
    }
    Ok(())
}

/// The bytes of an inline directory: `i_block`, then the `system.data` value.
fn inline_buffer(ctx: &mut Ctx<'_, '_>, ino: u32, raw: &[u8], size: usize) -> Flow<Vec<u8>> {
    let Ok(inode) = iraw::parse_lenient(raw) else {
        return Err(ctx.fatal(Code::ReadDirblock, At::ino(ino), "unreadable inode"));
    };
    let fs = &ctx.fs;
    let mut buf = vec![0u8; fs.bs().max(size as u32) as usize];
    buf[..60].copy_from_slice(&inode.block);
    let value = match crate::xattr::read_all(fs, ino, raw, true)? {
        Ok(attrs) if size > 60 => attrs.into_iter().find(crate::xattr::is_system_data).and_then(|a| a.value),
        _ => None,
    };
    if let Some(v) = value {
        let n = v.len().min(buf.len() - 60);
        buf[60..60 + n].copy_from_slice(&v[..n]);
    }
    Ok(buf)
}

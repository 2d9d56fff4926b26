//! Inodes whose type needs a closer look: the bad blocks inode, device
//! files, symlinks, and files that look like directories.

use ext4_ondisk::features::Incompat;
use ext4_ondisk::inode::{Inode, InodeFlags, raw as iraw};

use super::blocks::{Cb, IterErr, iterate};
use super::inode::InodeCheck;
use crate::bmap::{bmap, header_ok};
use crate::ctx::{Ctx, Flow};
use crate::fs::Fs;
use crate::inodes::flag;
use crate::problem::{At, Code};

/// `e2fsck_pass1_check_device_inode`: no block map flags, and no stray
/// block numbers on immutable or append-only devices.
pub(crate) fn check_device_inode(i: &Inode) -> bool {
    if i.flags.intersects(InodeFlags::INDEX | InodeFlags::EXTENTS) {
        return false;
    }
    if i.flags.intersects(InodeFlags::IMMUTABLE | InodeFlags::APPEND) {
        return (4..15).all(|k| ext4_ondisk::get_u32(&i.block, k * 4) == 0);
    }
    true
}

/// `e2fsck_pass1_check_symlink`: the target's length matches `i_size`,
/// whether the target is inline, in `i_block` or in one block.
pub(crate) fn check_symlink(fs: &Fs<'_>, ino: u32, i: &Inode, raw: &[u8]) -> crate::Result<bool> {
    let size_lo = i.size as u32;
    if i.size >> 32 != 0 || size_lo == 0 || i.flags.contains(InodeFlags::INDEX) {
        return Ok(false);
    }
    if i.flags.contains(InodeFlags::INLINE_DATA) {
        if i.flags.contains(InodeFlags::EXTENTS) {
            return Ok(false);
        }
        return Ok(inline_size(fs, ino, raw, true)? == Some(u64::from(size_lo)));
    }
    let (buf, buflen) = if i.size < 60 {
        if i.flags.contains(InodeFlags::EXTENTS) {
            return Ok(false);
        }
        (i.block.to_vec(), 60usize)
    } else {
        let blk = if i.flags.contains(InodeFlags::EXTENTS) {
            match single_extent(i) {
                Some(b) => b,
                None => return Ok(false),
            }
        } else {
            if (1..15).any(|k| ext4_ondisk::get_u32(&i.block, k * 4) != 0) {
                return Ok(false);
            }
            u64::from(ext4_ondisk::get_u32(&i.block, 0))
        };
        if !fs.block_ok(blk) {
            return Ok(false);
        }
        let Some(b) = fs.img.block(blk)? else { return Ok(false) };
        (b, fs.bs() as usize)
    };
    let len = if i.flags.contains(InodeFlags::ENCRYPT) {
        usize::from(ext4_ondisk::get_u16(&buf, 0)) + 2
    } else {
        buf[..buflen].iter().position(|&c| c == 0).unwrap_or(buflen)
    };
    Ok(len < buflen && len as u64 == u64::from(size_lo))
}

/// The one block of an extent-mapped slow symlink: a depth-0 root with
/// one extent of one block at logical 0.
fn single_extent(i: &Inode) -> Option<u64> {
    if !header_ok(&i.block, 60) {
        return None;
    }
    let node = ext4_ondisk::extent::ExtentNode::parse(&i.block).ok()?;
    if node.header.entries != 1 || node.header.depth != 0 {
        return None;
    }
    let e = node.extent(0);
    (e.logical == 0 && e.len == 1).then_some(e.start)
}

/// `ext2fs_inline_data_size`: 60 bytes of `i_block` plus the `system.data`
/// value; `None` when the attributes cannot be read.
pub(crate) fn inline_size(fs: &Fs<'_>, ino: u32, raw: &[u8], verify_csum: bool) -> crate::Result<Option<u64>> {
    let Ok(inode) = iraw::parse_lenient(raw) else { return Ok(None) };
    if !inode.flags.contains(InodeFlags::INLINE_DATA) {
        return Ok(None);
    }
    Ok(match crate::xattr::read_all(fs, ino, raw, verify_csum)? {
        Ok(attrs) => Some(60 + attrs.iter().find(|a| crate::xattr::is_system_data(a)).map_or(0, |a| a.size as u64)),
        Err(_) => None,
    })
}

/// `check_is_really_dir`: an inode whose mode is not a directory but whose
/// first block starts with `.` and `..` entries for it.
pub(super) fn check_is_really_dir(ctx: &mut Ctx<'_, '_>, c: &InodeCheck) -> Flow {
    let i = &c.inode;
    let t = i.mode & 0xF000;
    if t == 0x4000 || t == 0x8000 || t == 0xA000 || i.block[..4] == [0; 4] {
        return Ok(());
    }
    let fs = &ctx.fs;
    let mut not_device = false;
    let blk;
    if fs.incompat(Incompat::INLINE_DATA) && i.flags.contains(InodeFlags::INLINE_DATA) {
        if !inline_dir_looks_ok(fs, c)? {
            return Ok(());
        }
        ctx.ask(Code::TreatAsDirectory, c.at, format!("inode {} is a directory in disguise", c.ino));
        return Ok(());
    } else if fs.incompat(Incompat::EXTENTS) && i.flags.contains(InodeFlags::EXTENTS) {
        let Ok(b) = bmap(fs, c.ino, i, 0, true)? else { return Ok(()) };
        blk = b.unwrap_or(0);
        not_device = true;
    } else {
        for k in 0..15 {
            let b = u64::from(ext4_ondisk::get_u32(&i.block, k * 4));
            if b == 0 {
                continue;
            }
            if k >= 4 {
                not_device = true;
            }
            if !fs.block_ok(b) || ctx.found.contains(fs.b2c(b)) {
                return Ok(());
            }
        }
        blk = u64::from(ext4_ondisk::get_u32(&i.block, 0));
    }
    if (t == 0x2000 || t == 0x6000) && i.links_count == 1 && !not_device {
        return Ok(());
    }
    if blk >= fs.blocks_count() {
        return Ok(());
    }
    let Some(b) = fs.img.block(blk)? else { return Ok(()) };
    let generation = if fs.csum() && crate::pass1::inode_csum_ok(fs, c.ino, &c.raw) { Some(c.inode.generation) } else { None };
    if !crate::dirblock::csum_ok(fs, c.ino, generation, &b) {
        return Ok(());
    }
    if looks_like_dot_dotdot(fs.bs(), &b, c.ino) {
        ctx.ask(Code::TreatAsDirectory, c.at, format!("inode {} is a directory in disguise", c.ino));
    }
    Ok(())
}

/// Whether a block starts with `.` (naming `ino`) and `..`.
fn looks_like_dot_dotdot(bs: u32, b: &[u8], ino: u32) -> bool {
    let rl = ext4_ondisk::dir::rec_len_from_disk(ext4_ondisk::get_u16(b, 4), bs) as usize;
    if b[6] != 1 || b[8] != b'.' || ext4_ondisk::get_u32(b, 0) != ino || rl < 12 || rl % 4 != 0 || rl >= bs as usize - 12 {
        return false;
    }
    let rl2 = ext4_ondisk::dir::rec_len_from_disk(ext4_ondisk::get_u16(b, rl + 4), bs);
    b[rl + 6] == 2 && b[rl + 8] == b'.' && b[rl + 9] == b'.' && rl2 >= 12 && rl2 % 4 == 0
}

/// The inline-data half of `check_is_really_dir`: a size that is a
/// multiple of 4 and a plausible `..` and first entry.
fn inline_dir_looks_ok(fs: &Fs<'_>, c: &InodeCheck) -> crate::Result<bool> {
    let Some(size) = inline_size(fs, c.ino, &c.raw, true)? else { return Ok(false) };
    if size & 3 != 0 {
        return Ok(false);
    }
    let b = &c.inode.block;
    let dotdot = ext4_ondisk::get_u32(b, 0);
    let de_ino = ext4_ondisk::get_u32(b, 4);
    let rl = ext4_ondisk::dir::rec_len_from_disk(ext4_ondisk::get_u16(b, 8), fs.bs());
    let (n, first) = (fs.inodes_count(), fs.first_ino());
    Ok(!(dotdot >= n || (dotdot < first && dotdot != 2) || de_ino >= n || (de_ino < first && de_ino != 0) || rl > 56))
}

/// Inode 1: it lists the bad blocks; each must lie in the filesystem and
/// not in its metadata (`process_bad_block`).
pub(super) fn bad_blocks_inode(ctx: &mut Ctx<'_, '_>, c: &InodeCheck) -> Flow {
    let i = &c.inode;
    if (c.failed_csum
        || i.mode != 0
        || i.uid != 0
        || i.gid != 0
        || i.links_count != 0
        || i.flags.contains(InodeFlags::INLINE_DATA)
        || i.file_acl != 0)
        && !ctx.ask(Code::InvalidBadInode, c.at, "the bad blocks inode is not valid")
    {
        // Left as it is; its blocks are still examined.
    }
    let meta = ctx.found.clone();
    let mut bbcheck = false;
    let inode = c.inode.clone();
    let err = iterate(ctx, 1, &inode, false, &mut |ctx, blk, cnt, _ref| {
        bad_block(ctx, &meta, &inode, blk, cnt, &mut bbcheck);
        Cb::Continue
    })?;
    if let Some(e) = err {
        return Err(ctx.fatal(Code::BbIllegalBlockNum, At::ino(1), format!("reading the bad blocks inode's map failed: {e:?}")));
    }
    if bbcheck {
        return Err(ctx.fatal(Code::BbinodeBadMetablock, At::ino(1), "the bad blocks inode's map blocks are claimed by metadata"));
    }
    ctx.inodes.set(1, flag::USED);
    c.finish(ctx)
}

/// One block of the bad blocks inode.
fn bad_block(ctx: &mut Ctx<'_, '_>, meta: &crate::runset::RunSet, inode: &Inode, blk: u64, cnt: i64, bbcheck: &mut bool) {
    if blk == 0 {
        return;
    }
    let at = At::ino_block(1, blk);
    if !ctx.fs.block_ok(blk) {
        ctx.ask(Code::BbIllegalBlockNum, at, format!("bad block {blk} is outside the filesystem"));
        return;
    }
    let cl = ctx.fs.b2c(blk);
    if cnt < 0 {
        if meta.contains(cl) {
            *bbcheck = true;
            ctx.ask(Code::BbFsBlock, at, format!("the bad blocks inode's map block {blk} is filesystem metadata"));
        } else if ctx.found.contains(cl) {
            *bbcheck = true;
            ctx.ask(Code::BbinodeBadMetablock, at, format!("the bad blocks inode's map block {blk} is in use"));
        } else {
            ctx.mark_block(blk);
        }
        return;
    }
    if !ctx.found.contains(cl) {
        ctx.found.mark(cl);
        return;
    }
    if listed_metadata(ctx, blk, at) {
        return;
    }
    let words: Vec<u64> = (12..15).map(|k| u64::from(ext4_ondisk::get_u32(&inode.block, k * 4))).collect();
    if words.contains(&blk) {
        *bbcheck = true;
        ctx.ask(Code::BbinodeBadMetablock, at, format!("bad block {blk} is the bad blocks inode's own map block"));
    }
}

/// A listed bad block already in use: reports which group metadata it
/// lies in, if any (the group loop of `process_bad_block`).
fn listed_metadata(ctx: &mut Ctx<'_, '_>, blk: u64, at: At) -> bool {
    let itb = ctx.fs.itable_blocks();
    let mut first = ctx.fs.first_data_block();
    for g in 0..ctx.fs.geo.group_count {
        let at = At { group: Some(g), ..at };
        if ctx.fs.has_super(g) {
            if blk == first {
                if g == 0 {
                    ctx.ask(Code::BadPrimarySuperblock, at, format!("the primary superblock ({blk}) is on the bad blocks list"));
                } else {
                    ctx.ask(Code::BadSuperblock, at, format!("group {g}'s superblock ({blk}) is on the bad blocks list"));
                }
                return true;
            }
            if blk > first && blk <= first + ctx.fs.layout.desc_blocks {
                if g == 0 {
                    let d = format!("block {blk} of the primary group descriptors is on the bad blocks list");
                    ctx.ask(Code::BadPrimaryGroupDescriptor, at, d);
                } else {
                    ctx.ask(Code::BadGroupDescriptors, at, format!("group {g}'s descriptor copy block {blk} is on the bad blocks list"));
                }
                return true;
            }
        }
        let gd = &ctx.fs.groups[g as usize];
        let (bb, ib, it) = (gd.block_bitmap, gd.inode_bitmap, gd.inode_table);
        if blk == bb {
            if ctx.ask(Code::BbBadBlock, at, format!("group {g}'s block bitmap ({blk}) is on the bad blocks list")) {
                ctx.invalid_block_bitmap[g as usize] = true;
                ctx.invalid_bitmaps += 1;
            }
            return true;
        }
        if blk == ib {
            if ctx.ask(Code::IbBadBlock, at, format!("group {g}'s inode bitmap ({blk}) is on the bad blocks list")) {
                ctx.invalid_inode_bitmap[g as usize] = true;
                ctx.invalid_bitmaps += 1;
            }
            return true;
        }
        if blk >= it && blk < it.saturating_add(itb) {
            // The inode scan skipped the inodes of this block.
            return true;
        }
        first += u64::from(ctx.fs.geo.blocks_per_group);
    }
    false
}

/// Reads the list of bad blocks from inode 1 (`ext2fs_read_bb_inode`):
/// blocks of its map inside the filesystem. An unreadable inode means
/// no list; a map that fails part way keeps what was read.
pub(super) fn read_bad_blocks_list(ctx: &mut Ctx<'_, '_>) -> Flow {
    let Some(raw) = ctx.fs.read_inode_raw(1)? else { return Ok(()) };
    if !super::inode::csum_ok(&ctx.fs, 1, &raw) {
        return Ok(());
    }
    let Ok(inode) = iraw::parse_lenient(&raw) else { return Ok(()) };
    let mut list = crate::runset::RunSet::new();
    iterate(ctx, 1, &inode, false, &mut |ctx, blk, cnt, _ref| {
        if cnt >= 0 && ctx.fs.block_ok(blk) {
            list.mark(blk);
        }
        Cb::Continue
    })?;
    ctx.bad_blocks = list;
    Ok(())
}

/// Words for an iteration error.
impl std::fmt::Display for IterErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

//! Reconnecting an unattached inode to `/lost+found` as `#INO`
//! (e2fsck's `e2fsck_reconnect_file`), when `/lost+found` exists as a
//! plain (not indexed, not inline) directory with room in one of its
//! blocks. Creating or growing `/lost+found` is not done.

use ext4_ondisk::dir::{DirEntryIter, rec_len_for, set_dir_block_checksum, set_rec_len, write_entry};
use ext4_ondisk::features::Incompat;
use ext4_ondisk::inode::{Inode, InodeFlags, raw as iraw};

use crate::ctx::{Ctx, Flow};
use crate::fs::Fs;

/// A directory's inode record, if it passes its checksum and parses.
fn read_dir(fs: &Fs<'_>, ino: u32) -> crate::Result<Option<Inode>> {
    let Some(raw) = fs.read_inode_raw(ino)? else { return Ok(None) };
    if !crate::pass1::inode_csum_ok(fs, ino, &raw) {
        return Ok(None);
    }
    Ok(iraw::parse_lenient(&raw).ok().filter(|i| i.mode & 0xF000 == 0x4000 && !i.flags.contains(InodeFlags::INLINE_DATA)))
}

/// The region of a directory block that holds entries (the checksum tail left out).
fn entries_end(fs: &Fs<'_>, block: &[u8]) -> usize {
    if fs.csum() && crate::dirblock::has_tail(fs.bs(), block) { block.len() - 12 } else { block.len() }
}

/// The blocks of directory `ino`: (logical, physical) for each mapped one.
fn dir_blocks(fs: &Fs<'_>, ino: u32, inode: &Inode) -> crate::Result<Vec<u64>> {
    let mut v = Vec::new();
    for l in 0..inode.size / u64::from(fs.bs()) {
        if let Ok(Some(p)) = crate::bmap::bmap(fs, ino, inode, l, true)? {
            v.push(p);
        }
    }
    Ok(v)
}

/// The inode `/lost+found` names, if the root holds it.
fn lost_and_found(fs: &Fs<'_>) -> crate::Result<Option<u32>> {
    let Some(root) = read_dir(fs, 2)? else { return Ok(None) };
    for p in dir_blocks(fs, 2, &root)? {
        let Some(b) = fs.img.block(p)? else { continue };
        let end = entries_end(fs, &b);
        let found = DirEntryIter::new(&b[..end], fs.bs(), true).map_while(|e| e.ok()).find(|e| e.name == b"lost+found" && e.inode != 0);
        if let Some(e) = found {
            return Ok(Some(e.inode));
        }
    }
    Ok(None)
}

/// Adds the entry `#ino` (file type `ftype`) to `/lost+found`; `Ok(false)`
/// when there is no `/lost+found` fit to take it.
pub(crate) fn reconnect(ctx: &mut Ctx<'_, '_>, ino: u32, ftype: u8) -> Flow<bool> {
    let fs = &ctx.fs;
    let Some(lf) = lost_and_found(fs)? else { return Ok(false) };
    let Some(dir) = read_dir(fs, lf)? else { return Ok(false) };
    if dir.flags.contains(InodeFlags::INDEX) || dir.links_count == 0 {
        return Ok(false);
    }
    let seed = ext4_ondisk::checksum::inode_seed(fs.csum_seed(), lf, dir.generation);
    let name = format!("#{ino}").into_bytes();
    let need = rec_len_for(name.len()) as u32;
    let ftype = if fs.incompat(Incompat::FILETYPE) { ftype } else { 0 };
    for p in dir_blocks(fs, lf, &dir)? {
        let Some(mut b) = fs.img.block(p)? else { continue };
        if fs.csum() && !crate::dirblock::csum_ok(fs, lf, Some(dir.generation), &b) {
            continue;
        }
        let end = entries_end(fs, &b);
        let entries: Vec<_> = DirEntryIter::new(&b[..end], fs.bs(), true).collect::<Result<_, _>>().unwrap_or_default();
        // (offset, rec_len, bytes the entry uses) of the first with room.
        let room = entries.iter().find(|e| e.slack() >= need).map(|e| {
            let used = if e.inode == 0 { 0 } else { rec_len_for(e.name.len()) as u32 };
            (e.offset as usize, e.rec_len, used)
        });
        let Some((off, old_len, used)) = room else { continue };
        if used > 0 {
            set_rec_len(&mut b, off, used, fs.bs());
        }
        let (at, rec_len) = (off + used as usize, old_len - used);
        write_entry(&mut b, at, ino, rec_len, &name, ftype, fs.bs());
        if fs.csum() {
            set_dir_block_checksum(seed, &mut b);
        }
        ctx.write_block(p, &b)?;
        ctx.restart = true;
        return Ok(true);
    }
    Ok(false)
}

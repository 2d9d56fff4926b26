//! Pass 4: reference counts. Every inode in use is named by as many
//! directory entries as its `i_links_count` says (EA inodes by as many
//! xattrs as their reference count says); inodes named by none are
//! disconnected.

use ext4_ondisk::features::RoCompat;
use ext4_ondisk::inode::{InodeFlags, raw as iraw};
use ext4_ondisk::xattr::XATTR_MAGIC;

use crate::ctx::{Ctx, Flow};
use crate::inodes::flag;
use crate::problem::{At, Code};

/// Most links a directory may have before `dir_nlink` counts it as 1 (`EXT2_LINK_MAX`).
const LINK_MAX: u16 = 65000;
/// `ext2fs_icount_fetch` reports counts up to this.
const ICOUNT_MAX: u16 = 65500;

/// Runs pass 4.
pub(crate) fn run(ctx: &mut Ctx<'_, '_>) -> Flow {
    ctx.hold_unless_clean();
    let fs = &ctx.fs;
    let skip = [fs.sb.s_prj_quota_inum.get(), fs.sb.s_orphan_file_inum.get(), 1];
    let first_ino = fs.first_ino();
    let recs: Vec<(u32, u16, u16, u8)> = ctx.inodes.iter().map(|r| (r.ino, r.links, r.counted, r.flags)).collect();
    let total = recs.len() as u64;
    for (n, (ino, links, counted, flags)) in recs.into_iter().enumerate() {
        if n % 65536 == 0 {
            ctx.progress(n as u64, total)?;
        }
        if skip.contains(&ino) || (ino > 2 && ino < first_ino) {
            continue;
        }
        if flags & flag::USED == 0 || flags & (flag::IMAGIC | flag::BB) != 0 {
            continue;
        }
        check_inode(ctx, ino, links.min(ICOUNT_MAX), counted.min(ICOUNT_MAX), flags)?;
    }
    Ok(())
}

/// Reads an inode pass 4 must look at; e2fsck stops if it cannot.
fn read(ctx: &mut Ctx<'_, '_>, ino: u32) -> Flow<(Vec<u8>, ext4_ondisk::Inode)> {
    let raw = ctx.fs.read_inode_raw(ino)?;
    let ok = raw.as_ref().is_some_and(|r| crate::pass1::inode_csum_ok(&ctx.fs, ino, r));
    match raw.filter(|_| ok).and_then(|r| iraw::parse_lenient(&r).ok().map(|i| (r, i))) {
        Some(x) => Ok(x),
        None => Err(ctx.fatal(Code::BadRefCount, At::ino(ino), format!("inode {ino} cannot be read"))),
    }
}

/// The count checks of one inode.
fn check_inode(ctx: &mut Ctx<'_, '_>, ino: u32, links: u16, mut counted: u16, flags: u8) -> Flow {
    let at = At::ino(ino);
    if counted == 0 {
        let (_, inode) = read(ctx, ino)?;
        let refs = ctx.ea_inode_refs.get(&ino).copied().filter(|&r| r > 0 && inode.flags.contains(InodeFlags::EA_INODE));
        if let Some(refs) = refs {
            counted = 1;
            let stored = u64::from(inode.ctime.secs as u32) << 32 | (inode.version & 0xFFFF_FFFF);
            if stored != refs && inode.ctime.secs as u32 != inode.atime.secs as u32 {
                ctx.ask(Code::EaInodeRefCount, at, format!("EA inode {ino} has reference count {stored}, counted {refs}"));
            }
        }
    }
    if counted == 0 {
        crate::pass2::process_bad_inode(ctx, 0, ino)?;
        if !disconnect_inode(ctx, ino)? {
            return Ok(());
        }
    }
    let isdir = flags & flag::DIR != 0;
    if isdir && counted > LINK_MAX {
        if !ctx.fs.ro_compat(RoCompat::DIR_NLINK) {
            ctx.ask(Code::DirNlinkFeature, at, format!("directory {ino} has more than {LINK_MAX} links without dir_nlink"));
        }
        counted = 1;
    }
    if counted == links {
        return Ok(());
    }
    let (_, inode) = read(ctx, ino)?;
    if links != inode.links_count && !isdir && inode.links_count <= LINK_MAX {
        ctx.ask(Code::InconsistentCount, at, format!("inode {ino}: i_links_count {} differs from {links}", inode.links_count));
    }
    if isdir && counted > 1 && inode.flags.contains(InodeFlags::INDEX) && links == 1 {
        return Ok(());
    }
    if ctx.ask(Code::BadRefCount, at, format!("inode {ino} ref count is {}, should be {counted}", inode.links_count)) {
        let off = std::mem::offset_of!(ext4_ondisk::inode::InodeRaw, i_links_count);
        ctx.update_inode(ino, |raw| ext4_ondisk::put_u16(raw, off, counted))?;
    }
    Ok(())
}

/// An inode no directory names (`disconnect_inode`); `Ok(true)` when the
/// link count check should still run (it was reconnected).
fn disconnect_inode(ctx: &mut Ctx<'_, '_>, ino: u32) -> Flow<bool> {
    let (raw, inode) = read(ctx, ino)?;
    let isz = ctx.fs.geo.inode_size as usize;
    let extra = if isz > 128 { usize::from(iraw::extra_isize(&raw)) } else { 0 };
    let eamagic = if isz > 128 + extra + 3 { ext4_ondisk::get_u32(&raw, 128 + extra) } else { 0 };
    let t = inode.mode & 0xF000;
    let at = At::ino(ino);
    if inode.blocks == 0 && eamagic != XATTR_MAGIC && (t == 0x8000 || t == 0x4000) {
        let msg = format!("unattached inode {ino} has no data");
        // Clearing it would change quota usage, which is not rewritten yet.
        let cleared = if ctx.fs.ro_compat(RoCompat::QUOTA) {
            ctx.ask_unrepaired(Code::ZeroLenInode, at, msg)
        } else {
            ctx.ask(Code::ZeroLenInode, at, msg)
        };
        if cleared {
            // e2fsck_clear_inode: no links, deleted now; the next round's
            // pass 1 sees it unused and pass 5 frees it.
            let now = ctx.now as u32;
            ctx.fix_inode(ino, |raw| {
                use ext4_ondisk::inode::InodeRaw;
                ext4_ondisk::put_u16(raw, std::mem::offset_of!(InodeRaw, i_links_count), 0);
                ext4_ondisk::put_u32(raw, std::mem::offset_of!(InodeRaw, i_dtime), now);
            })?;
            return Ok(false);
        }
    }
    let ftype = ctx.inodes.get(ino).map_or(0, |r| r.ftype);
    let msg = format!("inode {ino} is not in any directory");
    // Directories are pass 3's to reconnect (not written yet).
    let asked = if ftype == 2 { ctx.ask_unrepaired(Code::UnattachedInode, at, msg) } else { ctx.ask(Code::UnattachedInode, at, msg) };
    if asked && !crate::lostfound::reconnect(ctx, ino, ftype)? {
        ctx.unfix_last();
    }
    Ok(false)
}

//! The entries of one directory block (the loop of `check_dir_block`):
//! record lengths, `.` and `..`, the inode each names, its type, the
//! name, duplicates; and `e2fsck_process_bad_inode`, which pass 4 uses too.

use std::collections::HashSet;

use ext4_ondisk::dir::{rec_len_for, rec_len_from_disk};
use ext4_ondisk::features::{Compat, Incompat, RoCompat};
use ext4_ondisk::group_desc::GroupDescFlags;
use ext4_ondisk::inode::{InodeFlags, raw as iraw};
use ext4_ondisk::superblock::creator_os;

use super::{Block, State};
use crate::ctx::{Ctx, DxKind, Flow};
use crate::encrypt::{NO_POLICY, PolicyId};
use crate::inodes::flag;
use crate::problem::{At, Code};

/// One entry as read (or, for inline directories, as made up for `.` and `..`).
#[derive(Debug, Clone)]
struct Dirent<'a> {
    inode: u32,
    rec_len: usize,
    ftype: u8,
    name: &'a [u8],
    /// The byte after the name (`name[name_len]` in C, for the NUL checks).
    after: [u8; 2],
    /// The hash stored after the name (casefolded encrypted directories).
    stored_hash: u32,
}

/// Checks the entries of `b`; returns whether a repair changed the block.
pub(super) fn check_entries(ctx: &mut Ctx<'_, '_>, st: &mut State, b: &mut Block, kind: Option<DxKind>) -> Flow<bool> {
    let ino = b.ino;
    let inline = b.inline_size != 0;
    let mut dot_state = if b.blockcnt != 0 { 2 } else { 0 };
    let mut offset = b.start;
    let max = b.end;
    let dir_inode = ctx.fs.read_inode_raw(ino)?.and_then(|r| iraw::parse_lenient(&r).ok());
    let dir_flags = dir_inode.as_ref().map_or(InodeFlags::empty(), |i| i.flags);
    let policy = ctx.policies.find(ino);
    let hash_in_dirent = policy != NO_POLICY && dir_flags.contains(InodeFlags::CASEFOLD);
    let mut dups_found = st.rehash.contains(&ino);
    let mut names: HashSet<&[u8]> = HashSet::new();
    let mut hash = 0u32;
    let _ = kind;
    loop {
        let extended = dot_state > 1 && hash_in_dirent;
        let min_len = rec_len_for(1) + if extended { 8 } else { 0 };
        let d = if !inline || dot_state > 1 {
            let rec_len =
                if max - offset < 8 { min_len } else { rec_len_from_disk(ext4_ondisk::get_u16(&b.buf, offset + 4), ctx.fs.bs()) as usize };
            let name_len = usize::from(b.buf.get(offset + 6).copied().unwrap_or(0));
            let need = rec_len_for(name_len) + if extended { 8 } else { 0 };
            if offset + rec_len > max || rec_len < min_len || rec_len % 4 != 0 || need > rec_len {
                let d = format!("directory {ino} block {}: entry at offset {offset} is corrupt (rec_len {rec_len})", b.blockcnt);
                return Err(ctx.fatal(Code::DirCorrupted, At::ino_block(ino, b.blk), d));
            }
            read_dirent(&b.buf, offset, rec_len, name_len)
        } else if dot_state == 0 {
            Dirent { inode: ino, rec_len: 12, ftype: 2, name: b".", after: [0, 0], stored_hash: 0 }
        } else {
            Dirent { inode: ext4_ondisk::get_u32(&b.buf, 0), rec_len: 12, ftype: 2, name: b"..", after: [0, 0], stored_hash: 0 }
        };
        let fixable = b.fixable && (!inline || dot_state > 1);
        let cx = EntryCtx { ino, blockcnt: b.blockcnt, at: At::ino_block(ino, b.blk), dot_state, offset, fixable, policy };
        check_one(ctx, st, &cx, &d, &mut names, &mut dups_found, &mut hash)?;
        if !inline || dot_state > 1 {
            offset += d.rec_len;
        } else if dot_state == 1 {
            offset = 4;
        }
        dot_state += 1;
        if offset >= max {
            break;
        }
    }
    if offset != max {
        let d = format!("directory {ino} block {}: the last entry ends at {offset}, not {max}", b.blockcnt);
        ctx.ask(Code::FinalReclen, At::ino_block(ino, b.blk), d);
    }
    apply_fixes(ctx, st, b)
}

/// Writes the block with the entry repairs made in it, if any; the check
/// then starts again (links and parents were counted without them).
fn apply_fixes(ctx: &mut Ctx<'_, '_>, st: &mut State, b: &mut Block) -> Flow<bool> {
    if st.fixes.is_empty() {
        return Ok(false);
    }
    for (off, fix) in std::mem::take(&mut st.fixes) {
        match fix {
            EntryFix::Clear => ext4_ondisk::put_u32(&mut b.buf, off, 0),
            EntryFix::Type(t) => b.buf[off + 7] = t,
        }
    }
    if let (true, Some(seed)) = (ctx.fs.csum(), b.seed) {
        ext4_ondisk::dir::set_dir_block_checksum(seed, &mut b.buf);
    }
    ctx.write_block(b.blk, &b.buf)?;
    ctx.restart = true;
    Ok(true)
}

/// Reports a problem of an entry; when it is repaired, records `fix`.
/// Only entries after `.` and `..` are cleared: without them the
/// directory needs pass 3's repairs, which are not written yet.
fn entry_fix(ctx: &mut Ctx<'_, '_>, st: &mut State, cx: &EntryCtx, code: Code, at: At, msg: String, fix: EntryFix) -> bool {
    let allowed = cx.fixable && (cx.dot_state > 1 || matches!(fix, EntryFix::Type(_)));
    let fixed = if allowed { ctx.ask_fix_for(cx.ino, code, at, msg) } else { ctx.ask_unrepaired(code, at, msg) };
    if fixed {
        st.fixes.push((cx.offset, fix));
    }
    fixed
}

/// Decodes the entry at `offset` (lengths already checked).
fn read_dirent(buf: &[u8], offset: usize, rec_len: usize, name_len: usize) -> Dirent<'_> {
    let name = &buf[offset + 8..offset + 8 + name_len];
    let byte = |i: usize| buf.get(offset + 8 + name_len + i).copied().unwrap_or(0);
    let h = offset + 8 + ((name_len + 3) & !3);
    let stored_hash = if h + 4 <= buf.len() { ext4_ondisk::get_u32(buf, h) } else { 0 };
    Dirent { inode: ext4_ondisk::get_u32(buf, offset), rec_len, ftype: buf[offset + 7], name, after: [byte(0), byte(1)], stored_hash }
}

/// A repair to one directory entry (e2fsck's `dir_modified`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum EntryFix {
    /// The entry names no inode any more (`dirent->inode = 0`).
    Clear,
    /// The entry's file type becomes this.
    Type(u8),
}

/// Where an entry is.
struct EntryCtx {
    ino: u32,
    blockcnt: u32,
    at: At,
    dot_state: u32,
    /// Offset of the entry in its block.
    offset: usize,
    /// Whether the entry may be repaired (see `Block::fixable`).
    fixable: bool,
    /// The directory's encryption policy.
    policy: PolicyId,
}

/// The checks of one entry (`hash` carries the last name hash of the
/// block, for htree bookkeeping).
fn check_one<'a>(
    ctx: &mut Ctx<'_, '_>,
    st: &mut State,
    cx: &EntryCtx,
    d: &Dirent<'a>,
    names: &mut HashSet<&'a [u8]>,
    dups_found: &mut bool,
    hash: &mut u32,
) -> Flow {
    let (ino, at) = (cx.ino, cx.at);
    let mut problem = None;
    match cx.dot_state {
        0 => check_dot(ctx, cx, d),
        1 => check_dotdot(ctx, cx, d),
        _ if d.inode == ino => {
            problem = Some(Code::LinkDot);
            ctx.ask(Code::LinkDot, at, format!("entry '{}' in directory {ino} links to the directory itself", show(d.name)));
        }
        _ => {}
    }
    if d.inode == 0 {
        return Ok(());
    }
    let fs = &ctx.fs;
    let sb = &fs.sb;
    let name = &d.name;
    let special = [sb.s_usr_quota_inum.get(), sb.s_grp_quota_inum.get(), sb.s_prj_quota_inum.get(), sb.s_orphan_file_inum.get()];
    let i = d.inode;
    if (i != 2 && i < fs.first_ino()) || i > fs.inodes_count() || special.contains(&i) {
        problem = Some(Code::BadIno);
    } else if ctx.inodes.has(i, flag::BB) {
        problem = Some(Code::BbInode);
    } else if cx.dot_state > 1 && *name == b"." {
        problem = Some(Code::DupDot);
    } else if cx.dot_state > 1 && *name == b".." {
        problem = Some(Code::DupDotDot);
    } else if cx.dot_state > 1 && i == 2 {
        problem = Some(Code::LinkRoot);
    } else if cx.dot_state > 1 && name.is_empty() {
        problem = Some(Code::NullName);
    }
    let what = |ctx: &Ctx<'_, '_>, code: Code| {
        let _ = ctx;
        format!("entry '{}' (inode {i}) in directory {ino}: {}", show(name), code.description())
    };
    if let Some(code) = problem {
        let msg = what(ctx, code);
        if entry_fix(ctx, st, cx, code, At { ino: Some(ino), ..at }, msg, EntryFix::Clear) || code == Code::BadIno {
            return Ok(());
        }
    }
    if ctx.inodes.has(i, flag::BAD) {
        process_bad_inode(ctx, ino, i)?;
    }
    let fs = &ctx.fs;
    let (group, _) = fs.geo.inode_group(i);
    let gd = &fs.groups[group as usize];
    // u32 arithmetic as e2fsck's: a huge bg_itable_unused wraps around.
    let ipg = fs.geo.inodes_per_group;
    let first_unused = (group * ipg + 1 + ipg).wrapping_sub(gd.itable_unused);
    if gd.flags.contains(GroupDescFlags::INODE_UNINIT) {
        let msg = what(ctx, Code::InorefBgInoUninit);
        ctx.ask(Code::InorefBgInoUninit, at, msg);
    } else if i >= first_unused {
        let msg = what(ctx, Code::InorefInUnused);
        ctx.ask(Code::InorefInUnused, at, msg);
    }
    if !ctx.inodes.has(i, flag::USED) {
        problem = Some(Code::UnusedInode);
    }
    if let Some(code) = problem {
        let msg = what(ctx, code);
        if entry_fix(ctx, st, cx, code, at, msg, EntryFix::Clear) {
            return Ok(());
        }
    }
    check_filetype(ctx, st, cx, d)?;
    if cx.policy != NO_POLICY {
        if cx.dot_state > 1 {
            check_encrypted(ctx, cx, d)?;
        }
    } else {
        if strict_casefold(ctx, ino) && !valid_encoded(name) {
            let d2 = format!("entry '{}' in directory {ino} is not valid UTF-8", show(name));
            ctx.ask(Code::BadEncodedName, at, d2);
        }
        if name.iter().any(|&c| c == b'/' || c == 0) {
            let msg = what(ctx, Code::BadName);
            ctx.ask(Code::BadName, at, msg);
        }
    }
    if super::htree::tracks(ctx, ino) {
        if let Some(h) = super::htree::entry_hash(ctx, ino, cx.dot_state, d.name, Some(d.stored_hash)) {
            *hash = h;
        }
        super::htree::note_hash(ctx, ino, cx.blockcnt, *hash);
    }
    if cx.dot_state > 1 && ctx.inodes.has(i, flag::DIR) {
        let parent = ctx.dirs.get(i).map_or(0, |r| r.parent);
        if parent != 0 {
            let d2 = format!("entry '{}' in directory {ino} is a second link to directory {i} (first in {parent})", show(name));
            ctx.ask(Code::LinkDir, at, d2);
        } else if let Some(r) = ctx.dirs.get_mut(i) {
            r.parent = ino;
        }
    }
    if !*dups_found && !names.insert(name) {
        ctx.ask(Code::ReportDupDirent, at, format!("directory {ino} has two entries named '{}'", show(name)));
        ctx.ask(Code::DuplicateDirent, At::ino(ino), format!("directory {ino} holds '{}' twice", show(name)));
        st.rehash.insert(ino);
        *dups_found = true;
    }
    ctx.inodes.add_link(i);
    Ok(())
}

/// A name for messages.
fn show(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

/// `check_dot`: the first entry is `.` naming the directory.
fn check_dot(ctx: &mut Ctx<'_, '_>, cx: &EntryCtx, d: &Dirent) {
    let (ino, at) = (cx.ino, cx.at);
    let problem = if d.inode == 0 {
        Some(Code::MissingDot)
    } else if d.name != b"." {
        Some(Code::FirstNotDot)
    } else if d.after[0] != 0 {
        Some(Code::DotNullTerm)
    } else {
        None
    };
    if let Some(code) = problem {
        ctx.ask(code, at, format!("directory {ino}: {}", code.description()));
    }
    if d.inode != ino {
        ctx.ask(Code::BadInodeDot, at, format!("directory {ino}: '.' names inode {}", d.inode));
    }
    if d.rec_len > 12 && d.rec_len - 12 > 12 {
        ctx.ask(Code::SplitDot, at, format!("directory {ino}: '.' is {} bytes long", d.rec_len));
    }
}

/// `check_dotdot`: the second entry is `..`; what it names is pass 3's to check.
fn check_dotdot(ctx: &mut Ctx<'_, '_>, cx: &EntryCtx, d: &Dirent) {
    let (ino, at) = (cx.ino, cx.at);
    let problem = if d.inode == 0 {
        Some(Code::MissingDotDot)
    } else if d.name != b".." {
        Some(Code::SecondNotDotDot)
    } else if d.after[0] != 0 {
        Some(Code::DotDotNullTerm)
    } else {
        None
    };
    if let Some(code) = problem {
        ctx.ask(code, at, format!("directory {ino}: {}", code.description()));
        return;
    }
    if let Some(r) = ctx.dirs.get_mut(ino) {
        r.dotdot = d.inode;
    }
}

/// `check_filetype`: the entry's type code against the inode's mode.
fn check_filetype(ctx: &mut Ctx<'_, '_>, st: &mut State, cx: &EntryCtx, d: &Dirent) -> Flow {
    let at = cx.at;
    if !ctx.fs.incompat(Incompat::FILETYPE) {
        if d.ftype != 0 {
            ctx.ask(Code::ClearFiletype, at, format!("entry '{}' in directory {} has a file type", show(d.name), cx.ino));
        }
        return Ok(());
    }
    let i = d.inode;
    let should_be = if ctx.inodes.has(i, flag::DIR) {
        2
    } else if ctx.inodes.has(i, flag::REG) {
        1
    } else if ctx.inodes.has(i, flag::BAD) {
        0
    } else if let Some(r) = ctx.inodes.get(i).filter(|r| r.flags & flag::USED != 0 && r.flags & flag::BB == 0) {
        r.ftype
    } else {
        let Some(raw) = ctx.fs.read_inode_raw(i)? else { return Ok(()) };
        if !crate::pass1::inode_csum_ok(&ctx.fs, i, &raw) {
            return Err(ctx.fatal(Code::BadFiletype, at, format!("inode {i} cannot be read: checksum")));
        }
        iraw::parse_lenient(&raw).map_or(0, |n| crate::pass1::ftype_of(n.mode))
    };
    if d.ftype == should_be {
        return Ok(());
    }
    let code = if d.ftype != 0 { Code::BadFiletype } else { Code::SetFiletype };
    let msg = format!("entry '{}' in directory {} has file type {}, should be {should_be}", show(d.name), cx.ino, d.ftype);
    entry_fix(ctx, st, cx, code, at, msg, EntryFix::Type(should_be));
    Ok(())
}

/// Entries of encrypted directories: names at least one cipher block,
/// children encrypted under the directory's policy
/// (`check_encrypted_dirent`).
fn check_encrypted(ctx: &mut Ctx<'_, '_>, cx: &EntryCtx, d: &Dirent) -> Flow {
    if d.name.len() < 16 {
        ctx.ask(Code::BadEncryptedName, cx.at, format!("encrypted entry in directory {} has a {}-byte name", cx.ino, d.name.len()));
    }
    let i = d.inode;
    let p = ctx.policies.find(i);
    if p == cx.policy {
        return Ok(());
    }
    if p != NO_POLICY {
        let d2 = format!("inode {i} in encrypted directory {} has a different encryption policy", cx.ino);
        ctx.ask(Code::InconsistentEncryptionPolicy, cx.at, d2);
        return Ok(());
    }
    let needs = match d.ftype {
        0 if ctx.inodes.has(i, flag::REG) || ctx.inodes.has(i, flag::DIR) => true,
        0 => {
            let Some(raw) = ctx.fs.read_inode_raw(i)? else { return Ok(()) };
            if !crate::pass1::inode_csum_ok(&ctx.fs, i, &raw) {
                return Err(ctx.fatal(Code::UnencryptedFile, cx.at, format!("inode {i} cannot be read: checksum")));
            }
            let mode = iraw::parse_lenient(&raw).map_or(0, |n| n.mode & 0xF000);
            matches!(mode, 0x8000 | 0x4000 | 0xA000)
        }
        t => t == 1 || t == 2 || t == 7,
    };
    if needs {
        ctx.ask(Code::UnencryptedFile, cx.at, format!("inode {i} in encrypted directory {} is not encrypted", cx.ino));
    }
    Ok(())
}

/// `e2fsck_process_bad_inode`: the fields pass 1 flagged; `Ok(true)` when
/// the inode was cleared.
pub(crate) fn process_bad_inode(ctx: &mut Ctx<'_, '_>, dir: u32, ino: u32) -> Flow<bool> {
    let Some(raw) = ctx.fs.read_inode_raw(ino)? else { return Ok(false) };
    if !crate::pass1::inode_csum_ok(&ctx.fs, ino, &raw) {
        return Err(ctx.fatal(Code::BadMode, At::ino(ino), format!("inode {ino} cannot be read: checksum")));
    }
    let Ok(inode) = iraw::parse_lenient(&raw) else { return Ok(false) };
    let fs = &ctx.fs;
    let at = At::ino(ino);
    let mut not_fixed = 0;
    let mut ask = |ctx: &mut Ctx<'_, '_>, code: Code, counts_unfixed: bool| {
        let d = format!("inode {ino} (in directory {dir}): {}", code.description());
        if !ctx.ask(code, at, d) && counts_unfixed {
            not_fixed += 1;
        }
    };
    if inode.file_acl != 0 && !fs.compat(Compat::EXT_ATTR) {
        ask(ctx, Code::FileAclZero, true);
    }
    let fs = &ctx.fs;
    let t = inode.mode & 0xF000;
    let problem = match t {
        0x4000 | 0x8000 => None,
        0x2000 if !crate::pass1::check_device_inode(&inode) => Some(Code::BadCharDev),
        0x6000 if !crate::pass1::check_device_inode(&inode) => Some(Code::BadBlockDev),
        0x1000 if !crate::pass1::check_device_inode(&inode) => Some(Code::BadFifo),
        0xC000 if !crate::pass1::check_device_inode(&inode) => Some(Code::BadSocket),
        0xA000 if !crate::pass1::check_symlink(fs, ino, &inode, &raw)? => Some(Code::InvalidSymlink),
        0x2000 | 0x6000 | 0x1000 | 0xC000 | 0xA000 => None,
        _ => Some(Code::BadMode),
    };
    if let Some(code) = problem {
        ask(ctx, code, true);
    }
    let fs = &ctx.fs;
    let hurd = fs.sb.s_creator_os.get() == creator_os::HURD;
    let linux = fs.sb.s_creator_os.get() == creator_os::LINUX;
    let checks = [
        (iraw::obso_faddr(&raw) != 0, Code::FaddrZero, true),
        (hurd && iraw::hurd_frag_fsize(&raw).0 != 0, Code::FragZero, true),
        (hurd && iraw::hurd_frag_fsize(&raw).1 != 0, Code::FsizeZero, true),
        (linux && !fs.ro_compat(RoCompat::HUGE_FILE) && iraw::blocks_high(&raw) != 0, Code::BlocksHiZero, false),
        (linux && !fs.incompat(Incompat::BIT64) && iraw::file_acl_high(&raw) != 0, Code::IFileAclHiZero, true),
        (inode.file_acl != 0 && !fs.block_ok(inode.file_acl), Code::FileAclBad, true),
        (
            inode.size >> 32 != 0
                && !fs.incompat(Incompat::LARGEDIR)
                && inode.blocks < 1u64 << (29 - fs.geo.block_bits.min(29))
                && t == 0x4000,
            Code::DirSizeHighZero,
            true,
        ),
    ];
    for (bad, code, counts) in checks {
        if bad {
            ask(ctx, code, counts);
        }
    }
    if not_fixed == 0 {
        ctx.inodes.clear(ino, flag::BAD);
    }
    Ok(false)
}

/// Whether names in directory `ino` must be valid in the filesystem's
/// encoding: casefolded directories when the superblock asks for strict
/// checking.
fn strict_casefold(ctx: &Ctx<'_, '_>, ino: u32) -> bool {
    const STRICT: u16 = 1;
    ctx.fs.sb.s_encoding_flags.get() & STRICT != 0 && ctx.inodes.has(ino, flag::CASEFOLD)
}

/// Whether a name is well-formed UTF-8 up to its first NUL (the only
/// encoding, UTF-8 12.1, assigns every well-formed sequence).
fn valid_encoded(name: &[u8]) -> bool {
    let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
    std::str::from_utf8(&name[..end]).is_ok()
}

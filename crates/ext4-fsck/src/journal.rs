//! The journal, before the passes (`e2fsck_check_ext3_journal`): the
//! journal inode must map a journal whose superblock e2fsck understands; a
//! read-only check does not replay it. Where e2fsck would need to change
//! the journal to go on, the check stops, as e2fsck's does.

use ext4_jbd2::format::{
    BlockType, CHECKSUM_CRC32C, COMPAT_CHECKSUM, DEFAULT_FAST_COMMIT_BLOCKS, INCOMPAT_CSUM_V2, INCOMPAT_CSUM_V3, INCOMPAT_FAST_COMMIT,
    JBD2_MAGIC, JournalSuperblock, KNOWN_INCOMPAT, MIN_JOURNAL_BLOCKS,
};
use ext4_ondisk::features::{Compat, Incompat};
use ext4_ondisk::inode::{Inode, InodeFlags, raw as iraw};

use crate::ctx::{Ctx, Flow};
use crate::pass1::{Cb, iterate};
use crate::problem::{At, Code};

/// Why the journal inode is unusable (`e2fsck_get_journal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GetErr {
    /// `EXT2_ET_BAD_INODE_NUM`, `NO_JOURNAL`, `JOURNAL_TOO_SMALL`, `BAD_BLOCK_NUM`.
    BadInode(&'static str),
    /// Anything else (an unreadable or corrupt record, an external journal).
    Other(&'static str),
}

/// Checks the journal.
pub(crate) fn check(ctx: &mut Ctx<'_, '_>) -> Flow {
    let fs = &ctx.fs;
    let sb = &fs.sb;
    let has_journal = fs.compat(Compat::HAS_JOURNAL);
    let recover = fs.incompat(Incompat::RECOVER);
    if !has_journal && !recover && sb.s_journal_inum.get() == 0 && sb.s_journal_dev.get() == 0 && sb.s_journal_uuid == [0; 16] {
        return Ok(());
    }
    let (start, total_len) = match get_journal(ctx)? {
        Ok(x) => x,
        Err(GetErr::BadInode(why)) => return fix_bad_inode(ctx, why),
        Err(GetErr::Other(why)) => return Err(ctx.fatal(Code::JournalBadInode, At::ino(8), format!("while checking the journal: {why}"))),
    };
    let Some(block) = ctx.fs.img.block(start)? else {
        return Err(ctx.fatal(Code::JournalBadSuper, At::block(start), "the journal superblock cannot be read"));
    };
    let jsb = JournalSuperblock::from_bytes(&block).expect("a block holds the superblock");
    if jsb.s_header.h_magic.get() != JBD2_MAGIC {
        return fix_bad_inode(ctx, "the journal superblock has no magic number");
    }
    if let Err(why) = load(ctx, &jsb, total_len) {
        return Err(ctx.fatal(Code::JournalBadSuper, At::block(start), format!("the journal superblock is corrupt: {why}")));
    }
    let fs = &ctx.fs;
    if !fs.compat(Compat::HAS_JOURNAL) {
        ctx.ask(Code::JournalHasJournal, At::NONE, "has_journal is clear, but a journal is present");
    }
    let fs = &ctx.fs;
    if fs.compat(Compat::HAS_JOURNAL) && !fs.incompat(Incompat::RECOVER) && jsb.s_start.get() != 0 {
        ctx.ask(Code::JournalRecoveryClear, At::NONE, "needs_recovery is clear, but the journal has data");
    }
    Ok(())
}

/// `e2fsck_journal_fix_bad_inode` when nothing may change: the check cannot go on.
fn fix_bad_inode(ctx: &mut Ctx<'_, '_>, why: &str) -> Flow {
    let fs = &ctx.fs;
    if fs.compat(Compat::HAS_JOURNAL) || fs.sb.s_journal_inum.get() != 0 {
        let d = format!("the journal inode is invalid: {why}");
        ctx.ask(Code::JournalBadInode, At::ino(fs.sb.s_journal_inum.get()), d.clone());
        return Err(ctx.fatal(Code::JournalBadInode, At::NONE, format!("cannot check without the journal: {why}")));
    }
    if fs.incompat(Incompat::RECOVER) {
        ctx.ask(Code::JournalRecoverSet, At::NONE, "needs_recovery is set without a journal");
        return Err(ctx.fatal(Code::JournalRecoverSet, At::NONE, "cannot check while needs_recovery is set without a journal"));
    }
    Ok(())
}

/// `e2fsck_get_journal`: (block of the journal superblock, journal length
/// in blocks), trying the superblock's backup of the inode's block map
/// when the inode is unusable.
fn get_journal(ctx: &mut Ctx<'_, '_>) -> Flow<Result<(u64, u64), GetErr>> {
    let fs = &ctx.fs;
    let sb = fs.sb.clone();
    if sb.s_journal_uuid != [0; 16] {
        return Ok(Err(GetErr::Other("the external journal device cannot be found")));
    }
    let inum = sb.s_journal_inum.get();
    if inum == 0 || u64::from(inum) > u64::from(fs.geo.group_count) * u64::from(fs.geo.inodes_per_group) {
        return Ok(Err(GetErr::BadInode("bad journal inode number")));
    }
    let mut inode = match fs.read_inode_raw(inum)? {
        Some(raw) if crate::pass1::inode_csum_ok(fs, inum, &raw) => iraw::parse_lenient(&raw).ok(),
        _ => None,
    };
    let mut err = GetErr::Other("the journal inode cannot be read");
    let mut tried_backup = false;
    loop {
        if let Some(i) = &inode {
            match usable(ctx, inum, i)? {
                Ok(start) => return Ok(Ok((start, i.size / u64::from(ctx.fs.bs())))),
                Err(e) => err = e,
            }
        }
        if sb.s_jnl_backup_type != 1 || tried_backup {
            return Ok(Err(err));
        }
        tried_backup = true;
        inode = Some(backup_inode(&sb));
    }
}

/// The journal inode as `s_jnl_blocks` backs it up (no flags: as e2fsck builds it).
fn backup_inode(sb: &ext4_ondisk::Superblock) -> Inode {
    let mut i = Inode::empty(0);
    for (k, w) in sb.s_jnl_blocks.iter().take(15).enumerate() {
        ext4_ondisk::put_u32(&mut i.block, k * 4, w.get());
    }
    i.size = u64::from(sb.s_jnl_blocks[15].get()) << 32 | u64::from(sb.s_jnl_blocks[16].get());
    i.links_count = 1;
    i.mode = 0o100600;
    i
}

/// Whether a journal inode can be used; the block of its first block.
fn usable(ctx: &mut Ctx<'_, '_>, ino: u32, i: &Inode) -> Flow<Result<u64, GetErr>> {
    if i.links_count == 0 || i.mode & 0xF000 != 0x8000 || i.flags.contains(InodeFlags::ENCRYPT) {
        return Ok(Err(GetErr::BadInode("the journal inode is not a regular file in use")));
    }
    let bs = u64::from(ctx.fs.bs());
    if i.size / bs < u64::from(MIN_JOURNAL_BLOCKS) {
        return Ok(Err(GetErr::BadInode("the journal is too small")));
    }
    let mut last_block = -1i64;
    iterate(ctx, ino, i, true, &mut |ctx, blk, cnt, _| {
        if blk == 0 || !ctx.fs.block_ok(blk) {
            return Cb::Abort;
        }
        if cnt >= 0 {
            last_block = cnt;
        }
        Cb::Continue
    })?;
    if ((last_block + 1) as u64).saturating_mul(bs) < i.size {
        return Ok(Err(GetErr::BadInode("the journal inode does not map all its blocks")));
    }
    match crate::bmap::bmap(&ctx.fs, ino, i, 0, false)? {
        Ok(Some(b)) => Ok(Ok(b)),
        _ => Ok(Err(GetErr::Other("the journal's first block cannot be mapped"))),
    }
}

/// `e2fsck_journal_load`: what e2fsck needs of the journal superblock.
fn load(ctx: &Ctx<'_, '_>, jsb: &JournalSuperblock, total_len: u64) -> Result<(), &'static str> {
    let blocktype = jsb.s_header.h_blocktype.get();
    let v2 = blocktype == BlockType::SuperblockV2 as u32;
    match blocktype {
        t if t == BlockType::SuperblockV1 as u32 => {}
        t if t == BlockType::SuperblockV2 as u32 => {
            if jsb.s_nr_users.get() > 1 {
                return Err("the journal is shared by several filesystems");
            }
        }
        _ => return Err("unknown or wrong block type"),
    }
    let incompat = if v2 { jsb.s_feature_incompat.get() } else { 0 };
    let compat = if v2 { jsb.s_feature_compat.get() } else { 0 };
    let ro = if v2 { jsb.s_feature_ro_compat.get() } else { 0 };
    if incompat & !KNOWN_INCOMPAT != 0 || ro != 0 {
        return Err("unsupported journal features");
    }
    let v2or3 = incompat & (INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3) != 0;
    if incompat & INCOMPAT_CSUM_V2 != 0 && incompat & INCOMPAT_CSUM_V3 != 0 {
        return Err("both checksum v2 and v3");
    }
    if v2or3 && compat & COMPAT_CHECKSUM != 0 {
        return Err("checksum v1 with v2 or v3");
    }
    if v2or3 && (jsb.s_checksum_type != CHECKSUM_CRC32C || jsb.s_checksum.get() != jsb.compute_checksum()) {
        return Err("the journal superblock checksum does not match");
    }
    if u64::from(jsb.s_blocksize.get()) != u64::from(ctx.fs.bs()) {
        return Err("the journal block size differs from the filesystem's");
    }
    let maxlen = u64::from(jsb.s_maxlen.get());
    if maxlen > total_len {
        return Err("the journal is shorter than its superblock says");
    }
    if incompat & INCOMPAT_FAST_COMMIT != 0 {
        let fc = match jsb.s_num_fc_blks.get() {
            0 => DEFAULT_FAST_COMMIT_BLOCKS,
            n => n,
        };
        // Unsigned, as e2fsck computes it: more fast-commit blocks than the journal wraps around.
        if (maxlen as u32).wrapping_sub(fc) < MIN_JOURNAL_BLOCKS {
            return Err("too many fast commit blocks");
        }
    }
    Ok(())
}

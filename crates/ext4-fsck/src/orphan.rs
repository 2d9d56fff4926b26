//! The orphan file after the passes (`check_init_orphan_file`): without
//! a journal it should not exist; every block must be an empty orphan
//! block (all slots free, the tail's magic and checksum), since the
//! orphans it lists would have been processed; and `orphan_present`
//! must not be set on a clean orphan file or without one.

use ext4_ondisk::features::{Compat, RoCompat};
use ext4_ondisk::inode::raw as iraw;
use ext4_ondisk::orphan::set_orphan_block_tail;

use crate::ctx::{Ctx, Flow};
use crate::pass1::{Cb, iterate};
use crate::problem::{At, Code};

/// What the orphan file's blocks hold (`check_init_orphan_file`'s result).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Every block empty.
    Clean,
    /// Unusable: a hole, a wrong size, a dirty block left alone.
    Corrupt,
}

/// Checks the orphan file.
pub(crate) fn check_orphan_file(ctx: &mut Ctx<'_, '_>) -> Flow {
    let fs = &ctx.fs;
    let present = fs.ro_compat(RoCompat::ORPHAN_PRESENT);
    if !fs.compat(Compat::ORPHAN_FILE) {
        if present {
            ctx.ask(Code::OrphanPresentNoFile, At::NONE, "orphan_present is set without an orphan file");
        }
        return Ok(());
    }
    if !fs.compat(Compat::HAS_JOURNAL) {
        ctx.ask(Code::OrphanFileWithoutJournal, At::NONE, "the filesystem has an orphan file but no journal");
    }
    match blocks_state(ctx)? {
        State::Clean if present => {
            ctx.ask(Code::OrphanPresentCleanFile, At::NONE, "orphan_present is set but the orphan file is clean");
        }
        State::Clean => {}
        State::Corrupt => {
            ctx.ask(Code::OrphanFileCorrupted, At::NONE, "the orphan file is corrupt");
        }
    }
    Ok(())
}

/// Whether every block of the orphan file is an empty orphan block.
fn blocks_state(ctx: &mut Ctx<'_, '_>) -> Flow<State> {
    let ino = ctx.fs.sb.s_orphan_file_inum.get();
    let raw = ctx.fs.read_inode_raw(ino)?;
    let ok = raw.as_ref().is_some_and(|r| crate::pass1::inode_csum_ok(&ctx.fs, ino, r));
    let Some(inode) = raw.filter(|_| ok).and_then(|r| iraw::parse_lenient(&r).ok()) else {
        return Err(ctx.fatal(Code::OrphanFileCorrupted, At::ino(ino), format!("the orphan file inode {ino} cannot be read")));
    };
    let bs = u64::from(ctx.fs.bs());
    let at = At::ino(ino);
    if inode.size % bs != 0 {
        ctx.ask(Code::OrphanFileWrongSize, at, format!("the orphan file's size {} is not a multiple of the block size", inode.size));
        return Ok(State::Corrupt);
    }
    let blocks = inode.size / bs;
    let (seed, csum) = (ctx.fs.csum_seed(), ctx.fs.csum());
    let mut corrupt = false;
    let err = iterate(ctx, ino, &inode, true, &mut |ctx, blk, cnt, _| {
        if cnt < 0 {
            return Cb::Continue;
        }
        if blk == 0 {
            if cnt as u64 != blocks {
                ctx.ask(Code::OrphanFileHole, At::ino(ino), format!("the orphan file has a hole at block {cnt}"));
                corrupt = true;
            }
            return Cb::Abort;
        }
        let mut want = vec![0u8; bs as usize];
        set_orphan_block_tail(seed, ino, inode.generation, blk, &mut want, csum);
        let same = matches!(ctx.fs.img.block(blk), Ok(Some(b)) if b == want);
        if !same {
            ctx.ask(Code::OrphanBlockDirty, At::ino_block(ino, blk), format!("orphan file block {cnt} is not empty"));
            corrupt = true;
            return Cb::Abort;
        }
        Cb::Continue
    })?;
    Ok(if corrupt || err.is_some() { State::Corrupt } else { State::Clean })
}

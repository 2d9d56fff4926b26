//! Pass 3: every directory reachable from the root (following the parent
//! each was found in by pass 2), and `..` naming that parent.

use crate::ctx::{Ctx, Flow};
use crate::inodes::flag;
use crate::problem::{At, Code};
use crate::runset::RunSet;

/// Parents followed before loop detection starts (as e2fsck: loops are rare).
const LOOP_CHECK_AFTER: u32 = 2048;

/// Runs pass 3.
pub(crate) fn run(ctx: &mut Ctx<'_, '_>) -> Flow {
    check_root(ctx)?;
    let mut done = RunSet::new();
    done.mark(2);
    let dirs: Vec<u32> = ctx.dirs.iter().map(|d| d.ino).collect();
    let total = dirs.len() as u64;
    for (n, ino) in dirs.into_iter().enumerate() {
        if n % 4096 == 0 {
            ctx.progress(n as u64, total)?;
        }
        if ctx.inodes.has(ino, flag::DIR) {
            check_directory(ctx, &mut done, ino);
        }
    }
    Ok(())
}

/// The root must exist and be a directory (`check_root`).
fn check_root(ctx: &mut Ctx<'_, '_>) -> Flow {
    if ctx.inodes.has(2, flag::USED) {
        if !ctx.inodes.has(2, flag::DIR) {
            return Err(ctx.fatal(Code::RootNotDirAbort, At::ino(2), "the root inode is not a directory"));
        }
        return Ok(());
    }
    ctx.ask(Code::NoRootInode, At::ino(2), "the root inode is not allocated");
    Err(ctx.fatal(Code::RootNotDirAbort, At::ino(2), "cannot go on without a root directory"))
}

/// Follows `dir`'s parents up to a directory already known connected
/// (`check_directory`), then checks its `..`.
fn check_directory(ctx: &mut Ctx<'_, '_>, done: &mut RunSet, dir: u32) {
    let mut ino = dir;
    let mut loop_pass = false;
    let mut parent_count = 0u32;
    let mut seen = RunSet::new();
    loop {
        if done.mark(u64::from(ino)) {
            break;
        }
        let parent = ctx.dirs.get(ino).map_or(0, |r| r.parent);
        if parent == 0 || (loop_pass && seen.contains(u64::from(parent))) {
            let (code, what) = if parent == 0 {
                (Code::UnconnectedDir, "is not connected to the root")
            } else {
                (Code::LoopedDir, "is part of a directory loop")
            };
            ctx.ask(code, At::ino(ino), format!("directory {ino} {what}"));
            break;
        }
        ino = parent;
        if loop_pass {
            seen.mark(u64::from(ino));
        } else {
            parent_count += 1;
            if parent_count > LOOP_CHECK_AFTER {
                loop_pass = true;
                seen = RunSet::new();
                ino = dir;
            }
        }
    }
    let Some(r) = ctx.dirs.get(dir).copied() else { return };
    if r.dotdot != r.parent {
        ctx.ask(Code::BadDotDot, At::ino(dir), format!("'..' of directory {dir} is {}, should be {}", r.dotdot, r.parent));
    }
}

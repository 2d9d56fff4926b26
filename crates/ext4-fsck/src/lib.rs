//! Check (and repair) an ext2/ext3/ext4 filesystem as e2fsck does.
//!
//! [`check`] runs e2fsck's checks in e2fsck's order: the superblock and
//! group descriptors (falling back to a backup copy as e2fsck does), MMP,
//! the journal, then pass 1 (inodes, blocks and sizes: extent trees and
//! indirect maps, blocks claimed twice, `i_blocks` and sizes, inline data,
//! xattr blocks and EA inodes, flags), pass 2 (directory entries, `.` and
//! `..`, htree indexes, checksums, names, file types), pass 3 (every
//! directory reachable, no loops), pass 4 (link counts, EA inode
//! references), pass 5 (bitmaps, free counts, checksums), then the orphan
//! file. Each problem carries a [`Code`] named after e2fsck's `PR_*` code
//! and the inode, block or group concerned; the [`Report`]'s verdict is
//! the one `e2fsck -fn` reaches, with e2fsck's exit statuses.
//!
//! Why a crate of its own, above the layers and beside `ext4-fs`: a
//! checker must read what `ext4-fs` refuses to open (bad descriptors,
//! inconsistent superblocks, broken trees) and look at every structure
//! raw, in e2fsck's order, so it builds on `ext4-ondisk` directly rather
//! than on the facade's validated view; and a reader or FUSE mount should
//! not compile a checker. Its state (maps of blocks and inodes in use,
//! directory information) lives only for one check.
//!
//! Memory is bounded as e2fsck's is: blocks in use are kept as runs (a
//! red-black tree in e2fsck, a B-tree here), so they cost what the
//! filesystem's fragmentation costs, not its size; on-disk bitmaps are read
//! one group at a time in pass 5; per-inode records exist only for inodes
//! in use.

#![forbid(unsafe_code)]

mod bmap;
mod commit;
mod ctx;
mod dirblock;
mod encrypt;
mod error;
mod fs;
mod inodes;
mod journal;
mod lostfound;
mod open;
mod orphan;
mod pass1;
mod pass2;
mod pass3;
mod pass4;
mod pass5;
mod problem;
mod quota;
mod repair;
mod report;
mod runset;
mod summaries;
mod superblock;
mod xattr;

pub use error::{CheckError, Result};
pub use problem::{At, Code, Pass, Problem, Severity};
pub use report::{Outcome, Report, Stats};

use std::sync::atomic::AtomicBool;

use ext4_blockdev::BlockDevice;

/// What a check may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Change nothing (`e2fsck -n`).
    #[default]
    Check,
    /// Repair everything that can be repaired (`e2fsck -y`).
    Repair,
    /// Repair only what is safe without a human (`e2fsck -p`); stop at anything else.
    Preen,
}

/// How far a check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The pass running.
    pub pass: Pass,
    /// Units done in this pass (groups, directory blocks, directories).
    pub done: u64,
    /// Units in this pass.
    pub total: u64,
}

/// How to run a check.
#[derive(Default)]
pub struct Options<'a> {
    /// What the check may change.
    pub mode: Mode,
    /// Called as the check advances.
    pub progress: Option<&'a mut dyn FnMut(Progress)>,
    /// Set from another thread to stop the check (it ends with [`Outcome::Cancelled`]).
    pub cancel: Option<&'a AtomicBool>,
    /// The current time in seconds since the epoch (default: the clock), as
    /// e2fsck's `E2FSPROGS_FAKE_TIME`.
    pub now: Option<i64>,
}

impl std::fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options").field("mode", &self.mode).field("now", &self.now).finish_non_exhaustive()
    }
}

/// Checks the filesystem on `dev`.
///
/// Problems are in the report; `Err` only for device errors (and, in the
/// repair modes, a device that cannot be written).
pub fn check(dev: &dyn BlockDevice, opts: Options<'_>) -> Result<Report> {
    ctx::run(dev, opts)
}

/// Replays the journal of a filesystem that needs recovery, as a repair
/// does before anything else (and as e2fsck does); returns whether it did.
/// A journal that cannot be replayed is left alone (a repair then refuses
/// to write).
pub fn replay_journal(dev: &dyn BlockDevice) -> Result<bool> {
    commit::replay_journal(dev)
}

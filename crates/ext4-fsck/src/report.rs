//! What a check returns: the problems, the verdict, e2fsck's exit status,
//! and the summary counts.

use crate::problem::{Problem, Severity};

/// The verdict of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// No problem that makes the filesystem inconsistent (exit status 0).
    Clean,
    /// Problems were found and all of them repaired (exit status 1).
    Repaired,
    /// Problems remain (exit status 4).
    ErrorsLeft,
    /// The check could not finish (exit status 8).
    Aborted,
    /// The check was cancelled (exit status 32).
    Cancelled,
}

impl Outcome {
    /// e2fsck's exit status for this outcome.
    pub fn exit_status(self) -> i32 {
        match self {
            Self::Clean => 0,
            Self::Repaired => 1,
            Self::ErrorsLeft => 4,
            Self::Aborted => 8,
            Self::Cancelled => 32,
        }
    }

    /// A short name (`clean`, `repaired`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Clean => "clean",
            Self::Repaired => "repaired",
            Self::ErrorsLeft => "errors-left",
            Self::Aborted => "aborted",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Counts for the summary line (e2fsck's "N/M files, B/C blocks").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Inodes in use (reserved ones included, as e2fsck counts them).
    pub inodes_used: u64,
    /// Inodes in the filesystem.
    pub inodes_count: u64,
    /// Blocks in use (metadata and the blocks before the first group included).
    pub blocks_used: u64,
    /// Blocks in the filesystem.
    pub blocks_count: u64,
    /// Directories.
    pub directories: u64,
    /// Regular files.
    pub regular_files: u64,
    /// Symbolic links.
    pub symlinks: u64,
}

/// The result of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Every problem found, in the order found.
    pub problems: Vec<Problem>,
    /// The verdict.
    pub outcome: Outcome,
    /// Why the check stopped, when [`Outcome::Aborted`].
    pub abort_reason: Option<String>,
    /// Summary counts (partial when the check did not finish).
    pub stats: Stats,
    /// Whether the superblock used was a backup (the primary was unusable).
    pub used_backup_superblock: Option<u64>,
}

impl Report {
    /// e2fsck's exit status.
    pub fn exit_status(&self) -> i32 {
        self.outcome.exit_status()
    }

    /// Whether the filesystem is consistent (`e2fsck -fn` would exit 0).
    pub fn is_clean(&self) -> bool {
        self.outcome == Outcome::Clean
    }

    /// The problems that make the filesystem inconsistent and were not repaired.
    pub fn errors_left(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.counts && !p.fixed)
    }

    /// Decides the outcome from the problems found.
    pub(crate) fn decide(problems: &[Problem], aborted: bool, cancelled: bool) -> Outcome {
        if cancelled {
            return Outcome::Cancelled;
        }
        if aborted || problems.iter().any(|p| p.code.severity() == Severity::Fatal && !p.fixed) {
            return Outcome::Aborted;
        }
        if problems.iter().any(|p| p.counts && !p.fixed) {
            return Outcome::ErrorsLeft;
        }
        if problems.iter().any(|p| p.fixed) {
            return Outcome::Repaired;
        }
        Outcome::Clean
    }
}

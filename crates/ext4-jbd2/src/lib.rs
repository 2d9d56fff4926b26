//! The jbd2 journal of ext3/ext4.
//!
//! * [`format`]: the journal's on-disk structures (big-endian; this crate is
//!   the only one that knows them) and their checksums.

#![forbid(unsafe_code)]

pub mod error;
pub mod format;
pub mod geometry;
pub mod io;
pub mod recovery;
pub mod writer;

pub use error::{BoxError, IoOp, JournalError, LogProblem};
pub use geometry::{JournalFeatures, JournalGeometry};
pub use io::{
    DeviceJournal, JournalIo, JournalRun, MemoryJournal, read_superblock, write_superblock,
};
pub use recovery::{JournalCopy, Recovery, RecoveryWarning, recover, scan};
pub use writer::{CommitTime, EncodedTransaction, JournalWriter, set_mount_features};

//! The jbd2 journal of ext3/ext4: its big-endian on-disk format, recovery as
//! the kernel and e2fsck do it, and the transaction writer.
//!
//! * [`mod@format`]: the journal's on-disk structures (big-endian; this crate is
//!   the only one that knows them) and their checksums (crc32c for v2/v3,
//!   `crc32_be` for the v1 commit checksum).
//! * [`geometry`]: [`JournalGeometry`], a validated journal superblock (the
//!   checks of the kernel's `journal_load` and e2fsck), and wrapping
//!   transaction-id comparisons.
//! * [`io`]: [`JournalIo`], block I/O by journal block number, so this crate
//!   knows nothing of the journal inode's block map; [`DeviceJournal`] maps
//!   it onto a `BlockDevice` through the journal's runs, [`MemoryJournal`]
//!   keeps it in memory; reading and writing the journal superblock.
//! * [`recovery`]: [`scan`] runs PASS_SCAN, PASS_REVOKE and PASS_REPLAY of
//!   `fs/jbd2/recovery.c` without writing; the resulting [`Recovery`] serves
//!   reads from the journal (read-only open), replays the blocks home, and
//!   finishes the journal superblock as e2fsck does. [`recover`] does all of it.
//! * [`logdump`]: [`logdump::dump`] walks the log for display, as debugfs
//!   `logdump` does (blocks, tags, revokes, commits, checksums, and the
//!   fast-commit area's records).
//! * [`fast_commit`]: the fast-commit area after the main log, read as
//!   the kernel's recovery reads it: the records of the complete fast
//!   commits for the transaction after the log ([`FastCommits`]), or the
//!   error with which the kernel fails such a recovery. Applying them is
//!   the filesystem's business (`ext4-fs`).
//! * [`writer`]: [`JournalWriter`] encodes transactions as the kernel lays
//!   them out (revoke blocks, descriptors with tags and escapes, data,
//!   commit block with checksums), writes them in a crash-safe order, and
//!   moves the log tail on checkpoint.
//! * [`mod@error`]: [`JournalError`], with the I/O error boxed.

#![forbid(unsafe_code)]

pub mod error;
pub mod fast_commit;
pub mod format;
pub mod geometry;
pub mod io;
pub mod logdump;
pub mod recovery;
pub mod writer;

pub use error::{BoxError, IoOp, JournalError, LogProblem};
pub use fast_commit::{FastCommits, FcRecord};
pub use geometry::{JournalFeatures, JournalGeometry};
pub use io::{DeviceJournal, JournalIo, JournalRun, MemoryJournal, read_superblock, superblock_block, write_superblock};
pub use recovery::{JournalCopy, LogDamage, Recovery, RecoveryWarning, recover, scan};
pub use writer::{CommitTime, EncodedTransaction, JournalWriter, fresh_superblock, set_mount_features};

//! [`JournalError`]: what can go wrong reading, recovering or writing a journal.

/// A boxed I/O error from a [`crate::JournalIo`] or a caller's callback.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong with a journal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// Reading, writing or flushing the journal (or writing a block home) failed.
    #[error("journal I/O: {op} of journal block {jblock}: {source}")]
    Io {
        /// What was being done.
        op: IoOp,
        /// Journal block number (0 for flush; the filesystem block for [`IoOp::WriteHome`]).
        jblock: u64,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// The journal superblock is invalid.
    #[error("journal superblock: {field}: {reason}")]
    Superblock {
        /// The field at fault (kernel name).
        field: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// The journal uses a feature this crate does not know.
    #[error("journal feature not supported: {0}")]
    Unsupported(String),
    /// The log is corrupt in a way recovery cannot continue past (the kernel
    /// and e2fsck refuse such a journal too).
    #[error("journal corrupt at journal block {jblock} (transaction {sequence}): {problem}")]
    Corrupt {
        /// Journal block where the problem was found.
        jblock: u64,
        /// Transaction being read.
        sequence: u32,
        /// What is wrong.
        problem: LogProblem,
    },
    /// A transaction does not fit in the free part of the log.
    #[error("transaction needs {needed} journal blocks, the log has {free} free")]
    NoSpace {
        /// Blocks the transaction needs.
        needed: u64,
        /// Free blocks in the log.
        free: u64,
    },
    /// A caller passed something the journal cannot hold.
    #[error("invalid transaction: {0}")]
    InvalidInput(String),
}

/// The I/O operation of a [`JournalError::Io`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOp {
    /// Reading a journal block.
    Read,
    /// Writing a journal block.
    Write,
    /// Flushing the journal.
    Flush,
    /// Writing a replayed block to its home location.
    WriteHome,
}

impl std::fmt::Display for IoOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Flush => "flush",
            Self::WriteHome => "write home",
        })
    }
}

/// Corruption found in the log that stops recovery with an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogProblem {
    /// The log points outside the journal (`jread` past `j_total_len`).
    #[error("log block beyond the end of the journal ({len} blocks)")]
    OutOfRange {
        /// Journal length in blocks.
        len: u64,
    },
    /// A descriptor block of a transaction being replayed has a bad tail checksum.
    #[error("descriptor block checksum mismatch")]
    DescriptorChecksum,
    /// A checksum failed inside a transaction whose commit block is newer than
    /// the previous one: real corruption, not stale blocks (`-EFSBADCRC`).
    #[error("invalid checksum in a transaction with a valid-looking commit")]
    TransactionChecksum,
    /// A revoke block's `r_count` exceeds the block.
    #[error("revoke block r_count {count} exceeds the block")]
    RevokeCount {
        /// The count found.
        count: u32,
    },
    /// A fast-commit record with a bad length or an unknown tag before any
    /// complete fast commit (the kernel fails recovery with `-ECANCELED`).
    #[error("fast-commit record at byte {offset} of its block: {reason}")]
    FastCommitRecord {
        /// Byte offset of the record in its block.
        offset: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The first fast commit's tail does not match (`-EFSBADCRC`).
    #[error("fast-commit tail for transaction {tid} (expected {expected_tid}) with crc {crc:#010x} (computed {computed:#010x})")]
    FastCommitTail {
        /// `fc_tid` of the tail.
        tid: u32,
        /// The transaction the area must follow.
        expected_tid: u32,
        /// `fc_crc` of the tail.
        crc: u32,
        /// The crc of the records it closes.
        computed: u32,
    },
    /// A fast-commit head asks for features no replay knows (`-EOPNOTSUPP`).
    #[error("fast-commit head with unknown features {features:#x}")]
    FastCommitFeatures {
        /// `fc_features`.
        features: u32,
    },
    /// Fast commits valid to the last block of the area: the kernel's scan
    /// then reads the block after it, past a journal that ends there
    /// ("JBD2: corrupted journal superblock", `-EFSCORRUPTED`).
    #[error("fast commits fill the area to the journal's end ({len} blocks): the kernel's recovery reads past it and fails")]
    FastCommitPastJournal {
        /// Journal length in blocks.
        len: u64,
    },
    /// Two recovery passes ended at different transactions.
    #[error("recovery pass ended at transaction {found}, expected {expected}")]
    PassMismatch {
        /// Where the pass ended.
        found: u32,
        /// Where the scan pass ended.
        expected: u32,
    },
}

impl JournalError {
    pub(crate) fn io(op: IoOp, jblock: u64, e: impl Into<BoxError>) -> Self {
        Self::Io { op, jblock, source: e.into() }
    }

    pub(crate) fn superblock(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Superblock { field, reason: reason.into() }
    }
}

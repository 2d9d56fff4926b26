//! The jbd2 journal of ext3/ext4.
//!
//! * [`format`]: the journal's on-disk structures (big-endian; this crate is
//!   the only one that knows them) and their checksums.

#![forbid(unsafe_code)]

pub mod format;

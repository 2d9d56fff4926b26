//! The jbd2 journal of ext3/ext4: on-disk format, recovery and transaction writer.

#![forbid(unsafe_code)]

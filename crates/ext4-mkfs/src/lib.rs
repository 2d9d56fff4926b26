//! The ext2/ext3/ext4 formatter, equivalent to mke2fs 1.47.

#![forbid(unsafe_code)]

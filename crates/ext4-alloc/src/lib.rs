//! Block and inode bitmap allocation for ext4 (no I/O).

#![forbid(unsafe_code)]

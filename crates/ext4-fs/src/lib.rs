//! Read and write ext2/ext3/ext4 filesystems: the facade over every layer.

#![forbid(unsafe_code)]

//! Block and inode allocation policy for ext4, with no I/O.
//!
//! * [`bitmap`]: searches over bitmaps as `bitvec` bit slices: first free
//!   bit, best free run near a goal, counts, the padding bits e2fsck checks.
//! * [`init`]: the bitmaps of groups still marked `BLOCK_UNINIT` /
//!   `INODE_UNINIT`, built as the kernel builds them on first use.
//! * [`group`]: which group receives a new inode: near the parent for files,
//!   spread out for top-level directories (Orlov), flex_bg aware.
//!
//! The caller (`ext4-fs`) owns the bitmap blocks and group descriptors and
//! keeps counts and checksums; this crate only decides.
//!
//! Architecture invariant: no I/O, no state; every function takes what it
//! needs as arguments.

#![forbid(unsafe_code)]

pub mod bitmap;
pub mod group;
pub mod init;

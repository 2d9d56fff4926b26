//! Byte layouts of every ext2/ext3/ext4 on-disk structure.
//!
//! This crate is the only place in the workspace that knows how ext4 lays out
//! bytes on disk (the journal's big-endian structures live in `ext4-jbd2`).
//! Every structure is a `#[repr(C)]` zerocopy type with little-endian fields
//! named as in the kernel (`s_blocks_count_lo`), with a compile-time size
//! assertion. Parsing is "raw struct, then validated type": checks of magic
//! numbers, ranges and checksums happen here, once, and return typed values.
//!
//! Checksums are computed here and nowhere else ([`checksum`]).
//!
//! Reference: the kernel's `Documentation/filesystems/ext4/` and
//! `fs/ext4/ext4.h`; e2fsprogs' `lib/ext2fs/ext2_fs.h`.

#![forbid(unsafe_code)]

pub mod acl;
pub mod checksum;
pub mod dir;
pub mod dx;
mod error;
pub mod extent;
pub mod fast_commit;
pub mod features;
pub mod group_desc;
pub mod inode;
pub mod mmp;
pub mod orphan;
pub mod quota;
pub mod superblock;
pub mod time;
pub mod xattr;

pub use error::{FormatError, Structure};
pub use features::{Compat, Incompat, RoCompat};
pub use group_desc::{GroupDesc, GroupDescFlags};
pub use inode::{FileType, Inode, InodeFlags};
pub use superblock::{Geometry, Superblock};
pub use time::Timestamp;

/// The little-endian integer types every on-disk struct is built from.
pub mod le {
    pub use zerocopy::little_endian::{U16, U32, U64};
}

/// Reads a little-endian `u16` at `off` of `buf`. Panics if out of range:
/// callers index into buffers whose size they have already checked.
#[inline]
pub fn get_u16(buf: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([buf[off], buf[off + 1]])
}

/// Reads a little-endian `u32` at `off` of `buf` (range already checked).
#[inline]
pub fn get_u32(buf: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]])
}

/// Writes a little-endian `u16` at `off` of `buf` (range already checked).
#[inline]
pub fn put_u16(buf: &mut [u8], off: usize, v: u16) {
    buf[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

/// Writes a little-endian `u32` at `off` of `buf` (range already checked).
#[inline]
pub fn put_u32(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// Inode numbers with a fixed meaning (`EXT4_*_INO`).
pub mod ino {
    /// Bad blocks inode.
    pub const BAD_BLOCKS: u32 = 1;
    /// Root directory.
    pub const ROOT: u32 = 2;
    /// User quota (legacy).
    pub const USR_QUOTA: u32 = 3;
    /// Group quota (legacy).
    pub const GRP_QUOTA: u32 = 4;
    /// Boot loader.
    pub const BOOT_LOADER: u32 = 5;
    /// Undelete directory.
    pub const UNDEL_DIR: u32 = 6;
    /// Reserved group descriptors (resize inode).
    pub const RESIZE: u32 = 7;
    /// Journal.
    pub const JOURNAL: u32 = 8;
    /// Exclude inode (snapshots).
    pub const EXCLUDE: u32 = 9;
    /// Replica inode.
    pub const REPLICA: u32 = 10;
    /// First non-reserved inode of revision 0 filesystems.
    pub const GOOD_OLD_FIRST: u32 = 11;
}

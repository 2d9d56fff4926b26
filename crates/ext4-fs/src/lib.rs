//! Read and write ext2/ext3/ext4 filesystems: the facade over every layer.
//!
//! [`Filesystem`] opens a [`BlockDevice`] (an image file, a raw device, a
//! partition window, memory), validates it, replays its journal and the
//! fast commits after it (as the kernel's recovery does), and offers a
//! std::fs-like API over byte paths (`read`, `read_dir`, `metadata`,
//! `read_link`, `xattrs`, ...) plus an inode-based API for adapters such as
//! FUSE (`stat`, `lookup_in`, `read_at`, `dir_entries`, ...).
//!
//! This crate is the only one with caches and interior state: the metadata
//! block cache (the `cache` module), the in-memory superblock and group
//! descriptors, and the running transaction. The layer crates it
//! builds on are re-exported; formatting is `ext4-mkfs`, a sibling crate.
//!
//! Architecture invariants: every metadata change is made through a `Txn`
//! (the `txn` module), the handle `Filesystem::op` gives one operation and
//! commits or undoes in one place; file data enters the
//! block cache only as a journaled overwrite of a block already in a file,
//! and a direct write of a block drops any cached copy of it.

#![forbid(unsafe_code)]

mod adapters;
mod allocate;
mod api;
mod attr;
mod cache;
mod caller;
mod cluster;
mod dir;
mod ea_inode;
mod error;
mod fast_commit;
mod file_write;
mod fs;
mod inline;
mod inline_dir;
mod inode;
mod journal;
mod journal_dev;
mod layer;
mod layer_errors;
mod map;
mod metadata;
mod mmp;
mod namespace;
mod node;
mod orphan;
mod path;
#[cfg(unix)]
pub mod populate;
mod read;
mod report;
mod time;
pub mod tune;
mod txn;
mod xattr;
mod xattr_write;

pub use attr::{SetAttr, USER_SETTABLE_FLAGS};
pub use caller::Caller;
pub use dir::DirEntry;
pub use error::{Corruption, Error, Location, Result, errno_name};
pub use fs::{Filesystem, OpenOptions, read_superblock};
pub use inode::InodeBuf;
pub use journal::ClearedJournal;
pub use journal_dev::{JournalDeviceInfo, read_journal_device};
pub use map::DataRun;
pub use metadata::{Metadata, StatFs};
pub use namespace::{LINK_MAX, RenameMode};
pub use node::NewNode;
pub use path::{MAX_SYMLINK_HOPS, NAME_MAX};
pub use report::GroupReport;
pub use time::now;
pub use xattr::Xattr;
pub use xattr_write::{XATTR_SIZE_MAX, XattrMode};

pub use ext4_blockdev::{self as blockdev, BlockDevice, FileDevice, MemoryDevice, WindowDevice};
pub use ext4_ondisk::{self as ondisk, FileType, InodeFlags, Timestamp};
pub use {ext4_alloc as alloc, ext4_extent as extent, ext4_htree as htree, ext4_jbd2 as jbd2};

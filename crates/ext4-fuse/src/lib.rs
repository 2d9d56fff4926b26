//! FUSE adapter: serves an [`ext4_fs::Filesystem`] through the kernel's FUSE
//! low-level (inode-based) protocol, so that every program can use an ext4
//! image where no kernel driver is available.
//!
//! Inode numbers are ext4's, except that FUSE's root (1) is ext4's root (2).
//! Permission checks are left to the kernel (`default_permissions`); every
//! change runs with the credentials of the process that asked for it
//! ([`ext4_fs::Caller`]), so the library gives new inodes the owner, group
//! and setgid bit the kernel's ext4 would, and keeps root's reserved blocks
//! from other users. Requests are served one at a time, under one lock.
//!
//! Open and create are left to the kernel (OPEN and CREATE answer ENOSYS:
//! files are made with MKNOD and opened without a handle, so no RELEASE
//! follows a close). An inode the kernel has been given (by a lookup or a
//! creation) is pinned until it FORGETs it: one unlinked meanwhile is kept
//! as an orphan and freed at the FORGET, as ext4 frees it at eviction.
//!
//! Architecture invariant: no unsafe code; `fuser` mounts through
//! `/dev/fuse` directly as root, or through `fusermount3` otherwise.

#![forbid(unsafe_code)]

mod ops;

use std::path::Path;
use std::sync::Mutex;

use ext4_fs::Filesystem;
use fuser::{Config, MountOption, SessionACL};

/// How to mount.
#[derive(Debug, Clone, Default)]
pub struct MountOptions {
    /// Refuse writes.
    pub read_only: bool,
    /// Let other users than the mounter use the mount.
    pub allow_other: bool,
    /// Name shown as the mount's source.
    pub fs_name: String,
}

/// The filesystem as FUSE sees it.
pub struct Ext4Fuse {
    fs: Mutex<Option<Filesystem>>,
    read_only: bool,
}

impl Ext4Fuse {
    /// Wraps an open filesystem.
    pub fn new(fs: Filesystem, read_only: bool) -> Self {
        let read_only = read_only || !fs.is_writable();
        Self { fs: Mutex::new(Some(fs)), read_only }
    }
}

/// `read_only`: asked for, or forced by a filesystem that cannot be written
/// (the VFS then refuses writes at open: files are opened without OPEN).
fn config(opts: &MountOptions, read_only: bool) -> Config {
    let mut mount_options = vec![
        MountOption::FSName(if opts.fs_name.is_empty() { "ext4-rs".into() } else { opts.fs_name.clone() }),
        MountOption::Subtype("ext4".into()),
        MountOption::DefaultPermissions,
    ];
    if read_only {
        mount_options.push(MountOption::RO);
    }
    let mut c = Config::default();
    c.mount_options = mount_options;
    c.acl = if opts.allow_other { SessionACL::All } else { SessionACL::Owner };
    c
}

/// Mounts `fs` on `mountpoint` and serves requests until it is unmounted;
/// the filesystem is then committed and closed.
pub fn mount(fs: Filesystem, mountpoint: &Path, opts: &MountOptions) -> std::io::Result<()> {
    let fuse = Ext4Fuse::new(fs, opts.read_only);
    let config = config(opts, fuse.read_only);
    fuser::mount(fuse, mountpoint, &config)
}

/// Mounts `fs` on `mountpoint` and serves requests in a background thread;
/// dropping the returned session unmounts.
pub fn spawn_mount(fs: Filesystem, mountpoint: &Path, opts: &MountOptions) -> std::io::Result<fuser::BackgroundSession> {
    let fuse = Ext4Fuse::new(fs, opts.read_only);
    let config = config(opts, fuse.read_only);
    fuser::spawn_mount(fuse, mountpoint, &config)
}

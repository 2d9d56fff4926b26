//! Changing inode attributes: permissions, owners, times, flags — with the
//! kernel's side effects (ctime on every change, setuid/setgid cleared by
//! chown).

use ext4_ondisk::{FileType, InodeFlags, Timestamp};

use crate::error::{Error, Result};
use crate::fs::Filesystem;

/// Which attributes to change; `None` leaves one as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// Permission bits (`0o7777`).
    pub perm: Option<u16>,
    /// Owner.
    pub uid: Option<u32>,
    /// Group.
    pub gid: Option<u32>,
    /// Access time.
    pub atime: Option<Timestamp>,
    /// Modification time.
    pub mtime: Option<Timestamp>,
    /// Change time (normally set to now by any change; explicit for restores).
    pub ctime: Option<Timestamp>,
    /// Creation time (restores only; the kernel never changes it).
    pub crtime: Option<Timestamp>,
}

/// Flags a user may change with `chattr` (`EXT4_FL_USER_MODIFIABLE` subset this library supports).
pub const USER_SETTABLE_FLAGS: InodeFlags = InodeFlags::SECRM
    .union(InodeFlags::UNRM)
    .union(InodeFlags::SYNC)
    .union(InodeFlags::IMMUTABLE)
    .union(InodeFlags::APPEND)
    .union(InodeFlags::NODUMP)
    .union(InodeFlags::NOATIME)
    .union(InodeFlags::DIRSYNC)
    .union(InodeFlags::TOPDIR)
    .union(InodeFlags::NOTAIL)
    .union(InodeFlags::PROJINHERIT);

impl Filesystem {
    /// Changes attributes of inode `ino`. A change of owner clears setuid,
    /// and setgid on group-executable files, as the kernel does for
    /// unprivileged callers' files; ctime becomes now unless given.
    pub fn set_attr(&mut self, ino: u32, a: SetAttr) -> Result<()> {
        self.op(|txn| {
            let mut ib = txn.read_inode(ino)?;
            // `chown_common` kills setuid/setgid whenever an owner is given, even an unchanged one.
            let owner_given = a.uid.is_some() || a.gid.is_some();
            // `notify_change`: mode, owners and explicit times of an immutable
            // or append-only inode do not change.
            let explicit = a.perm.is_some() || owner_given || a.atime.is_some() || a.mtime.is_some() || a.crtime.is_some();
            if explicit && ib.inode.flags.intersects(InodeFlags::IMMUTABLE | InodeFlags::APPEND) {
                return Err(Error::NotPermitted("the file is immutable or append-only"));
            }
            if let Some(u) = a.uid {
                ib.inode.uid = u;
            }
            if let Some(g) = a.gid {
                ib.inode.gid = g;
            }
            let mut perm = a.perm.unwrap_or(ib.inode.permissions()) & 0o7777;
            if owner_given && a.perm.is_none() && ib.file_type() != FileType::Directory {
                perm &= !0o4000;
                if perm & 0o010 != 0 {
                    perm &= !0o2000;
                }
            }
            ib.inode.mode = (ib.inode.mode & ext4_ondisk::inode::S_IFMT) | perm;
            if let Some(t) = a.atime {
                ib.inode.atime = t;
            }
            if let Some(t) = a.mtime {
                ib.inode.mtime = t;
            }
            if let Some(t) = a.crtime {
                ib.inode.crtime = t;
            }
            ib.inode.ctime = a.ctime.unwrap_or_else(|| txn.now());
            fit_times(&mut ib.inode);
            txn.write_inode(&mut ib)
        })
    }

    /// Sets the user-settable inode flags (`chattr`); other flags are kept.
    /// As the kernel's `ext4_mask_flags`, a regular file takes no directory
    /// flags (dirsync, topdir, projinherit) and other non-directories only
    /// nodump and noatime (e2fsck clears immutable or append-only on them).
    pub fn set_flags(&mut self, ino: u32, flags: InodeFlags) -> Result<()> {
        self.op(|txn| {
            let mut ib = txn.read_inode(ino)?;
            let keep = ib.inode.flags.difference(USER_SETTABLE_FLAGS);
            let fits = match ib.file_type() {
                FileType::Directory => USER_SETTABLE_FLAGS,
                FileType::Regular => USER_SETTABLE_FLAGS.difference(InodeFlags::DIRSYNC | InodeFlags::TOPDIR | InodeFlags::PROJINHERIT),
                _ => InodeFlags::NODUMP | InodeFlags::NOATIME,
            };
            ib.inode.flags = keep | (flags & fits);
            ib.inode.ctime = txn.now();
            txn.write_inode(&mut ib)
        })
    }
}

/// Latest time an inode with `_extra` words holds (`EXT4_EXTRA_TIMESTAMP_MAX`, in 2446).
const EXTRA_TIMESTAMP_MAX: i64 = (1 << 34) - 1 + i32::MIN as i64;

/// Limits each time to what its fields can hold, as the kernel's
/// `timestamp_truncate` and `EXT4_INODE_SET_XTIME` do: seconds clamped to
/// 1901..2446 (32 signed bits without the `_extra` word, which 128-byte
/// inodes lack), and no nanoseconds at a limit or without `_extra`.
fn fit_times(inode: &mut ext4_ondisk::Inode) {
    // Bytes of `i_extra_isize` that reach the end of each `_extra` word.
    let x = inode.extra_isize;
    for (t, extra_end) in [(&mut inode.ctime, 8), (&mut inode.mtime, 12), (&mut inode.atime, 16), (&mut inode.crtime, 24)] {
        let extra = x >= extra_end;
        let (min, max) = (i64::from(i32::MIN), if extra { EXTRA_TIMESTAMP_MAX } else { i64::from(i32::MAX) });
        let secs = t.secs.clamp(min, max);
        let nsec = if !extra || secs == min || secs == max { 0 } else { t.nsec };
        *t = Timestamp { secs, nsec };
    }
}

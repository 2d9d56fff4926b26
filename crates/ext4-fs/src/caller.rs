//! Who performs the operations: the credentials the kernel takes from the
//! calling process (`current_cred()`), which decide the owner and mode of
//! new inodes (`inode_init_owner`, `vfs_prepare_mode`) and whether the
//! blocks reserved for root may be allocated (`ext4_has_free_clusters`).

use ext4_ondisk::FileType;

use crate::fs::Filesystem;
use crate::inode::InodeBuf;

/// `S_ISUID`.
const S_ISUID: u16 = 0o4000;
/// `S_ISGID`.
const S_ISGID: u16 = 0o2000;
/// `S_IXGRP`.
const S_IXGRP: u16 = 0o010;

/// The credentials operations run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// File-system user id (`fsuid`): the owner of what it creates.
    pub uid: u32,
    /// File-system group id (`fsgid`): the group of what it creates
    /// outside setgid directories.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Holds `CAP_FSETID` and `CAP_SYS_RESOURCE`, as root does: keeps the
    /// setgid bit of files it makes in a setgid directory of a group it is
    /// not in, and may allocate the blocks reserved for root.
    pub privileged: bool,
    /// Permission bits cleared from the mode of every inode it creates
    /// (0: none; a caller that has already applied its umask gives 0).
    pub umask: u16,
}

impl Default for Caller {
    fn default() -> Self {
        Self::root()
    }
}

impl Caller {
    /// Root, without a umask: what an image tool acting for the
    /// administrator is (the default).
    pub fn root() -> Self {
        Self { uid: 0, gid: 0, groups: Vec::new(), privileged: true, umask: 0 }
    }

    /// A user with fsuid `uid` and fsgid `gid`; privileged if `uid` is 0.
    pub fn user(uid: u32, gid: u32) -> Self {
        Self { uid, gid, groups: Vec::new(), privileged: uid == 0, umask: 0 }
    }

    /// Whether `gid` is the caller's group or one of its supplementary groups (`in_group_p`).
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

/// The owner and mode of a new inode of type `kind` asked for with
/// permissions `perm` in directory `parent` by `caller`, as the kernel
/// decides them: `vfs_prepare_mode` (setgid stripped from a group-executable
/// non-directory in a setgid directory of a group the caller is neither in
/// nor privileged over, then the umask, then the type's permitted bits:
/// directories take no setuid or setgid from the caller, symbolic links are
/// always 0777), then `inode_init_owner` (the caller's fsuid; a setgid
/// directory's group, and for a directory its setgid bit, else the caller's
/// fsgid). Returns `(uid, gid, permissions)`.
pub(crate) fn init_owner(caller: &Caller, parent: &InodeBuf, kind: FileType, perm: u16) -> (u32, u32, u16) {
    let setgid_parent = parent.inode.mode & S_ISGID != 0;
    let mut perm = perm & 0o7777;
    let group_exec_setgid = perm & (S_ISGID | S_IXGRP) == S_ISGID | S_IXGRP;
    if group_exec_setgid && kind != FileType::Directory && setgid_parent && !caller.in_group(parent.inode.gid) && !caller.privileged {
        perm &= !S_ISGID;
    }
    perm &= !(caller.umask & 0o777);
    perm = match kind {
        FileType::Directory => perm & !(S_ISUID | S_ISGID),
        FileType::Symlink => 0o777,
        _ => perm,
    };
    if !setgid_parent {
        return (caller.uid, caller.gid, perm);
    }
    if kind == FileType::Directory {
        perm |= S_ISGID;
    }
    (caller.uid, parent.inode.gid, perm)
}

impl Filesystem {
    /// The credentials operations run with (root without a umask unless set).
    pub fn caller(&self) -> &Caller {
        &self.write.session.caller
    }

    /// Runs the operations that follow with `caller`'s credentials: new
    /// inodes are its own as the kernel decides (see [`crate::NewNode`]),
    /// and unless it is privileged, or the superblock's reserved-blocks user
    /// or group (`s_def_resuid`, `s_def_resgid`), it may not allocate the
    /// blocks reserved for root.
    pub fn set_caller(&mut self, caller: Caller) {
        self.write.session.caller = caller;
    }

    /// Whether the caller may allocate the blocks reserved for root.
    pub(crate) fn caller_may_use_root_reserve(&self) -> bool {
        let c = &self.write.session.caller;
        let resgid = u32::from(self.sb.s_def_resgid.get());
        c.privileged || c.uid == u32::from(self.sb.s_def_resuid.get()) || (resgid != 0 && c.in_group(resgid))
    }
}

//! Who performs the operations: the credentials the kernel takes from the
//! calling process (`current_cred()`), which decide whether the blocks
//! reserved for root may be allocated (`ext4_has_free_clusters`).

use crate::fs::Filesystem;

/// The credentials operations run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// File-system user id (`fsuid`).
    pub uid: u32,
    /// File-system group id (`fsgid`).
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Holds `CAP_SYS_RESOURCE`, as root does: may allocate the blocks
    /// reserved for root.
    pub privileged: bool,
}

impl Default for Caller {
    fn default() -> Self {
        Self::root()
    }
}

impl Caller {
    /// Root: what an image tool acting for the administrator is (the default).
    pub fn root() -> Self {
        Self { uid: 0, gid: 0, groups: Vec::new(), privileged: true }
    }

    /// A user with fsuid `uid` and fsgid `gid`; privileged if `uid` is 0.
    pub fn user(uid: u32, gid: u32) -> Self {
        Self { uid, gid, groups: Vec::new(), privileged: uid == 0 }
    }

    /// Whether `gid` is the caller's group or one of its supplementary groups (`in_group_p`).
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

impl Filesystem {
    /// The credentials operations run with (root unless set).
    pub fn caller(&self) -> &Caller {
        &self.write.caller
    }

    /// Runs the operations that follow with `caller`'s credentials: unless
    /// it is privileged, or the superblock's reserved-blocks user or group
    /// (`s_def_resuid`, `s_def_resgid`), it may not allocate the blocks
    /// reserved for root.
    pub fn set_caller(&mut self, caller: Caller) {
        self.write.caller = caller;
    }

    /// Whether the caller may allocate the blocks reserved for root.
    pub(crate) fn caller_may_use_root_reserve(&self) -> bool {
        let c = &self.write.caller;
        let resgid = u32::from(self.sb.s_def_resgid.get());
        c.privileged || c.uid == u32::from(self.sb.s_def_resuid.get()) || (resgid != 0 && c.in_group(resgid))
    }
}

//! Creating inodes: the fields a new inode starts with, as the kernel's
//! `ext4_new_inode` sets them, and linking it into its parent.

use ext4_ondisk::inode::{GOOD_OLD_INODE_SIZE, KNOWN_EXTRA_ISIZE};
use ext4_ondisk::{FileType, Incompat, Inode, InodeFlags, Timestamp};

use crate::error::{Error, Result};
use crate::fs::Filesystem;
use crate::inode::InodeBuf;
use crate::txn::Txn;

/// What a new inode is and who owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewNode {
    /// Its type.
    pub kind: FileType,
    /// Permission bits asked for (`0o7777` at most).
    pub perm: u16,
    /// `Some((uid, gid))`: exactly this owner, and `perm` exactly as given,
    /// as a restore makes them (`mke2fs -d`, `tar -p`); `None`: the
    /// filesystem's [`Caller`](crate::Caller) owns it, with the group, mode
    /// and setgid bit the kernel gives (`inode_init_owner`).
    pub owner: Option<(u32, u32)>,
    /// Device number for character and block devices.
    pub rdev: (u32, u32),
    /// Every timestamp of the new inode; `None` uses the filesystem's clock.
    pub time: Option<Timestamp>,
}

impl NewNode {
    /// A node of `kind` asking for permissions `perm`, owned by the caller.
    pub fn new(kind: FileType, perm: u16) -> Self {
        Self { kind, perm: perm & 0o7777, owner: None, rdev: (0, 0), time: None }
    }

    /// Gives it exactly this owner and the permissions as asked for (a restore).
    pub fn owner(mut self, uid: u32, gid: u32) -> Self {
        self.owner = Some((uid, gid));
        self
    }
}

/// Flags a new inode inherits from its parent directory (`ext4_mask_flags`).
const INHERITED: InodeFlags = InodeFlags::SYNC
    .union(InodeFlags::NODUMP)
    .union(InodeFlags::NOATIME)
    .union(InodeFlags::NOTAIL)
    .union(InodeFlags::DIRSYNC)
    .union(InodeFlags::PROJINHERIT)
    .union(InodeFlags::JOURNAL_DATA);

impl Filesystem {
    /// The `i_extra_isize` new inodes get.
    pub(crate) fn new_extra_isize(&self) -> u16 {
        if self.geo.inode_size as usize <= GOOD_OLD_INODE_SIZE {
            return 0;
        }
        let want = self.sb.s_want_extra_isize.get().max(self.sb.s_min_extra_isize.get());
        let want = if want == 0 { KNOWN_EXTRA_ISIZE } else { want };
        want.min((self.geo.inode_size as usize - GOOD_OLD_INODE_SIZE) as u16) & !3
    }

    /// Checks a new entry's name.
    pub(crate) fn check_name(name: &[u8]) -> Result<()> {
        if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) {
            return Err(Error::InvalidArgument(format!("invalid name {:?}", String::from_utf8_lossy(name))));
        }
        if name.len() > crate::path::NAME_MAX {
            return Err(Error::NameTooLong(name.len()));
        }
        Ok(())
    }
}

impl Txn<'_> {
    /// Allocates and initializes an inode for `node` under directory `parent`
    /// (not yet linked anywhere, not yet written).
    pub(crate) fn new_inode(&mut self, parent: &InodeBuf, node: &NewNode) -> Result<InodeBuf> {
        let ino = self.alloc_inode(parent.ino, node.kind == FileType::Directory)?;
        let now = node.time.unwrap_or_else(|| self.now());
        let mut inode = Inode::empty(self.new_extra_isize());
        let (uid, gid, perm) = match node.owner {
            Some((uid, gid)) => (uid, gid, node.perm & 0o7777),
            None => crate::caller::init_owner(&self.write.session.caller, parent, node.kind, node.perm),
        };
        inode.mode = node.kind.mode_bits() | perm;
        inode.uid = uid;
        inode.gid = gid;
        inode.atime = now;
        inode.ctime = now;
        inode.mtime = now;
        inode.crtime = now;
        inode.generation = self.new_generation();
        inode.flags = parent.inode.flags & INHERITED;
        if node.kind != FileType::Directory {
            inode.flags.remove(InodeFlags::DIRSYNC);
        }
        if parent.inode.flags.contains(InodeFlags::PROJINHERIT) {
            inode.projid = parent.inode.projid;
        }
        let extents = self.geo.features.incompat.contains(Incompat::EXTENTS);
        match node.kind {
            FileType::Regular | FileType::Directory | FileType::Symlink if extents => {
                inode.flags.insert(InodeFlags::EXTENTS);
                ext4_extent::tree::init(&mut inode.block);
            }
            FileType::CharDevice | FileType::BlockDevice => inode.set_device_number(node.rdev.0, node.rdev.1),
            _ => {}
        }
        let raw = vec![0u8; self.geo.inode_size as usize];
        Ok(InodeBuf { ino, inode, raw })
    }
}

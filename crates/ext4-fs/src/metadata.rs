//! [`Metadata`]: what `stat` shows of an inode, and [`StatFs`].

use ext4_ondisk::inode::GOOD_OLD_INODE_SIZE;
use ext4_ondisk::{FileType, InodeFlags, RoCompat, Timestamp};

use crate::fs::Filesystem;
use crate::inode::InodeBuf;

/// Metadata of a file, as `stat` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Inode number.
    pub ino: u32,
    /// File type.
    pub file_type: FileType,
    /// Permission bits with setuid, setgid and sticky (`mode & 0o7777`).
    pub permissions: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Hard links (1 for a directory with more subdirectories than the count holds, as `dir_nlink` does).
    pub nlink: u32,
    /// Last access.
    pub atime: Timestamp,
    /// Last modification of the contents.
    pub mtime: Timestamp,
    /// Last change of the inode.
    pub ctime: Timestamp,
    /// Creation, when the inode stores it.
    pub crtime: Option<Timestamp>,
    /// Space used, in 512-byte units.
    pub blocks: u64,
    /// Inode flags.
    pub flags: InodeFlags,
    /// Generation number.
    pub generation: u32,
    /// Device number (major, minor) of a device file.
    pub rdev: (u32, u32),
    /// Preferred I/O size (the block size).
    pub block_size: u32,
    /// Inode version.
    pub version: u64,
    /// Project id.
    pub projid: u32,
}

impl Metadata {
    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type == FileType::Directory
    }

    /// Whether this is a regular file.
    pub fn is_file(&self) -> bool {
        self.file_type == FileType::Regular
    }

    /// Whether this is a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.file_type == FileType::Symlink
    }

    /// The full mode: type bits and permissions.
    pub fn mode(&self) -> u32 {
        u32::from(self.file_type.mode_bits() | self.permissions)
    }
}

/// Filesystem-wide counts, as `statfs` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatFs {
    /// Block size.
    pub block_size: u32,
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub free_blocks: u64,
    /// Free blocks available to unprivileged users.
    pub available_blocks: u64,
    /// Total inodes.
    pub inodes: u64,
    /// Free inodes.
    pub free_inodes: u64,
    /// Longest name.
    pub name_max: u32,
    /// Filesystem UUID.
    pub uuid: [u8; 16],
}

/// Byte offset of the end of `i_crtime` in the inode.
const CRTIME_END: usize = 0x94;

impl Filesystem {
    /// Builds the metadata of an inode.
    pub(crate) fn metadata_of(&self, ib: &InodeBuf) -> Metadata {
        let i = &ib.inode;
        let has_crtime = ib.raw.len() > GOOD_OLD_INODE_SIZE && GOOD_OLD_INODE_SIZE + usize::from(i.extra_isize) >= CRTIME_END;
        let huge = self.geo.features.ro_compat.contains(RoCompat::HUGE_FILE);
        let file_type = ib.file_type();
        Metadata {
            ino: ib.ino,
            file_type,
            permissions: i.permissions(),
            uid: i.uid,
            gid: i.gid,
            size: i.size,
            nlink: u32::from(i.links_count),
            atime: i.atime,
            mtime: i.mtime,
            ctime: i.ctime,
            crtime: has_crtime.then_some(i.crtime),
            blocks: i.allocated_bytes(self.geo.block_size, huge) / 512,
            flags: i.flags,
            generation: i.generation,
            rdev: if matches!(file_type, FileType::CharDevice | FileType::BlockDevice) { i.device_number() } else { (0, 0) },
            block_size: self.geo.block_size,
            version: i.version,
            projid: i.projid,
        }
    }

    /// Filesystem-wide counts, as the kernel's `ext4_statfs` reports them:
    /// the blocks outside the filesystem's own structures (`s_overhead_clusters`),
    /// free blocks counting those freed by the running transaction (free
    /// once it commits; the kernel counts them at once too), and available
    /// blocks without root's reserve and the reserve for allocations that
    /// must not fail.
    pub fn statfs(&self) -> StatFs {
        let pending: u64 = self.write.alloc.pending_free.iter().map(|&(_, n)| n).sum();
        let free = self.sb.free_blocks_count() + pending;
        StatFs {
            block_size: self.geo.block_size,
            blocks: self.geo.blocks_count.saturating_sub(self.overhead_blocks()),
            free_blocks: free,
            available_blocks: free.saturating_sub(self.sb.r_blocks_count() + self.resv_blocks()),
            inodes: u64::from(self.geo.inodes_count),
            free_inodes: u64::from(self.sb.s_free_inodes_count.get()),
            name_max: crate::path::NAME_MAX as u32,
            uuid: self.sb.s_uuid,
        }
    }

    /// Blocks taken by the filesystem's own structures: `s_overhead_clusters`
    /// when the superblock has a plausible one, else counted as
    /// `ext4_calculate_overhead` does (blocks before the first group,
    /// superblock and descriptor copies, reserved GDT blocks, bitmaps, inode
    /// tables, the internal journal).
    fn overhead_blocks(&self) -> u64 {
        let ratio = u64::from(self.geo.cluster_ratio.max(1));
        let stored = u64::from(self.sb.s_overhead_clusters.get()) * ratio;
        if stored != 0 && stored < self.geo.blocks_count {
            return stored;
        }
        let geo = &self.geo;
        let per_group = 2 + u64::from(geo.inode_table_blocks);
        let groups: u64 = (0..geo.group_count).map(|g| u64::from(geo.group_overhead_blocks(g)) + per_group).sum();
        let journal: u64 = self.journal_extents().iter().map(|&(_, n)| n).sum();
        u64::from(geo.first_data_block) + groups + journal
    }
}

//! Reading and writing inode records in the inode tables.

use ext4_ondisk::inode::{GOOD_OLD_INODE_SIZE, set_inode_checksum, verify_inode_checksum};
use ext4_ondisk::{FileType, GroupDescFlags, Inode, Structure};

use crate::error::{Error, Location, Result};
use crate::fs::Filesystem;
use crate::txn::Txn;

/// An inode as read from its table: the decoded fields and the whole raw
/// record (which also holds the in-inode xattr area).
#[derive(Debug, Clone)]
pub struct InodeBuf {
    /// Inode number.
    pub ino: u32,
    /// Decoded fields.
    pub inode: Inode,
    /// The raw record, `inode_size` bytes.
    pub raw: Vec<u8>,
}

impl InodeBuf {
    /// The file type (corrupt modes were refused when reading).
    pub fn file_type(&self) -> FileType {
        self.inode.file_type().unwrap_or(FileType::Regular)
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type() == FileType::Directory
    }

    /// The in-inode xattr area (after `i_extra_isize`), possibly empty.
    pub fn xattr_area(&self) -> &[u8] {
        let start = GOOD_OLD_INODE_SIZE + usize::from(self.inode.extra_isize);
        if self.raw.len() > GOOD_OLD_INODE_SIZE && start < self.raw.len() { &self.raw[start..] } else { &[] }
    }

    /// Mutable in-inode xattr area.
    pub fn xattr_area_mut(&mut self) -> &mut [u8] {
        let start = GOOD_OLD_INODE_SIZE + usize::from(self.inode.extra_isize);
        if self.raw.len() > GOOD_OLD_INODE_SIZE && start < self.raw.len() { &mut self.raw[start..] } else { &mut [] }
    }
}

impl Filesystem {
    /// Device block and byte offset of inode `ino`'s record.
    pub(crate) fn inode_location(&self, ino: u32) -> Result<(u64, usize)> {
        if ino == 0 || ino > self.geo.inodes_count {
            return Err(Error::corrupt(Structure::Inode, Location::Inode(ino), "inode number out of range"));
        }
        let (g, idx) = self.geo.inode_group(ino);
        let byte = u64::from(idx) * u64::from(self.geo.inode_size);
        let block = self.groups[g as usize].inode_table + byte / u64::from(self.geo.block_size);
        Ok((block, (byte % u64::from(self.geo.block_size)) as usize))
    }

    /// Whether the inode lies in the never-initialized part of its group's
    /// table (its bytes may be garbage and must read as zero).
    fn inode_uninitialized(&self, ino: u32) -> bool {
        if !self.geo.has_group_csum() {
            return false;
        }
        let (g, idx) = self.geo.inode_group(ino);
        let gd = &self.groups[g as usize];
        gd.flags.contains(GroupDescFlags::INODE_UNINIT) || idx >= self.geo.inodes_per_group.saturating_sub(gd.itable_unused)
    }

    /// Reads inode `ino` without checking that it is in use.
    pub(crate) fn read_inode_raw(&self, ino: u32) -> Result<InodeBuf> {
        let (block, off) = self.inode_location(ino)?;
        let isz = self.geo.inode_size as usize;
        let raw = if self.inode_uninitialized(ino) { vec![0u8; isz] } else { self.read_meta(block, |d| d[off..off + isz].to_vec())? };
        if self.opts.verify_checksums && self.geo.metadata_csum() && raw.iter().any(|&b| b != 0) {
            verify_inode_checksum(self.geo.csum_seed, ino, &raw).map_err(|e| Error::format(&e, Location::Inode(ino)))?;
        }
        let inode = Inode::parse(&raw).map_err(|e| Error::format(&e, Location::Inode(ino)))?;
        Ok(InodeBuf { ino, inode, raw })
    }

    /// Reads an inode that must be in use (reached through a directory entry
    /// or a superblock field): refuses free inodes and invalid modes.
    pub fn read_inode(&self, ino: u32) -> Result<InodeBuf> {
        let buf = self.read_inode_raw(ino)?;
        if buf.inode.links_count == 0 && !self.write.handles.is_orphan_or_open(ino) && ino >= self.geo.first_ino {
            return Err(Error::corrupt(Structure::Inode, Location::Inode(ino), "inode is not in use (no links)"));
        }
        if buf.inode.file_type().is_none() {
            return Err(Error::corrupt(Structure::Inode, Location::Inode(ino), format!("invalid mode {:#o}", buf.inode.mode)));
        }
        Ok(buf)
    }

    /// The metadata_csum seed of an inode (`ei->i_csum_seed`), if checksums are on.
    pub(crate) fn inode_seed(&self, ino: u32, generation: u32) -> Option<u32> {
        self.geo.metadata_csum().then(|| ext4_ondisk::checksum::inode_seed(self.geo.csum_seed, ino, generation))
    }
}

impl Txn<'_> {
    /// Encodes `buf.inode` into its raw record, sets the checksum and stores
    /// the record in its inode table block (joining the running transaction).
    /// A record that changed in more than its access time gets the next
    /// `i_version`, as the kernel's `inode_inc_iversion` gives it.
    pub(crate) fn write_inode(&mut self, buf: &mut InodeBuf) -> Result<()> {
        let before = buf.raw.clone();
        buf.inode.write(&mut buf.raw);
        // An EA inode's `i_version` is half of its reference count.
        if !buf.inode.flags.contains(ext4_ondisk::InodeFlags::EA_INODE) && ext4_ondisk::inode::changed_beyond_atime(&before, &buf.raw) {
            buf.inode.version = buf.inode.version.wrapping_add(1);
            buf.inode.write(&mut buf.raw);
        }
        if self.geo.metadata_csum() {
            set_inode_checksum(self.geo.csum_seed, buf.ino, &mut buf.raw);
        }
        let (block, off) = self.inode_location(buf.ino)?;
        let raw = &buf.raw;
        self.modify_meta(block, |d| d[off..off + raw.len()].copy_from_slice(raw))
    }
}

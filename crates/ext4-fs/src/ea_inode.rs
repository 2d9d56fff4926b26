//! EA inodes (`ea_inode`): an attribute value too big for an xattr block
//! lives in an inode of its own, flagged `EA_INODE`, referenced by the
//! entry's `e_value_inum`. As in the kernel (`fs/ext4/xattr.c`), the inode
//! keeps its reference count in `i_ctime` (high 32 bits) and `i_version`
//! (low 32 bits), and the crc32c of the value, seeded with the filesystem's
//! checksum seed, in `i_atime`. A reference is held by each entry in an
//! inode body and each entry in an xattr block (however many inodes share
//! the block); the last one frees the EA inode.

use std::collections::BTreeMap;

use ext4_ondisk::checksum::crc32c;
use ext4_ondisk::xattr::{BLOCK_HEADER_SIZE, XATTR_MAGIC, XattrEntry, XattrEntryIter};
use ext4_ondisk::{FileType, Incompat, InodeFlags, Structure, Timestamp};

use crate::error::{Error, Location, Result};
use crate::fs::Filesystem;
use crate::inode::InodeBuf;
use crate::node::NewNode;
use crate::txn::Txn;

impl Filesystem {
    /// The value hash an EA inode carries (`ext4_xattr_inode_get_hash`).
    pub(crate) fn ea_inode_hash_of(&self, inum: u32) -> Result<u32> {
        let ea = self.read_inode(inum)?;
        if !ea.inode.flags.contains(InodeFlags::EA_INODE) {
            return Err(Error::corrupt(Structure::Inode, Location::Inode(inum), "referenced as an EA inode without the EA_INODE flag"));
        }
        Ok(ea.inode.atime.secs as u32)
    }

    /// What inode `ib` has in EA inodes: the references it holds (one per
    /// entry of its body, and one per entry of its xattr block unless other
    /// inodes share it), and the blocks it is charged for the values it sees
    /// (in its body and its block, shared or not): each value's size rounded
    /// up to clusters, as the kernel charges the owner's quota and `i_blocks`
    /// (`ext4_xattr_inode_alloc_quota`).
    pub(crate) fn ea_holdings(&self, ib: &InodeBuf) -> Result<(Vec<u32>, i64)> {
        // Whole clusters, as e2fsck's `size_to_quota_blocks`.
        let ratio = self.cluster_ratio();
        let cluster_bytes = u64::from(self.geo.block_size) * ratio;
        let (mut refs, mut blocks) = (Vec::new(), 0u64);
        let mut visit = |e: &XattrEntry<'_>, holds: bool| {
            if e.value_inum != 0 {
                blocks += u64::from(e.value_size).div_ceil(cluster_bytes) * ratio;
                refs.extend(holds.then_some(e.value_inum));
            }
        };
        let area = ib.xattr_area();
        if area.len() >= 4 && ext4_ondisk::get_u32(area, 0) == XATTR_MAGIC {
            for e in XattrEntryIter::new(&area[4..], 0, Structure::InodeXattrs) {
                visit(&e.map_err(|err| Error::format(&err, Location::Inode(ib.ino)))?, true);
            }
        }
        let block = ib.inode.file_acl;
        if block != 0 {
            let data = self.read_xattr_block(ib.ino, block)?;
            let unshared = ext4_ondisk::xattr::parse_block_header(&data)
                .map_err(|e| Error::format(&e, Location::InodeBlock { ino: ib.ino, block }))?
                .h_refcount
                .get()
                == 1;
            for e in XattrEntryIter::new(&data, BLOCK_HEADER_SIZE, Structure::XattrBlock) {
                visit(&e.map_err(|err| Error::format(&err, Location::InodeBlock { ino: ib.ino, block }))?, unshared);
            }
        }
        Ok((refs, blocks as i64))
    }
}

impl Txn<'_> {
    /// Creates an EA inode holding `value`, with no reference yet; returns
    /// its number and value hash.
    pub(crate) fn create_ea_inode(&mut self, owner: &InodeBuf, value: &[u8]) -> Result<(u32, u32)> {
        let node = NewNode::new(FileType::Regular, 0o600).owner(owner.inode.uid, owner.inode.gid);
        let mut ea = self.new_inode(owner, &node)?;
        ea.inode.flags = InodeFlags::EA_INODE;
        if self.geo.features.incompat.contains(Incompat::EXTENTS) {
            ea.inode.flags.insert(InodeFlags::EXTENTS);
        }
        ea.inode.links_count = 1;
        let hash = crc32c(self.geo.csum_seed, value);
        ea.inode.atime = Timestamp { secs: i64::from(hash), nsec: 0 };
        set_refs(&mut ea, 0);
        self.write_blocks(&mut ea, 0, value)?;
        ea.inode.size = value.len() as u64;
        self.write_inode(&mut ea)?;
        Ok((ea.ino, hash))
    }

    /// Moves reference counts from the multiset `before` to `after`.
    pub(crate) fn replace_ea_refs(&mut self, before: &[u32], after: &[u32]) -> Result<()> {
        let mut delta: BTreeMap<u32, i64> = BTreeMap::new();
        for &i in after {
            *delta.entry(i).or_default() += 1;
        }
        for &i in before {
            *delta.entry(i).or_default() -= 1;
        }
        for (inum, d) in delta {
            if d != 0 {
                self.add_ea_refs(inum, d)?;
            }
        }
        Ok(())
    }

    /// Changes an EA inode's reference count by `delta`; at zero the inode
    /// and its blocks are freed.
    fn add_ea_refs(&mut self, inum: u32, delta: i64) -> Result<()> {
        let mut ea = self.read_inode(inum)?;
        if !ea.inode.flags.contains(InodeFlags::EA_INODE) {
            return Err(Error::corrupt(Structure::Inode, Location::Inode(inum), "referenced as an EA inode without the EA_INODE flag"));
        }
        let refs = i64::try_from(get_refs(&ea)).unwrap_or(i64::MAX) + delta;
        if refs < 0 {
            return Err(Error::corrupt(Structure::Inode, Location::Inode(inum), "EA inode reference count below zero"));
        }
        if refs == 0 {
            ea.inode.links_count = 0;
            return self.release_inode(&mut ea);
        }
        set_refs(&mut ea, refs as u64);
        self.write_inode(&mut ea)
    }
}

/// An EA inode's reference count (`ext4_xattr_inode_get_ref`).
fn get_refs(ea: &InodeBuf) -> u64 {
    (u64::from(ea.inode.ctime.secs as u32) << 32) | (ea.inode.version & 0xFFFF_FFFF)
}

/// Stores an EA inode's reference count (`ext4_xattr_inode_set_ref`).
fn set_refs(ea: &mut InodeBuf, refs: u64) {
    ea.inode.ctime = Timestamp { secs: i64::from((refs >> 32) as u32), nsec: 0 };
    ea.inode.version = refs & 0xFFFF_FFFF;
}

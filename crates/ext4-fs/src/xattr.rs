//! Reading extended attributes: the in-inode area, the external block, and
//! values stored in EA inodes (`ea_inode`).

use ext4_ondisk::xattr::{BLOCK_HEADER_SIZE, XATTR_MAGIC, XattrEntry, XattrEntryIter, decode_name, parse_block_header, verify_xattr_block};
use ext4_ondisk::{InodeFlags, Structure};

use crate::error::{Error, Location, Result};
use crate::fs::Filesystem;
use crate::inode::InodeBuf;

/// One extended attribute: its full name (with prefix) and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xattr {
    /// Full name, e.g. `user.comment`.
    pub name: Vec<u8>,
    /// Value.
    pub value: Vec<u8>,
}

/// Where an xattr was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum XattrPlace {
    /// In the inode body.
    Inode,
    /// In the external block.
    Block(u64),
}

impl Filesystem {
    /// Every extended attribute of an inode, in-inode ones first.
    pub(crate) fn read_xattrs(&self, ib: &InodeBuf) -> Result<Vec<Xattr>> {
        let mut out = Vec::new();
        self.for_each_xattr(ib, |_, e, value| {
            if let Some(name) = decode_name(e.name_index, e.name) {
                out.push(Xattr { name, value: value.to_vec() });
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// One attribute's value by full name.
    pub(crate) fn read_xattr(&self, ib: &InodeBuf, full_name: &[u8]) -> Result<Option<Vec<u8>>> {
        let (index, suffix) = ext4_ondisk::xattr::encode_name(full_name);
        let mut found = None;
        self.for_each_xattr(ib, |_, e, value| {
            if found.is_none() && e.name_index == index && e.name == suffix {
                found = Some(value.to_vec());
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// Calls `f` for every attribute with its place, entry and value.
    pub(crate) fn for_each_xattr(&self, ib: &InodeBuf, mut f: impl FnMut(XattrPlace, &XattrEntry<'_>, &[u8]) -> Result<()>) -> Result<()> {
        let area = ib.xattr_area();
        if area.len() >= 4 && ext4_ondisk::get_u32(area, 0) == XATTR_MAGIC {
            let entries = &area[4..];
            for e in XattrEntryIter::new(entries, 0, Structure::InodeXattrs) {
                let e = e.map_err(|err| Error::format(&err, Location::Inode(ib.ino)))?;
                let value = self.xattr_value(ib.ino, &e, entries, Structure::InodeXattrs)?;
                f(XattrPlace::Inode, &e, &value)?;
            }
        }
        let block = ib.inode.file_acl;
        if block != 0 {
            let data = self.read_xattr_block(ib.ino, block)?;
            for e in XattrEntryIter::new(&data, BLOCK_HEADER_SIZE, Structure::XattrBlock) {
                let e = e.map_err(|err| Error::format(&err, Location::InodeBlock { ino: ib.ino, block }))?;
                let value = self.xattr_value(ib.ino, &e, &data, Structure::XattrBlock)?;
                f(XattrPlace::Block(block), &e, &value)?;
            }
        }
        Ok(())
    }

    /// Reads and validates an xattr block.
    pub(crate) fn read_xattr_block(&self, ino: u32, block: u64) -> Result<Vec<u8>> {
        let loc = Location::InodeBlock { ino, block };
        let data = self.read_meta(block, |d| d.to_vec())?;
        parse_block_header(&data).map_err(|e| Error::format(&e, loc))?;
        if self.opts.verify_checksums && self.geo.metadata_csum() {
            verify_xattr_block(self.geo.csum_seed, block, &data).map_err(|e| Error::format(&e, loc))?;
        }
        Ok(data)
    }

    /// The value of entry `e` whose offsets are relative to `base`.
    fn xattr_value(&self, ino: u32, e: &XattrEntry<'_>, base: &[u8], structure: Structure) -> Result<Vec<u8>> {
        let size = e.value_size as usize;
        if e.value_inum != 0 {
            return self.ea_inode_value(ino, e.value_inum, size);
        }
        let start = usize::from(e.value_offs);
        match base.get(start..start + size) {
            Some(v) => Ok(v.to_vec()),
            None => Err(Error::corrupt(
                structure,
                Location::Inode(ino),
                format!("value of {size} bytes at offset {start} lies outside the xattr area"),
            )),
        }
    }

    /// A value stored in an EA inode.
    fn ea_inode_value(&self, ino: u32, value_ino: u32, size: usize) -> Result<Vec<u8>> {
        let ea = self.read_inode(value_ino)?;
        if !ea.inode.flags.contains(InodeFlags::EA_INODE) || ea.inode.size != size as u64 {
            return Err(Error::corrupt(
                Structure::InodeXattrs,
                Location::Inode(ino),
                format!("EA inode {value_ino} is not a matching value inode"),
            ));
        }
        let mut v = vec![0u8; size];
        let n = self.read_mapped(&ea, 0, &mut v, size as u64)?;
        v.truncate(n);
        Ok(v)
    }
}

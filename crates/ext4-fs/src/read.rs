//! The read API: a std::fs-like surface over paths, and an inode-based one
//! for adapters such as FUSE.

use std::ops::ControlFlow;

use ext4_ondisk::{FileType, InodeFlags, Structure};

use crate::dir::DirEntry;
use crate::error::{Error, Result};
use crate::fs::Filesystem;
use crate::inode::InodeBuf;
use crate::layer::corrupt_in;
use crate::metadata::Metadata;
use crate::path::show;
use crate::xattr::Xattr;

impl Filesystem {
    /// The inode `path` leads to, following every symbolic link.
    pub fn lookup(&self, path: impl AsRef<[u8]>) -> Result<u32> {
        self.resolve(path.as_ref(), true)
    }

    /// The inode `path` leads to, not following a final symbolic link.
    pub fn lookup_nofollow(&self, path: impl AsRef<[u8]>) -> Result<u32> {
        self.resolve(path.as_ref(), false)
    }

    /// Looks `name` up in directory `dir`; `None` if absent.
    pub fn lookup_in(&self, dir: u32, name: &[u8]) -> Result<Option<u32>> {
        if name.len() > crate::path::NAME_MAX {
            return Err(Error::NameTooLong(name.len()));
        }
        let d = self.read_inode(dir)?;
        let found = self.lookup_entry(&d, name)?.map(|(ino, _)| ino);
        if found.is_none() && self.is_writable() {
            self.write.lookup.note_absent(dir, name);
        }
        Ok(found)
    }

    /// Metadata of what `path` leads to, following symbolic links.
    pub fn metadata(&self, path: impl AsRef<[u8]>) -> Result<Metadata> {
        self.stat(self.lookup(path)?)
    }

    /// Metadata of `path` itself (a final symbolic link is not followed).
    pub fn symlink_metadata(&self, path: impl AsRef<[u8]>) -> Result<Metadata> {
        self.stat(self.lookup_nofollow(path)?)
    }

    /// Metadata of inode `ino`.
    pub fn stat(&self, ino: u32) -> Result<Metadata> {
        Ok(self.metadata_of(&self.read_inode(ino)?))
    }

    /// The entries of the directory at `path`, without `.` and `..`.
    pub fn read_dir(&self, path: impl AsRef<[u8]>) -> Result<Vec<DirEntry>> {
        let ino = self.lookup(path.as_ref())?;
        let mut v = self.dir_entries(ino)?;
        v.retain(|e| e.name != b"." && e.name != b"..");
        Ok(v)
    }

    /// The entries of directory `ino`, without `.` and `..`.
    pub fn read_dir_ino(&self, ino: u32) -> Result<Vec<DirEntry>> {
        let mut v = self.dir_entries(ino)?;
        v.retain(|e| e.name != b"." && e.name != b"..");
        Ok(v)
    }

    /// Every entry of directory `ino`, `.` and `..` included, in on-disk order.
    pub fn dir_entries(&self, ino: u32) -> Result<Vec<DirEntry>> {
        let mut v = Vec::new();
        self.dir_entries_from(ino, 0, |e| {
            v.push(e);
            ControlFlow::Continue(())
        })?;
        Ok(v)
    }

    /// Calls `f` for the entries of directory `ino` at positions `from` and
    /// beyond ([`DirEntry::pos`]), in on-disk order, until it breaks. A
    /// listing handed out in pieces resumes with `from` = the last entry's
    /// `pos + 1` and reads only what it has not returned yet.
    pub fn dir_entries_from(&self, ino: u32, from: u64, f: impl FnMut(DirEntry) -> ControlFlow<()>) -> Result<()> {
        let dir = self.read_inode(ino)?;
        self.for_each_dir_entry_from(&dir, from, f)
    }

    /// The whole contents of the file at `path`.
    pub fn read(&self, path: impl AsRef<[u8]>) -> Result<Vec<u8>> {
        let path = path.as_ref();
        let ib = self.read_inode(self.lookup(path)?)?;
        if ib.is_dir() {
            return Err(Error::IsADirectory(show(path)));
        }
        let size = usize::try_from(ib.inode.size).map_err(|_| Error::FileTooLarge)?;
        let mut buf = vec![0u8; size];
        let n = self.read_inode_data(&ib, 0, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Reads file data of inode `ino` at `offset`; returns the bytes read
    /// (fewer at the end of the file).
    pub fn read_at(&self, ino: u32, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let ib = self.read_inode(ino)?;
        if ib.is_dir() {
            return Err(Error::IsADirectory(format!("inode {ino}")));
        }
        self.read_inode_data(&ib, offset, buf)
    }

    /// Reads the data of an inode (regular file, symlink, any block-mapped or inline inode).
    pub(crate) fn read_inode_data(&self, ib: &InodeBuf, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if ib.inode.has_inline_data() {
            return self.read_inline(ib, offset, buf);
        }
        if ib.inode.flags.contains(InodeFlags::ENCRYPT) {
            return Err(Error::Unsupported(format!("inode {} is encrypted", ib.ino)));
        }
        self.read_mapped(ib, offset, buf, ib.inode.size)
    }

    /// Reads inline data: the first 60 bytes from `i_block`, the rest from `system.data`.
    fn read_inline(&self, ib: &InodeBuf, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let size = ib.inode.size;
        if offset >= size {
            return Ok(0);
        }
        let mut data = ib.inode.block.to_vec();
        if size > data.len() as u64 {
            data.extend(self.read_xattr(ib, b"system.data")?.unwrap_or_default());
        }
        if (data.len() as u64) < size {
            return Err(corrupt_in(Structure::InodeXattrs, ib.ino, format!("inline data holds {} bytes, i_size says {size}", data.len())));
        }
        let n = ((size - offset) as usize).min(buf.len());
        buf[..n].copy_from_slice(&data[offset as usize..offset as usize + n]);
        Ok(n)
    }

    /// The target of the symbolic link at `path`.
    pub fn read_link(&self, path: impl AsRef<[u8]>) -> Result<Vec<u8>> {
        let path = path.as_ref();
        let ib = self.read_inode(self.lookup_nofollow(path)?)?;
        if ib.file_type() != FileType::Symlink {
            return Err(Error::InvalidArgument(format!("{}: not a symbolic link", show(path))));
        }
        self.symlink_target(&ib)
    }

    /// The target of symbolic link inode `ino`.
    pub fn read_link_ino(&self, ino: u32) -> Result<Vec<u8>> {
        let ib = self.read_inode(ino)?;
        if ib.file_type() != FileType::Symlink {
            return Err(Error::InvalidArgument(format!("inode {ino}: not a symbolic link")));
        }
        self.symlink_target(&ib)
    }

    /// The target of a symlink inode: fast (in `i_block`), inline, or in blocks.
    pub(crate) fn symlink_target(&self, ib: &InodeBuf) -> Result<Vec<u8>> {
        let size = ib.inode.size;
        if size == 0 || size > u64::from(self.geo.block_size).max(4096) {
            return Err(corrupt_in(Structure::Inode, ib.ino, format!("symbolic link of {size} bytes")));
        }
        if self.is_fast_symlink(ib) {
            return Ok(ib.inode.block[..size as usize].to_vec());
        }
        let mut buf = vec![0u8; size as usize];
        let n = self.read_inode_data(ib, 0, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Whether a symlink keeps its target in `i_block` (`ext4_inode_is_fast_symlink`).
    pub(crate) fn is_fast_symlink(&self, ib: &InodeBuf) -> bool {
        if ib.inode.has_inline_data() {
            return false;
        }
        if ib.inode.flags.contains(InodeFlags::EA_INODE) {
            return ib.inode.size < 60;
        }
        let xattr_sectors = if ib.inode.file_acl != 0 { u64::from(self.geo.block_size * self.geo.cluster_ratio) / 512 } else { 0 };
        let huge = self.geo.features.ro_compat.contains(ext4_ondisk::RoCompat::HUGE_FILE);
        ib.inode.allocated_bytes(self.geo.block_size, huge) / 512 == xattr_sectors && ib.inode.size < 60
    }

    /// Every extended attribute of what `path` leads to (not following a final symlink).
    pub fn xattrs(&self, path: impl AsRef<[u8]>) -> Result<Vec<Xattr>> {
        self.xattrs_ino(self.lookup_nofollow(path)?)
    }

    /// Every extended attribute of inode `ino`.
    pub fn xattrs_ino(&self, ino: u32) -> Result<Vec<Xattr>> {
        let ib = self.read_inode(ino)?;
        let mut v = self.read_xattrs(&ib)?;
        // system.data belongs to inline data, not to the user.
        v.retain(|x| x.name != b"system.data");
        Ok(v)
    }

    /// One extended attribute of inode `ino`.
    pub fn get_xattr(&self, ino: u32, name: &[u8]) -> Result<Vec<u8>> {
        if name == b"system.data" {
            // Inline data is no attribute to users: the kernel has no handler for it.
            return Err(Error::NoAttribute);
        }
        let ib = self.read_inode(ino)?;
        self.read_xattr(&ib, name)?.ok_or(Error::NoAttribute)
    }
}

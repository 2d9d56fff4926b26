//! Reading directories: block-mapped ones through `ext4-htree`, inline ones
//! from the inode, and the entry type the API returns.

use std::ops::ControlFlow;

use ext4_extent::Lookup;
use ext4_htree::{DirCtx, DirIo};
use ext4_ondisk::dir::DirEntryIter;
use ext4_ondisk::dx::HashVersion;
use ext4_ondisk::superblock::FLAGS_UNSIGNED_HASH;
use ext4_ondisk::{Compat, FileType, Incompat, InodeFlags, Structure};

use crate::error::{Error, Location, Result};
use crate::fs::Filesystem;
use crate::inode::InodeBuf;
use crate::layer::{LayerError, LayerResultExt, corrupt_in};

/// An entry of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The name (bytes; ext4 names need not be UTF-8).
    pub name: Vec<u8>,
    /// The inode it points to.
    pub ino: u32,
    /// The type recorded in the entry (`None` without the `filetype` feature).
    pub file_type: Option<FileType>,
    /// A position usable to resume listing after this entry.
    pub pos: u64,
}

impl DirEntry {
    /// The name as text, with invalid UTF-8 replaced.
    pub fn name_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.name)
    }
}

/// Read-only access to a directory's blocks.
pub(crate) struct ReadDir<'a> {
    pub(crate) fs: &'a Filesystem,
    pub(crate) dir: &'a InodeBuf,
}

impl DirIo for ReadDir<'_> {
    type Error = LayerError;

    fn block_count(&self) -> u32 {
        (self.dir.inode.size / u64::from(self.fs.geo.block_size)).min(u64::from(u32::MAX)) as u32
    }

    fn read_block(&mut self, logical: u32, buf: &mut [u8]) -> Result<(), LayerError> {
        let block = self.fs.dir_block(self.dir, logical)?;
        Ok(self.fs.read_meta_into(block, buf)?)
    }

    fn write_block(&mut self, _logical: u32, _data: &[u8]) -> Result<(), LayerError> {
        Err(Error::ReadOnly.into())
    }

    fn append_block(&mut self) -> Result<u32, LayerError> {
        Err(Error::ReadOnly.into())
    }
}

impl Filesystem {
    /// The htree context of a directory.
    pub(crate) fn dir_ctx(&self, dir: &InodeBuf) -> DirCtx {
        let f = &self.geo.features;
        DirCtx {
            block_size: self.geo.block_size,
            csum_seed: self.inode_seed(dir.ino, dir.inode.generation),
            verify_checksums: self.opts.verify_checksums,
            filetype: f.incompat.contains(Incompat::FILETYPE),
            dir_index: f.compat.contains(Compat::DIR_INDEX),
            large_dir: f.incompat.contains(Incompat::LARGEDIR),
            hash_seed: self.sb.hash_seed(),
            default_hash: HashVersion::from_u8(self.sb.s_def_hash_version).unwrap_or(HashVersion::HalfMd4),
            unsigned_hash: self.sb.s_flags.get() & FLAGS_UNSIGNED_HASH != 0,
            inodes_count: self.geo.inodes_count,
        }
    }

    /// Whether a directory uses its htree index (the kernel's `is_dx_dir`).
    pub(crate) fn is_indexed(&self, dir: &InodeBuf) -> bool {
        self.geo.features.compat.contains(Compat::DIR_INDEX) && dir.inode.flags.contains(InodeFlags::INDEX)
    }

    /// Device block of logical block `logical` of a directory; holes are corruption.
    pub(crate) fn dir_block(&self, dir: &InodeBuf, logical: u32) -> Result<u64> {
        match self.lookup_block(dir, logical)? {
            Lookup::Mapped(run) if !run.unwritten => Ok(run.physical),
            _ => Err(Error::corrupt(Structure::DirBlock, Location::DirBlock { ino: dir.ino, logical }, "directory has a hole")),
        }
    }

    /// Calls `f` for every entry of directory `dir`, `.` and `..` included.
    pub(crate) fn for_each_dir_entry(&self, dir: &InodeBuf, f: impl FnMut(DirEntry) -> ControlFlow<()>) -> Result<()> {
        self.for_each_dir_entry_from(dir, 0, f)
    }

    /// [`Self::for_each_dir_entry`] for the entries at positions `from` and
    /// beyond; the blocks before `from` are not read.
    pub(crate) fn for_each_dir_entry_from(&self, dir: &InodeBuf, from: u64, mut f: impl FnMut(DirEntry) -> ControlFlow<()>) -> Result<()> {
        if !dir.is_dir() {
            return Err(Error::NotADirectory(format!("inode {}", dir.ino)));
        }
        if dir.inode.has_inline_data() {
            return self.for_each_inline_entry(dir, |e| if e.pos < from { ControlFlow::Continue(()) } else { f(e) });
        }
        let bits = self.geo.block_bits;
        let Ok(first) = u32::try_from(from >> bits) else { return Ok(()) };
        let ctx = self.dir_ctx(dir);
        ext4_htree::for_each_entry_from(&ctx, &mut ReadDir { fs: self, dir }, self.is_indexed(dir), first, |e| {
            let pos = (u64::from(e.block) << bits) | u64::from(e.offset);
            if pos < from {
                return ControlFlow::Continue(());
            }
            f(DirEntry { name: e.name.to_vec(), ino: e.inode, file_type: FileType::from_dir_entry_code(e.file_type), pos })
        })
        .in_inode(dir.ino)
    }

    /// Finds `name` in directory `dir`.
    pub(crate) fn lookup_entry(&self, dir: &InodeBuf, name: &[u8]) -> Result<Option<(u32, Option<FileType>)>> {
        if !dir.is_dir() {
            return Err(Error::NotADirectory(format!("inode {}", dir.ino)));
        }
        if dir.inode.has_inline_data() {
            let mut found = None;
            self.for_each_inline_entry(dir, |e| {
                if e.name == name {
                    found = Some((e.ino, e.file_type));
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            })?;
            return Ok(found);
        }
        let ctx = self.dir_ctx(dir);
        let found = ext4_htree::lookup(&ctx, &mut ReadDir { fs: self, dir }, self.is_indexed(dir), name).in_inode(dir.ino)?;
        Ok(found.map(|f| (f.inode, FileType::from_dir_entry_code(f.file_type))))
    }

    /// Entries of an inline directory: `.`, `..` (from the first 4 bytes of
    /// `i_block`), the rest of `i_block`, then the `system.data` value.
    fn for_each_inline_entry(&self, dir: &InodeBuf, mut f: impl FnMut(DirEntry) -> ControlFlow<()>) -> Result<()> {
        let parent = ext4_ondisk::get_u32(&dir.inode.block, 0);
        let dot = |name: &[u8], ino, pos| DirEntry { name: name.to_vec(), ino, file_type: Some(FileType::Directory), pos };
        if f(dot(b".", dir.ino, 0)).is_break() || f(dot(b"..", parent, 1)).is_break() {
            return Ok(());
        }
        let extra = self.read_xattr(dir, b"system.data")?.unwrap_or_default();
        let filetype = self.geo.features.incompat.contains(Incompat::FILETYPE);
        let regions: [(&[u8], u64); 2] = [(&dir.inode.block[4..], 4), (&extra, 60)];
        for (region, base) in regions {
            for e in DirEntryIter::new(region, self.geo.block_size, filetype) {
                let e = e.map_err(|err| corrupt_in(Structure::DirBlock, dir.ino, format!("inline directory: {err}")))?;
                if e.inode == 0 {
                    continue;
                }
                let entry = DirEntry {
                    name: e.name.to_vec(),
                    ino: e.inode,
                    file_type: FileType::from_dir_entry_code(e.file_type),
                    pos: base + u64::from(e.offset),
                };
                if f(entry).is_break() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

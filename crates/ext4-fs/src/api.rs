//! Path-based write API: std::fs-like wrappers over the inode-based operations.

use ext4_ondisk::FileType;

use crate::error::{Error, Result};
use crate::fs::Filesystem;
use crate::namespace::RenameMode;
use crate::node::NewNode;
use crate::path::show;

impl Filesystem {
    /// Creates an empty regular file with permissions `perm` (fails if it exists).
    pub fn create(&mut self, path: impl AsRef<[u8]>, perm: u16) -> Result<u32> {
        let (parent, name) = self.resolve_parent(path.as_ref())?;
        self.create_node(parent, name, NewNode::new(FileType::Regular, perm), None)
    }

    /// Creates a directory with permissions `perm`.
    pub fn mkdir(&mut self, path: impl AsRef<[u8]>, perm: u16) -> Result<u32> {
        let (parent, name) = self.resolve_parent(path.as_ref())?;
        self.create_node(parent, name, NewNode::new(FileType::Directory, perm), None)
    }

    /// Creates a directory and any missing parents (like `mkdir -p`).
    pub fn create_dir_all(&mut self, path: impl AsRef<[u8]>, perm: u16) -> Result<u32> {
        let mut cur = ext4_ondisk::ino::ROOT;
        for comp in crate::path::components(path.as_ref()) {
            cur = match self.lookup_in(cur, comp)? {
                Some(i) => {
                    if !self.stat(i)?.is_dir() {
                        return Err(Error::NotADirectory(show(comp)));
                    }
                    i
                }
                None => self.create_node(cur, comp, NewNode::new(FileType::Directory, perm), None)?,
            };
        }
        Ok(cur)
    }

    /// Creates a symbolic link at `path` pointing to `target`.
    pub fn symlink(&mut self, target: impl AsRef<[u8]>, path: impl AsRef<[u8]>) -> Result<u32> {
        let (parent, name) = self.resolve_parent(path.as_ref())?;
        self.create_node(parent, name, NewNode::new(FileType::Symlink, 0o777), Some(target.as_ref()))
    }

    /// Creates a hard link `new` to the file at `existing`.
    pub fn hard_link(&mut self, existing: impl AsRef<[u8]>, new: impl AsRef<[u8]>) -> Result<()> {
        let target = self.lookup_nofollow(existing)?;
        let (parent, name) = self.resolve_parent(new.as_ref())?;
        self.link_in(target, parent, name)
    }

    /// Removes a file (not a directory).
    pub fn remove_file(&mut self, path: impl AsRef<[u8]>) -> Result<()> {
        let (parent, name) = self.resolve_parent(path.as_ref())?;
        self.unlink_in(parent, name)
    }

    /// Removes an empty directory.
    pub fn remove_dir(&mut self, path: impl AsRef<[u8]>) -> Result<()> {
        let (parent, name) = self.resolve_parent(path.as_ref())?;
        self.rmdir_in(parent, name)
    }

    /// Renames `from` to `to`, replacing `to` if it exists.
    pub fn rename(&mut self, from: impl AsRef<[u8]>, to: impl AsRef<[u8]>) -> Result<()> {
        self.rename_with(from, to, RenameMode::Replace)
    }

    /// Renames with an explicit mode (`NoReplace`, `Exchange`).
    pub fn rename_with(&mut self, from: impl AsRef<[u8]>, to: impl AsRef<[u8]>, mode: RenameMode) -> Result<()> {
        let (op, on) = self.resolve_parent(from.as_ref())?;
        let (np, nn) = self.resolve_parent(to.as_ref())?;
        self.rename_in(op, on, np, nn, mode)
    }

    /// Writes `data` as the whole contents of the file at `path`, creating
    /// it (mode 0644) or truncating it first.
    pub fn write_file(&mut self, path: impl AsRef<[u8]>, data: &[u8]) -> Result<u32> {
        let path = path.as_ref();
        let ino = match self.lookup(path) {
            Ok(i) => {
                self.truncate(i, 0)?;
                i
            }
            Err(Error::NotFound(_)) => self.create(path, 0o644)?,
            Err(e) => return Err(e),
        };
        self.write_at(ino, 0, data)?;
        Ok(ino)
    }
}

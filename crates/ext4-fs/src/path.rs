//! Path resolution: components looked up directory by directory, symbolic
//! links followed with the kernel's hop limit.

use std::collections::VecDeque;

use ext4_ondisk::{FileType, ino};

use crate::error::{Error, Result};
use crate::fs::Filesystem;

/// Most symbolic links followed while resolving one path (`MAXSYMLINKS`).
pub const MAX_SYMLINK_HOPS: u32 = 40;
/// Longest name of a directory entry.
pub const NAME_MAX: usize = 255;

/// Splits a path into its non-empty components other than `.`.
pub(crate) fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&c| c == b'/').filter(|c| !c.is_empty() && *c != b".")
}

/// Shows a path in messages.
pub(crate) fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

impl Filesystem {
    /// Resolves `path` (absolute or relative to the root) to an inode,
    /// following symbolic links, the last one too if `follow_last`.
    pub(crate) fn resolve(&self, path: &[u8], follow_last: bool) -> Result<u32> {
        self.resolve_from(ino::ROOT, path, follow_last)
    }

    /// Resolves `path` starting at directory `start` (absolute paths start at the root).
    pub(crate) fn resolve_from(&self, start: u32, path: &[u8], follow_last: bool) -> Result<u32> {
        let mut queue: VecDeque<Vec<u8>> = components(path).map(<[u8]>::to_vec).collect();
        let mut cur = if path.first() == Some(&b'/') { ino::ROOT } else { start };
        let mut hops = 0;
        while let Some(name) = queue.pop_front() {
            if name.len() > NAME_MAX {
                return Err(Error::NameTooLong(name.len()));
            }
            let dir = self.read_inode(cur)?;
            if !dir.is_dir() {
                return Err(Error::NotADirectory(show(path)));
            }
            let child = match self.lookup_entry(&dir, &name)? {
                Some((child, _)) => child,
                None => return Err(Error::NotFound(show(path))),
            };
            let child_inode = self.read_inode(child)?;
            let is_last = queue.is_empty();
            if child_inode.file_type() == FileType::Symlink && (follow_last || !is_last) {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(Error::SymlinkLoop(show(path)));
                }
                let target = self.symlink_target(&child_inode)?;
                if target.first() == Some(&b'/') {
                    cur = ino::ROOT;
                }
                for c in components(&target).rev() {
                    queue.push_front(c.to_vec());
                }
                continue;
            }
            cur = child;
        }
        Ok(cur)
    }

    /// Splits `path` into its parent directory's inode and the last name.
    pub(crate) fn resolve_parent<'p>(&self, path: &'p [u8]) -> Result<(u32, &'p [u8])> {
        let trimmed = path.strip_suffix(b"/").unwrap_or(path);
        let (dir, name) = match trimmed.iter().rposition(|&c| c == b'/') {
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => (&b""[..], trimmed),
        };
        if name.is_empty() || name == b"." || name == b".." {
            return Err(Error::InvalidArgument(format!("{}: no file name", show(path))));
        }
        if name.len() > NAME_MAX {
            return Err(Error::NameTooLong(name.len()));
        }
        let parent = self.resolve(dir, true)?;
        if !self.read_inode(parent)?.is_dir() {
            return Err(Error::NotADirectory(show(dir)));
        }
        Ok((parent, name))
    }
}

//! Copying host files and trees into the filesystem (`ext4 put -r`,
//! `ext4 mkfs -d`): regular files with their holes, directories, symbolic
//! links, hard links (as hard links), device nodes, FIFOs and sockets, with
//! permissions, owners, times to the nanosecond, and xattrs.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use ext4_ondisk::{FileType, Timestamp};

use crate::attr::SetAttr;
use crate::error::{Error, Result};
use crate::fs::Filesystem;
use crate::node::NewNode;
use crate::xattr_write::XattrMode;

/// How to copy.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// Owner for every copied inode instead of the source's (`root_owner`-like).
    pub force_owner: Option<(u32, u32)>,
    /// Skip extended attributes.
    pub no_xattrs: bool,
}

/// Progress of a copy: bytes of file data copied so far.
pub type ProgressFn<'a> = dyn FnMut(u64) + 'a;

/// A host error while copying, with the path.
fn host(path: &Path, e: std::io::Error) -> Error {
    Error::InvalidArgument(format!("{}: {e}", path.display()))
}

fn ts(secs: i64, nsec: i64) -> Timestamp {
    Timestamp { secs, nsec: nsec.clamp(0, 999_999_999) as u32 }
}

/// Device numbers as the kernel splits `dev_t`.
fn split_dev(d: u64) -> (u32, u32) {
    (((d >> 32) & 0xffff_f000 | ((d >> 8) & 0xfff)) as u32, ((d >> 12) & 0xffff_ff00 | (d & 0xff)) as u32)
}

struct Copier<'a, 'p> {
    fs: &'a mut Filesystem,
    opts: &'a CopyOptions,
    /// Host (dev, ino) of multiply-linked files -> image inode.
    links: HashMap<(u64, u64), u32>,
    progress: &'a mut ProgressFn<'p>,
    copied: u64,
    /// The read buffer, reused from file to file (a fresh zeroed megabyte
    /// per file was a third of a populate's time).
    buf: Vec<u8>,
}

impl Filesystem {
    /// Copies the host path `src` (a file, link, device or a whole directory
    /// tree) into directory `parent` as `name`. Returns the new inode.
    pub fn copy_in(&mut self, src: &Path, parent: u32, name: &[u8], opts: &CopyOptions, progress: &mut ProgressFn<'_>) -> Result<u32> {
        let mut c = Copier { fs: self, opts, links: HashMap::new(), progress, copied: 0, buf: Vec::new() };
        c.copy(src, parent, name)
    }

    /// Copies the contents of host directory `src` into directory `dir`
    /// (which must exist) and gives `dir` the source directory's attributes.
    pub fn copy_dir_contents(&mut self, src: &Path, dir: u32, opts: &CopyOptions, progress: &mut ProgressFn<'_>) -> Result<()> {
        let md = std::fs::symlink_metadata(src).map_err(|e| host(src, e))?;
        let mut c = Copier { fs: self, opts, links: HashMap::new(), progress, copied: 0, buf: Vec::new() };
        c.children(src, dir)?;
        c.attributes(src, &md, dir)
    }
}

impl Copier<'_, '_> {
    fn copy(&mut self, src: &Path, parent: u32, name: &[u8]) -> Result<u32> {
        let md = std::fs::symlink_metadata(src).map_err(|e| host(src, e))?;
        let ft = md.file_type();
        if !ft.is_dir() && md.nlink() > 1 {
            if let Some(&ino) = self.links.get(&(md.dev(), md.ino())) {
                self.fs.link_in(ino, parent, name)?;
                return Ok(ino);
            }
        }
        let kind = if ft.is_dir() {
            FileType::Directory
        } else if ft.is_symlink() {
            FileType::Symlink
        } else if ft.is_char_device() {
            FileType::CharDevice
        } else if ft.is_block_device() {
            FileType::BlockDevice
        } else if ft.is_fifo() {
            FileType::Fifo
        } else if ft.is_socket() {
            FileType::Socket
        } else {
            FileType::Regular
        };
        let (uid, gid) = self.opts.force_owner.unwrap_or((md.uid(), md.gid()));
        let mut node = NewNode::new(kind, (md.mode() & 0o7777) as u16).owner(uid, gid);
        node.rdev = split_dev(md.rdev());
        let target = if kind == FileType::Symlink {
            Some(std::fs::read_link(src).map_err(|e| host(src, e))?.as_os_str().as_bytes().to_vec())
        } else {
            None
        };
        let ino = self.fs.create_node(parent, name, node, target.as_deref())?;
        match kind {
            FileType::Directory => self.children(src, ino)?,
            FileType::Regular => self.data(src, ino, md.len())?,
            _ => {}
        }
        if kind != FileType::Directory && md.nlink() > 1 {
            self.links.insert((md.dev(), md.ino()), ino);
        }
        self.attributes(src, &md, ino)?;
        Ok(ino)
    }

    fn children(&mut self, src: &Path, dir: u32) -> Result<()> {
        let mut entries: Vec<_> =
            std::fs::read_dir(src).map_err(|e| host(src, e))?.collect::<std::io::Result<_>>().map_err(|e| host(src, e))?;
        // Sorted, so that images are reproducible whatever order the host lists.
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            self.copy(&e.path(), dir, e.file_name().as_bytes())?;
        }
        Ok(())
    }

    /// Copies file data, skipping holes (runs of zero blocks stay unallocated).
    fn data(&mut self, src: &Path, ino: u32, len: u64) -> Result<()> {
        let mut f = File::open(src).map_err(|e| host(src, e))?;
        let bs = self.fs.block_size();
        // Reads of at most a megabyte, and no bigger than the file: a small
        // file takes one read, without a second one to find its end.
        let cap = usize::try_from(len).unwrap_or(usize::MAX).clamp(1, 1 << 20);
        let mut buf = std::mem::take(&mut self.buf);
        if buf.len() < cap {
            buf.resize(cap, 0);
        }
        let r = self.data_with(&mut f, src, ino, len, &mut buf[..cap], bs);
        self.buf = buf;
        r
    }

    fn data_with(&mut self, f: &mut File, src: &Path, ino: u32, len: u64, buf: &mut [u8], bs: usize) -> Result<()> {
        let mut off = 0u64;
        while off < len {
            let n = read_full(f, buf).map_err(|e| host(src, e))?;
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            let mut i = 0;
            while i < n {
                let end = (i + bs).min(n);
                if is_all_zero(&chunk[i..end]) {
                    i = end;
                    continue;
                }
                // Write the run of non-zero blocks in one call.
                let mut j = end;
                while j < n {
                    let e = (j + bs).min(n);
                    if is_all_zero(&chunk[j..e]) {
                        break;
                    }
                    j = e;
                }
                self.fs.write_at(ino, off + i as u64, &chunk[i..j])?;
                i = j;
            }
            off += n as u64;
            self.copied += n as u64;
            (self.progress)(self.copied);
        }
        if self.fs.stat(ino)?.size < off {
            self.fs.truncate(ino, off)?;
        }
        Ok(())
    }

    /// Times, xattrs and (for directories, after their contents) the rest.
    fn attributes(&mut self, src: &Path, md: &std::fs::Metadata, ino: u32) -> Result<()> {
        if !self.opts.no_xattrs && !md.file_type().is_symlink() {
            if let Ok(names) = xattr_list(src) {
                for name in names {
                    if name.starts_with(b"system.") {
                        continue;
                    }
                    if let Ok(Some(v)) = xattr_get(src, &name) {
                        self.fs.set_xattr(ino, &name, &v, XattrMode::Any)?;
                    }
                }
            }
        }
        let a =
            SetAttr { atime: Some(ts(md.atime(), md.atime_nsec())), mtime: Some(ts(md.mtime(), md.mtime_nsec())), ..SetAttr::default() };
        self.fs.set_attr(ino, a)
    }
}

/// Whether `b` holds only zero bytes: 64-byte chunks OR-ed together, which
/// the compiler turns into vector instructions (a byte loop with an early
/// exit was an eighth of an extraction's time).
pub fn is_all_zero(b: &[u8]) -> bool {
    b.chunks(64).all(|c| c.iter().fold(0u8, |a, &x| a | x) == 0)
}

fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn xattr_list(p: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    Ok(xattr::list(p)?.map(|n| n.as_bytes().to_vec()).collect())
}

fn xattr_get(p: &Path, name: &[u8]) -> std::io::Result<Option<Vec<u8>>> {
    xattr::get(p, std::ffi::OsStr::from_bytes(name))
}

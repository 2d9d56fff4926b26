//! Copying host files and trees into the filesystem (`ext4 put -r`,
//! `ext4 mkfs -d`): regular files with their holes, directories, symbolic
//! links, hard links (as hard links), device nodes, FIFOs and sockets, with
//! permissions, owners, times to the nanosecond, and xattrs.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, Dir, Mode, OFlags};
use xattr::FileExt;

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

/// What the copy needs of a host inode, from one `stat`.
struct HostStat {
    kind: FileType,
    perm: u16,
    uid: u32,
    gid: u32,
    nlink: u64,
    dev: u64,
    ino: u64,
    rdev: (u32, u32),
    size: u64,
    atime: Timestamp,
    mtime: Timestamp,
}

/// Integer fields of `struct stat` differ in type between platforms.
fn unsigned<T: TryInto<u64>>(x: T) -> u64 {
    x.try_into().unwrap_or(0)
}

fn signed<T: TryInto<i64>>(x: T) -> i64 {
    x.try_into().unwrap_or(0)
}

impl HostStat {
    fn new(s: &rustix::fs::Stat) -> Self {
        use rustix::fs::FileType as Host;
        let kind = match Host::from_raw_mode(s.st_mode) {
            Host::Directory => FileType::Directory,
            Host::Symlink => FileType::Symlink,
            Host::CharacterDevice => FileType::CharDevice,
            Host::BlockDevice => FileType::BlockDevice,
            Host::Fifo => FileType::Fifo,
            Host::Socket => FileType::Socket,
            _ => FileType::Regular,
        };
        Self {
            kind,
            perm: (unsigned(s.st_mode) & 0o7777) as u16,
            uid: s.st_uid,
            gid: s.st_gid,
            nlink: unsigned(s.st_nlink),
            dev: unsigned(s.st_dev),
            ino: unsigned(s.st_ino),
            rdev: (rustix::fs::major(s.st_rdev), rustix::fs::minor(s.st_rdev)),
            size: unsigned(s.st_size),
            atime: ts(signed(s.st_atime), signed(s.st_atime_nsec)),
            mtime: ts(signed(s.st_mtime), signed(s.st_mtime_nsec)),
        }
    }
}

/// A host entry to copy: `name` in the directory open as `dir` (at the top,
/// the working directory and the whole path), and its `path` for messages.
/// Opening and stating relative to the parent's descriptor spares the kernel
/// a walk of the whole path per call (a sixth of a populate's time).
#[derive(Clone, Copy)]
struct Src<'s> {
    dir: BorrowedFd<'s>,
    name: &'s OsStr,
    path: &'s Path,
}

impl Src<'_> {
    fn err(&self, e: impl Into<std::io::Error>) -> Error {
        host(self.path, e.into())
    }

    fn open(&self, flags: OFlags) -> Result<OwnedFd> {
        rustix::fs::openat(self.dir, self.name, flags | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| self.err(e))
    }
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
        c.copy(Src { dir: rustix::fs::CWD, name: src.as_os_str(), path: src }, parent, name)
    }

    /// Copies the contents of host directory `src` into directory `dir`
    /// (which must exist) and gives `dir` the source directory's attributes.
    pub fn copy_dir_contents(&mut self, src: &Path, dir: u32, opts: &CopyOptions, progress: &mut ProgressFn<'_>) -> Result<()> {
        let top = Src { dir: rustix::fs::CWD, name: src.as_os_str(), path: src };
        let fd = rustix::fs::openat(top.dir, top.name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| top.err(e))?;
        let st = HostStat::new(&rustix::fs::fstat(&fd).map_err(|e| top.err(e))?);
        let mut c = Copier { fs: self, opts, links: HashMap::new(), progress, copied: 0, buf: Vec::new() };
        let fd = c.children(fd, src, dir)?;
        c.attributes(top, Some(&File::from(fd)), &st, dir)
    }
}

impl Copier<'_, '_> {
    fn copy(&mut self, src: Src<'_>, parent: u32, name: &[u8]) -> Result<u32> {
        let st = HostStat::new(&rustix::fs::statat(src.dir, src.name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| src.err(e))?);
        let kind = st.kind;
        if kind != FileType::Directory && st.nlink > 1 {
            if let Some(&ino) = self.links.get(&(st.dev, st.ino)) {
                self.fs.link_in(ino, parent, name)?;
                return Ok(ino);
            }
        }
        // Open what has contents before anything is made in the image.
        let opened = match kind {
            FileType::Directory => Some(src.open(OFlags::DIRECTORY)?),
            FileType::Regular => Some(src.open(OFlags::empty())?),
            _ => None,
        };
        let (uid, gid) = self.opts.force_owner.unwrap_or((st.uid, st.gid));
        let mut node = NewNode::new(kind, st.perm).owner(uid, gid);
        node.rdev = st.rdev;
        let target = if kind == FileType::Symlink {
            Some(rustix::fs::readlinkat(src.dir, src.name, Vec::new()).map_err(|e| src.err(e))?.into_bytes())
        } else {
            None
        };
        let ino = self.fs.create_node(parent, name, node, target.as_deref())?;
        let file = match (kind, opened) {
            (FileType::Directory, Some(fd)) => Some(File::from(self.children(fd, src.path, ino)?)),
            (FileType::Regular, Some(fd)) => {
                let mut f = File::from(fd);
                self.data(&mut f, src.path, ino, st.size)?;
                Some(f)
            }
            _ => None,
        };
        if kind != FileType::Directory && st.nlink > 1 {
            self.links.insert((st.dev, st.ino), ino);
        }
        self.attributes(src, file.as_ref(), &st, ino)?;
        Ok(ino)
    }

    /// Copies the entries of the host directory open as `fd` (at `path`),
    /// in name order so that images are reproducible whatever order the
    /// host lists; gives the descriptor back for the directory's xattrs.
    fn children(&mut self, fd: OwnedFd, path: &Path, dir: u32) -> Result<OwnedFd> {
        let mut listing = Dir::new(fd).map_err(|e| host(path, e.into()))?;
        let mut names = Vec::new();
        for e in listing.by_ref() {
            let e = e.map_err(|e| host(path, e.into()))?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsStr::from_bytes(n).to_os_string());
            }
        }
        names.sort();
        let dfd = listing.fd().map_err(|e| host(path, e.into()))?;
        for n in &names {
            let p = path.join(n);
            self.copy(Src { dir: dfd, name: n, path: &p }, dir, n.as_bytes())?;
        }
        dfd.try_clone_to_owned().map_err(|e| host(path, e))
    }

    /// Copies file data, skipping holes (runs of zero blocks stay unallocated).
    fn data(&mut self, f: &mut File, src: &Path, ino: u32, len: u64) -> Result<()> {
        let bs = self.fs.block_size();
        // Reads of at most a megabyte, and no bigger than the file: a small
        // file takes one read, without a second one to find its end.
        let cap = usize::try_from(len).unwrap_or(usize::MAX).clamp(1, 1 << 20);
        let mut buf = std::mem::take(&mut self.buf);
        if buf.len() < cap {
            buf.resize(cap, 0);
        }
        let r = self.data_with(f, src, ino, len, &mut buf[..cap], bs);
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

    /// Times and xattrs (for directories, after their contents), read
    /// through `file` where the entry is open.
    fn attributes(&mut self, src: Src<'_>, file: Option<&File>, st: &HostStat, ino: u32) -> Result<()> {
        if !self.opts.no_xattrs && st.kind != FileType::Symlink {
            let names = match file {
                Some(f) => f.list_xattr().map(|l| l.map(|n| n.as_bytes().to_vec()).collect::<Vec<_>>()),
                None => xattr::list(src.path).map(|l| l.map(|n| n.as_bytes().to_vec()).collect()),
            };
            for name in names.unwrap_or_default() {
                if name.starts_with(b"system.") {
                    continue;
                }
                let n = OsStr::from_bytes(&name);
                let value = match file {
                    Some(f) => f.get_xattr(n),
                    None => xattr::get(src.path, n),
                };
                if let Ok(Some(v)) = value {
                    self.fs.set_xattr(ino, &name, &v, XattrMode::Any)?;
                }
            }
        }
        self.fs.set_attr(ino, SetAttr { atime: Some(st.atime), mtime: Some(st.mtime), ..SetAttr::default() })
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

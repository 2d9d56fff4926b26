//! The host side of a copy: walks a host tree depth-first in name order on
//! its own thread and sends what the image side needs of each entry (its
//! `stat`, link target, xattrs and file data) down a bounded channel, so
//! that reading the sources (directory listings, `stat`, `open`, `read`)
//! overlaps with writing the image.
//!
//! Calls are made relative to the parent directory's descriptor: a whole
//! path per call made the kernel walk every component each time.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender};

use rustix::fs::{AtFlags, Dir, Mode, OFlags};
use xattr::FileExt;

use ext4_blockdev::{IO_ALIGN, IoBuf};
use ext4_ondisk::{FileType, Timestamp};

use crate::error::Error;

/// File data travels in chunks of at most this many bytes (a multiple of
/// every block size, so that holes are found block by block at the right
/// offsets); a smaller file is one chunk of its size.
pub(super) const CHUNK: usize = 1 << 20;

/// A batch carries at most this many messages, and data up to [`CHUNK`]
/// bytes: handing entries over one by one was a futex wake per message.
const BATCH_MSGS: usize = 256;

/// Batches in flight: the walker reads at most this far ahead.
pub(super) const AHEAD: usize = 4;

/// What the copy needs of a host inode, from one `stat`.
pub(super) struct HostStat {
    pub kind: FileType,
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    pub dev: u64,
    pub ino: u64,
    pub rdev: (u32, u32),
    pub size: u64,
    pub atime: Timestamp,
    pub mtime: Timestamp,
}

/// Integer fields of `struct stat` differ in type between platforms.
fn unsigned<T: TryInto<u64>>(x: T) -> u64 {
    x.try_into().unwrap_or(0)
}

fn signed<T: TryInto<i64>>(x: T) -> i64 {
    x.try_into().unwrap_or(0)
}

fn ts(secs: i64, nsec: i64) -> Timestamp {
    Timestamp { secs, nsec: nsec.clamp(0, 999_999_999) as u32 }
}

impl HostStat {
    fn new(s: &rustix::fs::Stat) -> Self {
        // The S_IF* values are the same on every Unix: ext4's own decoding.
        let kind = FileType::from_mode(unsigned(s.st_mode) as u16).unwrap_or(FileType::Regular);
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

    /// Whether other names may lead to the same inode.
    pub fn shared(&self) -> bool {
        self.kind != FileType::Directory && self.nlink > 1
    }
}

impl Entry {
    /// A directory whose entries follow it in the stream, up to a `DirEnd`.
    pub fn opens_dir(&self) -> bool {
        self.st.kind == FileType::Directory && !self.link
    }
}

/// One host entry, in the order the image side creates them.
pub(super) struct Entry {
    /// The name in its directory (the path given, at the top).
    pub name: OsString,
    pub st: HostStat,
    /// Another name of an inode sent before: no data or xattrs follow.
    pub link: bool,
    /// A symbolic link's target.
    pub target: Option<Vec<u8>>,
    /// Extended attributes other than `system.*`, in the host's order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The stream, depth-first in name order: an `Entry`; for a regular file
/// (not a link) its `Data` chunks from offset 0 and `FileEnd`; for a
/// directory its children and `DirEnd`. `Failed` ends the stream.
pub(super) enum Msg {
    Entry(Box<Entry>),
    /// File data: this range of the batch's `data`.
    Data(std::ops::Range<usize>),
    FileEnd,
    DirEnd,
    Failed(Error),
}

/// Messages in stream order, with the file data they refer to.
pub(super) struct Batch {
    pub msgs: Vec<Msg>,
    /// [`CHUNK`] bytes, zeroed once when first made: batches go back and
    /// forth between the threads and are refilled in place.
    pub data: IoBuf,
}

/// A host error while copying, with the path (its middle left out past a
/// few hundred bytes: a deep tree's paths can be longer than any message
/// should be).
pub(super) fn host(path: &Path, e: impl Into<std::io::Error>) -> Error {
    let shown = path.display().to_string();
    let chars: Vec<char> = shown.chars().collect();
    let shown = if chars.len() > 400 {
        let (head, tail): (String, String) = (chars[..100].iter().collect(), chars[chars.len() - 200..].iter().collect());
        format!("{head}...{tail}")
    } else {
        shown
    };
    Error::InvalidArgument(format!("{shown}: {}", e.into()))
}

/// A directory being walked: its open listing and the names not yet sent.
struct Level {
    listing: Dir,
    /// In reverse name order: the next one is last.
    names: Vec<OsString>,
    path: PathBuf,
}

/// The image side stopped listening: stop reading.
struct Hangup;

type Sent = Result<(), Hangup>;

pub(super) struct Walker {
    pub tx: SyncSender<Batch>,
    /// Batches back from the image side, to be refilled.
    pub spent: Receiver<Batch>,
    pub xattrs: bool,
    /// (dev, ino) of multiply-linked inodes already sent.
    pub seen: HashSet<(u64, u64)>,
    /// The batch being filled, and how much of its data is used.
    pub batch: Option<Batch>,
    pub fill: usize,
}

impl Walker {
    /// Sends the stream for `top`: the entry itself (`contents`: a
    /// directory, followed even if it is a symbolic link, whose entry
    /// stands for the image directory that receives its contents).
    pub fn run(mut self, top: &Path, contents: bool) {
        if self.walk(top, contents).is_ok() {
            let _ = self.flush();
        }
    }

    /// Depth-first with a stack of open directories rather than recursion,
    /// so that no tree is too deep for the thread's stack (opening each
    /// level relative to its parent, a tree can be deeper than any path).
    fn walk(&mut self, top: &Path, contents: bool) -> Sent {
        let cwd = rustix::fs::CWD;
        let first = if contents {
            let opened = rustix::fs::openat(cwd, top, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .and_then(|fd| Ok((HostStat::new(&rustix::fs::fstat(&fd)?), fd)));
            let (st, fd) = self.check(opened.map_err(|e| host(top, e)))?;
            Some(self.directory(fd, top.as_os_str(), top, st)?)
        } else {
            self.entry(cwd, top.as_os_str(), top)?
        };
        let mut stack: Vec<Level> = first.into_iter().collect();
        while let Some(level) = stack.last_mut() {
            let Some(name) = level.names.pop() else {
                stack.pop();
                self.send(Msg::DirEnd)?;
                continue;
            };
            let path = level.path.join(&name);
            let dir = self.check(level.listing.fd().map_err(|e| host(&level.path, e)))?;
            if let Some(sub) = self.entry(dir, &name, &path)? {
                stack.push(sub);
            }
        }
        Ok(())
    }

    fn batch(&mut self) -> &mut Batch {
        self.batch.get_or_insert_with(|| {
            self.spent.try_recv().unwrap_or_else(|_| Batch { msgs: Vec::with_capacity(BATCH_MSGS), data: IoBuf::zeroed(CHUNK) })
        })
    }

    /// Hands the batch over.
    fn flush(&mut self) -> Sent {
        self.fill = 0;
        match self.batch.take() {
            Some(b) => self.tx.send(b).map_err(|_| Hangup),
            None => Ok(()),
        }
    }

    fn send(&mut self, m: Msg) -> Sent {
        let b = self.batch();
        b.msgs.push(m);
        if b.msgs.len() >= BATCH_MSGS { self.flush() } else { Ok(()) }
    }

    /// The value, or the error sent as the end of the stream.
    fn check<T>(&mut self, r: crate::error::Result<T>) -> Result<T, Hangup> {
        r.map_err(|e| {
            let _ = self.send(Msg::Failed(e)).and_then(|()| self.flush());
            Hangup
        })
    }

    /// Sends one entry, whole unless it is a directory: then its `Entry`
    /// is sent and its listing returned, to be walked.
    fn entry(&mut self, dir: BorrowedFd<'_>, name: &OsStr, path: &Path) -> Result<Option<Level>, Hangup> {
        let st =
            self.check(rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map(|s| HostStat::new(&s)).map_err(|e| host(path, e)))?;
        if st.shared() && !self.seen.insert((st.dev, st.ino)) {
            let e = Entry { name: name.to_os_string(), st, link: true, target: None, xattrs: Vec::new() };
            return self.send(Msg::Entry(Box::new(e))).map(|()| None);
        }
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match st.kind {
            FileType::Directory => {
                let fd = self.check(rustix::fs::openat(dir, name, flags | OFlags::DIRECTORY, Mode::empty()).map_err(|e| host(path, e)))?;
                self.directory(fd, name, path, st).map(Some)
            }
            FileType::Regular => {
                let fd = self.check(rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(|e| host(path, e)))?;
                self.file(File::from(fd), name, path, st).map(|()| None)
            }
            kind => {
                let target = if kind == FileType::Symlink {
                    Some(self.check(rustix::fs::readlinkat(dir, name, Vec::new()).map_err(|e| host(path, e)))?.into_bytes())
                } else {
                    None
                };
                // Xattrs of a device node, FIFO or socket by path (opening
                // one could block or reach a device); none on a symlink.
                let xattrs = if kind == FileType::Symlink { Vec::new() } else { self.xattrs(None, path) };
                let e = Entry { name: name.to_os_string(), st, link: false, target, xattrs };
                self.send(Msg::Entry(Box::new(e))).map(|()| None)
            }
        }
    }

    fn file(&mut self, mut f: File, name: &OsStr, path: &Path, st: HostStat) -> Sent {
        let len = st.size;
        let xattrs = self.xattrs(Some(&f), path);
        self.send(Msg::Entry(Box::new(Entry { name: name.to_os_string(), st, link: false, target: None, xattrs })))?;
        // Reads of at most a chunk, and no bigger than the file: a small
        // file takes one read, without a second one to find its end.
        let cap = usize::try_from(len).unwrap_or(usize::MAX).clamp(1, CHUNK);
        let mut off = 0u64;
        while off < len {
            // Each file's data starts on a page boundary of the batch (see
            // `IoBuf`: the kernel copies faster from aligned buffers).
            let mut start = self.fill.next_multiple_of(IO_ALIGN);
            if start + cap > CHUNK {
                self.flush()?;
                start = 0;
            }
            let buf = &mut self.batch().data[start..start + cap];
            let n = read_full(&mut f, buf);
            let n = self.check(n.map_err(|e| host(path, e)))?;
            if n == 0 {
                break;
            }
            off += n as u64;
            self.fill = start + n;
            self.send(Msg::Data(start..start + n))?;
        }
        self.send(Msg::FileEnd)
    }

    /// Lists a directory and sends its `Entry`; its children are walked
    /// from the returned level.
    fn directory(&mut self, fd: OwnedFd, name: &OsStr, path: &Path, st: HostStat) -> Result<Level, Hangup> {
        let listed = Dir::new(fd).and_then(|mut d| {
            let mut names = Vec::new();
            for e in d.by_ref() {
                let n = e?.file_name().to_bytes().to_vec();
                if n != b"." && n != b".." {
                    names.push(OsString::from(OsStr::from_bytes(&n)));
                }
            }
            Ok((d, names))
        });
        let (listing, mut names) = self.check(listed.map_err(|e| host(path, e)))?;
        // Name order, so that images are reproducible whatever order the
        // host lists; reversed, to be taken from the end.
        names.sort_by(|a, b| b.cmp(a));
        // Xattrs through a duplicate of the listing's descriptor (a `File`
        // closes the descriptor it owns), by path if that fails.
        let file = self.xattrs.then(|| listing.fd().ok().and_then(|fd| fd.try_clone_to_owned().ok())).flatten().map(File::from);
        let xattrs = self.xattrs(file.as_ref(), path);
        self.send(Msg::Entry(Box::new(Entry { name: name.to_os_string(), st, link: false, target: None, xattrs })))?;
        Ok(Level { listing, names, path: path.to_path_buf() })
    }

    /// The entry's xattrs other than `system.*` (the host's ACLs are not
    /// copied); one that cannot be listed or read is left out.
    fn xattrs(&self, file: Option<&File>, path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
        if !self.xattrs {
            return Vec::new();
        }
        let names: Vec<OsString> = match file {
            Some(f) => f.list_xattr().map(|l| l.collect()),
            None => xattr::list(path).map(|l| l.collect()),
        }
        .unwrap_or_default();
        let mut out = Vec::new();
        for n in names {
            if n.as_bytes().starts_with(b"system.") {
                continue;
            }
            let value = match file {
                Some(f) => f.get_xattr(&n),
                None => xattr::get(path, &n),
            };
            if let Ok(Some(v)) = value {
                out.push((n.into_vec(), v));
            }
        }
        out
    }
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

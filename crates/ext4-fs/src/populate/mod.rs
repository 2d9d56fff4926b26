//! Copying host files and trees into the filesystem (`ext4 put -r`,
//! `ext4 mkfs -d`): regular files with their holes, directories, symbolic
//! links, hard links (as hard links), device nodes, FIFOs and sockets, with
//! permissions, owners, times to the nanosecond, and xattrs.
//!
//! Two threads: `walk` reads the host tree and sends its entries in
//! order; this side creates them in the image, in the same order as a
//! single thread would (the image is the same byte for byte).

mod walk;

use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender, channel, sync_channel};

use ext4_ondisk::FileType;

use crate::attr::SetAttr;
use crate::error::{Error, Result};
use crate::fs::Filesystem;
use crate::node::NewNode;
use crate::xattr_write::XattrMode;

use walk::{Batch, Entry, Msg, Walker};

/// How to copy.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// Owner for every copied inode instead of the source's (`root_owner`-like).
    pub force_owner: Option<(u32, u32)>,
    /// Skip extended attributes.
    pub no_xattrs: bool,
    /// Make new inodes the filesystem's [`Caller`](crate::Caller)'s, with
    /// the group, setgid bit and umask the kernel applies (as `cp` without
    /// `-p` makes them), instead of the source's owner and exact mode.
    pub as_caller: bool,
}

/// Progress of a copy: bytes of file data copied so far.
pub type ProgressFn<'a> = dyn FnMut(u64) + 'a;

impl Filesystem {
    /// Copies the host path `src` (a file, link, device or a whole directory
    /// tree) into directory `parent` as `name`. Returns the new inode.
    pub fn copy_in(&mut self, src: &Path, parent: u32, name: &[u8], opts: &CopyOptions, progress: &mut ProgressFn<'_>) -> Result<u32> {
        Copier::run(self, opts, progress, src, false, |c, e| c.create(e, parent, name))
    }

    /// Copies the contents of host directory `src` into directory `dir`
    /// (which must exist) and gives `dir` the source directory's attributes.
    pub fn copy_dir_contents(&mut self, src: &Path, dir: u32, opts: &CopyOptions, progress: &mut ProgressFn<'_>) -> Result<()> {
        Copier::run(self, opts, progress, src, true, |c, e| c.fill_dir(dir, e))
    }
}

/// The image side of a copy.
struct Copier<'a, 'p> {
    fs: &'a mut Filesystem,
    opts: &'a CopyOptions,
    rx: Receiver<Batch>,
    /// Batches used up, handed back to the walker.
    spent: Sender<Batch>,
    /// The batch being read, its messages reversed (next one last).
    batch: Option<Batch>,
    /// Host (dev, ino) of multiply-linked files -> image inode.
    links: HashMap<(u64, u64), u32>,
    progress: &'a mut ProgressFn<'p>,
    copied: u64,
}

/// The walker ended its stream early (it reports why before it stops).
fn ended() -> Error {
    Error::InvalidArgument("the host tree walk ended early".into())
}

impl<'a, 'p> Copier<'a, 'p> {
    /// Walks `src` on a second thread while `top` makes the image side of
    /// its first entry (and, through it, of the rest of the stream).
    fn run<R>(
        fs: &'a mut Filesystem,
        opts: &'a CopyOptions,
        progress: &'a mut ProgressFn<'p>,
        src: &Path,
        contents: bool,
        top: impl FnOnce(&mut Self, Entry) -> Result<R>,
    ) -> Result<R> {
        let (tx, rx) = sync_channel(walk::AHEAD);
        let (spent, spent_rx) = channel();
        let walker = Walker { tx, spent: spent_rx, xattrs: !opts.no_xattrs, seen: HashSet::new(), batch: None, fill: 0 };
        std::thread::scope(|s| {
            let reader = std::thread::Builder::new()
                .name("ext4-copy-walk".into())
                .spawn_scoped(s, move || walker.run(src, contents))
                .map_err(|e| Error::InvalidArgument(format!("starting the host tree walk: {e}")))?;
            let mut c = Copier { fs, opts, rx, spent, batch: None, links: HashMap::new(), progress, copied: 0 };
            let r = c.next_entry().and_then(|e| top(&mut c, e));
            // Dropping the receiver stops a walker that is still reading.
            drop(c);
            match reader.join() {
                Ok(()) => r,
                Err(_) => r.and(Err(Error::InvalidArgument("the host tree walk panicked".into()))),
            }
        })
    }

    fn recv(&mut self) -> Result<Msg> {
        loop {
            if let Some(b) = &mut self.batch {
                match b.msgs.pop() {
                    Some(Msg::Failed(e)) => return Err(e),
                    Some(m) => return Ok(m),
                    None => {
                        let _ = self.spent.send(self.batch.take().expect("a batch"));
                    }
                }
            }
            let mut b = self.rx.recv().map_err(|_| ended())?;
            b.msgs.reverse();
            self.batch = Some(b);
        }
    }

    fn next_entry(&mut self) -> Result<Entry> {
        match self.recv()? {
            Msg::Entry(e) => Ok(*e),
            _ => Err(ended()),
        }
    }

    /// Makes `e` in `parent` as `name`, with what follows it in the stream.
    fn create(&mut self, e: Entry, parent: u32, name: &[u8]) -> Result<u32> {
        let ino = self.make(&e, parent, name)?;
        if e.opens_dir() {
            self.fill_dir(ino, e)?;
        }
        Ok(ino)
    }

    /// Makes `e` whole, unless it is a directory: that is only created
    /// (its entries follow in the stream, its attributes after them).
    fn make(&mut self, e: &Entry, parent: u32, name: &[u8]) -> Result<u32> {
        let st = &e.st;
        if e.link {
            let ino = *self.links.get(&(st.dev, st.ino)).ok_or_else(ended)?;
            self.fs.link_in(ino, parent, name)?;
            return Ok(ino);
        }
        let mut node = NewNode::new(st.kind, st.perm);
        if !self.opts.as_caller {
            let (uid, gid) = self.opts.force_owner.unwrap_or((st.uid, st.gid));
            node = node.owner(uid, gid);
        }
        node.rdev = st.rdev;
        let ino = self.fs.create_node(parent, name, node, e.target.as_deref())?;
        if st.kind == FileType::Directory {
            return Ok(ino);
        }
        if st.kind == FileType::Regular {
            self.data(ino)?;
        }
        if st.shared() {
            self.links.insert((st.dev, st.ino), ino);
        }
        self.attributes(e, ino)?;
        Ok(ino)
    }

    /// The entries of directory `dir` (host entry `e`) up to its `DirEnd`,
    /// then its attributes. Depth-first with a stack of directories rather
    /// than recursion, so that no tree is too deep for the caller's stack.
    fn fill_dir(&mut self, dir: u32, e: Entry) -> Result<()> {
        let mut open = vec![(dir, e)];
        while let Some(&(parent, _)) = open.last() {
            match self.recv()? {
                Msg::Entry(e) => {
                    let ino = self.make(&e, parent, e.name.as_bytes())?;
                    if e.opens_dir() {
                        open.push((ino, *e));
                    }
                }
                Msg::DirEnd => {
                    let (ino, e) = open.pop().ok_or_else(ended)?;
                    self.attributes(&e, ino)?;
                }
                _ => return Err(ended()),
            }
        }
        Ok(())
    }

    /// File data up to its `FileEnd`, skipping holes (runs of zero blocks
    /// stay unallocated).
    fn data(&mut self, ino: u32) -> Result<()> {
        let bs = self.fs.block_size();
        let mut off = 0u64;
        loop {
            let range = match self.recv()? {
                Msg::Data(r) => r,
                Msg::FileEnd => break,
                _ => return Err(ended()),
            };
            let chunk = &self.batch.as_ref().ok_or_else(ended)?.data[range];
            let n = chunk.len();
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

    /// Xattrs and times (for a directory, after its contents).
    fn attributes(&mut self, e: &Entry, ino: u32) -> Result<()> {
        for (name, value) in &e.xattrs {
            self.fs.set_xattr(ino, name, value, XattrMode::Any)?;
        }
        self.fs.set_attr(ino, SetAttr { atime: Some(e.st.atime), mtime: Some(e.st.mtime), ..SetAttr::default() })
    }
}

/// Whether `b` holds only zero bytes: 64-byte chunks OR-ed together, which
/// the compiler turns into vector instructions (a byte loop with an early
/// exit was an eighth of an extraction's time).
pub fn is_all_zero(b: &[u8]) -> bool {
    b.chunks(64).all(|c| c.iter().fold(0u8, |a, &x| a | x) == 0)
}

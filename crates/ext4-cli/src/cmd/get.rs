//! `ext4 get [-r] IMAGE PATH DEST`: copy a file or a whole tree out of an
//! image, keeping modes, owners (where permitted), times, symbolic links,
//! hard links (as hard links), device nodes and the xattrs the process may
//! set: `user.*` and POSIX ACLs, and `trusted.*` and `security.*` as root.
//! An entry that cannot be made or read goes into the report and the copy
//! goes on (a directory's subtree is skipped with it); every problem is
//! printed at the end and the command fails.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ext4_fs::ondisk::acl;
use ext4_fs::{DataRun, FileType, Filesystem, Metadata};
use filetime::FileTime;
use indicatif::ProgressBar;

use crate::util::{CliError, CliResult, Context, fail, path_bytes, shown};

/// Arguments of `ext4 get`.
#[derive(clap::Args)]
pub struct Args<I: clap::Args> {
    /// Copy directories recursively.
    #[arg(short = 'r', long)]
    recursive: bool,
    #[command(flatten)]
    pub(crate) image: I,
    /// The file or directory in the image.
    path: std::ffi::OsString,
    /// Where to put it on the host (an existing directory receives it by name).
    dest: PathBuf,
}

/// Runs the command.
pub fn exec<I: clap::Args>(a: &Args<I>, fs: &Filesystem) -> CliResult {
    let src = path_bytes(&a.path);
    let shown_src = shown(&a.path);
    let ino = fs.lookup_nofollow(&src).context(|| shown_src.clone())?;
    let md = fs.stat(ino).context(|| shown_src.clone())?;
    if md.is_dir() && !a.recursive {
        return Err(fail(format!("{shown_src}: is a directory (use -r)")));
    }
    let mut dest = a.dest.clone();
    if dest.is_dir() && !(md.is_dir() && src.iter().all(|&c| c == b'/')) {
        let name = src.rsplit(|&c| c == b'/').find(|c| !c.is_empty()).unwrap_or(b"root");
        dest = dest.join(OsStr::from_bytes(name));
    }
    let st = fs.statfs();
    let used = st.blocks.saturating_sub(st.free_blocks) * u64::from(st.block_size);
    let pb = crate::progress::bytes(used, "extracting");
    let problems = Problems::default();
    // The walk feeds the copying threads batches of files as it finds them
    // (a bounded queue: a fast walk of millions of files holds no more
    // than this; batches: one hand-over per file was 70,000 futex calls).
    let (tx, rx) = std::sync::mpsc::sync_channel(64);
    let mut x = Extractor {
        fs,
        problems: &problems,
        links: HashMap::new(),
        files: tx,
        batch: Batch::default(),
        hard_links: Vec::new(),
        dirs: Vec::new(),
    };
    copy_files(fs, rx, &pb, is_root(), &problems, || {
        let r = x.extract(ino, &md, &dest, &shown_src).and_then(|()| x.flush());
        // Closing the channel tells the threads that the walk is over.
        x.files = std::sync::mpsc::sync_channel(0).0;
        r
    });
    for (first, link) in &x.hard_links {
        problems.note(std::fs::hard_link(first, link).context(|| format!("linking {}", link.display())));
    }
    // Deepest first, so that creating entries no longer moves a directory's times.
    for d in &x.dirs {
        attributes(fs, d, is_root(), None, false, &problems);
    }
    pb.finish_and_clear();
    problems.finish(&shown_src)
}

/// The problems met on single entries, reported together at the end.
#[derive(Default)]
struct Problems(Mutex<Vec<CliError>>);

impl Problems {
    /// Keeps the error of `r`, if any.
    fn note(&self, r: CliResult) {
        if let Err(e) = r {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push(e);
        }
    }

    /// Prints every problem; fails if there was one.
    fn finish(self, what: &str) -> CliResult {
        let all = self.0.into_inner().unwrap_or_else(|e| e.into_inner());
        for e in &all {
            eprintln!("ext4: {e}");
        }
        match all.len() {
            0 => Ok(()),
            n => Err(CliError::partial(what, format!("{n} problem(s), listed above; everything else was copied"))),
        }
    }
}

/// Whether we may set owners (only root may give files away).
fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// One inode to give its attributes (and, for a regular file, its data).
struct Item {
    ino: u32,
    md: Metadata,
    dest: PathBuf,
    shown: String,
}

/// Regular files found by the walk, for one hand-over.
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    /// Their sizes: a batch holds at most 64 files or about 8 MiB, so that
    /// the threads share big files out evenly.
    bytes: u64,
}

/// The walk: directories, symbolic links and device nodes are made at once;
/// regular files go to the copying threads; hard links and directory
/// attributes are collected for the phases after it.
struct Extractor<'a> {
    fs: &'a Filesystem,
    /// Where the problems of single entries go.
    problems: &'a Problems,
    /// Inode -> the first path extracted for it (hard links).
    links: HashMap<u32, PathBuf>,
    /// To the copying threads.
    files: std::sync::mpsc::SyncSender<Vec<Item>>,
    /// Files found and not yet handed over.
    batch: Batch,
    hard_links: Vec<(PathBuf, PathBuf)>,
    /// Directories in post-order (children before parents).
    dirs: Vec<Item>,
}

impl Extractor<'_> {
    fn extract(&mut self, ino: u32, md: &Metadata, dest: &Path, shown: &str) -> CliResult {
        if md.file_type != FileType::Directory && md.nlink > 1 {
            if let Some(first) = self.links.get(&ino) {
                self.hard_links.push((first.clone(), dest.to_path_buf()));
                return Ok(());
            }
            self.links.insert(ino, dest.to_path_buf());
        }
        let item = Item { ino, md: md.clone(), dest: dest.to_path_buf(), shown: shown.to_string() };
        match md.file_type {
            FileType::Directory => {
                self.directory(ino, dest, shown)?;
                self.dirs.push(item);
                return Ok(());
            }
            FileType::Regular => {
                self.batch.bytes += item.md.size;
                self.batch.items.push(item);
                if self.batch.items.len() >= 64 || self.batch.bytes >= 8 << 20 {
                    return self.flush();
                }
                return Ok(());
            }
            FileType::Symlink => {
                let t = self.fs.read_link_ino(ino).context(|| shown.to_string())?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&t), dest).context(|| format!("creating {}", dest.display()))?;
            }
            other => special(other, md, dest)?,
        }
        attributes(self.fs, &item, is_root(), None, false, self.problems);
        Ok(())
    }

    /// Hands the batch of files found to the copying threads.
    fn flush(&mut self) -> CliResult {
        let batch = std::mem::take(&mut self.batch);
        if batch.items.is_empty() {
            return Ok(());
        }
        // The threads stop listening only after a failure, which they report.
        self.files.send(batch.items).map_err(|_| fail("stopped after an error"))
    }

    fn directory(&mut self, ino: u32, dest: &Path, shown: &str) -> CliResult {
        match std::fs::create_dir(dest) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dest.is_dir() => {}
            Err(e) => return Err(e).context(|| format!("creating {}", dest.display())),
        }
        for e in self.fs.dir_entries(ino).context(|| format!("listing {shown}"))? {
            if e.name == b"." || e.name == b".." {
                continue;
            }
            let child_shown = format!("{}/{}", shown.trim_end_matches('/'), e.name_lossy());
            let child = self.fs.stat(e.ino).context(|| child_shown.clone());
            let r = child.and_then(|md| self.extract(e.ino, &md, &dest.join(OsStr::from_bytes(&e.name)), &child_shown));
            self.problems.note(r);
        }
        Ok(())
    }
}

/// Copies the regular files `walk` sends, data and attributes, on up to
/// four threads while it runs (the library reads concurrently; each thread
/// has its own buffer). A file that fails, or the walk, goes to
/// `problems`, and the others go on.
fn copy_files(
    fs: &Filesystem,
    files: std::sync::mpsc::Receiver<Vec<Item>>,
    pb: &ProgressBar,
    root: bool,
    problems: &Problems,
    walk: impl FnOnce() -> CliResult,
) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4);
    // Reading the mask means setting it: set it back at once.
    let umask = rustix::process::umask(rustix::fs::Mode::empty());
    rustix::process::umask(umask);
    let umask = umask.bits();
    let files = Mutex::new(files);
    let kernel = KernelCopy::new();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut buf = Vec::new();
                    loop {
                        let next = files.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok(batch) = next else { break };
                        for item in &batch {
                            match copy_file(fs, item, &mut buf, pb, &kernel, umask) {
                                Ok((f, mode_set)) => attributes(fs, item, root, Some(&f), mode_set, problems),
                                Err(e) => problems.note(Err(e)),
                            }
                        }
                    }
                })
            })
            .collect();
        problems.note(walk());
        for w in workers {
            if w.join().is_err() {
                problems.note(Err(fail("an extraction thread panicked")));
            }
        }
    });
}

/// Copies a file's data extent by extent; returns the open file. Holes
/// and unwritten extents stay holes. Extents whose bytes are on the image
/// file as they are go by `copy_file_range` (one copy inside the kernel,
/// none through this process; `sendfile` where the kernel refuses copies
/// between the two filesystems); the rest (inline data, journaled copies not
/// yet home, or no kernel help) is read through the library into `buf`,
/// the caller's buffer reused from file to file, with all-zero chunks left
/// as holes.
/// The file is made with its permissions when the process's `umask`
/// leaves them whole and they have no set-id or sticky bits (which a later
/// chown would clear); the returned flag says so, and that no chmod is
/// needed.
fn copy_file(
    fs: &Filesystem,
    item: &Item,
    buf: &mut Vec<u8>,
    pb: &ProgressBar,
    kernel: &KernelCopy,
    umask: u32,
) -> CliResult<(File, bool)> {
    use std::os::unix::fs::FileExt;
    let (ino, size, dest, shown) = (item.ino, item.md.size, &item.dest, &item.shown);
    let (f, mode_set) = create(dest, item.md.permissions, umask).context(|| format!("creating {}", dest.display()))?;
    let reading = || format!("reading {shown}");
    let writing = || format!("writing {}", dest.display());
    let mut off = 0u64;
    let mut end = 0u64;
    while let Some(run) = fs.data_run(ino, off).context(reading)? {
        let len = run.len();
        // The bytes the kernel copied; the rest of the run goes through the library.
        let copied = match run {
            DataRun::Zeros { .. } => len,
            DataRun::Device { device_offset, len } => kernel.copy(fs, device_offset, &f, off, len).context(writing)?,
            DataRun::ReadThrough { .. } => 0,
        };
        if copied > 0 && !matches!(run, DataRun::Zeros { .. }) {
            end = off + copied;
        }
        let mut pos = off + copied;
        let cap = usize::try_from(len - copied).unwrap_or(usize::MAX).clamp(1, 1 << 20);
        if pos < off + len && buf.len() < cap {
            buf.resize(cap, 0);
        }
        while pos < off + len {
            let want = usize::try_from(off + len - pos).unwrap_or(usize::MAX).min(cap);
            let n = fs.read_at(ino, pos, &mut buf[..want]).context(reading)?;
            if n == 0 {
                return Err(fail(format!("{shown}: data ends before its size")));
            }
            let chunk = &buf[..n];
            if !ext4_fs::populate::is_all_zero(chunk) {
                f.write_all_at(chunk, pos).context(writing)?;
                end = pos + n as u64;
            }
            pos += n as u64;
        }
        off += len;
        pb.inc(len);
    }
    // Only a trailing hole leaves the size to set.
    if end != size {
        f.set_len(size).context(writing)?;
    }
    Ok((f, mode_set))
}

/// Creates `dest` for writing with permissions `perm` where it can; `true`
/// if the new file has exactly `perm`.
fn create(dest: &Path, perm: u16, umask: u32) -> std::io::Result<(File, bool)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mode = u32::from(perm) & 0o777;
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(dest) {
        Ok(f) => Ok((f, u32::from(perm) & 0o7000 == 0 && mode & umask == 0)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok((File::create(dest)?, false)),
        Err(e) => Err(e),
    }
}

/// Which kernel copy still works between the image and the destination:
/// tried in order, a refusal (EXDEV between filesystems, EINVAL or
/// EOPNOTSUPP for files that cannot splice, ENOSYS) moves on to the next,
/// for every later file too. `EXT4_KERNEL_COPY=sendfile` or `=none` in the
/// environment starts further down (to compare, or to test every path).
struct KernelCopy {
    /// 0: copy_file_range, 1: sendfile, 2: none (read and write).
    level: std::sync::atomic::AtomicU8,
}

impl KernelCopy {
    fn new() -> Self {
        let level = match std::env::var("EXT4_KERNEL_COPY").as_deref() {
            Ok("sendfile") => 1,
            Ok("none") => 2,
            _ => 0,
        };
        Self { level: level.into() }
    }

    /// Copies `len` bytes at `src` of the image to `dst` of `f` and
    /// returns how many the kernel copied: all of them, or fewer where no
    /// kernel copy works here (the caller reads and writes the rest). The
    /// kernel copies only below the smaller of the two files' size limits:
    /// past them (an image over 16 TiB into ext4: `EOVERFLOW`, `EFBIG`) the
    /// rest of the run goes by read and write, and the next run tries again.
    #[cfg(target_os = "linux")]
    fn copy(&self, fs: &Filesystem, src: u64, f: &File, dst: u64, len: u64) -> std::io::Result<u64> {
        use rustix::io::Errno;
        use std::io::{Seek, SeekFrom};
        use std::sync::atomic::Ordering::Relaxed;
        let Some(image) = fs.host_file() else { return Ok(0) };
        let refused = |e: Errno| matches!(e, Errno::XDEV | Errno::INVAL | Errno::OPNOTSUPP | Errno::NOSYS | Errno::BADF);
        loop {
            let level = self.level.load(Relaxed);
            let mut s = src;
            let (r, left) = match level {
                0 => {
                    let mut d = dst;
                    pump(len, |want| rustix::fs::copy_file_range(image, Some(&mut s), f, Some(&mut d), want))
                }
                1 => {
                    let mut out = f;
                    out.seek(SeekFrom::Start(dst))?;
                    pump(len, |want| rustix::fs::sendfile(f, image, Some(&mut s), want))
                }
                _ => return Ok(0),
            };
            match r {
                Ok(()) => return Ok(len),
                Err(e) if refused(e) && left == len => {
                    let _ = self.level.compare_exchange(level, level + 1, Relaxed, Relaxed);
                }
                Err(e) if refused(e) || matches!(e, Errno::OVERFLOW | Errno::FBIG) => return Ok(len - left),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// No kernel copies here: every extent is read and written.
    #[cfg(not(target_os = "linux"))]
    fn copy(&self, _: &Filesystem, _: u64, _: &File, _: u64, _: u64) -> std::io::Result<u64> {
        Ok(0)
    }
}

/// Calls `step(at most this many bytes)` until `len` bytes are through (a
/// call that moves nothing is an error: the image ended); returns the
/// result and the bytes left.
#[cfg(target_os = "linux")]
fn pump(len: u64, mut step: impl FnMut(usize) -> rustix::io::Result<usize>) -> (rustix::io::Result<()>, u64) {
    let mut left = len;
    while left > 0 {
        match step(usize::try_from(left).unwrap_or(usize::MAX).min(1 << 30)) {
            Ok(0) => return (Err(rustix::io::Errno::INVAL), left),
            Ok(n) => left -= n as u64,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return (Err(e), left),
        }
    }
    (Ok(()), 0)
}

/// Owner, permissions, xattrs and times, in an order where each survives
/// the next; through `file` when the destination is open; no chmod when
/// `mode_set` (the file was created with its permissions). A step that
/// fails goes to `problems` and the others are still done.
fn attributes(fs: &Filesystem, item: &Item, root: bool, file: Option<&File>, mode_set: bool, problems: &Problems) {
    use std::os::unix::fs::PermissionsExt;
    let (md, dest) = (&item.md, &item.dest);
    let owner = || format!("chown {}", dest.display());
    if root {
        problems.note(match file {
            Some(f) => std::os::unix::fs::fchown(f, Some(md.uid), Some(md.gid)).context(owner),
            None => std::os::unix::fs::lchown(dest, Some(md.uid), Some(md.gid)).context(owner),
        });
    }
    if md.file_type != FileType::Symlink {
        let perm = std::fs::Permissions::from_mode(u32::from(md.permissions));
        let chmod = || format!("chmod {}", dest.display());
        problems.note(match file {
            Some(_) if mode_set => Ok(()),
            Some(f) => f.set_permissions(perm).context(chmod),
            None => std::fs::set_permissions(dest, perm).context(chmod),
        });
    }
    xattrs(fs, item, root, file, problems);
    let times = || format!("setting times of {}", dest.display());
    problems.note(match file {
        Some(f) => {
            let t = std::fs::FileTimes::new().set_accessed(system_time(md.atime)).set_modified(system_time(md.mtime));
            f.set_times(t).context(times)
        }
        None => {
            let at = FileTime::from_unix_time(md.atime.secs, md.atime.nsec);
            let mt = FileTime::from_unix_time(md.mtime.secs, md.mtime.nsec);
            filetime::set_symlink_file_times(dest, at, mt).context(times)
        }
    });
}

/// Whether this process may set xattr `name` on a host file of type `ft`:
/// `user.*` on regular files and directories, POSIX ACLs on anything but
/// symbolic links (the files are its own), and `trusted.*` and
/// `security.*` on anything as root.
fn settable(name: &[u8], ft: FileType, root: bool) -> bool {
    if name.starts_with(b"trusted.") || name.starts_with(b"security.") {
        return root;
    }
    if acl::is_acl_name(name) {
        return ft != FileType::Symlink;
    }
    name.starts_with(b"user.") && matches!(ft, FileType::Regular | FileType::Directory)
}

/// Sets the xattrs of `item` the process may set; ACLs go from the
/// on-disk form to the one `setxattr` takes.
fn xattrs(fs: &Filesystem, item: &Item, root: bool, file: Option<&File>, problems: &Problems) {
    let all = match fs.xattrs_ino(item.ino).context(|| format!("reading the xattrs of {}", item.shown)) {
        Ok(all) => all,
        Err(e) => return problems.note(Err(e)),
    };
    for x in all.into_iter().filter(|x| settable(&x.name, item.md.file_type, root)) {
        let name = OsStr::from_bytes(&x.name);
        let what = || format!("setting xattr {} of {}", name.to_string_lossy(), item.dest.display());
        let value = if acl::is_acl_name(&x.name) {
            match acl::parse_disk(&x.value) {
                Ok(entries) => acl::to_xattr(&entries),
                Err(e) => {
                    problems.note(Err(fail(format!("{}: {e}", what()))));
                    continue;
                }
            }
        } else {
            x.value
        };
        let r = match file {
            Some(f) => xattr::FileExt::set_xattr(f, name, &value),
            None => xattr::set(&item.dest, name, &value),
        };
        problems.note(r.context(what));
    }
}

/// A timestamp as the host's clock type (before 1970 included).
fn system_time(t: ext4_fs::Timestamp) -> std::time::SystemTime {
    let (epoch, nsec) = (std::time::UNIX_EPOCH, std::time::Duration::from_nanos(u64::from(t.nsec)));
    if t.secs >= 0 {
        epoch + std::time::Duration::from_secs(t.secs as u64) + nsec
    } else {
        epoch - std::time::Duration::from_secs(t.secs.unsigned_abs()) + nsec
    }
}

/// Creates a device node, FIFO or socket.
fn special(ft: FileType, md: &Metadata, dest: &Path) -> CliResult {
    use rustix::fs::{FileType as Ft, Mode, mknodat};
    let kind = match ft {
        FileType::CharDevice => Ft::CharacterDevice,
        FileType::BlockDevice => Ft::BlockDevice,
        FileType::Fifo => Ft::Fifo,
        _ => Ft::Socket,
    };
    let dev = rustix::fs::makedev(md.rdev.0, md.rdev.1);
    mknodat(rustix::fs::CWD, dest, kind, Mode::from_raw_mode(u32::from(md.permissions)), dev)
        .map_err(std::io::Error::from)
        .context(|| format!("creating {}", dest.display()))
}

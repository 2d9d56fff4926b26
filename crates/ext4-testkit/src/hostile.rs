//! Shared by the hostile-image tests (corpus, mutation, faults) and the fuzz
//! targets: a bounded walk of a whole filesystem, a fixed write workload, and
//! a runner that turns panics, hangs and oversized allocations into a report.
//!
//! Errors from the library are expected and counted; only panics, time-outs
//! and allocations beyond
//! [`ext4_bounded_alloc::ALLOC_LIMIT`] fail (in test binaries that install
//! [`ext4_bounded_alloc::BoundedAlloc`]).

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ext4_fs::{FileType, Filesystem, XattrMode};

/// Bounds of one walk, so that a hostile image cannot make the walker
/// itself read without end.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes read from one file at most.
    pub file_bytes: u64,
    /// Inodes visited at most.
    pub inodes: usize,
    /// Names looked up again (htree/linear lookup) per directory at most.
    pub lookups_per_dir: usize,
    /// Path-based calls (symlink following) per walk at most.
    pub path_calls: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { file_bytes: 1 << 20, inodes: 5000, lookups_per_dir: 64, path_calls: 200 }
    }
}

/// What a walk saw.
#[derive(Debug, Default, Clone)]
pub struct WalkStats {
    /// Directories listed.
    pub dirs: u64,
    /// Regular files read.
    pub files: u64,
    /// Symlinks read.
    pub symlinks: u64,
    /// Bytes of file data read.
    pub bytes: u64,
    /// Calls that returned an error.
    pub errors: u64,
    /// Calls made.
    pub calls: u64,
    /// Errors that reported corruption or a device failure (on a sound
    /// image, every error should be an ordinary one such as a dangling link).
    pub corrupt: u64,
    /// The first such error.
    pub first_corrupt: Option<String>,
}

impl WalkStats {
    fn note<T>(&mut self, r: ext4_fs::Result<T>) -> Option<T> {
        self.calls += 1;
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors += 1;
                if matches!(e, ext4_fs::Error::Corrupt(_) | ext4_fs::Error::Device(_)) {
                    self.corrupt += 1;
                    self.first_corrupt.get_or_insert_with(|| e.to_string());
                }
                None
            }
        }
    }
}

/// Walks everything reachable from the root: every directory listed, every
/// inode stat'ed, every name looked up again, every file read (up to
/// `file_bytes`), every symlink read and followed, every xattr listed.
/// Directory loops and shared inodes are visited once.
pub fn walk(fs: &Filesystem, lim: Limits) -> WalkStats {
    let mut st = WalkStats::default();
    let root = ext4_fs::ondisk::ino::ROOT;
    let _ = fs.statfs();
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([(root, b"/".to_vec())]);
    seen.insert(root);
    let mut path_calls = 0;
    while let Some((ino, path)) = queue.pop_front() {
        let Some(meta) = st.note(fs.stat(ino)) else { continue };
        let _ = st.note(fs.xattrs_ino(ino));
        if path_calls < lim.path_calls {
            path_calls += 1;
            let _ = st.note(fs.metadata(&path));
            let _ = st.note(fs.symlink_metadata(&path));
        }
        match meta.file_type {
            FileType::Directory => {
                st.dirs += 1;
                let Some(entries) = st.note(fs.dir_entries(ino)) else { continue };
                for (i, e) in entries.iter().enumerate() {
                    if i < lim.lookups_per_dir {
                        let _ = st.note(fs.lookup_in(ino, &e.name));
                    }
                    if e.name == b"." || e.name == b".." {
                        continue;
                    }
                    if seen.len() < lim.inodes && seen.insert(e.ino) {
                        let mut p = path.clone();
                        if p.len() > 1 {
                            p.push(b'/');
                        }
                        p.extend_from_slice(&e.name);
                        queue.push_back((e.ino, p));
                    }
                }
                let _ = st.note(fs.read_dir(&path));
            }
            FileType::Regular => {
                st.files += 1;
                read_file(fs, ino, meta.size.min(lim.file_bytes), &mut st);
            }
            FileType::Symlink => {
                st.symlinks += 1;
                let _ = st.note(fs.read_link_ino(ino));
                if path_calls < lim.path_calls {
                    path_calls += 1;
                    let _ = st.note(fs.read_link(&path));
                    let _ = st.note(fs.lookup(&path));
                }
            }
            _ => {}
        }
    }
    st
}

/// Reads `limit` bytes of inode `ino` in chunks (never one buffer the size
/// of the file; a small file gets a small buffer, an empty one a read of
/// nothing: a 64 KiB buffer zeroed for each of a hundred empty files was a
/// fifth of a fuzz run).
fn read_file(fs: &Filesystem, ino: u32, limit: u64, st: &mut WalkStats) {
    let mut buf = vec![0u8; limit.clamp(1, 64 * 1024) as usize];
    let mut off = 0u64;
    while off < limit {
        let want = (limit - off).min(buf.len() as u64) as usize;
        match st.note(fs.read_at(ino, off, &mut buf[..want])) {
            Some(0) | None => break,
            Some(n) => {
                st.bytes += n as u64;
                off += n as u64;
            }
        }
    }
}

/// A fixed write workload on an opened filesystem: create, write, mkdir,
/// symlink, xattrs, rename, truncate, unlink of an existing file, rmdir,
/// then sync. Returns (calls, errors).
pub fn write_workload(fs: &mut Filesystem) -> (u64, u64) {
    let mut st = WalkStats::default();
    let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 + 3) as u8).collect();
    let f = st.note(fs.create("/robust-file", 0o644));
    if let Some(f) = f {
        let _ = st.note(fs.write_at(f, 0, &data));
        let _ = st.note(fs.write_at(f, 100_000, &data[..3000]));
        let _ = st.note(fs.set_xattr(f, b"user.robust", b"value", XattrMode::Any));
        let _ = st.note(fs.set_xattr(f, b"user.big", &data[..600], XattrMode::Any));
        let _ = st.note(fs.truncate(f, 5000));
    }
    let _ = st.note(fs.mkdir("/robust-dir", 0o755));
    for i in 0..12 {
        let _ = st.note(fs.create(format!("/robust-dir/entry-with-a-long-name-{i:03}"), 0o600));
    }
    let _ = st.note(fs.symlink("robust-file", "/robust-dir/link"));
    let _ = st.note(fs.rename("/robust-file", "/robust-dir/moved"));
    let _ = st.note(fs.write_file("/robust-dir/small", b"hello"));
    // Damage elsewhere in the tree is reached by removing what is already there.
    if let Some(entries) = st.note(fs.read_dir("/")) {
        let victim = entries.iter().find(|e| e.file_type == Some(FileType::Regular) && !e.name.starts_with(b"robust"));
        if let Some(v) = victim {
            let mut p = b"/".to_vec();
            p.extend_from_slice(&v.name);
            let _ = st.note(fs.remove_file(&p));
        }
        let dir = entries.iter().find(|e| e.file_type == Some(FileType::Directory) && !e.name.starts_with(b"robust"));
        if let Some(d) = dir {
            let mut p = b"/".to_vec();
            p.extend_from_slice(&d.name);
            let mut q = p.clone();
            q.extend_from_slice(b"/robust-new");
            let _ = st.note(fs.create(&q, 0o644));
            let _ = st.note(fs.remove_file(&q));
            let _ = st.note(fs.remove_dir(&p));
        }
    }
    for i in 0..12 {
        let _ = st.note(fs.remove_file(format!("/robust-dir/entry-with-a-long-name-{i:03}")));
    }
    let _ = st.note(fs.remove_file("/robust-dir/link"));
    let _ = st.note(fs.remove_file("/robust-dir/moved"));
    let _ = st.note(fs.remove_file("/robust-dir/small"));
    let _ = st.note(fs.remove_dir("/robust-dir"));
    let _ = st.note(fs.sync());
    (st.calls, st.errors)
}

/// How one case ended.
#[derive(Debug)]
pub enum Outcome<T> {
    /// It returned.
    Done(T),
    /// It panicked: the panic message with its location.
    Panicked(String),
    /// It ran past its time budget (the thread is left running).
    TimedOut,
}

static PANICS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Installs (once) a panic hook that records each panic's message and
/// location under the panicking thread's name, then defers to the default
/// hook (not for case threads when `ROBUST_QUIET_PANICS` is set: the
/// summary lists them).
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let name = std::thread::current().name().unwrap_or("?").to_string();
            PANICS.lock().unwrap_or_else(|e| e.into_inner()).push((name, info.to_string()));
            let in_case = ext4_bounded_alloc::in_case();
            if !in_case || std::env::var_os("ROBUST_QUIET_PANICS").is_none() {
                default(info);
            }
        }));
    });
}

/// Runs `f` on a thread named `name` with `budget`: a panic or a time-out
/// becomes an [`Outcome`] instead of failing the caller.
pub fn run_case<T: Send + 'static>(name: &str, budget: Duration, f: impl FnOnce() -> T + Send + 'static) -> Outcome<T> {
    install_panic_hook();
    let (tx, rx) = mpsc::channel();
    let tname = name.to_string();
    let h = std::thread::Builder::new()
        .name(tname.clone())
        .stack_size(16 << 20)
        .spawn(move || {
            ext4_bounded_alloc::set_case_name(&tname);
            let _ = tx.send(f());
        })
        .expect("spawn a case thread");
    match rx.recv_timeout(budget) {
        Ok(v) => {
            let _ = h.join();
            Outcome::Done(v)
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let _ = h.join();
            let msgs = PANICS.lock().unwrap_or_else(|e| e.into_inner());
            let msg = msgs.iter().rev().find(|(n, _)| n == name).map(|(_, m)| m.clone()).unwrap_or_else(|| "panicked".into());
            Outcome::Panicked(msg)
        }
        Err(mpsc::RecvTimeoutError::Timeout) => Outcome::TimedOut,
    }
}

/// Time since `t` in milliseconds, for summaries.
pub fn ms(t: Instant) -> u128 {
    t.elapsed().as_millis()
}

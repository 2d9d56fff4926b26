//! One filesystem operation of an aging run, as both sides understand it:
//! paths relative to the filesystem root, data and xattr values as seeds.

use std::fmt;

use crate::rng::stream_bytes;

/// How a rename treats an existing target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenameKind {
    /// POSIX `rename`: replace the target.
    Replace,
    /// `RENAME_NOREPLACE`.
    NoReplace,
    /// `RENAME_EXCHANGE`.
    Exchange,
}

/// Special files `mknod` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A FIFO.
    Fifo,
    /// A character device.
    Char,
    /// A block device.
    Block,
    /// A Unix socket's inode.
    Socket,
}

/// A timestamp: seconds since the epoch and nanoseconds.
pub type Time = (i64, u32);

/// One operation. File contents are [`stream_bytes`] of `seed` at the
/// written offsets; xattr values are [`xattr_value`] of `seed`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs, reason = "the fields are the system call's arguments, named as in its variant's doc")]
pub enum Op {
    /// `mkdir(path, perm)`.
    Mkdir { path: String, perm: u16 },
    /// `open(path, O_CREAT|O_EXCL, perm)` and `len` bytes written.
    Create { path: String, perm: u16, len: u64, seed: u64 },
    /// `open(path, O_CREAT|O_TRUNC, 0666)` and `len` bytes written (`ext4 write`, a shell redirection).
    Replace { path: String, len: u64, seed: u64 },
    /// `pwrite` of `len` bytes at `offset`; `sync` adds an fsync (the kernel
    /// allocates at once, so interleaved appends fragment).
    Write { path: String, offset: u64, len: u64, seed: u64, sync: bool },
    /// `truncate(path, size)`.
    Truncate { path: String, size: u64 },
    /// `fallocate` (mode 0 or `FALLOC_FL_KEEP_SIZE`): unwritten extents.
    Fallocate { path: String, offset: u64, len: u64, keep_size: bool },
    /// `fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)`.
    Punch { path: String, offset: u64, len: u64 },
    /// `unlink(path)`.
    Unlink { path: String },
    /// `rmdir(path)`.
    Rmdir { path: String },
    /// `rm -r path`: a directory and everything below it, deepest first.
    RemoveTree { path: String },
    /// `mkdir -p -m perm path`: missing parents with mode 0777 (the umask
    /// is 0), the last one with `perm`.
    MkdirAll { path: String, perm: u16 },
    /// `renameat2(from, to, flags)`.
    Rename { from: String, to: String, kind: RenameKind },
    /// `link(from, to)`.
    Link { from: String, to: String },
    /// `symlink(target, path)`.
    Symlink { target: String, path: String },
    /// `mknod(path, kind | perm, makedev(major, minor))`.
    Mknod { path: String, kind: NodeKind, perm: u16, major: u32, minor: u32 },
    /// `lsetxattr(path, name, value)` with [`xattr_value`]`(seed, len)`.
    SetXattr { path: String, name: String, len: usize, seed: u64 },
    /// `lremovexattr(path, name)`.
    RemoveXattr { path: String, name: String },
    /// `chmod(path, perm)`.
    Chmod { path: String, perm: u16 },
    /// `lchown(path, uid, gid)`.
    Chown { path: String, uid: u32, gid: u32 },
    /// `utimensat(path, [atime, mtime], AT_SYMLINK_NOFOLLOW)`.
    SetTimes { path: String, atime: Time, mtime: Time },
}

/// The value of an xattr written with `seed` and `len` (equal arguments,
/// equal values: the kernel shares equal sets in one block); letters and
/// digits, so that a command line can carry it.
pub fn xattr_value(seed: u64, len: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    stream_bytes(seed ^ 0x5eed_a77e, 0, len).into_iter().map(|b| ALPHABET[usize::from(b) % ALPHABET.len()]).collect()
}

/// Splits `a/b/c` into `("a/b", "c")` (`("", "c")` at the top).
pub fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Mkdir { path, perm } => write!(f, "mkdir {path} {perm:o}"),
            Op::Create { path, perm, len, seed } => write!(f, "create {path} {perm:o} len={len} seed={seed:#x}"),
            Op::Replace { path, len, seed } => write!(f, "replace {path} len={len} seed={seed:#x}"),
            Op::Write { path, offset, len, seed, sync } => {
                write!(f, "write {path} @{offset} len={len} seed={seed:#x}{}", if *sync { " +fsync" } else { "" })
            }
            Op::Truncate { path, size } => write!(f, "truncate {path} {size}"),
            Op::Fallocate { path, offset, len, keep_size } => {
                write!(f, "fallocate {path} @{offset} len={len}{}", if *keep_size { " keep_size" } else { "" })
            }
            Op::Punch { path, offset, len } => write!(f, "punch {path} @{offset} len={len}"),
            Op::Unlink { path } => write!(f, "unlink {path}"),
            Op::Rmdir { path } => write!(f, "rmdir {path}"),
            Op::RemoveTree { path } => write!(f, "rm -r {path}"),
            Op::MkdirAll { path, perm } => write!(f, "mkdir -p {path} {perm:o}"),
            Op::Rename { from, to, kind } => write!(f, "rename({kind:?}) {from} {to}"),
            Op::Link { from, to } => write!(f, "link {from} {to}"),
            Op::Symlink { target, path } => write!(f, "symlink {path} -> {} bytes", target.len()),
            Op::Mknod { path, kind, perm, major, minor } => write!(f, "mknod {path} {kind:?} {perm:o} {major}:{minor}"),
            Op::SetXattr { path, name, len, seed } => write!(f, "setxattr {path} {name} len={len} seed={seed:#x}"),
            Op::RemoveXattr { path, name } => write!(f, "removexattr {path} {name}"),
            Op::Chmod { path, perm } => write!(f, "chmod {path} {perm:o}"),
            Op::Chown { path, uid, gid } => write!(f, "chown {path} {uid}:{gid}"),
            Op::SetTimes { path, atime, mtime } => write!(f, "settimes {path} atime={atime:?} mtime={mtime:?}"),
        }
    }
}

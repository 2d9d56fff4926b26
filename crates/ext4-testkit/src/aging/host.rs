//! Applies an [`Op`] to a mounted filesystem through system calls: the
//! kernel's side of an aging run (a loop mount), or any other mount.

use std::fs::OpenOptions;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FallocateFlags, Mode, RenameFlags, Timespec, Timestamps};

use super::ops::{NodeKind, Op, RenameKind, Time, xattr_value};
use crate::rng::stream_bytes;

/// The errno of a failed operation.
pub type Errno = i32;

fn io(e: std::io::Error) -> Errno {
    e.raw_os_error().unwrap_or(rustix::io::Errno::IO.raw_os_error())
}

fn sys(e: rustix::io::Errno) -> Errno {
    e.raw_os_error()
}

fn timespec(t: Time) -> Timespec {
    Timespec { tv_sec: t.0, tv_nsec: i64::from(t.1) }
}

/// Applies `op` under `root` (the mount point). The caller sets the umask
/// to 0 so that modes arrive as given.
pub fn apply(root: &Path, op: &Op) -> Result<(), Errno> {
    let at = |p: &str| -> PathBuf { root.join(p) };
    match op {
        Op::Mkdir { path, perm } => std::fs::DirBuilder::new().mode(u32::from(*perm)).create(at(path)).map_err(io),
        Op::Create { path, perm, len, seed } => {
            let f = OpenOptions::new().write(true).create_new(true).mode(u32::from(*perm)).open(at(path)).map_err(io)?;
            write_at(&f, 0, *len, *seed)
        }
        Op::Replace { path, len, seed } => {
            let f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o666).open(at(path)).map_err(io)?;
            write_at(&f, 0, *len, *seed)
        }
        Op::Write { path, offset, len, seed, sync } => {
            let f = OpenOptions::new().write(true).open(at(path)).map_err(io)?;
            write_at(&f, *offset, *len, *seed)?;
            if *sync { f.sync_data().map_err(io) } else { Ok(()) }
        }
        Op::Truncate { path, size } => OpenOptions::new().write(true).open(at(path)).and_then(|f| f.set_len(*size)).map_err(io),
        Op::Fallocate { path, offset, len, keep_size } => {
            let flags = if *keep_size { FallocateFlags::KEEP_SIZE } else { FallocateFlags::empty() };
            fallocate(&at(path), flags, *offset, *len)
        }
        Op::Punch { path, offset, len } => fallocate(&at(path), FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE, *offset, *len),
        Op::Unlink { path } => std::fs::remove_file(at(path)).map_err(io),
        Op::Rmdir { path } => std::fs::remove_dir(at(path)).map_err(io),
        Op::RemoveTree { path } => std::fs::remove_dir_all(at(path)).map_err(io),
        Op::MkdirAll { path, perm } => {
            let p = at(path);
            if let Some(parent) = p.parent() {
                std::fs::DirBuilder::new().recursive(true).mode(0o777).create(parent).map_err(io)?;
            }
            match std::fs::DirBuilder::new().mode(u32::from(*perm)).create(&p) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && p.is_dir() => Ok(()),
                r => r.map_err(io),
            }
        }
        Op::Rename { from, to, kind } => {
            let flags = match kind {
                RenameKind::Replace => RenameFlags::empty(),
                RenameKind::NoReplace => RenameFlags::NOREPLACE,
                RenameKind::Exchange => RenameFlags::EXCHANGE,
            };
            rustix::fs::renameat_with(CWD, at(from), CWD, at(to), flags).map_err(sys)
        }
        Op::Link { from, to } => std::fs::hard_link(at(from), at(to)).map_err(io),
        Op::Symlink { target, path } => std::os::unix::fs::symlink(target, at(path)).map_err(io),
        Op::Mknod { path, kind, perm, major, minor } => {
            let ft = match kind {
                NodeKind::Fifo => rustix::fs::FileType::Fifo,
                NodeKind::Char => rustix::fs::FileType::CharacterDevice,
                NodeKind::Block => rustix::fs::FileType::BlockDevice,
                NodeKind::Socket => rustix::fs::FileType::Socket,
            };
            let dev = rustix::fs::makedev(*major, *minor);
            rustix::fs::mknodat(CWD, at(path), ft, Mode::from_raw_mode(u32::from(*perm)), dev).map_err(sys)
        }
        Op::SetXattr { path, name, len, seed } => xattr::set(at(path), name, &xattr_value(*seed, *len)).map_err(io),
        Op::RemoveXattr { path, name } => xattr::remove(at(path), name).map_err(io),
        Op::Chmod { path, perm } => std::fs::set_permissions(at(path), std::fs::Permissions::from_mode(u32::from(*perm))).map_err(io),
        Op::Chown { path, uid, gid } => std::os::unix::fs::lchown(at(path), Some(*uid), Some(*gid)).map_err(io),
        Op::SetTimes { path, atime, mtime } => {
            let ts = Timestamps { last_access: timespec(*atime), last_modification: timespec(*mtime) };
            rustix::fs::utimensat(CWD, at(path), &ts, AtFlags::SYMLINK_NOFOLLOW).map_err(sys)
        }
    }
}

fn write_at(f: &std::fs::File, offset: u64, len: u64, seed: u64) -> Result<(), Errno> {
    use std::os::unix::fs::FileExt;
    const CHUNK: u64 = 1 << 20;
    let mut done = 0;
    while done < len {
        let n = CHUNK.min(len - done);
        f.write_all_at(&stream_bytes(seed, offset + done, n as usize), offset + done).map_err(io)?;
        done += n;
    }
    Ok(())
}

fn fallocate(path: &Path, flags: FallocateFlags, offset: u64, len: u64) -> Result<(), Errno> {
    let f = OpenOptions::new().write(true).open(path).map_err(io)?;
    rustix::fs::fallocate(&f, flags, offset, len).map_err(sys)
}

//! The FUSE operations, each mapped onto the facade's inode-based API.

use std::ffi::OsStr;
use std::ops::ControlFlow;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ext4_fs::ondisk::acl;
use ext4_fs::{Caller, Error, FileType, Filesystem, Metadata, NewNode, RenameMode, SetAttr, Timestamp, XattrMode};
use fuser::{
    Errno, FileAttr, FileHandle, Generation, INodeNo, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use crate::Ext4Fuse;

/// How long the kernel may cache attributes and entries (we are its only writer).
const TTL: Duration = Duration::from_secs(1);
const ROOT: u32 = ext4_fs::ondisk::ino::ROOT;

fn to_ext4(ino: INodeNo) -> u32 {
    if ino.0 == 1 { ROOT } else { ino.0 as u32 }
}

fn to_fuse(ino: u32) -> INodeNo {
    INodeNo(if ino == ROOT { 1 } else { u64::from(ino) })
}

fn errno(e: &Error) -> Errno {
    Errno::from_i32(e.errno())
}

fn time(t: Timestamp) -> SystemTime {
    if t.secs >= 0 {
        UNIX_EPOCH + Duration::new(t.secs as u64, t.nsec)
    } else {
        UNIX_EPOCH - Duration::from_secs(t.secs.unsigned_abs()) + Duration::from_nanos(u64::from(t.nsec))
    }
}

/// The time a SETATTR carried. fuser 0.18 turns the request's `(secs,
/// nsec)` with `secs < 0` into `UNIX_EPOCH - (|secs| s + nsec ns)` (its
/// `system_time_from_time`) instead of `secs + nsec / 1e9`, so `touch -d
/// @-1.5` (`(-2, 500000000)`) arrives as -2.5 s: undo that mapping here.
fn setattr_time(t: SystemTime) -> Timestamp {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Timestamp { secs: d.as_secs() as i64, nsec: d.subsec_nanos() },
        Err(e) => Timestamp { secs: -(e.duration().as_secs() as i64), nsec: e.duration().subsec_nanos() },
    }
}

fn kind(ft: FileType) -> fuser::FileType {
    match ft {
        FileType::Regular => fuser::FileType::RegularFile,
        FileType::Directory => fuser::FileType::Directory,
        FileType::Symlink => fuser::FileType::Symlink,
        FileType::CharDevice => fuser::FileType::CharDevice,
        FileType::BlockDevice => fuser::FileType::BlockDevice,
        FileType::Fifo => fuser::FileType::NamedPipe,
        FileType::Socket => fuser::FileType::Socket,
    }
}

fn attr(m: &Metadata) -> FileAttr {
    let (ma, mi) = m.rdev;
    FileAttr {
        ino: to_fuse(m.ino),
        size: m.size,
        blocks: m.blocks,
        atime: time(m.atime),
        mtime: time(m.mtime),
        ctime: time(m.ctime),
        crtime: time(m.crtime.unwrap_or(m.ctime)),
        kind: kind(m.file_type),
        perm: m.permissions,
        nlink: m.nlink,
        uid: m.uid,
        gid: m.gid,
        rdev: (ma << 8) | (mi & 0xff) | ((mi & !0xff) << 12),
        blksize: m.block_size,
        flags: 0,
    }
}

/// The file type of a `mode` from the kernel.
fn mode_kind(mode: u32) -> Option<FileType> {
    FileType::from_mode((mode & 0o170000) as u16)
}

impl Ext4Fuse {
    /// Runs `f` on the filesystem (under the lock).
    fn with<R>(&self, f: impl FnOnce(&mut Filesystem) -> Result<R, Error>) -> Result<R, Errno> {
        let mut guard = self.fs.lock().unwrap_or_else(|e| e.into_inner());
        let fs = guard.as_mut().ok_or(Errno::EIO)?;
        f(fs).map_err(|e| errno(&e))
    }

    fn writable(&self) -> Result<(), Errno> {
        if self.read_only { Err(Errno::EROFS) } else { Ok(()) }
    }

    /// Runs a change on the filesystem (under the lock) with the
    /// credentials of the process that asked for it.
    fn change<R>(&self, req: &Request, f: impl FnOnce(&mut Filesystem) -> Result<R, Error>) -> Result<R, Errno> {
        self.change_as(req, false, f)
    }

    /// [`Self::change`]; `groups_matter`: the request's supplementary
    /// groups may decide the outcome besides the reserved-blocks group.
    fn change_as<R>(&self, req: &Request, groups_matter: bool, f: impl FnOnce(&mut Filesystem) -> Result<R, Error>) -> Result<R, Errno> {
        self.writable()?;
        self.with(|fs| {
            let resgid = fs.superblock().s_def_resgid.get() != 0;
            fs.set_caller(caller(req, groups_matter || resgid));
            f(fs)
        })
    }

    fn entry(fs: &Filesystem, ino: u32) -> Result<(FileAttr, Generation), Error> {
        let m = fs.stat(ino)?;
        Ok((attr(&m), Generation(u64::from(m.generation))))
    }

    /// The entry of `ino` for a reply that hands the inode to the kernel
    /// (one lookup more for it): pinned until the kernel's FORGET.
    fn handed_out(fs: &mut Filesystem, ino: u32) -> Result<(FileAttr, Generation), Error> {
        let e = Self::entry(fs, ino)?;
        fs.pin(ino);
        Ok(e)
    }

    /// Creates a node owned by the caller, as the library decides owners
    /// and modes (the kernel has applied the umask and stripped setgid
    /// where the caller may not have it already; the supplementary groups
    /// only matter to a setgid mode).
    fn make(&self, req: &Request, parent: INodeNo, name: &OsStr, spec: Spec<'_>) -> Result<(FileAttr, Generation, u32), Errno> {
        let Spec { ft, mode, rdev, target } = spec;
        self.change_as(req, mode & 0o2000 != 0, |fs| {
            let mut node = NewNode::new(ft, (mode & 0o7777) as u16);
            node.rdev = ((rdev >> 8) & 0xfff, (rdev & 0xff) | ((rdev >> 12) & 0xfff00));
            let ino = fs.create_node(to_ext4(parent), name.as_bytes(), node, target)?;
            let (a, g) = Self::handed_out(fs, ino)?;
            Ok((a, g, ino))
        })
    }
}

/// The credentials of the process behind a request: fsuid and fsgid
/// (privileged as root), no umask (the kernel has applied it), and its
/// supplementary groups from `/proc` when `groups` says they can matter
/// (reading them costs a file read per request).
fn caller(req: &Request, groups: bool) -> Caller {
    let mut c = Caller::user(req.uid(), req.gid());
    if groups {
        c.groups = proc_groups(req.pid());
    }
    c
}

/// The supplementary groups of process `pid` (none if it is gone).
fn proc_groups(pid: u32) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find_map(|l| l.strip_prefix("Groups:")).unwrap_or("");
    line.split_whitespace().filter_map(|g| g.parse().ok()).collect()
}

/// Sets a POSIX ACL given in the user-space form, as the kernel's
/// `ext4_set_acl` does: stored in the on-disk form; an access ACL also sets
/// the permission bits, and one that says no more than they do is not
/// stored at all.
fn set_acl(fs: &mut Filesystem, ino: u32, name: &[u8], value: &[u8], mode: XattrMode) -> Result<(), Error> {
    let entries = acl::parse_xattr(value).map_err(|_| Error::InvalidArgument("malformed ACL".into()))?;
    if name == b"system.posix_acl_access" {
        let perm_of = |tag| entries.iter().find(|e| e.tag == tag).map(|e| e.perm & 7);
        let (Some(u), Some(o)) = (perm_of(acl::USER_OBJ), perm_of(acl::OTHER)) else {
            return Err(Error::InvalidArgument("ACL without owner or other entry".into()));
        };
        let g = perm_of(acl::MASK).or(perm_of(acl::GROUP_OBJ)).unwrap_or(0);
        let old = fs.stat(ino)?.permissions;
        let perm = (old & 0o7000) | (u << 6) | (g << 3) | o;
        // As ext4_set_acl: the inode changes (and its ctime) only if the mode does.
        if perm != old {
            fs.set_attr(ino, SetAttr { perm: Some(perm), ..SetAttr::default() })?;
        }
        if entries.len() <= 3 {
            return match fs.remove_xattr(ino, name) {
                Ok(()) | Err(Error::NoAttribute) => Ok(()),
                Err(e) => Err(e),
            };
        }
    }
    fs.set_xattr(ino, name, &acl::to_disk(&entries), mode)
}

/// What to create: type, mode bits, device number, symlink target.
struct Spec<'a> {
    ft: FileType,
    mode: u32,
    rdev: u32,
    target: Option<&'a [u8]>,
}

impl fuser::Filesystem for Ext4Fuse {
    fn destroy(&mut self) {
        let fs = self.fs.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(fs) = fs {
            if let Err(e) = fs.close() {
                eprintln!("ext4: closing the filesystem failed: {e}");
            }
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = self.with(|fs| match fs.lookup_in(to_ext4(parent), name.as_bytes())? {
            Some(ino) => Self::handed_out(fs, ino).map(Some),
            None => Ok(None),
        });
        match r {
            Ok(Some((a, g))) => reply.entry(&TTL, &a, g),
            Ok(None) => reply.error(Errno::ENOENT),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.with(|fs| Self::entry(fs, to_ext4(ino))) {
            Ok((a, _)) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let r = self.change(req, |fs| {
            let ino = to_ext4(ino);
            if let Some(s) = size {
                fs.truncate(ino, s)?;
            }
            let now = ext4_fs::now();
            let t = |x: Option<TimeOrNow>| {
                x.map(|v| match v {
                    TimeOrNow::Now => now,
                    TimeOrNow::SpecificTime(s) => setattr_time(s),
                })
            };
            let a = SetAttr {
                perm: mode.map(|m| (m & 0o7777) as u16),
                uid,
                gid,
                atime: t(atime),
                mtime: t(mtime),
                ctime: ctime.map(setattr_time),
                crtime: None,
            };
            if a != SetAttr::default() {
                fs.set_attr(ino, a)?;
            }
            Self::entry(fs, ino)
        });
        match r {
            Ok((a, _)) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.with(|fs| fs.read_link_ino(to_ext4(ino))) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, _umask: u32, rdev: u32, reply: ReplyEntry) {
        let Some(ft) = mode_kind(mode) else {
            return reply.error(Errno::EINVAL);
        };
        if ft == FileType::Directory || ft == FileType::Symlink {
            return reply.error(Errno::EINVAL);
        }
        match self.make(req, parent, name, Spec { ft, mode, rdev, target: None }) {
            Ok((a, g, _)) => reply.entry(&TTL, &a, g),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, _umask: u32, reply: ReplyEntry) {
        match self.make(req, parent, name, Spec { ft: FileType::Directory, mode, rdev: 0, target: None }) {
            Ok((a, g, _)) => reply.entry(&TTL, &a, g),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self.change(req, |fs| fs.unlink_in(to_ext4(parent), name.as_bytes()));
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self.change(req, |fs| fs.rmdir_in(to_ext4(parent), name.as_bytes()));
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(&self, req: &Request, parent: INodeNo, link_name: &OsStr, target: &Path, reply: ReplyEntry) {
        match self.make(
            req,
            parent,
            link_name,
            Spec { ft: FileType::Symlink, mode: 0o777, rdev: 0, target: Some(target.as_os_str().as_bytes()) },
        ) {
            Ok((a, g, _)) => reply.entry(&TTL, &a, g),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let mode = if flags.contains(RenameFlags::RENAME_EXCHANGE) {
            RenameMode::Exchange
        } else if flags.contains(RenameFlags::RENAME_NOREPLACE) {
            RenameMode::NoReplace
        } else if flags.is_empty() {
            RenameMode::Replace
        } else {
            return reply.error(Errno::EINVAL);
        };
        let r = self.change(req, |fs| fs.rename_in(to_ext4(parent), name.as_bytes(), to_ext4(newparent), newname.as_bytes(), mode));
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn link(&self, req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        let r = self.change(req, |fs| {
            fs.link_in(to_ext4(ino), to_ext4(newparent), newname.as_bytes())?;
            Self::handed_out(fs, to_ext4(ino))
        });
        match r {
            Ok((a, g)) => reply.entry(&TTL, &a, g),
            Err(e) => reply.error(e),
        }
    }

    /// ENOSYS: the kernel then opens files without asking (`no_open`) and
    /// sends no RELEASE at their close, one request less per file. Nothing is
    /// lost: an inode's lifetime is its lookup count (see `forget`), READ and
    /// WRITE need no handle, and a read-only mount is refused writes by the
    /// VFS (`MountOption::RO`).
    fn open(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.error(Errno::ENOSYS);
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        let r = self.with(|fs| {
            let mut buf = vec![0u8; size as usize];
            let n = fs.read_at(to_ext4(ino), offset, &mut buf)?;
            buf.truncate(n);
            Ok(buf)
        });
        match r {
            Ok(b) => reply.data(&b),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        let r = self.change(req, |fs| fs.write_at(to_ext4(ino), offset, data));
        match r {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(e),
        }
    }

    /// Nothing to do at a close: every WRITE is in the image (or its
    /// journal) before its reply, and locks are the kernel's. ENOSYS makes
    /// the kernel stop sending FLUSH at all (`no_flush`), which takes one
    /// request off every close (an eighth of a `cp -a` of many small files).
    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock: fuser::LockOwner, reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS);
    }

    /// The kernel forgets `nlookup` of the lookups it was given (LOOKUP,
    /// MKNOD, MKDIR, SYMLINK, LINK replies; fuser's BATCH_FORGET comes here
    /// once per inode): an inode it forgets entirely
    /// and that has no link left (unlinked while open or cached) is freed.
    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let mut guard = self.fs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Err(e)) = guard.as_mut().map(|fs| fs.release_n(to_ext4(ino), nlookup)) {
            eprintln!("ext4: freeing unlinked inode {} failed: {e}", to_ext4(ino));
        }
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        match self.with(|fs| fs.sync()) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        // Each entry's cookie is its on-disk position + 1: positions only grow
        // along a directory, so a listing resumes after the last entry
        // returned, reading from its block on (a whole listing is linear in
        // the directory's size, not quadratic).
        let r = self.with(|fs| {
            fs.dir_entries_from(to_ext4(ino), offset, |e| {
                let ft = e.file_type.map_or(fuser::FileType::RegularFile, kind);
                if reply.add(to_fuse(e.ino), e.pos + 1, ft, OsStr::from_bytes(&e.name)) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        match self.with(|fs| fs.sync()) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.with(|fs| Ok(fs.statfs())) {
            Ok(s) => {
                reply.statfs(s.blocks, s.free_blocks, s.available_blocks, s.inodes, s.free_inodes, s.block_size, s.name_max, s.block_size)
            }
            Err(e) => reply.error(e),
        }
    }

    fn setxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, value: &[u8], flags: i32, _position: u32, reply: ReplyEmpty) {
        let mode = match flags {
            0 => XattrMode::Any,
            1 => XattrMode::Create,
            2 => XattrMode::Replace,
            _ => return reply.error(Errno::EINVAL),
        };
        let name = name.as_bytes();
        let r = self.change(req, |fs| {
            if acl::is_acl_name(name) {
                set_acl(fs, to_ext4(ino), name, value, mode)
            } else {
                fs.set_xattr(to_ext4(ino), name, value, mode)
            }
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let name = name.as_bytes();
        let value = self.with(|fs| fs.get_xattr(to_ext4(ino), name)).and_then(|v| {
            // ACLs are stored in the kernel's on-disk form; user space sees the xattr form.
            if acl::is_acl_name(name) { acl::parse_disk(&v).map(|e| acl::to_xattr(&e)).map_err(|_| Errno::EIO) } else { Ok(v) }
        });
        match value {
            Ok(v) if size == 0 => reply.size(v.len() as u32),
            Ok(v) if v.len() > size as usize => reply.error(Errno::ERANGE),
            Ok(v) => reply.data(&v),
            Err(e) => reply.error(e),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let r = self.with(|fs| fs.xattrs_ino(to_ext4(ino)));
        match r {
            Ok(list) => {
                let mut names = Vec::new();
                for x in list {
                    names.extend_from_slice(&x.name);
                    names.push(0);
                }
                if size == 0 {
                    reply.size(names.len() as u32);
                } else if names.len() > size as usize {
                    reply.error(Errno::ERANGE);
                } else {
                    reply.data(&names);
                }
            }
            Err(e) => reply.error(e),
        }
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self.change(req, |fs| fs.remove_xattr(to_ext4(ino), name.as_bytes()));
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    /// ENOSYS: the kernel then creates regular files with MKNOD and opens
    /// them without OPEN (see `open`), which saves the RELEASE a CREATE's
    /// open file handle would cost at its close.
    fn create(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, _mode: u32, _umask: u32, _flags: i32, reply: ReplyCreate) {
        reply.error(Errno::ENOSYS);
    }

    fn fallocate(&self, req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, length: u64, mode: i32, reply: ReplyEmpty) {
        const KEEP_SIZE: i32 = 1;
        const PUNCH_HOLE: i32 = 2;
        let r = self.change(req, |fs| match mode {
            0 => fs.fallocate(to_ext4(ino), offset, length, false),
            KEEP_SIZE => fs.fallocate(to_ext4(ino), offset, length, true),
            m if m == PUNCH_HOLE | KEEP_SIZE => fs.punch_hole(to_ext4(ino), offset, length),
            _ => Err(Error::Unsupported("fallocate mode".into())),
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What fuser 0.18 hands over for a request's `(secs, nsec)`.
    fn as_fuser_builds_it(secs: i64, nsec: u32) -> SystemTime {
        if secs >= 0 { UNIX_EPOCH + Duration::new(secs as u64, nsec) } else { UNIX_EPOCH - Duration::new(secs.unsigned_abs(), nsec) }
    }

    #[test]
    fn setattr_times_come_back_as_the_request_sent_them() {
        for (secs, nsec) in [(0, 0), (5, 7), (-1, 0), (-2, 500_000_000), (-1, 1), (-1_886_558_416, 436_654_549)] {
            let t = setattr_time(as_fuser_builds_it(secs, nsec));
            assert_eq!((t.secs, t.nsec), (secs, nsec));
        }
    }

    #[test]
    fn reply_times_are_the_real_instant() {
        let t = time(Timestamp { secs: -2, nsec: 500_000_000 });
        assert_eq!(UNIX_EPOCH.duration_since(t).unwrap(), Duration::from_millis(1500));
    }
}

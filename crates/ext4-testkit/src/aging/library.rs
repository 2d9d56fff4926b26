//! Applies an [`Op`] through `ext4-fs`: the library's side of an aging run.

use ext4_fs::{Filesystem, NewNode, RenameMode, SetAttr, Timestamp, XattrMode};

use super::host::Errno;
use super::ops::{NodeKind, Op, RenameKind, Time, split_parent, xattr_value};
use crate::rng::stream_bytes;

fn abs(p: &str) -> Vec<u8> {
    format!("/{p}").into_bytes()
}

fn ts(t: Time) -> Timestamp {
    Timestamp { secs: t.0, nsec: t.1 }
}

fn write_at(fs: &mut Filesystem, ino: u32, offset: u64, len: u64, seed: u64) -> ext4_fs::Result<()> {
    const CHUNK: u64 = 1 << 20;
    let mut done = 0;
    while done < len {
        let n = CHUNK.min(len - done);
        fs.write_at(ino, offset + done, &stream_bytes(seed, offset + done, n as usize))?;
        done += n;
    }
    Ok(())
}

/// Applies `op` to `fs`; the error is the errno the kernel would return.
pub fn apply(fs: &mut Filesystem, op: &Op) -> Result<(), Errno> {
    run(fs, op).map_err(|e| e.errno())
}

fn run(fs: &mut Filesystem, op: &Op) -> ext4_fs::Result<()> {
    match op {
        Op::Mkdir { path, perm } => fs.mkdir(abs(path), *perm).map(drop),
        Op::Create { path, perm, len, seed } => {
            let ino = fs.create(abs(path), *perm)?;
            write_at(fs, ino, 0, *len, *seed)
        }
        Op::Replace { path, len, seed } => {
            let ino = fs.write_file(abs(path), &[])?;
            write_at(fs, ino, 0, *len, *seed)
        }
        Op::Write { path, offset, len, seed, .. } => {
            let ino = fs.lookup(abs(path))?;
            write_at(fs, ino, *offset, *len, *seed)
        }
        Op::Truncate { path, size } => {
            let ino = fs.lookup(abs(path))?;
            fs.truncate(ino, *size)
        }
        Op::Fallocate { path, offset, len, keep_size } => {
            let ino = fs.lookup(abs(path))?;
            fs.fallocate(ino, *offset, *len, *keep_size)
        }
        Op::Punch { path, offset, len } => {
            let ino = fs.lookup(abs(path))?;
            fs.punch_hole(ino, *offset, *len)
        }
        Op::Unlink { path } => fs.remove_file(abs(path)),
        Op::Rmdir { path } => fs.remove_dir(abs(path)),
        Op::RemoveTree { path } => remove_tree(fs, &abs(path)),
        Op::MkdirAll { path, perm } => {
            let (parent, _) = split_parent(path);
            if !parent.is_empty() {
                fs.create_dir_all(abs(parent), 0o777)?;
            }
            match fs.mkdir(abs(path), *perm) {
                Err(ext4_fs::Error::Exists(_)) if fs.metadata(abs(path))?.is_dir() => Ok(()),
                r => r.map(drop),
            }
        }
        Op::Rename { from, to, kind } => {
            let mode = match kind {
                RenameKind::Replace => RenameMode::Replace,
                RenameKind::NoReplace => RenameMode::NoReplace,
                RenameKind::Exchange => RenameMode::Exchange,
            };
            fs.rename_with(abs(from), abs(to), mode)
        }
        Op::Link { from, to } => fs.hard_link(abs(from), abs(to)),
        Op::Symlink { target, path } => fs.symlink(target.as_bytes(), abs(path)).map(drop),
        Op::Mknod { path, kind, perm, major, minor } => {
            let ft = match kind {
                NodeKind::Fifo => ext4_fs::FileType::Fifo,
                NodeKind::Char => ext4_fs::FileType::CharDevice,
                NodeKind::Block => ext4_fs::FileType::BlockDevice,
                NodeKind::Socket => ext4_fs::FileType::Socket,
            };
            let (parent, name) = split_parent(path);
            let dir = fs.lookup(abs(parent))?;
            let mut node = NewNode::new(ft, *perm);
            if matches!(ft, ext4_fs::FileType::CharDevice | ext4_fs::FileType::BlockDevice) {
                node.rdev = (*major, *minor);
            }
            fs.create_node(dir, name.as_bytes(), node, None).map(drop)
        }
        Op::SetXattr { path, name, len, seed } => {
            let ino = fs.lookup_nofollow(abs(path))?;
            fs.set_xattr(ino, name.as_bytes(), &xattr_value(*seed, *len), XattrMode::Any)
        }
        Op::RemoveXattr { path, name } => {
            let ino = fs.lookup_nofollow(abs(path))?;
            fs.remove_xattr(ino, name.as_bytes())
        }
        Op::Chmod { path, perm } => {
            let ino = fs.lookup(abs(path))?;
            fs.set_attr(ino, SetAttr { perm: Some(*perm), ..SetAttr::default() })
        }
        Op::Chown { path, uid, gid } => {
            let ino = fs.lookup_nofollow(abs(path))?;
            fs.set_attr(ino, SetAttr { uid: Some(*uid), gid: Some(*gid), ..SetAttr::default() })
        }
        Op::SetTimes { path, atime, mtime } => {
            let ino = fs.lookup_nofollow(abs(path))?;
            fs.set_attr(ino, SetAttr { atime: Some(ts(*atime)), mtime: Some(ts(*mtime)), ..SetAttr::default() })
        }
    }
}

/// Removes `path` and everything below it, deepest first (`rm -r`).
fn remove_tree(fs: &mut Filesystem, path: &[u8]) -> ext4_fs::Result<()> {
    if !fs.metadata(path)?.is_dir() {
        return fs.remove_file(path);
    }
    for e in fs.read_dir(path)? {
        if e.name == b"." || e.name == b".." {
            continue;
        }
        let mut child = path.to_vec();
        child.push(b'/');
        child.extend_from_slice(&e.name);
        remove_tree(fs, &child)?;
    }
    fs.remove_dir(path)
}

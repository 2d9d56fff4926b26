//! Snapshots of a tree (a host directory, or a directory inside an image
//! read through `ext4-fs`) and their comparison, entry by entry.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use ext4_fs::{FileType, Filesystem};
use sha2::{Digest, Sha256};

/// What a snapshot records of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// File type.
    pub kind: FileType,
    /// Permission bits (`mode & 0o7777`).
    pub perm: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size (regular files and symlinks; 0 otherwise).
    pub size: u64,
    /// Modification time: seconds and nanoseconds.
    pub mtime: (i64, u32),
    /// Symlink target.
    pub target: Option<Vec<u8>>,
    /// `user.*` extended attributes.
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// SHA-256 of a regular file's contents.
    pub sha256: Option<[u8; 32]>,
    /// Device number of a device file.
    pub rdev: (u32, u32),
    /// For files with several links: the smallest path sharing the inode.
    pub link_group: Option<Vec<u8>>,
}

/// A tree: path (relative, `/`-separated, no leading slash) -> node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The entries, the root itself excluded.
    pub nodes: BTreeMap<Vec<u8>, Node>,
}

fn join(base: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = base.to_vec();
    if !p.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

fn kind_of(ft: std::fs::FileType) -> FileType {
    if ft.is_dir() {
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
    }
}

fn host_rdev(d: u64) -> (u32, u32) {
    (((d >> 32) & 0xffff_f000 | ((d >> 8) & 0xfff)) as u32, ((d >> 12) & 0xffff_ff00 | (d & 0xff)) as u32)
}

/// Assigns link groups: for inode keys seen more than once, the smallest path.
fn assign_link_groups<K: std::hash::Hash + Eq>(nodes: &mut BTreeMap<Vec<u8>, Node>, keys: HashMap<Vec<u8>, K>) {
    let mut groups: HashMap<&K, Vec<&Vec<u8>>> = HashMap::new();
    for (path, key) in &keys {
        groups.entry(key).or_default().push(path);
    }
    let mut assign = Vec::new();
    for paths in groups.values().filter(|v| v.len() > 1) {
        let first = (*paths.iter().min().expect("non-empty")).clone();
        assign.extend(paths.iter().map(|p| ((*p).clone(), first.clone())));
    }
    for (p, g) in assign {
        if let Some(n) = nodes.get_mut(&p) {
            n.link_group = Some(g);
        }
    }
}

impl Snapshot {
    /// Snapshots a host directory.
    pub fn from_host(root: &Path) -> std::io::Result<Self> {
        let mut snap = Snapshot::default();
        let mut inodes = HashMap::new();
        walk_host(root, b"", &mut snap, &mut inodes)?;
        assign_link_groups(&mut snap.nodes, inodes);
        Ok(snap)
    }

    /// Snapshots the directory at `path` inside an image.
    pub fn from_image(fs: &Filesystem, path: &[u8]) -> ext4_fs::Result<Self> {
        let mut snap = Snapshot::default();
        let mut inodes = HashMap::new();
        let dir = fs.lookup(path)?;
        walk_image(fs, dir, b"", &mut snap, &mut inodes)?;
        assign_link_groups(&mut snap.nodes, inodes);
        Ok(snap)
    }

    /// Removes an entry and everything below it (e.g. `lost+found`).
    pub fn remove_tree(&mut self, path: &[u8]) {
        let mut prefix = path.to_vec();
        prefix.push(b'/');
        self.nodes.retain(|p, _| p != path && !p.starts_with(&prefix));
    }

    /// The differences between `self` (expected) and `other` (actual), one line each.
    pub fn diff(&self, other: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        let show = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
        for (path, a) in &self.nodes {
            match other.nodes.get(path) {
                None => out.push(format!("{}: missing", show(path))),
                Some(b) => out.extend(node_diff(a, b).into_iter().map(|d| format!("{}: {d}", show(path)))),
            }
        }
        for path in other.nodes.keys().filter(|p| !self.nodes.contains_key(*p)) {
            out.push(format!("{}: unexpected", show(path)));
        }
        out
    }
}

fn node_diff(a: &Node, b: &Node) -> Vec<String> {
    let mut d = Vec::new();
    macro_rules! cmp {
        ($f:ident) => {
            if a.$f != b.$f {
                d.push(format!("{} {:?} != {:?}", stringify!($f), a.$f, b.$f));
            }
        };
    }
    cmp!(kind);
    cmp!(perm);
    cmp!(uid);
    cmp!(gid);
    cmp!(size);
    cmp!(mtime);
    cmp!(target);
    cmp!(xattrs);
    cmp!(sha256);
    cmp!(rdev);
    cmp!(link_group);
    d
}

fn user_xattrs_host(path: &Path) -> std::io::Result<BTreeMap<Vec<u8>, Vec<u8>>> {
    let mut m = BTreeMap::new();
    for name in xattr::list(path)? {
        let n = name.as_bytes().to_vec();
        if n.starts_with(b"user.") {
            if let Some(v) = xattr::get(path, &name)? {
                m.insert(n, v);
            }
        }
    }
    Ok(m)
}

fn walk_host(dir: &Path, rel: &[u8], snap: &mut Snapshot, inodes: &mut HashMap<Vec<u8>, (u64, u64)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let md = std::fs::symlink_metadata(&path)?;
        let rel_path = join(rel, entry.file_name().as_bytes());
        let kind = kind_of(md.file_type());
        let mut node = Node {
            kind,
            perm: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            size: if matches!(kind, FileType::Regular | FileType::Symlink) { md.len() } else { 0 },
            mtime: (md.mtime(), md.mtime_nsec() as u32),
            target: None,
            xattrs: BTreeMap::new(),
            sha256: None,
            rdev: if matches!(kind, FileType::CharDevice | FileType::BlockDevice) { host_rdev(md.rdev()) } else { (0, 0) },
            link_group: None,
        };
        match kind {
            FileType::Symlink => node.target = Some(std::fs::read_link(&path)?.as_os_str().as_bytes().to_vec()),
            FileType::Regular => {
                node.sha256 = Some(hash_reader(std::fs::File::open(&path)?)?);
                node.xattrs = user_xattrs_host(&path)?;
                if md.nlink() > 1 {
                    inodes.insert(rel_path.clone(), (md.dev(), md.ino()));
                }
            }
            FileType::Directory => node.xattrs = user_xattrs_host(&path)?,
            _ => {}
        }
        snap.nodes.insert(rel_path.clone(), node);
        if kind == FileType::Directory {
            walk_host(&path, &rel_path, snap, inodes)?;
        }
    }
    Ok(())
}

fn hash_reader(mut r: impl std::io::Read) -> std::io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

fn walk_image(fs: &Filesystem, dir: u32, rel: &[u8], snap: &mut Snapshot, inodes: &mut HashMap<Vec<u8>, u32>) -> ext4_fs::Result<()> {
    for e in fs.dir_entries(dir)? {
        if e.name == b"." || e.name == b".." {
            continue;
        }
        let md = fs.stat(e.ino)?;
        let rel_path = join(rel, &e.name);
        let kind = md.file_type;
        let user_xattrs = || -> ext4_fs::Result<BTreeMap<Vec<u8>, Vec<u8>>> {
            Ok(fs.xattrs_ino(e.ino)?.into_iter().filter(|x| x.name.starts_with(b"user.")).map(|x| (x.name, x.value)).collect())
        };
        let mut node = Node {
            kind,
            perm: u32::from(md.permissions),
            uid: md.uid,
            gid: md.gid,
            size: if matches!(kind, FileType::Regular | FileType::Symlink) { md.size } else { 0 },
            mtime: (md.mtime.secs, md.mtime.nsec),
            target: None,
            xattrs: BTreeMap::new(),
            sha256: None,
            rdev: md.rdev,
            link_group: None,
        };
        match kind {
            FileType::Symlink => node.target = Some(fs.read_link_ino(e.ino)?),
            FileType::Regular => {
                let mut h = Sha256::new();
                let mut buf = vec![0u8; 1 << 20];
                let mut off = 0u64;
                loop {
                    let n = fs.read_at(e.ino, off, &mut buf)?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                    off += n as u64;
                }
                node.sha256 = Some(h.finalize().into());
                node.xattrs = user_xattrs()?;
                if md.nlink > 1 {
                    inodes.insert(rel_path.clone(), e.ino);
                }
            }
            FileType::Directory => node.xattrs = user_xattrs()?,
            _ => {}
        }
        snap.nodes.insert(rel_path.clone(), node);
        if kind == FileType::Directory {
            walk_image(fs, e.ino, &rel_path, snap, inodes)?;
        }
    }
    Ok(())
}

//! What an aging run believes the tree holds, and the random operations it
//! draws from that belief: the kernel's first round builds every structure
//! the kernel makes; later rounds (kernel or library) change those very
//! structures. The model follows only operations that succeeded on both sides.

use std::collections::{BTreeMap, HashMap};

use super::ops::{NodeKind, Op, RenameKind, Time};
use crate::rng::Rng;

/// What the generator needs to know of the filesystem under test.
#[derive(Debug, Clone, Copy)]
pub struct Traits {
    /// Block size in bytes.
    pub block_size: u64,
    /// Files are mapped by extents (fallocate works).
    pub extents: bool,
    /// `inline_data`.
    pub inline_data: bool,
    /// `ea_inode`: xattr values larger than a block.
    pub ea_inode: bool,
    /// Inodes larger than 128 bytes: nanoseconds and times past 2038.
    pub large_inode: bool,
    /// Entries of the big directory in the first round (two index levels
    /// need more leaves than the root holds).
    pub big_entries: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink,
    Special,
}

#[derive(Debug, Clone)]
struct Entry {
    kind: Kind,
    ino: u64,
}

#[derive(Debug, Clone, Default)]
struct Inode {
    size: u64,
    /// What a regular file holds when only whole-file writes and truncates
    /// made it: `stream_bytes(seed)` for `data_len` bytes, zeros to `size`.
    /// `None` once an operation the model does not follow touched it.
    content: Option<(u64, u64)>,
    nlink: u32,
    /// name -> (length, seed)
    xattrs: BTreeMap<String, (usize, u64)>,
}

/// A set of paths with O(1) insert, remove and random choice.
#[derive(Debug, Clone, Default)]
struct Pool {
    items: Vec<String>,
    at: HashMap<String, usize>,
}

impl Pool {
    fn insert(&mut self, p: &str) {
        if !self.at.contains_key(p) {
            self.at.insert(p.to_string(), self.items.len());
            self.items.push(p.to_string());
        }
    }

    fn remove(&mut self, p: &str) {
        if let Some(i) = self.at.remove(p) {
            self.items.swap_remove(i);
            if i < self.items.len() {
                self.at.insert(self.items[i].clone(), i);
            }
        }
    }

    fn pick(&self, rng: &mut Rng) -> Option<&str> {
        (!self.items.is_empty()).then(|| self.items[rng.index(self.items.len())].as_str())
    }
}

/// The big directories, never removed or renamed themselves.
pub const BIG_DIRS: [&str; 2] = ["big0", "big1"];

/// The tree as the run believes it is.
#[derive(Debug, Clone)]
pub struct Model {
    traits: Traits,
    entries: BTreeMap<String, Entry>,
    inodes: HashMap<u64, Inode>,
    next_ino: u64,
    dirs: Pool,
    files: Pool,
    others: Pool,
    counter: u64,
}

fn parent_of(p: &str) -> &str {
    p.rfind('/').map_or("", |i| &p[..i])
}

impl Model {
    /// An empty filesystem (the root and `lost+found` are not modelled).
    pub fn new(traits: Traits) -> Self {
        Self {
            traits,
            entries: BTreeMap::new(),
            inodes: HashMap::new(),
            next_ino: 1,
            dirs: Pool::default(),
            files: Pool::default(),
            others: Pool::default(),
            counter: 0,
        }
    }

    /// Entries in the model.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The SHA-256 of what the regular file at `path` must hold, when the
    /// model followed every change of it (see `Inode::content`).
    pub fn expected_sha256(&self, path: &str) -> Option<[u8; 32]> {
        use sha2::Digest;
        let i = &self.inodes[&self.entries.get(path)?.ino];
        let (seed, data_len) = i.content?;
        let mut h = sha2::Sha256::new();
        let mut pos = 0;
        while pos < i.size {
            let n = (i.size - pos).min(1 << 20);
            let data = if pos < data_len { crate::rng::stream_bytes(seed, pos, n.min(data_len - pos) as usize) } else { Vec::new() };
            h.update(&data);
            h.update(vec![0u8; n as usize - data.len()]);
            pos += n;
        }
        Some(h.finalize().into())
    }

    /// Bytes of all regular files by their sizes (holes included).
    pub fn live_bytes(&self) -> u64 {
        self.entries
            .values()
            .filter(|e| e.kind == Kind::File)
            .map(|e| e.ino)
            .collect::<std::collections::BTreeSet<_>>()
            .iter()
            .map(|i| self.inodes[i].size)
            .sum()
    }

    /// Whether the model is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn pool(&mut self, kind: Kind) -> &mut Pool {
        match kind {
            Kind::Dir => &mut self.dirs,
            Kind::File => &mut self.files,
            Kind::Symlink | Kind::Special => &mut self.others,
        }
    }

    fn add(&mut self, path: &str, kind: Kind, ino: Option<u64>, size: u64) {
        let ino = ino.unwrap_or_else(|| {
            self.next_ino += 1;
            self.inodes.insert(self.next_ino, Inode { size, content: None, nlink: 0, xattrs: BTreeMap::new() });
            self.next_ino
        });
        self.inodes.get_mut(&ino).expect("inode exists").nlink += 1;
        self.entries.insert(path.to_string(), Entry { kind, ino });
        self.pool(kind).insert(path);
    }

    fn drop_entry(&mut self, path: &str) -> Option<Entry> {
        let e = self.entries.remove(path)?;
        self.pool(e.kind).remove(path);
        let ino = self.inodes.get_mut(&e.ino).expect("inode exists");
        ino.nlink -= 1;
        if ino.nlink == 0 {
            self.inodes.remove(&e.ino);
        }
        Some(e)
    }

    /// Paths strictly below directory `dir`.
    fn below(&self, dir: &str) -> Vec<String> {
        let lo = format!("{dir}/");
        let hi = format!("{dir}0");
        self.entries.range(lo..hi).map(|(k, _)| k.clone()).collect()
    }

    fn is_empty_dir(&self, dir: &str) -> bool {
        let lo = format!("{dir}/");
        let hi = format!("{dir}0");
        self.entries.range(lo..hi).next().is_none()
    }

    /// Moves `from` (and everything below it) to `to`, keeping inodes.
    fn move_tree(&mut self, from: &str, to: &str) {
        let mut moved = vec![from.to_string()];
        moved.extend(self.below(from));
        let taken: Vec<(String, Entry)> = moved
            .iter()
            .filter_map(|p| {
                let e = self.entries.remove(p)?;
                self.pool(e.kind).remove(p);
                Some((p.clone(), e))
            })
            .collect();
        for (p, e) in taken {
            let np = format!("{to}{}", &p[from.len()..]);
            self.pool(e.kind).insert(&np);
            self.entries.insert(np, e);
        }
    }

    fn kind(&self, p: &str) -> Option<Kind> {
        self.entries.get(p).map(|e| e.kind)
    }

    fn inode(&mut self, p: &str) -> Option<&mut Inode> {
        let ino = self.entries.get(p)?.ino;
        self.inodes.get_mut(&ino)
    }

    /// Records an operation both sides carried out.
    pub fn apply(&mut self, op: &Op) {
        match op {
            Op::Mkdir { path, .. } => self.add(path, Kind::Dir, None, 0),
            Op::Create { path, len, seed, .. } => {
                self.add(path, Kind::File, None, *len);
                self.inode(path).expect("added").content = Some((*seed, *len));
            }
            Op::Replace { path, len, seed } => {
                if self.inode(path).is_none() {
                    self.add(path, Kind::File, None, 0);
                }
                let i = self.inode(path).expect("present");
                (i.size, i.content) = (*len, Some((*seed, *len)));
            }
            Op::Write { path, offset, len, .. } => {
                if let Some(i) = self.inode(path) {
                    i.size = i.size.max(offset + len);
                    i.content = None;
                }
            }
            Op::Truncate { path, size } => {
                if let Some(i) = self.inode(path) {
                    i.size = *size;
                    i.content = i.content.map(|(seed, data_len)| (seed, data_len.min(*size)));
                }
            }
            Op::Fallocate { path, offset, len, keep_size } => {
                if let (Some(i), false) = (self.inode(path), *keep_size) {
                    i.size = i.size.max(offset + len);
                }
            }
            Op::Punch { path, .. } => {
                if let Some(i) = self.inode(path) {
                    i.content = None;
                }
            }
            Op::Chmod { .. } | Op::Chown { .. } | Op::SetTimes { .. } => {}
            Op::Unlink { path } | Op::Rmdir { path } => {
                self.drop_entry(path);
            }
            Op::RemoveTree { path } => {
                let mut gone = self.below(path);
                gone.reverse();
                gone.push(path.clone());
                for p in gone {
                    self.drop_entry(&p);
                }
            }
            Op::MkdirAll { path, .. } => {
                let mut at = String::new();
                for part in path.split('/') {
                    at = Self::child(&at, part);
                    if self.kind(&at).is_none() {
                        self.add(&at, Kind::Dir, None, 0);
                    }
                }
            }
            Op::Rename { from, to, kind } => self.rename(from, to, *kind),
            Op::Link { from, to } => {
                if let Some(e) = self.entries.get(from).cloned() {
                    self.add(to, e.kind, Some(e.ino), 0);
                }
            }
            Op::Symlink { path, .. } => self.add(path, Kind::Symlink, None, 0),
            Op::Mknod { path, .. } => self.add(path, Kind::Special, None, 0),
            Op::SetXattr { path, name, len, seed } => {
                if let Some(i) = self.inode(path) {
                    i.xattrs.insert(name.clone(), (*len, *seed));
                }
            }
            Op::RemoveXattr { path, name } => {
                if let Some(i) = self.inode(path) {
                    i.xattrs.remove(name);
                }
            }
        }
    }

    fn rename(&mut self, from: &str, to: &str, kind: RenameKind) {
        if from == to {
            return;
        }
        match kind {
            RenameKind::Exchange => {
                let tmp = format!("\u{1}exchange{}", self.counter);
                self.move_tree(from, &tmp);
                self.move_tree(to, from);
                self.move_tree(&tmp, to);
            }
            RenameKind::Replace | RenameKind::NoReplace => {
                if let Some(e) = self.entries.get(to) {
                    // Renaming a hard link onto another link of the same inode does nothing.
                    if self.entries.get(from).is_some_and(|f| f.ino == e.ino) {
                        return;
                    }
                    self.drop_entry(to);
                }
                self.move_tree(from, to);
            }
        }
    }

    fn fresh_name(&mut self, rng: &mut Rng, long: bool) -> String {
        self.counter += 1;
        if long {
            let pad = rng.range(10, 110) as usize;
            format!("entry_{:06}_{}", self.counter, "x".repeat(pad))
        } else {
            format!("n{}", self.counter)
        }
    }

    /// A directory to make a new entry in (big ones half the time when `big`).
    fn some_dir(&self, rng: &mut Rng, big: bool) -> String {
        if big && rng.chance(60) {
            return rng.pick(&BIG_DIRS).to_string();
        }
        self.dirs.pick(rng).map_or_else(String::new, str::to_string)
    }

    fn child(dir: &str, name: &str) -> String {
        if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") }
    }

    fn perm(rng: &mut Rng, dir: bool) -> u16 {
        if dir { *rng.pick(&[0o755, 0o700, 0o775, 0o1777, 0o2755, 0o2775]) } else { *rng.pick(&[0o644, 0o600, 0o755, 0o640, 0o444]) }
    }

    fn time(&self, rng: &mut Rng) -> Time {
        if self.traits.large_inode {
            // Up to 2242: e2fsck takes times past 2310 for misencoded pre-1970 ones.
            let secs = rng.range(0, (1 << 33) + (1 << 31) - 1) as i64 - (1 << 31);
            (secs, rng.below(1_000_000_000) as u32)
        } else {
            (rng.range(0, u64::from(u32::MAX)) as i64 - (1 << 31), 0)
        }
    }

    fn data_len(&self, rng: &mut Rng) -> u64 {
        let bs = self.traits.block_size;
        match rng.below(10) {
            0..=3 => rng.below(61),
            4..=6 => rng.below(bs * 3),
            7 | 8 => rng.below(bs * 40),
            _ => rng.below(2 << 20),
        }
    }

    /// A regular file; `big` prefers files in the big directories' neighbourhood.
    fn some_file(&self, rng: &mut Rng) -> Option<String> {
        self.files.pick(rng).map(str::to_string)
    }

    /// A file of at least `min` bytes (a few tries).
    fn big_file(&self, rng: &mut Rng, min: u64) -> Option<String> {
        (0..40).filter_map(|_| self.some_file(rng)).find(|p| self.inodes[&self.entries[p].ino].size >= min)
    }

    /// A file inside a big directory (several tries, then any file).
    fn big_member(&self, rng: &mut Rng) -> Option<String> {
        for _ in 0..30 {
            let f = self.files.pick(rng)?;
            if BIG_DIRS.contains(&parent_of(f)) {
                return Some(f.to_string());
            }
        }
        self.some_file(rng)
    }

    /// The operations of the kernel's first round: every structure the kernel makes.
    pub fn build_round(&mut self, rng: &mut Rng) -> Vec<Op> {
        let t = self.traits;
        let bs = t.block_size;
        let mut ops = Vec::new();
        for d in BIG_DIRS.iter().chain(&["d0", "d0/s0", "d0/s0/t0", "d1", "d2", "frag", "small", "x", "links", "dev"]) {
            ops.push(Op::Mkdir { path: d.to_string(), perm: 0o755 });
        }
        // The big directory: an htree of two levels (one on small runs), then holes.
        for (dir, n) in [("big0", t.big_entries), ("big1", (bs as usize / 8).max(200))] {
            for _ in 0..n {
                let name = self.fresh_name(rng, true);
                ops.push(Op::Create { path: format!("{dir}/{name}"), perm: 0o644, len: rng.below(80), seed: rng.next_u64() });
            }
        }
        // Fragmented files: alternate blocks punched out of a preallocated file
        // (deep extent trees), and synced interleaved appends.
        let frag_blocks = if bs == 1024 { 900 } else { 3000 };
        for name in ["frag/holes", "frag/a", "frag/b", "frag/prealloc", "frag/tail"] {
            ops.push(Op::Create { path: name.into(), perm: 0o644, len: 0, seed: 0 });
        }
        if t.extents {
            ops.push(Op::Fallocate { path: "frag/holes".into(), offset: 0, len: frag_blocks * bs, keep_size: false });
            for b in (0..frag_blocks).step_by(2) {
                ops.push(Op::Punch { path: "frag/holes".into(), offset: b * bs, len: bs });
            }
            ops.push(Op::Fallocate { path: "frag/prealloc".into(), offset: 0, len: 64 * bs, keep_size: true });
            ops.push(Op::Fallocate { path: "frag/tail".into(), offset: 0, len: 32 * bs, keep_size: false });
            ops.push(Op::Write { path: "frag/tail".into(), offset: 7 * bs + 13, len: 3 * bs, seed: 7, sync: false });
        } else {
            for b in (0..frag_blocks).step_by(2) {
                ops.push(Op::Write { path: "frag/holes".into(), offset: b * bs, len: bs, seed: 3, sync: false });
            }
        }
        for i in 0..150u64 {
            for (f, seed) in [("frag/a", 1), ("frag/b", 2)] {
                ops.push(Op::Write { path: f.into(), offset: i * 2 * bs, len: bs + rng.below(bs), seed, sync: true });
            }
        }
        // Small files and directories (inline data where the feature is on).
        for i in 0..40 {
            ops.push(Op::Create { path: format!("small/s{i}"), perm: 0o644, len: rng.below(61), seed: rng.next_u64() });
        }
        for i in 0..8 {
            ops.push(Op::Mkdir { path: format!("small/d{i}"), perm: 0o755 });
            for j in 0..rng.below(4) {
                ops.push(Op::Create { path: format!("small/d{i}/f{j}"), perm: 0o644, len: rng.below(30), seed: j });
            }
        }
        // Xattrs: small ones in the inode, equal sets shared in one block, EA inodes.
        for i in 0..40u64 {
            let p = format!("x/f{i}");
            ops.push(Op::Create { path: p.clone(), perm: 0o644, len: rng.below(200), seed: i });
            ops.push(Op::SetXattr { path: p.clone(), name: "user.shared".into(), len: 200, seed: i % 3 });
            if i % 2 == 0 {
                ops.push(Op::SetXattr { path: p.clone(), name: "user.small".into(), len: 8, seed: 1 });
            }
            if t.ea_inode && i % 8 == 0 {
                ops.push(Op::SetXattr { path: p.clone(), name: "user.big".into(), len: 2 * bs as usize + 100, seed: i % 2 });
            }
        }
        ops.push(Op::SetXattr { path: "d1".into(), name: "user.dir".into(), len: 300, seed: 0 });
        // Links of every kind and special files.
        for i in 0..12u64 {
            let short = rng.range(1, 59) as usize;
            let long = rng.range(60, 400) as usize;
            ops.push(Op::Symlink { target: "t".repeat(short), path: format!("links/fast{i}") });
            ops.push(Op::Symlink { target: format!("../x/{}", "l".repeat(long)), path: format!("links/slow{i}") });
            ops.push(Op::Link { from: format!("x/f{i}"), to: format!("links/h{i}") });
        }
        ops.push(Op::Mknod { path: "dev/fifo".into(), kind: NodeKind::Fifo, perm: 0o644, major: 0, minor: 0 });
        ops.push(Op::Mknod { path: "dev/null".into(), kind: NodeKind::Char, perm: 0o666, major: 1, minor: 3 });
        ops.push(Op::Mknod { path: "dev/sda".into(), kind: NodeKind::Block, perm: 0o660, major: 8, minor: 0 });
        ops.push(Op::Mknod { path: "dev/big".into(), kind: NodeKind::Char, perm: 0o600, major: 300, minor: 70000 });
        ops
    }

    /// Removals after the build: holes in one big directory, nearly empty
    /// leaves in the other.
    pub fn thin_big_dirs(&self, rng: &mut Rng) -> Vec<Op> {
        let mut ops = Vec::new();
        for (dir, keep) in [("big0", 55), ("big1", 8)] {
            for p in self.below(dir) {
                if !rng.chance(keep) {
                    ops.push(Op::Unlink { path: p });
                }
            }
        }
        ops
    }

    /// One random operation of a later round; `kernel` adds the kernel-only
    /// ways of fragmenting (synced appends).
    pub fn random_op(&mut self, rng: &mut Rng, kernel: bool) -> Op {
        loop {
            if let Some(op) = self.try_random_op(rng, kernel) {
                return op;
            }
        }
    }

    fn try_random_op(&mut self, rng: &mut Rng, kernel: bool) -> Option<Op> {
        let bs = self.traits.block_size;
        Some(match rng.below(100) {
            0..=19 => {
                let dir = self.some_dir(rng, true);
                let name = self.fresh_name(rng, true);
                Op::Create {
                    path: Self::child(&dir, &name),
                    perm: Self::perm(rng, false),
                    len: self.data_len(rng).min(bs * 4),
                    seed: rng.next_u64(),
                }
            }
            20..=32 => Op::Unlink { path: self.big_member(rng)? },
            33..=41 => self.random_rename(rng)?,
            42..=63 => self.random_data_op(rng, kernel)?,
            64..=72 => self.random_xattr_op(rng)?,
            73..=86 => self.random_namespace_op(rng)?,
            87..=91 => {
                let path = self.entries.keys().nth(rng.index(self.entries.len().max(1)))?.clone();
                if rng.chance(50) && self.kind(&path) != Some(Kind::Symlink) {
                    Op::Chmod { perm: Self::perm(rng, self.kind(&path) == Some(Kind::Dir)), path }
                } else {
                    Op::Chown { path, uid: rng.below(3) as u32 * 1000, gid: rng.below(3) as u32 * 100 }
                }
            }
            92..=95 => self.invalid_op(rng)?,
            _ => {
                let path = self.some_file(rng)?;
                let size = self.inodes[&self.entries[&path].ino].size;
                Op::Write { path, offset: size, len: rng.range(1, 300) * bs, seed: rng.next_u64(), sync: false }
            }
        })
    }

    fn random_rename(&mut self, rng: &mut Rng) -> Option<Op> {
        let pick_any = rng.below(10);
        let from = match pick_any {
            0..=5 => self.some_file(rng)?,
            6 | 7 => self.others.pick(rng)?.to_string(),
            _ => self.dirs.pick(rng)?.to_string(),
        };
        if BIG_DIRS.contains(&from.as_str()) {
            return None;
        }
        let from_dir = self.kind(&from) == Some(Kind::Dir);
        let kind = match rng.below(10) {
            0 => RenameKind::NoReplace,
            1 => RenameKind::Exchange,
            _ => RenameKind::Replace,
        };
        let to = if kind == RenameKind::Exchange || (rng.chance(25) && !from_dir) {
            // Onto an existing entry of the same kind class.
            let to = if from_dir { self.dirs.pick(rng)?.to_string() } else { self.some_file(rng)? };
            if BIG_DIRS.contains(&to.as_str()) {
                return None;
            }
            to
        } else {
            let dir = self.some_dir(rng, true);
            let long = rng.chance(50);
            let name = self.fresh_name(rng, long);
            Self::child(&dir, &name)
        };
        // Never into itself (the kernel's EINVAL is covered by invalid_op).
        if to == from || to.starts_with(&format!("{from}/")) || from.starts_with(&format!("{to}/")) {
            return None;
        }
        if kind == RenameKind::Replace && self.kind(&to) == Some(Kind::Dir) && !self.is_empty_dir(&to) {
            return None;
        }
        Some(Op::Rename { from, to, kind })
    }

    fn random_data_op(&mut self, rng: &mut Rng, kernel: bool) -> Option<Op> {
        let path =
            if rng.chance(30) { format!("frag/{}", rng.pick(&["holes", "a", "b", "prealloc", "tail"])) } else { self.some_file(rng)? };
        if self.kind(&path) != Some(Kind::File) {
            return None;
        }
        let size = self.inodes.get(&self.entries.get(&path)?.ino)?.size;
        let bs = self.traits.block_size;
        // Linux 6.18 exposes stale bytes of an inline file that a punch
        // converted to extents and a truncate then shortened (-O inline_data;
        // 122 bytes; punch past the end; truncate -s 27; pwrite far beyond;
        // after umount bytes 27.. are the old data): the reference would be
        // wrong, so small files of inline filesystems get writes and
        // shrinking truncates only.
        let small_inline = self.traits.inline_data && size < 4096;
        let span = size.max(bs) + bs * 8;
        let offset = rng.below(span);
        let len = rng.range(1, bs * 16);
        Some(match rng.below(10) {
            0..=3 => Op::Write { path, offset, len, seed: rng.next_u64(), sync: kernel && rng.chance(30) },
            // Linux 6.18 loses a later write to an inline file grown by
            // truncate (mke2fs -O inline_data; echo -n 54 bytes > f;
            // truncate -s 518 f; pwrite 100 bytes at 518; after umount they
            // read as zeros): the reference would be wrong, so small files
            // of inline filesystems only shrink.
            4 | 5 if small_inline => Op::Truncate { path, size: rng.below(size + 1) },
            _ if small_inline => return None,
            4 | 5 => Op::Truncate { path, size: rng.below(span) },
            6 | 7 => Op::Punch { path, offset, len },
            _ if self.traits.extents => Op::Fallocate { path, offset, len, keep_size: rng.chance(50) },
            _ => Op::Truncate { path, size: size + rng.below(bs * 4) },
        })
    }

    fn random_xattr_op(&mut self, rng: &mut Rng) -> Option<Op> {
        let path = if rng.chance(60) { format!("x/f{}", rng.below(40)) } else { self.some_file(rng)? };
        if self.kind(&path) != Some(Kind::File) {
            return None;
        }
        let ino = self.inodes.get(&self.entries.get(&path)?.ino)?;
        Some(match rng.below(10) {
            0..=3 => Op::SetXattr { path, name: "user.shared".into(), len: 200, seed: rng.below(4) },
            4 | 5 => Op::SetXattr { path, name: format!("user.k{}", rng.below(6)), len: rng.range(1, 120) as usize, seed: rng.below(3) },
            6 if self.traits.ea_inode => {
                Op::SetXattr { path, name: "user.big".into(), len: 2 * self.traits.block_size as usize + 100, seed: rng.below(2) }
            }
            _ => {
                let names: Vec<&String> = ino.xattrs.keys().collect();
                if names.is_empty() {
                    return None;
                }
                let name = (*rng.pick(&names)).clone();
                Op::RemoveXattr { path, name }
            }
        })
    }

    fn random_namespace_op(&mut self, rng: &mut Rng) -> Option<Op> {
        let dir = self.some_dir(rng, false);
        let long = rng.chance(30);
        let name = self.fresh_name(rng, long);
        let path = Self::child(&dir, &name);
        Some(match rng.below(10) {
            0 | 1 => Op::Mkdir { path, perm: Self::perm(rng, true) },
            2 => {
                let d = self.dirs.pick(rng)?.to_string();
                if !self.is_empty_dir(&d) || BIG_DIRS.contains(&d.as_str()) || ["frag", "small", "x", "links", "dev"].contains(&d.as_str())
                {
                    return None;
                }
                Op::Rmdir { path: d }
            }
            3 | 4 => Op::Symlink { target: "s".repeat(rng.range(1, 300) as usize), path },
            5 | 6 => {
                let from = self.some_file(rng)?;
                if self.inodes[&self.entries[&from].ino].nlink >= 8 {
                    return None;
                }
                Op::Link { from, to: path }
            }
            7 => Op::Mknod { path, kind: NodeKind::Fifo, perm: 0o644, major: 0, minor: 0 },
            8 => Op::Mknod { path, kind: NodeKind::Char, perm: 0o600, major: rng.below(512) as u32, minor: rng.below(1 << 20) as u32 },
            _ => {
                let from = self.others.pick(rng)?.to_string();
                Op::Unlink { path: from }
            }
        })
    }

    /// An operation both sides must refuse with the same errno.
    fn invalid_op(&mut self, rng: &mut Rng) -> Option<Op> {
        Some(match rng.below(6) {
            0 => {
                let d = self.dirs.pick(rng)?.to_string();
                if self.is_empty_dir(&d) {
                    return None;
                }
                Op::Rmdir { path: d }
            }
            1 => Op::Create { path: self.some_file(rng)?, perm: 0o644, len: 0, seed: 0 },
            2 => Op::Mkdir { path: self.entries.keys().nth(rng.index(self.entries.len().max(1)))?.clone(), perm: 0o755 },
            3 => Op::Unlink { path: self.dirs.pick(rng)?.to_string() },
            4 => Op::Link { from: self.dirs.pick(rng)?.to_string(), to: format!("d0/linkdir{}", rng.below(100)) },
            _ => {
                let d = self.dirs.pick(rng)?.to_string();
                Op::Rename { from: d.clone(), to: format!("{d}/inside"), kind: RenameKind::Replace }
            }
        })
    }

    /// The directories a command-line run starts from.
    pub fn cli_setup(&self) -> Vec<Op> {
        BIG_DIRS.iter().chain(&["d0", "d1", "d1/s"]).map(|d| Op::Mkdir { path: d.to_string(), perm: 0o755 }).collect()
    }

    /// One random operation that `ext4 batch` can express (see
    /// [`super::script::line`]): files up to `max_len` bytes, `big_percent`
    /// of them at least half that; with less than half of it left in
    /// `room`, big files are removed as often as big ones are written.
    pub fn random_cli_op(&mut self, rng: &mut Rng, max_len: u64, room: u64, big_percent: u64) -> Op {
        if room < max_len / 2 && rng.chance(big_percent) {
            if let Some(path) = self.big_file(rng, max_len / 4) {
                return Op::Unlink { path };
            }
        }
        let max_len = max_len.min(room);
        loop {
            if let Some(op) = self.try_cli_op(rng, max_len, big_percent) {
                return op;
            }
        }
    }

    fn try_cli_op(&mut self, rng: &mut Rng, max_len: u64, big_percent: u64) -> Option<Op> {
        let len = |rng: &mut Rng, m: &Self| {
            if rng.chance(big_percent) { rng.range(max_len / 2, max_len) } else { m.data_len(rng).min(max_len) }
        };
        Some(match rng.below(100) {
            0..=24 => {
                let dir = self.some_dir(rng, true);
                let long = rng.chance(50);
                let name = self.fresh_name(rng, long);
                Op::Replace { path: Self::child(&dir, &name), len: len(rng, self), seed: rng.next_u64() }
            }
            25..=34 => {
                // Rewriting a file frees what it held: that room is its own to take.
                let path = self.some_file(rng)?;
                let old = self.inodes[&self.entries[&path].ino].size;
                let len = if rng.chance(big_percent) { rng.range(max_len / 2, max_len + old.min(max_len)) } else { len(rng, self) };
                Op::Replace { path, len, seed: rng.next_u64() }
            }
            35..=46 => Op::Unlink { path: if rng.chance(70) { self.some_file(rng)? } else { self.others.pick(rng)?.to_string() } },
            47..=54 => match self.random_rename(rng)? {
                Op::Rename { kind: RenameKind::NoReplace, .. } => return None,
                op => op,
            },
            55..=62 => {
                let path = self.some_file(rng)?;
                let size = self.inodes[&self.entries[&path].ino].size;
                Op::Truncate { path, size: if rng.chance(50) { rng.below(size + 1) } else { size + rng.below(max_len / 4 + 1) } }
            }
            63..=70 => self.random_xattr_op(rng)?,
            71..=84 => match self.random_namespace_op(rng)? {
                Op::Mknod { path, kind: NodeKind::Char, perm, major, minor } if rng.chance(30) => {
                    Op::Mknod { path, kind: NodeKind::Block, perm, major, minor }
                }
                Op::Mknod { path, kind: NodeKind::Fifo, perm, .. } if rng.chance(40) => {
                    Op::Mknod { path, kind: NodeKind::Socket, perm, major: 0, minor: 0 }
                }
                // `mkdir -m 2755` sets the setgid bit (GNU: mkdir, then
                // chmod); mkdir(2) drops it. Setgid directories come from chmod.
                Op::Mkdir { path, perm } => Op::Mkdir { path, perm: perm & 0o1777 },
                op => op,
            },
            85..=88 => {
                let path = self.entries.keys().nth(rng.index(self.entries.len().max(1)))?.clone();
                if rng.chance(50) && self.kind(&path) != Some(Kind::Symlink) {
                    Op::Chmod { perm: Self::perm(rng, self.kind(&path) == Some(Kind::Dir)), path }
                } else {
                    Op::Chown { path, uid: rng.below(3) as u32 * 1000, gid: rng.below(3) as u32 * 100 }
                }
            }
            89 | 90 => {
                let d = self.dirs.pick(rng)?.to_string();
                if BIG_DIRS.contains(&d.as_str()) || ["d0", "d1"].contains(&d.as_str()) {
                    return None;
                }
                Op::RemoveTree { path: d }
            }
            91 | 92 => {
                let mut path = self.some_dir(rng, false);
                for _ in 0..rng.range(1, 3) {
                    let long = rng.chance(30);
                    let name = self.fresh_name(rng, long);
                    path = Self::child(&path, &name);
                }
                Op::MkdirAll { path, perm: Self::perm(rng, true) & 0o1777 }
            }
            _ => match self.invalid_op(rng)? {
                Op::Create { .. } => return None,
                op => op,
            },
        })
    }

    /// Times that `touch -d` sets (access and modification alike) on `n` random entries.
    pub fn touch_times(&mut self, rng: &mut Rng, n: usize) -> Vec<Op> {
        self.set_times(rng, n)
            .into_iter()
            .map(|op| match op {
                Op::SetTimes { path, mtime, .. } => Op::SetTimes { path, atime: mtime, mtime },
                op => op,
            })
            .collect()
    }

    /// Explicit times on `n` random entries (the end of a round: the times
    /// compared exactly). Returns the operations and the paths they set.
    pub fn set_times(&mut self, rng: &mut Rng, n: usize) -> Vec<Op> {
        let keys: Vec<String> = self.entries.keys().cloned().collect();
        if keys.is_empty() {
            return Vec::new();
        }
        (0..n)
            .map(|_| {
                let path = keys[rng.index(keys.len())].clone();
                Op::SetTimes { atime: self.time(rng), mtime: self.time(rng), path }
            })
            .collect()
    }
}

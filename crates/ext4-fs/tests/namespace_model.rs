//! Random sequences of namespace operations (mkdir, rmdir, create, unlink,
//! rename in every mode, link, symlink) against an in-memory tree, on ext2,
//! ext3 and ext4 images with 1 KiB and 4 KiB blocks and on bigalloc ones
//! made by mke2fs. Each call must succeed
//! or fail with the errno Linux gives, checked in the kernel's order
//! (`do_renameat2`, `lock_rename`'s trap, `vfs_rename`); after each sequence
//! the tree read back through a fresh open equals the model (names, types,
//! `.` and `..`, link counts, hard-link structure, symlink targets) and
//! `e2fsck -fn` is silent. `PROPTEST_CASES` sets the case count per kind;
//! failures are kept in `proptest-regressions/` and replayed first.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{BIGALLOC_KINDS, KINDS, Kind, format, have_fsck, open_ro, open_rw};
use ext4_fs::{FileType, Filesystem, RenameMode};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{TestCaseError, TestRunner};

const ENOENT: i32 = 2;
const EPERM: i32 = 1;
const EEXIST: i32 = 17;
const ENOTDIR: i32 = 20;
const EISDIR: i32 = 21;
const EINVAL: i32 = 22;
const ENOTEMPTY: i32 = 39;

/// Entry names: a few fixed ones (short, medium, long, the longest allowed)
/// that collide often, and numbered ones of varied lengths that fill
/// directories until they become htrees.
fn pool_name(n: u8) -> Vec<u8> {
    match n % 32 {
        0 => b"a".to_vec(),
        1 => b"bb".to_vec(),
        2 => b"name-c".to_vec(),
        3 => vec![b'd'; 60],
        4 => vec![b'e'; 200],
        5 => vec![b'f'; 255],
        6 => b"g.txt".to_vec(),
        _ => {
            let mut v = format!("n{n}-").into_bytes();
            v.resize(4 + (usize::from(n) * 37) % 250, b'a' + n % 26);
            v
        }
    }
}

/// Symlink targets: fast (< 60 bytes) and block-stored ones.
fn pool_target(n: u8) -> Vec<u8> {
    let len = [1usize, 20, 59, 60, 61, 200, 1000][n as usize % 7];
    (0..len).map(|i| b"abc/xyz."[(i + n as usize) % 8]).collect()
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Replace,
    NoReplace,
    Exchange,
}

impl Mode {
    fn lib(self) -> RenameMode {
        match self {
            Mode::Replace => RenameMode::Replace,
            Mode::NoReplace => RenameMode::NoReplace,
            Mode::Exchange => RenameMode::Exchange,
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Mkdir(Index, u8),
    Create(Index, u8),
    Symlink(Index, u8, u8),
    /// Link an existing entry under a directory.
    Link(Index, Index, u8),
    Unlink(Index),
    Rmdir(Index),
    /// Unlink or rmdir a name that may not exist.
    RemoveName(Index, u8, bool),
    /// Rename an entry to a name (existing or not) in a directory.
    Rename(Index, Index, u8, Mode),
    /// Rename an entry onto another existing entry.
    RenameOnto(Index, Index, Mode),
    /// Create 40 files with consecutive pool names in one directory.
    Fill(Index, u8),
    Reopen,
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![3 => Just(Mode::Replace), 1 => Just(Mode::NoReplace), 2 => Just(Mode::Exchange)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<Index>(), any::<u8>()).prop_map(|(d, n)| Op::Mkdir(d, n)),
        4 => (any::<Index>(), any::<u8>()).prop_map(|(d, n)| Op::Create(d, n)),
        2 => (any::<Index>(), any::<u8>(), any::<u8>()).prop_map(|(d, n, t)| Op::Symlink(d, n, t)),
        2 => (any::<Index>(), any::<Index>(), any::<u8>()).prop_map(|(e, d, n)| Op::Link(e, d, n)),
        2 => any::<Index>().prop_map(Op::Unlink),
        2 => any::<Index>().prop_map(Op::Rmdir),
        1 => (any::<Index>(), any::<u8>(), any::<bool>()).prop_map(|(d, n, dir)| Op::RemoveName(d, n, dir)),
        5 => (any::<Index>(), any::<Index>(), any::<u8>(), mode()).prop_map(|(e, d, n, m)| Op::Rename(e, d, n, m)),
        3 => (any::<Index>(), any::<Index>(), mode()).prop_map(|(a, b, m)| Op::RenameOnto(a, b, m)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(d, n)| Op::Fill(d, n)),
        1 => Just(Op::Reopen),
    ]
}

type Id = usize;

/// What the run exercised: successful calls, refused calls, htree directories read back.
static OK_CALLS: AtomicUsize = AtomicUsize::new(0);
static ERR_CALLS: AtomicUsize = AtomicUsize::new(0);
static INDEXED_DIRS: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Clone)]
enum Node {
    Dir(BTreeMap<Vec<u8>, Id>),
    File,
    Symlink(Vec<u8>),
}

/// The model: nodes by id, the root is 0 (its `lost+found` is left out and
/// never touched).
#[derive(Debug, Clone)]
struct Model {
    nodes: HashMap<Id, Node>,
    next: Id,
}

/// An entry of the model: its directory, name and node.
#[derive(Debug, Clone)]
struct Ent {
    parent: Id,
    name: Vec<u8>,
    id: Id,
    path: Vec<u8>,
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    [dir, b"/", name].concat()
}

impl Model {
    fn new() -> Self {
        Self { nodes: HashMap::from([(0, Node::Dir(BTreeMap::new()))]), next: 1 }
    }

    fn is_dir(&self, id: Id) -> bool {
        matches!(self.nodes[&id], Node::Dir(_))
    }

    fn dir(&self, id: Id) -> &BTreeMap<Vec<u8>, Id> {
        match &self.nodes[&id] {
            Node::Dir(m) => m,
            _ => unreachable!("not a directory"),
        }
    }

    fn dir_mut(&mut self, id: Id) -> &mut BTreeMap<Vec<u8>, Id> {
        match self.nodes.get_mut(&id) {
            Some(Node::Dir(m)) => m,
            _ => unreachable!("not a directory"),
        }
    }

    /// Every entry, depth first in name order (each directory once).
    fn entries(&self) -> Vec<Ent> {
        let mut out = Vec::new();
        self.walk(0, b"", &mut out);
        out
    }

    fn walk(&self, dir: Id, path: &[u8], out: &mut Vec<Ent>) {
        for (name, &id) in self.dir(dir) {
            let p = join(path, name);
            out.push(Ent { parent: dir, name: name.clone(), id, path: p.clone() });
            if self.is_dir(id) {
                self.walk(id, &p, out);
            }
        }
    }

    /// Every directory with its path, the root first (path "").
    fn dirs(&self) -> Vec<(Id, Vec<u8>)> {
        let mut v = vec![(0, Vec::new())];
        v.extend(self.entries().into_iter().filter(|e| self.is_dir(e.id)).map(|e| (e.id, e.path)));
        v
    }

    fn parent_of(&self, dir: Id) -> Id {
        if dir == 0 {
            return 0;
        }
        self.entries().into_iter().find(|e| e.id == dir).expect("a directory has one parent").parent
    }

    /// Whether `a` is `d` or one of its ancestors.
    fn is_ancestor(&self, a: Id, mut d: Id) -> bool {
        loop {
            if a == d {
                return true;
            }
            if d == 0 {
                return false;
            }
            d = self.parent_of(d);
        }
    }

    fn nlink(&self, id: Id) -> u32 {
        match &self.nodes[&id] {
            Node::Dir(m) => 2 + m.values().filter(|c| self.is_dir(**c)).count() as u32,
            _ => self.entries().iter().filter(|e| e.id == id).count() as u32,
        }
    }

    fn add(&mut self, dir: Id, name: Vec<u8>, node: Node) -> Result<(), i32> {
        if self.dir(dir).contains_key(&name) {
            return Err(EEXIST);
        }
        let id = self.next;
        self.next += 1;
        self.nodes.insert(id, node);
        self.dir_mut(dir).insert(name, id);
        Ok(())
    }

    /// Drops a name; frees the node when no name is left.
    fn drop_name(&mut self, dir: Id, name: &[u8]) {
        let id = self.dir_mut(dir).remove(name).expect("present");
        if self.is_dir(id) || !self.entries().iter().any(|e| e.id == id) {
            self.nodes.remove(&id);
        }
    }

    fn unlink(&mut self, dir: Id, name: &[u8]) -> Result<(), i32> {
        let id = *self.dir(dir).get(name).ok_or(ENOENT)?;
        if self.is_dir(id) {
            return Err(EISDIR);
        }
        self.drop_name(dir, name);
        Ok(())
    }

    fn rmdir(&mut self, dir: Id, name: &[u8]) -> Result<(), i32> {
        let id = *self.dir(dir).get(name).ok_or(ENOENT)?;
        if !self.is_dir(id) {
            return Err(ENOTDIR);
        }
        if !self.dir(id).is_empty() {
            return Err(ENOTEMPTY);
        }
        self.drop_name(dir, name);
        Ok(())
    }

    fn link(&mut self, id: Id, dir: Id, name: Vec<u8>) -> Result<(), i32> {
        if self.dir(dir).contains_key(&name) {
            return Err(EEXIST);
        }
        if self.is_dir(id) {
            return Err(EPERM);
        }
        self.dir_mut(dir).insert(name, id);
        Ok(())
    }

    /// rename(2) with the kernel's order of checks.
    fn rename(&mut self, sp: Id, sn: &[u8], dp: Id, dn: &[u8], mode: Mode) -> Result<(), i32> {
        let s = *self.dir(sp).get(sn).ok_or(ENOENT)?;
        let d = self.dir(dp).get(dn).copied();
        match (mode, d) {
            (Mode::Exchange, None) => return Err(ENOENT),
            (Mode::NoReplace, Some(_)) => return Err(EEXIST),
            _ => {}
        }
        if sp != dp {
            // lock_rename's trap: the source above the new parent, or the target above the old one.
            if self.is_dir(s) && self.is_ancestor(s, dp) {
                return Err(EINVAL);
            }
            if let Some(d) = d.filter(|&d| self.is_dir(d) && self.is_ancestor(d, sp)) {
                let _ = d;
                return Err(if matches!(mode, Mode::Exchange) { EINVAL } else { ENOTEMPTY });
            }
        }
        if d == Some(s) {
            return Ok(());
        }
        match (mode, d) {
            (Mode::Exchange, Some(d)) => {
                self.dir_mut(sp).insert(sn.to_vec(), d);
                self.dir_mut(dp).insert(dn.to_vec(), s);
            }
            (_, Some(d)) => {
                match (self.is_dir(s), self.is_dir(d)) {
                    (true, false) => return Err(ENOTDIR),
                    (false, true) => return Err(EISDIR),
                    (true, true) if !self.dir(d).is_empty() => return Err(ENOTEMPTY),
                    _ => {}
                }
                self.dir_mut(sp).remove(sn);
                self.dir_mut(dp).insert(dn.to_vec(), s);
                if self.is_dir(d) || !self.entries().iter().any(|e| e.id == d) {
                    self.nodes.remove(&d);
                }
            }
            (_, None) => {
                self.dir_mut(sp).remove(sn);
                self.dir_mut(dp).insert(dn.to_vec(), s);
            }
        }
        Ok(())
    }
}

fn errno<T>(r: ext4_fs::Result<T>) -> Result<(), i32> {
    r.map(|_| ()).map_err(|e| e.errno())
}

fn path_of(dir: &[u8], name: &[u8]) -> Vec<u8> {
    join(if dir.is_empty() { b"" } else { dir }, name)
}

/// Runs one operation on both sides; returns (model, library) results.
fn apply(fs: &mut Filesystem, m: &mut Model, op: &Op) -> Option<(Result<(), i32>, Result<(), i32>)> {
    let dirs = m.dirs();
    let ents = m.entries();
    let pick_dir = |i: &Index| dirs[i.index(dirs.len())].clone();
    let pick_ent = |i: &Index| (!ents.is_empty()).then(|| ents[i.index(ents.len())].clone());
    Some(match op {
        Op::Mkdir(d, n) => {
            let (id, p) = pick_dir(d);
            let name = pool_name(*n);
            (m.add(id, name.clone(), Node::Dir(BTreeMap::new())), errno(fs.mkdir(path_of(&p, &name), 0o755)))
        }
        Op::Create(d, n) => {
            let (id, p) = pick_dir(d);
            let name = pool_name(*n);
            (m.add(id, name.clone(), Node::File), errno(fs.create(path_of(&p, &name), 0o644)))
        }
        Op::Symlink(d, n, t) => {
            let (id, p) = pick_dir(d);
            let name = pool_name(*n);
            let target = pool_target(*t);
            (m.add(id, name.clone(), Node::Symlink(target.clone())), errno(fs.symlink(&target, path_of(&p, &name))))
        }
        Op::Link(e, d, n) => {
            let e = pick_ent(e)?;
            let (id, p) = pick_dir(d);
            let name = pool_name(*n);
            (m.link(e.id, id, name.clone()), errno(fs.hard_link(&e.path, path_of(&p, &name))))
        }
        Op::Unlink(e) => {
            let e = pick_ent(e)?;
            (m.unlink(e.parent, &e.name), errno(fs.remove_file(&e.path)))
        }
        Op::Rmdir(e) => {
            let e = pick_ent(e)?;
            (m.rmdir(e.parent, &e.name), errno(fs.remove_dir(&e.path)))
        }
        Op::RemoveName(d, n, dir) => {
            let (id, p) = pick_dir(d);
            let name = pool_name(*n);
            let path = path_of(&p, &name);
            if *dir { (m.rmdir(id, &name), errno(fs.remove_dir(path))) } else { (m.unlink(id, &name), errno(fs.remove_file(path))) }
        }
        Op::Rename(e, d, n, mode) => {
            let e = pick_ent(e)?;
            let (id, p) = pick_dir(d);
            let name = pool_name(*n);
            (m.rename(e.parent, &e.name, id, &name, *mode), errno(fs.rename_with(&e.path, path_of(&p, &name), mode.lib())))
        }
        Op::RenameOnto(a, b, mode) => {
            let a = pick_ent(a)?;
            let b = pick_ent(b)?;
            (m.rename(a.parent, &a.name, b.parent, &b.name, *mode), errno(fs.rename_with(&a.path, &b.path, mode.lib())))
        }
        Op::Fill(d, n) => {
            let (id, p) = pick_dir(d);
            for k in 0..40u8 {
                let name = pool_name(n.wrapping_add(k));
                let want = m.add(id, name.clone(), Node::File);
                let got = errno(fs.create(path_of(&p, &name), 0o644));
                if got != want {
                    return Some((want, got));
                }
            }
            (Ok(()), Ok(()))
        }
        Op::Reopen => return None,
    })
}

/// Compares the image's tree with the model; `ids` maps model nodes to inodes.
fn compare(fs: &Filesystem, m: &Model) -> Result<(), String> {
    let mut ids: HashMap<Id, u32> = HashMap::from([(0, ext4_fs::ondisk::ino::ROOT)]);
    let mut inos: HashMap<u32, Id> = HashMap::from([(ext4_fs::ondisk::ino::ROOT, 0)]);
    compare_dir(fs, m, 0, ext4_fs::ondisk::ino::ROOT, ext4_fs::ondisk::ino::ROOT, b"", &mut ids, &mut inos)
}

#[allow(clippy::too_many_arguments)]
fn compare_dir(
    fs: &Filesystem,
    m: &Model,
    id: Id,
    ino: u32,
    parent_ino: u32,
    path: &[u8],
    ids: &mut HashMap<Id, u32>,
    inos: &mut HashMap<u32, Id>,
) -> Result<(), String> {
    let show = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
    let shown = if path.is_empty() { "/".to_string() } else { show(path) };
    let all = fs.dir_entries(ino).map_err(|e| format!("{shown}: {e}"))?;
    let dot: Vec<u32> = all.iter().filter(|e| e.name == b".").map(|e| e.ino).collect();
    let dotdot: Vec<u32> = all.iter().filter(|e| e.name == b"..").map(|e| e.ino).collect();
    if dot != [ino] || dotdot != [parent_ino] {
        return Err(format!("{shown}: '.' is {dot:?} (want {ino}), '..' is {dotdot:?} (want {parent_ino})"));
    }
    let mut got: BTreeMap<Vec<u8>, (u32, Option<FileType>)> = BTreeMap::new();
    for e in all.into_iter().filter(|e| e.name != b"." && e.name != b"..") {
        if id == 0 && e.name == b"lost+found" {
            continue;
        }
        if got.insert(e.name.clone(), (e.ino, e.file_type)).is_some() {
            return Err(format!("{shown}/{}: listed twice", e.name_lossy()));
        }
    }
    let want = m.dir(id);
    if got.keys().ne(want.keys()) {
        let g: Vec<String> = got.keys().map(|k| show(k)).collect();
        let w: Vec<String> = want.keys().map(|k| show(k)).collect();
        return Err(format!("{shown}: names {g:?}, model {w:?}"));
    }
    let extra_root_link = u32::from(id == 0); // lost+found
    let md = fs.stat(ino).map_err(|e| e.to_string())?;
    if md.flags.contains(ext4_fs::InodeFlags::INDEX) {
        INDEXED_DIRS.fetch_add(1, Ordering::Relaxed);
    }
    if md.nlink != m.nlink(id) + extra_root_link {
        return Err(format!("{shown}: {} links, model {}", md.nlink, m.nlink(id) + extra_root_link));
    }
    for (name, &cid) in want {
        let p = join(path, name);
        let (cino, ft) = got[name];
        if *ids.entry(cid).or_insert(cino) != cino || *inos.entry(cino).or_insert(cid) != cid {
            return Err(format!("{}: hard-link structure differs (inode {cino})", show(&p)));
        }
        let md = fs.stat(cino).map_err(|e| format!("{}: {e}", show(&p)))?;
        let kind = match &m.nodes[&cid] {
            Node::Dir(_) => FileType::Directory,
            Node::File => FileType::Regular,
            Node::Symlink(_) => FileType::Symlink,
        };
        if md.file_type != kind || ft != Some(kind) {
            return Err(format!("{}: inode type {:?}, entry type {ft:?}, model {kind:?}", show(&p), md.file_type));
        }
        match &m.nodes[&cid] {
            Node::Dir(_) => compare_dir(fs, m, cid, cino, ino, &p, ids, inos)?,
            Node::Symlink(t) => {
                let got = fs.read_link_ino(cino).map_err(|e| format!("{}: {e}", show(&p)))?;
                if got != *t || md.size != t.len() as u64 {
                    return Err(format!("{}: target {:?}, model {:?}", show(&p), show(&got), show(t)));
                }
            }
            Node::File => {}
        }
        if !kind.eq(&FileType::Directory) && md.nlink != m.nlink(cid) {
            return Err(format!("{}: {} links, model {}", show(&p), md.nlink, m.nlink(cid)));
        }
    }
    Ok(())
}

/// Opens read-write with a fixed clock in the past: the library's clock is
/// finer than the one `time(2)` reads, so a superblock written in the same
/// second as e2fsck starts can look "in the future" to it.
fn open_fixed(path: &std::path::Path) -> Filesystem {
    let mut fs = open_rw(path);
    fs.set_fixed_time(Some(ext4_fs::Timestamp::from_secs(1_700_000_100)));
    fs
}

fn run_case(kind: &Kind, ops: &[Op], case: usize, fsck: bool) -> Result<(), TestCaseError> {
    let img = format(kind, 16 << 20, &format!("ns{case}"));
    let mut fs = Some(open_fixed(&img.path));
    let mut model = Model::new();
    for (i, op) in ops.iter().enumerate() {
        if let Op::Reopen = op {
            fs.take().unwrap().close().unwrap();
            fs = Some(open_fixed(&img.path));
            continue;
        }
        let Some((want, got)) = apply(fs.as_mut().unwrap(), &mut model, op) else {
            continue;
        };
        prop_assert_eq!(got, want, "op {} {:?}", i, op);
        if got.is_ok() { &OK_CALLS } else { &ERR_CALLS }.fetch_add(1, Ordering::Relaxed);
    }
    fs.take().unwrap().close().unwrap();
    let fs = open_ro(&img.path);
    if let Err(e) = compare(&fs, &model) {
        return Err(TestCaseError::fail(format!("tree differs from the model: {e}")));
    }
    drop(fs);
    if let Some(p) = ext4_testkit::oracle::e2fsck_problems(&img.path).filter(|_| fsck) {
        return Err(TestCaseError::fail(format!("e2fsck:\n{p}")));
    }
    Ok(())
}

#[test]
fn random_namespace_operations_match_the_model() {
    // Without e2fsck (outside CI) the model comparison still runs.
    let fsck = have_fsck();
    for kind in KINDS.iter().chain(BIGALLOC_KINDS) {
        let mut runner = TestRunner::new(ext4_testkit::prop::config(64, &format!("namespace_model-{}", kind.name)));
        let case = std::cell::Cell::new(0);
        runner
            .run(&proptest::collection::vec(op(), 1..60), |ops| {
                case.set(case.get() + 1);
                run_case(kind, &ops, case.get(), fsck)
            })
            .unwrap_or_else(|e| panic!("{}: {e}", kind.name));
    }
    let (ok, err, indexed) = (OK_CALLS.load(Ordering::Relaxed), ERR_CALLS.load(Ordering::Relaxed), INDEXED_DIRS.load(Ordering::Relaxed));
    println!("{ok} calls succeeded, {err} were refused as the model said, {indexed} htree directories read back");
    assert!(ok > err && err > 0 && indexed > 0, "the operations exercise too little");
}

/// The cases the random run reaches only by luck, spelled out once.
#[ext4_testkit::oracle_test(e2fsprogs)]
fn rename_edge_cases_match_linux() {
    if !have_fsck() {
        return;
    }
    let kind = &KINDS[5];
    let img = format(kind, 16 << 20, "nsedge");
    let mut fs = open_fixed(&img.path);
    for d in ["/a", "/a/b", "/a/b/c", "/e", "/full"] {
        fs.mkdir(d, 0o755).unwrap();
    }
    fs.create("/full/f", 0o644).unwrap();
    fs.create("/f", 0o644).unwrap();
    fs.hard_link("/f", "/f2").unwrap();
    let check = |fs: &mut Filesystem, from: &str, to: &str, mode: RenameMode, want: Result<(), i32>| {
        assert_eq!(errno(fs.rename_with(from, to, mode)), want, "rename {from} -> {to} ({mode:?})");
    };
    check(&mut fs, "/a", "/a/b/x", RenameMode::Replace, Err(EINVAL));
    check(&mut fs, "/a", "/a/x", RenameMode::Replace, Err(EINVAL));
    check(&mut fs, "/a", "/a/b", RenameMode::Exchange, Err(EINVAL));
    check(&mut fs, "/a/b/c", "/a", RenameMode::Replace, Err(ENOTEMPTY));
    check(&mut fs, "/a/b/c", "/a", RenameMode::Exchange, Err(EINVAL));
    check(&mut fs, "/a", "/a/b", RenameMode::NoReplace, Err(EEXIST));
    check(&mut fs, "/f", "/f2", RenameMode::NoReplace, Err(EEXIST));
    check(&mut fs, "/f", "/f2", RenameMode::Replace, Ok(()));
    check(&mut fs, "/f", "/f2", RenameMode::Exchange, Ok(()));
    check(&mut fs, "/f", "/nope", RenameMode::Exchange, Err(ENOENT));
    check(&mut fs, "/f", "/e", RenameMode::Replace, Err(EISDIR));
    check(&mut fs, "/e", "/f", RenameMode::Replace, Err(ENOTDIR));
    check(&mut fs, "/e", "/full", RenameMode::Replace, Err(ENOTEMPTY));
    check(&mut fs, "/e", "/a/b/c", RenameMode::Replace, Ok(()));
    check(&mut fs, "/f", "/a/b", RenameMode::Exchange, Ok(()));
    assert_eq!(errno(fs.hard_link("/a/b", "/full/f")), Err(EEXIST), "link over an existing name");
    assert_eq!(errno(fs.hard_link("/full", "/g")), Err(EPERM), "link to a directory");
    fs.close().unwrap();
    let fs = open_ro(&img.path);
    assert!(fs.metadata("/f").unwrap().is_dir(), "/f is the exchanged directory");
    let names: Vec<Vec<u8>> = fs.read_dir("/f").unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(names, [b"c".to_vec()], "/f holds what /a/b held");
    assert!(fs.metadata("/a/b").unwrap().is_file(), "/a/b is the file now");
    assert_eq!(fs.metadata("/a/b").unwrap().nlink, 2, "/a/b and /f2");
    assert_eq!(fs.metadata("/a").unwrap().nlink, 2, "/a lost its subdirectory b");
    assert_eq!(fs.lookup("/f/..").unwrap(), ext4_fs::ondisk::ino::ROOT);
    drop(fs);
    common::assert_clean(&img.path);
}

/// A create right after a lookup that found nothing skips its own search
/// of the directory (FUSE sends LOOKUP, then MKNOD); whatever happens in
/// between makes it search again, so an existing name is still refused.
#[test]
fn a_create_after_a_failed_lookup_still_refuses_existing_names() {
    use ext4_fs::{Error, NewNode};
    let file = || NewNode::new(FileType::Regular, 0o644);
    for kind in KINDS {
        let img = format(kind, 8 << 20, "absent-memo");
        let mut fs = open_rw(&img.path);
        let root = 2;
        assert_eq!(fs.lookup_in(root, b"a").unwrap(), None);
        let a = fs.create_node(root, b"a", file(), None).unwrap();
        assert_eq!(fs.lookup_in(root, b"a").unwrap(), Some(a));
        let again = fs.create_node(root, b"a", file(), None);
        assert!(matches!(again, Err(Error::Exists(_))), "{}: the name made after the lookup: {again:?}", kind.name);

        // Absent, then made by another operation before the create.
        assert_eq!(fs.lookup_in(root, b"b").unwrap(), None);
        fs.rename_in(root, b"a", root, b"b", RenameMode::NoReplace).unwrap();
        let again = fs.create_node(root, b"b", file(), None);
        assert!(matches!(again, Err(Error::Exists(_))), "{}: renamed in after the lookup: {again:?}", kind.name);

        // Absent in one directory says nothing about another.
        let d = fs.create_node(root, b"d", NewNode::new(FileType::Directory, 0o755), None).unwrap();
        assert_eq!(fs.lookup_in(d, b"b").unwrap(), None);
        let again = fs.create_node(root, b"b", file(), None);
        assert!(matches!(again, Err(Error::Exists(_))), "{}: absent elsewhere: {again:?}", kind.name);
        let made = fs.create_node(d, b"b", file(), None).unwrap();
        assert_eq!(fs.lookup_in(d, b"b").unwrap(), Some(made));

        // A failed operation in between (undone) leaves the answer stale too.
        assert_eq!(fs.lookup_in(root, b"c").unwrap(), None);
        assert!(fs.create_node(root, b"c/x", file(), None).is_err());
        fs.create_node(root, b"c", file(), None).unwrap();
        fs.close().unwrap();
        if have_fsck() {
            common::assert_clean(&img.path);
        }
        let fs = open_ro(&img.path);
        let names: Vec<Vec<u8>> = fs.read_dir("/").unwrap().into_iter().map(|e| e.name).collect();
        for n in [&b"b"[..], b"c", b"d"] {
            assert_eq!(names.iter().filter(|x| x.as_slice() == n).count(), 1, "{}: {names:?}", kind.name);
        }
        assert!(!names.iter().any(|x| x == b"a"));
    }
}

//! Inline data (`inline_data`) written by the library: random sequences of
//! file and directory operations (small files created inline, grown past the
//! inline room into blocks and shrunk; inline directories filled until they
//! move to a block, emptied, renamed across, moved) against a model. After
//! each sequence the library (fresh open) and the kernel (loop mount) both
//! see the model's tree, and `e2fsck -fn` is silent.
//! `PROPTEST_CASES` sets the case count; failures are kept in
//! `proptest-regressions/` and replayed first.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Scratch, have_fsck, open_ro, open_rw};
use ext4_fs::{Error, Filesystem, InodeFlags, RenameMode};
use ext4_testkit::oracle::{LoopMount, can_loop_mount, debugfs, e2fsck_problems};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

/// An `inline_data` image configuration.
#[derive(Debug, Clone, Copy)]
struct Conf {
    name: &'static str,
    block_size: u32,
    inode_size: u32,
    features: &'static str,
}

const CONFS: &[Conf] = &[
    Conf { name: "1k-256", block_size: 1024, inode_size: 256, features: "inline_data,^metadata_csum" },
    Conf { name: "4k-256-csum", block_size: 4096, inode_size: 256, features: "inline_data" },
    Conf { name: "1k-1024-csum", block_size: 1024, inode_size: 1024, features: "inline_data" },
];

fn format_inline(c: &Conf, tag: &str) -> Scratch {
    common::format_ext4(&format!("inline-{}-{tag}", c.name), 16 << 20, c.block_size, c.inode_size, c.features)
}

/// A node of the model: a directory or a file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir,
    File(Vec<u8>),
}

type Model = BTreeMap<String, Node>;

#[derive(Debug, Clone)]
enum Op {
    Create { parent: u8, name: u8, len: u16, seed: u8 },
    Mkdir { parent: u8, name: u8 },
    Write { file: u8, offset: u16, len: u16, seed: u8 },
    Truncate { file: u8, size: u16 },
    Unlink { file: u8 },
    Rmdir { dir: u8 },
    Rename { src: u8, parent: u8, name: u8 },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (any::<u8>(), any::<u8>(), 0u16..300, any::<u8>()).prop_map(|(parent, name, len, seed)| Op::Create { parent, name, len, seed }),
        3 => (any::<u8>(), any::<u8>()).prop_map(|(parent, name)| Op::Mkdir { parent, name }),
        4 => (any::<u8>(), 0u16..200, 1u16..200, any::<u8>()).prop_map(|(file, offset, len, seed)| Op::Write { file, offset, len, seed }),
        2 => (any::<u8>(), 0u16..300).prop_map(|(file, size)| Op::Truncate { file, size }),
        2 => any::<u8>().prop_map(|file| Op::Unlink { file }),
        1 => any::<u8>().prop_map(|dir| Op::Rmdir { dir }),
        3 => (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(src, parent, name)| Op::Rename { src, parent, name }),
        1 => Just(Op::Reopen),
    ]
}

/// Names of 1 to 40 bytes, so directories fill at different rates.
fn entry_name(n: u8) -> String {
    let len = 1 + usize::from(n) % 40;
    let mut s = format!("n{n}");
    while s.len() < len {
        s.push(char::from(b'a' + (s.len() % 26) as u8));
    }
    s
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add((i / 3) as u8).wrapping_mul(29) | 1).collect()
}

fn join(parent: &str, name: &str) -> String {
    format!("{parent}/{name}")
}

fn pick(model: &Model, i: u8, dirs: bool) -> Option<&String> {
    let v: Vec<&String> = model.iter().filter(|(_, n)| (**n == Node::Dir) == dirs).map(|(p, _)| p).collect();
    (!v.is_empty()).then(|| v[usize::from(i) % v.len()])
}

fn apply(fs: &mut Filesystem, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    match *op {
        Op::Create { parent, name, len, seed } => {
            let path = join(pick(model, parent, true).unwrap(), &entry_name(name));
            let data = pattern(seed, len.into());
            let r = fs.write_file(&path, &data);
            // write_file replaces an existing file; it fails on a directory.
            match model.get(&path) {
                Some(Node::Dir) => prop_assert!(r.is_err(), "write_file over directory {path}"),
                _ => {
                    r.map_err(|e| TestCaseError::fail(format!("write_file {path}: {e}")))?;
                    model.insert(path, Node::File(data));
                }
            }
        }
        Op::Mkdir { parent, name } => {
            let path = join(pick(model, parent, true).unwrap(), &entry_name(name));
            let r = fs.mkdir(&path, 0o755);
            prop_assert_eq!(r.is_ok(), !model.contains_key(&path), "mkdir {} {:?}", path, r);
            model.entry(path).or_insert(Node::Dir);
        }
        Op::Write { file, offset, len, seed } => {
            let Some(path) = pick(model, file, false).cloned() else { return Ok(()) };
            let bytes = pattern(seed, len.into());
            let ino = fs.lookup(&path).unwrap();
            fs.write_at(ino, offset.into(), &bytes).map_err(|e| TestCaseError::fail(format!("write {path}: {e}")))?;
            let Some(Node::File(data)) = model.get_mut(&path) else { unreachable!() };
            let end = usize::from(offset) + bytes.len();
            if data.len() < end {
                data.resize(end, 0);
            }
            data[offset.into()..end].copy_from_slice(&bytes);
        }
        Op::Truncate { file, size } => {
            let Some(path) = pick(model, file, false).cloned() else { return Ok(()) };
            let ino = fs.lookup(&path).unwrap();
            fs.truncate(ino, size.into()).map_err(|e| TestCaseError::fail(format!("truncate {path}: {e}")))?;
            let Some(Node::File(data)) = model.get_mut(&path) else { unreachable!() };
            data.resize(size.into(), 0);
        }
        Op::Unlink { file } => {
            let Some(path) = pick(model, file, false).cloned() else { return Ok(()) };
            fs.remove_file(&path).map_err(|e| TestCaseError::fail(format!("unlink {path}: {e}")))?;
            model.remove(&path);
        }
        Op::Rmdir { dir } => {
            let path = pick(model, dir, true).unwrap().clone();
            if path.is_empty() {
                return Ok(());
            }
            let prefix = format!("{path}/");
            let empty = !model.keys().any(|k| k.starts_with(&prefix));
            let r = fs.remove_dir(&path);
            prop_assert_eq!(r.is_ok(), empty, "rmdir {} {:?}", path, r);
            if empty {
                model.remove(&path);
            }
        }
        Op::Rename { src, parent, name } => {
            let all: Vec<String> = model.keys().filter(|k| !k.is_empty()).cloned().collect();
            if all.is_empty() {
                return Ok(());
            }
            let from = all[usize::from(src) % all.len()].clone();
            let to = join(pick(model, parent, true).unwrap(), &entry_name(name));
            let r = fs.rename_with(&from, &to, RenameMode::NoReplace);
            let into_itself = to.starts_with(&format!("{from}/"));
            if from == to || model.contains_key(&to) {
                prop_assert!(matches!(r, Err(Error::Exists(_))), "rename {} -> {} over an existing name: {:?}", from, to, r);
            } else if into_itself {
                prop_assert!(matches!(r, Err(Error::InvalidArgument(_))), "rename {} into itself {}: {:?}", from, to, r);
            } else {
                r.map_err(|e| TestCaseError::fail(format!("rename {from} -> {to}: {e}")))?;
                let prefix = format!("{from}/");
                let moved: Vec<String> = model.keys().filter(|k| **k == from || k.starts_with(&prefix)).cloned().collect();
                for k in moved {
                    let node = model.remove(&k).unwrap();
                    model.insert(format!("{to}{}", &k[from.len()..]), node);
                }
            }
        }
        Op::Reopen => unreachable!("handled by the caller"),
    }
    Ok(())
}

/// The tree as the library sees it.
fn library_tree(fs: &Filesystem, dir: &str, out: &mut Model) {
    for e in fs.read_dir(if dir.is_empty() { "/" } else { dir }).unwrap() {
        let path = join(dir, &e.name_lossy());
        if path == "/lost+found" {
            continue;
        }
        let ino = fs.lookup(&path).unwrap();
        if fs.stat(ino).unwrap().is_dir() {
            out.insert(path.clone(), Node::Dir);
            library_tree(fs, &path, out);
        } else {
            out.insert(path.clone(), Node::File(fs.read(&path).unwrap()));
        }
    }
}

/// The tree as the kernel sees it under `root`.
fn kernel_tree(root: &Path, dir: &str, out: &mut Model) {
    for e in std::fs::read_dir(root.join(dir.trim_start_matches('/'))).unwrap() {
        let e = e.unwrap();
        let path = join(dir, &e.file_name().to_string_lossy());
        if path == "/lost+found" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            out.insert(path.clone(), Node::Dir);
            kernel_tree(root, &path, out);
        } else {
            out.insert(path.clone(), Node::File(std::fs::read(e.path()).unwrap()));
        }
    }
}

fn check(img: &Path, model: &Model, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut expected = model.clone();
    expected.remove("");
    let fs = open_ro(img);
    let mut got = Model::new();
    library_tree(&fs, "", &mut got);
    drop(fs);
    prop_assert!(got == expected, "library tree differs after {:?}:\n got {:?}\nwant {:?}", ops, got.keys(), expected.keys());
    if let Some(p) = e2fsck_problems(img) {
        return Err(TestCaseError::fail(format!("e2fsck after {ops:?}:\n{p}")));
    }
    if can_loop_mount() {
        let m = LoopMount::new(img, "ro").map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut seen = Model::new();
        kernel_tree(m.path(), "", &mut seen);
        m.unmount().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(seen == expected, "kernel tree differs after {:?}", ops);
    }
    Ok(())
}

fn run_case(c: &Conf, ops: &[Op], case: usize) -> Result<(), TestCaseError> {
    let img = format_inline(c, &format!("model{case}"));
    let mut fs = Some(open_rw(&img.path));
    let mut model = Model::new();
    model.insert(String::new(), Node::Dir);
    for op in ops {
        if let Op::Reopen = op {
            fs.take().unwrap().close().unwrap();
            fs = Some(open_rw(&img.path));
            continue;
        }
        apply(fs.as_mut().unwrap(), &mut model, op)?;
    }
    fs.take().unwrap().close().unwrap();
    check(&img.path, &model, ops)
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn random_inline_operations_match_the_model() {
    if !have_fsck() {
        return;
    }
    // Without root and loop devices only the kernel part is left out (outside CI).
    ext4_testkit::require(can_loop_mount(), "the kernel part: not root or no loop devices");
    for c in CONFS {
        let mut runner = TestRunner::new(ext4_testkit::prop::config(24, &format!("inline_data-{}", c.name)));
        let case = std::cell::Cell::new(0);
        runner
            .run(&proptest::collection::vec(op(), 1..60), |ops| {
                case.set(case.get() + 1);
                run_case(c, &ops, case.get())
            })
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
    }
}

/// Whether the inode at `path` keeps its data inline.
fn is_inline(fs: &Filesystem, path: &str) -> bool {
    let ino = fs.lookup(path).unwrap();
    fs.read_inode(ino).unwrap().inode.flags.contains(InodeFlags::INLINE_DATA)
}

/// The kernel's thresholds on 256-byte inodes: 128 bytes stay inline
/// (60 in `i_block`, 68 in `system.data`), 129 do not; an empty file is not
/// inline; a growing truncate moves the data to a block; a shrinking one
/// keeps it inline. A directory stays inline until its entries pass the room.
#[ext4_testkit::oracle_test(e2fsprogs)]
fn inline_thresholds_match_the_kernel() {
    if !have_fsck() {
        return;
    }
    let img = format_inline(&CONFS[0], "thresholds");
    let mut fs = open_rw(&img.path);
    let f128 = fs.write_file("/f128", &[7; 128]).unwrap();
    // The inline bytes are no attribute (the kernel has no system.data handler).
    assert!(matches!(fs.get_xattr(f128, b"system.data"), Err(Error::NoAttribute)));
    assert!(fs.xattrs_ino(f128).unwrap().is_empty());
    fs.write_file("/f129", &[8; 129]).unwrap();
    fs.create("/empty", 0o644).unwrap();
    let grow = fs.write_file("/grow", &[1; 10]).unwrap();
    fs.truncate(grow, 100).unwrap();
    let shrink = fs.write_file("/shrink", &[2; 100]).unwrap();
    fs.truncate(shrink, 20).unwrap();
    let append = fs.write_file("/append", &[3; 100]).unwrap();
    fs.write_at(append, 100, &[4; 100]).unwrap();
    fs.mkdir("/d", 0o755).unwrap();
    for i in 0..6 {
        fs.create(format!("/d/name{i}"), 0o644).unwrap();
    }
    fs.mkdir("/seven", 0o755).unwrap();
    fs.mkdir("/full", 0o755).unwrap();
    for i in 0..7 {
        fs.create(format!("/seven/name{i}"), 0o644).unwrap();
    }
    for i in 0..8 {
        fs.create(format!("/full/name{i}"), 0o644).unwrap();
    }
    let cases = [("/f128", true), ("/f129", false), ("/empty", false), ("/grow", false), ("/shrink", true), ("/append", false)];
    for (path, inline) in cases {
        assert_eq!(is_inline(&fs, path), inline, "{path}");
    }
    // Six 5-byte names: three in i_block, three in a system.data grown to 68 bytes.
    assert!(is_inline(&fs, "/d"));
    assert_eq!(fs.stat(fs.lookup("/d").unwrap()).unwrap().size, 128);
    // Seven fit (the kernel agrees), the eighth moves the directory to a block.
    assert!(is_inline(&fs, "/seven"));
    assert!(!is_inline(&fs, "/full"));
    assert_eq!(fs.read_dir("/full").unwrap().len(), 8);
    assert_eq!(fs.read("/append").unwrap(), [[3u8; 100], [4u8; 100]].concat());
    assert_eq!(fs.read("/grow").unwrap(), [vec![1u8; 10], vec![0u8; 90]].concat());
    fs.close().unwrap();
    let ea = debugfs(&img.path, "ea_list /f128");
    assert!(ea.contains("system.data (68)"), "{ea}");
    let ea = debugfs(&img.path, "ea_list /shrink");
    assert!(ea.contains("system.data (0)"), "{ea}");
    common::assert_clean(&img.path);
}

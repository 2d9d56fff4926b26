//! Big directories built through the library (issue 5): many entries with
//! names of varied lengths, then half removed and a quarter renamed (inside
//! the directory and to another one). Judged by `e2fsck -fn`, by
//! `debugfs htree_dump` (an index, and three levels on a `large_dir` image
//! with 1 KiB blocks and long names), and by the kernel, which must list
//! exactly the expected names and `stat` each one to the same inode and type.
//!
//! `EXT4_BIG=1` uses 100,000 entries instead of 20,000.

mod common;

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::Path;
use std::time::Instant;

use common::{Scratch, have_fsck, open_ro, open_rw};
use ext4_fs::{FileDevice, FileType, Filesystem};
use ext4_mkfs::{self as mkfs, FormatOptions, FsType, Profile};
use ext4_testkit::oracle::{LoopMount, can_loop_mount, debugfs, e2fsck_problems};

/// One image shape of the test.
struct BigKind {
    name: &'static str,
    fs_type: FsType,
    block_size: u32,
    features: &'static str,
    /// Whether every name is long (200..=255 bytes), to deepen the index.
    long_names: bool,
    /// Entries created by default and with `EXT4_BIG=1`.
    entries: (usize, usize),
    /// Index levels below the root that `htree_dump` must show, at least
    /// (0: the root points at leaves; a 4 KiB root alone holds ~50,000 names).
    min_levels: u32,
}

const BIG_KINDS: &[BigKind] = &[
    BigKind {
        name: "ext4-1k",
        fs_type: FsType::Ext4,
        block_size: 1024,
        features: "",
        long_names: false,
        entries: (20_000, 100_000),
        min_levels: 1,
    },
    BigKind {
        name: "ext4-2k",
        fs_type: FsType::Ext4,
        block_size: 2048,
        features: "",
        long_names: false,
        entries: (20_000, 100_000),
        min_levels: 1,
    },
    BigKind {
        name: "ext4-4k",
        fs_type: FsType::Ext4,
        block_size: 4096,
        features: "",
        long_names: false,
        entries: (20_000, 100_000),
        min_levels: 0,
    },
    // 1 KiB leaves hold three 255-byte names: about 12,000 leaves fill two
    // index levels (123 x 126 slots, half-full nodes after splits).
    BigKind {
        name: "ext4-1k-large_dir",
        fs_type: FsType::Ext4,
        block_size: 1024,
        features: "large_dir",
        long_names: true,
        entries: (36_000, 100_000),
        min_levels: 2,
    },
    // Without dir_index every directory stays linear (no htree_dump check).
    BigKind {
        name: "ext2-1k-linear",
        fs_type: FsType::Ext2,
        block_size: 1024,
        features: "^dir_index",
        long_names: false,
        entries: (4_000, 10_000),
        min_levels: 0,
    },
];

fn big() -> bool {
    std::env::var("EXT4_BIG").is_ok_and(|v| v == "1")
}

/// Formats an ext4 image with room for `inodes` inodes.
fn format(kind: &BigKind, size: u64, inodes: u64) -> Scratch {
    let scratch = Scratch::new(&format!("ns-{}.img", kind.name));
    let dev = FileDevice::create(&scratch.path, size).expect("image file");
    let mut opts = FormatOptions::new(kind.fs_type)
        .profile(Profile::DEBIAN)
        .size_bytes(size)
        .block_size(kind.block_size)
        .uuid([5; 16])
        .hash_seed([3; 16])
        .time(1_700_000_000);
    opts.inode_count = Some(inodes);
    if !kind.features.is_empty() {
        opts = opts.features(kind.features).expect("features");
    }
    mkfs::format(&dev, &opts, &mut |_| std::ops::ControlFlow::Continue(())).expect("format");
    scratch
}

/// Entry `i`'s name: unique, of a length that varies with `i`.
fn entry_name(i: usize, long: bool) -> Vec<u8> {
    let len = if long {
        200 + (i * 7) % 56
    } else if i % 10 == 0 {
        100 + (i * 13) % 156
    } else {
        1 + (i * 7919) % 40
    };
    let mut n = format!("{i:x}_").into_bytes();
    let fill = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.";
    let mut k = i;
    while n.len() < len {
        n.push(fill[k % fill.len()]);
        k = k / 3 + n.len();
    }
    n
}

/// What the test put in an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Made {
    File,
    Dir,
    Symlink(Vec<u8>),
    /// A hard link to `/other/anchor`.
    Link,
}

impl Made {
    fn of(i: usize) -> Self {
        if i % 50 == 7 {
            Made::Dir
        } else if i % 37 == 3 {
            // Short (in-inode) and long (block) targets.
            let len = if i % 2 == 0 { 20 } else { 300 };
            Made::Symlink(std::iter::repeat_n(b'/', 1).chain((0..len).map(|k| b'a' + ((i + k) % 26) as u8)).collect())
        } else if i % 101 == 5 {
            Made::Link
        } else {
            Made::File
        }
    }

    fn file_type(&self) -> FileType {
        match self {
            Made::File | Made::Link => FileType::Regular,
            Made::Dir => FileType::Directory,
            Made::Symlink(_) => FileType::Symlink,
        }
    }
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    [dir, b"/", name].concat()
}

/// The expected contents of `/big` and `/other` after the run.
#[derive(Default)]
struct Expected {
    big: BTreeMap<Vec<u8>, Made>,
    other: BTreeMap<Vec<u8>, Made>,
}

/// Builds, thins and renames; returns what each directory must hold.
fn build(fs: &mut Filesystem, n: usize, long: bool) -> Expected {
    fs.mkdir("/big", 0o755).unwrap();
    fs.mkdir("/other", 0o755).unwrap();
    fs.create("/other/anchor", 0o644).unwrap();
    let mut exp = Expected::default();
    exp.other.insert(b"anchor".to_vec(), Made::Link);
    for i in 0..n {
        let name = entry_name(i, long);
        let path = join(b"/big", &name);
        let made = Made::of(i);
        match &made {
            Made::File => drop(fs.create(&path, 0o644).unwrap()),
            Made::Dir => drop(fs.mkdir(&path, 0o755).unwrap()),
            Made::Symlink(t) => drop(fs.symlink(t, &path).unwrap()),
            Made::Link => fs.hard_link("/other/anchor", &path).unwrap(),
        }
        exp.big.insert(name, made);
    }
    // Remove every even entry.
    for i in (0..n).step_by(2) {
        let name = entry_name(i, long);
        let path = join(b"/big", &name);
        let made = exp.big.remove(&name).unwrap();
        if made == Made::Dir { fs.remove_dir(&path) } else { fs.remove_file(&path) }.unwrap_or_else(|e| panic!("remove {i}: {e}"));
    }
    // Rename a quarter: i % 8 == 1 within /big, i % 8 == 5 to /other.
    for i in (1..n).step_by(4) {
        let name = entry_name(i, long);
        let made = exp.big.remove(&name).unwrap();
        if i % 8 == 1 {
            let mut new = b"r".to_vec();
            new.extend_from_slice(&name[..name.len().min(254)]);
            fs.rename(join(b"/big", &name), join(b"/big", &new)).unwrap_or_else(|e| panic!("rename {i}: {e}"));
            assert!(exp.big.insert(new, made).is_none());
        } else {
            fs.rename(join(b"/big", &name), join(b"/other", &name)).unwrap_or_else(|e| panic!("move {i}: {e}"));
            exp.other.insert(name, made);
        }
    }
    exp
}

/// The library's view of a directory: name -> (inode, type, symlink target).
type View = BTreeMap<Vec<u8>, (u32, FileType, Option<Vec<u8>>)>;

fn library_view(fs: &Filesystem, dir: &str) -> View {
    let mut m = BTreeMap::new();
    for e in fs.read_dir(dir).unwrap() {
        let md = fs.stat(e.ino).unwrap();
        assert_eq!(e.file_type, Some(md.file_type), "{dir}/{}: entry type differs from the inode's", e.name_lossy());
        let target = (md.file_type == FileType::Symlink).then(|| fs.read_link_ino(e.ino).unwrap());
        assert!(m.insert(e.name.clone(), (e.ino, md.file_type, target)).is_none(), "{dir}/{}: listed twice", e.name_lossy());
    }
    m
}

fn check_library(fs: &Filesystem, dir: &str, exp: &BTreeMap<Vec<u8>, Made>, anchor_links: u32) {
    let got = library_view(fs, dir);
    let missing: Vec<_> = exp.keys().filter(|k| !got.contains_key(*k)).map(|k| String::from_utf8_lossy(k).into_owned()).collect();
    let extra: Vec<_> = got.keys().filter(|k| !exp.contains_key(*k)).map(|k| String::from_utf8_lossy(k).into_owned()).collect();
    assert!(missing.is_empty() && extra.is_empty(), "{dir}: missing {missing:?}, unexpected {extra:?}");
    for (name, made) in exp {
        let (ino, ft, target) = &got[name];
        assert_eq!(*ft, made.file_type(), "{dir}/{}", String::from_utf8_lossy(name));
        if let Made::Symlink(t) = made {
            assert_eq!(target.as_ref(), Some(t), "{dir}/{}: symlink target", String::from_utf8_lossy(name));
        }
        // Every lookup goes through the index.
        let path = join(dir.as_bytes(), name);
        assert_eq!(fs.lookup_nofollow(&path).unwrap(), *ino, "lookup {}", String::from_utf8_lossy(&path));
        if *made == Made::Link {
            assert_eq!(fs.stat(*ino).unwrap().nlink, anchor_links);
        }
    }
}

/// `Indirect levels: N` from `debugfs htree_dump`.
fn htree_levels(image: &Path, dir: &str) -> u32 {
    let dump = debugfs(image, &format!("htree_dump {dir}"));
    let line = dump.lines().find(|l| l.trim_start().starts_with("Indirect levels:"));
    let line = line.unwrap_or_else(|| panic!("htree_dump {dir} shows no index:\n{}", &dump[..dump.len().min(2000)]));
    line.split(':').nth(1).unwrap().trim().parse().unwrap()
}

/// The kernel lists the directory and stats each name: same names, inodes and types.
fn check_kernel(mount: &Path, dir: &str, fs: &Filesystem) {
    let want = library_view(fs, dir);
    let mut got = BTreeMap::new();
    for e in std::fs::read_dir(mount.join(&dir[1..])).unwrap() {
        let e = e.unwrap();
        let md = std::fs::symlink_metadata(e.path()).unwrap_or_else(|err| panic!("kernel stat {}: {err}", e.path().display()));
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            FileType::Directory
        } else if ft.is_symlink() {
            FileType::Symlink
        } else if ft.is_file() {
            FileType::Regular
        } else {
            panic!("{}: unexpected type {ft:?}", e.path().display());
        };
        assert_eq!(e.ino(), md.ino(), "{}: readdir and stat disagree", e.path().display());
        got.insert(e.file_name().as_bytes().to_vec(), (md.ino() as u32, kind));
    }
    let want: BTreeMap<Vec<u8>, (u32, FileType)> = want.into_iter().map(|(k, (i, t, _))| (k, (i, t))).collect();
    if want != got {
        let missing: Vec<_> =
            want.keys().filter(|k| !got.contains_key(*k)).take(10).map(|k| String::from_utf8_lossy(k).into_owned()).collect();
        let extra: Vec<_> =
            got.keys().filter(|k| !want.contains_key(*k)).take(10).map(|k| String::from_utf8_lossy(k).into_owned()).collect();
        panic!("kernel view of {dir} differs ({} vs {} names): missing {missing:?}, unexpected {extra:?}", got.len(), want.len());
    }
}

fn run_kind(kind: &BigKind) {
    let n = if big() { kind.entries.1 } else { kind.entries.0 };
    let started = Instant::now();
    let size = if kind.block_size == 1024 { 256u64 << 20 } else { 512 << 20 };
    let img = format(kind, size, n as u64 + 4096);
    let mut fs = open_rw(&img.path);
    // A clock in the past: see namespace_model.rs (`time(2)` is coarser than ours).
    fs.set_fixed_time(Some(ext4_fs::Timestamp::from_secs(1_700_000_100)));
    let exp = build(&mut fs, n, kind.long_names);
    fs.close().unwrap();
    let built = started.elapsed();

    let fs = open_ro(&img.path);
    let links = 1 + (0..n).filter(|&i| i % 2 == 1 && Made::of(i) == Made::Link).count() as u32;
    check_library(&fs, "/big", &exp.big, links);
    check_library(&fs, "/other", &exp.other, links);
    let root = fs.metadata("/").unwrap();
    assert_eq!(root.nlink, 5, "root: ., .., lost+found, big, other");
    let subdirs = |m: &BTreeMap<Vec<u8>, Made>| m.values().filter(|v| **v == Made::Dir).count() as u32;
    assert_eq!(fs.metadata("/big").unwrap().nlink, 2 + subdirs(&exp.big));
    assert_eq!(fs.metadata("/other").unwrap().nlink, 2 + subdirs(&exp.other));

    if let Some(p) = e2fsck_problems(&img.path) {
        panic!("{}: e2fsck after building {n} entries:\n{}", kind.name, &p[..p.len().min(4000)]);
    }
    if kind.features.contains("^dir_index") {
        assert!(!fs.metadata("/big").unwrap().flags.contains(ext4_fs::InodeFlags::INDEX), "{}: /big is indexed", kind.name);
        check_kernel_sees(&img.path, &fs, kind);
        return;
    }
    let levels = htree_levels(&img.path, "/big");
    assert!(
        levels >= kind.min_levels,
        "{}: /big has {levels} index levels below the root, expected at least {}",
        kind.name,
        kind.min_levels
    );
    if !kind.features.contains("large_dir") {
        assert!(levels <= 1);
    }
    println!("{}: {n} entries, {} left in /big, {levels} index levels, built in {built:.1?}", kind.name, exp.big.len());

    check_kernel_sees(&img.path, &fs, kind);
}

/// The kernel lists and stats both directories, then grows and thins `/big`
/// itself (splitting the library's leaves and index nodes); e2fsck stays
/// silent and the library lists what the kernel left.
fn check_kernel_sees(image: &Path, fs: &Filesystem, kind: &BigKind) {
    if !ext4_testkit::require(can_loop_mount(), "kernel check of big directories needs root and loop devices") {
        return;
    }
    let started = Instant::now();
    let m = LoopMount::new(image, "ro").expect("kernel mounts the image");
    check_kernel(m.path(), "/big", fs);
    check_kernel(m.path(), "/other", fs);
    m.unmount().unwrap();
    let m = LoopMount::new(image, "").expect("kernel mounts the image read-write");
    let big = m.path().join("big");
    let before: Vec<std::ffi::OsString> = std::fs::read_dir(&big).unwrap().map(|e| e.unwrap().file_name()).collect();
    for (k, name) in before.iter().enumerate().filter(|(k, _)| k % 5 == 0) {
        let p = big.join(name);
        if p.symlink_metadata().unwrap().is_dir() { std::fs::remove_dir(&p) } else { std::fs::remove_file(&p) }
            .unwrap_or_else(|e| panic!("kernel removes entry {k}: {e}"));
    }
    for i in 0..3000 {
        let mut n = entry_name(1_000_000 + i, kind.long_names);
        n.insert(0, b'k');
        n.truncate(255);
        std::fs::write(big.join(std::ffi::OsStr::from_bytes(&n)), b"").unwrap();
    }
    let mut theirs: Vec<Vec<u8>> = std::fs::read_dir(&big).unwrap().map(|e| e.unwrap().file_name().as_bytes().to_vec()).collect();
    m.unmount().unwrap();
    if let Some(p) = e2fsck_problems(image) {
        panic!("{}: e2fsck after the kernel wrote into the library's directory:\n{}", kind.name, &p[..p.len().min(4000)]);
    }
    let fs = open_ro(image);
    let mut ours: Vec<Vec<u8>> = fs.read_dir("/big").unwrap().into_iter().map(|e| e.name).collect();
    theirs.sort();
    ours.sort();
    assert!(ours == theirs, "{}: library lists {} names after the kernel's changes, the kernel {}", kind.name, ours.len(), theirs.len());
    println!("{}: kernel agrees, and its changes read back ({:.1?})", kind.name, started.elapsed());
}

#[test]
fn entry_names_are_unique_and_valid() {
    for long in [false, true] {
        let mut seen = std::collections::HashSet::new();
        for i in 0..100_000 {
            let n = entry_name(i, long);
            assert!(!n.is_empty() && n.len() <= 255 && !n.contains(&b'/') && n != b"." && n != b"..", "{i}");
            assert!(seen.insert(n), "duplicate name for {i}");
        }
    }
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn big_directory_1k() {
    if have_fsck() {
        run_kind(&BIG_KINDS[0]);
    }
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn big_directory_2k() {
    if have_fsck() {
        run_kind(&BIG_KINDS[1]);
    }
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn big_directory_4k() {
    if have_fsck() {
        run_kind(&BIG_KINDS[2]);
    }
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn big_directory_1k_large_dir_three_levels() {
    if have_fsck() {
        run_kind(&BIG_KINDS[3]);
    }
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn big_linear_directory_ext2_1k() {
    if have_fsck() {
        run_kind(&BIG_KINDS[4]);
    }
}

/// Past 65,000 links a directory's count becomes 1 (`dir_nlink`, as
/// `ext4_inc_count` does), and removing a few subdirectories leaves it at 1;
/// e2fsck and the kernel accept both states.
#[ext4_testkit::oracle_test(e2fsprogs)]
fn many_subdirectories_count_as_one_link() {
    if !have_fsck() {
        return;
    }
    let kind = BigKind {
        name: "ext4-1k-dir_nlink",
        fs_type: FsType::Ext4,
        block_size: 1024,
        features: "",
        long_names: false,
        entries: (65_010, 65_010),
        min_levels: 1,
    };
    let n = kind.entries.0;
    let started = Instant::now();
    let img = format(&kind, 160 << 20, n as u64 + 1024);
    let mut fs = open_rw(&img.path);
    fs.set_fixed_time(Some(ext4_fs::Timestamp::from_secs(1_700_000_100)));
    fs.mkdir("/many", 0o755).unwrap();
    for i in 0..n {
        fs.mkdir(format!("/many/{i}"), 0o755).unwrap_or_else(|e| panic!("mkdir {i}: {e}"));
        match i {
            64_990 => assert_eq!(fs.metadata("/many").unwrap().nlink, 64_993, "exact below the limit"),
            64_997 => assert_eq!(fs.metadata("/many").unwrap().nlink, 65_000, "the limit itself is still exact"),
            64_998 => assert_eq!(fs.metadata("/many").unwrap().nlink, 1, "one past the limit"),
            _ => {}
        }
    }
    assert_eq!(fs.metadata("/many").unwrap().nlink, 1, "past the limit the count is 1");
    for i in 0..5 {
        fs.remove_dir(format!("/many/{i}")).unwrap();
    }
    fs.rename("/many/10", "/d10").unwrap();
    assert_eq!(fs.metadata("/many").unwrap().nlink, 1, "stays 1 while many subdirectories remain");
    assert_eq!(fs.metadata("/").unwrap().nlink, 5, "root: lost+found, many, d10");
    fs.close().unwrap();
    if let Some(p) = e2fsck_problems(&img.path) {
        panic!("e2fsck with {n} subdirectories:\n{}", &p[..p.len().min(4000)]);
    }
    if ext4_testkit::require(can_loop_mount(), "kernel check of dir_nlink needs root and loop devices") {
        let m = LoopMount::new(&img.path, "ro").expect("kernel mounts the image");
        assert_eq!(std::fs::metadata(m.path().join("many")).unwrap().nlink(), 1);
        assert_eq!(std::fs::read_dir(m.path().join("many")).unwrap().count(), n - 6);
        m.unmount().unwrap();
    }
    println!("{}: {n} subdirectories in {:.1?}", kind.name, started.elapsed());
}

//! Copying trees in with the `ext4` binary (issue 4, "done when" 2), judged
//! by `e2fsck -fn`, `dumpe2fs` and the kernel:
//!
//! * `ext4 mkfs -d TREE` and `ext4 put -r` of a `make-tree.py` tree (small
//!   by default, medium with `EXT4_MEDIUM=1`) plus a tree of what
//!   make-tree.py lacks (devices, FIFOs, sockets, owners, nanosecond times,
//!   more hard links and xattrs): e2fsck is silent and the kernel's view of
//!   the image equals the source (names, types, modes, owners, mtimes,
//!   xattrs, hard links, contents).
//! * Then half the files go through `ext4 rm` (and a subtree through
//!   `rm -r`), new files come in through `ext4 put` and `ext4 write`: more
//!   data than was ever free before the deletion, so freed space must be
//!   reused; after each step the free block count equals the image's size
//!   minus the blocks the kernel sees in use (the hidden overhead stays the
//!   same), e2fsck is silent, and the kernel's view equals the expected tree.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{assert_clean, dumpe2fs_field, have_fsck, ok, unmount};
use ext4_fs::FileType;
use ext4_testkit::fixtures::TreeSize;
use ext4_testkit::oracle::{LoopMount, can_loop_mount};
use ext4_testkit::snapshot::Snapshot;

fn prerequisites() -> bool {
    have_fsck() && ext4_testkit::require(can_loop_mount(), "needs root and loop devices for kernel mounts")
}

fn tree_size() -> TreeSize {
    if std::env::var_os("EXT4_MEDIUM").is_some_and(|v| v == "1") { TreeSize::Medium } else { TreeSize::Small }
}

/// Bytes the host uses for `dir` (allocated blocks), for sizing images.
fn host_usage(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let md = e.metadata().unwrap();
        total += md.blocks() * 512;
        if md.is_dir() {
            total += host_usage(&e.path());
        }
    }
    total
}

/// Deterministic bytes, different for every `seed`.
fn data(seed: u64, len: usize) -> Vec<u8> {
    ext4_testkit::noise(seed, len)
}

fn set_mtime(p: &Path, secs: i64, nsec: u32) {
    let t = filetime::FileTime::from_unix_time(secs, nsec);
    filetime::set_symlink_file_times(p, t, t).unwrap();
}

fn mknod(p: &Path, kind: &str, major: u32, minor: u32) {
    let mut c = std::process::Command::new("mknod");
    c.arg(p).arg(kind);
    if kind != "p" {
        c.arg(major.to_string()).arg(minor.to_string());
    }
    let st = c.status().unwrap();
    assert!(st.success(), "mknod {}", p.display());
}

/// What make-tree.py does not make: device nodes, a FIFO, a socket, owners
/// beyond 16 bits, set-id and sticky bits, nanosecond times, a file with
/// three links in three directories, xattrs on directories and empty files,
/// holes at both ends of a file.
fn extras(root: &Path) {
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    std::fs::create_dir(root.join("sticky")).unwrap();
    mknod(&root.join("null"), "c", 1, 3);
    mknod(&root.join("a/disk"), "b", 259, 70000);
    mknod(&root.join("fifo"), "p", 0, 0);
    drop(std::os::unix::net::UnixListener::bind(root.join("a/sock")).unwrap());
    std::fs::write(root.join("a/b/linked"), data(1, 5000)).unwrap();
    std::fs::hard_link(root.join("a/b/linked"), root.join("a/linked2")).unwrap();
    std::fs::hard_link(root.join("a/b/linked"), root.join("linked3")).unwrap();
    let sparse = std::fs::File::create(root.join("a/holes")).unwrap();
    use std::os::unix::fs::FileExt;
    sparse.write_all_at(&data(2, 10000), 3 << 20).unwrap();
    sparse.set_len(9 << 20).unwrap();
    std::fs::write(root.join("empty-with-xattrs"), b"").unwrap();
    std::os::unix::fs::symlink("a/b/linked", root.join("a/rel-link")).unwrap();
    for (name, mode) in [("setuid", 0o4755), ("setgid", 0o2750), ("private", 0o600)] {
        std::fs::write(root.join(name), data(3, 100)).unwrap();
        std::fs::set_permissions(root.join(name), std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    }
    std::fs::set_permissions(root.join("sticky"), std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    let xattr = |p: &str, n: &str, v: &[u8]| xattr::set(root.join(p), n, v).unwrap();
    xattr("a", "user.dir", b"directory attribute");
    xattr("empty-with-xattrs", "user.one", b"1");
    xattr("empty-with-xattrs", "user.empty", b"");
    xattr("empty-with-xattrs", "user.bigger", &data(4, 500));
    xattr("a/b/linked", "user.shared-by-links", b"three names, one inode");
    let owners = [("setuid", 1000, 1000), ("a/disk", 65534, 65534), ("a/b", 123_456, 654_321), ("fifo", 70_000, 5)];
    for (p, u, g) in owners {
        std::os::unix::fs::lchown(root.join(p), Some(u), Some(g)).unwrap();
    }
    std::os::unix::fs::lchown(root.join("a/rel-link"), Some(42), Some(43)).unwrap();
    // Times last, children before parents, with nanoseconds.
    let mut n = 0;
    let mut stamp = |p: &Path| {
        n += 1;
        set_mtime(p, 1_600_000_000 + n * 3600, (n as u32 * 123_456_789) % 1_000_000_000);
    };
    for p in [
        "a/b/linked",
        "a/holes",
        "a/disk",
        "a/sock",
        "a/rel-link",
        "a/b",
        "a",
        "null",
        "fifo",
        "setuid",
        "setgid",
        "private",
        "sticky",
        "empty-with-xattrs",
    ] {
        stamp(&root.join(p));
    }
}

/// `snap` with every path below `prefix/`.
fn rebase(snap: &Snapshot, prefix: &str) -> BTreeMap<Vec<u8>, ext4_testkit::snapshot::Node> {
    let pre = |p: &[u8]| [prefix.as_bytes(), b"/", p].concat();
    snap.nodes
        .iter()
        .map(|(p, n)| {
            let mut n = n.clone();
            n.link_group = n.link_group.as_deref().map(pre);
            (pre(p), n)
        })
        .collect()
}

/// The kernel's view of the whole image (lost+found left out).
fn kernel_view(m: &LoopMount) -> Snapshot {
    let mut s = Snapshot::from_host(m.path()).unwrap();
    s.remove_tree(b"lost+found");
    s
}

/// Blocks in use by every inode the kernel can see (each inode once).
fn visible_blocks(root: &Path, bs: u64, seen: &mut HashSet<u64>) -> u64 {
    let md = std::fs::symlink_metadata(root).unwrap();
    let mut total = if seen.insert(md.ino()) { md.blocks() * 512 / bs } else { 0 };
    if md.is_dir() {
        for e in std::fs::read_dir(root).unwrap() {
            total += visible_blocks(&e.unwrap().path(), bs, seen);
        }
    }
    total
}

/// Blocks in use that the kernel does not show: bitmaps, inode tables,
/// descriptors, journal, reserved inodes. Deleting and writing files never changes it.
fn hidden_overhead(image: &Path) -> u64 {
    let bs = dumpe2fs_field(image, "Block size:");
    let total = dumpe2fs_field(image, "Block count:");
    let free = dumpe2fs_field(image, "Free blocks:");
    let m = LoopMount::new(image, "ro").unwrap();
    let used = visible_blocks(m.path(), bs, &mut HashSet::new());
    unmount(m);
    total - free - used
}

fn assert_same(expected: &Snapshot, actual: &Snapshot, what: &str) {
    let d = expected.diff(actual);
    assert!(d.is_empty(), "{what}: {} differences, first ones:\n{}", d.len(), d.iter().take(30).cloned().collect::<Vec<_>>().join("\n"));
    assert!(!expected.nodes.is_empty(), "{what}: empty tree");
}

/// After deletions, link groups name the smallest remaining path; a single survivor has none.
fn fix_link_groups(s: &mut Snapshot) {
    let mut groups: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
    for (p, n) in &s.nodes {
        if let Some(g) = &n.link_group {
            groups.entry(g.clone()).or_default().push(p.clone());
        }
    }
    for paths in groups.values() {
        let first = paths.iter().min().cloned();
        for p in paths {
            s.nodes.get_mut(p).unwrap().link_group = if paths.len() > 1 { first.clone() } else { None };
        }
    }
}

/// Directory times change when entries come and go.
fn without_dir_mtimes(s: &Snapshot) -> Snapshot {
    let mut s = s.clone();
    for n in s.nodes.values_mut().filter(|n| n.kind == FileType::Directory) {
        n.mtime = (0, 0);
    }
    s
}

struct Source {
    tree: PathBuf,
    tree_name: String,
    _extras_dir: tempfile::TempDir,
    extras: PathBuf,
}

fn source() -> Source {
    let t = Instant::now();
    let tree = ext4_testkit::fixtures::tree(tree_size()).unwrap();
    let tree_name = tree.file_name().unwrap().to_string_lossy().into_owned();
    let extras_dir = tempfile::tempdir().unwrap();
    let extras = extras_dir.path().join("extras");
    std::fs::create_dir(&extras).unwrap();
    self::extras(&extras);
    println!("source tree {} ready in {:?}", tree.display(), t.elapsed());
    Source { tree, tree_name, _extras_dir: extras_dir, extras }
}

/// Image size for the source: its host usage with room to spare.
fn image_size(src: &Source) -> String {
    let used = host_usage(&src.tree) + host_usage(&src.extras);
    format!("{}M", (used + used / 4) / (1 << 20) + 64)
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn mkfs_d_copies_trees_the_kernel_reads_back_equal() {
    if !prerequisites() {
        return;
    }
    let src = source();
    let dir = tempfile::tempdir().unwrap();
    for (from, name) in [(&src.tree, "tree.img"), (&src.extras, "extras.img")] {
        let img = dir.path().join(name);
        let size = if name == "tree.img" { image_size(&src) } else { "32M".to_string() };
        let t = Instant::now();
        ok(&[&"mkfs", &"-q", &"-t", &"ext4", &"-d", from, &img, &size], None);
        println!("ext4 mkfs -d {} ({size}) in {:?}", from.display(), t.elapsed());
        assert_clean(&img, "after ext4 mkfs -d");
        let m = LoopMount::new(&img, "ro").unwrap();
        assert_same(&Snapshot::from_host(from).unwrap(), &kernel_view(&m), &format!("mkfs -d {}", from.display()));
        unmount(m);
    }
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn put_r_then_rm_half_and_write_more_reuses_space_with_exact_counts() {
    if !prerequisites() {
        return;
    }
    let src = source();
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("put.img");
    ok(&[&"mkfs", &"-q", &"-t", &"ext4", &img, &image_size(&src)], None);
    let t = Instant::now();
    ok(&[&"put", &"-r", &img, &src.tree, &src.extras, &"/"], None);
    println!("ext4 put -r in {:?}", t.elapsed());
    assert_clean(&img, "after ext4 put -r");

    let mut expected = Snapshot::default();
    expected.nodes.extend(rebase(&Snapshot::from_host(&src.tree).unwrap(), &src.tree_name));
    expected.nodes.extend(rebase(&Snapshot::from_host(&src.extras).unwrap(), "extras"));
    let m = LoopMount::new(&img, "ro").unwrap();
    let mut actual = kernel_view(&m);
    unmount(m);
    for top in [src.tree_name.as_bytes(), b"extras"] {
        assert_eq!(actual.nodes.remove(top).map(|n| n.kind), Some(FileType::Directory));
    }
    assert_same(&expected, &actual, "after put -r");
    let overhead = hidden_overhead(&img);
    let free_after_put = dumpe2fs_field(&img, "Free blocks:");
    let bs = dumpe2fs_field(&img, "Block size:");

    // Delete: one subtree with subdirectories, then every other single-link regular file, and one link of three.
    let t = Instant::now();
    let tree_prefix = format!("{}/", src.tree_name);
    let subtree = expected
        .nodes
        .iter()
        .filter(|(p, n)| {
            n.kind == FileType::Directory && p.starts_with(tree_prefix.as_bytes()) && p.iter().filter(|&&c| c == b'/').count() == 1
        })
        .map(|(p, _)| {
            let below: Vec<&ext4_testkit::snapshot::Node> =
                expected.nodes.iter().filter(|(q, _)| q.starts_with(&[p.as_slice(), b"/"].concat())).map(|(_, n)| n).collect();
            (below.iter().any(|n| n.kind == FileType::Directory), below.len(), p.clone())
        })
        // The smallest one with subdirectories, so that `ext4 rm` of single files still deletes most.
        .filter(|(has_subdirs, _, _)| *has_subdirs)
        .min_by_key(|(_, n, _)| *n)
        .map(|(_, _, p)| p)
        .expect("a directory with subdirectories");
    ok(&[&"rm", &"-r", &img, &format!("/{}", String::from_utf8_lossy(&subtree))], None);
    expected.remove_tree(&subtree);
    let mut victims: Vec<String> = expected
        .nodes
        .iter()
        .filter(|(_, n)| n.kind == FileType::Regular && n.link_group.is_none())
        .map(|(p, _)| format!("/{}", String::from_utf8_lossy(p)))
        .step_by(2)
        .collect();
    victims.extend(["/extras/linked3", "/extras/fifo", "/extras/null", "/extras/a/sock"].map(String::from));
    for batch in victims.chunks(1000) {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"rm", &img];
        args.extend(batch.iter().map(|v| v as &dyn AsRef<std::ffi::OsStr>));
        ok(&args, None);
    }
    for v in &victims {
        expected.nodes.remove(&v.as_bytes()[1..]).unwrap_or_else(|| panic!("{v} was not in the tree"));
    }
    fix_link_groups(&mut expected);
    println!("ext4 rm -r {} and rm of {} files in {:?}", String::from_utf8_lossy(&subtree), victims.len(), t.elapsed());
    assert_clean(&img, "after ext4 rm");
    assert_eq!(hidden_overhead(&img), overhead, "free blocks after rm disagree with the blocks the kernel sees in use");
    let free_after_rm = dumpe2fs_field(&img, "Free blocks:");
    assert!(free_after_rm > free_after_put, "rm freed nothing");

    // Write more than was free before the deletion: only reused blocks make
    // room. The kernel keeps 2 % of the blocks (at most 4096) back for
    // allocations that must not fail (s_resv_clusters); so does the library.
    let reserve = (dumpe2fs_field(&img, "Block count:") / 50).min(4096);
    let want_blocks = free_after_put - reserve.min(free_after_put) + (free_after_rm - free_after_put) / 2;
    let new_dir = dir.path().join("new");
    std::fs::create_dir(&new_dir).unwrap();
    let mut made = 0u64;
    let mut i = 0u64;
    while made < want_blocks * bs {
        let len = (((i % 7 + 1) << 20).min(want_blocks * bs - made) + (i * 37) % 4096) as usize;
        let p = new_dir.join(format!("n{i:04}"));
        std::fs::write(&p, data(100 + i, len)).unwrap();
        set_mtime(&p, 1_650_000_000 + i as i64, i as u32 * 1000);
        made += len as u64;
        i += 1;
    }
    let loose_dir = dir.path().join("loose");
    std::fs::create_dir(&loose_dir).unwrap();
    let loose: Vec<PathBuf> = (0..3)
        .map(|k| {
            let p = loose_dir.join(format!("loose{k}"));
            std::fs::write(&p, data(900 + k, 70_000 * (k as usize + 1))).unwrap();
            p
        })
        .collect();
    let target_dir = format!("/{}/special", src.tree_name);
    let t = Instant::now();
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    ok(&[&"put", &"-r", &img, &new_dir, &"/"], None);
    ok(&[&"put", &img, &loose[0], &loose[1], &loose[2], &target_dir], None);
    let written: Vec<(String, Vec<u8>)> =
        (0..4).map(|k| (format!("{target_dir}/written{k}"), data(500 + k, 300_000 * k as usize + 1))).collect();
    for (p, d) in &written {
        ok(&[&"write", &img, p], Some(d));
    }
    let after = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    println!("ext4 put/write of {} MiB in {:?}", made >> 20, t.elapsed());
    assert_clean(&img, "after ext4 put/write of new files");
    assert_eq!(hidden_overhead(&img), overhead, "free blocks after writing disagree with the blocks the kernel sees in use");
    let free_end = dumpe2fs_field(&img, "Free blocks:");
    assert!(free_after_rm - free_end >= want_blocks && want_blocks > free_after_put, "new data did not need the freed blocks");

    // The kernel's view equals the expected tree (directory times aside; `ext4 write` stamps the present).
    expected.nodes.extend(rebase(&Snapshot::from_host(&new_dir).unwrap(), "new"));
    expected.nodes.extend(rebase(&Snapshot::from_host(&loose_dir).unwrap(), &target_dir[1..]));
    let m = LoopMount::new(&img, "ro").unwrap();
    let mut actual = kernel_view(&m);
    unmount(m);
    for top in [src.tree_name.as_bytes(), b"extras", b"new"] {
        assert_eq!(actual.nodes.remove(top).map(|n| n.kind), Some(FileType::Directory));
    }
    for (p, d) in &written {
        let key = p.as_bytes()[1..].to_vec();
        let got = actual.nodes.get(&key).unwrap_or_else(|| panic!("{p} missing")).clone();
        assert!((before..=after).contains(&got.mtime.0), "{p}: mtime {:?} outside the run", got.mtime);
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("written"), d).unwrap();
        let mut want = Snapshot::from_host(host.path()).unwrap().nodes.remove(b"written".as_slice()).unwrap();
        // The mode the host gave the same new file under this process's umask, as `ext4 write` gives it.
        (want.uid, want.gid, want.mtime) = (0, 0, got.mtime);
        expected.nodes.insert(key, want);
    }
    assert_same(&without_dir_mtimes(&expected), &without_dir_mtimes(&actual), "after rm, put and write");
}

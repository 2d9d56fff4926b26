//! Filling the filesystem (issue 4, "done when" 3): on ext2, ext3 and ext4
//! with 1 KiB and 4 KiB blocks, and bigalloc (clusters of 16 blocks),
//! writing until no block (or no inode) is left fails cleanly with
//! `Error::NoSpace` (errno 28) and leaves no trace of the failed call;
//! the image is `e2fsck -fn` silent after close, every byte written
//! before the error reads back, free counts grow by exactly what a
//! deletion frees, and the freed space is allocated again. Preallocation,
//! hole punching, mkdir, symlinks and xattrs on a full filesystem succeed or
//! fail the same clean way.

mod common;

use std::collections::BTreeMap;

use common::{BIGALLOC_KINDS, KINDS, Kind, assert_clean, format, have_fsck, open_ro, open_rw};
use ext4_fs::{Error, Filesystem};

/// What the files should hold: path -> contents.
type Model = BTreeMap<String, Vec<u8>>;

/// Bytes written between two files (a new file every this many bytes while inodes and directory space last).
const FILE_BYTES: usize = 1 << 20;

fn pattern(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seed.wrapping_mul(131) ^ (i / 3)).wrapping_mul(7) as u8 | 1).collect()
}

fn assert_no_space<T: std::fmt::Debug>(r: ext4_fs::Result<T>, what: &str) {
    match r {
        Err(e @ Error::NoSpace) => assert_eq!(e.errno(), 28, "{what}: NoSpace must be ENOSPC"),
        other => panic!("{what}: expected NoSpace, got {other:?}"),
    }
}

/// Writes files under `dir` until even one block cannot be allocated.
/// Returns the bytes written; `model` receives every file.
fn fill(fs: &mut Filesystem, dir: &str, tag: &str, model: &mut Model) -> u64 {
    let bs = fs.geometry().block_size as usize;
    let mut written = 0u64;
    let mut chunk = 64 << 10;
    let mut n = 0usize;
    let mut path = format!("{dir}/{tag}{n}");
    let mut ino = fs.create(&path, 0o644).expect("first file of a round");
    model.insert(path.clone(), Vec::new());
    loop {
        let len = model[&path].len();
        if len >= FILE_BYTES {
            let next = format!("{dir}/{tag}{}", n + 1);
            match fs.create(&next, 0o644) {
                Ok(i) => {
                    n += 1;
                    ino = i;
                    path = next;
                    model.insert(path.clone(), Vec::new());
                    continue;
                }
                // No inode or no directory block left: keep growing the current file.
                Err(e) => assert_no_space(Err::<(), _>(e), "create"),
            }
        }
        let data = pattern(n * 1000 + len / chunk, chunk);
        let before = fs.stat(ino).unwrap();
        match fs.write_at(ino, len as u64, &data) {
            Ok(k) => {
                assert_eq!(k, chunk);
                model.get_mut(&path).unwrap().extend_from_slice(&data);
                written += chunk as u64;
            }
            Err(e) => {
                assert_no_space(Err::<(), _>(e), &format!("write of {chunk} bytes at {len} of {path}"));
                // The failed call left no trace.
                let after = fs.stat(ino).unwrap();
                assert_eq!((after.size, after.blocks), (before.size, before.blocks), "{path}: a failed write changed the inode");
                if chunk <= bs {
                    break;
                }
                chunk /= 2;
            }
        }
    }
    // A single block no longer fits: at most the clusters one mapping needs
    // are left beyond what the kernel keeps for allocations that must not fail.
    let free = fs.statfs().free_blocks;
    let reserve = kernel_reserve(fs);
    let ratio = u64::from(fs.geometry().cluster_ratio);
    assert!(free <= reserve + 3 * ratio, "{free} blocks still free after a one-block write failed (reserve {reserve})");
    written
}

/// Blocks the kernel keeps from ordinary allocations, root's too
/// (`s_resv_clusters` from `ext4_calculate_resv_clusters`): 2 % of the
/// clusters, at most 4096, on filesystems with extents.
fn kernel_reserve(fs: &Filesystem) -> u64 {
    let geo = fs.geometry();
    let ratio = u64::from(geo.cluster_ratio);
    if geo.features.incompat.contains(ext4_fs::ondisk::Incompat::EXTENTS) { (geo.blocks_count / ratio / 50).min(4096) * ratio } else { 0 }
}

fn check_model(fs: &Filesystem, model: &Model) {
    for (p, data) in model {
        let got = fs.read(p).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert!(got == *data, "{p}: {} bytes read, {} expected (or contents differ)", got.len(), data.len());
    }
}

fn check_closed(kind: &Kind, img: &std::path::Path, model: &Model, when: &str) {
    if let Some(p) = ext4_testkit::oracle::e2fsck_problems(img) {
        panic!("{}: e2fsck -fn {when}:\n{p}", kind.name);
    }
    check_model(&open_ro(img), model);
}

fn blocks_in_use(fs: &Filesystem, path: &str) -> u64 {
    let md = fs.stat(fs.lookup(path).unwrap()).unwrap();
    md.blocks * 512 / u64::from(md.block_size)
}

/// Runs `op` on a full filesystem: it succeeds, or fails with `NoSpace`
/// and changes no count.
fn ok_or_no_space<T>(fs: &mut Filesystem, what: &str, op: impl FnOnce(&mut Filesystem) -> ext4_fs::Result<T>) -> Option<T> {
    let before = fs.statfs();
    match op(fs) {
        Ok(v) => Some(v),
        Err(Error::NoSpace) => {
            let after = fs.statfs();
            assert_eq!(
                (after.free_blocks, after.free_inodes),
                (before.free_blocks, before.free_inodes),
                "{what}: a failed call changed counts"
            );
            None
        }
        Err(e) => panic!("{what}: expected success or NoSpace, got {e:?}"),
    }
}

/// Preallocation, hole punching (an extent split may need a block), a
/// directory, a long symlink and an xattr block, on a full filesystem.
fn other_operations_on_a_full_filesystem(fs: &mut Filesystem, kind: &Kind, model: &mut Model) {
    let bs = u64::from(fs.geometry().block_size);
    let (path, len) = model.iter().map(|(p, d)| (p.clone(), d.len() as u64)).max_by_key(|(_, l)| *l).expect("a file");
    let ino = fs.lookup(&path).unwrap();
    let before = fs.stat(ino).unwrap();
    let r = fs.fallocate(ino, len, 1 << 20, false);
    match (kind.fs_type, r) {
        (ext4_mkfs::FsType::Ext4, r) => assert_no_space(r, "fallocate of 1 MiB on a full filesystem"),
        (_, r) => assert!(matches!(r, Err(Error::Unsupported(_))), "fallocate on an indirect-mapped file: {r:?}"),
    }
    assert_eq!(fs.stat(ino).unwrap().blocks, before.blocks, "a failed fallocate kept blocks");
    for k in 1..4 {
        let at = len / 4 * k / bs * bs;
        if ok_or_no_space(fs, "punch", |fs| fs.punch_hole(ino, at, bs)).is_some() {
            model.get_mut(&path).unwrap()[at as usize..(at + bs) as usize].fill(0);
        }
    }
    let _ = ok_or_no_space(fs, "mkdir", |fs| fs.mkdir("/fill/dir-when-full", 0o755));
    let target = "t/".repeat(250);
    let _ = ok_or_no_space(fs, "long symlink", |fs| fs.symlink(&target, "/fill/link-when-full"));
    let _ = ok_or_no_space(fs, "xattr block", |fs| fs.set_xattr(ino, b"user.when-full", &[7u8; 600], ext4_fs::XattrMode::Any));
    println!("{}: free blocks after edge operations: {}", kind.name, fs.statfs().free_blocks);
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn filling_gives_no_space_and_freed_space_is_reused() {
    if !have_fsck() {
        return;
    }
    for kind in KINDS.iter().chain(BIGALLOC_KINDS) {
        let img = format(kind, 16 << 20, "fill");
        let mut model = Model::new();
        let mut fs = open_rw(&img.path);
        fs.mkdir("/fill", 0o755).unwrap();
        let first = fill(&mut fs, "/fill", "a", &mut model);
        let bs = u64::from(fs.geometry().block_size);
        assert!(first > 8 << 20, "{}: only {first} bytes fitted in 16 MiB", kind.name);
        // A write that cannot fit at all fails whole.
        let big = fs.create("/fill/too-big", 0o644);
        if let Ok(ino) = big {
            assert_no_space(fs.write_at(ino, 0, &vec![1u8; 1 << 20]), "1 MiB write on a full filesystem");
            model.insert("/fill/too-big".into(), Vec::new());
        }
        other_operations_on_a_full_filesystem(&mut fs, kind, &mut model);
        fs.close().unwrap();
        check_closed(kind, &img.path, &model, "after filling");

        // Delete every other file: the free count grows by exactly their blocks once committed.
        let mut fs = open_rw(&img.path);
        let free_before = fs.statfs().free_blocks;
        let victims: Vec<String> = model.keys().step_by(2).cloned().collect();
        let mut freed = 0;
        for p in &victims {
            freed += blocks_in_use(&fs, p);
            fs.remove_file(p).unwrap();
            model.remove(p);
        }
        fs.sync().unwrap();
        assert_eq!(fs.statfs().free_blocks, free_before + freed, "{}: free count after deleting {} files", kind.name, victims.len());
        assert!(freed * bs > 4 << 20, "{}: deletion freed only {freed} blocks", kind.name);

        // The freed space is allocated again, nearly all of it.
        let second = fill(&mut fs, "/fill", "b", &mut model);
        assert!(second >= (freed - freed / 10) * bs, "{}: {second} bytes rewritten after freeing {freed} blocks", kind.name);
        fs.close().unwrap();
        check_closed(kind, &img.path, &model, "after refilling");
        println!("{}: {first} bytes filled, {freed} blocks freed, {second} bytes refilled", kind.name);
    }
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn running_out_of_inodes_gives_no_space() {
    if !have_fsck() {
        return;
    }
    for kind in KINDS.iter().chain(BIGALLOC_KINDS) {
        let img = format(kind, 16 << 20, "inodes");
        let mut fs = open_rw(&img.path);
        fs.mkdir("/many", 0o755).unwrap();
        let mut names = Vec::new();
        loop {
            let p = format!("/many/file-with-a-longish-name-{:06}", names.len());
            match fs.create(&p, 0o600) {
                Ok(_) => names.push(p),
                Err(e) => {
                    assert_no_space(Err::<(), _>(e), "create");
                    assert!(fs.lookup(&p).is_err(), "{p}: a failed create left an entry");
                    break;
                }
            }
        }
        let st = fs.statfs();
        assert_eq!(st.free_inodes, 0, "{}: create failed with inodes left", kind.name);
        assert!(st.free_blocks > 100, "{}: blocks ran out before inodes", kind.name);
        fs.close().unwrap();
        assert_clean(&img.path);

        let mut fs = open_rw(&img.path);
        for p in names.iter().step_by(50) {
            fs.remove_file(p).unwrap();
        }
        let freed = names.iter().step_by(50).count();
        assert_eq!(fs.statfs().free_inodes, freed as u64);
        for i in 0..freed {
            fs.create(format!("/many/again-{i}"), 0o644).unwrap();
        }
        assert_no_space(fs.create("/many/one-too-many", 0o644), "create after reusing every freed inode");
        fs.close().unwrap();
        assert_clean(&img.path);
        let fs = open_ro(&img.path);
        assert_eq!(fs.read_dir("/many").unwrap().len(), names.len(), "{}: entries", kind.name);
    }
}

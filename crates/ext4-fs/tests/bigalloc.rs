//! Bigalloc clusters as the kernel keeps them, on an mke2fs image with
//! 1 KiB blocks and 16 blocks a cluster: a logical cluster of a file lives
//! in one physical cluster at the same offsets (a later block of a mapped
//! cluster goes into it), a cluster partly unmapped stays allocated while
//! one of the file's blocks remains in it, and `i_blocks` counts whole
//! clusters. Judged by debugfs (`bmap`, `stat`), dumpe2fs' free count and
//! `e2fsck -fn` after every step; then cluster sizes from 2 to 1024 blocks
//! under a mixed workload.

mod common;

use common::{BIGALLOC_KINDS, Scratch, format, have_fsck, open_rw};
use ext4_testkit::oracle::{debugfs, dumpe2fs};

/// Blocks per cluster of the image.
const RATIO: u64 = 16;

/// What one step leaves behind.
struct Expect {
    /// Clusters the file holds (its `i_blocks` in clusters).
    clusters: u64,
    /// Clusters taken from the free count since the file was created.
    taken: u64,
}

fn image(tag: &str) -> Scratch {
    let kind = BIGALLOC_KINDS.iter().find(|k| k.name == "bigalloc-1k").expect("bigalloc-1k");
    format(kind, 4 << 20, tag)
}

/// Physical block of `logical` in `/f` per debugfs (0: a hole; an
/// unwritten block is followed by "(uninit)").
fn bmap(img: &Scratch, logical: u64) -> u64 {
    let out = debugfs(&img.path, &format!("bmap /f {logical}"));
    let first = out.split_whitespace().next().unwrap_or_default();
    first.parse().unwrap_or_else(|_| panic!("debugfs bmap /f {logical}: {out:?}"))
}

/// Free blocks in the superblock, per dumpe2fs.
fn free_blocks(img: &Scratch) -> u64 {
    let out = dumpe2fs(&img.path, true);
    let line = out.lines().find_map(|l| l.strip_prefix("Free blocks:")).expect("Free blocks line");
    line.trim().parse().expect("a number")
}

/// `i_blocks` of `/f` in 512-byte sectors, per debugfs.
fn sectors(img: &Scratch) -> u64 {
    let out = debugfs(&img.path, "stat /f");
    let v = out.split("Blockcount:").nth(1).and_then(|r| r.split_whitespace().next()).expect("Blockcount");
    v.parse().expect("a number")
}

/// Writes `data` at byte `offset` of inode `ino`, all of it.
fn write(fs: &mut ext4_fs::Filesystem, ino: u32, offset: u64, data: &[u8]) {
    assert_eq!(fs.write_at(ino, offset, data).unwrap(), data.len());
}

/// Runs `op` on the image, closes it, and checks the step's outcome.
fn step(img: &Scratch, base_free: u64, what: &str, op: impl FnOnce(&mut ext4_fs::Filesystem, u32), want: Expect) {
    let mut fs = open_rw(&img.path);
    let ino = fs.lookup("/f").unwrap();
    op(&mut fs, ino);
    fs.close().unwrap();
    if let Some(p) = ext4_testkit::oracle::e2fsck_problems(&img.path) {
        panic!("{what}: e2fsck -fn:\n{p}");
    }
    let cluster_sectors = RATIO * 1024 / 512;
    assert_eq!(sectors(img), want.clusters * cluster_sectors, "{what}: i_blocks");
    assert_eq!(base_free - free_blocks(img), want.taken * RATIO, "{what}: clusters taken from the free count");
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn clusters_are_shared_by_their_blocks_and_kept_while_one_remains() {
    if !have_fsck() {
        return;
    }
    let img = image("clusters");
    let mut fs = open_rw(&img.path);
    fs.create("/f", 0o644).unwrap();
    fs.close().unwrap();
    let base = free_blocks(&img);
    let kib = |n: u64| n * 1024;

    step(&img, base, "write block 0", |fs, ino| write(fs, ino, 0, b"zero"), Expect { clusters: 1, taken: 1 });
    let p0 = bmap(&img, 0);
    assert_eq!(p0 % RATIO, 0, "block 0 starts its cluster");

    step(&img, base, "write block 5", |fs, ino| write(fs, ino, kib(5), b"five"), Expect { clusters: 1, taken: 1 });
    assert_eq!(bmap(&img, 5), p0 + 5, "block 5 shares block 0's cluster at its own offset");

    step(&img, base, "write block 20", |fs, ino| write(fs, ino, kib(20), b"twenty"), Expect { clusters: 2, taken: 2 });
    let p20 = bmap(&img, 20);
    assert_eq!(p20 % RATIO, 4, "block 20 sits at offset 4 of its cluster");
    assert_ne!(p20 / RATIO, p0 / RATIO, "a second logical cluster takes a second physical one");

    // Blocks 14..16 then 16..18: the first run stops at the mapped cluster's
    // end, the rest goes into block 20's cluster.
    step(&img, base, "write blocks 14-17", |fs, ino| write(fs, ino, kib(14), &[7; 4096]), Expect { clusters: 2, taken: 2 });
    assert_eq!((bmap(&img, 14), bmap(&img, 16)), (p0 + 14, p20 - 4), "blocks fill their own logical clusters");

    step(&img, base, "punch block 0", |fs, ino| fs.punch_hole(ino, 0, kib(1)).unwrap(), Expect { clusters: 2, taken: 2 });
    assert_eq!(bmap(&img, 0), 0, "block 0 is a hole");
    step(&img, base, "punch blocks 5-15", |fs, ino| fs.punch_hole(ino, kib(5), kib(11)).unwrap(), Expect { clusters: 1, taken: 1 });

    step(&img, base, "write block 2 again", |fs, ino| write(fs, ino, kib(2), b"two"), Expect { clusters: 2, taken: 2 });
    assert_eq!(bmap(&img, 2) % RATIO, 2, "a new cluster for block 2, at offset 2");

    step(&img, base, "truncate to 17 blocks", |fs, ino| fs.truncate(ino, kib(17)).unwrap(), Expect { clusters: 2, taken: 2 });
    step(&img, base, "truncate to 3 blocks", |fs, ino| fs.truncate(ino, kib(3)).unwrap(), Expect { clusters: 1, taken: 1 });
    step(&img, base, "truncate to 0", |fs, ino| fs.truncate(ino, 0).unwrap(), Expect { clusters: 0, taken: 0 });

    // A preallocation spanning clusters, then a punch inside one cluster.
    step(
        &img,
        base,
        "fallocate blocks 3-40",
        |fs, ino| fs.fallocate(ino, kib(3), kib(38), false).unwrap(),
        Expect { clusters: 3, taken: 3 },
    );
    assert_eq!(bmap(&img, 3) % RATIO, 3, "unwritten blocks keep their offsets too");
    step(&img, base, "punch blocks 16-31", |fs, ino| fs.punch_hole(ino, kib(16), kib(16)).unwrap(), Expect { clusters: 2, taken: 2 });
}

/// A directory grows block by block inside its first cluster, and an xattr
/// block takes a cluster of its own, counted in `i_blocks` of each inode.
#[ext4_testkit::oracle_test(e2fsprogs)]
fn directories_and_xattr_blocks_take_clusters() {
    if !have_fsck() {
        return;
    }
    let img = image("dirs");
    let mut fs = open_rw(&img.path);
    let base = fs.statfs().free_blocks;
    fs.mkdir("/d", 0o755).unwrap();
    for i in 0..120 {
        fs.create(format!("/d/a-name-long-enough-to-fill-blocks-{i:04}"), 0o644).unwrap();
    }
    let d = fs.lookup("/d").unwrap();
    let md = fs.stat(d).unwrap();
    assert!(md.size > 2048 && md.size <= RATIO * 1024, "the directory grew past one block within one cluster: {} bytes", md.size);
    assert_eq!(md.blocks, RATIO * 2, "one cluster in i_blocks");
    let f = fs.create("/x", 0o644).unwrap();
    fs.set_xattr(f, b"user.big", &[1u8; 700], ext4_fs::XattrMode::Any).unwrap();
    assert_eq!(fs.stat(f).unwrap().blocks, RATIO * 2, "the xattr block's cluster in i_blocks");
    fs.sync().unwrap();
    assert_eq!(base - fs.statfs().free_blocks, 2 * RATIO, "two clusters taken");
    fs.close().unwrap();
    if let Some(p) = ext4_testkit::oracle::e2fsck_problems(&img.path) {
        panic!("e2fsck -fn:\n{p}");
    }
}

/// Every cluster size, small to large (2 to 1024 blocks, on 1 KiB and
/// 4 KiB blocks): files written with holes, punched, preallocated and
/// truncated, a directory grown, an xattr block, files removed; the data
/// reads back after a fresh open and `e2fsck -fn` is silent.
#[ext4_testkit::oracle_test(e2fsprogs)]
fn cluster_sizes_from_two_blocks_to_a_thousand() {
    if !have_fsck() {
        return;
    }
    for (bs, ratio) in [(1024u64, 2u64), (1024, 64), (1024, 1024), (4096, 2), (4096, 4), (4096, 1024)] {
        let what = format!("{bs}-byte blocks, {ratio} a cluster");
        let img = Scratch::new(&format!("clusters-{bs}-{ratio}.img"));
        let (b, c) = (bs.to_string(), (bs * ratio).to_string());
        ext4_testkit::fixtures::mke2fs_sized(&img.path, 512 << 20, &["-t", "ext4", "-b", &b, "-O", "bigalloc", "-C", &c]).expect("mke2fs");
        let mut fs = open_rw(&img.path);
        let mut expect = Vec::new();
        for f in 0..6u64 {
            let name = format!("/f{f}");
            let ino = fs.create(&name, 0o644).unwrap();
            let mut data = vec![0u8; 0];
            for k in 0..5u64 {
                let at = (f * 7 + k * 13) % 40 * bs + k * 100;
                let piece: Vec<u8> = (0..(bs * (k + 1) + 7) as usize).map(|i| (i as u64 * 31 + f + k) as u8).collect();
                write(&mut fs, ino, at, &piece);
                let end = at as usize + piece.len();
                data.resize(data.len().max(end), 0);
                data[at as usize..end].copy_from_slice(&piece);
            }
            fs.punch_hole(ino, 3 * bs, 5 * bs).unwrap();
            data[3 * bs as usize..8 * bs as usize].fill(0);
            fs.fallocate(ino, 50 * bs, 20 * bs, true).unwrap();
            let cut = (data.len() as u64 - bs / 2) as usize;
            fs.truncate(ino, cut as u64).unwrap();
            data.truncate(cut);
            expect.push((name, data));
        }
        fs.mkdir("/d", 0o755).unwrap();
        for i in 0..100 {
            fs.create(format!("/d/a-fairly-long-entry-name-{i:04}"), 0o644).unwrap();
        }
        let x = fs.lookup("/f0").unwrap();
        fs.set_xattr(x, b"user.v", &[5u8; 700], ext4_fs::XattrMode::Any).unwrap();
        fs.remove_file("/f1").unwrap();
        expect.remove(1);
        fs.close().unwrap();
        let fs = common::open_ro(&img.path);
        for (name, data) in &expect {
            assert!(fs.read(name).unwrap() == *data, "{what}: {name} reads back otherwise");
        }
        drop(fs);
        if let Some(p) = ext4_testkit::oracle::e2fsck_problems(&img.path) {
            panic!("{what}: e2fsck -fn:\n{p}");
        }
    }
}

//! One damaged field per checksummed structure gives the exact corruption
//! error, naming the structure; nothing panics. Block locations come from
//! debugfs (an independent reader), not from this library.

mod common;

use std::path::{Path, PathBuf};

use ext4_fs::ondisk::Structure;
use ext4_fs::{Error, Filesystem, OpenOptions};
use ext4_testkit::fixtures;
use ext4_testkit::oracle::debugfs;

/// A copy of the ext4-default fixture to damage.
fn copy_fixture(tag: &str) -> Option<(PathBuf, common::Scratch, u64)> {
    copy_profile("ext4-default", tag)
}

/// A copy of a fixture profile's image to damage.
fn copy_profile(profile: &str, tag: &str) -> Option<(PathBuf, common::Scratch, u64)> {
    let p = fixtures::profile(profile).unwrap();
    if let Some(why) = fixtures::unavailable(&p) {
        ext4_testkit::require(false, why);
        return None;
    }
    let (img, _) = fixtures::image(&p).unwrap();
    let scratch = common::Scratch::new(&format!("corrupt-{tag}.img"));
    std::fs::copy(&img, &scratch.path).unwrap();
    let bs = block_size(&scratch.path);
    Some((scratch.path.clone(), scratch, bs))
}

fn flip(path: &Path, offset: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x5a;
    f.write_all_at(&b, offset).unwrap();
}

/// First number after `label` in debugfs output (decimal, or hexadecimal
/// with a `0x` prefix as `imap` prints offsets).
fn number_after(text: &str, label: &str) -> u64 {
    let i = text.find(label).unwrap_or_else(|| panic!("{label:?} not in {text}")) + label.len();
    let rest = text[i..].trim_start();
    if let Some(hex) = rest.strip_prefix("0x") {
        let digits: String = hex.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        return u64::from_str_radix(&digits, 16).unwrap();
    }
    rest.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

/// The block size of an image, from its superblock.
fn block_size(path: &Path) -> u64 {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).unwrap();
    let mut b = [0u8; 4];
    f.read_exact_at(&mut b, 1024 + 24).unwrap();
    1024 << u32::from_le_bytes(b)
}

fn expect_corrupt<T: std::fmt::Debug>(r: Result<T, Error>, structure: Structure) {
    match r {
        Err(Error::Corrupt(c)) => {
            assert_eq!(c.structure, structure, "wrong structure: {c}");
            assert!(c.checksum, "expected a checksum error: {c}");
        }
        other => panic!("expected corrupt {structure}, got {other:?}"),
    }
}

fn open(path: &Path) -> Result<Filesystem, Error> {
    Filesystem::open_path(path, OpenOptions::read_only())
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn superblock() {
    let Some((p, _s, _)) = copy_fixture("sb") else {
        return;
    };
    flip(&p, 1024 + 0x78); // s_volume_name
    expect_corrupt(open(&p), Structure::Superblock);
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn group_descriptor() {
    let Some((p, _s, bs)) = copy_fixture("gd") else {
        return;
    };
    let gdt = if bs == 1024 { 2048 } else { bs }; // the block after the superblock's
    flip(&p, gdt + 0x0E); // group 0, bg_free_inodes_count_lo
    expect_corrupt(open(&p), Structure::GroupDesc);
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn inode() {
    let Some((p, _s, bs)) = copy_fixture("inode") else {
        return;
    };
    let ino = number_after(&debugfs(&p, "stat /special/x"), "Inode:");
    let loc = debugfs(&p, &format!("imap <{ino}>"));
    let block = number_after(&loc, "located at block");
    let off = number_after(&loc, "offset");
    flip(&p, block * bs + off + 0x10); // i_mtime
    let fs = open(&p).unwrap();
    expect_corrupt(fs.metadata("/special/x"), Structure::Inode);
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn directory_block() {
    let Some((p, _s, bs)) = copy_fixture("dir") else {
        return;
    };
    let first: u64 = debugfs(&p, "bmap /special 0").trim().parse().unwrap();
    flip(&p, first * bs + 30); // inside the entries of the first leaf
    let fs = open(&p).unwrap();
    expect_corrupt(fs.read_dir("/special"), Structure::DirBlock);
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn htree_node() {
    // The kernel indexes big directories (mke2fs -d does not).
    let Some((p, _s, bs)) = copy_profile("ext4-kernel", "dx") else {
        return;
    };
    let dump = debugfs(&p, "htree_dump /bigdir");
    assert!(dump.contains("Root node dump"), "/bigdir is not indexed:\n{dump}");
    let root: u64 = debugfs(&p, "bmap /bigdir 0").trim().parse().unwrap();
    flip(&p, root * bs + 0x2A); // a dx entry of the root
    let fs = open(&p).unwrap();
    expect_corrupt(fs.lookup("/bigdir/entry-0000001-nonexistent"), Structure::DxNode);
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn xattr_block() {
    let Some((p, _s, bs)) = copy_fixture("xattr") else {
        return;
    };
    // f000000.dat carries the 700-byte user.big value, which lives in a block.
    // (make-tree.py hard-links it as /special/hardlink-a.)
    let path = "/special/hardlink-a";
    let st = debugfs(&p, &format!("stat {path}"));
    let block = number_after(&st, "File ACL:");
    assert_ne!(block, 0, "fixture file has no xattr block:\n{st}");
    flip(&p, block * bs + 40);
    let fs = open(&p).unwrap();
    expect_corrupt(fs.xattrs(path), Structure::XattrBlock);
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn extent_block() {
    let Some((p, _s, bs)) = copy_fixture("extent") else {
        return;
    };
    // Make a file whose tree needs a leaf block: every other block written.
    {
        let mut fs = Filesystem::open_path(&p, OpenOptions::read_write()).unwrap();
        let ino = fs.create("/fragmented", 0o644).unwrap();
        for i in 0..20u64 {
            fs.write_at(ino, i * 2 * bs, &[0xAB; 100]).unwrap();
        }
        fs.close().unwrap();
    }
    let ex = debugfs(&p, "ex /fragmented");
    // The first line below the header is the index (level 0) pointing at the leaf block.
    let line = ex.lines().find(|l| l.trim_start().starts_with("0/ 1")).unwrap_or_else(|| panic!("no depth-1 tree:\n{ex}"));
    let leaf: u64 = line.split_whitespace().rev().nth(1).unwrap().parse().unwrap();
    flip(&p, leaf * bs + 20);
    let fs = open(&p).unwrap();
    expect_corrupt(fs.read("/fragmented"), Structure::ExtentNode);
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn block_bitmap() {
    let Some((p, _s, bs)) = copy_fixture("bitmap") else {
        return;
    };
    // Which group the allocator picks depends on how full the fixture is
    // (mke2fs -d's order follows the host's readdir order), so every
    // initialized group's bitmap is damaged.
    let dump = ext4_testkit::oracle::dumpe2fs(&p, false);
    let mut damaged = 0;
    for group in dump.split("\nGroup ").filter(|g| g.starts_with(|c: char| c.is_ascii_digit())) {
        if group.lines().next().is_some_and(|l| l.contains("BLOCK_UNINIT")) {
            continue;
        }
        let bb = number_after(group, "Block bitmap at");
        flip(&p, bb * bs + bs * 3 / 4);
        damaged += 1;
    }
    assert!(damaged > 0, "no initialized group in:\n{dump}");
    let mut fs = Filesystem::open_path(&p, OpenOptions::read_write()).unwrap();
    // Detected on first use of a group's bitmap, whichever step that is.
    let r = fs.create("/new", 0o644).and_then(|ino| fs.write_at(ino, 0, b"data"));
    expect_corrupt(r, Structure::BlockBitmap);
}

//! Shared xattr blocks: files given the same attributes in one session
//! share one block (reference counted, at most 1024 sharers as in the
//! kernel), a change to one sharer copies it, the last reference frees
//! the block. Reference counts and block numbers come from debugfs and the
//! raw image, `e2fsck -fn` checks the counts against the references, and
//! the kernel reads every value back.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{have_fsck, open_ro, open_rw};
use ext4_fs::XattrMode;
use ext4_testkit::oracle::{LoopMount, can_loop_mount, debugfs};

/// The file's xattr block from debugfs (0 when it has none).
fn file_acl(img: &Path, path: &str) -> u64 {
    let st = debugfs(img, &format!("stat {path}"));
    let i = st.find("File ACL:").unwrap_or_else(|| panic!("no File ACL in:\n{st}")) + "File ACL:".len();
    st[i..].split_whitespace().next().unwrap().parse().unwrap()
}

/// `h_refcount` of an xattr block, read from the image.
fn refcount(img: &Path, block: u64, bs: u64) -> u32 {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(img).unwrap();
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, block * bs).unwrap();
    assert_eq!(u32::from_le_bytes(b[..4].try_into().unwrap()), 0xEA02_0000, "block {block} is not an xattr block");
    u32::from_le_bytes(b[4..].try_into().unwrap())
}

/// Whether debugfs says `block` is in use.
fn in_use(img: &Path, block: u64) -> bool {
    let out = debugfs(img, &format!("testb {block}"));
    assert!(out.contains("marked in use") || out.contains("not in use"), "testb: {out}");
    !out.contains("not in use")
}

const BIG: usize = 700; // does not fit the 256-byte inode: goes to the block

fn value(tag: u8) -> Vec<u8> {
    (0..BIG).map(|i| (i as u8).wrapping_mul(31) ^ tag).collect()
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn equal_attribute_sets_share_one_block() {
    if !have_fsck() {
        return;
    }
    let bs = 4096u64;
    let img = common::format_ext4("xshare", 64 << 20, bs as u32, 256, "");
    let n = 1030; // more than one block can serve (1024 sharers)
    let names: Vec<String> = (0..n).map(|i| format!("/f{i:04}")).collect();
    {
        let mut fs = open_rw(&img.path);
        for p in &names {
            let ino = fs.create(p, 0o644).unwrap();
            fs.set_xattr(ino, b"user.big", &value(1), XattrMode::Any).unwrap();
            fs.set_xattr(ino, b"trusted.small", b"s", XattrMode::Any).unwrap();
        }
        fs.close().unwrap();
    }
    common::assert_clean(&img.path);
    let mut blocks: BTreeMap<u64, u32> = BTreeMap::new();
    for p in &names {
        *blocks.entry(file_acl(&img.path, p)).or_default() += 1;
    }
    assert!(!blocks.contains_key(&0), "a file has no xattr block: {blocks:?}");
    let mut counts: Vec<u32> = blocks.values().copied().collect();
    counts.sort_unstable();
    assert_eq!(counts, vec![6, 1024], "sharers per block: {blocks:?}");
    for (&b, &c) in &blocks {
        assert_eq!(refcount(&img.path, b, bs), c, "refcount of block {b}");
    }
    let first = file_acl(&img.path, &names[0]);

    // A change to one sharer copies; others joining the new content share the copy.
    {
        let mut fs = open_rw(&img.path);
        for p in &names[..10] {
            let ino = fs.lookup(p).unwrap();
            fs.set_xattr(ino, b"user.big", &value(2), XattrMode::Any).unwrap();
        }
        fs.close().unwrap();
    }
    common::assert_clean(&img.path);
    let copy = file_acl(&img.path, &names[0]);
    assert_ne!(copy, first, "a shared block was changed in place");
    for p in &names[..10] {
        assert_eq!(file_acl(&img.path, p), copy, "{p} does not share the copy");
    }
    assert_eq!(refcount(&img.path, copy, bs), 10);
    assert_eq!(refcount(&img.path, first, bs), 1014);

    // The kernel sees every value.
    if ext4_testkit::require(can_loop_mount(), "kernel check (needs root and loop devices)") {
        let m = LoopMount::new(&img.path, "ro").unwrap();
        for (i, p) in names.iter().enumerate().step_by(97) {
            let out = std::process::Command::new("getfattr")
                .args(["--only-values", "-n", "user.big"])
                .arg(m.path().join(&p[1..]))
                .output()
                .expect("getfattr runs");
            assert!(out.status.success(), "getfattr {p}: {}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(out.stdout, value(if i < 10 { 2 } else { 1 }), "kernel value of {p}");
        }
        m.unmount().unwrap();
    }

    // The last reference frees the block.
    {
        let mut fs = open_rw(&img.path);
        for p in &names[..10] {
            let ino = fs.lookup(p).unwrap();
            fs.remove_xattr(ino, b"user.big").unwrap();
            fs.remove_xattr(ino, b"trusted.small").unwrap();
        }
        fs.close().unwrap();
    }
    common::assert_clean(&img.path);
    assert!(!in_use(&img.path, copy), "block {copy} is still allocated after its last reference went");
    assert!(in_use(&img.path, first));
    let fs = open_ro(&img.path);
    let ino = fs.lookup(&names[500]).unwrap();
    let got: Vec<_> = fs.xattrs_ino(ino).unwrap().into_iter().map(|x| (x.name, x.value)).collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.contains(&(b"user.big".to_vec(), value(1))));
}

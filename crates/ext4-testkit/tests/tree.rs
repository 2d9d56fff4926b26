//! The tree generator is deterministic and makes every kind of entry the
//! fixtures rely on.

use ext4_fs::FileType;
use ext4_testkit::snapshot::Snapshot;
use ext4_testkit::tree::{TreeOptions, TreeProfile, make};

#[test]
fn the_same_seed_makes_the_same_tree_and_another_seed_another() {
    let dir = tempfile::tempdir().unwrap();
    let snap = |name: &str, seed: u64| {
        let p = dir.path().join(name);
        make(&p, TreeOptions { seed, ..TreeOptions::new(TreeProfile::Small) }).unwrap();
        Snapshot::from_host(&p).unwrap()
    };
    let (a, b, c) = (snap("a", 1), snap("b", 1), snap("c", 2));
    assert!(a.diff(&b).is_empty(), "{:?}", &a.diff(&b)[..a.diff(&b).len().min(5)]);
    assert!(!a.diff(&c).is_empty());

    let kinds = |k: FileType| a.nodes.values().filter(|n| n.kind == k).count();
    assert!(kinds(FileType::Directory) > 100 && kinds(FileType::Regular) > 2000 && kinds(FileType::Symlink) == 3);
    assert!(a.nodes.keys().any(|p| p.len() > 255 && p.ends_with(&[b'n'; 255])), "a 255-byte name");
    assert!(a.nodes.get(&b"special/hardlink-a"[..]).unwrap().link_group.is_some(), "hard links");
    assert!(a.nodes.values().any(|n| n.xattrs.get(&b"user.big"[..]).is_some_and(|v| v.len() == 700)), "a 700-byte xattr");
    assert!(a.nodes.values().all(|n| n.mtime == (ext4_testkit::tree::FIXED_TIME, 0)), "fixed times");
    assert!(make(&dir.path().join("a"), TreeOptions::new(TreeProfile::Small)).is_err(), "an existing destination is refused");
}

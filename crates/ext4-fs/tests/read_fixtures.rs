//! Every fixture image (made by mke2fs -d or by the kernel from a
//! make-tree.py tree) read through the library equals its source tree:
//! names, types, modes, owners, sizes, mtimes, symlink targets, xattrs,
//! hard links and SHA-256 of contents.

use ext4_fs::{Filesystem, OpenOptions};
use ext4_testkit::fixtures::{self, PROFILES};
use ext4_testkit::snapshot::Snapshot;

#[test]
fn fixtures_equal_their_sources() {
    let mut failures = Vec::new();
    for p in PROFILES {
        if let Some(why) = fixtures::unavailable(p) {
            println!("SKIPPED: {}: {why}", p.name);
            continue;
        }
        let (img, src) = fixtures::image(p).expect("fixture builds");
        let fs = Filesystem::open_path(&img, OpenOptions::read_only()).expect("opens");
        let mut actual = Snapshot::from_image(&fs, b"/").expect("walks");
        actual.remove_tree(b"lost+found");
        let expected = Snapshot::from_host(&src).expect("source walks");
        let diff = expected.diff(&actual);
        if !diff.is_empty() {
            failures.push(format!("{}: {} differences, first: {:?}", p.name, diff.len(), &diff[..diff.len().min(5)]));
        }
        println!("{}: {} entries compared", p.name, expected.nodes.len());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! `i_version` moves forward with every change of an inode the library
//! writes (data, attributes, xattrs, links), as the kernel's change counter
//! does; debugfs reads it.

mod common;

use std::path::Path;

use common::{have_fsck, open_rw};
use ext4_fs::{SetAttr, XattrMode};
use ext4_testkit::oracle::debugfs;

/// `Version: 0xHI:LO` of debugfs's stat.
fn version(img: &Path, path: &str) -> u64 {
    let st = debugfs(img, &format!("stat {path}"));
    let i = st.find("Version: 0x").unwrap_or_else(|| panic!("no version in:\n{st}")) + "Version: 0x".len();
    let (hi, lo) = st[i..].split_whitespace().next().unwrap().split_once(':').unwrap();
    u64::from_str_radix(hi, 16).unwrap() << 32 | u64::from_str_radix(lo, 16).unwrap()
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn every_change_advances_the_version() {
    if !have_fsck() {
        return;
    }
    let img = common::format_ext4("iversion", 16 << 20, 4096, 256, "");
    type Change = fn(&mut ext4_fs::Filesystem, u32);
    let changes: [(&str, Change); 5] = [
        ("chmod", |fs, ino| fs.set_attr(ino, SetAttr { perm: Some(0o600), ..SetAttr::default() }).unwrap()),
        ("write", |fs, ino| {
            fs.write_at(ino, 0, b"more data").unwrap();
        }),
        ("xattr", |fs, ino| fs.set_xattr(ino, b"user.k", b"v", XattrMode::Any).unwrap()),
        ("truncate", |fs, ino| fs.truncate(ino, 2).unwrap()),
        ("link", |fs, _| fs.hard_link("/f", "/g").unwrap()),
    ];
    {
        let mut fs = open_rw(&img.path);
        fs.write_file("/f", b"x").unwrap();
        fs.close().unwrap();
    }
    let mut last = version(&img.path, "/f");
    assert!(last > 0, "a created inode has version 0");
    for (what, change) in changes {
        let mut fs = open_rw(&img.path);
        let ino = fs.lookup("/f").unwrap();
        change(&mut fs, ino);
        fs.close().unwrap();
        let v = version(&img.path, "/f");
        assert!(v > last, "{what} left i_version at {v} (was {last})");
        last = v;
    }
    common::assert_clean(&img.path);
}

//! Every fixture image (made by mke2fs -d or by the kernel from a
//! make-tree.py tree) read through the library equals its source tree:
//! names, types, modes, owners, sizes, mtimes, symlink targets, xattrs,
//! hard links and SHA-256 of contents.

use ext4_fs::{Filesystem, OpenOptions};
use ext4_testkit::fixtures::{self, PROFILES};
use ext4_testkit::snapshot::Snapshot;

/// Calls `f` with every buildable fixture profile, its image opened
/// read-only and its source tree; prints a skip line for the others.
fn each_fixture(mut f: impl FnMut(&fixtures::Profile, &Filesystem, &std::path::Path)) {
    for p in PROFILES {
        if let Some(why) = fixtures::unavailable(p) {
            ext4_testkit::require(false, &format!("{}: {why}", p.name));
            continue;
        }
        let (img, src) = fixtures::image(p).expect("fixture builds");
        let fs = Filesystem::open_path(&img, OpenOptions::read_only()).expect("opens");
        f(p, &fs, &src);
    }
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn fixtures_equal_their_sources() {
    let mut failures = Vec::new();
    each_fixture(|p, fs, src| {
        let mut actual = Snapshot::from_image(fs, b"/").expect("walks");
        actual.remove_tree(b"lost+found");
        let expected = Snapshot::from_host(src).expect("source walks");
        let diff = expected.diff(&actual);
        if !diff.is_empty() {
            failures.push(format!("{}: {} differences, first: {:?}", p.name, diff.len(), &diff[..diff.len().min(5)]));
        }
        println!("{}: {} entries compared", p.name, expected.nodes.len());
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `data_run` describes every file of every fixture exactly: device runs
/// hold, at their device offsets of the image file, the bytes `read_at`
/// returns; zero runs read as zeros; the runs tile the file to its size.
#[ext4_testkit::oracle_test(e2fsprogs)]
fn data_runs_describe_every_file() {
    use std::os::unix::fs::FileExt;
    fn walk(fs: &Filesystem, dir: u32, files: &mut Vec<u32>) {
        for e in fs.dir_entries(dir).expect("lists") {
            if e.name == b"." || e.name == b".." {
                continue;
            }
            match fs.stat(e.ino).expect("stats").file_type {
                ext4_fs::FileType::Directory => walk(fs, e.ino, files),
                ext4_fs::FileType::Regular => files.push(e.ino),
                _ => {}
            }
        }
    }
    each_fixture(|p, fs, _| {
        let host = fs.host_file().expect("opened from a path");
        let mut files = Vec::new();
        walk(fs, 2, &mut files);
        let (mut device, mut zeros, mut through) = (0u64, 0u64, 0u64);
        for ino in files {
            let size = fs.stat(ino).unwrap().size;
            let mut off = 0u64;
            while let Some(run) = fs.data_run(ino, off).expect("maps") {
                let len = run.len();
                assert!(len > 0 && off + len <= size, "{}: inode {ino}: run {run:?} at {off} of {size}", p.name);
                let mut want = vec![0u8; len as usize];
                assert_eq!(fs.read_at(ino, off, &mut want).unwrap(), len as usize);
                match run {
                    ext4_fs::DataRun::Device { device_offset, .. } => {
                        let mut got = vec![0u8; len as usize];
                        host.read_exact_at(&mut got, device_offset).unwrap();
                        assert!(got == want, "{}: inode {ino}: device run at {off} differs from read_at", p.name);
                        device += len;
                    }
                    ext4_fs::DataRun::Zeros { .. } => {
                        assert!(want.iter().all(|&b| b == 0), "{}: inode {ino}: zero run at {off} reads data", p.name);
                        zeros += len;
                    }
                    ext4_fs::DataRun::ReadThrough { .. } => through += len,
                }
                off += len;
            }
            assert_eq!(off, size, "{}: inode {ino}: runs end before the size", p.name);
        }
        println!("{}: {device} bytes on the device, {zeros} zeros, {through} read through", p.name);
        assert!(device > 0, "{}: no device runs at all", p.name);
    });
}

/// A listing resumed at any entry (`dir_entries_from` with that entry's
/// position, or the position after it) returns exactly the rest of the
/// whole listing, in every directory of every fixture: linear, htree and
/// inline directories; a callback that breaks stops it.
#[ext4_testkit::oracle_test(e2fsprogs)]
fn resumed_listings_return_the_rest() {
    use std::ops::ControlFlow;
    fn from(fs: &Filesystem, dir: u32, pos: u64) -> Vec<ext4_fs::DirEntry> {
        let mut v = Vec::new();
        fs.dir_entries_from(dir, pos, |e| {
            v.push(e);
            ControlFlow::Continue(())
        })
        .expect("lists");
        v
    }
    fn check(fs: &Filesystem, dir: u32, multi_block: &mut usize) {
        let all = fs.dir_entries(dir).expect("lists");
        assert_eq!(from(fs, dir, 0), all, "dir {dir} from 0");
        if all.iter().any(|e| e.pos >= u64::from(fs.statfs().block_size)) {
            *multi_block += 1;
        }
        // Up to 64 resumption points spread over the listing.
        let step = (all.len() / 64).max(1);
        for i in (0..all.len()).step_by(step) {
            assert_eq!(from(fs, dir, all[i].pos), all[i..], "dir {dir} from entry {i}");
            assert_eq!(from(fs, dir, all[i].pos + 1), all[i + 1..], "dir {dir} after entry {i}");
        }
        let last = all.last().expect("has . and ..").pos;
        assert!(from(fs, dir, last + 1).is_empty());
        assert!(from(fs, dir, u64::MAX).is_empty());
        let mut two = Vec::new();
        fs.dir_entries_from(dir, 0, |e| {
            two.push(e);
            if two.len() == 2 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .expect("lists");
        assert_eq!(two, all[..2]);
        for e in &all {
            if e.name != b"." && e.name != b".." && fs.stat(e.ino).expect("stats").file_type == ext4_fs::FileType::Directory {
                check(fs, e.ino, multi_block);
            }
        }
    }
    let mut multi_block = 0;
    each_fixture(|_, fs, _| check(fs, 2, &mut multi_block));
    println!("{multi_block} directories span more than one block");
    assert!(multi_block > 0, "no fixture directory spans blocks: resumption across blocks untested");
}

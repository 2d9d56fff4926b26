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

/// `data_run` describes every file of every fixture exactly: device runs
/// hold, at their device offsets of the image file, the bytes `read_at`
/// returns; zero runs read as zeros; the runs tile the file to its size.
#[test]
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
    for p in PROFILES {
        if let Some(why) = fixtures::unavailable(p) {
            println!("SKIPPED: {}: {why}", p.name);
            continue;
        }
        let (img, _) = fixtures::image(p).expect("fixture builds");
        let fs = Filesystem::open_path(&img, OpenOptions::read_only()).expect("opens");
        let host = fs.host_file().expect("opened from a path");
        let mut files = Vec::new();
        walk(&fs, 2, &mut files);
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
    }
}

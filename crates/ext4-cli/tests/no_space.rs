//! A full filesystem through the `ext4` binary (issue 4, "done when" 3), on
//! ext2, ext3 and ext4 with 1 KiB and 4 KiB blocks: `ext4 write` and
//! `ext4 put` fail with "no space left on device (ENOSPC)" and exit status
//! 1, the image stays `e2fsck -fn` silent, every file written before reads
//! back, and after `ext4 rm` the freed space takes new data.

mod common;

use common::{assert_clean, have_fsck, ok, run};
use ext4_fs::{Filesystem, OpenOptions};

const MIB: usize = 1 << 20;

fn data(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i / 5) ^ seed.wrapping_mul(97)) as u8).collect()
}

/// Runs `ext4 ARGS`, expects it to fail for lack of space, and returns its message.
fn expect_no_space(args: &[&dyn AsRef<std::ffi::OsStr>], stdin: Option<&[u8]>, context: &str) -> String {
    let out = run(args, stdin);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "expected failure, got {:?}: {err}", out.status);
    let line = err.lines().last().unwrap_or_default().to_string();
    assert!(line.starts_with("ext4: ") && line.contains(context), "message {line:?} should name {context:?}");
    assert!(line.ends_with("no space left on device (ENOSPC)"), "message {line:?}");
    line
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn full_image_gives_enospc_and_stays_clean() {
    if !have_fsck() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let host_big = dir.path().join("big-host-file");
    std::fs::write(&host_big, data(7, 40 * MIB)).unwrap();
    for fs_type in ["ext2", "ext3", "ext4"] {
        for bs in ["1024", "4096"] {
            let name = format!("{fs_type}-{bs}");
            let img = dir.path().join(format!("{name}.img"));
            ok(&[&"mkfs", &"-q", &"-t", &fs_type, &"-b", &bs, &img, &"16M"], None);

            // More than the whole image, in one go: nothing of it stays.
            let msg = expect_no_space(&[&"write", &img, &"/big"], Some(&data(1, 32 * MIB)), "writing /big");
            assert_clean(&img, &format!("{name}: after {msg}"));
            let fs = Filesystem::open_path(&img, OpenOptions::read_only()).unwrap();
            assert_eq!(fs.metadata("/big").unwrap().size, 0, "{name}: the failed write left data");
            drop(fs);
            let msg = expect_no_space(&[&"put", &img, &host_big, &"/copy"], None, "copying");
            assert_clean(&img, &format!("{name}: after {msg}"));
            ok(&[&"rm", &img, &"/big", &"/copy"], None);

            // Fill with 1 MiB files until one does not fit.
            let mut files = Vec::new();
            loop {
                let path = format!("/fill{}", files.len());
                let d = data(files.len(), MIB);
                if run(&[&"write", &img, &path], Some(&d)).status.success() {
                    files.push((path, d));
                    continue;
                }
                expect_no_space(&[&"write", &img, &path], Some(&d), &format!("writing {path}"));
                ok(&[&"rm", &img, &path], None);
                break;
            }
            assert!(files.len() >= 8, "{name}: only {} MiB fitted", files.len());
            assert_clean(&img, &format!("{name}: full"));

            // Free two files: two new ones fit, a third does not.
            ok(&[&"rm", &img, &files[1].0, &files[3].0], None);
            for k in [1, 3] {
                let d = data(1000 + k, MIB);
                ok(&[&"write", &img, &files[k].0], Some(&d));
                files[k].1 = d;
            }
            expect_no_space(&[&"write", &img, &"/one-more"], Some(&data(5, MIB)), "writing /one-more");
            assert_clean(&img, &format!("{name}: refilled"));
            let fs = Filesystem::open_path(&img, OpenOptions::read_only()).unwrap();
            for (p, d) in &files {
                assert!(fs.read(p).unwrap() == *d, "{name}: {p} reads back other bytes");
            }
            println!("{name}: {} MiB fitted", files.len());
        }
    }
}

//! Inode lifetime through `ext4 mount`: files are opened without OPEN and
//! closed without RELEASE, so an inode the kernel knows lives until the
//! kernel FORGETs it. A file unlinked (or replaced by a rename) while open
//! keeps its data for the open descriptor and is freed once closed; the
//! free inode and block counts come back while still mounted, and e2fsck is
//! silent after the unmount. A read-only mount refuses writes at open.

mod common;

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Free inodes and free blocks as `statfs` on the mount reports them.
fn free_counts(mnt: &Path) -> (u64, u64) {
    let out = Command::new("stat").args(["-f", "-c", "%d %a"]).arg(mnt).output().expect("stat -f runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|w| w.parse::<u64>().expect("a number"));
    (it.next().expect("free inodes"), it.next().expect("free blocks"))
}

/// Waits (up to 10 s) for the server to have handled the FORGETs the
/// kernel queued at the last close, i.e. for the counts to be `want`.
/// Freed blocks count as free once their transaction commits: `commit`
/// (a file on the mount) is fsynced first, which commits.
fn wait_for_counts(mnt: &Path, commit: &std::fs::File, want: (u64, u64), what: &str) {
    let start = Instant::now();
    loop {
        commit.sync_all().unwrap();
        let now = free_counts(mnt);
        if now == want {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{what}: free (inodes, blocks) {now:?}, want {want:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[ext4_testkit::oracle_test(e2fsprogs, root, fuse)]
fn unlinked_open_files_live_until_closed() {
    let root = common::is_root();
    if !ext4_testkit::require(root && Path::new("/dev/fuse").exists() && common::have_fsck(), "needs root, /dev/fuse and e2fsprogs") {
        return;
    }
    let dir_tmp = ext4_testkit::scratch_dir("ext4-fuse-lifetime");
    let dir = dir_tmp.path().to_path_buf();
    let img = dir.join("img");
    let mk = Command::new("mke2fs").args(["-q", "-F", "-t", "ext4", "-b", "1024"]).arg(&img).arg("32M").status().unwrap();
    assert!(mk.success());
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 1000) as u8).collect();

    common::with_fuse(&img, &mnt, "", |mnt| {
        let commit = std::fs::File::create(mnt.join("commit")).unwrap();
        commit.sync_all().unwrap();
        let empty = free_counts(mnt);

        // Unlinked while open: still readable and writable through the
        // descriptor, its blocks and inode still in use.
        let path = mnt.join("unlinked");
        std::fs::write(&path, &data).unwrap();
        let mut f = OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let used = free_counts(mnt);
        assert!(used.0 < empty.0 && used.1 < empty.1, "the file takes an inode and blocks: {empty:?} -> {used:?}");
        std::fs::remove_file(&path).unwrap();
        assert!(!path.exists());
        f.seek(SeekFrom::End(0)).unwrap();
        f.write_all(b"tail").unwrap();
        f.sync_all().unwrap();
        let mut back = Vec::new();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), data.len() + 4);
        assert!(back[..data.len()] == data[..] && &back[data.len()..] == b"tail", "an unlinked open file keeps its data");
        assert_eq!(free_counts(mnt).0, used.0, "the unlinked open file still holds its inode");
        drop(f);
        wait_for_counts(mnt, &commit, empty, "after closing the unlinked file");

        // Replaced by a rename while open: the old inode lives on for the
        // descriptor, the name shows the new file.
        std::fs::write(mnt.join("old"), &data[..5000]).unwrap();
        std::fs::write(mnt.join("new"), b"new contents").unwrap();
        let both = free_counts(mnt);
        let mut old = std::fs::File::open(mnt.join("old")).unwrap();
        std::fs::rename(mnt.join("new"), mnt.join("old")).unwrap();
        assert_eq!(std::fs::read(mnt.join("old")).unwrap(), b"new contents");
        let mut back = Vec::new();
        old.read_to_end(&mut back).unwrap();
        assert_eq!(back, &data[..5000], "the replaced file is still readable through its descriptor");
        assert_eq!(free_counts(mnt).0, both.0);
        drop(old);
        std::fs::remove_file(mnt.join("old")).unwrap();
        wait_for_counts(mnt, &commit, empty, "after closing the replaced file and unlinking the new one");

        // Many files created, written, closed and unlinked (looked up
        // again in between), in a directory removed after them: every
        // inode and block comes back.
        let sub = mnt.join("sub");
        std::fs::create_dir(&sub).unwrap();
        for i in 0..200 {
            std::fs::write(sub.join(format!("f{i}")), &data[..i * 100]).unwrap();
        }
        for i in 0..200 {
            assert_eq!(std::fs::metadata(sub.join(format!("f{i}"))).unwrap().len(), (i * 100) as u64);
            std::fs::remove_file(sub.join(format!("f{i}"))).unwrap();
        }
        std::fs::remove_dir(&sub).unwrap();
        wait_for_counts(mnt, &commit, empty, "after 200 files created and unlinked");

        // A file left for the next mount.
        std::fs::write(mnt.join("kept"), &data).unwrap();
    });
    common::assert_clean(&img, "after the unlinks through FUSE");

    // Read-only: writes are refused at open, reads work.
    common::with_fuse(&img, &mnt, "ro", |mnt| {
        assert_eq!(std::fs::read(mnt.join("kept")).unwrap(), data);
        let e = OpenOptions::new().write(true).open(mnt.join("kept")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(30), "EROFS at open: {e}");
        let e = std::fs::write(mnt.join("new"), b"x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(30), "EROFS at create: {e}");
    });
    common::assert_clean(&img, "after the read-only mount");
    std::fs::remove_dir_all(&dir).unwrap();
}

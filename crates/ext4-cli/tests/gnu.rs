//! Modes, times and messages as GNU coreutils give them (issue 18): the same
//! `mkdir`, `mknod`, `touch` and shell-redirect commands, with several
//! umasks, in a setgid and a plain directory, run by `ext4` on an image and
//! by coreutils on a kernel loop mount of a copy, give equal modes, owners
//! and times: `mkdir -p -m` sets the mode of the last directory only,
//! parents get `u+wx` past the umask, three- and four-digit modes keep an
//! inherited setgid bit and five-digit ones clear it, `touch -d @-1.5` is
//! 1.5 s before the epoch, times past 2446 or before 1901 are clamped with
//! no nanoseconds (at 2038 and whole seconds with 128-byte inodes), `touch
//! -h` sets a symbolic link's own times. Error messages name the path once.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::{EXT4, assert_clean, have_fsck, is_root, run};
use ext4_testkit::oracle::{LoopMount, can_loop_mount};

/// (umask, the command as `ext4` and coreutils both take it, with `{p}` a
/// parent directory; `write P TEXT` is `printf TEXT > P` for the shell).
const COMMANDS: [(&str, &str); 13] = [
    ("022", "mkdir -p -m 700 {p}/x/y/z"),
    ("077", "mkdir -p -m 750 {p}/q/r"),
    ("022", "mkdir -m 0700 {p}/a"),
    ("022", "mkdir -m 00700 {p}/b"),
    ("022", "mkdir -m 4755 {p}/c"),
    ("022", "mkdir -m 2700 {p}/e"),
    ("022", "mkdir -m 1777 {p}/f"),
    ("077", "mkdir {p}/g"),
    ("077", "mknod -m 604 {p}/h p"),
    ("077", "mknod {p}/i p"),
    ("027", "touch {p}/j"),
    ("007", "write {p}/k text"),
    ("022", "mkdir -p {p}/x/y/z"),
];

/// What the commands make under each parent.
const MADE: [&str; 15] = ["x", "x/y", "x/y/z", "q", "q/r", "a", "b", "c", "e", "f", "g", "h", "i", "j", "k"];

/// Times set at the root: (name, `touch` options).
const TIMES: [(&str, &str); 5] =
    [("t1", "-d @-1.5"), ("t2", "-d @99999999999.5"), ("t3", "-d @-9999999999.5"), ("t4", "-d @1.123456789"), ("link", "-h -d @1000.25")];

fn sh(script: &str) {
    let out = Command::new("sh").arg("-c").arg(script).output().expect("sh runs");
    assert!(out.status.success(), "sh -c {script:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// An image with `/s` (setgid, group 100) and `/n`, and a dangling link `/link`, made by the kernel.
fn image(img: &Path, inode_size: &str) {
    let out = Command::new("mke2fs").args(["-q", "-F", "-t", "ext4", "-I", inode_size]).arg(img).arg("16M").output().unwrap();
    assert!(out.status.success(), "mke2fs: {}", String::from_utf8_lossy(&out.stderr));
    let m = LoopMount::new(img, "").expect("loop mount");
    let d = m.path().display();
    sh(&format!("mkdir {d}/s {d}/n && chgrp 100 {d}/s && chmod 2775 {d}/s && ln -s nowhere {d}/link"));
    m.unmount().unwrap();
}

/// `path: uid:gid mode` of `paths` (and the times of those `TIMES` sets), through the kernel.
fn view(img: &Path, paths: &[String]) -> Vec<String> {
    let m = LoopMount::new(img, "ro").expect("loop mount");
    let v = paths
        .iter()
        .map(|p| {
            let md = std::fs::symlink_metadata(m.path().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
            let owner_mode = format!("{p}: {}:{} {:o}", md.uid(), md.gid(), md.mode());
            if !TIMES.iter().any(|(name, _)| name == p) {
                return owner_mode;
            }
            let (a, mt) = ((md.atime(), md.atime_nsec()), (md.mtime(), md.mtime_nsec()));
            format!("{owner_mode} atime {a:?} mtime {mt:?}")
        })
        .collect();
    m.unmount().unwrap();
    v
}

fn can_run() -> bool {
    have_fsck() && ext4_testkit::require(is_root() && can_loop_mount(), "needs root and loop devices")
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn modes_and_times_as_coreutils_give_them() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for inode_size in ["256", "128"] {
        let (ours, theirs) = (dir.path().join(format!("ours-{inode_size}.img")), dir.path().join(format!("theirs-{inode_size}.img")));
        image(&ours, inode_size);
        std::fs::copy(&ours, &theirs).unwrap();

        let mut paths = Vec::new();
        let m = LoopMount::new(&theirs, "").expect("loop mount");
        let root = m.path().display().to_string();
        for p in ["s", "n"] {
            for (umask, c) in COMMANDS {
                let ours_words = c.replace("{p}", &format!("/{p}"));
                let (cmd, args) = ours_words.split_once(' ').unwrap();
                sh(&format!("umask {umask}; exec {EXT4} {cmd} {} {args}", ours.display()));
                let theirs_words = c.replace("{p}", &format!("{root}/{p}"));
                let shell = match theirs_words.strip_prefix("write ") {
                    Some(rest) => {
                        let (path, text) = rest.split_once(' ').unwrap();
                        format!("printf {text} > {path}")
                    }
                    None => theirs_words,
                };
                sh(&format!("umask {umask}; {shell}"));
            }
            paths.extend(MADE.iter().map(|m| format!("{p}/{m}")));
        }
        for (name, opts) in TIMES {
            sh(&format!("umask 022; exec {EXT4} touch {} {opts} /{name}", ours.display()));
            sh(&format!("umask 022; touch {opts} {root}/{name}"));
            paths.push(name.to_string());
        }
        m.unmount().unwrap();
        assert_clean(&ours, &format!("{inode_size}-byte inodes"));

        let (a, b) = (view(&ours, &paths), view(&theirs, &paths));
        let differ: Vec<String> = a.iter().zip(&b).filter(|(x, y)| x != y).map(|(x, y)| format!("ours   {x}\ntheirs {y}")).collect();
        assert!(differ.is_empty(), "{inode_size}-byte inodes:\n{}", differ.join("\n"));
        // The answers coreutils and the kernel gave, so that the comparison decides something.
        let line = |p: &str| b.iter().find(|l| l.starts_with(&format!("{p}: "))).unwrap().clone();
        assert!(line("s/x").ends_with(" 42755") && line("s/x/y/z").ends_with(" 42700"), "{}", line("s/x/y/z"));
        assert!(line("n/q").ends_with(" 40700") && line("n/q/r").ends_with(" 40750"), "{}", line("n/q"));
        assert!(line("s/a").ends_with(" 42700") && line("s/b").ends_with(" 40700"), "{}", line("s/b"));
        if inode_size == "256" {
            assert!(line("t1").contains("mtime (-2, 500000000)"), "{}", line("t1"));
            assert!(line("t2").contains("mtime (15032385535, 0)"), "{}", line("t2"));
            assert!(line("link").contains("mtime (1000, 250000000)"), "{}", line("link"));
        } else {
            assert!(line("t2").contains("mtime (2147483647, 0)"), "{}", line("t2"));
        }
    }
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn errors_name_the_path_once() {
    if !have_fsck() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("img");
    let out = Command::new("mke2fs").args(["-q", "-F", "-t", "ext4"]).arg(&img).arg("8M").output().unwrap();
    assert!(out.status.success());
    common::ok(&[&"batch", &img], Some(b"mkdir /a\nln -s /nowhere/x /a/dsym\n"));
    let once = |out: std::process::Output, path: &str, errno: &str| {
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{err}");
        assert_eq!(err.matches(path).count(), 1, "{path} named more than once: {err}");
        assert!(err.trim_end().ends_with(&format!("({errno})")), "{err}");
    };
    once(run(&[&"cat", &img, &"/a/dsym"], None), "/a/dsym", "ENOENT");
    once(run(&[&"batch", &img], Some(b"cat /a/dsym\n")), "/a/dsym", "ENOENT");
    once(run(&[&"chmod", &img, &"600", &"/a/nope"], None), "/a/nope", "ENOENT");
    once(run(&[&"mkdir", &img, &"/a"], None), "/a", "EEXIST");
    once(run(&[&"touch", &img, &"-h", &"/a/nope"], None), "/a/nope", "ENOENT");
    once(run(&[&"write", &img, &"/a/no/f", &"x"], None), "/a/no/f", "ENOENT");
    // A dangling link is followed as open(2) follows it: the file is made at its target.
    once(run(&[&"touch", &img, &"/a/dsym"], None), "/nowhere", "ENOENT");
    common::ok(&[&"batch", &img], Some(b"ln -s target /a/rel\ntouch /a/rel\n"));
    let out = run(&[&"stat", &img, &"/a/target"], None);
    assert!(out.status.success(), "touch through a dangling relative link makes its target");
}

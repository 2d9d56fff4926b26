//! One command script, three ways to apply it, one resulting tree (issue 8,
//! item 3): `ext4 batch IMAGE < SCRIPT`, the same commands as shell
//! operations on `ext4 mount` (FUSE), and on a kernel loop mount. Every
//! image is `e2fsck -fn` silent, and the kernel's view of each image (and
//! the library's) equals the kernel-made one: names, types, modes (setuid
//! included), owners, sizes, contents, symlink targets, user xattrs, device
//! numbers, hard-link groups and link counts, and the times set by `touch -d`.
//!
//! The script covers `mkdir -p`, files written from host data (empty, inline
//! sized, block sized, 1.5 MiB), `truncate` down and up, symlinks (fast and
//! block-backed), hard links, renames over a file and over an empty
//! directory, a move into a directory, `rm -r`, `chmod` with setuid/setgid
//! (and chown's clearing of them), `chown`, xattrs in the inode and in a
//! block, a FIFO and devices, names with spaces and quotes, and 300 entries
//! in one directory (an htree on the kernel) of which every sixth is removed.
//!
//! A second test checks the error path: the first failing line stops the
//! batch with its line number, command, path and errno name; the lines
//! before it are applied, the ones after it are not; `--keep-going`; a
//! line that does not parse changes nothing; reading commands print in order.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{EXT4, assert_clean, have_fsck, run, run_with_umask, unmount};
use ext4_fs::{Filesystem, InodeFlags, OpenOptions};
use ext4_testkit::noise as data;
use ext4_testkit::oracle::{LoopMount, can_loop_mount};
use ext4_testkit::snapshot::Snapshot;

/// The script as words (rendered for `ext4 batch`, interpreted for mounts).
fn script(host: &Path) -> Vec<Vec<String>> {
    for (name, seed, len) in [("empty", 0, 0), ("inline", 1, 50), ("block", 2, 4096), ("mid", 3, 100_000), ("big", 4, 1_500_000)] {
        std::fs::write(host.join(name), data(seed, len)).unwrap();
    }
    let from = |n: &str| host.join(n).to_string_lossy().into_owned();
    let mut s: Vec<Vec<String>> = Vec::new();
    let mut add = |words: &[&str]| s.push(words.iter().map(|w| w.to_string()).collect());
    add(&["mkdir", "-p", "/top/a/b/c"]);
    add(&["mkdir", "-p", "/top/with space/it's"]);
    add(&["write", "--from", &from("inline"), "/top/with space/it's/f 1"]);
    add(&["write", "--from", &from("empty"), "/top/empty"]);
    add(&["write", "--from", &from("block"), "/top/a/block"]);
    add(&["write", "--from", &from("big"), "/top/a/big"]);
    add(&["write", "--from", &from("mid"), "/top/a/b/mid"]);
    add(&["write", "/top/a/b/c/text", "hello \"quoted\" # not a comment\nsecond line"]);
    add(&["write", "--from", &from("mid"), "/top/a/shrunk"]);
    add(&["truncate", "-s", "5000", "/top/a/shrunk"]);
    add(&["write", "/top/a/grown", "x"]);
    add(&["truncate", "-s", "3M", "/top/a/grown"]);
    add(&["ln", "-s", "../big", "/top/a/b/rel-link"]);
    let long_target = format!("/top/{}/target", "long-component".repeat(8));
    add(&["ln", "-s", &long_target, "/top/long-link"]);
    add(&["ln", "/top/a/big", "/top/hard1"]);
    add(&["ln", "/top/a/big", "/top/a/b/hard2"]);
    add(&["ln", "/top/a/block", "/top/with space/block link"]);
    add(&["write", "/top/r1", "one"]);
    add(&["write", "/top/r2", "two, replaced"]);
    add(&["mv", "/top/r1", "/top/r2"]);
    add(&["mkdir", "/top/d1"]);
    add(&["write", "/top/d1/inside", "in d1"]);
    add(&["mkdir", "/top/d2"]);
    add(&["mv", "-T", "/top/d1", "/top/d2"]);
    add(&["mkdir", "/top/into"]);
    add(&["mv", "/top/a/b/c", "/top/into"]);
    add(&["mv", "/top/hard1", "/top/hard1-renamed"]);
    add(&["mkdir", "-p", "/top/gone/x/y"]);
    add(&["write", "/top/gone/x/y/f", "f"]);
    add(&["write", "--from", &from("big"), "/top/gone/bigf"]);
    add(&["ln", "-s", "nowhere", "/top/gone/dangling"]);
    add(&["mknod", "/top/gone/fifo", "p"]);
    add(&["rm", "-r", "/top/gone"]);
    add(&["rm", "/top/a/b/hard2"]);
    add(&["chown", "42:43", "/top/a/b/rel-link"]); // follows the link to /top/a/big
    add(&["chmod", "4755", "/top/a/big"]);
    add(&["chmod", "2755", "/top/a/block"]);
    add(&["chmod", "1777", "/top/d2"]);
    add(&["chmod", "6755", "/top/a/shrunk"]);
    add(&["chown", "123:456", "/top/a/shrunk"]); // clears setuid, and setgid as the group may execute
    add(&["chown", "1000:1000", "/top/a/b/mid"]);
    add(&["chmod", "4750", "/top/a/b/mid"]); // set after the chown, so it stays
    add(&["chmod", "700", "/top/with space"]);
    add(&["xattr", "set", "/top/a/big", "user.one", "v1"]);
    add(&["xattr", "set", "/top/a/big", "user.two", &"long value ".repeat(30)]);
    add(&["xattr", "set", "/top/a/big", "user.three", "3"]);
    add(&["xattr", "rm", "/top/a/big", "user.one"]);
    add(&["xattr", "set", "/top/into", "user.dir", "on a directory"]);
    add(&["xattr", "set", "/top/with space/it's/f 1", "user.q", "it's"]);
    add(&["mknod", "/top/fifo", "p"]);
    add(&["mknod", "-m", "600", "/top/null", "c", "1", "3"]);
    add(&["mknod", "-m", "660", "/top/loop", "b", "7", "300"]);
    add(&["mkdir", "/top/many"]);
    for i in 0..300 {
        add(&["write", &format!("/top/many/entry-{i:03}-with-a-name-long-enough-to-fill-blocks"), &format!("n{i}")]);
    }
    for i in (0..300).step_by(6) {
        add(&["rm", &format!("/top/many/entry-{i:03}-with-a-name-long-enough-to-fill-blocks")]);
    }
    add(&["touch", "-d", "@1234567890", "/top/into/c/text"]);
    add(&["touch", "-d", "@4000000000.5", "/top/new-by-touch"]);
    s
}

/// Paths whose mtime the script sets, relative to the root.
const TOUCHED: [&str; 2] = ["top/into/c/text", "top/new-by-touch"];

/// A word as the batch syntax writes it (single quotes when needed).
fn quote(w: &str) -> String {
    if !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || "/._-:@,+=".contains(c)) {
        return w.to_string();
    }
    format!("'{}'", w.replace('\'', "'\\''"))
}

fn render(script: &[Vec<String>]) -> String {
    let mut text = String::from("# generated by batch_equiv.rs\n\n");
    for words in script {
        text.push_str(&words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" "));
        text.push_str("   # a comment\n");
    }
    text
}

fn io(what: &str, r: std::io::Result<()>) {
    if let Err(e) = r {
        panic!("{what}: {e}");
    }
}

fn set_mode(p: &Path, mode: u32) {
    io(&format!("chmod {}", p.display()), std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)));
}

/// Applies one script command as shell operations under `root`, with the
/// modes the standalone commands give under umask 022 (mkdir 755, new
/// files 644, mknod 644) whatever the umask.
fn apply(root: &Path, words: &[String]) {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let p = |s: &str| root.join(s.trim_start_matches('/'));
    let what = w.join(" ");
    match w.as_slice() {
        ["mkdir", "-p", d] => {
            let mut cur = root.to_path_buf();
            for c in d.trim_start_matches('/').split('/') {
                cur.push(c);
                if !cur.exists() {
                    io(&what, std::fs::create_dir(&cur));
                    set_mode(&cur, 0o755);
                }
            }
        }
        ["mkdir", d] => {
            io(&what, std::fs::create_dir(p(d)));
            set_mode(&p(d), 0o755);
        }
        ["write", "--from", src, f] => write(&p(f), &std::fs::read(src).unwrap()),
        ["write", f, text] => write(&p(f), text.as_bytes()),
        ["truncate", "-s", size, f] => {
            let n = if let Some(m) = size.strip_suffix('M') { m.parse::<u64>().unwrap() << 20 } else { size.parse().unwrap() };
            io(&what, std::fs::OpenOptions::new().write(true).open(p(f)).and_then(|f| f.set_len(n)));
        }
        ["ln", "-s", target, link] => io(&what, std::os::unix::fs::symlink(target, p(link))),
        ["ln", target, link] => io(&what, std::fs::hard_link(p(target), p(link))),
        ["mv", "-T", from, to] => io(&what, std::fs::rename(p(from), p(to))),
        ["mv", from, to] => {
            let mut to = p(to);
            if to.is_dir() {
                to.push(Path::new(from).file_name().unwrap());
            }
            io(&what, std::fs::rename(p(from), to));
        }
        ["rm", "-r", d] => io(&what, std::fs::remove_dir_all(p(d))),
        ["rm", f] => io(&what, std::fs::remove_file(p(f))),
        ["chmod", mode, f] => set_mode(&p(f), u32::from_str_radix(mode, 8).unwrap()),
        ["chown", owner, f] => {
            let (u, g) = owner.split_once(':').unwrap();
            io(&what, std::os::unix::fs::chown(p(f), Some(u.parse().unwrap()), Some(g.parse().unwrap())));
        }
        ["xattr", "set", f, name, value] => io(&what, xattr::set(p(f), name, value.as_bytes())),
        ["xattr", "rm", f, name] => io(&what, xattr::remove(p(f), name)),
        ["mknod", rest @ ..] => {
            let (mode, rest) = match rest {
                ["-m", m, rest @ ..] => (u32::from_str_radix(m, 8).unwrap(), rest),
                _ => (0o644, rest),
            };
            use rustix::fs::FileType as Ft;
            let (path, kind, dev) = match rest {
                [f, "p"] => (p(f), Ft::Fifo, 0),
                [f, "c", ma, mi] => (p(f), Ft::CharacterDevice, rustix::fs::makedev(ma.parse().unwrap(), mi.parse().unwrap())),
                [f, "b", ma, mi] => (p(f), Ft::BlockDevice, rustix::fs::makedev(ma.parse().unwrap(), mi.parse().unwrap())),
                _ => panic!("unknown mknod form: {what}"),
            };
            let r = rustix::fs::mknodat(rustix::fs::CWD, &path, kind, rustix::fs::Mode::from_raw_mode(mode), dev);
            io(&what, r.map_err(std::io::Error::from));
            set_mode(&path, mode);
        }
        ["touch", "-d", t, f] => {
            if !p(f).exists() {
                write(&p(f), b"");
            }
            let (s, ns) = t.trim_start_matches('@').split_once('.').unwrap_or((t.trim_start_matches('@'), "0"));
            let ns: u32 = format!("{ns:0<9}").parse().unwrap();
            let ft = filetime::FileTime::from_unix_time(s.parse().unwrap(), ns);
            io(&what, filetime::set_file_times(p(f), ft, ft));
        }
        _ => panic!("the test cannot translate {what:?}"),
    }
}

/// `write`: the file's contents become `data`; a new file gets mode 0644.
fn write(f: &Path, data: &[u8]) {
    let existed = f.exists();
    io(&format!("writing {}", f.display()), std::fs::write(f, data));
    if !existed {
        set_mode(f, 0o644);
    }
}

/// A tree as one view saw it: the snapshot (times only where the script set
/// them) and every entry's link count.
#[derive(Debug, PartialEq)]
struct View {
    snap: Snapshot,
    nlink: BTreeMap<Vec<u8>, u64>,
}

fn normalize(mut snap: Snapshot) -> Snapshot {
    snap.remove_tree(b"lost+found");
    for (path, node) in snap.nodes.iter_mut() {
        if !TOUCHED.iter().any(|t| t.as_bytes() == path.as_slice()) {
            node.mtime = (0, 0);
        }
    }
    snap
}

fn nlinks(dir: &Path, rel: &str, out: &mut BTreeMap<Vec<u8>, u64>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
        if path == "lost+found" {
            continue;
        }
        let md = std::fs::symlink_metadata(e.path()).unwrap();
        out.insert(path.clone().into_bytes(), md.nlink());
        if md.is_dir() {
            nlinks(&e.path(), &path, out);
        }
    }
}

/// The kernel's view of an image (mounted read-only).
fn kernel_view(img: &Path) -> View {
    let m = LoopMount::new(img, "ro").expect("loop mount");
    let snap = normalize(Snapshot::from_host(m.path()).expect("snapshot through the kernel"));
    let mut nlink = BTreeMap::new();
    nlinks(m.path(), "", &mut nlink);
    unmount(m);
    View { snap, nlink }
}

/// The library's view of an image, and whether `/top/many` is indexed.
fn library_view(img: &Path) -> (Snapshot, bool) {
    let fs = Filesystem::open_path(img, OpenOptions::read_only()).expect("opens");
    let snap = normalize(Snapshot::from_image(&fs, b"/").expect("snapshot through the library"));
    let many = fs.metadata("/top/many").expect("/top/many");
    (snap, many.flags.contains(InodeFlags::INDEX))
}

/// The geometries the script runs on: 4 KiB blocks with 256-byte inodes
/// (xattrs in the inode), and 1 KiB blocks with 128-byte inodes (xattrs in
/// blocks, no nanoseconds, deeper htrees).
const GEOMETRIES: [[&str; 4]; 2] = [["-b", "4096", "-I", "256"], ["-b", "1024", "-I", "128"]];

fn mkfs(img: &Path, geometry: &[&str]) {
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4"])
        .args(geometry)
        .args(["-U", "01234567-89ab-cdef-0123-456789abcdef"])
        .args(["-E", "hash_seed=11111111-2222-3333-4444-555555555555,lazy_itable_init=0,nodiscard"])
        .arg(img)
        .arg("64M")
        .env("E2FSPROGS_FAKE_TIME", "1700000000")
        .output()
        .expect("mke2fs runs");
    assert!(out.status.success(), "mke2fs: {}", String::from_utf8_lossy(&out.stderr));
}

fn is_mounted(dir: &Path) -> bool {
    let want = dir.canonicalize().unwrap().to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().any(|l| l.split_whitespace().nth(4) == Some(want.as_str()))
}

/// Applies the script on `ext4 mount -f` (a child we wait for, so the image
/// is closed when this returns).
fn through_fuse(img: &Path, mnt: &Path, script: &[Vec<String>]) {
    let mut server = Command::new(EXT4).arg("mount").arg("-f").arg(img).arg(mnt).stderr(Stdio::piped()).spawn().expect("ext4 mount");
    let start = Instant::now();
    while !is_mounted(mnt) {
        if let Some(status) = server.try_wait().unwrap() {
            panic!("ext4 mount exited ({status}) before mounting");
        }
        assert!(start.elapsed() < Duration::from_secs(30), "ext4 mount did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    for words in script {
        apply(mnt, words);
    }
    let out = Command::new("umount").arg(mnt).output().unwrap();
    assert!(out.status.success(), "umount {}: {}", mnt.display(), String::from_utf8_lossy(&out.stderr));
    let out = server.wait_with_output().unwrap();
    assert!(out.status.success(), "ext4 mount failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn through_kernel(img: &Path, script: &[Vec<String>]) {
    let m = LoopMount::new(img, "").expect("loop mount");
    for words in script {
        apply(m.path(), words);
    }
    unmount(m);
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, fuse)]
fn batch_fuse_and_kernel_make_the_same_tree() {
    let root = common::is_root();
    if !have_fsck()
        || !ext4_testkit::require(root && can_loop_mount(), "needs root and loop devices for kernel mounts")
        || !ext4_testkit::require(Path::new("/dev/fuse").exists(), "needs /dev/fuse for ext4 mount")
    {
        return;
    }
    for geometry in GEOMETRIES {
        three_ways(&geometry);
    }
}

fn three_ways(geometry: &[&str]) {
    let t0 = Instant::now();
    let dir_tmp = ext4_testkit::scratch_dir("batch-equiv");
    let dir = dir_tmp.path().to_path_buf();
    std::fs::create_dir_all(dir.join("host")).unwrap();
    let script = script(&dir.join("host"));
    let text = render(&script);
    std::fs::write(dir.join("script"), &text).unwrap();

    let imgs: Vec<PathBuf> = ["batch", "fuse", "kernel"].iter().map(|n| dir.join(format!("{n}.img"))).collect();
    for img in &imgs {
        mkfs(img, geometry);
    }
    // The commands make what GNU tools would under umask 022 (mkdir 755, new files and nodes 644).
    let out = run_with_umask(&[&"batch", &imgs[0]], Some(text.as_bytes()), "022");
    assert!(out.status.success(), "ext4 batch: {}", String::from_utf8_lossy(&out.stderr));
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    through_fuse(&imgs[1], &mnt, &script);
    through_kernel(&imgs[2], &script);
    println!("{} commands applied three ways in {:.1?}", script.len(), t0.elapsed());

    for (img, how) in imgs.iter().zip(["ext4 batch", "ext4 mount", "the kernel"]) {
        assert_clean(img, &format!("after the script through {how}"));
    }
    let reference = kernel_view(&imgs[2]);
    let expect_paths: BTreeSet<&str> = ["top/r2", "top/d2/inside", "top/into/c/text", "top/hard1-renamed", "top/null"].into();
    for p in expect_paths {
        assert!(reference.snap.nodes.contains_key(p.as_bytes()), "the kernel's tree lacks {p}");
    }
    assert!(!reference.snap.nodes.keys().any(|k| k.starts_with(b"top/gone")), "rm -r left something");
    assert_eq!(reference.snap.nodes[b"top/a/big".as_slice()].perm, 0o4755);
    assert_eq!(reference.snap.nodes[b"top/a/shrunk".as_slice()].perm, 0o0755, "chown clears setuid and setgid");
    assert_eq!(reference.nlink[b"top/a/big".as_slice()], 2);
    assert_eq!(reference.snap.nodes.keys().filter(|k| k.starts_with(b"top/many/")).count(), 250);

    for (img, how) in imgs.iter().zip(["ext4 batch", "ext4 mount", "the kernel"]) {
        let view = kernel_view(img);
        let diff = reference.snap.diff(&view.snap);
        assert!(diff.is_empty(), "the kernel's view of the image made through {how} differs:\n{}", diff.join("\n"));
        assert_eq!(reference.nlink, view.nlink, "link counts through {how}");
        let (lib, indexed) = library_view(img);
        let diff = reference.snap.diff(&lib);
        assert!(diff.is_empty(), "the library's view of the image made through {how} differs:\n{}", diff.join("\n"));
        assert!(indexed, "/top/many is not an htree directory in the image made through {how}");
    }
    println!("{}: three equal trees ({} entries), e2fsck silent, in {:.1?}", geometry.join(" "), reference.snap.nodes.len(), t0.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn first_error_stops_the_batch_with_line_command_and_errno() {
    if !have_fsck() {
        return;
    }
    let dir_tmp = ext4_testkit::scratch_dir("ext4-batch-error");
    let dir = dir_tmp.path().to_path_buf();
    let img = dir.join("img");
    mkfs(&img, &GEOMETRIES[0]);
    let text = "mkdir /a\n\n# the next one fails\nwrite '/missing dir/f' x\ntouch /after\n";
    let out = run(&[&"batch", &img], Some(text.as_bytes()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a failing line fails the batch");
    assert!(err.contains("line 4: write '/missing dir/f' x: writing /missing dir/f") && err.contains("(ENOENT)"), "{err}");
    assert_clean(&img, "after a failed batch");
    let fs = Filesystem::open_path(&img, OpenOptions::read_only()).unwrap();
    assert!(fs.metadata("/a").is_ok_and(|m| m.is_dir()), "the line before the error is applied");
    assert!(fs.metadata("/after").is_err(), "the line after the error is not run");
    drop(fs);

    // --keep-going runs every line and still fails.
    let out = run(&[&"batch", &"--keep-going", &img], Some(b"rmdir /a/nope\ntouch /after\nmkdir /a\n"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("line 1: rmdir /a/nope") && err.contains("(ENOENT)"), "{err}");
    assert!(err.contains("line 3: mkdir /a") && err.contains("(EEXIST)"), "{err}");
    assert!(err.contains("2 of 3 commands failed"), "{err}");
    let fs = Filesystem::open_path(&img, OpenOptions::read_only()).unwrap();
    assert!(fs.metadata("/after").is_ok());
    drop(fs);

    // A line that does not parse changes nothing.
    let out = run(&[&"batch", &img], Some(b"rm /after\nchmod 755\n"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("line 2: chmod 755"), "{err}");
    let fs = Filesystem::open_path(&img, OpenOptions::read_only()).unwrap();
    assert!(fs.metadata("/after").is_ok(), "nothing ran");
    drop(fs);

    // Reading commands print in script order, seeing the lines before them
    // (cat and xattr get print the exact bytes: no newline added).
    let out =
        run(&[&"batch", &img], Some(b"write '/r e' 'some text'\ncat '/r e'\nls /\nxattr set '/r e' user.k v\nxattr get '/r e' user.k\n"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "some texta\nafter\nlost+found\nr e\nv");
    assert_clean(&img, "after the batches");
    let _ = std::fs::remove_dir_all(&dir);
}

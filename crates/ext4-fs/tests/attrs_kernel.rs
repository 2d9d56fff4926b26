//! Attributes both ways between the library and the kernel (loop mount):
//! permissions, owners, times (nanoseconds, past 2038, before 1970), xattrs
//! (`user.*`, `trusted.*`, in the inode and in a block), POSIX ACLs (the
//! kernel's on-disk format, `ext4_acl_header` version 1), shared xattr
//! blocks and inline files and directories. What the library writes is what
//! `stat`, `getfattr -d -m-` and `getfacl` show; what the kernel set
//! (`chmod`, `chown`, `touch -d`, `setfattr`, `setfacl`) is what the library reads.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::{Scratch, assert_clean, open_ro, open_rw};
use ext4_fs::{Filesystem, SetAttr, Timestamp, XattrMode};
use ext4_testkit::oracle::{LoopMount, can_loop_mount, have_e2fsprogs, have_tool};

fn format_image(tag: &str, block_size: u32, inode_size: u32, features: &str) -> Scratch {
    common::format_ext4(&format!("attrk-{tag}"), 32 << 20, block_size, inode_size, features)
}

/// Root, loop devices, e2fsprogs and the attr/acl tools (`ext4_testkit::require`).
fn prerequisites() -> bool {
    if !ext4_testkit::require(have_e2fsprogs(), "e2fsprogs not installed") {
        return false;
    }
    if !ext4_testkit::require(can_loop_mount(), "not root or no loop devices") {
        return false;
    }
    for tool in ["getfattr", "setfattr", "getfacl", "setfacl", "stat", "touch"] {
        if !ext4_testkit::require(have_tool(tool), &format!("{tool} not installed (apt-get install acl attr)")) {
            return false;
        }
    }
    true
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

// ACL tags (`ACL_USER_OBJ` ...) and the on-disk format (`fs/ext4/acl.h`).
const USER_OBJ: u16 = 1;
const USER: u16 = 2;
const GROUP_OBJ: u16 = 4;
const GROUP: u16 = 8;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;

/// One ACL entry: tag, permission bits, id (named users and groups only).
type AclEntry = (u16, u16, u32);

/// Encodes an ACL as ext4 stores it: version 1 header, 4-byte short entries,
/// 8-byte entries for named users and groups.
fn acl_to_disk(entries: &[AclEntry]) -> Vec<u8> {
    let mut v = 1u32.to_le_bytes().to_vec();
    for &(tag, perm, id) in entries {
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&perm.to_le_bytes());
        if matches!(tag, USER | GROUP) {
            v.extend_from_slice(&id.to_le_bytes());
        }
    }
    v
}

/// Decodes the on-disk format.
fn acl_from_disk(b: &[u8]) -> Vec<AclEntry> {
    assert_eq!(b[..4], 1u32.to_le_bytes(), "ext4 ACL version");
    let mut out = Vec::new();
    let mut pos = 4;
    while pos < b.len() {
        let tag = u16::from_le_bytes([b[pos], b[pos + 1]]);
        let perm = u16::from_le_bytes([b[pos + 2], b[pos + 3]]);
        let id = if matches!(tag, USER | GROUP) {
            let id = u32::from_le_bytes(b[pos + 4..pos + 8].try_into().unwrap());
            pos += 8;
            id
        } else {
            pos += 4;
            0
        };
        out.push((tag, perm, id));
    }
    out
}

/// The ACL as `getfacl -n -E --omit-header` prints it.
fn acl_text(entries: &[AclEntry]) -> String {
    let mut s = String::new();
    for &(tag, perm, id) in entries {
        let who = match tag {
            USER_OBJ => "user::".to_string(),
            USER => format!("user:{id}:"),
            GROUP_OBJ => "group::".to_string(),
            GROUP => format!("group:{id}:"),
            MASK => "mask::".to_string(),
            OTHER => "other::".to_string(),
            t => panic!("unknown ACL tag {t:#x}"),
        };
        let rwx: String = [(4, 'r'), (2, 'w'), (1, 'x')].iter().map(|&(b, c)| if perm & b != 0 { c } else { '-' }).collect();
        s.push_str(&format!("{who}{rwx}\n"));
    }
    s
}

fn getfacl(path: &Path, default: bool) -> String {
    let p = path.to_str().unwrap();
    let mut args = vec!["-n", "-p", "-E", "--omit-header"];
    if default {
        args.push("-d");
    }
    args.push(p);
    run("getfacl", &args).lines().filter(|l| !l.is_empty()).map(|l| format!("{l}\n")).collect()
}

/// `getfattr -d -m- -e hex`: name -> value, `system.*` left out (the VFS
/// shows ACLs in its own format; they are compared through getfacl).
fn getfattr(path: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let out = run("getfattr", &["-d", "-m-", "-e", "hex", "--absolute-names", path.to_str().unwrap()]);
    let mut m = BTreeMap::new();
    for line in out.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (name, value) = line.split_once('=').unwrap_or((line, ""));
        if name.starts_with("system.") {
            continue;
        }
        let hex = value.trim_start_matches("0x");
        let bytes = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        m.insert(name.as_bytes().to_vec(), bytes);
    }
    m
}

/// The library's xattrs of `path`, `system.*` left out.
fn library_xattrs(fs: &Filesystem, path: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
    fs.xattrs(path).unwrap().into_iter().filter(|x| !x.name.starts_with(b"system.")).map(|x| (x.name, x.value)).collect()
}

fn ts(secs: i64, nsec: u32) -> Timestamp {
    Timestamp { secs, nsec }
}

/// What `stat` (the syscall and the command) shows of one file.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    perm: u32,
    uid: u32,
    gid: u32,
    atime: (i64, i64),
    mtime: (i64, i64),
}

fn kernel_stat(path: &Path) -> Stat {
    let m = std::fs::symlink_metadata(path).unwrap();
    // The command agrees with the syscall on mode and owners.
    let text = run("stat", &["-c", "%a %u %g", path.to_str().unwrap()]);
    assert_eq!(text.trim(), format!("{:o} {} {}", m.mode() & 0o7777, m.uid(), m.gid()));
    Stat { perm: m.mode() & 0o7777, uid: m.uid(), gid: m.gid(), atime: (m.atime(), m.atime_nsec()), mtime: (m.mtime(), m.mtime_nsec()) }
}

fn library_stat(fs: &Filesystem, path: &str) -> Stat {
    let m = fs.symlink_metadata(path).unwrap();
    Stat {
        perm: u32::from(m.permissions),
        uid: m.uid,
        gid: m.gid,
        atime: (m.atime.secs, i64::from(m.atime.nsec)),
        mtime: (m.mtime.secs, i64::from(m.mtime.nsec)),
    }
}

/// One file the library writes: attributes, times, xattrs.
struct Spec {
    path: &'static str,
    perm: u16,
    uid: u32,
    gid: u32,
    atime: Timestamp,
    mtime: Timestamp,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn specs(extra_times: bool) -> Vec<Spec> {
    // Past 2038 and before 1970 need the `_extra` words of large inodes.
    let (late, early) =
        if extra_times { (ts(4_102_444_800, 123_456_789), ts(-1_000_000, 999_999_999)) } else { (ts(2_000_000_000, 0), ts(-1_000_000, 0)) };
    let many: Vec<(Vec<u8>, Vec<u8>)> = (0..24).map(|i| (format!("user.name{i:02}").into_bytes(), vec![b'a' + i as u8; 3 * i])).collect();
    vec![
        Spec {
            path: "/plain",
            perm: 0o4755,
            uid: 100_000,
            gid: 4_000_000_000,
            atime: late,
            mtime: early,
            xattrs: vec![(b"user.small".to_vec(), b"hello".to_vec()), (b"trusted.t".to_vec(), vec![0xA5; 40])],
        },
        Spec {
            path: "/big",
            perm: 0o2710,
            uid: 1,
            gid: 65_536,
            atime: early,
            mtime: late,
            xattrs: vec![(b"user.big".to_vec(), (0..700).map(|i| (i * 7) as u8).collect()), (b"user.empty".to_vec(), Vec::new())],
        },
        Spec { path: "/many", perm: 0o1777, uid: 0, gid: 0, atime: late, mtime: late, xattrs: many },
        Spec { path: "/dir", perm: 0o750, uid: 5, gid: 6, atime: early, mtime: late, xattrs: vec![(b"user.d".to_vec(), b"dir".to_vec())] },
    ]
}

fn library_writes_kernel_reads(tag: &str, inode_size: u32, features: &str) {
    let img = format_image(tag, 4096, inode_size, features);
    let extra = inode_size > 128;
    let specs = specs(extra);
    let mut fs = open_rw(&img.path);
    for s in &specs {
        let ino = if s.path == "/dir" { fs.mkdir(s.path, 0o755).unwrap() } else { fs.write_file(s.path, s.path.as_bytes()).unwrap() };
        for (n, v) in &s.xattrs {
            fs.set_xattr(ino, n, v, XattrMode::Create).unwrap();
        }
        let a = SetAttr { uid: Some(s.uid), gid: Some(s.gid), ..SetAttr::default() };
        fs.set_attr(ino, a).unwrap();
        let a = SetAttr { perm: Some(s.perm), atime: Some(s.atime), mtime: Some(s.mtime), ..SetAttr::default() };
        fs.set_attr(ino, a).unwrap();
    }
    let dir_ino = fs.lookup("/dir").unwrap();
    // Inline where the filesystem has it: a small file and a directory of small files.
    fs.write_file("/dir/small", b"inline bytes").unwrap();
    fs.mkdir("/dir/sub", 0o755).unwrap();
    fs.write_file("/dir/sub/x", &[9; 100]).unwrap();
    let d = specs.iter().find(|s| s.path == "/dir").unwrap();
    fs.set_attr(dir_ino, SetAttr { atime: Some(d.atime), mtime: Some(d.mtime), ..SetAttr::default() }).unwrap();
    fs.close().unwrap();
    assert_clean(&img.path);

    let m = LoopMount::new(&img.path, "ro").expect("mount");
    let root = m.path();
    for s in &specs {
        let p = root.join(&s.path[1..]);
        let want = Stat {
            perm: u32::from(s.perm),
            uid: s.uid,
            gid: s.gid,
            atime: (s.atime.secs, i64::from(s.atime.nsec)),
            mtime: (s.mtime.secs, i64::from(s.mtime.nsec)),
        };
        assert_eq!(kernel_stat(&p), want, "{tag} {}", s.path);
        let want: BTreeMap<Vec<u8>, Vec<u8>> = s.xattrs.iter().cloned().collect();
        assert_eq!(getfattr(&p), want, "{tag} {}", s.path);
    }
    assert_eq!(std::fs::read(root.join("dir/small")).unwrap(), b"inline bytes");
    assert_eq!(std::fs::read(root.join("dir/sub/x")).unwrap(), [9; 100]);
    m.unmount().unwrap();
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, getfattr, setfattr, getfacl, setfacl)]
fn library_attributes_are_what_the_kernel_shows() {
    if !prerequisites() {
        return;
    }
    library_writes_kernel_reads("lib-256-inline", 256, "inline_data");
    library_writes_kernel_reads("lib-128", 128, "");
}

/// ACLs stored by `set_xattr` in the on-disk format (the library keeps
/// `system.posix_acl_*` values as given: an empty name under index 2 or 3),
/// next to other attributes, are what getfacl shows.
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, getfattr, setfattr, getfacl, setfacl)]
fn library_acls_are_what_getfacl_shows() {
    if !prerequisites() {
        return;
    }
    let access: Vec<AclEntry> = vec![(USER_OBJ, 7, 0), (USER, 4, 1000), (GROUP_OBJ, 5, 0), (GROUP, 6, 2000), (MASK, 7, 0), (OTHER, 0, 0)];
    let default: Vec<AclEntry> = vec![(USER_OBJ, 7, 0), (GROUP_OBJ, 5, 0), (GROUP, 5, 3000), (MASK, 5, 0), (OTHER, 1, 0)];
    let img = format_image("lib-acl", 4096, 256, "");
    let mut fs = open_rw(&img.path);
    let f = fs.write_file("/acl", b"acl").unwrap();
    fs.set_attr(f, SetAttr { perm: Some(0o770), ..SetAttr::default() }).unwrap();
    fs.set_xattr(f, b"system.posix_acl_access", &acl_to_disk(&access), XattrMode::Create).unwrap();
    fs.set_xattr(f, b"user.after", b"an attribute after the ACL", XattrMode::Create).unwrap();
    let d = fs.mkdir("/dir", 0o750).unwrap();
    fs.set_xattr(d, b"system.posix_acl_default", &acl_to_disk(&default), XattrMode::Create).unwrap();
    fs.close().unwrap();
    assert_clean(&img.path);
    let m = LoopMount::new(&img.path, "ro").expect("mount");
    assert_eq!(getfacl(&m.path().join("acl"), false), acl_text(&access), "access ACL");
    assert_eq!(getfacl(&m.path().join("dir"), true), acl_text(&default), "default ACL");
    assert_eq!(getfattr(&m.path().join("acl")).get(&b"user.after"[..]).map(Vec::as_slice), Some(&b"an attribute after the ACL"[..]));
    m.unmount().unwrap();
}

/// What the kernel shows of a tree, to compare with the library's view after unmount.
struct Seen {
    stat: Stat,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    acl: Option<String>,
    default_acl: Option<String>,
}

fn kernel_view(root: &Path, rel: &str, acl: bool, default_acl: bool) -> Seen {
    let p = root.join(rel);
    Seen {
        stat: kernel_stat(&p),
        xattrs: getfattr(&p),
        acl: acl.then(|| getfacl(&p, false)),
        default_acl: default_acl.then(|| getfacl(&p, true)),
    }
}

/// Asserts the library reads what the kernel showed of each path (ACLs
/// decoded from the on-disk format).
fn assert_library_sees(fs: &Filesystem, seen: &[(&str, Seen)]) {
    for (rel, k) in seen {
        let path = format!("/{rel}");
        assert_eq!(library_stat(fs, &path), k.stat, "{path}");
        assert_eq!(library_xattrs(fs, &path), k.xattrs, "{path}");
        let ino = fs.lookup(&path).unwrap();
        for (text, name) in [(&k.acl, &b"system.posix_acl_access"[..]), (&k.default_acl, b"system.posix_acl_default")] {
            if let Some(text) = text {
                let disk = fs.get_xattr(ino, name).unwrap();
                assert_eq!(&acl_text(&acl_from_disk(&disk)), text, "{path} ACL");
            }
        }
    }
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, getfattr, setfattr, getfacl, setfacl)]
fn kernel_attributes_are_what_the_library_reads() {
    if !prerequisites() {
        return;
    }
    let img = format_image("kernel-set", 4096, 256, "inline_data");
    let m = LoopMount::new(&img.path, "").expect("mount");
    let root = m.path().to_path_buf();
    let r = |p: &str| root.join(p).to_str().unwrap().to_string();
    std::fs::write(root.join("f"), b"small file, inline").unwrap();
    std::fs::write(root.join("g"), vec![3u8; 5000]).unwrap();
    std::fs::create_dir(root.join("d")).unwrap();
    for i in 0..5 {
        std::fs::write(root.join(format!("d/e{i}")), format!("entry {i}")).unwrap();
    }
    run("chmod", &["4751", &r("f")]);
    run("chown", &["100000:4000000000", &r("f")]);
    run("touch", &["-a", "-d", "2100-01-01 00:00:00.123456789 UTC", &r("f")]);
    run("touch", &["-m", "-d", "1960-06-15 12:00:00.5 UTC", &r("f")]);
    run("touch", &["-d", "2038-01-19 03:14:08.000000001 UTC", &r("g")]);
    run("setfattr", &["-n", "user.a", "-v", "hello", &r("f")]);
    run("setfattr", &["-n", "trusted.t", "-v", "0xdeadbeef", &r("f")]);
    run("setfattr", &["-n", "user.big", "-v", &format!("0x{}", "ab".repeat(2000)), &r("g")]);
    run("chmod", &["2770", &r("d")]);
    let seen = [
        ("f", kernel_view(&root, "f", false, false)),
        ("g", kernel_view(&root, "g", false, false)),
        ("d", kernel_view(&root, "d", false, false)),
    ];
    m.unmount().unwrap();
    assert_clean(&img.path);

    let fs = open_ro(&img.path);
    assert_library_sees(&fs, &seen);
    // The times above: nanoseconds, past 2038, before 1970.
    let f = fs.metadata("/f").unwrap();
    assert_eq!(f.atime, ts(4_102_444_800, 123_456_789));
    assert_eq!(f.mtime, ts(-301_233_600, 500_000_000));
    assert_eq!(fs.read("/f").unwrap(), b"small file, inline");
    assert_eq!(fs.read("/g").unwrap(), vec![3u8; 5000]);
    let mut names: Vec<String> = fs.read_dir("/d").unwrap().iter().map(|e| e.name_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["e0", "e1", "e2", "e3", "e4"]);
    for i in 0..5 {
        assert_eq!(fs.read(format!("/d/e{i}")).unwrap(), format!("entry {i}").as_bytes());
    }
}

/// ACLs set by `setfacl` (access and default, next to other attributes)
/// read through `get_xattr` decode to what getfacl showed.
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, getfattr, setfattr, getfacl, setfacl)]
fn kernel_acls_are_what_the_library_reads() {
    if !prerequisites() {
        return;
    }
    let img = format_image("kernel-acl", 4096, 256, "inline_data");
    let m = LoopMount::new(&img.path, "").expect("mount");
    let root = m.path().to_path_buf();
    let r = |p: &str| root.join(p).to_str().unwrap().to_string();
    std::fs::write(root.join("g"), b"acl").unwrap();
    std::fs::create_dir(root.join("d")).unwrap();
    run("setfattr", &["-n", "user.before", "-v", "1", &r("g")]);
    run("setfacl", &["-m", "u:1000:r--,g:2000:rw-", &r("g")]);
    run("setfacl", &["-d", "-m", "u::rwx,g::r-x,o::---,g:3000:r-x", &r("d")]);
    let seen = [("g", kernel_view(&root, "g", true, false)), ("d", kernel_view(&root, "d", false, true))];
    m.unmount().unwrap();
    assert_clean(&img.path);
    let fs = open_ro(&img.path);
    assert_library_sees(&fs, &seen);
}

/// The kernel shares one xattr block between files with equal sets (mbcache);
/// the library changing one sharer copies the block first, and removing the
/// other's attributes drops the last reference.
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, getfattr, setfattr, getfacl, setfacl)]
fn shared_xattr_blocks_are_copied_on_write() {
    if !prerequisites() {
        return;
    }
    let img = format_image("shared", 1024, 256, "");
    let m = LoopMount::new(&img.path, "").expect("mount");
    let big = format!("0x{}", "5a".repeat(600));
    for f in ["a", "b", "c"] {
        let p = m.path().join(f);
        std::fs::write(&p, f).unwrap();
        run("setfattr", &["-n", "user.shared", "-v", &big, p.to_str().unwrap()]);
    }
    m.unmount().unwrap();
    assert_clean(&img.path);

    let mut fs = open_rw(&img.path);
    let inos: Vec<u32> = ["/a", "/b", "/c"].iter().map(|p| fs.lookup(p).unwrap()).collect();
    let block = |fs: &Filesystem, ino: u32| fs.read_inode(ino).unwrap().inode.file_acl;
    let shared = block(&fs, inos[0]);
    assert!(shared != 0 && inos.iter().all(|&i| block(&fs, i) == shared), "the kernel did not share the xattr block");
    fs.set_xattr(inos[0], b"user.own", b"mine", XattrMode::Create).unwrap();
    assert_ne!(block(&fs, inos[0]), shared, "a shared block was changed in place");
    fs.remove_xattr(inos[1], b"user.shared").unwrap();
    assert_eq!(block(&fs, inos[1]), 0);
    assert_eq!(block(&fs, inos[2]), shared);
    fs.close().unwrap();
    assert_clean(&img.path);

    let m = LoopMount::new(&img.path, "ro").expect("mount");
    let value = vec![0x5a; 600];
    let a = getfattr(&m.path().join("a"));
    assert_eq!(a.get(&b"user.shared"[..]), Some(&value));
    assert_eq!(a.get(&b"user.own"[..]), Some(&b"mine".to_vec()));
    assert!(getfattr(&m.path().join("b")).is_empty());
    assert_eq!(getfattr(&m.path().join("c")).get(&b"user.shared"[..]), Some(&value));
    m.unmount().unwrap();
}

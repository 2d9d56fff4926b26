//! The new inspection commands against the tools users know, on a
//! filesystem the kernel made and wrote: `ext4 extents` against debugfs
//! `ex`, `icheck`/`ncheck` against debugfs', `lsattr`/`chattr` against
//! e2fsprogs' on a kernel mount (flags set by either side), `du` against
//! coreutils on the mount, `ls -R` against GNU ls, and `tree` against tree(1).

mod common;

use std::path::Path;
use std::process::Command;

use common::{have_fsck, is_root, ok};
use ext4_testkit::oracle::{LoopMount, can_loop_mount, debugfs, have_tool};
use serde_json::Value;

fn sh(script: &str) {
    let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
}

fn stdout(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{c:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Files the kernel writes: a one-block file with a hard link, a file of
/// ten separate extents (a depth-1 tree), an unwritten preallocation, a
/// symbolic link, a dangling one, nested directories.
const FILES: [&str; 4] = ["d/small", "d/holes", "d/unwritten", "d/e/more"];

fn kernel_image(img: &Path) {
    let out = Command::new("mke2fs").args(["-q", "-F", "-t", "ext4"]).arg(img).arg("32M").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m = LoopMount::new(img, "").unwrap();
    let d = m.path().display();
    sh(&format!(
        "cd {d} && mkdir -p d/e && echo hi > d/small && ln d/small d/e/hard && \
         for i in $(seq 0 9); do dd if=/dev/urandom of=d/holes bs=4k count=1 seek=$((i*2)) conv=notrunc status=none; done && \
         fallocate -l 64k d/unwritten && head -c 300000 /dev/urandom > d/e/more && ln -s ../small d/e/link && ln -s nowhere d/dangling && \
         touch .hidden && chattr +a d/small && chattr +d d/e"
    ));
    common::unmount(m);
}

/// A leaf as (level, logical, physical, length, unwritten).
type Leaf = (u64, u64, u64, u64, bool);
/// An index entry as (level, logical, node block).
type Index = (u64, u64, u64);

/// debugfs `ex PATH`: its leaves and index entries.
fn debugfs_extents(img: &Path, path: &str) -> (Vec<Leaf>, Vec<Index>) {
    let (mut leaves, mut nodes) = (Vec::new(), Vec::new());
    for line in debugfs(img, &format!("ex {path}")).lines().skip(1) {
        let t: Vec<&str> = line.split(['/', ' ']).filter(|w| !w.is_empty()).collect();
        let n = |i: usize| t[i].parse::<u64>().unwrap_or_else(|_| panic!("{line}"));
        if n(0) == n(1) {
            leaves.push((n(0), n(4), n(7), n(10), t.get(11) == Some(&"Uninit")));
        } else {
            nodes.push((n(0), n(4), n(7)));
        }
    }
    (leaves, nodes)
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn extents_icheck_and_ncheck_answer_as_debugfs() {
    if !have_fsck() || !ext4_testkit::require(is_root() && can_loop_mount(), "needs root and loop devices") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("img");
    kernel_image(&img);
    let mut blocks = Vec::new();
    for f in FILES {
        let p = format!("/{f}");
        let out = ok(&[&"extents", &"--json", &img, &p], None);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let n = |x: &Value, k: &str| x[k].as_u64().unwrap();
        let leaves: Vec<_> = v[0]["extents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (n(e, "level"), n(e, "logical"), n(e, "physical"), n(e, "length"), e["unwritten"] == true))
            .collect();
        let nodes: Vec<_> = v[0]["nodes"].as_array().unwrap().iter().map(|e| (n(e, "level"), n(e, "logical"), n(e, "block"))).collect();
        assert_eq!((leaves.clone(), nodes.clone()), debugfs_extents(&img, &p), "{p}");
        blocks.extend(leaves.iter().map(|l| l.2 + l.3 - 1));
        blocks.extend(nodes.iter().map(|x| x.2));
    }
    let unwritten = debugfs_extents(&img, "/d/unwritten").0;
    assert!(unwritten.iter().all(|l| l.4) && debugfs_extents(&img, "/d/holes").1.len() == 1, "the image has the structures meant");

    // Blocks of files, index nodes, metadata (100: the resize inode's), a free one.
    blocks.extend([100, 30_000]);
    let words: Vec<String> = blocks.iter().map(u64::to_string).collect();
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"icheck", &img];
    args.extend(words.iter().map(|w| w as &dyn AsRef<std::ffi::OsStr>));
    let ours = String::from_utf8(ok(&args, None).stdout).unwrap();
    assert_eq!(ours, debugfs(&img, &format!("icheck {}", words.join(" "))));
    assert!(ours.contains("<block not found>"), "{ours}");

    let inodes: Vec<String> = ["/d/small", "/d/e", "/d/e/link", "/d/holes"]
        .iter()
        .map(|p| serde_json::from_slice::<Value>(&ok(&[&"stat", &"--json", &img, p], None).stdout).unwrap()["ino"].to_string())
        .collect();
    let sorted = |s: String| {
        let mut l: Vec<String> = s.lines().map(str::to_string).collect();
        l.sort();
        l
    };
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"ncheck", &img];
    args.extend(inodes.iter().map(|w| w as &dyn AsRef<std::ffi::OsStr>));
    let ours = sorted(String::from_utf8(ok(&args, None).stdout).unwrap());
    assert_eq!(ours, sorted(debugfs(&img, &format!("ncheck {}", inodes.join(" ")))));
    assert_eq!(ours.len(), 6, "a header and five names (the hard link twice): {ours:?}");
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn lsattr_chattr_du_and_tree_agree_with_the_kernel_mount() {
    if !have_fsck() || !ext4_testkit::require(is_root() && can_loop_mount(), "needs root and loop devices") {
        return;
    }
    let tree_here = ext4_testkit::require(have_tool("tree"), "tree(1) not installed (apt-get install tree)");
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("img");
    kernel_image(&img);
    // du counts a file of several links where it meets it first, and the
    // kernel's directory order is not ours: no link across directories here.
    ok(&[&"chattr", &img, &"-a", &"/d/small"], None);
    ok(&[&"rm", &img, &"/d/e/hard"], None);
    ok(&[&"chattr", &img, &"+a", &"/d/small"], None);
    ok(&[&"chattr", &img, &"+iA", &"/d/holes"], None);
    ok(&[&"chattr", &img, &"-R", &"+S", &"/d/e"], None);
    ok(&[&"chattr", &img, &"=dT", &"/d"], None);
    common::assert_clean(&img, "after chattr");
    let ours = |args: &[&str]| {
        let mut all: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&args[0], &img];
        all.extend(args[1..].iter().map(|a| a as &dyn AsRef<std::ffi::OsStr>));
        String::from_utf8(ok(&all, None).stdout).unwrap()
    };
    let lsattr = ours(&["lsattr", "-R", "-a", "-p", "/"]);
    let du = ours(&["du", "/"]);
    let du_files = ours(&["du", "-a", "/d/e"]);
    let du_bytes = ours(&["du", "-ab", "/d/e"]);
    let tree = ours(&["tree", "-a", "/"]);
    let ls = ours(&["ls", "-R", "/"]);

    let m = LoopMount::new(&img, "ro").unwrap();
    let root = m.path().to_str().unwrap().to_string();
    let theirs = |c: &mut Command| stdout(c).replace(&format!("{root}/"), "/").replace(&root, "/");
    let k_lsattr = theirs(Command::new("lsattr").args(["-R", "-a", "-p"]).arg(&root));
    let k_du = theirs(Command::new("du").arg(&root));
    let k_du_files = theirs(Command::new("du").arg("-a").arg(format!("{root}/d/e")));
    let k_du_bytes = theirs(Command::new("du").arg("-ab").arg(format!("{root}/d/e")));
    let k_ls = theirs(Command::new("ls").args(["-A", "-R"]).arg(&root).env("LC_ALL", "C"));
    let k_tree =
        if tree_here { Some(theirs(Command::new("tree").args(["-a", "--charset=UTF-8"]).arg(&root).env("LC_ALL", "C"))) } else { None };
    common::unmount(m);

    let lines = |s: &str| {
        let mut l: Vec<String> = s.lines().filter(|l| !l.is_empty() && !l.ends_with(':')).map(|l| l.replace("//", "/")).collect();
        l.sort();
        l
    };
    // lsattr -a lists `.` and `..` of each directory; ours leaves them out.
    let k_lsattr = lines(&k_lsattr).into_iter().filter(|l| !l.ends_with("/.") && !l.ends_with("/..")).collect::<Vec<_>>();
    assert_eq!(lines(&lsattr), k_lsattr);
    assert!(k_lsattr.iter().any(|l| l.contains("----ia-A") || l.contains("----i--A")), "{k_lsattr:?}");
    assert_eq!(lines(&du), lines(&k_du));
    assert_eq!(lines(&du_files), lines(&k_du_files));
    assert_eq!(lines(&du_bytes), lines(&k_du_bytes));
    assert_eq!(ls, k_ls, "ls -R (GNU's -A -R: dot names, not . and ..)");
    if let Some(k) = k_tree {
        assert_eq!(tree.lines().skip(1).collect::<Vec<_>>(), k.lines().skip(1).collect::<Vec<_>>(), "ours:\n{tree}\ntree(1):\n{k}");
    }
}

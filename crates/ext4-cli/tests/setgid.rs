//! New entries take the kernel's owner, group and mode (issue 18, item 2):
//! every creating command (`write`, `touch`, `mkdir`, `mkdir -p`, `mkdir
//! -m`, `ln -s`, `mknod` of a FIFO and of a device) in a setgid directory
//! and in a plain one, through the standalone commands, `ext4 batch` and
//! `ext4 mount`, gives the tree the kernel gives for the same commands on a
//! loop mount (umask 022): the directory's group, setgid on directories
//! (`mkdir -m 700` keeping it, as GNU mkdir does), the caller's group
//! elsewhere. Then as a user outside the directory's group, through the
//! CLI and `ext4 mount -o allow_other`: the user owns what it makes, the
//! group is the directory's, and the setgid bit of a group-executable file
//! it creates is dropped, as the kernel drops it.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::{EXT4, assert_clean, have_fsck, is_root, with_fuse};
use ext4_testkit::oracle::{LoopMount, can_loop_mount};

/// Each creating command, in the CLI's words and as shell words on a mount
/// (`{p}` is the parent directory).
const COMMANDS: [(&str, &str); 8] = [
    ("write {p}/w text", "printf text > {p}/w"),
    ("touch {p}/t", "touch {p}/t"),
    ("mkdir {p}/d", "mkdir {p}/d"),
    ("mkdir -p {p}/x/y/z", "mkdir -p {p}/x/y/z"),
    ("mkdir -m 700 {p}/m", "mkdir -m 700 {p}/m"),
    ("ln -s target {p}/l", "ln -s target {p}/l"),
    ("mknod {p}/fifo p", "mknod {p}/fifo p"),
    ("mknod -m 640 {p}/chr c 1 3", "mknod -m 640 {p}/chr c 1 3"),
];

/// What the commands make, under each parent.
const MADE: [&str; 10] = ["w", "t", "d", "x", "x/y", "x/y/z", "m", "l", "fifo", "chr"];

const PARENTS: [&str; 2] = ["s", "n"];

fn sh(script: &str) {
    let out = Command::new("sh").arg("-c").arg(script).output().expect("sh runs");
    assert!(out.status.success(), "sh -c {script:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `(uid, gid, mode)` of each made path, as the kernel sees the image.
fn kernel_view(img: &Path, paths: &[String]) -> Vec<(String, u32, u32, String)> {
    let m = LoopMount::new(img, "ro").expect("loop mount");
    let v = paths
        .iter()
        .map(|p| {
            let md = std::fs::symlink_metadata(m.path().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
            (p.clone(), md.uid(), md.gid(), format!("{:o}", md.mode()))
        })
        .collect();
    m.unmount().unwrap();
    v
}

/// A 32 MiB image with `/s` (setgid, group 100, mode 2775), `/n` (plain,
/// 755) and `/open` (setgid, group 100, mode 2777), made by the kernel.
fn image(img: &Path) {
    let out = Command::new("mke2fs").args(["-q", "-F", "-t", "ext4", "-b", "4096"]).arg(img).arg("32M").output().unwrap();
    assert!(out.status.success(), "mke2fs: {}", String::from_utf8_lossy(&out.stderr));
    let m = LoopMount::new(img, "").expect("loop mount");
    let d = m.path().display();
    sh(&format!("mkdir {d}/s {d}/n {d}/open && chgrp 100 {d}/s {d}/open && chmod 2775 {d}/s && chmod 2777 {d}/open"));
    m.unmount().unwrap();
    // Other users reach the image and the mount points below.
    std::fs::set_permissions(img, std::fs::Permissions::from_mode(0o666)).unwrap();
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, fuse)]
fn every_creating_command_inherits_as_the_kernel() {
    if !have_fsck()
        || !ext4_testkit::require(is_root() && can_loop_mount(), "needs root and loop devices")
        || !ext4_testkit::require(Path::new("/dev/fuse").exists(), "needs /dev/fuse for ext4 mount")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let names = ["cli", "batch", "fuse", "kernel"];
    let imgs: Vec<_> = names.iter().map(|n| dir.path().join(format!("{n}.img"))).collect();
    image(&imgs[0]);
    for img in &imgs[1..] {
        std::fs::copy(&imgs[0], img).unwrap();
    }
    let cli = |p: &str, c: &str| c.replace("{p}", &format!("/{p}"));
    let shell = |root: &Path, p: &str, c: &str| c.replace("{p}", &root.join(p).display().to_string());
    for p in PARENTS {
        for (c, _) in COMMANDS {
            let words: Vec<String> = cli(p, c).split(' ').map(str::to_string).collect();
            sh(&format!("umask 022; exec {EXT4} {} {} {}", words[0], imgs[0].display(), words[1..].join(" ")));
        }
    }
    let script: String = PARENTS.iter().flat_map(|p| COMMANDS.iter().map(move |(c, _)| cli(p, c) + "\n")).collect();
    std::fs::write(dir.path().join("script"), script).unwrap();
    sh(&format!("umask 022; exec {EXT4} batch -f {} {}", dir.path().join("script").display(), imgs[1].display()));
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let on_mount = |root: &Path| {
        let cmds: Vec<String> = PARENTS.iter().flat_map(|p| COMMANDS.iter().map(move |(_, s)| shell(root, p, s))).collect();
        sh(&format!("umask 022; {}", cmds.join(" && ")));
    };
    with_fuse(&imgs[2], &mnt, "", on_mount);
    let m = LoopMount::new(&imgs[3], "").expect("loop mount");
    on_mount(m.path());
    m.unmount().unwrap();

    let paths: Vec<String> = PARENTS.iter().flat_map(|p| MADE.iter().map(move |m| format!("{p}/{m}"))).collect();
    let reference = kernel_view(&imgs[3], &paths);
    let get = |path: &str| reference.iter().find(|r| r.0 == path).map(|r| (r.2, r.3.as_str())).unwrap();
    // The kernel's answers, so that the comparison decides something.
    assert_eq!(get("s/d"), (100, "42755"));
    assert_eq!(get("s/x/y/z"), (100, "42755"));
    assert_eq!(get("s/m"), (100, "42700"), "mkdir -m 700 keeps the inherited setgid bit");
    assert_eq!(get("s/w"), (100, "100644"));
    assert_eq!(get("s/l"), (100, "120777"));
    assert_eq!(get("n/d"), (0, "40755"));
    for (img, how) in imgs.iter().zip(names) {
        assert_clean(img, &format!("after the commands through {how}"));
        let view = kernel_view(img, &paths);
        let differ: Vec<String> =
            view.iter().zip(&reference).filter(|(a, b)| a != b).map(|(a, b)| format!("{a:?}, the kernel made {b:?}")).collect();
        assert!(differ.is_empty(), "through {how}:\n{}", differ.join("\n"));
    }
    as_a_user(&imgs, &mnt);
}

/// Runs `script` with `sh` as uid and gid 1000 without supplementary groups.
fn as_user(script: &str) {
    let out = Command::new("setpriv")
        .args(["--reuid", "1000", "--regid", "1000", "--clear-groups", "sh", "-c"])
        .arg(script)
        .output()
        .expect("setpriv runs");
    assert!(out.status.success(), "as uid 1000: {script:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A user outside group 100 makes a directory, a file and a setgid
/// group-executable file in `/open` (setgid, group 100).
fn as_a_user(imgs: &[std::path::PathBuf], mnt: &Path) {
    let made = ["open/ud", "open/uf", "open/ux"];
    let create = |root: &Path| {
        let r = root.display();
        format!(
            "umask 022; mkdir {r}/open/ud && printf u > {r}/open/uf && perl -MFcntl -e 'sysopen(F, $ARGV[0], O_CREAT | O_WRONLY, 02755) or die $!' {r}/open/ux"
        )
    };
    // Through the CLI (no command makes a setgid file: mknod refuses special bits, as GNU's).
    let img = imgs[0].display();
    as_user(&format!("umask 022; {EXT4} mkdir {img} /open/ud && {EXT4} write {img} /open/uf u"));
    with_fuse(&imgs[2], mnt, "allow_other", |root| as_user(&create(root)));
    let m = LoopMount::new(&imgs[3], "").expect("loop mount");
    as_user(&create(m.path()));
    m.unmount().unwrap();

    let paths: Vec<String> = made.iter().map(|s| s.to_string()).collect();
    let reference = kernel_view(&imgs[3], &paths);
    assert_eq!(reference[0], ("open/ud".into(), 1000, 100, "42755".into()));
    assert_eq!(reference[2], ("open/ux".into(), 1000, 100, "100755".into()), "the kernel drops setgid for an outsider");
    let fuse = kernel_view(&imgs[2], &paths);
    assert_eq!(fuse, reference, "as a user through ext4 mount");
    let cli = kernel_view(&imgs[0], &paths[..2]);
    assert_eq!(cli, reference[..2], "as a user through the CLI");
    for img in [&imgs[0], &imgs[2]] {
        assert_clean(img, "after a user's commands");
    }
}

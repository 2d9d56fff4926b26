//! Owners and modes of new inodes against the kernel (issue 18, item 2):
//! every combination of caller (root; a user; a user in the directory's
//! group as a supplementary or as its own group), parent (plain, setgid),
//! type and asked-for mode (setgid with and without group execute,
//! setuid, sticky) and umask is made by the kernel — each by a process
//! with those credentials on a loop mount — and by the library's inode API
//! with the same [`Caller`]; owner, group and mode must be equal.

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_clean, have_fsck, open_ro, open_rw};
use ext4_fs::{Caller, FileType, NewNode};
use ext4_testkit::oracle::{LoopMount, can_loop_mount};

/// Who creates: (name, uid, gid, supplementary groups).
const CALLERS: [(&str, u32, u32, &[u32]); 4] =
    [("root", 0, 0, &[]), ("user", 1000, 1000, &[]), ("member", 1000, 1000, &[100]), ("primary", 1000, 100, &[])];

/// What is made: (name, type, mode asked for).
const NODES: [(&str, FileType, u16); 10] = [
    ("file644", FileType::Regular, 0o644),
    ("file2755", FileType::Regular, 0o2755),
    ("file2745", FileType::Regular, 0o2745),
    ("file6777", FileType::Regular, 0o6777),
    ("dir777", FileType::Directory, 0o777),
    ("dir2755", FileType::Directory, 0o2755),
    ("dir4755", FileType::Directory, 0o4755),
    ("dir1777", FileType::Directory, 0o1777),
    ("fifo2751", FileType::Fifo, 0o2751),
    ("link", FileType::Symlink, 0o777),
];

/// Parents: (name, mode, group); both open to everyone.
const PARENTS: [(&str, u32, u32); 2] = [("plain", 0o777, 0), ("sgid", 0o2777, 100)];

const UMASKS: [u16; 2] = [0o022, 0o007];

fn name(parent: &str, caller: &str, node: &str, umask: u16) -> String {
    format!("{parent}/{caller}-{node}-{umask:03o}")
}

/// The Python program that makes every case on the kernel mount `root`,
/// each in a child process with the case's credentials.
fn kernel_program(root: &Path) -> String {
    let mut cases = Vec::new();
    for (p, ..) in PARENTS {
        for (c, uid, gid, groups) in CALLERS {
            for (n, kind, mode) in NODES {
                for umask in UMASKS {
                    let k = match kind {
                        FileType::Regular => "f",
                        FileType::Directory => "d",
                        FileType::Fifo => "p",
                        _ => "l",
                    };
                    let path = root.join(name(p, c, n, umask));
                    cases.push(format!("({:?}, {uid}, {gid}, {groups:?}, {umask}, {k:?}, {mode})", path.to_str().unwrap()));
                }
            }
        }
    }
    format!(
        "import os, stat, sys
for path, uid, gid, groups, umask, kind, mode in [{}]:
    pid = os.fork()
    if pid == 0:
        os.setgroups(groups); os.setgid(gid); os.setuid(uid); os.umask(umask)
        if kind == 'f': os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode))
        elif kind == 'd': os.mkdir(path, mode)
        elif kind == 'p': os.mknod(path, mode | stat.S_IFIFO)
        else: os.symlink('target', path)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status != 0: sys.exit('failed: ' + path)
",
        cases.join(", ")
    )
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("runs");
    assert!(out.status.success(), "{cmd:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, python3)]
fn new_inodes_get_the_kernels_owner_group_and_mode() {
    if !have_fsck()
        || !ext4_testkit::require(can_loop_mount(), "needs root and loop devices")
        || !ext4_testkit::require(ext4_testkit::oracle::have_tool("python3"), "needs python3 to create as other users")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ours, theirs) = (dir.path().join("ours.img"), dir.path().join("theirs.img"));
    run(Command::new("mke2fs").args(["-q", "-F", "-t", "ext4", "-b", "4096"]).arg(&ours).arg("32M"));
    // The parents, made and aged by the kernel.
    let m = LoopMount::new(&ours, "").expect("loop mount");
    for (p, mode, gid) in PARENTS {
        let path = m.path().join(p);
        std::fs::create_dir(&path).unwrap();
        std::os::unix::fs::chown(&path, None, Some(gid)).unwrap();
        // chmod after chown: chown clears setgid.
        run(Command::new("chmod").arg(format!("{mode:o}")).arg(&path));
    }
    m.unmount().unwrap();
    std::fs::copy(&ours, &theirs).unwrap();

    let m = LoopMount::new(&theirs, "").expect("loop mount");
    run(Command::new("python3").arg("-c").arg(kernel_program(m.path())));
    m.unmount().unwrap();

    let mut fs = open_rw(&ours);
    for (p, ..) in PARENTS {
        let parent = fs.lookup(format!("/{p}")).unwrap();
        for (c, uid, gid, groups) in CALLERS {
            for umask in UMASKS {
                fs.set_caller(Caller { uid, gid, groups: groups.to_vec(), privileged: uid == 0, umask });
                for (n, kind, mode) in NODES {
                    let leaf = name(p, c, n, umask);
                    let leaf = leaf.rsplit('/').next().unwrap();
                    let target = (kind == FileType::Symlink).then_some(&b"target"[..]);
                    fs.create_node(parent, leaf.as_bytes(), NewNode::new(kind, mode), target).unwrap();
                }
            }
        }
    }
    fs.close().unwrap();
    assert_clean(&ours);

    let (a, b) = (open_ro(&ours), open_ro(&theirs));
    let mut differ = Vec::new();
    let mut setgid_kept = 0;
    for (p, ..) in PARENTS {
        for (c, ..) in CALLERS {
            for (n, ..) in NODES {
                for umask in UMASKS {
                    let path = format!("/{}", name(p, c, n, umask));
                    let (x, y) = (a.symlink_metadata(&path).unwrap(), b.symlink_metadata(&path).unwrap());
                    let (x, y) = ((x.uid, x.gid, format!("{:o}", x.permissions)), (y.uid, y.gid, format!("{:o}", y.permissions)));
                    if x != y {
                        differ.push(format!("{path}: ours {x:?}, the kernel's {y:?}"));
                    }
                    setgid_kept += usize::from(p == "sgid" && n.starts_with("file2755") && y.2 == "2755");
                }
            }
        }
    }
    assert!(differ.is_empty(), "{} of {} differ:\n{}", differ.len(), 2 * 4 * 10 * 2, differ.join("\n"));
    // The cases decide something: the kernel kept setgid for some callers and not for others.
    assert!(setgid_kept > 0 && setgid_kept < 2 * CALLERS.len(), "setgid kept {setgid_kept} times");
}

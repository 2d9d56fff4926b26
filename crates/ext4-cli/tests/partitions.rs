//! Partitioned disk images: a 64 MiB disk with an MBR (sfdisk) or a GPT
//! (sgdisk, else sfdisk) and ext4 made by `ext4 mkfs DISK@2` in partition
//! 2. Where the partitions lie is sfdisk's word (`sfdisk --json`); the
//! files `ext4 put` wrote are read back by `ext4 ls`/`cat`, through `ext4
//! mount`, and by the kernel on the loop device's partition
//! (`losetup -P`, then `partx -a` where the kernel parses no tables);
//! `e2fsck -fn` on that partition is silent; and not one byte of the disk
//! outside partition 2 changes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ok, run};

const DISK_BYTES: u64 = 64 << 20;

/// Which table the disk gets.
#[derive(Debug, Clone, Copy)]
enum Label {
    Mbr,
    Gpt,
}

/// Whether a tool runs at all.
fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

/// A disk image full of a pattern, with two partitions of 8 and 40 MiB.
fn make_disk(dir: &Path, label: Label) -> PathBuf {
    let disk = dir.join(format!("{label:?}.img"));
    let mut bytes = Vec::with_capacity(DISK_BYTES as usize);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    while bytes.len() < DISK_BYTES as usize {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(&disk, &bytes).unwrap();
    let status = match label {
        Label::Gpt if have("sgdisk") => Command::new("sgdisk")
            .args(["-n", "1:2048:+8M", "-c", "1:first", "-n", "2:0:+40M", "-c", "2:second"])
            .arg(&disk)
            .output()
            .unwrap(),
        _ => {
            let script = match label {
                Label::Mbr => "label: dos\nsize=8MiB, type=83\nsize=40MiB, type=83\n",
                Label::Gpt => "label: gpt\nsize=8MiB, name=first\nsize=40MiB, name=second\n",
            };
            let mut c = Command::new("sfdisk");
            c.arg("-q").arg(&disk).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
            let mut child = c.spawn().unwrap();
            use std::io::Write;
            child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
            child.wait_with_output().unwrap()
        }
    };
    assert!(status.status.success(), "partitioning failed: {}", String::from_utf8_lossy(&status.stderr));
    disk
}

/// (number, byte offset, byte length) of each partition, as sfdisk reads them.
fn sfdisk_partitions(disk: &Path) -> Vec<(u32, u64, u64)> {
    let out = Command::new("sfdisk").arg("--json").arg(disk).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &v["partitiontable"];
    let ss = t["sectorsize"].as_u64().unwrap_or(512);
    t["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let node = p["node"].as_str().unwrap();
            let n = node.trim_start_matches(&disk.display().to_string()).trim_start_matches('p').parse().unwrap();
            (n, p["start"].as_u64().unwrap() * ss, p["size"].as_u64().unwrap() * ss)
        })
        .collect()
}

/// (number, offset, length) of each partition, as `ext4 partitions` lists them.
fn listed_partitions(disk: &Path) -> Vec<(u32, u64, u64)> {
    let out = ok(&[&"partitions", &disk], None);
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .skip(2)
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w[0].parse().unwrap(), w[1].parse().unwrap(), w[2].parse().unwrap())
        })
        .collect()
}

/// The disk's bytes outside `[start, end)`.
fn outside(disk: &Path, start: u64, end: u64) -> Vec<u8> {
    let mut b = std::fs::read(disk).unwrap();
    b.drain(start as usize..end as usize);
    b
}

/// Host files to put: a file and a small tree.
fn host_files(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("tree/sub")).unwrap();
    std::fs::write(src.join("a"), b"partition two\n").unwrap();
    std::fs::write(src.join("tree/big"), vec![7u8; 300_000]).unwrap();
    std::fs::write(src.join("tree/sub/c"), b"c\n").unwrap();
    src
}

fn cat(image: &str, path: &str) -> Vec<u8> {
    ok(&[&"cat", &image, &path], None).stdout
}

/// The CLI on partition 2 of a disk with `label`, then the FUSE mount and
/// the kernel when root can have them.
fn check(label: Label) {
    let dir = tempfile::tempdir().unwrap();
    let disk = make_disk(dir.path(), label);
    let parts = sfdisk_partitions(&disk);
    assert_eq!(listed_partitions(&disk), parts, "{label:?}: ext4 partitions and sfdisk disagree");
    let (_, p2_start, p2_len) = *parts.iter().find(|p| p.0 == 2).expect("partition 2");
    let before = outside(&disk, p2_start, p2_start + p2_len);

    // The whole disk is no filesystem: the error lists the partitions.
    let whole = run(&[&"ls", &disk, &"/"], None);
    let msg = String::from_utf8_lossy(&whole.stderr);
    assert_eq!(whole.status.code(), Some(4), "{msg}");
    assert!(msg.contains("partitioned disk") && msg.contains(&format!("2: {p2_len} bytes at {p2_start}")), "{msg}");

    let image = format!("{}@2", disk.display());
    ok(&[&"mkfs", &"-q", &image], None);
    let src = host_files(dir.path());
    ok(&[&"put", &image, &src.join("a"), &"/a"], None);
    ok(&[&"put", &"-r", &image, &src.join("tree"), &"/tree"], None);
    let ls = String::from_utf8(ok(&[&"ls", &image, &"/"], None).stdout).unwrap();
    assert_eq!(ls.split_whitespace().collect::<Vec<_>>(), ["a", "lost+found", "tree"]);
    assert_eq!(cat(&image, "/a"), b"partition two\n");
    // --partition and --offset name the same filesystem.
    let by_flag = ok(&[&"cat", &"--partition", &"2", &disk, &"/tree/big"], None).stdout;
    assert_eq!(by_flag, vec![7u8; 300_000]);
    let by_offset = ok(&[&"cat", &"--offset", &p2_start.to_string(), &disk, &"/tree/sub/c"], None).stdout;
    assert_eq!(by_offset, b"c\n");
    // The checker takes IMAGE@N too: the partition's filesystem is clean.
    let fsck = run(&[&"fsck", &image], None);
    assert_eq!(fsck.status.code(), Some(0), "ext4 fsck {image}: {}", String::from_utf8_lossy(&fsck.stdout));
    // Not a byte outside partition 2 was written.
    assert!(outside(&disk, p2_start, p2_start + p2_len) == before, "{label:?}: bytes outside partition 2 changed");

    let root = common::is_root();
    if !ext4_testkit::require(root && Path::new("/dev/fuse").exists() && common::have_fsck(), "needs root, /dev/fuse and e2fsprogs") {
        return;
    }
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    common::with_fuse(Path::new(&image), &mnt, "", |m| {
        assert_eq!(std::fs::read(m.join("a")).unwrap(), b"partition two\n");
        std::fs::write(m.join("through-fuse"), b"written by ext4 mount\n").unwrap();
    });
    assert_eq!(cat(&image, "/through-fuse"), b"written by ext4 mount\n");
    assert!(outside(&disk, p2_start, p2_start + p2_len) == before, "{label:?}: the FUSE mount wrote outside partition 2");
    kernel_agrees(&disk, label);
}

/// A loop device over a disk with its partitions, detached on drop.
struct PartLoop(PathBuf);

impl PartLoop {
    fn new(disk: &Path) -> Self {
        let out = Command::new("losetup").args(["-P", "-f", "--show"]).arg(disk).output().unwrap();
        assert!(out.status.success(), "losetup: {}", String::from_utf8_lossy(&out.stderr));
        let dev = Self(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        // A kernel built without MBR/GPT parsers makes no partition nodes:
        // partx (libblkid's reading of the table) adds them.
        if !dev.part(2).exists() {
            let out = Command::new("partx").arg("-a").arg(&dev.0).output().unwrap();
            assert!(out.status.success(), "partx -a: {}", String::from_utf8_lossy(&out.stderr));
        }
        dev
    }

    fn part(&self, n: u32) -> PathBuf {
        PathBuf::from(format!("{}p{n}", self.0.display()))
    }
}

impl Drop for PartLoop {
    fn drop(&mut self) {
        let _ = Command::new("partx").arg("-d").arg(&self.0).output();
        let _ = Command::new("losetup").arg("-d").arg(&self.0).output();
    }
}

/// The kernel's view of partition 2: e2fsck silent, every file as written.
fn kernel_agrees(disk: &Path, label: Label) {
    if !ext4_testkit::require(ext4_testkit::oracle::can_loop_mount() && have("partx"), "needs root, loop devices and partx") {
        return;
    }
    let lo = PartLoop::new(disk);
    let p2 = lo.part(2);
    common::assert_clean(&p2, &format!("on {label:?} partition 2 as the kernel sees it"));
    let mnt = tempfile::tempdir().unwrap();
    let out = Command::new("mount").args(["-t", "ext4", "-o", "ro"]).arg(&p2).arg(mnt.path()).output().unwrap();
    assert!(out.status.success(), "mount {}: {}", p2.display(), String::from_utf8_lossy(&out.stderr));
    let read = |p: &str| std::fs::read(mnt.path().join(p));
    let seen = (read("a"), read("tree/big"), read("tree/sub/c"), read("through-fuse"));
    let _ = Command::new("umount").arg(mnt.path()).output();
    assert_eq!(seen.0.unwrap(), b"partition two\n");
    assert_eq!(seen.1.unwrap(), vec![7u8; 300_000]);
    assert_eq!(seen.2.unwrap(), b"c\n");
    assert_eq!(seen.3.unwrap(), b"written by ext4 mount\n");
}

#[test]
fn mbr_disk_partition_two() {
    if !ext4_testkit::require(have("sfdisk"), "sfdisk (util-linux fdisk) not installed") {
        return;
    }
    check(Label::Mbr);
}

#[test]
fn gpt_disk_partition_two() {
    if !ext4_testkit::require(have("sfdisk"), "sfdisk (util-linux fdisk) not installed") {
        return;
    }
    check(Label::Gpt);
}

/// A name with `@N` that is itself a file is that file, not a partition.
#[test]
fn a_file_named_with_at_is_itself() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("plain@2");
    ok(&[&"mkfs", &"-q", &image, &"8M"], None);
    let ls = String::from_utf8(ok(&[&"ls", &image, &"/"], None).stdout).unwrap();
    assert_eq!(ls.trim(), "lost+found");
}

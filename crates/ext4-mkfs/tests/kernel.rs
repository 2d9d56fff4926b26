//! The Linux kernel mounts what we format, read-write: files and a
//! directory written through the mount survive the unmount, and
//! `e2fsck -fn` stays silent afterwards. Needs root and loop devices.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use ext4_mkfs::{FormatOptions, FsType, Profile};

const M: u64 = 1 << 20;

fn can_loop_mount() -> bool {
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false);
    let ok = root && Path::new("/dev/loop-control").exists() && Command::new("mount").arg("-V").output().is_ok();
    ext4_testkit::require(ok, "loop mounts need root, /dev/loop-control and mount")
}

/// A loop mount under /tmp/ext4-mkfs-mnt-*, unmounted when dropped.
struct Mount {
    dir: PathBuf,
    mounted: bool,
}

impl Mount {
    fn new(image: &Path, name: &str) -> Mount {
        let tmp = ext4_testkit::scratch_dir(&format!("mkfs-mnt-{name}"));
        let dir = tmp.keep();
        let out = Command::new("mount").arg("-o").arg("loop,rw").arg(image).arg(&dir).output().expect("mount runs");
        assert!(out.status.success(), "mount failed: {}", String::from_utf8_lossy(&out.stderr));
        Mount { dir, mounted: true }
    }

    fn unmount(&mut self) {
        if self.mounted {
            let out = Command::new("umount").arg(&self.dir).output().expect("umount runs");
            assert!(out.status.success(), "umount failed: {}", String::from_utf8_lossy(&out.stderr));
            self.mounted = false;
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.dir).output();
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

/// Formats, mounts, writes, unmounts, checks, remounts and reads back.
fn round_trip(name: &str, fs_type: FsType, profile: Profile, features: &str) {
    let img = TempFile::sparse(&format!("kernel-{name}.img"), 256 * M);
    let mut o = FormatOptions::new(fs_type).profile(profile);
    o.time = Some(FAKE_TIME);
    if !features.is_empty() {
        o.features = ext4_mkfs::parse_features(features).expect("features");
    }
    run_ours(img.path(), &o).expect("format");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    {
        let mut m = Mount::new(img.path(), name);
        let d = m.dir.join("some/nested/dir");
        std::fs::create_dir_all(&d).expect("mkdir through the mount");
        std::fs::write(d.join("data.bin"), &content).expect("write");
        for i in 0..50 {
            std::fs::write(m.dir.join(format!("small-{i}")), format!("file {i}")).expect("write");
        }
        assert!(m.dir.join("lost+found").is_dir());
        m.unmount();
    }
    if let Some(p) = fsck_problems(img.path()) {
        panic!("{name}: e2fsck -fn after the kernel wrote:\n{p}");
    }
    let mut m = Mount::new(img.path(), name);
    assert_eq!(std::fs::read(m.dir.join("some/nested/dir/data.bin")).expect("read back"), content);
    assert_eq!(std::fs::read_to_string(m.dir.join("small-49")).expect("read back"), "file 49");
    m.unmount();
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn kernel_mounts_what_we_format() {
    if !have_e2fsprogs() || !can_loop_mount() {
        return;
    }
    round_trip("ext2", FsType::Ext2, Profile::DEBIAN, "");
    round_trip("ext3", FsType::Ext3, Profile::DEBIAN, "");
    round_trip("ext4-debian", FsType::Ext4, Profile::DEBIAN, "");
    round_trip("ext4-upstream", FsType::Ext4, Profile::UPSTREAM, "");
    round_trip("ext4-inline", FsType::Ext4, Profile::DEBIAN, "inline_data,large_dir");
    round_trip("ext4-uninit-bg", FsType::Ext4, Profile::DEBIAN, "^metadata_csum,uninit_bg,^flex_bg");
}

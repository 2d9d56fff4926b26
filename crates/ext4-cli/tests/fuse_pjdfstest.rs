//! The POSIX suite pjdfstest (0.2.2) on `ext4 mount -o allow_other`: no
//! test fails (on the kernel's ext4 none does either: `cargo xtask
//! pjdfstest` runs both and compares), and e2fsck is silent afterwards.
//! About 80 s, mostly the suite's own one-second naps; skipped where
//! pjdfstest is not installed (see the xtask for how to install it).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use ext4_testkit::oracle::{can_loop_mount, e2fsck_problems, have_e2fsprogs};

/// The xtask's configuration: two existing users, ext4's opt-in features.
const CONFIG: &str = "[dummy_auth]\nentries = [[\"nobody\", \"nogroup\"], [\"daemon\", \"daemon\"]]\n\n\
                      [features]\nposix_fallocate = {}\nutime_now = {}\nutimensat = {}\n";

fn present() -> bool {
    let pjdfstest = Command::new("pjdfstest").arg("--version").output().is_ok();
    let users = Command::new("id").arg("nobody").output().is_ok_and(|o| o.status.success())
        && Command::new("id").arg("daemon").output().is_ok_and(|o| o.status.success());
    let searchable = std::env::temp_dir().ancestors().all(|a| std::fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
    ext4_testkit::require(
        pjdfstest && users && searchable && can_loop_mount() && Path::new("/dev/fuse").exists() && have_e2fsprogs(),
        "needs pjdfstest (cargo xtask pjdfstest says how to install it), root, /dev/fuse, e2fsprogs, users nobody and daemon, a searchable TMPDIR",
    )
}

#[ext4_testkit::oracle_test(pjdfstest, loop_mount, fuse, e2fsprogs)]
fn pjdfstest_passes_on_ext4_mount() {
    if !present() {
        return;
    }
    let dir_tmp = ext4_testkit::scratch_dir("fuse-pjdfstest");
    let dir = dir_tmp.path().to_path_buf();
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let (img, config) = (dir.join("img"), dir.join("pjdfstest.toml"));
    std::fs::write(&config, CONFIG).unwrap();
    let out = Command::new("mke2fs").args(["-q", "-F", "-t", "ext4"]).arg(&img).arg("256M").output().unwrap();
    assert!(out.status.success(), "mke2fs: {}", String::from_utf8_lossy(&out.stderr));
    let started = std::time::Instant::now();
    let out = common::with_fuse(&img, &mnt, "allow_other", |m| {
        Command::new("pjdfstest").arg("-c").arg(&config).arg("-p").arg(m).env("NO_COLOR", "1").output().unwrap()
    });
    let text = String::from_utf8_lossy(&out.stdout);
    let words = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let failed: Vec<String> = text.lines().filter(|l| words(l).len() == 2 && l.ends_with("FAILED")).map(str::to_owned).collect();
    let passed = text.lines().filter(|l| words(l).len() == 2 && l.ends_with(" ok")).count();
    let summary = text.lines().find(|l| l.starts_with("Summary")).unwrap_or("no summary");
    println!("ext4 mount: {summary} ({:.0?})", started.elapsed());
    assert!(failed.is_empty(), "pjdfstest failures on ext4 mount:\n{text}");
    assert!(passed >= 370, "the suite ran ({passed} passed):\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    if let Some(p) = e2fsck_problems(&img) {
        panic!("e2fsck after pjdfstest:\n{p}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

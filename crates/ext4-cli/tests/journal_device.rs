//! External journals and bigalloc through the CLI: `ext4 info` on a
//! journal device says what it is (its UUID and its user), writes to a
//! filesystem with an external journal need `--journal FILE` and then
//! leave both `e2fsck -fn -j` silent, `ext4 journal show` walks the
//! device's log, and `ext4 info` gives a bigalloc filesystem's cluster size.

mod common;

use common::{have_fsck, ok, run};
use ext4_testkit::oracle::{can_loop_mount, e2fsck_problems_with_journal};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn the_journal_device_is_named_and_writes_go_through_it() {
    if !ext4_testkit::require(have_fsck() && can_loop_mount(), "external journals need e2fsprogs, root and loop devices") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (img, journal) = (dir.path().join("fs.img"), dir.path().join("journal.img"));
    let uuid = ext4_testkit::fixtures::mke2fs_external_journal(&img, 32 << 20, &journal, 8 << 20, &["-t", "ext4", "-b", "4096"]).unwrap();
    let fs_uuid = ext4_testkit::oracle::dumpe2fs(&img, true)
        .lines()
        .find_map(|l| l.strip_prefix("Filesystem UUID:").map(|u| u.trim().to_string()))
        .expect("a UUID");

    let info = stdout(&ok(&[&"info", &journal], None));
    assert!(info.contains("External journal device") && info.contains(&uuid), "{info}");
    assert!(info.lines().any(|l| l.starts_with("Users:") && l.contains(&fs_uuid)), "{info}");
    let info = stdout(&ok(&[&"info", &img], None));
    assert!(info.lines().any(|l| l.starts_with("Journal:") && l.contains("external") && l.contains(&uuid)), "{info}");

    let refused = run(&[&"mkdir", &img, &"/d"], None);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && err.contains("external device"), "{err}");

    ok(&[&"mkdir", &"--journal", &journal, &img, &"/d"], None);
    ok(&[&"write", &"--journal", &journal, &img, &"/d/f", &"through the journal device"], None);
    ok(&[&"batch", &"--journal", &journal, &img], Some(b"mkdir /e\nwrite /e/g 'second'\nrm /d/f\n"));
    assert_eq!(stdout(&ok(&[&"cat", &img, &"/e/g"], None)), "second");
    if let Some(p) = e2fsck_problems_with_journal(&img, Some(&journal)) {
        panic!("e2fsck -fn -j after the CLI's writes:\n{p}");
    }
    let show = stdout(&ok(&[&"journal", &"show", &journal], None));
    assert!(show.contains("external device") && show.contains(&uuid), "{show}");
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn info_gives_the_cluster_size_of_bigalloc() {
    if !have_fsck() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("big.img");
    ext4_testkit::fixtures::mke2fs_sized(&img, 16 << 20, &["-t", "ext4", "-b", "1024", "-O", "bigalloc", "-C", "16384"]).unwrap();
    let info = stdout(&ok(&[&"info", &img], None));
    assert!(info.lines().any(|l| l.starts_with("Cluster size:") && l.contains("16384") && l.contains("16 blocks")), "{info}");
}

/// `ext4 mkfs -J device=` against `mke2fs -J device=` on the same loop
/// device (mke2fs takes only block devices): the filesystems and the
/// journal devices (with the new user) are byte for byte the same; e2fsck
/// is silent and the kernel mounts the result on its journal.
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn mkfs_on_a_journal_device_matches_mke2fs() {
    use ext4_testkit::oracle::{LoopDevice, LoopMount};
    if !ext4_testkit::require(have_fsck() && can_loop_mount(), "needs e2fsprogs, root and loop devices") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("mke2fs.conf");
    std::fs::write(&conf, ext4_mkfs::Profile::DEBIAN.to_conf()).unwrap();
    let fixed = ["-U", "01234567-89ab-cdef-0123-456789abcdef", "-E", "hash_seed=11111111-2222-3333-4444-555555555555,nodiscard"];
    let mke2fs = |args: &[&str]| {
        let out = std::process::Command::new("mke2fs")
            .env("E2FSPROGS_FAKE_TIME", "1700000000")
            .env("MKE2FS_CONFIG", &conf)
            .args(["-q", "-F"])
            .args(fixed)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "mke2fs {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let names = ["theirs.img", "ours.img", "theirs.journal", "ours.journal", "device.journal"];
    let [theirs, ours, jt, jo, scratch] = names.map(|n| dir.path().join(n));
    std::fs::File::create(&scratch).unwrap().set_len(8 << 20).unwrap();
    mke2fs(&["-t", "ext4", "-O", "journal_dev", "-b", "4096", "-U", "0badc0de-3333-4444-5555-666677778888", scratch.to_str().unwrap()]);
    let pristine = std::fs::read(&scratch).unwrap();
    for f in [&theirs, &ours] {
        std::fs::File::create(f).unwrap().set_len(64 << 20).unwrap();
    }
    // One loop device stays attached for both runs, so that both name the
    // same device number (detaching and reattaching races with other tests
    // taking the freed device). Between the runs the device gets the fresh
    // journal back, written through the device itself.
    let dev = LoopDevice::new(&scratch).unwrap();
    let device = format!("device={}", dev.path().display());
    let put = |bytes: &[u8]| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(dev.path()).unwrap();
        f.write_all(bytes).unwrap();
        f.sync_all().unwrap();
    };
    let take = |to: &std::path::Path| std::fs::write(to, std::fs::read(dev.path()).unwrap()).unwrap();
    mke2fs(&["-t", "ext4", "-J", &device, theirs.to_str().unwrap()]);
    take(&jt);
    put(&pristine);
    let ours_run = std::process::Command::new(common::EXT4)
        .env("E2FSPROGS_FAKE_TIME", "1700000000")
        .args(["mkfs", "-q", "-t", "ext4", "-J", &device])
        .args(fixed)
        .arg(&ours)
        .output()
        .unwrap();
    take(&jo);
    assert!(ours_run.status.success(), "ext4 mkfs -J: {}", String::from_utf8_lossy(&ours_run.stderr));
    assert!(std::fs::read(&ours).unwrap() == std::fs::read(&theirs).unwrap(), "the filesystems differ");
    assert!(std::fs::read(&jo).unwrap() == std::fs::read(&jt).unwrap(), "the journal devices differ (their user lists)");
    if let Some(p) = e2fsck_problems_with_journal(&ours, Some(&jo)) {
        panic!("e2fsck -fn -j:\n{p}");
    }
    let m = LoopMount::new(&ours, &format!("journal_path={}", dev.path().display())).expect("the kernel mounts it");
    std::fs::write(m.path().join("f"), b"through the kernel").unwrap();
    m.unmount().unwrap();
    dev.detach().unwrap();
    assert_eq!(stdout(&ok(&[&"cat", &ours, &"/f"], None)), "through the kernel");
    if let Some(p) = e2fsck_problems_with_journal(&ours, Some(&scratch)) {
        panic!("e2fsck -fn -j after the kernel's mount:\n{p}");
    }
}

//! `ext4 fsck` as a script sees it: its exit status is the one `e2fsck -fn`
//! gives the same image, `--json` names each problem by its `PR_*` code,
//! and `-y` repairs what it reports.

mod common;

use std::path::Path;
use std::process::Command;

use common::{have_fsck, ok, run};

/// `e2fsck -fn`'s exit status on `img`.
fn e2fsck_status(img: &Path) -> Option<i32> {
    Command::new("e2fsck").arg("-fn").arg(img).output().expect("e2fsck runs").status.code()
}

/// `ext4 fsck ARGS IMAGE` parsed as JSON, with its exit status.
fn fsck_json(img: &Path) -> (Option<i32>, serde_json::Value) {
    let out = run(&[&"fsck", &"--json", &img], None);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), v)
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn fsck_exits_as_e2fsck_and_names_problems() {
    if !have_fsck() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("img");
    ok(&[&"mkfs", &"-q", &img, &"16M"], None);
    ok(&[&"batch", &img], Some(b"mkdir /d\nwrite /d/f 'some text'\n"));

    assert_eq!(run(&[&"fsck", &img], None).status.code(), Some(0));
    let (code, clean) = fsck_json(&img);
    assert_eq!((code, clean["outcome"].as_str()), (Some(0), Some("clean")), "{clean}");
    assert_eq!(clean["problems"].as_array().map(Vec::len), Some(0), "{clean}");

    // A wrong link count, written by debugfs.
    let set = Command::new("debugfs").args(["-w", "-R", "sif /d/f links_count 5"]).arg(&img).output().unwrap();
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let (code, bad) = fsck_json(&img);
    assert_eq!(code, e2fsck_status(&img));
    assert_eq!(code, Some(4), "{bad}");
    let problems = bad["problems"].as_array().unwrap();
    assert!(problems.iter().any(|p| p["code"] == "PR_4_BAD_REF_COUNT" && p["fixed"] == false), "{bad}");
    // -n changed nothing.
    assert_eq!(e2fsck_status(&img), Some(4));

    // -y repairs it: exit 1, then both checkers find it clean and the
    // kernel's view (through debugfs) has the right count.
    assert_eq!(run(&[&"fsck", &"-y", &img], None).status.code(), Some(1));
    assert_eq!(e2fsck_status(&img), Some(0));
    assert_eq!(run(&[&"fsck", &img], None).status.code(), Some(0));
    let stat = ext4_testkit::oracle::debugfs(&img, "stat /d/f");
    assert!(stat.contains("Links: 1"), "{stat}");
    assert_eq!(ok(&[&"cat", &img, &"/d/f"], None).stdout, b"some text");
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn fsck_y_reconnects_an_unattached_file_to_lost_found() {
    if !have_fsck() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("img");
    ok(&[&"mkfs", &"-q", &img, &"16M"], None);
    ok(&[&"batch", &img], Some(b"mkdir /d\nwrite /d/f 'kept contents'\n"));
    let ino = ext4_testkit::oracle::debugfs(&img, "stat /d/f");
    let ino: u32 = ino.split_whitespace().nth(1).and_then(|w| w.parse().ok()).unwrap_or_else(|| panic!("{ino}"));
    // The entry goes, the inode stays: an unattached file.
    let set = Command::new("debugfs").args(["-w", "-R", "unlink /d/f"]).arg(&img).output().unwrap();
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    assert_eq!(e2fsck_status(&img), Some(4));

    assert_eq!(run(&[&"fsck", &"-y", &img], None).status.code(), Some(1));
    assert_eq!(e2fsck_status(&img), Some(0));
    let path = format!("/lost+found/#{ino}");
    assert_eq!(ok(&[&"cat", &img, &path], None).stdout, b"kept contents");
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn fsck_y_rewrites_a_bad_primary_superblock_from_a_backup() {
    if !have_fsck() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("img");
    ok(&[&"mkfs", &"-q", &"-b", &"1024", &img, &"32M"], None);
    ok(&[&"batch", &img], Some(b"write /f 'kept contents'\n"));
    // s_magic (offset 56 of the superblock at byte 1024) zeroed.
    let mut bytes = std::fs::read(&img).unwrap();
    bytes[1024 + 56..1024 + 58].fill(0);
    std::fs::write(&img, &bytes).unwrap();
    assert_ne!(e2fsck_status(&img), Some(0));

    assert_eq!(run(&[&"fsck", &"-y", &img], None).status.code(), Some(1));
    assert_eq!(e2fsck_status(&img), Some(0));
    assert_eq!(ok(&[&"cat", &img, &"/f"], None).stdout, b"kept contents");
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn fsck_p_exits_as_e2fsck_fp_and_repairs_what_preen_may() {
    if !have_fsck() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("img");
    ok(&[&"mkfs", &"-q", &img, &"16M"], None);
    ok(&[&"batch", &img], Some(b"mkdir /d\nwrite /d/f x\n"));
    let set = Command::new("debugfs").args(["-w", "-R", "sif /d/f links_count 5"]).arg(&img).output().unwrap();
    assert!(set.status.success());
    let copy = dir.path().join("copy");
    std::fs::copy(&img, &copy).unwrap();
    let theirs = Command::new("e2fsck").arg("-fp").arg(&copy).output().unwrap().status.code();
    let ours = run(&[&"fsck", &"-p", &img], None).status.code();
    assert_eq!(ours, theirs);
    assert_eq!(ours, Some(1));
    assert_eq!(e2fsck_status(&img), Some(0));
}

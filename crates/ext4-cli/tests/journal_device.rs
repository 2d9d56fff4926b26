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

#[test]
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

#[test]
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

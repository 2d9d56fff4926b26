//! Bulk mode (`OpenOptions::bulk`, what `ext4 mkfs -d` uses): a filled
//! image is e2fsck-clean with the journal untouched (no transaction in the
//! log, no `needs_recovery`), and an operation that fails turns the
//! filesystem read-only instead of leaving half-undone state writable.

mod common;

use common::{assert_clean, have_fsck, open_ro};
use ext4_fs::{Error, Filesystem, OpenOptions};
use ext4_testkit::oracle::dumpe2fs;

fn open_bulk(path: &std::path::Path) -> Filesystem {
    Filesystem::open_path(path, OpenOptions { bulk: true, ..OpenOptions::read_write() }).unwrap()
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn bulk_fill_is_clean_and_leaves_the_journal_alone() {
    if !have_fsck() {
        return;
    }
    let img = common::format_ext4("bulk", 32 << 20, 1024, 256, "");
    let journal_before = dumpe2fs(&img.path, true).lines().filter(|l| l.starts_with("Journal sequence")).collect::<Vec<_>>().join("\n");
    assert!(!journal_before.is_empty(), "no journal sequence in dumpe2fs -h");
    {
        let mut fs = open_bulk(&img.path);
        for d in 0..20 {
            fs.mkdir(format!("/d{d}"), 0o755).unwrap();
            for f in 0..40 {
                fs.write_file(format!("/d{d}/f{f}"), &vec![(d * 40 + f) as u8; 100 + f * 97]).unwrap();
            }
            fs.sync().unwrap();
        }
        fs.close().unwrap();
    }
    assert_clean(&img.path);
    let header = dumpe2fs(&img.path, true);
    assert!(!header.contains("needs_recovery"), "{header}");
    let journal_after = header.lines().filter(|l| l.starts_with("Journal sequence")).collect::<Vec<_>>().join("\n");
    assert_eq!(journal_before, journal_after, "bulk mode wrote transactions to the journal");
    let fs = open_ro(&img.path);
    assert_eq!(fs.read("/d19/f39").unwrap(), vec![(19 * 40 + 39) as u8; 100 + 39 * 97]);
}

#[test]
fn a_failed_bulk_operation_turns_the_filesystem_read_only() {
    let img = common::format_ext4("bulk-fail", 8 << 20, 1024, 256, "");
    let mut fs = open_bulk(&img.path);
    let ino = fs.create("/big", 0o644).unwrap();
    let r = fs.write_at(ino, 0, &vec![1u8; 16 << 20]);
    assert!(matches!(r, Err(Error::NoSpace)), "{r:?}");
    assert!(fs.read_only_reason().is_some_and(|r| r.contains("bulk")), "{:?}", fs.read_only_reason());
    assert!(matches!(fs.create("/more", 0o644), Err(Error::ReadOnly)));
}

//! Recovery against e2fsck: debugfs writes transactions into a fresh mke2fs
//! image; one copy is recovered by this crate, the other by
//! `e2fsck -fy -E journal_only`; the images must match block for block
//! except for named superblock fields.

mod common;

use common::*;

/// One scenario: mke2fs options, then a debugfs script. `DATA` in the
/// script is replaced by a pattern file (block 3 and 40 start with the
/// jbd2 magic, so they are escaped).
struct Case {
    name: &'static str,
    mkfs: &'static [&'static str],
    script: &'static str,
    /// Expected (transactions replayed, blocks written home).
    expect: (u32, usize),
    /// Expected transaction with a bad commit checksum.
    failed: Option<u32>,
}

const THREE_TRANSACTIONS: &str = "jo\njw -b 10000-10003 DATA\njc\njo\njw -b 10001,10005 DATA\njc\njo\njw -r 10002\njc\n";
const THREE_TRANSACTIONS_CSUM: &str = "jo -c\njw -b 10000-10003 DATA\njc\njo\njw -b 10001,10005 DATA\njc\njo\njw -r 10002\njc\n";

const CASES: &[Case] = &[
    Case {
        name: "4k 64bit metadata_csum, no journal csum",
        mkfs: &["-b", "4096"],
        script: THREE_TRANSACTIONS,
        expect: (3, 4),
        failed: None,
    },
    Case { name: "4k csum v3", mkfs: &["-b", "4096"], script: THREE_TRANSACTIONS_CSUM, expect: (3, 4), failed: None },
    Case {
        name: "4k csum v2",
        mkfs: &["-b", "4096"],
        script: "jo -c -v 2\njw -b 10000-10003 DATA\njc\njo\njw -b 10001,10005 DATA\njc\njo\njw -r 10002\njc\n",
        expect: (3, 4),
        failed: None,
    },
    Case {
        // debugfs 1.47.0 runs the v1 crc32 over every block of the
        // transaction, revoke blocks included, but recovery sums only
        // descriptor and data blocks: the revoke-only transaction 3 has a
        // bad commit checksum, and both recoveries must stop before it.
        name: "4k ^64bit ^metadata_csum, csum v1 (debugfs' bad commit checksum on revoke blocks)",
        mkfs: &["-b", "4096", "-O", "^64bit,^metadata_csum"],
        script: THREE_TRANSACTIONS_CSUM,
        expect: (2, 5),
        failed: Some(3),
    },
    Case {
        name: "4k ^64bit ^metadata_csum, csum v1",
        mkfs: &["-b", "4096", "-O", "^64bit,^metadata_csum"],
        script: "jo -c\njw -b 10000-10003 DATA\njc\njo\njw -b 10001,10005 DATA\njc\n",
        expect: (2, 5),
        failed: None,
    },
    Case {
        name: "4k ^64bit ^metadata_csum, no csum",
        mkfs: &["-b", "4096", "-O", "^64bit,^metadata_csum"],
        script: THREE_TRANSACTIONS,
        expect: (3, 4),
        failed: None,
    },
    Case { name: "1k csum v3", mkfs: &["-b", "1024"], script: THREE_TRANSACTIONS_CSUM, expect: (3, 4), failed: None },
    Case {
        name: "1k ^metadata_csum ^64bit, no csum",
        mkfs: &["-b", "1024", "-O", "^metadata_csum,^64bit"],
        script: THREE_TRANSACTIONS,
        expect: (3, 4),
        failed: None,
    },
    Case {
        name: "4k 16 MiB journal",
        mkfs: &["-b", "4096", "-J", "size=16"],
        script: THREE_TRANSACTIONS_CSUM,
        expect: (3, 4),
        failed: None,
    },
    Case {
        name: "1k several descriptor blocks per transaction, csum v3",
        mkfs: &["-b", "1024"],
        script: "jo -c\njw -b 20000-20009 DATA\njc\njo\njw -b 30000-30199 DATA\njc\n",
        expect: (2, 210),
        failed: None,
    },
    Case {
        name: "4k several descriptor blocks, 32-bit tags, no csum",
        mkfs: &["-b", "4096", "-O", "^64bit,^metadata_csum"],
        script: "jo\njw -b 9000-9799 DATA\njc\n",
        expect: (1, 800),
        failed: None,
    },
    Case {
        name: "revoke in the same transaction as the block",
        mkfs: &["-b", "4096"],
        script: "jo -c\njw -b 10000-10003 DATA\njc\njo\njw -b 10006,10007 -r 10006 DATA\njc\n",
        expect: (2, 5),
        failed: None,
    },
    Case {
        name: "revoke then rewrite in a later transaction",
        mkfs: &["-b", "4096"],
        script: "jo\njw -b 10000,10001 DATA\njc\njo\njw -r 10000\njc\njo\njw -b 10000 DATA\njc\n",
        expect: (3, 2),
        failed: None,
    },
    Case {
        name: "not committed (jw -c): nothing replayed",
        mkfs: &["-b", "4096"],
        script: "jo\njw -c -b 10000-10003 DATA\njc\n",
        expect: (0, 0),
        failed: None,
    },
];

fn check(case: &Case) {
    let dir = tempfile::tempdir().unwrap();
    let img = mkfs(dir.path(), "a.img", case.mkfs);
    let bs = block_size(&img);
    let data = dir.path().join("data");
    pattern_file(&data, bs, 800, &[3, 40]);
    debugfs_write(&img, &case.script.replace("DATA", data.to_str().unwrap()));
    assert!(
        superblock(&img).s_feature_incompat.get() & ext4_ondisk::Incompat::RECOVER.bits() != 0 || case.expect.0 == 0,
        "{}: debugfs left no journal to recover",
        case.name
    );
    let other = dir.path().join("b.img");
    std::fs::copy(&img, &other).unwrap();

    let rec = recover_with_library(&img);
    let fsck = recover_with_e2fsck(&other);
    assert_eq!((rec.transactions(), rec.block_count()), case.expect, "{}: {rec:?}", case.name);
    assert_eq!(rec.failed_commit(), case.failed, "{}", case.name);
    if case.failed.is_none() {
        assert!(rec.warnings().is_empty(), "{}: {:?}", case.name, rec.warnings());
    }
    // After a bad commit block the library moves the journal's sequence
    // past every transaction the log can hold (later ones may still be in
    // it); e2fsck restarts at one past the bad transaction.
    let (runs, _) = journal_runs(&img);
    let s_sequence = runs[0].device_block * u64::from(bs) + 0x18;
    let extra: &[(u64, u64, &str)] = if case.failed.is_some() { &[(s_sequence, 4, "journal s_sequence")] } else { &[] };
    compare_images_except(case.name, &img, &other, bs, EXT4_SB_ALLOWED, extra);
    let (code, out) = fsck_n(&img);
    assert_eq!(code, 0, "{}: e2fsck -fn after the library's recovery:\n{out}\n(e2fsck -E journal_only said:\n{fsck})", case.name);
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn recovery_matches_e2fsck() {
    if !have_e2fsprogs("recovery_matches_e2fsck") {
        return;
    }
    for case in CASES {
        check(case);
    }
}

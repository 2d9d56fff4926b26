//! `ext4 journal show|replay|clear` against debugfs and e2fsck: `show`
//! lists the transactions, copies and revokes `debugfs logdump -a` lists
//! (and the fast-commit records of a kernel journal), `replay` leaves what
//! e2fsck's replay leaves, `clear` needs `--force` and then empties the log
//! without writing anything home.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{assert_clean, have_fsck, ok, run};

fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A 64 MiB ext4 image whose journal debugfs filled with three
/// transactions: copies (two of them escaped), revokes, a rewrite.
fn journaled_image(dir: &Path) -> std::path::PathBuf {
    let img = dir.join("j.img");
    sh(Command::new("mke2fs").args(["-q", "-F", "-t", "ext4", "-b", "4096"]).arg(&img).arg("64M"));
    let data = dir.join("data");
    let mut d: Vec<u8> = (0..4096 * 8).map(|i| (i / 4096 * 31 + i % 251) as u8).collect();
    d[4096..4100].copy_from_slice(&0xC03B_3998u32.to_be_bytes());
    std::fs::write(&data, d).unwrap();
    let script = format!("jo -c\njw -b 9000-9003 {d}\njc\njo\njw -b 9001,9005 -r 9002 {d}\njc\njo\njw -r 9003\njc\n", d = data.display());
    let cmds = dir.join("cmds");
    std::fs::write(&cmds, script).unwrap();
    sh(Command::new("debugfs").arg("-w").arg("-f").arg(&cmds).arg(&img));
    img
}

/// (transaction, fs block, journal block) of every copy and (transaction,
/// fs block) of every revoke, from `debugfs logdump -a`.
type LogSets = (BTreeSet<(u32, u64, u64)>, BTreeSet<(u32, u64)>);

fn debugfs_log(img: &Path) -> LogSets {
    let out = sh(Command::new("debugfs").arg("-R").arg("logdump -a").arg(img));
    let (mut copies, mut revokes, mut seq) = (BTreeSet::new(), BTreeSet::new(), 0u32);
    for line in out.lines() {
        let words: Vec<&str> = line.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty()).collect();
        match words.as_slice() {
            ["Found", "expected", "sequence", s, ..] => seq = s.parse().unwrap(),
            ["FS", "block", b, "logged", "at", "journal", "block", j, ..] => {
                copies.insert((seq, b.parse().unwrap(), j.parse().unwrap()));
            }
            ["Revoke", "FS", "block", b] => {
                revokes.insert((seq, b.parse().unwrap()));
            }
            _ => {}
        }
    }
    (copies, revokes)
}

fn show_log(out: &str) -> LogSets {
    let (mut copies, mut revokes, mut seq) = (BTreeSet::new(), BTreeSet::new(), 0u32);
    for line in out.lines() {
        let words: Vec<&str> = line.split(|c: char| c.is_whitespace() || c == ':' || c == ',').filter(|w| !w.is_empty()).collect();
        match words.as_slice() {
            ["Transaction", s] => seq = s.parse().unwrap(),
            ["fs", "block", b, "logged", "at", "journal", "block", j, ..] => {
                copies.insert((seq, b.parse().unwrap(), j.parse().unwrap()));
            }
            ["revoke", "fs", "block", b] => {
                revokes.insert((seq, b.parse().unwrap()));
            }
            _ => {}
        }
    }
    (copies, revokes)
}

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn needs_recovery(img: &Path) -> bool {
    let b = std::fs::read(img).unwrap();
    b[1024 + 0x60] & 0x4 != 0
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn show_lists_the_log_as_debugfs_does() {
    if !have_fsck() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = journaled_image(dir.path());
    let shown = text(&ok(&[&"journal", &"show", &img], None));
    let expected = debugfs_log(&img);
    assert_eq!(expected.0.len(), 6, "debugfs lists six copies");
    assert_eq!(show_log(&shown), expected, "ext4 journal show:\n{shown}");
    assert!(!shown.contains("MISMATCH"), "every checksum of a good log matches:\n{shown}");
    assert!(shown.contains("escaped"), "the block that starts with the magic is escaped:\n{shown}");

    // One bit of a copy changed: its tag checksum no longer matches.
    let &(_, _, jblock) = expected.0.iter().next().unwrap();
    let runs = sh(Command::new("debugfs").arg("-R").arg(format!("bmap <8> {jblock}")).arg(&img));
    let dev_block: u64 = runs.trim().parse().unwrap();
    let mut bytes = std::fs::read(&img).unwrap();
    bytes[dev_block as usize * 4096 + 100] ^= 1;
    std::fs::write(&img, bytes).unwrap();
    let shown = text(&ok(&[&"journal", &"show", &img], None));
    let bad: Vec<&str> = shown.lines().filter(|l| l.contains("MISMATCH")).collect();
    assert_eq!(bad.len(), 1, "one copy fails its checksum:\n{shown}");
    assert!(bad[0].contains(&format!("journal block {jblock} ")), "{}", bad[0]);
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn replay_and_clear() {
    if !have_fsck() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = journaled_image(dir.path());
    let theirs = dir.path().join("theirs.img");
    let cleared = dir.path().join("cleared.img");
    std::fs::copy(&img, &theirs).unwrap();
    std::fs::copy(&img, &cleared).unwrap();

    let out = text(&ok(&[&"journal", &"replay", &img], None));
    assert!(out.contains("Replayed 3 transaction(s)"), "{out}");
    assert!(!needs_recovery(&img));
    sh(Command::new("e2fsck").args(["-y", "-E", "journal_only"]).arg(&theirs));
    let (a, b) = (std::fs::read(&img).unwrap(), std::fs::read(&theirs).unwrap());
    // Replayed and revoked blocks as e2fsck leaves them (the library's
    // replay is compared byte for byte in ext4-fs's journal tests).
    for block in 9000..9006 {
        let at = block * 4096;
        assert!(a[at..at + 4096] == b[at..at + 4096], "block {block} as e2fsck leaves it");
    }
    assert!(a[9000 * 4096..9001 * 4096] != [0u8; 4096], "block 9000 was replayed");
    assert_clean(&img, "after ext4 journal replay");
    assert!(text(&ok(&[&"journal", &"show", &img], None)).contains("The log is empty."));
    let again = text(&ok(&[&"journal", &"replay", &img], None));
    assert!(again.contains("clean"), "{again}");

    let before = std::fs::read(&cleared).unwrap();
    let refused = run(&[&"journal", &"clear", &cleared], None);
    assert!(!refused.status.success(), "clear without --force must refuse");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    assert!(std::fs::read(&cleared).unwrap() == before, "a refused clear changes nothing");
    let out = text(&ok(&[&"journal", &"clear", &"--force", &cleared], None));
    assert!(out.contains("discarded"), "{out}");
    assert!(!needs_recovery(&cleared));
    let after = std::fs::read(&cleared).unwrap();
    for block in [9000usize, 9001, 9005] {
        assert_eq!(after[block * 4096..(block + 1) * 4096], before[block * 4096..(block + 1) * 4096], "clear writes nothing home");
    }
    assert!(text(&ok(&[&"journal", &"show", &cleared], None)).contains("The log is empty."));
    assert_clean(&cleared, "after ext4 journal clear");
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn show_lists_fast_commit_records() {
    if !have_fsck() || !ext4_testkit::require(ext4_testkit::oracle::can_loop_mount(), "needs root and loop devices") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("fc.img");
    sh(Command::new("mke2fs").args(["-q", "-F", "-t", "ext4", "-O", "fast_commit"]).arg(&img).arg("64M"));
    {
        let m = ext4_testkit::oracle::LoopMount::new(&img, "").expect("mount");
        let f = m.path().join("a");
        std::fs::write(&f, b"first").unwrap();
        sh(Command::new("sync").arg("-f").arg(m.path()));
        for i in 0..3 {
            use std::io::Write;
            let mut h = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
            writeln!(h, "line {i}").unwrap();
            h.sync_all().unwrap();
        }
        let py = "import fcntl,os,struct,sys; fd=os.open(sys.argv[1], os.O_RDONLY); fcntl.ioctl(fd, 0x8004587d, struct.pack('I', 2))";
        sh(Command::new("python3").arg("-c").arg(py).arg(m.path()));
        m.unmount().unwrap();
    }
    let shown = text(&ok(&[&"journal", &"show", &img], None));
    let dump = sh(Command::new("debugfs").arg("-R").arg("logdump").arg(&img));
    // debugfs: "tag HEAD, features 0x0, tid 3"
    let head = dump.lines().find(|l| l.starts_with("tag HEAD")).unwrap_or_else(|| panic!("no fast-commit head:\n{dump}"));
    let tid: u32 = head.rsplit(' ').next().unwrap().parse().unwrap();
    let ours = shown.lines().find(|l| l.contains(": HEAD (9)")).unwrap_or_else(|| panic!("no HEAD record:\n{shown}"));
    assert!(ours.ends_with(&format!("features 0x0, transaction {tid}")), "HEAD of transaction {tid}: {ours}");
    assert!(shown.lines().any(|l| l.contains(": INODE (6)")), "{shown}");
    assert!(shown.lines().any(|l| l.contains(": TAIL (8), ") && l.contains(&format!("transaction {tid}, crc "))), "{shown}");
    // The same records in the same order as debugfs lists them ("tag NAME, ...").
    let theirs: Vec<&str> = dump.lines().filter_map(|l| l.strip_prefix("tag ")).filter_map(|l| l.split(',').next()).collect();
    let ours: Vec<&str> = shown
        .lines()
        .filter(|l| l.starts_with("  block "))
        .filter_map(|l| l.split(": ").nth(1))
        .filter_map(|l| l.split(' ').next())
        .filter(|t| *t != "PAD")
        .collect();
    let theirs: Vec<&str> = theirs.into_iter().filter(|t| *t != "PAD").collect();
    assert_eq!(ours, theirs, "fast-commit records:\n{shown}\n{dump}");
}

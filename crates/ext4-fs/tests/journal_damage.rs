//! Damaged journals against e2fsck. Journals written by `debugfs` (`jo`,
//! `jw`, `jc`) and by the kernel (a workload, then `EXT4_IOC_SHUTDOWN`
//! with the log flushed) get one byte changed at a random position of a
//! random log block (descriptor, revoke, commit, data) or of the journal
//! superblock. One copy is recovered by the library
//! ([`Filesystem::recover_journal`], replay only), another by
//! `e2fsck -y -E journal_only` (replay only, no full check), and:
//!
//! * where e2fsck replays, the two images are the same byte for byte but
//!   for the fields named in [`EXT4_SB_ALLOWED`] and [`JSB_ALLOWED`], and
//!   both record an error or neither does;
//! * where e2fsck refuses to replay because a transaction is damaged (it
//!   then discards the whole log), the library replays the transactions
//!   before the damaged one: its image equals e2fsck's replay of the log
//!   cut by hand before that transaction (the damaged transaction is
//!   known from `debugfs logdump` of the undamaged journal), and it
//!   records the error;
//! * where e2fsck rejects the journal superblock, the library refuses a
//!   writable open too, a read-only open works without the journal, and
//!   `clear_journal` leaves a journal a writable open accepts;
//! * a read-only open of the damaged image, reading through the log, sees
//!   the tree the replay wrote.
//!
//! Which log blocks are which comes from `debugfs logdump -a` and the
//! journal inode's extents from `debugfs stat <8>`, not from the library.
//! The seed is printed and varies per run (`EXT4_JOURNAL_SEED` repeats
//! one); `EXT4_JOURNAL_CASES` sets the cases per configuration (default 5).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ext4_fs::jbd2::RecoveryWarning;
use ext4_fs::ondisk::Superblock;
use ext4_fs::ondisk::superblock::{ERROR_INFO, STATE_ERROR};
use ext4_fs::{FileDevice, Filesystem, OpenOptions};
use ext4_testkit::oracle::{LoopMount, can_loop_mount, debugfs, have_e2fsprogs};
use ext4_testkit::snapshot::Snapshot;

/// How a base image's journal is written.
enum Source {
    /// A debugfs script (`DATA` is replaced by a data file's path).
    Debugfs(&'static str),
    /// A kernel workload, then a shutdown with the log flushed.
    Kernel,
}

/// One configuration: mke2fs options and the journal's writer.
struct Config {
    name: &'static str,
    mkfs: &'static [&'static str],
    source: Source,
}

/// Five transactions: blocks, blocks that start with the jbd2 magic
/// (escaped), revokes, a rewrite after a revoke.
const SCRIPT: &str = "jo -c\njw -b 9000-9005 DATA\njc\njo\njw -b 9001,9007 -r 9002 DATA\njc\njo\njw -r 9003,9004\njc\n\
                      jo\njw -b 9003,9010-9013 DATA\njc\njo\njw -b 9020 DATA\njc\n";
const SCRIPT_V2: &str = "jo -c -v 2\njw -b 9000-9005 DATA\njc\njo\njw -b 9001,9007 -r 9002 DATA\njc\njo\njw -r 9003,9004\njc\n\
                         jo\njw -b 9003,9010-9013 DATA\njc\njo\njw -b 9020 DATA\njc\n";

const CONFIGS: &[Config] = &[
    Config { name: "debugfs 4k 64bit csum-v3", mkfs: &["-t", "ext4", "-b", "4096"], source: Source::Debugfs(SCRIPT) },
    Config { name: "debugfs 1k 64bit csum-v2", mkfs: &["-t", "ext4", "-b", "1024"], source: Source::Debugfs(SCRIPT_V2) },
    Config { name: "debugfs 4k 32bit csum-v3", mkfs: &["-t", "ext4", "-b", "4096", "-O", "^64bit"], source: Source::Debugfs(SCRIPT) },
    Config { name: "kernel 4k 64bit csum-v3", mkfs: &["-t", "ext4", "-b", "4096"], source: Source::Kernel },
    Config { name: "kernel 1k 32bit csum-v3", mkfs: &["-t", "ext4", "-b", "1024", "-O", "^64bit"], source: Source::Kernel },
    Config { name: "kernel 4k 32bit no journal csum", mkfs: &["-t", "ext4", "-O", "^64bit,^metadata_csum"], source: Source::Kernel },
];

/// Fields of the ext4 superblock (offset, length, name, why) that may
/// differ between the library's recovery and e2fsck's.
const EXT4_SB_ALLOWED: &[(usize, usize, &str, &str)] = &[
    (
        0x0C,
        8,
        "s_free_blocks_count_lo, s_free_inodes_count",
        "the library sets them from the group descriptors after a replay, as e2fsck's full check does; its replay alone keeps the journal's copy",
    ),
    (0x158, 4, "s_free_blocks_count_hi", "as above"),
    (0x30, 4, "s_wtime", "e2fsck stamps the time it writes the superblock"),
    (0x274, 1, "s_wtime_hi", "as above"),
    (0x178, 8, "s_kbytes_written", "e2fsck counts its own writes"),
    (
        0x3A,
        2,
        "s_state",
        "an error is recorded as the kernel does (EXT4_ERROR_FS); e2fsck clears EXT4_VALID_FS after a replay that failed (checked separately: both or neither mark the filesystem)",
    ),
    (
        ERROR_INFO.start,
        ERROR_INFO.end - ERROR_INFO.start,
        "s_error_count, s_first_error_*, s_last_error_*",
        "the library records the error as ext4_error does; e2fsck only marks the state",
    ),
    (0x278, 4, "s_first_error_time_hi, s_last_error_time_hi, s_first_error_errcode, s_last_error_errcode", "as above"),
    (0x3FC, 4, "s_checksum", "covers the fields above"),
];

/// Fields of the journal superblock that may differ.
const JSB_ALLOWED: &[(usize, usize, &str, &str)] = &[
    (
        0x18,
        4,
        "s_sequence",
        "after a failed replay e2fsck leaves the sequence at the log's start (stale commit blocks can match it again); after a bad commit block or damage the library moves past every transaction the log can hold",
    ),
    (0xFC, 4, "s_checksum", "covers s_sequence"),
];

/// What a journal block is, from `debugfs logdump -a`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Superblock,
    Descriptor,
    Data,
    Revoke,
    Commit,
}

/// The log of an undamaged image, as debugfs walks it.
struct LogMap {
    block_size: u64,
    /// (first journal block, first device block, length) of the journal inode.
    runs: Vec<(u64, u64, u64)>,
    /// Journal block -> role and transaction.
    blocks: BTreeMap<u64, (Role, u32)>,
}

impl LogMap {
    fn read(img: &Path) -> Self {
        let sb = superblock(img);
        let block_size = 1024u64 << sb.s_log_block_size.get();
        let runs = journal_runs(img);
        let dump = debugfs(img, "logdump -a");
        let mut blocks = BTreeMap::new();
        blocks.insert(0, (Role::Superblock, 0));
        let mut seq = 0u32;
        for line in dump.lines() {
            if let Some(rest) = line.strip_prefix("Found expected sequence ") {
                // "Found expected sequence 2, type 1 (descriptor block) at block 7"
                let mut words = rest.split(|c: char| c == ',' || c.is_whitespace()).filter(|w| !w.is_empty());
                seq = words.next().and_then(|w| w.parse().ok()).expect("sequence");
                let kind: u32 = words.nth(1).and_then(|w| w.parse().ok()).expect("type");
                let at: u64 = rest.rsplit(' ').next().and_then(|w| w.parse().ok()).expect("block");
                let role = match kind {
                    1 => Role::Descriptor,
                    2 => Role::Commit,
                    5 => Role::Revoke,
                    _ => continue,
                };
                blocks.insert(at, (role, seq));
            } else if let Some(rest) = line.trim_start().strip_prefix("FS block ") {
                // "FS block 10000 logged at journal block 2 (flags 0x0)"
                let at: u64 = rest
                    .split("journal block ")
                    .nth(1)
                    .and_then(|s| s.split_whitespace().next())
                    .and_then(|w| w.parse().ok())
                    .expect("journal block");
                blocks.insert(at, (Role::Data, seq));
            }
        }
        assert!(blocks.values().any(|(r, _)| *r == Role::Commit), "no committed transaction in the log:\n{dump}");
        Self { block_size, runs, blocks }
    }

    /// Device byte offset of byte `off` of journal block `jblock`.
    fn offset(&self, jblock: u64, off: u64) -> u64 {
        let &(j0, d0, _) = self.runs.iter().find(|&&(j, _, n)| (j..j + n).contains(&jblock)).expect("mapped journal block");
        (d0 + jblock - j0) * self.block_size + off
    }

    /// The first log block of transaction `seq`.
    fn first_block_of(&self, seq: u32) -> Option<u64> {
        self.blocks.iter().find(|(_, (r, s))| *s == seq && *r != Role::Superblock).map(|(b, _)| *b)
    }

    /// Device byte ranges of the journal (all but its superblock block).
    fn log_area(&self) -> Vec<(u64, u64)> {
        self.runs
            .iter()
            .map(
                |&(j, d, n)| {
                    if j == 0 { ((d + 1) * self.block_size, (n - 1) * self.block_size) } else { (d * self.block_size, n * self.block_size) }
                },
            )
            .collect()
    }
}

/// One damage: `xor` applied to byte `offset` of journal block `jblock`.
#[derive(Debug, Clone, Copy)]
struct Damage {
    role: Role,
    jblock: u64,
    seq: u32,
    offset: u64,
    xor: u8,
}

/// splitmix64: a seedable generator, enough for picking cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn pick(rng: &mut Rng, map: &LogMap) -> Damage {
    let roles = [Role::Superblock, Role::Descriptor, Role::Data, Role::Revoke, Role::Commit];
    loop {
        let role = roles[rng.below(roles.len() as u64) as usize];
        let candidates: Vec<(u64, u32)> = map.blocks.iter().filter(|(_, (r, _))| *r == role).map(|(b, (_, s))| (*b, *s)).collect();
        if candidates.is_empty() {
            continue;
        }
        let (jblock, seq) = candidates[rng.below(candidates.len() as u64) as usize];
        // Most damage where fields are; sometimes anywhere in the block.
        let span = match role {
            Role::Superblock => 1024,
            Role::Commit | Role::Revoke if rng.below(2) == 0 => 64,
            Role::Descriptor if rng.below(2) == 0 => 128,
            _ => map.block_size,
        };
        let offset = rng.below(span);
        let xor = 1 + rng.below(255) as u8;
        return Damage { role, jblock, seq, offset, xor };
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn superblock(img: &Path) -> Superblock {
    let f = std::fs::File::open(img).unwrap();
    let mut buf = vec![0u8; 1024];
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut buf, 1024).unwrap();
    Superblock::from_bytes(&buf).unwrap()
}

/// The journal inode's extents from `debugfs stat <8>`.
fn journal_runs(img: &Path) -> Vec<(u64, u64, u64)> {
    let stat = debugfs(img, "stat <8>");
    let extents = stat.split("EXTENTS:").nth(1).unwrap_or_else(|| panic!("no extents in:\n{stat}"));
    let mut runs = Vec::new();
    for item in extents.split(',') {
        // "(0-1023):1234-2257" or "(5):1239"; index blocks "(ETB0):..." are skipped.
        let Some((logical, physical)) = item.trim().strip_prefix('(').and_then(|s| s.split_once("):")) else { continue };
        if logical.starts_with("ETB") {
            continue;
        }
        let range = |s: &str| -> (u64, u64) {
            let mut p = s.trim().split('-').map(|x| x.trim().parse::<u64>().unwrap());
            let a = p.next().unwrap();
            (a, p.next().unwrap_or(a))
        };
        let (l0, l1) = range(logical);
        let (p0, _) = range(physical);
        runs.push((l0, p0, l1 - l0 + 1));
    }
    runs
}

fn mke2fs(img: &Path, args: &[&str]) {
    run(Command::new("mke2fs")
        .env("E2FSPROGS_FAKE_TIME", "1700000000")
        .args(["-q", "-F", "-U", "01234567-89ab-cdef-0123-456789abcdef", "-E", "lazy_itable_init=0,nodiscard"])
        .args(args)
        .arg(img)
        .arg("64M"));
}

/// Writes the base image of `cfg` into `dir`.
fn base_image(cfg: &Config, dir: &Path) -> PathBuf {
    let img = dir.join("base.img");
    mke2fs(&img, cfg.mkfs);
    match cfg.source {
        Source::Debugfs(script) => {
            let bs = 1024usize << superblock(&img).s_log_block_size.get();
            let data = dir.join("data");
            let mut d: Vec<u8> = (0..bs * 16).map(|i| (i * 7 / 3 + i / bs) as u8).collect();
            for magic_block in [2, 9] {
                d[magic_block * bs..magic_block * bs + 4].copy_from_slice(&0xC03B_3998u32.to_be_bytes());
            }
            std::fs::write(&data, d).unwrap();
            let cmds = dir.join("cmds");
            std::fs::write(&cmds, script.replace("DATA", data.to_str().unwrap())).unwrap();
            run(Command::new("debugfs").arg("-w").arg("-f").arg(&cmds).arg(&img));
        }
        Source::Kernel => kernel_workload(&img),
    }
    assert!(superblock(&img).s_feature_incompat.get() & 0x4 != 0, "{}: no journal to recover", cfg.name);
    img
}

/// Files, directories, renames and removals through the kernel, a sync
/// half-way, then a shutdown with the log flushed (committed, not
/// checkpointed).
fn kernel_workload(img: &Path) {
    let m = LoopMount::new(img, "nodelalloc").expect("mount");
    let root = m.path();
    for d in 0..3 {
        let dir = root.join(format!("dir{d}"));
        std::fs::create_dir(&dir).unwrap();
        for f in 0..40 {
            let data: Vec<u8> = (0..(f * 211 + d * 13) % 7000).map(|i| (i * 7 + f) as u8).collect();
            std::fs::write(dir.join(format!("file-{f:03}-with-a-longer-name")), data).unwrap();
        }
    }
    run(Command::new("sync").arg("-f").arg(root));
    std::fs::rename(root.join("dir0/file-001-with-a-longer-name"), root.join("dir1/moved")).unwrap();
    std::fs::write(root.join("dir1/after-sync"), vec![b'x'; 20000]).unwrap();
    std::fs::remove_dir_all(root.join("dir2")).unwrap();
    std::os::unix::fs::symlink("dir1/moved", root.join("link")).unwrap();
    let py = "import fcntl,os,struct,sys; fd=os.open(sys.argv[1], os.O_RDONLY); fcntl.ioctl(fd, 0x8004587d, struct.pack('I', 1))";
    run(Command::new("python3").arg("-c").arg(py).arg(root));
    m.unmount().expect("umount");
}

fn damage_copy(base: &Path, to: &Path, map: &LogMap, d: &Damage) {
    std::fs::copy(base, to).unwrap();
    xor_byte(to, map.offset(d.jblock, d.offset), d.xor);
}

fn xor_byte(img: &Path, at: u64, xor: u8) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().read(true).write(true).open(img).unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ xor], at).unwrap();
}

/// e2fsck's replay alone; returns its output. It stops (exit 8 or 12) where
/// it asks whether to abort over a journal superblock it cannot use.
fn e2fsck_replay(img: &Path) -> String {
    let out = Command::new("e2fsck").args(["-y", "-E", "journal_only"]).arg(img).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let aborted = text.contains("Abort? yes");
    assert!(out.status.code().is_some_and(|c| c < 8) || aborted, "e2fsck journal_only failed:\n{text}");
    text
}

/// e2fsck's verdict, from its own words.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// It replayed, with no error.
    Replayed,
    /// It replayed what it could and reported an error (a bad commit
    /// block, a data block that failed its checksum).
    ReplayedWithError,
    /// It reported an error and replayed nothing (damage found while
    /// scanning, or a bad revoke count).
    Refused,
    /// It rejected or rewrote the journal superblock.
    BadSuperblock,
}

fn verdict(out: &str) -> Verdict {
    let superblock = [
        "Journal superblock",
        "journal superblock",
        "Journal version",
        "journal too short",
        "fast commit blocks",
        "has an invalid journal",
    ];
    if superblock.iter().any(|m| out.contains(m)) {
        return Verdict::BadSuperblock;
    }
    if out.contains("was corrupt, replay was aborted") || out.contains("Invalid checksum recovering data block") {
        return Verdict::ReplayedWithError;
    }
    if out.contains("Journal checksum error") || out.contains("Journal corrupted") || out.contains("while recovering journal") {
        return Verdict::Refused;
    }
    Verdict::Replayed
}

/// Byte ranges (device offset, length, name) allowed to differ.
fn allowed_ranges(map: &LogMap, whole_log: bool) -> Vec<(u64, u64, String)> {
    let mut v: Vec<(u64, u64, String)> = EXT4_SB_ALLOWED.iter().map(|&(o, l, n, _)| (1024 + o as u64, l as u64, n.to_string())).collect();
    let jsb = map.offset(0, 0);
    v.extend(JSB_ALLOWED.iter().map(|&(o, l, n, _)| (jsb + o as u64, l as u64, format!("journal {n}"))));
    if whole_log {
        v.extend(map.log_area().into_iter().map(|(o, l)| (o, l, "the log (cut by hand in the oracle's copy)".to_string())));
    }
    v
}

fn compare(what: &str, ours: &Path, theirs: &Path, allowed: &[(u64, u64, String)]) {
    let a = std::fs::read(ours).unwrap();
    let b = std::fs::read(theirs).unwrap();
    assert_eq!(a.len(), b.len());
    let bad: Vec<u64> = (0..a.len())
        .filter(|&i| a[i] != b[i])
        .map(|i| i as u64)
        .filter(|&i| !allowed.iter().any(|(o, l, _)| (*o..o + l).contains(&i)))
        .collect();
    assert!(bad.is_empty(), "{what}: {} bytes differ from e2fsck's, first at byte {} (block {} of 1k)", bad.len(), bad[0], bad[0] / 1024);
}

/// Whether a superblock carries an error mark (e2fsck's or the kernel's).
fn marked(sb: &Superblock, before: &Superblock) -> bool {
    sb.s_state.get() & STATE_ERROR != 0 || sb.s_state.get() & 1 < before.s_state.get() & 1
}

/// What happened to one case, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    SameAsE2fsck,
    SameAsE2fsckBothRecordAnError,
    SameAsE2fsckButABlockPastTheEnd,
    PrefixWhereE2fsckDiscardsTheLog,
    RefusedLikeE2fsck,
}

fn check_case(dir: &Path, base: &Path, map: &LogMap, d: &Damage, what: &str) -> Outcome {
    let damaged = dir.join("damaged.img");
    damage_copy(base, &damaged, map, d);
    let before = superblock(&damaged);
    let ours = dir.join("ours.img");
    let theirs = dir.join("theirs.img");
    std::fs::copy(&damaged, &ours).unwrap();
    std::fs::copy(&damaged, &theirs).unwrap();
    let out = e2fsck_replay(&theirs);
    let verdict = verdict(&out);
    let recovered = Filesystem::recover_journal(FileDevice::open(&ours, false).unwrap());
    let rec = match recovered {
        Err(e) => {
            assert_eq!(verdict, Verdict::BadSuperblock, "{what}: the library refused ({e}) where e2fsck said:\n{out}");
            refused(dir, &damaged, &ours, what);
            return Outcome::RefusedLikeE2fsck;
        }
        Ok(fs) => (fs.journal_recovery().cloned(), fs.journal_prior_error()),
    };
    let (rec, prior_error) = rec;
    assert_ne!(verdict, Verdict::BadSuperblock, "{what}: the library accepted a journal superblock e2fsck rejects:\n{out}");
    let errors = rec.as_ref().is_some_and(|r| r.has_errors());
    let lib_sb = superblock(&ours);
    // A read-only open of the damaged image reads through the same log.
    let through = Filesystem::open_path(&damaged, OpenOptions::read_only()).ok().and_then(|fs| Snapshot::from_image(&fs, b"/").ok());
    let replayed = Filesystem::open_path(&ours, OpenOptions::read_only()).ok().and_then(|fs| Snapshot::from_image(&fs, b"/").ok());
    if let (Some(a), Some(b)) = (through, replayed) {
        let diff = b.diff(&a);
        assert!(diff.is_empty(), "{what}: the read-only view differs from the replay: {:?}", &diff[..diff.len().min(4)]);
    }
    // A damaged s_errno (journals without checksums) is moved to the
    // filesystem as the kernel does; e2fsck does the same.
    let expect_mark = errors || prior_error.is_some();
    assert_eq!(marked(&lib_sb, &before), expect_mark, "{what}: an error must be recorded exactly when recovery met one ({rec:?})");
    if prior_error.is_some() {
        assert!(marked(&superblock(&theirs), &before), "{what}: e2fsck moves s_errno to the filesystem too");
    }
    if errors {
        assert_eq!(lib_sb.s_error_count.get(), before.s_error_count.get() + 1, "{what}: one error recorded");
    }
    if verdict == Verdict::Refused {
        let rec = rec.expect("a log was found");
        let damage = rec.damage().unwrap_or_else(|| panic!("{what}: e2fsck refused the log, the library found no damage: {rec:?}\n{out}"));
        assert_eq!(damage.sequence, d.seq, "{what}: the log must end at the damaged transaction ({damage})");
        let cut = dir.join("cut.img");
        std::fs::copy(base, &cut).unwrap();
        let first = map.first_block_of(d.seq).expect("the damaged transaction's first block");
        xor_byte(&cut, map.offset(first, 0), 0xFF);
        let cut_out = e2fsck_replay(&cut);
        assert_eq!(verdict_of(&cut_out), Verdict::Replayed, "{what}: e2fsck on the cut log:\n{cut_out}");
        compare(
            &format!("{what} (against e2fsck's replay of the log cut before transaction {})", d.seq),
            &ours,
            &cut,
            &allowed_ranges(map, true),
        );
        return Outcome::PrefixWhereE2fsckDiscardsTheLog;
    }
    // A damaged tag naming a block past the end of the filesystem: e2fsck
    // writes the copy there, growing the image, and reports nothing; the
    // kernel's write fails (and so does its mount); the library leaves
    // the copy out and records the error.
    let beyond = rec.as_ref().is_some_and(|r| r.warnings().iter().any(|w| matches!(w, RecoveryWarning::BeyondEnd { .. })));
    if beyond {
        let (a, b) = (std::fs::metadata(&ours).unwrap().len(), std::fs::metadata(&theirs).unwrap().len());
        assert!(b > a, "{what}: e2fsck was expected to write past the end of the image");
        std::fs::OpenOptions::new().write(true).open(&theirs).unwrap().set_len(a).unwrap();
    }
    assert_eq!(errors, verdict == Verdict::ReplayedWithError || beyond, "{what}: the library's errors ({rec:?}) against e2fsck's:\n{out}");
    compare(what, &ours, &theirs, &allowed_ranges(map, false));
    same_trees(&ours, &theirs, what);
    match (errors, beyond) {
        (_, true) => Outcome::SameAsE2fsckButABlockPastTheEnd,
        (true, false) => Outcome::SameAsE2fsckBothRecordAnError,
        (false, false) => Outcome::SameAsE2fsck,
    }
}

fn verdict_of(out: &str) -> Verdict {
    verdict(out)
}

/// Where the journal superblock is rejected: a read-only open ignores the
/// journal, and clearing it leaves a journal a writable open accepts.
fn refused(dir: &Path, damaged: &Path, ours: &Path, what: &str) {
    let before = std::fs::read(damaged).unwrap();
    {
        let fs = Filesystem::open_path(damaged, OpenOptions::read_only()).unwrap_or_else(|e| panic!("{what}: read-only open: {e}"));
        assert!(fs.journal_ignored().is_some(), "{what}: the read-only open must say it ignores the journal");
        Snapshot::from_image(&fs, b"/").unwrap_or_else(|e| panic!("{what}: reading the tree without the journal: {e}"));
    }
    assert!(std::fs::read(damaged).unwrap() == before, "{what}: a read-only open wrote");
    let cleared = Filesystem::clear_journal(FileDevice::open(ours, false).unwrap()).unwrap_or_else(|e| panic!("{what}: clear: {e}"));
    assert!(cleared.rebuilt.is_some(), "{what}: the unreadable journal superblock is written anew");
    let sb = superblock(ours);
    assert_eq!(sb.s_feature_incompat.get() & 0x4, 0, "{what}: needs_recovery cleared");
    assert_eq!(sb.s_state.get() & 1, 0, "{what}: the filesystem is marked for a check");
    let copy = dir.join("cleared.img");
    std::fs::copy(ours, &copy).unwrap();
    Filesystem::open_path(&copy, OpenOptions::read_write())
        .and_then(Filesystem::close)
        .unwrap_or_else(|e| panic!("{what}: writable open after clear: {e}"));
}

/// The trees the library reads from both results are the same.
fn same_trees(ours: &Path, theirs: &Path, what: &str) {
    let read = |p: &Path| Filesystem::open_path(p, OpenOptions::read_only()).ok().and_then(|fs| Snapshot::from_image(&fs, b"/").ok());
    if let (Some(a), Some(b)) = (read(ours), read(theirs)) {
        let diff = b.diff(&a);
        assert!(diff.is_empty(), "{what}: trees differ: {:?}", &diff[..diff.len().min(4)]);
    }
}

fn cases_per_config() -> usize {
    std::env::var("EXT4_JOURNAL_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(5)
}

fn seed() -> u64 {
    std::env::var("EXT4_JOURNAL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        t.as_secs() ^ u64::from(t.subsec_nanos()) << 20 ^ u64::from(std::process::id())
    })
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn damaged_journals_recover_like_e2fsck() {
    if !ext4_testkit::require(have_e2fsprogs() && can_loop_mount(), "needs e2fsprogs, root and loop devices") {
        return;
    }
    let seed = seed();
    let n = cases_per_config();
    println!("seed {seed} (EXT4_JOURNAL_SEED={seed} repeats this run), {n} cases per configuration");
    let mut rng = Rng(seed);
    let mut tally: BTreeMap<(Outcome, &str), usize> = BTreeMap::new();
    for cfg in CONFIGS {
        let dir = tempfile::tempdir().unwrap();
        let base = base_image(cfg, dir.path());
        let map = LogMap::read(&base);
        for i in 0..n {
            let d = pick(&mut rng, &map);
            let what = format!(
                "{} case {i}: {:?} block {} (transaction {}), byte {} ^= {:#04x}",
                cfg.name, d.role, d.jblock, d.seq, d.offset, d.xor
            );
            println!("{what} ...");
            let outcome = check_case(dir.path(), &base, &map, &d, &what);
            println!("{what}: {outcome:?}");
            *tally.entry((outcome, cfg.name)).or_default() += 1;
        }
    }
    for ((outcome, cfg), count) in &tally {
        println!("{count:4} {outcome:?} ({cfg})");
    }
}

/// A `dumpe2fs -h` field ("Filesystem state:", "FS Error count:", ...), if shown.
fn dumpe2fs_field(img: &Path, field: &str) -> Option<String> {
    let out = ext4_testkit::oracle::dumpe2fs(img, true);
    out.lines().find_map(|l| l.strip_prefix(field)).map(|v| v.trim().to_string())
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn a_damaged_journal_opens_with_the_error_recorded() {
    if !ext4_testkit::require(have_e2fsprogs() && can_loop_mount(), "needs e2fsprogs, root and loop devices") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = &CONFIGS[3];
    let base = base_image(cfg, dir.path());
    let map = LogMap::read(&base);
    let last = map.blocks.values().map(|(_, s)| *s).max().unwrap();
    let commit = map.blocks.iter().find(|(_, (r, s))| *r == Role::Commit && *s == last).map(|(b, _)| *b).unwrap();
    let first_descriptor = map.blocks.iter().find(|(_, (r, s))| *r == Role::Descriptor && *s == last).map(|(b, _)| *b).unwrap();
    // A bad commit block, then a descriptor whose checksum fails under a good commit.
    let cases =
        [("commit", Role::Commit, commit, 300, "EFSCORRUPTED"), ("descriptor", Role::Descriptor, first_descriptor, 40, "EFSBADCRC")];
    for (what, role, jblock, offset, code) in cases {
        let img = dir.path().join(format!("{what}.img"));
        damage_copy(&base, &img, &map, &Damage { role, jblock, seq: last, offset, xor: 0x40 });
        let mut fs =
            Filesystem::open_path(&img, OpenOptions::read_write()).unwrap_or_else(|e| panic!("{what}: the filesystem must open: {e}"));
        let rec = fs.journal_recovery().expect("a log").clone();
        assert_eq!(rec.end_sequence(), last, "{what}: the log ends before the last transaction");
        assert!(rec.has_errors(), "{what}: {rec:?}");
        fs.write_file(b"/written-after", b"the filesystem is usable").unwrap();
        fs.close().unwrap();
        assert_eq!(dumpe2fs_field(&img, "Filesystem state:").as_deref(), Some("clean with errors"), "{what}");
        assert_eq!(dumpe2fs_field(&img, "FS Error count:").as_deref(), Some("1"), "{what}");
        assert_eq!(dumpe2fs_field(&img, "First error function:").as_deref(), Some("jbd2_journal_recover"), "{what}");
        assert_eq!(dumpe2fs_field(&img, "First error err:").as_deref(), Some(code), "{what}");
        assert_eq!(dumpe2fs_field(&img, "Journal errno:"), None, "{what}: nothing left in the journal");
        let m = LoopMount::new(&img, "").unwrap_or_else(|e| panic!("{what}: the kernel mounts it after: {e}"));
        assert_eq!(std::fs::read(m.path().join("written-after")).unwrap(), b"the filesystem is usable");
        m.unmount().unwrap();
    }
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn a_journal_error_left_by_the_kernel_moves_to_the_filesystem() {
    if !ext4_testkit::require(have_e2fsprogs() && can_loop_mount(), "needs e2fsprogs, root and loop devices") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("errno.img");
    mke2fs(&img, &["-t", "ext4"]);
    {
        // errors=remount-ro aborts the journal on an error: jbd2 stores -EIO in s_errno.
        let m = LoopMount::new(&img, "errors=remount-ro").expect("mount");
        std::fs::write(m.path().join("f"), b"data").unwrap();
        run(Command::new("sync").arg("-f").arg(m.path()));
        let dev = String::from_utf8(Command::new("findmnt").args(["-n", "-o", "SOURCE"]).arg(m.path()).output().unwrap().stdout).unwrap();
        let name = Path::new(dev.trim()).file_name().unwrap().to_string_lossy().into_owned();
        std::fs::write(format!("/sys/fs/ext4/{name}/trigger_fs_error"), b"1").unwrap();
        m.unmount().unwrap();
    }
    assert_eq!(dumpe2fs_field(&img, "Journal errno:").as_deref(), Some("-5"), "the kernel left an error in the journal");
    // Only the journal's record is left to carry the error.
    run(Command::new("debugfs").args(["-w", "-R", "ssv state 1"]).arg(&img));
    let kernel = dir.path().join("kernel.img");
    std::fs::copy(&img, &kernel).unwrap();
    LoopMount::new(&kernel, "").expect("the kernel mounts it").unmount().unwrap();
    Filesystem::open_path(&img, OpenOptions::read_write()).and_then(Filesystem::close).expect("the library opens it");
    for (who, i) in [("kernel", &kernel), ("library", &img)] {
        assert_eq!(dumpe2fs_field(i, "Filesystem state:").as_deref(), Some("clean with errors"), "{who}");
        assert_eq!(dumpe2fs_field(i, "Journal errno:"), None, "{who}: the journal's error is cleared");
    }
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn an_unreadable_journal_superblock_refuses_writes_and_says_what_to_do() {
    if !ext4_testkit::require(have_e2fsprogs() && can_loop_mount(), "needs e2fsprogs, root and loop devices") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = base_image(&CONFIGS[0], dir.path());
    let map = LogMap::read(&base);
    let img = dir.path().join("bad-jsb.img");
    damage_copy(&base, &img, &map, &Damage { role: Role::Superblock, jblock: 0, seq: 0, offset: 0x18, xor: 1 });
    match Filesystem::open_path(&img, OpenOptions::read_write()) {
        Ok(_) => panic!("a writable open must refuse a journal whose superblock fails its checksum"),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains("s_checksum") && msg.contains("read-only") && msg.contains("ext4 journal clear --force"), "{msg}");
        }
    }
    let fs = Filesystem::open_path(&img, OpenOptions::read_only()).expect("a read-only open ignores the journal");
    assert!(fs.journal_ignored().is_some_and(|w| w.contains("s_checksum")));
}

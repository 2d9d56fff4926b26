//! `ext4 journal show|replay|clear IMAGE [--journal FILE]`: the journal's
//! superblock and log (as debugfs `logdump`), its replay alone (as `e2fsck
//! -E journal_only`), and emptying it without replay (as e2fsck offers when
//! the journal cannot be used). An external journal is given with
//! `--journal`; `show` also takes a journal device as IMAGE.

use std::path::{Path, PathBuf};

use ext4_fs::jbd2::format::{
    COMPAT_CHECKSUM, FLAG_ESCAPE, INCOMPAT_64BIT, INCOMPAT_ASYNC_COMMIT, INCOMPAT_CSUM_V2, INCOMPAT_CSUM_V3, INCOMPAT_FAST_COMMIT,
    INCOMPAT_REVOKE, JournalSuperblock,
};
use ext4_fs::jbd2::logdump::{self, DumpBlock, DumpEnd, LogDump};
use ext4_fs::jbd2::{DeviceJournal, JournalGeometry, JournalRun, Recovery, RecoveryWarning};
use ext4_fs::{BlockDevice, Filesystem, Timestamp};

use crate::util::{CliResult, Context, fail, format_time, format_uuid, open_ro};

/// Appends a formatted line to a `String` (formatting into memory cannot fail).
macro_rules! w {
    ($o:expr, $($t:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($o, $($t)*);
    }};
}

/// Arguments of `ext4 journal`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    op: Op,
}

#[derive(clap::Subcommand)]
enum Op {
    /// Print the journal superblock and every transaction of the log
    /// (blocks, revokes, commits, checksums) and the fast-commit records.
    Show {
        /// The image or device (or an external journal device).
        image: PathBuf,
        /// The external journal device (or image) of the filesystem.
        #[arg(long, value_name = "FILE")]
        journal: Option<PathBuf>,
    },
    /// Replay the journal and change nothing else (no orphan processing).
    Replay {
        /// The image or device.
        image: PathBuf,
        /// The external journal device (or image) of the filesystem.
        #[arg(long, value_name = "FILE")]
        journal: Option<PathBuf>,
    },
    /// Empty the journal without replaying it: the transactions it holds
    /// are lost, and the filesystem is marked for a full check.
    Clear {
        /// The image or device.
        image: PathBuf,
        /// Really discard what the journal holds.
        #[arg(long)]
        force: bool,
        /// The external journal device (or image) of the filesystem.
        #[arg(long, value_name = "FILE")]
        journal: Option<PathBuf>,
    },
}

/// Runs the command.
pub fn run(a: Args) -> CliResult {
    match a.op {
        Op::Show { image, journal: device } => show(&image, device.as_deref()),
        Op::Replay { image, journal } => replay(&image, journal.as_deref()),
        Op::Clear { image, force, journal } => clear(&image, force, journal.as_deref()),
    }
}

fn show(image: &Path, device: Option<&Path>) -> CliResult {
    let external = match device {
        Some(j) => Some(open_journal(j, true)?),
        // A journal device given as the image: its own log.
        None => Some(open_device(image, true)?).filter(|d| ext4_fs::read_journal_device(d).ok().flatten().is_some()),
    };
    if let Some(dev) = external {
        return show_external(&dev, device.unwrap_or(image));
    }
    let fs = open_ro(image, None)?;
    let runs: Vec<JournalRun> = fs
        .journal_extents()
        .into_iter()
        .scan(0, |j, (device_block, len)| {
            let run = JournalRun { jblock: *j, device_block, len };
            *j += len;
            Some(run)
        })
        .collect();
    if runs.is_empty() {
        let sb = fs.superblock();
        if sb.features().compat.contains(ext4_fs::ondisk::Compat::HAS_JOURNAL) && sb.s_journal_inum.get() == 0 {
            let uuid = format_uuid(&sb.s_journal_uuid);
            return Err(fail(format!("{}: the journal is on an external device (UUID {uuid}): give it with --journal", image.display())));
        }
        return Err(fail(format!("{}: no internal journal", image.display())));
    }
    let bs = fs.geometry().block_size;
    let what = || format!("reading the journal of {}", image.display());
    let io = DeviceJournal::new(fs.device(), bs, runs).map_err(journal).context(what)?;
    dump(io, bs, &format!("inode {}", fs.superblock().s_journal_inum.get()), fs.geometry().inode_size as usize, &what)
}

/// Opens the filesystem's device or image file (IMAGE, with `@N`,
/// `--partition`, `--offset`).
fn open_device(path: &Path, read_only: bool) -> CliResult<Box<dyn BlockDevice>> {
    crate::device::open(&crate::device::Spec::image(path)?, read_only)
}

/// Opens an external journal device (`--journal FILE`, `FILE@N`).
fn open_journal(path: &Path, read_only: bool) -> CliResult<Box<dyn BlockDevice>> {
    crate::device::open(&crate::device::Spec::parse(path), read_only)
}

/// Shows the log of the external journal device at `path`.
fn show_external(dev: &dyn BlockDevice, path: &Path) -> CliResult {
    let what = || format!("reading the journal device {}", path.display());
    let info = ext4_fs::read_journal_device(dev).context(what)?;
    let info = info.ok_or_else(|| fail(format!("{}: not an external journal device", path.display())))?;
    let io = DeviceJournal::external(dev, info.device.block_size, info.device.blocks_count);
    // The device does not say its filesystem's inode size: INODE records
    // are read as of 256-byte inodes, mke2fs's default.
    dump(io, info.device.block_size, &format!("external device {}", format_uuid(&info.device.uuid)), 256, &what)
}

/// Prints the journal superblock of `io`, then its log.
/// (`inode_size` sizes the fast-commit area's INODE records.)
fn dump(mut io: DeviceJournal<'_>, bs: u32, whose: &str, inode_size: usize, what: &dyn Fn() -> String) -> CliResult {
    let len = ext4_fs::jbd2::JournalIo::len_blocks(&io);
    let jsb = ext4_fs::jbd2::read_superblock(&mut io, bs).map_err(journal).context(what)?;
    let mut o = String::new();
    let o = &mut o;
    print_superblock(o, &jsb, whose, len);
    let geo = match JournalGeometry::new(&jsb, bs, len) {
        Ok(g) => g,
        Err(e) => {
            w!(o, "The journal superblock is invalid: {e}");
            w!(o, "The log cannot be walked; `ext4 journal clear --force` empties it.");
            return emit(o);
        }
    };
    let dump = logdump::dump(&mut io, &geo).map_err(journal).context(what)?;
    print_log(o, &dump, &geo, inode_size);
    emit(o)
}

/// Writes the text built up to standard output.
fn emit(o: &str) -> CliResult {
    let mut out = crate::out::Out::new();
    out.text(o)?;
    out.finish()
}

/// A journal error as an I/O error, for the context helper.
fn journal(e: ext4_fs::jbd2::JournalError) -> std::io::Error {
    std::io::Error::other(e)
}

fn print_superblock(o: &mut String, sb: &JournalSuperblock, whose: &str, len: u64) {
    let version = if sb.s_header.h_blocktype.get() == 4 { 2 } else { 1 };
    w!(o, "Journal superblock ({whose}, {len} blocks):");
    w!(o, "  version {version}, block size {}, {} blocks, log from block {}", sb.s_blocksize.get(), sb.s_maxlen.get(), sb.s_first.get());
    let start = sb.s_start.get();
    let state = if start == 0 { "empty".to_string() } else { format!("starts at block {start}") };
    w!(o, "  sequence {}, log {state}, errno {}", sb.s_sequence.get(), sb.s_errno.get() as i32);
    let names = [
        (INCOMPAT_REVOKE, "revoke"),
        (INCOMPAT_64BIT, "64bit"),
        (INCOMPAT_ASYNC_COMMIT, "async_commit"),
        (INCOMPAT_CSUM_V2, "csum_v2"),
        (INCOMPAT_CSUM_V3, "csum_v3"),
        (INCOMPAT_FAST_COMMIT, "fast_commit"),
    ];
    let mut features: Vec<String> =
        names.iter().filter(|(b, _)| sb.s_feature_incompat.get() & b != 0).map(|(_, n)| n.to_string()).collect();
    if sb.s_feature_compat.get() & COMPAT_CHECKSUM != 0 {
        features.push("checksum_v1".into());
    }
    let unknown = sb.s_feature_incompat.get() & !names.iter().fold(0, |a, (b, _)| a | b);
    if unknown != 0 {
        features.push(format!("incompat {unknown:#x}"));
    }
    w!(o, "  features: {}", if features.is_empty() { "none".to_string() } else { features.join(" ") });
    if sb.csum_v2_or_v3() {
        let ok = if sb.compute_checksum() == sb.s_checksum.get() { "valid" } else { "INVALID" };
        w!(o, "  checksum {:#010x} ({ok})", sb.s_checksum.get());
    }
    w!(o, "  uuid {}, {} user(s)", format_uuid(&sb.s_uuid), sb.s_nr_users.get());
    if sb.has_incompat(INCOMPAT_FAST_COMMIT) {
        w!(o, "  fast-commit blocks: {}", sb.s_num_fc_blks.get());
    }
}

fn checksum(ok: Option<bool>) -> &'static str {
    match ok {
        None => "",
        Some(true) => ", checksum ok",
        Some(false) => ", CHECKSUM MISMATCH",
    }
}

fn print_log(o: &mut String, dump: &LogDump, geo: &JournalGeometry, inode_size: usize) {
    let mut current = None;
    for b in &dump.blocks {
        let seq = match b {
            DumpBlock::Descriptor { sequence, .. } | DumpBlock::Revoke { sequence, .. } | DumpBlock::Commit { sequence, .. } => *sequence,
        };
        if current != Some(seq) {
            w!(o, "Transaction {seq}:");
            current = Some(seq);
        }
        match b {
            DumpBlock::Descriptor { jblock, checksum_ok, tags, .. } => {
                w!(o, "  descriptor at block {jblock}{}", checksum(*checksum_ok));
                for t in tags {
                    let escaped = if t.flags & FLAG_ESCAPE != 0 { ", escaped" } else { "" };
                    w!(
                        o,
                        "    fs block {} logged at journal block {} (flags {:#x}{escaped}{})",
                        t.fs_block,
                        t.jblock,
                        t.flags,
                        checksum(t.checksum_ok)
                    );
                }
            }
            DumpBlock::Revoke { jblock, checksum_ok, blocks, .. } => {
                w!(o, "  revoke at block {jblock}{}", checksum(*checksum_ok));
                for b in blocks {
                    w!(o, "    revoke fs block {b}");
                }
            }
            DumpBlock::Commit { jblock, sec, nsec, checksum_ok, .. } => {
                let t = Timestamp { secs: i64::try_from(*sec).unwrap_or(i64::MAX), nsec: *nsec };
                w!(o, "  commit at block {jblock}, {} UTC{}", format_time(t), checksum(*checksum_ok));
            }
        }
    }
    match &dump.end {
        DumpEnd::Empty => w!(o, "The log is empty."),
        DumpEnd::NoMagic { jblock } => w!(o, "No magic number at block {jblock}: end of the log."),
        DumpEnd::Sequence { jblock, found, expected } => {
            w!(o, "Found transaction {found} (not {expected}) at block {jblock}: end of the log.")
        }
        DumpEnd::UnknownType { jblock, kind } => w!(o, "Block type {kind} at block {jblock}: end of the log."),
        DumpEnd::Lap { jblock } => w!(o, "The log went once around the journal without ending (block {jblock})."),
    }
    if geo.features.fast_commit {
        w!(o, "Fast-commit area: blocks {}-{}", geo.last + 1, geo.maxlen - 1);
        for r in &dump.fast_commit {
            w!(
                o,
                "  block {} offset {}: {} ({}), {} bytes: {}",
                r.jblock,
                r.offset,
                logdump::fc_tag_name(r.tag),
                r.tag,
                r.len,
                describe_fc(r.tag, &r.value, inode_size)
            );
        }
    }
}

fn replay(image: &Path, device: Option<&Path>) -> CliResult {
    let dev = open_device(image, false)?;
    let fs = match device {
        Some(j) => Filesystem::recover_external_journal(dev, open_journal(j, false)?),
        None => Filesystem::recover_journal(dev),
    }
    .context(|| format!("recovering the journal of {}", image.display()))?;
    if let Some(errno) = fs.journal_prior_error() {
        println!("The journal recorded an error (errno {}): the filesystem is now marked as having errors.", -errno);
    }
    match fs.journal_recovery() {
        None => println!("The journal is clean: nothing to replay."),
        Some(rec) => report(rec),
    }
    Ok(())
}

fn report(rec: &Recovery) {
    println!(
        "Replayed {} transaction(s) ({} to {}): {} block(s) written home, {} revoked cop(ies) skipped.",
        rec.transactions(),
        rec.start_sequence(),
        rec.end_sequence().wrapping_sub(1),
        rec.block_count(),
        rec.revoke_hits()
    );
    for w in rec.warnings() {
        match w {
            RecoveryWarning::DataChecksum { fs_block, jblock, sequence } => {
                println!(
                    "Not replayed: the copy of block {fs_block} at journal block {jblock} (transaction {sequence}) fails its checksum."
                )
            }
            RecoveryWarning::CommitChecksum { sequence, jblock } => {
                println!(
                    "Transaction {sequence} was corrupt (its commit block at journal block {jblock} fails its checksum): the log ends before it."
                )
            }
            RecoveryWarning::StaleBlocks { sequence, jblock } => {
                println!("Stale blocks of an older log (transaction {sequence}, journal block {jblock}) end the log.")
            }
            RecoveryWarning::BeyondEnd { fs_block, jblock, sequence } => {
                println!(
                    "Not replayed: block {fs_block} (journal block {jblock}, transaction {sequence}) lies past the end of the filesystem."
                )
            }
            RecoveryWarning::EndlessLog { jblock } => println!("The log went once around the journal (block {jblock}) without ending."),
            other => println!("{other:?}"),
        }
    }
    if let Some(d) = rec.damage() {
        println!("The log is damaged at {d}: the transactions before it were replayed, the rest was not.");
    }
    if rec.has_errors() {
        println!("The error is recorded on the filesystem (EXT4_ERROR_FS): run e2fsck -f.");
    }
}

fn clear(image: &Path, force: bool, device: Option<&Path>) -> CliResult {
    if !force {
        return Err(fail("clearing the journal discards the transactions it holds; add --force to do it"));
    }
    let dev = open_device(image, false)?;
    let done = match device {
        Some(j) => Filesystem::clear_external_journal(dev, open_journal(j, false)?),
        None => Filesystem::clear_journal(dev),
    }
    .context(|| format!("clearing the journal of {}", image.display()))?;
    if let Some(why) = &done.rebuilt {
        println!("The journal superblock could not be used ({why}) and was written anew.");
    }
    if done.discarded {
        println!("The log is empty; its transactions were discarded and the filesystem is marked for a full check (e2fsck -f).");
    } else {
        println!("The log was already empty.");
    }
    Ok(())
}

/// One fast-commit record's value in words (as debugfs `logdump` prints them).
fn describe_fc(tag: u16, value: &[u8], inode_size: usize) -> String {
    use ext4_fs::ondisk::fast_commit::{FcDentry, FcTag};
    let dentry = |d: FcDentry<'_>| format!("parent {}, inode {}, name {:?}", d.parent, d.ino, String::from_utf8_lossy(d.name));
    match FcTag::parse(tag, value, inode_size) {
        Ok(FcTag::AddRange { ino, extent: e }) => {
            let unwritten = if e.unwritten { ", unwritten" } else { "" };
            format!("inode {ino}, logical {}+{} at block {}{unwritten}", e.logical, e.len, e.start)
        }
        Ok(FcTag::DelRange { ino, lblk, len }) => format!("inode {ino}, logical {lblk}+{len}"),
        Ok(FcTag::Create(d)) => dentry(d),
        Ok(FcTag::Link(d)) => dentry(d),
        Ok(FcTag::Unlink(d)) => dentry(d),
        Ok(FcTag::Inode { ino, raw }) => format!("inode {ino}, {} bytes of its record", raw.len()),
        Ok(FcTag::Pad) => "padding to the end of the block".into(),
        Ok(FcTag::Tail { tid, crc }) => format!("transaction {tid}, crc {crc:#010x}"),
        Ok(FcTag::Head { features, tid }) => format!("features {features:#x}, transaction {tid}"),
        Err(e) => format!("undecodable ({e})"),
    }
}

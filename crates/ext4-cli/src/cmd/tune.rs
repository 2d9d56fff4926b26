//! `ext4 tune [OPTIONS] IMAGE`: change an unmounted filesystem's
//! parameters as tune2fs does, with tune2fs' option letters (see
//! `ext4_fs::tune` for what each change does).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use ext4_fs::tune::{CheckRequest, JournalSize, Tune, random_uuid};

use crate::util::{CliResult, Context, fail};

/// Arguments of `ext4 tune`.
#[derive(clap::Args)]
pub struct Args {
    /// Mounts allowed before a check (`random`: 20 to 39; 0 or -1: no limit).
    #[arg(short = 'c', long = "max-mount-count", allow_hyphen_values = true)]
    max_mount_count: Option<String>,
    /// The current mount count.
    #[arg(short = 'C', long = "mount-count")]
    mount_count: Option<u16>,
    /// Behaviour on errors: continue, remount-ro or panic.
    #[arg(short = 'e', long)]
    errors: Option<String>,
    /// Extended options, comma separated: stride=N, stripe_width=N,
    /// hash_alg=legacy|half_md4|tea, mount_opts=STRING, test_fs, ^test_fs,
    /// force_fsck, mmp_update_interval=SECS, orphan_file_size=SIZE,
    /// clear_mmp (with -f).
    #[arg(short = 'E', long)]
    extended: Option<String>,
    /// Change a filesystem that was not freshly checked; skip multi-mount protection.
    #[arg(short = 'f', long)]
    force: bool,
    /// The group allowed to use the reserved blocks (number or name).
    #[arg(short = 'g', long = "reserved-group")]
    reserved_group: Option<String>,
    /// Time between checks: N days, or N followed by d, w, m (30 days) or s.
    #[arg(short = 'i', long)]
    interval: Option<String>,
    /// Add a journal of the default size.
    #[arg(short = 'j', long)]
    journal: bool,
    /// Journal options: size=MiB.
    #[arg(short = 'J', long = "journal-options")]
    journal_options: Option<String>,
    /// Print the superblock after the changes.
    #[arg(short = 'l', long)]
    list: bool,
    /// The volume label (at most 16 bytes).
    #[arg(short = 'L', long)]
    label: Option<OsString>,
    /// Reserved blocks as a percentage of the filesystem (0 to 50).
    #[arg(short = 'm', long = "reserved-percent")]
    reserved_percent: Option<f64>,
    /// The directory where the filesystem was last mounted.
    #[arg(short = 'M', long = "last-mounted")]
    last_mounted: Option<OsString>,
    /// Default mount options to set, or clear with `^`: acl, user_xattr,
    /// journal_data, journal_data_ordered, journal_data_writeback,
    /// nobarrier, block_validity, discard, nodelalloc, debug, bsdgroups, uid16.
    #[arg(short = 'o', long = "mount-options")]
    mount_options: Option<String>,
    /// Features to set, or clear with `^` (has_journal, metadata_csum,
    /// metadata_csum_seed, orphan_file, dir_index, uninit_bg, large_dir,
    /// extra_isize, ...).
    #[arg(short = 'O', long)]
    features: Option<String>,
    /// Reserved blocks (at most half the filesystem).
    #[arg(short = 'r', long = "reserved-blocks")]
    reserved_blocks: Option<u64>,
    /// When the filesystem was last checked: now, @SECONDS, or
    /// YYYYMMDD[HH[MM[SS]]] (UTC).
    #[arg(short = 'T', long = "last-checked")]
    last_checked: Option<String>,
    /// The user allowed to use the reserved blocks (number or name).
    #[arg(short = 'u', long = "reserved-user")]
    reserved_user: Option<String>,
    /// The UUID: clear, random, time, or a UUID.
    #[arg(short = 'U', long)]
    uuid: Option<String>,
    /// The image or device.
    image: PathBuf,
}

/// Runs the command.
pub fn run(a: Args) -> CliResult {
    let t = request(&a)?;
    if a.list && is_empty(&t) {
        return crate::cmd::dump::list_header(&a.image);
    }
    if is_empty(&t) {
        return Err(fail("nothing to change (see ext4 tune --help)"));
    }
    if let Some(at) = mounted_at(&a.image) {
        return Err(fail(format!("{} is mounted on {at}: ext4 tune changes unmounted filesystems only", a.image.display())));
    }
    let dev = crate::device::open(&crate::device::Spec::image(&a.image)?, false)?;
    let done = ext4_fs::tune::tune(dev, &t).context(|| format!("tuning {}", a.image.display()))?;
    for n in &done.notes {
        println!("{n}");
    }
    match done.check {
        Some(CheckRequest::Full) => println!("Please run e2fsck -f on the filesystem."),
        Some(CheckRequest::Directories) => println!("Please run e2fsck -fD on the filesystem."),
        None => {}
    }
    if a.list {
        crate::cmd::dump::list_header(&a.image)?;
    }
    Ok(())
}

/// Where the kernel has `image` mounted, if it does: the device itself,
/// or a loop device whose backing file it is.
fn mounted_at(image: &Path) -> Option<String> {
    let target = std::fs::canonicalize(image).ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields.iter().position(|f| *f == "-")?;
        let (source, at) = (Path::new(fields.get(sep + 2)?), fields.get(4)?);
        let loop_name = source.file_name().and_then(|n| n.to_str()).filter(|n| n.starts_with("loop"));
        let backing = loop_name.and_then(|n| std::fs::read_to_string(format!("/sys/block/{n}/loop/backing_file")).ok());
        let same = std::fs::canonicalize(source).is_ok_and(|s| s == target) || backing.is_some_and(|b| Path::new(b.trim()) == target);
        same.then(|| at.to_string())
    })
}

/// Whether a request changes nothing (`-f` alone changes nothing).
fn is_empty(t: &Tune) -> bool {
    *t == Tune { force: t.force, ..Tune::default() }
}

/// The library request from the command line.
fn request(a: &Args) -> CliResult<Tune> {
    let mut t = Tune { force: a.force, ..Tune::default() };
    t.max_mount_count = a.max_mount_count.as_deref().map(parse_max_mounts).transpose()?;
    if let Some(c) = a.mount_count {
        if c > 16000 {
            return Err(fail(format!("bad mounts count {c} (at most 16000)")));
        }
        t.mount_count = Some(c);
    }
    t.errors = a.errors.as_deref().map(parse_errors).transpose()?;
    t.reserved_gid = a.reserved_group.as_deref().map(|g| account_id("/etc/group", g, "group")).transpose()?;
    t.reserved_uid = a.reserved_user.as_deref().map(|u| account_id("/etc/passwd", u, "user")).transpose()?;
    t.check_interval = a.interval.as_deref().map(parse_interval).transpose()?;
    t.reserved_percent = a.reserved_percent;
    t.reserved_blocks = a.reserved_blocks;
    t.last_checked = a.last_checked.as_deref().map(parse_time).transpose()?;
    t.label = a.label.as_ref().map(|l| l.as_encoded_bytes().to_vec());
    t.last_mounted = a.last_mounted.as_ref().map(|l| l.as_encoded_bytes().to_vec());
    t.default_mount_options = a.mount_options.clone();
    t.features = a.features.clone();
    t.uuid = a.uuid.as_deref().map(parse_uuid_request).transpose()?;
    if a.journal {
        t.journal = Some(JournalSize::Default);
    }
    if let Some(j) = &a.journal_options {
        t.journal = Some(parse_journal_options(j)?);
    }
    if let Some(e) = &a.extended {
        let block_log = || Ok(crate::util::open_ro(&a.image, None)?.geometry().block_bits - 10);
        parse_extended(e, &mut t, block_log)?;
    }
    Ok(t)
}

fn parse_max_mounts(s: &str) -> CliResult<i16> {
    if s == "random" {
        let r = random_uuid();
        return Ok(20 + i16::from(r[0] % 20));
    }
    let n: i32 = s.parse().map_err(|_| fail(format!("bad mounts count {s:?}")))?;
    if !(-16000..=16000).contains(&n) {
        return Err(fail(format!("bad mounts count {n} (-16000 to 16000)")));
    }
    Ok(if n == 0 { -1 } else { n as i16 })
}

fn parse_errors(s: &str) -> CliResult<u16> {
    match s {
        "continue" => Ok(1),
        "remount-ro" => Ok(2),
        "panic" => Ok(3),
        _ => Err(fail(format!("bad error behavior {s:?} (continue, remount-ro or panic)"))),
    }
}

/// A user or group id, by number or by name from a `passwd`-style file.
fn account_id(file: &str, s: &str, what: &str) -> CliResult<u16> {
    let id = match s.parse::<u32>() {
        Ok(n) => n,
        Err(_) => {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let found = text.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.first() == Some(&s)).then(|| f.get(2)?.parse::<u32>().ok()).flatten()
            });
            found.ok_or_else(|| fail(format!("bad {what} id or name {s:?}")))?
        }
    };
    u16::try_from(id).map_err(|_| fail(format!("{what} id {id} does not fit the superblock's 16 bits")))
}

/// tune2fs' interval: days by default, or with a d, w, m (30 days) or s suffix.
fn parse_interval(s: &str) -> CliResult<u64> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let n: u64 = digits.parse().map_err(|_| fail(format!("bad interval {s:?}")))?;
    let unit = match &s[digits.len()..] {
        "" | "d" | "D" => 86_400,
        "m" | "M" => 86_400 * 30,
        "w" | "W" => 86_400 * 7,
        "s" => 1,
        _ => return Err(fail(format!("bad interval {s:?}"))),
    };
    Ok(n.saturating_mul(unit))
}

/// `now`, `@SECONDS` or `YYYYMMDD[HH[MM[SS]]]` in UTC.
fn parse_time(s: &str) -> CliResult<i64> {
    let bad = || fail(format!("couldn't parse date/time {s:?} (now, @SECONDS or YYYYMMDD[HH[MM[SS]]])"));
    if s == "now" {
        return Ok(ext4_fs::now().secs);
    }
    if let Some(secs) = s.strip_prefix('@') {
        return secs.parse().map_err(|_| bad());
    }
    if !(8..=14).contains(&s.len()) || s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| s.get(r).map_or(Ok(0), |v| v.parse::<i64>().map_err(|_| bad()));
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(8..10)?, num(10..12)?, num(12..14)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return Err(bad());
    }
    Ok(days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Days from 1970-01-01 to a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `clear`/`null`, `random`, `time`, or a UUID in its text form.
fn parse_uuid_request(s: &str) -> CliResult<[u8; 16]> {
    match s.to_ascii_lowercase().as_str() {
        "clear" | "null" => Ok([0; 16]),
        "random" => Ok(random_uuid()),
        "time" => Ok(time_uuid()),
        _ => parse_uuid(s).ok_or_else(|| fail(format!("invalid UUID format {s:?}"))),
    }
}

/// A UUID in `8-4-4-4-12` hexadecimal form.
pub(crate) fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let dashes: Vec<usize> = s.char_indices().filter(|(_, c)| *c == '-').map(|(i, _)| i).collect();
    if s.len() != 36 || dashes != [8, 13, 18, 23] {
        return None;
    }
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A time-based (version 1) UUID: 100 ns ticks since 1582-10-15, a random
/// clock sequence and a random multicast node.
fn time_uuid() -> [u8; 16] {
    let now = ext4_fs::now();
    let ticks = (now.secs as u64 + 12_219_292_800).wrapping_mul(10_000_000) + u64::from(now.nsec / 100);
    let r = random_uuid();
    let mut u = [0u8; 16];
    u[0..4].copy_from_slice(&(ticks as u32).to_be_bytes());
    u[4..6].copy_from_slice(&((ticks >> 32) as u16).to_be_bytes());
    u[6..8].copy_from_slice(&(((ticks >> 48) as u16 & 0x0FFF) | 0x1000).to_be_bytes());
    u[8] = (r[8] & 0x3F) | 0x80;
    u[9] = r[9];
    u[10..16].copy_from_slice(&r[10..16]);
    u[10] |= 0x01;
    u
}

/// `-J size=MiB` (external journals are not supported).
fn parse_journal_options(s: &str) -> CliResult<JournalSize> {
    let mut size = JournalSize::Default;
    for opt in s.split(',').filter(|o| !o.is_empty()) {
        match opt.split_once('=') {
            Some(("size", v)) => size = JournalSize::Mib(v.parse().map_err(|_| fail(format!("invalid journal size {v:?} (MiB)")))?),
            _ => return Err(fail(format!("unsupported journal option {opt:?} (size=MiB)"))),
        }
    }
    Ok(size)
}

/// A size as tune2fs reads one for `orphan_file_size`: blocks, or with a
/// K, M, G or T suffix bytes in those units.
fn parse_blocks(v: &str, block_size_log: u32) -> Option<u64> {
    let digits = v.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let n: u64 = digits.parse().ok()?;
    let kib = match &v[digits.len()..] {
        "" => return Some(n),
        "K" | "k" => n,
        "M" | "m" => n << 10,
        "G" | "g" => n << 20,
        "T" | "t" => n << 30,
        _ => return None,
    };
    Some(kib >> block_size_log)
}

/// `-E`, comma separated; `block_log` gives log2 of the image's block
/// size in KiB (for sizes with a unit).
fn parse_extended(s: &str, t: &mut Tune, block_log: impl Fn() -> CliResult<u32>) -> CliResult {
    for opt in s.split(',').filter(|o| !o.is_empty()) {
        let (key, val) = opt.split_once('=').map_or((opt, None), |(k, v)| (k, Some(v)));
        let need = || val.ok_or_else(|| fail(format!("extended option {key} needs a value")));
        let num = |v: &str| v.parse::<u64>().map_err(|_| fail(format!("invalid {key} value {v:?}")));
        match key {
            "stride" => t.raid_stride = Some(u16::try_from(num(need()?)?).map_err(|_| fail("stride above 65535"))?),
            "stripe_width" | "stripe-width" => {
                t.raid_stripe_width = Some(u32::try_from(num(need()?)?).map_err(|_| fail("stripe width too big"))?)
            }
            "hash_alg" | "hash-alg" => {
                t.hash_alg = Some(match need()? {
                    "legacy" => 0,
                    "half_md4" => 1,
                    "tea" => 2,
                    v => return Err(fail(format!("invalid hash algorithm {v:?} (legacy, half_md4, tea)"))),
                })
            }
            "mount_opts" => t.mount_opts = Some(need()?.as_bytes().to_vec()),
            "test_fs" => t.test_fs = Some(true),
            "^test_fs" => t.test_fs = Some(false),
            "force_fsck" => t.force_fsck = true,
            "clear_mmp" | "clear-mmp" => t.clear_mmp = true,
            "mmp_update_interval" => t.mmp_update_interval = Some(u16::try_from(num(need()?)?).map_err(|_| fail("interval too big"))?),
            "orphan_file_size" => {
                let v = need()?;
                let blocks = parse_blocks(v, block_log()?).filter(|&n| n > 0);
                t.orphan_file_blocks = Some(blocks.ok_or_else(|| fail(format!("invalid size of orphan file {v:?}")))?);
            }
            _ => return Err(fail(format!("unknown extended option {opt:?}"))),
        }
    }
    Ok(())
}

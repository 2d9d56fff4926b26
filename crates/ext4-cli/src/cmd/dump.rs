//! `ext4 dump [-h] [-x] [--json] IMAGE`: the superblock, the journal
//! superblock, the MMP block and every group, as dumpe2fs prints them
//! (times in UTC), or as JSON.

use std::io::Write;
use std::path::PathBuf;

use ext4_fs::jbd2::format::{self as jf, JournalSuperblock};
use ext4_fs::ondisk::mmp::MmpBlock;
use ext4_fs::ondisk::superblock::{CsumKind, Geometry, STATE_ERROR, STATE_VALID, Superblock};
use ext4_fs::ondisk::{Compat, GroupDescFlags, Incompat, RoCompat};
use ext4_fs::{Filesystem, GroupReport};
use serde_json::{Value, json};

use crate::util::{CliResult, Context, civil_from_days, format_uuid};

/// Arguments of `ext4 dump`.
#[derive(clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// Only the superblock (and the journal and MMP blocks), no groups.
    #[arg(short = 'h', long = "header-only")]
    header_only: bool,
    /// Block numbers in hexadecimal.
    #[arg(short = 'x')]
    hex: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// The image or device.
    image: PathBuf,
}

/// Runs the command.
pub fn run(a: Args) -> CliResult {
    let fs = Filesystem::open_for_report(&a.image).context(|| format!("opening {}", a.image.display()))?;
    let what = || format!("dumping {}", a.image.display());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let r = if a.json { dump_json(&fs, a.header_only, &mut out) } else { dump_text(&fs, &a, &mut out) };
    match r.and_then(|()| out.flush().map_err(Failure::Io)) {
        Ok(()) => Ok(()),
        // A reader that went away (`| head`) ends the output quietly.
        Err(Failure::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(Failure::Io(e)) => Err(e).context(what),
        Err(Failure::Fs(e)) => Err(e).context(what),
    }
}

/// Why a dump stopped.
enum Failure {
    /// Writing the output failed.
    Io(std::io::Error),
    /// Reading the image failed.
    Fs(ext4_fs::Error),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<ext4_fs::Error> for Failure {
    fn from(e: ext4_fs::Error) -> Self {
        Self::Fs(e)
    }
}

type DumpResult = Result<(), Failure>;

/// The superblock alone, as `tune2fs -l` prints it.
pub(crate) fn list_header(image: &std::path::Path) -> CliResult {
    let fs = Filesystem::open_for_report(image).context(|| format!("opening {}", image.display()))?;
    let sb = fs.stored_superblock().context(|| format!("reading {}", image.display()))?;
    let mut out = std::io::stdout().lock();
    match list_super(&mut out, &sb) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context(|| "writing the superblock".to_string()),
        _ => Ok(()),
    }
}

/// The text report, as dumpe2fs prints it.
fn dump_text(fs: &Filesystem, a: &Args, w: &mut impl Write) -> DumpResult {
    let sb = fs.stored_superblock()?;
    list_super(w, &sb)?;
    if sb.features().compat.contains(Compat::HAS_JOURNAL) && sb.s_journal_inum.get() != 0 {
        if let Some(jsb) = fs.journal_superblock()? {
            list_journal(w, &jsb, fs.geometry().block_size, sb.features().compat.contains(Compat::FAST_COMMIT))?;
        }
    }
    if let Some(mmp) = fs.mmp_block()? {
        list_mmp(w, &mmp)?;
    }
    // dumpe2fs ends its (empty) bad block list with a newline.
    writeln!(w)?;
    if a.header_only {
        return Ok(());
    }
    writeln!(w)?;
    let num = Numbers { hex: a.hex, wide: fs.geometry().is_64bit() };
    fs.for_each_group_report(|r| list_group(w, fs.geometry(), &r, num).map_err(Failure::Io))?;
    Ok(())
}

/// How block numbers print (`-x`: hexadecimal, 8 digits on 64bit filesystems).
#[derive(Clone, Copy)]
struct Numbers {
    hex: bool,
    wide: bool,
}

impl Numbers {
    fn one(self, n: u64) -> String {
        match (self.hex, self.wide) {
            (false, _) => n.to_string(),
            (true, true) => format!("0x{n:08x}"),
            (true, false) => format!("0x{n:04x}"),
        }
    }

    fn range(self, a: u64, b: u64) -> String {
        format!("{}-{}", self.one(a), self.one(b))
    }
}

/// The bytes of a fixed-size C string field up to its first NUL, as text.
fn field_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// A time as C's `ctime` prints it, in UTC, without the newline.
pub(crate) fn ctime(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = secs.div_euclid(86_400);
    let s = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let wday = DAYS[days.rem_euclid(7) as usize];
    format!("{wday} {} {d:2} {:02}:{:02}:{:02} {y}", MONTHS[m as usize - 1], s / 3600, s / 60 % 60, s % 60)
}

/// A time in RFC 3339, UTC.
fn rfc3339(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

/// `e2p`'s interval text: months of 30 days, weeks, days, then h:mm:ss.
fn interval_string(secs: u32) -> String {
    if secs == 0 {
        return "<none>".into();
    }
    let mut parts = Vec::new();
    let mut left = secs;
    for (unit, name) in [(86_400 * 30, "month"), (86_400 * 7, "week"), (86_400, "day")] {
        if left >= unit {
            let n = left / unit;
            left -= n * unit;
            parts.push(format!("{n} {name}{}", if n > 1 { "s" } else { "" }));
        }
    }
    if left > 0 {
        parts.push(format!("{}:{:02}:{:02}", left / 3600, left / 60 % 60, left % 60));
    }
    parts.join(", ")
}

/// A user or group name from a `passwd`-style file (`getpwuid`, `getgrgid`
/// for local accounts).
fn account_name(file: &str, id: u16) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let found = f.nth(1)?.parse::<u32>().ok()? == u32::from(id);
        found.then(|| name.to_string())
    })
}

/// The feature names of the superblock in dumpe2fs' order: each word
/// (compat, incompat, ro_compat) bit by bit.
pub(crate) fn feature_names(sb: &Superblock) -> Vec<String> {
    use ext4_fs::ondisk::features::{FeatureSet, feature_name};
    let words = [
        (FeatureSet::Compat, sb.s_feature_compat.get()),
        (FeatureSet::Incompat, sb.s_feature_incompat.get()),
        (FeatureSet::RoCompat, sb.s_feature_ro_compat.get()),
    ];
    words.iter().flat_map(|&(set, w)| (0..32).map(|i| 1u32 << i).filter(move |b| w & b != 0).map(move |b| feature_name(set, b))).collect()
}

/// The default mount option names (`e2p_mntopt2string`).
pub(crate) fn mntopt_name(mask: u32) -> String {
    let name = match mask {
        0x0001 => "debug",
        0x0002 => "bsdgroups",
        0x0004 => "user_xattr",
        0x0008 => "acl",
        0x0010 => "uid16",
        0x0020 => "journal_data",
        0x0040 => "journal_data_ordered",
        0x0060 => "journal_data_writeback",
        0x0100 => "nobarrier",
        0x0200 => "block_validity",
        0x0400 => "discard",
        0x0800 => "nodelalloc",
        _ => return format!("MNTOPT_{}", 31 - mask.leading_zeros()),
    };
    name.into()
}

/// `s_default_mount_opts` as names: the journal mode first, then each bit.
pub(crate) fn mntopt_names(mask: u32) -> Vec<String> {
    const JMODE: u32 = 0x0060;
    let mut out = Vec::new();
    if mask & JMODE != 0 {
        out.push(mntopt_name(mask & JMODE));
    }
    out.extend((0..32).map(|i| 1u32 << i).filter(|b| b & JMODE == 0 && mask & b != 0).map(mntopt_name));
    out
}

/// `e2p_hash2string`.
fn hash_name(v: u8) -> String {
    match v {
        0 => "legacy".into(),
        1 => "half_md4".into(),
        2 => "tea".into(),
        _ => format!("HASHALG_{v}"),
    }
}

/// `e2p_errcode2str`.
fn errcode_name(e: u8) -> String {
    const NAMES: [&str; 18] = [
        "",
        "UNKNOWN",
        "EIO",
        "ENOMEM",
        "EFSBADCRC",
        "EFSCORRUPTED",
        "ENOSPC",
        "ENOKEY",
        "EROFS",
        "EFBIG",
        "EEXIST",
        "ERANGE",
        "EOVERFLOW",
        "EBUSY",
        "ENOTDIR",
        "ENOTEMPTY",
        "ESHUTDOWN",
        "EFAULT",
    ];
    NAMES.get(usize::from(e)).map_or_else(|| format!("UNKNOWN_ERRCODE_{e}"), |s| s.to_string())
}

fn state_text(state: u16) -> String {
    let mut s = if state & STATE_VALID != 0 { " clean" } else { " not clean" }.to_string();
    if state & STATE_ERROR != 0 {
        s.push_str(" with errors");
    }
    s
}

fn errors_text(e: u16) -> &'static str {
    match e {
        1 => "Continue",
        2 => "Remount read-only",
        3 => "Panic",
        _ => "Unknown (continue)",
    }
}

fn os_text(os: u32) -> &'static str {
    ["Linux", "Hurd", "Masix", "FreeBSD", "Lites"].get(os as usize).copied().unwrap_or("(unknown os)")
}

/// `s_kbytes_written` in the largest unit below 8192 of it, rounded.
fn lifetime_writes(kb: u64) -> String {
    if kb < 1 << 13 {
        return format!("{kb} kB");
    }
    for (shift, unit) in [(10, "MB"), (20, "GB"), (30, "TB")] {
        if kb < 1u64 << (shift + 13) {
            return format!("{} {unit}", (kb + (1 << (shift - 1))) >> shift);
        }
    }
    format!("{} PB", (kb + (1 << 39)) >> 40)
}

fn is_null(b: &[u8]) -> bool {
    b.iter().all(|&c| c == 0)
}

/// The superblock, as e2p's `list_super2`.
fn list_super(w: &mut impl Write, sb: &Superblock) -> std::io::Result<()> {
    let f = sb.features();
    let block_size = 1024u64 << sb.s_log_block_size.get().min(16);
    let cluster_size = 1024u64 << sb.s_log_cluster_size.get().min(32);
    let inode_size = if sb.s_rev_level.get() == 0 { 128 } else { u64::from(sb.s_inode_size.get()) };
    let ipg = u64::from(sb.s_inodes_per_group.get());
    let label = field_str(&sb.s_volume_name);
    writeln!(w, "Filesystem volume name:   {}", if label.is_empty() { "<none>".into() } else { label })?;
    let mounted = field_str(&sb.s_last_mounted);
    writeln!(w, "Last mounted on:          {}", if mounted.is_empty() { "<not available>".into() } else { mounted })?;
    writeln!(w, "Filesystem UUID:          {}", format_uuid(&sb.s_uuid))?;
    writeln!(w, "Filesystem magic number:  0x{:04X}", sb.s_magic.get())?;
    let rev = sb.s_rev_level.get();
    let rev_name = match rev {
        0 => "original",
        1 => "dynamic",
        _ => "unknown",
    };
    writeln!(w, "Filesystem revision #:    {rev} ({rev_name})")?;
    let names = feature_names(sb);
    writeln!(w, "Filesystem features:      {}", if names.is_empty() { "(none)".into() } else { names.join(" ") })?;
    list_flags(w, sb.s_flags.get())?;
    let opts = mntopt_names(sb.s_default_mount_opts.get());
    writeln!(w, "Default mount options:    {}", if opts.is_empty() { "(none)".into() } else { opts.join(" ") })?;
    let mount_opts = field_str(&sb.s_mount_opts);
    if !mount_opts.is_empty() {
        writeln!(w, "Mount options:            {mount_opts}")?;
    }
    writeln!(w, "Filesystem state:        {}", state_text(sb.s_state.get()))?;
    writeln!(w, "Errors behavior:          {}", errors_text(sb.s_errors.get()))?;
    writeln!(w, "Filesystem OS type:       {}", os_text(sb.s_creator_os.get()))?;
    writeln!(w, "Inode count:              {}", sb.s_inodes_count.get())?;
    writeln!(w, "Block count:              {}", sb.blocks_count())?;
    writeln!(w, "Reserved block count:     {}", sb.r_blocks_count())?;
    if sb.s_overhead_clusters.get() != 0 {
        writeln!(w, "Overhead clusters:        {}", sb.s_overhead_clusters.get())?;
    }
    writeln!(w, "Free blocks:              {}", sb.free_blocks_count())?;
    writeln!(w, "Free inodes:              {}", sb.s_free_inodes_count.get())?;
    writeln!(w, "First block:              {}", sb.s_first_data_block.get())?;
    writeln!(w, "Block size:               {block_size}")?;
    let bigalloc = f.ro_compat.contains(RoCompat::BIGALLOC);
    if bigalloc {
        writeln!(w, "Cluster size:             {cluster_size}")?;
    } else {
        writeln!(w, "Fragment size:            {cluster_size}")?;
    }
    if f.incompat.contains(Incompat::BIT64) {
        writeln!(w, "Group descriptor size:    {}", sb.s_desc_size.get())?;
    }
    if sb.s_reserved_gdt_blocks.get() != 0 {
        writeln!(w, "Reserved GDT blocks:      {}", sb.s_reserved_gdt_blocks.get())?;
    }
    writeln!(w, "Blocks per group:         {}", sb.s_blocks_per_group.get())?;
    let cpg_label = if bigalloc { "Clusters per group:       " } else { "Fragments per group:      " };
    writeln!(w, "{cpg_label}{}", sb.s_clusters_per_group.get())?;
    writeln!(w, "Inodes per group:         {ipg}")?;
    writeln!(w, "Inode blocks per group:   {}", (ipg * inode_size).div_ceil(block_size) as u32)?;
    list_super_layout(w, sb)?;
    list_super_times(w, sb)?;
    list_super_ids(w, sb)?;
    list_super_errors(w, sb)?;
    list_super_tail(w, sb)
}

/// `s_flags` (printed only when nonzero).
fn list_flags(w: &mut impl Write, flags: u32) -> std::io::Result<()> {
    if flags == 0 {
        return Ok(());
    }
    let names: String = [(1, "signed_directory_hash "), (2, "unsigned_directory_hash "), (4, "test_filesystem ")]
        .iter()
        .filter(|(b, _)| flags & b != 0)
        .map(|(_, n)| *n)
        .collect();
    writeln!(w, "Filesystem flags:         {}", if names.is_empty() { "(none)" } else { &names })
}

/// RAID, meta_bg and flex_bg geometry.
fn list_super_layout(w: &mut impl Write, sb: &Superblock) -> std::io::Result<()> {
    if sb.s_raid_stride.get() != 0 {
        writeln!(w, "RAID stride:              {}", sb.s_raid_stride.get())?;
    }
    if sb.s_raid_stripe_width.get() != 0 {
        writeln!(w, "RAID stripe width:        {}", sb.s_raid_stripe_width.get())?;
    }
    if sb.s_first_meta_bg.get() != 0 {
        writeln!(w, "First meta block group:   {}", sb.s_first_meta_bg.get())?;
    }
    if sb.s_log_groups_per_flex != 0 {
        writeln!(w, "Flex block group size:    {}", 1u32.wrapping_shl(u32::from(sb.s_log_groups_per_flex)))?;
    }
    Ok(())
}

/// Creation, mount, write and check times, counts and intervals.
fn list_super_times(w: &mut impl Write, sb: &Superblock) -> std::io::Result<()> {
    let t = |v: u32| ctime(i64::from(v));
    if sb.s_mkfs_time.get() != 0 {
        writeln!(w, "Filesystem created:       {}", t(sb.s_mkfs_time.get()))?;
    }
    let mtime = sb.s_mtime.get();
    writeln!(w, "Last mount time:          {}", if mtime != 0 { t(mtime) } else { "n/a".into() })?;
    writeln!(w, "Last write time:          {}", t(sb.s_wtime.get()))?;
    writeln!(w, "Mount count:              {}", sb.s_mnt_count.get())?;
    writeln!(w, "Maximum mount count:      {}", sb.s_max_mnt_count.get() as i16)?;
    writeln!(w, "Last checked:             {}", t(sb.s_lastcheck.get()))?;
    let interval = sb.s_checkinterval.get();
    writeln!(w, "Check interval:           {interval} ({})", interval_string(interval))?;
    if interval != 0 {
        let next = i64::from(sb.s_lastcheck.get()) + i64::from(interval);
        writeln!(w, "Next check after:         {}", ctime(next))?;
    }
    if sb.s_kbytes_written.get() != 0 {
        writeln!(w, "Lifetime writes:          {}", lifetime_writes(sb.s_kbytes_written.get()))?;
    }
    Ok(())
}

/// Reserved-block owners, inode numbers and sizes, journal, hash and backups.
fn list_super_ids(w: &mut impl Write, sb: &Superblock) -> std::io::Result<()> {
    let uid = sb.s_def_resuid.get();
    let user = account_name("/etc/passwd", uid).map_or_else(|| "(user unknown)".into(), |n| format!("(user {n})"));
    writeln!(w, "Reserved blocks uid:      {uid} {user}")?;
    let gid = sb.s_def_resgid.get();
    let group = account_name("/etc/group", gid).map_or_else(|| "(group unknown)".into(), |n| format!("(group {n})"));
    writeln!(w, "Reserved blocks gid:      {gid} {group}")?;
    if sb.s_rev_level.get() >= 1 {
        writeln!(w, "First inode:              {}", sb.s_first_ino.get())?;
        writeln!(w, "Inode size:\t          {}", sb.s_inode_size.get())?;
        if sb.s_min_extra_isize.get() != 0 {
            writeln!(w, "Required extra isize:     {}", sb.s_min_extra_isize.get())?;
        }
        if sb.s_want_extra_isize.get() != 0 {
            writeln!(w, "Desired extra isize:      {}", sb.s_want_extra_isize.get())?;
        }
    }
    if !is_null(&sb.s_journal_uuid) {
        writeln!(w, "Journal UUID:             {}", format_uuid(&sb.s_journal_uuid))?;
    }
    if sb.s_journal_inum.get() != 0 {
        writeln!(w, "Journal inode:            {}", sb.s_journal_inum.get())?;
    }
    if sb.s_journal_dev.get() != 0 {
        writeln!(w, "Journal device:\t          0x{:04x}", sb.s_journal_dev.get())?;
    }
    if sb.s_last_orphan.get() != 0 {
        writeln!(w, "First orphan inode:       {}", sb.s_last_orphan.get())?;
    }
    if sb.features().compat.contains(Compat::DIR_INDEX) || sb.s_def_hash_version != 0 {
        writeln!(w, "Default directory hash:   {}", hash_name(sb.s_def_hash_version))?;
    }
    if !is_null(&sb.hash_seed_bytes()) {
        writeln!(w, "Directory Hash Seed:      {}", format_uuid(&sb.hash_seed_bytes()))?;
    }
    match sb.s_jnl_backup_type {
        0 => {}
        1 => writeln!(w, "Journal backup:           inode blocks")?,
        t => writeln!(w, "Journal backup:           type {t}")?,
    }
    let bgs = sb.s_backup_bgs.map(|b| b.get());
    if bgs != [0, 0] {
        let list: String = bgs.iter().filter(|&&b| b != 0).map(|b| format!("{b} ")).collect();
        writeln!(w, "Backup block groups:      {list}")?;
    }
    if sb.s_snapshot_inum.get() != 0 {
        writeln!(w, "Snapshot inode:           {}", sb.s_snapshot_inum.get())?;
        writeln!(w, "Snapshot ID:              {}", sb.s_snapshot_id.get())?;
        writeln!(w, "Snapshot reserved blocks: {}", sb.s_snapshot_r_blocks_count.get())?;
    }
    if sb.s_snapshot_list.get() != 0 {
        writeln!(w, "Snapshot list head:       {}", sb.s_snapshot_list.get())?;
    }
    Ok(())
}

/// The error count and the first and last recorded errors.
fn list_super_errors(w: &mut impl Write, sb: &Superblock) -> std::io::Result<()> {
    if sb.s_error_count.get() != 0 {
        writeln!(w, "FS Error count:           {}", sb.s_error_count.get())?;
    }
    let first = ErrorInfo {
        time: sb.s_first_error_time.get(),
        func: &sb.s_first_error_func,
        line: sb.s_first_error_line.get(),
        ino: sb.s_first_error_ino.get(),
        block: sb.s_first_error_block.get(),
        errcode: sb.s_first_error_errcode,
    };
    let last = ErrorInfo {
        time: sb.s_last_error_time.get(),
        func: &sb.s_last_error_func,
        line: sb.s_last_error_line.get(),
        ino: sb.s_last_error_ino.get(),
        block: sb.s_last_error_block.get(),
        errcode: sb.s_last_error_errcode,
    };
    first.list(w, "First")?;
    last.list(w, "Last")
}

/// One recorded error.
struct ErrorInfo<'a> {
    time: u32,
    func: &'a [u8],
    line: u32,
    ino: u32,
    block: u64,
    errcode: u8,
}

impl ErrorInfo<'_> {
    /// Prints the error with labels starting `which` ("First", "Last"),
    /// padded to dumpe2fs' column.
    fn list(&self, w: &mut impl Write, which: &str) -> std::io::Result<()> {
        if self.time == 0 {
            return Ok(());
        }
        let label = |what: &str| format!("{:<26}", format!("{which} error {what}:"));
        writeln!(w, "{}{}", label("time"), ctime(i64::from(self.time)))?;
        writeln!(w, "{}{}", label("function"), field_str(self.func))?;
        writeln!(w, "{}{}", label("line #"), self.line)?;
        if self.ino != 0 {
            writeln!(w, "{}{}", label("inode #"), self.ino)?;
        }
        if self.block != 0 {
            writeln!(w, "{}{}", label("block #"), self.block)?;
        }
        if self.errcode != 0 {
            writeln!(w, "{}{}", label("err"), errcode_name(self.errcode))?;
        }
        Ok(())
    }
}

/// MMP, quota inodes, checksums, encryption salt, encoding, orphan file.
fn list_super_tail(w: &mut impl Write, sb: &Superblock) -> std::io::Result<()> {
    let f = sb.features();
    if f.incompat.contains(Incompat::MMP) {
        writeln!(w, "MMP block number:         {}", sb.s_mmp_block.get())?;
        writeln!(w, "MMP update interval:      {}", sb.s_mmp_interval.get())?;
    }
    for (label, ino) in [
        ("User quota inode:", sb.s_usr_quota_inum.get()),
        ("Group quota inode:", sb.s_grp_quota_inum.get()),
        ("Project quota inode:", sb.s_prj_quota_inum.get()),
    ] {
        if ino != 0 {
            writeln!(w, "{label:<26}{ino}")?;
        }
    }
    if f.ro_compat.contains(RoCompat::METADATA_CSUM) {
        let kind = if sb.s_checksum_type == 1 { "crc32c" } else { "unknown" };
        writeln!(w, "Checksum type:            {kind}")?;
        writeln!(w, "Checksum:                 0x{:08x}", sb.s_checksum.get())?;
    }
    if !is_null(&sb.s_encrypt_pw_salt) {
        writeln!(w, "Encryption PW Salt:       {}", format_uuid(&sb.s_encrypt_pw_salt))?;
    }
    if f.incompat.contains(Incompat::CSUM_SEED) {
        writeln!(w, "Checksum seed:            0x{:08x}", sb.s_checksum_seed.get())?;
    }
    if f.incompat.contains(Incompat::CASEFOLD) {
        let enc = match sb.s_encoding.get() {
            1 => "utf8-12.1".to_string(),
            e => format!("ENCODING_{e}"),
        };
        writeln!(w, "Character encoding:       {enc}")?;
    }
    if f.compat.contains(Compat::ORPHAN_FILE) {
        writeln!(w, "Orphan file inode:        {}", sb.s_orphan_file_inum.get())?;
    }
    Ok(())
}

/// The journal feature names (`e2p_jrnl_feature2string`), word by word.
fn journal_feature_names(jsb: &JournalSuperblock) -> Vec<String> {
    let words = [(b'C', jsb.s_feature_compat.get()), (b'I', jsb.s_feature_incompat.get()), (b'R', jsb.s_feature_ro_compat.get())];
    let name = |set: u8, bit: u32| -> String {
        let known = match (set, bit) {
            (b'C', jf::COMPAT_CHECKSUM) => "journal_checksum",
            (b'I', jf::INCOMPAT_REVOKE) => "journal_incompat_revoke",
            (b'I', jf::INCOMPAT_64BIT) => "journal_64bit",
            (b'I', jf::INCOMPAT_ASYNC_COMMIT) => "journal_async_commit",
            (b'I', jf::INCOMPAT_CSUM_V2) => "journal_checksum_v2",
            (b'I', jf::INCOMPAT_CSUM_V3) => "journal_checksum_v3",
            _ => return format!("FEATURE_{}{}", set as char, bit.trailing_zeros()),
        };
        known.into()
    };
    words.iter().flat_map(|&(set, w)| (0..32).map(|i| 1u32 << i).filter(move |b| w & b != 0).map(move |b| name(set, b))).collect()
}

/// The fast-commit blocks at the end of the journal, when the filesystem uses them.
fn fast_commit_blocks(jsb: &JournalSuperblock, fast_commit: bool) -> u32 {
    match (fast_commit, jsb.s_num_fc_blks.get()) {
        (false, _) => 0,
        (true, 0) => jf::DEFAULT_FAST_COMMIT_BLOCKS,
        (true, n) => n,
    }
}

/// The journal superblock, as e2p's `e2p_list_journal_super`.
fn list_journal(w: &mut impl Write, jsb: &JournalSuperblock, fs_block_size: u32, fast_commit: bool) -> std::io::Result<()> {
    let names = journal_feature_names(jsb);
    writeln!(w, "Journal features:         {}", if names.is_empty() { "(none)".into() } else { names.join(" ") })?;
    let size = (jsb.s_blocksize.get() / 1024).wrapping_mul(jsb.s_maxlen.get());
    let size = if size < 8192 { format!("{size}k") } else { format!("{}M", size >> 10) };
    writeln!(w, "Total journal size:       {size}")?;
    if jsb.s_blocksize.get() != fs_block_size {
        writeln!(w, "Journal block size:       {}", jsb.s_blocksize.get())?;
    }
    let fc = fast_commit_blocks(jsb, fast_commit);
    writeln!(w, "Total journal blocks:     {}", jsb.s_maxlen.get())?;
    writeln!(w, "Max transaction length:   {}", jsb.s_maxlen.get().wrapping_sub(fc))?;
    writeln!(w, "Fast commit length:       {fc}")?;
    if jsb.s_first.get() != 1 {
        writeln!(w, "Journal first block:      {}", jsb.s_first.get())?;
    }
    writeln!(w, "Journal sequence:         0x{:08x}", jsb.s_sequence.get())?;
    writeln!(w, "Journal start:            {}", jsb.s_start.get())?;
    let users = jsb.s_nr_users.get();
    if users != 1 {
        writeln!(w, "Journal number of users:  {users}")?;
    }
    if jsb.s_feature_compat.get() & jf::COMPAT_CHECKSUM != 0 {
        writeln!(w, "Journal checksum type:    crc32")?;
    }
    if jsb.s_feature_incompat.get() & (jf::INCOMPAT_CSUM_V2 | jf::INCOMPAT_CSUM_V3) != 0 {
        let kind = if jsb.s_checksum_type == jf::CHECKSUM_CRC32C { "crc32c" } else { "unknown" };
        writeln!(w, "Journal checksum type:    {kind}")?;
        writeln!(w, "Journal checksum:         0x{:08x}", jsb.s_checksum.get())?;
    }
    if users > 1 || !is_null(&jsb.s_users[..16]) {
        for (i, u) in jsb.s_users.chunks(16).take(users.min(48) as usize).enumerate() {
            let label = if i == 0 { "Journal users:            " } else { "                          " };
            writeln!(w, "{label}{}", format_uuid(u.try_into().expect("16 bytes")))?;
        }
    }
    if jsb.s_errno.get() != 0 {
        writeln!(w, "Journal errno:            {}", jsb.s_errno.get() as i32)?;
    }
    Ok(())
}

/// C's `%#08x`: `0x` and at least 8 characters in all, but plain `0` for zero.
fn alt_hex8(v: u32) -> String {
    if v == 0 { "00000000".into() } else { format!("{:#08x}", v) }
}

/// The MMP block, as dumpe2fs' `print_mmp_block`.
fn list_mmp(w: &mut impl Write, m: &MmpBlock) -> std::io::Result<()> {
    writeln!(w, "MMP_block:")?;
    writeln!(w, "    mmp_magic: 0x{:x}", m.mmp_magic.get())?;
    writeln!(w, "    mmp_check_interval: {}", m.mmp_check_interval.get())?;
    writeln!(w, "    mmp_sequence: {}", alt_hex8(m.mmp_seq.get()))?;
    writeln!(w, "    mmp_update_date: {}", ctime(m.mmp_time.get() as i64))?;
    writeln!(w, "    mmp_update_time: {}", m.mmp_time.get())?;
    writeln!(w, "    mmp_node_name: {}", field_str(&m.mmp_nodename))?;
    writeln!(w, "    mmp_device_name: {}", field_str(&m.mmp_bdevname))
}

/// Where a group's metadata block lies: `(+n)` inside the group, or
/// `(bg #g + n)` in another group of a flex_bg filesystem.
fn rel_offset(geo: &Geometry, block: u64, itable: bool, first: u64, last: u64) -> String {
    if (first..=last).contains(&block) {
        if itable && block == first {
            return String::new();
        }
        return format!(" (+{})", (block - first) as u32);
    }
    if geo.features.incompat.contains(Incompat::FLEX_BG) {
        let (g, _) = geo.block_group(block);
        return format!(" (bg #{g} + {})", block.wrapping_sub(geo.group_first_block(g)) as u32);
    }
    String::new()
}

/// The free runs of a bitmap of `bits` entries, numbered from `base`,
/// each entry `ratio` blocks wide (dumpe2fs' `print_free`).
fn free_ranges(bitmap: &[u8], bits: u32, base: u64, ratio: u64) -> Ranges {
    let used = |i: u32| bitmap[i as usize / 8] & (1 << (i % 8)) != 0;
    let mut out = Vec::new();
    let mut i = 0;
    while i < bits {
        if used(i) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bits && !used(i) {
            i += 1;
        }
        out.push(((u64::from(start) + base) * ratio, (u64::from(i - 1) + base) * ratio));
    }
    out
}

/// Inclusive runs `(first, last)`.
type Ranges = Vec<(u64, u64)>;

/// The free block and inode runs of a group, as dumpe2fs numbers them.
fn group_free(geo: &Geometry, r: &GroupReport) -> (Ranges, Ranges) {
    let ratio = u64::from(geo.cluster_ratio);
    let cpg = geo.clusters_per_group;
    let base = u64::from(geo.first_data_block) / ratio + u64::from(r.group) * u64::from(cpg);
    let blocks = free_ranges(&r.block_bitmap, cpg, base, ratio);
    let ipg = geo.inodes_per_group;
    let inodes = free_ranges(&r.inode_bitmap, ipg, 1 + u64::from(r.group) * u64::from(ipg), 1);
    (blocks, inodes)
}

fn ranges_text(ranges: &[(u64, u64)], num: Numbers) -> String {
    let parts: Vec<String> = ranges.iter().map(|&(a, b)| if a == b { num.one(a) } else { num.range(a, b) }).collect();
    parts.join(", ")
}

/// The group's last block.
fn group_last(geo: &Geometry, g: u32) -> u64 {
    if g + 1 == geo.group_count { geo.blocks_count - 1 } else { geo.group_first_block(g) + u64::from(geo.blocks_per_group) - 1 }
}

/// The uninit and zeroed flags dumpe2fs shows (only with group checksums).
fn flag_names(geo: &Geometry, flags: GroupDescFlags) -> Vec<&'static str> {
    if geo.csum == CsumKind::None {
        return Vec::new();
    }
    [
        (GroupDescFlags::INODE_UNINIT, "INODE_UNINIT"),
        (GroupDescFlags::BLOCK_UNINIT, "BLOCK_UNINIT"),
        (GroupDescFlags::ITABLE_ZEROED, "ITABLE_ZEROED"),
    ]
    .into_iter()
    .filter(|(f, _)| flags.contains(*f))
    .map(|(_, n)| n)
    .collect()
}

/// One group, as dumpe2fs' `list_desc`.
fn list_group(w: &mut impl Write, geo: &Geometry, r: &GroupReport, num: Numbers) -> std::io::Result<()> {
    let g = r.group;
    let d = &r.desc;
    let (first, last) = (geo.group_first_block(g), group_last(geo, g));
    write!(w, "Group {g}: (Blocks {})", num.range(first, last))?;
    if geo.has_group_csum() {
        write!(w, " csum 0x{:04x}", d.checksum)?;
        if d.checksum != r.expected_checksum {
            write!(w, " (EXPECTED 0x{:04x})", r.expected_checksum)?;
        }
    }
    let flags = flag_names(geo, d.flags);
    if !flags.is_empty() {
        write!(w, " [{}]", flags.join(", "))?;
    }
    writeln!(w)?;
    list_group_copies(w, geo, g, num)?;
    write!(w, "  Block bitmap at {}{}", num.one(d.block_bitmap), rel_offset(geo, d.block_bitmap, false, first, last))?;
    if geo.metadata_csum() {
        write!(w, ", csum 0x{:08x}", d.block_bitmap_csum)?;
    }
    let sep = if std::env::var_os("DUMPE2FS_IGNORE_80COL").is_some() { "," } else { "\n " };
    write!(w, "{sep} Inode bitmap at {}{}", num.one(d.inode_bitmap), rel_offset(geo, d.inode_bitmap, false, first, last))?;
    if geo.metadata_csum() {
        write!(w, ", csum 0x{:08x}", d.inode_bitmap_csum)?;
    }
    let itable_end = d.inode_table + u64::from(geo.inode_table_blocks) - 1;
    writeln!(w, "\n  Inode table at {}{}", num.range(d.inode_table, itable_end), rel_offset(geo, d.inode_table, true, first, last))?;
    let units = if geo.cluster_ratio > 1 { "clusters" } else { "blocks" };
    write!(w, "  {} free {units}, {} free inodes, {} directories", d.free_blocks_count, d.free_inodes_count, d.used_dirs_count)?;
    if d.itable_unused != 0 {
        write!(w, ", {} unused inodes", d.itable_unused)?;
    }
    let (blocks, inodes) = group_free(geo, r);
    writeln!(w, "\n  Free blocks: {}", ranges_text(&blocks, num))?;
    writeln!(w, "  Free inodes: {}", ranges_text(&inodes, num))
}

/// The superblock and descriptor copies line(s) of a group.
fn list_group_copies(w: &mut impl Write, geo: &Geometry, g: u32, num: Numbers) -> std::io::Result<()> {
    let l = geo.group_layout(g);
    let mut has_super = g == 0 || l.super_blk.is_some();
    if has_super {
        let which = if g == 0 { "Primary" } else { "Backup" };
        write!(w, "  {which} superblock at {}", num.one(l.super_blk.unwrap_or(0)))?;
    }
    let old = u64::from(geo.old_desc_blocks());
    if let Some(d) = l.old_desc_blk {
        write!(w, ", Group descriptors at {}", num.range(d, (d + old).wrapping_sub(1)))?;
        let rsv = u64::from(geo.reserved_gdt_blocks);
        if rsv != 0 {
            write!(w, "\n  Reserved GDT blocks at {}", num.range(d + old, d + old + rsv - 1))?;
        }
    } else if let Some(d) = l.new_desc_blk {
        write!(w, "{} Group descriptor at {}", if has_super { "," } else { " " }, num.one(d))?;
        has_super = true;
    }
    if has_super {
        writeln!(w)?;
    }
    Ok(())
}

/// The whole report as JSON: numbers as numbers, times as epoch seconds
/// beside RFC 3339 text, ranges as `[first, last]` pairs.
fn dump_json(fs: &Filesystem, header_only: bool, w: &mut impl Write) -> DumpResult {
    let sb = fs.stored_superblock()?;
    let mut v = json!({ "superblock": super_json(&sb) });
    if sb.features().compat.contains(Compat::HAS_JOURNAL) && sb.s_journal_inum.get() != 0 {
        if let Some(jsb) = fs.journal_superblock()? {
            v["journal"] = journal_json(&jsb, sb.features().compat.contains(Compat::FAST_COMMIT));
        }
    }
    if let Some(m) = fs.mmp_block()? {
        v["mmp"] = json!({
            "magic": m.mmp_magic.get(), "check_interval": m.mmp_check_interval.get(), "sequence": m.mmp_seq.get(),
            "update_time": m.mmp_time.get(), "update_time_rfc3339": rfc3339(m.mmp_time.get() as i64),
            "node_name": field_str(&m.mmp_nodename), "device_name": field_str(&m.mmp_bdevname),
        });
    }
    if !header_only {
        let geo = fs.geometry();
        let mut groups = Vec::new();
        fs.for_each_group_report(|r| {
            groups.push(group_json(geo, &r));
            Ok::<(), Failure>(())
        })?;
        v["groups"] = Value::Array(groups);
    }
    serde_json::to_writer_pretty(&mut *w, &v).map_err(std::io::Error::from)?;
    writeln!(w)?;
    Ok(())
}

/// A time field as two keys: epoch seconds and RFC 3339.
fn time_json(obj: &mut serde_json::Map<String, Value>, key: &str, secs: u32) {
    obj.insert(key.into(), json!(secs));
    obj.insert(format!("{key}_rfc3339"), json!(rfc3339(i64::from(secs))));
}

fn super_json(sb: &Superblock) -> Value {
    let f = sb.features();
    let mut v = json!({
        "volume_name": field_str(&sb.s_volume_name), "last_mounted": field_str(&sb.s_last_mounted),
        "uuid": format_uuid(&sb.s_uuid), "magic": sb.s_magic.get(), "revision": sb.s_rev_level.get(),
        "features": feature_names(sb), "flags": sb.s_flags.get(), "default_mount_options": mntopt_names(sb.s_default_mount_opts.get()),
        "mount_options": field_str(&sb.s_mount_opts), "state": sb.s_state.get(), "clean": sb.s_state.get() & STATE_VALID != 0,
        "errors_detected": sb.s_state.get() & STATE_ERROR != 0, "errors_behavior": errors_text(sb.s_errors.get()),
        "os": os_text(sb.s_creator_os.get()), "inode_count": sb.s_inodes_count.get(), "block_count": sb.blocks_count(),
        "reserved_block_count": sb.r_blocks_count(), "overhead_clusters": sb.s_overhead_clusters.get(),
        "free_blocks": sb.free_blocks_count(), "free_inodes": sb.s_free_inodes_count.get(),
    });
    let more = [
        json!({
            "first_block": sb.s_first_data_block.get(), "block_size": 1024u64 << sb.s_log_block_size.get().min(16),
            "cluster_size": 1024u64 << sb.s_log_cluster_size.get().min(32), "desc_size": sb.s_desc_size.get(),
            "reserved_gdt_blocks": sb.s_reserved_gdt_blocks.get(), "blocks_per_group": sb.s_blocks_per_group.get(),
            "clusters_per_group": sb.s_clusters_per_group.get(), "inodes_per_group": sb.s_inodes_per_group.get(),
            "raid_stride": sb.s_raid_stride.get(), "raid_stripe_width": sb.s_raid_stripe_width.get(),
            "first_meta_bg": sb.s_first_meta_bg.get(), "log_groups_per_flex": sb.s_log_groups_per_flex,
            "mount_count": sb.s_mnt_count.get(), "max_mount_count": sb.s_max_mnt_count.get() as i16,
        }),
        json!({
            "check_interval": sb.s_checkinterval.get(), "kbytes_written": sb.s_kbytes_written.get(),
            "reserved_uid": sb.s_def_resuid.get(), "reserved_gid": sb.s_def_resgid.get(), "first_inode": sb.s_first_ino.get(),
            "inode_size": sb.s_inode_size.get(), "min_extra_isize": sb.s_min_extra_isize.get(),
            "want_extra_isize": sb.s_want_extra_isize.get(), "journal_uuid": format_uuid(&sb.s_journal_uuid),
            "journal_inode": sb.s_journal_inum.get(), "journal_device": sb.s_journal_dev.get(), "first_orphan": sb.s_last_orphan.get(),
            "default_hash": hash_name(sb.s_def_hash_version), "hash_seed": format_uuid(&sb.hash_seed_bytes()),
        }),
        json!({
            "journal_backup_type": sb.s_jnl_backup_type, "backup_block_groups": sb.s_backup_bgs.map(|b| b.get()),
            "error_count": sb.s_error_count.get(), "mmp_block": sb.s_mmp_block.get(), "mmp_update_interval": sb.s_mmp_interval.get(),
            "user_quota_inode": sb.s_usr_quota_inum.get(), "group_quota_inode": sb.s_grp_quota_inum.get(),
            "project_quota_inode": sb.s_prj_quota_inum.get(), "checksum_type": sb.s_checksum_type, "checksum": sb.s_checksum.get(),
            "checksum_seed": f.incompat.contains(Incompat::CSUM_SEED).then(|| sb.s_checksum_seed.get()),
            "orphan_file_inode": sb.s_orphan_file_inum.get(),
        }),
    ];
    let obj = v.as_object_mut().expect("an object");
    for part in more {
        if let Value::Object(m) = part {
            obj.extend(m);
        }
    }
    time_json(obj, "created", sb.s_mkfs_time.get());
    time_json(obj, "last_mount_time", sb.s_mtime.get());
    time_json(obj, "last_write_time", sb.s_wtime.get());
    time_json(obj, "last_checked", sb.s_lastcheck.get());
    for (which, t, ino, block, line, code, func) in [
        (
            "first",
            sb.s_first_error_time.get(),
            sb.s_first_error_ino.get(),
            sb.s_first_error_block.get(),
            sb.s_first_error_line.get(),
            sb.s_first_error_errcode,
            &sb.s_first_error_func,
        ),
        (
            "last",
            sb.s_last_error_time.get(),
            sb.s_last_error_ino.get(),
            sb.s_last_error_block.get(),
            sb.s_last_error_line.get(),
            sb.s_last_error_errcode,
            &sb.s_last_error_func,
        ),
    ] {
        if t == 0 {
            continue;
        }
        let mut e = serde_json::Map::new();
        time_json(&mut e, "time", t);
        e.insert("function".into(), json!(field_str(func)));
        e.insert("line".into(), json!(line));
        e.insert("inode".into(), json!(ino));
        e.insert("block".into(), json!(block));
        e.insert("errcode".into(), json!(errcode_name(code)));
        obj.insert(format!("{which}_error"), Value::Object(e));
    }
    v
}

fn journal_json(jsb: &JournalSuperblock, fast_commit: bool) -> Value {
    let fc = fast_commit_blocks(jsb, fast_commit);
    let users = jsb.s_nr_users.get();
    json!({
        "features": journal_feature_names(jsb), "block_size": jsb.s_blocksize.get(), "total_blocks": jsb.s_maxlen.get(),
        "max_transaction_length": jsb.s_maxlen.get().wrapping_sub(fc), "fast_commit_length": fc, "first_block": jsb.s_first.get(),
        "sequence": jsb.s_sequence.get(), "start": jsb.s_start.get(), "users": users,
        "user_uuids": jsb.s_users.chunks(16).take(users.min(48) as usize).map(|u| format_uuid(u.try_into().expect("16 bytes"))).collect::<Vec<_>>(),
        "checksum_type": jsb.s_checksum_type, "checksum": jsb.s_checksum.get(), "errno": jsb.s_errno.get() as i32,
    })
}

fn group_json(geo: &Geometry, r: &GroupReport) -> Value {
    let g = r.group;
    let d = &r.desc;
    let l = geo.group_layout(g);
    let old = u64::from(geo.old_desc_blocks());
    let rsv = u64::from(geo.reserved_gdt_blocks);
    let (blocks, inodes) = group_free(geo, r);
    json!({
        "group": g, "blocks": [geo.group_first_block(g), group_last(geo, g)],
        "checksum": d.checksum, "expected_checksum": r.expected_checksum, "flags": flag_names(geo, d.flags),
        "superblock": l.super_blk, "group_descriptors": l.old_desc_blk.map(|b| [b, (b + old).wrapping_sub(1)]),
        "reserved_gdt_blocks": l.old_desc_blk.filter(|_| rsv != 0).map(|b| [b + old, b + old + rsv - 1]),
        "meta_bg_descriptor": l.new_desc_blk,
        "block_bitmap": d.block_bitmap, "block_bitmap_checksum": d.block_bitmap_csum,
        "inode_bitmap": d.inode_bitmap, "inode_bitmap_checksum": d.inode_bitmap_csum,
        "inode_table": [d.inode_table, d.inode_table + u64::from(geo.inode_table_blocks) - 1],
        "free_blocks": d.free_blocks_count, "free_inodes": d.free_inodes_count, "directories": d.used_dirs_count,
        "unused_inodes": d.itable_unused, "free_block_ranges": blocks, "free_inode_ranges": inodes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctime_matches_c() {
        assert_eq!(ctime(1_700_000_000), "Tue Nov 14 22:13:20 2023");
        assert_eq!(ctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(ctime(1_796_647_516), "Mon Dec  7 12:45:16 2026");
    }

    #[test]
    fn intervals() {
        assert_eq!(interval_string(0), "<none>");
        assert_eq!(interval_string(15_552_000), "6 months");
        assert_eq!(interval_string(86_400 * 38 + 3661), "1 month, 1 week, 1 day, 1:01:01");
    }

    #[test]
    fn printf_alternate_hex() {
        assert_eq!(alt_hex8(0xff4d_4d50), "0xff4d4d50");
        assert_eq!(alt_hex8(1), "0x000001");
        assert_eq!(alt_hex8(0), "00000000");
    }

    #[test]
    fn writes_in_units() {
        assert_eq!(lifetime_writes(314), "314 kB");
        assert_eq!(lifetime_writes(8192), "8 MB");
        assert_eq!(lifetime_writes(1 << 23), "8 GB");
    }

    #[test]
    fn free_runs() {
        // Bits 0, 1 and 5 used out of 8.
        assert_eq!(free_ranges(&[0b0010_0011], 8, 1, 1), vec![(3, 5), (7, 8)]);
    }
}

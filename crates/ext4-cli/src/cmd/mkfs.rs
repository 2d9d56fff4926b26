//! `ext4 mkfs [options] DEVICE [SIZE]`: format like mke2fs, with the same
//! options, optionally populated from a host directory (`-d`).

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::PathBuf;

use ext4_fs::{BlockDevice, FileDevice, Filesystem, OpenOptions, WindowDevice};
use ext4_mkfs::{self as mkfs, FormatOptions, FsSize, FsType, Profile};

use crate::util::{CliError, CliResult, Context, fail};

/// Arguments of `ext4 mkfs`, named as mke2fs names them.
#[derive(clap::Args)]
pub struct Args {
    /// Filesystem type: ext2, ext3 or ext4.
    #[arg(short = 't', value_name = "TYPE")]
    fs_type: Option<String>,
    /// Built-in profile: `debian` (Debian's mke2fs.conf) or `upstream` (adds metadata_csum_seed, orphan_file).
    #[arg(long, default_value = "debian")]
    profile: String,
    /// Usage types (`-T`): news, largefile, small, floppy, big, huge, ...
    #[arg(short = 'T', value_name = "USAGE")]
    usage: Option<String>,
    /// Block size in bytes.
    #[arg(short = 'b')]
    block_size: Option<u32>,
    /// Inode size in bytes.
    #[arg(short = 'I')]
    inode_size: Option<u32>,
    /// Bytes per inode.
    #[arg(short = 'i')]
    inode_ratio: Option<u64>,
    /// Number of inodes.
    #[arg(short = 'N')]
    inode_count: Option<u64>,
    /// Percentage of blocks reserved for root.
    #[arg(short = 'm')]
    reserved_percent: Option<f64>,
    /// Volume label.
    #[arg(short = 'L')]
    label: Option<String>,
    /// Last-mounted directory.
    #[arg(short = 'M')]
    last_mounted: Option<String>,
    /// UUID (or `random`, `time`, `clear`).
    #[arg(short = 'U')]
    uuid: Option<String>,
    /// Feature edits, e.g. `^has_journal,inline_data` (may repeat).
    #[arg(short = 'O')]
    features: Vec<String>,
    /// Extended options, e.g. `hash_seed=UUID,lazy_itable_init=0,offset=1048576` (may repeat).
    #[arg(short = 'E')]
    extended: Vec<String>,
    /// Add a journal of the default size.
    #[arg(short = 'j')]
    journal: bool,
    /// Journal options, e.g. `size=64`, or `device=PATH` for an external
    /// journal device made with `-O journal_dev`.
    #[arg(short = 'J')]
    journal_options: Option<String>,
    /// Blocks per group.
    #[arg(short = 'g')]
    blocks_per_group: Option<u32>,
    /// Groups per flex group.
    #[arg(short = 'G')]
    flex_bg_size: Option<u64>,
    /// Behaviour on errors: continue, remount-ro, panic.
    #[arg(short = 'e')]
    errors: Option<String>,
    /// Quiet.
    #[arg(short = 'q')]
    quiet: bool,
    /// Force (accepted for compatibility; ext4 mkfs never asks).
    #[arg(short = 'F', action = clap::ArgAction::Count)]
    force: u8,
    /// Dry run: print the layout, write nothing.
    #[arg(short = 'n')]
    dry_run: bool,
    /// Copy this host directory into the new filesystem's root.
    #[arg(short = 'd', value_name = "DIR")]
    root_dir: Option<PathBuf>,
    /// The device or image file (created or extended when SIZE is given).
    device: PathBuf,
    /// Size: blocks, or bytes with K/M/G/T (or s for 512-byte sectors).
    size: Option<String>,
}

fn err(e: mkfs::MkfsError) -> CliError {
    CliError { context: "mkfs".into(), errno: Some(22), cause: Box::new(e) }
}

/// Builds the format options from the command line.
fn options(a: &Args) -> CliResult<FormatOptions> {
    let fs_type = match &a.fs_type {
        Some(t) => Some(FsType::from_name(t).ok_or_else(|| fail(format!("unknown filesystem type {t:?} (ext2, ext3 or ext4)")))?),
        None => None,
    };
    let profile = match a.profile.as_str() {
        "debian" => Profile::DEBIAN,
        "upstream" => Profile::UPSTREAM,
        p => return Err(fail(format!("unknown profile {p:?} (debian or upstream)"))),
    };
    let mut o = FormatOptions { fs_type, profile, ..FormatOptions::default() };
    o.usage_types = a.usage.clone();
    o.size = a.size.as_deref().map(mkfs::parse_size).transpose().map_err(err)?;
    o.block_size = a.block_size;
    o.inode_size = a.inode_size;
    o.inode_ratio = a.inode_ratio;
    o.inode_count = a.inode_count;
    o.reserved_percent = a.reserved_percent;
    o.label = a.label.clone();
    o.last_mounted = a.last_mounted.clone();
    if let Some(u) = &a.uuid {
        o.uuid = mkfs::parse_uuid_choice(u).map_err(err)?;
    }
    for f in &a.features {
        o.features.extend(mkfs::parse_features(f).map_err(err)?);
    }
    for e in &a.extended {
        mkfs::merge_extended(&mut o.extended, e).map_err(err)?;
    }
    o.journal = a.journal;
    o.journal_options = a.journal_options.as_deref().map(mkfs::parse_journal_options).transpose().map_err(err)?;
    o.blocks_per_group = a.blocks_per_group;
    o.flex_bg_size = a.flex_bg_size;
    o.errors = match &a.errors {
        Some(e) => Some(mkfs::ErrorsBehaviour::from_name(e).ok_or_else(|| fail(format!("unknown errors behaviour {e:?}")))?),
        None => None,
    };
    o.time = mkfs::time_from_env();
    o.device_name = Some(a.device.display().to_string());
    Ok(o)
}

/// Bytes an image file must hold for the requested size, if known.
fn wanted_len(o: &FormatOptions) -> Option<u64> {
    let offset = o.extended.offset.unwrap_or(0);
    match o.size? {
        FsSize::Bytes(b) => Some(offset + b),
        FsSize::Blocks(n) => Some(offset + n * u64::from(o.block_size.unwrap_or(1024))),
    }
}

/// Runs the command.
pub fn run(a: Args) -> CliResult {
    let _ = a.force;
    let opts = options(&a)?;
    let exists = a.device.exists();
    if a.dry_run {
        let len = match (exists, wanted_len(&opts)) {
            (_, Some(l)) => l,
            (true, None) => FileDevice::open(&a.device, true).context(|| a.device.display().to_string())?.len(),
            (false, None) => {
                return Err(fail(format!("{}: does not exist and no size was given", a.device.display())));
            }
        };
        let layout = mkfs::plan(len, &opts).map_err(err)?;
        print!("{layout}");
        return Ok(());
    }
    let dev = match wanted_len(&opts) {
        Some(len) => FileDevice::create(&a.device, len),
        None if exists => FileDevice::open(&a.device, false),
        None => {
            return Err(fail(format!("{}: does not exist; give a SIZE to create an image", a.device.display())));
        }
    }
    .context(|| format!("opening {}", a.device.display()))?;
    let pb = if a.quiet || !std::io::stderr().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        crate::progress::bytes(0, "formatting")
    };
    let mut progress = |p: mkfs::Progress| {
        pb.set_length(p.bytes_total);
        pb.set_position(p.bytes_done);
        ControlFlow::Continue(())
    };
    let report = mkfs::format(&dev, &opts, &mut progress).map_err(err)?;
    pb.finish_and_clear();
    if !a.quiet {
        print!("{}", report.layout);
    }
    if let Some(dir) = &a.root_dir {
        populate(dev, opts.extended.offset.unwrap_or(0), dir, a.quiet)?;
    }
    Ok(())
}

/// Copies `dir` into the root of the fresh filesystem (`-d`).
fn populate(dev: FileDevice, offset: u64, dir: &std::path::Path, quiet: bool) -> CliResult {
    let win = WindowDevice::new(dev, offset, None).context(|| "opening the new filesystem".into())?;
    // A fresh image: no journal traffic, no undo copies (mke2fs -d writes so too).
    let opts = OpenOptions { bulk: true, ..OpenOptions::read_write() };
    let mut fs = Filesystem::open(win, opts).context(|| "opening the new filesystem".into())?;
    let pb = if quiet { indicatif::ProgressBar::hidden() } else { crate::progress::bytes(0, "copying") };
    let mut progress = |done: u64| pb.set_position(done);
    let opts = ext4_fs::populate::CopyOptions::default();
    std::thread::scope(|scope| {
        crate::progress::size_in_background(scope, &pb, vec![dir.to_path_buf()]);
        fs.copy_dir_contents(dir, ext4_fs::ondisk::ino::ROOT, &opts, &mut progress).context(|| format!("copying {}", dir.display()))
    })?;
    pb.finish_and_clear();
    fs.close().context(|| "closing the new filesystem".into())
}

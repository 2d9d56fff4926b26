//! `ext4 mkfs [options] DEVICE [SIZE]`: format ext4 (or `-t ext2|ext3`)
//! with mke2fs' options, optionally populated from a host directory (`-d`,
//! with the image-building options of [`crate::build`]). Invoked as
//! `mke2fs` or `mkfs.ext2|3|4` it takes mke2fs' own command line and
//! defaults instead.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use ext4_fs::{BlockDevice, FileDevice, Filesystem, OpenOptions, WindowDevice};
use ext4_mkfs::{self as mkfs, FormatOptions, FsSize, FsType, Profile, UuidChoice};

use crate::build::{Build, BuildArgs, derived_ids, source_date_epoch};
use crate::device::Spec;
use crate::util::{CliError, CliResult, Context, fail};

/// Arguments of `ext4 mkfs`, named as mke2fs names them.
#[derive(clap::Args)]
pub struct Args {
    /// Filesystem type: ext2, ext3 or ext4 (default ext4; with --mke2fs,
    /// mke2fs' default: ext2, or ext3 with -j).
    #[arg(short = 't', value_name = "TYPE")]
    fs_type: Option<String>,
    /// mke2fs' defaults: without -t, the type is ext2 (ext3 with -j or -J).
    #[arg(long)]
    mke2fs: bool,
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
    /// UUID (or `random`, `time`, `clear`). With -d and SOURCE_DATE_EPOCH,
    /// an absent UUID and hash seed are derived from it (and the label).
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
    #[command(flatten)]
    build: BuildArgs,
    /// The device or image file (created or extended when SIZE is given).
    device: PathBuf,
    /// Size: blocks, or bytes with K/M/G/T (or s for 512-byte sectors).
    size: Option<String>,
}

/// A formatter error: words of the command line it cannot read are usage
/// errors (status 2), a device error keeps its errno, the rest are EINVAL.
fn err(e: mkfs::MkfsError) -> CliError {
    use mkfs::MkfsError as E;
    let errno = match &e {
        E::InvalidOption { .. } | E::UnknownExtendedOption { .. } | E::UnknownFeature { .. } => None,
        E::Device(d) => Some(d.errno()),
        E::NoSpace { .. } => Some(28),
        _ => Some(22),
    };
    CliError::new("mkfs", e, errno)
}

/// Builds the format options from the command line.
fn options(a: &Args) -> CliResult<FormatOptions> {
    let fs_type = match &a.fs_type {
        Some(t) => Some(FsType::from_name(t).ok_or_else(|| fail(format!("unknown filesystem type {t:?} (ext2, ext3 or ext4)")))?),
        None if a.mke2fs => None,
        None => Some(FsType::Ext4),
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

/// With SOURCE_DATE_EPOCH set, a UUID and hash seed not given are derived
/// from it (and the label), so that two runs give the same image.
fn reproducible_ids(o: &mut FormatOptions) -> CliResult {
    let Some(epoch) = source_date_epoch()? else {
        return Ok(());
    };
    let (uuid, seed) = derived_ids(epoch.secs, o.label.as_deref().unwrap_or("").as_bytes());
    if o.uuid == UuidChoice::Random {
        o.uuid = UuidChoice::Given(uuid);
    }
    o.extended.hash_seed.get_or_insert(seed);
    Ok(())
}

/// The filesystem type of a program named as mke2fs' links are: `Some(None)`
/// for `mke2fs` (its own default), `Some(Some(t))` for `mkfs.ext2|3|4`.
pub fn mke2fs_type(program: &str) -> Option<Option<FsType>> {
    match program {
        "mke2fs" => Some(None),
        _ => program.strip_prefix("mkfs.").and_then(FsType::from_name).map(Some),
    }
}

/// Runs as `mke2fs`/`mkfs.extN`: mke2fs' command line, plus `-d DIR`.
pub fn run_as_mke2fs(fs_type: Option<FsType>, args: &[OsString]) -> CliResult {
    let mut words = Vec::new();
    let mut root_dir = None;
    let mut it = args.iter();
    while let Some(w) = it.next() {
        let w = w.to_str().ok_or_else(|| fail(format!("{w:?}: arguments must be UTF-8")))?;
        match w.strip_prefix("-d") {
            Some("") => root_dir = Some(PathBuf::from(it.next().ok_or_else(|| fail("-d needs a directory"))?)),
            Some(dir) => root_dir = Some(PathBuf::from(dir)),
            None => words.push(w.to_string()),
        }
    }
    let parsed = mkfs::parse_mke2fs_args(&words).map_err(|e| CliError::new("mke2fs", e, None))?;
    let mut opts = parsed.options;
    if opts.fs_type.is_none() {
        opts.fs_type = fs_type;
    }
    opts.time = mkfs::time_from_env();
    opts.device_name = Some(parsed.device.clone());
    let job =
        Job { device: PathBuf::from(&parsed.device), dry_run: parsed.dry_run, quiet: parsed.quiet, root_dir, build: Build::default() };
    job.run(opts)
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
    let mut opts = options(&a)?;
    let build = a.build.parse()?;
    if a.root_dir.is_some() {
        reproducible_ids(&mut opts)?;
    } else if build.needs_pass() || build.owner.is_some() {
        return Err(fail("--owner, --all-root, --fs-config and --mtime need -d DIR"));
    }
    let job = Job { device: a.device.clone(), dry_run: a.dry_run, quiet: a.quiet, root_dir: a.root_dir.clone(), build };
    job.run(opts)
}

/// One format, from the options on.
struct Job {
    device: PathBuf,
    dry_run: bool,
    quiet: bool,
    root_dir: Option<PathBuf>,
    build: Build,
}

impl Job {
    /// Formats (or shows the layout with `-n`); a file this run created is
    /// removed again when the format fails, so a refused mkfs leaves nothing.
    fn run(self, opts: FormatOptions) -> CliResult {
        let spec = Spec::image(&self.device)?;
        let exists = std::fs::symlink_metadata(&spec.file).is_ok();
        if self.dry_run {
            return self.dry_run(&spec, exists, &opts);
        }
        let r = self.format(&spec, exists, &opts);
        if r.is_err() && !exists {
            let _ = std::fs::remove_file(&spec.file);
        }
        r
    }

    fn dry_run(&self, spec: &Spec, exists: bool, opts: &FormatOptions) -> CliResult {
        let layout = match (exists, wanted_len(opts)) {
            (_, Some(l)) if spec.is_whole_file() => mkfs::plan(l, opts),
            (true, _) => mkfs::plan_device(&crate::device::open(spec, true)?, opts),
            (false, _) => {
                return Err(fail(format!("{}: does not exist and no size was given", self.device.display())));
            }
        }
        .map_err(err)?;
        let mut out = crate::out::Out::new();
        out.text(&layout.to_string())?;
        out.finish()
    }

    fn format(&self, spec: &Spec, exists: bool, opts: &FormatOptions) -> CliResult {
        let dev = self.open(spec, exists, opts)?;
        let pb = if self.quiet || !std::io::stderr().is_terminal() {
            indicatif::ProgressBar::hidden()
        } else {
            crate::progress::bytes(0, "formatting")
        };
        let mut progress = |p: mkfs::Progress| {
            pb.set_length(p.bytes_total);
            pb.set_position(p.bytes_done);
            ControlFlow::Continue(())
        };
        let report = mkfs::format(&dev, opts, &mut progress).map_err(err)?;
        pb.finish_and_clear();
        if !self.quiet {
            let mut out = crate::out::Out::new();
            out.text(&report.layout.to_string())?;
            out.finish()?;
        }
        if let Some(dir) = &self.root_dir {
            populate(dev, opts.extended.offset.unwrap_or(0), dir, self.quiet, &self.build)?;
        }
        Ok(())
    }

    /// The device to format: an image file (created or grown to the size
    /// asked for), or the partition or window of one that `spec` names
    /// (formatted in place, as large as it is unless a size is given).
    fn open(&self, spec: &Spec, exists: bool, opts: &FormatOptions) -> CliResult<Box<dyn BlockDevice>> {
        if !spec.is_whole_file() {
            return crate::device::open(spec, false);
        }
        // The plan first: options the formatter refuses create no file.
        if let (false, Some(len)) = (exists, wanted_len(opts)) {
            mkfs::plan(len, opts).map_err(err)?;
        }
        let dev = match wanted_len(opts) {
            Some(len) => FileDevice::create(&spec.file, len),
            None if exists => FileDevice::open(&spec.file, false),
            None => {
                return Err(fail(format!("{}: does not exist; give a SIZE to create an image", self.device.display())));
            }
        }
        .context(|| format!("opening {}", self.device.display()))?;
        Ok(Box::new(dev))
    }
}

/// Copies `dir` into the root of the fresh filesystem (`-d`), then applies
/// the build's fs_config rules and time clamp.
fn populate(dev: Box<dyn BlockDevice>, offset: u64, dir: &Path, quiet: bool, build: &Build) -> CliResult {
    let win = WindowDevice::new(dev, offset, None).context(|| "opening the new filesystem".into())?;
    // A fresh image: no journal traffic, no undo copies (mke2fs -d writes so too).
    let opts = OpenOptions { bulk: true, ..OpenOptions::read_write() };
    let mut fs = Filesystem::open(win, opts).context(|| "opening the new filesystem".into())?;
    let pb = if quiet { indicatif::ProgressBar::hidden() } else { crate::progress::bytes(0, "copying") };
    let mut progress = |done: u64| pb.set_position(done);
    let opts = build.copy_options();
    std::thread::scope(|scope| {
        crate::progress::size_in_background(scope, &pb, vec![dir.to_path_buf()]);
        fs.copy_dir_contents(dir, ext4_fs::ondisk::ino::ROOT, &opts, &mut progress).context(|| format!("copying {}", dir.display()))
    })?;
    pb.finish_and_clear();
    if build.needs_pass() {
        build.apply(&mut fs, ext4_fs::ondisk::ino::ROOT)?;
    }
    fs.close().context(|| "closing the new filesystem".into())
}

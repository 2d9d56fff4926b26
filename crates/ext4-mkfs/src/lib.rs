//! The ext2/ext3/ext4 formatter, equivalent to mke2fs 1.47.0.
//!
//! Given the same parameters, [`format`] produces the filesystem mke2fs
//! 1.47.0 produces: the same geometry for every configuration, and the
//! same bytes for the default ext4 profiles when the UUID, hash seed and
//! time are fixed. [`plan`] computes the same result without touching a
//! device and returns its [`Layout`].
//!
//! * [`FormatOptions`]: mke2fs' command line as a struct (`-t`, `-b`, `-I`,
//!   `-i`, `-N`, `-m`, `-L`, `-U`, `-O`, `-E`, `-J`, `-g`, `-G`, ...), with
//!   the built-in [`Profile`]s standing for `/etc/mke2fs.conf` (Debian's and
//!   upstream's). [`parse_mke2fs_args`] takes mke2fs' whole command line;
//!   [`parse_size`], [`parse_features`], [`parse_extended`],
//!   [`parse_journal_options`] and [`parse_uuid_choice`] parse its pieces.
//! * [`plan`], [`plan_device`], [`format`], [`Layout`], [`FormatReport`], [`Progress`].
//! * [`MkfsError`]: every refused parameter has its own variant; nothing is
//!   written when parameters are refused.
//!
//! Invariants: all parameters are validated and the whole filesystem is
//! computed in memory before the first write; the first write zeroes the
//! old primary superblock and the last one writes the new primary
//! superblock, so that a failed or cancelled format leaves no valid
//! superblock. Large ranges are zeroed with
//! [`ext4_blockdev::BlockDevice::write_zeroes`] and ranges that may stay as
//! they are are not touched, so that a sparse 16 TiB image formats in well
//! under a second.
//!
//! The algorithms follow e2fsprogs 1.47.0 (misc/mke2fs.c, lib/ext2fs):
//! the geometry of `ext2fs_initialize`, the table placement of
//! `ext2fs_allocate_tables`, the block allocator's goals for the root
//! directory, lost+found, resize inode, journal and orphan file.

#![forbid(unsafe_code)]

mod args;
mod blockmap;
mod build;
mod dirs;
mod error;
mod external;
mod features;
mod image;
mod journal;
mod kbytes;
mod layout;
mod mapping;
mod model;
mod options;
mod orphan;
mod parse;
mod profile;
mod resize;
mod resolve;
mod seed;
mod shape;
mod superblock;
mod tables;
mod write;

use std::ops::ControlFlow;

use ext4_blockdev::BlockDevice;

pub use args::{Mke2fsArgs, parse_mke2fs_args};
pub use error::{MkfsError, Warning};
pub use journal::{JournalLayout, default_journal_size};
pub use layout::{GroupLayout, Layout};
pub use options::{
    ErrorsBehaviour, ExtendedOptions, FeatureEdit, FormatOptions, FsSize, FsType, JournalOptions, UuidChoice,
};
pub use orphan::default_orphan_file_blocks;
pub use parse::{
    format_uuid, merge_extended, parse_extended, parse_features, parse_journal_options, parse_size, parse_uuid,
    parse_uuid_choice,
};
pub use profile::{FsTypeStanza, Profile};
pub use seed::time_from_env;
pub use write::{Phase, Progress};

/// What a completed format did.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatReport {
    /// The filesystem that was written.
    pub layout: Layout,
    /// Whether the device was discarded first.
    pub discarded: bool,
}

/// Discards the device if asked (re-planning when the discard cannot be
/// relied on to zero), then writes the format. Returns whether it discarded.
fn discard_and_write(
    dev: &dyn BlockDevice,
    opts: &FormatOptions,
    b: &mut build::Build,
    bsd_label: bool,
    progress: &mut dyn FnMut(Progress) -> ControlFlow<()>,
) -> Result<bool, MkfsError> {
    let mut discarded = false;
    if b.params.discard {
        let p = Progress { phase: Phase::Discard, bytes_done: 0, bytes_total: 0 };
        if progress(p).is_break() {
            return Err(MkfsError::Cancelled);
        }
        discarded = dev.discard(b.params.offset, b.fs_bytes).is_ok();
        if !discarded && b.itable_zeroed && !b.params.assume_prezeroed {
            let external = b.external.clone();
            *b = build::Build::run(dev.len(), opts, false, bsd_label, external.as_ref())?;
        }
    }
    write::write(dev, b, discarded, progress)?;
    Ok(discarded)
}

/// Whether the first sector holds a BSD disklabel (`BSD_DISKMAGIC` at byte
/// 64), which mke2fs does not erase.
fn has_bsd_disklabel(dev: &dyn BlockDevice, offset: u64) -> bool {
    let mut sector = [0u8; 512];
    if dev.read_at(offset, &mut sector).is_err() {
        return false;
    }
    let magic = ext4_ondisk::get_u32(&sector, 64);
    magic == 0x8256_4557 || magic == 0x5745_5682
}

/// Computes the format of a device of `dev_len` bytes without writing
/// anything (`mke2fs -n`). Random UUIDs and seeds not fixed in `opts` are
/// drawn anew on each call.
pub fn plan(dev_len: u64, opts: &FormatOptions) -> Result<Layout, MkfsError> {
    let mut opts = opts.clone();
    let params = resolve::resolve(dev_len, &opts)?;
    if params.journal_dev {
        return external::journal_device_layout(&params);
    }
    let external = match journal_device(&opts, true)? {
        Some((_, j)) => Some(take_journal_block_size(&mut opts, j)?),
        None => None,
    };
    let b = build::Build::run(dev_len, &opts, opts.discard_zeroes_data, false, external.as_ref())?;
    Ok(Layout::of(&b))
}

/// [`plan`] for the device `dev`: with blocks no smaller than its logical
/// sector, as [`format`] makes them.
pub fn plan_device(dev: &dyn BlockDevice, opts: &FormatOptions) -> Result<Layout, MkfsError> {
    let mut opts = opts.clone();
    fit_sector_size(dev, &mut opts)?;
    plan(dev.len(), &opts)
}

/// Opens the journal device of `-J device=` (if given) and reads what the
/// new filesystem needs of it.
fn journal_device(
    opts: &FormatOptions,
    read_only: bool,
) -> Result<Option<(ext4_blockdev::FileDevice, external::ExternalJournal)>, MkfsError> {
    let Some(path) = opts.journal_options.as_ref().and_then(|j| j.device.as_deref()) else { return Ok(None) };
    let dev = ext4_blockdev::FileDevice::open(path, read_only)?;
    let j = external::read_external_journal(&dev, path, device_number(path))?;
    Ok(Some((dev, j)))
}

/// The device number of a block device (for `s_journal_dev`), 0 for anything else.
fn device_number(path: &str) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        match std::fs::metadata(path) {
            Ok(m) if m.file_type().is_block_device() => m.rdev() as u32,
            _ => 0,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        0
    }
}

/// The filesystem takes the journal device's block size when `-b` is not
/// given (mke2fs: "Using journal device's blocksize"); another `-b` is refused.
fn take_journal_block_size(
    opts: &mut FormatOptions,
    j: external::ExternalJournal,
) -> Result<external::ExternalJournal, MkfsError> {
    match opts.block_size {
        None => opts.block_size = Some(j.block_size),
        Some(b) if b != j.block_size => {
            let path = opts.journal_options.as_ref().and_then(|o| o.device.clone()).unwrap_or_default();
            let reason = format!("its block size is {}, the filesystem's {b}", j.block_size);
            return Err(MkfsError::JournalDevice { path, reason });
        }
        Some(_) => {}
    }
    Ok(j)
}

/// Resolves the parameters for `dev` with blocks no smaller than its
/// logical sector size, as mke2fs does: a block size not given is raised
/// to the sector size, a smaller one given is refused (the kernel cannot
/// mount such a filesystem).
fn fit_sector_size(dev: &dyn BlockDevice, opts: &mut FormatOptions) -> Result<resolve::Params, MkfsError> {
    let sector = dev.sector_size();
    let params = resolve::resolve(dev.len(), opts)?;
    if params.block_size >= sector {
        return Ok(params);
    }
    if opts.block_size.is_some() {
        return Err(MkfsError::BlockSmallerThanSector { block_size: params.block_size, sector_size: sector });
    }
    opts.block_size = Some(sector);
    resolve::resolve(dev.len(), opts)
}

/// Formats `dev`. `progress` is called between steps; returning
/// `ControlFlow::Break` stops the format with [`MkfsError::Cancelled`] and
/// leaves a device without a valid primary superblock.
pub fn format(
    dev: &dyn BlockDevice,
    opts: &FormatOptions,
    progress: &mut dyn FnMut(Progress) -> ControlFlow<()>,
) -> Result<FormatReport, MkfsError> {
    if dev.is_read_only() {
        return Err(MkfsError::ReadOnlyDevice);
    }
    let mut opts = opts.clone();
    let params = fit_sector_size(dev, &mut opts)?;
    if params.journal_dev {
        let layout = external::format_journal_device(dev, &params, progress)?;
        return Ok(FormatReport { layout, discarded: false });
    }
    let journal = match journal_device(&opts, false)? {
        Some((jdev, j)) => Some((jdev, take_journal_block_size(&mut opts, j)?)),
        None => None,
    };
    let offset = opts.extended.offset.unwrap_or(0);
    let bsd_label = has_bsd_disklabel(dev, offset);
    // Fix random choices once, so that a re-plan below cannot change them.
    let first =
        build::Build::run(dev.len(), &opts, opts.discard_zeroes_data, bsd_label, journal.as_ref().map(|(_, j)| j))?;
    opts.uuid = UuidChoice::Given(first.params.uuid);
    opts.extended.hash_seed = Some(first.params.hash_seed);
    opts.time = Some(first.params.time);
    let mut b = first;
    // From the first write on, no valid superblock until the last one.
    write::zap_superblock(dev, b.params.offset)?;
    let result = discard_and_write(dev, &opts, &mut b, bsd_label, progress);
    if result.is_err() {
        // Best effort: whatever failed, leave no valid primary superblock.
        let _ = write::zap_superblock(dev, b.params.offset);
    }
    let discarded = result?;
    if let Some((jdev, j)) = &journal {
        external::add_user(jdev, j, b.params.uuid)?;
    }
    Ok(FormatReport { layout: Layout::of(&b), discarded })
}

//! From [`FormatOptions`] and the device length to [`Params`]: block size,
//! feature set, counts and policies, with every check mke2fs' option parser
//! (`PRS` in misc/mke2fs.c 1.47.0) makes, in the same order.

use ext4_ondisk::features::FeatureWords;
use ext4_ondisk::{Compat, Incompat, RoCompat};

use crate::MkfsError;
use crate::error::Warning;
use crate::features::{self, has_compat, has_incompat, has_ro, set_compat, set_incompat, set_ro};
use crate::options::{FormatOptions, FsSize, UuidChoice};
use crate::profile::Profile;

/// Largest 32-bit count (`MAX_32_NUM`).
const MAX_32: u64 = 0xFFFF_FFFF;
/// Page size mke2fs rounds device sizes to and picks for `blocksize = -1`.
const PAGE_SIZE: u64 = 4096;

/// The resolved parameters of a format (mke2fs' `fs_param` and globals).
#[derive(Debug, Clone)]
pub struct Params {
    /// Block size in bytes.
    pub block_size: u32,
    /// log2(block size) - 10.
    pub log_block_size: u32,
    /// Requested block count (before the last-group trimming).
    pub blocks_count: u64,
    /// Requested reserved block count.
    pub r_blocks_count: u64,
    /// Feature words.
    pub features: FeatureWords,
    /// `s_default_mount_opts`.
    pub default_mount_opts: u32,
    /// Inode size (0: the library default of 128).
    pub inode_size: u32,
    /// Requested inode count (0: the library default).
    pub inodes_count: u32,
    /// Requested blocks per group (0: 8 * block size).
    pub blocks_per_group: u32,
    /// log2 of the flex group size (0 without flex_bg).
    pub log_groups_per_flex: u32,
    /// Group descriptor size with 64bit (0 otherwise).
    pub desc_size: u32,
    /// Reserved GDT blocks asked for by `-E resize=` (0: computed).
    pub reserved_gdt_blocks: u32,
    /// `s_backup_bgs` requested for sparse_super2.
    pub backup_bgs: [u32; 2],
    /// `s_raid_stride`.
    pub raid_stride: u32,
    /// `s_raid_stripe_width`.
    pub raid_stripe_width: u32,
    /// `s_mmp_update_interval` (0: default).
    pub mmp_update_interval: u32,
    /// `s_flags` bits asked for (`test_fs`).
    pub extra_flags: u32,
    /// Journal size: 0 none asked, -1 default, > 0 MiB.
    pub journal_size: i64,
    /// Goal block of the journal, if given.
    pub journal_location: Option<u64>,
    /// Skip zeroing inode tables.
    pub lazy_itable_init: bool,
    /// Skip zeroing the journal.
    pub lazy_journal_init: bool,
    /// The device reads as zeros: skip all zeroing and mark tables zeroed.
    pub assume_prezeroed: bool,
    /// Discard the device first.
    pub discard: bool,
    /// Root directory owner.
    pub root_owner: (u32, u32),
    /// `s_def_hash_version`.
    pub hash_alg: u8,
    /// Periodic fsck enabled in the profile.
    pub periodic_fsck: bool,
    /// `s_errors`.
    pub errors: u16,
    /// Byte offset of the filesystem on the device.
    pub offset: u64,
    /// Filesystem UUID.
    pub uuid: [u8; 16],
    /// Directory hash seed.
    pub hash_seed: [u8; 16],
    /// Timestamp for everything.
    pub time: u32,
    /// Volume label bytes (at most 16).
    pub label: Vec<u8>,
    /// Last-mounted directory bytes (at most 64).
    pub last_mounted: Vec<u8>,
    /// The MMP block's node name.
    pub mmp_nodename: String,
    /// The MMP block's device name.
    pub device_name: String,
    /// Orphan file size in blocks, if given.
    pub orphan_file_blocks: Option<u64>,
    /// Warnings collected so far.
    pub warnings: Vec<Warning>,
    /// `-O journal_dev`: an external journal device, not a filesystem.
    pub journal_dev: bool,
}

/// The size class of mke2fs (`parse_fs_type`), from the size in 1 KiB units.
fn size_type(count: u64, block_size: u64) -> &'static str {
    let meg = (1024 * 1024) / block_size;
    if count < 3 * meg {
        "floppy"
    } else if count < 512 * meg {
        "small"
    } else if count < 4 * 1024 * 1024 * meg {
        "default"
    } else if count < 16 * 1024 * 1024 * meg {
        "big"
    } else {
        "huge"
    }
}

fn check_block_size(size: u64) -> Result<u32, MkfsError> {
    if !(1024..=65536).contains(&size) || !size.is_power_of_two() {
        return Err(MkfsError::InvalidBlockSize { size });
    }
    Ok(size as u32)
}

/// The filesystem type stanza (`-t`, else ext2, or ext3 when a journal is asked).
fn ext_type(opts: &FormatOptions, journal_size: i64) -> &'static str {
    match opts.fs_type {
        Some(t) => t.name(),
        None if journal_size != 0 => "ext3",
        None => "ext2",
    }
}

/// The type list: the fs type, then the usage types (or the size class)
/// that the profile defines.
fn fs_types(profile: &Profile, ext: &str, usage: &str) -> Vec<String> {
    let mut list = vec![ext.to_string()];
    for t in usage.split(',').filter(|t| !t.is_empty()) {
        if profile.has_type(t) {
            list.push(t.to_string());
        }
    }
    list
}

/// The journal size asked by `-j`/`-J`: 0 none, -1 default, else MiB
/// (`-J device=` alone asks for no internal journal).
fn requested_journal(opts: &FormatOptions) -> i64 {
    match &opts.journal_options {
        Some(j) if j.device.is_some() && j.size_mib.is_none() => 0,
        Some(j) => j.size_mib.map_or(-1, i64::from),
        None if opts.journal => -1,
        None => 0,
    }
}

/// Converts a size argument to blocks of `1024 << log`.
fn to_blocks(size: FsSize, log: u32) -> u64 {
    match size {
        FsSize::Blocks(n) => n,
        FsSize::Bytes(b) => b >> (10 + log),
    }
}

/// Resolves the options for a device of `dev_len` bytes.
pub fn resolve(dev_len: u64, opts: &FormatOptions) -> Result<Params, MkfsError> {
    let profile = opts.profile;
    let explicit_bs = opts.block_size.map(|b| check_block_size(b.into())).transpose()?;
    let log0 = explicit_bs.map_or(0, |b| b.trailing_zeros() - 10);
    let bs0 = 1024u64 << log0;
    let offset = opts.extended.offset.unwrap_or(0);
    let mut warnings = Vec::new();

    // The block count, in units of the -b block size (1 KiB without -b).
    let (mut count, explicit_size) = match opts.size {
        Some(s) => (to_blocks(s, log0), true),
        None => {
            let mut c = dev_len / bs0;
            if PAGE_SIZE > bs0 {
                c &= !(PAGE_SIZE / bs0 - 1);
            }
            (c, false)
        }
    };
    if count == 0 {
        return Err(MkfsError::TooSmall { blocks: 0, reason: "the device size is zero" });
    }

    let journal_size = requested_journal(opts);
    let ext = ext_type(opts, journal_size);
    let usage = opts.usage_types.clone().unwrap_or_else(|| size_type(count, bs0).to_string());
    let mut types = fs_types(&profile, ext, &usage);

    let mut feat = FeatureWords::default();
    let mut default_mount_opts = 0;
    features::apply_str(
        &mut feat,
        profile.string(&types, "base_features", "sparse_super,large_file,filetype,resize_inode,dir_index"),
    )?;
    for opt in profile.string(&types, "default_mntopts", "acl,user_xattr").split(',') {
        default_mount_opts |= mount_opt_bit(opt);
    }
    for t in &types {
        if let Some(list) = profile.type_features(t) {
            features::apply_str(&mut feat, list)?;
        }
    }
    if opts.features.is_empty() {
        features::apply_str(&mut feat, profile.string(&types, "default_features", ""))?;
    }
    let default_orphan_file = has_compat(&feat, Compat::ORPHAN_FILE);
    let default_csum_seed = has_incompat(&feat, Incompat::CSUM_SEED);
    features::apply(&mut feat, &opts.features)?;
    if default_orphan_file && !has_compat(&feat, Compat::HAS_JOURNAL) {
        set_compat(&mut feat, Compat::ORPHAN_FILE, false);
    }
    if default_csum_seed && !has_ro(&feat, RoCompat::METADATA_CSUM) {
        set_incompat(&mut feat, Incompat::CSUM_SEED, false);
    }

    // The block size: -b, else the profile's, rescaling the count.
    let block_size = match explicit_bs {
        Some(b) => b,
        None => {
            let p = profile.int(&types, "blocksize", 4096);
            let b = if p == -1 { PAGE_SIZE as i64 } else { p };
            let b = check_block_size(u64::try_from(b).unwrap_or(0))?;
            count /= u64::from(b / 1024);
            b
        }
    };
    let log_block_size = block_size.trailing_zeros() - 10;
    if block_size > PAGE_SIZE as u32 {
        warnings.push(Warning::BlockSizeAbovePageSize { block_size });
    }
    // A journal device takes the profile's "journal" type from here on.
    let journal_dev = has_incompat(&feat, Incompat::JOURNAL_DEV);
    if journal_dev {
        types = vec!["journal".to_string()];
    }

    if count > MAX_32 && has_incompat(&feat, Incompat::BIT64) {
        set_compat(&mut feat, Compat::RESIZE_INODE, false);
    }
    if count > MAX_32 && !has_incompat(&feat, Incompat::BIT64) {
        return Err(MkfsError::TooLarge {
            blocks: count,
            block_size,
            reason: "more than 2^32 blocks needs the 64bit feature",
        });
    }
    if count > (1u64 << (10 + log_block_size + 3 + 32)) - 1 {
        return Err(MkfsError::TooLarge { blocks: count, block_size, reason: "more than 2^32 block groups" });
    }
    if journal_size != 0 {
        set_compat(&mut feat, Compat::HAS_JOURNAL, true);
    }
    // A journal device keeps only metadata_csum of the other features.
    if journal_dev {
        feat = FeatureWords {
            compat: Compat::empty(),
            incompat: Incompat::JOURNAL_DEV,
            ro_compat: feat.ro_compat.intersection(RoCompat::METADATA_CSUM),
        };
    }

    let reserved_ratio = match opts.reserved_percent {
        Some(p) if !(0.0..=50.0).contains(&p) => {
            return Err(MkfsError::InvalidReservedPercent { percent: p });
        }
        _ if journal_dev => 0.0,
        Some(p) => p,
        None => profile.double(&types, "reserved_ratio", 5.0),
    };
    if !(0.0..=50.0).contains(&reserved_ratio) {
        return Err(MkfsError::InvalidReservedPercent { percent: reserved_ratio });
    }
    if has_incompat(&feat, Incompat::BIT64) && !has_incompat(&feat, Incompat::EXTENTS) {
        return Err(MkfsError::FeatureRequires { feature: "64bit", requires: "extent" });
    }

    let inode_ratio = match opts.inode_ratio {
        Some(r) if !(1024..=65536 * 1024).contains(&r) => {
            return Err(MkfsError::InvalidInodeRatio { ratio: r });
        }
        Some(r) => r,
        None => u64::try_from(profile.int(&types, "inode_ratio", 8192)).unwrap_or(8192).max(block_size.into()),
    };
    let mut num_backups = u32::try_from(profile.int(&types, "num_backup_sb", 2)).unwrap_or(2);
    let mut desc_size = if has_incompat(&feat, Incompat::BIT64) { 64 } else { 0 };

    let mut lazy_itable_init = profile.bool(&types, "lazy_itable_init", true);
    let mut discard = profile.bool(&types, "discard", true);
    let mut lazy_journal_init = profile.bool(&types, "lazy_journal_init", false);

    // Extended options (the profile has none of its own).
    let e = &opts.extended;
    if let Some(d) = e.desc_size {
        if !has_incompat(&feat, Incompat::BIT64) {
            return Err(MkfsError::FeatureRequires { feature: "desc_size", requires: "64bit" });
        }
        if !(64..=1024).contains(&d) || !d.is_power_of_two() {
            return Err(MkfsError::InvalidOption {
                option: "-E desc_size",
                value: d.to_string(),
                reason: "must be a power of two from 64 to 1024",
            });
        }
        desc_size = d;
    }
    if let Some(n) = e.num_backup_sb {
        num_backups = n;
    }
    let mut reserved_gdt_blocks = 0;
    if let Some(r) = e.resize {
        reserved_gdt_blocks = resize_reserve(
            &mut feat,
            to_blocks(r, log_block_size),
            count,
            block_size,
            desc_size,
            opts.blocks_per_group,
        )?;
    }
    if let Some(v) = e.lazy_itable_init {
        lazy_itable_init = v;
    }
    if let Some(v) = e.lazy_journal_init {
        lazy_journal_init = lazy_journal_init || v;
    }
    if let Some(v) = e.discard {
        discard = v;
    }
    let raid_stride = e.stride.unwrap_or(0);
    let raid_stripe_width = e.stripe_width.unwrap_or(0);
    if raid_stride != 0 && raid_stripe_width % raid_stride != 0 {
        warnings.push(Warning::StripeWidthNotMultipleOfStride);
    }

    if !explicit_size && offset > 0 {
        count = count.saturating_sub(offset / u64::from(block_size));
        warnings.push(Warning::OffsetWithoutSize);
    }

    if has_ro(&feat, RoCompat::METADATA_CSUM) && has_ro(&feat, RoCompat::GDT_CSUM) {
        set_ro(&mut feat, RoCompat::GDT_CSUM, false);
    }
    if has_incompat(&feat, Incompat::META_BG) && has_compat(&feat, Compat::RESIZE_INODE) {
        return Err(MkfsError::FeatureConflict { a: "resize_inode", b: "meta_bg" });
    }
    if has_compat(&feat, Compat::RESIZE_INODE) && !has_ro(&feat, RoCompat::SPARSE_SUPER) {
        return Err(MkfsError::FeatureRequires { feature: "resize_inode", requires: "sparse_super" });
    }
    let blocks_per_group = check_blocks_per_group(opts.blocks_per_group, block_size)?;

    let inode_size = match opts.inode_size {
        Some(s) => s,
        None => u32::try_from(profile.int(&types, "inode_size", 0)).unwrap_or(0),
    };
    let flex = has_incompat(&feat, Incompat::FLEX_BG);
    let flex_size = match opts.flex_bg_size {
        Some(g) => Some(g),
        None if flex => Some(u64::try_from(profile.int(&types, "flex_bg_size", 16)).unwrap_or(16)),
        None => None,
    };
    let log_groups_per_flex = match flex_size {
        Some(g) if g < 1 || !g.is_power_of_two() => {
            return Err(MkfsError::InvalidFlexBgSize { size: g, reason: "must be a power of 2" });
        }
        Some(g) if g > 1 << 31 => {
            return Err(MkfsError::InvalidFlexBgSize { size: g, reason: "must be at most 2^31" });
        }
        Some(g) if !flex => {
            return Err(MkfsError::InvalidFlexBgSize { size: g, reason: "the flex_bg feature is not enabled" });
        }
        Some(g) => g.trailing_zeros(),
        None => 0,
    };
    if inode_size != 0 && (inode_size < 128 || inode_size > block_size || !inode_size.is_power_of_two()) {
        return Err(MkfsError::InvalidInodeSize { size: inode_size, block_size });
    }
    if has_incompat(&feat, Incompat::INLINE_DATA) && inode_size == 128 {
        return Err(MkfsError::InlineDataNeedsLargeInodes { inode_size });
    }
    if inode_size == 128 && profile.bool(&types, "warn_y2038_dates", true) {
        warnings.push(Warning::SmallInodesY2038);
    }

    let inodes_count = inode_count(opts.inode_count, count, block_size, inode_ratio, &feat)?;
    let isz = if inode_size == 0 { 128 } else { inode_size };
    if u64::from(inodes_count) * u64::from(isz) >= count.saturating_mul(u64::from(block_size)) {
        return Err(MkfsError::TooManyInodes {
            inodes: inodes_count.into(),
            reason: "inode_size * inodes_count is larger than the filesystem; raise the inode ratio (-i) or lower the count (-N)",
        });
    }
    let r_blocks_count = (reserved_ratio * count as f64 / 100.0) as u64;
    let mut backup_bgs = [0, 0];
    if has_compat(&feat, Compat::SPARSE_SUPER2) {
        if num_backups >= 1 {
            backup_bgs[0] = 1;
        }
        if num_backups >= 2 {
            backup_bgs[1] = !0;
        }
    }
    if has_incompat(&feat, Incompat::CSUM_SEED) && !has_ro(&feat, RoCompat::METADATA_CSUM) {
        return Err(MkfsError::FeatureRequires { feature: "metadata_csum_seed", requires: "metadata_csum" });
    }
    if has_compat(&feat, Compat::ORPHAN_FILE) && !has_compat(&feat, Compat::HAS_JOURNAL) {
        return Err(MkfsError::FeatureRequires { feature: "orphan_file", requires: "has_journal" });
    }

    let hash_alg = match profile.string(&types, "hash_alg", "half_md4") {
        "legacy" => 0,
        "tea" => 2,
        _ => 1,
    };
    let errors = match (opts.errors, profile.lookup(&types, "errors")) {
        (Some(e), _) => e.value(),
        (None, Some(name)) => crate::options::ErrorsBehaviour::from_name(name).map_or(1, |e| e.value()),
        (None, None) => 1,
    };
    let mut label = opts.label.clone().unwrap_or_default().into_bytes();
    if label.len() > 16 {
        label.truncate(16);
        warnings.push(Warning::LabelTruncated);
    }
    let mut last_mounted = opts.last_mounted.clone().unwrap_or_default().into_bytes();
    last_mounted.truncate(64);

    Ok(Params {
        block_size,
        log_block_size,
        blocks_count: count,
        r_blocks_count,
        features: feat,
        default_mount_opts,
        inode_size,
        inodes_count,
        blocks_per_group,
        log_groups_per_flex,
        desc_size,
        reserved_gdt_blocks,
        backup_bgs,
        raid_stride,
        raid_stripe_width,
        mmp_update_interval: e.mmp_update_interval.unwrap_or(0),
        extra_flags: if e.test_fs { ext4_ondisk::superblock::FLAGS_TEST_FILESYS } else { 0 },
        journal_size,
        journal_location: opts.journal_options.as_ref().and_then(|j| j.location).map(|l| to_blocks(l, log_block_size)),
        lazy_itable_init,
        lazy_journal_init,
        assume_prezeroed: e.assume_storage_prezeroed.unwrap_or(false),
        discard,
        root_owner: e.root_owner.unwrap_or((0, 0)),
        hash_alg,
        periodic_fsck: profile.bool(&types, "enable_periodic_fsck", false),
        errors,
        offset,
        uuid: match opts.uuid {
            UuidChoice::Given(u) => u,
            UuidChoice::Null => [0; 16],
            UuidChoice::Random => crate::seed::random_uuid(),
        },
        hash_seed: match e.hash_seed {
            Some(s) if s != [0; 16] => s,
            _ => crate::seed::random_uuid(),
        },
        time: opts.time.unwrap_or_else(crate::seed::now),
        label,
        last_mounted,
        mmp_nodename: opts.mmp_nodename.clone().unwrap_or_else(crate::seed::host_name),
        device_name: opts.device_name.clone().unwrap_or_default(),
        orphan_file_blocks: e.orphan_file_size.map(|s| to_blocks(s, log_block_size)),
        warnings,
        journal_dev,
    })
}

/// The bit of a default mount option name (`e2p_edit_mntopts`).
fn mount_opt_bit(name: &str) -> u32 {
    match name.trim() {
        "debug" => 0x0001,
        "bsdgroups" => 0x0002,
        "user_xattr" => 0x0004,
        "acl" => 0x0008,
        "uid16" => 0x0010,
        "journal_data" => 0x0020,
        "journal_data_ordered" => 0x0040,
        "journal_data_writeback" => 0x0060,
        "nobarrier" => 0x0100,
        "block_validity" => 0x0200,
        "discard" => 0x0400,
        "nodelalloc" => 0x0800,
        _ => 0,
    }
}

fn check_blocks_per_group(bpg: Option<u32>, block_size: u32) -> Result<u32, MkfsError> {
    let Some(g) = bpg else { return Ok(0) };
    if g % 8 != 0 {
        return Err(MkfsError::InvalidBlocksPerGroup { blocks_per_group: g, reason: "must be a multiple of 8" });
    }
    if g < 256 || g > 8 * block_size {
        return Err(MkfsError::InvalidBlocksPerGroup {
            blocks_per_group: g,
            reason: "out of range (256 to 8 * block size)",
        });
    }
    Ok(g)
}

/// The inode count asked for (`-N`, else size / ratio), capped as mke2fs does.
fn inode_count(n: Option<u64>, count: u64, block_size: u32, ratio: u64, feat: &FeatureWords) -> Result<u32, MkfsError> {
    match n {
        Some(n) if n > MAX_32 => Err(MkfsError::TooManyInodes { inodes: n, reason: "specify fewer than 2^32 inodes" }),
        Some(n) if n > 0 => Ok(n as u32),
        _ => {
            let n = count.saturating_mul(u64::from(block_size)) / ratio;
            if n <= MAX_32 {
                Ok(n as u32)
            } else if has_incompat(feat, Incompat::BIT64) {
                Ok(MAX_32 as u32)
            } else {
                Err(MkfsError::TooManyInodes { inodes: n, reason: "more than 2^32 inodes; raise the inode ratio" })
            }
        }
    }
}

/// `-E resize=`: the reserved GDT blocks needed to grow to `resize` blocks.
fn resize_reserve(
    feat: &mut FeatureWords,
    resize: u64,
    count: u64,
    block_size: u32,
    desc_size: u32,
    bpg: Option<u32>,
) -> Result<u32, MkfsError> {
    if resize == 0 {
        return Err(MkfsError::InvalidOption { option: "-E resize", value: resize.to_string(), reason: "zero" });
    }
    if resize <= count {
        return Err(MkfsError::InvalidOption {
            option: "-E resize",
            value: resize.to_string(),
            reason: "the resize maximum must be greater than the filesystem size",
        });
    }
    let bpg = u64::from(bpg.unwrap_or(block_size * 8));
    let gdpb = u64::from(block_size / if desc_size == 0 { 32 } else { desc_size });
    let desc_blocks = count.div_ceil(bpg).div_ceil(gdpb);
    let rsv = resize.div_ceil(bpg).div_ceil(gdpb) as i64 - desc_blocks as i64;
    let rsv = rsv.min(i64::from(block_size / 4));
    if rsv > 0 {
        set_compat(feat, Compat::RESIZE_INODE, true);
        Ok(rsv as u32)
    } else {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::FsType;

    fn params(size: u64, f: impl FnOnce(&mut FormatOptions)) -> Result<Params, MkfsError> {
        let mut o = FormatOptions::new(FsType::Ext4);
        o.time = Some(1);
        f(&mut o);
        resolve(size, &o)
    }

    #[test]
    fn size_classes_pick_block_size_and_ratio() {
        let p = params(64 << 20, |_| {}).unwrap();
        assert_eq!((p.block_size, p.blocks_count, p.inodes_count), (1024, 65536, 16384));
        let p = params(2 << 20, |_| {}).unwrap();
        assert_eq!((p.block_size, p.inodes_count), (1024, 256));
        let p = params(4 << 30, |_| {}).unwrap();
        assert_eq!((p.block_size, p.blocks_count, p.inodes_count), (4096, 1 << 20, 262144));
        let p = params(16 << 40, |_| {}).unwrap();
        assert_eq!(p.inodes_count, 1 << 28);
        assert!(!has_compat(&p.features, Compat::RESIZE_INODE));
    }

    #[test]
    fn device_size_is_rounded_to_pages_but_explicit_size_is_not() {
        assert_eq!(params((64 << 20) + 3072, |_| {}).unwrap().blocks_count, 65536);
        let p = params(1 << 30, |o| {
            o.size = Some(FsSize::Blocks(65539));
            o.block_size = Some(1024)
        });
        assert_eq!(p.unwrap().blocks_count, 65539);
    }

    #[test]
    fn refusals() {
        let err = |f: fn(&mut FormatOptions)| params(64 << 20, f).unwrap_err();
        assert!(matches!(err(|o| o.block_size = Some(3000)), MkfsError::InvalidBlockSize { .. }));
        assert!(matches!(err(|o| o.inode_size = Some(100)), MkfsError::InvalidInodeSize { .. }));
        assert!(matches!(err(|o| o.reserved_percent = Some(51.0)), MkfsError::InvalidReservedPercent { .. }));
        assert!(matches!(
            err(|o| o.features = crate::parse::parse_features("^extent").unwrap()),
            MkfsError::FeatureRequires { feature: "64bit", .. }
        ));
        assert!(matches!(
            err(|o| o.features = crate::parse::parse_features("meta_bg").unwrap()),
            MkfsError::FeatureConflict { .. }
        ));
        assert!(matches!(
            err(|o| o.features = crate::parse::parse_features("metadata_csum_seed,^metadata_csum").unwrap()),
            MkfsError::FeatureRequires { .. }
        ));
        assert!(matches!(
            err(|o| {
                o.features = crate::parse::parse_features("inline_data").unwrap();
                o.inode_size = Some(128)
            }),
            MkfsError::InlineDataNeedsLargeInodes { .. }
        ));
        assert!(matches!(err(|o| o.blocks_per_group = Some(100)), MkfsError::InvalidBlocksPerGroup { .. }));
        assert!(matches!(err(|o| o.flex_bg_size = Some(3)), MkfsError::InvalidFlexBgSize { .. }));
        assert!(matches!(err(|o| o.inode_count = Some(1 << 20)), MkfsError::TooManyInodes { .. }));
    }

    #[test]
    fn upstream_extras_vanish_without_journal_or_csum() {
        let p = params(64 << 20, |o| {
            o.profile = Profile::UPSTREAM;
            o.features = crate::parse::parse_features("^has_journal,^metadata_csum").unwrap();
        })
        .unwrap();
        assert!(!has_compat(&p.features, Compat::ORPHAN_FILE));
        assert!(!has_incompat(&p.features, Incompat::CSUM_SEED));
    }
}

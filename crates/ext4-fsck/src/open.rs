//! Finding a usable superblock and group descriptors, as e2fsck does
//! before its passes: the primary copy; if it is unusable or its
//! descriptors do not hold together, the first backup; if that fails too,
//! the primary again with the superblock's consistency checks relaxed.

use ext4_ondisk::checksum::crc32c;
use ext4_ondisk::features::{Compat, FeatureWords, Incompat, RoCompat};
use ext4_ondisk::group_desc::{GroupDesc, group_desc_checksum, verify_group_desc};
use ext4_ondisk::superblock::{CHECKSUM_TYPE_CRC32C, CsumKind, EXT4_MAGIC, Geometry, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, Superblock};

use crate::error::Result;
use crate::fs::{Fs, Image, Layout};
use crate::runset::RunSet;

/// Why a superblock could not be used (the `EXT2_ET_*` codes of `ext2fs_open2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenErr {
    /// No ext2 magic.
    BadMagic,
    /// The superblock checksum does not match.
    CsumInvalid,
    /// `metadata_csum` with an unknown checksum type.
    UnknownCsum,
    /// A revision this checker does not know.
    RevTooHigh,
    /// An incompat feature this checker does not know, or an external journal device.
    UnsuppFeature,
    /// Inconsistent geometry.
    Corrupt(&'static str),
    /// An invalid `s_desc_size`.
    BadDescSize,
    /// A backup whose block size differs from the one expected.
    UnexpectedBlockSize,
    /// The superblock or descriptors lie beyond the end of the device.
    ShortRead,
}

impl OpenErr {
    /// Words for the report.
    pub(crate) fn describe(self) -> String {
        match self {
            Self::BadMagic => "bad magic number in the superblock".into(),
            Self::CsumInvalid => "superblock checksum does not match".into(),
            Self::UnknownCsum => "unknown metadata checksum type".into(),
            Self::RevTooHigh => "filesystem revision too high".into(),
            Self::UnsuppFeature => "unsupported incompat feature (or an external journal device)".into(),
            Self::Corrupt(why) => format!("the superblock is corrupt: {why}"),
            Self::BadDescSize => "invalid group descriptor size".into(),
            Self::UnexpectedBlockSize => "the backup superblock has another block size".into(),
            Self::ShortRead => "the superblock or descriptors lie beyond the end of the device".into(),
        }
    }
}

/// Incompat features e2fsprogs 1.47 knows (`EXT2_LIB_FEATURE_INCOMPAT_SUPP`).
pub(crate) const INCOMPAT_SUPP: Incompat = Incompat::FILETYPE
    .union(Incompat::JOURNAL_DEV)
    .union(Incompat::META_BG)
    .union(Incompat::RECOVER)
    .union(Incompat::EXTENTS)
    .union(Incompat::FLEX_BG)
    .union(Incompat::EA_INODE)
    .union(Incompat::MMP)
    .union(Incompat::BIT64)
    .union(Incompat::INLINE_DATA)
    .union(Incompat::ENCRYPT)
    .union(Incompat::CASEFOLD)
    .union(Incompat::CSUM_SEED)
    .union(Incompat::LARGEDIR);

/// Compat features e2fsprogs 1.47 knows.
pub(crate) const COMPAT_SUPP: Compat = Compat::DIR_PREALLOC
    .union(Compat::IMAGIC_INODES)
    .union(Compat::HAS_JOURNAL)
    .union(Compat::RESIZE_INODE)
    .union(Compat::DIR_INDEX)
    .union(Compat::EXT_ATTR)
    .union(Compat::SPARSE_SUPER2)
    .union(Compat::FAST_COMMIT)
    .union(Compat::STABLE_INODES)
    .union(Compat::ORPHAN_FILE);

/// Ro-compat features e2fsprogs 1.47 knows.
pub(crate) const RO_COMPAT_SUPP: RoCompat = RoCompat::SPARSE_SUPER
    .union(RoCompat::HUGE_FILE)
    .union(RoCompat::LARGE_FILE)
    .union(RoCompat::DIR_NLINK)
    .union(RoCompat::EXTRA_ISIZE)
    .union(RoCompat::GDT_CSUM)
    .union(RoCompat::BIGALLOC)
    .union(RoCompat::QUOTA)
    .union(RoCompat::METADATA_CSUM)
    .union(RoCompat::READONLY)
    .union(RoCompat::PROJECT)
    .union(RoCompat::SHARED_BLOCKS)
    .union(RoCompat::VERITY)
    .union(RoCompat::ORPHAN_PRESENT);

/// Which superblock copy to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Location {
    /// The primary, at byte 1024.
    Primary,
    /// A backup at block `.0` of `.1` bytes.
    Backup(u64, u32),
}

/// What happened while opening, for the report.
#[derive(Debug, Clone, Default)]
pub(crate) struct OpenNotes {
    /// Why the primary superblock was not used as read.
    pub primary_failed: Option<OpenErr>,
    /// Why the primary descriptors were not used.
    pub desc_failed: Option<&'static str>,
    /// Whether the superblock checks were relaxed (`EXT2_FLAG_IGNORE_SB_ERRORS`).
    pub ignored_sb_errors: bool,
}

/// Opens the filesystem as e2fsck does; `Err` holds why nothing usable was
/// found, and the image back.
#[allow(clippy::type_complexity)]
pub(crate) fn open<'d>(img: Image<'d>, notes: &mut OpenNotes) -> Result<std::result::Result<Fs<'d>, (OpenErr, Image<'d>)>> {
    let mut ignore = false;
    loop {
        let primary = try_open(&img, Location::Primary, ignore)?;
        let (fs_result, orig_err) = match primary {
            Ok(fs) => match check_desc(&fs) {
                Ok(()) => return Ok(Ok(into_fs(img, fs, None))),
                Err(why) if fs.layout.geo.group_count <= 1 => {
                    notes.desc_failed = Some(why);
                    return Ok(Ok(into_fs(img, fs, None)));
                }
                Err(why) => {
                    notes.desc_failed = Some(why);
                    let geo = &fs.layout.geo;
                    let loc = Location::Backup(u64::from(geo.first_data_block) + u64::from(geo.blocks_per_group), geo.block_size);
                    match try_open(&img, loc, ignore)? {
                        Ok(b) => return Ok(Ok(into_fs(img, b, Some(loc)))),
                        // Going back to the original superblock.
                        Err(_) => return Ok(Ok(into_fs(img, fs, None))),
                    }
                }
            },
            Err(e @ (OpenErr::BadMagic | OpenErr::CsumInvalid | OpenErr::Corrupt(_))) => {
                notes.primary_failed.get_or_insert(e);
                let loc = probe_backup(&img)?;
                (try_open(&img, loc, ignore)?.map(|b| (b, loc)), e)
            }
            Err(e) => {
                notes.primary_failed.get_or_insert(e);
                (Err(e), e)
            }
        };
        match fs_result {
            Ok((b, loc)) => return Ok(Ok(into_fs(img, b, Some(loc)))),
            Err(_) if matches!(orig_err, OpenErr::Corrupt(_) | OpenErr::BadDescSize) && !ignore => {
                ignore = true;
                notes.ignored_sb_errors = true;
            }
            Err(_) => return Ok(Err((orig_err, img))),
        }
    }
}

/// A superblock and its descriptors, read and validated.
pub(crate) struct Candidate {
    layout: Layout,
    groups: Vec<GroupDesc>,
    desc_csum_ok: Vec<bool>,
}

fn into_fs(img: Image<'_>, c: Candidate, backup: Option<Location>) -> Fs<'_> {
    let mut img = img;
    img.set_block_size(c.layout.geo.block_size);
    Fs {
        img,
        layout: c.layout,
        groups: c.groups,
        desc_csum_ok: c.desc_csum_ok,
        backup_sb: match backup {
            Some(Location::Backup(b, _)) => Some(b),
            _ => None,
        },
    }
}

/// Where e2fsck looks for a backup superblock when the primary is unusable
/// (`get_backup_sb`): block `8 * block_size` (+1 for 1 KiB blocks) for the
/// first block size whose copy there has the magic and that block size.
fn probe_backup(img: &Image<'_>) -> Result<Location> {
    let mut bs = 1024u32;
    while bs <= 65536 {
        let blk = u64::from(bs) * 8 + u64::from(bs == 1024);
        let mut buf = vec![0u8; SUPERBLOCK_SIZE];
        if img.read_bytes(blk * u64::from(bs), &mut buf)? {
            let sb = Superblock::from_bytes(&buf).expect("1024 bytes");
            if sb.s_magic.get() == EXT4_MAGIC && sb.s_log_block_size.get() < 7 && 1024u32 << sb.s_log_block_size.get() == bs {
                return Ok(Location::Backup(blk, bs));
            }
        }
        bs *= 2;
    }
    Ok(Location::Backup(8193, 1024))
}

/// Reads and validates a superblock and its descriptors (`ext2fs_open2`).
fn try_open(img: &Image<'_>, loc: Location, ignore: bool) -> Result<std::result::Result<Candidate, OpenErr>> {
    let (offset, expect_bs) = match loc {
        Location::Primary => (SUPERBLOCK_OFFSET, None),
        Location::Backup(blk, bs) => (blk * u64::from(bs), Some(bs)),
    };
    let mut buf = vec![0u8; SUPERBLOCK_SIZE];
    if !img.read_bytes(offset, &mut buf)? {
        return Ok(Err(OpenErr::ShortRead));
    }
    let sb = Superblock::from_bytes(&buf).expect("1024 bytes");
    let geo = match validate(&sb, ignore, expect_bs) {
        Ok(g) => g,
        Err(e) => return Ok(Err(e)),
    };
    let group_block = match loc {
        Location::Primary => 0,
        Location::Backup(blk, _) => blk,
    };
    read_descs(img, sb, geo, group_block)
}

/// The checks of `ext2fs_open2` on the superblock alone, then the geometry.
fn validate(sb: &Superblock, ignore: bool, expect_bs: Option<u32>) -> std::result::Result<Geometry, OpenErr> {
    let csum = sb.has_metadata_csum();
    let mut err = None;
    if csum && sb.s_checksum_type != CHECKSUM_TYPE_CRC32C {
        err = Some(OpenErr::UnknownCsum);
    }
    if csum && sb.s_checksum.get() != sb.compute_checksum() {
        err = Some(OpenErr::CsumInvalid);
    }
    if sb.s_magic.get() != EXT4_MAGIC {
        err = Some(OpenErr::BadMagic);
    }
    if let Some(e) = err {
        return Err(e);
    }
    if sb.s_rev_level.get() > 1 {
        return Err(OpenErr::RevTooHigh);
    }
    let features = sb.features();
    if !(features.incompat - INCOMPAT_SUPP).is_empty() || features.incompat.contains(Incompat::JOURNAL_DEV) {
        return Err(OpenErr::UnsuppFeature);
    }
    let log = sb.s_log_block_size.get();
    let clog = sb.s_log_cluster_size.get();
    if log > 6 || clog > 19 || log > clog || sb.s_log_groups_per_flex > 31 {
        return Err(OpenErr::Corrupt("block, cluster or flex group size out of range"));
    }
    let bigalloc = features.ro_compat.contains(RoCompat::BIGALLOC);
    if !bigalloc && log != clog {
        return Err(OpenErr::Corrupt("cluster size differs from block size without bigalloc"));
    }
    let block_size = 1024u32 << log;
    let inode_size = if sb.s_rev_level.get() == 0 { 128 } else { u32::from(sb.s_inode_size.get()) };
    if inode_size < 128 || inode_size > block_size || !inode_size.is_power_of_two() {
        return Err(OpenErr::Corrupt("inode size"));
    }
    let bit64 = features.incompat.contains(Incompat::BIT64);
    let desc_size = if bit64 { u32::from(sb.s_desc_size.get()) } else { 32 };
    if !ignore && bit64 && (!(64..=1024).contains(&desc_size) || !desc_size.is_power_of_two()) {
        return Err(OpenErr::BadDescSize);
    }
    let ratio_bits = clog - log;
    let bpg = sb.s_blocks_per_group.get();
    let cpg = sb.s_clusters_per_group.get();
    if u64::from(bpg) != u64::from(cpg) << ratio_bits {
        return Err(OpenErr::Corrupt("blocks per group is not clusters per group times the cluster size"));
    }
    if expect_bs.is_some_and(|bs| bs != block_size) {
        return Err(OpenErr::UnexpectedBlockSize);
    }
    let ipg = sb.s_inodes_per_group.get();
    if ipg == 0 {
        return Err(OpenErr::Corrupt("no inodes per group"));
    }
    // e2fsck divides by the descriptor size here (a crash when it is 0)
    // and reads descriptors shorter than their fields.
    if desc_size < 32 {
        return Err(OpenErr::BadDescSize);
    }
    let ipb = block_size / inode_size;
    let itb = (u64::from(ipg) * u64::from(inode_size)).div_ceil(u64::from(block_size));
    let max_bpg = (65536u64 - 8) << ratio_bits;
    let blocks_count = sb.blocks_count();
    let first_data_block = sb.s_first_data_block.get();
    if bpg < 8
        || u64::from(bpg) > max_bpg
        || itb > u64::from(65536 - ipb)
        || block_size / desc_size == 0
        || u64::from(first_data_block) >= blocks_count
    {
        return Err(OpenErr::Corrupt("group geometry out of range"));
    }
    let groups = (blocks_count - u64::from(first_data_block)).div_ceil(u64::from(bpg));
    if groups >> 32 != 0 {
        return Err(OpenErr::Corrupt("more than 2^32 groups"));
    }
    if !ignore && groups * u64::from(ipg) != u64::from(sb.s_inodes_count.get()) {
        return Err(OpenErr::Corrupt("inode count is not groups times inodes per group"));
    }
    let descs_per_block = block_size / desc_size;
    let desc_blocks = groups.div_ceil(u64::from(descs_per_block));
    if !ignore && features.incompat.contains(Incompat::META_BG) && u64::from(sb.s_first_meta_bg.get()) > desc_blocks {
        return Err(OpenErr::Corrupt("first meta_bg beyond the descriptor blocks"));
    }
    Ok(lenient_geometry(sb, features, GeoParts { block_size, log, ratio_bits, inode_size, desc_size, groups: groups as u32, itb }))
}

/// Numbers [`validate`] already derived.
struct GeoParts {
    block_size: u32,
    log: u32,
    ratio_bits: u32,
    inode_size: u32,
    desc_size: u32,
    groups: u32,
    itb: u64,
}

/// A [`Geometry`] from a superblock that passed [`validate`] (which checks
/// less than `Geometry::new`: what it lets through, the passes report).
fn lenient_geometry(sb: &Superblock, features: FeatureWords, p: GeoParts) -> Geometry {
    let csum = if features.ro_compat.contains(RoCompat::METADATA_CSUM) {
        CsumKind::MetadataCsum
    } else if features.ro_compat.contains(RoCompat::GDT_CSUM) {
        CsumKind::GdtCsum
    } else {
        CsumKind::None
    };
    let csum_seed = if features.incompat.contains(Incompat::CSUM_SEED) { sb.s_checksum_seed.get() } else { crc32c(!0, &sb.s_uuid) };
    Geometry {
        block_size: p.block_size,
        block_bits: 10 + p.log,
        cluster_ratio: 1 << p.ratio_bits,
        blocks_count: sb.blocks_count(),
        first_data_block: sb.s_first_data_block.get(),
        blocks_per_group: sb.s_blocks_per_group.get(),
        clusters_per_group: sb.s_clusters_per_group.get(),
        inodes_per_group: sb.s_inodes_per_group.get(),
        inodes_count: sb.s_inodes_count.get(),
        group_count: p.groups,
        inode_size: p.inode_size,
        desc_size: p.desc_size,
        descs_per_block: p.block_size / p.desc_size,
        inode_table_blocks: p.itb.min(u64::from(u32::MAX)) as u32,
        first_ino: if sb.s_rev_level.get() == 0 { 11 } else { sb.s_first_ino.get() },
        reserved_gdt_blocks: sb.s_reserved_gdt_blocks.get().into(),
        first_meta_bg: sb.s_first_meta_bg.get(),
        groups_per_flex: if features.incompat.contains(Incompat::FLEX_BG) { 1 << sb.s_log_groups_per_flex } else { 1 },
        features,
        csum,
        csum_seed,
        uuid: sb.s_uuid,
        backup_bgs: sb.s_backup_bgs.map(|w| w.get()),
    }
}

/// Reads the group descriptors of the copy whose superblock is at
/// `group_block` (0: the primary).
fn read_descs(img: &Image<'_>, sb: Superblock, geo: Geometry, group_block: u64) -> Result<std::result::Result<Candidate, OpenErr>> {
    let bs = geo.block_size;
    let desc_blocks = u64::from(geo.group_count).div_ceil(u64::from(geo.descs_per_block));
    let layout = Layout { sb, geo: geo.clone(), desc_blocks };
    let first_data_block = u64::from(geo.first_data_block);
    let gb = if group_block == 0 { first_data_block } else { group_block };
    let zero_adjust = u64::from(group_block == 0 && bs == 1024 && first_data_block == 0);
    let first_meta_bg = if geo.meta_bg() { u64::from(geo.first_meta_bg).min(desc_blocks) } else { desc_blocks };
    let ds = geo.desc_size as usize;
    // The descriptors must fit the device before anything is sized by the
    // group count (a corrupt superblock can claim 2^32 groups).
    if desc_blocks.saturating_mul(u64::from(bs)) > img.len() {
        return Ok(Err(OpenErr::ShortRead));
    }
    let mut groups = Vec::with_capacity(geo.group_count as usize);
    let mut desc_csum_ok = Vec::with_capacity(geo.group_count as usize);
    let mut block = vec![0u8; bs as usize];
    for i in 0..desc_blocks {
        let blk = if i < first_meta_bg { gb + zero_adjust + 1 + i } else { layout.descriptor_block(gb, i) };
        if !img.read_bytes(blk.saturating_mul(u64::from(bs)), &mut block)? {
            return Ok(Err(OpenErr::ShortRead));
        }
        for j in 0..u64::from(geo.descs_per_block) {
            let g = i * u64::from(geo.descs_per_block) + j;
            if g >= u64::from(geo.group_count) {
                break;
            }
            let raw = &block[j as usize * ds..(j as usize + 1) * ds];
            desc_csum_ok.push(verify_group_desc(&geo, g as u32, raw).is_ok());
            groups.push(GroupDesc::parse(raw, ds).expect("descriptor size checked"));
        }
    }
    let mut c = Candidate { layout, groups, desc_csum_ok };
    if group_block > 1 && c.layout.geo.has_group_csum() {
        reset_uninit(&mut c);
    }
    Ok(Ok(c))
}

/// Descriptors read from a backup lose their uninit flags and unused
/// counts (the backups are older than the groups' use), as `ext2fs_open2` does.
fn reset_uninit(c: &mut Candidate) {
    use ext4_ondisk::group_desc::GroupDescFlags as F;
    let geo = &c.layout.geo;
    let ds = geo.desc_size as usize;
    for (g, gd) in c.groups.iter_mut().enumerate() {
        gd.flags.remove(F::BLOCK_UNINIT | F::INODE_UNINIT);
        gd.itable_unused = 0;
        let mut raw = vec![0u8; ds.max(64)];
        gd.write(&mut raw, ds);
        gd.checksum = group_desc_checksum(geo, g as u32, &raw);
        c.desc_csum_ok[g] = true;
    }
}

/// `ext2fs_check_desc`: every group's bitmaps and inode table inside its
/// group (the filesystem with `flex_bg`) and overlapping nothing else.
fn check_desc(c: &Candidate) -> std::result::Result<(), &'static str> {
    let l = &c.layout;
    if l.geo.desc_size & (l.geo.desc_size.wrapping_sub(1)) != 0 {
        return Err("descriptor size is not a power of two");
    }
    let mut used = RunSet::new();
    for g in 0..l.geo.group_count {
        l.super_and_bgd_runs(g, |s, n| {
            used.insert(s, n);
        });
    }
    let flex = l.geo.features.incompat.contains(Incompat::FLEX_BG);
    let itb = u64::from(l.geo.inode_table_blocks);
    for (g, gd) in c.groups.iter().enumerate() {
        let g = g as u32;
        let (first, last) =
            if flex { (l.first_data_block(), l.blocks_count() - 1) } else { (l.group_first_block(g), l.group_last_block(g)) };
        for (what, blk) in [("block bitmap", gd.block_bitmap), ("inode bitmap", gd.inode_bitmap)] {
            if blk < first || blk > last || used.contains(blk) {
                return Err(what);
            }
            used.insert(blk, 1);
        }
        let t = gd.inode_table;
        if t < first || t.saturating_add(itb - 1) > last || !used.is_clear(t, itb) {
            return Err("inode table");
        }
        used.insert(t, itb);
    }
    Ok(())
}

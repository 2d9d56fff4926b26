//! Every refused combination of parameters gives its own error, and the
//! device is left exactly as it was: all checks happen before the first
//! write.

mod common;

use std::ops::ControlFlow;

use common::*;
use ext4_blockdev::{BlockDevice, FileDevice};
use ext4_mkfs::{FormatOptions, FsSize, FsType, MkfsError, parse_features};

const M: u64 = 1 << 20;

/// A 64 MiB image holding a valid ext4 filesystem and some non-zero bytes
/// at its end, so that any write would show.
fn prepared_image() -> TempFile {
    let img = TempFile::sparse("bad-params.img", 64 * M);
    let mut o = FormatOptions::new(FsType::Ext4);
    o.time = Some(FAKE_TIME);
    run_ours(img.path(), &o).expect("first format");
    let dev = SparseDevice::open(img.path());
    dev.write_at(64 * M - 4096, &[0xA5; 4096]).expect("pattern");
    dev.write_at(0, &[0x5A; 512]).expect("pattern");
    img
}

fn features(list: &str) -> Vec<ext4_mkfs::FeatureEdit> {
    parse_features(list).expect("known features")
}

type Setup = fn(&mut FormatOptions);
type Expect = fn(&MkfsError) -> bool;

/// `(what, how to break the options, which error must come back)`.
const CASES: &[(&str, Setup, Expect)] = &[
    ("block size 3000", |o| o.block_size = Some(3000), |e| matches!(e, MkfsError::InvalidBlockSize { size: 3000 })),
    ("block size 128K", |o| o.block_size = Some(131072), |e| matches!(e, MkfsError::InvalidBlockSize { .. })),
    ("inode size 100", |o| o.inode_size = Some(100), |e| matches!(e, MkfsError::InvalidInodeSize { size: 100, .. })),
    ("inode size 384", |o| o.inode_size = Some(384), |e| matches!(e, MkfsError::InvalidInodeSize { size: 384, .. })),
    (
        "inode size above block size",
        |o| {
            o.block_size = Some(1024);
            o.inode_size = Some(2048)
        },
        |e| matches!(e, MkfsError::InvalidInodeSize { size: 2048, block_size: 1024 }),
    ),
    ("inode ratio 512", |o| o.inode_ratio = Some(512), |e| matches!(e, MkfsError::InvalidInodeRatio { ratio: 512 })),
    ("reserved 60%", |o| o.reserved_percent = Some(60.0), |e| matches!(e, MkfsError::InvalidReservedPercent { .. })),
    ("-g 100", |o| o.blocks_per_group = Some(100), |e| matches!(e, MkfsError::InvalidBlocksPerGroup { .. })),
    ("-g 1001", |o| o.blocks_per_group = Some(1001), |e| matches!(e, MkfsError::InvalidBlocksPerGroup { .. })),
    (
        "-g above 8 * block size",
        |o| {
            o.block_size = Some(1024);
            o.blocks_per_group = Some(16384)
        },
        |e| matches!(e, MkfsError::InvalidBlocksPerGroup { .. }),
    ),
    ("-G 3", |o| o.flex_bg_size = Some(3), |e| matches!(e, MkfsError::InvalidFlexBgSize { size: 3, .. })),
    (
        "-G without flex_bg",
        |o| {
            o.flex_bg_size = Some(16);
            o.features = features("^flex_bg")
        },
        |e| matches!(e, MkfsError::InvalidFlexBgSize { .. }),
    ),
    ("bigalloc", |o| o.features = features("bigalloc"), |e| matches!(e, MkfsError::UnsupportedFeature { .. })),
    ("quota", |o| o.features = features("quota"), |e| matches!(e, MkfsError::UnsupportedFeature { .. })),
    (
        "needs_recovery",
        |o| o.features = features("needs_recovery"),
        |e| matches!(e, MkfsError::UnsupportedFeature { .. }),
    ),
    (
        "metadata_csum_seed without metadata_csum",
        |o| o.features = features("metadata_csum_seed,^metadata_csum"),
        |e| matches!(e, MkfsError::FeatureRequires { feature: "metadata_csum_seed", .. }),
    ),
    (
        "64bit without extents",
        |o| o.features = features("^extent"),
        |e| matches!(e, MkfsError::FeatureRequires { feature: "64bit", requires: "extent" }),
    ),
    (
        "resize_inode with meta_bg",
        |o| o.features = features("meta_bg"),
        |e| matches!(e, MkfsError::FeatureConflict { .. }),
    ),
    (
        "resize_inode without sparse_super",
        |o| o.features = features("^sparse_super"),
        |e| matches!(e, MkfsError::FeatureRequires { feature: "resize_inode", .. }),
    ),
    (
        "inline_data with 128-byte inodes",
        |o| {
            o.features = features("inline_data");
            o.inode_size = Some(128)
        },
        |e| matches!(e, MkfsError::InlineDataNeedsLargeInodes { inode_size: 128 }),
    ),
    (
        "orphan_file without a journal",
        |o| o.features = features("orphan_file,^has_journal"),
        |e| matches!(e, MkfsError::FeatureRequires { feature: "orphan_file", .. }),
    ),
    ("too small: 50 KiB", |o| o.size = Some(FsSize::Bytes(50 << 10)), |e| matches!(e, MkfsError::TooSmall { .. })),
    (
        "too few inodes: 101 KiB",
        |o| o.size = Some(FsSize::Bytes(101 << 10)),
        |e| matches!(e, MkfsError::TooSmall { .. }),
    ),
    (
        "too large for 32-bit block numbers",
        |o| {
            o.fs_type = Some(FsType::Ext3);
            o.size = Some(FsSize::Bytes(20 << 40))
        },
        |e| matches!(e, MkfsError::TooLarge { .. }),
    ),
    ("too many inodes", |o| o.inode_count = Some(1_000_000_000), |e| matches!(e, MkfsError::TooManyInodes { .. })),
    (
        "journal below 1024 blocks",
        |o| {
            o.block_size = Some(4096);
            o.journal_options = Some(ext4_mkfs::JournalOptions { size_mib: Some(1), ..Default::default() })
        },
        |e| matches!(e, MkfsError::InvalidJournalSize { .. }),
    ),
    (
        "journal over half the filesystem",
        |o| o.journal_options = Some(ext4_mkfs::JournalOptions { size_mib: Some(60), ..Default::default() }),
        |e| matches!(e, MkfsError::InvalidJournalSize { .. }),
    ),
    (
        "size beyond the device",
        |o| o.size = Some(FsSize::Bytes(128 * M)),
        |e| matches!(e, MkfsError::DeviceTooSmall { .. }),
    ),
    (
        "offset beyond the device",
        |o| {
            o.extended.offset = Some(32 * M);
            o.size = Some(FsSize::Bytes(48 * M))
        },
        |e| matches!(e, MkfsError::DeviceTooSmall { .. }),
    ),
    (
        "desc_size without 64bit",
        |o| {
            o.features = features("^64bit");
            o.extended.desc_size = Some(128)
        },
        |e| matches!(e, MkfsError::FeatureRequires { feature: "desc_size", .. }),
    ),
    (
        "resize below the filesystem size",
        |o| o.extended.resize = Some(FsSize::Bytes(32 * M)),
        |e| matches!(e, MkfsError::InvalidOption { option: "-E resize", .. }),
    ),
    (
        "MMP interval above 300 s",
        |o| {
            o.features = features("mmp");
            o.extended.mmp_update_interval = Some(400)
        },
        |e| matches!(e, MkfsError::InvalidOption { option: "-E mmp_update_interval", .. }),
    ),
];

#[test]
fn refused_parameters_leave_the_device_unchanged() {
    let img = prepared_image();
    let before = std::fs::read(img.path()).expect("read image");
    for (what, setup, expect) in CASES {
        let mut o = FormatOptions::new(FsType::Ext4);
        o.time = Some(FAKE_TIME);
        setup(&mut o);
        let err = run_ours(img.path(), &o).map(|_| ()).expect_err(what);
        assert!(expect(&err), "{what}: unexpected error {err:?}");
        assert!(!err.to_string().is_empty());
        let after = std::fs::read(img.path()).expect("read image");
        assert!(before == after, "{what}: the device was modified");
    }
}

#[test]
fn read_only_devices_are_refused() {
    let img = prepared_image();
    let before = std::fs::read(img.path()).expect("read image");
    let dev = FileDevice::open(img.path(), true).expect("open read-only");
    let o = FormatOptions::new(FsType::Ext4);
    let err = ext4_mkfs::format(&dev, &o, &mut |_| ControlFlow::Continue(())).map(|_| ()).expect_err("read-only");
    assert!(matches!(err, MkfsError::ReadOnlyDevice));
    assert!(before == std::fs::read(img.path()).expect("read image"));
}

#[test]
fn unknown_names_are_refused_by_the_parsers() {
    assert!(matches!(parse_features("frobnicate"), Err(MkfsError::UnknownFeature { .. })));
    assert!(matches!(ext4_mkfs::parse_extended("frobnicate=1"), Err(MkfsError::UnknownExtendedOption { .. })));
    assert!(matches!(ext4_mkfs::parse_size("12Q"), Err(MkfsError::InvalidOption { .. })));
    assert!(matches!(ext4_mkfs::parse_uuid_choice("not-a-uuid"), Err(MkfsError::InvalidOption { option: "-U", .. })));
    assert!(matches!(ext4_mkfs::parse_journal_options("device=UUID=1234"), Err(MkfsError::InvalidOption { .. })));
    assert_eq!(ext4_mkfs::parse_journal_options("device=/dev/sdb").unwrap().device.as_deref(), Some("/dev/sdb"));
}

/// On a device with 4 KiB logical sectors, a smaller block size given is
/// refused before any write, and one not given is raised to the sector
/// (a 64 MiB device would otherwise get mke2fs' "small" 1 KiB blocks).
#[test]
fn blocks_are_never_smaller_than_the_logical_sector() {
    use ext4_blockdev::{MemoryDevice, SectorAligned};
    let dev = SectorAligned::new(MemoryDevice::new((64 * M) as usize), 4096, false).expect("4 KiB sectors");
    dev.write_at(0, &[0xA5; 8192]).expect("pattern");
    let mut o = FormatOptions::new(FsType::Ext4);
    o.block_size = Some(1024);
    let err = ext4_mkfs::format(&dev, &o, &mut |_| ControlFlow::Continue(())).map(|_| ()).expect_err("1 KiB blocks");
    assert!(matches!(err, MkfsError::BlockSmallerThanSector { block_size: 1024, sector_size: 4096 }), "{err:?}");
    let mut first = [0u8; 8192];
    dev.read_at(0, &mut first).expect("read");
    assert!(first.iter().all(|&b| b == 0xA5), "nothing was written");
    let report =
        ext4_mkfs::format(&dev, &FormatOptions::new(FsType::Ext4), &mut |_| ControlFlow::Continue(())).expect("format");
    assert_eq!(report.layout.block_size, 4096);
    assert_eq!(ext4_mkfs::plan_device(&dev, &FormatOptions::new(FsType::Ext4)).expect("plan").block_size, 4096);
}

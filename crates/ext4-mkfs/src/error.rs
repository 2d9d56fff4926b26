//! The errors and warnings of formatting: every rejected parameter has its
//! own variant, so that a caller (the CLI, a test) can tell them apart.

use ext4_blockdev::DeviceError;

/// Why a format was refused or failed.
///
/// Every variant except [`MkfsError::Device`] and [`MkfsError::Cancelled`]
/// is returned before anything is written to the device.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MkfsError {
    /// `-b`: not a power of two from 1024 to 65536.
    #[error("invalid block size {size}: must be a power of two from 1024 to 65536")]
    InvalidBlockSize {
        /// The size asked for.
        size: u64,
    },
    /// `-I`: not a power of two from 128 to the block size.
    #[error("invalid inode size {size} (min 128/max {block_size})")]
    InvalidInodeSize {
        /// The size asked for.
        size: u32,
        /// The block size, the largest inode size allowed.
        block_size: u32,
    },
    /// `-i`: outside 1024 ..= 64 MiB.
    #[error("invalid inode ratio {ratio} (min 1024/max 67108864)")]
    InvalidInodeRatio {
        /// The ratio asked for.
        ratio: u64,
    },
    /// `-m`: outside 0 ..= 50.
    #[error("invalid reserved blocks percent {percent}")]
    InvalidReservedPercent {
        /// The percentage asked for.
        percent: f64,
    },
    /// `-g`: not a multiple of 8, or outside 256 ..= 8 * block size.
    #[error("invalid blocks per group {blocks_per_group}: {reason}")]
    InvalidBlocksPerGroup {
        /// The count asked for.
        blocks_per_group: u32,
        /// Why it is refused.
        reason: &'static str,
    },
    /// `-G`: not a power of two, or flex_bg is off.
    #[error("invalid flex_bg size {size}: {reason}")]
    InvalidFlexBgSize {
        /// The size asked for.
        size: u64,
        /// Why it is refused.
        reason: &'static str,
    },
    /// `-O`: a name e2fsprogs does not know.
    #[error("unknown filesystem feature '{name}'")]
    UnknownFeature {
        /// The name as given.
        name: String,
    },
    /// A feature mke2fs knows but this formatter does not create.
    #[error("feature '{name}' is not supported by this formatter")]
    UnsupportedFeature {
        /// The feature's name.
        name: String,
    },
    /// A feature that needs another one which is off.
    #[error("feature '{feature}' requires '{requires}'")]
    FeatureRequires {
        /// The feature that was asked for.
        feature: &'static str,
        /// The feature it needs.
        requires: &'static str,
    },
    /// Two features that cannot be on together.
    #[error("features '{a}' and '{b}' cannot both be enabled")]
    FeatureConflict {
        /// One feature.
        a: &'static str,
        /// The other.
        b: &'static str,
    },
    /// `inline_data` with 128-byte inodes, which have no room for it.
    #[error("{inode_size} byte inodes are too small for inline data; specify a larger size")]
    InlineDataNeedsLargeInodes {
        /// The inode size.
        inode_size: u32,
    },
    /// The filesystem would be too small to hold its own metadata.
    #[error("filesystem too small ({blocks} blocks): {reason}")]
    TooSmall {
        /// Blocks available.
        blocks: u64,
        /// What does not fit.
        reason: &'static str,
    },
    /// The filesystem cannot be that large with these parameters.
    #[error("filesystem too large ({blocks} blocks of {block_size} bytes): {reason}")]
    TooLarge {
        /// Blocks asked for.
        blocks: u64,
        /// The block size.
        block_size: u32,
        /// Which limit is exceeded.
        reason: &'static str,
    },
    /// More inodes than the format allows.
    #[error("too many inodes ({inodes}): {reason}")]
    TooManyInodes {
        /// The inode count.
        inodes: u64,
        /// Which limit is exceeded.
        reason: &'static str,
    },
    /// `-J size=`: outside 1024 ..= 10240000 blocks or over half the free space.
    #[error("invalid journal size of {blocks} blocks: {reason}")]
    InvalidJournalSize {
        /// The size in blocks.
        blocks: u64,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The device is shorter than the filesystem asked for.
    #[error("device too small: the filesystem needs {need} bytes at offset {offset}, the device has {have}")]
    DeviceTooSmall {
        /// Bytes the filesystem needs.
        need: u64,
        /// Byte offset of the filesystem on the device.
        offset: u64,
        /// Length of the device.
        have: u64,
    },
    /// The block size asked for is smaller than the device's logical sector.
    #[error("block size {block_size} is smaller than the device's logical sector size {sector_size}")]
    BlockSmallerThanSector {
        /// The block size.
        block_size: u32,
        /// The device's logical sector size.
        sector_size: u32,
    },
    /// The device refuses writes.
    #[error("the device is read-only")]
    ReadOnlyDevice,
    /// A command-line style option could not be parsed.
    #[error("invalid {option} '{value}': {reason}")]
    InvalidOption {
        /// The option (`-E stride`, `-U`, a size argument...).
        option: &'static str,
        /// The text given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An extended option (`-E`) this formatter does not know.
    #[error("unknown extended option '{name}'")]
    UnknownExtendedOption {
        /// The option's name.
        name: String,
    },
    /// The space for a metadata structure ran out while laying it out.
    #[error("no room left for {what}")]
    NoSpace {
        /// What was being placed.
        what: &'static str,
    },
    /// A block map could not be encoded.
    #[error("block map: {0}")]
    Map(#[from] ext4_extent::MapError),
    /// A block map did not take the node blocks planned for it (a file
    /// too fragmented for the depth-1 trees this formatter plans).
    #[error("block map layout: {reason}")]
    MapPlan {
        /// What went differently.
        reason: &'static str,
    },
    /// Reading or writing the device failed.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The progress callback asked to stop; the device holds no valid
    /// superblock.
    #[error("formatting was cancelled")]
    Cancelled,
    /// The journal device of `-J device=` cannot be used.
    #[error("journal device {path}: {reason}")]
    JournalDevice {
        /// The device as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Something mke2fs would print but that does not stop the format.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// The filesystem is too small for a journal: `has_journal` (and
    /// `orphan_file`) were turned off, as mke2fs does.
    NoRoomForJournal,
    /// The label was cut to 16 bytes.
    LabelTruncated,
    /// The device is larger than the filesystem; these blocks stay unused.
    BlocksUnused {
        /// Blocks past the end of the filesystem.
        blocks: u64,
    },
    /// 128-byte inodes cannot store dates after 2038.
    SmallInodesY2038,
    /// Blocks larger than 4 KiB cannot be mounted on most systems.
    BlockSizeAbovePageSize {
        /// The block size.
        block_size: u32,
    },
    /// The RAID stripe width is not a multiple of the stride.
    StripeWidthNotMultipleOfStride,
    /// An offset without an explicit size shrinks the filesystem by the offset.
    OffsetWithoutSize,
    /// The last, too small block group was dropped.
    LastGroupDropped {
        /// Blocks dropped from the end.
        blocks: u64,
    },
}

impl core::fmt::Display for Warning {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoRoomForJournal => f.write_str("filesystem too small for a journal"),
            Self::LabelTruncated => f.write_str("label too long; truncated to 16 bytes"),
            Self::BlocksUnused { blocks } => write!(f, "{blocks} blocks unused"),
            Self::SmallInodesY2038 => f.write_str("128-byte inodes cannot handle dates beyond 2038 and are deprecated"),
            Self::BlockSizeAbovePageSize { block_size } => {
                write!(f, "blocksize {block_size} not usable on most systems")
            }
            Self::StripeWidthNotMultipleOfStride => f.write_str("RAID stripe-width not an even multiple of stride"),
            Self::OffsetWithoutSize => f.write_str("offset specified without an explicit file system size"),
            Self::LastGroupDropped { blocks } => {
                write!(f, "last block group too small: {blocks} blocks dropped")
            }
        }
    }
}

//! [`FormatOptions`]: what the caller asks for, field for field as mke2fs'
//! command line, before the profile fills in the defaults.

use crate::profile::Profile;

/// `-t`: the filesystem type, which selects a `[fs_types]` stanza.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FsType {
    /// ext2: no journal.
    Ext2,
    /// ext3: `has_journal`.
    Ext3,
    /// ext4: the profile's ext4 feature list.
    Ext4,
}

impl FsType {
    /// The stanza name (`ext2`, `ext3`, `ext4`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Ext2 => "ext2",
            Self::Ext3 => "ext3",
            Self::Ext4 => "ext4",
        }
    }

    /// Parses `ext2`, `ext3` or `ext4`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ext2" => Some(Self::Ext2),
            "ext3" => Some(Self::Ext3),
            "ext4" => Some(Self::Ext4),
            _ => None,
        }
    }
}

/// The filesystem size argument of mke2fs (`mke2fs DEVICE [SIZE]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsSize {
    /// A plain number: blocks of the `-b` block size, or of 1 KiB when no
    /// block size is given (mke2fs then rescales it to the profile's block size).
    Blocks(u64),
    /// A number with a `K`, `M`, `G`, `T` or `s` (512-byte sector) suffix.
    Bytes(u64),
}

/// One edit of the feature set (`-O` list item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureEdit {
    /// `feature` or `+feature`.
    Set(String),
    /// `^feature` or `-feature`.
    Clear(String),
    /// `none` or `clear`: every feature off.
    ClearAll,
}

/// `-J`: journal options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JournalOptions {
    /// `-J size=MiB`: the journal size in MiB (mke2fs' own default when `None`).
    pub size_mib: Option<u32>,
    /// `-J location=`: the journal's goal block (blocks of the final block size).
    pub location: Option<FsSize>,
    /// `-J device=PATH`: the journal is this external journal device (made
    /// with `-O journal_dev`); no internal journal is made.
    pub device: Option<String>,
}

/// `-e`: what the kernel does on errors (`s_errors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorsBehaviour {
    /// `continue`
    Continue,
    /// `remount-ro`
    RemountRo,
    /// `panic`
    Panic,
}

impl ErrorsBehaviour {
    /// The `s_errors` value.
    pub fn value(self) -> u16 {
        match self {
            Self::Continue => 1,
            Self::RemountRo => 2,
            Self::Panic => 3,
        }
    }

    /// Parses `continue`, `remount-ro` or `panic`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "continue" => Some(Self::Continue),
            "remount-ro" => Some(Self::RemountRo),
            "panic" => Some(Self::Panic),
            _ => None,
        }
    }
}

/// `-U`: how the filesystem UUID is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UuidChoice {
    /// A random UUID (mke2fs' default, and `-U random`/`-U time`).
    #[default]
    Random,
    /// `-U null` / `-U clear`: all zeros.
    Null,
    /// A given UUID.
    Given([u8; 16]),
}

/// `-E`: extended options. `None` means "the profile's or mke2fs' default".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExtendedOptions {
    /// `hash_seed=UUID`: the directory hash seed (random when absent).
    pub hash_seed: Option<[u8; 16]>,
    /// `lazy_itable_init=0|1`: leave inode tables unzeroed (default 1).
    pub lazy_itable_init: Option<bool>,
    /// `lazy_journal_init=0|1`: leave the journal unzeroed (default 0).
    pub lazy_journal_init: Option<bool>,
    /// `assume_storage_prezeroed=0|1`: the device reads as zeros; skip all zeroing.
    pub assume_storage_prezeroed: Option<bool>,
    /// `root_owner=UID:GID`: owner of the root directory.
    pub root_owner: Option<(u32, u32)>,
    /// `offset=BYTES`: where the filesystem starts on the device.
    pub offset: Option<u64>,
    /// `discard` / `nodiscard`: discard the device before formatting (default on).
    pub discard: Option<bool>,
    /// `num_backup_sb=0|1|2`: backup superblocks with `sparse_super2`.
    pub num_backup_sb: Option<u32>,
    /// `stride=BLOCKS`: RAID stride (`s_raid_stride`).
    pub stride: Option<u32>,
    /// `stripe_width=BLOCKS`: RAID stripe width (`s_raid_stripe_width`).
    pub stripe_width: Option<u32>,
    /// `resize=SIZE`: the largest size online resize must reach.
    pub resize: Option<FsSize>,
    /// `mmp_update_interval=SECONDS`.
    pub mmp_update_interval: Option<u32>,
    /// `orphan_file_size=SIZE`.
    pub orphan_file_size: Option<FsSize>,
    /// `test_fs`: set `EXT2_FLAGS_TEST_FILESYS`.
    pub test_fs: bool,
    /// `desc_size=BYTES` (64bit only).
    pub desc_size: Option<u32>,
}

/// Everything a format is asked to do, as mke2fs' command line says it.
///
/// Start from [`FormatOptions::new`] (or `default()`, which is mke2fs with no
/// options: ext2) and set fields; each field documents the mke2fs flag it
/// stands for. Values left at `None` come from the [`Profile`].
#[derive(Debug, Clone, PartialEq)]
pub struct FormatOptions {
    /// `-t`: filesystem type; `None` is mke2fs' default (ext2, or ext3 when
    /// a journal is asked for).
    pub fs_type: Option<FsType>,
    /// `-T`: usage types (`news`, `largefile`, ...); by default the size class.
    pub usage_types: Option<String>,
    /// The built-in profile standing for `/etc/mke2fs.conf`.
    pub profile: Profile,
    /// The filesystem size; the whole device (after the offset) when `None`.
    pub size: Option<FsSize>,
    /// `-b`: block size in bytes.
    pub block_size: Option<u32>,
    /// `-I`: inode size in bytes.
    pub inode_size: Option<u32>,
    /// `-i`: bytes per inode.
    pub inode_ratio: Option<u64>,
    /// `-N`: number of inodes wanted.
    pub inode_count: Option<u64>,
    /// `-m`: percentage of blocks reserved for the superuser (default 5).
    pub reserved_percent: Option<f64>,
    /// `-L`: volume label (at most 16 bytes are kept).
    pub label: Option<String>,
    /// `-M`: the "last mounted on" directory.
    pub last_mounted: Option<String>,
    /// `-U`: filesystem UUID.
    pub uuid: UuidChoice,
    /// `-O`: feature edits, applied after the profile's lists, in order.
    pub features: Vec<FeatureEdit>,
    /// `-g`: blocks per group.
    pub blocks_per_group: Option<u32>,
    /// `-G`: groups per flex group.
    pub flex_bg_size: Option<u64>,
    /// `-j`: add a journal of the default size.
    pub journal: bool,
    /// `-J`: journal options (implies `-j`).
    pub journal_options: Option<JournalOptions>,
    /// `-e`: errors behaviour.
    pub errors: Option<ErrorsBehaviour>,
    /// `-E`: extended options.
    pub extended: ExtendedOptions,
    /// `E2FSPROGS_FAKE_TIME`: the time written everywhere (seconds since
    /// the epoch); the current time when `None`. See [`crate::time_from_env`].
    pub time: Option<u32>,
    /// Whether a successful [`ext4_blockdev::BlockDevice::discard`] leaves
    /// zeros (true for punched holes in files). Only then are inode tables
    /// marked zeroed after a discard, as mke2fs does.
    pub discard_zeroes_data: bool,
    /// The device name stored in the MMP block (`mmp_bdevname`).
    pub device_name: Option<String>,
    /// The node name stored in the MMP block; the host name when `None`.
    pub mmp_nodename: Option<String>,
}

impl Default for FormatOptions {
    fn default() -> Self {
        Self {
            fs_type: None,
            usage_types: None,
            profile: Profile::DEBIAN,
            size: None,
            block_size: None,
            inode_size: None,
            inode_ratio: None,
            inode_count: None,
            reserved_percent: None,
            label: None,
            last_mounted: None,
            uuid: UuidChoice::Random,
            features: Vec::new(),
            blocks_per_group: None,
            flex_bg_size: None,
            journal: false,
            journal_options: None,
            errors: None,
            extended: ExtendedOptions::default(),
            time: None,
            discard_zeroes_data: false,
            device_name: None,
            mmp_nodename: None,
        }
    }
}

impl FormatOptions {
    /// Options for `mke2fs -t TYPE` with the Debian profile.
    pub fn new(fs_type: FsType) -> Self {
        Self { fs_type: Some(fs_type), ..Self::default() }
    }

    /// Selects the built-in profile.
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// Sets the filesystem size in bytes.
    pub fn size_bytes(mut self, bytes: u64) -> Self {
        self.size = Some(FsSize::Bytes(bytes));
        self
    }

    /// `-b`.
    pub fn block_size(mut self, size: u32) -> Self {
        self.block_size = Some(size);
        self
    }

    /// `-I`.
    pub fn inode_size(mut self, size: u32) -> Self {
        self.inode_size = Some(size);
        self
    }

    /// `-O`: appends the edits of a feature list such as `"^has_journal,64bit"`.
    pub fn features(mut self, list: &str) -> Result<Self, crate::MkfsError> {
        self.features.extend(crate::parse::parse_features(list)?);
        Ok(self)
    }

    /// `-U`.
    pub fn uuid(mut self, uuid: [u8; 16]) -> Self {
        self.uuid = UuidChoice::Given(uuid);
        self
    }

    /// `-E hash_seed=`.
    pub fn hash_seed(mut self, seed: [u8; 16]) -> Self {
        self.extended.hash_seed = Some(seed);
        self
    }

    /// The time written in every timestamp.
    pub fn time(mut self, secs: u32) -> Self {
        self.time = Some(secs);
        self
    }

    /// `-E` options given as text, merged over those already set.
    pub fn extended(mut self, text: &str) -> Result<Self, crate::MkfsError> {
        crate::parse::merge_extended(&mut self.extended, text)?;
        Ok(self)
    }
}

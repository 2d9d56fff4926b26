//! The superblock (`struct ext4_super_block`, 1024 bytes at byte 1024) and
//! [`Geometry`], the validated numbers derived from it.

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use crate::checksum::crc32c;
use crate::features::{Compat, FeatureWords, Incompat, RoCompat};
use crate::le::{U16, U32, U64};
use crate::{FormatError, Structure};

/// Byte offset of the primary superblock on the device.
pub const SUPERBLOCK_OFFSET: u64 = 1024;
/// Size of the superblock structure.
pub const SUPERBLOCK_SIZE: usize = 1024;
/// `s_magic`.
pub const EXT4_MAGIC: u16 = 0xEF53;
/// `s_checksum_type` for crc32c, the only defined type.
pub const CHECKSUM_TYPE_CRC32C: u8 = 1;

/// `s_state` bit: cleanly unmounted.
pub const STATE_VALID: u16 = 0x0001;
/// `s_state` bit: errors detected.
pub const STATE_ERROR: u16 = 0x0002;
/// `s_state` bit: orphans being recovered.
pub const STATE_ORPHAN: u16 = 0x0004;

/// `s_flags` bit: signed directory hash in use.
pub const FLAGS_SIGNED_HASH: u32 = 0x0001;
/// `s_flags` bit: unsigned directory hash in use.
pub const FLAGS_UNSIGNED_HASH: u32 = 0x0002;
/// `s_flags` bit: development code, test only.
pub const FLAGS_TEST_FILESYS: u32 = 0x0004;

/// `s_errors`: what to do on errors.
pub mod errors_behaviour {
    /// Continue.
    pub const CONTINUE: u16 = 1;
    /// Remount read-only.
    pub const RO: u16 = 2;
    /// Panic.
    pub const PANIC: u16 = 3;
}

/// `s_creator_os` values.
pub mod creator_os {
    /// Linux.
    pub const LINUX: u32 = 0;
    /// Hurd.
    pub const HURD: u32 = 1;
}

/// The raw superblock, field for field as `struct ext4_super_block`.
#[derive(Clone, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct Superblock {
    /// Total inode count.
    pub s_inodes_count: U32,
    /// Total block count, low 32 bits.
    pub s_blocks_count_lo: U32,
    /// Blocks reserved for the superuser, low 32 bits.
    pub s_r_blocks_count_lo: U32,
    /// Free block count, low 32 bits.
    pub s_free_blocks_count_lo: U32,
    /// Free inode count.
    pub s_free_inodes_count: U32,
    /// First data block (1 for 1 KiB blocks, else 0).
    pub s_first_data_block: U32,
    /// Block size is `1024 << s_log_block_size`.
    pub s_log_block_size: U32,
    /// Cluster size is `1024 << s_log_cluster_size` (bigalloc).
    pub s_log_cluster_size: U32,
    /// Blocks per group.
    pub s_blocks_per_group: U32,
    /// Clusters per group.
    pub s_clusters_per_group: U32,
    /// Inodes per group.
    pub s_inodes_per_group: U32,
    /// Mount time.
    pub s_mtime: U32,
    /// Write time.
    pub s_wtime: U32,
    /// Mounts since the last fsck.
    pub s_mnt_count: U16,
    /// Mounts allowed before a fsck (-1: no limit).
    pub s_max_mnt_count: U16,
    /// Magic, 0xEF53.
    pub s_magic: U16,
    /// State (`STATE_*`).
    pub s_state: U16,
    /// Behaviour on errors.
    pub s_errors: U16,
    /// Minor revision level.
    pub s_minor_rev_level: U16,
    /// Time of the last check.
    pub s_lastcheck: U32,
    /// Maximum time between checks.
    pub s_checkinterval: U32,
    /// Creator OS.
    pub s_creator_os: U32,
    /// Revision level (0: good old, 1: dynamic).
    pub s_rev_level: U32,
    /// Default uid for reserved blocks.
    pub s_def_resuid: U16,
    /// Default gid for reserved blocks.
    pub s_def_resgid: U16,
    /// First non-reserved inode.
    pub s_first_ino: U32,
    /// Inode size in bytes.
    pub s_inode_size: U16,
    /// Block group holding this superblock (for backups).
    pub s_block_group_nr: U16,
    /// Compatible features.
    pub s_feature_compat: U32,
    /// Incompatible features.
    pub s_feature_incompat: U32,
    /// Read-only compatible features.
    pub s_feature_ro_compat: U32,
    /// Volume UUID.
    pub s_uuid: [u8; 16],
    /// Volume label.
    pub s_volume_name: [u8; 16],
    /// Directory where last mounted.
    pub s_last_mounted: [u8; 64],
    /// Compression algorithms (unused).
    pub s_algorithm_usage_bitmap: U32,
    /// Blocks to preallocate for files.
    pub s_prealloc_blocks: u8,
    /// Blocks to preallocate for directories.
    pub s_prealloc_dir_blocks: u8,
    /// Reserved GDT blocks for online growth.
    pub s_reserved_gdt_blocks: U16,
    /// UUID of the journal superblock.
    pub s_journal_uuid: [u8; 16],
    /// Journal inode number.
    pub s_journal_inum: U32,
    /// Journal device number (external journal).
    pub s_journal_dev: U32,
    /// Head of the orphan inode list.
    pub s_last_orphan: U32,
    /// HTree hash seed.
    pub s_hash_seed: [U32; 4],
    /// Default hash version for directories.
    pub s_def_hash_version: u8,
    /// How `s_jnl_blocks` backs up the journal inode (1: `i_block` copy).
    pub s_jnl_backup_type: u8,
    /// Group descriptor size (64bit).
    pub s_desc_size: U16,
    /// Default mount options.
    pub s_default_mount_opts: U32,
    /// First meta block group.
    pub s_first_meta_bg: U32,
    /// Filesystem creation time.
    pub s_mkfs_time: U32,
    /// Backup of the journal inode's `i_block`, then `i_size_high` and `i_size`.
    pub s_jnl_blocks: [U32; 17],
    /// Block count, high 32 bits.
    pub s_blocks_count_hi: U32,
    /// Reserved block count, high 32 bits.
    pub s_r_blocks_count_hi: U32,
    /// Free block count, high 32 bits.
    pub s_free_blocks_count_hi: U32,
    /// All inodes have at least this many extra bytes.
    pub s_min_extra_isize: U16,
    /// New inodes should reserve this many extra bytes.
    pub s_want_extra_isize: U16,
    /// Miscellaneous flags (`FLAGS_*`).
    pub s_flags: U32,
    /// RAID stride.
    pub s_raid_stride: U16,
    /// MMP update interval in seconds.
    pub s_mmp_interval: U16,
    /// MMP block number.
    pub s_mmp_block: U64,
    /// RAID stripe width.
    pub s_raid_stripe_width: U32,
    /// Flex group size is `1 << s_log_groups_per_flex`.
    pub s_log_groups_per_flex: u8,
    /// Metadata checksum algorithm (1: crc32c).
    pub s_checksum_type: u8,
    /// Encryption level.
    pub s_encryption_level: u8,
    /// Padding.
    pub s_reserved_pad: u8,
    /// KiB written over the filesystem's lifetime.
    pub s_kbytes_written: U64,
    /// Snapshot inode.
    pub s_snapshot_inum: U32,
    /// Snapshot id.
    pub s_snapshot_id: U32,
    /// Blocks reserved for the snapshot.
    pub s_snapshot_r_blocks_count: U64,
    /// Head of the snapshot list.
    pub s_snapshot_list: U32,
    /// Number of errors seen.
    pub s_error_count: U32,
    /// First error time.
    pub s_first_error_time: U32,
    /// First error inode.
    pub s_first_error_ino: U32,
    /// First error block.
    pub s_first_error_block: U64,
    /// First error function.
    pub s_first_error_func: [u8; 32],
    /// First error line.
    pub s_first_error_line: U32,
    /// Last error time.
    pub s_last_error_time: U32,
    /// Last error inode.
    pub s_last_error_ino: U32,
    /// Last error line.
    pub s_last_error_line: U32,
    /// Last error block.
    pub s_last_error_block: U64,
    /// Last error function.
    pub s_last_error_func: [u8; 32],
    /// Mount options (C string).
    pub s_mount_opts: [u8; 64],
    /// User quota inode.
    pub s_usr_quota_inum: U32,
    /// Group quota inode.
    pub s_grp_quota_inum: U32,
    /// Overhead clusters.
    pub s_overhead_clusters: U32,
    /// Groups with superblock backups (sparse_super2).
    pub s_backup_bgs: [U32; 2],
    /// Encryption algorithms.
    pub s_encrypt_algos: [u8; 4],
    /// Salt for string2key.
    pub s_encrypt_pw_salt: [u8; 16],
    /// lost+found inode.
    pub s_lpf_ino: U32,
    /// Project quota inode.
    pub s_prj_quota_inum: U32,
    /// crc32c(uuid) if `metadata_csum_seed`.
    pub s_checksum_seed: U32,
    /// High byte of `s_wtime`.
    pub s_wtime_hi: u8,
    /// High byte of `s_mtime`.
    pub s_mtime_hi: u8,
    /// High byte of `s_mkfs_time`.
    pub s_mkfs_time_hi: u8,
    /// High byte of `s_lastcheck`.
    pub s_lastcheck_hi: u8,
    /// High byte of `s_first_error_time`.
    pub s_first_error_time_hi: u8,
    /// High byte of `s_last_error_time`.
    pub s_last_error_time_hi: u8,
    /// First error code.
    pub s_first_error_errcode: u8,
    /// Last error code.
    pub s_last_error_errcode: u8,
    /// Filename charset encoding (casefold).
    pub s_encoding: U16,
    /// Filename charset encoding flags.
    pub s_encoding_flags: U16,
    /// Orphan file inode.
    pub s_orphan_file_inum: U32,
    /// Padding.
    pub s_reserved: [U32; 94],
    /// crc32c of the superblock up to this field.
    pub s_checksum: U32,
}

const _: () = assert!(size_of::<Superblock>() == SUPERBLOCK_SIZE);
const _: () = assert!(core::mem::offset_of!(Superblock, s_checksum_seed) == 0x270);
const _: () = assert!(core::mem::offset_of!(Superblock, s_orphan_file_inum) == 0x280);
const _: () = assert!(core::mem::offset_of!(Superblock, s_jnl_blocks) == 0x10C);

/// Byte offset of `s_checksum` within the superblock.
pub const SB_CHECKSUM_OFFSET: usize = core::mem::offset_of!(Superblock, s_checksum);

/// The error information the kernel keeps across a journal replay
/// (`EXT4_S_ERR_START..EXT4_S_ERR_END`: `s_error_count` up to, not
/// including, `s_mount_opts`).
pub const ERROR_INFO: core::ops::Range<usize> =
    core::mem::offset_of!(Superblock, s_error_count)..core::mem::offset_of!(Superblock, s_mount_opts);

/// `s_first_error_errcode` / `s_last_error_errcode` values (`EXT4_ERR_*`):
/// errno numbers are architecture specific, these are not.
pub mod errcode {
    /// Anything else.
    pub const UNKNOWN: u8 = 1;
    /// `EIO`.
    pub const EIO: u8 = 2;
    /// `EFSBADCRC` (a checksum mismatch).
    pub const EFSBADCRC: u8 = 4;
    /// `EFSCORRUPTED`.
    pub const EFSCORRUPTED: u8 = 5;
    /// `EBUSY`.
    pub const EBUSY: u8 = 13;
}

/// One error to record in the superblock, as the kernel's
/// `save_error_info` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorRecord<'a> {
    /// When (seconds since the epoch).
    pub time: i64,
    /// Inode concerned (0: none).
    pub ino: u32,
    /// Block concerned (0: none).
    pub block: u64,
    /// The function that found it (at most 32 bytes are kept).
    pub func: &'a str,
    /// Source line (0: none).
    pub line: u32,
    /// [`errcode`] value.
    pub errcode: u8,
}

fn hi_lo(hi: u32, lo: u32) -> u64 {
    (u64::from(hi) << 32) | u64::from(lo)
}

impl Superblock {
    /// A superblock of all zeros, to be filled in by a formatter.
    pub fn zeroed() -> Self {
        Self::new_zeroed()
    }

    /// Copies the superblock out of `bytes` (at least 1024 bytes) without validating it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        let need = SUPERBLOCK_SIZE;
        let raw = bytes.get(..need).ok_or(FormatError::Truncated { structure: Structure::Superblock, len: bytes.len(), need })?;
        Ok(Self::read_from_bytes(raw).expect("length checked"))
    }

    /// The three feature words.
    pub fn features(&self) -> FeatureWords {
        FeatureWords {
            compat: Compat::from_bits_retain(self.s_feature_compat.get()),
            incompat: Incompat::from_bits_retain(self.s_feature_incompat.get()),
            ro_compat: RoCompat::from_bits_retain(self.s_feature_ro_compat.get()),
        }
    }

    /// Stores the three feature words.
    pub fn set_features(&mut self, w: FeatureWords) {
        self.s_feature_compat.set(w.compat.bits());
        self.s_feature_incompat.set(w.incompat.bits());
        self.s_feature_ro_compat.set(w.ro_compat.bits());
    }

    fn is_64bit(&self) -> bool {
        self.s_feature_incompat.get() & Incompat::BIT64.bits() != 0
    }

    /// Total block count (high half only with `64bit`).
    pub fn blocks_count(&self) -> u64 {
        let hi = if self.is_64bit() { self.s_blocks_count_hi.get() } else { 0 };
        hi_lo(hi, self.s_blocks_count_lo.get())
    }

    /// Sets the total block count.
    pub fn set_blocks_count(&mut self, n: u64) {
        self.s_blocks_count_lo.set(n as u32);
        self.s_blocks_count_hi.set(if self.is_64bit() { (n >> 32) as u32 } else { 0 });
    }

    /// Reserved block count.
    pub fn r_blocks_count(&self) -> u64 {
        let hi = if self.is_64bit() { self.s_r_blocks_count_hi.get() } else { 0 };
        hi_lo(hi, self.s_r_blocks_count_lo.get())
    }

    /// Sets the reserved block count.
    pub fn set_r_blocks_count(&mut self, n: u64) {
        self.s_r_blocks_count_lo.set(n as u32);
        self.s_r_blocks_count_hi.set(if self.is_64bit() { (n >> 32) as u32 } else { 0 });
    }

    /// Free block count.
    pub fn free_blocks_count(&self) -> u64 {
        let hi = if self.is_64bit() { self.s_free_blocks_count_hi.get() } else { 0 };
        hi_lo(hi, self.s_free_blocks_count_lo.get())
    }

    /// Sets the free block count.
    pub fn set_free_blocks_count(&mut self, n: u64) {
        self.s_free_blocks_count_lo.set(n as u32);
        self.s_free_blocks_count_hi.set(if self.is_64bit() { (n >> 32) as u32 } else { 0 });
    }

    /// The seed of every `metadata_csum` checksum: `s_checksum_seed` with
    /// `metadata_csum_seed`, else crc32c of the UUID.
    pub fn csum_seed(&self) -> u32 {
        if self.s_feature_incompat.get() & Incompat::CSUM_SEED.bits() != 0 { self.s_checksum_seed.get() } else { crc32c(!0, &self.s_uuid) }
    }

    /// The checksum this superblock should carry (`ext4_superblock_csum`).
    pub fn compute_checksum(&self) -> u32 {
        crc32c(!0, &self.as_bytes()[..SB_CHECKSUM_OFFSET])
    }

    /// Whether `metadata_csum` is on.
    pub fn has_metadata_csum(&self) -> bool {
        self.s_feature_ro_compat.get() & RoCompat::METADATA_CSUM.bits() != 0
    }

    /// Checks `s_checksum` if `metadata_csum` is on.
    pub fn verify_checksum(&self) -> Result<(), FormatError> {
        if !self.has_metadata_csum() {
            return Ok(());
        }
        FormatError::check_csum(Structure::Superblock, self.s_checksum.get(), self.compute_checksum())
    }

    /// Recomputes `s_checksum` if `metadata_csum` is on.
    pub fn update_checksum(&mut self) {
        if self.has_metadata_csum() {
            let c = self.compute_checksum();
            self.s_checksum.set(c);
        }
    }

    /// Records an error as the kernel's `ext4_update_super` does after
    /// `save_error_info`: `EXT4_ERROR_FS` in `s_state`, one more in
    /// `s_error_count`, the first error's fields if none is recorded yet,
    /// and the last error's fields.
    pub fn record_error(&mut self, e: &ErrorRecord<'_>) {
        self.s_state.set(self.s_state.get() | STATE_ERROR);
        let mut func = [0u8; 32];
        let n = e.func.len().min(func.len());
        func[..n].copy_from_slice(&e.func.as_bytes()[..n]);
        let (lo, hi) = (e.time as u32, (e.time >> 32) as u8);
        if self.s_first_error_time.get() == 0 && self.s_first_error_time_hi == 0 {
            self.s_first_error_time.set(lo);
            self.s_first_error_time_hi = hi;
            self.s_first_error_func = func;
            self.s_first_error_line.set(e.line);
            self.s_first_error_ino.set(e.ino);
            self.s_first_error_block.set(e.block);
            self.s_first_error_errcode = e.errcode;
        }
        self.s_last_error_time.set(lo);
        self.s_last_error_time_hi = hi;
        self.s_last_error_func = func;
        self.s_last_error_line.set(e.line);
        self.s_last_error_ino.set(e.ino);
        self.s_last_error_block.set(e.block);
        self.s_last_error_errcode = e.errcode;
        self.s_error_count.set(self.s_error_count.get().saturating_add(1));
    }

    /// The copy group `g` keeps, as `ext2fs_flush` writes backups: the
    /// group's number, neither "clean" nor `needs_recovery` (a backup is
    /// only read when the primary is lost, and then wants a full check),
    /// and its own checksum.
    pub fn backup_copy(&self, g: u32) -> Superblock {
        let mut sb = self.clone();
        sb.s_block_group_nr.set(g.min(65535) as u16);
        sb.s_state.set(self.s_state.get() & !STATE_VALID);
        sb.s_feature_incompat.set(self.s_feature_incompat.get() & !Incompat::RECOVER.bits());
        sb.update_checksum();
        sb
    }

    /// The volume label, up to the first NUL.
    pub fn volume_name(&self) -> &[u8] {
        cstr(&self.s_volume_name)
    }

    /// The directory where the filesystem was last mounted.
    pub fn last_mounted(&self) -> &[u8] {
        cstr(&self.s_last_mounted)
    }

    /// The four hash seed words.
    pub fn hash_seed(&self) -> [u32; 4] {
        self.s_hash_seed.map(|w| w.get())
    }

    /// The hash seed as its 16 stored bytes (printed as a UUID).
    pub fn hash_seed_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b.copy_from_slice(self.s_hash_seed.as_bytes());
        b
    }
}

fn cstr(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

/// Where one group keeps its copies of the superblock and descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupLayout {
    /// The superblock copy (the primary for group 0).
    pub super_blk: Option<u64>,
    /// First block of the old-style descriptor table copy
    /// ([`Geometry::old_desc_blocks`] blocks, then the reserved GDT blocks).
    pub old_desc_blk: Option<u64>,
    /// The `meta_bg` descriptor block this group holds a copy of.
    pub new_desc_blk: Option<u64>,
}

/// How group descriptors are checksummed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsumKind {
    /// No checksums.
    None,
    /// `uninit_bg`: crc16 of group descriptors only.
    GdtCsum,
    /// `metadata_csum`: crc32c of every metadata structure.
    MetadataCsum,
}

/// The validated numbers of a filesystem, derived from its superblock once.
///
/// Every later computation uses these instead of re-reading raw fields, and
/// can rely on the invariants checked by [`Geometry::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    /// Block size in bytes: a power of two from 1024 to 65536.
    pub block_size: u32,
    /// log2 of `block_size`.
    pub block_bits: u32,
    /// Blocks per cluster (1 without bigalloc).
    pub cluster_ratio: u32,
    /// Total blocks.
    pub blocks_count: u64,
    /// First data block (0 or 1).
    pub first_data_block: u32,
    /// Blocks per group (a multiple of 8, at most `8 * block_size` clusters).
    pub blocks_per_group: u32,
    /// Clusters per group.
    pub clusters_per_group: u32,
    /// Inodes per group (nonzero, at most `8 * block_size`).
    pub inodes_per_group: u32,
    /// Total inodes (= groups * inodes per group).
    pub inodes_count: u32,
    /// Number of block groups.
    pub group_count: u32,
    /// Inode record size in bytes (128 .. block size, power of two).
    pub inode_size: u32,
    /// Group descriptor size in bytes (32 or 64+).
    pub desc_size: u32,
    /// Group descriptors per block.
    pub descs_per_block: u32,
    /// Blocks of inode table per group.
    pub inode_table_blocks: u32,
    /// First non-reserved inode.
    pub first_ino: u32,
    /// Reserved GDT blocks after the descriptors.
    pub reserved_gdt_blocks: u32,
    /// First meta block group (meta_bg).
    pub first_meta_bg: u32,
    /// Groups per flex group (1 without flex_bg).
    pub groups_per_flex: u32,
    /// Feature words.
    pub features: FeatureWords,
    /// Checksum scheme.
    pub csum: CsumKind,
    /// Seed of `metadata_csum` checksums.
    pub csum_seed: u32,
    /// Volume UUID (seed of crc16 checksums).
    pub uuid: [u8; 16],
    /// `s_backup_bgs` for sparse_super2.
    pub backup_bgs: [u32; 2],
}

impl Geometry {
    /// Validates a superblock and derives the geometry.
    ///
    /// Checks the magic, the block, cluster, inode and descriptor sizes, the
    /// per-group counts and their consistency with the totals. Feature
    /// support and checksums are the caller's decision and are not checked.
    pub fn new(sb: &Superblock) -> Result<Self, FormatError> {
        use Structure::Superblock as S;
        let bad = |field, value: u64, reason| FormatError::bad(S, field, value, reason);
        if sb.s_magic.get() != EXT4_MAGIC {
            return Err(FormatError::BadMagic { structure: S, found: sb.s_magic.get().into() });
        }
        let features = sb.features();
        let log = sb.s_log_block_size.get();
        if log > 6 {
            return Err(bad("s_log_block_size", log.into(), "block size above 64 KiB"));
        }
        let block_bits = 10 + log;
        let block_size = 1u32 << block_bits;
        let cluster_ratio = if features.ro_compat.contains(RoCompat::BIGALLOC) {
            let clog = sb.s_log_cluster_size.get();
            if clog < log || clog > log + 16 {
                return Err(bad("s_log_cluster_size", clog.into(), "cluster smaller than block or too large"));
            }
            1u32 << (clog - log)
        } else {
            1
        };
        let blocks_count = sb.blocks_count();
        let first_data_block = sb.s_first_data_block.get();
        if first_data_block > 1 || (block_size == 1024 && first_data_block != 1 && cluster_ratio == 1) {
            return Err(bad("s_first_data_block", first_data_block.into(), "must be 1 for 1 KiB blocks, else 0"));
        }
        if blocks_count <= u64::from(first_data_block) {
            return Err(bad("s_blocks_count", blocks_count, "no blocks after the first data block"));
        }
        let blocks_per_group = sb.s_blocks_per_group.get();
        let clusters_per_group = sb.s_clusters_per_group.get();
        if clusters_per_group == 0 || clusters_per_group > 8 * block_size || clusters_per_group % 8 != 0 {
            return Err(bad("s_clusters_per_group", clusters_per_group.into(), "zero, not a multiple of 8, or over one bitmap block"));
        }
        if u64::from(blocks_per_group) != u64::from(clusters_per_group) * u64::from(cluster_ratio) {
            return Err(bad("s_blocks_per_group", blocks_per_group.into(), "not clusters per group times cluster size"));
        }
        let inodes_per_group = sb.s_inodes_per_group.get();
        if inodes_per_group == 0 || inodes_per_group > 8 * block_size {
            return Err(bad("s_inodes_per_group", inodes_per_group.into(), "zero or over one bitmap block"));
        }
        let (inode_size, first_ino) = if sb.s_rev_level.get() == 0 {
            (128, crate::ino::GOOD_OLD_FIRST)
        } else {
            (u32::from(sb.s_inode_size.get()), sb.s_first_ino.get())
        };
        if inode_size < 128 || inode_size > block_size || !inode_size.is_power_of_two() {
            return Err(bad("s_inode_size", inode_size.into(), "not a power of two from 128 to the block size"));
        }
        if first_ino < crate::ino::GOOD_OLD_FIRST || first_ino > sb.s_inodes_count.get() {
            return Err(bad("s_first_ino", first_ino.into(), "below 11 or beyond the inode count"));
        }
        let desc_size = if features.incompat.contains(Incompat::BIT64) {
            let d = u32::from(sb.s_desc_size.get());
            if !(64..=1024).contains(&d) || !d.is_power_of_two() {
                return Err(bad("s_desc_size", d.into(), "64bit needs a power of two from 64 to 1024"));
            }
            d
        } else {
            32
        };
        let data_blocks = blocks_count - u64::from(first_data_block);
        let group_count = data_blocks.div_ceil(u64::from(blocks_per_group));
        let group_count = u32::try_from(group_count).map_err(|_| bad("s_blocks_count", blocks_count, "more than 2^32 groups"))?;
        let inodes_count = sb.s_inodes_count.get();
        if u64::from(inodes_count) != u64::from(group_count) * u64::from(inodes_per_group) {
            return Err(bad("s_inodes_count", inodes_count.into(), "not groups times inodes per group"));
        }
        let csum = if features.ro_compat.contains(RoCompat::METADATA_CSUM) {
            if sb.s_checksum_type != CHECKSUM_TYPE_CRC32C {
                return Err(bad("s_checksum_type", sb.s_checksum_type.into(), "unknown checksum type"));
            }
            CsumKind::MetadataCsum
        } else if features.ro_compat.contains(RoCompat::GDT_CSUM) {
            CsumKind::GdtCsum
        } else {
            CsumKind::None
        };
        let groups_per_flex = if features.incompat.contains(Incompat::FLEX_BG) {
            let l = sb.s_log_groups_per_flex;
            if l > 31 {
                return Err(bad("s_log_groups_per_flex", l.into(), "above 31"));
            }
            1u32 << l
        } else {
            1
        };
        let inode_table_blocks = (inodes_per_group * inode_size).div_ceil(block_size);
        Ok(Self {
            block_size,
            block_bits,
            cluster_ratio,
            blocks_count,
            first_data_block,
            blocks_per_group,
            clusters_per_group,
            inodes_per_group,
            inodes_count,
            group_count,
            inode_size,
            desc_size,
            descs_per_block: block_size / desc_size,
            inode_table_blocks,
            first_ino,
            reserved_gdt_blocks: sb.s_reserved_gdt_blocks.get().into(),
            first_meta_bg: sb.s_first_meta_bg.get(),
            groups_per_flex,
            features,
            csum,
            csum_seed: sb.csum_seed(),
            uuid: sb.s_uuid,
            backup_bgs: sb.s_backup_bgs.map(|w| w.get()),
        })
    }

    /// Whether `metadata_csum` is on.
    pub fn metadata_csum(&self) -> bool {
        self.csum == CsumKind::MetadataCsum
    }

    /// Whether group descriptors carry a checksum and the uninit flags mean something.
    pub fn has_group_csum(&self) -> bool {
        self.csum != CsumKind::None
    }

    /// Whether `64bit` is on.
    pub fn is_64bit(&self) -> bool {
        self.features.incompat.contains(Incompat::BIT64)
    }

    /// Number of blocks holding group descriptors (without reserved GDT blocks).
    pub fn gdt_blocks(&self) -> u32 {
        self.group_count.div_ceil(self.descs_per_block)
    }

    /// First block of group `g`.
    pub fn group_first_block(&self, g: u32) -> u64 {
        u64::from(self.first_data_block) + u64::from(g) * u64::from(self.blocks_per_group)
    }

    /// Number of blocks in group `g` (the last group may be short; 0 past the end).
    pub fn blocks_in_group(&self, g: u32) -> u32 {
        let start = self.group_first_block(g);
        self.blocks_count.saturating_sub(start).min(u64::from(self.blocks_per_group)) as u32
    }

    /// Number of clusters in group `g` (the last group may be short; 0 past
    /// the end). Equal to [`Self::blocks_in_group`] without bigalloc.
    pub fn clusters_in_group(&self, g: u32) -> u32 {
        self.blocks_in_group(g).div_ceil(self.cluster_ratio)
    }

    /// The first block of the cluster holding block `b` (`b` itself
    /// without bigalloc). Clusters count from `s_first_data_block`.
    pub fn cluster_start(&self, b: u64) -> u64 {
        let first = u64::from(self.first_data_block);
        let rel = b.saturating_sub(first);
        first + rel - rel % u64::from(self.cluster_ratio)
    }

    /// The group holding block `b`, and the block's index within it (blocks
    /// before `s_first_data_block` count as group 0's first).
    pub fn block_group(&self, b: u64) -> (u32, u32) {
        let rel = b.saturating_sub(u64::from(self.first_data_block));
        ((rel / u64::from(self.blocks_per_group)) as u32, (rel % u64::from(self.blocks_per_group)) as u32)
    }

    /// The group holding inode `ino` (1-based; 0 counts as 1) and its index within the group.
    pub fn inode_group(&self, ino: u32) -> (u32, u32) {
        let i = ino.saturating_sub(1);
        (i / self.inodes_per_group, i % self.inodes_per_group)
    }

    /// Whether group `g` holds a superblock backup (and, without meta_bg, a GDT copy).
    pub fn group_has_super(&self, g: u32) -> bool {
        if g == 0 {
            return true;
        }
        if self.features.compat.contains(Compat::SPARSE_SUPER2) {
            return g == self.backup_bgs[0] || g == self.backup_bgs[1];
        }
        if g <= 1 || !self.features.ro_compat.contains(RoCompat::SPARSE_SUPER) {
            return true;
        }
        if g & 1 == 0 {
            return false;
        }
        is_power_of(g, 3) || is_power_of(g, 5) || is_power_of(g, 7)
    }

    /// Whether `meta_bg` is on.
    pub fn meta_bg(&self) -> bool {
        self.features.incompat.contains(Incompat::META_BG)
    }

    /// The block holding the primary superblock: 1 with 1 KiB blocks (even
    /// when `s_first_data_block` is 0, as with bigalloc), else 0.
    pub fn superblock_block(&self) -> u64 {
        SUPERBLOCK_OFFSET / u64::from(self.block_size)
    }

    /// Block number holding the descriptor of group `g` in the primary copy
    /// (`descriptor_loc`).
    pub fn group_desc_block(&self, g: u32) -> u64 {
        let desc_block = g / self.descs_per_block;
        if self.meta_bg() && desc_block >= self.first_meta_bg {
            // Each meta group's descriptors are in its first group, after
            // its superblock copy (and after the boot block when 1 KiB
            // blocks start at block 0).
            let meta_group_first = desc_block * self.descs_per_block;
            let boot = self.superblock_block() > u64::from(self.first_data_block) && desc_block == 0;
            let has_super = u64::from(self.group_has_super(meta_group_first)) + u64::from(boot);
            self.group_first_block(meta_group_first) + has_super
        } else {
            self.superblock_block() + 1 + u64::from(desc_block)
        }
    }

    /// Blocks of the old-style descriptor table each copy holds: all of
    /// them, or with `meta_bg` the first `s_first_meta_bg` (as dumpe2fs
    /// and `ext2fs_flush` count them; not capped by the table's size).
    pub fn old_desc_blocks(&self) -> u32 {
        if self.meta_bg() { self.first_meta_bg } else { self.gdt_blocks() }
    }

    /// Where group `g` keeps its superblock copy and descriptor blocks
    /// (`ext2fs_super_and_bgd_loc2`).
    pub fn group_layout(&self, g: u32) -> GroupLayout {
        let first = self.group_first_block(g);
        // 1 KiB blocks starting at block 0 (bigalloc): the superblock is block 1.
        let group_block = if first == 0 && self.block_size == 1024 { 1 } else { first };
        let has_super = self.group_has_super(g);
        let mut l = GroupLayout { super_blk: has_super.then_some(group_block), old_desc_blk: None, new_desc_blk: None };
        if !self.meta_bg() || g / self.descs_per_block < self.first_meta_bg {
            l.old_desc_blk = has_super.then_some(group_block + 1);
        } else if [0, 1, self.descs_per_block - 1].contains(&(g % self.descs_per_block)) {
            l.new_desc_blk = Some(group_block + u64::from(has_super));
        }
        l
    }

    /// Number of blocks at the start of group `g` taken by the superblock
    /// copy, group descriptors and reserved GDT blocks (`ext2fs_super_and_bgd_loc2`).
    pub fn group_overhead_blocks(&self, g: u32) -> u32 {
        let has_super = self.group_has_super(g);
        let mut n = u32::from(has_super);
        if self.meta_bg() {
            let meta_group = g / self.descs_per_block;
            if meta_group < self.first_meta_bg {
                if has_super {
                    n += self.first_meta_bg.min(self.gdt_blocks()) + self.reserved_gdt_blocks;
                }
            } else {
                let idx = g % self.descs_per_block;
                if idx == 0 || idx == 1 || idx == self.descs_per_block - 1 {
                    n += 1;
                }
            }
        } else if has_super {
            n += self.gdt_blocks() + self.reserved_gdt_blocks;
        }
        n
    }
}

/// The validated numbers of an external journal device's superblock
/// (`journal_dev`): a device with no groups or inodes, only its size and
/// identity; the jbd2 superblock follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalDevice {
    /// Block size in bytes (must equal the filesystem's).
    pub block_size: u32,
    /// Blocks of the device (`s_blocks_count`): the journal's length.
    pub blocks_count: u64,
    /// The journal's UUID (`s_uuid`), which a filesystem names in `s_journal_uuid`.
    pub uuid: [u8; 16],
}

impl JournalDevice {
    /// Validates the superblock of an external journal device: the magic,
    /// the `journal_dev` feature (`ext4_get_dev_journal`: "external journal
    /// has bad superblock"), the block size and the block count. The
    /// checksum is the caller's to verify.
    pub fn new(sb: &Superblock) -> Result<Self, FormatError> {
        use Structure::Superblock as S;
        let bad = |field, value: u64, reason| FormatError::bad(S, field, value, reason);
        if sb.s_magic.get() != EXT4_MAGIC {
            return Err(FormatError::BadMagic { structure: S, found: sb.s_magic.get().into() });
        }
        let incompat = sb.features().incompat;
        if !incompat.contains(Incompat::JOURNAL_DEV) {
            return Err(bad("s_feature_incompat", incompat.bits().into(), "not an external journal device (no journal_dev)"));
        }
        let log = sb.s_log_block_size.get();
        if log > 6 {
            return Err(bad("s_log_block_size", log.into(), "block size above 64 KiB"));
        }
        let block_size = 1024u32 << log;
        let blocks_count = sb.blocks_count();
        // The ext4 superblock, the jbd2 superblock and at least one log block.
        if blocks_count < SUPERBLOCK_OFFSET / u64::from(block_size) + 3 {
            return Err(bad("s_blocks_count", blocks_count, "too small for a journal"));
        }
        Ok(Self { block_size, blocks_count, uuid: sb.s_uuid })
    }
}

fn is_power_of(mut n: u32, base: u32) -> bool {
    while n % base == 0 {
        n /= base;
    }
    n == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_super_groups() {
        let mut g = test_geometry();
        g.features.ro_compat = RoCompat::SPARSE_SUPER;
        let with: Vec<u32> = (0..100).filter(|&i| g.group_has_super(i)).collect();
        assert_eq!(with, vec![0, 1, 3, 5, 7, 9, 25, 27, 49, 81]);
    }

    fn test_geometry() -> Geometry {
        let mut sb = Superblock::zeroed();
        sb.s_magic.set(EXT4_MAGIC);
        sb.s_log_block_size.set(2);
        sb.s_blocks_count_lo.set(32768 * 100);
        sb.s_blocks_per_group.set(32768);
        sb.s_clusters_per_group.set(32768);
        sb.s_inodes_per_group.set(8192);
        sb.s_inodes_count.set(8192 * 100);
        sb.s_rev_level.set(1);
        sb.s_inode_size.set(256);
        sb.s_first_ino.set(11);
        Geometry::new(&sb).unwrap()
    }

    #[test]
    fn geometry_counts() {
        let g = test_geometry();
        assert_eq!(g.group_count, 100);
        assert_eq!(g.inode_table_blocks, 512);
        assert_eq!(g.inode_group(8193), (1, 0));
        assert_eq!(g.block_group(32769), (1, 1));
    }

    /// Found by the `superblock` fuzz target: group arithmetic past the
    /// last group, before the first data block or on inode 0 overflowed.
    #[test]
    fn geometry_edges_saturate() {
        let g = test_geometry();
        assert_eq!(g.blocks_in_group(g.group_count), 0);
        assert_eq!(g.blocks_in_group(u32::MAX), 0);
        assert_eq!(g.inode_group(0), (0, 0));
        let mut one_k = g.clone();
        one_k.first_data_block = 1;
        assert_eq!(one_k.block_group(0), (0, 0));
    }
}

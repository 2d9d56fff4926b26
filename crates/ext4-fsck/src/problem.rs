//! Problem codes, named after e2fsck's `PR_*` codes, each with what leaving
//! it unrepaired means, and the problems a check reports.

use core::fmt;

/// What an unrepaired problem means for the verdict (e2fsck's prompt and
/// `PR_NO_OK` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The filesystem is inconsistent until this is repaired.
    Error,
    /// Repairable, but the filesystem is consistent without the repair
    /// (e2fsck's `PR_NO_OK`: free counts in the superblock, optimizations).
    Warning,
    /// A message only: the problem is dealt with by another problem, or it
    /// explains one (e2fsck's `PROMPT_NONE`).
    Info,
    /// The check cannot go on.
    Fatal,
}

/// Which part of the check found a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pass {
    /// Superblock, group descriptors, journal and MMP, before the passes.
    Super,
    /// Pass 1: inodes, blocks and sizes.
    Inodes,
    /// Pass 1b-d: blocks claimed more than once.
    Duplicates,
    /// Pass 2: directory structure.
    Directories,
    /// Pass 3: directory connectivity.
    Connectivity,
    /// Pass 4: reference counts.
    References,
    /// Pass 5: group summaries.
    Summaries,
    /// After the passes: orphan file, quotas.
    Final,
}

impl Pass {
    /// A short name (`super`, `pass1`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Super => "super",
            Self::Inodes => "pass1",
            Self::Duplicates => "pass1b",
            Self::Directories => "pass2",
            Self::Connectivity => "pass3",
            Self::References => "pass4",
            Self::Summaries => "pass5",
            Self::Final => "final",
        }
    }
}

macro_rules! codes {
    ($( $(#[doc = $doc:literal])* $variant:ident = $name:literal, $sev:ident, $preen:literal; )*) => {
        /// A kind of problem. [`Code::name`] is e2fsck's `PR_*` name where
        /// e2fsck has the same check, so reports can be compared.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Code {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The stable name (`PR_1_BAD_I_SIZE`).
            pub fn name(self) -> &'static str {
                match self { $(Self::$variant => $name,)* }
            }

            /// What leaving the problem unrepaired means.
            pub fn severity(self) -> Severity {
                match self { $(Self::$variant => Severity::$sev,)* }
            }

            /// Whether preen mode (`-p`) may repair it without asking.
            pub fn preen_ok(self) -> bool {
                match self { $(Self::$variant => $preen,)* }
            }

            /// One line saying what the code means.
            pub fn description(self) -> &'static str {
                match self { $(Self::$variant => concat!($($doc),*).trim_ascii(),)* }
            }
        }
    };
}

codes! {
    // ---- Before the passes: superblock, descriptors, journal, MMP ----
    /// The superblock is unusable: the filesystem cannot be checked.
    SbCorrupt = "PR_0_SB_CORRUPT", Fatal, false;
    /// The primary superblock could not be used; a backup was.
    OpenFailed = "PR_0_OPEN_FAILED", Info, false;
    /// The primary group descriptors are inconsistent; the backups were tried.
    CheckDescFailed = "PR_0_CHECK_DESC_FAILED", Info, false;
    /// A superblock field is outside its valid range.
    MiscCorruptSuper = "PR_0_MISC_CORRUPT_SUPER", Fatal, false;
    /// The device is smaller than the filesystem.
    FsSizeWrong = "PR_0_FS_SIZE_WRONG", Error, false;
    /// `s_first_data_block` does not match the block size.
    FirstDataBlock = "PR_0_FIRST_DATA_BLOCK", Fatal, false;
    /// `s_inodes_count` is not inodes per group times groups.
    InodeCountWrong = "PR_0_INODE_COUNT_WRONG", Error, false;
    /// `s_min_extra_isize` is invalid.
    BadMinExtraIsize = "PR_0_BAD_MIN_EXTRA_ISIZE", Error, false;
    /// `s_want_extra_isize` is invalid.
    BadWantExtraIsize = "PR_0_BAD_WANT_EXTRA_ISIZE", Error, false;
    /// Both `metadata_csum` and `uninit_bg` are set.
    MetaAndGdtCsumSet = "PR_0_META_AND_GDT_CSUM_SET", Warning, true;
    /// `metadata_csum_seed` is set without `metadata_csum`.
    CsumSeedWithoutMetaCsum = "PR_0_CSUM_SEED_WITHOUT_META_CSUM", Warning, true;
    /// `64bit` is set without `extents`.
    Bit64WithoutExtents = "PR_0_64BIT_WITHOUT_EXTENTS", Warning, true;
    /// `s_first_meta_bg` is beyond the descriptor blocks.
    FirstMetaBgTooBig = "PR_0_FIRST_META_BG_TOO_BIG", Error, false;
    /// A block bitmap lies outside its group (or the filesystem with `flex_bg`).
    BbNotGroup = "PR_0_BB_NOT_GROUP", Error, false;
    /// An inode bitmap lies outside its group (or the filesystem with `flex_bg`).
    IbNotGroup = "PR_0_IB_NOT_GROUP", Error, false;
    /// An inode table lies outside its group (or the filesystem with `flex_bg`).
    ItableNotGroup = "PR_0_ITABLE_NOT_GROUP", Error, false;
    /// A group descriptor checksum does not match.
    GdtCsum = "PR_0_GDT_CSUM", Error, true;
    /// A group has uninit flags but the filesystem has no group checksums.
    GdtUninit = "PR_0_GDT_UNINIT", Error, true;
    /// The last group is marked `BLOCK_UNINIT`.
    BbUninitLast = "PR_0_BB_UNINIT_LAST", Error, true;
    /// `bg_itable_unused` exceeds the free inodes of the group.
    GdtItableUnused = "PR_0_GDT_ITABLE_UNUSED", Error, true;
    /// The superblock's last mount time is in the future.
    FutureSbLastMount = "PR_0_FUTURE_SB_LAST_MOUNT", Warning, true;
    /// The superblock's last write time is in the future.
    FutureSbLastWrite = "PR_0_FUTURE_SB_LAST_WRITE", Warning, true;
    /// The resize inode is not valid.
    ResizeInodeInvalid = "PR_0_RESIZE_INODE_INVALID", Error, false;
    /// The resize inode is in use but `resize_inode` is not set.
    ClearResizeInode = "PR_0_CLEAR_RESIZE_INODE", Error, false;
    /// `s_reserved_gdt_blocks` is nonzero without `resize_inode`.
    NonzeroReservedGdtBlocks = "PR_0_NONZERO_RESERVED_GDT_BLOCKS", Error, false;
    /// `resize_inode` and `meta_bg` are both set.
    DisableResizeInode = "PR_0_DISABLE_RESIZE_INODE", Error, false;
    /// The journal inode is not valid.
    JournalBadInode = "PR_0_JOURNAL_BAD_INODE", Error, true;
    /// The journal superblock is corrupt.
    JournalBadSuper = "PR_0_JOURNAL_BAD_SUPER", Error, true;
    /// `has_journal` is clear but a journal is present.
    JournalHasJournal = "PR_0_JOURNAL_HAS_JOURNAL", Error, true;
    /// `needs_recovery` is set without a journal.
    JournalRecoverSet = "PR_0_JOURNAL_RECOVER_SET", Error, true;
    /// `needs_recovery` is clear but the journal holds transactions.
    JournalRecoveryClear = "PR_0_JOURNAL_RECOVERY_CLEAR", Info, false;
    /// The journal has an unsupported feature or version.
    JournalUnsupported = "PR_0_JOURNAL_UNSUPP_VERSION", Fatal, false;
    /// The MMP block number is invalid.
    MmpInvalidBlk = "PR_0_MMP_INVALID_BLK", Fatal, true;
    /// The MMP block has a bad magic number.
    MmpInvalidMagic = "PR_0_MMP_INVALID_MAGIC", Fatal, true;
    /// The MMP block checksum does not match.
    MmpCsumInvalid = "PR_0_MMP_CSUM_INVALID", Fatal, true;
    /// The MMP block says the filesystem is in use (or being checked).
    MmpInUse = "PR_0_MMP_IN_USE", Fatal, false;
    /// The superblock checksum does not match.
    SbCsumInvalid = "PR_0_SB_CSUM_INVALID", Info, false;
    /// An incompatible feature this checker does not know is set.
    UnsupportedFeature = "PR_0_UNSUPP_FEATURE", Fatal, false;

    // ---- Pass 1: inodes, blocks and sizes ----
    /// The root inode is not a directory.
    RootNoDir = "PR_1_ROOT_NO_DIR", Error, false;
    /// The root inode has a deletion time.
    RootDtime = "PR_1_ROOT_DTIME", Error, true;
    /// A reserved inode has a bad mode.
    ReservedBadMode = "PR_1_RESERVED_BAD_MODE", Error, true;
    /// A deleted inode has no deletion time.
    ZeroDtime = "PR_1_ZERO_DTIME", Error, true;
    /// An inode in use has a deletion time.
    SetDtime = "PR_1_SET_DTIME", Error, true;
    /// A directory has no blocks.
    ZeroLengthDir = "PR_1_ZERO_LENGTH_DIR", Error, true;
    /// A block bitmap conflicts with other metadata.
    BbConflict = "PR_1_BB_CONFLICT", Error, false;
    /// An inode bitmap conflicts with other metadata.
    IbConflict = "PR_1_IB_CONFLICT", Error, false;
    /// An inode table conflicts with other metadata.
    ItableConflict = "PR_1_ITABLE_CONFLICT", Error, false;
    /// `i_size` is wrong.
    BadISize = "PR_1_BAD_I_SIZE", Error, true;
    /// `i_blocks` is wrong.
    BadIBlocks = "PR_1_BAD_I_BLOCKS", Error, true;
    /// A block number is outside the filesystem.
    IllegalBlockNum = "PR_1_ILLEGAL_BLOCK_NUM", Error, false;
    /// Walking an inode's block map failed.
    BlockIterate = "PR_1_BLOCK_ITERATE", Fatal, false;
    /// Too many illegal blocks in one inode.
    TooManyBadBlocks = "PR_1_TOO_MANY_BAD_BLOCKS", Warning, false;
    /// A block of the bad blocks inode is outside the filesystem.
    BbIllegalBlockNum = "PR_1_BB_ILLEGAL_BLOCK_NUM", Error, false;
    /// The bad blocks inode claims filesystem metadata.
    BbFsBlock = "PR_1_BB_FS_BLOCK", Error, false;
    /// The bad blocks inode's own map blocks are claimed elsewhere.
    BbinodeBadMetablock = "PR_1_BBINODE_BAD_METABLOCK", Error, false;
    /// The primary superblock is on the bad blocks list.
    BadPrimarySuperblock = "PR_1_BAD_PRIMARY_SUPERBLOCK", Error, false;
    /// A block of the primary group descriptors is on the bad blocks list.
    BadPrimaryGroupDescriptor = "PR_1_BAD_PRIMARY_GROUP_DESCRIPTOR", Error, false;
    /// A backup superblock is on the bad blocks list.
    BadSuperblock = "PR_1_BAD_SUPERBLOCK", Info, true;
    /// A block of a backup of the group descriptors is on the bad blocks list.
    BadGroupDescriptors = "PR_1_BAD_GROUP_DESCRIPTORS", Info, true;
    /// A group's block bitmap is on the bad blocks list.
    BbBadBlock = "PR_1_BB_BAD_BLOCK", Error, false;
    /// A group's inode bitmap is on the bad blocks list.
    IbBadBlock = "PR_1_IB_BAD_BLOCK", Error, false;
    /// A listed bad block is in use, but by nothing the list explains.
    ProgerrClaimedBlock = "PR_1_PROGERR_CLAIMED_BLOCK", Info, true;
    /// The bad blocks list says the bad blocks inode's own table block is bad.
    BadblocksInBadblocks = "PR_1_BADBLOCKS_IN_BADBLOCKS", Error, false;
    /// A repair could not write what it changed (not an e2fsck problem).
    WriteInode = "PR_EXT4_WRITE_FAILED", Fatal, false;
    /// Nothing was repaired: the filesystem could not be (its journal or orphans wait), or the repairs, checked before being written, left an error it did not have (not an e2fsck problem).
    RepairsWithdrawn = "PR_EXT4_REPAIRS_WITHDRAWN", Info, false;
    /// The bad blocks inode is invalid.
    InvalidBadInode = "PR_1_INVALID_BAD_INODE", Error, false;
    /// An inode has the `imagic` flag without the `imagic_inodes` feature.
    SetImagic = "PR_1_SET_IMAGIC", Error, false;
    /// A special file has the immutable or append-only flag.
    SetImmutable = "PR_1_SET_IMMUTABLE", Warning, true;
    /// A special file has a nonzero size.
    SetNonzsize = "PR_1_SET_NONZSIZE", Error, true;
    /// The journal inode is not in use but is not clear.
    JournalInodeNotClear = "PR_1_JOURNAL_INODE_NOT_CLEAR", Error, true;
    /// The journal inode is not a regular file.
    JournalBadMode = "PR_1_JOURNAL_BAD_MODE", Error, true;
    /// An inode's deletion time is below the inode count (an orphan list remnant).
    LowDtime = "PR_1_LOW_DTIME", Error, false;
    /// The xattr block could not be read.
    ReadEaBlock = "PR_1_READ_EA_BLOCK", Error, false;
    /// The xattr block has a bad magic number.
    BadEaBlock = "PR_1_BAD_EA_BLOCK", Error, false;
    /// An xattr block's reference count is wrong.
    ExtattrRefcount = "PR_1_EXTATTR_REFCOUNT", Error, false;
    /// An xattr block claims more than one block.
    EaMultiBlock = "PR_1_EA_MULTI_BLOCK", Error, false;
    /// Xattr entries or values overlap.
    EaAllocCollision = "PR_1_EA_ALLOC_COLLISION", Error, false;
    /// An xattr block entry has a bad name.
    EaBadName = "PR_1_EA_BAD_NAME", Error, false;
    /// An xattr block entry has a bad value.
    EaBadValue = "PR_1_EA_BAD_VALUE", Error, false;
    /// A directory is too big.
    ToobigDir = "PR_1_TOOBIG_DIR", Error, false;
    /// A regular file is too big.
    ToobigReg = "PR_1_TOOBIG_REG", Error, false;
    /// A symlink or special file maps blocks beyond its first.
    ToobigSymlink = "PR_1_TOOBIG_SYMLINK", Error, false;
    /// The htree flag is set without `dir_index`.
    HtreeSet = "PR_1_HTREE_SET", Error, true;
    /// The htree flag is set on a non-directory.
    HtreeNodir = "PR_1_HTREE_NODIR", Error, true;
    /// The htree root block is invalid.
    HtreeBadroot = "PR_1_HTREE_BADROOT", Error, true;
    /// The htree hash version is unknown.
    HtreeHashv = "PR_1_HTREE_HASHV", Error, true;
    /// The htree root has incompatible flags.
    HtreeIncompat = "PR_1_HTREE_INCOMPAT", Error, true;
    /// The htree is too deep.
    HtreeDepth = "PR_1_HTREE_DEPTH", Error, true;
    /// An htree directory needs SipHash (casefolded and encrypted).
    HtreeNeedsSiphash = "PR_1_HTREE_NEEDS_SIPHASH", Error, true;
    /// An htree directory uses SipHash where it cannot.
    HtreeCannotSiphash = "PR_1_HTREE_CANNOT_SIPHASH", Error, true;
    /// `i_extra_isize` is invalid.
    ExtraIsize = "PR_1_EXTRA_ISIZE", Error, true;
    /// An in-inode xattr name length is invalid.
    AttrNameLen = "PR_1_ATTR_NAME_LEN", Error, true;
    /// An in-inode xattr value size is invalid.
    AttrValueSize = "PR_1_ATTR_VALUE_SIZE", Error, true;
    /// An xattr entry hash does not match.
    AttrHash = "PR_1_ATTR_HASH", Error, true;
    /// An xattr entry names an invalid EA inode.
    AttrValueEaInode = "PR_1_ATTR_VALUE_EA_INODE", Error, true;
    /// An EA inode lacks the `EA_INODE` flag.
    AttrNoEaInodeFl = "PR_1_ATTR_NO_EA_INODE_FL", Error, true;
    /// In-inode xattr entries or values overlap.
    InodeEaAllocCollision = "PR_1_INODE_EA_ALLOC_COLLISION", Error, false;
    /// An inode that is not a directory looks like one.
    TreatAsDirectory = "PR_1_TREAT_AS_DIRECTORY", Error, false;
    /// An extent tree could not be read.
    ReadExtent = "PR_1_READ_EXTENT", Error, false;
    /// Walking an extent tree failed.
    ExtentIterateFailure = "PR_1_EXTENT_ITERATE_FAILURE", Error, false;
    /// An extent starts outside the filesystem.
    ExtentBadStartBlk = "PR_1_EXTENT_BAD_START_BLK", Error, false;
    /// An extent ends beyond the filesystem.
    ExtentEndsBeyond = "PR_1_EXTENT_ENDS_BEYOND", Error, false;
    /// An inode uses extents without the `extents` feature.
    ExtentsSet = "PR_1_EXTENTS_SET", Error, false;
    /// An inode holds an extent header without the extents flag.
    UnsetExtentFl = "PR_1_UNSET_EXTENT_FL", Error, true;
    /// A fast symlink has the extents flag.
    FastSymlinkExtentFl = "PR_1_FAST_SYMLINK_EXTENT_FL", Error, false;
    /// Extents are out of order.
    OutOfOrderExtents = "PR_1_OUT_OF_ORDER_EXTENTS", Error, false;
    /// An extent tree node header is invalid.
    ExtentHeaderInvalid = "PR_1_EXTENT_HEADER_INVALID", Error, false;
    /// A quota inode is not a regular file.
    QuotaBadMode = "PR_1_QUOTA_BAD_MODE", Error, true;
    /// An unused quota inode is not clear.
    QuotaInodeNotClear = "PR_1_QUOTA_INODE_NOT_CLEAR", Error, true;
    /// An extent has length zero.
    ExtentLengthZero = "PR_1_EXTENT_LENGTH_ZERO", Error, false;
    /// An inode table block holds garbage.
    InodeIsGarbage = "PR_1_INODE_IS_GARBAGE", Error, false;
    /// An inode passes every check but its checksum.
    InodeOnlyCsumInvalid = "PR_1_INODE_ONLY_CSUM_INVALID", Error, true;
    /// An extent block passes every check but its checksum.
    ExtentOnlyCsumInvalid = "PR_1_EXTENT_ONLY_CSUM_INVALID", Error, false;
    /// An xattr block passes every check but its checksum.
    EaBlockOnlyCsumInvalid = "PR_1_EA_BLOCK_ONLY_CSUM_INVALID", Error, false;
    /// An extent index's start does not match its child's first extent.
    ExtentIndexStartInvalid = "PR_1_EXTENT_INDEX_START_INVALID", Error, false;
    /// An extent ends beyond what its parent index covers.
    ExtentEndOutOfBounds = "PR_1_EXTENT_END_OUT_OF_BOUNDS", Error, false;
    /// An inode has inline data without the `inline_data` feature.
    InlineDataSet = "PR_1_INLINE_DATA_SET", Error, false;
    /// A map block overlaps critical metadata.
    CriticalMetadataCollision = "PR_1_CRITICAL_METADATA_COLLISION", Info, false;
    /// A directory extent is unwritten.
    UninitDblock = "PR_1_UNINIT_DBLOCK", Error, true;
    /// A directory has a hole that can be closed.
    CollapseDblock = "PR_1_COLLAPSE_DBLOCK", Error, false;
    /// A bigalloc cluster is mapped at a misaligned offset.
    MisalignedCluster = "PR_1_MISALIGNED_CLUSTER", Info, false;
    /// An inline-data inode has no `system.data` attribute.
    InlineDataNoAttr = "PR_1_INLINE_DATA_NO_ATTR", Error, false;
    /// A special file has the extents or inline-data flag.
    SpecialExtentsIdata = "PR_1_SPECIAL_EXTENTS_IDATA", Warning, true;
    /// Both the extents and inline-data flags are set.
    ExtentInlineDataFlags = "PR_1_CLEAR_EXTENT_INLINE_DATA_FLAGS", Error, false;
    /// Extents overlap in logical blocks.
    ExtentCollision = "PR_1_EXTENT_COLLISION", Error, false;
    /// An extent tree is deeper than the format allows.
    ExtentBadMaxDepth = "PR_1_EXTENT_BAD_MAX_DEPTH", Warning, true;
    /// A block-mapped file on a bigalloc filesystem.
    NoBigallocBlockmapFiles = "PR_1_NO_BIGALLOC_BLOCKMAP_FILES", Error, false;
    /// An extent-mapped inode has no valid extent header.
    MissingExtentHeader = "PR_1_MISSING_EXTENT_HEADER", Error, false;
    /// An inode time has the pre-1970 encoding bug.
    EaTimeOutOfRange = "PR_1_EA_TIME_OUT_OF_RANGE", Warning, true;
    /// The casefold flag is set on a non-directory.
    CasefoldNondir = "PR_1_CASEFOLD_NONDIR", Error, false;
    /// The casefold flag is set without the `casefold` feature.
    CasefoldFeature = "PR_1_CASEFOLD_FEATURE", Error, false;
    /// An encrypted inode has no encryption context.
    MissingEncryptionXattr = "PR_1_MISSING_ENCRYPTION_XATTR", Error, false;
    /// An encrypted inode's encryption context is corrupt.
    CorruptEncryptionXattr = "PR_1_CORRUPT_ENCRYPTION_XATTR", Error, false;
    /// The orphan file inode is not a regular file.
    OrphanFileBadMode = "PR_1_ORPHAN_FILE_BAD_MODE", Error, true;
    /// The orphan file inode is not in use but is not clear.
    OrphanFileNotClear = "PR_1_ORPHAN_FILE_NOT_CLEAR", Error, true;
    /// The filesystem has files over 2 GiB without `large_file`.
    FeatureLargeFiles = "PR_2_FEATURE_LARGE_FILES", Error, true;
    /// The filesystem has large directories without `large_dir`.
    FeatureLargeDirs = "PR_2_FEATURE_LARGE_DIRS", Error, true;
    /// An extent tree could be one level shallower.
    CanCollapseExtentTree = "PR_1E_CAN_COLLAPSE_EXTENT_TREE", Warning, true;

    // ---- Pass 1b-d: multiply-claimed blocks ----
    /// A block is claimed by more than one inode (or twice by one).
    DupBlock = "PR_1B_DUP_BLOCK", Info, false;
    /// Files share multiply-claimed blocks.
    DupFile = "PR_1D_DUP_FILE", Error, false;
    /// A file shares blocks with filesystem metadata.
    ShareMetadata = "PR_1D_SHARE_METADATA", Info, false;

    // ---- Pass 2: directory structure ----
    /// `.` names another inode.
    BadInodeDot = "PR_2_BAD_INODE_DOT", Error, false;
    /// An entry names an invalid inode number.
    BadIno = "PR_2_BAD_INO", Error, false;
    /// An entry names an unused inode.
    UnusedInode = "PR_2_UNUSED_INODE", Error, true;
    /// An entry other than `.` names its own directory.
    LinkDot = "PR_2_LINK_DOT", Error, false;
    /// An entry names an inode in a bad block.
    BbInode = "PR_2_BB_INODE", Error, false;
    /// A directory has a second parent entry (a hard link to a directory).
    LinkDir = "PR_2_LINK_DIR", Error, false;
    /// An entry links to the root directory.
    LinkRoot = "PR_2_LINK_ROOT", Error, false;
    /// A name holds `/` or a NUL byte.
    BadName = "PR_2_BAD_NAME", Error, false;
    /// The `.` entry is missing.
    MissingDot = "PR_2_MISSING_DOT", Error, false;
    /// The `..` entry is missing.
    MissingDotDot = "PR_2_MISSING_DOT_DOT", Error, false;
    /// The first entry is not `.`.
    FirstNotDot = "PR_2_1ST_NOT_DOT", Error, false;
    /// The second entry is not `..`.
    SecondNotDotDot = "PR_2_2ND_NOT_DOT_DOT", Error, false;
    /// An inode's obsolete fragment address is set.
    FaddrZero = "PR_2_FADDR_ZERO", Error, false;
    /// An inode has an xattr block without the `ext_attr` feature.
    FileAclZero = "PR_2_FILE_ACL_ZERO", Error, false;
    /// A directory's `i_size_high` is set.
    DirSizeHighZero = "PR_2_DIR_SIZE_HIGH_ZERO", Error, false;
    /// A Hurd inode's fragment number is set.
    FragZero = "PR_2_FRAG_ZERO", Error, false;
    /// A Hurd inode's fragment size is set.
    FsizeZero = "PR_2_FSIZE_ZERO", Error, false;
    /// An inode's mode holds no valid file type.
    BadMode = "PR_2_BAD_MODE", Error, false;
    /// A directory block's entries are corrupt.
    DirCorrupted = "PR_2_DIR_CORRUPTED", Error, false;
    /// A directory has a hole.
    DirectoryHole = "PR_2_DIRECTORY_HOLE", Error, false;
    /// `.` is not NUL-terminated.
    DotNullTerm = "PR_2_DOT_NULL_TERM", Error, false;
    /// `..` is not NUL-terminated.
    DotDotNullTerm = "PR_2_DOT_DOT_NULL_TERM", Error, false;
    /// A character device inode is invalid.
    BadCharDev = "PR_2_BAD_CHAR_DEV", Error, false;
    /// A block device inode is invalid.
    BadBlockDev = "PR_2_BAD_BLOCK_DEV", Error, false;
    /// A second `.` entry.
    DupDot = "PR_2_DUP_DOT", Error, false;
    /// A second `..` entry.
    DupDotDot = "PR_2_DUP_DOT_DOT", Error, false;
    /// The last entry's `rec_len` does not reach the end of the block.
    FinalReclen = "PR_2_FINAL_RECLEN", Error, false;
    /// A directory block could not be read.
    ReadDirblock = "PR_2_READ_DIRBLOCK", Error, false;
    /// The `.` entry is longer than it needs to be.
    SplitDot = "PR_2_SPLIT_DOT", Warning, false;
    /// A FIFO inode is invalid.
    BadFifo = "PR_2_BAD_FIFO", Error, false;
    /// A socket inode is invalid.
    BadSocket = "PR_2_BAD_SOCKET", Error, false;
    /// An entry has no file type where the filesystem records types.
    SetFiletype = "PR_2_SET_FILETYPE", Warning, true;
    /// An entry's file type is wrong.
    BadFiletype = "PR_2_BAD_FILETYPE", Error, false;
    /// An entry has a file type where the filesystem records none.
    ClearFiletype = "PR_2_CLEAR_FILETYPE", Error, true;
    /// An entry has an empty name.
    NullName = "PR_2_NULL_NAME", Error, false;
    /// A symlink inode is invalid.
    InvalidSymlink = "PR_2_INVALID_SYMLINK", Error, false;
    /// An inode's xattr block number is outside the filesystem.
    FileAclBad = "PR_2_FILE_ACL_BAD", Error, false;
    /// An htree block is not referenced by the index.
    HtreeNotref = "PR_2_HTREE_NOTREF", Info, false;
    /// An htree block is referenced twice.
    HtreeDupref = "PR_2_HTREE_DUPREF", Info, false;
    /// An htree block's hashes are below its index range.
    HtreeMinHash = "PR_2_HTREE_MIN_HASH", Info, false;
    /// An htree block's hashes are above its index range.
    HtreeMaxHash = "PR_2_HTREE_MAX_HASH", Info, false;
    /// An htree index is invalid and should be rebuilt.
    HtreeClear = "PR_2_HTREE_CLEAR", Error, false;
    /// An htree index entry points past the directory.
    HtreeBadblk = "PR_2_HTREE_BADBLK", Error, false;
    /// The htree root is invalid.
    HtreeBadRoot = "PR_2_HTREE_BAD_ROOT", Error, true;
    /// An htree node's limit is wrong.
    HtreeBadLimit = "PR_2_HTREE_BAD_LIMIT", Error, true;
    /// An htree node's count is wrong.
    HtreeBadCount = "PR_2_HTREE_BAD_COUNT", Error, true;
    /// An htree node's hashes are out of order.
    HtreeHashOrder = "PR_2_HTREE_HASH_ORDER", Error, true;
    /// An htree leaf is at the wrong depth.
    HtreeBadDepth = "PR_2_HTREE_BAD_DEPTH", Info, false;
    /// A directory holds the same name twice.
    ReportDupDirent = "PR_2_REPORT_DUP_DIRENT", Info, false;
    /// A directory holds the same name twice (repair renames or removes).
    DuplicateDirent = "PR_2_DUPLICATE_DIRENT", Error, false;
    /// `l_i_blocks_hi` is set without `huge_file`.
    BlocksHiZero = "PR_2_BLOCKS_HI_ZERO", Error, false;
    /// A directory has more blocks than its htree index covers.
    UnexpectedHtreeBlock = "PR_2_UNEXPECTED_HTREE_BLOCK", Error, false;
    /// An entry names an inode of an `INODE_UNINIT` group.
    InorefBgInoUninit = "PR_2_INOREF_BG_INO_UNINIT", Error, true;
    /// An entry names an inode in the unused part of an inode table.
    InorefInUnused = "PR_2_INOREF_IN_UNUSED", Error, true;
    /// `i_file_acl_hi` is set without `64bit`.
    IFileAclHiZero = "PR_2_I_FILE_ACL_HI_ZERO", Error, true;
    /// An htree root's checksum does not match.
    HtreeRootCsumInvalid = "PR_2_HTREE_ROOT_CSUM_INVALID", Error, true;
    /// An htree node's checksum does not match.
    HtreeNodeCsumInvalid = "PR_2_HTREE_NODE_CSUM_INVALID", Error, true;
    /// A leaf directory block has no checksum tail.
    LeafNodeMissingCsum = "PR_2_LEAF_NODE_MISSING_CSUM", Error, true;
    /// A leaf directory block passes every check but its checksum.
    LeafNodeOnlyCsumInvalid = "PR_2_LEAF_NODE_ONLY_CSUM_INVALID", Error, true;
    /// An inline directory's size is invalid.
    BadInlineDirSize = "PR_2_BAD_INLINE_DIR_SIZE", Error, false;
    /// An encrypted name is too short.
    BadEncryptedName = "PR_2_BAD_ENCRYPTED_NAME", Error, false;
    /// An unencrypted file in an encrypted directory.
    UnencryptedFile = "PR_2_UNENCRYPTED_FILE", Error, false;
    /// A file's encryption policy differs from its directory's.
    InconsistentEncryptionPolicy = "PR_2_INCONSISTENT_ENCRYPTION_POLICY", Error, false;
    /// A name in a casefolded directory is not valid in its encoding.
    BadEncodedName = "PR_2_BAD_ENCODED_NAME", Error, false;

    // ---- Pass 3: connectivity ----
    /// The root inode is missing.
    NoRootInode = "PR_3_NO_ROOT_INODE", Error, false;
    /// The root inode is not a directory.
    RootNotDirAbort = "PR_3_ROOT_NOT_DIR_ABORT", Fatal, false;
    /// A directory is not connected to the root.
    UnconnectedDir = "PR_3_UNCONNECTED_DIR", Error, false;
    /// `lost+found` is missing.
    NoLfDir = "PR_3_NO_LF_DIR", Error, true;
    /// A directory's `..` is not its parent.
    BadDotDot = "PR_3_BAD_DOT_DOT", Error, false;
    /// `lost+found` is not a directory.
    LpfNotdir = "PR_3_LPF_NOTDIR", Error, false;
    /// `lost+found` has inline data.
    LpfInlineData = "PR_3_LPF_INLINE_DATA", Error, false;
    /// `lost+found` is encrypted.
    LpfEncrypted = "PR_3_LPF_ENCRYPTED", Error, false;
    /// A directory loop.
    LoopedDir = "PR_3_LOOPED_DIR", Error, false;
    /// Expanding `lost+found` failed.
    ExpandLfDir = "PR_3_EXPAND_LF_DIR", Error, false;
    /// No space to create `lost+found`.
    NoSpaceToRecover = "PR_3_NO_SPACE_TO_RECOVER", Info, false;

    // ---- Pass 4: reference counts ----
    /// An unattached inode has no data.
    ZeroLenInode = "PR_4_ZERO_LEN_INODE", Warning, true;
    /// An inode is not in any directory.
    UnattachedInode = "PR_4_UNATTACHED_INODE", Error, false;
    /// An inode's link count is wrong.
    BadRefCount = "PR_4_BAD_REF_COUNT", Error, true;
    /// An EA inode's reference count is wrong.
    EaInodeRefCount = "PR_4_EA_INODE_REF_COUNT", Error, true;
    /// A directory has more than 65000 subdirectories without `dir_nlink`.
    DirNlinkFeature = "PR_4_DIR_NLINK_FEATURE", Error, false;
    /// `i_links_count` disagrees with the count pass 1 read.
    InconsistentCount = "PR_4_INCONSISTENT_COUNT", Info, false;

    // ---- Pass 5: group summaries ----
    /// Blocks are in use but not marked in the bitmap.
    BlockUsed = "PR_5_BLOCK_USED", Info, false;
    /// Blocks are marked in the bitmap but not in use.
    BlockUnused = "PR_5_BLOCK_UNUSED", Info, false;
    /// The block bitmap differs from the blocks in use.
    BlockBitmapEnd = "PR_5_BLOCK_BITMAP_END", Error, true;
    /// Inodes are in use but not marked in the bitmap.
    InodeUsed = "PR_5_INODE_USED", Info, false;
    /// Inodes are marked in the bitmap but not in use.
    InodeUnused = "PR_5_INODE_UNUSED", Info, false;
    /// The inode bitmap differs from the inodes in use.
    InodeBitmapEnd = "PR_5_INODE_BITMAP_END", Error, true;
    /// A group's free inode count is wrong.
    FreeInodeCountGroup = "PR_5_FREE_INODE_COUNT_GROUP", Error, true;
    /// A group's directory count is wrong.
    FreeDirCountGroup = "PR_5_FREE_DIR_COUNT_GROUP", Error, true;
    /// The superblock's free inode count is wrong.
    FreeInodeCount = "PR_5_FREE_INODE_COUNT", Warning, true;
    /// A group's free block count is wrong.
    FreeBlockCountGroup = "PR_5_FREE_BLOCK_COUNT_GROUP", Error, true;
    /// The superblock's free block count is wrong.
    FreeBlockCount = "PR_5_FREE_BLOCK_COUNT", Warning, true;
    /// The padding at the end of an inode bitmap is not set.
    InodeBmapPadding = "PR_5_INODE_BMAP_PADDING", Error, true;
    /// The padding at the end of a block bitmap is not set.
    BlockBmapPadding = "PR_5_BLOCK_BMAP_PADDING", Error, true;
    /// A `BLOCK_UNINIT` group has blocks in use.
    BlockUninit = "PR_5_BLOCK_UNINIT", Error, true;
    /// An `INODE_UNINIT` group has inodes in use.
    InodeUninit = "PR_5_INODE_UNINIT", Error, true;
    /// An inode bitmap checksum does not match.
    InodeBitmapCsumInvalid = "PR_5_INODE_BITMAP_CSUM_INVALID", Error, true;
    /// A block bitmap checksum does not match.
    BlockBitmapCsumInvalid = "PR_5_BLOCK_BITMAP_CSUM_INVALID", Error, true;

    // ---- After the passes ----
    /// Quota usage records differ from what the files use.
    UpdateQuotas = "PR_6_UPDATE_QUOTAS", Error, true;
    /// The orphan file exists without a journal.
    OrphanFileWithoutJournal = "PR_6_ORPHAN_FILE_WITHOUT_JOURNAL", Error, true;
    /// The orphan file's size is not a multiple of the block size.
    OrphanFileWrongSize = "PR_6_ORPHAN_FILE_WRONG_SIZE", Info, false;
    /// The orphan file has a hole.
    OrphanFileHole = "PR_6_ORPHAN_FILE_HOLE", Info, false;
    /// The orphan file is corrupt.
    OrphanFileCorrupted = "PR_6_ORPHAN_FILE_CORRUPTED", Error, true;
    /// An orphan file block holds orphans on a clean filesystem.
    OrphanBlockDirty = "PR_6_ORPHAN_BLOCK_DIRTY", Error, true;
    /// `orphan_present` is set but the orphan file is empty.
    OrphanPresentCleanFile = "PR_6_ORPHAN_PRESENT_CLEAN_FILE", Error, true;
    /// `orphan_present` is set without an orphan file.
    OrphanPresentNoFile = "PR_6_ORPHAN_PRESENT_NO_FILE", Error, true;
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One problem found by a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What kind of problem.
    pub code: Code,
    /// Where the check was.
    pub pass: Pass,
    /// The inode concerned, if any.
    pub ino: Option<u32>,
    /// The block concerned, if any.
    pub block: Option<u64>,
    /// The group concerned, if any.
    pub group: Option<u32>,
    /// What was found, in words.
    pub detail: String,
    /// Whether the problem counts against the verdict when left alone
    /// ([`Severity::Error`] found during a pass, or [`Severity::Fatal`]).
    pub counts: bool,
    /// Whether the repair was made.
    pub fixed: bool,
}

/// Where a problem is, for [`Problem`]: built with [`At::ino`], [`At::block`]...
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct At {
    /// The inode concerned.
    pub ino: Option<u32>,
    /// The block concerned.
    pub block: Option<u64>,
    /// The group concerned.
    pub group: Option<u32>,
}

impl At {
    /// Nowhere in particular.
    pub const NONE: At = At { ino: None, block: None, group: None };

    /// At inode `ino`.
    pub fn ino(ino: u32) -> Self {
        Self { ino: Some(ino), ..Self::NONE }
    }

    /// At block `b`.
    pub fn block(b: u64) -> Self {
        Self { block: Some(b), ..Self::NONE }
    }

    /// At group `g`.
    pub fn group(g: u32) -> Self {
        Self { group: Some(g), ..Self::NONE }
    }

    /// At inode `ino`, block `b`.
    pub fn ino_block(ino: u32, b: u64) -> Self {
        Self { ino: Some(ino), block: Some(b), group: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_e2fsck_shaped() {
        let mut seen = std::collections::BTreeSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.name()), "{} twice", c.name());
            assert!(c.name().starts_with("PR_"), "{}", c.name());
            assert!(!c.description().is_empty(), "{} has no description", c.name());
        }
    }
}

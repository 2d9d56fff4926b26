//! The error of every map operation: corruption found on disk, or a request
//! the map cannot satisfy.

use ext4_ondisk::FormatError;

/// Why a block map operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    /// The map on disk is damaged.
    #[error("block map corrupt {}: {reason}", Where(*block))]
    Corrupt {
        /// The map block holding the damage; `None` for the inode's `i_block`.
        block: Option<u64>,
        /// What is wrong.
        reason: Corruption,
    },
    /// `map_range` was asked to map a logical block that is already mapped.
    #[error("logical block {logical} is already mapped")]
    AlreadyMapped {
        /// The first mapped block in the requested range.
        logical: u32,
    },
    /// A logical range ends beyond the last block the map can address.
    #[error("logical blocks up to {end} asked, the map addresses only {limit}")]
    BeyondMap {
        /// One past the last logical block asked.
        end: u64,
        /// Number of logical blocks the map can address.
        limit: u64,
    },
    /// A physical range given to `map_range`, or a block returned by
    /// `MapIo::alloc_block`, lies outside the filesystem's data blocks (or,
    /// for an indirect map, above 2^32).
    #[error("physical blocks {start}..+{len} are not valid data blocks")]
    BadPhysical {
        /// First block.
        start: u64,
        /// Number of blocks.
        len: u64,
    },
    /// Growing the extent tree would make it deeper than 5 levels
    /// (`EXT4_MAX_EXTENT_DEPTH`).
    #[error("extent tree would be deeper than 5 levels")]
    TooDeep,
    /// Unwritten (preallocated) runs need an extent tree; indirect maps have no such state.
    #[error("unwritten blocks cannot be mapped by an indirect block map")]
    UnwrittenOnIndirect,
    /// The [`crate::MapCtx`] block size is not a power of two from 1024 to 65536.
    #[error("block size {block_size} is not a power of two from 1024 to 65536")]
    BadBlockSize {
        /// The block size given.
        block_size: u32,
    },
}

/// What is wrong with a damaged map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    /// A node header or checksum does not follow the format (bad magic,
    /// `eh_entries` above `eh_max`, depth above 5, checksum mismatch).
    #[error(transparent)]
    Format(#[from] FormatError),
    /// A child node's `eh_depth` is not its parent's depth minus one.
    #[error("eh_depth {found}, expected {expected}")]
    DepthMismatch {
        /// Depth the parent implies.
        expected: u16,
        /// Depth stored in the child.
        found: u16,
    },
    /// An index node, or a leaf block, has no entries.
    #[error("node without entries")]
    EmptyNode,
    /// An extent of length 0.
    #[error("extent at logical block {logical} has length 0")]
    ZeroLength {
        /// The extent's first logical block.
        logical: u32,
    },
    /// Entries not in increasing logical order, or extents overlapping.
    #[error("entry at logical block {logical} starts before the end of the previous one ({previous_end})")]
    OutOfOrder {
        /// The entry's first logical block.
        logical: u32,
        /// Where the previous entry ends (exclusive; its start for index entries, plus one).
        previous_end: u64,
    },
    /// A child node's first entry does not start at its index entry's `ei_block`.
    #[error("index entry says logical block {key}, its child starts at {first}")]
    IndexKeyMismatch {
        /// The parent's `ei_block`.
        key: u32,
        /// The child's first logical block.
        first: u32,
    },
    /// A child node holds blocks at or beyond the next index entry of its parent.
    #[error("entry reaches logical block {end}, beyond its parent's range ending at {limit}")]
    BeyondParent {
        /// One past the entry's last logical block.
        end: u64,
        /// Start of the parent's next index entry.
        limit: u32,
    },
    /// An extent reaches beyond logical block 2^32 - 2 (`EXT_MAX_BLOCKS`).
    #[error("extent {logical}+{len} ends beyond the last logical block")]
    BeyondMaxLogical {
        /// First logical block.
        logical: u32,
        /// Length.
        len: u32,
    },
    /// An indirect block reached through two pointers of the same map (the
    /// error names the block holding the second one).
    #[error("indirect block {block} is referenced twice")]
    SharedBlock {
        /// The block.
        block: u64,
    },
    /// A block pointer outside the filesystem's data blocks
    /// (`s_first_data_block` < block, block + count <= `s_blocks_count`).
    #[error("pointer to blocks {pointer}..+{count} outside the data blocks")]
    BadPointer {
        /// The first block pointed to.
        pointer: u64,
        /// Blocks covered.
        count: u64,
    },
}

/// Displays where a corruption sits.
struct Where(Option<u64>);

impl core::fmt::Display for Where {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(b) => write!(f, "in block {b}"),
            None => f.write_str("in the inode's i_block"),
        }
    }
}

/// Shorthand for [`MapError::Corrupt`].
pub(crate) fn corrupt(block: Option<u64>, reason: impl Into<Corruption>) -> MapError {
    MapError::Corrupt { block, reason: reason.into() }
}

//! The error every parser of this crate returns.

use core::fmt;

/// Which on-disk structure a [`FormatError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Structure {
    /// The superblock.
    Superblock,
    /// A group descriptor.
    GroupDesc,
    /// A block bitmap.
    BlockBitmap,
    /// An inode bitmap.
    InodeBitmap,
    /// An inode.
    Inode,
    /// An extent tree node (in the inode or in a block).
    ExtentNode,
    /// A linear directory block.
    DirBlock,
    /// An htree interior block (dx root or dx node).
    DxNode,
    /// An xattr block.
    XattrBlock,
    /// The in-inode xattr area.
    InodeXattrs,
    /// An orphan file block.
    OrphanBlock,
    /// The MMP block.
    Mmp,
    /// The jbd2 journal (its superblock or log blocks).
    Journal,
    /// A fast-commit tag (`struct ext4_fc_tl` and its value).
    FastCommit,
}

impl fmt::Display for Structure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Superblock => "superblock",
            Self::GroupDesc => "group descriptor",
            Self::BlockBitmap => "block bitmap",
            Self::InodeBitmap => "inode bitmap",
            Self::Inode => "inode",
            Self::ExtentNode => "extent node",
            Self::DirBlock => "directory block",
            Self::DxNode => "htree node",
            Self::XattrBlock => "xattr block",
            Self::InodeXattrs => "in-inode xattrs",
            Self::OrphanBlock => "orphan file block",
            Self::Mmp => "MMP block",
            Self::Journal => "journal",
            Self::FastCommit => "fast-commit tag",
        })
    }
}

/// A structure whose bytes do not follow the on-disk format.
///
/// The caller knows where the bytes came from (block number, inode number)
/// and adds that when it reports the error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// A magic number did not match.
    #[error("{structure}: bad magic {found:#x}")]
    BadMagic {
        /// The structure.
        structure: Structure,
        /// The value found.
        found: u32,
    },
    /// The stored checksum is not the one computed over the bytes.
    #[error("{structure}: checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// The structure.
        structure: Structure,
        /// The checksum found on disk.
        stored: u32,
        /// The checksum computed from the contents.
        computed: u32,
    },
    /// A field holds a value the format does not allow.
    #[error("{structure}: {field} = {value} is invalid: {reason}")]
    BadField {
        /// The structure.
        structure: Structure,
        /// The field, named as in the kernel.
        field: &'static str,
        /// The value found.
        value: u64,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// The buffer is shorter than the structure needs.
    #[error("{structure}: {len} bytes, need {need}")]
    Truncated {
        /// The structure.
        structure: Structure,
        /// Bytes available.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
}

impl FormatError {
    /// The structure the error is about.
    pub fn structure(&self) -> Structure {
        match self {
            Self::BadMagic { structure, .. }
            | Self::Checksum { structure, .. }
            | Self::BadField { structure, .. }
            | Self::Truncated { structure, .. } => *structure,
        }
    }

    /// Shorthand for [`FormatError::BadField`].
    pub fn bad(structure: Structure, field: &'static str, value: u64, reason: &'static str) -> Self {
        Self::BadField { structure, field, value, reason }
    }

    /// Returns `Ok` if `stored == computed`, a checksum error otherwise.
    pub fn check_csum(structure: Structure, stored: u32, computed: u32) -> Result<(), Self> {
        if stored == computed { Ok(()) } else { Err(Self::Checksum { structure, stored, computed }) }
    }
}

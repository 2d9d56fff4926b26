//! The facade's error: a stable public enum whose variants map one-to-one
//! to the errno a kernel would return, with a detailed corruption report.

use std::fmt;

use ext4_ondisk::{FormatError, Structure};

/// Where a corruption was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// The primary superblock.
    Superblock,
    /// A block group (its descriptor or bitmaps).
    Group(u32),
    /// A device block.
    Block(u64),
    /// An inode (its record, or something inside it such as `i_block`).
    Inode(u32),
    /// A block belonging to an inode (extent node, directory block, ...).
    InodeBlock {
        /// The inode.
        ino: u32,
        /// The device block.
        block: u64,
    },
    /// A logical block of a directory.
    DirBlock {
        /// The directory inode.
        ino: u32,
        /// Logical block within the directory.
        logical: u32,
    },
    /// The superblock of an external journal device.
    JournalDevice,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Superblock => write!(f, "superblock"),
            Self::Group(g) => write!(f, "group {g}"),
            Self::Block(b) => write!(f, "block {b}"),
            Self::Inode(i) => write!(f, "inode {i}"),
            Self::InodeBlock { ino, block } => write!(f, "inode {ino}, block {block}"),
            Self::DirBlock { ino, logical } => {
                write!(f, "directory inode {ino}, logical block {logical}")
            }
            Self::JournalDevice => write!(f, "external journal device"),
        }
    }
}

/// A corrupt on-disk structure: what, where, and why.
#[derive(Debug)]
pub struct Corruption {
    /// The structure found damaged.
    pub structure: Structure,
    /// Where it is.
    pub location: Location,
    /// What is wrong with it.
    pub detail: String,
    /// Whether the damage is a checksum mismatch.
    pub checksum: bool,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "corrupt {} at {}: {}", self.structure, self.location, self.detail)
    }
}

impl Corruption {
    /// A corruption report from a parser error.
    pub fn from_format(e: &FormatError, location: Location) -> Self {
        Self { structure: e.structure(), location, detail: e.to_string(), checksum: matches!(e, FormatError::Checksum { .. }) }
    }

    /// A corruption report with a free-form reason.
    pub fn new(structure: Structure, location: Location, detail: impl Into<String>) -> Self {
        Self { structure, location, detail: detail.into(), checksum: false }
    }
}

/// Every error the facade returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No such file or directory (`ENOENT`).
    #[error("{0}: no such file or directory")]
    NotFound(String),
    /// The name exists already (`EEXIST`).
    #[error("{0}: file exists")]
    Exists(String),
    /// The directory is not empty (`ENOTEMPTY`).
    #[error("{0}: directory not empty")]
    NotEmpty(String),
    /// A path component is not a directory (`ENOTDIR`).
    #[error("{0}: not a directory")]
    NotADirectory(String),
    /// The operation needs a non-directory (`EISDIR`).
    #[error("{0}: is a directory")]
    IsADirectory(String),
    /// A name is longer than 255 bytes (`ENAMETOOLONG`).
    #[error("name too long ({0} bytes, at most 255)")]
    NameTooLong(usize),
    /// Too many symbolic links in a path (`ELOOP`).
    #[error("{0}: too many levels of symbolic links")]
    SymlinkLoop(String),
    /// Too many hard links (`EMLINK`).
    #[error("too many links")]
    TooManyLinks,
    /// No free blocks or inodes (`ENOSPC`).
    #[error("no space left on device")]
    NoSpace,
    /// A file would exceed the largest size the format allows (`EFBIG`).
    #[error("file too large")]
    FileTooLarge,
    /// The filesystem or device is read-only (`EROFS`).
    #[error("read-only filesystem")]
    ReadOnly,
    /// The operation is not permitted on this inode (`EPERM`): immutable, append-only, reserved.
    #[error("operation not permitted: {0}")]
    NotPermitted(&'static str),
    /// An argument is invalid (`EINVAL`).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No such extended attribute (`ENODATA`).
    #[error("no such attribute")]
    NoAttribute,
    /// A value does not fit (`ERANGE`, `E2BIG`).
    #[error("value too large: {0}")]
    TooBig(&'static str),
    /// The filesystem uses a feature this library does not support (`EOPNOTSUPP`).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The filesystem is in use elsewhere: another node holds its
    /// multi-mount protection block (`EBUSY`).
    #[error("{0}")]
    Busy(String),
    /// On-disk corruption (`EUCLEAN`, reported as `EIO` by most tools).
    #[error("{0}")]
    Corrupt(Box<Corruption>),
    /// The device failed (`EIO` or the OS error).
    #[error("device error: {0}")]
    Device(#[from] ext4_blockdev::DeviceError),
}

/// Result of facade operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A corruption error from a parser error at `location`.
    pub fn format(e: &FormatError, location: Location) -> Self {
        Self::Corrupt(Box::new(Corruption::from_format(e, location)))
    }

    /// A corruption error with a reason.
    pub fn corrupt(structure: Structure, location: Location, detail: impl Into<String>) -> Self {
        Self::Corrupt(Box::new(Corruption::new(structure, location, detail)))
    }

    /// The errno a Linux kernel would return for this error.
    pub fn errno(&self) -> i32 {
        match self {
            Self::NotFound(_) => 2,         // ENOENT
            Self::Exists(_) => 17,          // EEXIST
            Self::NotEmpty(_) => 39,        // ENOTEMPTY
            Self::NotADirectory(_) => 20,   // ENOTDIR
            Self::IsADirectory(_) => 21,    // EISDIR
            Self::NameTooLong(_) => 36,     // ENAMETOOLONG
            Self::SymlinkLoop(_) => 40,     // ELOOP
            Self::TooManyLinks => 31,       // EMLINK
            Self::NoSpace => 28,            // ENOSPC
            Self::FileTooLarge => 27,       // EFBIG
            Self::ReadOnly => 30,           // EROFS
            Self::NotPermitted(_) => 1,     // EPERM
            Self::InvalidArgument(_) => 22, // EINVAL
            Self::NoAttribute => 61,        // ENODATA
            Self::TooBig(_) => 34,          // ERANGE
            Self::Unsupported(_) => 95,     // EOPNOTSUPP
            Self::Busy(_) => 16,            // EBUSY
            Self::Corrupt(_) => 117,        // EUCLEAN
            Self::Device(e) => e.errno(),
        }
    }

    /// The corruption report, if this is a corruption error.
    pub fn corruption(&self) -> Option<&Corruption> {
        match self {
            Self::Corrupt(c) => Some(c),
            _ => None,
        }
    }
}

impl Error {
    /// The `io::ErrorKind` of this error, the same on every OS (not
    /// derived from Linux errno numbers, which mean other things
    /// elsewhere: `ENODATA` is 61 on Linux and `ECONNREFUSED` on macOS).
    pub fn kind(&self) -> std::io::ErrorKind {
        use std::io::ErrorKind as K;
        match self {
            Self::NotFound(_) | Self::NoAttribute => K::NotFound,
            Self::Exists(_) => K::AlreadyExists,
            Self::NotEmpty(_) => K::DirectoryNotEmpty,
            Self::NotADirectory(_) => K::NotADirectory,
            Self::IsADirectory(_) => K::IsADirectory,
            Self::NameTooLong(_) | Self::InvalidArgument(_) | Self::TooBig(_) => K::InvalidInput,
            Self::TooManyLinks => K::TooManyLinks,
            Self::NoSpace => K::StorageFull,
            Self::FileTooLarge => K::FileTooLarge,
            Self::ReadOnly => K::ReadOnlyFilesystem,
            Self::NotPermitted(_) => K::PermissionDenied,
            Self::Unsupported(_) => K::Unsupported,
            Self::Busy(_) => K::ResourceBusy,
            Self::Corrupt(_) => K::InvalidData,
            Self::SymlinkLoop(_) => K::Other,
            Self::Device(e) => e.kind(),
        }
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        std::io::Error::new(e.kind(), e)
    }
}

/// The errno names used in messages (`ENOENT`), for tools that print them.
pub fn errno_name(errno: i32) -> &'static str {
    match errno {
        1 => "EPERM",
        2 => "ENOENT",
        5 => "EIO",
        16 => "EBUSY",
        17 => "EEXIST",
        20 => "ENOTDIR",
        21 => "EISDIR",
        22 => "EINVAL",
        27 => "EFBIG",
        28 => "ENOSPC",
        30 => "EROFS",
        31 => "EMLINK",
        34 => "ERANGE",
        36 => "ENAMETOOLONG",
        39 => "ENOTEMPTY",
        40 => "ELOOP",
        61 => "ENODATA",
        75 => "EOVERFLOW",
        95 => "EOPNOTSUPP",
        117 => "EUCLEAN",
        _ => "E?",
    }
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind as K;

    use super::*;

    fn check(e: Error, kind: K) {
        let shown = e.to_string();
        assert_eq!(std::io::Error::from(e).kind(), kind, "{shown}");
    }

    #[test]
    fn io_kinds_by_variant() {
        check(Error::NotFound("/a".into()), K::NotFound);
        check(Error::NoAttribute, K::NotFound);
        check(Error::Exists("/a".into()), K::AlreadyExists);
        check(Error::NotEmpty("/a".into()), K::DirectoryNotEmpty);
        check(Error::NotADirectory("/a".into()), K::NotADirectory);
        check(Error::IsADirectory("/a".into()), K::IsADirectory);
        check(Error::NameTooLong(300), K::InvalidInput);
        check(Error::SymlinkLoop("/a".into()), K::Other);
        check(Error::TooManyLinks, K::TooManyLinks);
        check(Error::NoSpace, K::StorageFull);
        check(Error::FileTooLarge, K::FileTooLarge);
        check(Error::ReadOnly, K::ReadOnlyFilesystem);
        check(Error::NotPermitted("immutable"), K::PermissionDenied);
        check(Error::InvalidArgument("x".into()), K::InvalidInput);
        check(Error::TooBig("value"), K::InvalidInput);
        check(Error::Unsupported("x".into()), K::Unsupported);
        check(Error::Busy("mmp".into()), K::ResourceBusy);
        check(Error::corrupt(Structure::Superblock, Location::Superblock, "bad"), K::InvalidData);
        check(Error::Device(ext4_blockdev::DeviceError::ReadOnly), K::ReadOnlyFilesystem);
        let eio = std::io::Error::from(K::UnexpectedEof);
        let io = ext4_blockdev::DeviceError::Io { op: ext4_blockdev::Op::Read, offset: 0, source: eio };
        check(Error::Device(io), K::UnexpectedEof);
    }
}

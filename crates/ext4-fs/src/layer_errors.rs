//! Mapping of the layer crates' errors to the facade's error kinds.

use ext4_extent::MapError;
use ext4_htree::DirError;
use ext4_ondisk::Structure;

use crate::error::{Corruption, Error, Location};
use crate::layer::corrupt_in;

/// A block map error, seen from inode `ino`.
pub(crate) fn map_error(e: MapError, ino: u32) -> Error {
    match e {
        MapError::Corrupt { block, ref reason } => {
            let checksum = matches!(reason, ext4_extent::Corruption::Format(ext4_ondisk::FormatError::Checksum { .. }));
            let location = match block {
                Some(block) => Location::InodeBlock { ino, block },
                None => Location::Inode(ino),
            };
            Error::Corrupt(Box::new(Corruption { structure: Structure::ExtentNode, location, detail: e.to_string(), checksum }))
        }
        MapError::BeyondMap { .. } => Error::FileTooLarge,
        MapError::TooDeep => Error::NoSpace,
        MapError::BadBlockSize { .. } | MapError::UnwrittenOnIndirect | MapError::AlreadyMapped { .. } => {
            Error::InvalidArgument(format!("inode {ino}: {e}"))
        }
        _ => corrupt_in(Structure::ExtentNode, ino, e),
    }
}

/// A directory error, seen from directory inode `ino`.
pub(crate) fn dir_error(e: DirError, ino: u32) -> Error {
    match e {
        DirError::Corrupt { block, detail, checksum, index } => Error::Corrupt(Box::new(Corruption {
            structure: if index { Structure::DxNode } else { Structure::DirBlock },
            location: Location::DirBlock { ino, logical: block },
            detail,
            checksum,
        })),
        DirError::Exists => Error::Exists(format!("entry in directory inode {ino}")),
        DirError::NotFound => Error::NotFound(format!("entry in directory inode {ino}")),
        DirError::IndexFull => Error::NoSpace,
        DirError::InvalidName => Error::InvalidArgument("invalid file name".into()),
        DirError::Unsupported(what) => Error::Unsupported(format!("directory inode {ino}: {what}")),
    }
}

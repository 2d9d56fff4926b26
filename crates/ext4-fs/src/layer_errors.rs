//! Mapping of the layer crates' errors to the facade's error kinds.

use ext4_extent::MapError;
use ext4_htree::DirError;
use ext4_ondisk::Structure;

use crate::error::Error;
use crate::layer::corrupt_in;

/// A block map error, seen from inode `ino`.
pub(crate) fn map_error(e: MapError, ino: u32) -> Error {
    corrupt_in(Structure::ExtentNode, ino, e)
}

/// A directory error, seen from directory inode `ino`.
pub(crate) fn dir_error(e: DirError, ino: u32) -> Error {
    corrupt_in(Structure::DirBlock, ino, e)
}

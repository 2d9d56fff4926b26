//! Adapters that let the layer crates (`ext4-extent`, `ext4-htree`) see the
//! filesystem through their small I/O traits, and the error that carries
//! either a layer's error or the facade's own across those traits.

use ext4_extent::MapError;
use ext4_htree::DirError;
use ext4_ondisk::Structure;

use crate::error::{Corruption, Error, Location};

/// An error crossing a layer trait: the facade's own, or the layer's.
#[derive(Debug)]
pub(crate) enum LayerError {
    /// An error of the facade (I/O, no space, ...), passed through unchanged.
    Fs(Error),
    /// A block map error.
    Map(MapError),
    /// A directory error.
    Dir(DirError),
}

impl From<MapError> for LayerError {
    fn from(e: MapError) -> Self {
        Self::Map(e)
    }
}

impl From<DirError> for LayerError {
    fn from(e: DirError) -> Self {
        Self::Dir(e)
    }
}

impl From<Error> for LayerError {
    fn from(e: Error) -> Self {
        Self::Fs(e)
    }
}

impl LayerError {
    /// Converts to the facade's error, naming inode `ino` as the place of a corruption.
    pub(crate) fn into_error(self, ino: u32) -> Error {
        match self {
            Self::Fs(e) => e,
            Self::Map(e) => crate::layer_errors::map_error(e, ino),
            Self::Dir(e) => crate::layer_errors::dir_error(e, ino),
        }
    }
}

/// Shorthand: a corruption of `structure` in inode `ino`.
pub(crate) fn corrupt_in(structure: Structure, ino: u32, detail: impl std::fmt::Display) -> Error {
    Error::Corrupt(Box::new(Corruption::new(structure, Location::Inode(ino), detail.to_string())))
}

/// Extension to convert layer results.
pub(crate) trait LayerResultExt<T> {
    /// Converts the error with [`LayerError::into_error`].
    fn in_inode(self, ino: u32) -> Result<T, Error>;
}

impl<T> LayerResultExt<T> for Result<T, LayerError> {
    fn in_inode(self, ino: u32) -> Result<T, Error> {
        self.map_err(|e| e.into_error(ino))
    }
}

//! The multi-mount protection block (`struct mmp_struct`).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::checksum::crc32c;
use crate::le::{U16, U32, U64};
use crate::{FormatError, Structure};

/// `mmp_magic`.
pub const MMP_MAGIC: u32 = 0x004D_4D50;
/// `mmp_seq` of a cleanly unmounted filesystem.
pub const MMP_SEQ_CLEAN: u32 = 0xFF4D_4D50;
/// `mmp_seq` while e2fsck runs.
pub const MMP_SEQ_FSCK: u32 = 0xE24D_4D50;
/// Largest valid in-use sequence number.
pub const MMP_SEQ_MAX: u32 = 0xE24D_4D4F;

/// `struct mmp_struct`.
#[derive(Clone, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct MmpBlock {
    /// Magic.
    pub mmp_magic: U32,
    /// Sequence number.
    pub mmp_seq: U32,
    /// Time of the last update.
    pub mmp_time: U64,
    /// Node that last updated it.
    pub mmp_nodename: [u8; 64],
    /// Block device name.
    pub mmp_bdevname: [u8; 32],
    /// Update interval.
    pub mmp_check_interval: U16,
    /// Padding.
    pub mmp_pad1: U16,
    /// Padding.
    pub mmp_pad2: [U32; 226],
    /// crc32c of the structure up to here.
    pub mmp_checksum: U32,
}
const _: () = assert!(size_of::<MmpBlock>() == 1024);

impl MmpBlock {
    /// Parses and validates the magic and (with `metadata_csum`) the checksum.
    pub fn parse(block: &[u8], fs_seed: Option<u32>) -> Result<Self, FormatError> {
        let raw = block.get(..1024).ok_or(FormatError::Truncated { structure: Structure::Mmp, len: block.len(), need: 1024 })?;
        let m = Self::read_from_bytes(raw).expect("1024 bytes");
        if m.mmp_magic.get() != MMP_MAGIC {
            return Err(FormatError::BadMagic { structure: Structure::Mmp, found: m.mmp_magic.get() });
        }
        if let Some(seed) = fs_seed {
            FormatError::check_csum(Structure::Mmp, m.mmp_checksum.get(), m.compute_checksum(seed))?;
        }
        Ok(m)
    }

    /// The checksum this block should carry.
    pub fn compute_checksum(&self, fs_seed: u32) -> u32 {
        crc32c(fs_seed, &self.as_bytes()[..core::mem::offset_of!(MmpBlock, mmp_checksum)])
    }
}

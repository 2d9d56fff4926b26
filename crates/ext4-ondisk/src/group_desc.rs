//! Block group descriptors (`struct ext4_group_desc`, 32 or 64 bytes).

use bitflags::bitflags;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use crate::checksum::{crc16, crc32c};
use crate::le::{U16, U32};
use crate::superblock::{CsumKind, Geometry};
use crate::{FormatError, Structure};

/// The raw 64-byte descriptor; 32-byte descriptors use only the first half.
#[derive(Clone, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct GroupDescRaw {
    /// Block bitmap location, low 32 bits.
    pub bg_block_bitmap_lo: U32,
    /// Inode bitmap location, low 32 bits.
    pub bg_inode_bitmap_lo: U32,
    /// Inode table location, low 32 bits.
    pub bg_inode_table_lo: U32,
    /// Free blocks, low 16 bits.
    pub bg_free_blocks_count_lo: U16,
    /// Free inodes, low 16 bits.
    pub bg_free_inodes_count_lo: U16,
    /// Directories, low 16 bits.
    pub bg_used_dirs_count_lo: U16,
    /// Flags (`GroupDescFlags`).
    pub bg_flags: U16,
    /// Snapshot exclude bitmap, low 32 bits.
    pub bg_exclude_bitmap_lo: U32,
    /// Block bitmap checksum, low 16 bits.
    pub bg_block_bitmap_csum_lo: U16,
    /// Inode bitmap checksum, low 16 bits.
    pub bg_inode_bitmap_csum_lo: U16,
    /// Unused inodes at the end of the inode table, low 16 bits.
    pub bg_itable_unused_lo: U16,
    /// Descriptor checksum.
    pub bg_checksum: U16,
    /// Block bitmap location, high 32 bits.
    pub bg_block_bitmap_hi: U32,
    /// Inode bitmap location, high 32 bits.
    pub bg_inode_bitmap_hi: U32,
    /// Inode table location, high 32 bits.
    pub bg_inode_table_hi: U32,
    /// Free blocks, high 16 bits.
    pub bg_free_blocks_count_hi: U16,
    /// Free inodes, high 16 bits.
    pub bg_free_inodes_count_hi: U16,
    /// Directories, high 16 bits.
    pub bg_used_dirs_count_hi: U16,
    /// Unused inodes, high 16 bits.
    pub bg_itable_unused_hi: U16,
    /// Exclude bitmap, high 32 bits.
    pub bg_exclude_bitmap_hi: U32,
    /// Block bitmap checksum, high 16 bits.
    pub bg_block_bitmap_csum_hi: U16,
    /// Inode bitmap checksum, high 16 bits.
    pub bg_inode_bitmap_csum_hi: U16,
    /// Padding.
    pub bg_reserved: U32,
}

const _: () = assert!(size_of::<GroupDescRaw>() == 64);
/// Offset of `bg_checksum`.
pub const GD_CHECKSUM_OFFSET: usize = core::mem::offset_of!(GroupDescRaw, bg_checksum);

bitflags! {
    /// `bg_flags`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct GroupDescFlags: u16 {
        /// The inode table and bitmap are not initialized.
        const INODE_UNINIT = 0x0001;
        /// The block bitmap is not initialized.
        const BLOCK_UNINIT = 0x0002;
        /// The inode table is zeroed.
        const ITABLE_ZEROED = 0x0004;
    }
}

/// A decoded group descriptor with full-width values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupDesc {
    /// Block bitmap location.
    pub block_bitmap: u64,
    /// Inode bitmap location.
    pub inode_bitmap: u64,
    /// First block of the inode table.
    pub inode_table: u64,
    /// Free blocks (clusters) in the group.
    pub free_blocks_count: u32,
    /// Free inodes in the group.
    pub free_inodes_count: u32,
    /// Directories in the group.
    pub used_dirs_count: u32,
    /// Flags.
    pub flags: GroupDescFlags,
    /// Snapshot exclude bitmap.
    pub exclude_bitmap: u64,
    /// Block bitmap checksum (low 16 bits only with 32-byte descriptors).
    pub block_bitmap_csum: u32,
    /// Inode bitmap checksum (low 16 bits only with 32-byte descriptors).
    pub inode_bitmap_csum: u32,
    /// Unused inodes at the end of the inode table.
    pub itable_unused: u32,
    /// Stored descriptor checksum.
    pub checksum: u16,
}

fn join(lo: u32, hi: u32, wide: bool) -> u64 {
    u64::from(lo) | if wide { u64::from(hi) << 32 } else { 0 }
}

fn join16(lo: u16, hi: u16, wide: bool) -> u32 {
    u32::from(lo) | if wide { u32::from(hi) << 16 } else { 0 }
}

impl GroupDesc {
    /// Decodes a descriptor of `desc_size` bytes (32, or 64 and more).
    pub fn parse(bytes: &[u8], desc_size: usize) -> Result<Self, FormatError> {
        if bytes.len() < desc_size || desc_size < 32 {
            return Err(FormatError::Truncated { structure: Structure::GroupDesc, len: bytes.len(), need: desc_size.max(32) });
        }
        let mut buf = [0u8; 64];
        let n = desc_size.min(64);
        buf[..n].copy_from_slice(&bytes[..n]);
        let r = GroupDescRaw::read_from_bytes(&buf).expect("64 bytes");
        let w = desc_size >= 64;
        Ok(Self {
            block_bitmap: join(r.bg_block_bitmap_lo.get(), r.bg_block_bitmap_hi.get(), w),
            inode_bitmap: join(r.bg_inode_bitmap_lo.get(), r.bg_inode_bitmap_hi.get(), w),
            inode_table: join(r.bg_inode_table_lo.get(), r.bg_inode_table_hi.get(), w),
            free_blocks_count: join16(r.bg_free_blocks_count_lo.get(), r.bg_free_blocks_count_hi.get(), w),
            free_inodes_count: join16(r.bg_free_inodes_count_lo.get(), r.bg_free_inodes_count_hi.get(), w),
            used_dirs_count: join16(r.bg_used_dirs_count_lo.get(), r.bg_used_dirs_count_hi.get(), w),
            flags: GroupDescFlags::from_bits_retain(r.bg_flags.get()),
            exclude_bitmap: join(r.bg_exclude_bitmap_lo.get(), r.bg_exclude_bitmap_hi.get(), w),
            block_bitmap_csum: join16(r.bg_block_bitmap_csum_lo.get(), r.bg_block_bitmap_csum_hi.get(), w),
            inode_bitmap_csum: join16(r.bg_inode_bitmap_csum_lo.get(), r.bg_inode_bitmap_csum_hi.get(), w),
            itable_unused: join16(r.bg_itable_unused_lo.get(), r.bg_itable_unused_hi.get(), w),
            checksum: r.bg_checksum.get(),
        })
    }

    /// Encodes into `bytes[..desc_size]`; bytes beyond 64 are left as they are.
    pub fn write(&self, bytes: &mut [u8], desc_size: usize) {
        let mut r = GroupDescRaw::new_zeroed();
        if desc_size > 32 {
            let n = desc_size.min(64);
            r.as_mut_bytes()[..n].copy_from_slice(&bytes[..n]);
        }
        r.bg_block_bitmap_lo.set(self.block_bitmap as u32);
        r.bg_inode_bitmap_lo.set(self.inode_bitmap as u32);
        r.bg_inode_table_lo.set(self.inode_table as u32);
        r.bg_free_blocks_count_lo.set(self.free_blocks_count as u16);
        r.bg_free_inodes_count_lo.set(self.free_inodes_count as u16);
        r.bg_used_dirs_count_lo.set(self.used_dirs_count as u16);
        r.bg_flags.set(self.flags.bits());
        r.bg_exclude_bitmap_lo.set(self.exclude_bitmap as u32);
        r.bg_block_bitmap_csum_lo.set(self.block_bitmap_csum as u16);
        r.bg_inode_bitmap_csum_lo.set(self.inode_bitmap_csum as u16);
        r.bg_itable_unused_lo.set(self.itable_unused as u16);
        r.bg_checksum.set(self.checksum);
        if desc_size >= 64 {
            r.bg_block_bitmap_hi.set((self.block_bitmap >> 32) as u32);
            r.bg_inode_bitmap_hi.set((self.inode_bitmap >> 32) as u32);
            r.bg_inode_table_hi.set((self.inode_table >> 32) as u32);
            r.bg_free_blocks_count_hi.set((self.free_blocks_count >> 16) as u16);
            r.bg_free_inodes_count_hi.set((self.free_inodes_count >> 16) as u16);
            r.bg_used_dirs_count_hi.set((self.used_dirs_count >> 16) as u16);
            r.bg_itable_unused_hi.set((self.itable_unused >> 16) as u16);
            r.bg_exclude_bitmap_hi.set((self.exclude_bitmap >> 32) as u32);
            r.bg_block_bitmap_csum_hi.set((self.block_bitmap_csum >> 16) as u16);
            r.bg_inode_bitmap_csum_hi.set((self.inode_bitmap_csum >> 16) as u16);
        }
        let n = desc_size.min(64);
        bytes[..n].copy_from_slice(&r.as_bytes()[..n]);
    }
}

/// The checksum a descriptor should carry (`ext4_group_desc_csum`), computed
/// over its encoded bytes `raw[..desc_size]` with `bg_checksum` taken as zero
/// (bytes missing from a short `raw` count as zeros).
/// Returns 0 when the filesystem has no group checksums.
pub fn group_desc_checksum(geo: &Geometry, group: u32, raw: &[u8]) -> u16 {
    let size = (geo.desc_size as usize).max(GD_CHECKSUM_OFFSET + 2);
    let padded;
    let raw = match raw.get(..size) {
        Some(r) => r,
        None => {
            padded = [raw, &vec![0; size - raw.len()]].concat();
            &padded[..]
        }
    };
    let before = &raw[..GD_CHECKSUM_OFFSET];
    let after = &raw[GD_CHECKSUM_OFFSET + 2..];
    match geo.csum {
        CsumKind::None => 0,
        CsumKind::MetadataCsum => {
            let c = crc32c(geo.csum_seed, &group.to_le_bytes());
            let c = crc32c(c, before);
            let c = crc32c(c, &[0, 0]);
            (crc32c(c, after) & 0xFFFF) as u16
        }
        CsumKind::GdtCsum => {
            let c = crc16(!0, &geo.uuid);
            let c = crc16(c, &group.to_le_bytes());
            let c = crc16(c, before);
            crc16(c, after)
        }
    }
}

/// Checks the stored checksum of the descriptor bytes `raw` of group `group`.
pub fn verify_group_desc(geo: &Geometry, group: u32, raw: &[u8]) -> Result<(), FormatError> {
    if geo.csum == CsumKind::None {
        return Ok(());
    }
    let need = (geo.desc_size as usize).max(GD_CHECKSUM_OFFSET + 2);
    if raw.len() < need {
        return Err(FormatError::Truncated { structure: Structure::GroupDesc, len: raw.len(), need });
    }
    let stored = crate::get_u16(raw, GD_CHECKSUM_OFFSET);
    let computed = group_desc_checksum(geo, group, raw);
    FormatError::check_csum(Structure::GroupDesc, stored.into(), computed.into())
}

/// Recomputes and stores the checksum of the descriptor bytes `raw`;
/// without group checksums `bg_checksum` is left as it is, as the kernel's
/// `ext4_group_desc_csum_set` and libext2fs leave it.
pub fn update_group_desc_checksum(geo: &Geometry, group: u32, raw: &mut [u8]) {
    if geo.csum == CsumKind::None {
        return;
    }
    let c = group_desc_checksum(geo, group, raw);
    crate::put_u16(raw, GD_CHECKSUM_OFFSET, c);
}

/// Compares a bitmap checksum with the one stored in a descriptor, using
/// only the low 16 bits when descriptors are 32 bytes (`ext4_*_bitmap_csum_verify`).
pub fn bitmap_csum_matches(geo: &Geometry, stored: u32, computed: u32) -> bool {
    if geo.desc_size >= 64 { stored == computed } else { stored == computed & 0xFFFF }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_desc(wide: bool) -> impl Strategy<Value = GroupDesc> {
        let m64 = if wide { u64::MAX } else { u64::from(u32::MAX) };
        let m32 = if wide { u32::MAX } else { 0xFFFF };
        (any::<[u64; 4]>(), any::<[u32; 6]>(), any::<u16>(), any::<u16>()).prop_map(move |(a, b, f, c)| GroupDesc {
            block_bitmap: a[0] & m64,
            inode_bitmap: a[1] & m64,
            inode_table: a[2] & m64,
            exclude_bitmap: a[3] & m64,
            free_blocks_count: b[0] & m32,
            free_inodes_count: b[1] & m32,
            used_dirs_count: b[2] & m32,
            block_bitmap_csum: b[3] & m32,
            inode_bitmap_csum: b[4] & m32,
            itable_unused: b[5] & m32,
            flags: GroupDescFlags::from_bits_retain(f),
            checksum: c,
        })
    }

    /// A 64-byte-descriptor geometry with metadata_csum.
    fn csum_geometry() -> Geometry {
        let mut sb = crate::Superblock::zeroed();
        sb.s_magic.set(crate::superblock::EXT4_MAGIC);
        sb.s_log_block_size.set(2);
        sb.s_blocks_count_lo.set(32768 * 4);
        sb.s_blocks_per_group.set(32768);
        sb.s_clusters_per_group.set(32768);
        sb.s_inodes_per_group.set(8192);
        sb.s_inodes_count.set(8192 * 4);
        sb.s_rev_level.set(1);
        sb.s_inode_size.set(256);
        sb.s_first_ino.set(11);
        let mut geo = Geometry::new(&sb).unwrap();
        geo.csum = CsumKind::MetadataCsum;
        geo.desc_size = 64;
        geo
    }

    /// Found by the `group_desc` fuzz target: a descriptor shorter than
    /// `desc_size` (here none at all) panicked instead of being refused.
    #[test]
    fn short_descriptor_is_refused() {
        let geo = csum_geometry();
        for len in [0, 1, 30, 32, 63] {
            let raw = vec![0x5a; len];
            assert!(matches!(verify_group_desc(&geo, 1, &raw), Err(FormatError::Truncated { .. })), "{len} bytes");
            let mut padded = raw.clone();
            padded.resize(64, 0);
            assert_eq!(group_desc_checksum(&geo, 1, &raw), group_desc_checksum(&geo, 1, &padded));
        }
        assert!(verify_group_desc(&geo, 1, &[0; 64]).is_err());
    }

    proptest! {
        #[test]
        fn round_trip_64(d in arb_desc(true)) {
            let mut buf = [0u8; 64];
            d.write(&mut buf, 64);
            prop_assert_eq!(GroupDesc::parse(&buf, 64).unwrap(), d);
        }

        #[test]
        fn round_trip_32(d in arb_desc(false)) {
            let mut buf = [0u8; 32];
            d.write(&mut buf, 32);
            prop_assert_eq!(GroupDesc::parse(&buf, 32).unwrap(), d);
        }
    }
}

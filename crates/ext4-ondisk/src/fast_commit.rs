//! Fast-commit tags (`fs/ext4/fast_commit.h`): the little-endian
//! tag-length-value records that ext4 writes in the journal's fast-commit
//! area. Each record is a [`FcTl`] header followed by `fc_len` value bytes;
//! [`FcTag::parse`] checks the length as the kernel's
//! `ext4_fc_value_len_isvalid` does and decodes the value.
//!
//! The checksum of a fast commit (`fc_crc` of its tail) is [`fc_crc`] over
//! every record since the previous tail, the tail's own header and `fc_tid`
//! included.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::checksum::crc32c;
use core::mem::offset_of;

use crate::extent::{ENTRY_SIZE, EXTENT_MAGIC, Extent, NodeHeader, decode_extent, write_header};
use crate::inode::{GOOD_OLD_INODE_SIZE, I_BLOCK_SIZE, InodeFlags, InodeRaw};
use crate::le::{U16, U32};
use crate::{FormatError, Structure, get_u16, get_u32};

/// `EXT4_FC_TAG_ADD_RANGE`: blocks mapped into an inode.
pub const TAG_ADD_RANGE: u16 = 0x0001;
/// `EXT4_FC_TAG_DEL_RANGE`: logical blocks unmapped from an inode.
pub const TAG_DEL_RANGE: u16 = 0x0002;
/// `EXT4_FC_TAG_CREAT`: a new inode and its first name.
pub const TAG_CREAT: u16 = 0x0003;
/// `EXT4_FC_TAG_LINK`: a name added to an existing inode.
pub const TAG_LINK: u16 = 0x0004;
/// `EXT4_FC_TAG_UNLINK`: a name removed.
pub const TAG_UNLINK: u16 = 0x0005;
/// `EXT4_FC_TAG_INODE`: an inode record to copy.
pub const TAG_INODE: u16 = 0x0006;
/// `EXT4_FC_TAG_PAD`: filler up to the end of a block.
pub const TAG_PAD: u16 = 0x0007;
/// `EXT4_FC_TAG_TAIL`: the end of one fast commit, with its tid and crc.
pub const TAG_TAIL: u16 = 0x0008;
/// `EXT4_FC_TAG_HEAD`: the start of the area, with its tid and features.
pub const TAG_HEAD: u16 = 0x0009;

/// `EXT4_FC_SUPPORTED_FEATURES`: no head feature bit is defined.
pub const SUPPORTED_FEATURES: u32 = 0;
/// Size of the tag header (`EXT4_FC_TAG_BASE_LEN`).
pub const TL_SIZE: usize = 4;
/// Bytes of a tail that its crc covers after the header (`fc_tid`).
pub const TAIL_CRC_COVERED: usize = 4;
/// Longest name in a dentry tag (`EXT4_NAME_LEN`).
pub const NAME_LEN: usize = 255;

/// `struct ext4_fc_tl`: the header of every record.
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct FcTl {
    /// Tag, one of the `TAG_*` values.
    pub fc_tag: U16,
    /// Length of the value that follows.
    pub fc_len: U16,
}

/// `struct ext4_fc_head`.
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct FcHead {
    /// Feature bits the replay must understand.
    pub fc_features: U32,
    /// Transaction the fast commits follow.
    pub fc_tid: U32,
}

/// `struct ext4_fc_add_range`.
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct FcAddRange {
    /// Inode.
    pub fc_ino: U32,
    /// The mapping, as a `struct ext4_extent`.
    pub fc_ex: [u8; ENTRY_SIZE],
}

/// `struct ext4_fc_del_range`.
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct FcDelRange {
    /// Inode.
    pub fc_ino: U32,
    /// First logical block unmapped.
    pub fc_lblk: U32,
    /// Number of logical blocks.
    pub fc_len: U32,
}

/// `struct ext4_fc_dentry_info` without its name (CREAT, LINK, UNLINK).
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct FcDentryInfo {
    /// Directory holding the name.
    pub fc_parent_ino: U32,
    /// Inode the name points at.
    pub fc_ino: U32,
}

/// `struct ext4_fc_tail`.
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct FcTail {
    /// Transaction the fast commit follows.
    pub fc_tid: U32,
    /// crc32c of the records since the previous tail.
    pub fc_crc: U32,
}

const _: () = assert!(size_of::<FcTl>() == TL_SIZE);
const _: () = assert!(size_of::<FcHead>() == 8);
const _: () = assert!(size_of::<FcAddRange>() == 16);
const _: () = assert!(size_of::<FcDelRange>() == 12);
const _: () = assert!(size_of::<FcDentryInfo>() == 8);
const _: () = assert!(size_of::<FcTail>() == 8);

/// A directory entry change (CREAT, LINK or UNLINK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FcDentry<'a> {
    /// Directory holding the name.
    pub parent: u32,
    /// Inode the name points at.
    pub ino: u32,
    /// The name (1 ..= 255 bytes).
    pub name: &'a [u8],
}

/// One decoded fast-commit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FcTag<'a> {
    /// `ADD_RANGE`: `extent` is now mapped in `ino`.
    AddRange {
        /// Inode.
        ino: u32,
        /// Logical start, length, physical start, unwritten.
        extent: Extent,
    },
    /// `DEL_RANGE`: logical blocks `[lblk, lblk + len)` of `ino` are unmapped.
    DelRange {
        /// Inode.
        ino: u32,
        /// First logical block.
        lblk: u32,
        /// Number of blocks.
        len: u32,
    },
    /// `CREAT`: a new inode named in its parent.
    Create(FcDentry<'a>),
    /// `LINK`: a name added.
    Link(FcDentry<'a>),
    /// `UNLINK`: a name removed.
    Unlink(FcDentry<'a>),
    /// `INODE`: the inode record to copy (128 bytes up to the inode size).
    Inode {
        /// Inode.
        ino: u32,
        /// The record's first bytes.
        raw: &'a [u8],
    },
    /// `PAD`.
    Pad,
    /// `TAIL`.
    Tail {
        /// `fc_tid`.
        tid: u32,
        /// `fc_crc`.
        crc: u32,
    },
    /// `HEAD`.
    Head {
        /// `fc_features`.
        features: u32,
        /// `fc_tid`.
        tid: u32,
    },
}

/// Lays the value of an INODE record (`record`, the inode's first bytes)
/// over the inode's bytes in its table (`disk`) as `ext4_fc_replay_inode`
/// does: everything but `i_block` comes from the record, up to its
/// length; `i_block` stays, unless the record is of an inline-data inode
/// (then it comes from the record too) or an extent-mapped one whose kept
/// `i_block` has no extent header (then it gets an empty one). The
/// checksum is left to the caller.
pub fn apply_inode_record(disk: &mut [u8], record: &[u8]) {
    let map = offset_of!(InodeRaw, i_block)..offset_of!(InodeRaw, i_generation);
    let n = record.len().min(disk.len());
    disk[..map.start].copy_from_slice(&record[..map.start]);
    if n > map.end {
        disk[map.end..n].copy_from_slice(&record[map.end..n]);
    }
    let flags = InodeFlags::from_bits_retain(get_u32(disk, offset_of!(InodeRaw, i_flags)));
    let block = &mut disk[map.clone()];
    if flags.contains(InodeFlags::INLINE_DATA) {
        block.copy_from_slice(&record[map]);
    } else if flags.contains(InodeFlags::EXTENTS) && get_u16(block, 0) != EXTENT_MAGIC {
        // Only the header is reset, as the kernel resets it.
        write_header(block, NodeHeader { entries: 0, max: ((I_BLOCK_SIZE - ENTRY_SIZE) / ENTRY_SIZE) as u16, depth: 0, generation: 0 });
    }
}

/// Reads the record header at `off` of `block`: `(tag, len)`, or `None`
/// when fewer than [`TL_SIZE`] bytes remain.
pub fn read_tl(block: &[u8], off: usize) -> Option<(u16, u16)> {
    let tl = FcTl::read_from_bytes(block.get(off..off.checked_add(TL_SIZE)?)?).ok()?;
    Some((tl.fc_tag.get(), tl.fc_len.get()))
}

/// The running checksum of a fast commit: `ext4_chksum` (crc32c, no
/// inversion) of `bytes` continuing from `crc` (0 after each tail).
pub fn fc_crc(crc: u32, bytes: &[u8]) -> u32 {
    crc32c(crc, bytes)
}

impl<'a> FcTag<'a> {
    /// Decodes the value of a record with tag `tag`, after checking its
    /// length as `ext4_fc_value_len_isvalid` does for a filesystem whose
    /// inodes are `inode_size` bytes. Unknown tags are errors too.
    pub fn parse(tag: u16, value: &'a [u8], inode_size: usize) -> Result<Self, FormatError> {
        check_len(tag, value.len(), inode_size)?;
        Ok(match tag {
            TAG_ADD_RANGE => {
                let r = FcAddRange::read_from_bytes(value).map_err(|_| truncated(value.len(), 16))?;
                Self::AddRange { ino: r.fc_ino.get(), extent: decode_extent(&r.fc_ex) }
            }
            TAG_DEL_RANGE => {
                let r = FcDelRange::read_from_bytes(value).map_err(|_| truncated(value.len(), 12))?;
                Self::DelRange { ino: r.fc_ino.get(), lblk: r.fc_lblk.get(), len: r.fc_len.get() }
            }
            TAG_CREAT => Self::Create(dentry(value)?),
            TAG_LINK => Self::Link(dentry(value)?),
            TAG_UNLINK => Self::Unlink(dentry(value)?),
            TAG_INODE => {
                let (ino, raw) = U32::read_from_prefix(value).map_err(|_| truncated(value.len(), 4))?;
                Self::Inode { ino: ino.get(), raw }
            }
            TAG_PAD => Self::Pad,
            TAG_TAIL => {
                let (t, _) = FcTail::read_from_prefix(value).map_err(|_| truncated(value.len(), 8))?;
                Self::Tail { tid: t.fc_tid.get(), crc: t.fc_crc.get() }
            }
            _ => {
                let h = FcHead::read_from_bytes(value).map_err(|_| truncated(value.len(), 8))?;
                Self::Head { features: h.fc_features.get(), tid: h.fc_tid.get() }
            }
        })
    }
}

/// `ext4_fc_value_len_isvalid`: the value length each tag allows.
fn check_len(tag: u16, len: usize, inode_size: usize) -> Result<(), FormatError> {
    let dentry = size_of::<FcDentryInfo>();
    let (ok, reason) = match tag {
        TAG_ADD_RANGE => (len == size_of::<FcAddRange>(), "ADD_RANGE values are 16 bytes"),
        TAG_DEL_RANGE => (len == size_of::<FcDelRange>(), "DEL_RANGE values are 12 bytes"),
        TAG_CREAT | TAG_LINK | TAG_UNLINK => {
            (len > dentry && len - dentry <= NAME_LEN, "a dentry value holds two inode numbers and a name of 1 to 255 bytes")
        }
        TAG_INODE => (
            len >= 4 + GOOD_OLD_INODE_SIZE && len - 4 <= inode_size,
            "an inode value holds an inode number and 128 bytes up to the inode size",
        ),
        TAG_PAD => (true, ""),
        TAG_TAIL => (len >= size_of::<FcTail>(), "a tail value holds at least a tid and a crc"),
        TAG_HEAD => (len == size_of::<FcHead>(), "a head value is 8 bytes"),
        _ => return Err(FormatError::bad(Structure::FastCommit, "fc_tag", tag.into(), "unknown tag")),
    };
    if ok { Ok(()) } else { Err(FormatError::bad(Structure::FastCommit, "fc_len", len as u64, reason)) }
}

fn dentry(value: &[u8]) -> Result<FcDentry<'_>, FormatError> {
    let (d, name) = FcDentryInfo::read_from_prefix(value).map_err(|_| truncated(value.len(), 8))?;
    Ok(FcDentry { parent: d.fc_parent_ino.get(), ino: d.fc_ino.get(), name })
}

fn truncated(len: usize, need: usize) -> FormatError {
    FormatError::Truncated { structure: Structure::FastCommit, len, need }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(tag: u16, value: &[u8], expected: Result<FcTag<'_>, &str>) {
        match (FcTag::parse(tag, value, 256), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(e), Err(field)) => assert!(e.to_string().contains(field), "{e}"),
            (got, want) => panic!("tag {tag}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn decodes_each_tag() {
        let mut add = Vec::new();
        add.extend_from_slice(&12u32.to_le_bytes());
        add.extend_from_slice(&[5, 0, 0, 0, 0x02, 0x80, 1, 0, 0x10, 0x20, 0, 0]);
        let extent = Extent { logical: 5, len: 2, start: 0x1_0000_2010, unwritten: true };
        check(TAG_ADD_RANGE, &add, Ok(FcTag::AddRange { ino: 12, extent }));
        check(TAG_DEL_RANGE, &[1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0], Ok(FcTag::DelRange { ino: 1, lblk: 2, len: 3 }));
        let d = [2, 0, 0, 0, 13, 0, 0, 0, b'a', b'b'];
        check(TAG_LINK, &d, Ok(FcTag::Link(FcDentry { parent: 2, ino: 13, name: b"ab" })));
        check(TAG_HEAD, &[0, 0, 0, 0, 7, 0, 0, 0], Ok(FcTag::Head { features: 0, tid: 7 }));
        check(TAG_TAIL, &[7, 0, 0, 0, 1, 2, 3, 4, 0, 0], Ok(FcTag::Tail { tid: 7, crc: 0x0403_0201 }));
        check(TAG_PAD, &[], Ok(FcTag::Pad));
    }

    #[test]
    fn refuses_bad_lengths() {
        check(TAG_ADD_RANGE, &[0; 15], Err("fc_len = 15"));
        check(TAG_DEL_RANGE, &[0; 13], Err("fc_len = 13"));
        check(TAG_CREAT, &[0; 8], Err("fc_len = 8"));
        check(TAG_UNLINK, &[0; 8 + 256], Err("fc_len = 264"));
        check(TAG_INODE, &[0; 4 + 127], Err("fc_len = 131"));
        check(TAG_INODE, &[0; 4 + 257], Err("fc_len = 261"));
        check(TAG_TAIL, &[0; 7], Err("fc_len = 7"));
        check(TAG_HEAD, &[0; 9], Err("fc_len = 9"));
        check(0x000A, &[], Err("fc_tag = 10"));
        check(0, &[], Err("fc_tag = 0"));
    }

    #[test]
    fn inode_records_keep_the_block_map() {
        let extents = InodeFlags::EXTENTS.bits();
        let mut record = vec![0xAB; 160];
        record[offset_of!(InodeRaw, i_flags)..][..4].copy_from_slice(&extents.to_le_bytes());
        let mut disk = vec![0x11; 256];
        disk[40..42].copy_from_slice(&EXTENT_MAGIC.to_le_bytes());
        apply_inode_record(&mut disk, &record);
        assert_eq!(&disk[..32], &record[..32]);
        assert_eq!(disk[40..42], EXTENT_MAGIC.to_le_bytes(), "a valid map is kept");
        assert!(disk[42..100].iter().all(|&b| b == 0x11));
        assert_eq!(&disk[100..160], &record[100..160]);
        assert!(disk[160..].iter().all(|&b| b == 0x11), "bytes past the record stay");
        // A kept map without a header becomes an empty tree.
        let mut disk = vec![0x11; 256];
        apply_inode_record(&mut disk, &record);
        assert_eq!(&disk[40..52], &[0x0A, 0xF3, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0]);
        assert!(disk[52..100].iter().all(|&b| b == 0x11));
        // Inline data comes from the record.
        let inline = InodeFlags::INLINE_DATA.bits();
        record[offset_of!(InodeRaw, i_flags)..][..4].copy_from_slice(&inline.to_le_bytes());
        let mut disk = vec![0x11; 256];
        apply_inode_record(&mut disk, &record);
        assert_eq!(&disk[..160], &record[..]);
    }

    #[test]
    fn reads_headers_inside_the_block_only() {
        let b = [9, 0, 8, 0, 1];
        assert_eq!(read_tl(&b, 0), Some((9, 8)));
        assert_eq!(read_tl(&b, 2), None);
        assert_eq!(read_tl(&b, usize::MAX), None);
    }
}

//! Inodes (`struct ext4_inode`): 128 bytes of base fields, then
//! `i_extra_isize` bytes of extra fields, then the in-inode xattr area.

use bitflags::bitflags;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use crate::checksum::{crc32c, inode_seed};
use crate::le::{U16, U32};
use crate::time::Timestamp;
use crate::{FormatError, Structure};

/// Size of the base inode (`EXT2_GOOD_OLD_INODE_SIZE`).
pub const GOOD_OLD_INODE_SIZE: usize = 128;
/// Size of `i_block`.
pub const I_BLOCK_SIZE: usize = 60;

/// The raw inode up to the last extra field this crate knows (160 bytes).
#[derive(Clone, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct InodeRaw {
    /// File mode: type and permissions.
    pub i_mode: U16,
    /// Owner uid, low 16 bits.
    pub i_uid: U16,
    /// Size in bytes, low 32 bits.
    pub i_size_lo: U32,
    /// Access time.
    pub i_atime: U32,
    /// Inode change time.
    pub i_ctime: U32,
    /// Modification time.
    pub i_mtime: U32,
    /// Deletion time (or next orphan in the orphan list).
    pub i_dtime: U32,
    /// Group id, low 16 bits.
    pub i_gid: U16,
    /// Hard link count.
    pub i_links_count: U16,
    /// Block count, low 32 bits.
    pub i_blocks_lo: U32,
    /// Inode flags.
    pub i_flags: U32,
    /// `l_i_version` (Linux).
    pub i_version_lo: U32,
    /// Block map, extent tree root, inline data or fast symlink target.
    pub i_block: [u8; I_BLOCK_SIZE],
    /// File version (NFS).
    pub i_generation: U32,
    /// Extended attribute block, low 32 bits.
    pub i_file_acl_lo: U32,
    /// Size, high 32 bits.
    pub i_size_high: U32,
    /// Obsolete fragment address.
    pub i_obso_faddr: U32,
    /// Block count, high 16 bits.
    pub l_i_blocks_high: U16,
    /// Extended attribute block, high 16 bits.
    pub l_i_file_acl_high: U16,
    /// Owner uid, high 16 bits.
    pub l_i_uid_high: U16,
    /// Group id, high 16 bits.
    pub l_i_gid_high: U16,
    /// Inode checksum, low 16 bits.
    pub l_i_checksum_lo: U16,
    /// Reserved.
    pub l_i_reserved: U16,
    /// Size of the extra fields after the base 128 bytes.
    pub i_extra_isize: U16,
    /// Inode checksum, high 16 bits.
    pub i_checksum_hi: U16,
    /// Extra change time bits.
    pub i_ctime_extra: U32,
    /// Extra modification time bits.
    pub i_mtime_extra: U32,
    /// Extra access time bits.
    pub i_atime_extra: U32,
    /// Creation time.
    pub i_crtime: U32,
    /// Extra creation time bits.
    pub i_crtime_extra: U32,
    /// Version, high 32 bits.
    pub i_version_hi: U32,
    /// Project id.
    pub i_projid: U32,
}

const _: () = assert!(size_of::<InodeRaw>() == 160);

/// Offset of `l_i_checksum_lo`.
pub const CHECKSUM_LO_OFFSET: usize = core::mem::offset_of!(InodeRaw, l_i_checksum_lo);
/// Offset of `i_checksum_hi`.
pub const CHECKSUM_HI_OFFSET: usize = core::mem::offset_of!(InodeRaw, i_checksum_hi);
/// Offset of `i_extra_isize`.
pub const EXTRA_ISIZE_OFFSET: usize = core::mem::offset_of!(InodeRaw, i_extra_isize);
/// Largest `i_extra_isize` whose fields this crate knows.
pub const KNOWN_EXTRA_ISIZE: u16 = (size_of::<InodeRaw>() - GOOD_OLD_INODE_SIZE) as u16;

/// End offsets of the extra fields: a field is present when
/// `128 + i_extra_isize` reaches its end (`EXT4_FITS_IN_INODE`).
mod end {
    use super::InodeRaw;
    use core::mem::offset_of;
    pub const CHECKSUM_HI: usize = offset_of!(InodeRaw, i_checksum_hi) + 2;
    pub const CTIME_EXTRA: usize = offset_of!(InodeRaw, i_ctime_extra) + 4;
    pub const MTIME_EXTRA: usize = offset_of!(InodeRaw, i_mtime_extra) + 4;
    pub const ATIME_EXTRA: usize = offset_of!(InodeRaw, i_atime_extra) + 4;
    pub const CRTIME: usize = offset_of!(InodeRaw, i_crtime) + 4;
    pub const CRTIME_EXTRA: usize = offset_of!(InodeRaw, i_crtime_extra) + 4;
    pub const VERSION_HI: usize = offset_of!(InodeRaw, i_version_hi) + 4;
    pub const PROJID: usize = offset_of!(InodeRaw, i_projid) + 4;
}

/// Whether the extra field ending at byte `end` of the inode is present.
const fn fits(extra_isize: u16, end: usize) -> bool {
    GOOD_OLD_INODE_SIZE + extra_isize as usize >= end
}

bitflags! {
    /// `i_flags`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct InodeFlags: u32 {
        /// Secure deletion.
        const SECRM = 0x1;
        /// Undelete.
        const UNRM = 0x2;
        /// Compressed.
        const COMPR = 0x4;
        /// Synchronous updates.
        const SYNC = 0x8;
        /// Immutable.
        const IMMUTABLE = 0x10;
        /// Append only.
        const APPEND = 0x20;
        /// Do not dump.
        const NODUMP = 0x40;
        /// Do not update atime.
        const NOATIME = 0x80;
        /// Encrypted.
        const ENCRYPT = 0x800;
        /// Hash-indexed directory.
        const INDEX = 0x1000;
        /// AFS directory.
        const IMAGIC = 0x2000;
        /// Journal file data.
        const JOURNAL_DATA = 0x4000;
        /// No tail merging.
        const NOTAIL = 0x8000;
        /// Synchronous directory updates.
        const DIRSYNC = 0x10000;
        /// Top of directory hierarchy (Orlov).
        const TOPDIR = 0x20000;
        /// `i_blocks` counts filesystem blocks, not sectors.
        const HUGE_FILE = 0x40000;
        /// Uses an extent tree.
        const EXTENTS = 0x80000;
        /// Verity protected.
        const VERITY = 0x100000;
        /// Holds a large xattr value.
        const EA_INODE = 0x200000;
        /// DAX.
        const DAX = 0x2000000;
        /// Data stored in the inode.
        const INLINE_DATA = 0x10000000;
        /// Project id inheritance.
        const PROJINHERIT = 0x20000000;
        /// Case-insensitive directory.
        const CASEFOLD = 0x40000000;
    }
}

/// The file type bits of `i_mode` (`S_IFMT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileType {
    /// Regular file.
    Regular,
    /// Directory.
    Directory,
    /// Symbolic link.
    Symlink,
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
    /// FIFO.
    Fifo,
    /// Socket.
    Socket,
}

/// `S_IFMT`.
pub const S_IFMT: u16 = 0xF000;

impl FileType {
    /// The type encoded in a mode, if valid.
    pub fn from_mode(mode: u16) -> Option<Self> {
        Some(match mode & S_IFMT {
            0x1000 => Self::Fifo,
            0x2000 => Self::CharDevice,
            0x4000 => Self::Directory,
            0x6000 => Self::BlockDevice,
            0x8000 => Self::Regular,
            0xA000 => Self::Symlink,
            0xC000 => Self::Socket,
            _ => return None,
        })
    }

    /// The `S_IF*` bits of this type.
    pub fn mode_bits(self) -> u16 {
        match self {
            Self::Fifo => 0x1000,
            Self::CharDevice => 0x2000,
            Self::Directory => 0x4000,
            Self::BlockDevice => 0x6000,
            Self::Regular => 0x8000,
            Self::Symlink => 0xA000,
            Self::Socket => 0xC000,
        }
    }

    /// The directory entry `file_type` code (`EXT4_FT_*`).
    pub fn dir_entry_code(self) -> u8 {
        match self {
            Self::Regular => 1,
            Self::Directory => 2,
            Self::CharDevice => 3,
            Self::BlockDevice => 4,
            Self::Fifo => 5,
            Self::Socket => 6,
            Self::Symlink => 7,
        }
    }

    /// The type of a directory entry `file_type` code, if valid.
    pub fn from_dir_entry_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Regular,
            2 => Self::Directory,
            3 => Self::CharDevice,
            4 => Self::BlockDevice,
            5 => Self::Fifo,
            6 => Self::Socket,
            7 => Self::Symlink,
            _ => return None,
        })
    }
}

/// A decoded inode. Extra fields not covered by `extra_isize` read as zero
/// and are not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inode {
    /// Type and permission bits.
    pub mode: u16,
    /// Owner (32 bits).
    pub uid: u32,
    /// Group (32 bits).
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Access time.
    pub atime: Timestamp,
    /// Change time.
    pub ctime: Timestamp,
    /// Modification time.
    pub mtime: Timestamp,
    /// Creation time (zero if not stored).
    pub crtime: Timestamp,
    /// Deletion time, or the next inode of the orphan list.
    pub dtime: u32,
    /// Hard links.
    pub links_count: u16,
    /// The 48-bit `i_blocks` value (see [`Inode::allocated_bytes`] for its unit).
    pub blocks: u64,
    /// Flags.
    pub flags: InodeFlags,
    /// Version (`l_i_version` and `i_version_hi`).
    pub version: u64,
    /// `i_block`.
    pub block: [u8; I_BLOCK_SIZE],
    /// Generation.
    pub generation: u32,
    /// Extended attribute block.
    pub file_acl: u64,
    /// `i_extra_isize` (0 for 128-byte inodes).
    pub extra_isize: u16,
    /// Project id.
    pub projid: u32,
    /// Stored checksum (only the low 16 bits if the high half does not fit).
    pub checksum: u32,
}

impl Inode {
    /// An empty inode with the given `extra_isize`.
    pub fn empty(extra_isize: u16) -> Self {
        Self {
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            atime: Timestamp::default(),
            ctime: Timestamp::default(),
            mtime: Timestamp::default(),
            crtime: Timestamp::default(),
            dtime: 0,
            links_count: 0,
            blocks: 0,
            flags: InodeFlags::empty(),
            version: 0,
            block: [0; I_BLOCK_SIZE],
            generation: 0,
            file_acl: 0,
            extra_isize,
            projid: 0,
            checksum: 0,
        }
    }

    /// Decodes the inode record `raw` (the whole `inode_size` bytes).
    pub fn parse(raw: &[u8]) -> Result<Self, FormatError> {
        check_record_len(raw)?;
        let mut buf = [0u8; size_of::<InodeRaw>()];
        let extra_isize = if raw.len() > GOOD_OLD_INODE_SIZE { crate::get_u16(raw, EXTRA_ISIZE_OFFSET) } else { 0 };
        if raw.len() > GOOD_OLD_INODE_SIZE && (GOOD_OLD_INODE_SIZE + usize::from(extra_isize) > raw.len() || extra_isize % 4 != 0) {
            return Err(FormatError::bad(Structure::Inode, "i_extra_isize", extra_isize.into(), "beyond the inode or not a multiple of 4"));
        }
        let n = raw.len().min(GOOD_OLD_INODE_SIZE + usize::from(extra_isize)).min(buf.len());
        buf[..n].copy_from_slice(&raw[..n]);
        let r = InodeRaw::read_from_bytes(&buf).expect("160 bytes");
        let x = extra_isize;
        let extra = |v: U32, end: usize| fits(x, end).then(|| v.get());
        let mut checksum = u32::from(r.l_i_checksum_lo.get());
        if fits(x, end::CHECKSUM_HI) {
            checksum |= u32::from(r.i_checksum_hi.get()) << 16;
        }
        Ok(Self {
            mode: r.i_mode.get(),
            uid: u32::from(r.i_uid.get()) | u32::from(r.l_i_uid_high.get()) << 16,
            gid: u32::from(r.i_gid.get()) | u32::from(r.l_i_gid_high.get()) << 16,
            size: u64::from(r.i_size_lo.get()) | u64::from(r.i_size_high.get()) << 32,
            atime: Timestamp::decode(r.i_atime.get(), extra(r.i_atime_extra, end::ATIME_EXTRA)),
            ctime: Timestamp::decode(r.i_ctime.get(), extra(r.i_ctime_extra, end::CTIME_EXTRA)),
            mtime: Timestamp::decode(r.i_mtime.get(), extra(r.i_mtime_extra, end::MTIME_EXTRA)),
            crtime: match extra(r.i_crtime, end::CRTIME) {
                Some(base) => Timestamp::decode(base, extra(r.i_crtime_extra, end::CRTIME_EXTRA)),
                None => Timestamp::default(),
            },
            dtime: r.i_dtime.get(),
            links_count: r.i_links_count.get(),
            blocks: u64::from(r.i_blocks_lo.get()) | u64::from(r.l_i_blocks_high.get()) << 32,
            flags: InodeFlags::from_bits_retain(r.i_flags.get()),
            version: u64::from(r.i_version_lo.get()) | u64::from(extra(r.i_version_hi, end::VERSION_HI).unwrap_or(0)) << 32,
            block: r.i_block,
            generation: r.i_generation.get(),
            file_acl: u64::from(r.i_file_acl_lo.get()) | u64::from(r.l_i_file_acl_high.get()) << 32,
            extra_isize: x,
            projid: extra(r.i_projid, end::PROJID).unwrap_or(0),
            checksum,
        })
    }

    /// Encodes into the inode record `raw`, leaving bytes this struct does not
    /// describe (the in-inode xattr area, unknown extra fields) as they are.
    /// The checksum is written as stored in `self.checksum`; call
    /// [`set_inode_checksum`] afterwards.
    pub fn write(&self, raw: &mut [u8]) {
        let mut r = InodeRaw::new_zeroed();
        let n = raw.len().min(size_of::<InodeRaw>());
        r.as_mut_bytes()[..n].copy_from_slice(&raw[..n]);
        r.i_mode.set(self.mode);
        r.i_uid.set(self.uid as u16);
        r.l_i_uid_high.set((self.uid >> 16) as u16);
        r.i_gid.set(self.gid as u16);
        r.l_i_gid_high.set((self.gid >> 16) as u16);
        r.i_size_lo.set(self.size as u32);
        r.i_size_high.set((self.size >> 32) as u32);
        // Without its `_extra` word a time holds 32-bit seconds: clamp as
        // the kernel does rather than wrap (2040 must not read as 1904).
        let has_extra = |field_end| n > GOOD_OLD_INODE_SIZE && fits(self.extra_isize, field_end);
        let encode = |t: Timestamp, extra: bool| {
            if extra { t.encode() } else { (t.secs.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32 as u32, 0) }
        };
        let (a, ax) = encode(self.atime, has_extra(end::ATIME_EXTRA));
        let (c, cx) = encode(self.ctime, has_extra(end::CTIME_EXTRA));
        let (m, mx) = encode(self.mtime, has_extra(end::MTIME_EXTRA));
        let (cr, crx) = self.crtime.encode();
        r.i_atime.set(a);
        r.i_ctime.set(c);
        r.i_mtime.set(m);
        r.i_dtime.set(self.dtime);
        r.i_links_count.set(self.links_count);
        r.i_blocks_lo.set(self.blocks as u32);
        r.l_i_blocks_high.set((self.blocks >> 32) as u16);
        r.i_flags.set(self.flags.bits());
        r.i_version_lo.set(self.version as u32);
        r.i_block = self.block;
        r.i_generation.set(self.generation);
        r.i_file_acl_lo.set(self.file_acl as u32);
        r.l_i_file_acl_high.set((self.file_acl >> 32) as u16);
        r.l_i_checksum_lo.set(self.checksum as u16);
        let x = self.extra_isize;
        if n > GOOD_OLD_INODE_SIZE {
            r.i_extra_isize.set(x);
            if fits(x, end::CHECKSUM_HI) {
                r.i_checksum_hi.set((self.checksum >> 16) as u16);
            }
            if fits(x, end::CTIME_EXTRA) {
                r.i_ctime_extra.set(cx);
            }
            if fits(x, end::MTIME_EXTRA) {
                r.i_mtime_extra.set(mx);
            }
            if fits(x, end::ATIME_EXTRA) {
                r.i_atime_extra.set(ax);
            }
            if fits(x, end::CRTIME) {
                r.i_crtime.set(cr);
            }
            if fits(x, end::CRTIME_EXTRA) {
                r.i_crtime_extra.set(crx);
            }
            if fits(x, end::VERSION_HI) {
                r.i_version_hi.set((self.version >> 32) as u32);
            }
            if fits(x, end::PROJID) {
                r.i_projid.set(self.projid);
            }
        }
        let limit = if n > GOOD_OLD_INODE_SIZE { (GOOD_OLD_INODE_SIZE + usize::from(x)).min(n) } else { n };
        raw[..limit].copy_from_slice(&r.as_bytes()[..limit]);
    }

    /// The file type, if the mode holds a valid one.
    pub fn file_type(&self) -> Option<FileType> {
        FileType::from_mode(self.mode)
    }

    /// Permission bits (including setuid, setgid, sticky).
    pub fn permissions(&self) -> u16 {
        self.mode & 0o7777
    }

    /// Bytes allocated to the file, from `i_blocks` (512-byte units unless the
    /// inode has `HUGE_FILE` on a `huge_file` filesystem, then blocks).
    pub fn allocated_bytes(&self, block_size: u32, huge_file: bool) -> u64 {
        if huge_file && self.flags.contains(InodeFlags::HUGE_FILE) { self.blocks * u64::from(block_size) } else { self.blocks * 512 }
    }

    /// Whether the inode holds an extent tree.
    pub fn has_extents(&self) -> bool {
        self.flags.contains(InodeFlags::EXTENTS)
    }

    /// Whether the inode holds inline data.
    pub fn has_inline_data(&self) -> bool {
        self.flags.contains(InodeFlags::INLINE_DATA)
    }

    /// Device number of a character or block device inode (`old` 16-bit
    /// encoding in `i_block[0]`, else the `new` encoding in `i_block[1]`).
    pub fn device_number(&self) -> (u32, u32) {
        let w0 = crate::get_u32(&self.block, 0);
        if w0 != 0 {
            ((w0 >> 8) & 0xff, w0 & 0xff)
        } else {
            let w1 = crate::get_u32(&self.block, 4);
            ((w1 & 0xfff00) >> 8, (w1 & 0xff) | ((w1 >> 12) & 0xfff00))
        }
    }

    /// Stores a device number as the kernel does (old encoding when it fits).
    pub fn set_device_number(&mut self, major: u32, minor: u32) {
        self.block = [0; I_BLOCK_SIZE];
        if major < 256 && minor < 256 {
            crate::put_u32(&mut self.block, 0, (major << 8) | minor);
        } else {
            let new = (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);
            crate::put_u32(&mut self.block, 4, new);
        }
    }
}

/// Inode records are 128 bytes, or long enough to hold `i_extra_isize` and
/// `i_checksum_hi` (132 bytes and more).
fn check_record_len(raw: &[u8]) -> Result<(), FormatError> {
    let need = if raw.len() <= GOOD_OLD_INODE_SIZE { GOOD_OLD_INODE_SIZE } else { CHECKSUM_HI_OFFSET + 2 };
    if raw.len() < need {
        return Err(FormatError::Truncated { structure: Structure::Inode, len: raw.len(), need });
    }
    Ok(())
}

/// `raw`, zero-padded when it is shorter than [`check_record_len`] wants
/// (the checksum helpers take any bytes without panicking).
fn padded(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if check_record_len(raw).is_ok() {
        return raw.into();
    }
    let need = if raw.len() < GOOD_OLD_INODE_SIZE { GOOD_OLD_INODE_SIZE } else { CHECKSUM_HI_OFFSET + 2 };
    let mut v = raw.to_vec();
    v.resize(need, 0);
    v.into()
}

/// The `metadata_csum` checksum of an inode record (`ext4_inode_csum`): the
/// whole record, with `l_i_checksum_lo` and (if present) `i_checksum_hi` as zero.
/// Records of 128 bytes keep only the low 16 bits.
pub fn inode_checksum(fs_seed: u32, ino: u32, raw: &[u8]) -> u32 {
    let raw = &*padded(raw);
    let generation = crate::get_u32(raw, core::mem::offset_of!(InodeRaw, i_generation));
    let seed = inode_seed(fs_seed, ino, generation);
    let c = crc32c(seed, &raw[..CHECKSUM_LO_OFFSET]);
    let c = crc32c(c, &[0, 0]);
    let c = crc32c(c, &raw[CHECKSUM_LO_OFFSET + 2..GOOD_OLD_INODE_SIZE]);
    if raw.len() <= GOOD_OLD_INODE_SIZE {
        return c & 0xFFFF;
    }
    let c = crc32c(c, &raw[GOOD_OLD_INODE_SIZE..CHECKSUM_HI_OFFSET]);
    if has_checksum_hi(raw) {
        let c = crc32c(c, &[0, 0]);
        crc32c(c, &raw[CHECKSUM_HI_OFFSET + 2..])
    } else {
        crc32c(c, &raw[CHECKSUM_HI_OFFSET..]) & 0xFFFF
    }
}

fn has_checksum_hi(raw: &[u8]) -> bool {
    raw.len() > GOOD_OLD_INODE_SIZE && fits(crate::get_u16(raw, EXTRA_ISIZE_OFFSET), end::CHECKSUM_HI)
}

/// The checksum stored in an inode record.
pub fn stored_inode_checksum(raw: &[u8]) -> u32 {
    let raw = &*padded(raw);
    let mut c = u32::from(crate::get_u16(raw, CHECKSUM_LO_OFFSET));
    if has_checksum_hi(raw) {
        c |= u32::from(crate::get_u16(raw, CHECKSUM_HI_OFFSET)) << 16;
    }
    c
}

/// Checks the checksum of inode record `raw` of inode `ino`.
pub fn verify_inode_checksum(fs_seed: u32, ino: u32, raw: &[u8]) -> Result<(), FormatError> {
    check_record_len(raw)?;
    FormatError::check_csum(Structure::Inode, stored_inode_checksum(raw), inode_checksum(fs_seed, ino, raw))
}

/// Computes and stores the checksum of inode record `raw` of inode `ino`.
pub fn set_inode_checksum(fs_seed: u32, ino: u32, raw: &mut [u8]) {
    let c = inode_checksum(fs_seed, ino, raw);
    crate::put_u16(raw, CHECKSUM_LO_OFFSET, c as u16);
    if has_checksum_hi(raw) {
        crate::put_u16(raw, CHECKSUM_HI_OFFSET, (c >> 16) as u16);
    }
}

/// Byte ranges of an inode record that do not count as a change for
/// `i_version`: `i_atime`, `i_version` (`l_i_version`, `i_version_hi`),
/// `i_atime_extra` and the checksum (`l_i_checksum_lo`, `i_checksum_hi`).
pub const NOT_A_CHANGE: [std::ops::Range<usize>; 6] = [0x08..0x0C, 0x24..0x28, 0x7C..0x7E, 0x82..0x84, 0x8C..0x90, 0x98..0x9C];

/// Whether two encodings of an inode record differ outside [`NOT_A_CHANGE`]
/// (compared a stretch between two of its ranges at a time).
pub fn changed_beyond_atime(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return true;
    }
    let mut from = 0;
    for r in NOT_A_CHANGE.iter().chain(std::iter::once(&(a.len()..a.len()))) {
        let (start, end) = (r.start.min(a.len()), r.end.min(a.len()));
        if from < start && a[from..start] != b[from..start] {
            return true;
        }
        from = from.max(end);
    }
    false
}

/// Raw fields a checker looks at that [`Inode`] does not decode, and a
/// decoding that tolerates a bad `i_extra_isize` (as e2fsck reads inodes).
pub mod raw {
    use super::{GOOD_OLD_INODE_SIZE, Inode, InodeRaw};
    use crate::FormatError;

    /// `i_extra_isize` as stored (0 for 128-byte records), valid or not.
    pub fn extra_isize(raw: &[u8]) -> u16 {
        if raw.len() > GOOD_OLD_INODE_SIZE + 1 { crate::get_u16(raw, super::EXTRA_ISIZE_OFFSET) } else { 0 }
    }

    /// `i_obso_faddr` (must be 0).
    pub fn obso_faddr(raw: &[u8]) -> u32 {
        crate::get_u32(raw, core::mem::offset_of!(InodeRaw, i_obso_faddr))
    }

    /// Hurd's `h_i_frag` and `h_i_fsize` (the bytes of `l_i_blocks_high` on Linux).
    pub fn hurd_frag_fsize(raw: &[u8]) -> (u8, u8) {
        let off = core::mem::offset_of!(InodeRaw, l_i_blocks_high);
        (raw[off], raw[off + 1])
    }

    /// `l_i_blocks_high`.
    pub fn blocks_high(raw: &[u8]) -> u16 {
        crate::get_u16(raw, core::mem::offset_of!(InodeRaw, l_i_blocks_high))
    }

    /// `l_i_file_acl_high`.
    pub fn file_acl_high(raw: &[u8]) -> u16 {
        crate::get_u16(raw, core::mem::offset_of!(InodeRaw, l_i_file_acl_high))
    }

    /// `i_projid` when the record is long enough and `i_extra_isize`,
    /// valid or not, reaches it; 0 otherwise (as quota accounting reads it).
    pub fn projid(raw: &[u8]) -> u32 {
        let end = super::end::PROJID;
        if raw.len() >= end && GOOD_OLD_INODE_SIZE + usize::from(extra_isize(raw)) >= end { crate::get_u32(raw, end - 4) } else { 0 }
    }

    /// Decodes `raw`; an `i_extra_isize` beyond the record or not a multiple
    /// of 4 decodes as 0 (the extra fields as absent), where
    /// [`Inode::parse`] refuses the record.
    pub fn parse_lenient(raw: &[u8]) -> Result<Inode, FormatError> {
        match Inode::parse(raw) {
            Ok(i) => Ok(i),
            Err(FormatError::BadField { field: "i_extra_isize", .. }) => {
                let mut copy = raw.to_vec();
                crate::put_u16(&mut copy, super::EXTRA_ISIZE_OFFSET, 0);
                Inode::parse(&copy)
            }
            Err(e) => Err(e),
        }
    }

    /// The `*_extra` word of each time (ctime, mtime, atime, crtime) when
    /// stored, for the pre-1970 encoding check.
    pub fn time_extras(raw: &[u8]) -> [(u32, Option<u32>); 4] {
        let extra = usize::from(extra_isize(raw));
        let get = |field: usize, extra_field: usize| {
            let base = if field + 4 <= raw.len() { crate::get_u32(raw, field) } else { 0 };
            let present = raw.len() > GOOD_OLD_INODE_SIZE && extra_field + 4 <= GOOD_OLD_INODE_SIZE + extra && extra_field + 4 <= raw.len();
            (base, present.then(|| crate::get_u32(raw, extra_field)))
        };
        use core::mem::offset_of as o;
        [
            get(o!(InodeRaw, i_ctime), o!(InodeRaw, i_ctime_extra)),
            get(o!(InodeRaw, i_mtime), o!(InodeRaw, i_mtime_extra)),
            get(o!(InodeRaw, i_atime), o!(InodeRaw, i_atime_extra)),
            get(o!(InodeRaw, i_crtime), o!(InodeRaw, i_crtime_extra)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Found by the `inode` fuzz target: records shorter than 128 bytes, or
    /// cut inside `i_extra_isize`/`i_checksum_hi`, panicked in the checksum
    /// helpers and in `parse`; they are refused as truncated.
    #[test]
    fn short_records_are_refused() {
        for len in [0usize, 1, 100, 127, 129, 130, 131] {
            let mut raw = vec![0u8; len];
            if len > 128 {
                raw[128] = 4;
            }
            assert!(matches!(Inode::parse(&raw), Err(FormatError::Truncated { .. })), "parse {len}");
            assert!(matches!(verify_inode_checksum(1, 12, &raw), Err(FormatError::Truncated { .. })), "verify {len}");
            let _ = (inode_checksum(1, 12, &raw), stored_inode_checksum(&raw));
        }
        let raw = vec![0u8; 132];
        assert!(Inode::parse(&raw).is_ok());
    }

    fn ts() -> impl Strategy<Value = Timestamp> {
        (i64::from(i32::MIN)..i64::from(i32::MAX) + (3i64 << 32), 0u32..1_000_000_000).prop_map(|(secs, nsec)| Timestamp { secs, nsec })
    }

    prop_compose! {
        fn arb_inode()(mode in any::<u16>(), uid in any::<u32>(), gid in any::<u32>(), size in any::<u64>(),
                       t in [ts(), ts(), ts(), ts()], dtime in any::<u32>(), links in any::<u16>(),
                       blocks in 0u64..(1 << 48), flags in any::<u32>(), version in any::<u64>(),
                       block in any::<[u8; 60]>(), generation in any::<u32>(), file_acl in 0u64..(1 << 48),
                       projid in any::<u32>()) -> Inode {
            Inode { mode, uid, gid, size, atime: t[0], ctime: t[1], mtime: t[2], crtime: t[3], dtime,
                    links_count: links, blocks, flags: InodeFlags::from_bits_retain(flags), version, block,
                    generation, file_acl, extra_isize: KNOWN_EXTRA_ISIZE, projid, checksum: 0 }
        }
    }

    proptest! {
        #[test]
        fn round_trip_256(inode in arb_inode()) {
            let mut raw = [0u8; 256];
            inode.write(&mut raw);
            set_inode_checksum(0x1234, 12, &mut raw);
            verify_inode_checksum(0x1234, 12, &raw).unwrap();
            let back = Inode::parse(&raw).unwrap();
            prop_assert_eq!(Inode { checksum: 0, ..back }, inode);
        }

        #[test]
        fn round_trip_128_keeps_base_fields(inode in arb_inode()) {
            let mut raw = [0u8; 128];
            inode.write(&mut raw);
            let back = Inode::parse(&raw).unwrap();
            prop_assert_eq!(back.size, inode.size);
            prop_assert_eq!(back.uid, inode.uid);
            // No extra word: 32-bit seconds, clamped as the kernel does (never wrapped).
            prop_assert_eq!(back.mtime.secs, inode.mtime.secs.clamp(i64::from(i32::MIN), i64::from(i32::MAX)));
            prop_assert_eq!(back.crtime, Timestamp::default());
        }
    }

    #[test]
    fn damaged_inode_fails_checksum() {
        let mut raw = [0u8; 256];
        let mut inode = Inode::empty(32);
        inode.mode = 0o100644;
        inode.write(&mut raw);
        set_inode_checksum(7, 12, &mut raw);
        raw[4] ^= 1;
        assert!(matches!(verify_inode_checksum(7, 12, &raw), Err(FormatError::Checksum { structure: Structure::Inode, .. })));
    }

    #[test]
    fn device_numbers() {
        let mut i = Inode::empty(32);
        for (ma, mi) in [(8, 1), (259, 0), (1, 300), (4095, 1048575)] {
            i.set_device_number(ma, mi);
            assert_eq!(i.device_number(), (ma, mi));
        }
    }
}

#[cfg(test)]
mod change_tests {
    use super::*;

    /// The definition: some byte differs outside every [`NOT_A_CHANGE`] range.
    fn naive(a: &[u8], b: &[u8]) -> bool {
        a.len() != b.len() || a.iter().zip(b).enumerate().any(|(i, (x, y))| x != y && !NOT_A_CHANGE.iter().any(|r| r.contains(&i)))
    }

    #[test]
    fn changed_beyond_atime_matches_its_definition_at_every_byte() {
        for len in [128usize, 160, 256, 1024] {
            let a: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            assert!(!changed_beyond_atime(&a, &a));
            for i in 0..len {
                let mut b = a.clone();
                b[i] ^= 0x5a;
                assert_eq!(changed_beyond_atime(&a, &b), naive(&a, &b), "record of {len} bytes, byte {i:#x} changed");
            }
            // Every ignored range changed at once is still no change.
            let mut b = a.clone();
            for r in NOT_A_CHANGE {
                for x in b.iter_mut().take(r.end.min(len)).skip(r.start) {
                    *x = !*x;
                }
            }
            assert!(!changed_beyond_atime(&a, &b));
            assert!(changed_beyond_atime(&a, &a[..len - 1]));
        }
    }
}

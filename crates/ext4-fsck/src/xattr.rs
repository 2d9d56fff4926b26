//! Reading an inode's extended attributes the way libext2fs does
//! (`ext2fs_xattrs_read`): the checks it makes decide what e2fsck thinks
//! of inline data, whose bytes past the first 60 live in `system.data`.

use ext4_ondisk::features::{Compat, Incompat};
use ext4_ondisk::inode::{Inode, InodeFlags, raw as iraw};
use ext4_ondisk::xattr::{BLOCK_HEADER_SIZE, ENTRY_HEADER, XATTR_MAGIC, entry_hash, entry_hash_signed, entry_len, value_len};

use crate::error::Result;
use crate::fs::Fs;

/// Old (v1) xattr block magic.
pub(crate) const XATTR_MAGIC_V1: u32 = 0xEA01_0000;

/// Why libext2fs refuses an inode's attributes (its `EXT2_ET_*` code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EaErr {
    /// Neither `ext_attr` nor `inline_data`.
    MissingFeature,
    /// The inode record fails its checksum.
    InodeCsum,
    /// `i_extra_isize` is not a multiple of 4.
    InodeCorrupted,
    /// A name runs past the area.
    BadNameLen,
    /// A value size is invalid.
    BadValueSize,
    /// A value offset is invalid.
    BadValueOffset,
    /// The xattr block number is invalid (or an EA inode without `ea_inode`).
    BadEaBlockNum,
    /// An entry's hash does not match.
    BadHash,
    /// The xattr block header is invalid.
    BadHeader,
    /// The xattr block fails its checksum.
    Csum,
    /// An EA inode is not usable.
    EaInodeCorrupted,
    /// An inode could not be read (e2fsck stops at this one).
    Other,
}

/// One attribute: full name and value (empty for values in EA inodes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attr {
    /// `e_name_index`.
    pub index: u8,
    /// Name without its prefix.
    pub name: Vec<u8>,
    /// Value size.
    pub size: usize,
    /// The value, for values stored in the area (not in an EA inode).
    pub value: Option<Vec<u8>>,
}

/// Whether `a` is `system.data`.
pub(crate) fn is_system_data(a: &Attr) -> bool {
    a.index == 7 && a.name == b"data"
}

/// Reads every attribute of inode `ino` (record `raw`) as `ext2fs_xattrs_read` does.
pub(crate) fn read_all(fs: &Fs<'_>, ino: u32, raw: &[u8], verify_csum: bool) -> Result<std::result::Result<Vec<Attr>, EaErr>> {
    if !fs.compat(Compat::EXT_ATTR) && !fs.incompat(Incompat::INLINE_DATA) {
        return Ok(Err(EaErr::MissingFeature));
    }
    if verify_csum && fs.csum() && ext4_ondisk::inode::verify_inode_checksum(fs.csum_seed(), ino, raw).is_err() && !all_zero(raw) {
        return Ok(Err(EaErr::InodeCsum));
    }
    let Ok(inode) = iraw::parse_lenient(raw) else { return Ok(Err(EaErr::Other)) };
    let mut out = Vec::new();
    let isz = fs.geo.inode_size as usize;
    let extra = usize::from(iraw::extra_isize(raw));
    if extra >= 2 && isz > 128 + extra + 4 {
        if extra & 3 != 0 {
            return Ok(Err(EaErr::InodeCorrupted));
        }
        let start = 128 + extra;
        if ext4_ondisk::get_u32(raw, start) == XATTR_MAGIC {
            let area = &raw[start + 4..isz];
            if let Err(e) = read_buffer(fs, ino, &inode, area, 0, &mut out)? {
                return Ok(Err(e));
            }
        }
    }
    let blk = inode.file_acl;
    if blk != 0 {
        if !fs.block_ok(blk) {
            return Ok(Err(EaErr::BadEaBlockNum));
        }
        let Some(block) = fs.img.block(blk)? else { return Ok(Err(EaErr::Other)) };
        let magic = ext4_ondisk::get_u32(&block, 0);
        if (magic != XATTR_MAGIC && magic != XATTR_MAGIC_V1) || ext4_ondisk::get_u32(&block, 8) != 1 {
            return Ok(Err(EaErr::BadHeader));
        }
        if verify_csum && fs.csum() && ext4_ondisk::xattr::verify_xattr_block(fs.csum_seed(), blk, &block).is_err() {
            return Ok(Err(EaErr::Csum));
        }
        if magic != XATTR_MAGIC {
            return Ok(Err(EaErr::BadHeader));
        }
        if let Err(e) = read_buffer(fs, ino, &inode, &block, BLOCK_HEADER_SIZE, &mut out)? {
            return Ok(Err(e));
        }
    }
    Ok(Ok(out))
}

fn all_zero(raw: &[u8]) -> bool {
    raw[..128].iter().all(|&b| b == 0)
}

/// `read_xattrs_from_buffer`: `area` holds values at offsets from its
/// start and entries from `first`.
fn read_buffer(
    fs: &Fs<'_>,
    ino: u32,
    inode: &Inode,
    area: &[u8],
    first: usize,
    out: &mut Vec<Attr>,
) -> Result<std::result::Result<(), EaErr>> {
    let storage = area.len() - first;
    let values_size = area.len();
    // Find the end, checking names.
    let (mut p, mut remain) = (first, storage);
    while remain >= ENTRY_HEADER && ext4_ondisk::get_u32(area, p) != 0 {
        remain -= ENTRY_HEADER;
        let name_len = usize::from(area[p]);
        if value_len(name_len) > remain {
            return Ok(Err(EaErr::BadNameLen));
        }
        remain -= value_len(name_len);
        p += entry_len(name_len);
    }
    let end = p;
    let (mut p, mut remain) = (first, storage);
    while remain >= ENTRY_HEADER && ext4_ondisk::get_u32(area, p) != 0 {
        let name_len = usize::from(area[p]);
        remain -= ENTRY_HEADER + value_len(name_len);
        let index = area[p + 1];
        let offs = usize::from(ext4_ondisk::get_u16(area, p + 2));
        let inum = ext4_ondisk::get_u32(area, p + 4);
        let size = ext4_ondisk::get_u32(area, p + 8) as usize;
        let hash = ext4_ondisk::get_u32(area, p + 12);
        let name = area[p + ENTRY_HEADER..p + ENTRY_HEADER + name_len].to_vec();
        if !fs.incompat(Incompat::EA_INODE) && inum != 0 {
            return Ok(Err(EaErr::BadEaBlockNum));
        }
        let mut value: Option<&[u8]> = None;
        if inum == 0 {
            if size > remain {
                return Ok(Err(EaErr::BadValueSize));
            }
            if offs + size > values_size || (size > 0 && offs < end + 4) {
                return Ok(Err(EaErr::BadValueOffset));
            }
            remain -= size;
            value = Some(&area[offs..(offs + value_len(size)).min(area.len())]);
        } else {
            if offs != 0 {
                return Ok(Err(EaErr::BadValueOffset));
            }
            if size > 65536 {
                return Ok(Err(EaErr::BadValueSize));
            }
            if let Err(e) = check_ea_inode(fs, inum, size)? {
                return Ok(Err(e));
            }
        }
        if hash != 0 && !hash_ok(fs, ino, inode, &name, value, inum, hash)? {
            // libext2fs then reads inode `e_value_inum` for a Lustre-style
            // reference; inode 0 does not exist.
            return Ok(Err(if inum == 0 { EaErr::Other } else { EaErr::BadHash }));
        }
        let value = value.map(|v| v[..size.min(v.len())].to_vec());
        out.push(Attr { index, name, size, value });
        p += entry_len(name_len);
    }
    Ok(Ok(()))
}

/// An EA inode must be in use, flagged, not inline, and hold `size` bytes.
fn check_ea_inode(fs: &Fs<'_>, inum: u32, size: usize) -> Result<std::result::Result<(), EaErr>> {
    let Some(raw) = fs.read_inode_raw(inum)? else { return Ok(Err(EaErr::Other)) };
    let Ok(ea) = iraw::parse_lenient(&raw) else { return Ok(Err(EaErr::Other)) };
    if ea.flags.contains(InodeFlags::INLINE_DATA) || !ea.flags.contains(InodeFlags::EA_INODE) || ea.links_count == 0 {
        return Ok(Err(EaErr::EaInodeCorrupted));
    }
    if ea.size != size as u64 {
        return Ok(Err(EaErr::BadValueSize));
    }
    Ok(Ok(()))
}

/// Whether an entry's stored hash matches (unsigned or signed names, EA
/// inode hashes mixed in, or an old Lustre-style EA inode reference).
fn hash_ok(fs: &Fs<'_>, ino: u32, inode: &Inode, name: &[u8], value: Option<&[u8]>, inum: u32, stored: u32) -> Result<bool> {
    let (mut h, mut s) = (entry_hash(name, value), entry_hash_signed(name, value));
    let child = if inum != 0 { fs.read_inode_raw(inum)?.and_then(|r| iraw::parse_lenient(&r).ok()) } else { None };
    if inum != 0 {
        let Some(c) = &child else { return Ok(false) };
        let ea_hash = c.atime.secs as u32;
        h = ext4_ondisk::xattr::mix_ea_inode_hash(h, ea_hash);
        s = ext4_ondisk::xattr::mix_ea_inode_hash(s, ea_hash);
    }
    if stored == h || stored == s {
        return Ok(true);
    }
    Ok(child.is_some_and(|c| c.mtime.secs as u32 == ino && c.generation == inode.generation))
}

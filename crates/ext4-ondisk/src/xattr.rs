//! Extended attributes: the external xattr block (32-byte header, entries
//! growing down, values growing up) and the in-inode area after
//! `i_extra_isize` (4-byte magic, then the same entries).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::checksum::crc32c;
use crate::le::U32;
use crate::{FormatError, Structure};

/// `h_magic` and the in-inode magic.
pub const XATTR_MAGIC: u32 = 0xEA02_0000;
/// Size of the block header.
pub const BLOCK_HEADER_SIZE: usize = 32;
/// Size of the fixed part of an entry.
pub const ENTRY_HEADER: usize = 16;
/// Most references a shared block may have (`EXT4_XATTR_REFCOUNT_MAX`).
pub const REFCOUNT_MAX: u32 = 1024;

/// Bytes an entry with a name of `name_len` bytes takes (`EXT4_XATTR_LEN`).
pub const fn entry_len(name_len: usize) -> usize {
    (ENTRY_HEADER + name_len + 3) & !3
}

/// Bytes a value of `size` bytes takes (`EXT4_XATTR_SIZE`).
pub const fn value_len(size: usize) -> usize {
    (size + 3) & !3
}

/// `struct ext4_xattr_header`.
#[derive(Clone, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct XattrBlockHeader {
    /// Magic, 0xEA020000.
    pub h_magic: U32,
    /// Number of inodes sharing the block.
    pub h_refcount: U32,
    /// Blocks used (always 1).
    pub h_blocks: U32,
    /// Hash of all entries' hashes.
    pub h_hash: U32,
    /// Block checksum.
    pub h_checksum: U32,
    /// Reserved.
    pub h_reserved: [U32; 3],
}
const _: () = assert!(size_of::<XattrBlockHeader>() == BLOCK_HEADER_SIZE);

/// Name prefixes and their `e_name_index` codes.
pub const PREFIXES: &[(u8, &str)] = &[
    (1, "user."),
    (2, "system.posix_acl_access"),
    (3, "system.posix_acl_default"),
    (4, "trusted."),
    (6, "security."),
    (7, "system."),
    (8, "system.richacl"),
];

/// Splits a full name into `(e_name_index, suffix)` with the longest matching prefix.
pub fn encode_name(full: &[u8]) -> (u8, &[u8]) {
    let mut best: Option<(u8, usize)> = None;
    for &(idx, prefix) in PREFIXES {
        let p = prefix.as_bytes();
        if full.starts_with(p) && best.is_none_or(|(_, l)| p.len() > l) {
            best = Some((idx, p.len()));
        }
    }
    match best {
        Some((idx, l)) => (idx, &full[l..]),
        None => (0, full),
    }
}

/// Rebuilds the full name from an index and a suffix; `None` for unknown indexes.
pub fn decode_name(index: u8, suffix: &[u8]) -> Option<Vec<u8>> {
    let prefix = if index == 0 { "" } else { PREFIXES.iter().find(|(i, _)| *i == index)?.1 };
    let mut v = prefix.as_bytes().to_vec();
    v.extend_from_slice(suffix);
    Some(v)
}

/// One entry, borrowed from its area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XattrEntry<'a> {
    /// Offset of the entry within the area.
    pub offset: usize,
    /// `e_name_index`.
    pub name_index: u8,
    /// Name without its prefix.
    pub name: &'a [u8],
    /// `e_value_offs`.
    pub value_offs: u16,
    /// `e_value_inum`: the inode holding the value (`ea_inode`), or 0.
    pub value_inum: u32,
    /// `e_value_size`.
    pub value_size: u32,
    /// `e_hash`.
    pub hash: u32,
}

/// Iterates over the entries of an xattr area, stopping at the 4-byte zero
/// terminator; `entries` is the area starting at the first entry.
#[derive(Debug, Clone)]
pub struct XattrEntryIter<'a> {
    area: &'a [u8],
    pos: usize,
    structure: Structure,
    done: bool,
}

impl<'a> XattrEntryIter<'a> {
    /// Iterates over entries starting at `start` of `area`.
    pub fn new(area: &'a [u8], start: usize, structure: Structure) -> Self {
        Self { area, pos: start, structure, done: false }
    }

    /// Offset just past the last entry (where the terminator is), once iteration has finished.
    pub fn end(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for XattrEntryIter<'a> {
    type Item = Result<XattrEntry<'a>, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let a = self.area;
        let p = self.pos;
        if p + 4 > a.len() {
            self.done = true;
            return Some(Err(FormatError::bad(self.structure, "e_name_len", p as u64, "entries run past the end without a terminator")));
        }
        if crate::get_u32(a, p) == 0 {
            self.done = true;
            return None;
        }
        let name_len = usize::from(a[p]);
        // An empty name is valid (POSIX ACLs are index 2 and 3 with no
        // name); the list ends at a zero word, checked above.
        if p + entry_len(name_len) > a.len() {
            self.done = true;
            return Some(Err(FormatError::bad(self.structure, "e_name_len", name_len as u64, "past the end of the area")));
        }
        let e = XattrEntry {
            offset: p,
            name_index: a[p + 1],
            value_offs: crate::get_u16(a, p + 2),
            value_inum: crate::get_u32(a, p + 4),
            value_size: crate::get_u32(a, p + 8),
            hash: crate::get_u32(a, p + 12),
            name: &a[p + ENTRY_HEADER..p + ENTRY_HEADER + name_len],
        };
        self.pos = p + entry_len(name_len);
        Some(Ok(e))
    }
}

/// Writes an entry header and name at `pos` of an area.
pub fn write_entry(area: &mut [u8], pos: usize, e: &XattrEntry<'_>) {
    area[pos] = e.name.len() as u8;
    area[pos + 1] = e.name_index;
    crate::put_u16(area, pos + 2, e.value_offs);
    crate::put_u32(area, pos + 4, e.value_inum);
    crate::put_u32(area, pos + 8, e.value_size);
    crate::put_u32(area, pos + 12, e.hash);
    area[pos + ENTRY_HEADER..pos + ENTRY_HEADER + e.name.len()].copy_from_slice(e.name);
    let end = pos + entry_len(e.name.len());
    area[pos + ENTRY_HEADER + e.name.len()..end].fill(0);
}

const NAME_HASH_SHIFT: u32 = 5;
const VALUE_HASH_SHIFT: u32 = 16;
const BLOCK_HASH_SHIFT: u32 = 16;

/// The hash of an entry (`ext4_xattr_hash_entry`): name bytes (unsigned),
/// then the value as little-endian words padded with zeros. For values in an
/// EA inode, pass `value = None` and mix in the inode's hash with [`mix_ea_inode_hash`].
pub fn entry_hash(name: &[u8], value: Option<&[u8]>) -> u32 {
    let mut hash = 0u32;
    for &c in name {
        hash = (hash << NAME_HASH_SHIFT) ^ (hash >> (32 - NAME_HASH_SHIFT)) ^ u32::from(c);
    }
    hash_value(hash, value)
}

/// The same hash with name bytes taken as signed chars, as old kernels
/// computed it; accepted on read for compatibility.
pub fn entry_hash_signed(name: &[u8], value: Option<&[u8]>) -> u32 {
    let mut hash = 0u32;
    for &c in name {
        hash = (hash << NAME_HASH_SHIFT) ^ (hash >> (32 - NAME_HASH_SHIFT)) ^ (i32::from(c as i8) as u32);
    }
    hash_value(hash, value)
}

fn hash_value(mut hash: u32, value: Option<&[u8]>) -> u32 {
    if let Some(v) = value {
        for chunk in v.chunks(4) {
            let mut w = [0u8; 4];
            w[..chunk.len()].copy_from_slice(chunk);
            hash = (hash << VALUE_HASH_SHIFT) ^ (hash >> (32 - VALUE_HASH_SHIFT)) ^ u32::from_le_bytes(w);
        }
    }
    hash
}

/// Mixes the hash of an EA inode's value into an entry's name hash.
pub fn mix_ea_inode_hash(name_hash: u32, ea_inode_hash: u32) -> u32 {
    (name_hash << VALUE_HASH_SHIFT) ^ (name_hash >> (32 - VALUE_HASH_SHIFT)) ^ ea_inode_hash
}

/// The hash of a whole block (`ext4_xattr_rehash`) from its entries' hashes in
/// order; 0 if any entry hash is 0.
pub fn block_hash(entry_hashes: impl IntoIterator<Item = u32>) -> u32 {
    let mut hash = 0u32;
    for h in entry_hashes {
        if h == 0 {
            return 0;
        }
        hash = (hash << BLOCK_HASH_SHIFT) ^ (hash >> (32 - BLOCK_HASH_SHIFT)) ^ h;
    }
    hash
}

/// The entries of an area (from `start`) whose value lives in an EA
/// inode: `(offset, e_value_inum, name hash)`, the name hash being
/// `entry_hash(name, None)`, to mix with the EA inode's value hash.
pub fn ea_inode_entries(area: &[u8], start: usize, structure: Structure) -> Result<Vec<(usize, u32, u32)>, FormatError> {
    let mut out = Vec::new();
    for e in XattrEntryIter::new(area, start, structure) {
        let e = e?;
        if e.value_inum != 0 {
            out.push((e.offset, e.value_inum, entry_hash(e.name, None)));
        }
    }
    Ok(out)
}

/// Sets `e_hash` of the entry at `pos`.
pub fn set_entry_hash(area: &mut [u8], pos: usize, hash: u32) {
    crate::put_u32(area, pos + 12, hash);
}

/// Recomputes a block's `h_hash` from its entries' hashes (`ext4_xattr_rehash`).
pub fn rehash_block(block: &mut [u8]) -> Result<(), FormatError> {
    let hashes: Vec<u32> =
        XattrEntryIter::new(block, BLOCK_HEADER_SIZE, Structure::XattrBlock).map(|e| e.map(|e| e.hash)).collect::<Result<_, _>>()?;
    crate::put_u32(block, H_HASH_OFFSET, block_hash(hashes));
    Ok(())
}

/// Offset of `h_hash` in the block header.
const H_HASH_OFFSET: usize = 12;

/// Validates a block header: magic and `h_blocks == 1`.
pub fn parse_block_header(block: &[u8]) -> Result<XattrBlockHeader, FormatError> {
    const S: Structure = Structure::XattrBlock;
    let Some(head) = block.get(..BLOCK_HEADER_SIZE) else {
        return Err(FormatError::Truncated { structure: S, len: block.len(), need: BLOCK_HEADER_SIZE });
    };
    let h = XattrBlockHeader::read_from_bytes(head).expect("32 bytes");
    if h.h_magic.get() != XATTR_MAGIC {
        return Err(FormatError::BadMagic { structure: S, found: h.h_magic.get() });
    }
    if h.h_blocks.get() != 1 {
        return Err(FormatError::bad(S, "h_blocks", h.h_blocks.get().into(), "must be 1"));
    }
    Ok(h)
}

const H_CHECKSUM_OFFSET: usize = 16;

/// Checksum of an xattr block (`ext4_xattr_block_csum`): the block number,
/// then the block with `h_checksum` as zero (a block too short to hold
/// `h_checksum` is hashed as it is).
pub fn xattr_block_checksum(fs_seed: u32, block_nr: u64, block: &[u8]) -> u32 {
    let c = crc32c(fs_seed, &block_nr.to_le_bytes());
    let (Some(before), Some(after)) = (block.get(..H_CHECKSUM_OFFSET), block.get(H_CHECKSUM_OFFSET + 4..)) else {
        return crc32c(c, block);
    };
    let c = crc32c(c, before);
    let c = crc32c(c, &[0; 4]);
    crc32c(c, after)
}

/// Checks the checksum of xattr block `block_nr`.
pub fn verify_xattr_block(fs_seed: u32, block_nr: u64, block: &[u8]) -> Result<(), FormatError> {
    if block.len() < BLOCK_HEADER_SIZE {
        return Err(FormatError::Truncated { structure: Structure::XattrBlock, len: block.len(), need: BLOCK_HEADER_SIZE });
    }
    let stored = crate::get_u32(block, H_CHECKSUM_OFFSET);
    FormatError::check_csum(Structure::XattrBlock, stored, xattr_block_checksum(fs_seed, block_nr, block))
}

/// Computes and stores the checksum of xattr block `block_nr`.
pub fn set_xattr_block_checksum(fs_seed: u32, block_nr: u64, block: &mut [u8]) {
    let c = xattr_block_checksum(fs_seed, block_nr, block);
    crate::put_u32(block, H_CHECKSUM_OFFSET, c);
}

/// Whether two xattr blocks hold the same attributes: equal `h_blocks`,
/// `h_hash`, entries and values; refcount and checksum may differ (a block
/// that can be shared in place of the other).
pub fn same_block_content(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.len() >= BLOCK_HEADER_SIZE && a[8..16] == b[8..16] && a[BLOCK_HEADER_SIZE..] == b[BLOCK_HEADER_SIZE..]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `xattr` fuzz target: a block shorter than its 32-byte
    /// header panicked in `parse_block_header` and the checksum helpers.
    #[test]
    fn short_block_is_refused() {
        for len in [0usize, 1, 16, 19, 20, 31] {
            let b = vec![0xEA; len];
            assert!(matches!(parse_block_header(&b), Err(FormatError::Truncated { .. })), "{len}");
            assert!(matches!(verify_xattr_block(1, 2, &b), Err(FormatError::Truncated { .. })), "{len}");
            let _ = xattr_block_checksum(1, 2, &b);
        }
    }

    #[test]
    fn prefixes() {
        assert_eq!(encode_name(b"user.foo"), (1, &b"foo"[..]));
        assert_eq!(encode_name(b"system.posix_acl_access"), (2, &b""[..]));
        assert_eq!(encode_name(b"system.data"), (7, &b"data"[..]));
        assert_eq!(encode_name(b"other.x"), (0, &b"other.x"[..]));
        assert_eq!(decode_name(6, b"selinux").unwrap(), b"security.selinux");
    }

    #[test]
    fn entries_round_trip() {
        let mut area = vec![0u8; 128];
        let e = XattrEntry { offset: 0, name_index: 1, name: b"abc", value_offs: 100, value_inum: 0, value_size: 5, hash: 7 };
        write_entry(&mut area, 0, &e);
        let got: Vec<_> = XattrEntryIter::new(&area, 0, Structure::XattrBlock).collect::<Result<_, _>>().unwrap();
        assert_eq!(got, vec![e]);
    }

    #[test]
    fn hash_signedness_differs_only_for_high_bytes() {
        assert_eq!(entry_hash(b"abc", Some(b"xyz")), entry_hash_signed(b"abc", Some(b"xyz")));
        assert_ne!(entry_hash("é".as_bytes(), None), entry_hash_signed("é".as_bytes(), None));
    }

    #[test]
    fn block_checksum_detects_damage() {
        let mut b = vec![0u8; 1024];
        crate::put_u32(&mut b, 0, XATTR_MAGIC);
        crate::put_u32(&mut b, 8, 1);
        set_xattr_block_checksum(1, 77, &mut b);
        verify_xattr_block(1, 77, &b).unwrap();
        assert!(verify_xattr_block(1, 78, &b).is_err());
    }
}

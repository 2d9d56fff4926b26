//! Linear directory blocks: a chain of `ext4_dir_entry_2` records, each
//! `rec_len` bytes long, optionally ending in a 12-byte checksum tail.

use crate::checksum::crc32c;
use crate::inode::FileType;
use crate::{FormatError, Structure};

/// Size of the fixed part of an entry.
pub const ENTRY_HEADER: usize = 8;
/// Longest name.
pub const NAME_MAX: usize = 255;
/// Size of `struct ext4_dir_entry_tail`.
pub const TAIL_SIZE: usize = 12;
/// `det_reserved_ft` of the checksum tail.
pub const TAIL_FT: u8 = 0xDE;

/// Bytes an entry with a name of `name_len` bytes needs (`EXT4_DIR_REC_LEN`).
pub const fn rec_len_for(name_len: usize) -> usize {
    (ENTRY_HEADER + name_len + 3) & !3
}

/// Decodes an on-disk `rec_len` (e2fsprogs' `ext2fs_get_rec_len`): 0 and
/// 65535 mean a whole 64 KiB block, and the low two bits extend the length.
pub fn rec_len_from_disk(raw: u16, block_size: u32) -> u32 {
    let raw = u32::from(raw);
    if raw == 65535 || raw == 0 { block_size } else { (raw & 65532) | ((raw & 3) << 16) }
}

/// Encodes a `rec_len` for disk (`ext2fs_set_rec_len`).
pub fn rec_len_to_disk(len: u32, block_size: u32) -> u16 {
    if len < 65536 {
        len as u16
    } else if len == block_size {
        if block_size == 65536 { 65535 } else { 0 }
    } else {
        ((len & 65532) | ((len >> 16) & 3)) as u16
    }
}

/// One directory entry, borrowed from its block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirEntry<'a> {
    /// Byte offset of the entry in the block.
    pub offset: u32,
    /// Inode number; 0 for an unused entry.
    pub inode: u32,
    /// Length of the record including padding and slack.
    pub rec_len: u32,
    /// `file_type` code (0 when the filesystem has no `filetype`).
    pub file_type: u8,
    /// The name.
    pub name: &'a [u8],
}

impl DirEntry<'_> {
    /// The type recorded in the entry, if any.
    pub fn file_type(&self) -> Option<FileType> {
        FileType::from_dir_entry_code(self.file_type)
    }

    /// Whether this is the checksum tail.
    pub fn is_tail(&self) -> bool {
        self.inode == 0 && self.rec_len as usize == TAIL_SIZE && self.name.is_empty() && self.file_type == TAIL_FT
    }

    /// Slack after the name that a new entry could use.
    pub fn slack(&self) -> u32 {
        let used = if self.inode == 0 { 0 } else { rec_len_for(self.name.len()) as u32 };
        self.rec_len - used
    }
}

/// Iterates over the entries of a linear directory block (or of the region
/// of a block that holds entries), validating each record as
/// `ext4_check_dir_entry` does.
#[derive(Debug, Clone)]
pub struct DirEntryIter<'a> {
    block: &'a [u8],
    block_size: u32,
    pos: usize,
    filetype: bool,
    failed: bool,
}

impl<'a> DirEntryIter<'a> {
    /// Iterates over `block` (all of it: pass the region before the tail to skip it).
    /// `block_size` decodes `rec_len`; `filetype` says whether entries carry types.
    pub fn new(block: &'a [u8], block_size: u32, filetype: bool) -> Self {
        Self { block, block_size, pos: 0, filetype, failed: false }
    }
}

impl<'a> Iterator for DirEntryIter<'a> {
    type Item = Result<DirEntry<'a>, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.block.len() {
            return None;
        }
        let r = parse_entry(self.block, self.pos, self.block_size, self.filetype);
        match &r {
            Ok(e) => self.pos += e.rec_len as usize,
            Err(_) => self.failed = true,
        }
        Some(r)
    }
}

/// Parses the entry at `pos` of `block`.
pub fn parse_entry(block: &[u8], pos: usize, block_size: u32, filetype: bool) -> Result<DirEntry<'_>, FormatError> {
    const S: Structure = Structure::DirBlock;
    if pos + ENTRY_HEADER > block.len() {
        return Err(FormatError::bad(S, "rec_len", (block.len() - pos) as u64, "entry header past the end of the block"));
    }
    let inode = crate::get_u32(block, pos);
    let rec_len = rec_len_from_disk(crate::get_u16(block, pos + 4), block_size);
    let name_len = usize::from(block[pos + 6]);
    let file_type = if filetype { block[pos + 7] } else { 0 };
    if rec_len < 12 || rec_len % 4 != 0 {
        return Err(FormatError::bad(S, "rec_len", rec_len.into(), "below 12 or not a multiple of 4"));
    }
    if pos + rec_len as usize > block.len() {
        return Err(FormatError::bad(S, "rec_len", rec_len.into(), "runs past the end of the block"));
    }
    if rec_len_for(name_len) > rec_len as usize {
        return Err(FormatError::bad(S, "name_len", name_len as u64, "name does not fit in rec_len"));
    }
    let name = &block[pos + ENTRY_HEADER..pos + ENTRY_HEADER + name_len];
    Ok(DirEntry { offset: pos as u32, inode, rec_len, file_type, name })
}

/// Writes an entry header and name at `pos` (the caller ensures it fits).
pub fn write_entry(block: &mut [u8], pos: usize, inode: u32, rec_len: u32, name: &[u8], file_type: u8, block_size: u32) {
    crate::put_u32(block, pos, inode);
    crate::put_u16(block, pos + 4, rec_len_to_disk(rec_len, block_size));
    block[pos + 6] = name.len() as u8;
    block[pos + 7] = file_type;
    block[pos + ENTRY_HEADER..pos + ENTRY_HEADER + name.len()].copy_from_slice(name);
    // Zero the padding so that blocks are deterministic.
    let end = (pos + rec_len_for(name.len())).min(pos + rec_len as usize);
    block[pos + ENTRY_HEADER + name.len()..end].fill(0);
}

/// Sets only the `rec_len` of the entry at `pos`.
pub fn set_rec_len(block: &mut [u8], pos: usize, rec_len: u32, block_size: u32) {
    crate::put_u16(block, pos + 4, rec_len_to_disk(rec_len, block_size));
}

/// Sets only the inode number of the entry at `pos`.
pub fn set_inode(block: &mut [u8], pos: usize, inode: u32) {
    crate::put_u32(block, pos, inode);
}

/// Whether `block` ends in a checksum tail.
pub fn has_tail(block: &[u8]) -> bool {
    let t = block.len() - TAIL_SIZE;
    crate::get_u32(block, t) == 0 && crate::get_u16(block, t + 4) as usize == TAIL_SIZE && block[t + 6] == 0 && block[t + 7] == TAIL_FT
}

/// Writes an empty checksum tail at the end of `block`.
pub fn write_tail(block: &mut [u8]) {
    let t = block.len() - TAIL_SIZE;
    block[t..].fill(0);
    crate::put_u16(block, t + 4, TAIL_SIZE as u16);
    block[t + 7] = TAIL_FT;
}

/// Checksum of a leaf directory block (`ext4_dirblock_csum`): everything before the tail.
pub fn dir_block_checksum(inode_seed: u32, block: &[u8]) -> u32 {
    crc32c(inode_seed, &block[..block.len() - TAIL_SIZE])
}

/// Checks the tail checksum of a leaf directory block.
pub fn verify_dir_block(inode_seed: u32, block: &[u8]) -> Result<(), FormatError> {
    if !has_tail(block) {
        return Err(FormatError::bad(Structure::DirBlock, "det_reserved_ft", 0, "no checksum tail"));
    }
    let stored = crate::get_u32(block, block.len() - 4);
    FormatError::check_csum(Structure::DirBlock, stored, dir_block_checksum(inode_seed, block))
}

/// Computes and stores the tail checksum of a leaf directory block.
pub fn set_dir_block_checksum(inode_seed: u32, block: &mut [u8]) {
    let c = dir_block_checksum(inode_seed, block);
    let n = block.len();
    crate::put_u32(block, n - 4, c);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_with(names: &[&[u8]], size: usize, tail: bool) -> Vec<u8> {
        let mut b = vec![0u8; size];
        let end = if tail { size - TAIL_SIZE } else { size };
        let mut pos = 0;
        for (i, n) in names.iter().enumerate() {
            let rec = if i + 1 == names.len() { end - pos } else { rec_len_for(n.len()) };
            write_entry(&mut b, pos, 100 + i as u32, rec as u32, n, 1, size as u32);
            pos += rec;
        }
        if tail {
            write_tail(&mut b);
        }
        b
    }

    #[test]
    fn iterate_and_checksum() {
        let mut b = block_with(&[b".", b"..", b"hello"], 1024, true);
        let names: Vec<Vec<u8>> = DirEntryIter::new(&b[..1024 - TAIL_SIZE], 1024, true).map(|e| e.unwrap().name.to_vec()).collect();
        assert_eq!(names, vec![b".".to_vec(), b"..".to_vec(), b"hello".to_vec()]);
        set_dir_block_checksum(5, &mut b);
        verify_dir_block(5, &b).unwrap();
        b[10] ^= 0x40;
        assert!(matches!(verify_dir_block(5, &b), Err(FormatError::Checksum { structure: Structure::DirBlock, .. })));
    }

    #[test]
    fn bad_rec_len_is_an_error() {
        let mut b = block_with(&[b"a", b"b"], 1024, false);
        set_rec_len(&mut b, 0, 6, 1024);
        let r: Vec<_> = DirEntryIter::new(&b, 1024, true).collect();
        assert_eq!(r.len(), 1);
        assert!(matches!(r[0], Err(FormatError::BadField { field: "rec_len", .. })));
        set_rec_len(&mut b, 0, 2048, 1024);
        assert!(DirEntryIter::new(&b, 1024, true).next().unwrap().is_err());
    }

    #[test]
    fn rec_len_64k() {
        assert_eq!(rec_len_from_disk(rec_len_to_disk(65536, 65536), 65536), 65536);
        assert_eq!(rec_len_from_disk(rec_len_to_disk(65532, 65536), 65536), 65532);
        assert_eq!(rec_len_from_disk(rec_len_to_disk(4096, 4096), 4096), 4096);
    }
}

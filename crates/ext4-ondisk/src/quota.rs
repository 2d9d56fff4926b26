//! Quota files in the VFS v2 format (`quota` feature): a header naming
//! the quota type and format revision, grace times and the size of the
//! file, then a radix tree of 1 KiB blocks indexed by the bytes of the
//! user, group or project id, whose leaves are blocks of usage records.
//!
//! Layout (all little-endian), in 1 KiB blocks of the file:
//! - block 0: `magic u32`, `version u32` (0: 48-byte records, 1: 72-byte
//!   records), then at byte 8 the info: `bgrace`, `igrace`, `flags`,
//!   `blocks` (file length in blocks), `free_blk` (head of the free block
//!   list), `free_entry` (head of the list of leaves with a free record).
//! - block 1: the root of the tree; a tree block is 256 `u32` references,
//!   0 for none. Depth [`TREE_DEPTH`]: the fourth level references leaves.
//! - a leaf: 16-byte header (`next_free u32`, `prev_free u32`,
//!   `entries u16`, padding), then records; an all-zero record is unused.

/// Size of the blocks a quota file is made of.
pub const QT_BLOCK_SIZE: usize = 1024;
/// The block of the tree root.
pub const TREE_ROOT: u32 = 1;
/// Levels of tree blocks above the leaves.
pub const TREE_DEPTH: u32 = 4;
/// References in one tree block.
pub const REFS_PER_BLOCK: usize = QT_BLOCK_SIZE / 4;
/// Bytes of the header of a leaf block.
pub const LEAF_HEADER_SIZE: usize = 16;
/// Offset of the info in block 0.
pub const INFO_OFFSET: usize = 8;
/// Bytes of header plus info.
pub const HEADER_AND_INFO_SIZE: usize = INFO_OFFSET + 24;

/// The quota types, in the order of the superblock's quota inode fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QuotaType {
    /// Per user id.
    User,
    /// Per group id.
    Group,
    /// Per project id.
    Project,
}

impl QuotaType {
    /// All types, in superblock order.
    pub const ALL: [QuotaType; 3] = [QuotaType::User, QuotaType::Group, QuotaType::Project];

    /// The file magic number of this type.
    pub fn magic(self) -> u32 {
        match self {
            QuotaType::User => 0xD9C0_1F11,
            QuotaType::Group => 0xD9C0_1927,
            QuotaType::Project => 0xD9C0_3F14,
        }
    }

    /// The index e2fsprogs prints ("quota type 0").
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The format revisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revision {
    /// 32-bit limits and inode counts; 48-byte records.
    R0,
    /// 64-bit limits and inode counts; 72-byte records.
    R1,
}

impl Revision {
    /// The revision numbered `v`.
    pub fn from_version(v: u32) -> Option<Revision> {
        match v {
            0 => Some(Revision::R0),
            1 => Some(Revision::R1),
            _ => None,
        }
    }

    /// Bytes of one record.
    pub fn record_size(self) -> usize {
        match self {
            Revision::R0 => 48,
            Revision::R1 => 72,
        }
    }

    /// Records in one leaf block.
    pub fn records_per_leaf(self) -> usize {
        (QT_BLOCK_SIZE - LEAF_HEADER_SIZE) / self.record_size()
    }
}

/// Block 0: header and info.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaHeader {
    /// File magic number (see [`QuotaType::magic`]).
    pub magic: u32,
    /// Format revision number.
    pub version: u32,
    /// Block grace time (seconds).
    pub bgrace: u32,
    /// Inode grace time (seconds).
    pub igrace: u32,
    /// Flags.
    pub flags: u32,
    /// Blocks in the file.
    pub blocks: u32,
    /// First free block (0: none).
    pub free_blk: u32,
    /// First leaf with a free record (0: none).
    pub free_entry: u32,
}

impl QuotaHeader {
    /// Decodes the first [`HEADER_AND_INFO_SIZE`] bytes of `b` (which must
    /// be at least that long).
    pub fn parse(b: &[u8]) -> QuotaHeader {
        let w = |k: usize| crate::get_u32(b, 4 * k);
        QuotaHeader { magic: w(0), version: w(1), bgrace: w(2), igrace: w(3), flags: w(4), blocks: w(5), free_blk: w(6), free_entry: w(7) }
    }

    /// Encodes into the first [`HEADER_AND_INFO_SIZE`] bytes of `b`.
    pub fn write(&self, b: &mut [u8]) {
        let f = [self.magic, self.version, self.bgrace, self.igrace, self.flags, self.blocks, self.free_blk, self.free_entry];
        for (k, v) in f.into_iter().enumerate() {
            crate::put_u32(b, 4 * k, v);
        }
    }
}

/// Reference `i` of a tree block.
pub fn tree_ref(block: &[u8], i: usize) -> u32 {
    crate::get_u32(block, 4 * i)
}

/// Sets reference `i` of a tree block.
pub fn set_tree_ref(block: &mut [u8], i: usize, v: u32) {
    crate::put_u32(block, 4 * i, v);
}

/// The index into the tree block at `depth` (0 = root) for `id`.
pub fn tree_index(id: u32, depth: u32) -> usize {
    ((id >> ((TREE_DEPTH - depth - 1) * 8)) & 0xFF) as usize
}

/// A leaf block's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeafHeader {
    /// Next leaf in the free-record list.
    pub next_free: u32,
    /// Previous leaf in the free-record list.
    pub prev_free: u32,
    /// Records in use.
    pub entries: u16,
}

impl LeafHeader {
    /// Decodes a leaf block's header.
    pub fn parse(b: &[u8]) -> LeafHeader {
        LeafHeader { next_free: crate::get_u32(b, 0), prev_free: crate::get_u32(b, 4), entries: crate::get_u16(b, 8) }
    }

    /// Encodes into a leaf block (padding zeroed).
    pub fn write(&self, b: &mut [u8]) {
        crate::put_u32(b, 0, self.next_free);
        crate::put_u32(b, 4, self.prev_free);
        crate::put_u16(b, 8, self.entries);
        b[10..LEAF_HEADER_SIZE].fill(0);
    }
}

/// One usage record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiskQuota {
    /// The user, group or project id.
    pub id: u32,
    /// Inode hard limit.
    pub ihardlimit: u64,
    /// Inode soft limit.
    pub isoftlimit: u64,
    /// Inodes in use.
    pub curinodes: u64,
    /// Space hard limit (1 KiB units).
    pub bhardlimit: u64,
    /// Space soft limit (1 KiB units).
    pub bsoftlimit: u64,
    /// Bytes in use.
    pub curspace: u64,
    /// Block grace deadline.
    pub btime: u64,
    /// Inode grace deadline.
    pub itime: u64,
}

impl DiskQuota {
    /// Decodes a record of revision `rev` (`b` at least
    /// [`Revision::record_size`] long).
    pub fn parse(rev: Revision, b: &[u8]) -> DiskQuota {
        let w = |o: usize| u64::from(crate::get_u32(b, o));
        let q = |o: usize| w(o) | (w(o + 4) << 32);
        match rev {
            Revision::R0 => DiskQuota {
                id: crate::get_u32(b, 0),
                ihardlimit: w(4),
                isoftlimit: w(8),
                curinodes: w(12),
                bhardlimit: w(16),
                bsoftlimit: w(20),
                curspace: q(24),
                btime: q(32),
                itime: q(40),
            },
            Revision::R1 => DiskQuota {
                id: crate::get_u32(b, 0),
                ihardlimit: q(8),
                isoftlimit: q(16),
                curinodes: q(24),
                bhardlimit: q(32),
                bsoftlimit: q(40),
                curspace: q(48),
                btime: q(56),
                itime: q(64),
            },
        }
    }

    /// Encodes as revision 1. A record that would be all zero gets
    /// `itime` 1, so that it does not read as unused.
    pub fn write_r1(&self, b: &mut [u8]) {
        fn put(b: &mut [u8], o: usize, v: u64) {
            crate::put_u32(b, o, v as u32);
            crate::put_u32(b, o + 4, (v >> 32) as u32);
        }
        crate::put_u32(b, 0, self.id);
        crate::put_u32(b, 4, 0);
        let fields =
            [self.ihardlimit, self.isoftlimit, self.curinodes, self.bhardlimit, self.bsoftlimit, self.curspace, self.btime, self.itime];
        for (k, v) in fields.into_iter().enumerate() {
            put(b, 8 + 8 * k, v);
        }
        if record_unused(&b[..Revision::R1.record_size()]) {
            put(b, 64, 1);
        }
    }
}

/// Whether a record slot is unused (all zero).
pub fn record_unused(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = QuotaHeader {
            magic: QuotaType::Group.magic(),
            version: 1,
            bgrace: 7,
            igrace: 8,
            flags: 0,
            blocks: 6,
            free_blk: 0,
            free_entry: 5,
        };
        let mut b = [0u8; HEADER_AND_INFO_SIZE];
        h.write(&mut b);
        assert_eq!(QuotaHeader::parse(&b), h);
    }

    #[test]
    fn r1_record_round_trips_and_zero_record_stays_used() {
        let d = DiskQuota { id: 1000, curinodes: 3, curspace: 12288, ..Default::default() };
        let mut b = [0u8; 72];
        d.write_r1(&mut b);
        assert_eq!(DiskQuota::parse(Revision::R1, &b), d);
        let mut z = [0u8; 72];
        DiskQuota::default().write_r1(&mut z);
        assert!(!record_unused(&z));
        assert_eq!(Revision::R1.records_per_leaf(), 14);
        assert_eq!(Revision::R0.records_per_leaf(), 21);
    }

    #[test]
    fn tree_index_takes_id_bytes_from_the_top() {
        assert_eq!(tree_index(0x0102_0304, 0), 1);
        assert_eq!(tree_index(0x0102_0304, 3), 4);
    }
}

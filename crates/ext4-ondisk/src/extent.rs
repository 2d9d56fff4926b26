//! Extent tree nodes: a 12-byte header, then 12-byte index or leaf entries,
//! then (in blocks, not in the inode) a 4-byte checksum tail.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::checksum::crc32c;
use crate::le::{U16, U32};
use crate::{FormatError, Structure};

/// `eh_magic`.
pub const EXTENT_MAGIC: u16 = 0xF30A;
/// Deepest tree the kernel builds (`EXT4_MAX_EXTENT_DEPTH`).
pub const MAX_DEPTH: u16 = 5;
/// Longest initialized extent (`EXT_INIT_MAX_LEN`).
pub const INIT_MAX_LEN: u32 = 32768;
/// Longest unwritten extent (`EXT_UNWRITTEN_MAX_LEN`).
pub const UNWRITTEN_MAX_LEN: u32 = 32767;
/// Size of the header and of each entry.
pub const ENTRY_SIZE: usize = 12;

/// `struct ext4_extent_header`.
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct ExtentHeader {
    /// Magic, 0xF30A.
    pub eh_magic: U16,
    /// Valid entries.
    pub eh_entries: U16,
    /// Capacity in entries.
    pub eh_max: U16,
    /// Depth: 0 for leaves.
    pub eh_depth: U16,
    /// Generation (unused).
    pub eh_generation: U32,
}

/// `struct ext4_extent_idx`: points at the node covering logical blocks from `ei_block`.
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct ExtentIdxRaw {
    /// First logical block covered.
    pub ei_block: U32,
    /// Child node block, low 32 bits.
    pub ei_leaf_lo: U32,
    /// Child node block, high 16 bits.
    pub ei_leaf_hi: U16,
    /// Unused.
    pub ei_unused: U16,
}

/// `struct ext4_extent`: a run of logical blocks mapped to physical blocks.
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct ExtentRaw {
    /// First logical block.
    pub ee_block: U32,
    /// Length; above 32768 the extent is unwritten and holds `len - 32768` blocks.
    pub ee_len: U16,
    /// Physical start, high 16 bits.
    pub ee_start_hi: U16,
    /// Physical start, low 32 bits.
    pub ee_start_lo: U32,
}

const _: () = assert!(size_of::<ExtentHeader>() == ENTRY_SIZE);
const _: () = assert!(size_of::<ExtentIdxRaw>() == ENTRY_SIZE);
const _: () = assert!(size_of::<ExtentRaw>() == ENTRY_SIZE);

/// A decoded leaf entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Extent {
    /// First logical block.
    pub logical: u32,
    /// Number of blocks (1 ..= 32768, or ..= 32767 if unwritten).
    pub len: u32,
    /// First physical block.
    pub start: u64,
    /// Allocated but not written: reads as zeros.
    pub unwritten: bool,
}

impl Extent {
    /// One past the last logical block, as u64 to avoid overflow.
    pub fn logical_end(&self) -> u64 {
        u64::from(self.logical) + u64::from(self.len)
    }
}

/// A decoded index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtentIndex {
    /// First logical block covered by the child.
    pub logical: u32,
    /// Block number of the child node.
    pub leaf: u64,
}

/// The decoded header of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeHeader {
    /// Valid entries.
    pub entries: u16,
    /// Capacity.
    pub max: u16,
    /// Depth (0 = leaf).
    pub depth: u16,
    /// `eh_generation`.
    pub generation: u32,
}

/// A validated view of an extent node: the 60-byte `i_block` or a tree block.
#[derive(Debug, Clone, Copy)]
pub struct ExtentNode<'a> {
    /// The header.
    pub header: NodeHeader,
    bytes: &'a [u8],
}

impl<'a> ExtentNode<'a> {
    /// Validates the header: magic, capacity within the buffer, entries
    /// within capacity, depth at most [`MAX_DEPTH`].
    pub fn parse(bytes: &'a [u8]) -> Result<Self, FormatError> {
        const S: Structure = Structure::ExtentNode;
        if bytes.len() < ENTRY_SIZE {
            return Err(FormatError::Truncated { structure: S, len: bytes.len(), need: ENTRY_SIZE });
        }
        let h = ExtentHeader::read_from_bytes(&bytes[..ENTRY_SIZE]).expect("12 bytes");
        if h.eh_magic.get() != EXTENT_MAGIC {
            return Err(FormatError::BadMagic { structure: S, found: h.eh_magic.get().into() });
        }
        let max = h.eh_max.get();
        let entries = h.eh_entries.get();
        let depth = h.eh_depth.get();
        if ENTRY_SIZE * (1 + usize::from(max)) > bytes.len() || max == 0 {
            return Err(FormatError::bad(S, "eh_max", max.into(), "zero or larger than the node"));
        }
        if entries > max {
            return Err(FormatError::bad(S, "eh_entries", entries.into(), "more than eh_max"));
        }
        if depth > MAX_DEPTH {
            return Err(FormatError::bad(S, "eh_depth", depth.into(), "deeper than 5"));
        }
        Ok(Self { header: NodeHeader { entries, max, depth, generation: h.eh_generation.get() }, bytes })
    }

    fn entry_bytes(&self, i: usize) -> &'a [u8] {
        let off = ENTRY_SIZE * (i + 1);
        &self.bytes[off..off + ENTRY_SIZE]
    }

    /// Whether this is a leaf.
    pub fn is_leaf(&self) -> bool {
        self.header.depth == 0
    }

    /// Leaf entry `i` (< entries). Only meaningful for leaves.
    pub fn extent(&self, i: usize) -> Extent {
        decode_extent(self.entry_bytes(i))
    }

    /// Index entry `i` (< entries). Only meaningful for interior nodes.
    pub fn index(&self, i: usize) -> ExtentIndex {
        let r = ExtentIdxRaw::read_from_bytes(self.entry_bytes(i)).expect("12 bytes");
        ExtentIndex { logical: r.ei_block.get(), leaf: u64::from(r.ei_leaf_lo.get()) | u64::from(r.ei_leaf_hi.get()) << 32 }
    }

    /// All leaf entries.
    pub fn extents(&self) -> impl Iterator<Item = Extent> + 'a {
        let me = *self;
        (0..usize::from(me.header.entries)).map(move |i| me.extent(i))
    }

    /// All index entries.
    pub fn indexes(&self) -> impl Iterator<Item = ExtentIndex> + 'a {
        let me = *self;
        (0..usize::from(me.header.entries)).map(move |i| me.index(i))
    }
}

/// Entry `i` of the node in `bytes` read as a leaf extent, without
/// validating the header (a checker reads what the header claims).
/// `bytes` must hold the entry.
pub fn raw_extent(bytes: &[u8], i: usize) -> Extent {
    let off = ENTRY_SIZE * (i + 1);
    decode_extent(&bytes[off..off + ENTRY_SIZE])
}

/// Entry `i` of the node in `bytes` read as an index, without validating the header.
pub fn raw_index(bytes: &[u8], i: usize) -> ExtentIndex {
    let off = ENTRY_SIZE * (i + 1);
    let r = ExtentIdxRaw::read_from_bytes(&bytes[off..off + ENTRY_SIZE]).expect("12 bytes");
    ExtentIndex { logical: r.ei_block.get(), leaf: u64::from(r.ei_leaf_lo.get()) | u64::from(r.ei_leaf_hi.get()) << 32 }
}

pub(crate) fn decode_extent(b: &[u8]) -> Extent {
    let r = ExtentRaw::read_from_bytes(b).expect("12 bytes");
    let raw_len = u32::from(r.ee_len.get());
    let (len, unwritten) = if raw_len > INIT_MAX_LEN { (raw_len - INIT_MAX_LEN, true) } else { (raw_len, false) };
    Extent { logical: r.ee_block.get(), len, start: u64::from(r.ee_start_lo.get()) | u64::from(r.ee_start_hi.get()) << 32, unwritten }
}

/// Writes a node header at the start of `buf`.
pub fn write_header(buf: &mut [u8], h: NodeHeader) {
    let raw = ExtentHeader {
        eh_magic: EXTENT_MAGIC.into(),
        eh_entries: h.entries.into(),
        eh_max: h.max.into(),
        eh_depth: h.depth.into(),
        eh_generation: h.generation.into(),
    };
    buf[..ENTRY_SIZE].copy_from_slice(raw.as_bytes());
}

/// Writes leaf entry `i` of the node in `buf`.
pub fn write_extent(buf: &mut [u8], i: usize, e: &Extent) {
    let raw_len = if e.unwritten { e.len + INIT_MAX_LEN } else { e.len };
    let raw = ExtentRaw {
        ee_block: e.logical.into(),
        ee_len: (raw_len as u16).into(),
        ee_start_hi: ((e.start >> 32) as u16).into(),
        ee_start_lo: (e.start as u32).into(),
    };
    let off = ENTRY_SIZE * (i + 1);
    buf[off..off + ENTRY_SIZE].copy_from_slice(raw.as_bytes());
}

/// Writes index entry `i` of the node in `buf`.
pub fn write_index(buf: &mut [u8], i: usize, e: &ExtentIndex) {
    let raw = ExtentIdxRaw {
        ei_block: e.logical.into(),
        ei_leaf_lo: (e.leaf as u32).into(),
        ei_leaf_hi: ((e.leaf >> 32) as u16).into(),
        ei_unused: 0.into(),
    };
    let off = ENTRY_SIZE * (i + 1);
    buf[off..off + ENTRY_SIZE].copy_from_slice(raw.as_bytes());
}

/// Capacity of a node of `len` bytes: 4 in `i_block`, `(block_size - 12) / 12` in a block.
pub fn node_capacity(len: usize, in_block: bool) -> u16 {
    let usable = if in_block { len - 4 } else { len };
    ((usable - ENTRY_SIZE) / ENTRY_SIZE) as u16
}

/// Offset of the checksum tail of a block whose header says `eh_max`.
pub fn tail_offset(max: u16) -> usize {
    ENTRY_SIZE * (1 + usize::from(max))
}

/// Checksum of an extent block (`ext4_extent_block_csum`): the header and
/// all `eh_max` entry slots, seeded with the inode's checksum seed.
pub fn extent_block_checksum(inode_seed: u32, block: &[u8], max: u16) -> u32 {
    crc32c(inode_seed, &block[..tail_offset(max)])
}

/// Checks the tail checksum of an extent block already parsed as `node`.
pub fn verify_extent_block(inode_seed: u32, block: &[u8], node: &ExtentNode<'_>) -> Result<(), FormatError> {
    let off = tail_offset(node.header.max);
    if off + 4 > block.len() {
        return Err(FormatError::bad(Structure::ExtentNode, "eh_max", node.header.max.into(), "leaves no room for the checksum tail"));
    }
    let stored = crate::get_u32(block, off);
    FormatError::check_csum(Structure::ExtentNode, stored, extent_block_checksum(inode_seed, block, node.header.max))
}

/// Computes and stores the tail checksum of an extent block.
pub fn set_extent_block_checksum(inode_seed: u32, block: &mut [u8]) {
    let max = crate::get_u16(block, 4);
    let off = tail_offset(max);
    let c = extent_block_checksum(inode_seed, block, max);
    crate::put_u32(block, off, c);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn leaf_round_trip(entries in proptest::collection::vec((any::<u32>(), 1u32..=32767, 0u64..(1 << 48), any::<bool>()), 1..=4)) {
            let mut buf = [0u8; 60];
            let n = entries.len();
            write_header(&mut buf, NodeHeader { entries: n as u16, max: 4, depth: 0, generation: 0 });
            let exts: Vec<Extent> = entries.iter().map(|&(logical, len, start, unwritten)| Extent { logical, len, start, unwritten }).collect();
            for (i, e) in exts.iter().enumerate() {
                write_extent(&mut buf, i, e);
            }
            let node = ExtentNode::parse(&buf).unwrap();
            prop_assert_eq!(node.extents().collect::<Vec<_>>(), exts);
        }
    }

    #[test]
    fn bad_headers_are_refused() {
        let mut buf = [0u8; 60];
        write_header(&mut buf, NodeHeader { entries: 5, max: 4, depth: 0, generation: 0 });
        assert!(matches!(ExtentNode::parse(&buf), Err(FormatError::BadField { field: "eh_entries", .. })));
        write_header(&mut buf, NodeHeader { entries: 1, max: 5, depth: 0, generation: 0 });
        assert!(matches!(ExtentNode::parse(&buf), Err(FormatError::BadField { field: "eh_max", .. })));
        write_header(&mut buf, NodeHeader { entries: 1, max: 4, depth: 6, generation: 0 });
        assert!(matches!(ExtentNode::parse(&buf), Err(FormatError::BadField { field: "eh_depth", .. })));
        buf[0] = 0;
        assert!(matches!(ExtentNode::parse(&buf), Err(FormatError::BadMagic { .. })));
    }

    #[test]
    fn block_checksum_detects_damage() {
        let mut block = vec![0u8; 1024];
        write_header(&mut block, NodeHeader { entries: 0, max: node_capacity(1024, true), depth: 0, generation: 0 });
        set_extent_block_checksum(99, &mut block);
        let node = ExtentNode::parse(&block).unwrap();
        verify_extent_block(99, &block, &node).unwrap();
        block[20] = 1;
        let node = ExtentNode::parse(&block).unwrap();
        assert!(matches!(verify_extent_block(99, &block, &node), Err(FormatError::Checksum { .. })));
    }
}

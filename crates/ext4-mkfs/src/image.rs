//! The bytes of per-group metadata, produced on demand so that a filesystem
//! with 2^17 groups never holds all its bitmaps in memory: block and inode
//! bitmaps (`write_bitmaps` in lib/ext2fs/rw_bitmaps.c), group descriptors
//! with their checksums, inode table blocks.

use ext4_ondisk::group_desc::{GroupDesc, update_group_desc_checksum};
use ext4_ondisk::inode::set_inode_checksum;
use ext4_ondisk::{Geometry, GroupDescFlags};

use crate::build::Build;

/// Sets bits `[from, to)` of a bitmap.
fn set_bits(buf: &mut [u8], from: u64, to: u64) {
    let mut bit = from;
    while bit < to && bit % 8 != 0 {
        buf[(bit / 8) as usize] |= 1 << (bit % 8);
        bit += 1;
    }
    let whole = (to - bit) / 8;
    buf[(bit / 8) as usize..(bit / 8 + whole) as usize].fill(0xFF);
    bit += whole * 8;
    while bit < to {
        buf[(bit / 8) as usize] |= 1 << (bit % 8);
        bit += 1;
    }
}

impl Build {
    /// Whether group `g`'s block bitmap is written (not `BLOCK_UNINIT`).
    pub fn writes_block_bitmap(&self, g: u32) -> bool {
        !(self.model.shape.csum() && self.model.groups[g as usize].flags.contains(GroupDescFlags::BLOCK_UNINIT))
    }

    /// Whether group `g`'s inode bitmap is written (not `INODE_UNINIT`).
    pub fn writes_inode_bitmap(&self, g: u32) -> bool {
        !(self.model.shape.csum() && self.model.groups[g as usize].flags.contains(GroupDescFlags::INODE_UNINIT))
    }

    /// Group `g`'s block bitmap block: one bit per block of the group, the
    /// rest of the block set, and the end of the last group padded.
    pub fn block_bitmap(&self, g: u32) -> Vec<u8> {
        let s = &self.model.shape;
        let bpg = u64::from(s.blocks_per_group);
        let mut buf = vec![0xFFu8; s.block_size as usize];
        buf[..(bpg / 8) as usize].fill(0);
        let first = s.group_first(g);
        for (a, z) in self.model.map.extents_in(first, first + bpg) {
            set_bits(&mut buf, a - first, z - first);
        }
        if g + 1 == s.group_count {
            let nbits = (s.blocks_count - s.first_data_block) % bpg;
            if nbits != 0 {
                set_bits(&mut buf, nbits, u64::from(s.block_size) * 8);
            }
        }
        buf
    }

    /// Group `g`'s inode bitmap block.
    pub fn inode_bitmap(&self, g: u32) -> Vec<u8> {
        let s = &self.model.shape;
        let ipg = s.inodes_per_group;
        let mut buf = vec![0xFFu8; s.block_size as usize];
        buf[..ipg.div_ceil(8) as usize].fill(0);
        let first = g * ipg + 1;
        for &ino in self.model.inodes_used.range(first..first + ipg) {
            set_bits(&mut buf, u64::from(ino - first), u64::from(ino - first) + 1);
        }
        buf
    }

    /// The checksums of a group's bitmaps as its descriptor stores them
    /// (`metadata_csum` only; 0 for bitmaps that are not written).
    pub fn bitmap_checksums(&self, block_bitmap: Option<&[u8]>, inode_bitmap: Option<&[u8]>) -> [u32; 2] {
        let s = &self.model.shape;
        if !self.metadata_csum() {
            return [0, 0];
        }
        let mask = if s.desc_size >= 64 { u32::MAX } else { 0xFFFF };
        let csum = |bytes: &[u8], n: u32| ext4_ondisk::checksum::bitmap(self.csum_seed, &bytes[..n as usize]) & mask;
        let bb = block_bitmap.map_or(0, |b| csum(b, s.blocks_per_group / 8));
        let ib = inode_bitmap.map_or(0, |b| csum(b, s.inodes_per_group.div_ceil(8)));
        [bb, ib]
    }

    /// Group `g`'s descriptor, with the given bitmap checksums and free
    /// block count, but without its own checksum.
    pub fn group_desc(&self, g: u32, bitmap_csums: [u32; 2], free_blocks: u64) -> GroupDesc {
        let gs = &self.model.groups[g as usize];
        GroupDesc {
            block_bitmap: gs.block_bitmap,
            inode_bitmap: gs.inode_bitmap,
            inode_table: gs.inode_table,
            free_blocks_count: free_blocks as u32,
            free_inodes_count: self.model.group_free_inodes(g),
            used_dirs_count: gs.used_dirs,
            flags: gs.flags,
            itable_unused: gs.itable_unused,
            block_bitmap_csum: bitmap_csums[0],
            inode_bitmap_csum: bitmap_csums[1],
            ..GroupDesc::default()
        }
    }

    /// Descriptor block `index` of the table (descriptors of groups
    /// `index * per_block ..`), checksummed with `geo`; `csums` holds every
    /// group's bitmap checksums and `free` its free block count
    /// ([`crate::model::Model::free_blocks_per_group`]).
    pub fn gdt_block(&self, geo: &Geometry, index: u32, csums: &[[u32; 2]], free: &[u64]) -> Vec<u8> {
        let s = &self.model.shape;
        let per = s.descs_per_block();
        let size = s.desc_size as usize;
        let mut buf = vec![0u8; s.block_size as usize];
        for i in 0..per {
            let g = index * per + i;
            if g >= s.group_count {
                break;
            }
            let raw = &mut buf[i as usize * size..(i as usize + 1) * size];
            self.group_desc(g, csums[g as usize], free[g as usize]).write(raw, size);
            update_group_desc_checksum(geo, g, raw);
        }
        buf
    }

    /// Inode table blocks holding the inodes the format writes:
    /// `(block number, bytes)`, with inode checksums.
    pub fn inode_table_blocks(&self) -> Vec<(u64, Vec<u8>)> {
        let s = &self.model.shape;
        let isz = s.inode_size as usize;
        let per_block = u64::from(s.block_size / s.inode_size);
        let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
        for (&ino, inode) in &self.model.inodes {
            let g = s.group_of_ino(ino);
            let index = u64::from((ino - 1) % s.inodes_per_group);
            let blk = self.model.groups[g as usize].inode_table + index / per_block;
            let off = (index % per_block) as usize * isz;
            if out.last().is_none_or(|(b, _)| *b != blk) {
                out.push((blk, vec![0u8; s.block_size as usize]));
            }
            let buf = &mut out.last_mut().expect("pushed above").1;
            let raw = &mut buf[off..off + isz];
            inode.write(raw);
            if self.model.xattr_magic.contains(&ino) {
                let at = 128 + usize::from(inode.extra_isize);
                ext4_ondisk::put_u32(raw, at, ext4_ondisk::xattr::XATTR_MAGIC);
            }
            if self.metadata_csum() {
                set_inode_checksum(self.csum_seed, ino, raw);
            }
        }
        out
    }
}

//! Bitmaps of groups whose descriptor still says `BLOCK_UNINIT` or
//! `INODE_UNINIT`: what the kernel builds when it first touches them
//! (`ext4_init_block_bitmap`, `ext4_read_inode_bitmap`).

use ext4_ondisk::GroupDesc;
use ext4_ondisk::superblock::Geometry;

use crate::bitmap::{mark_end, set_range};

/// The block bitmap of an uninitialized group: its superblock backup and
/// descriptor blocks, its own bitmaps and inode table where they lie in the
/// group, and padding bits past the group's last block.
pub fn uninit_block_bitmap(geo: &Geometry, group: u32, gd: &GroupDesc) -> Vec<u8> {
    let bs = geo.block_size as usize;
    let mut map = vec![0u8; bs];
    let ratio = u64::from(geo.cluster_ratio);
    let overhead = geo.group_overhead_blocks(group) as usize;
    set_range(&mut map, 0, overhead.div_ceil(ratio as usize));
    let first = geo.group_first_block(group);
    let in_group = geo.blocks_in_group(group);
    let mut mark = |b: u64| {
        if b >= first && b < first + u64::from(in_group) {
            set_range(&mut map, ((b - first) / ratio) as usize, 1);
        }
    };
    mark(gd.block_bitmap);
    mark(gd.inode_bitmap);
    for b in gd.inode_table..gd.inode_table + u64::from(geo.inode_table_blocks) {
        mark(b);
    }
    mark_end(&mut map, (u64::from(in_group)).div_ceil(ratio) as usize);
    map
}

/// The inode bitmap of an uninitialized group: all free, padding set.
pub fn uninit_inode_bitmap(geo: &Geometry) -> Vec<u8> {
    let mut map = vec![0u8; geo.block_size as usize];
    mark_end(&mut map, geo.inodes_per_group as usize);
    map
}

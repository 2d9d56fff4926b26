//! The filesystem's shape: group count, blocks and inodes per group,
//! inode table size, reserved GDT blocks, where each group's superblock
//! copy and descriptors go, computed as `ext2fs_initialize` does
//! (lib/ext2fs/initialize.c, e2fsprogs 1.47.0), including its retries and
//! the dropping of a too-small last group.

use ext4_ondisk::features::FeatureWords;
use ext4_ondisk::{Compat, Incompat, RoCompat};

use crate::MkfsError;
use crate::error::Warning;
use crate::features::{has_compat, has_incompat, has_ro, set_compat, set_incompat};
use crate::resolve::Params;

/// `EXT2_GOOD_OLD_FIRST_INO`: the first non-reserved inode.
pub const FIRST_INO: u32 = 11;
/// `sizeof(struct ext2_inode_large)`: 128 + 32.
pub const LARGE_INODE_SIZE: u32 = 160;

/// The geometry of the filesystem being built.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Block size in bytes.
    pub block_size: u32,
    /// `s_log_block_size`.
    pub log_block_size: u32,
    /// `s_first_data_block`.
    pub first_data_block: u64,
    /// `s_blocks_count`.
    pub blocks_count: u64,
    /// `s_r_blocks_count`.
    pub r_blocks_count: u64,
    /// `s_blocks_per_group`.
    pub blocks_per_group: u32,
    /// Number of block groups.
    pub group_count: u32,
    /// Blocks of group descriptors.
    pub desc_blocks: u32,
    /// Group descriptor size in bytes (32 or 64+).
    pub desc_size: u32,
    /// `s_desc_size` as stored (0 without 64bit).
    pub s_desc_size: u32,
    /// `s_inodes_per_group`.
    pub inodes_per_group: u32,
    /// `s_inodes_count`.
    pub inodes_count: u32,
    /// `s_inode_size`.
    pub inode_size: u32,
    /// Inode table blocks per group.
    pub inode_blocks_per_group: u32,
    /// `s_reserved_gdt_blocks`.
    pub reserved_gdt_blocks: u32,
    /// Features (meta_bg may have been turned on here).
    pub features: FeatureWords,
    /// `s_first_meta_bg`.
    pub first_meta_bg: u32,
    /// `s_log_groups_per_flex`.
    pub log_groups_per_flex: u32,
    /// `s_backup_bgs` (sparse_super2).
    pub backup_bgs: [u32; 2],
    /// `s_min_extra_isize` = `s_want_extra_isize`.
    pub extra_isize: u16,
}

/// Where a group's superblock copy and descriptors are (`ext2fs_super_and_bgd_loc2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupMeta {
    /// Superblock (copy) block, if the group has one.
    pub super_blk: Option<u64>,
    /// First block of the old-style GDT copy (and reserved GDT), if any.
    pub old_desc_blk: Option<u64>,
    /// The meta_bg descriptor block, if any.
    pub new_desc_blk: Option<u64>,
    /// Blocks used by all of these.
    pub used_blks: u32,
}

fn is_power_of(mut n: u32, base: u32) -> bool {
    while n % base == 0 {
        n /= base;
    }
    n == 1
}

impl Shape {
    /// Bytes per block, as u64.
    pub fn bs(&self) -> u64 {
        self.block_size.into()
    }

    /// Whether `flex_bg` packing is in effect.
    pub fn flex_size(&self) -> u32 {
        if has_incompat(&self.features, Incompat::FLEX_BG) && self.log_groups_per_flex > 0 {
            1 << self.log_groups_per_flex
        } else {
            0
        }
    }

    /// Whether group checksums (gdt_csum or metadata_csum) are on.
    pub fn csum(&self) -> bool {
        has_ro(&self.features, RoCompat::GDT_CSUM) || has_ro(&self.features, RoCompat::METADATA_CSUM)
    }

    /// Descriptors per block.
    pub fn descs_per_block(&self) -> u32 {
        self.block_size / self.desc_size
    }

    /// First block of group `g`.
    pub fn group_first(&self, g: u32) -> u64 {
        self.first_data_block + u64::from(g) * u64::from(self.blocks_per_group)
    }

    /// Last block of group `g`.
    pub fn group_last(&self, g: u32) -> u64 {
        if g + 1 == self.group_count {
            self.blocks_count - 1
        } else {
            self.group_first(g) + u64::from(self.blocks_per_group) - 1
        }
    }

    /// Blocks in group `g`.
    pub fn group_blocks(&self, g: u32) -> u64 {
        self.group_last(g) - self.group_first(g) + 1
    }

    /// The group of block `b`.
    pub fn group_of(&self, b: u64) -> u32 {
        ((b - self.first_data_block) / u64::from(self.blocks_per_group)) as u32
    }

    /// The group of inode `ino`.
    pub fn group_of_ino(&self, ino: u32) -> u32 {
        (ino - 1) / self.inodes_per_group
    }

    /// Whether group `g` holds a superblock copy (`ext2fs_bg_has_super`).
    pub fn has_super(&self, g: u32) -> bool {
        bg_has_super(&self.features, self.backup_bgs, g)
    }

    /// Where group `g`'s superblock and descriptors are.
    pub fn group_meta(&self, g: u32) -> GroupMeta {
        let mut group_block = self.group_first(g);
        if group_block == 0 && self.block_size == 1024 {
            group_block = 1;
        }
        let meta_bg = has_incompat(&self.features, Incompat::META_BG);
        let old_desc_blocks = if meta_bg { self.first_meta_bg } else { self.desc_blocks + self.reserved_gdt_blocks };
        let has_super = self.has_super(g);
        let mut m = GroupMeta::default();
        if has_super {
            m.super_blk = Some(group_block);
            m.used_blks += 1;
        }
        let per = self.descs_per_block();
        if !meta_bg || g / per < self.first_meta_bg {
            if has_super {
                m.old_desc_blk = Some(group_block + 1);
                m.used_blks += old_desc_blocks;
            }
        } else if [0, 1, per - 1].contains(&(g % per)) {
            m.new_desc_blk = Some(group_block + u64::from(has_super));
            m.used_blks += 1;
        }
        m
    }

    /// The blocks group `g`'s superblock and descriptor copies cover, as
    /// `ext2fs_reserve_super_and_bgd` marks them (old GDT clipped at the end).
    pub fn reserved_ranges(&self, g: u32) -> Vec<(u64, u64)> {
        let m = self.group_meta(g);
        let mut out = Vec::new();
        if let Some(s) = m.super_blk {
            out.push((s, 1));
        } else if g == 0 {
            out.push((0, 1));
        }
        if let Some(d) = m.old_desc_blk {
            let n = if has_incompat(&self.features, Incompat::META_BG) {
                u64::from(self.first_meta_bg)
            } else {
                u64::from(self.desc_blocks + self.reserved_gdt_blocks)
            };
            let n = if d + n >= self.blocks_count { self.blocks_count - d } else { n };
            out.push((d, n));
        }
        if let Some(d) = m.new_desc_blk {
            out.push((d, 1));
        }
        out
    }
}

/// `ext2fs_bg_has_super` for a feature set.
pub fn bg_has_super(features: &FeatureWords, backup_bgs: [u32; 2], g: u32) -> bool {
    if g == 0 {
        return true;
    }
    if has_compat(features, Compat::SPARSE_SUPER2) {
        return g == backup_bgs[0] || g == backup_bgs[1];
    }
    if g <= 1 || !has_ro(features, RoCompat::SPARSE_SUPER) {
        return true;
    }
    if g & 1 == 0 {
        return false;
    }
    is_power_of(g, 3) || is_power_of(g, 5) || is_power_of(g, 7)
}

/// `calc_reserved_gdt_blocks`: room to grow 1024-fold, or to 2^32 blocks.
fn calc_reserved_gdt(
    blocks: u64,
    first_data_block: u64,
    bpg: u32,
    gdpb: u32,
    desc_blocks: u32,
    block_size: u32,
) -> u32 {
    let mut max_blocks: u64 = 0xFFFF_FFFF;
    if blocks < max_blocks / 1024 {
        max_blocks = blocks * 1024;
    }
    let rsv_groups = div_ceil32((max_blocks - first_data_block) as u32, bpg);
    let rsv = div_ceil32(rsv_groups, gdpb).wrapping_sub(desc_blocks);
    rsv.min(block_size / 4)
}

/// `ext2fs_div_ceil` on 32-bit values.
fn div_ceil32(a: u32, b: u32) -> u32 {
    if a == 0 { 0 } else { (a - 1) / b + 1 }
}

impl Shape {
    /// Computes the shape from resolved parameters (`ext2fs_initialize`).
    pub fn new(p: &Params, warnings: &mut Vec<Warning>) -> Result<Shape, MkfsError> {
        let block_size = p.block_size;
        let bs = u64::from(block_size);
        let first_data_block: u64 = if p.log_block_size == 0 { 1 } else { 0 };
        let mut features = p.features;
        let mut bpg = if p.blocks_per_group != 0 { p.blocks_per_group } else { block_size * 8 };
        bpg = bpg.min(65528);
        let mut blocks = p.blocks_count;
        let mut r_blocks = p.r_blocks_count;
        if r_blocks >= p.blocks_count {
            return Err(MkfsError::TooSmall { blocks, reason: "no blocks left after the reserved ones" });
        }
        let inode_size = if p.inode_size == 0 { 128 } else { p.inode_size };
        let desc_size = if has_incompat(&features, Incompat::BIT64) { p.desc_size.max(64) } else { 32 };
        let gdpb = block_size / desc_size;
        let ipb = block_size / inode_size;
        'retry: loop {
            if blocks <= first_data_block {
                return Err(MkfsError::TooSmall { blocks, reason: "no block groups" });
            }
            let groups64 = (blocks - first_data_block).div_ceil(u64::from(bpg));
            let groups = u32::try_from(groups64).map_err(|_| MkfsError::TooLarge {
                blocks,
                block_size,
                reason: "more than 2^32 block groups",
            })?;
            let desc_blocks = groups.div_ceil(gdpb);
            let i = if block_size >= 4096 { 1 } else { 4096 / u64::from(block_size) };
            let mut inodes_count: u32 = if p.inodes_count != 0 {
                p.inodes_count
            } else if has_incompat(&features, Incompat::BIT64) && blocks / i >= 1 << 32 {
                !0
            } else {
                (blocks / i) as u32
            };
            if inodes_count < FIRST_INO + 1 {
                inodes_count = FIRST_INO + 1;
            }
            let mut ipg = div_ceil32(inodes_count, groups);
            if ipg > block_size * 8 {
                if bpg >= 256 {
                    bpg -= 8;
                    blocks = p.blocks_count;
                    continue 'retry;
                }
                return Err(MkfsError::TooManyInodes {
                    inodes: inodes_count.into(),
                    reason: "more than one bitmap block of inodes per group",
                });
            }
            ipg = ipg.min(65536 - ipb);
            let (ipg, itb) = loop {
                let (isz, bs64) = (u64::from(inode_size), u64::from(block_size));
                let itb = (u64::from(ipg) * isz).div_ceil(bs64);
                let real = ((itb * bs64 / isz).max(8) & !7) as u32;
                let itb = (u64::from(real) * isz).div_ceil(bs64) as u32;
                if u64::from(real) * u64::from(groups) > 0xFFFF_FFFF {
                    if ipg <= 8 {
                        let reason = "more than 2^32 inodes even with 8 per group";
                        return Err(MkfsError::TooManyInodes { inodes: u64::from(real) * u64::from(groups), reason });
                    }
                    ipg -= 1;
                    continue;
                }
                break (real, itb);
            };
            let inodes_count = ipg * groups;
            let mut reserved_gdt = if has_compat(&features, Compat::RESIZE_INODE) {
                calc_reserved_gdt(blocks, first_data_block, bpg, gdpb, desc_blocks, block_size)
            } else {
                0
            };
            if p.reserved_gdt_blocks != 0 {
                reserved_gdt = p.reserved_gdt_blocks;
            }
            if reserved_gdt > block_size / 4 {
                return Err(MkfsError::TooLarge {
                    blocks,
                    block_size,
                    reason: "too many reserved group descriptor blocks",
                });
            }
            if reserved_gdt + desc_blocks > bpg * 3 / 4 {
                set_incompat(&mut features, Incompat::META_BG, true);
                set_compat(&mut features, Compat::RESIZE_INODE, false);
                reserved_gdt = p.reserved_gdt_blocks;
            }
            let meta_bg = has_incompat(&features, Incompat::META_BG);
            let overhead = 3 + itb + reserved_gdt + if meta_bg { 1 } else { desc_blocks };
            if overhead > bpg {
                return Err(MkfsError::TooManyInodes {
                    inodes: inodes_count.into(),
                    reason: "the inode table does not fit in a block group",
                });
            }
            let mut last_overhead = 2 + itb;
            let has_bg = if has_compat(&features, Compat::SPARSE_SUPER2) {
                if groups == 2 { p.backup_bgs[0] != 0 } else { p.backup_bgs[1] != 0 }
            } else {
                bg_has_super(&features, p.backup_bgs, groups - 1)
            };
            if has_bg {
                last_overhead += 1 + desc_blocks + reserved_gdt;
            }
            let rem = (blocks - first_data_block) % u64::from(bpg);
            if groups == 1 && rem != 0 && rem < u64::from(last_overhead) {
                return Err(MkfsError::TooSmall { blocks, reason: "the only block group cannot hold its metadata" });
            }
            if rem != 0 && rem < u64::from(last_overhead) + 50 {
                blocks -= rem;
                let ratio = 100.0 * p.r_blocks_count as f64 / p.blocks_count as f64;
                r_blocks = (ratio * blocks as f64 / 100.0) as u64;
                warnings.retain(|w| !matches!(w, Warning::LastGroupDropped { .. }));
                warnings.push(Warning::LastGroupDropped { blocks: p.blocks_count - blocks });
                continue 'retry;
            }
            let mut backup_bgs = p.backup_bgs;
            if has_compat(&features, Compat::SPARSE_SUPER2) {
                for b in &mut backup_bgs {
                    if *b >= groups {
                        *b = groups - 1;
                    }
                }
                if backup_bgs[0] == backup_bgs[1] {
                    backup_bgs[1] = 0;
                }
                if backup_bgs[0] > backup_bgs[1] {
                    backup_bgs.swap(0, 1);
                }
            }
            let _ = bs;
            return Ok(Shape {
                block_size,
                log_block_size: p.log_block_size,
                first_data_block,
                blocks_count: blocks,
                r_blocks_count: r_blocks,
                blocks_per_group: bpg,
                group_count: groups,
                desc_blocks,
                desc_size,
                s_desc_size: if has_incompat(&features, Incompat::BIT64) { desc_size } else { 0 },
                inodes_per_group: ipg,
                inodes_count,
                inode_size,
                inode_blocks_per_group: itb,
                reserved_gdt_blocks: reserved_gdt,
                features,
                first_meta_bg: 0,
                log_groups_per_flex: p.log_groups_per_flex,
                backup_bgs,
                extra_isize: if inode_size >= LARGE_INODE_SIZE { (LARGE_INODE_SIZE - 128) as u16 } else { 0 },
            });
        }
    }
}

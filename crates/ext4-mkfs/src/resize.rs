//! The resize inode (inode 7), as `ext2fs_create_resize_inode` builds it
//! (lib/ext2fs/res_gdt.c): a double-indirect block whose entries point at
//! the primary reserved GDT blocks, each of which lists its backups in the
//! groups holding superblock copies.

use ext4_ondisk::{Compat, RoCompat};

use crate::MkfsError;
use crate::build::Build;
use crate::features::{has_compat, has_ro};
use crate::kbytes::Io;

/// `EXT2_DIND_BLOCK`: index of the double-indirect pointer in `i_block`.
const DIND: usize = 13;
/// `EXT2_NDIR_BLOCKS`.
const NDIR: u64 = 12;

/// The groups after 0 holding backups, in the order `list_backups` yields
/// them: powers of 3, 5 and 7 merged, every group without sparse_super, or
/// the two `s_backup_bgs` with sparse_super2.
pub(crate) fn backup_groups(b: &Build) -> Vec<u32> {
    let s = &b.model.shape;
    let n = s.group_count;
    if has_compat(&s.features, Compat::SPARSE_SUPER2) {
        return s.backup_bgs.iter().copied().filter(|&g| g != 0 && g < n).collect();
    }
    if !has_ro(&s.features, RoCompat::SPARSE_SUPER) {
        return (1..n).collect();
    }
    let (mut three, mut five, mut seven) = (1u64, 5u64, 7u64);
    let mut out = Vec::new();
    loop {
        let (min, mult) = if five < three && five <= seven {
            (&mut five, 5)
        } else if seven < three && seven < five {
            (&mut seven, 7)
        } else {
            (&mut three, 3)
        };
        let g = *min;
        *min *= mult;
        if g >= u64::from(n) {
            break;
        }
        out.push(g as u32);
    }
    out
}

impl Build {
    /// Creates the resize inode.
    pub(crate) fn create_resize_inode(&mut self) -> Result<(), MkfsError> {
        let s = self.model.shape.clone();
        let bs = s.block_size as usize;
        let apb = u64::from(s.block_size / 4);
        let sb_blk = if s.first_data_block == 0 && s.block_size == 1024 { 1 } else { s.first_data_block };
        let goal = sb_blk
            + u64::from(s.desc_blocks)
            + u64::from(s.reserved_gdt_blocks)
            + 2
            + u64::from(s.inode_blocks_per_group);
        self.io.push(Io::ReadInode(ext4_ondisk::ino::RESIZE));
        let dind = self.model.alloc_block(goal)?;
        let mut inode = self.new_inode_record(0o100600);
        inode.links_count = 1;
        let mut blocks = 1u64;
        let size = (apb * apb + apb + NDIR) * s.bs();
        self.set_file_size(&mut inode, size);
        ext4_ondisk::put_u32(&mut inode.block, DIND * 4, dind as u32);

        let backups = backup_groups(self);
        let mut dind_buf = vec![0u8; bs];
        for rsv_off in 0..u64::from(s.reserved_gdt_blocks) {
            let gdt_off = ((u64::from(s.desc_blocks) + rsv_off) % apb) as usize;
            let gdt_blk = sb_blk + 1 + u64::from(s.desc_blocks) + rsv_off;
            ext4_ondisk::put_u32(&mut dind_buf, gdt_off * 4, gdt_blk as u32);
            blocks += 1;
            let mut gdt_buf = vec![0u8; bs];
            for (last, &grp) in backups.iter().enumerate() {
                let expect = (gdt_blk as u32).wrapping_add(grp.wrapping_mul(s.blocks_per_group));
                ext4_ondisk::put_u32(&mut gdt_buf, last * 4, expect);
                blocks += 1;
            }
            self.model.put_block(gdt_blk, gdt_buf);
            self.io.push(Io::WriteBlock(gdt_blk));
        }
        self.model.put_block(dind, dind_buf);
        self.io.extend([Io::WriteBlock(dind), Io::WriteInodeFull(ext4_ondisk::ino::RESIZE)]);
        inode.blocks = blocks * (s.bs() / 512);
        self.model.inodes.insert(ext4_ondisk::ino::RESIZE, inode);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sparse_backup_order() {
        let mut o = crate::options::FormatOptions::new(crate::options::FsType::Ext2);
        o.time = Some(1);
        o.block_size = Some(1024);
        o.blocks_per_group = Some(256);
        o.size = Some(crate::options::FsSize::Bytes(64 << 20));
        let b = crate::build::Build::start(64 << 20, &o).unwrap();
        let g = super::backup_groups(&b);
        assert_eq!(&g[..10], &[1, 3, 5, 7, 9, 25, 27, 49, 81, 125]);
    }
}

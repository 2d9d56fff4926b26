//! The orphan file (`orphan_file`), as `ext2fs_create_orphan_file` makes
//! it (lib/ext2fs/orphan.c): a new inode (12 on a fresh filesystem) whose
//! blocks each end in the orphan block tail, allocated from the first free
//! block of the filesystem.

use ext4_ondisk::{Incompat, RoCompat};

use crate::MkfsError;
use crate::build::Build;
use crate::features::{has_incompat, has_ro};
use crate::kbytes::Io;
use crate::mapping::{MapKind, Mapping};

/// `ext2fs_default_orphan_file_blocks`: 32 blocks below 128Ki blocks,
/// 1/4096 of the filesystem below 2Mi blocks, else 512.
pub fn default_orphan_file_blocks(blocks: u64) -> u64 {
    if blocks < 128 * 1024 {
        32
    } else if blocks < 2 * 1024 * 1024 {
        blocks / 4096
    } else {
        512
    }
}

impl Build {
    /// Creates the orphan file of `num_blocks` blocks.
    pub(crate) fn create_orphan_file(&mut self, num_blocks: u64) -> Result<(), MkfsError> {
        let root = ext4_ondisk::ino::ROOT;
        let ino = self.model.new_inode(root)?;
        self.model.inode_alloc(ino, false);
        let s = self.model.shape.clone();
        let extents = has_incompat(&s.features, Incompat::EXTENTS);
        let csum = has_ro(&s.features, RoCompat::METADATA_CSUM);
        let kind = if extents { MapKind::Extents } else { MapKind::Indirect };
        let mut map = Mapping::new(kind, s.block_size);
        let mut last = 0u64;
        let mut data = Vec::new();
        self.io.push(Io::ReadInode(ino));
        if extents {
            self.io.push(Io::WriteInode(ino));
        }
        self.io.push(Io::ReadInode(ino));
        for lblk in 0..num_blocks {
            let lblk = lblk as u32;
            let b = if extents {
                let b = self.model.alloc_block(last)?;
                let before = map.leaves();
                map.append_block(&mut self.model, lblk, b)?;
                self.io.push(Io::WriteBlock(b));
                self.log_extent_insert(ino, &before, &map.leaves());
                b
            } else {
                let b = map.push_indirect(&mut self.model, lblk, 0)?;
                // block_iterate3's I/O differs from bmap's: logged below.
                map.io.clear();
                b
            };
            last = b;
            data.push(b);
        }
        if !extents {
            self.io.extend(map.iterate_io());
            self.io.push(Io::WriteInode(ino));
        }
        self.io.extend([Io::ReadInode(ino), Io::WriteInodeFull(ino)]);
        let seed = self.csum_seed;
        for &b in &data {
            let mut buf = vec![0u8; s.block_size as usize];
            ext4_ondisk::orphan::set_orphan_block_tail(seed, ino, 0, b, &mut buf, csum);
            self.model.put_block(b, buf);
        }
        let mut inode = self.new_inode_record(0o100600);
        inode.links_count = 1;
        // libext2fs counts data and indirect blocks, not extent tree blocks.
        let counted = num_blocks + if extents { 0 } else { map.map_blocks().len() as u64 };
        inode.blocks = counted * (s.bs() / 512);
        self.set_file_size(&mut inode, num_blocks * s.bs());
        map.finish(self, ino, &mut inode)?;
        self.model.inodes.insert(ino, inode);
        self.orphan_ino = ino;
        Ok(())
    }
}

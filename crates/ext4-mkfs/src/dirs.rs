//! The root directory (inode 2) and `lost+found` (inode 11), made as
//! mke2fs makes them (`ext2fs_mkdir`, `ext2fs_link`, `ext2fs_expand_dir`):
//! one block for the root, lost+found grown to 16 KiB (at least two blocks,
//! at most twelve), entries split the way libext2fs splits them.

use ext4_ondisk::dir;
use ext4_ondisk::{Incompat, RoCompat};

use crate::MkfsError;
use crate::build::Build;
use crate::features::{has_incompat, has_ro};
use crate::kbytes::Io;
use crate::shape::FIRST_INO;

/// `EXT2_FT_DIR`.
const FT_DIR: u8 = 2;
/// Mode bits of a directory.
const S_IFDIR: u16 = 0o040000;

impl Build {
    fn dir_file_type(&self) -> u8 {
        if has_incompat(&self.model.shape.features, Incompat::FILETYPE) { FT_DIR } else { 0 }
    }

    fn dir_tail_size(&self) -> usize {
        if has_ro(&self.model.shape.features, RoCompat::METADATA_CSUM) { dir::TAIL_SIZE } else { 0 }
    }

    /// A directory block (`ext2fs_new_dir_block`): `.` and `..`, or one
    /// empty entry when `ino` is 0; a checksum tail with metadata_csum.
    fn new_dir_block(&self, ino: u32, parent: u32) -> Vec<u8> {
        let bs = self.model.shape.block_size;
        let mut b = vec![0u8; bs as usize];
        let end = bs as usize - self.dir_tail_size();
        let ft = self.dir_file_type();
        if ino == 0 {
            dir::set_rec_len(&mut b, 0, end as u32, bs);
        } else {
            dir::write_entry(&mut b, 0, ino, 12, b".", ft, bs);
            dir::write_entry(&mut b, 12, parent, end as u32 - 12, b"..", ft, bs);
        }
        if self.dir_tail_size() > 0 {
            dir::write_tail(&mut b);
        }
        b
    }

    /// `ext2fs_link` of `name` into a directory block that holds `.` and a
    /// `..` spanning the rest: `..` is cut to its minimum and the new entry
    /// takes the remaining space.
    fn link_into(&self, block: &mut [u8], name: &[u8], ino: u32) {
        let bs = self.model.shape.block_size;
        let end = bs as usize - self.dir_tail_size();
        let dotdot_len = dir::rec_len_for(2);
        dir::set_rec_len(block, 12, dotdot_len as u32, bs);
        let pos = 12 + dotdot_len;
        dir::write_entry(block, pos, ino, (end - pos) as u32, name, self.dir_file_type(), bs);
    }

    /// Creates the root directory.
    pub(crate) fn create_root_dir(&mut self) -> Result<(), MkfsError> {
        let root = ext4_ondisk::ino::ROOT;
        let goal = self.inode_goal(root);
        let blk = self.model.new_block(goal)?;
        let mut inode = self.new_inode_record(S_IFDIR | 0o755);
        inode.size = self.model.shape.bs();
        inode.links_count = 2;
        inode.blocks = self.model.shape.bs() / 512;
        self.map_blocks(root, &mut inode, &[(0, blk, 1)])?;
        let (uid, gid) = self.params.root_owner;
        inode.uid = uid;
        inode.gid = gid;
        self.model.claim(blk, 1);
        self.model.inode_alloc(root, true);
        let data = self.new_dir_block(root, root);
        self.dir_blocks.push((root, blk, data));
        self.model.inodes.insert(root, inode);
        self.root_block = blk;
        self.io.extend([Io::WriteInodeFull(root), Io::WriteDirBlock(blk, root)]);
        if self.extents() {
            self.io.push(Io::WriteInode(root));
        }
        if (uid, gid) != (0, 0) {
            self.io.extend([Io::ReadInode(root), Io::WriteInodeFull(root)]);
        }
        Ok(())
    }

    /// The block an inline directory becomes (`ext2fs_inline_data_convert_dir`):
    /// `..` keeps its minimum length and an empty entry takes the rest.
    fn split_after_dotdot(&self, block: &mut [u8]) {
        let bs = self.model.shape.block_size;
        let end = bs as usize - self.dir_tail_size();
        dir::set_rec_len(block, 12, 12, bs);
        dir::write_entry(block, 24, 0, (end - 24) as u32, b"", 0, bs);
    }

    /// Links `name` into the root directory block and counts the link.
    fn link_in_root(&mut self, name: &[u8], ino: u32) {
        let root = ext4_ondisk::ino::ROOT;
        if let Some(i) = self.dir_blocks.iter().position(|(o, _, _)| *o == root) {
            let mut block = std::mem::take(&mut self.dir_blocks[i].2);
            self.link_into(&mut block, name, ino);
            self.dir_blocks[i].2 = block;
        }
        if let Some(r) = self.model.inodes.get_mut(&root) {
            r.links_count += 1;
        }
    }

    /// Creates lost+found and grows it as mke2fs does. With inline_data it
    /// starts inline, and the first expansion moves it to a block.
    pub(crate) fn create_lost_found(&mut self) -> Result<(), MkfsError> {
        let root = ext4_ondisk::ino::ROOT;
        let ino = self.model.new_inode(root)?;
        let inline = has_incompat(&self.model.shape.features, Incompat::INLINE_DATA);
        let mut blocks = Vec::new();
        if inline {
            self.model.inode_alloc(ino, true);
            self.log_lost_found_mkdir(ino, None);
        } else {
            let goal = self.inode_goal(ino);
            let first = self.model.new_block(goal)?;
            blocks.push(first);
            self.model.claim(first, 1);
            self.model.inode_alloc(ino, true);
            self.log_lost_found_mkdir(ino, Some(first));
        }
        self.link_in_root(b"lost+found", ino);
        // Grow to 16 KiB (at least 2 blocks), within the 12 direct blocks.
        let bs = self.model.shape.bs();
        let mut lpf_size = 0u64;
        for _ in 1..12 {
            lpf_size += bs;
            if lpf_size >= 16 * 1024 && lpf_size >= 2 * bs {
                break;
            }
            // The inline directory moves to the first free block of the filesystem.
            let goal = blocks.last().copied().unwrap_or(0);
            let b = self.model.new_block(goal)?;
            self.model.claim(b, 1);
            blocks.push(b);
            self.log_expand_dir(ino, b, blocks.len() == 1 && inline);
        }
        let first = blocks[0];
        let mut inode = self.new_inode_record(S_IFDIR | 0o700);
        inode.size = bs * blocks.len() as u64;
        inode.links_count = 2;
        inode.blocks = bs / 512 * blocks.len() as u64;
        let runs = runs_of(&blocks);
        self.map_blocks(ino, &mut inode, &runs)?;
        self.model.inodes.insert(ino, inode);
        if inline {
            // Removing the empty system.data attribute leaves the in-inode
            // xattr header behind.
            self.model.xattr_magic.insert(ino);
        }
        let mut data = self.new_dir_block(ino, root);
        if inline {
            self.split_after_dotdot(&mut data);
        }
        self.dir_blocks.push((ino, first, data));
        for &b in &blocks[1..] {
            let data = self.new_dir_block(0, 0);
            self.dir_blocks.push((ino, b, data));
        }
        Ok(())
    }

    /// Marks the reserved inodes 3 .. first_ino - 1 used (`reserve_inodes`)
    /// and the bad blocks inode (`create_bad_block_inode`).
    pub(crate) fn reserve_inodes(&mut self) {
        for ino in ext4_ondisk::ino::ROOT + 1..FIRST_INO {
            self.model.inode_alloc(ino, false);
        }
        let bad = ext4_ondisk::ino::BAD_BLOCKS;
        self.model.inode_alloc(bad, false);
        let t = self.time_stamp();
        let mut inode = ext4_ondisk::Inode::empty(0);
        inode.atime = t;
        inode.mtime = t;
        inode.ctime = t;
        self.model.inodes.insert(bad, inode);
        self.io.extend([Io::ReadInode(bad), Io::ReadInode(bad), Io::WriteInode(bad)]);
    }

    /// Whether files use extents.
    pub(crate) fn extents(&self) -> bool {
        has_incompat(&self.model.shape.features, Incompat::EXTENTS)
    }

    /// The I/O of `ext2fs_lookup` in the root: its inode and its block.
    fn log_root_lookup(&mut self) {
        let root = ext4_ondisk::ino::ROOT;
        self.io.extend([Io::ReadInode(root), Io::ReadBlock(self.root_block), Io::ReadInode(root)]);
    }

    /// The I/O of `ext2fs_mkdir(root, 0, "lost+found")` and the lookup
    /// that follows it in mke2fs; `first` is `None` for an inline directory.
    fn log_lost_found_mkdir(&mut self, ino: u32, first: Option<u64>) {
        let root = ext4_ondisk::ino::ROOT;
        self.io.extend([Io::ReadInode(root), Io::WriteInodeFull(ino)]);
        match first {
            Some(first) => {
                self.io.push(Io::WriteDirBlock(first, ino));
                if self.extents() {
                    self.io.push(Io::WriteInode(ino));
                }
            }
            // ext2fs_inline_data_init: the empty system.data attribute.
            None => self.io.extend([Io::ReadInode(ino), Io::ReadInode(ino), Io::WriteInodeFull(ino)]),
        }
        self.log_root_lookup();
        // ext2fs_link, then the parent's link count.
        let rb = self.root_block;
        self.io.extend([Io::ReadInode(root), Io::ReadBlock(rb), Io::WriteDirBlock(rb, root)]);
        self.io.extend([Io::ReadInode(root), Io::WriteInode(root)]);
        self.log_root_lookup();
    }

    /// The I/O of one `ext2fs_expand_dir` adding block `b` (`from_inline`:
    /// the expansion that moves an inline directory to its first block).
    fn log_expand_dir(&mut self, ino: u32, b: u64, from_inline: bool) {
        self.io.extend([Io::ReadInode(ino), Io::ReadInode(ino), Io::ReadInode(ino)]);
        if from_inline {
            let rw = [Io::ReadInode(ino), Io::ReadInode(ino), Io::WriteInode(ino)];
            self.io.extend(rw);
            self.io.extend(rw);
            self.io.extend([Io::ReadInode(ino), Io::WriteDirBlock(b, ino), Io::WriteInode(ino), Io::WriteInode(ino)]);
            return;
        }
        self.io.extend([Io::WriteDirBlock(b, ino), Io::WriteInode(ino), Io::ReadInode(ino), Io::WriteInode(ino)]);
    }
}

/// Contiguous runs `(logical, physical, len)` of a list of blocks.
pub(crate) fn runs_of(blocks: &[u64]) -> Vec<(u32, u64, u32)> {
    let mut runs: Vec<(u32, u64, u32)> = Vec::new();
    for (i, &b) in blocks.iter().enumerate() {
        match runs.last_mut() {
            Some((l, p, n)) if *p + u64::from(*n) == b && *l + *n == i as u32 => *n += 1,
            _ => runs.push((i as u32, b, 1)),
        }
    }
    runs
}

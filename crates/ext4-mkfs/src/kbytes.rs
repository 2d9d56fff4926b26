//! `s_kbytes_written` as mke2fs 1.47.0 leaves it.
//!
//! mke2fs starts the counter at 1 (for ext4 features) and, when it closes
//! the filesystem, adds the bytes its I/O channel has written so far plus
//! the descriptor blocks it is about to write (`ext2fs_close2`). Those
//! bytes depend on libext2fs' unix I/O manager: an 8-block write-back
//! cache with LRU replacement (lib/ext2fs/unix_io.c), the 4-inode inode
//! cache and its one-block buffer (lib/ext2fs/inode.c). The format logs
//! the I/O mke2fs makes, in order ([`Io`]); this module replays the log
//! through a model of those caches and counts the bytes that reached the
//! device before the close. Zeroing is assumed to go through
//! `fallocate` (as on any Linux filesystem that supports it), which the
//! I/O statistics do not count.

use crate::model::Model;

/// One I/O operation of mke2fs, as libext2fs issues it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Io {
    /// `ext2fs_read_inode`.
    ReadInode(u32),
    /// `ext2fs_write_inode` (a 128-byte inode struct: large inodes are read first).
    WriteInode(u32),
    /// `ext2fs_write_new_inode` / `ext2fs_write_inode_full` (the whole record).
    WriteInodeFull(u32),
    /// A one-block read through the cache.
    ReadBlock(u64),
    /// A one-block write through the cache.
    WriteBlock(u64),
    /// A directory block write (`ext2fs_write_dir_block4`): with
    /// metadata_csum, the owner inode is read for its generation first.
    WriteDirBlock(u64, u32),
    /// A write of this many bytes that bypasses the cache (after flushing
    /// and invalidating it).
    Direct(u64),
}

const CACHE_SIZE: usize = 8;

#[derive(Debug, Clone, Copy)]
struct Slot {
    block: u64,
    dirty: bool,
    time: u64,
}

/// The unix I/O manager's block cache.
#[derive(Debug)]
struct UnixCache {
    slots: [Option<Slot>; CACHE_SIZE],
    clock: u64,
    bytes: u64,
    block_size: u64,
}

impl UnixCache {
    fn find(&mut self, block: u64) -> Option<usize> {
        let i = self.slots.iter().position(|s| s.is_some_and(|s| s.block == block))?;
        self.clock += 1;
        if let Some(s) = self.slots[i].as_mut() {
            s.time = self.clock;
        }
        Some(i)
    }

    /// The slot to reuse: the first unused one, else the least recently used.
    fn victim(&self) -> usize {
        if let Some(i) = self.slots.iter().position(Option::is_none) {
            return i;
        }
        (0..CACHE_SIZE).min_by_key(|&i| self.slots[i].map_or(0, |s| s.time)).unwrap_or(0)
    }

    fn reuse(&mut self, block: u64) -> usize {
        let i = self.victim();
        if self.slots[i].is_some_and(|s| s.dirty) {
            self.bytes += self.block_size;
        }
        self.clock += 1;
        self.slots[i] = Some(Slot { block, dirty: false, time: self.clock });
        i
    }

    fn read(&mut self, block: u64) {
        if self.find(block).is_none() {
            self.reuse(block);
        }
    }

    fn write(&mut self, block: u64) {
        let i = match self.find(block) {
            Some(i) => i,
            None => self.reuse(block),
        };
        if let Some(s) = self.slots[i].as_mut() {
            s.dirty = true;
        }
    }

    fn direct(&mut self, bytes: u64) {
        for s in self.slots.iter_mut() {
            if s.is_some_and(|s| s.dirty) {
                self.bytes += self.block_size;
            }
            *s = None;
        }
        self.bytes += bytes;
    }
}

/// libext2fs' inode cache: four inode numbers and the last inode-table
/// block read.
#[derive(Debug, Default)]
struct InodeCache {
    created: bool,
    inos: [u32; 4],
    last: usize,
    buffer_blk: u64,
}

struct Replay<'a> {
    model: &'a Model,
    csum: bool,
    cache: UnixCache,
    icache: InodeCache,
}

impl Replay<'_> {
    fn itable_block(&self, ino: u32) -> u64 {
        let s = &self.model.shape;
        let g = s.group_of_ino(ino);
        let off = u64::from((ino - 1) % s.inodes_per_group) * u64::from(s.inode_size);
        self.model.groups[g as usize].inode_table + off / s.bs()
    }

    fn create_icache(&mut self) {
        if !self.icache.created {
            self.icache = InodeCache { created: true, inos: [0; 4], last: 3, buffer_blk: 0 };
        }
    }

    fn load_buffer(&mut self, block: u64) {
        if self.icache.buffer_blk != block {
            self.cache.read(block);
            self.icache.buffer_blk = block;
        }
    }

    fn read_inode(&mut self, ino: u32) {
        self.create_icache();
        if self.icache.inos.contains(&ino) {
            return;
        }
        let blk = self.itable_block(ino);
        self.load_buffer(blk);
        let slot = (self.icache.last + 1) % 4;
        self.icache.last = slot;
        self.icache.inos[slot] = ino;
    }

    fn write_inode(&mut self, ino: u32, full: bool) {
        if !full && self.model.shape.inode_size > 128 {
            self.read_inode(ino);
        }
        self.create_icache();
        let blk = self.itable_block(ino);
        self.load_buffer(blk);
        self.cache.write(blk);
    }

    fn apply(&mut self, op: Io) {
        match op {
            Io::ReadInode(i) => self.read_inode(i),
            Io::WriteInode(i) => self.write_inode(i, false),
            Io::WriteInodeFull(i) => self.write_inode(i, true),
            Io::ReadBlock(b) => self.cache.read(b),
            Io::WriteBlock(b) => self.cache.write(b),
            Io::WriteDirBlock(b, owner) => {
                if self.csum {
                    self.read_inode(owner);
                }
                self.cache.write(b);
            }
            Io::Direct(n) => self.cache.direct(n),
        }
    }
}

/// Bytes mke2fs' I/O channel has written when it closes the filesystem.
pub fn bytes_written(model: &Model, log: &[Io], csum: bool) -> u64 {
    let cache = UnixCache { slots: [None; CACHE_SIZE], clock: 0, bytes: 0, block_size: model.shape.bs() };
    let mut r = Replay { model, csum, cache, icache: InodeCache::default() };
    for &op in log {
        r.apply(op);
    }
    r.cache.bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_counts_evicted_dirty_blocks_only() {
        let mut c = UnixCache { slots: [None; CACHE_SIZE], clock: 0, bytes: 0, block_size: 1024 };
        for b in 0..8 {
            c.write(b);
        }
        assert_eq!(c.bytes, 0);
        c.read(0);
        c.write(100);
        // Block 1 was least recently used.
        assert_eq!(c.bytes, 1024);
        assert!(c.find(1).is_none());
        c.direct(3072);
        assert_eq!(c.bytes, 1024 + 8 * 1024 + 3072);
    }
}

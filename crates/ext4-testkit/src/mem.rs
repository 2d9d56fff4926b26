//! In-memory block I/O for the layer crates' traits: a directory
//! ([`MemDir`], `DirIo`) and a block map ([`MemMap`], `MapIo`) over plain
//! bytes, for model tests, benchmarks and fuzz targets.

use ext4_fs::extent::{MapError, MapIo};
use ext4_fs::htree::{DirError, DirIo};

/// Block maps over fuzz bytes: block `b` reads chunk `b % chunks` of `data`;
/// writes and allocations stay in memory.
pub struct MemMap {
    /// Block size.
    pub block_size: usize,
    /// The blocks.
    pub blocks: Vec<Vec<u8>>,
    /// Next block handed out by `alloc_block`.
    pub next: u64,
}

impl MemMap {
    /// Cuts `data` into blocks (at least one, zero-padded).
    pub fn new(block_size: usize, data: &[u8]) -> Self {
        let mut blocks: Vec<Vec<u8>> = data
            .chunks(block_size)
            .map(|c| {
                let mut b = c.to_vec();
                b.resize(block_size, 0);
                b
            })
            .collect();
        if blocks.is_empty() {
            blocks.push(vec![0; block_size]);
        }
        Self { block_size, blocks, next: 5000 }
    }

    fn slot(&self, block: u64) -> usize {
        (block % self.blocks.len() as u64) as usize
    }
}

impl MapIo for MemMap {
    type Error = MapError;

    fn read_block(&mut self, block: u64, buf: &mut [u8]) -> Result<(), MapError> {
        let s = self.slot(block);
        buf.copy_from_slice(&self.blocks[s]);
        Ok(())
    }

    fn write_block(&mut self, block: u64, data: &[u8]) -> Result<(), MapError> {
        let s = self.slot(block);
        self.blocks[s].copy_from_slice(data);
        Ok(())
    }

    fn alloc_block(&mut self, _goal: u64) -> Result<u64, MapError> {
        self.next += 1;
        Ok(self.next)
    }

    fn free_blocks(&mut self, _start: u64, _count: u64, _meta: bool) -> Result<(), MapError> {
        Ok(())
    }
}

/// A directory in memory: blocks past the end read as zeros (a hostile
/// index may name them) and writes there are dropped.
#[derive(Debug, Clone)]
pub struct MemDir {
    /// Block size.
    pub block_size: usize,
    /// The blocks.
    pub blocks: Vec<Vec<u8>>,
    /// Blocks `append_block` may still add.
    pub room: u32,
}

impl MemDir {
    /// Cuts `data` into blocks (at least one, zero-padded).
    pub fn new(block_size: usize, data: &[u8]) -> Self {
        let m = MemMap::new(block_size, data);
        Self { block_size, blocks: m.blocks, room: 64 }
    }

    /// A directory of `blocks` that may grow by `room` blocks.
    pub fn from_blocks(block_size: usize, blocks: Vec<Vec<u8>>, room: u32) -> Self {
        Self { block_size, blocks, room }
    }
}

impl DirIo for MemDir {
    type Error = DirError;

    fn block_count(&self) -> u32 {
        self.blocks.len() as u32
    }

    fn read_block(&mut self, logical: u32, buf: &mut [u8]) -> Result<(), DirError> {
        match self.blocks.get(logical as usize) {
            Some(b) => buf.copy_from_slice(b),
            None => buf.fill(0),
        }
        Ok(())
    }

    fn write_block(&mut self, logical: u32, data: &[u8]) -> Result<(), DirError> {
        if let Some(b) = self.blocks.get_mut(logical as usize) {
            b.copy_from_slice(data);
        }
        Ok(())
    }

    fn append_block(&mut self) -> Result<u32, DirError> {
        if self.room == 0 {
            return Err(DirError::IndexFull);
        }
        self.room -= 1;
        self.blocks.push(vec![0; self.block_size]);
        Ok(self.blocks.len() as u32 - 1)
    }
}

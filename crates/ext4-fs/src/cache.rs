//! The metadata block cache: clean blocks evicted by a CLOCK sweep, dirty
//! blocks pinned until the transaction that changed them is written.
//!
//! File data enters it only as a journaled overwrite (a block already part
//! of a file, changed in a journaled transaction); every other data write
//! goes straight to the device and drops the block's cached copy, so that a
//! freed and reused block never reads back its old contents.

use std::collections::{BTreeSet, HashMap};

struct Slot {
    data: Box<[u8]>,
    referenced: bool,
}

/// Metadata blocks by device block number.
pub(crate) struct BlockCache {
    slots: HashMap<u64, Slot>,
    /// Blocks changed since the last commit, in block order for write-out.
    dirty: BTreeSet<u64>,
    /// Eviction ring of block numbers (may hold stale numbers).
    ring: Vec<u64>,
    hand: usize,
    capacity: usize,
}

impl BlockCache {
    /// A cache that keeps about `capacity` clean blocks.
    pub(crate) fn new(capacity: usize) -> Self {
        Self { slots: HashMap::new(), dirty: BTreeSet::new(), ring: Vec::new(), hand: 0, capacity: capacity.max(16) }
    }

    pub(crate) fn get(&mut self, block: u64) -> Option<&[u8]> {
        let slot = self.slots.get_mut(&block)?;
        slot.referenced = true;
        Some(&slot.data)
    }

    /// Inserts a block read from the device.
    pub(crate) fn insert_clean(&mut self, block: u64, data: Box<[u8]>) -> &[u8] {
        self.make_room();
        self.ring.push(block);
        &self.slots.entry(block).or_insert(Slot { data, referenced: true }).data
    }

    /// The block for modification; it becomes dirty. `None` if not cached.
    pub(crate) fn get_mut(&mut self, block: u64) -> Option<&mut [u8]> {
        let slot = self.slots.get_mut(&block)?;
        self.dirty.insert(block);
        slot.referenced = true;
        Some(&mut slot.data)
    }

    /// Stores new contents for a block and marks it dirty.
    pub(crate) fn insert_dirty(&mut self, block: u64, data: Box<[u8]>) {
        if !self.slots.contains_key(&block) {
            self.make_room();
            self.ring.push(block);
        }
        self.slots.insert(block, Slot { data, referenced: true });
        self.dirty.insert(block);
    }

    /// Drops a block (freed): its pending changes are discarded.
    pub(crate) fn forget(&mut self, block: u64) {
        self.slots.remove(&block);
        self.dirty.remove(&block);
    }

    /// The block's current state, to be put back by [`BlockCache::restore`].
    pub(crate) fn save(&self, block: u64) -> Option<(Box<[u8]>, bool)> {
        self.slots.get(&block).map(|s| (s.data.clone(), self.dirty.contains(&block)))
    }

    /// Puts a block back as [`BlockCache::save`] found it (absent if `None`).
    pub(crate) fn restore(&mut self, block: u64, state: Option<(Box<[u8]>, bool)>) {
        match state {
            None => self.forget(block),
            Some((data, dirty)) => {
                if !self.slots.contains_key(&block) {
                    self.ring.push(block);
                }
                self.slots.insert(block, Slot { data, referenced: true });
                if dirty {
                    self.dirty.insert(block);
                } else {
                    self.dirty.remove(&block);
                }
            }
        }
    }

    pub(crate) fn dirty_count(&self) -> usize {
        self.dirty.len()
    }

    /// The dirty blocks in block order, marking them clean.
    pub(crate) fn take_dirty(&mut self) -> Vec<(u64, Box<[u8]>)> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty.into_iter().filter_map(|b| self.slots.get(&b).map(|s| (b, s.data.clone()))).collect()
    }

    fn make_room(&mut self) {
        let clean = self.slots.len().saturating_sub(self.dirty.len());
        if clean < self.capacity {
            return;
        }
        // CLOCK: sweep at most two turns, evicting unreferenced clean blocks
        // until an eighth of the capacity is free.
        let target = self.capacity - self.capacity / 8;
        let mut evicted = clean;
        let mut steps = 2 * self.ring.len();
        while evicted > target && steps > 0 && !self.ring.is_empty() {
            steps -= 1;
            if self.hand >= self.ring.len() {
                self.hand = 0;
            }
            let b = self.ring[self.hand];
            let remove = match self.slots.get_mut(&b) {
                None => true, // stale ring entry
                Some(_) if self.dirty.contains(&b) => false,
                Some(s) if s.referenced => {
                    s.referenced = false;
                    false
                }
                Some(_) => {
                    self.slots.remove(&b);
                    evicted -= 1;
                    true
                }
            };
            if remove {
                self.ring.swap_remove(self.hand);
            } else {
                self.hand += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirty_blocks_survive_eviction() {
        let mut c = BlockCache::new(16);
        c.insert_dirty(1000, vec![7u8; 8].into());
        for b in 0..200 {
            c.insert_clean(b, vec![0u8; 8].into());
        }
        assert_eq!(c.get(1000).unwrap()[0], 7);
        assert!(c.slots.len() <= 17 + 1);
        let d = c.take_dirty();
        assert_eq!(d.len(), 1);
        assert_eq!(c.dirty_count(), 0);
    }

    #[test]
    fn forget_discards_changes() {
        let mut c = BlockCache::new(16);
        c.insert_dirty(5, vec![1u8; 8].into());
        c.forget(5);
        assert!(c.get(5).is_none());
        assert!(c.take_dirty().is_empty());
    }
}

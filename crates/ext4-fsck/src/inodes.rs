//! What the passes remember about inodes: one small record per inode in
//! use (its link count, the links pass 2 found, its type), and one per
//! directory (its parent as pass 2 found it, and its `..`). Records are
//! kept sorted by inode number (pass 1 meets inodes in order), so memory is
//! a few bytes per inode in use.

/// Flags of an [`InodeRec`].
pub(crate) mod flag {
    /// In use (e2fsck's `inode_used_map`).
    pub const USED: u8 = 1;
    /// A directory (`inode_dir_map`).
    pub const DIR: u8 = 2;
    /// A regular file (`inode_reg_map`).
    pub const REG: u8 = 4;
    /// Has fields pass 2 should look at (`inode_bad_map`).
    pub const BAD: u8 = 8;
    /// In a bad block of the inode table (`inode_bb_map`).
    pub const BB: u8 = 16;
    /// An AFS directory inode (`inode_imagic_map`).
    pub const IMAGIC: u8 = 32;
    /// Casefolded directory (`inode_casefold_map`).
    pub const CASEFOLD: u8 = 64;
}

/// What pass 1 found about one inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InodeRec {
    /// Inode number.
    pub ino: u32,
    /// `i_links_count` as read (e2fsck's `inode_link_info`).
    pub links: u16,
    /// Directory entries naming the inode (e2fsck's `inode_count`), saturating.
    pub counted: u16,
    /// Directory entry type code of its mode (`EXT4_FT_*`, 0 if none).
    pub ftype: u8,
    /// [`flag`] bits.
    pub flags: u8,
}

/// The records of every inode pass 1 marked, sorted by number.
#[derive(Debug, Default)]
pub(crate) struct InodeTable {
    recs: Vec<InodeRec>,
    /// `index[c]`: the first record whose number is at least `c << shift`
    /// (empty: not built, or dropped by an insertion in the middle). At
    /// most one entry per record, so it costs no more than the records do.
    index: Vec<u32>,
    /// Inode numbers per `index` entry, as a power of two.
    shift: u32,
}

impl InodeTable {
    /// The record of `ino`, creating it (kept sorted; appending is the fast path).
    pub(crate) fn entry(&mut self, ino: u32) -> &mut InodeRec {
        let new = InodeRec { ino, links: 0, counted: 0, ftype: 0, flags: 0 };
        let i = match self.recs.last() {
            Some(last) if last.ino < ino => {
                self.recs.push(new);
                self.recs.len() - 1
            }
            None => {
                self.recs.push(new);
                0
            }
            _ => match self.recs.binary_search_by_key(&ino, |r| r.ino) {
                Ok(i) => i,
                Err(i) => {
                    self.index.clear();
                    self.recs.insert(i, new);
                    i
                }
            },
        };
        &mut self.recs[i]
    }

    /// Builds the index that speeds up lookups by number (after pass 1,
    /// when lookups outnumber insertions).
    pub(crate) fn reindex(&mut self) {
        self.index.clear();
        let Some(last) = self.recs.last() else { return };
        let per = (u64::from(last.ino) / self.recs.len() as u64).max(64);
        self.shift = (64 - (per - 1).leading_zeros()).min(31);
        let chunks = (last.ino >> self.shift) as usize + 1;
        self.index.reserve_exact(chunks);
        let mut i = 0usize;
        for c in 0..chunks as u64 {
            while i < self.recs.len() && u64::from(self.recs[i].ino) < c << self.shift {
                i += 1;
            }
            self.index.push(i as u32);
        }
    }

    /// Where the record of `ino` is, if it has one.
    fn position(&self, ino: u32) -> Option<usize> {
        let Some(&tail) = self.index.last() else { return self.recs.binary_search_by_key(&ino, |r| r.ino).ok() };
        // Records appended after the index was built lie past its last chunk.
        let c = (ino >> self.shift) as usize;
        let lo = self.index.get(c).map_or(tail, |&i| i) as usize;
        let hi = self.index.get(c + 1).map_or(self.recs.len(), |&i| i as usize);
        self.recs[lo..hi].binary_search_by_key(&ino, |r| r.ino).ok().map(|i| lo + i)
    }

    /// The record of `ino`, if any.
    pub(crate) fn get(&self, ino: u32) -> Option<&InodeRec> {
        self.position(ino).map(|i| &self.recs[i])
    }

    /// The record of `ino`, if any, to change.
    pub(crate) fn get_mut(&mut self, ino: u32) -> Option<&mut InodeRec> {
        self.position(ino).map(move |i| &mut self.recs[i])
    }

    /// Whether `ino` has flag `f`.
    pub(crate) fn has(&self, ino: u32, f: u8) -> bool {
        self.get(ino).is_some_and(|r| r.flags & f != 0)
    }

    /// Sets flag `f` on `ino`.
    pub(crate) fn set(&mut self, ino: u32, f: u8) {
        self.entry(ino).flags |= f;
    }

    /// Clears flag `f` of `ino`.
    pub(crate) fn clear(&mut self, ino: u32, f: u8) {
        if let Some(r) = self.get_mut(ino) {
            r.flags &= !f;
        }
    }

    /// Counts one more directory entry naming `ino` (only inodes with a record);
    /// returns the new count.
    pub(crate) fn add_link(&mut self, ino: u32) -> u16 {
        match self.get_mut(ino) {
            Some(r) => {
                r.counted = r.counted.saturating_add(1);
                r.counted
            }
            None => 0,
        }
    }

    /// Every record, in inode order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &InodeRec> {
        self.recs.iter()
    }

    /// The records of inodes `first..=last`.
    pub(crate) fn range(&self, first: u32, last: u32) -> &[InodeRec] {
        let a = self.recs.partition_point(|r| r.ino < first);
        let b = self.recs.partition_point(|r| r.ino <= last);
        &self.recs[a..b]
    }
}

/// What pass 2 finds about one directory (e2fsck's `dir_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DirRec {
    /// The directory.
    pub ino: u32,
    /// What its `..` names (0 until pass 2 reads it).
    pub dotdot: u32,
    /// The directory whose entry names it (0 until found).
    pub parent: u32,
}

/// Every directory pass 1 found, sorted by number.
#[derive(Debug, Default)]
pub(crate) struct DirTable {
    recs: Vec<DirRec>,
}

impl DirTable {
    /// Adds directory `ino` (or resets it) with `parent`.
    pub(crate) fn add(&mut self, ino: u32, parent: u32) {
        let rec = DirRec { ino, dotdot: parent, parent };
        match self.recs.last() {
            Some(last) if last.ino < ino => self.recs.push(rec),
            None => self.recs.push(rec),
            _ => match self.recs.binary_search_by_key(&ino, |r| r.ino) {
                Ok(i) => self.recs[i] = rec,
                Err(i) => self.recs.insert(i, rec),
            },
        }
    }

    /// The record of `ino`.
    pub(crate) fn get(&self, ino: u32) -> Option<&DirRec> {
        self.recs.binary_search_by_key(&ino, |r| r.ino).ok().map(|i| &self.recs[i])
    }

    /// The record of `ino`, to change.
    pub(crate) fn get_mut(&mut self, ino: u32) -> Option<&mut DirRec> {
        self.recs.binary_search_by_key(&ino, |r| r.ino).ok().map(move |i| &mut self.recs[i])
    }

    /// Every directory, in inode order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &DirRec> {
        self.recs.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_stay_sorted() {
        let mut t = InodeTable::default();
        for ino in [5, 9, 2, 7, 9, 1] {
            t.set(ino, flag::USED);
        }
        let inos: Vec<u32> = t.iter().map(|r| r.ino).collect();
        assert_eq!(inos, [1, 2, 5, 7, 9]);
        assert_eq!(t.add_link(7), 1);
        assert_eq!(t.add_link(8), 0);
        assert_eq!(t.range(2, 7).len(), 3);
        assert!(t.has(9, flag::USED) && !t.has(9, flag::DIR));
    }

    /// Lookups find exactly the records inserted, with the index built,
    /// after appending past it, and after an insertion drops it.
    #[test]
    fn lookups_agree_with_a_plain_search() {
        let mut rng = ext4_testkit::rng::Rng::new(0x1dea);
        for spread in [1u32, 3, 64, 1000, 1 << 20] {
            let mut t = InodeTable::default();
            let mut inos: Vec<u32> = (0..500).map(|_| 1 + rng.below(u64::from(500 * spread)) as u32).collect();
            inos.sort_unstable();
            inos.dedup();
            for &i in &inos {
                t.entry(i).links = i as u16;
            }
            let probe = |t: &InodeTable, inos: &[u32]| {
                let near = inos.iter().flat_map(|&i| [i - 1, i, i + 1]);
                for i in near.chain(0..200).chain([u32::MAX]) {
                    assert_eq!(t.get(i).map(|r| r.ino), inos.binary_search(&i).ok().map(|_| i), "ino {i} spread {spread}");
                }
            };
            t.reindex();
            probe(&t, &inos);
            let top = inos.last().unwrap() + 65;
            t.entry(top);
            inos.push(top);
            probe(&t, &inos);
            let mid = (1..top).find(|i| inos.binary_search(i).is_err()).unwrap();
            t.entry(mid);
            inos.insert(inos.binary_search(&mid).unwrap_err(), mid);
            probe(&t, &inos);
        }
    }
}

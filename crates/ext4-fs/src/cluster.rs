//! Bigalloc clusters of files: which physical block a new logical block
//! gets, and which clusters a removal may free.
//!
//! With bigalloc a file's logical cluster (blocks `[k·r, (k+1)·r)`, `r`
//! blocks per cluster) lives in one physical cluster, each block at the
//! same offset in both (e2fsck's `has_unaligned_cluster_map`). A new block
//! in a logical cluster the file already maps goes into that cluster
//! (the kernel's `get_implied_cluster_alloc`), and a new run stops short of
//! a later cluster the file maps (`ext4_ext_check_overlap`). A cluster
//! partly unmapped stays allocated while any block of the file remains in
//! it (the partial clusters of `ext4_ext_rm_leaf`). `i_blocks` counts whole
//! clusters. Without bigalloc (`r` = 1) all of this reduces to plain
//! block allocation.

use ext4_extent::Lookup;

use crate::error::Result;
use crate::fs::Filesystem;
use crate::inode::InodeBuf;
use crate::txn::Txn;

impl Filesystem {
    /// The first block of the physical cluster that holds the file's blocks
    /// of the logical cluster starting at `cluster`, if it maps any.
    fn mapped_cluster(&self, ib: &InodeBuf, cluster: u64) -> Result<Option<u64>> {
        let Ok(start) = u32::try_from(cluster) else { return Ok(None) };
        let at = match self.lookup_block(ib, start)? {
            Lookup::Mapped(run) => return Ok(Some(self.geo.cluster_start(run.physical))),
            Lookup::Hole { next: Some(next) } if u64::from(next) < cluster + self.cluster_ratio() => next,
            Lookup::Hole { .. } => return Ok(None),
        };
        Ok(match self.lookup_block(ib, at)? {
            Lookup::Mapped(run) => Some(self.geo.cluster_start(run.physical)),
            Lookup::Hole { .. } => None,
        })
    }
}

impl Txn<'_> {
    /// Blocks for the unmapped logical blocks `[logical, logical + want)`
    /// of `ib` (the caller maps them): returns the physical block of
    /// `logical` and how many blocks from there it may map (1 to `want`).
    /// New clusters are counted in `i_blocks`; blocks of a cluster the file
    /// already holds cost nothing.
    pub(crate) fn alloc_file_blocks(&mut self, ib: &mut InodeBuf, logical: u32, want: u32) -> Result<(u64, u32)> {
        let want = want.max(1);
        let goal = self.block_goal(ib, logical)?;
        let ratio = self.cluster_ratio();
        if ratio == 1 {
            let (physical, got) = self.alloc_blocks(goal, want)?;
            self.add_blocks(ib, i64::from(got))?;
            return Ok((physical, got));
        }
        let off = u64::from(logical) % ratio;
        let first_cluster = u64::from(logical) - off;
        if let Some(pc) = self.mapped_cluster(ib, first_cluster)? {
            return Ok((pc + off, want.min((ratio - off) as u32)));
        }
        // Stop before a later cluster the file already maps.
        let last = u64::from(logical) + u64::from(want) - 1;
        let last_cluster = last - last % ratio;
        let want = if last_cluster > first_cluster && self.mapped_cluster(ib, last_cluster)?.is_some() {
            (last_cluster - u64::from(logical)) as u32
        } else {
            want
        };
        let (first, got) = self.alloc_blocks(goal.saturating_sub(off), (off + u64::from(want)) as u32)?;
        self.add_blocks(ib, (u64::from(got).div_ceil(ratio) * ratio) as i64)?;
        Ok((first + off, want.min((u64::from(got) - off) as u32)))
    }

    /// Frees the clusters of the data runs `freed` that logical blocks
    /// `[start, end)` of `ib` (already unmapped) held, except a cluster
    /// still holding one of the file's blocks outside the range (only the
    /// clusters at the range's two edges can); returns the blocks freed.
    pub(crate) fn free_file_clusters(&mut self, ib: &InodeBuf, freed: &[(u64, u64)], start: u32, end: u64) -> Result<u64> {
        let ratio = self.cluster_ratio();
        let mut kept = Vec::new();
        for edge in [u64::from(start), end] {
            if edge % ratio != 0 && edge < 1 << 32 {
                kept.extend(self.mapped_cluster(ib, edge - edge % ratio)?);
            }
        }
        let mut runs: Vec<(u64, u64)> = freed
            .iter()
            .filter(|&&(_, n)| n > 0)
            .map(|&(s, n)| (self.geo.cluster_start(s), self.geo.cluster_start(s + n - 1) + ratio))
            .collect();
        runs.sort_unstable();
        let mut total = 0;
        let mut done = 0u64;
        for (s, e) in runs {
            // Runs of one file never share a cluster but at their edges.
            let mut from = s.max(done);
            while from < e {
                let to = kept.iter().copied().filter(|&k| k >= from && k < e).min().unwrap_or(e);
                let n = to.min(self.geo.blocks_count).saturating_sub(from);
                if n > 0 {
                    self.free_blocks(from, n, false)?;
                    total += to - from;
                }
                from = to + if to < e { ratio } else { 0 };
            }
            done = done.max(e);
        }
        Ok(total)
    }
}

//! Choosing the group of a new inode, as the kernel's `ext4_new_inode`
//! does: files near their parent, directories spread (Orlov), both at the
//! granularity of flex groups when `flex_bg` packs metadata.

/// The counts of one group that the policy looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupCounts {
    /// Free blocks (clusters).
    pub free_blocks: u32,
    /// Free inodes.
    pub free_inodes: u32,
    /// Directories.
    pub used_dirs: u32,
}

/// Sums the counts of flex groups of `flex` groups each.
fn flex_counts(groups: &[GroupCounts], flex: usize) -> Vec<GroupCounts> {
    groups
        .chunks(flex.max(1))
        .map(|c| {
            c.iter().fold(GroupCounts::default(), |a, g| GroupCounts {
                free_blocks: a.free_blocks.saturating_add(g.free_blocks),
                free_inodes: a.free_inodes.saturating_add(g.free_inodes),
                used_dirs: a.used_dirs.saturating_add(g.used_dirs),
            })
        })
        .collect()
}

/// The first group of flex group `f` that has a free inode.
fn group_in_flex(groups: &[GroupCounts], flex: usize, f: usize) -> Option<u32> {
    let start = f * flex;
    (start..(start + flex).min(groups.len())).find(|&g| groups[g].free_inodes > 0).map(|g| g as u32)
}

/// The group for a new non-directory inode whose parent directory is in
/// `parent_group` (`find_group_other`): the parent's (flex) group if it has
/// free inodes and blocks, else a quadratic probe, else any group with a
/// free inode.
pub fn group_for_file(groups: &[GroupCounts], parent_group: u32, flex: u32) -> Option<u32> {
    let flex = flex.max(1) as usize;
    let fg = flex_counts(groups, flex);
    let n = fg.len();
    let parent = (parent_group as usize / flex).min(n.checked_sub(1)?);
    let ok = |c: &GroupCounts| c.free_inodes > 0 && c.free_blocks > 0;
    if ok(&fg[parent]) {
        return group_in_flex(groups, flex, parent);
    }
    let mut f = parent;
    let mut step = 1;
    while step < n {
        f = (f + step) % n;
        if ok(&fg[f]) {
            return group_in_flex(groups, flex, f);
        }
        step <<= 1;
    }
    (0..n).map(|i| (parent + i) % n).find(|&f| fg[f].free_inodes > 0).and_then(|f| group_in_flex(groups, flex, f))
}

/// The group for a new directory (`find_group_orlov`). Top-level
/// directories (children of the root, or of a `TOPDIR` directory) go to the
/// (flex) group with the fewest directories among those with at least
/// average free inodes and blocks, searching from `seed`; other directories
/// stay near their parent unless its group is crowded.
pub fn group_for_dir(groups: &[GroupCounts], parent_group: u32, top_level: bool, flex: u32, seed: u32) -> Option<u32> {
    let flex = flex.max(1) as usize;
    let fg = flex_counts(groups, flex);
    let n = fg.len();
    if n == 0 {
        return None;
    }
    let total = fg
        .iter()
        .fold((0u64, 0u64, 0u64), |a, c| (a.0 + u64::from(c.free_inodes), a.1 + u64::from(c.free_blocks), a.2 + u64::from(c.used_dirs)));
    let avg_inodes = total.0 / n as u64;
    let avg_blocks = total.1 / n as u64;
    if top_level {
        let start = seed as usize % n;
        let best = (0..n)
            .map(|i| (start + i) % n)
            .filter(|&f| u64::from(fg[f].free_inodes) >= avg_inodes && u64::from(fg[f].free_blocks) >= avg_blocks)
            .min_by_key(|&f| fg[f].used_dirs);
        if let Some(f) = best {
            return group_in_flex(groups, flex, f);
        }
    } else {
        // Near the parent: a group that is not crowded with directories.
        let max_dirs = total.2 / n as u64 + 1 + (total.2 / n as u64) / 4;
        let min_inodes = avg_inodes / 2;
        let min_blocks = avg_blocks / 2;
        let parent = (parent_group as usize / flex).min(n - 1);
        for i in 0..n {
            let f = (parent + i) % n;
            let c = &fg[f];
            if u64::from(c.used_dirs) < max_dirs && u64::from(c.free_inodes) >= min_inodes.max(1) && u64::from(c.free_blocks) >= min_blocks
            {
                return group_in_flex(groups, flex, f);
            }
        }
    }
    // Fallbacks: average free inodes, then any free inode.
    let start = parent_group as usize / flex % n;
    (0..n)
        .map(|i| (start + i) % n)
        .find(|&f| fg[f].free_inodes > 0 && u64::from(fg[f].free_inodes) >= avg_inodes)
        .or_else(|| (0..n).map(|i| (start + i) % n).find(|&f| fg[f].free_inodes > 0))
        .and_then(|f| group_in_flex(groups, flex, f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(free_blocks: u32, free_inodes: u32, used_dirs: u32) -> GroupCounts {
        GroupCounts { free_blocks, free_inodes, used_dirs }
    }

    #[test]
    fn files_stay_near_parent() {
        let groups = vec![g(10, 10, 1); 8];
        assert_eq!(group_for_file(&groups, 5, 1), Some(5));
        let mut full = groups.clone();
        full[5].free_inodes = 0;
        let chosen = group_for_file(&full, 5, 1).unwrap();
        assert_ne!(chosen, 5);
        assert!(full[chosen as usize].free_inodes > 0);
        assert_eq!(group_for_file(&[g(1, 0, 0); 4], 0, 1), None);
    }

    #[test]
    fn flex_groups_are_used_as_units() {
        let mut groups = vec![g(10, 10, 1); 16];
        groups[4].free_inodes = 0;
        // Parent in group 5, flex of 4: flex group 1 = groups 4..8; group 4 full -> 5.
        assert_eq!(group_for_file(&groups, 5, 4), Some(5));
        assert_eq!(group_for_file(&groups, 4, 4), Some(5));
    }

    #[test]
    fn top_level_dirs_spread() {
        let mut groups = vec![g(100, 100, 5); 8];
        groups[3].used_dirs = 0;
        assert_eq!(group_for_dir(&groups, 0, true, 1, 0), Some(3));
        assert_eq!(group_for_dir(&groups, 6, false, 1, 0), Some(6));
    }
}

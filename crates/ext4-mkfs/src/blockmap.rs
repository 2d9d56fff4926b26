//! The block bitmap of the filesystem being built, kept as a set of used
//! extents so that a 16 TiB filesystem (2^32 blocks) costs kilobytes, with
//! the searches libext2fs' allocator makes (first zero, first set, free run).
//!
//! Invariant: extents are disjoint, non-adjacent (merged) and non-empty.

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Included};

/// Used blocks as `start -> end` (end exclusive).
#[derive(Debug, Clone, Default)]
pub struct BlockMap {
    used: BTreeMap<u64, u64>,
}

impl BlockMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The used extent containing `b`, if any.
    fn extent_at(&self, b: u64) -> Option<(u64, u64)> {
        let (&s, &e) = self.used.range(..=b).next_back()?;
        (b < e).then_some((s, e))
    }

    /// Whether block `b` is used.
    pub fn is_used(&self, b: u64) -> bool {
        self.extent_at(b).is_some()
    }

    /// Marks `[start, start + len)` used, merging with neighbours.
    pub fn mark(&mut self, start: u64, len: u64) {
        if len == 0 {
            return;
        }
        let mut s = start;
        let mut e = start + len;
        // Absorb an extent that starts before and reaches `s`.
        if let Some((&ps, &pe)) = self.used.range(..=s).next_back()
            && pe >= s
        {
            s = ps;
            e = e.max(pe);
        }
        // Absorb every extent starting within (s, e] (rarely more than one:
        // no collecting, mkfs marks hundreds of thousands of runs).
        while let Some((&k, &ke)) = self.used.range((Excluded(s), Included(e))).next() {
            self.used.remove(&k);
            e = e.max(ke);
        }
        // Replaces the value in place when an extent already starts at `s`.
        self.used.insert(s, e);
    }

    /// The first free block in `[from, to]`.
    pub fn first_zero(&self, from: u64, to: u64) -> Option<u64> {
        if from > to {
            return None;
        }
        let b = match self.extent_at(from) {
            Some((_, e)) => e,
            None => from,
        };
        (b <= to).then_some(b)
    }

    /// The first used block in `[from, to]`.
    pub fn first_set(&self, from: u64, to: u64) -> Option<u64> {
        if from > to {
            return None;
        }
        if self.is_used(from) {
            return Some(from);
        }
        let (&s, _) = self.used.range(from..).next()?;
        (s <= to).then_some(s)
    }

    /// The end of the last used extent overlapping `[b, b + num)`, or `None`
    /// if the whole range is free.
    fn last_overlap_end(&self, b: u64, num: u64) -> Option<u64> {
        let end = b + num;
        let (_, &e) = self.used.range(..end).next_back()?;
        (e > b).then_some(e)
    }

    /// The first `b` in `[lo, hi)` such that `[b, b + num)` is all free.
    pub fn first_free_run(&self, lo: u64, hi: u64, num: u64) -> Option<u64> {
        let mut b = lo;
        while b < hi {
            match self.last_overlap_end(b, num) {
                None => return Some(b),
                Some(e) => b = e,
            }
        }
        None
    }

    /// Number of used blocks in `[start, end)`.
    pub fn count_used(&self, start: u64, end: u64) -> u64 {
        if start >= end {
            return 0;
        }
        let mut n = 0;
        let first = self.used.range(..=start).next_back().map(|(&s, _)| s).unwrap_or(start);
        for (&s, &e) in self.used.range(first..end) {
            let (a, z) = (s.max(start), e.min(end));
            if a < z {
                n += z - a;
            }
        }
        n
    }

    /// The used extents overlapping `[start, end)`, clipped to it.
    pub fn extents_in(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        let first = self.used.range(..=start).next_back().map(|(&s, _)| s).unwrap_or(start);
        self.used.range(first..end.max(first)).map(move |(&s, &e)| (s.max(start), e.min(end))).filter(|(a, z)| a < z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The same operations on a plain bit vector, as the model.
    fn model(ops: &[(u64, u64)], size: u64) -> Vec<bool> {
        let mut v = vec![false; size as usize];
        for &(s, l) in ops {
            for b in s..(s + l).min(size) {
                v[b as usize] = true;
            }
        }
        v
    }

    proptest! {
        #[test]
        fn matches_a_bit_vector(ops in proptest::collection::vec((0u64..200, 0u64..20), 0..30), q in 0u64..220, n in 1u64..10) {
            let mut m = BlockMap::new();
            for &(s, l) in &ops { m.mark(s, l); }
            let v = model(&ops, 240);
            let used = |b: u64| v.get(b as usize).copied().unwrap_or(false);
            prop_assert_eq!(m.is_used(q), used(q));
            prop_assert_eq!(m.first_zero(q, 230), (q..=230).find(|&b| !used(b)));
            prop_assert_eq!(m.first_set(q, 230), (q..=230).find(|&b| used(b)));
            prop_assert_eq!(m.count_used(q, 230), (q..230).filter(|&b| used(b)).count() as u64);
            prop_assert_eq!(m.first_free_run(q, 230, n), (q..230).find(|&b| (b..b + n).all(|x| !used(x))));
            let ext: u64 = m.extents_in(q, 230).map(|(a, z)| z - a).sum();
            prop_assert_eq!(ext, m.count_used(q, 230));
        }
    }
}

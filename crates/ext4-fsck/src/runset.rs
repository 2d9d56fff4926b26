//! A set of `u64` numbers kept as sorted runs, the way e2fsck keeps its
//! block maps in red-black trees: memory grows with fragmentation, not
//! with the size of the filesystem, so a 16 TiB filesystem's "blocks in
//! use" costs what its files' extents cost.

use std::collections::BTreeMap;

/// Sorted, disjoint, non-adjacent runs `[start, end)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RunSet {
    runs: BTreeMap<u64, u64>,
}

impl RunSet {
    /// An empty set.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds `[start, start + len)`; returns the parts that were already in
    /// the set (empty for a fresh range: no allocation).
    pub(crate) fn insert(&mut self, start: u64, len: u64) -> Vec<(u64, u64)> {
        let end = start.saturating_add(len);
        let mut overlaps = Vec::new();
        if start >= end {
            return overlaps;
        }
        let (mut new_start, mut new_end) = (start, end);
        let prev = self.runs.range(..=start).next_back().map(|(&a, &b)| (a, b));
        if let Some((ps, pe)) = prev.filter(|&(_, pe)| pe >= start) {
            if pe > start {
                overlaps.push((start, pe.min(end)));
            }
            new_start = ps;
            new_end = new_end.max(pe);
            self.runs.remove(&ps);
        }
        loop {
            let next = self.runs.range(start..=new_end).next().map(|(&a, &b)| (a, b));
            let Some((a, b)) = next else { break };
            if a < end {
                overlaps.push((a, b.min(end)));
            }
            new_end = new_end.max(b);
            self.runs.remove(&a);
        }
        self.runs.insert(new_start, new_end);
        overlaps
    }

    /// Adds one number; returns whether it was already there.
    pub(crate) fn mark(&mut self, n: u64) -> bool {
        if self.contains(n) {
            return true;
        }
        self.insert(n, 1);
        false
    }

    /// Whether `n` is in the set.
    pub(crate) fn contains(&self, n: u64) -> bool {
        self.runs.range(..=n).next_back().is_some_and(|(_, &e)| e > n)
    }

    /// Whether no number of `[start, start + len)` is in the set.
    pub(crate) fn is_clear(&self, start: u64, len: u64) -> bool {
        let end = start.saturating_add(len);
        if self.runs.range(..=start).next_back().is_some_and(|(_, &e)| e > start) {
            return false;
        }
        self.runs.range(start..end).next().is_none()
    }

    /// The runs overlapping `[start, end)`, clipped to it.
    pub(crate) fn runs_in(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        let head = self.runs.range(..start).next_back().filter(|(_, e)| **e > start);
        head.into_iter().chain(self.runs.range(start..end)).map(move |(&s, &e)| (s.max(start), e.min(end))).filter(|(s, e)| s < e)
    }

    /// How many numbers of `[start, end)` are in the set.
    pub(crate) fn count_in(&self, start: u64, end: u64) -> u64 {
        self.runs_in(start, end).map(|(s, e)| e - s).sum()
    }

    /// Sets bit `n - base` of `bits` for every member `n` of `[base, base + bits.len() * 8)`.
    pub(crate) fn fill_bitmap(&self, base: u64, bits: &mut [u8]) {
        let end = base + bits.len() as u64 * 8;
        for (s, e) in self.runs_in(base, end) {
            for n in s..e {
                let i = (n - base) as usize;
                bits[i / 8] |= 1 << (i % 8);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The same operations on a plain set, for comparison.
    fn model_insert(m: &mut BTreeSet<u64>, s: u64, n: u64) -> Vec<u64> {
        (s..s + n).filter(|x| !m.insert(*x)).collect()
    }

    #[test]
    fn matches_a_plain_set() {
        let mut r = RunSet::new();
        let mut m = BTreeSet::new();
        let mut x = 12345u64;
        for _ in 0..5000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let s = (x >> 33) % 500;
            let n = (x >> 20) % 9;
            {
                let got: Vec<u64> = r.insert(s, n).into_iter().flat_map(|(a, b)| a..b).collect();
                assert_eq!(got, model_insert(&mut m, s, n));
            }
            let probe = (x >> 40) % 510;
            assert_eq!(r.contains(probe), m.contains(&probe));
            assert_eq!(r.is_clear(probe, 5), (probe..probe + 5).all(|i| !m.contains(&i)));
            assert_eq!(r.count_in(100, 300), m.range(100..300).count() as u64);
        }
        // Runs never touch: adjacent insertions merge.
        let runs: Vec<(u64, u64)> = r.runs_in(0, u64::MAX).collect();
        assert!(runs.windows(2).all(|w| w[0].1 < w[1].0));
    }

    #[test]
    fn bitmap_fill() {
        let mut r = RunSet::new();
        r.insert(8, 3);
        r.insert(20, 100);
        let mut bits = [0u8; 4];
        r.fill_bitmap(8, &mut bits);
        assert_eq!(bits, [0b0000_0111, 0b1111_0000, 0xff, 0xff]);
    }
}

//! Edits of one leaf's extent list (no I/O): insert with merge, removal of
//! a logical range, conversion of unwritten extents to written.

use ext4_ondisk::extent::{Extent, INIT_MAX_LEN, UNWRITTEN_MAX_LEN};

/// What an edit did to a node's entries, for the repair of the path above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Touched {
    /// Whether the entries changed.
    pub(crate) changed: bool,
    /// Index of the last entry the edit wrote: a full node splits after it.
    pub(crate) pos: usize,
    /// A physical block near the edit, as the goal of new node blocks (0: none).
    pub(crate) near: u64,
}

impl Touched {
    /// Nothing changed.
    pub(crate) const NONE: Self = Self { changed: false, pos: 0, near: 0 };
}

/// Longest extent in the given state (`EXT_INIT_MAX_LEN`, `EXT_UNWRITTEN_MAX_LEN`).
pub(crate) fn max_len(unwritten: bool) -> u32 {
    if unwritten { UNWRITTEN_MAX_LEN } else { INIT_MAX_LEN }
}

/// Whether `b` continues `a` logically and physically in the same state,
/// and the sum fits one extent (the kernel's `ext4_can_extents_be_merged`).
pub(crate) fn can_merge(a: &Extent, b: &Extent) -> bool {
    a.unwritten == b.unwritten
        && a.logical_end() == u64::from(b.logical)
        && a.start + u64::from(a.len) == b.start
        && a.len + b.len <= max_len(a.unwritten)
}

/// Inserts `e`, which overlaps no extent of `v`, merging it into its left
/// and right neighbours where possible.
pub(crate) fn insert(v: &mut Vec<Extent>, e: Extent) -> Touched {
    let p = v.partition_point(|x| x.logical < e.logical);
    let near = e.start;
    if p > 0 && can_merge(&v[p - 1], &e) {
        v[p - 1].len += e.len;
        if p < v.len() && can_merge(&v[p - 1], &v[p]) {
            v[p - 1].len += v[p].len;
            v.remove(p);
        }
        return Touched { changed: true, pos: p - 1, near };
    }
    if p < v.len() && can_merge(&e, &v[p]) {
        v[p] = Extent { len: e.len + v[p].len, ..e };
        return Touched { changed: true, pos: p, near };
    }
    v.insert(p, e);
    Touched { changed: true, pos: p, near }
}

/// The part of `e` inside `[start, end)`, as offsets from its first block, if any.
fn overlap(e: &Extent, start: u64, end: u64) -> Option<(u32, u32)> {
    let (s, t) = (u64::from(e.logical), e.logical_end());
    if t <= start || s >= end {
        return None;
    }
    Some(((start.max(s) - s) as u32, (end.min(t) - s) as u32))
}

/// The blocks `from .. to` (offsets) of `e` as an extent.
fn piece(e: &Extent, from: u32, to: u32, unwritten: bool) -> Extent {
    Extent { logical: e.logical + from, len: to - from, start: e.start + u64::from(from), unwritten }
}

/// Removes logical blocks `[start, end)` from `v`, trimming or splitting the
/// extents that straddle the bounds; pushes the freed physical ranges.
pub(crate) fn remove(v: &mut Vec<Extent>, start: u64, end: u64, freed: &mut Vec<(u64, u64)>) -> Touched {
    let mut out = Vec::with_capacity(v.len() + 1);
    let mut t = Touched::NONE;
    for e in v.drain(..) {
        let Some((a, b)) = overlap(&e, start, end) else {
            out.push(e);
            continue;
        };
        freed.push((e.start + u64::from(a), u64::from(b - a)));
        if a > 0 {
            out.push(piece(&e, 0, a, e.unwritten));
        }
        if b < e.len {
            out.push(piece(&e, b, e.len, e.unwritten));
        }
        t = Touched { changed: true, pos: out.len().saturating_sub(1), near: e.start };
    }
    *v = out;
    t
}

/// Marks logical blocks `[start, end)` of unwritten extents of `v` written,
/// splitting the extents that straddle the bounds, then merges neighbours.
pub(crate) fn convert(v: &mut Vec<Extent>, start: u64, end: u64) -> Touched {
    let mut out: Vec<Extent> = Vec::with_capacity(v.len() + 2);
    let mut last = None;
    let mut near = 0;
    for e in v.drain(..) {
        let Some((a, b)) = overlap(&e, start, end).filter(|_| e.unwritten) else {
            out.push(e);
            continue;
        };
        if a > 0 {
            out.push(piece(&e, 0, a, true));
        }
        out.push(piece(&e, a, b, false));
        last = Some(e.logical + a);
        near = e.start;
        if b < e.len {
            out.push(piece(&e, b, e.len, true));
        }
    }
    let Some(last) = last else {
        *v = out;
        return Touched::NONE;
    };
    v.clear();
    for e in out {
        match v.last_mut() {
            Some(prev) if can_merge(prev, &e) => prev.len += e.len,
            _ => v.push(e),
        }
    }
    let pos = v.partition_point(|e| e.logical <= last).saturating_sub(1);
    Touched { changed: true, pos, near }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(logical: u32, len: u32, start: u64, unwritten: bool) -> Extent {
        Extent { logical, len, start, unwritten }
    }

    fn check_insert(before: &[Extent], e: Extent, after: &[Extent]) {
        let mut v = before.to_vec();
        insert(&mut v, e);
        assert_eq!(v, after);
    }

    #[test]
    fn insert_merges_where_contiguous() {
        let a = ext(0, 10, 100, false);
        let c = ext(20, 10, 120, false);
        // Fills the gap exactly: both neighbours merge into one extent.
        check_insert(&[a, c], ext(10, 10, 110, false), &[ext(0, 30, 100, false)]);
        // Physically elsewhere: no merge.
        check_insert(&[a, c], ext(10, 10, 500, false), &[a, ext(10, 10, 500, false), c]);
        // Different state: no merge.
        check_insert(&[a], ext(10, 5, 110, true), &[a, ext(10, 5, 110, true)]);
        // Right merge only.
        check_insert(&[c], ext(15, 5, 115, false), &[ext(15, 15, 115, false)]);
        // Too long together.
        let big = ext(0, INIT_MAX_LEN, 100, false);
        check_insert(
            &[big],
            ext(INIT_MAX_LEN, 1, 100 + u64::from(INIT_MAX_LEN), false),
            &[big, ext(INIT_MAX_LEN, 1, 100 + u64::from(INIT_MAX_LEN), false)],
        );
        let ubig = ext(0, UNWRITTEN_MAX_LEN, 100, true);
        let next = ext(UNWRITTEN_MAX_LEN, 1, 100 + u64::from(UNWRITTEN_MAX_LEN), true);
        check_insert(&[ubig], next, &[ubig, next]);
    }

    fn check_remove(before: &[Extent], start: u64, end: u64, after: &[Extent], freed: &[(u64, u64)]) {
        let mut v = before.to_vec();
        let mut f = Vec::new();
        let t = remove(&mut v, start, end, &mut f);
        assert_eq!(v, after);
        assert_eq!(f, freed);
        assert_eq!(t.changed, !freed.is_empty());
    }

    #[test]
    fn remove_trims_and_splits() {
        let a = ext(10, 10, 100, false);
        check_remove(&[a], 0, 10, &[a], &[]);
        check_remove(&[a], 0, 15, &[ext(15, 5, 105, false)], &[(100, 5)]);
        check_remove(&[a], 15, 1 << 32, &[ext(10, 5, 100, false)], &[(105, 5)]);
        check_remove(&[a], 12, 14, &[ext(10, 2, 100, false), ext(14, 6, 104, false)], &[(102, 2)]);
        check_remove(&[a, ext(30, 1, 7, true)], 0, 1 << 32, &[], &[(100, 10), (7, 1)]);
    }

    fn check_convert(before: &[Extent], start: u64, end: u64, after: &[Extent]) {
        let mut v = before.to_vec();
        convert(&mut v, start, end);
        assert_eq!(v, after);
    }

    #[test]
    fn convert_splits_and_merges() {
        let u = ext(10, 10, 100, true);
        check_convert(&[u], 12, 14, &[ext(10, 2, 100, true), ext(12, 2, 102, false), ext(14, 6, 104, true)]);
        check_convert(&[u], 0, 100, &[ext(10, 10, 100, false)]);
        // The written head joins the written extent before it.
        check_convert(&[ext(0, 10, 90, false), u], 10, 13, &[ext(0, 13, 90, false), ext(13, 7, 103, true)]);
        // Written extents are left alone.
        check_convert(&[ext(0, 10, 90, false)], 0, 10, &[ext(0, 10, 90, false)]);
    }
}

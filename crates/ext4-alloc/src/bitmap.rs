//! Searches over block and inode bitmaps (bit set = in use, least
//! significant bit first, as ext4 stores them).

use bitvec::prelude::*;

/// A bitmap block viewed as bits.
pub fn bits(bytes: &[u8]) -> &BitSlice<u8, Lsb0> {
    bytes.view_bits::<Lsb0>()
}

/// A mutable bitmap block viewed as bits.
pub fn bits_mut(bytes: &mut [u8]) -> &mut BitSlice<u8, Lsb0> {
    bytes.view_bits_mut::<Lsb0>()
}

/// The first free bit in `[from, limit)`, then in `[0, from)`.
pub fn find_free(bytes: &[u8], limit: usize, from: usize) -> Option<usize> {
    let b = &bits(bytes)[..limit];
    let from = from.min(limit);
    b[from..].first_zero().map(|i| i + from).or_else(|| b[..from].first_zero())
}

/// A run of free bits `[start, start + len)` for an allocation of `want`
/// bits near `goal`, within `[0, limit)`:
///
/// 1. the free run starting at `goal`, if it is `want` long;
/// 2. else the first run of at least `want` bits at or after `goal`
///    (wrapping to the start);
/// 3. else the longest run found, which is shorter than `want`.
///
/// `None` if every bit is in use.
pub fn find_free_run(bytes: &[u8], limit: usize, goal: usize, want: usize) -> Option<(usize, usize)> {
    let b = &bits(bytes)[..limit];
    let want = want.max(1);
    let goal = goal.min(limit.saturating_sub(1));
    let run_at = |s: usize| b[s..].first_one().unwrap_or(limit - s).min(want);
    if limit == 0 {
        return None;
    }
    let mut best: Option<(usize, usize)> = None;
    if !b[goal] {
        let len = run_at(goal);
        if len == want {
            return Some((goal, len));
        }
        best = Some((goal, len));
    }
    // Scan [goal, limit) then [0, goal).
    for (lo, hi) in [(goal, limit), (0, goal)] {
        let mut pos = lo;
        while pos < hi {
            let Some(z) = b[pos..hi].first_zero() else {
                break;
            };
            let start = pos + z;
            let end = b[start..].first_one().map_or(limit, |o| start + o);
            let len = end - start;
            if len >= want {
                return Some((start, want));
            }
            if best.is_none_or(|(_, l)| len > l) {
                best = Some((start, len));
            }
            pos = end;
        }
    }
    best
}

/// Free bits in `[0, limit)`.
pub fn count_free(bytes: &[u8], limit: usize) -> usize {
    bits(bytes)[..limit].count_zeros()
}

/// Whether every bit of `[start, start + len)` is free.
pub fn range_is_free(bytes: &[u8], start: usize, len: usize) -> bool {
    bits(bytes)[start..start + len].not_any()
}

/// Whether every bit of `[start, start + len)` is in use.
pub fn range_is_used(bytes: &[u8], start: usize, len: usize) -> bool {
    bits(bytes)[start..start + len].all()
}

/// Marks `[start, start + len)` in use.
pub fn set_range(bytes: &mut [u8], start: usize, len: usize) {
    bits_mut(bytes)[start..start + len].fill(true);
}

/// Marks `[start, start + len)` free.
pub fn clear_range(bytes: &mut [u8], start: usize, len: usize) {
    bits_mut(bytes)[start..start + len].fill(false);
}

/// Sets the padding bits from `valid` to the end of the block, as the kernel
/// does (`ext4_mark_bitmap_end`) and e2fsck checks.
pub fn mark_end(bytes: &mut [u8], valid: usize) {
    bits_mut(bytes)[valid..].fill(true);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn map(used: &[usize], len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len.div_ceil(8)];
        for &u in used {
            set_range(&mut v, u, 1);
        }
        v
    }

    #[test]
    fn runs() {
        let m = map(&[0, 1, 2, 5, 6, 7, 20], 32);
        assert_eq!(find_free_run(&m, 32, 3, 2), Some((3, 2)));
        assert_eq!(find_free_run(&m, 32, 3, 4), Some((8, 4)));
        assert_eq!(find_free_run(&m, 32, 21, 20), Some((8, 12)));
        assert_eq!(find_free_run(&m, 32, 0, 1), Some((3, 1)));
        assert_eq!(find_free(&m, 32, 21), Some(21));
        assert_eq!(find_free(&map(&(0..32).collect::<Vec<_>>(), 32), 32, 0), None);
    }

    proptest! {
        #[test]
        fn run_is_free_and_bounded(bytes in proptest::collection::vec(any::<u8>(), 1..64), goal in 0usize..512, want in 1usize..100) {
            let limit = bytes.len() * 8;
            match find_free_run(&bytes, limit, goal, want) {
                Some((s, l)) => {
                    prop_assert!(l >= 1 && l <= want && s + l <= limit);
                    prop_assert!(range_is_free(&bytes, s, l));
                    if l < want {
                        // No run of `want` exists anywhere.
                        let b = bits(&bytes);
                        prop_assert!(want > limit || (0..=limit - want).all(|i| b[i..i + want].any()));
                    }
                }
                None => prop_assert_eq!(count_free(&bytes, limit), 0),
            }
        }
    }
}

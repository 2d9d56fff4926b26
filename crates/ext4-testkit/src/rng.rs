//! A small deterministic random generator (splitmix64) and the run seeds
//! of randomized tests: taken from an environment variable when given,
//! else from the clock, and always printed so a failure can be replayed.

/// splitmix64: fast, deterministic, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// An index into a collection of `n > 0` items.
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items` (non-empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }
}

/// The seed of a randomized run: `$var` when set (decimal or `0x` hex), else
/// from the clock; printed either way with the variable that replays it.
pub fn seed_from_env(var: &str) -> u64 {
    let given = std::env::var(var).ok().and_then(|s| parse_seed(&s));
    let seed = given.unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Rng::new(t.as_nanos() as u64 ^ u64::from(std::process::id())).next_u64()
    });
    println!("seed: {var}={seed:#x}");
    seed
}

/// A seed written in decimal or as `0x` hex.
pub fn parse_seed(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Deterministic bytes: byte `i` of the stream `seed` at position `offset + i`,
/// so that pieces written at different offsets agree with one whole write.
pub fn stream_bytes(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut pos = offset;
    let end = offset + len as u64;
    while pos < end {
        let word = Rng::new(seed ^ (pos / 8).wrapping_mul(0xD6E8_FEB8_6659_FD93)).next_u64().to_le_bytes();
        let from = (pos % 8) as usize;
        let take = (8 - from).min((end - pos) as usize);
        out.extend_from_slice(&word[from..from + take]);
        pos += take as u64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_pieces_agree_with_the_whole() {
        let whole = stream_bytes(7, 3, 100);
        let mut pieces = stream_bytes(7, 3, 13);
        pieces.extend(stream_bytes(7, 16, 87));
        assert_eq!(whole, pieces);
        assert_ne!(stream_bytes(7, 0, 64), stream_bytes(8, 0, 64));
    }
}

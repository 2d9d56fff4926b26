//! Directory name hashes (`ext4fs_dirhash`): legacy, half-MD4 and TEA, each
//! with signed or unsigned treatment of name bytes.
//!
//! The hash picks the leaf block of an htree directory. Its low bit is
//! always clear: the index uses it to mark hash collisions that continue
//! in the next leaf.

use ext4_ondisk::dx::HashVersion;

/// The two halves of a name hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameHash {
    /// The major hash, which the index compares (low bit clear).
    pub major: u32,
    /// The minor hash (used for `readdir` cookies by the kernel, not by the index).
    pub minor: u32,
}

/// Initial state of the MD4 and TEA hashes when the superblock has no seed.
const DEFAULT_SEED: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// The largest major hash: the kernel reserves `0x7fffffff << 1` as its
/// end-of-directory marker, so that value is moved one step down.
const EOF_HASH: u32 = 0x7fff_ffff << 1;

/// Hashes `name` with `version` and the superblock's `seed` (all zeros
/// means "no seed"). Returns `None` for SipHash, which only casefolded
/// encrypted directories use and which needs a per-directory key.
pub fn name_hash(version: HashVersion, seed: &[u32; 4], name: &[u8]) -> Option<NameHash> {
    let (major, minor) = match version {
        HashVersion::Legacy => (legacy(name, true), 0),
        HashVersion::LegacyUnsigned => (legacy(name, false), 0),
        HashVersion::HalfMd4 => half_md4(name, seed, true),
        HashVersion::HalfMd4Unsigned => half_md4(name, seed, false),
        HashVersion::Tea => tea(name, seed, true),
        HashVersion::TeaUnsigned => tea(name, seed, false),
        HashVersion::SipHash => return None,
    };
    let mut major = major & !1;
    if major == EOF_HASH {
        major = EOF_HASH - 2;
    }
    Some(NameHash { major, minor })
}

/// A name byte as the C code sees it: sign-extended for the signed variants.
fn byte(b: u8, signed: bool) -> u32 {
    if signed { i32::from(b as i8) as u32 } else { u32::from(b) }
}

/// The original ext3 hash (`dx_hack_hash`).
fn legacy(name: &[u8], signed: bool) -> u32 {
    let (mut h0, mut h1) = (0x12a3_fe2du32, 0x37ab_e8f9u32);
    for &b in name {
        let mut h = h1.wrapping_add(h0 ^ byte(b, signed).wrapping_mul(7_152_373));
        if h & 0x8000_0000 != 0 {
            h = h.wrapping_sub(0x7fff_ffff);
        }
        h1 = h0;
        h0 = h;
    }
    h0 << 1
}

fn initial_state(seed: &[u32; 4]) -> [u32; 4] {
    if seed.iter().any(|&w| w != 0) { *seed } else { DEFAULT_SEED }
}

/// Packs up to `out.len() * 4` bytes of `name` into words, big-endian within
/// each word, padding with a pattern derived from the whole name's length
/// (`str2hashbuf`).
fn pack(name: &[u8], total_len: usize, out: &mut [u32], signed: bool) {
    let len = total_len as u32;
    let mut pad = len | (len << 8);
    pad |= pad << 16;
    let take = name.len().min(out.len() * 4);
    let mut val = pad;
    let mut words = out.iter_mut();
    for (i, &b) in name[..take].iter().enumerate() {
        val = byte(b, signed).wrapping_add(val << 8);
        if i % 4 == 3 {
            if let Some(w) = words.next() {
                *w = val;
            }
            val = pad;
        }
    }
    if take % 4 != 0 {
        if let Some(w) = words.next() {
            *w = val;
        }
    }
    for w in words {
        *w = pad;
    }
}

fn half_md4(name: &[u8], seed: &[u32; 4], signed: bool) -> (u32, u32) {
    let mut state = initial_state(seed);
    let mut input = [0u32; 8];
    let mut rest = name;
    while !rest.is_empty() {
        pack(rest, rest.len(), &mut input, signed);
        half_md4_transform(&mut state, &input);
        rest = &rest[rest.len().min(32)..];
    }
    (state[1], state[2])
}

/// The MD4 compression function cut to three rounds of eight steps, as the
/// ext3 designers did.
fn half_md4_transform(state: &mut [u32; 4], x: &[u32; 8]) {
    const K2: u32 = 0x5a82_7999;
    const K3: u32 = 0x6ed9_eba1;
    let f = |x: u32, y: u32, z: u32| z ^ (x & (y ^ z));
    let g = |x: u32, y: u32, z: u32| (x & y).wrapping_add((x ^ y) & z);
    let h = |x: u32, y: u32, z: u32| x ^ y ^ z;
    let [mut a, mut b, mut c, mut d] = *state;
    let step = |fun: &dyn Fn(u32, u32, u32) -> u32, a: u32, b: u32, c: u32, d: u32, k: u32, s: u32| {
        a.wrapping_add(fun(b, c, d)).wrapping_add(k).rotate_left(s)
    };
    // Round 1: words in order, shifts 3 7 11 19.
    for i in [0, 4] {
        a = step(&f, a, b, c, d, x[i], 3);
        d = step(&f, d, a, b, c, x[i + 1], 7);
        c = step(&f, c, d, a, b, x[i + 2], 11);
        b = step(&f, b, c, d, a, x[i + 3], 19);
    }
    // Round 2: odd words then even words, shifts 3 5 9 13.
    for w in [[1, 3, 5, 7], [0, 2, 4, 6]] {
        a = step(&g, a, b, c, d, x[w[0]].wrapping_add(K2), 3);
        d = step(&g, d, a, b, c, x[w[1]].wrapping_add(K2), 5);
        c = step(&g, c, d, a, b, x[w[2]].wrapping_add(K2), 9);
        b = step(&g, b, c, d, a, x[w[3]].wrapping_add(K2), 13);
    }
    // Round 3: shifts 3 9 11 15.
    for w in [[3, 7, 2, 6], [1, 5, 0, 4]] {
        a = step(&h, a, b, c, d, x[w[0]].wrapping_add(K3), 3);
        d = step(&h, d, a, b, c, x[w[1]].wrapping_add(K3), 9);
        c = step(&h, c, d, a, b, x[w[2]].wrapping_add(K3), 11);
        b = step(&h, b, c, d, a, x[w[3]].wrapping_add(K3), 15);
    }
    state[0] = state[0].wrapping_add(a);
    state[1] = state[1].wrapping_add(b);
    state[2] = state[2].wrapping_add(c);
    state[3] = state[3].wrapping_add(d);
}

fn tea(name: &[u8], seed: &[u32; 4], signed: bool) -> (u32, u32) {
    let mut state = initial_state(seed);
    let mut input = [0u32; 4];
    let mut rest = name;
    while !rest.is_empty() {
        pack(rest, rest.len(), &mut input, signed);
        tea_transform(&mut state, &input);
        rest = &rest[rest.len().min(16)..];
    }
    (state[0], state[1])
}

/// Sixteen rounds of the Tiny Encryption Algorithm over the first two state words.
fn tea_transform(state: &mut [u32; 4], k: &[u32; 4]) {
    const DELTA: u32 = 0x9e37_79b9;
    let (mut b0, mut b1) = (state[0], state[1]);
    let mut sum = 0u32;
    for _ in 0..16 {
        sum = sum.wrapping_add(DELTA);
        b0 = b0.wrapping_add(((b1 << 4).wrapping_add(k[0])) ^ b1.wrapping_add(sum) ^ ((b1 >> 5).wrapping_add(k[1])));
        b1 = b1.wrapping_add(((b0 << 4).wrapping_add(k[2])) ^ b0.wrapping_add(sum) ^ ((b0 >> 5).wrapping_add(k[3])));
    }
    state[0] = state[0].wrapping_add(b0);
    state[1] = state[1].wrapping_add(b1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_bit_is_clear_and_eof_is_avoided() {
        for v in [HashVersion::Legacy, HashVersion::HalfMd4, HashVersion::Tea, HashVersion::TeaUnsigned] {
            for n in 0..200u32 {
                let name = format!("file-{n}");
                let h = name_hash(v, &[0; 4], name.as_bytes()).unwrap();
                assert_eq!(h.major & 1, 0);
                assert_ne!(h.major, EOF_HASH);
            }
        }
        assert!(name_hash(HashVersion::SipHash, &[0; 4], b"x").is_none());
    }

    #[test]
    fn signedness_matters_only_for_high_bytes() {
        let s = [1, 2, 3, 4];
        for (a, b) in [(HashVersion::HalfMd4, HashVersion::HalfMd4Unsigned), (HashVersion::Tea, HashVersion::TeaUnsigned)] {
            assert_eq!(name_hash(a, &s, b"plain"), name_hash(b, &s, b"plain"));
            assert_ne!(name_hash(a, &s, "é".as_bytes()), name_hash(b, &s, "é".as_bytes()));
        }
    }
}

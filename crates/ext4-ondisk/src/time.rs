//! Inode timestamps: 32 signed bits of seconds plus an `_extra` word holding
//! two epoch bits (extending the range to 2446) and 30 bits of nanoseconds.

/// A point in time as ext4 stores it: seconds since the Unix epoch and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Seconds since 1970-01-01 UTC (may be negative).
    pub secs: i64,
    /// Nanoseconds, below 1e9.
    pub nsec: u32,
}

impl Timestamp {
    /// A timestamp with whole seconds.
    pub const fn from_secs(secs: i64) -> Self {
        Self { secs, nsec: 0 }
    }

    /// Decodes the base word and, if present, the `_extra` word (`ext4_decode_extra_time`).
    pub fn decode(base: u32, extra: Option<u32>) -> Self {
        let mut secs = i64::from(base as i32);
        let mut nsec = 0;
        if let Some(extra) = extra {
            secs += i64::from(extra & 3) << 32;
            nsec = (extra >> 2).min(999_999_999);
        }
        Self { secs, nsec }
    }

    /// Encodes into the base word and the `_extra` word (`ext4_encode_extra_time`).
    /// Times outside the representable range (1901 to 2446) are clamped.
    pub fn encode(self) -> (u32, u32) {
        let min = i64::from(i32::MIN);
        let max = i64::from(i32::MAX) + (3i64 << 32);
        let secs = self.secs.clamp(min, max);
        let epoch = ((secs - i64::from(secs as i32)) >> 32) & 3;
        (secs as i32 as u32, (epoch as u32) | (self.nsec.min(999_999_999) << 2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        // 2038-01-19 03:14:08 needs the first epoch bit.
        let t = Timestamp { secs: 1 << 31, nsec: 5 };
        let (base, extra) = t.encode();
        assert_eq!(base, 0x8000_0000);
        assert_eq!(extra, 1 | (5 << 2));
        assert_eq!(Timestamp::decode(base, Some(extra)), t);
        // Before 1970 without extra bits.
        assert_eq!(Timestamp::decode(0xFFFF_FFFF, None).secs, -1);
    }

    proptest! {
        #[test]
        fn round_trip(secs in i64::from(i32::MIN)..(i64::from(i32::MAX) + (3i64 << 32)), nsec in 0u32..1_000_000_000) {
            let t = Timestamp { secs, nsec };
            let (b, e) = t.encode();
            prop_assert_eq!(Timestamp::decode(b, Some(e)), t);
        }
    }
}

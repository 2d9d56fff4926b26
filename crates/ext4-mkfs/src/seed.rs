//! Where randomness and time come from: random UUIDs (from `/dev/urandom`,
//! else from std's per-process hash keys), the current time, and the
//! environment variables that make mke2fs reproducible.

use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

/// The current time in seconds, truncated to 32 bits as mke2fs stores it.
pub fn now() -> u32 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as u32).unwrap_or(0)
}

/// The fixed time the environment asks for, as e2fsprogs reads it:
/// `SOURCE_DATE_EPOCH` (honoured by e2fsprogs 1.47.1 and later) or
/// `E2FSPROGS_FAKE_TIME` (honoured by 1.47.0). `None` when neither is set
/// to a number.
pub fn time_from_env() -> Option<u32> {
    ["SOURCE_DATE_EPOCH", "E2FSPROGS_FAKE_TIME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().and_then(|s| crate::parse::parse_c_uint(&s)).map(|t| t as u32))
}

fn fill_random(buf: &mut [u8; 16]) {
    use std::io::Read;
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        if f.read_exact(buf).is_ok() {
            return;
        }
    }
    // No /dev/urandom: std's RandomState keys are seeded per process from
    // the OS; mix in the time so that two calls differ.
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i as u64);
        h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
        chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]); // tidy: allow (random bytes, no layout)
    }
}

/// A random (version 4) UUID, as `uuid_generate` makes.
pub fn random_uuid() -> [u8; 16] {
    let mut u = [0u8; 16];
    fill_random(&mut u);
    u[6] = (u[6] & 0x0F) | 0x40;
    u[8] = (u[8] & 0x3F) | 0x80;
    u
}

/// The host name for the MMP block (`gethostname`), empty if unknown.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_differ() {
        let a = random_uuid();
        let b = random_uuid();
        assert_ne!(a, b);
        assert_eq!(a[6] >> 4, 4);
        assert_eq!(a[8] >> 6, 2);
    }
}

//! The clock for timestamps, and the fixed time of reproducible builds.

use ext4_ondisk::Timestamp;

/// The current wall-clock time.
pub fn now() -> Timestamp {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => Timestamp { secs: d.as_secs() as i64, nsec: d.subsec_nanos() },
        Err(e) => Timestamp { secs: -(e.duration().as_secs() as i64), nsec: 0 },
    }
}

/// A fixed time from `SOURCE_DATE_EPOCH` or `E2FSPROGS_FAKE_TIME`, if set.
pub(crate) fn fixed_time_from_env() -> Option<Timestamp> {
    ["SOURCE_DATE_EPOCH", "E2FSPROGS_FAKE_TIME"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse::<i64>().ok())
        .map(Timestamp::from_secs)
}

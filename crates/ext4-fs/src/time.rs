//! The clock for timestamps, and the fixed time of reproducible builds.

use ext4_ondisk::Timestamp;

/// How far the kernel's coarse clock (the one `time()` and the kernel's own
/// timestamps read) may lag the precise one: a scheduler tick at HZ=100.
const COARSE_CLOCK_LAG: std::time::Duration = std::time::Duration::from_millis(10);

/// The current wall-clock time, as the coarse clock shows it at the latest:
/// one tick is taken off the precise clock so that a tool reading `time()`
/// right after (e2fsck checking `s_wtime`) never sees a time in the future.
pub fn now() -> Timestamp {
    let t = std::time::SystemTime::now() - COARSE_CLOCK_LAG;
    match t.duration_since(std::time::UNIX_EPOCH) {
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

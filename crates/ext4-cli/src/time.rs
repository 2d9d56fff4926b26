//! Times on the command line: `touch -d` and `--mtime` read `@SECS`,
//! `SECS[.FRACTION]` and ISO 8601 / RFC 3339 dates.

use ext4_fs::Timestamp;

use crate::util::{CliResult, fail};

/// Parses `@SECS[.FRACTION]`, `SECS[.FRACTION]` (negative ones too: `@-1.5`
/// is 1.5 s before the epoch) or an ISO 8601 date and time,
/// `YYYY-MM-DD[(T| )hh:mm[:ss[.fraction]]][Z|(+|-)hh[:]mm]`, UTC unless it
/// names a zone.
pub fn parse(s: &str) -> CliResult<Timestamp> {
    let t = s.trim();
    if t.len() >= 10 && t.as_bytes()[4] == b'-' && t.as_bytes()[7] == b'-' {
        return iso8601(t).ok_or_else(|| fail(format!("invalid time {s:?} (YYYY-MM-DD[Thh:mm[:ss[.frac]]][Z|+hh:mm])")));
    }
    seconds(t).ok_or_else(|| fail(format!("invalid time {s:?} (@SECONDS since the epoch, or an ISO 8601 date)")))
}

/// `@SECS[.FRACTION]` or `SECS[.FRACTION]`.
fn seconds(s: &str) -> Option<Timestamp> {
    let t = s.strip_prefix('@').unwrap_or(s);
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && frac.is_empty() || !whole.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let nsec = nanos(frac)?;
    Some(match (negative, nsec) {
        (false, _) => Timestamp { secs: whole, nsec },
        (true, 0) => Timestamp { secs: -whole, nsec: 0 },
        (true, n) => Timestamp { secs: -whole - 1, nsec: 1_000_000_000 - n },
    })
}

/// Fraction digits as nanoseconds, the digits past the ninth dropped (as GNU touch does).
fn nanos(frac: &str) -> Option<u32> {
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    frac.chars().chain(std::iter::repeat('0')).take(9).collect::<String>().parse().ok()
}

/// `YYYY-MM-DD[(T| )hh:mm[:ss[.fraction]]][Z|(+|-)hh[:]mm]`.
fn iso8601(s: &str) -> Option<Timestamp> {
    let num = |x: &str| -> Option<i64> { x.bytes().all(|c| c.is_ascii_digit()).then(|| x.parse().ok()).flatten() };
    let (y, m, d) = (num(&s[..4])?, num(&s[5..7])?, num(s.get(8..10)?)?);
    if !(1..=12).contains(&m) || !(1..=days_in_month(y, m)).contains(&d) {
        return None;
    }
    let mut rest = &s[10..];
    let (mut secs_of_day, mut nsec) = (0, 0);
    if let Some(t) = rest.strip_prefix('T').or_else(|| rest.strip_prefix('t')).or_else(|| rest.strip_prefix(' ')) {
        let end = t.find(['Z', 'z', '+', '-']).unwrap_or(t.len());
        let (clock, zone) = t.split_at(end);
        let (hms, frac) = clock.split_once(['.', ',']).unwrap_or((clock, ""));
        let parts: Vec<&str> = hms.split(':').collect();
        let (h, mi, se) = match parts[..] {
            [h, mi] if frac.is_empty() => (num(h)?, num(mi)?, 0),
            [h, mi, se] => (num(h)?, num(mi)?, num(se)?),
            _ => return None,
        };
        // A leap second reads as the last second of its minute.
        if h > 23 || mi > 59 || se > 60 || parts.iter().any(|p| p.len() != 2) {
            return None;
        }
        secs_of_day = h * 3600 + mi * 60 + se.min(59);
        nsec = nanos(frac)?;
        rest = zone;
    }
    let offset = zone_offset(rest)?;
    Some(Timestamp { secs: days_from_civil(y, m, d) * 86_400 + secs_of_day - offset, nsec })
}

/// `""` or `Z`: 0; `+hh:mm`, `-hhmm`, `+hh`: seconds east of UTC.
fn zone_offset(z: &str) -> Option<i64> {
    if z.is_empty() || z.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = match z.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = z[1..].chars().filter(|&c| c != ':').collect();
    if !digits.bytes().all(|c| c.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) || z[1..].matches(':').count() > 1 {
        return None;
    }
    let h: i64 = digits[..2].parse().ok()?;
    let m: i64 = if digits.len() == 4 { digits[2..].parse().ok()? } else { 0 };
    (h <= 23 && m <= 59).then_some(sign * (h * 3600 + m * 60))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_gnu_touch_reads_them() {
        let check = |s: &str, secs: i64, nsec: u32| assert_eq!(parse(s).ok(), Some(Timestamp { secs, nsec }), "{s}");
        check("@-1.5", -2, 500_000_000);
        check("@-0.5", -1, 500_000_000);
        check("-1", -1, 0);
        check("@1.25", 1, 250_000_000);
        check("@+7.000000001", 7, 1);
        check("@.5", 0, 500_000_000);
        check("@1.1234567899", 1, 123_456_789);
        for bad in ["", "@", "@-", "@1.x", "@--1", "@1e3", "@ 1", "@99999999999999999999"] {
            assert!(parse(bad).is_err(), "{bad:?} parses");
        }
    }

    #[test]
    fn iso_8601_dates() {
        let check = |s: &str, secs: i64, nsec: u32| assert_eq!(parse(s).ok(), Some(Timestamp { secs, nsec }), "{s}");
        check("2023-11-14T22:13:20Z", 1_700_000_000, 0);
        check("2023-11-14 22:13:20.5", 1_700_000_000, 500_000_000);
        check("2023-11-15T00:13:20+02:00", 1_700_000_000, 0);
        check("2023-11-14T20:13:20-0200", 1_700_000_000, 0);
        check("1970-01-01", 0, 0);
        check("1969-12-31T23:59:59Z", -1, 0);
        check("2000-02-29T00:00", 951_782_400, 0);
        for bad in ["2023-02-29", "2023-13-01", "2023-11-14T25:00", "2023-11-14T22", "2023-11-14T22:13:20+5", "2023-11-14X"] {
            assert!(parse(bad).is_err(), "{bad:?} parses");
        }
    }
}

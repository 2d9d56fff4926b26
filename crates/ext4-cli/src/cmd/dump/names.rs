//! e2p's names and number formats as dumpe2fs prints them: features,
//! mount options, hash, error codes, states, OS, intervals, sizes, times
//! (in UTC), and `printf` quirks.

use ext4_fs::jbd2::format::{self as jf, JournalSuperblock};
use ext4_fs::ondisk::superblock::{STATE_ERROR, STATE_VALID, Superblock};

use crate::util::civil_from_days;

/// The bytes of a fixed-size C string field up to its first NUL, as text.
pub(super) fn field_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// A time as C's `ctime` prints it, in UTC, without the newline.
pub(crate) fn ctime(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = secs.div_euclid(86_400);
    let s = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let wday = DAYS[days.rem_euclid(7) as usize];
    format!("{wday} {} {d:2} {:02}:{:02}:{:02} {y}", MONTHS[m as usize - 1], s / 3600, s / 60 % 60, s % 60)
}

/// A time in RFC 3339, UTC.
pub(super) fn rfc3339(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

/// `e2p`'s interval text: months of 30 days, weeks, days, then h:mm:ss.
pub(super) fn interval_string(secs: u32) -> String {
    if secs == 0 {
        return "<none>".into();
    }
    let mut parts = Vec::new();
    let mut left = secs;
    for (unit, name) in [(86_400 * 30, "month"), (86_400 * 7, "week"), (86_400, "day")] {
        if left >= unit {
            let n = left / unit;
            left -= n * unit;
            parts.push(format!("{n} {name}{}", if n > 1 { "s" } else { "" }));
        }
    }
    if left > 0 {
        parts.push(format!("{}:{:02}:{:02}", left / 3600, left / 60 % 60, left % 60));
    }
    parts.join(", ")
}

/// A user or group name from a `passwd`-style file (`getpwuid`, `getgrgid`
/// for local accounts).
pub(super) fn account_name(file: &str, id: u16) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let found = f.nth(1)?.parse::<u32>().ok()? == u32::from(id);
        found.then(|| name.to_string())
    })
}

/// The feature names of the superblock in dumpe2fs' order: each word
/// (compat, incompat, ro_compat) bit by bit.
pub(crate) fn feature_names(sb: &Superblock) -> Vec<String> {
    use ext4_fs::ondisk::features::{FeatureSet, feature_name};
    let words = [
        (FeatureSet::Compat, sb.s_feature_compat.get()),
        (FeatureSet::Incompat, sb.s_feature_incompat.get()),
        (FeatureSet::RoCompat, sb.s_feature_ro_compat.get()),
    ];
    words.iter().flat_map(|&(set, w)| (0..32).map(|i| 1u32 << i).filter(move |b| w & b != 0).map(move |b| feature_name(set, b))).collect()
}

/// The default mount option names (`e2p_mntopt2string`).
pub(crate) fn mntopt_name(mask: u32) -> String {
    let name = match mask {
        0x0001 => "debug",
        0x0002 => "bsdgroups",
        0x0004 => "user_xattr",
        0x0008 => "acl",
        0x0010 => "uid16",
        0x0020 => "journal_data",
        0x0040 => "journal_data_ordered",
        0x0060 => "journal_data_writeback",
        0x0100 => "nobarrier",
        0x0200 => "block_validity",
        0x0400 => "discard",
        0x0800 => "nodelalloc",
        _ => return format!("MNTOPT_{}", 31 - mask.leading_zeros()),
    };
    name.into()
}

/// `s_default_mount_opts` as names: the journal mode first, then each bit.
pub(crate) fn mntopt_names(mask: u32) -> Vec<String> {
    const JMODE: u32 = 0x0060;
    let mut out = Vec::new();
    if mask & JMODE != 0 {
        out.push(mntopt_name(mask & JMODE));
    }
    out.extend((0..32).map(|i| 1u32 << i).filter(|b| b & JMODE == 0 && mask & b != 0).map(mntopt_name));
    out
}

/// `e2p_hash2string`.
pub(super) fn hash_name(v: u8) -> String {
    match v {
        0 => "legacy".into(),
        1 => "half_md4".into(),
        2 => "tea".into(),
        _ => format!("HASHALG_{v}"),
    }
}

/// `e2p_errcode2str`.
pub(super) fn errcode_name(e: u8) -> String {
    const NAMES: [&str; 18] = [
        "",
        "UNKNOWN",
        "EIO",
        "ENOMEM",
        "EFSBADCRC",
        "EFSCORRUPTED",
        "ENOSPC",
        "ENOKEY",
        "EROFS",
        "EFBIG",
        "EEXIST",
        "ERANGE",
        "EOVERFLOW",
        "EBUSY",
        "ENOTDIR",
        "ENOTEMPTY",
        "ESHUTDOWN",
        "EFAULT",
    ];
    NAMES.get(usize::from(e)).map_or_else(|| format!("UNKNOWN_ERRCODE_{e}"), |s| s.to_string())
}

pub(super) fn state_text(state: u16) -> String {
    let mut s = if state & STATE_VALID != 0 { " clean" } else { " not clean" }.to_string();
    if state & STATE_ERROR != 0 {
        s.push_str(" with errors");
    }
    s
}

pub(super) fn errors_text(e: u16) -> &'static str {
    match e {
        1 => "Continue",
        2 => "Remount read-only",
        3 => "Panic",
        _ => "Unknown (continue)",
    }
}

pub(super) fn os_text(os: u32) -> &'static str {
    ["Linux", "Hurd", "Masix", "FreeBSD", "Lites"].get(os as usize).copied().unwrap_or("(unknown os)")
}

/// `s_kbytes_written` in the largest unit below 8192 of it, rounded.
pub(super) fn lifetime_writes(kb: u64) -> String {
    if kb < 1 << 13 {
        return format!("{kb} kB");
    }
    for (shift, unit) in [(10, "MB"), (20, "GB"), (30, "TB")] {
        if kb < 1u64 << (shift + 13) {
            return format!("{} {unit}", (kb + (1 << (shift - 1))) >> shift);
        }
    }
    format!("{} PB", (kb + (1 << 39)) >> 40)
}

pub(super) fn is_null(b: &[u8]) -> bool {
    b.iter().all(|&c| c == 0)
}

/// The journal feature names (`e2p_jrnl_feature2string`), word by word.
pub(super) fn journal_feature_names(jsb: &JournalSuperblock) -> Vec<String> {
    let words = [(b'C', jsb.s_feature_compat.get()), (b'I', jsb.s_feature_incompat.get()), (b'R', jsb.s_feature_ro_compat.get())];
    let name = |set: u8, bit: u32| -> String {
        let known = match (set, bit) {
            (b'C', jf::COMPAT_CHECKSUM) => "journal_checksum",
            (b'I', jf::INCOMPAT_REVOKE) => "journal_incompat_revoke",
            (b'I', jf::INCOMPAT_64BIT) => "journal_64bit",
            (b'I', jf::INCOMPAT_ASYNC_COMMIT) => "journal_async_commit",
            (b'I', jf::INCOMPAT_CSUM_V2) => "journal_checksum_v2",
            (b'I', jf::INCOMPAT_CSUM_V3) => "journal_checksum_v3",
            _ => return format!("FEATURE_{}{}", set as char, bit.trailing_zeros()),
        };
        known.into()
    };
    words.iter().flat_map(|&(set, w)| (0..32).map(|i| 1u32 << i).filter(move |b| w & b != 0).map(move |b| name(set, b))).collect()
}

/// The fast-commit blocks at the end of the journal, when the filesystem uses them.
pub(super) fn fast_commit_blocks(jsb: &JournalSuperblock, fast_commit: bool) -> u32 {
    match (fast_commit, jsb.s_num_fc_blks.get()) {
        (false, _) => 0,
        (true, 0) => jf::DEFAULT_FAST_COMMIT_BLOCKS,
        (true, n) => n,
    }
}

/// C's `%#08x`: `0x` and at least 8 characters in all, but plain `0` for zero.
pub(super) fn alt_hex8(v: u32) -> String {
    if v == 0 { "00000000".into() } else { format!("{:#08x}", v) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctime_matches_c() {
        assert_eq!(ctime(1_700_000_000), "Tue Nov 14 22:13:20 2023");
        assert_eq!(ctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(ctime(1_796_647_516), "Mon Dec  7 12:45:16 2026");
    }

    #[test]
    fn intervals() {
        assert_eq!(interval_string(0), "<none>");
        assert_eq!(interval_string(15_552_000), "6 months");
        assert_eq!(interval_string(86_400 * 38 + 3661), "1 month, 1 week, 1 day, 1:01:01");
    }

    #[test]
    fn printf_alternate_hex() {
        assert_eq!(alt_hex8(0xff4d_4d50), "0xff4d4d50");
        assert_eq!(alt_hex8(1), "0x000001");
        assert_eq!(alt_hex8(0), "00000000");
    }

    #[test]
    fn writes_in_units() {
        assert_eq!(lifetime_writes(314), "314 kB");
        assert_eq!(lifetime_writes(8192), "8 MB");
        assert_eq!(lifetime_writes(1 << 23), "8 GB");
    }
}

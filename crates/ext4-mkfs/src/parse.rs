//! Parsers for mke2fs' argument syntax, so that a CLI maps its flags 1:1:
//! sizes (`64M`), feature lists (`^has_journal,64bit`), extended options
//! (`-E lazy_itable_init=0,root_owner=0:0`), journal options and UUIDs.

use crate::MkfsError;
use crate::options::{ExtendedOptions, FeatureEdit, FsSize, JournalOptions, UuidChoice};

/// Parses an unsigned integer as C's `strtoull(s, &end, 0)` does on a whole
/// string: decimal, `0x` hexadecimal or `0` octal.
pub fn parse_c_uint(s: &str) -> Option<u64> {
    let s = s.trim_start();
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// Parses a signed integer as `strtol(s, &end, 0)` on a whole string.
pub fn parse_c_int(s: &str) -> Option<i64> {
    let s = s.trim();
    match s.strip_prefix('-') {
        Some(rest) => parse_c_uint(rest).and_then(|v| i64::try_from(v).ok()).map(|v| -v),
        None => parse_c_uint(s).and_then(|v| i64::try_from(v).ok()),
    }
}

/// Splits a number from a one-character suffix, as `parse_num_blocks2` does.
fn split_suffix(s: &str) -> Option<(&str, Option<char>)> {
    let last = s.chars().last()?;
    if last.is_ascii_digit() {
        return Some((s, None));
    }
    Some((&s[..s.len() - last.len_utf8()], Some(last)))
}

/// Parses a size the way mke2fs parses its size argument and `-E resize=`
/// (`parse_num_blocks2`): a plain number is a count of blocks (of the `-b`
/// block size, or 1 KiB when none is given); `K`, `M`, `G`, `T` multiply
/// by powers of 1024 bytes and `s` counts 512-byte sectors.
pub fn parse_size(s: &str) -> Result<FsSize, MkfsError> {
    let bad = |reason| MkfsError::InvalidOption { option: "size", value: s.to_string(), reason };
    let (num, suffix) = split_suffix(s).ok_or_else(|| bad("empty"))?;
    let n = parse_c_uint(num).ok_or_else(|| bad("not a number"))?;
    let shift = match suffix.map(|c| c.to_ascii_lowercase()) {
        None => {
            return if n == 0 { Err(bad("zero")) } else { Ok(FsSize::Blocks(n)) };
        }
        Some('k') => 10,
        Some('m') => 20,
        Some('g') => 30,
        Some('t') => 40,
        Some('s') if suffix == Some('s') => 9,
        _ => return Err(bad("unknown suffix (use K, M, G, T or s)")),
    };
    let bytes = n.checked_mul(1u64 << shift).ok_or_else(|| bad("too large"))?;
    if bytes == 0 {
        return Err(bad("zero"));
    }
    Ok(FsSize::Bytes(bytes))
}

/// Parses a `-O` feature list: names separated by commas or blanks, each
/// optionally prefixed by `^`/`-` (clear) or `+` (set); `none`/`clear`
/// turns everything off. Names are checked against e2fsprogs' table.
pub fn parse_features(list: &str) -> Result<Vec<FeatureEdit>, MkfsError> {
    let mut out = Vec::new();
    for word in list.split(|c: char| c == ',' || c.is_ascii_whitespace()).filter(|w| !w.is_empty()) {
        if word.eq_ignore_ascii_case("none") || word.eq_ignore_ascii_case("clear") {
            out.push(FeatureEdit::ClearAll);
            continue;
        }
        let (clear, name) = match word.as_bytes()[0] {
            b'^' | b'-' => (true, &word[1..]),
            b'+' => (false, &word[1..]),
            _ => (false, word),
        };
        if ext4_ondisk::features::feature_by_name(name).is_none() {
            return Err(MkfsError::UnknownFeature { name: name.to_string() });
        }
        out.push(if clear { FeatureEdit::Clear(name.to_string()) } else { FeatureEdit::Set(name.to_string()) });
    }
    Ok(out)
}

/// Parses a UUID in its canonical 8-4-4-4-12 hexadecimal form (`uuid_parse`).
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut n = 0;
    let mut i = 0;
    while i < 36 {
        if [8, 13, 18, 23].contains(&i) {
            if b[i] != b'-' {
                return None;
            }
            i += 1;
            continue;
        }
        let hex = core::str::from_utf8(&b[i..i + 2]).ok()?;
        out[n] = u8::from_str_radix(hex, 16).ok()?;
        n += 1;
        i += 2;
    }
    Some(out)
}

/// Formats a UUID in its canonical form.
pub fn format_uuid(u: &[u8; 16]) -> String {
    let h: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", h[..4].concat(), h[4..6].concat(), h[6..8].concat(), h[8..10].concat(), h[10..].concat())
}

/// Parses `-U`: a UUID, `null`/`clear`, or `random`/`time`.
pub fn parse_uuid_choice(s: &str) -> Result<UuidChoice, MkfsError> {
    if s.eq_ignore_ascii_case("null") || s.eq_ignore_ascii_case("clear") {
        return Ok(UuidChoice::Null);
    }
    if s.eq_ignore_ascii_case("random") || s.eq_ignore_ascii_case("time") {
        return Ok(UuidChoice::Random);
    }
    parse_uuid(s).map(UuidChoice::Given).ok_or(MkfsError::InvalidOption {
        option: "-U",
        value: s.to_string(),
        reason: "not a UUID",
    })
}

/// Parses `-E` options into a fresh [`ExtendedOptions`].
pub fn parse_extended(text: &str) -> Result<ExtendedOptions, MkfsError> {
    let mut e = ExtendedOptions::default();
    merge_extended(&mut e, text)?;
    Ok(e)
}

fn need_arg<'a>(option: &'static str, arg: Option<&'a str>) -> Result<&'a str, MkfsError> {
    arg.ok_or(MkfsError::InvalidOption { option, value: String::new(), reason: "needs a value" })
}

fn uint_arg(option: &'static str, arg: Option<&str>) -> Result<u64, MkfsError> {
    let a = need_arg(option, arg)?;
    parse_c_uint(a).ok_or(MkfsError::InvalidOption { option, value: a.to_string(), reason: "not a number" })
}

fn u32_arg(option: &'static str, arg: Option<&str>) -> Result<u32, MkfsError> {
    let v = uint_arg(option, arg)?;
    u32::try_from(v).map_err(|_| MkfsError::InvalidOption { option, value: v.to_string(), reason: "too large" })
}

/// A `0|1` flag whose value may be omitted (meaning 1), as `strtoul`.
fn flag_arg(option: &'static str, arg: Option<&str>) -> Result<bool, MkfsError> {
    match arg {
        None => Ok(true),
        Some(a) => Ok(uint_arg(option, Some(a))? != 0),
    }
}

/// Parses `-E` options over `e`, in order, as mke2fs' `parse_extended_opts`.
pub fn merge_extended(e: &mut ExtendedOptions, text: &str) -> Result<(), MkfsError> {
    for token in text.split(',').filter(|t| !t.is_empty()) {
        let (name, arg) = match token.split_once('=') {
            Some((n, a)) => (n, Some(a)),
            None => (token, None),
        };
        match name {
            "hash_seed" => {
                let a = need_arg("-E hash_seed", arg)?;
                e.hash_seed = Some(parse_uuid(a).ok_or(MkfsError::InvalidOption {
                    option: "-E hash_seed",
                    value: a.to_string(),
                    reason: "not a UUID",
                })?);
            }
            "lazy_itable_init" => e.lazy_itable_init = Some(flag_arg("-E lazy_itable_init", arg)?),
            "lazy_journal_init" => e.lazy_journal_init = Some(flag_arg("-E lazy_journal_init", arg)?),
            "assume_storage_prezeroed" => {
                e.assume_storage_prezeroed = Some(flag_arg("-E assume_storage_prezeroed", arg)?)
            }
            "root_owner" => e.root_owner = Some(root_owner(arg)?),
            "offset" => e.offset = Some(uint_arg("-E offset", arg)?),
            "discard" => e.discard = Some(true),
            "nodiscard" => e.discard = Some(false),
            "num_backup_sb" => {
                let n = u32_arg("-E num_backup_sb", arg)?;
                if n > 2 {
                    return Err(MkfsError::InvalidOption {
                        option: "-E num_backup_sb",
                        value: n.to_string(),
                        reason: "must be 0, 1 or 2",
                    });
                }
                e.num_backup_sb = Some(n);
            }
            "stride" => e.stride = Some(u32_arg("-E stride", arg)?),
            "stripe-width" | "stripe_width" => e.stripe_width = Some(u32_arg("-E stripe_width", arg)?),
            "resize" => e.resize = Some(parse_size(need_arg("-E resize", arg)?)?),
            "mmp_update_interval" => e.mmp_update_interval = Some(u32_arg("-E mmp_update_interval", arg)?),
            "orphan_file_size" => e.orphan_file_size = Some(parse_size(need_arg("-E orphan_file_size", arg)?)?),
            "test_fs" => e.test_fs = true,
            "desc_size" | "desc-size" => e.desc_size = Some(u32_arg("-E desc_size", arg)?),
            _ => {
                return Err(MkfsError::UnknownExtendedOption { name: name.to_string() });
            }
        }
    }
    Ok(())
}

/// `root_owner=UID:GID`, or without a value the calling process' owner
/// (read from `/proc/self`, 0:0 where that does not exist).
fn root_owner(arg: Option<&str>) -> Result<(u32, u32), MkfsError> {
    let Some(a) = arg else {
        return Ok(process_owner());
    };
    let bad = || MkfsError::InvalidOption { option: "-E root_owner", value: a.to_string(), reason: "expected UID:GID" };
    let (u, g) = a.split_once(':').ok_or_else(bad)?;
    let u = parse_c_uint(u).and_then(|v| u32::try_from(v).ok()).ok_or_else(bad)?;
    let g = parse_c_uint(g).and_then(|v| u32::try_from(v).ok()).ok_or_else(bad)?;
    Ok((u, g))
}

#[cfg(unix)]
fn process_owner() -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| (m.uid(), m.gid())).unwrap_or((0, 0))
}

#[cfg(not(unix))]
fn process_owner() -> (u32, u32) {
    (0, 0)
}

/// Parses `-J` options: `size=MiB`, `location=SIZE` and `device=PATH`.
pub fn parse_journal_options(text: &str) -> Result<JournalOptions, MkfsError> {
    let mut j = JournalOptions::default();
    for token in text.split(',').filter(|t| !t.is_empty()) {
        let (name, arg) = match token.split_once('=') {
            Some((n, a)) => (n, Some(a)),
            None => (token, None),
        };
        match name {
            "size" => j.size_mib = Some(u32_arg("-J size", arg)?),
            "location" => j.location = Some(parse_size(need_arg("-J location", arg)?)?),
            "device" => {
                let path = need_arg("-J device", arg)?;
                if path.starts_with("UUID=") || path.starts_with("LABEL=") {
                    return Err(MkfsError::InvalidOption {
                        option: "-J device",
                        value: path.to_string(),
                        reason: "give the journal device's path (looking it up by UUID= or LABEL= is not supported)",
                    });
                }
                j.device = Some(path.to_string());
            }
            _ => {
                return Err(MkfsError::InvalidOption {
                    option: "-J",
                    value: token.to_string(),
                    reason: "supported journal options are size=, location= and device=",
                });
            }
        }
    }
    Ok(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let check = |s: &str, want: Option<FsSize>| assert_eq!(parse_size(s).ok(), want, "{s}");
        check("64M", Some(FsSize::Bytes(64 << 20)));
        check("16T", Some(FsSize::Bytes(16 << 40)));
        check("8k", Some(FsSize::Bytes(8192)));
        check("2048s", Some(FsSize::Bytes(1 << 20)));
        check("65536", Some(FsSize::Blocks(65536)));
        check("0x100", Some(FsSize::Blocks(256)));
        check("0", None);
        check("12Q", None);
        check("M", None);
        check("99999999999T", None);
    }

    #[test]
    fn features() {
        let f = parse_features("^has_journal, 64bit +extents,none").unwrap();
        assert_eq!(
            f,
            vec![
                FeatureEdit::Clear("has_journal".into()),
                FeatureEdit::Set("64bit".into()),
                FeatureEdit::Set("extents".into()),
                FeatureEdit::ClearAll
            ]
        );
        assert!(matches!(parse_features("bogus"), Err(MkfsError::UnknownFeature { .. })));
    }

    #[test]
    fn extended() {
        let e = parse_extended("lazy_itable_init=0,root_owner=1000:100,nodiscard,offset=0x1000,stride=16").unwrap();
        assert_eq!(e.lazy_itable_init, Some(false));
        assert_eq!(e.root_owner, Some((1000, 100)));
        assert_eq!(e.discard, Some(false));
        assert_eq!(e.offset, Some(4096));
        assert_eq!(e.stride, Some(16));
        assert!(parse_extended("lazy_journal_init").unwrap().lazy_journal_init.unwrap());
        assert!(matches!(parse_extended("frobnicate=1"), Err(MkfsError::UnknownExtendedOption { .. })));
        assert!(parse_extended("root_owner=12").is_err());
        assert!(parse_extended("num_backup_sb=3").is_err());
    }

    #[test]
    fn uuids() {
        let u = parse_uuid("01234567-89ab-cdef-0123-456789abcdef").unwrap();
        assert_eq!(u[0], 0x01);
        assert_eq!(u[15], 0xef);
        assert_eq!(format_uuid(&u), "01234567-89ab-cdef-0123-456789abcdef");
        assert!(parse_uuid("01234567-89ab-cdef-0123-456789abcde").is_none());
        assert!(parse_uuid("0123456789ab-cdef-0123-456789abcdef-").is_none());
        assert_eq!(parse_uuid_choice("clear").unwrap(), UuidChoice::Null);
    }
}

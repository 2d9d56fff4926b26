//! mke2fs' command line (`getopt` over
//! `b:cd:e:g:i:jl:m:no:qr:s:t:vC:DE:FG:I:J:KL:M:N:O:R:ST:U:Vz:`) mapped to
//! [`FormatOptions`], so that a CLI takes exactly mke2fs' arguments.

use crate::MkfsError;
use crate::options::{ErrorsBehaviour, FormatOptions, FsType};
use crate::parse;

/// A parsed mke2fs command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Mke2fsArgs {
    /// The options.
    pub options: FormatOptions,
    /// The device or image (the first operand).
    pub device: String,
    /// `-n`: only show what would be done.
    pub dry_run: bool,
    /// `-q`: quiet.
    pub quiet: bool,
    /// `-v`: verbose.
    pub verbose: bool,
    /// `-F` was given (mke2fs' force; this library never asks questions).
    pub force: bool,
}

/// Flags that take a value, as in mke2fs' `getopt` string.
const WITH_VALUE: &[u8] = b"bdeglimortsCEGIJLMNORTUz";
/// Flags without a value.
const WITHOUT_VALUE: &[u8] = b"cjnqvDFKSV";

fn bad(option: &'static str, value: &str, reason: &'static str) -> MkfsError {
    MkfsError::InvalidOption { option, value: value.to_string(), reason }
}

fn number<T: TryFrom<u64>>(option: &'static str, value: &str) -> Result<T, MkfsError> {
    parse::parse_c_uint(value).and_then(|v| T::try_from(v).ok()).ok_or_else(|| bad(option, value, "not a number"))
}

/// A byte count with an optional K/M/G suffix (`parse_num_blocks(arg, -1)`).
fn size_number(option: &'static str, value: &str) -> Result<u32, MkfsError> {
    let n = match parse::parse_size(value).map_err(|_| bad(option, value, "not a size"))? {
        crate::FsSize::Blocks(n) | crate::FsSize::Bytes(n) => n,
    };
    u32::try_from(n).map_err(|_| bad(option, value, "too large"))
}

/// Applies one flag and its value to `a`.
fn apply(a: &mut Mke2fsArgs, flag: u8, value: &str) -> Result<(), MkfsError> {
    let o = &mut a.options;
    match flag {
        b'b' => o.block_size = Some(size_number("-b", value)?),
        b'e' => {
            o.errors =
                Some(ErrorsBehaviour::from_name(value).ok_or_else(|| bad("-e", value, "not an errors behaviour"))?)
        }
        b'g' => o.blocks_per_group = Some(number("-g", value)?),
        b'G' => o.flex_bg_size = Some(number("-G", value)?),
        b'i' => o.inode_ratio = Some(size_number("-i", value)?.into()),
        b'I' => o.inode_size = Some(number("-I", value)?),
        b'j' => o.journal = true,
        b'J' => o.journal_options = Some(parse::parse_journal_options(value)?),
        b'L' => o.label = Some(value.to_string()),
        b'm' => o.reserved_percent = Some(value.parse().map_err(|_| bad("-m", value, "not a number"))?),
        b'M' => o.last_mounted = Some(value.to_string()),
        b'N' => o.inode_count = Some(number("-N", value)?),
        b'o' if value.eq_ignore_ascii_case("linux") || value == "0" => {}
        b'O' => o.features.extend(parse::parse_features(value)?),
        b'E' | b'R' => parse::merge_extended(&mut o.extended, value)?,
        b'r' if value == "1" => {}
        b't' => o.fs_type = Some(FsType::from_name(value).ok_or_else(|| bad("-t", value, "ext2, ext3 or ext4"))?),
        b'T' => o.usage_types = Some(value.to_string()),
        b'U' => o.uuid = parse::parse_uuid_choice(value)?,
        b'n' => a.dry_run = true,
        b'q' => a.quiet = true,
        b'v' => a.verbose = true,
        b'F' => a.force = true,
        b'K' => o.extended.discard = Some(false),
        b'c' | b'D' | b'V' => {}
        _ => return Err(bad("a flag", &format!("-{}", flag as char), "not supported by this formatter")),
    }
    Ok(())
}

/// Parses mke2fs' arguments (without the program name): flags, then the
/// device and an optional size. `-E` options accumulate (mke2fs 1.47.0
/// keeps only the last `-E`; later versions accumulate them too).
pub fn parse_mke2fs_args<S: AsRef<str>>(args: &[S]) -> Result<Mke2fsArgs, MkfsError> {
    let mut a = Mke2fsArgs {
        options: FormatOptions::default(),
        device: String::new(),
        dry_run: false,
        quiet: false,
        verbose: false,
        force: false,
    };
    let mut operands = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_ref();
        i += 1;
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            operands.push(arg.to_string());
            continue;
        };
        let bytes = flags.as_bytes();
        for (k, &f) in bytes.iter().enumerate() {
            if WITH_VALUE.contains(&f) {
                let value = if k + 1 < bytes.len() {
                    flags[k + 1..].to_string()
                } else if i < args.len() {
                    i += 1;
                    args[i - 1].as_ref().to_string()
                } else {
                    return Err(bad("a flag", arg, "needs a value"));
                };
                apply(&mut a, f, &value)?;
                break;
            } else if WITHOUT_VALUE.contains(&f) {
                apply(&mut a, f, "")?;
            } else {
                return Err(bad("a flag", arg, "unknown flag"));
            }
        }
    }
    let mut operands = operands.into_iter();
    a.device = operands.next().ok_or_else(|| bad("the device", "", "missing"))?;
    if let Some(size) = operands.next() {
        a.options.size = Some(parse::parse_size(&size)?);
    }
    if let Some(extra) = operands.next() {
        return Err(bad("an operand", &extra, "too many operands"));
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{FsSize, UuidChoice};

    #[test]
    fn flags_values_and_operands() {
        let a = parse_mke2fs_args(&[
            "-qF",
            "-t",
            "ext4",
            "-b4096",
            "-O",
            "^has_journal",
            "-E",
            "lazy_itable_init=0",
            "-E",
            "nodiscard",
            "-U",
            "clear",
            "img",
            "64M",
        ])
        .unwrap();
        assert!(a.quiet && a.force && !a.dry_run);
        assert_eq!(a.device, "img");
        assert_eq!(a.options.fs_type, Some(FsType::Ext4));
        assert_eq!(a.options.block_size, Some(4096));
        assert_eq!(a.options.size, Some(FsSize::Bytes(64 << 20)));
        assert_eq!(a.options.extended.lazy_itable_init, Some(false));
        assert_eq!(a.options.extended.discard, Some(false));
        assert_eq!(a.options.uuid, UuidChoice::Null);
        assert!(parse_mke2fs_args(&["-d", "dir", "img"]).is_err());
        assert!(parse_mke2fs_args(&["-b"]).is_err());
        assert!(parse_mke2fs_args::<&str>(&[]).is_err());
        assert!(parse_mke2fs_args(&["img", "1M", "extra"]).is_err());
    }
}

//! Byte-exact xattr values on a command line, as getfattr and setfattr
//! write them: `0x` hex, `0s` base64, `"quoted"` text with `\NNN` octal
//! escapes, or plain text.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::util::{CliResult, fail};

/// How a value is written (`-e`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    /// Read: by prefix (`0x` hex, `0s` base64, `"..."` quoted text, else the
    /// bytes as given). Not an output encoding.
    Auto,
    /// Quoted text with `\NNN` octal escapes for bytes that are not printable ASCII
    /// (taken literally as input).
    Text,
    /// `0x` and two hex digits a byte.
    Hex,
    /// `0s` and base64.
    Base64,
}

/// The bytes of a value given as `s` in encoding `e`.
pub fn decode(s: &OsStr, e: Encoding) -> CliResult<Vec<u8>> {
    let b = s.as_bytes();
    let bad = |why: &str| fail(format!("invalid value {:?}: {why}", s.to_string_lossy()));
    match e {
        Encoding::Text => Ok(b.to_vec()),
        Encoding::Hex => from_hex(b.strip_prefix(b"0x").or(b.strip_prefix(b"0X")).unwrap_or(b)).ok_or_else(|| bad("not hex")),
        Encoding::Base64 => from_base64(b.strip_prefix(b"0s").or(b.strip_prefix(b"0S")).unwrap_or(b)).ok_or_else(|| bad("not base64")),
        Encoding::Auto => match b {
            [b'0', b'x' | b'X', rest @ ..] => from_hex(rest).ok_or_else(|| bad("not hex after 0x")),
            [b'0', b's' | b'S', rest @ ..] => from_base64(rest).ok_or_else(|| bad("not base64 after 0s")),
            [b'"', inner @ .., b'"'] => unquote(inner).ok_or_else(|| bad("a bad escape in quotes")),
            _ => Ok(b.to_vec()),
        },
    }
}

/// `v` written in encoding `e` (`Auto` writes text when every byte is
/// printable ASCII, else hex... as getfattr's default does: text).
pub fn encode(v: &[u8], e: Encoding) -> String {
    match e {
        Encoding::Auto | Encoding::Text => quote(v),
        Encoding::Hex => format!("0x{}", v.iter().map(|b| format!("{b:02x}")).collect::<String>()),
        Encoding::Base64 => format!("0s{}", base64(v)),
    }
}

/// `"text"` with `\NNN` for bytes outside printable ASCII and for `"` and `\`.
fn quote(v: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in v {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("\\{b:03o}"));
        }
    }
    s.push('"');
    s
}

/// The inside of `"..."`: `\NNN` octal escapes and `\` before any other byte.
fn unquote(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let digits = b[i + 1..].iter().take(3).take_while(|c| (b'0'..=b'7').contains(c)).count();
        if digits > 0 {
            let n = b[i + 1..i + 1 + digits].iter().fold(0u32, |n, &d| n * 8 + u32::from(d - b'0'));
            out.push(u8::try_from(n).ok()?);
            i += 1 + digits;
        } else {
            out.push(*b.get(i + 1)?);
            i += 2;
        }
    }
    Some(out)
}

fn from_hex(b: &[u8]) -> Option<Vec<u8>> {
    if b.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    b.chunks(2).map(|p| Some(digit(p[0])? << 4 | digit(p[1])?)).collect()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648, with `=` padding).
pub fn base64(v: &[u8]) -> String {
    let mut s = String::with_capacity(v.len().div_ceil(3) * 4);
    for c in v.chunks(3) {
        let n = c.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for k in 0..4 {
            s.push(if k <= c.len() { char::from(B64[(n >> (18 - 6 * k)) as usize & 63]) } else { '=' });
        }
    }
    s
}

/// Decodes standard base64; padding is optional, nothing else is allowed.
pub fn from_base64(b: &[u8]) -> Option<Vec<u8>> {
    let b = b.strip_suffix(b"==").or(b.strip_suffix(b"=")).unwrap_or(b);
    if b.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() * 3 / 4);
    for c in b.chunks(4) {
        let n = c.iter().enumerate().try_fold(0u32, |n, (i, &ch)| {
            let v = B64.iter().position(|&x| x == ch)? as u32;
            Some(n | v << (18 - 6 * i))
        })?;
        out.extend(n.to_be_bytes()[1..c.len()].iter());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &[u8], e: Encoding) -> Option<Vec<u8>> {
        decode(OsStr::from_bytes(s), e).ok()
    }

    #[test]
    fn round_trips_in_every_encoding() {
        let values: [&[u8]; 5] = [b"", b"a", b"ab", b"abc\0\xff\"\\\n", &[0u8, 1, 2, 3, 250, 251, 252]];
        for v in values {
            for e in [Encoding::Text, Encoding::Hex, Encoding::Base64] {
                let shown = encode(v, e);
                assert_eq!(dec(shown.as_bytes(), Encoding::Auto).as_deref(), Some(v), "{e:?} {shown}");
            }
        }
    }

    #[test]
    fn as_setfattr_reads_them() {
        assert_eq!(dec(b"0x00ff", Encoding::Auto), Some(vec![0, 255]));
        assert_eq!(dec(b"0sAP8=", Encoding::Auto), Some(vec![0, 255]));
        assert_eq!(dec(b"\"a\\012b\"", Encoding::Auto), Some(b"a\nb".to_vec()));
        assert_eq!(dec(b"plain \xff", Encoding::Auto), Some(b"plain \xff".to_vec()));
        assert_eq!(dec(b"0x0", Encoding::Auto), None);
        assert_eq!(dec(b"0s!!", Encoding::Auto), None);
        assert_eq!(dec(b"0x41", Encoding::Text), Some(b"0x41".to_vec()));
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"fo"), "Zm8=");
    }
}

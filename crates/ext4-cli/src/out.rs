//! Standard output: lines and raw bytes whose write errors come back as
//! [`CliError`]s (a closed pipe ends the command quietly), names shown
//! byte-exact to pipes and escaped on terminals, and the JSON shapes every
//! `--json` shares (times, names).

use std::borrow::Cow;
use std::io::{IsTerminal, Write};

use ext4_fs::Timestamp;
use serde_json::{Value, json};

use crate::util::{CliResult, Context};

/// Buffered standard output for one command; flushed by [`Out::finish`]
/// (and on drop, where a write error can no longer be reported).
pub struct Out {
    w: std::io::BufWriter<std::io::StdoutLock<'static>>,
    tty: bool,
}

impl Out {
    /// Standard output, noting whether it is a terminal.
    pub fn new() -> Self {
        let stdout = std::io::stdout();
        Self { tty: stdout.is_terminal(), w: std::io::BufWriter::new(stdout.lock()) }
    }

    /// Writes `bytes` as they are.
    pub fn raw(&mut self, bytes: &[u8]) -> CliResult {
        self.w.write_all(bytes).context(|| "writing to standard output".into())
    }

    /// Writes text.
    pub fn text(&mut self, s: &str) -> CliResult {
        self.raw(s.as_bytes())
    }

    /// Writes a file name: its bytes to a pipe or file, escaped on a terminal.
    pub fn name(&mut self, name: &[u8]) -> CliResult {
        if self.tty { self.text(&escape(name)) } else { self.raw(name) }
    }

    /// Writes `s` and a newline.
    pub fn line(&mut self, s: &str) -> CliResult {
        self.text(s)?;
        self.raw(b"\n")
    }

    /// Writes a JSON document, indented, and a newline.
    pub fn json(&mut self, v: &Value) -> CliResult {
        let s = serde_json::to_string_pretty(v).map_err(|e| crate::util::fail(format!("JSON: {e}")))?;
        self.line(&s)
    }

    /// Flushes what is buffered.
    pub fn finish(mut self) -> CliResult {
        self.w.flush().context(|| "writing to standard output".into())
    }
}

impl Default for Out {
    fn default() -> Self {
        Self::new()
    }
}

/// A name as a terminal should show it: valid UTF-8 without control
/// characters as it is; control characters, backslashes and bytes that are
/// not UTF-8 as `\xNN` (a backslash as `\\`), so that every name reads
/// back unambiguously.
pub fn escape(name: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(name) {
        Ok(s) if !s.chars().any(|c| c.is_control() || c == '\\') => Cow::Borrowed(s),
        _ => Cow::Owned(escape_bytes(name)),
    }
}

fn escape_bytes(name: &[u8]) -> String {
    let mut out = String::new();
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => {
                    let mut b = [0u8; 4];
                    for byte in c.encode_utf8(&mut b).bytes() {
                        out.push_str(&format!("\\x{byte:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// The bytes [`escape`] was given back from its text (`\\` and `\xNN` undone).
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|&c| char::from(c).to_digit(16));
        match (b[i], b.get(i + 1)) {
            (b'\\', Some(b'\\')) => {
                out.push(b'\\');
                i += 2;
            }
            (b'\\', Some(b'x')) if hex(i + 2).is_some() && hex(i + 3).is_some() => {
                out.push((hex(i + 2).unwrap_or(0) * 16 + hex(i + 3).unwrap_or(0)) as u8);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// A time as every `--json` gives it: `{"rfc3339": "...Z", "epoch": secs, "nsec": n}`.
pub fn json_time(t: Timestamp) -> Value {
    json!({ "rfc3339": rfc3339(t), "epoch": t.secs, "nsec": t.nsec })
}

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (UTC).
pub fn rfc3339(t: Timestamp) -> String {
    let s = crate::util::format_time(t);
    format!("{}T{}Z", &s[..10], &s[11..])
}

/// Adds a name to a JSON object as every `--json` gives it: `key` holds the
/// name as text (bytes that are not UTF-8 replaced by U+FFFD); when it is
/// not UTF-8, `KEY_base64` holds its exact bytes too.
pub fn json_name(obj: &mut serde_json::Map<String, Value>, key: &str, name: &[u8]) {
    obj.insert(key.into(), Value::String(String::from_utf8_lossy(name).into_owned()));
    if std::str::from_utf8(name).is_err() {
        obj.insert(format!("{key}_base64"), Value::String(crate::encoding::base64(name)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_on_terminals() {
        assert_eq!(escape(b"plain name"), "plain name");
        assert_eq!(escape("caf\u{e9}".as_bytes()), "caf\u{e9}");
        assert_eq!(escape(b"a\xffb"), "a\\xffb");
        assert_eq!(escape(b"tab\there\\"), "tab\\x09here\\\\");
        for name in [&b"a\xffb\\x"[..], b"plain", b"\x01\\\\"] {
            assert_eq!(unescape(&escape(name)), name);
        }
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339(Timestamp { secs: 1_700_000_000, nsec: 5 }), "2023-11-14T22:13:20.000000005Z");
        assert_eq!(json_time(Timestamp { secs: -1, nsec: 0 })["epoch"], -1);
    }
}

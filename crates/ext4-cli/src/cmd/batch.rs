//! `ext4 batch [--keep-going] [-f SCRIPT] IMAGE`: many commands on one open
//! image, committed and closed once at the end.
//!
//! The script has one command a line, written as the standalone command
//! without its IMAGE argument (`mkdir -p /a/b`, `chmod 4755 /a/f`,
//! `xattr set /a/f user.k v`), with shell-like words: `'single'` and
//! `"double"` quotes, backslash escapes, a backslash-newline continues the
//! line, and `#` starts a comment. Every line is parsed before the image is
//! opened, so a script with a syntax error changes nothing. The first
//! failing command stops the run (with `--keep-going`, every command runs);
//! what ran before it stays applied, and the image is closed cleanly either
//! way.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use clap::Parser;
use ext4_fs::Filesystem;

use super::{Op, Open};
use crate::util::{CliError, CliResult, Context, close, open_rw};

/// Arguments of `ext4 batch`.
#[derive(clap::Args)]
pub struct Args {
    /// Run every command even after one fails (the exit status still says so).
    #[arg(short = 'k', long)]
    keep_going: bool,
    /// Read the script from this file instead of standard input.
    #[arg(short = 'f', long, value_name = "SCRIPT")]
    file: Option<PathBuf>,
    /// The image or device.
    image: PathBuf,
    /// The external journal device (or image) of a filesystem made with
    /// `mke2fs -J device=`.
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
}

/// One script line as clap parses it.
#[derive(Parser)]
#[command(name = "batch", no_binary_name = true, disable_help_subcommand = true)]
struct Line {
    #[command(subcommand)]
    op: Op<Open>,
}

/// A command of the script: where it starts, its source text and its words.
#[derive(Debug, PartialEq, Eq)]
pub struct Command {
    /// Line number (1-based) of its first word.
    pub line: usize,
    /// Its source text, trimmed (bytes that are not UTF-8 replaced, for messages).
    pub text: String,
    /// Its words after quote removal, as bytes.
    pub words: Vec<OsString>,
}

/// Runs the command.
pub fn run(a: Args) -> CliResult {
    let script = match &a.file {
        Some(f) => std::fs::read(f).context(|| format!("reading {}", f.display()))?,
        None => {
            let mut s = Vec::new();
            std::io::stdin().read_to_end(&mut s).context(|| "reading the script from standard input".into())?;
            s
        }
    };
    let commands = split(&script).map_err(|e| refused("batch", e))?;
    let ops = commands.iter().map(|c| parse(c, a.file.is_none())).collect::<CliResult<Vec<_>>>()?;
    let mut fs = open_rw(&a.image, a.journal.as_deref())?;
    let result = execute(&mut fs, &commands, &ops, a.keep_going);
    let closed = close(fs, &a.image);
    match (result, closed) {
        (Ok(()), closed) => closed,
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(c)) => {
            eprintln!("ext4: {c}");
            Err(e)
        }
    }
}

/// Parses one command with the standalone commands' parser.
fn parse(c: &Command, stdin_is_script: bool) -> CliResult<Op<Open>> {
    let at = |what: String| refused(format!("line {}: {}", c.line, c.text), what);
    let line = Line::try_parse_from(&c.words).map_err(|e| {
        let shown = e.render().to_string();
        at(shown.lines().next().unwrap_or("").trim_start_matches("error: ").to_string())
    })?;
    if stdin_is_script && matches!(&line.op, Op::Write(w) if w.reads_stdin()) {
        return Err(at("standard input holds the script: give TEXT or --from FILE".into()));
    }
    Ok(line.op)
}

/// Runs the commands in order; the error names the line, the command and the cause.
fn execute(fs: &mut Filesystem, commands: &[Command], ops: &[Op<Open>], keep_going: bool) -> CliResult {
    let mut failed = 0;
    for (c, op) in commands.iter().zip(ops) {
        let Err(e) = op.exec(fs) else {
            continue;
        };
        // A context that only repeats the end of the line (`cat /a/x`: `/a/x`) is left out.
        let context = if c.text.ends_with(&e.context) {
            format!("line {}: {}", c.line, c.text)
        } else {
            format!("line {}: {}: {}", c.line, c.text, e.context)
        };
        let e = CliError { context, ..e };
        if !keep_going {
            return Err(e);
        }
        eprintln!("ext4: {e}");
        failed += 1;
    }
    match failed {
        0 => Ok(()),
        n => Err(CliError::partial("batch", format!("{n} of {} commands failed", commands.len()))),
    }
}

/// An error without an errno: `context: why`.
fn refused(context: impl Into<String>, why: String) -> CliError {
    CliError::new(context, why, None)
}

/// Splits a script into commands: shell-like words, one command a line.
/// The script is bytes: every special character is ASCII, and no byte of a
/// multi-byte UTF-8 character is, so names need not be UTF-8.
pub fn split(script: &[u8]) -> Result<Vec<Command>, String> {
    let mut out = Vec::new();
    let mut words: Vec<OsString> = Vec::new();
    let mut word: Option<Vec<u8>> = None;
    // The command's first line, and the source span of its words.
    let (mut line, mut start_line, mut start, mut end) = (1, 1, 0, 0);
    let mut bytes = script.iter().copied().enumerate().peekable();
    let end_command = |out: &mut Vec<Command>, words: &mut Vec<OsString>, start_line, text: &[u8]| {
        if !words.is_empty() {
            out.push(Command { line: start_line, text: String::from_utf8_lossy(text).into_owned(), words: std::mem::take(words) });
        }
    };
    let take = |word: &mut Option<Vec<u8>>| word.take().map(OsString::from_vec);
    while let Some((i, ch)) = bytes.next() {
        match ch {
            b'\n' => {
                words.extend(take(&mut word));
                end_command(&mut out, &mut words, start_line, &script[start..end]);
                line += 1;
                continue;
            }
            c if c.is_ascii_whitespace() => {
                words.extend(take(&mut word));
                continue;
            }
            b'#' if word.is_none() => {
                while bytes.next_if(|&(_, c)| c != b'\n').is_some() {}
                continue;
            }
            _ if words.is_empty() && word.is_none() => (start_line, start) = (line, i),
            _ => {}
        }
        match ch {
            b'\\' => match bytes.next() {
                Some((_, b'\n')) => line += 1,
                Some((_, c)) => word.get_or_insert_with(Vec::new).push(c),
                None => return Err(format!("line {line}: a backslash ends the script")),
            },
            b'\'' => {
                let w = word.get_or_insert_with(Vec::new);
                let opened = line;
                loop {
                    match bytes.next() {
                        Some((_, b'\'')) => break,
                        Some((_, c)) => {
                            line += usize::from(c == b'\n');
                            w.push(c);
                        }
                        None => return Err(format!("line {opened}: unterminated single quote")),
                    }
                }
            }
            b'"' => {
                let w = word.get_or_insert_with(Vec::new);
                let opened = line;
                loop {
                    match bytes.next() {
                        Some((_, b'"')) => break,
                        Some((_, b'\\')) => match bytes.next_if(|&(_, c)| matches!(c, b'"' | b'\\' | b'$' | b'`' | b'\n')) {
                            Some((_, b'\n')) => line += 1,
                            Some((_, c)) => w.push(c),
                            None => w.push(b'\\'),
                        },
                        Some((_, c)) => {
                            line += usize::from(c == b'\n');
                            w.push(c);
                        }
                        None => return Err(format!("line {opened}: unterminated double quote")),
                    }
                }
            }
            c => word.get_or_insert_with(Vec::new).push(c),
        }
        end = bytes.peek().map_or(script.len(), |&(j, _)| j);
    }
    words.extend(take(&mut word));
    end_command(&mut out, &mut words, start_line, &script[start..end]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(script: &str) -> Vec<(usize, Vec<OsString>)> {
        split(script.as_bytes()).expect("splits").into_iter().map(|c| (c.line, c.words)).collect()
    }

    fn w(line: usize, words: &[&str]) -> (usize, Vec<OsString>) {
        (line, words.iter().map(OsString::from).collect())
    }

    #[test]
    fn quoting_comments_and_lines() {
        let s = "# a comment\n\nmkdir -p /a/b   # trailing\n  write '/a/my file' \"say \\\"hi\\\"\\n\" \n";
        assert_eq!(words(s), vec![w(3, &["mkdir", "-p", "/a/b"]), w(4, &["write", "/a/my file", "say \"hi\"\\n"])]);
        assert_eq!(words("touch a\\ b x#y ''\n"), vec![w(1, &["touch", "a b", "x#y", ""])]);
        assert_eq!(words("write /f 'two\nlines'\nrm \\\n  /f"), vec![w(1, &["write", "/f", "two\nlines"]), w(3, &["rm", "/f"])]);
        assert_eq!(split(s.as_bytes()).unwrap()[0].text, "mkdir -p /a/b");
        assert_eq!(split(b"  ls 'a b' # c\n").unwrap()[0].text, "ls 'a b'");
        assert_eq!(split(b"rm 'x\n").unwrap_err(), "line 1: unterminated single quote");
        assert_eq!(split(b"\n\nrm \"x").unwrap_err(), "line 3: unterminated double quote");
        let raw = split(b"touch /caf\xe9 '/x\xff'\n").unwrap();
        assert_eq!(raw[0].words[1], OsString::from_vec(b"/caf\xe9".to_vec()));
        assert_eq!(raw[0].words[2], OsString::from_vec(b"/x\xff".to_vec()));
    }

    #[test]
    fn lines_parse_as_the_standalone_commands() {
        let parsed = |s: &str| parse(&split(s.as_bytes()).unwrap()[0], true).map(|op| op.writes());
        assert!(parsed("mkdir -p -m 700 /a /b").unwrap());
        assert!(parsed("xattr set /f user.k 'a value'").unwrap());
        assert!(!parsed("xattr get /f user.k").unwrap());
        assert!(!parsed("ls -l /").unwrap());
        assert!(parsed("mv -T /a /b").unwrap());
        let err = |s: &str| parse(&split(s.as_bytes()).unwrap()[0], true).err().expect("refused").to_string();
        assert!(err("frobnicate /x").starts_with("line 1: frobnicate /x: unrecognized subcommand"), "{}", err("frobnicate /x"));
        assert!(err("write /f").contains("give TEXT or --from FILE"));
        assert!(err("chmod 755").contains("required"), "{}", err("chmod 755"));
    }
}

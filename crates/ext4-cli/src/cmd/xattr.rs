//! `ext4 xattr list|get|set|rm IMAGE PATH [NAME [VALUE]]`: extended
//! attributes, values byte-exact (`-e text|hex|base64` as getfattr,
//! `0x`/`0s` prefixes as setfattr).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use ext4_fs::{Filesystem, XattrMode};
use serde_json::Value;

use super::stat::xattr_json;
use crate::encoding::{Encoding, decode, encode};
use crate::out::Out;
use crate::util::{CliResult, Context, path_bytes, shown};

/// Arguments of `ext4 xattr`.
#[derive(clap::Args)]
pub struct Args<I: clap::Args> {
    #[command(subcommand)]
    op: Op<I>,
}

#[derive(clap::Subcommand)]
enum Op<I: clap::Args> {
    /// List names and values (`NAME="text"` lines, as getfattr -d).
    List {
        /// How values are shown: text (quoted, `\NNN` escapes), hex (`0x...`), base64 (`0s...`).
        #[arg(short = 'e', long, value_enum, default_value = "text")]
        encoding: Encoding,
        /// Print JSON: an array of `{name, size, text (if UTF-8), hex, base64}`.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        image: I,
        /// The file (a final symbolic link is not followed).
        path: OsString,
    },
    /// Print one value: its exact bytes, or encoded with `-e` (and a newline).
    Get {
        /// Print the value encoded: text, hex (`0x...`) or base64 (`0s...`).
        #[arg(short = 'e', long, value_enum)]
        encoding: Option<Encoding>,
        /// Print JSON: `{name, size, text (if UTF-8), hex, base64}`.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        image: I,
        /// The file (a final symbolic link is not followed).
        path: OsString,
        /// Full name, e.g. `user.comment`.
        name: OsString,
    },
    /// Set a value.
    Set {
        /// How VALUE is written: auto (`0x` hex, `0s` base64, `"quoted"`
        /// text with `\NNN` escapes, else as given), text (as given), hex, base64.
        #[arg(short = 'e', long, value_enum, default_value = "auto")]
        encoding: Encoding,
        #[command(flatten)]
        image: I,
        /// The file (a final symbolic link is not followed).
        path: OsString,
        /// Full name, e.g. `user.comment`.
        name: OsString,
        /// The value.
        #[arg(allow_hyphen_values = true)]
        value: OsString,
    },
    /// Remove an attribute.
    Rm {
        #[command(flatten)]
        image: I,
        /// The file (a final symbolic link is not followed).
        path: OsString,
        /// Full name.
        name: OsString,
    },
}

impl<I: clap::Args> Args<I> {
    /// The image argument.
    pub(crate) fn image(&self) -> &I {
        match &self.op {
            Op::List { image, .. } | Op::Get { image, .. } | Op::Set { image, .. } | Op::Rm { image, .. } => image,
        }
    }

    /// Whether the command changes the image.
    pub(crate) fn writes(&self) -> bool {
        matches!(self.op, Op::Set { .. } | Op::Rm { .. })
    }
}

/// Runs the command.
pub fn exec<I: clap::Args>(a: &Args<I>, fs: &mut Filesystem) -> CliResult {
    match &a.op {
        Op::List { path, encoding, json, .. } => list(fs, path, *encoding, *json),
        Op::Get { path, name, encoding, json, .. } => {
            let ino = fs.lookup_nofollow(path_bytes(path)).context(|| shown(path))?;
            let v = fs.get_xattr(ino, name.as_bytes()).context(|| format!("{}: {}", shown(path), shown(name)))?;
            let mut out = Out::new();
            match (json, encoding) {
                (true, _) => out.json(&xattr_json(name.as_bytes(), &v))?,
                (false, Some(e)) => out.line(&encode(&v, *e))?,
                (false, None) => out.raw(&v)?,
            }
            out.finish()
        }
        Op::Set { path, name, value, encoding, .. } => {
            let bytes = decode(value, *encoding)?;
            let ino = fs.lookup_nofollow(path_bytes(path)).context(|| shown(path))?;
            fs.set_xattr(ino, name.as_bytes(), &bytes, XattrMode::Any).context(|| format!("{}: setting {}", shown(path), shown(name)))
        }
        Op::Rm { path, name, .. } => {
            let ino = fs.lookup_nofollow(path_bytes(path)).context(|| shown(path))?;
            fs.remove_xattr(ino, name.as_bytes()).context(|| format!("{}: removing {}", shown(path), shown(name)))
        }
    }
}

fn list(fs: &Filesystem, path: &OsString, encoding: Encoding, json: bool) -> CliResult {
    let ino = fs.lookup_nofollow(path_bytes(path)).context(|| shown(path))?;
    let xattrs = fs.xattrs_ino(ino).context(|| shown(path))?;
    let mut out = Out::new();
    if json {
        out.json(&Value::Array(xattrs.iter().map(|x| xattr_json(&x.name, &x.value)).collect()))?;
        return out.finish();
    }
    for x in &xattrs {
        out.name(&x.name)?;
        out.line(&format!("={}", encode(&x.value, encoding)))?;
    }
    out.finish()
}

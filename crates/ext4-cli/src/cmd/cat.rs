//! `ext4 cat IMAGE PATH`: write a file's contents to stdout.

use std::ffi::OsString;
use std::io::Write;

use ext4_fs::Filesystem;

use crate::util::{CliResult, Context, path_bytes, shown};

/// Arguments of `ext4 cat`.
#[derive(clap::Args)]
pub struct Args<I: clap::Args> {
    #[command(flatten)]
    pub(crate) image: I,
    /// The file.
    path: OsString,
}

/// Runs the command.
pub fn exec<I: clap::Args>(a: &Args<I>, fs: &Filesystem) -> CliResult {
    let ino = fs.lookup(path_bytes(&a.path)).context(|| shown(&a.path))?;
    let md = fs.stat(ino).context(|| shown(&a.path))?;
    if md.is_dir() {
        return Err(ext4_fs::Error::IsADirectory(shown(&a.path))).context(|| "cat".into());
    }
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0;
    loop {
        let n = fs.read_at(ino, off, &mut buf).context(|| format!("reading {}", shown(&a.path)))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).context(|| "writing to stdout".into())?;
        off += n as u64;
    }
    out.flush().context(|| "writing to stdout".into())
}

//! `ext4 cat IMAGE PATH`: write a file's contents to stdout.

use std::io::Write;
use std::path::PathBuf;

use crate::util::{CliResult, Context, open_ro, path_bytes};

/// Arguments of `ext4 cat`.
#[derive(clap::Args)]
pub struct Args {
    /// The image or device.
    image: PathBuf,
    /// The file.
    path: String,
}

/// Runs the command.
pub fn run(a: Args) -> CliResult {
    let fs = open_ro(&a.image)?;
    let ino = fs.lookup(path_bytes(&a.path)).context(|| a.path.clone())?;
    let md = fs.stat(ino).context(|| a.path.clone())?;
    if md.is_dir() {
        return Err(ext4_fs::Error::IsADirectory(a.path.clone())).context(|| "cat".into());
    }
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0;
    loop {
        let n = fs.read_at(ino, off, &mut buf).context(|| format!("reading {}", a.path))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).context(|| "writing to stdout".into())?;
        off += n as u64;
    }
    out.flush().context(|| "writing to stdout".into())
}

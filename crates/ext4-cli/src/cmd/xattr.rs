//! `ext4 xattr get|set|list|rm IMAGE PATH [NAME [VALUE]]`.

use std::path::PathBuf;

use ext4_fs::XattrMode;

use crate::util::{CliResult, Context, close, open_ro, open_rw, path_bytes};

/// Arguments of `ext4 xattr`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    op: Op,
}

#[derive(clap::Subcommand)]
enum Op {
    /// List names and values.
    List {
        /// The image or device.
        image: PathBuf,
        /// The file.
        path: String,
    },
    /// Print one value.
    Get {
        /// The image or device.
        image: PathBuf,
        /// The file.
        path: String,
        /// Full name, e.g. `user.comment`.
        name: String,
    },
    /// Set a value.
    Set {
        /// The image or device.
        image: PathBuf,
        /// The file.
        path: String,
        /// Full name, e.g. `user.comment`.
        name: String,
        /// The value.
        value: String,
    },
    /// Remove an attribute.
    Rm {
        /// The image or device.
        image: PathBuf,
        /// The file.
        path: String,
        /// Full name.
        name: String,
    },
}

/// Runs the command.
pub fn run(a: Args) -> CliResult {
    match a.op {
        Op::List { image, path } => {
            let fs = open_ro(&image)?;
            for x in fs.xattrs(path_bytes(&path)).context(|| path.clone())? {
                println!("{}={:?}", String::from_utf8_lossy(&x.name), String::from_utf8_lossy(&x.value));
            }
            Ok(())
        }
        Op::Get { image, path, name } => {
            let fs = open_ro(&image)?;
            let ino = fs.lookup_nofollow(path_bytes(&path)).context(|| path.clone())?;
            let v = fs.get_xattr(ino, name.as_bytes()).context(|| format!("{path}: {name}"))?;
            println!("{}", String::from_utf8_lossy(&v));
            Ok(())
        }
        Op::Set { image, path, name, value } => {
            let mut fs = open_rw(&image)?;
            let ino = fs.lookup_nofollow(path_bytes(&path)).context(|| path.clone())?;
            fs.set_xattr(ino, name.as_bytes(), value.as_bytes(), XattrMode::Any).context(|| format!("{path}: setting {name}"))?;
            close(fs, &image)
        }
        Op::Rm { image, path, name } => {
            let mut fs = open_rw(&image)?;
            let ino = fs.lookup_nofollow(path_bytes(&path)).context(|| path.clone())?;
            fs.remove_xattr(ino, name.as_bytes()).context(|| format!("{path}: removing {name}"))?;
            close(fs, &image)
        }
    }
}

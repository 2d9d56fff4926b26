//! `ext4 xattr get|set|list|rm IMAGE PATH [NAME [VALUE]]`.

use ext4_fs::{Filesystem, XattrMode};

use crate::util::{CliResult, Context, path_bytes};

/// Arguments of `ext4 xattr`.
#[derive(clap::Args)]
pub struct Args<I: clap::Args> {
    #[command(subcommand)]
    op: Op<I>,
}

#[derive(clap::Subcommand)]
enum Op<I: clap::Args> {
    /// List names and values.
    List {
        #[command(flatten)]
        image: I,
        /// The file.
        path: String,
    },
    /// Print one value.
    Get {
        #[command(flatten)]
        image: I,
        /// The file.
        path: String,
        /// Full name, e.g. `user.comment`.
        name: String,
    },
    /// Set a value.
    Set {
        #[command(flatten)]
        image: I,
        /// The file.
        path: String,
        /// Full name, e.g. `user.comment`.
        name: String,
        /// The value.
        value: String,
    },
    /// Remove an attribute.
    Rm {
        #[command(flatten)]
        image: I,
        /// The file.
        path: String,
        /// Full name.
        name: String,
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
        Op::List { path, .. } => {
            for x in fs.xattrs(path_bytes(path)).context(|| path.clone())? {
                println!("{}={:?}", String::from_utf8_lossy(&x.name), String::from_utf8_lossy(&x.value));
            }
            Ok(())
        }
        Op::Get { path, name, .. } => {
            let ino = fs.lookup_nofollow(path_bytes(path)).context(|| path.clone())?;
            let v = fs.get_xattr(ino, name.as_bytes()).context(|| format!("{path}: {name}"))?;
            println!("{}", String::from_utf8_lossy(&v));
            Ok(())
        }
        Op::Set { path, name, value, .. } => {
            let ino = fs.lookup_nofollow(path_bytes(path)).context(|| path.clone())?;
            fs.set_xattr(ino, name.as_bytes(), value.as_bytes(), XattrMode::Any).context(|| format!("{path}: setting {name}"))
        }
        Op::Rm { path, name, .. } => {
            let ino = fs.lookup_nofollow(path_bytes(path)).context(|| path.clone())?;
            fs.remove_xattr(ino, name.as_bytes()).context(|| format!("{path}: removing {name}"))
        }
    }
}

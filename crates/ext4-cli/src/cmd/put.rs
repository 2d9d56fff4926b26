//! `ext4 put [-r] [image-building options] IMAGE SRC... DEST`: copy host
//! files or trees into an image (owners, modes and times as the options of
//! [`crate::build`] set them).

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ext4_fs::Filesystem;
use ext4_fs::populate::CopyOptions;

use crate::util::{CliResult, Context, fail, path_bytes};

/// Arguments of `ext4 put`.
#[derive(clap::Args)]
pub struct Args<I: clap::Args> {
    /// Copy directories recursively.
    #[arg(short = 'r', long)]
    recursive: bool,
    #[command(flatten)]
    build: crate::build::BuildArgs,
    #[command(flatten)]
    pub(crate) image: I,
    /// Host files (and, last, the destination in the image).
    #[arg(required = true, num_args = 2..)]
    paths: Vec<PathBuf>,
}

/// Total bytes of regular files under `p` (for the progress bar).
pub fn total_bytes(p: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if md.is_dir() {
        std::fs::read_dir(p).into_iter().flatten().flatten().map(|e| total_bytes(&e.path())).sum()
    } else if md.is_file() {
        md.len()
    } else {
        0
    }
}

/// Runs the command.
pub fn exec<I: clap::Args>(a: &Args<I>, fs: &mut Filesystem) -> CliResult {
    let (dest, srcs) = a.paths.split_last().expect("at least two paths");
    let dest = path_bytes(dest.as_os_str());
    let dest_dir = fs.metadata(&dest).ok().filter(|m| m.is_dir());
    if srcs.len() > 1 && dest_dir.is_none() {
        return Err(fail(format!("{}: copying several files needs an existing directory", String::from_utf8_lossy(&dest))));
    }
    let build = a.build.parse()?;
    let opts: CopyOptions = build.copy_options();
    let pb = crate::progress::bytes(0, "copying");
    std::thread::scope(|scope| {
        crate::progress::size_in_background(scope, &pb, srcs.to_vec());
        let mut base = 0u64;
        for src in srcs {
            let md = std::fs::symlink_metadata(src).context(|| src.display().to_string())?;
            if md.is_dir() && !a.recursive {
                return Err(fail(format!("{}: is a directory (use -r)", src.display())));
            }
            let (parent, name) = match &dest_dir {
                Some(d) => {
                    let name =
                        src.file_name().map(|n| n.as_bytes().to_vec()).ok_or_else(|| fail(format!("{}: no file name", src.display())))?;
                    (d.ino, name)
                }
                None => {
                    let t = dest.strip_suffix(b"/").unwrap_or(&dest);
                    let (p, n) = match t.iter().rposition(|&c| c == b'/') {
                        Some(i) => (&t[..i], &t[i + 1..]),
                        None => (&b""[..], t),
                    };
                    let parent = fs.lookup(p).context(|| String::from_utf8_lossy(p).into_owned())?;
                    (parent, n.to_vec())
                }
            };
            let mut copied = 0u64;
            let mut progress = |done: u64| {
                copied = done;
                pb.set_position(base + done);
            };
            let top = fs.copy_in(src, parent, &name, &opts, &mut progress).context(|| format!("copying {}", src.display()))?;
            base += copied;
            if build.needs_pass() {
                build.apply(fs, top)?;
            }
        }
        Ok(())
    })?;
    pb.finish_and_clear();
    Ok(())
}

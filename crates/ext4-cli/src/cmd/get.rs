//! `ext4 get [-r] IMAGE PATH DEST`: copy a file or a whole tree out of an
//! image, keeping modes, owners (where permitted), times, symbolic links,
//! hard links (as hard links), device nodes and `user.*` xattrs.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ext4_fs::{FileType, Filesystem, Metadata};
use filetime::FileTime;
use indicatif::ProgressBar;

use crate::util::{CliResult, Context, fail, path_bytes};

/// Arguments of `ext4 get`.
#[derive(clap::Args)]
pub struct Args<I: clap::Args> {
    /// Copy directories recursively.
    #[arg(short = 'r', long)]
    recursive: bool,
    #[command(flatten)]
    pub(crate) image: I,
    /// The file or directory in the image.
    path: String,
    /// Where to put it on the host (an existing directory receives it by name).
    dest: PathBuf,
}

/// Runs the command.
pub fn exec<I: clap::Args>(a: &Args<I>, fs: &Filesystem) -> CliResult {
    let src = path_bytes(&a.path);
    let ino = fs.lookup_nofollow(&src).context(|| a.path.clone())?;
    let md = fs.stat(ino).context(|| a.path.clone())?;
    if md.is_dir() && !a.recursive {
        return Err(fail(format!("{}: is a directory (use -r)", a.path)));
    }
    let mut dest = a.dest.clone();
    if dest.is_dir() && !(md.is_dir() && src.iter().all(|&c| c == b'/')) {
        let name = src.rsplit(|&c| c == b'/').find(|c| !c.is_empty()).unwrap_or(b"root");
        dest = dest.join(OsStr::from_bytes(name));
    }
    let st = fs.statfs();
    let used = (st.blocks - st.free_blocks) * u64::from(st.block_size);
    let mut x = Extractor { fs, links: HashMap::new(), pb: crate::progress::bytes(used, "extracting"), root: is_root(), buf: Vec::new() };
    x.extract(ino, &md, &dest, &a.path)?;
    x.pb.finish_and_clear();
    Ok(())
}

/// Whether we may set owners (only root may give files away).
fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

struct Extractor<'a> {
    fs: &'a Filesystem,
    links: HashMap<u32, PathBuf>,
    pb: ProgressBar,
    root: bool,
    /// The read buffer, reused from file to file (a fresh zeroed megabyte
    /// per file was nearly half of an extraction's time).
    buf: Vec<u8>,
}

impl Extractor<'_> {
    fn extract(&mut self, ino: u32, md: &Metadata, dest: &Path, shown: &str) -> CliResult {
        if md.file_type != FileType::Directory && md.nlink > 1 {
            if let Some(first) = self.links.get(&ino) {
                return std::fs::hard_link(first, dest).context(|| format!("linking {}", dest.display()));
            }
            self.links.insert(ino, dest.to_path_buf());
        }
        match md.file_type {
            FileType::Directory => self.directory(ino, dest, shown)?,
            FileType::Regular => {
                // Attributes through the open file: no path walks.
                let f = self.file(ino, md.size, dest, shown)?;
                return self.attributes(ino, md, dest, shown, Some(&f));
            }
            FileType::Symlink => {
                let t = self.fs.read_link_ino(ino).context(|| shown.to_string())?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&t), dest).context(|| format!("creating {}", dest.display()))?;
            }
            other => special(other, md, dest)?,
        }
        self.attributes(ino, md, dest, shown, None)
    }

    fn directory(&mut self, ino: u32, dest: &Path, shown: &str) -> CliResult {
        match std::fs::create_dir(dest) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dest.is_dir() => {}
            Err(e) => return Err(e).context(|| format!("creating {}", dest.display())),
        }
        for e in self.fs.dir_entries(ino).context(|| format!("listing {shown}"))? {
            if e.name == b"." || e.name == b".." {
                continue;
            }
            let child_shown = format!("{}/{}", shown.trim_end_matches('/'), e.name_lossy());
            let md = self.fs.stat(e.ino).context(|| child_shown.clone())?;
            self.extract(e.ino, &md, &dest.join(OsStr::from_bytes(&e.name)), &child_shown)?;
        }
        Ok(())
    }

    /// Copies file data, leaving all-zero chunks as holes; returns the open file.
    fn file(&mut self, ino: u32, size: u64, dest: &Path, shown: &str) -> CliResult<File> {
        let mut f = File::create(dest).context(|| format!("creating {}", dest.display()))?;
        let cap = usize::try_from(size).unwrap_or(usize::MAX).clamp(1, 1 << 20);
        if self.buf.len() < cap {
            self.buf.resize(cap, 0);
        }
        let buf = &mut self.buf[..cap];
        let mut off = 0u64;
        let mut ends_in_hole = false;
        while off < size {
            let n = self.fs.read_at(ino, off, buf).context(|| format!("reading {shown}"))?;
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            if ext4_fs::populate::is_all_zero(chunk) {
                f.seek(SeekFrom::Current(n as i64)).context(|| dest.display().to_string())?;
                ends_in_hole = true;
            } else {
                f.write_all(chunk).context(|| format!("writing {}", dest.display()))?;
                ends_in_hole = false;
            }
            off += n as u64;
            self.pb.inc(n as u64);
        }
        // Only a trailing hole (or a short read) leaves the size to set.
        if ends_in_hole || off != size {
            f.set_len(size).context(|| format!("writing {}", dest.display()))?;
        }
        Ok(f)
    }

    /// Owner, permissions, xattrs and times, in an order where each survives
    /// the next; through `file` when the destination is open.
    fn attributes(&self, ino: u32, md: &Metadata, dest: &Path, shown: &str, file: Option<&File>) -> CliResult {
        use std::os::unix::fs::PermissionsExt;
        let is_link = md.file_type == FileType::Symlink;
        let owner = || format!("chown {}", dest.display());
        if self.root {
            match file {
                Some(f) => std::os::unix::fs::fchown(f, Some(md.uid), Some(md.gid)).context(owner)?,
                None => std::os::unix::fs::lchown(dest, Some(md.uid), Some(md.gid)).context(owner)?,
            }
        }
        if !is_link {
            let perm = std::fs::Permissions::from_mode(u32::from(md.permissions));
            let chmod = || format!("chmod {}", dest.display());
            match file {
                Some(f) => f.set_permissions(perm).context(chmod)?,
                None => std::fs::set_permissions(dest, perm).context(chmod)?,
            }
            for x in self.fs.xattrs_ino(ino).context(|| shown.to_string())? {
                if x.name.starts_with(b"user.") {
                    let name = OsStr::from_bytes(&x.name);
                    let r = match file {
                        Some(f) => xattr::FileExt::set_xattr(f, name, &x.value),
                        None => xattr::set(dest, name, &x.value),
                    };
                    r.context(|| format!("setting xattrs of {}", dest.display()))?;
                }
            }
        }
        let times = || format!("setting times of {}", dest.display());
        match file {
            Some(f) => {
                let t = std::fs::FileTimes::new().set_accessed(system_time(md.atime)).set_modified(system_time(md.mtime));
                f.set_times(t).context(times)
            }
            None => {
                let at = FileTime::from_unix_time(md.atime.secs, md.atime.nsec);
                let mt = FileTime::from_unix_time(md.mtime.secs, md.mtime.nsec);
                filetime::set_symlink_file_times(dest, at, mt).context(times)
            }
        }
    }
}

/// A timestamp as the host's clock type (before 1970 included).
fn system_time(t: ext4_fs::Timestamp) -> std::time::SystemTime {
    let (epoch, nsec) = (std::time::UNIX_EPOCH, std::time::Duration::from_nanos(u64::from(t.nsec)));
    if t.secs >= 0 {
        epoch + std::time::Duration::from_secs(t.secs as u64) + nsec
    } else {
        epoch - std::time::Duration::from_secs(t.secs.unsigned_abs()) + nsec
    }
}

/// Creates a device node, FIFO or socket.
fn special(ft: FileType, md: &Metadata, dest: &Path) -> CliResult {
    use rustix::fs::{FileType as Ft, Mode, mknodat};
    let kind = match ft {
        FileType::CharDevice => Ft::CharacterDevice,
        FileType::BlockDevice => Ft::BlockDevice,
        FileType::Fifo => Ft::Fifo,
        _ => Ft::Socket,
    };
    let dev = rustix::fs::makedev(md.rdev.0, md.rdev.1);
    mknodat(rustix::fs::CWD, dest, kind, Mode::from_raw_mode(u32::from(md.permissions)), dev)
        .map_err(std::io::Error::from)
        .context(|| format!("creating {}", dest.display()))
}

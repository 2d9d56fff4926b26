//! `ext4 tree IMAGE [PATH]` and `ext4 du IMAGE [PATH...]`: a directory
//! tree drawn as tree(1) draws it, and space used as du(1) counts it.

use std::collections::HashSet;
use std::ffi::OsString;

use ext4_fs::{DirEntry, Filesystem};

use super::attr::child;
use crate::out::{Out, escape};
use crate::util::{CliResult, Context, path_bytes, shown};

/// `ext4 tree [-a] [-L LEVEL] [--noreport] IMAGE [PATH]`.
#[derive(clap::Args)]
pub struct TreeArgs<I: clap::Args> {
    /// Include names that start with a dot.
    #[arg(short = 'a')]
    all: bool,
    /// Descend at most LEVEL directories deep.
    #[arg(short = 'L', value_name = "LEVEL")]
    level: Option<usize>,
    /// Leave out the closing count of directories and files.
    #[arg(long)]
    noreport: bool,
    #[command(flatten)]
    pub(crate) image: I,
    /// The directory (default: the root).
    #[arg(default_value = "/")]
    path: OsString,
}

/// Runs `tree`: names in byte order, symbolic links with their targets;
/// the count includes the top directory, and a link to a directory counts
/// as a directory (as tree 2.x counts them).
pub fn tree<I: clap::Args>(a: &TreeArgs<I>, fs: &Filesystem) -> CliResult {
    let p = path_bytes(&a.path);
    let ino = fs.lookup(&p).context(|| shown(&a.path))?;
    let mut t = Drawing { a, fs, out: Out::new(), dirs: 1, files: 0 };
    t.out.name(&p)?;
    t.out.line("")?;
    if fs.stat(ino).context(|| shown(&a.path))?.is_dir() {
        t.dir(ino, &p, "", 1)?;
    } else {
        (t.dirs, t.files) = (0, 1);
    }
    if !a.noreport {
        let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        t.out.line(&format!("\n{}, {}", plural(t.dirs, "directory", "directories"), plural(t.files, "file", "files")))?;
    }
    t.out.finish()
}

/// One `tree` run.
struct Drawing<'a, I: clap::Args> {
    a: &'a TreeArgs<I>,
    fs: &'a Filesystem,
    out: Out,
    dirs: u64,
    files: u64,
}

impl<I: clap::Args> Drawing<'_, I> {
    /// Draws the entries of directory `ino` (at `path`, `depth` levels down) after `prefix`.
    fn dir(&mut self, ino: u32, path: &[u8], prefix: &str, depth: usize) -> CliResult {
        if self.a.level.is_some_and(|l| depth > l) {
            return Ok(());
        }
        let entries = sorted_entries(self.fs, ino, path, self.a.all)?;
        for (i, e) in entries.iter().enumerate() {
            let last = i + 1 == entries.len();
            self.out.text(prefix)?;
            self.out.text(if last { "└── " } else { "├── " })?;
            self.out.name(&e.name)?;
            let full = child(path, &e.name);
            let md = self.fs.stat(e.ino).context(|| escape(&full).into_owned())?;
            if md.is_symlink() {
                let target = self.fs.read_link_ino(e.ino).context(|| escape(&full).into_owned())?;
                self.out.text(" -> ")?;
                self.out.name(&target)?;
                let to_dir = self.fs.metadata(&full).is_ok_and(|m| m.is_dir());
                *(if to_dir { &mut self.dirs } else { &mut self.files }) += 1;
            } else if md.is_dir() {
                self.dirs += 1;
            } else {
                self.files += 1;
            }
            self.out.line("")?;
            if md.is_dir() {
                // tree(1)'s continuation bar is followed by two no-break spaces.
                let inner = format!("{prefix}{}", if last { "    " } else { "│\u{a0}\u{a0} " });
                self.dir(e.ino, &full, &inner, depth + 1)?;
            }
        }
        Ok(())
    }
}

/// A directory's entries without `.` and `..` (and without dot names unless `all`), in byte order.
fn sorted_entries(fs: &Filesystem, ino: u32, path: &[u8], all: bool) -> CliResult<Vec<DirEntry>> {
    let mut entries = fs.read_dir_ino(ino).context(|| format!("listing {}", escape(path)))?;
    entries.retain(|e| all || !e.name.starts_with(b"."));
    entries.sort_by(|x, y| x.name.cmp(&y.name));
    Ok(entries)
}

/// `ext4 du [-a] [-s] [-b] IMAGE [PATH...]`.
#[derive(clap::Args)]
pub struct DuArgs<I: clap::Args> {
    /// Show files too, not only directories.
    #[arg(short = 'a', long)]
    all: bool,
    /// Show only a total for each argument.
    #[arg(short = 's', long)]
    summarize: bool,
    /// Apparent sizes in bytes (file sizes) instead of space used in KiB.
    #[arg(short = 'b', long)]
    bytes: bool,
    #[command(flatten)]
    pub(crate) image: I,
    /// Files or directories (default: the root).
    paths: Vec<OsString>,
}

/// Runs `du`: space used in 1024-byte units (rounded up) from the blocks
/// each inode holds, a file with several links counted once, directories
/// after their contents, entries in byte order.
pub fn du<I: clap::Args>(a: &DuArgs<I>, fs: &Filesystem) -> CliResult {
    let paths = if a.paths.is_empty() { vec![OsString::from("/")] } else { a.paths.clone() };
    let mut d = Usage { a, fs, out: Out::new(), seen: HashSet::new() };
    for p in &paths {
        let path = path_bytes(p);
        let ino = fs.lookup_nofollow(&path).context(|| shown(p))?;
        let total = d.walk(ino, &path)?;
        if a.summarize || !fs.stat(ino).context(|| shown(p))?.is_dir() && !a.all {
            d.print(total, &path)?;
        }
    }
    d.out.finish()
}

/// One `du` run.
struct Usage<'a, I: clap::Args> {
    a: &'a DuArgs<I>,
    fs: &'a Filesystem,
    out: Out,
    /// Inodes with several links already counted.
    seen: HashSet<u32>,
}

impl<I: clap::Args> Usage<'_, I> {
    /// The bytes of inode `ino` (at `path`) and, for a directory, of everything under it; prints as du does.
    fn walk(&mut self, ino: u32, path: &[u8]) -> CliResult<u64> {
        let md = self.fs.stat(ino).context(|| escape(path).into_owned())?;
        if !md.is_dir() && md.nlink > 1 && !self.seen.insert(ino) {
            return Ok(0);
        }
        let mut total = if self.a.bytes { md.size } else { md.blocks * 512 };
        if !md.is_dir() {
            if self.a.all && !self.a.summarize {
                self.print(total, path)?;
            }
            return Ok(total);
        }
        for e in sorted_entries(self.fs, ino, path, true)? {
            total += self.walk(e.ino, &child(path, &e.name))?;
        }
        if !self.a.summarize {
            self.print(total, path)?;
        }
        Ok(total)
    }

    /// `SIZE<TAB>PATH`.
    fn print(&mut self, bytes: u64, path: &[u8]) -> CliResult {
        let n = if self.a.bytes { bytes } else { bytes.div_ceil(1024) };
        self.out.text(&format!("{n}\t"))?;
        self.out.name(path)?;
        self.out.line("")
    }
}

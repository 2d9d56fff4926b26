//! Small editing commands: `write`, `rm`, `truncate`, `mkdir`, `rmdir`,
//! `mv`, `ln`, `mknod`, `chmod`, `chown`, `touch`.

use std::io::Read;
use std::path::PathBuf;

use ext4_fs::{Error, FileType, Filesystem, NewNode, RenameMode, SetAttr, Timestamp};

use crate::util::{CliResult, Context, fail, parse_mode, path_bytes};

/// `ext4 write IMAGE PATH [TEXT]`: the file's contents become TEXT, the
/// host file given with `--from`, or standard input.
#[derive(clap::Args)]
pub struct WriteArgs<I: clap::Args> {
    /// Read the contents from this host file.
    #[arg(long, value_name = "FILE", conflicts_with = "text")]
    from: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) image: I,
    /// The file in the image (created with mode 0644 if missing).
    path: String,
    /// The new contents (default: standard input).
    text: Option<String>,
}

impl<I: clap::Args> WriteArgs<I> {
    /// Whether the contents come from standard input.
    pub fn reads_stdin(&self) -> bool {
        self.text.is_none() && self.from.is_none()
    }
}

/// Runs `write`.
pub fn write<I: clap::Args>(a: &WriteArgs<I>, fs: &mut Filesystem) -> CliResult {
    let data = match (&a.text, &a.from) {
        (Some(t), _) => t.clone().into_bytes(),
        (None, Some(f)) => std::fs::read(f).context(|| format!("reading {}", f.display()))?,
        (None, None) => {
            let mut data = Vec::new();
            std::io::stdin().read_to_end(&mut data).context(|| "reading standard input".into())?;
            data
        }
    };
    fs.write_file(path_bytes(&a.path), &data).context(|| format!("writing {}", a.path))?;
    Ok(())
}

/// `ext4 rm [-r] [-f] IMAGE PATH...`.
#[derive(clap::Args)]
pub struct RmArgs<I: clap::Args> {
    /// Remove directories and their contents.
    #[arg(short = 'r', long)]
    recursive: bool,
    /// Ignore missing files.
    #[arg(short = 'f', long)]
    force: bool,
    #[command(flatten)]
    pub(crate) image: I,
    /// What to remove.
    #[arg(required = true)]
    paths: Vec<String>,
}

/// Runs `rm`.
pub fn rm<I: clap::Args>(a: &RmArgs<I>, fs: &mut Filesystem) -> CliResult {
    for p in &a.paths {
        match remove(fs, &path_bytes(p), a.recursive) {
            Err(Error::NotFound(_)) if a.force => {}
            r => r.context(|| format!("removing {p}"))?,
        }
    }
    Ok(())
}

/// Removes a file, or a tree with `recursive`.
fn remove(fs: &mut Filesystem, path: &[u8], recursive: bool) -> ext4_fs::Result<()> {
    let md = fs.symlink_metadata(path)?;
    if !md.is_dir() {
        return fs.remove_file(path);
    }
    if !recursive {
        return Err(Error::IsADirectory(String::from_utf8_lossy(path).into_owned()));
    }
    remove_tree(fs, md.ino)?;
    fs.remove_dir(path)
}

/// Empties directory `dir` depth first, by inode (no path re-resolution).
fn remove_tree(fs: &mut Filesystem, dir: u32) -> ext4_fs::Result<()> {
    for e in fs.read_dir_ino(dir)? {
        let md = fs.stat(e.ino)?;
        if md.is_dir() {
            remove_tree(fs, e.ino)?;
            fs.rmdir_in(dir, &e.name)?;
        } else {
            fs.unlink_in(dir, &e.name)?;
        }
    }
    Ok(())
}

/// `ext4 truncate -s SIZE IMAGE PATH`.
#[derive(clap::Args)]
pub struct TruncateArgs<I: clap::Args> {
    /// New size in bytes (K/M/G/T suffixes allowed).
    #[arg(short = 's', long)]
    size: String,
    #[command(flatten)]
    pub(crate) image: I,
    /// The file.
    path: String,
}

/// Runs `truncate`.
pub fn truncate<I: clap::Args>(a: &TruncateArgs<I>, fs: &mut Filesystem) -> CliResult {
    let size = parse_bytes(&a.size)?;
    let ino = fs.lookup(path_bytes(&a.path)).context(|| a.path.clone())?;
    fs.truncate(ino, size).context(|| format!("truncating {}", a.path))
}

/// A byte count with an optional K/M/G/T suffix (powers of 1024).
pub fn parse_bytes(s: &str) -> CliResult<u64> {
    let (num, mult) = match s.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M') => (&s[..s.len() - 1], 1 << 20),
        Some('G') => (&s[..s.len() - 1], 1 << 30),
        Some('T') => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().and_then(|n| n.checked_mul(mult)).ok_or_else(|| fail(format!("invalid size {s:?}")))
}

/// `ext4 mkdir [-p] [-m MODE] IMAGE PATH...`.
#[derive(clap::Args)]
pub struct MkdirArgs<I: clap::Args> {
    /// Create parents as needed; no error if it exists.
    #[arg(short = 'p', long)]
    parents: bool,
    /// Permissions (octal).
    #[arg(short = 'm', long, default_value = "755")]
    mode: String,
    #[command(flatten)]
    pub(crate) image: I,
    /// Directories to create.
    #[arg(required = true)]
    paths: Vec<String>,
}

/// Runs `mkdir`.
pub fn mkdir<I: clap::Args>(a: &MkdirArgs<I>, fs: &mut Filesystem) -> CliResult {
    let mode = parse_mode(&a.mode)?;
    for p in &a.paths {
        let r = if a.parents { fs.create_dir_all(path_bytes(p), mode).map(|_| ()) } else { fs.mkdir(path_bytes(p), mode).map(|_| ()) };
        r.context(|| format!("mkdir {p}"))?;
    }
    Ok(())
}

/// `ext4 rmdir IMAGE PATH...`.
#[derive(clap::Args)]
pub struct RmdirArgs<I: clap::Args> {
    #[command(flatten)]
    pub(crate) image: I,
    /// Empty directories to remove.
    #[arg(required = true)]
    paths: Vec<String>,
}

/// Runs `rmdir`.
pub fn rmdir<I: clap::Args>(a: &RmdirArgs<I>, fs: &mut Filesystem) -> CliResult {
    for p in &a.paths {
        fs.remove_dir(path_bytes(p)).context(|| format!("rmdir {p}"))?;
    }
    Ok(())
}

/// `ext4 mv [-n] [--exchange] IMAGE FROM TO`.
#[derive(clap::Args)]
pub struct MvArgs<I: clap::Args> {
    /// Do not replace an existing target.
    #[arg(short = 'n', long)]
    no_clobber: bool,
    /// Swap FROM and TO.
    #[arg(long, conflicts_with = "no_clobber")]
    exchange: bool,
    /// Treat TO as a plain name even if it is a directory (an empty one is replaced).
    #[arg(short = 'T', long)]
    no_target_directory: bool,
    #[command(flatten)]
    pub(crate) image: I,
    /// Source.
    from: String,
    /// Target (an existing directory receives the source by name).
    to: String,
}

/// Runs `mv`.
pub fn mv<I: clap::Args>(a: &MvArgs<I>, fs: &mut Filesystem) -> CliResult {
    let mut to = path_bytes(&a.to);
    if !a.exchange && !a.no_target_directory && fs.metadata(&to).is_ok_and(|m| m.is_dir()) {
        let name = a.from.trim_end_matches('/').rsplit('/').next().unwrap_or(&a.from);
        to = format!("{}/{name}", a.to.trim_end_matches('/')).into_bytes();
    }
    let mode = if a.exchange {
        RenameMode::Exchange
    } else if a.no_clobber {
        RenameMode::NoReplace
    } else {
        RenameMode::Replace
    };
    fs.rename_with(path_bytes(&a.from), &to, mode).context(|| format!("mv {} {}", a.from, a.to))
}

/// `ext4 ln [-s] IMAGE TARGET LINK`.
#[derive(clap::Args)]
pub struct LnArgs<I: clap::Args> {
    /// Make a symbolic link (TARGET is stored as given).
    #[arg(short = 's', long)]
    symbolic: bool,
    #[command(flatten)]
    pub(crate) image: I,
    /// The existing file (or the symlink's target).
    target: String,
    /// The new name.
    link: String,
}

/// Runs `ln`.
pub fn ln<I: clap::Args>(a: &LnArgs<I>, fs: &mut Filesystem) -> CliResult {
    if a.symbolic {
        fs.symlink(path_bytes(&a.target), path_bytes(&a.link)).context(|| format!("ln -s {} {}", a.target, a.link))?;
    } else {
        fs.hard_link(path_bytes(&a.target), path_bytes(&a.link)).context(|| format!("ln {} {}", a.target, a.link))?;
    }
    Ok(())
}

/// `ext4 mknod [-m MODE] IMAGE PATH TYPE [MAJOR MINOR]`.
#[derive(clap::Args)]
pub struct MknodArgs<I: clap::Args> {
    /// Permissions (octal).
    #[arg(short = 'm', long, default_value = "644")]
    mode: String,
    #[command(flatten)]
    pub(crate) image: I,
    /// The new node.
    path: String,
    /// `p` (FIFO), `s` (socket), `c` (character device) or `b` (block device).
    kind: String,
    /// Major device number (c, b).
    major: Option<u32>,
    /// Minor device number (c, b).
    minor: Option<u32>,
}

/// Runs `mknod`.
pub fn mknod<I: clap::Args>(a: &MknodArgs<I>, fs: &mut Filesystem) -> CliResult {
    let kind = match a.kind.as_str() {
        "p" => FileType::Fifo,
        "s" => FileType::Socket,
        "c" | "u" => FileType::CharDevice,
        "b" => FileType::BlockDevice,
        k => return Err(fail(format!("unknown node type {k:?} (p, s, c or b)"))),
    };
    let dev = matches!(kind, FileType::CharDevice | FileType::BlockDevice);
    let rdev = match (dev, a.major, a.minor) {
        (true, Some(ma), Some(mi)) => (ma, mi),
        (true, _, _) => return Err(fail("devices need MAJOR and MINOR")),
        (false, None, None) => (0, 0),
        (false, _, _) => return Err(fail("only devices take MAJOR and MINOR")),
    };
    let mut node = NewNode::new(kind, parse_mode(&a.mode)?);
    node.rdev = rdev;
    let p = path_bytes(&a.path);
    let (parent, name) = split(&p);
    let parent_ino = fs.lookup(parent).context(|| String::from_utf8_lossy(parent).into_owned())?;
    fs.create_node(parent_ino, name, node, None).context(|| format!("mknod {}", a.path))?;
    Ok(())
}

fn split(p: &[u8]) -> (&[u8], &[u8]) {
    let t = p.strip_suffix(b"/").unwrap_or(p);
    match t.iter().rposition(|&c| c == b'/') {
        Some(i) => (&t[..i.max(1)], &t[i + 1..]),
        None => (b"/", t),
    }
}

/// `ext4 chmod MODE IMAGE PATH...` (a symbolic link is followed, as by
/// chmod(1): Linux keeps a link's own mode at 0777).
#[derive(clap::Args)]
pub struct ChmodArgs<I: clap::Args> {
    /// Permissions (octal).
    mode: String,
    #[command(flatten)]
    pub(crate) image: I,
    /// Files.
    #[arg(required = true)]
    paths: Vec<String>,
}

/// Runs `chmod`.
pub fn chmod<I: clap::Args>(a: &ChmodArgs<I>, fs: &mut Filesystem) -> CliResult {
    let perm = parse_mode(&a.mode)?;
    set_each(fs, &a.paths, true, SetAttr { perm: Some(perm), ..SetAttr::default() }, "chmod")
}

/// `ext4 chown [--no-dereference] UID[:GID] IMAGE PATH...`.
#[derive(clap::Args)]
pub struct ChownArgs<I: clap::Args> {
    /// Change a symbolic link itself instead of the file it points to.
    #[arg(long)]
    no_dereference: bool,
    /// Numeric owner, optionally with `:GID`.
    owner: String,
    #[command(flatten)]
    pub(crate) image: I,
    /// Files.
    #[arg(required = true)]
    paths: Vec<String>,
}

/// Runs `chown`.
pub fn chown<I: clap::Args>(a: &ChownArgs<I>, fs: &mut Filesystem) -> CliResult {
    let (u, g) = match a.owner.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (a.owner.as_str(), None),
    };
    let num = |s: &str| s.parse::<u32>().map_err(|_| fail(format!("invalid id {s:?} (numeric ids only)")));
    let attr = SetAttr {
        uid: if u.is_empty() { None } else { Some(num(u)?) },
        gid: match g {
            Some(g) if !g.is_empty() => Some(num(g)?),
            _ => None,
        },
        ..SetAttr::default()
    };
    set_each(fs, &a.paths, !a.no_dereference, attr, "chown")
}

/// `ext4 touch [-d TIME] IMAGE PATH...`: create empty files or set times.
#[derive(clap::Args)]
pub struct TouchArgs<I: clap::Args> {
    /// The time to set, as seconds since the epoch (`@SECS[.NANOS]` or `SECS`); default now.
    #[arg(short = 'd', long)]
    date: Option<String>,
    #[command(flatten)]
    pub(crate) image: I,
    /// Files.
    #[arg(required = true)]
    paths: Vec<String>,
}

/// Runs `touch`.
pub fn touch<I: clap::Args>(a: &TouchArgs<I>, fs: &mut Filesystem) -> CliResult {
    let t = match &a.date {
        Some(d) => Some(parse_time(d)?),
        None => None,
    };
    for p in &a.paths {
        let pb = path_bytes(p);
        let ino = match fs.lookup(&pb) {
            Ok(i) => i,
            Err(Error::NotFound(_)) => fs.create(&pb, 0o644).context(|| format!("creating {p}"))?,
            Err(e) => return Err(e).context(|| p.clone()),
        };
        let now = t.unwrap_or_else(ext4_fs::now);
        fs.set_attr(ino, SetAttr { atime: Some(now), mtime: Some(now), ..SetAttr::default() }).context(|| format!("touch {p}"))?;
    }
    Ok(())
}

/// Parses `@SECS[.NANOS]` or `SECS[.NANOS]`.
pub fn parse_time(s: &str) -> CliResult<Timestamp> {
    let s = s.trim_start_matches('@');
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().map_err(|_| fail(format!("invalid time {s:?} (seconds since the epoch)")))?;
    let nsec = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        digits.parse::<u32>().map_err(|_| fail(format!("invalid fraction in {s:?}")))?
    };
    Ok(Timestamp { secs, nsec })
}

fn set_each(fs: &mut Filesystem, paths: &[String], follow: bool, attr: SetAttr, what: &str) -> CliResult {
    for p in paths {
        let ino = if follow { fs.lookup(path_bytes(p)) } else { fs.lookup_nofollow(path_bytes(p)) }.context(|| p.clone())?;
        fs.set_attr(ino, attr).context(|| format!("{what} {p}"))?;
    }
    Ok(())
}

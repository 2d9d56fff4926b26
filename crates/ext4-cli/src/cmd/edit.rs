//! Small editing commands: `write`, `rm`, `truncate`, `mkdir`, `rmdir`,
//! `mv`, `ln`, `mknod`, `chmod`, `chown`, `touch`.

use std::io::Read;
use std::path::PathBuf;

use ext4_fs::{Error, FileType, Filesystem, NewNode, RenameMode, SetAttr, Timestamp};

use crate::util::{CliResult, Context, close, fail, open_rw, parse_mode, path_bytes};

/// `ext4 write IMAGE PATH`: the file's contents become standard input.
#[derive(clap::Args)]
pub struct WriteArgs {
    /// The image or device.
    image: PathBuf,
    /// The file in the image (created with mode 0644 if missing).
    path: String,
}

/// Runs `write`.
pub fn write(a: WriteArgs) -> CliResult {
    let mut fs = open_rw(&a.image)?;
    let mut data = Vec::new();
    std::io::stdin().read_to_end(&mut data).context(|| "reading standard input".into())?;
    fs.write_file(path_bytes(&a.path), &data).context(|| format!("writing {}", a.path))?;
    close(fs, &a.image)
}

/// `ext4 rm [-r] [-f] IMAGE PATH...`.
#[derive(clap::Args)]
pub struct RmArgs {
    /// Remove directories and their contents.
    #[arg(short = 'r', long)]
    recursive: bool,
    /// Ignore missing files.
    #[arg(short = 'f', long)]
    force: bool,
    /// The image or device.
    image: PathBuf,
    /// What to remove.
    #[arg(required = true)]
    paths: Vec<String>,
}

/// Runs `rm`.
pub fn rm(a: RmArgs) -> CliResult {
    let mut fs = open_rw(&a.image)?;
    for p in &a.paths {
        let r = remove(&mut fs, &path_bytes(p), a.recursive);
        match r {
            Err(Error::NotFound(_)) if a.force => {}
            r => r.context(|| format!("removing {p}"))?,
        }
    }
    close(fs, &a.image)
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
pub struct TruncateArgs {
    /// New size in bytes (K/M/G/T suffixes allowed).
    #[arg(short = 's', long)]
    size: String,
    /// The image or device.
    image: PathBuf,
    /// The file.
    path: String,
}

/// Runs `truncate`.
pub fn truncate(a: TruncateArgs) -> CliResult {
    let size = parse_bytes(&a.size)?;
    let mut fs = open_rw(&a.image)?;
    let ino = fs.lookup(path_bytes(&a.path)).context(|| a.path.clone())?;
    fs.truncate(ino, size).context(|| format!("truncating {}", a.path))?;
    close(fs, &a.image)
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
pub struct MkdirArgs {
    /// Create parents as needed; no error if it exists.
    #[arg(short = 'p', long)]
    parents: bool,
    /// Permissions (octal).
    #[arg(short = 'm', long, default_value = "755")]
    mode: String,
    /// The image or device.
    image: PathBuf,
    /// Directories to create.
    #[arg(required = true)]
    paths: Vec<String>,
}

/// Runs `mkdir`.
pub fn mkdir(a: MkdirArgs) -> CliResult {
    let mode = parse_mode(&a.mode)?;
    let mut fs = open_rw(&a.image)?;
    for p in &a.paths {
        let r = if a.parents { fs.create_dir_all(path_bytes(p), mode).map(|_| ()) } else { fs.mkdir(path_bytes(p), mode).map(|_| ()) };
        r.context(|| format!("mkdir {p}"))?;
    }
    close(fs, &a.image)
}

/// `ext4 rmdir IMAGE PATH...`.
#[derive(clap::Args)]
pub struct RmdirArgs {
    /// The image or device.
    image: PathBuf,
    /// Empty directories to remove.
    #[arg(required = true)]
    paths: Vec<String>,
}

/// Runs `rmdir`.
pub fn rmdir(a: RmdirArgs) -> CliResult {
    let mut fs = open_rw(&a.image)?;
    for p in &a.paths {
        fs.remove_dir(path_bytes(p)).context(|| format!("rmdir {p}"))?;
    }
    close(fs, &a.image)
}

/// `ext4 mv [-n] [--exchange] IMAGE FROM TO`.
#[derive(clap::Args)]
pub struct MvArgs {
    /// Do not replace an existing target.
    #[arg(short = 'n', long)]
    no_clobber: bool,
    /// Swap FROM and TO.
    #[arg(long, conflicts_with = "no_clobber")]
    exchange: bool,
    /// The image or device.
    image: PathBuf,
    /// Source.
    from: String,
    /// Target (an existing directory receives the source by name).
    to: String,
}

/// Runs `mv`.
pub fn mv(a: MvArgs) -> CliResult {
    let mut fs = open_rw(&a.image)?;
    let mut to = path_bytes(&a.to);
    if !a.exchange && fs.metadata(&to).is_ok_and(|m| m.is_dir()) {
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
    fs.rename_with(path_bytes(&a.from), &to, mode).context(|| format!("mv {} {}", a.from, a.to))?;
    close(fs, &a.image)
}

/// `ext4 ln [-s] IMAGE TARGET LINK`.
#[derive(clap::Args)]
pub struct LnArgs {
    /// Make a symbolic link (TARGET is stored as given).
    #[arg(short = 's', long)]
    symbolic: bool,
    /// The image or device.
    image: PathBuf,
    /// The existing file (or the symlink's target).
    target: String,
    /// The new name.
    link: String,
}

/// Runs `ln`.
pub fn ln(a: LnArgs) -> CliResult {
    let mut fs = open_rw(&a.image)?;
    if a.symbolic {
        fs.symlink(path_bytes(&a.target), path_bytes(&a.link)).context(|| format!("ln -s {} {}", a.target, a.link))?;
    } else {
        fs.hard_link(path_bytes(&a.target), path_bytes(&a.link)).context(|| format!("ln {} {}", a.target, a.link))?;
    }
    close(fs, &a.image)
}

/// `ext4 mknod [-m MODE] IMAGE PATH TYPE [MAJOR MINOR]`.
#[derive(clap::Args)]
pub struct MknodArgs {
    /// Permissions (octal).
    #[arg(short = 'm', long, default_value = "644")]
    mode: String,
    /// The image or device.
    image: PathBuf,
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
pub fn mknod(a: MknodArgs) -> CliResult {
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
    let mut fs = open_rw(&a.image)?;
    let p = path_bytes(&a.path);
    let (parent, name) = split(&p);
    let parent_ino = fs.lookup(parent).context(|| String::from_utf8_lossy(parent).into_owned())?;
    fs.create_node(parent_ino, name, node, None).context(|| format!("mknod {}", a.path))?;
    close(fs, &a.image)
}

fn split(p: &[u8]) -> (&[u8], &[u8]) {
    let t = p.strip_suffix(b"/").unwrap_or(p);
    match t.iter().rposition(|&c| c == b'/') {
        Some(i) => (&t[..i.max(1)], &t[i + 1..]),
        None => (b"/", t),
    }
}

/// `ext4 chmod MODE IMAGE PATH...`.
#[derive(clap::Args)]
pub struct ChmodArgs {
    /// Permissions (octal).
    mode: String,
    /// The image or device.
    image: PathBuf,
    /// Files.
    #[arg(required = true)]
    paths: Vec<String>,
}

/// Runs `chmod`.
pub fn chmod(a: ChmodArgs) -> CliResult {
    let perm = parse_mode(&a.mode)?;
    set_each(&a.image, &a.paths, SetAttr { perm: Some(perm), ..SetAttr::default() }, "chmod")
}

/// `ext4 chown UID[:GID] IMAGE PATH...`.
#[derive(clap::Args)]
pub struct ChownArgs {
    /// Numeric owner, optionally with `:GID`.
    owner: String,
    /// The image or device.
    image: PathBuf,
    /// Files.
    #[arg(required = true)]
    paths: Vec<String>,
}

/// Runs `chown`.
pub fn chown(a: ChownArgs) -> CliResult {
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
    set_each(&a.image, &a.paths, attr, "chown")
}

/// `ext4 touch [-d TIME] IMAGE PATH...`: create empty files or set times.
#[derive(clap::Args)]
pub struct TouchArgs {
    /// The time to set, as seconds since the epoch (`@SECS[.NANOS]` or `SECS`); default now.
    #[arg(short = 'd', long)]
    date: Option<String>,
    /// The image or device.
    image: PathBuf,
    /// Files.
    #[arg(required = true)]
    paths: Vec<String>,
}

/// Runs `touch`.
pub fn touch(a: TouchArgs) -> CliResult {
    let t = match &a.date {
        Some(d) => Some(parse_time(d)?),
        None => None,
    };
    let mut fs = open_rw(&a.image)?;
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
    close(fs, &a.image)
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

fn set_each(image: &PathBuf, paths: &[String], attr: SetAttr, what: &str) -> CliResult {
    let mut fs = open_rw(image)?;
    for p in paths {
        let ino = fs.lookup_nofollow(path_bytes(p)).context(|| p.clone())?;
        fs.set_attr(ino, attr).context(|| format!("{what} {p}"))?;
    }
    close(fs, image)
}

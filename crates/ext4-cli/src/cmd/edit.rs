//! Small editing commands: `write`, `rm`, `truncate`, `mkdir`, `rmdir`,
//! `mv`, `ln`, `mknod`, `chmod`, `chown`, `touch`.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use ext4_fs::{Error, FileType, Filesystem, NewNode, RenameMode, SetAttr};

use crate::util::{CliResult, Context, fail, parse_mode, path_bytes, shown};

/// `ext4 write IMAGE PATH [TEXT]`: the file's contents become TEXT, the
/// host file given with `--from`, or standard input.
#[derive(clap::Args)]
pub struct WriteArgs<I: clap::Args> {
    /// Read the contents from this host file.
    #[arg(long, value_name = "FILE", conflicts_with = "text")]
    from: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) image: I,
    /// The file in the image (created with mode 0666 less the umask if missing).
    path: OsString,
    /// The new contents, as bytes (default: standard input).
    text: Option<OsString>,
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
        (Some(t), _) => t.as_bytes().to_vec(),
        (None, Some(f)) => std::fs::read(f).context(|| format!("reading {}", f.display()))?,
        (None, None) => {
            let mut data = Vec::new();
            std::io::stdin().read_to_end(&mut data).context(|| "reading standard input".into())?;
            data
        }
    };
    // As a shell's `>`: open with O_CREAT|O_TRUNC, then write.
    let writing = || format!("writing {}", shown(&a.path));
    let (ino, created) = open_or_create(fs, &path_bytes(&a.path)).context(writing)?;
    if !created {
        fs.truncate(ino, 0).context(writing)?;
    }
    fs.write_at(ino, 0, &data).context(writing)?;
    Ok(())
}

/// Opens `path` as `open(2)` with `O_CREAT` does: an existing file (through
/// symbolic links), else a new file with 0666 less the umask, made where
/// the path leads, at the target of a dangling symbolic link too. Returns
/// the inode and whether it is new.
fn open_or_create(fs: &mut Filesystem, path: &[u8]) -> ext4_fs::Result<(u32, bool)> {
    let mut path = path.to_vec();
    for _ in 0..=ext4_fs::MAX_SYMLINK_HOPS {
        match fs.lookup(&path) {
            Ok(ino) => return Ok((ino, false)),
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let Ok(md) = fs.symlink_metadata(&path) else {
            return Ok((fs.create(&path, NEW_FILE_MODE)?, true));
        };
        if !md.is_symlink() {
            return Err(Error::NotFound(String::from_utf8_lossy(&path).into_owned()));
        }
        // A dangling link: the file is made at its target, relative to the link's directory.
        let target = fs.read_link(&path)?;
        path = if target.first() == Some(&b'/') { target } else { [split(&path).0, b"/", &target].concat() };
    }
    Err(Error::SymlinkLoop(String::from_utf8_lossy(&path).into_owned()))
}

/// The mode new files ask for (`open(2)` from a shell or `touch`); the umask applies.
const NEW_FILE_MODE: u16 = 0o666;
/// The mode new directories ask for (`mkdir` without `-m`); the umask applies.
const NEW_DIR_MODE: u16 = 0o777;

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
    paths: Vec<OsString>,
}

/// Runs `rm`.
pub fn rm<I: clap::Args>(a: &RmArgs<I>, fs: &mut Filesystem) -> CliResult {
    for p in &a.paths {
        match remove(fs, &path_bytes(p), a.recursive) {
            Err(Error::NotFound(_)) if a.force => {}
            r => r.context(|| format!("removing {}", shown(p)))?,
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
    path: OsString,
}

/// Runs `truncate`.
pub fn truncate<I: clap::Args>(a: &TruncateArgs<I>, fs: &mut Filesystem) -> CliResult {
    let size = parse_bytes(&a.size)?;
    let ino = fs.lookup(path_bytes(&a.path)).context(|| shown(&a.path))?;
    fs.truncate(ino, size).context(|| format!("truncating {}", shown(&a.path)))
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

/// `ext4 mkdir [-p] [-m MODE] IMAGE PATH...`, as GNU mkdir: without `-m` a
/// directory gets 0777 less the umask; `-m` sets the mode of the last
/// component only, parents made by `-p` get 0777 less the umask, plus
/// owner write and search.
#[derive(clap::Args)]
pub struct MkdirArgs<I: clap::Args> {
    /// Create parents as needed; no error if it exists.
    #[arg(short = 'p', long)]
    parents: bool,
    /// Permissions (octal; the umask does not apply).
    #[arg(short = 'm', long)]
    mode: Option<String>,
    #[command(flatten)]
    pub(crate) image: I,
    /// Directories to create.
    #[arg(required = true)]
    paths: Vec<OsString>,
}

/// Runs `mkdir`.
pub fn mkdir<I: clap::Args>(a: &MkdirArgs<I>, fs: &mut Filesystem) -> CliResult {
    let mode = a.mode.as_deref().map(OctalMode::parse).transpose()?;
    for p in &a.paths {
        let pb = path_bytes(p);
        if a.parents {
            make_parents(fs, &pb).context(|| format!("mkdir {}", shown(p)))?;
            if fs.metadata(&pb).is_ok_and(|m| m.is_dir()) {
                continue;
            }
        }
        let ino = fs.mkdir(&pb, NEW_DIR_MODE).context(|| format!("mkdir {}", shown(p)))?;
        if let Some(m) = mode {
            m.apply(fs, ino).context(|| format!("mkdir {}", shown(p)))?;
        }
    }
    Ok(())
}

/// Makes the missing parents of `path` (not `path` itself) as `mkdir -p`
/// does: 0777 less the umask, with owner write and search always kept.
fn make_parents(fs: &mut Filesystem, path: &[u8]) -> ext4_fs::Result<()> {
    let caller = fs.caller().clone();
    fs.set_caller(ext4_fs::Caller { umask: caller.umask & !0o300, ..caller.clone() });
    let r = make_parents_as_set(fs, path);
    fs.set_caller(caller);
    r
}

fn make_parents_as_set(fs: &mut Filesystem, path: &[u8]) -> ext4_fs::Result<()> {
    let trimmed = path.strip_suffix(b"/").unwrap_or(path);
    for (i, _) in trimmed.iter().enumerate().filter(|&(i, &c)| c == b'/' && i > 0) {
        let prefix = &trimmed[..i];
        match fs.metadata(prefix) {
            Ok(_) => {}
            Err(Error::NotFound(_)) => {
                fs.mkdir(prefix, NEW_DIR_MODE)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// An octal `-m MODE` of GNU mkdir and mknod: the bits it sets, and the bits
/// it speaks for (with at most four digits, a setuid or setgid bit it leaves
/// out is left as the kernel made it, as GNU's `mode_compile` decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OctalMode {
    bits: u16,
    mentioned: u16,
}

impl OctalMode {
    fn parse(s: &str) -> CliResult<Self> {
        let bits = parse_mode(s)?;
        let digits = s.trim_start_matches("0o").len();
        let mentioned = if digits < 5 { 0o1777 | (bits & 0o6000) } else { 0o7777 };
        Ok(Self { bits, mentioned })
    }

    /// Gives the new inode `ino` the mode asked for where it differs.
    fn apply(self, fs: &mut Filesystem, ino: u32) -> ext4_fs::Result<()> {
        let made = fs.stat(ino)?.permissions;
        let want = (made & !self.mentioned) | (self.bits & self.mentioned);
        if want != made {
            fs.set_attr(ino, SetAttr { perm: Some(want), ..SetAttr::default() })?;
        }
        Ok(())
    }
}

/// `ext4 rmdir IMAGE PATH...`.
#[derive(clap::Args)]
pub struct RmdirArgs<I: clap::Args> {
    #[command(flatten)]
    pub(crate) image: I,
    /// Empty directories to remove.
    #[arg(required = true)]
    paths: Vec<OsString>,
}

/// Runs `rmdir`.
pub fn rmdir<I: clap::Args>(a: &RmdirArgs<I>, fs: &mut Filesystem) -> CliResult {
    for p in &a.paths {
        fs.remove_dir(path_bytes(p)).context(|| format!("rmdir {}", shown(p)))?;
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
    from: OsString,
    /// Target (an existing directory receives the source by name).
    to: OsString,
}

/// Runs `mv`.
pub fn mv<I: clap::Args>(a: &MvArgs<I>, fs: &mut Filesystem) -> CliResult {
    let mut to = path_bytes(&a.to);
    if !a.exchange && !a.no_target_directory && fs.metadata(&to).is_ok_and(|m| m.is_dir()) {
        let from = path_bytes(&a.from);
        let name = split(&from).1.to_vec();
        to = [trim_slashes(&to), b"/", &name].concat();
    }
    let mode = if a.exchange {
        RenameMode::Exchange
    } else if a.no_clobber {
        RenameMode::NoReplace
    } else {
        RenameMode::Replace
    };
    fs.rename_with(path_bytes(&a.from), &to, mode).context(|| format!("mv {} {}", shown(&a.from), shown(&a.to)))
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
    target: OsString,
    /// The new name.
    link: OsString,
}

/// Runs `ln`.
pub fn ln<I: clap::Args>(a: &LnArgs<I>, fs: &mut Filesystem) -> CliResult {
    if a.symbolic {
        fs.symlink(path_bytes(&a.target), path_bytes(&a.link)).context(|| format!("ln -s {} {}", shown(&a.target), shown(&a.link)))?;
    } else {
        fs.hard_link(path_bytes(&a.target), path_bytes(&a.link)).context(|| format!("ln {} {}", shown(&a.target), shown(&a.link)))?;
    }
    Ok(())
}

/// `ext4 mknod [-m MODE] IMAGE PATH TYPE [MAJOR MINOR]`, as GNU mknod:
/// 0666 less the umask, or exactly MODE.
#[derive(clap::Args)]
pub struct MknodArgs<I: clap::Args> {
    /// Permissions (octal, at most 777; the umask does not apply).
    #[arg(short = 'm', long)]
    mode: Option<String>,
    #[command(flatten)]
    pub(crate) image: I,
    /// The new node.
    path: OsString,
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
    let mode = a.mode.as_deref().map(OctalMode::parse).transpose()?;
    if mode.is_some_and(|m| m.bits > 0o777) {
        return Err(fail("mode must specify only file permission bits"));
    }
    let mut node = NewNode::new(kind, NEW_FILE_MODE);
    node.rdev = rdev;
    let p = path_bytes(&a.path);
    let (parent, name) = split(&p);
    let parent_ino = fs.lookup(parent).context(|| String::from_utf8_lossy(parent).into_owned())?;
    let ino = fs.create_node(parent_ino, name, node, None).context(|| format!("mknod {}", shown(&a.path)))?;
    if let Some(m) = mode {
        m.apply(fs, ino).context(|| format!("mknod {}", shown(&a.path)))?;
    }
    Ok(())
}

/// `p` without trailing slashes (`/` stays `/`).
fn trim_slashes(p: &[u8]) -> &[u8] {
    let end = p.iter().rposition(|&c| c != b'/').map_or(0, |i| i + 1);
    &p[..end]
}

/// A path's parent and last name.
fn split(p: &[u8]) -> (&[u8], &[u8]) {
    let t = p.strip_suffix(b"/").unwrap_or(p);
    match t.iter().rposition(|&c| c == b'/') {
        Some(i) => (&t[..i.max(1)], &t[i + 1..]),
        None => (b"/", t),
    }
}

/// `ext4 chmod IMAGE MODE PATH...` (a symbolic link is followed, as by
/// chmod(1): Linux keeps a link's own mode at 0777).
#[derive(clap::Args)]
pub struct ChmodArgs<I: clap::Args> {
    #[command(flatten)]
    pub(crate) image: I,
    /// Permissions (octal).
    mode: String,
    /// Files.
    #[arg(required = true)]
    paths: Vec<OsString>,
}

/// Runs `chmod`.
pub fn chmod<I: clap::Args>(a: &ChmodArgs<I>, fs: &mut Filesystem) -> CliResult {
    let perm = parse_mode(&a.mode)?;
    set_each(fs, &a.paths, true, SetAttr { perm: Some(perm), ..SetAttr::default() }, "chmod")
}

/// `ext4 chown [--no-dereference] IMAGE UID[:GID] PATH...`.
#[derive(clap::Args)]
pub struct ChownArgs<I: clap::Args> {
    /// Change a symbolic link itself instead of the file it points to.
    #[arg(long)]
    no_dereference: bool,
    #[command(flatten)]
    pub(crate) image: I,
    /// Numeric owner, optionally with `:GID` (`:GID` alone changes the group).
    owner: String,
    /// Files.
    #[arg(required = true)]
    paths: Vec<OsString>,
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

/// `ext4 touch [-h] [-d TIME] IMAGE PATH...`: create empty files (0666
/// less the umask) or set times, as GNU touch.
#[derive(clap::Args)]
#[command(disable_help_flag = true)]
pub struct TouchArgs<I: clap::Args> {
    /// Print help (`-h` is `--no-dereference`, as in GNU touch).
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// The time to set: `@SECS[.FRACTION]` (negative ones too) or ISO 8601
    /// (`2024-05-01T12:00:00Z`, UTC unless a zone is given); default now.
    #[arg(short = 'd', long, allow_hyphen_values = true)]
    date: Option<String>,
    /// Change a symbolic link's own times (creates nothing).
    #[arg(short = 'h', long)]
    no_dereference: bool,
    #[command(flatten)]
    pub(crate) image: I,
    /// Files.
    #[arg(required = true)]
    paths: Vec<OsString>,
}

/// Runs `touch`.
pub fn touch<I: clap::Args>(a: &TouchArgs<I>, fs: &mut Filesystem) -> CliResult {
    let t = match &a.date {
        Some(d) => Some(crate::time::parse(d)?),
        None => None,
    };
    for p in &a.paths {
        let pb = path_bytes(p);
        let found = if a.no_dereference { fs.lookup_nofollow(&pb) } else { open_or_create(fs, &pb).map(|(ino, _)| ino) };
        let ino = found.context(|| format!("touch {}", shown(p)))?;
        let now = t.unwrap_or_else(ext4_fs::now);
        fs.set_attr(ino, SetAttr { atime: Some(now), mtime: Some(now), ..SetAttr::default() }).context(|| format!("touch {}", shown(p)))?;
    }
    Ok(())
}

fn set_each(fs: &mut Filesystem, paths: &[OsString], follow: bool, attr: SetAttr, what: &str) -> CliResult {
    for p in paths {
        let ino = if follow { fs.lookup(path_bytes(p)) } else { fs.lookup_nofollow(path_bytes(p)) }.context(|| shown(p))?;
        fs.set_attr(ino, attr).context(|| format!("{what} {}", shown(p)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_modes_speak_for_the_bits_gnu_lets_them() {
        let m = |s: &str| OctalMode::parse(s).map(|m| (m.bits, m.mentioned)).ok();
        assert_eq!(m("700"), Some((0o700, 0o1777)));
        assert_eq!(m("0700"), Some((0o700, 0o1777)));
        assert_eq!(m("2700"), Some((0o2700, 0o3777)));
        assert_eq!(m("00700"), Some((0o700, 0o7777)));
        assert_eq!(m("17777"), None);
    }
}

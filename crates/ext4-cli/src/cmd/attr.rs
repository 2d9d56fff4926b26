//! `ext4 chattr IMAGE MODE PATH...` and `ext4 lsattr IMAGE [PATH...]`:
//! inode flags as chattr(1) and lsattr(1) of e2fsprogs name and show them.

use std::ffi::OsString;

use ext4_fs::{Filesystem, InodeFlags, USER_SETTABLE_FLAGS};
use serde_json::json;

use crate::out::{Out, json_name};
use crate::util::{CliResult, Context, fail, path_bytes, shown};

/// Every flag lsattr shows, in its column order, with its letter.
pub const FLAGS: [(InodeFlags, char); 22] = [
    (InodeFlags::SECRM, 's'),
    (InodeFlags::UNRM, 'u'),
    (InodeFlags::SYNC, 'S'),
    (InodeFlags::DIRSYNC, 'D'),
    (InodeFlags::IMMUTABLE, 'i'),
    (InodeFlags::APPEND, 'a'),
    (InodeFlags::NODUMP, 'd'),
    (InodeFlags::NOATIME, 'A'),
    (InodeFlags::COMPR, 'c'),
    (InodeFlags::ENCRYPT, 'E'),
    (InodeFlags::JOURNAL_DATA, 'j'),
    (InodeFlags::INDEX, 'I'),
    (InodeFlags::NOTAIL, 't'),
    (InodeFlags::TOPDIR, 'T'),
    (InodeFlags::EXTENTS, 'e'),
    (InodeFlags::from_bits_retain(0x0080_0000), 'C'), // FS_NOCOW_FL
    (InodeFlags::DAX, 'x'),
    (InodeFlags::CASEFOLD, 'F'),
    (InodeFlags::INLINE_DATA, 'N'),
    (InodeFlags::PROJINHERIT, 'P'),
    (InodeFlags::VERITY, 'V'),
    (InodeFlags::from_bits_retain(0x0000_0400), 'm'), // FS_NOCOMP_FL
];

/// The flags the kernel shows through `FS_IOC_GETFLAGS` (`EXT4_FL_USER_VISIBLE`).
const USER_VISIBLE: u32 = 0x725B_DFFF;

/// `ext4 chattr [-R] IMAGE MODE PATH...`.
#[derive(clap::Args)]
pub struct ChattrArgs<I: clap::Args> {
    /// Change directories and their contents.
    #[arg(short = 'R')]
    recursive: bool,
    /// Print each change.
    #[arg(short = 'V')]
    verbose: bool,
    #[command(flatten)]
    pub(crate) image: I,
    /// `+LETTERS` adds, `-LETTERS` removes, `=LETTERS` sets exactly (letters
    /// as lsattr shows them; settable: s u S D i a d A t T P).
    #[arg(allow_hyphen_values = true)]
    mode: String,
    /// Files.
    #[arg(required = true)]
    paths: Vec<OsString>,
}

/// What a chattr MODE asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FlagChange {
    add: InodeFlags,
    remove: InodeFlags,
    set: Option<InodeFlags>,
}

impl FlagChange {
    /// Parses `+ai`, `-d`, `=A` (several may follow each other: `+a-d`).
    fn parse(s: &str) -> CliResult<Self> {
        let mut c = FlagChange { add: InodeFlags::empty(), remove: InodeFlags::empty(), set: None };
        let mut op = None;
        for ch in s.chars() {
            match ch {
                '+' | '-' | '=' => {
                    op = Some(ch);
                    if ch == '=' {
                        c.set.get_or_insert(InodeFlags::empty());
                    }
                }
                letter => {
                    let flag = FLAGS
                        .iter()
                        .find(|(_, l)| *l == letter)
                        .map(|(f, _)| *f)
                        .ok_or_else(|| fail(format!("chattr: unknown flag {letter:?}")))?;
                    if !USER_SETTABLE_FLAGS.contains(flag) {
                        return Err(fail(format!(
                            "chattr: flag {letter:?} cannot be changed by this tool (settable: s u S D i a d A t T P)"
                        )));
                    }
                    match op {
                        Some('+') => c.add |= flag,
                        Some('-') => c.remove |= flag,
                        Some('=') => *c.set.get_or_insert(InodeFlags::empty()) |= flag,
                        _ => return Err(fail(format!("chattr: {s:?} must start with +, - or ="))),
                    }
                }
            }
        }
        if op.is_none() {
            return Err(fail(format!("chattr: {s:?} must start with +, - or =")));
        }
        Ok(c)
    }

    /// The user-settable flags after the change.
    fn apply(self, old: InodeFlags) -> InodeFlags {
        let base = self.set.unwrap_or(old & USER_SETTABLE_FLAGS);
        (base | self.add) - self.remove
    }
}

/// Runs `chattr`.
pub fn chattr<I: clap::Args>(a: &ChattrArgs<I>, fs: &mut Filesystem) -> CliResult {
    let change = FlagChange::parse(&a.mode)?;
    let mut out = Out::new();
    for p in &a.paths {
        let path = path_bytes(p);
        let ino = fs.lookup_nofollow(&path).context(|| shown(p))?;
        let mut todo = vec![(ino, path)];
        while let Some((ino, path)) = todo.pop() {
            let md = fs.stat(ino).context(|| shown(p))?;
            let new = change.apply(md.flags);
            fs.set_flags(ino, new).context(|| format!("chattr {}", crate::out::escape(&path)))?;
            if a.verbose {
                out.text(&format!("Flags of {} set as ", crate::out::escape(&path)))?;
                out.line(&columns(fs.stat(ino).context(|| shown(p))?.flags))?;
            }
            if a.recursive && md.is_dir() {
                for e in fs.read_dir_ino(ino).context(|| shown(p))?.into_iter().rev() {
                    if fs.stat(e.ino).is_ok_and(|m| !m.is_symlink()) {
                        todo.push((e.ino, child(&path, &e.name)));
                    }
                }
            }
        }
    }
    out.finish()
}

/// `ext4 lsattr [-R] [-a] [-d] [-p] [--json] IMAGE [PATH...]`.
#[derive(clap::Args)]
pub struct LsattrArgs<I: clap::Args> {
    /// List subdirectories' contents too.
    #[arg(short = 'R')]
    recursive: bool,
    /// Include names that start with a dot.
    #[arg(short = 'a')]
    all: bool,
    /// List a directory itself, not its contents.
    #[arg(short = 'd')]
    directory: bool,
    /// Show the project id.
    #[arg(short = 'p')]
    project: bool,
    /// Print JSON: one object a file with `path`, `flags`, `attributes`, `project`.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pub(crate) image: I,
    /// Files or directories (default: the root).
    paths: Vec<OsString>,
}

/// Runs `lsattr`.
pub fn lsattr<I: clap::Args>(a: &LsattrArgs<I>, fs: &Filesystem) -> CliResult {
    let paths = if a.paths.is_empty() { vec![OsString::from("/")] } else { a.paths.clone() };
    let mut lister = Lister { a, fs, out: Out::new(), json: Vec::new() };
    for p in &paths {
        let path = path_bytes(p);
        let ino = fs.lookup_nofollow(&path).context(|| shown(p))?;
        let md = fs.stat(ino).context(|| shown(p))?;
        if md.is_dir() && !a.directory {
            lister.dir(ino, &path)?;
        } else {
            lister.one(ino, &path)?;
        }
    }
    if a.json {
        let list = std::mem::take(&mut lister.json);
        lister.out.json(&serde_json::Value::Array(list))?;
    }
    lister.out.finish()
}

/// The state of one `lsattr`.
struct Lister<'a, I: clap::Args> {
    a: &'a LsattrArgs<I>,
    fs: &'a Filesystem,
    out: Out,
    json: Vec<serde_json::Value>,
}

impl<I: clap::Args> Lister<'_, I> {
    /// One line: `[PROJECT ]FLAGS PATH`.
    fn one(&mut self, ino: u32, path: &[u8]) -> CliResult {
        let md = self.fs.stat(ino).context(|| crate::out::escape(path).into_owned())?;
        let flags = md.flags & InodeFlags::from_bits_retain(USER_VISIBLE);
        if self.a.json {
            let mut obj = serde_json::Map::new();
            json_name(&mut obj, "path", path);
            obj.insert("flags".into(), json!(flags.bits()));
            obj.insert("attributes".into(), json!(columns(flags)));
            obj.insert("project".into(), json!(md.projid));
            self.json.push(serde_json::Value::Object(obj));
            return Ok(());
        }
        if self.a.project {
            self.out.text(&format!("{:>5} ", md.projid))?;
        }
        self.out.text(&columns(flags))?;
        self.out.text(" ")?;
        self.out.name(path)?;
        self.out.line("")
    }

    /// The regular files and directories of a directory (others have no
    /// flags to show, as lsattr skips them), and with `-R` each
    /// subdirectory's after a `\nPATH:` heading.
    fn dir(&mut self, ino: u32, path: &[u8]) -> CliResult {
        let mut entries = self.fs.read_dir_ino(ino).context(|| crate::out::escape(path).into_owned())?;
        entries.retain(|e| self.a.all || !e.name.starts_with(b"."));
        entries.retain(|e| self.fs.stat(e.ino).is_ok_and(|m| m.is_dir() || m.is_file()));
        entries.sort_by(|x, y| x.name.cmp(&y.name));
        for e in &entries {
            self.one(e.ino, &child(path, &e.name))?;
        }
        if !self.a.recursive {
            return Ok(());
        }
        for e in &entries {
            if self.fs.stat(e.ino).is_ok_and(|m| m.is_dir()) {
                let sub = child(path, &e.name);
                if !self.a.json {
                    self.out.text("\n")?;
                    self.out.name(&sub)?;
                    self.out.line(":")?;
                }
                self.dir(e.ino, &sub)?;
            }
        }
        Ok(())
    }
}

/// `PARENT/NAME` (without a doubled slash at the root).
pub fn child(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let parent = parent.strip_suffix(b"/").unwrap_or(parent);
    [parent, b"/", name].concat()
}

/// The flags as lsattr's 22 columns: a letter where set, `-` where not.
pub fn columns(flags: InodeFlags) -> String {
    FLAGS.iter().map(|(f, l)| if flags.contains(*f) { *l } else { '-' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_as_chattr_reads_them() {
        let f = |s: &str| FlagChange::parse(s).ok();
        let c = f("+ia-d").unwrap();
        assert_eq!((c.add, c.remove, c.set), (InodeFlags::IMMUTABLE | InodeFlags::APPEND, InodeFlags::NODUMP, None));
        assert_eq!(f("=A").unwrap().apply(InodeFlags::NODUMP | InodeFlags::EXTENTS), InodeFlags::NOATIME);
        assert_eq!(f("=").unwrap().apply(InodeFlags::NODUMP), InodeFlags::empty());
        assert!(f("ia").is_none() && f("+e").is_none() && f("+?").is_none());
        assert_eq!(columns(InodeFlags::EXTENTS), "--------------e-------");
    }
}

//! Helpers shared by the commands: opening images, errors with context,
//! formatting modes and times.

use std::fmt;
use std::path::Path;

use ext4_fs::{Caller, Error, FileType, Filesystem, OpenOptions, Timestamp};

use crate::device::Spec;

/// A command's error: what failed, on which path, and why (with the errno name).
#[derive(Debug)]
pub struct CliError {
    /// What was being done, e.g. "reading /etc/passwd".
    pub context: String,
    /// The cause.
    pub cause: Box<dyn std::error::Error + Send + Sync>,
    /// errno of the cause, when it has one.
    pub errno: Option<i32>,
    /// Some of the work was done and some failed (each failure reported already).
    pub partial: bool,
}

impl CliError {
    /// An error of `context` with `cause` and an optional errno.
    pub fn new(context: impl Into<String>, cause: impl Into<Box<dyn std::error::Error + Send + Sync>>, errno: Option<i32>) -> Self {
        Self { context: context.into(), cause: cause.into(), errno, partial: false }
    }

    /// A summary after failures that were reported one by one while the rest of the work went on.
    pub fn partial(context: impl Into<String>, summary: String) -> Self {
        Self { partial: true, ..Self::new(context, summary, None) }
    }

    /// The process's exit status for this error (see [`Exit`]).
    pub fn exit(&self) -> Exit {
        match (self.partial, self.errno) {
            (true, _) => Exit::Partial,
            (false, None) => Exit::Usage,
            (false, Some(2)) => Exit::NotFound,
            (false, Some(117)) => Exit::Corrupt,
            (false, Some(5)) => Exit::Io,
            (false, Some(_)) => Exit::Failure,
        }
    }

    /// Whether the cause is a closed pipe on standard output.
    pub fn is_broken_pipe(&self) -> bool {
        self.errno == Some(EPIPE)
    }
}

/// `EPIPE`: the reader of a pipe went away.
const EPIPE: i32 = 32;

/// Exit statuses, as `ext4 --help` documents them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Any other failure (the message names the errno).
    Failure = 1,
    /// Bad arguments: an unknown option, a value that does not parse.
    Usage = 2,
    /// A file or directory named does not exist (`ENOENT`).
    NotFound = 3,
    /// The image is corrupt or not an ext2/3/4 filesystem (`EUCLEAN`).
    Corrupt = 4,
    /// The device or a host file failed to read or write (`EIO`).
    Io = 5,
    /// Some of the work was done, some failed (`get -r`, `batch -k`, ...).
    Partial = 6,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.context)?;
        let cause = self.cause.to_string();
        if !cause.is_empty() {
            write!(f, ": {cause}")?;
        }
        match self.errno {
            Some(e) => write!(f, " ({})", crate::errno::name(e)),
            None => Ok(()),
        }
    }
}

/// An OS error's message without std's `(os error N)` suffix.
pub fn os_message(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

impl std::error::Error for CliError {}

/// Result of a command.
pub type CliResult<T = ()> = Result<T, CliError>;

/// Adds context to errors.
pub trait Context<T> {
    /// Wraps the error with `what`.
    fn context(self, what: impl FnOnce() -> String) -> CliResult<T>;
}

impl<T> Context<T> for Result<T, Error> {
    fn context(self, what: impl FnOnce() -> String) -> CliResult<T> {
        self.map_err(|e| {
            let context = what();
            let errno = Some(e.errno());
            // The library's message names the path; say it once when the context names it already.
            let named =
                |p: &&String| context.contains(p.as_str()) || String::from_utf8_lossy(&crate::out::unescape(&context)).contains(p.as_str());
            let cause: Box<dyn std::error::Error + Send + Sync> = match error_path(&e).filter(named) {
                Some(p) => e.to_string().strip_prefix(&format!("{p}: ")).map_or_else(|| e.to_string(), str::to_string).into(),
                None => Box::new(e),
            };
            CliError { context, errno, cause, partial: false }
        })
    }
}

/// The path (or name) a library error names, if any.
fn error_path(e: &Error) -> Option<&String> {
    match e {
        Error::NotFound(p)
        | Error::Exists(p)
        | Error::NotEmpty(p)
        | Error::NotADirectory(p)
        | Error::IsADirectory(p)
        | Error::SymlinkLoop(p) => Some(p),
        _ => None,
    }
}

impl<T> Context<T> for Result<T, ext4_fs::blockdev::DeviceError> {
    fn context(self, what: impl FnOnce() -> String) -> CliResult<T> {
        self.map_err(|e| {
            let errno = Some(e.errno());
            CliError::new(what(), e, errno)
        })
    }
}

impl<T> Context<T> for std::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> CliResult<T> {
        self.map_err(|e| {
            let errno = e.raw_os_error();
            CliError::new(what(), os_message(&e), errno)
        })
    }
}

/// An error without an underlying cause (a usage error: exit status 2).
pub fn fail(msg: impl Into<String>) -> CliError {
    CliError::new(msg, "", None)
}

/// Opens an image (with its external journal device `journal`, if given),
/// saying plainly when the file is missing, unreadable or not an ext2/3/4
/// filesystem at all (no superblock magic, too small; a partitioned disk
/// opened whole lists its partitions).
pub fn open(image: &Path, journal: Option<&Path>, opts: OpenOptions, what: &str) -> CliResult<Filesystem> {
    let spec = Spec::image(image)?;
    let shown = spec.shown();
    match std::fs::metadata(&spec.file) {
        Err(e) => return Err(CliError::new(shown, os_message(&e), e.raw_os_error())),
        Ok(md) if md.is_dir() => return Err(CliError::new(shown, "is a directory, not an image", Some(21))),
        Ok(_) => {}
    }
    open_spec(&spec, journal, opts).map_err(|e| match e {
        Opened::Cli(e) => e,
        Opened::Fs(e) => open_error(&spec, e, what),
    })
}

/// Why [`open_spec`] failed: opening a device, or the filesystem.
enum Opened {
    Cli(CliError),
    Fs(Error),
}

/// Opens the filesystem where `spec` says, through the one place that
/// opens images ([`crate::device`]); a whole image file by its path (so
/// that `get` can copy its extents inside the kernel).
fn open_spec(spec: &Spec, journal: Option<&Path>, opts: OpenOptions) -> Result<Filesystem, Opened> {
    let jspec = journal.map(Spec::parse);
    if spec.is_whole_file() && jspec.as_ref().is_none_or(Spec::is_whole_file) {
        return match journal {
            Some(j) => Filesystem::open_path_with_journal(&spec.file, j, opts),
            None => Filesystem::open_path(&spec.file, opts),
        }
        .map_err(Opened::Fs);
    }
    let read_only = !opts.write;
    let dev = crate::device::open(spec, read_only).map_err(Opened::Cli)?;
    match jspec {
        Some(j) => Filesystem::open_with_journal(dev, crate::device::open(&j, read_only).map_err(Opened::Cli)?, opts),
        None => Filesystem::open(dev, opts),
    }
    .map_err(Opened::Fs)
}

/// The message for a filesystem that would not open.
fn open_error(spec: &Spec, e: Error, what: &str) -> CliError {
    let shown = spec.shown();
    match &e {
        Error::Device(d) if e.errno() == 5 => CliError::new(format!("{what} {shown}"), d.to_string(), Some(5)),
        Error::Device(_) => CliError::new(shown, os_message(&std::io::Error::from_raw_os_error(e.errno())), Some(e.errno())),
        Error::InvalidArgument(why) if why.contains("too small") => not_ext(shown, why),
        Error::Corrupt(c) if matches!(c.location, ext4_fs::Location::Superblock) && c.detail.contains("bad magic") => {
            match crate::device::partitioned_disk(&spec.file).filter(|_| spec.is_whole()) {
                Some(why) => not_ext(shown, &why),
                None => not_ext(shown, "no ext2/3/4 superblock magic"),
            }
        }
        _ => Err::<(), _>(e).context(|| format!("{what} {shown}")).expect_err("an error"),
    }
}

/// "IMAGE: not an ext2/3/4 filesystem (why)", exit status 4.
pub fn not_ext(image: String, why: &str) -> CliError {
    CliError::new(image, format!("not an ext2/3/4 filesystem ({why})"), Some(117))
}

/// Opens an image read-only (with its external journal device `journal`,
/// if given); warns when its journal cannot be read and is ignored (reads
/// then see the filesystem as last checkpointed).
pub fn open_ro(image: &Path, journal: Option<&Path>) -> CliResult<Filesystem> {
    let fs = open(image, journal, OpenOptions::read_only(), "opening")?;
    if let Some(why) = fs.journal_ignored() {
        eprintln!("ext4: warning: {}: the journal is ignored ({why}); what it holds is not seen", image.display());
    }
    Ok(fs)
}

/// Opens an image for writing (with its external journal device
/// `journal`, if given), acting with this process's credentials.
pub fn open_rw(image: &Path, journal: Option<&Path>) -> CliResult<Filesystem> {
    let mut fs = open(image, journal, OpenOptions::read_write(), "opening for writing")?;
    fs.set_caller(process_caller());
    Ok(fs)
}

/// This process's credentials as the kernel would take them for a file it
/// creates: effective ids, supplementary groups, root's privileges when
/// root, and the umask.
pub fn process_caller() -> Caller {
    use rustix::fs::Mode;
    use rustix::process::{getegid, geteuid, getgroups, umask};
    let mut c = Caller::user(geteuid().as_raw(), getegid().as_raw());
    c.groups = getgroups().map(|g| g.into_iter().map(|g| g.as_raw()).collect()).unwrap_or_default();
    // The only way to read the umask is to set it: put it straight back.
    let mask = umask(Mode::empty());
    umask(mask);
    c.umask = (mask.bits() & 0o777) as u16;
    c
}

/// Commits and closes a filesystem opened for writing, reporting errors.
pub fn close(fs: Filesystem, image: &Path) -> CliResult {
    fs.close().context(|| format!("closing {}", image.display()))
}

/// Parses an octal mode such as `755` or `0644`.
pub fn parse_mode(s: &str) -> CliResult<u16> {
    u16::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| fail(format!("invalid mode {s:?} (octal, at most 7777)")))
}

/// A path argument as bytes.
pub fn path_bytes(p: &std::ffi::OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    p.as_bytes().to_vec()
}

/// A path argument as messages show it (escaped where it is not plain UTF-8).
pub fn shown(p: &std::ffi::OsStr) -> String {
    use std::os::unix::ffi::OsStrExt;
    crate::out::escape(p.as_bytes()).into_owned()
}

/// `ls -l` style mode string.
pub fn mode_string(ft: FileType, perm: u16) -> String {
    let t = match ft {
        FileType::Regular => '-',
        FileType::Directory => 'd',
        FileType::Symlink => 'l',
        FileType::CharDevice => 'c',
        FileType::BlockDevice => 'b',
        FileType::Fifo => 'p',
        FileType::Socket => 's',
    };
    let mut s = String::with_capacity(10);
    s.push(t);
    let bit = |mask: u16, c: char| if perm & mask != 0 { c } else { '-' };
    let special = |x: u16, special: u16, on: char, off_x: char| match (perm & x != 0, perm & special != 0) {
        (true, true) => on,
        (false, true) => off_x,
        (true, false) => 'x',
        (false, false) => '-',
    };
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(0o100, 0o4000, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(0o010, 0o2000, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(0o001, 0o1000, 't', 'T'));
    s
}

/// A timestamp as `YYYY-MM-DD HH:MM:SS.nnnnnnnnn` UTC.
pub fn format_time(t: Timestamp) -> String {
    let days = t.secs.div_euclid(86_400);
    let secs = t.secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:09}", secs / 3600, secs / 60 % 60, secs % 60, t.nsec)
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A UUID in its usual text form.
pub fn format_uuid(u: &[u8; 16]) -> String {
    let h: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", h[..4].concat(), h[4..6].concat(), h[6..8].concat(), h[8..10].concat(), h[10..].concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(format_time(Timestamp { secs: 0, nsec: 0 }), "1970-01-01 00:00:00.000000000");
        assert_eq!(format_time(Timestamp { secs: 1_700_000_000, nsec: 5 }), "2023-11-14 22:13:20.000000005");
        assert_eq!(format_time(Timestamp { secs: -1, nsec: 0 }), "1969-12-31 23:59:59.000000000");
    }

    #[test]
    fn modes() {
        assert_eq!(mode_string(FileType::Regular, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(FileType::Directory, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(FileType::Regular, 0o2640), "-rw-r-S---");
    }
}

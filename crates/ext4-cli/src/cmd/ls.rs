//! `ext4 ls [-l] [-a] [-R] [--json] IMAGE [PATH]`: list a directory.

use std::ffi::OsString;

use ext4_fs::{DirEntry, FileType, Filesystem};
use serde_json::Value;

use super::attr::child;
use super::stat::inode_json;
use crate::out::{Out, escape, json_name};
use crate::util::{CliResult, Context, format_time, mode_string, path_bytes, shown};

/// Arguments of `ext4 ls`.
#[derive(clap::Args)]
pub struct Args<I: clap::Args> {
    /// Long listing: mode, links, owner, size, mtime, name (and symlink target).
    #[arg(short = 'l')]
    long: bool,
    /// Include `.` and `..`.
    #[arg(short = 'a')]
    all: bool,
    /// List subdirectories recursively, each under a `PATH:` heading.
    #[arg(short = 'R', long)]
    recursive: bool,
    /// Print JSON: an array of entries (`name`, `path`, and the inode as `stat --json` gives it).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pub(crate) image: I,
    /// The directory (default: the root).
    #[arg(default_value = "/")]
    path: OsString,
}

/// Runs the command.
pub fn exec<I: clap::Args>(a: &Args<I>, fs: &Filesystem) -> CliResult {
    let p = path_bytes(&a.path);
    let ino = fs.lookup(&p).context(|| shown(&a.path))?;
    let md = fs.stat(ino).context(|| shown(&a.path))?;
    let mut l = Listing { a, fs, out: Out::new(), json: Vec::new() };
    if !md.is_dir() {
        let name = p.rsplit(|&c| c == b'/').next().unwrap_or(&p).to_vec();
        l.entries(&p, vec![DirEntry { name, ino, file_type: Some(md.file_type), pos: 0 }], false)?;
    } else {
        l.dir(ino, &p, false)?;
    }
    if a.json {
        let v = Value::Array(std::mem::take(&mut l.json));
        l.out.json(&v)?;
    }
    l.out.finish()
}

/// One `ls` run.
struct Listing<'a, I: clap::Args> {
    a: &'a Args<I>,
    fs: &'a Filesystem,
    out: Out,
    json: Vec<Value>,
}

impl<I: clap::Args> Listing<'_, I> {
    /// Lists directory `ino` at `path`, then (with `-R`) its subdirectories, depth first.
    fn dir(&mut self, ino: u32, path: &[u8], heading: bool) -> CliResult {
        let mut entries = self.fs.dir_entries(ino).context(|| format!("listing {}", escape(path)))?;
        if !self.a.all {
            entries.retain(|e| e.name != b"." && e.name != b"..");
        }
        entries.sort_by(|x, y| x.name.cmp(&y.name));
        self.entries(path, entries.clone(), heading)?;
        if !self.a.recursive {
            return Ok(());
        }
        for e in entries.iter().filter(|e| e.name != b"." && e.name != b"..") {
            let is_dir = match e.file_type {
                Some(t) => t == FileType::Directory,
                None => self.fs.stat(e.ino).is_ok_and(|m| m.is_dir()),
            };
            if is_dir {
                self.dir(e.ino, &child(path, &e.name), true)?;
            }
        }
        Ok(())
    }

    /// Prints `entries` of the directory at `path` (under a heading for `-R`'s subdirectories).
    fn entries(&mut self, path: &[u8], entries: Vec<DirEntry>, heading: bool) -> CliResult {
        if self.a.recursive && !self.a.json {
            if heading {
                self.out.line("")?;
            }
            self.out.name(path)?;
            self.out.line(":")?;
        }
        for e in entries {
            if self.a.json {
                self.json_entry(path, &e)?;
            } else if self.a.long {
                self.long(path, &e)?;
            } else {
                self.out.name(&e.name)?;
                self.out.line("")?;
            }
        }
        Ok(())
    }

    fn json_entry(&mut self, dir: &[u8], e: &DirEntry) -> CliResult {
        let full = child(dir, &e.name);
        let m = self.fs.stat(e.ino).context(|| escape(&full).into_owned())?;
        let target = if m.is_symlink() { Some(self.fs.read_link_ino(e.ino).context(|| escape(&full).into_owned())?) } else { None };
        let mut v = inode_json(&m, target.as_deref());
        let obj = v.as_object_mut().expect("an object");
        json_name(obj, "name", &e.name);
        json_name(obj, "path", &full);
        self.json.push(v);
        Ok(())
    }

    fn long(&mut self, dir: &[u8], e: &DirEntry) -> CliResult {
        let full = || escape(&child(dir, &e.name)).into_owned();
        let m = self.fs.stat(e.ino).context(full)?;
        let size = if matches!(m.file_type, FileType::CharDevice | FileType::BlockDevice) {
            format!("{}, {}", m.rdev.0, m.rdev.1)
        } else {
            m.size.to_string()
        };
        let mode = mode_string(m.file_type, m.permissions);
        self.out.text(&format!("{mode} {:>3} {:>5} {:>5} {size:>10} {} ", m.nlink, m.uid, m.gid, &format_time(m.mtime)[..19]))?;
        self.out.name(&e.name)?;
        if m.is_symlink() {
            let t = self.fs.read_link_ino(e.ino).context(full)?;
            self.out.text(" -> ")?;
            self.out.name(&t)?;
        }
        self.out.line("")
    }
}

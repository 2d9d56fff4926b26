//! `ext4 stat [--json] IMAGE PATH`: everything about an inode, and the
//! JSON shape of an inode that `ls --json` shares.

use std::ffi::OsString;

use ext4_fs::{FileType, Filesystem, Metadata};
use serde_json::{Map, Value, json};

use crate::encoding::{Encoding, encode};
use crate::out::{Out, json_name, json_time};
use crate::util::{CliResult, Context, format_time, mode_string, path_bytes, shown};

/// Arguments of `ext4 stat`.
#[derive(clap::Args)]
pub struct Args<I: clap::Args> {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pub(crate) image: I,
    /// The file (a final symbolic link is not followed).
    path: OsString,
}

/// Runs the command.
pub fn exec<I: clap::Args>(a: &Args<I>, fs: &Filesystem) -> CliResult {
    let p = path_bytes(&a.path);
    let what = || shown(&a.path);
    let ino = fs.lookup_nofollow(&p).context(what)?;
    let m = fs.stat(ino).context(what)?;
    let xattrs = fs.xattrs_ino(ino).context(what)?;
    let target = if m.is_symlink() { Some(fs.read_link_ino(ino).context(what)?) } else { None };
    let mut out = Out::new();
    if a.json {
        let mut v = inode_json(&m, target.as_deref());
        let obj = v.as_object_mut().expect("an object");
        json_name(obj, "path", &p);
        let list = xattrs.iter().map(|x| xattr_json(&x.name, &x.value)).collect();
        obj.insert("xattrs".into(), Value::Array(list));
        out.json(&v)?;
        return out.finish();
    }
    out.text("  File: ")?;
    out.name(&p)?;
    out.line("")?;
    out.line(&format!(
        " Inode: {}   Type: {}   Mode: {:04o} ({})",
        m.ino,
        type_name(m.file_type),
        m.permissions,
        mode_string(m.file_type, m.permissions)
    ))?;
    out.line(&format!("  Size: {}   Blocks: {} (512 B)   Links: {}", m.size, m.blocks, m.nlink))?;
    out.line(&format!("   Uid: {}   Gid: {}   Project: {}", m.uid, m.gid, m.projid))?;
    out.line(&format!(
        " Flags: {:#x} ({})   Generation: {}   Version: {}",
        m.flags.bits(),
        flag_letters(m.flags),
        m.generation,
        m.version
    ))?;
    if let Some(tg) = &target {
        out.text("Target: ")?;
        out.name(tg)?;
        out.line("")?;
    }
    if matches!(m.file_type, FileType::CharDevice | FileType::BlockDevice) {
        out.line(&format!("Device: {}, {}", m.rdev.0, m.rdev.1))?;
    }
    out.line(&format!("Access: {}", format_time(m.atime)))?;
    out.line(&format!("Modify: {}", format_time(m.mtime)))?;
    out.line(&format!("Change: {}", format_time(m.ctime)))?;
    if let Some(c) = m.crtime {
        out.line(&format!(" Birth: {}", format_time(c)))?;
    }
    for x in &xattrs {
        out.text(" Xattr: ")?;
        out.name(&x.name)?;
        out.line(&format!("={}", encode(&x.value, Encoding::Text)))?;
    }
    out.finish()
}

/// The JSON of an inode, as `stat --json` and `ls --json` give it.
pub fn inode_json(m: &Metadata, target: Option<&[u8]>) -> Value {
    let mut v = json!({
        "ino": m.ino,
        "type": type_name(m.file_type),
        "mode": m.mode(),
        "permissions": m.permissions,
        "uid": m.uid,
        "gid": m.gid,
        "size": m.size,
        "nlink": m.nlink,
        "blocks": m.blocks,
        "atime": json_time(m.atime),
        "mtime": json_time(m.mtime),
        "ctime": json_time(m.ctime),
        "crtime": m.crtime.map(json_time),
        "flags": m.flags.bits(),
        "attributes": flag_letters(m.flags),
        "generation": m.generation,
        "version": m.version,
        "project": m.projid,
        "rdev": { "major": m.rdev.0, "minor": m.rdev.1 },
    });
    if let Some(t) = target {
        json_name(v.as_object_mut().expect("an object"), "target", t);
    }
    v
}

/// The JSON of an xattr: `name`, and its value as text (when it is UTF-8), hex and base64.
pub fn xattr_json(name: &[u8], value: &[u8]) -> Value {
    let mut obj = Map::new();
    json_name(&mut obj, "name", name);
    obj.insert("size".into(), json!(value.len()));
    if let Ok(text) = std::str::from_utf8(value) {
        obj.insert("text".into(), json!(text));
    }
    obj.insert("hex".into(), json!(encode(value, Encoding::Hex)[2..]));
    obj.insert("base64".into(), json!(crate::encoding::base64(value)));
    Value::Object(obj)
}

/// A file type's name in every `--json` and in `stat`'s text.
pub fn type_name(t: FileType) -> &'static str {
    match t {
        FileType::Regular => "file",
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::CharDevice => "char",
        FileType::BlockDevice => "block",
        FileType::Fifo => "fifo",
        FileType::Socket => "socket",
    }
}

/// The flags as `lsattr` letters, `-` when none is set.
pub fn flag_letters(f: ext4_fs::InodeFlags) -> String {
    let s: String = super::attr::FLAGS.iter().filter(|(flag, _)| f.contains(*flag)).map(|(_, c)| *c).collect();
    if s.is_empty() { "-".into() } else { s }
}

//! Image building (`mkfs -d`, `put -r`): owners and modes for the image
//! independent of the host (`--owner`, `--all-root`, an fs_config file),
//! and times clamped for reproducible builds (`--mtime`, SOURCE_DATE_EPOCH).
//!
//! The fs_config file has one rule a line, as Android's canned fs_config
//! (`e2fsdroid -C`) writes them, `#` comments and blank lines aside:
//!
//! ```text
//! PATH UID GID MODE [capabilities=HEX]
//! /            0 0    0755
//! bin/*        0 2000 0755
//! bin/ping     0 0    0755 capabilities=0x2000
//! ```
//!
//! PATH is relative to the root of the copy (a leading `/` is optional; `/`
//! or `.` is the root itself) and may hold `*` (any bytes but `/`), `**`
//! (any bytes) and `?` (one byte). The last rule that matches a path wins.
//! UID and GID are numbers, MODE octal permission bits (the file type stays
//! the host's); `capabilities=` sets the permitted and effective file
//! capabilities (`security.capability`, revision 2), `0` removes them.

use std::path::PathBuf;

use ext4_fs::{Filesystem, SetAttr, Timestamp, XattrMode};

use crate::cmd::attr::child;
use crate::util::{CliResult, Context, fail};

/// The image-building options `mkfs -d` and `put -r` share.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct BuildArgs {
    /// Owner of every copied inode instead of the host's (numbers).
    #[arg(long, value_name = "UID:GID")]
    owner: Option<String>,
    /// Every copied inode owned by root (`--owner 0:0`).
    #[arg(long, conflicts_with = "owner")]
    all_root: bool,
    /// Per-path owners, modes and capabilities (Android fs_config lines: `PATH UID GID MODE [capabilities=HEX]`).
    #[arg(long, value_name = "FILE")]
    fs_config: Option<PathBuf>,
    /// Clamp every copied inode's times to at most TIME (@SECS or ISO 8601);
    /// default: SOURCE_DATE_EPOCH when it is set.
    #[arg(long, value_name = "TIME")]
    mtime: Option<String>,
    /// Do not copy extended attributes.
    #[arg(long)]
    no_xattrs: bool,
}

/// What a build asks, parsed.
#[derive(Debug, Default)]
pub struct Build {
    /// Owner for every copied inode.
    pub owner: Option<(u32, u32)>,
    /// fs_config rules, in file order.
    rules: Vec<Rule>,
    /// Latest time any copied inode may carry.
    clamp: Option<Timestamp>,
    /// Leave xattrs out.
    pub no_xattrs: bool,
}

/// One fs_config line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    pattern: Vec<u8>,
    uid: u32,
    gid: u32,
    perm: u16,
    capabilities: Option<u64>,
}

impl BuildArgs {
    /// Parses the options (reading the fs_config file and SOURCE_DATE_EPOCH).
    pub fn parse(&self) -> CliResult<Build> {
        let owner = match (&self.owner, self.all_root) {
            (_, true) => Some((0, 0)),
            (Some(o), false) => Some(parse_owner(o)?),
            (None, false) => None,
        };
        let rules = match &self.fs_config {
            Some(f) => parse_rules(&std::fs::read(f).context(|| format!("reading {}", f.display()))?)
                .map_err(|e| fail(format!("{}: {e}", f.display())))?,
            None => Vec::new(),
        };
        let clamp = match &self.mtime {
            Some(t) => Some(crate::time::parse(t)?),
            None => source_date_epoch()?,
        };
        Ok(Build { owner, rules, clamp, no_xattrs: self.no_xattrs })
    }
}

/// `SOURCE_DATE_EPOCH` as a time, if set.
pub fn source_date_epoch() -> CliResult<Option<Timestamp>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => s
            .trim()
            .parse::<i64>()
            .map(|t| Some(Timestamp::from_secs(t)))
            .map_err(|_| fail(format!("SOURCE_DATE_EPOCH={s:?} is not a number of seconds"))),
        Err(_) => Ok(None),
    }
}

/// `UID:GID` in numbers.
fn parse_owner(s: &str) -> CliResult<(u32, u32)> {
    let bad = || fail(format!("invalid owner {s:?} (UID:GID, numbers)"));
    let (u, g) = s.split_once(':').ok_or_else(bad)?;
    Ok((u.parse().map_err(|_| bad())?, g.parse().map_err(|_| bad())?))
}

/// The rules of an fs_config file.
fn parse_rules(text: &[u8]) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    for (n, line) in text.split(|&c| c == b'\n').enumerate() {
        let words: Vec<&[u8]> = line.split(|c| c.is_ascii_whitespace()).filter(|w| !w.is_empty()).collect();
        if words.is_empty() || words[0].starts_with(b"#") {
            continue;
        }
        let at = |why: &str| format!("line {}: {why}", n + 1);
        let num = |w: &[u8], radix: u32| std::str::from_utf8(w).ok().and_then(|s| u64::from_str_radix(s, radix).ok());
        let [path, uid, gid, mode, rest @ ..] = words.as_slice() else {
            return Err(at("expected PATH UID GID MODE [capabilities=HEX]"));
        };
        let capabilities = match rest {
            [] => None,
            [c] => {
                let hex = c.strip_prefix(b"capabilities=").ok_or_else(|| at("expected capabilities=HEX"))?;
                Some(num(hex.strip_prefix(b"0x").unwrap_or(hex), 16).ok_or_else(|| at("capabilities: not hex"))?)
            }
            _ => return Err(at("too many fields")),
        };
        let id = |w: &[u8]| num(w, 10).and_then(|v| u32::try_from(v).ok()).ok_or_else(|| at("UID and GID are numbers"));
        let perm = num(mode, 8).filter(|m| *m <= 0o7777).ok_or_else(|| at("MODE is octal, at most 7777"))? as u16;
        let trimmed = path.strip_prefix(b"/").unwrap_or(path);
        let pattern = if trimmed == b"." { Vec::new() } else { trimmed.to_vec() };
        rules.push(Rule { pattern, uid: id(uid)?, gid: id(gid)?, perm, capabilities });
    }
    Ok(rules)
}

/// Whether `name` matches glob `pat` (`*` within a component, `**` across, `?` one byte).
fn glob(pat: &[u8], name: &[u8]) -> bool {
    match pat {
        [] => name.is_empty(),
        [b'*', b'*', rest @ ..] => (0..=name.len()).any(|i| glob(rest, &name[i..])),
        [b'*', rest @ ..] => (0..=name.len()).take_while(|&i| i == 0 || name[i - 1] != b'/').any(|i| glob(rest, &name[i..])),
        [b'?', rest @ ..] => !name.is_empty() && glob(rest, &name[1..]),
        [c, rest @ ..] => name.first() == Some(c) && glob(rest, &name[1..]),
    }
}

impl Build {
    /// The copy options for the library's copy.
    pub fn copy_options(&self) -> ext4_fs::populate::CopyOptions {
        ext4_fs::populate::CopyOptions { force_owner: self.owner, no_xattrs: self.no_xattrs, ..Default::default() }
    }

    /// Whether a pass over the copied tree is needed after the copy.
    pub fn needs_pass(&self) -> bool {
        !self.rules.is_empty() || self.clamp.is_some()
    }

    /// Applies the fs_config rules and the time clamp to the copied tree at
    /// inode `top` (which the rules call `/`), depth first in name order so
    /// that every run makes the same changes in the same order.
    pub fn apply(&self, fs: &mut Filesystem, top: u32) -> CliResult {
        let mut todo = vec![(top, Vec::new())];
        while let Some((ino, rel)) = todo.pop() {
            let md = fs.stat(ino).context(|| format!("inode {ino}"))?;
            self.apply_one(fs, ino, &rel, &md).context(|| format!("applying --fs-config/--mtime to /{}", crate::out::escape(&rel)))?;
            if md.is_dir() {
                let mut entries = fs.read_dir_ino(ino).context(|| format!("listing /{}", crate::out::escape(&rel)))?;
                entries.sort_by(|a, b| b.name.cmp(&a.name));
                for e in entries {
                    let sub = if rel.is_empty() { e.name.clone() } else { child(&rel, &e.name) };
                    todo.push((e.ino, sub));
                }
            }
        }
        Ok(())
    }

    /// The rule and clamp for one inode at `rel` (relative to the copy's top).
    fn apply_one(&self, fs: &mut Filesystem, ino: u32, rel: &[u8], md: &ext4_fs::Metadata) -> ext4_fs::Result<()> {
        let rule = self.rules.iter().rev().find(|r| glob(&r.pattern, rel));
        let mut attr = SetAttr::default();
        if let Some(r) = rule {
            match r.capabilities {
                Some(0) => match fs.remove_xattr(ino, b"security.capability") {
                    Ok(()) | Err(ext4_fs::Error::NoAttribute) => {}
                    Err(e) => return Err(e),
                },
                Some(caps) => fs.set_xattr(ino, b"security.capability", &vfs_cap_data(caps), XattrMode::Any)?,
                None => {}
            }
            attr = SetAttr { uid: Some(r.uid), gid: Some(r.gid), perm: Some(r.perm), ..attr };
        }
        if let Some(t) = self.clamp {
            let at_most = |x: Timestamp| if (x.secs, x.nsec) > (t.secs, t.nsec) { t } else { x };
            attr.atime = Some(at_most(md.atime));
            attr.mtime = Some(at_most(md.mtime));
            attr.ctime = Some(at_most(md.ctime));
            attr.crtime = md.crtime.map(at_most);
        }
        if attr != SetAttr::default() { fs.set_attr(ino, attr) } else { Ok(()) }
    }
}

/// `struct vfs_cap_data` revision 2: permitted and effective `caps`, no inheritable ones.
fn vfs_cap_data(caps: u64) -> Vec<u8> {
    const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
    const VFS_CAP_FLAGS_EFFECTIVE: u32 = 0x1;
    let words = [VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE, caps as u32, 0, (caps >> 32) as u32, 0];
    words.iter().flat_map(|w| w.to_le_bytes()).collect() // tidy: allow (the VFS capability xattr, not an ext4 layout)
}

/// A UUID and a directory hash seed derived from SOURCE_DATE_EPOCH and the
/// label, so that a reproducible build gets the same ones every run
/// (version 4 UUID bits, splitmix64 over the inputs).
pub fn derived_ids(epoch: i64, label: &[u8]) -> ([u8; 16], [u8; 16]) {
    let mut state = 0x6578_7434_2d72_7300_u64 ^ epoch as u64;
    for &b in label {
        state = splitmix(state ^ u64::from(b));
    }
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        state = splitmix(state);
        chunk.copy_from_slice(&state.to_be_bytes());
    }
    let (mut uuid, mut seed) = ([0u8; 16], [0u8; 16]);
    uuid.copy_from_slice(&bytes[..16]);
    seed.copy_from_slice(&bytes[16..]);
    for id in [&mut uuid, &mut seed] {
        id[6] = (id[6] & 0x0f) | 0x40;
        id[8] = (id[8] & 0x3f) | 0x80;
    }
    (uuid, seed)
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fs_config_rules_and_globs() {
        let rules = parse_rules(b"# comment\n/ 0 0 0755\nbin/* 0 2000 0755\n\nbin/ping 0 0 4755 capabilities=0x2000\n").unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0].pattern, b"");
        assert_eq!(rules[2], Rule { pattern: b"bin/ping".to_vec(), uid: 0, gid: 0, perm: 0o4755, capabilities: Some(0x2000) });
        assert!(glob(b"bin/*", b"bin/sh") && !glob(b"bin/*", b"bin/x/y") && glob(b"bin/**", b"bin/x/y"));
        assert!(glob(b"a?c", b"abc") && !glob(b"a?c", b"ac") && glob(b"", b""));
        assert!(parse_rules(b"bin 0 0\n").unwrap_err().starts_with("line 1"));
        assert!(parse_rules(b"bin 0 0 999\n").is_err());
        assert!(parse_rules(b"bin x 0 755\n").is_err());
    }

    #[test]
    fn capabilities_as_the_vfs_stores_them() {
        let v = vfs_cap_data(0x1_0000_2000);
        assert_eq!(v.len(), 20);
        assert_eq!(&v[..4], &[1, 0, 0, 2]);
        assert_eq!(&v[4..8], &[0, 0x20, 0, 0]);
        assert_eq!(&v[12..16], &[1, 0, 0, 0]);
    }

    #[test]
    fn derived_ids_are_stable_and_differ_by_input() {
        assert_eq!(derived_ids(1, b"x"), derived_ids(1, b"x"));
        assert_ne!(derived_ids(1, b"x").0, derived_ids(2, b"x").0);
        assert_ne!(derived_ids(1, b"x").0, derived_ids(1, b"y").0);
        assert_eq!(derived_ids(1, b"").0[6] >> 4, 4);
    }
}

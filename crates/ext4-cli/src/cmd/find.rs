//! `ext4 icheck IMAGE BLOCK...` and `ext4 ncheck IMAGE INODE...`: which
//! inode owns a block, and which names an inode has, as debugfs `icheck`
//! and `ncheck` answer.

use std::collections::BTreeMap;

use ext4_fs::Filesystem;
use ext4_fs::ondisk::group_desc::GroupDescFlags;
use ext4_fs::ondisk::superblock::CsumKind;
use serde_json::json;

use super::attr::child;
use super::extents::{read_map, warn_if_needs_recovery};
use crate::out::{Out, json_name};
use crate::util::{CliResult, Context};

/// `ext4 icheck [--json] IMAGE BLOCK...`.
#[derive(clap::Args)]
pub struct IcheckArgs<I: clap::Args> {
    /// Print JSON: an array of `{block, ino}` (`ino` null when no inode owns it).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pub(crate) image: I,
    /// Block numbers.
    #[arg(required = true)]
    blocks: Vec<u64>,
}

/// Runs `icheck`: every inode in use, in inode order, claims the wanted
/// blocks among its xattr block, its map blocks and its data blocks (the
/// first claim stands, as debugfs' scan decides).
pub fn icheck<I: clap::Args>(a: &IcheckArgs<I>, fs: &Filesystem) -> CliResult {
    warn_if_needs_recovery(fs);
    let mut owner: BTreeMap<u64, u32> = BTreeMap::new();
    let mut left: std::collections::BTreeSet<u64> = a.blocks.iter().copied().collect();
    for ino in inodes_in_use(fs) {
        if left.is_empty() {
            break;
        }
        let Ok(ib) = fs.read_inode(ino) else { continue };
        if ib.inode.dtime != 0 {
            continue;
        }
        let mut claim = |start: u64, len: u64| {
            let hits: Vec<u64> = left.range(start..start.saturating_add(len)).copied().collect();
            for b in hits {
                left.remove(&b);
                owner.insert(b, ino);
            }
        };
        if ib.inode.file_acl != 0 {
            claim(ib.inode.file_acl, 1);
        }
        let map = read_map(fs, &ib)?;
        for n in &map.nodes {
            claim(n.block, 1);
        }
        for l in &map.leaves {
            claim(l.physical, u64::from(l.len));
        }
    }
    let mut out = Out::new();
    if a.json {
        let list: Vec<_> = a.blocks.iter().map(|b| json!({"block": b, "ino": owner.get(b)})).collect();
        out.json(&json!(list))?;
        return out.finish();
    }
    out.line("Block\tInode number")?;
    for b in &a.blocks {
        match owner.get(b) {
            Some(ino) => out.line(&format!("{b}\t{ino}"))?,
            None => out.line(&format!("{b}\t<block not found>"))?,
        }
    }
    out.finish()
}

/// The inodes whose records are initialized (not in a group's unused tail
/// or an `INODE_UNINIT` group), in order; which of them are in use is for
/// [`Filesystem::read_inode`] to say.
fn inodes_in_use(fs: &Filesystem) -> impl Iterator<Item = u32> + '_ {
    let geo = fs.geometry();
    let ipg = geo.inodes_per_group;
    let csum = geo.csum != CsumKind::None;
    fs.group_descs().iter().enumerate().flat_map(move |(g, gd)| {
        let used = match (csum, gd.flags.contains(GroupDescFlags::INODE_UNINIT)) {
            (true, true) => 0,
            (true, false) => ipg.saturating_sub(gd.itable_unused),
            (false, _) => ipg,
        };
        let first = g as u32 * ipg + 1;
        first..first + used
    })
}

/// `ext4 ncheck [--json] IMAGE INODE...`.
#[derive(clap::Args)]
pub struct NcheckArgs<I: clap::Args> {
    /// Print JSON: an array of `{ino, path}`, one per name.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pub(crate) image: I,
    /// Inode numbers.
    #[arg(required = true)]
    inodes: Vec<u32>,
}

/// Runs `ncheck`: every name of each inode, found by walking the tree from
/// the root (`.` and `..` aside), as `INODE<TAB>PATH` lines.
pub fn ncheck<I: clap::Args>(a: &NcheckArgs<I>, fs: &Filesystem) -> CliResult {
    let wanted: std::collections::HashSet<u32> = a.inodes.iter().copied().collect();
    let mut found: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut todo = vec![(ext4_fs::ondisk::ino::ROOT, Vec::new())];
    while let Some((dir, path)) = todo.pop() {
        let entries = fs.read_dir_ino(dir).context(|| format!("listing directory inode {dir}"))?;
        for e in entries {
            let full = child(&path, &e.name);
            if wanted.contains(&e.ino) {
                found.push((e.ino, full.clone()));
            }
            let is_dir = match e.file_type {
                Some(t) => t == ext4_fs::FileType::Directory,
                None => fs.stat(e.ino).is_ok_and(|m| m.is_dir()),
            };
            if is_dir {
                todo.push((e.ino, full));
            }
        }
    }
    let order: BTreeMap<u32, usize> = a.inodes.iter().enumerate().rev().map(|(i, &ino)| (ino, i)).collect();
    found.sort_by(|x, y| (order[&x.0], &x.1).cmp(&(order[&y.0], &y.1)));
    let mut out = Out::new();
    if a.json {
        let list: Vec<_> = found
            .iter()
            .map(|(ino, p)| {
                let mut obj = serde_json::Map::new();
                obj.insert("ino".into(), json!(ino));
                json_name(&mut obj, "path", p);
                serde_json::Value::Object(obj)
            })
            .collect();
        out.json(&json!(list))?;
        return out.finish();
    }
    out.line("Inode\tPathname")?;
    for (ino, p) in &found {
        out.text(&format!("{ino}\t"))?;
        out.name(p)?;
        out.line("")?;
    }
    out.finish()
}

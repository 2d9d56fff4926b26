//! Quota usage: pass 1 charges each file's space and inode to its user,
//! group and project; after the passes the quota files must record the
//! same usage for every id (e2fsck's quota context and
//! `quota_compare_and_update`). A quota file that cannot be read counts
//! as one that disagrees.
//!
//! Memory: one entry per distinct id in use, plus a bit per block of a
//! quota file while it is read.

use std::collections::{BTreeMap, HashSet};

use ext4_ondisk::features::RoCompat;
use ext4_ondisk::inode::{Inode, InodeFlags, raw as iraw};
use ext4_ondisk::quota::{
    DiskQuota, HEADER_AND_INFO_SIZE, LEAF_HEADER_SIZE, QT_BLOCK_SIZE, QuotaHeader, QuotaType, REFS_PER_BLOCK, Revision, TREE_DEPTH,
    TREE_ROOT, record_unused, tree_ref,
};

use crate::ctx::{Ctx, Flow};
use crate::fs::Fs;
use crate::problem::{At, Code};

/// Space (bytes) and inodes charged to one id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Bytes.
    pub space: i64,
    /// Inodes.
    pub inodes: i64,
}

/// The usage counted per quota type, for the types the superblock names
/// a quota inode for (none without the `quota` feature).
#[derive(Debug, Default)]
pub(crate) struct QuotaUsage {
    types: [Option<BTreeMap<u32, Usage>>; 3],
    /// Whether inodes have room for a project id (`project_quota_valid`).
    project_ok: bool,
}

/// The superblock's quota inode of type `t`.
pub(crate) fn quota_inum(fs: &Fs<'_>, t: QuotaType) -> u32 {
    match t {
        QuotaType::User => fs.sb.s_usr_quota_inum.get(),
        QuotaType::Group => fs.sb.s_grp_quota_inum.get(),
        QuotaType::Project => fs.sb.s_prj_quota_inum.get(),
    }
}

/// Whether inode `ino` is charged to quotas: the root and ordinary
/// inodes, not the project quota file, the orphan file or EA inodes.
pub(crate) fn charged(fs: &Fs<'_>, ino: u32, inode: &Inode) -> bool {
    ino != fs.sb.s_prj_quota_inum.get()
        && ino != fs.sb.s_orphan_file_inum.get()
        && (ino == 2 || ino >= fs.first_ino())
        && !inode.flags.contains(InodeFlags::EA_INODE)
}

impl QuotaUsage {
    /// Usage tables for the quota types `fs` keeps.
    pub(crate) fn new(fs: &Fs<'_>) -> Self {
        let mut q = QuotaUsage { project_ok: fs.geo.inode_size > 128, ..Default::default() };
        if fs.ro_compat(RoCompat::QUOTA) {
            for t in QuotaType::ALL {
                if quota_inum(fs, t) != 0 {
                    q.types[t.index()] = Some(BTreeMap::new());
                }
            }
        }
        q
    }

    /// Charges `space` bytes and `inodes` inodes to the owners of the
    /// inode record `raw` (`quota_data_add` and `quota_data_inodes`).
    pub(crate) fn charge(&mut self, inode: &Inode, raw: &[u8], space: i64, inodes: i64) {
        for t in QuotaType::ALL {
            if t == QuotaType::Project && !self.project_ok {
                continue;
            }
            let id = match t {
                QuotaType::User => inode.uid,
                QuotaType::Group => inode.gid,
                QuotaType::Project => iraw::projid(raw),
            };
            if let Some(m) = self.types[t.index()].as_mut() {
                let u = m.entry(id).or_default();
                u.space += space;
                u.inodes += inodes;
            }
        }
    }
}

/// Why a quota file could not be read.
#[derive(Debug)]
enum ReadErr {
    /// The inode cannot be read.
    Inode(&'static str),
    /// The header or info is short, unreadable or invalid.
    Header(String),
    /// A tree reference points past the file.
    Reference(u32, u32),
}

impl std::fmt::Display for ReadErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadErr::Inode(why) => write!(f, "its inode: {why}"),
            ReadErr::Header(why) => write!(f, "its header: {why}"),
            ReadErr::Reference(r, n) => write!(f, "a tree reference to block {r} of {n}"),
        }
    }
}

/// A quota file opened for reading (`ext2fs_file_open` with the v2 format).
struct QuotaFile<'a, 'd> {
    fs: &'a Fs<'d>,
    ino: u32,
    inode: Inode,
    size: u64,
}

impl<'a, 'd> QuotaFile<'a, 'd> {
    /// Opens inode `ino`: in range, its record readable and its checksum right.
    fn open(fs: &'a Fs<'d>, ino: u32) -> crate::Result<Result<Self, ReadErr>> {
        if ino == 0 || ino > fs.inodes_count() {
            return Ok(Err(ReadErr::Inode("illegal inode number")));
        }
        let Some(raw) = fs.read_inode_raw(ino)? else { return Ok(Err(ReadErr::Inode("inode table unreadable"))) };
        if !crate::pass1::inode_csum_ok(fs, ino, &raw) {
            return Ok(Err(ReadErr::Inode("inode checksum does not match")));
        }
        let Ok(inode) = iraw::parse_lenient(&raw) else { return Ok(Err(ReadErr::Inode("inode unreadable"))) };
        if inode.flags.contains(InodeFlags::INLINE_DATA) {
            return Ok(Err(ReadErr::Inode("inline data")));
        }
        let size = inode.size;
        Ok(Ok(QuotaFile { fs, ino, inode, size }))
    }

    /// Reads `buf.len()` bytes from `off` (`ext2fs_file_read`): bytes past
    /// the end of the file are left zero; returns how many were inside it,
    /// or `None` when a block cannot be mapped or read.
    fn read(&self, off: u64, buf: &mut [u8]) -> crate::Result<Option<usize>> {
        buf.fill(0);
        let want = (buf.len() as u64).min(self.size.saturating_sub(off)) as usize;
        let bs = u64::from(self.fs.bs());
        let mut done = 0usize;
        while done < want {
            let pos = off + done as u64;
            let (lblk, in_blk) = (pos / bs, (pos % bs) as usize);
            let n = (bs as usize - in_blk).min(want - done);
            match crate::bmap::bmap_read(self.fs, self.ino, &self.inode, lblk)? {
                Err(_) => return Ok(None),
                Ok(None) => {}
                Ok(Some(p)) => {
                    if !self.fs.block_ok(p) {
                        return Ok(None);
                    }
                    let Some(b) = self.fs.img.block(p)? else { return Ok(None) };
                    buf[done..done + n].copy_from_slice(&b[in_blk..in_blk + n]);
                }
            }
            done += n;
        }
        Ok(Some(want))
    }

    /// Quota block `blk`, zero where unreadable or past the end (`read_blk`).
    fn block(&self, blk: u32) -> crate::Result<Vec<u8>> {
        let mut b = vec![0u8; QT_BLOCK_SIZE];
        if self.read(u64::from(blk) * QT_BLOCK_SIZE as u64, &mut b)?.is_none() {
            b.fill(0);
        }
        Ok(b)
    }

    /// The header and info, validated (`v2_check_file`, `v2_init_io`).
    fn header(&self, t: QuotaType) -> crate::Result<Result<(QuotaHeader, Revision), ReadErr>> {
        let mut b = [0u8; HEADER_AND_INFO_SIZE];
        let got = self.read(0, &mut b)?;
        if got.is_none_or(|n| n < 8) {
            return Ok(Err(ReadErr::Header("header unreadable".into())));
        }
        let h = QuotaHeader::parse(&b);
        if h.magic.swap_bytes() == t.magic() {
            return Ok(Err(ReadErr::Header("stored in the wrong byte order".into())));
        }
        let Some(rev) = Revision::from_version(h.version) else {
            return Ok(Err(ReadErr::Header(format!("unknown version {}", h.version))));
        };
        if got.is_none_or(|n| n < HEADER_AND_INFO_SIZE) {
            return Ok(Err(ReadErr::Header("info unreadable".into())));
        }
        let size_blocks = self.size.div_ceil(QT_BLOCK_SIZE as u64);
        if self.size > 1 << 31 || u64::from(h.blocks) > size_blocks {
            return Ok(Err(ReadErr::Header(format!("file size {} but {} blocks", self.size, h.blocks))));
        }
        if h.free_blk >= h.blocks || h.free_entry >= h.blocks {
            return Ok(Err(ReadErr::Header(format!("free list heads {}/{} past {} blocks", h.free_blk, h.free_entry, h.blocks))));
        }
        Ok(Ok((h, rev)))
    }
}

/// Reads every record of quota file `ino` of type `t`, calling `f` on each
/// (`qtree_scan_dquots`). Leaves reached twice are read once; a subtree
/// reached twice adds nothing new, so it is not walked again.
fn scan(fs: &Fs<'_>, ino: u32, t: QuotaType, f: &mut dyn FnMut(DiskQuota)) -> crate::Result<Result<(), ReadErr>> {
    let file = match QuotaFile::open(fs, ino)? {
        Ok(file) => file,
        Err(e) => return Ok(Err(e)),
    };
    let (h, rev) = match file.header(t)? {
        Ok(x) => x,
        Err(e) => return Ok(Err(e)),
    };
    let mut leaves = HashSet::new();
    let mut walked = HashSet::new();
    let mut stack = vec![(TREE_ROOT, 0u32)];
    while let Some((blk, depth)) = stack.pop() {
        let b = file.block(blk)?;
        let mut children = Vec::new();
        for i in 0..REFS_PER_BLOCK {
            let r = tree_ref(&b, i);
            // The last level checks even empty references (0 always passes).
            if r >= h.blocks {
                return Ok(Err(ReadErr::Reference(r, h.blocks)));
            }
            if r != 0 {
                children.push(r);
            }
        }
        if depth == TREE_DEPTH - 1 {
            for r in children {
                if leaves.insert(r) {
                    let leaf = file.block(r)?;
                    for rec in leaf[LEAF_HEADER_SIZE..].chunks_exact(rev.record_size()).take(rev.records_per_leaf()) {
                        if !record_unused(rec) {
                            f(DiskQuota::parse(rev, rec));
                        }
                    }
                }
            }
        } else {
            // Children in reverse so the walk visits them in order.
            for r in children.into_iter().rev() {
                if walked.insert((r, depth + 1)) {
                    stack.push((r, depth + 1));
                }
            }
        }
    }
    Ok(Ok(()))
}

/// Compares the usage counted with each quota file (after pass 5).
pub(crate) fn check(ctx: &mut Ctx<'_, '_>) -> Flow {
    if ctx.invalid_bitmaps > 0 {
        return Ok(());
    }
    for t in QuotaType::ALL {
        let ino = quota_inum(&ctx.fs, t);
        if ino == 0 {
            continue;
        }
        let Some(mut counted) = ctx.quota.types[t.index()].take() else { continue };
        let mut why: Option<String> = None;
        let mut seen = HashSet::new();
        let res = scan(&ctx.fs, ino, t, &mut |d| {
            seen.insert(d.id);
            let u = counted.get(&d.id).copied().unwrap_or_default();
            if why.is_none() && (u.space != d.curspace as i64 || u.inodes != d.curinodes as i64) {
                why = Some(format!(
                    "usage of id {} is ({}, {}) but the quota file says ({}, {})",
                    d.id, u.space, u.inodes, d.curspace, d.curinodes
                ));
            }
        })?;
        let why = match res {
            Err(e) => Some(format!("quota file (inode {ino}) cannot be read: {e}")),
            Ok(()) => why.or_else(|| counted.keys().find(|id| !seen.contains(id)).map(|id| format!("id {id} has no quota record"))),
        };
        counted.clear();
        if let Some(why) = why {
            ctx.ask(Code::UpdateQuotas, At::ino(ino), format!("quota type {}: {why}", t.index()));
        }
    }
    Ok(())
}

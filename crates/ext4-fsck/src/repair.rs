//! How repairs write: every change goes to the image's pending blocks
//! (committed at the end, see [`crate::commit`]); inodes, directory blocks,
//! the superblock and group descriptors get their checksums here.
//!
//! What is repaired, and when: a pass repairs only what its checks see
//! whole. Pass 4's link counts and pass 5's summaries are computed from
//! what the passes before them found, so they are repaired only when no
//! error before them was left unrepaired ([`Ctx::hold_unless_clean`]):
//! otherwise the counts e2fsck would compute after its own repairs may
//! differ, and writing ours could make the filesystem worse.

use ext4_ondisk::group_desc::update_group_desc_checksum;
use ext4_ondisk::inode::set_inode_checksum;

use crate::ctx::{Ctx, Flow};
use crate::problem::{At, Code, Severity};

/// Whether this checker repairs `code` (in repair mode, and in preen mode
/// when e2fsck's preen would).
pub(crate) fn repairable(code: Code) -> bool {
    use Code::*;
    matches!(
        code,
        GdtCsum
            | UnattachedInode
            | ZeroLenInode
            | LowDtime
            | ZeroDtime
            | SetDtime
            | BadIBlocks
            | BadISize
            | InodeOnlyCsumInvalid
            | EaBlockOnlyCsumInvalid
            | UnusedInode
            | BadFiletype
            | SetFiletype
            | BadRefCount
            | BlockBitmapEnd
            | InodeBitmapEnd
            | FreeInodeCountGroup
            | FreeDirCountGroup
            | FreeInodeCount
            | FreeBlockCountGroup
            | FreeBlockCount
            | InodeBmapPadding
            | BlockBmapPadding
            | BlockUninit
            | InodeUninit
            | InodeBitmapCsumInvalid
            | BlockBitmapCsumInvalid
    )
}

/// Byte offset of the primary superblock.
const SUPERBLOCK_OFFSET: u64 = 1024;

impl Ctx<'_, '_> {
    /// Reports a problem of the inode pass 1 is checking, repairing it only
    /// if no error found in the inode so far was left unrepaired (its other
    /// damage, once repaired as e2fsck would, could change what is right).
    pub(crate) fn ask_inode_fix(&mut self, code: Code, at: At, detail: String) -> bool {
        let unrepaired = |p: &crate::problem::Problem| !p.fixed && matches!(p.code.severity(), Severity::Error | Severity::Fatal);
        if self.problems.get(self.inode_start..).is_some_and(|ps| ps.iter().any(unrepaired)) {
            return self.ask_unrepaired(code, at, detail);
        }
        self.ask(code, at, detail)
    }

    /// Reports a problem of inode `ino` found after pass 1, repairing it
    /// only if no error found in the inode so far was left unrepaired.
    pub(crate) fn ask_fix_for(&mut self, ino: u32, code: Code, at: At, detail: String) -> bool {
        let unrepaired =
            |p: &crate::problem::Problem| p.ino == Some(ino) && !p.fixed && matches!(p.code.severity(), Severity::Error | Severity::Fatal);
        if self.problems.iter().any(unrepaired) {
            return self.ask_unrepaired(code, at, detail);
        }
        self.ask(code, at, detail)
    }

    /// As e2fsck after checking from a backup superblock: the primary
    /// superblock and every descriptor are rewritten from the backup (the
    /// open already cleared the groups' uninit flags), and the check
    /// starts again from the primary.
    pub(crate) fn rewrite_primary_from_backup(&mut self) {
        self.fs.layout.sb.s_block_group_nr.set(0);
        self.mark_super_dirty();
        self.gd_dirty.extend(0..self.fs.geo.group_count);
        self.restart = true;
        if let Some(p) = self.problems.last_mut() {
            p.fixed = true;
        }
    }

    /// The problem reported last turned out not to be repairable.
    pub(crate) fn unfix_last(&mut self) {
        if let Some(p) = self.problems.last_mut() {
            p.fixed = false;
        }
    }

    /// Reports a problem this case of which is not repaired.
    pub(crate) fn ask_unrepaired(&mut self, code: Code, at: At, detail: String) -> bool {
        let held = std::mem::replace(&mut self.hold_repairs, true);
        self.ask(code, at, detail);
        self.hold_repairs = held;
        false
    }

    /// Holds repairs back from now on if an error found so far was left
    /// unrepaired (see the module documentation).
    pub(crate) fn hold_unless_clean(&mut self) {
        let unrepaired = |p: &crate::problem::Problem| !p.fixed && matches!(p.code.severity(), Severity::Error | Severity::Fatal);
        self.hold_repairs = self.dropped > 0 || self.problems.iter().any(unrepaired);
    }

    /// Replaces block `blk` (nothing changes if it already holds `data`).
    pub(crate) fn write_block(&mut self, blk: u64, data: &[u8]) -> Flow {
        if self.fs.img.block(blk)?.is_some_and(|b| b == data) {
            return Ok(());
        }
        if self.fs.img.write(blk, data) {
            self.changed = true;
        }
        Ok(())
    }

    /// Writes inode `ino`'s record `raw` (its checksum set first).
    pub(crate) fn write_inode_raw(&mut self, ino: u32, raw: &mut [u8]) -> Flow {
        if self.fs.csum() {
            set_inode_checksum(self.fs.csum_seed(), ino, raw);
        }
        let Some((blk, off)) = self.fs.inode_loc(ino) else {
            return Err(self.fatal(Code::WriteInode, At::ino(ino), format!("inode {ino} has no inode table to be written to")));
        };
        let Some(mut b) = self.fs.img.block(blk)? else {
            return Err(self.fatal(Code::WriteInode, At::ino(ino), format!("the inode table block {blk} of inode {ino} is past the end")));
        };
        b[off..off + raw.len()].copy_from_slice(raw);
        self.write_block(blk, &b)
    }

    /// Rewrites inode `ino` with `f` as a pass 1 repair: what the pass
    /// learnt about the inode is stale, so the check starts again after it.
    pub(crate) fn fix_inode(&mut self, ino: u32, f: impl FnOnce(&mut [u8])) -> Flow {
        self.restart = true;
        self.update_inode(ino, f)
    }

    /// Reads inode `ino`'s record, changes it with `f` and writes it back.
    pub(crate) fn update_inode(&mut self, ino: u32, f: impl FnOnce(&mut [u8])) -> Flow {
        let Some(mut raw) = self.fs.read_inode_raw(ino)? else {
            return Err(self.fatal(Code::WriteInode, At::ino(ino), format!("inode {ino} cannot be read back")));
        };
        f(&mut raw);
        self.write_inode_raw(ino, &mut raw)
    }

    /// The superblock (in memory) changed.
    pub(crate) fn mark_super_dirty(&mut self) {
        self.sb_dirty = true;
        self.changed = true;
    }

    /// Group `g`'s descriptor (in memory) changed.
    pub(crate) fn mark_group_dirty(&mut self, g: u32) {
        self.gd_dirty.insert(g);
        self.changed = true;
    }

    /// Writes the superblock and the descriptors that changed to their
    /// primary locations (with their checksums).
    pub(crate) fn flush_metadata(&mut self) {
        let fs = &mut self.fs;
        if fs.backup_sb.is_some() && self.mode != crate::Mode::Check && self.changed {
            // Checked from a backup: the primary copies are rewritten.
            self.sb_dirty = true;
            self.gd_dirty.extend(0..fs.geo.group_count);
        }
        let bs = u64::from(fs.bs());
        let ds = fs.geo.desc_size as usize;
        let dpb = u64::from(fs.geo.descs_per_block);
        let dirty: Vec<u32> = std::mem::take(&mut self.gd_dirty).into_iter().collect();
        let mut blocks: std::collections::BTreeMap<u64, Vec<u8>> = std::collections::BTreeMap::new();
        for g in dirty {
            let i = u64::from(g) / dpb;
            let blk = fs.primary_desc_block(i);
            let b = match blocks.entry(blk) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let Ok(Some(b)) = fs.img.block(blk) else { continue };
                    e.insert(b)
                }
            };
            let off = (u64::from(g) % dpb) as usize * ds;
            let raw = &mut b[off..off + ds];
            fs.groups[g as usize].write(raw, ds);
            if fs.geo.has_group_csum() {
                update_group_desc_checksum(&fs.geo, g, raw);
            }
            fs.groups[g as usize].checksum = ext4_ondisk::get_u16(raw, ext4_ondisk::group_desc::GD_CHECKSUM_OFFSET);
        }
        for (blk, b) in blocks {
            if fs.img.block(blk).ok().flatten().is_none_or(|old| old != b) && fs.img.write(blk, &b) {
                self.changed = true;
            }
        }
        if std::mem::take(&mut self.sb_dirty) {
            let fs = &mut self.fs;
            if fs.csum() {
                fs.layout.sb.update_checksum();
            }
            let blk = SUPERBLOCK_OFFSET / bs;
            let off = (SUPERBLOCK_OFFSET % bs) as usize;
            if let Ok(Some(mut b)) = fs.img.block(blk) {
                let bytes = zerocopy::IntoBytes::as_bytes(&fs.layout.sb);
                let same = b[off..off + bytes.len()] == *bytes;
                b[off..off + bytes.len()].copy_from_slice(bytes);
                if !same && fs.img.write(blk, &b) {
                    self.changed = true;
                }
            }
        }
    }
}

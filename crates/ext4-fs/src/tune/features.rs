//! `-O` and `-o`: the feature and default-mount-option edit strings (as
//! e2p's `e2p_edit_feature2` and `e2p_edit_mntopts` read them), and what
//! each feature change does to the filesystem (tune2fs'
//! `update_feature_set`, step by step in its order).

use ext4_ondisk::features::{Feature, FeatureSet, FeatureWords, feature_by_name, feature_name};
use ext4_ondisk::superblock::Geometry;
use ext4_ondisk::{Compat, Incompat, RoCompat};

use super::{CheckRequest, Rewrite, Session};
use crate::error::{Error, Result};

/// Why an edit string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeatureEditError {
    /// A name that is no feature (or mount option).
    #[error("invalid filesystem option set: {spec} (unknown {name:?})")]
    Unknown {
        /// The whole string.
        spec: String,
        /// The unknown word.
        name: String,
    },
    /// A feature this tool cannot turn on.
    #[error("setting filesystem feature '{0}' not supported")]
    CannotSet(String),
    /// A feature this tool cannot turn off.
    #[error("clearing filesystem feature '{0}' not supported")]
    CannotClear(String),
}

/// Features a tune can turn on.
const SET_OK: FeatureWords = FeatureWords {
    compat: Compat::HAS_JOURNAL.union(Compat::DIR_INDEX).union(Compat::FAST_COMMIT).union(Compat::STABLE_INODES).union(Compat::ORPHAN_FILE),
    incompat: Incompat::FILETYPE
        .union(Incompat::EXTENTS)
        .union(Incompat::FLEX_BG)
        .union(Incompat::EA_INODE)
        .union(Incompat::MMP)
        .union(Incompat::ENCRYPT)
        .union(Incompat::CASEFOLD)
        .union(Incompat::CSUM_SEED)
        .union(Incompat::LARGEDIR),
    ro_compat: RoCompat::LARGE_FILE
        .union(RoCompat::HUGE_FILE)
        .union(RoCompat::DIR_NLINK)
        .union(RoCompat::EXTRA_ISIZE)
        .union(RoCompat::GDT_CSUM)
        .union(RoCompat::SPARSE_SUPER)
        .union(RoCompat::METADATA_CSUM)
        .union(RoCompat::READONLY)
        .union(RoCompat::VERITY),
};

/// Features a tune can turn off. (tune2fs also clears `resize_inode`,
/// leaving the inode and the reserved GDT blocks for e2fsck to take back;
/// that is refused here.)
const CLEAR_OK: FeatureWords = FeatureWords {
    compat: Compat::HAS_JOURNAL.union(Compat::DIR_INDEX).union(Compat::FAST_COMMIT).union(Compat::ORPHAN_FILE),
    incompat: Incompat::FILETYPE.union(Incompat::FLEX_BG).union(Incompat::MMP).union(Incompat::CSUM_SEED),
    ro_compat: RoCompat::LARGE_FILE
        .union(RoCompat::HUGE_FILE)
        .union(RoCompat::DIR_NLINK)
        .union(RoCompat::EXTRA_ISIZE)
        .union(RoCompat::GDT_CSUM)
        .union(RoCompat::METADATA_CSUM)
        .union(RoCompat::READONLY),
};

/// The words of an edit string: `[+|-|^]name` separated by commas or
/// blanks.
fn words(spec: &str) -> impl Iterator<Item = (bool, &str)> {
    spec.split(|c: char| c == ',' || c.is_whitespace()).filter(|w| !w.is_empty()).map(|w| match w.as_bytes()[0] {
        b'-' | b'^' => (false, &w[1..]),
        b'+' => (true, &w[1..]),
        _ => (true, w),
    })
}

/// Applies a feature edit string (`has_journal,^dir_index`; `none` clears
/// every feature) to `words`, refusing features a tune cannot change.
pub fn edit_features(mut words_in: FeatureWords, spec: &str) -> std::result::Result<FeatureWords, FeatureEditError> {
    for (on, name) in words(spec) {
        if name.eq_ignore_ascii_case("none") || name.eq_ignore_ascii_case("clear") {
            words_in = FeatureWords::default();
            continue;
        }
        let f = feature_by_name(name).ok_or_else(|| FeatureEditError::Unknown { spec: spec.into(), name: name.into() })?;
        let allowed = if on { SET_OK } else { CLEAR_OK };
        if !allowed.has(f) {
            let n = feature_name(f.set, f.bit);
            return Err(if on { FeatureEditError::CannotSet(n) } else { FeatureEditError::CannotClear(n) });
        }
        words_in.set(f, on);
    }
    Ok(words_in)
}

/// `s_default_mount_opts` bits: the journal mode takes two.
const JOURNAL_MODE: u32 = 0x0060;

/// The default mount option names (`e2p_mntopt2string` order).
const MOUNT_OPTIONS: &[(u32, &str)] = &[
    (0x0001, "debug"),
    (0x0002, "bsdgroups"),
    (0x0004, "user_xattr"),
    (0x0008, "acl"),
    (0x0010, "uid16"),
    (0x0020, "journal_data"),
    (0x0040, "journal_data_ordered"),
    (0x0060, "journal_data_writeback"),
    (0x0100, "nobarrier"),
    (0x0200, "block_validity"),
    (0x0400, "discard"),
    (0x0800, "nodelalloc"),
];

/// Applies a default mount option edit string (`acl,^user_xattr`,
/// `MNTOPT_12`) to `opts`; choosing a journal mode replaces the old one.
pub fn edit_mount_options(mut opts: u32, spec: &str) -> std::result::Result<u32, FeatureEditError> {
    for (on, name) in words(spec) {
        let known = MOUNT_OPTIONS.iter().find(|(_, n)| n.eq_ignore_ascii_case(name)).map(|(m, _)| *m);
        let numbered = || {
            let n = name.get(..7).filter(|p| p.eq_ignore_ascii_case("MNTOPT_")).and(name.get(7..))?;
            n.parse::<u32>().ok().filter(|&b| b < 32).map(|b| 1u32 << b)
        };
        let mask = known.or_else(numbered).ok_or_else(|| FeatureEditError::Unknown { spec: spec.into(), name: name.into() })?;
        if mask & JOURNAL_MODE != 0 {
            opts &= !JOURNAL_MODE;
        }
        if on {
            opts |= mask;
        } else {
            opts &= !mask;
        }
    }
    Ok(opts)
}

fn has(w: &FeatureWords, set: FeatureSet, bit: u32) -> bool {
    w.word(set) & bit != 0
}

impl Session<'_> {
    /// Whether `f` goes from off to on between `old` and the superblock now.
    fn turned_on(&self, old: &FeatureWords, set: FeatureSet, bit: u32) -> bool {
        !has(old, set, bit) && has(&self.fs.sb.features(), set, bit)
    }

    fn turned_off(&self, old: &FeatureWords, set: FeatureSet, bit: u32) -> bool {
        has(old, set, bit) && !has(&self.fs.sb.features(), set, bit)
    }

    fn change_feature(&mut self, set: FeatureSet, bit: u32, on: bool) {
        let mut w = self.fs.sb.features();
        w.set(Feature { set, bit, name: "" }, on);
        self.fs.sb.set_features(w);
    }

    /// `-O`: the edit, then what each change needs, in tune2fs' order.
    pub(super) fn update_features(&mut self, spec: &str) -> Result<()> {
        use FeatureSet::{Compat as C, Incompat as I, RoCompat as R};
        let mut old = self.fs.sb.features();
        let new = edit_features(old, spec).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        self.dirty |= new != old;
        self.fs.sb.set_features(new);
        if self.turned_off(&old, C, Compat::HAS_JOURNAL.bits()) {
            self.remove_journal()?;
        }
        if self.turned_off(&old, C, Compat::ORPHAN_FILE.bits()) {
            self.remove_orphan_file()?;
        }
        if self.turned_on(&old, C, Compat::ORPHAN_FILE.bits()) {
            if !self.fs.sb.features().compat.contains(Compat::HAS_JOURNAL) {
                return Err(Error::InvalidArgument("the orphan_file feature can be set only for filesystems with a journal".into()));
            }
            self.orphan_file_blocks = Some(self.default_orphan_file_blocks());
        }
        if self.turned_on(&old, R, RoCompat::SPARSE_SUPER.bits()) {
            if self.fs.sb.features().incompat.contains(Incompat::META_BG) {
                return Err(Error::InvalidArgument("setting sparse_super is not supported with meta_bg".into()));
            }
            self.drop_sparse_backups()?;
        }
        if self.turned_on(&old, I, Incompat::MMP.bits()) {
            self.enable_mmp()?;
        }
        if self.turned_off(&old, I, Incompat::MMP.bits()) {
            self.disable_mmp()?;
        }
        if self.turned_on(&old, C, Compat::HAS_JOURNAL.bits()) {
            // Set again once the journal exists (add_journal).
            self.journal_blocks.get_or_insert(super::JournalSize::Default);
            self.change_feature(C, Compat::HAS_JOURNAL.bits(), false);
        }
        if self.turned_on(&old, C, Compat::DIR_INDEX.bits()) {
            self.dir_index_on();
        }
        if self.turned_off(&old, C, Compat::DIR_INDEX.bits()) {
            self.dir_index_off()?;
        }
        if self.turned_off(&old, I, Incompat::FLEX_BG.bits()) {
            self.check_tables_in_groups()?;
        }
        let (large_off, huge_off) =
            (self.turned_off(&old, R, RoCompat::LARGE_FILE.bits()), self.turned_off(&old, R, RoCompat::HUGE_FILE.bits()));
        if large_off || huge_off {
            self.check_no_inode_needs(large_off, huge_off)?;
        }
        self.update_csum_features(&mut old, spec)?;
        if self.turned_on(&old, I, Incompat::ENCRYPT.bits()) {
            // EXT4_ENCRYPTION_MODE_AES_256_XTS, EXT4_ENCRYPTION_MODE_AES_256_CTS.
            self.fs.sb.s_encrypt_algos[0] = 1;
            self.fs.sb.s_encrypt_algos[1] = 4;
        }
        if self.turned_on(&old, I, Incompat::CASEFOLD.bits()) {
            // EXT4_ENC_UTF8_12_1 and its default flags (none); the library
            // writes no file on a casefold filesystem after this.
            self.fs.sb.s_encoding.set(1);
            self.fs.sb.s_encoding_flags.set(0);
        }
        self.update_seed_feature(&old)?;
        if self.fs.sb.s_rev_level.get() == 0 && self.fs.sb.features() != FeatureWords::default() {
            self.update_dynamic_rev();
        }
        let changed = |set, bit| has(&old, set, bit) != has(&self.fs.sb.features(), set, bit);
        if changed(I, Incompat::FILETYPE.bits()) {
            self.entry_types = Some(self.fs.sb.features().incompat.contains(Incompat::FILETYPE));
        }
        let needs_check = self.turned_off(&old, R, RoCompat::HUGE_FILE.bits())
            || changed(C, Compat::RESIZE_INODE.bits())
            || self.turned_off(&old, R, RoCompat::LARGE_FILE.bits());
        if needs_check {
            self.request_check(CheckRequest::Full);
        }
        self.refresh_geometry(true)
    }

    /// `metadata_csum` and `uninit_bg` on or off. `old` is adjusted as
    /// tune2fs adjusts it: `metadata_csum` stands in for `uninit_bg`.
    fn update_csum_features(&mut self, old: &mut FeatureWords, spec: &str) -> Result<()> {
        use FeatureSet::RoCompat as R;
        let (mcsum, gdt) = (RoCompat::METADATA_CSUM.bits(), RoCompat::GDT_CSUM.bits());
        if self.turned_on(old, R, mcsum) {
            self.require_checked("enabling checksums")?;
            if !self.fs.sb.features().incompat.contains(Incompat::EXTENTS) {
                self.out.notes.push("Extents are not enabled: block maps cannot be checksummed (re-run with -O extent).".into());
            }
            if !self.fs.sb.features().incompat.contains(Incompat::BIT64) {
                self.out.notes.push("64-bit filesystem support is not enabled: checksums of bitmaps are 16-bit.".into());
            }
            self.rewrite.merge(Rewrite::ALL);
            self.fs.sb.s_checksum_type = ext4_ondisk::superblock::CHECKSUM_TYPE_CRC32C;
            self.change_feature(R, gdt, false);
            if !old.ro_compat.contains(RoCompat::GDT_CSUM) {
                self.enable_uninit_bg();
            }
            old.ro_compat.remove(RoCompat::GDT_CSUM);
        }
        if self.turned_off(old, R, mcsum) {
            self.require_checked("disabling checksums")?;
            self.rewrite.merge(Rewrite::ALL);
            // uninit_bg takes over unless the same edit turns it off.
            let mut test = *old;
            test.ro_compat.insert(RoCompat::GDT_CSUM);
            let keep_uninit = edit_features(test, spec).is_ok_and(|w| w.ro_compat.contains(RoCompat::GDT_CSUM));
            if keep_uninit {
                self.change_feature(R, gdt, true);
                old.ro_compat.insert(RoCompat::GDT_CSUM);
            } else {
                self.disable_uninit_bg(true)?;
            }
            self.fs.sb.s_checksum_seed.set(0);
            self.change_feature(FeatureSet::Incompat, Incompat::CSUM_SEED.bits(), false);
        }
        if self.turned_on(old, R, gdt) {
            if self.fs.sb.features().ro_compat.contains(RoCompat::METADATA_CSUM) {
                self.change_feature(R, gdt, false);
            } else {
                self.enable_uninit_bg();
            }
        }
        if self.turned_off(old, R, gdt) {
            self.disable_uninit_bg(false)?;
        }
        Ok(())
    }

    /// `metadata_csum_seed` on (the seed is stored) or off (a seed that no
    /// longer equals crc32c of the UUID means rewriting every checksum).
    fn update_seed_feature(&mut self, old: &FeatureWords) -> Result<()> {
        use FeatureSet::Incompat as I;
        let seed = Incompat::CSUM_SEED.bits();
        if self.turned_on(old, I, seed) {
            if !self.fs.sb.features().ro_compat.contains(RoCompat::METADATA_CSUM) {
                return Err(Error::InvalidArgument("metadata_csum_seed needs the metadata_csum feature".into()));
            }
            // libext2fs' seed as opened: 0 unless the filesystem had
            // checksums or EA inodes (so turning both features on at once
            // stores a seed of 0, as tune2fs does).
            let had = old.ro_compat.contains(RoCompat::METADATA_CSUM) || old.incompat.contains(Incompat::EA_INODE);
            self.fs.sb.s_checksum_seed.set(if had { self.old.seed } else { 0 });
        }
        if self.turned_off(old, I, seed) {
            let uuid_seed = ext4_ondisk::checksum::crc32c(!0, &self.fs.sb.s_uuid);
            if self.fs.sb.s_checksum_seed.get() != uuid_seed {
                self.require_checked("recalculating checksums for the UUID")?;
                self.rewrite.merge(Rewrite::ALL);
            }
        }
        Ok(())
    }

    /// `dir_index` on: a default hash and a hash seed if there are none.
    fn dir_index_on(&mut self) {
        let sb = &mut self.fs.sb;
        if sb.s_def_hash_version == 0 {
            sb.s_def_hash_version = 1;
        }
        if sb.hash_seed().iter().all(|&w| w == 0) {
            let seed = super::alloc::random_uuid();
            for (i, w) in sb.s_hash_seed.iter_mut().enumerate() {
                w.set(ext4_ondisk::get_u32(&seed, i * 4));
            }
        }
    }

    /// `dir_index` off: every directory loses its htree flag (and with
    /// checksums its index blocks become leaf blocks with tails). tune2fs
    /// does this only with checksums, leaving htree flags e2fsck complains
    /// about otherwise.
    fn dir_index_off(&mut self) -> Result<()> {
        if self.fs.sb.features().ro_compat.contains(RoCompat::METADATA_CSUM) {
            self.require_checked("disabling the directory index on a filesystem with checksums")?;
            self.rewrite.dirs = true;
        } else {
            self.clear_index_flags = true;
        }
        Ok(())
    }

    /// Clears the htree flag of every directory in use (without checksums
    /// nothing else changes: the index blocks read as empty leaves).
    pub(super) fn clear_htree_flags(&mut self) -> Result<()> {
        self.for_each_inode_in_use(|s, mut ib| {
            if ib.is_dir() && ib.inode.flags.contains(ext4_ondisk::InodeFlags::INDEX) {
                ib.inode.flags.remove(ext4_ondisk::InodeFlags::INDEX);
                ib.inode.write(&mut ib.raw);
                s.put_inode_raw(ib.ino, &mut ib.raw)?;
            }
            Ok(())
        })
    }

    /// `sparse_super` on: groups that no longer keep a backup free its
    /// superblock and descriptor copy (tune2fs leaves them in use for
    /// e2fsck to free). A filesystem without sparse_super has no resize
    /// inode, so nothing else maps those blocks.
    fn drop_sparse_backups(&mut self) -> Result<()> {
        let before = self.fs.geo.clone();
        let after = Geometry::new(&self.fs.sb).map_err(|e| Error::format(&e, crate::error::Location::Superblock))?;
        let copy = 1 + u64::from(before.old_desc_blocks()) + u64::from(before.reserved_gdt_blocks);
        for g in 1..before.group_count {
            let (Some(b), None) = (before.group_layout(g).super_blk, after.group_layout(g).super_blk) else { continue };
            let n = copy.min(u64::from(before.blocks_in_group(g)));
            let uninit = before.has_group_csum() && self.fs.groups[g as usize].flags.contains(ext4_ondisk::GroupDescFlags::BLOCK_UNINIT);
            if uninit {
                // The bitmap is still computed from the layout, now without the copy.
                self.fs.groups[g as usize].free_blocks_count += n as u32;
                let free = self.fs.sb.free_blocks_count() + n;
                self.fs.sb.set_free_blocks_count(free);
            } else {
                self.fs.op_without_undo(|t| t.free_blocks(b, n, true))?;
            }
        }
        self.fs.op_without_undo(|t| t.apply_pending_frees())?;
        self.descs_changed = true;
        Ok(())
    }

    /// Clearing `flex_bg` needs every group's bitmaps and inode table inside it.
    fn check_tables_in_groups(&self) -> Result<()> {
        let geo = &self.fs.geo;
        for (g, d) in self.fs.groups.iter().enumerate() {
            let first = geo.group_first_block(g as u32);
            let end = first + u64::from(geo.blocks_in_group(g as u32));
            let inside = |b: u64, n: u64| b >= first && b + n <= end;
            if !inside(d.block_bitmap, 1) || !inside(d.inode_bitmap, 1) || !inside(d.inode_table, u64::from(geo.inode_table_blocks)) {
                return Err(Error::InvalidArgument(format!(
                    "clearing flex_bg would leave group {g}'s bitmaps or inode table outside it: the filesystem would be inconsistent"
                )));
            }
        }
        Ok(())
    }

    /// Clearing `large_file` or `huge_file` while an inode needs it would
    /// leave what e2fsck sets back (tune2fs asks for that check; this
    /// refuses instead): a regular file of 2 GiB or more (the resize
    /// inode is one), an inode counting its blocks in filesystem blocks or
    /// beyond 32 bits.
    fn check_no_inode_needs(&mut self, large: bool, huge: bool) -> Result<()> {
        self.for_each_inode_in_use(|_, ib| {
            let ino = ib.ino;
            let regular = ib.inode.mode & ext4_ondisk::inode::S_IFMT == 0x8000;
            if large && regular && ib.inode.size >= 1 << 31 {
                return Err(Error::InvalidArgument(format!("clearing large_file: inode {ino} is a file of 2 GiB or more")));
            }
            if huge && (ib.inode.flags.contains(ext4_ondisk::InodeFlags::HUGE_FILE) || ib.inode.blocks >> 32 != 0) {
                return Err(Error::InvalidArgument(format!("clearing huge_file: inode {ino} needs it")));
            }
            Ok(())
        })
    }

    /// `ext2fs_update_dynamic_rev`: a revision 0 filesystem gaining features.
    fn update_dynamic_rev(&mut self) {
        let sb = &mut self.fs.sb;
        sb.s_rev_level.set(1);
        sb.s_first_ino.set(ext4_ondisk::ino::GOOD_OLD_FIRST);
        sb.s_inode_size.set(ext4_ondisk::inode::GOOD_OLD_INODE_SIZE as u16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_edits() {
        let w = FeatureWords { compat: Compat::HAS_JOURNAL | Compat::DIR_INDEX, ..Default::default() };
        let e = edit_features(w, "^has_journal, metadata_csum,+large_dir").unwrap();
        assert_eq!(e.compat, Compat::DIR_INDEX);
        assert!(e.ro_compat.contains(RoCompat::METADATA_CSUM) && e.incompat.contains(Incompat::LARGEDIR));
        assert_eq!(edit_features(w, "none").unwrap(), FeatureWords::default());
        assert!(matches!(edit_features(w, "bogus"), Err(FeatureEditError::Unknown { .. })));
        assert_eq!(edit_features(w, "64bit"), Err(FeatureEditError::CannotSet("64bit".into())));
        assert_eq!(edit_features(w, "^extent"), Err(FeatureEditError::CannotClear("extent".into())));
    }

    #[test]
    fn mount_option_edits() {
        assert_eq!(edit_mount_options(0x000c, "^acl,journal_data").unwrap(), 0x0024);
        assert_eq!(edit_mount_options(0x0020, "journal_data_ordered").unwrap(), 0x0040);
        assert_eq!(edit_mount_options(0, "MNTOPT_12").unwrap(), 0x1000);
        assert!(edit_mount_options(0, "nosuch").is_err());
    }
}

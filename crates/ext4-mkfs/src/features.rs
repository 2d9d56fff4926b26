//! Which features mke2fs accepts on its command line (`ok_features` in
//! misc/mke2fs.c), which of those this formatter creates, and how a list of
//! [`FeatureEdit`]s is applied (`e2p_edit_feature2`).

use ext4_ondisk::features::{Feature, FeatureSet, FeatureWords, feature_by_name};
use ext4_ondisk::{Compat, Incompat, RoCompat};

use crate::MkfsError;
use crate::options::FeatureEdit;

/// Features mke2fs 1.47.0 lets `-O` set or clear.
const MKE2FS_OK: FeatureWords = FeatureWords {
    compat: Compat::HAS_JOURNAL
        .union(Compat::RESIZE_INODE)
        .union(Compat::DIR_INDEX)
        .union(Compat::EXT_ATTR)
        .union(Compat::SPARSE_SUPER2)
        .union(Compat::FAST_COMMIT)
        .union(Compat::STABLE_INODES)
        .union(Compat::ORPHAN_FILE),
    incompat: Incompat::FILETYPE
        .union(Incompat::EXTENTS)
        .union(Incompat::JOURNAL_DEV)
        .union(Incompat::META_BG)
        .union(Incompat::FLEX_BG)
        .union(Incompat::EA_INODE)
        .union(Incompat::MMP)
        .union(Incompat::BIT64)
        .union(Incompat::INLINE_DATA)
        .union(Incompat::ENCRYPT)
        .union(Incompat::CASEFOLD)
        .union(Incompat::CSUM_SEED)
        .union(Incompat::LARGEDIR),
    ro_compat: RoCompat::LARGE_FILE
        .union(RoCompat::HUGE_FILE)
        .union(RoCompat::DIR_NLINK)
        .union(RoCompat::EXTRA_ISIZE)
        .union(RoCompat::SPARSE_SUPER)
        .union(RoCompat::GDT_CSUM)
        .union(RoCompat::BIGALLOC)
        .union(RoCompat::QUOTA)
        .union(RoCompat::METADATA_CSUM)
        .union(RoCompat::PROJECT)
        .union(RoCompat::VERITY),
};

/// Features of [`MKE2FS_OK`] this formatter does not create.
const UNSUPPORTED: FeatureWords = FeatureWords {
    compat: Compat::FAST_COMMIT.union(Compat::STABLE_INODES),
    incompat: Incompat::ENCRYPT.union(Incompat::CASEFOLD),
    ro_compat: RoCompat::BIGALLOC.union(RoCompat::QUOTA).union(RoCompat::PROJECT).union(RoCompat::VERITY),
};

/// Whether this formatter creates feature `f`.
fn supported(f: Feature) -> bool {
    MKE2FS_OK.has(f) && !UNSUPPORTED.has(f)
}

fn lookup(name: &str) -> Result<Feature, MkfsError> {
    feature_by_name(name).ok_or_else(|| MkfsError::UnknownFeature { name: name.to_string() })
}

/// Applies `edits` to `words` as mke2fs does; a feature outside mke2fs'
/// list, or that this formatter cannot create, is an error.
pub fn apply(words: &mut FeatureWords, edits: &[FeatureEdit]) -> Result<(), MkfsError> {
    for e in edits {
        match e {
            FeatureEdit::ClearAll => *words = FeatureWords::default(),
            FeatureEdit::Set(name) => {
                let f = lookup(name)?;
                if !supported(f) {
                    return Err(MkfsError::UnsupportedFeature { name: name.clone() });
                }
                words.set(f, true);
            }
            FeatureEdit::Clear(name) => {
                let f = lookup(name)?;
                if !MKE2FS_OK.has(f) {
                    return Err(MkfsError::UnsupportedFeature { name: name.clone() });
                }
                words.set(f, false);
            }
        }
    }
    Ok(())
}

/// Applies a profile feature string (`base_features`, a type's `features`).
pub fn apply_str(words: &mut FeatureWords, list: &str) -> Result<(), MkfsError> {
    apply(words, &crate::parse::parse_features(list)?)
}

/// Shorthand: whether an incompat feature is on.
pub fn has_incompat(w: &FeatureWords, f: Incompat) -> bool {
    w.incompat.contains(f)
}

/// Shorthand: whether a compat feature is on.
pub fn has_compat(w: &FeatureWords, f: Compat) -> bool {
    w.compat.contains(f)
}

/// Shorthand: whether a ro_compat feature is on.
pub fn has_ro(w: &FeatureWords, f: RoCompat) -> bool {
    w.ro_compat.contains(f)
}

/// Sets or clears an incompat feature.
pub fn set_incompat(w: &mut FeatureWords, f: Incompat, on: bool) {
    w.set(Feature { set: FeatureSet::Incompat, bit: f.bits(), name: "" }, on);
}

/// Sets or clears a compat feature.
pub fn set_compat(w: &mut FeatureWords, f: Compat, on: bool) {
    w.set(Feature { set: FeatureSet::Compat, bit: f.bits(), name: "" }, on);
}

/// Sets or clears a ro_compat feature.
pub fn set_ro(w: &mut FeatureWords, f: RoCompat, on: bool) {
    w.set(Feature { set: FeatureSet::RoCompat, bit: f.bits(), name: "" }, on);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_features;

    fn check(list: &str, want_ok: bool) {
        let mut w = FeatureWords::default();
        let r = apply(&mut w, &parse_features(list).unwrap());
        assert_eq!(r.is_ok(), want_ok, "{list}: {r:?}");
    }

    #[test]
    fn accepted_and_refused() {
        check("has_journal,extents,64bit,metadata_csum,orphan_file,inline_data,meta_bg,mmp", true);
        check("^quota,^bigalloc", true);
        check("bigalloc", false);
        check("quota", false);
        check("needs_recovery", false);
        check("^needs_recovery", false);
        let mut w = FeatureWords::default();
        apply(&mut w, &parse_features("64bit,^64bit,flex_bg").unwrap()).unwrap();
        assert!(!w.incompat.contains(Incompat::BIT64));
        assert!(w.incompat.contains(Incompat::FLEX_BG));
    }
}

//! The three feature-flag sets of the superblock, with their mke2fs names.
//!
//! Unknown bits are kept (`from_bits_retain`) so that a filesystem with a
//! feature this crate does not know can be refused by name ("unknown
//! incompat feature 0x80000") rather than silently misread.

use bitflags::bitflags;

bitflags! {
    /// `s_feature_compat`: a reader that does not know these may still read and write.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Compat: u32 {
        /// `dir_prealloc`
        const DIR_PREALLOC = 0x0001;
        /// `imagic_inodes`
        const IMAGIC_INODES = 0x0002;
        /// `has_journal`
        const HAS_JOURNAL = 0x0004;
        /// `ext_attr`
        const EXT_ATTR = 0x0008;
        /// `resize_inode`
        const RESIZE_INODE = 0x0010;
        /// `dir_index`
        const DIR_INDEX = 0x0020;
        /// `lazy_bg`
        const LAZY_BG = 0x0040;
        /// `snapshot_bitmap` (exclude bitmap)
        const EXCLUDE_BITMAP = 0x0100;
        /// `sparse_super2`
        const SPARSE_SUPER2 = 0x0200;
        /// `fast_commit`
        const FAST_COMMIT = 0x0400;
        /// `stable_inodes`
        const STABLE_INODES = 0x0800;
        /// `orphan_file`
        const ORPHAN_FILE = 0x1000;
    }
}

bitflags! {
    /// `s_feature_incompat`: a reader that does not know one of these must not open the filesystem.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Incompat: u32 {
        /// `compression`
        const COMPRESSION = 0x0001;
        /// `filetype`: directory entries carry the file type.
        const FILETYPE = 0x0002;
        /// `needs_recovery`: the journal must be replayed.
        const RECOVER = 0x0004;
        /// `journal_dev`: this is an external journal device.
        const JOURNAL_DEV = 0x0008;
        /// `meta_bg`
        const META_BG = 0x0010;
        /// `extent`
        const EXTENTS = 0x0040;
        /// `64bit`
        const BIT64 = 0x0080;
        /// `mmp`: multi-mount protection.
        const MMP = 0x0100;
        /// `flex_bg`
        const FLEX_BG = 0x0200;
        /// `ea_inode`: large xattr values in inodes.
        const EA_INODE = 0x0400;
        /// `dirdata`
        const DIRDATA = 0x1000;
        /// `metadata_csum_seed`: the checksum seed is stored in the superblock.
        const CSUM_SEED = 0x2000;
        /// `large_dir`: 3-level htrees and directories over 2 GiB.
        const LARGEDIR = 0x4000;
        /// `inline_data`
        const INLINE_DATA = 0x8000;
        /// `encrypt`
        const ENCRYPT = 0x10000;
        /// `casefold`
        const CASEFOLD = 0x20000;
    }
}

bitflags! {
    /// `s_feature_ro_compat`: a reader that does not know one of these may only read.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct RoCompat: u32 {
        /// `sparse_super`
        const SPARSE_SUPER = 0x0001;
        /// `large_file`
        const LARGE_FILE = 0x0002;
        /// `btree_dir` (never used)
        const BTREE_DIR = 0x0004;
        /// `huge_file`
        const HUGE_FILE = 0x0008;
        /// `uninit_bg` (`gdt_csum`)
        const GDT_CSUM = 0x0010;
        /// `dir_nlink`
        const DIR_NLINK = 0x0020;
        /// `extra_isize`
        const EXTRA_ISIZE = 0x0040;
        /// `has_snapshot`
        const HAS_SNAPSHOT = 0x0080;
        /// `quota`
        const QUOTA = 0x0100;
        /// `bigalloc`
        const BIGALLOC = 0x0200;
        /// `metadata_csum`
        const METADATA_CSUM = 0x0400;
        /// `replica`
        const REPLICA = 0x0800;
        /// `read-only`
        const READONLY = 0x1000;
        /// `project`
        const PROJECT = 0x2000;
        /// `shared_blocks`
        const SHARED_BLOCKS = 0x4000;
        /// `verity`
        const VERITY = 0x8000;
        /// `orphan_present`: the orphan file has entries.
        const ORPHAN_PRESENT = 0x10000;
    }
}

impl Incompat {
    /// Incompat features this project reads and writes.
    pub const SUPPORTED: Self = Self::FILETYPE
        .union(Self::RECOVER)
        .union(Self::META_BG)
        .union(Self::EXTENTS)
        .union(Self::BIT64)
        .union(Self::MMP)
        .union(Self::FLEX_BG)
        .union(Self::EA_INODE)
        .union(Self::CSUM_SEED)
        .union(Self::LARGEDIR)
        .union(Self::INLINE_DATA);
}

impl RoCompat {
    /// Ro-compat features this project can write; any other set bit makes
    /// the filesystem read-only.
    pub const WRITABLE: Self = Self::SPARSE_SUPER
        .union(Self::LARGE_FILE)
        .union(Self::HUGE_FILE)
        .union(Self::GDT_CSUM)
        .union(Self::DIR_NLINK)
        .union(Self::EXTRA_ISIZE)
        .union(Self::METADATA_CSUM)
        .union(Self::BIGALLOC)
        .union(Self::ORPHAN_PRESENT);
}

/// Which of the three sets a feature belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureSet {
    /// `s_feature_compat`
    Compat,
    /// `s_feature_incompat`
    Incompat,
    /// `s_feature_ro_compat`
    RoCompat,
}

/// A feature: its set, its bit and its mke2fs name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    /// The set it belongs to.
    pub set: FeatureSet,
    /// Its bit within the set.
    pub bit: u32,
    /// The name mke2fs, tune2fs and dumpe2fs use.
    pub name: &'static str,
}

const fn f(set: FeatureSet, bit: u32, name: &'static str) -> Feature {
    Feature { set, bit, name }
}

/// Every named feature, in the order dumpe2fs lists them (compat, ro_compat
/// and incompat interleaved by bit within each set); aliases come after the
/// canonical name and are only used for parsing.
pub const FEATURES: &[Feature] = {
    use FeatureSet::*;
    &[
        f(Compat, 0x0001, "dir_prealloc"),
        f(Compat, 0x0004, "has_journal"),
        f(Compat, 0x0002, "imagic_inodes"),
        f(Compat, 0x0008, "ext_attr"),
        f(Compat, 0x0020, "dir_index"),
        f(Compat, 0x0010, "resize_inode"),
        f(Compat, 0x0040, "lazy_bg"),
        f(Compat, 0x0100, "snapshot_bitmap"),
        f(Compat, 0x0200, "sparse_super2"),
        f(Compat, 0x0400, "fast_commit"),
        f(Compat, 0x0800, "stable_inodes"),
        f(Compat, 0x1000, "orphan_file"),
        f(RoCompat, 0x0001, "sparse_super"),
        f(RoCompat, 0x0002, "large_file"),
        f(RoCompat, 0x0008, "huge_file"),
        f(RoCompat, 0x0010, "uninit_bg"),
        f(RoCompat, 0x0010, "uninit_groups"),
        f(RoCompat, 0x0020, "dir_nlink"),
        f(RoCompat, 0x0040, "extra_isize"),
        f(RoCompat, 0x0100, "quota"),
        f(RoCompat, 0x0200, "bigalloc"),
        f(RoCompat, 0x0400, "metadata_csum"),
        f(RoCompat, 0x0800, "replica"),
        f(RoCompat, 0x1000, "read-only"),
        f(RoCompat, 0x2000, "project"),
        f(RoCompat, 0x4000, "shared_blocks"),
        f(RoCompat, 0x8000, "verity"),
        f(RoCompat, 0x10000, "orphan_present"),
        f(Incompat, 0x0001, "compression"),
        f(Incompat, 0x0002, "filetype"),
        f(Incompat, 0x0004, "needs_recovery"),
        f(Incompat, 0x0008, "journal_dev"),
        f(Incompat, 0x0040, "extent"),
        f(Incompat, 0x0040, "extents"),
        f(Incompat, 0x0010, "meta_bg"),
        f(Incompat, 0x0080, "64bit"),
        f(Incompat, 0x0100, "mmp"),
        f(Incompat, 0x0200, "flex_bg"),
        f(Incompat, 0x0400, "ea_inode"),
        f(Incompat, 0x1000, "dirdata"),
        f(Incompat, 0x2000, "metadata_csum_seed"),
        f(Incompat, 0x4000, "large_dir"),
        f(Incompat, 0x8000, "inline_data"),
        f(Incompat, 0x10000, "encrypt"),
        f(Incompat, 0x20000, "casefold"),
        f(Incompat, 0x20000, "fname_encoding"),
    ]
};

/// Looks a feature up by its mke2fs name (case-insensitive), or by the
/// `FEATURE_C12`/`FEATURE_I3`/`FEATURE_R7` bit-number form e2p also accepts.
pub fn feature_by_name(name: &str) -> Option<Feature> {
    if let Some(found) = FEATURES.iter().find(|f| f.name.eq_ignore_ascii_case(name)) {
        return Some(*found);
    }
    let rest = name.strip_prefix("FEATURE_").or_else(|| name.strip_prefix("feature_"))?;
    let (set, num) = match rest.as_bytes().first()? {
        b'C' | b'c' => (FeatureSet::Compat, &rest[1..]),
        b'I' | b'i' => (FeatureSet::Incompat, &rest[1..]),
        b'R' | b'r' => (FeatureSet::RoCompat, &rest[1..]),
        _ => return None,
    };
    let bit: u32 = num.parse().ok().filter(|b| *b < 32)?;
    Some(Feature { set, bit: 1 << bit, name: "" })
}

/// The canonical name of one feature bit, or `FEATURE_<set><bit>` for unknown bits.
pub fn feature_name(set: FeatureSet, bit: u32) -> String {
    if let Some(found) = FEATURES.iter().find(|f| f.set == set && f.bit == bit) {
        return found.name.to_string();
    }
    let letter = match set {
        FeatureSet::Compat => 'C',
        FeatureSet::Incompat => 'I',
        FeatureSet::RoCompat => 'R',
    };
    format!("FEATURE_{letter}{}", bit.trailing_zeros())
}

/// The three feature words together, as found in the superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeatureWords {
    /// `s_feature_compat`
    pub compat: Compat,
    /// `s_feature_incompat`
    pub incompat: Incompat,
    /// `s_feature_ro_compat`
    pub ro_compat: RoCompat,
}

impl FeatureWords {
    /// The raw word of one set.
    pub fn word(&self, set: FeatureSet) -> u32 {
        match set {
            FeatureSet::Compat => self.compat.bits(),
            FeatureSet::Incompat => self.incompat.bits(),
            FeatureSet::RoCompat => self.ro_compat.bits(),
        }
    }

    /// Sets or clears one feature.
    pub fn set(&mut self, feature: Feature, on: bool) {
        let apply = |w: u32| {
            if on { w | feature.bit } else { w & !feature.bit }
        };
        match feature.set {
            FeatureSet::Compat => self.compat = Compat::from_bits_retain(apply(self.compat.bits())),
            FeatureSet::Incompat => self.incompat = Incompat::from_bits_retain(apply(self.incompat.bits())),
            FeatureSet::RoCompat => self.ro_compat = RoCompat::from_bits_retain(apply(self.ro_compat.bits())),
        }
    }

    /// Whether a feature is set.
    pub fn has(&self, feature: Feature) -> bool {
        self.word(feature.set) & feature.bit != 0
    }

    /// Canonical names of every set bit, in dumpe2fs order.
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for set in [FeatureSet::Compat, FeatureSet::RoCompat, FeatureSet::Incompat] {
            let word = self.word(set);
            // Known bits in table order first (deduplicating aliases), then unknown ones.
            let mut seen = 0u32;
            for feat in FEATURES.iter().filter(|f| f.set == set) {
                if word & feat.bit != 0 && seen & feat.bit == 0 {
                    seen |= feat.bit;
                    out.push(feat.name.to_string());
                }
            }
            for bit in 0..32 {
                let b = 1u32 << bit;
                if word & b != 0 && seen & b == 0 {
                    out.push(feature_name(set, b));
                }
            }
        }
        out
    }

    /// Incompat bits this project does not support (refuse to open).
    pub fn unsupported_incompat(&self) -> Incompat {
        self.incompat.difference(Incompat::SUPPORTED)
    }

    /// Ro-compat bits this project cannot write (open read-only).
    pub fn unwritable_ro_compat(&self) -> RoCompat {
        self.ro_compat.difference(RoCompat::WRITABLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for feat in FEATURES {
            let found = feature_by_name(feat.name).unwrap();
            assert_eq!((found.set, found.bit), (feat.set, feat.bit));
        }
        assert_eq!(feature_by_name("FEATURE_I17").unwrap().bit, 0x20000);
        assert!(feature_by_name("no_such_feature").is_none());
    }

    #[test]
    fn unknown_bits_are_named() {
        let w = FeatureWords { incompat: Incompat::from_bits_retain(0x8000_0002), ..Default::default() };
        assert_eq!(w.names(), vec!["filetype".to_string(), "FEATURE_I31".to_string()]);
        assert_eq!(w.unsupported_incompat().bits(), 0x8000_0000);
    }
}

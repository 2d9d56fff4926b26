//! The built-in `mke2fs.conf` profiles and mke2fs' rules for looking values
//! up in them (`get_string_from_profile` and friends in misc/mke2fs.c).
//!
//! Nothing is read from `/etc` at run time; [`Profile::to_conf`] renders a
//! profile as an `mke2fs.conf` file so that the real mke2fs can be run with
//! exactly the same defaults (`MKE2FS_CONFIG=...`).

/// One `[fs_types]` stanza: a name and its relations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsTypeStanza {
    /// The type name (`ext4`, `small`, ...).
    pub name: &'static str,
    /// Its `key = value` relations.
    pub relations: &'static [(&'static str, &'static str)],
}

/// A complete mke2fs profile: `[defaults]` and `[fs_types]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// A short name for messages.
    pub name: &'static str,
    /// The `[defaults]` relations.
    pub defaults: &'static [(&'static str, &'static str)],
    /// The `[fs_types]` stanzas.
    pub fs_types: &'static [FsTypeStanza],
}

const DEFAULTS: &[(&str, &str)] = &[
    ("base_features", "sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr"),
    ("default_mntopts", "acl,user_xattr"),
    ("enable_periodic_fsck", "0"),
    ("blocksize", "4096"),
    ("inode_size", "256"),
    ("inode_ratio", "16384"),
];

const fn stanza(name: &'static str, relations: &'static [(&'static str, &'static str)]) -> FsTypeStanza {
    FsTypeStanza { name, relations }
}

/// The size and usage stanzas shared by both profiles, after `ext3`/`ext4`.
macro_rules! common_types {
    ($ext4:expr) => {
        &[
            stanza("ext3", &[("features", "has_journal")]),
            stanza("ext4", &[("features", $ext4)]),
            stanza("small", &[("blocksize", "1024"), ("inode_ratio", "4096")]),
            stanza("floppy", &[("blocksize", "1024"), ("inode_ratio", "8192")]),
            stanza("big", &[("inode_ratio", "32768")]),
            stanza("huge", &[("inode_ratio", "65536")]),
            stanza("news", &[("inode_ratio", "4096")]),
            stanza("largefile", &[("inode_ratio", "1048576"), ("blocksize", "-1")]),
            stanza("largefile4", &[("inode_ratio", "4194304"), ("blocksize", "-1")]),
            stanza("hurd", &[("blocksize", "4096"), ("inode_size", "128"), ("warn_y2038_dates", "0")]),
        ]
    };
}

impl Profile {
    /// Debian's `/etc/mke2fs.conf` of e2fsprogs 1.47.0-2: ext4 without
    /// `metadata_csum_seed` and `orphan_file`.
    pub const DEBIAN: Profile = Profile {
        name: "debian",
        defaults: DEFAULTS,
        fs_types: common_types!("has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize"),
    };

    /// Upstream e2fsprogs 1.47.0's `misc/mke2fs.conf.in`: Debian's plus
    /// `metadata_csum_seed` and `orphan_file` for ext4.
    pub const UPSTREAM: Profile = Profile {
        name: "upstream",
        defaults: DEFAULTS,
        fs_types: common_types!(
            "has_journal,extent,huge_file,flex_bg,metadata_csum,metadata_csum_seed,64bit,dir_nlink,extra_isize,orphan_file"
        ),
    };

    /// Whether `[fs_types]` has a stanza with this name (`profile_has_subsection`).
    pub fn has_type(&self, name: &str) -> bool {
        self.fs_types.iter().any(|t| t.name == name)
    }

    /// The value of `key` in stanza `ty`, if set there.
    fn type_value(&self, ty: &str, key: &str) -> Option<&'static str> {
        let stanza = self.fs_types.iter().find(|t| t.name == ty)?;
        stanza.relations.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// The value of `key` in `[defaults]`, if set.
    pub fn default_value(&self, key: &str) -> Option<&'static str> {
        self.defaults.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// The value of `key` for the type list `types`: the last type that sets
    /// it wins, then `[defaults]` (mke2fs' `get_*_from_profile`).
    pub fn lookup(&self, types: &[String], key: &str) -> Option<&'static str> {
        types.iter().rev().find_map(|t| self.type_value(t, key)).or_else(|| self.default_value(key))
    }

    /// `key` as a string, or `default`.
    pub fn string(&self, types: &[String], key: &str, default: &'static str) -> &'static str {
        self.lookup(types, key).unwrap_or(default)
    }

    /// `key` as an integer (C `strtol` with base 0), or `default` when
    /// absent or unparsable.
    pub fn int(&self, types: &[String], key: &str, default: i64) -> i64 {
        self.lookup(types, key).and_then(crate::parse::parse_c_int).unwrap_or(default)
    }

    /// `key` as a floating-point number, or `default`.
    pub fn double(&self, types: &[String], key: &str, default: f64) -> f64 {
        self.lookup(types, key).and_then(|v| v.trim().parse().ok()).unwrap_or(default)
    }

    /// `key` as a boolean (`1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`), or `default`.
    pub fn bool(&self, types: &[String], key: &str, default: bool) -> bool {
        match self.lookup(types, key).map(|v| v.trim().to_ascii_lowercase()) {
            Some(v) if ["1", "true", "t", "yes", "y", "on"].contains(&v.as_str()) => true,
            Some(v) if ["0", "false", "f", "no", "n", "off", "nil"].contains(&v.as_str()) => false,
            _ => default,
        }
    }

    /// The `features` relation of one stanza (each type's list is applied in turn).
    pub fn type_features(&self, ty: &str) -> Option<&'static str> {
        self.type_value(ty, "features")
    }

    /// The profile as an `mke2fs.conf` file.
    pub fn to_conf(&self) -> String {
        let mut out = String::from("[defaults]\n");
        for (k, v) in self.defaults {
            out.push_str(&format!("\t{k} = {v}\n"));
        }
        out.push_str("\n[fs_types]\n");
        for t in self.fs_types {
            out.push_str(&format!("\t{} = {{\n", t.name));
            for (k, v) in t.relations {
                out.push_str(&format!("\t\t{k} = {v}\n"));
            }
            out.push_str("\t}\n");
        }
        out
    }
}

impl Default for Profile {
    fn default() -> Self {
        Self::DEBIAN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn later_types_win_over_defaults() {
        let p = Profile::DEBIAN;
        assert_eq!(p.int(&types(&["ext4", "small"]), "blocksize", 0), 1024);
        assert_eq!(p.int(&types(&["ext4"]), "blocksize", 0), 4096);
        assert_eq!(p.int(&types(&["ext4", "huge"]), "inode_ratio", 0), 65536);
        assert_eq!(p.int(&types(&["ext4", "largefile"]), "blocksize", 0), -1);
        assert!(!p.bool(&types(&["ext4"]), "enable_periodic_fsck", true));
        assert_eq!(p.double(&types(&["ext4"]), "reserved_ratio", 5.0), 5.0);
    }

    #[test]
    fn profiles_differ_only_in_ext4_features() {
        assert!(Profile::UPSTREAM.type_features("ext4").unwrap().contains("orphan_file"));
        assert!(!Profile::DEBIAN.type_features("ext4").unwrap().contains("orphan_file"));
        assert!(Profile::DEBIAN.to_conf().contains("\text4 = {\n\t\tfeatures = has_journal,extent"));
    }
}

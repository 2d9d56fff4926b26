//! The mke2fs configurations an aging run covers.

use super::model::Traits;

/// One filesystem configuration.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Short name (`ext4-1k`).
    pub name: &'static str,
    /// `mke2fs -t`.
    pub fs_type: &'static str,
    /// Block size.
    pub block_size: u64,
    /// Extra mke2fs arguments.
    pub args: &'static [&'static str],
    /// `large_dir`: deep runs grow the big directory to three index levels.
    pub large_dir: bool,
    /// The journal on an external device (`mke2fs -J device=`), an image
    /// beside the filesystem's (see [`super::journal_of`]).
    pub external_journal: bool,
}

/// At least twelve configurations: block sizes, ext2/ext3, and the feature
/// switches that change the structures the kernel and the library write
/// (bigalloc: 16 blocks a cluster on both block sizes; an external journal
/// device with 1 KiB blocks, where its superblock is at block 2).
pub fn matrix() -> Vec<Config> {
    const fn c(name: &'static str, fs_type: &'static str, block_size: u64, args: &'static [&'static str]) -> Config {
        Config { name, fs_type, block_size, args, large_dir: false, external_journal: false }
    }
    vec![
        c("ext4-4k", "ext4", 4096, &[]),
        c("ext4-1k", "ext4", 1024, &[]),
        c("ext4-2k", "ext4", 2048, &[]),
        c("ext2", "ext2", 4096, &[]),
        c("ext3-1k", "ext3", 1024, &[]),
        c("inline", "ext4", 4096, &["-O", "inline_data"]),
        c("ino128", "ext4", 4096, &["-I", "128"]),
        c("nocsum", "ext4", 1024, &["-O", "^metadata_csum"]),
        c("no64bit", "ext4", 4096, &["-O", "^64bit"]),
        c("noextent", "ext4", 4096, &["-O", "^extent,^64bit"]),
        Config { large_dir: true, ..c("largedir-eainode", "ext4", 1024, &["-O", "large_dir,ea_inode"]) },
        c("seed-orphanfile", "ext4", 4096, &["-O", "metadata_csum_seed,orphan_file"]),
        c("noflex", "ext4", 2048, &["-O", "^flex_bg"]),
        c("nojournal", "ext4", 4096, &["-O", "^has_journal"]),
        c("bigalloc-4k", "ext4", 4096, &["-O", "bigalloc", "-C", "65536"]),
        c("bigalloc-1k", "ext4", 1024, &["-O", "bigalloc", "-C", "16384"]),
        Config { external_journal: true, ..c("extjournal-1k", "ext4", 1024, &[]) },
    ]
}

/// How big a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// A CI sample: two index levels only where they are cheap (1 KiB blocks).
    Quick,
    /// Two index levels on every block size, three with `large_dir`.
    Deep,
    /// A 64 MiB image with mke2fs's inode count (command-line runs).
    Small,
}

impl Config {
    /// Whether files are mapped by extents.
    pub fn extents(&self) -> bool {
        self.fs_type == "ext4" && !self.has("^extent")
    }

    fn has(&self, feature: &str) -> bool {
        self.args.iter().any(|a| a.split(',').any(|f| f == feature))
    }

    /// Entries of the big directory: enough leaves for two index levels
    /// (three with `large_dir` on a deep run).
    pub fn big_entries(&self, scale: Scale) -> usize {
        let two_levels = match self.block_size {
            1024 => 1_800,
            2048 => 6_500,
            _ => 26_000,
        };
        match scale {
            Scale::Quick | Scale::Small => two_levels.min(1_800),
            Scale::Deep if self.large_dir => 180_000,
            Scale::Deep => two_levels,
        }
    }

    /// What the operation generator needs to know.
    pub fn traits(&self, scale: Scale) -> Traits {
        Traits {
            block_size: self.block_size,
            extents: self.extents(),
            inline_data: self.has("inline_data"),
            ea_inode: self.has("ea_inode"),
            large_inode: !self.args.contains(&"128"),
            big_entries: self.big_entries(scale),
        }
    }

    /// Blocks per cluster (`-C`, 1 without bigalloc).
    fn cluster_ratio(&self) -> u64 {
        let c = self.args.iter().skip_while(|a| **a != "-C").nth(1).and_then(|c| c.parse::<u64>().ok());
        c.map_or(1, |c| (c / self.block_size).max(1))
    }

    /// Image size in MiB and inode count for `mke2fs -N` (0: mke2fs's choice).
    pub fn size(&self, scale: Scale) -> (u64, u64) {
        if scale == Scale::Small {
            return (64, 0);
        }
        let entries = self.big_entries(scale) as u64;
        let inodes = entries + entries / 2 + 8_000;
        // With bigalloc every file, directory and xattr block takes a whole
        // cluster: an eighth of the cluster ratio times the room, so that
        // runs stay clear of a full filesystem (where the kernel's wider
        // sharing of equal xattr blocks would decide who gets ENOSPC).
        let mib = ((inodes * 2 * self.block_size.max(2048)) / (1 << 20) + 256) * (self.cluster_ratio() / 8).max(1);
        // A group holds at most 8 * block size inodes; with bigalloc a group
        // spans that many clusters, so the inodes may need a bigger image.
        let group_mib = (8 * self.block_size * self.cluster_ratio() * self.block_size) >> 20;
        let groups = inodes.div_ceil(8 * self.block_size);
        (mib.max((groups - 1) * group_mib + 128), inodes)
    }
}

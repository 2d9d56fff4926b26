//! Helpers shared by the facade's integration tests: scratch images made by
//! our formatter, and the e2fsck oracle.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ext4_fs::{FileDevice, Filesystem, OpenOptions};
use ext4_mkfs::{self as mkfs, FormatOptions, FsType, Profile};

/// A scratch image file in a temporary directory of its own, removed on drop.
pub struct Scratch {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Scratch {
    /// The path `name` in a fresh temporary directory (no file made yet).
    pub fn new(name: &str) -> Self {
        let dir = ext4_testkit::scratch_dir(name);
        Self { path: dir.path().join(name), _dir: dir }
    }
}

/// A formatter profile for tests.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub name: &'static str,
    pub fs_type: FsType,
    pub block_size: u32,
    pub features: &'static str,
    pub profile: &'static Profile,
    /// mke2fs arguments for a configuration the project's formatter does
    /// not make (empty: made by ext4-mkfs).
    pub mke2fs: &'static [&'static str],
}

pub const KINDS: &[Kind] = &[
    Kind { name: "ext2-1k", fs_type: FsType::Ext2, block_size: 1024, features: "", profile: &Profile::DEBIAN, mke2fs: &[] },
    Kind { name: "ext2-4k", fs_type: FsType::Ext2, block_size: 4096, features: "", profile: &Profile::DEBIAN, mke2fs: &[] },
    Kind { name: "ext3-1k", fs_type: FsType::Ext3, block_size: 1024, features: "", profile: &Profile::DEBIAN, mke2fs: &[] },
    Kind { name: "ext3-4k", fs_type: FsType::Ext3, block_size: 4096, features: "", profile: &Profile::DEBIAN, mke2fs: &[] },
    Kind { name: "ext4-1k", fs_type: FsType::Ext4, block_size: 1024, features: "", profile: &Profile::DEBIAN, mke2fs: &[] },
    Kind { name: "ext4-4k", fs_type: FsType::Ext4, block_size: 4096, features: "", profile: &Profile::UPSTREAM, mke2fs: &[] },
];

/// Bigalloc configurations, made by mke2fs: 16 blocks a cluster on 4 KiB
/// and on 1 KiB blocks (where `s_first_data_block` is 0).
pub const BIGALLOC_KINDS: &[Kind] = &[
    Kind {
        name: "bigalloc-4k",
        fs_type: FsType::Ext4,
        block_size: 4096,
        features: "",
        profile: &Profile::DEBIAN,
        mke2fs: &["-t", "ext4", "-b", "4096", "-O", "bigalloc", "-C", "65536"],
    },
    Kind {
        name: "bigalloc-1k",
        fs_type: FsType::Ext4,
        block_size: 1024,
        features: "",
        profile: &Profile::DEBIAN,
        mke2fs: &["-t", "ext4", "-b", "1024", "-O", "bigalloc", "-C", "16384"],
    },
];

/// Formats a fresh image of `size` bytes for `kind` (four times larger for
/// mke2fs-made bigalloc kinds, where each file's smallest piece is a
/// cluster of 16 blocks).
pub fn format(kind: &Kind, size: u64, tag: &str) -> Scratch {
    let scratch = Scratch::new(&format!("{}-{tag}.img", kind.name));
    let path = &scratch.path;
    if !kind.mke2fs.is_empty() {
        ext4_testkit::fixtures::mke2fs_sized(path, size * 4, kind.mke2fs).expect("mke2fs");
        return scratch;
    }
    let dev = FileDevice::create(path, size).expect("image file");
    let mut opts = FormatOptions::new(kind.fs_type)
        .profile(*kind.profile)
        .size_bytes(size)
        .block_size(kind.block_size)
        .uuid([7; 16])
        .hash_seed([9; 16])
        .time(1_700_000_000);
    if !kind.features.is_empty() {
        opts = opts.features(kind.features).expect("features");
    }
    mkfs::format(&dev, &opts, &mut |_| std::ops::ControlFlow::Continue(())).expect("format");
    scratch
}

/// Formats a fresh ext4 image (upstream profile) of `size` bytes with the
/// given block and inode sizes and extra features (`-O` syntax, may be empty).
pub fn format_ext4(tag: &str, size: u64, block_size: u32, inode_size: u32, features: &str) -> Scratch {
    let scratch = Scratch::new(&format!("{tag}.img"));
    let dev = FileDevice::create(&scratch.path, size).expect("image file");
    let mut opts = FormatOptions::new(FsType::Ext4)
        .profile(Profile::UPSTREAM)
        .size_bytes(size)
        .block_size(block_size)
        .inode_size(inode_size)
        .uuid([7; 16])
        .hash_seed([9; 16])
        .time(1_700_000_000);
    if !features.is_empty() {
        opts = opts.features(features).expect("features");
    }
    mkfs::format(&dev, &opts, &mut |_| std::ops::ControlFlow::Continue(())).expect("format");
    scratch
}

/// Opens an image read-write.
pub fn open_rw(path: &Path) -> Filesystem {
    Filesystem::open_path(path, OpenOptions::read_write()).expect("open read-write")
}

/// Opens an image read-only.
pub fn open_ro(path: &Path) -> Filesystem {
    Filesystem::open_path(path, OpenOptions::read_only()).expect("open read-only")
}

/// Whether e2fsck is present (prints the skip line if not).
pub fn have_fsck() -> bool {
    ext4_testkit::require(ext4_testkit::oracle::have_e2fsprogs(), "e2fsprogs not installed")
}

/// Panics unless `e2fsck -fn` is silent.
pub fn assert_clean(path: &Path) {
    ext4_testkit::oracle::assert_fsck_clean(path);
}

//! Deterministic fixture trees and the images made from them, built on
//! demand into [`crate::cache_dir`] and reused by later runs.
//!
//! Every image is made by an independent tool (mke2fs -d, or the kernel
//! through a loop mount) from a tree made by [`crate::tree`], with the
//! reproducible flags of `shared/docs/oracles.md`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::oracle::{LoopDevice, LoopMount, can_loop_mount, have_e2fsprogs};

/// Which tree a fixture uses.
pub type TreeSize = crate::tree::TreeProfile;

/// Bumped whenever the tree generator changes what it makes, so that cached
/// trees and the images made from them are rebuilt.
const TREE_VERSION: &str = "v2";

/// Who writes the tree into the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// `mke2fs -d TREE`.
    Mke2fs,
    /// `mke2fs` (empty), then the kernel: loop mount, `cp -a`, unmount.
    Kernel,
}

/// A fixture image recipe.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    /// Name of the image (file stem).
    pub name: &'static str,
    /// mke2fs arguments besides the reproducible ones.
    pub mke2fs_args: &'static [&'static str],
    /// Extra lines for the `[defaults]` of a private mke2fs.conf (e.g. `hash_alg = tea`).
    pub conf_defaults: &'static str,
    /// Image size for mke2fs.
    pub size: &'static str,
    /// The source tree.
    pub tree: TreeSize,
    /// Who writes the tree.
    pub writer: Writer,
}

/// The fixture profiles of the read path (issue: ext2 1k, ext3 2k, ext4
/// default, ext4 upstream 1.47 defaults, inline_data, 128-byte inodes with
/// TEA, and kernel-written).
pub const PROFILES: &[Profile] = &[
    Profile {
        name: "ext2-1k",
        mke2fs_args: &["-t", "ext2", "-b", "1024"],
        conf_defaults: "",
        size: "160M",
        tree: TreeSize::Small,
        writer: Writer::Mke2fs,
    },
    Profile {
        name: "ext3-2k",
        mke2fs_args: &["-t", "ext3", "-b", "2048"],
        conf_defaults: "",
        size: "160M",
        tree: TreeSize::Small,
        writer: Writer::Mke2fs,
    },
    Profile {
        name: "ext4-default",
        mke2fs_args: &["-t", "ext4"],
        conf_defaults: "",
        size: "160M",
        tree: TreeSize::Small,
        writer: Writer::Mke2fs,
    },
    Profile {
        name: "ext4-upstream",
        mke2fs_args: &["-t", "ext4", "-O", "metadata_csum_seed,orphan_file"],
        conf_defaults: "",
        size: "160M",
        tree: TreeSize::Small,
        writer: Writer::Mke2fs,
    },
    Profile {
        name: "ext4-128-tea",
        mke2fs_args: &["-t", "ext4", "-I", "128"],
        conf_defaults: "hash_alg = tea",
        size: "160M",
        tree: TreeSize::Small,
        writer: Writer::Mke2fs,
    },
    // mke2fs -d cuts sparse files that end in a hole when inline_data is on
    // (shared/docs/oracles.md), so the kernel writes this one.
    Profile {
        name: "ext4-inline",
        mke2fs_args: &["-t", "ext4", "-O", "inline_data"],
        conf_defaults: "",
        size: "160M",
        tree: TreeSize::Small,
        writer: Writer::Kernel,
    },
    Profile {
        name: "ext4-kernel",
        mke2fs_args: &["-t", "ext4"],
        conf_defaults: "",
        size: "160M",
        tree: TreeSize::Small,
        writer: Writer::Kernel,
    },
];

/// The medium-tree profile used by `cargo xtask validate`.
pub const MEDIUM: Profile = Profile {
    name: "ext4-default-medium",
    mke2fs_args: &["-t", "ext4"],
    conf_defaults: "",
    size: "2G",
    tree: TreeSize::Medium,
    writer: Writer::Mke2fs,
};

/// Looks a profile up by name (including the medium one).
pub fn profile(name: &str) -> Option<Profile> {
    PROFILES.iter().copied().chain([MEDIUM]).find(|p| p.name == name)
}

/// The reproducible mke2fs environment and flags (oracles.md).
pub const FAKE_TIME: &str = "1700000000";
/// Fixed UUID of fixture images.
pub const UUID: &str = "01234567-89ab-cdef-0123-456789abcdef";
/// Fixed hash seed of fixture images.
pub const HASH_SEED: &str = "11111111-2222-3333-4444-555555555555";

/// The source tree of a size, built if missing.
pub fn tree(size: TreeSize) -> std::io::Result<PathBuf> {
    let dest = crate::cache_dir().join("trees").join(format!("{TREE_VERSION}-{}", size.name()));
    if dest.exists() {
        return Ok(dest);
    }
    std::fs::create_dir_all(dest.parent().expect("has parent"))?;
    let tmp = unique_tmp(&dest);
    let _ = std::fs::remove_dir_all(&tmp);
    crate::tree::make(&tmp, crate::tree::TreeOptions::new(size))?;
    publish_dir(&tmp, &dest)?;
    Ok(dest)
}

/// A temporary name beside `dest`, unique to this process and call (tests
/// build the same fixture from several threads at once; the first to finish
/// publishes it).
fn unique_tmp(dest: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    dest.with_extension(format!("tmp{}-{n}", std::process::id()))
}

/// Why a fixture cannot be built here, if it cannot.
pub fn unavailable(p: &Profile) -> Option<&'static str> {
    if !have_e2fsprogs() {
        return Some("e2fsprogs (mke2fs, e2fsck, debugfs, dumpe2fs) not installed");
    }
    if p.writer == Writer::Kernel && !can_loop_mount() {
        return Some("kernel-written fixture needs root and loop devices");
    }
    None
}

/// The image of a profile and its source tree, built if missing.
pub fn image(p: &Profile) -> std::io::Result<(PathBuf, PathBuf)> {
    let src = tree(p.tree)?;
    let dest = crate::cache_dir().join("images").join(format!("{TREE_VERSION}-{}.img", p.name));
    if dest.exists() {
        return Ok((dest, src));
    }
    std::fs::create_dir_all(dest.parent().expect("has parent"))?;
    let tmp = unique_tmp(&dest);
    let _ = std::fs::remove_file(&tmp);
    let source = (p.writer == Writer::Mke2fs).then_some(src.as_path());
    mke2fs(&tmp, p, source)?;
    if p.writer == Writer::Kernel {
        kernel_copy(&tmp, &src)?;
    }
    if std::fs::rename(&tmp, &dest).is_err() && dest.exists() {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok((dest, src))
}

/// Runs reproducible mke2fs for profile `p` on `image`, copying `source` in if given.
pub fn mke2fs(image: &Path, p: &Profile, source: Option<&Path>) -> std::io::Result<()> {
    let conf = write_conf(p)?;
    let mut c = Command::new("mke2fs");
    c.env("E2FSPROGS_FAKE_TIME", FAKE_TIME).env("MKE2FS_CONFIG", &conf);
    c.args(["-q", "-F", "-U", UUID, "-E"]).arg(format!("hash_seed={HASH_SEED},lazy_itable_init=0,nodiscard"));
    c.args(p.mke2fs_args);
    if let Some(s) = source {
        c.arg("-d").arg(s);
    }
    c.arg(image).arg(p.size);
    run(&mut c)
}

/// Runs reproducible mke2fs with `args` (no source tree) on a new image
/// file of `size` bytes, with the private mke2fs.conf of
/// [`mke2fs`] (Debian's 1.47 defaults): for tests of configurations the
/// project's formatter does not make.
pub fn mke2fs_sized(image: &Path, size: u64, args: &[&str]) -> std::io::Result<()> {
    let p = Profile { name: "sized", mke2fs_args: &[], conf_defaults: "", size: "", tree: TreeSize::Small, writer: Writer::Mke2fs };
    let conf = write_conf(&p)?;
    std::fs::File::create(image)?.set_len(size)?;
    let mut c = Command::new("mke2fs");
    c.env("E2FSPROGS_FAKE_TIME", FAKE_TIME).env("MKE2FS_CONFIG", &conf);
    c.args(["-q", "-F", "-U", UUID, "-E"]).arg(format!("hash_seed={HASH_SEED},lazy_itable_init=0,nodiscard"));
    c.args(args).arg(image);
    run(&mut c)
}

/// Makes an external journal device of `journal_size` bytes on `journal`
/// (`mke2fs -O journal_dev`), then a filesystem of `size` bytes with `args`
/// on `image` whose journal it is (`mke2fs -J device=`, through a loop
/// device: root and loop devices needed). Returns the journal's UUID,
/// unique to the call: e2fsck looks journals up by UUID among the block
/// devices (blkid), and must not find another test's.
pub fn mke2fs_external_journal(image: &Path, size: u64, journal: &Path, journal_size: u64, args: &[&str]) -> std::io::Result<String> {
    let arg = |flag: &str, default| args.iter().skip_while(|a| **a != flag).nth(1).copied().unwrap_or(default);
    let (block_size, fs_type) = (arg("-b", "4096"), arg("-t", "ext4"));
    let n = crate::oracle::unique();
    let uuid = format!("0badc0de-{:04x}-4222-8333-{:012x}", n & 0xffff, std::process::id());
    mke2fs_sized(journal, journal_size, &["-t", fs_type, "-O", "journal_dev", "-b", block_size, "-U", &uuid])?;
    let dev = LoopDevice::new(journal)?;
    let device = format!("device={}", dev.path().display());
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-J", &device]);
    mke2fs_sized(image, size, &all)?;
    dev.detach()?;
    Ok(uuid)
}

/// A private mke2fs.conf: Debian's 1.47 defaults plus the profile's lines,
/// so fixtures do not depend on the host's /etc/mke2fs.conf.
fn write_conf(p: &Profile) -> std::io::Result<PathBuf> {
    let path = crate::cache_dir().join(format!("mke2fs-{}.conf", p.name));
    std::fs::create_dir_all(crate::cache_dir())?;
    let text = format!(
        "[defaults]\n\tbase_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr\n\
         \tdefault_mntopts = acl,user_xattr\n\tenable_periodic_fsck = 0\n\tblocksize = 4096\n\tinode_size = 256\n\
         \tinode_ratio = 16384\n\t{}\n\n[fs_types]\n\text3 = {{\n\t\tfeatures = has_journal\n\t}}\n\
         \text4 = {{\n\t\tfeatures = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize\n\t}}\n\
         \tsmall = {{\n\t\tblocksize = 1024\n\t\tinode_ratio = 4096\n\t}}\n\tfloppy = {{\n\t\tblocksize = 1024\n\t\tinode_ratio = 8192\n\t}}\n\
         \tbig = {{\n\t\tinode_ratio = 32768\n\t}}\n\thuge = {{\n\t\tinode_ratio = 65536\n\t}}\n",
        p.conf_defaults
    );
    // Several tests write it at once: a reader never sees a half-written file.
    let tmp = unique_tmp(&path);
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Copies `src`'s contents into `image` through a kernel loop mount.
fn kernel_copy(image: &Path, src: &Path) -> std::io::Result<()> {
    let m = LoopMount::new(image, "")?;
    let mut from = src.as_os_str().to_owned();
    from.push("/.");
    run(Command::new("cp").arg("-a").arg(from).arg(m.path()))?;
    m.unmount()
}

fn run(c: &mut Command) -> std::io::Result<()> {
    let out = c.output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("{:?} failed: {}", c, String::from_utf8_lossy(&out.stderr))))
    }
}

/// Moves a finished directory into place; losing a race to another process is fine.
fn publish_dir(tmp: &Path, dest: &Path) -> std::io::Result<()> {
    match std::fs::rename(tmp, dest) {
        Ok(()) => Ok(()),
        Err(_) if dest.exists() => std::fs::remove_dir_all(tmp),
        Err(e) => Err(e),
    }
}

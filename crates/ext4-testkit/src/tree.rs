//! Deterministic source trees for fixtures, tests, the demo and benchmarks:
//! the same profile and seed give the same names, sizes, contents, modes,
//! link structure, xattrs and times on every run and host.
//!
//! Besides nested directories and files of every size class (empty, under a
//! block, up to 16 MiB), a tree holds one directory with many entries
//! (`/bigdir`, an htree), and `/special`: sparse files (data, hole, data,
//! hole at the end), short, long and directory symlinks, two hard links to
//! one file, names of 1 and 255 bytes and a UTF-8 name; some files carry
//! `user.bench` (and, unless left out, a 700-byte `user.big` that needs an
//! xattr block on 1 KiB blocks' inode sizes).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::rng::Rng;

/// The size of a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeProfile {
    /// ~2,000 entries, ~40 MB.
    Small,
    /// ~26,500 entries, ~600 MB.
    Medium,
    /// ~128,000 entries, ~3 GB.
    Large,
}

struct Shape {
    files: usize,
    dirs: usize,
    bigdir: usize,
    budget: u64,
}

impl TreeProfile {
    /// The profile's name (`small`, `medium`, `large`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Small => "small",
            Self::Medium => "medium",
            Self::Large => "large",
        }
    }

    /// The profile of a name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Small, Self::Medium, Self::Large].into_iter().find(|p| p.name() == name)
    }

    fn shape(self) -> Shape {
        match self {
            Self::Small => Shape { files: 1_500, dirs: 120, bigdir: 600, budget: 40 << 20 },
            Self::Medium => Shape { files: 20_000, dirs: 1_500, bigdir: 5_000, budget: 600 << 20 },
            Self::Large => Shape { files: 100_000, dirs: 8_000, bigdir: 20_000, budget: 3 << 30 },
        }
    }
}

/// Every entry's access and modification time.
pub const FIXED_TIME: i64 = 1_700_000_000;

/// Options of [`make`].
#[derive(Debug, Clone, Copy)]
pub struct TreeOptions {
    /// The size.
    pub profile: TreeProfile,
    /// The seed of every random choice.
    pub seed: u64,
    /// Leave out the 700-byte xattr values.
    pub big_xattrs: bool,
}

impl TreeOptions {
    /// A profile with seed 1 and big xattrs.
    pub fn new(profile: TreeProfile) -> Self {
        Self { profile, seed: 1, big_xattrs: true }
    }
}

fn file_size(rng: &mut Rng, budget_left: u64) -> u64 {
    let size = match rng.below(100) {
        0..=4 => 0,
        5..=69 => rng.range(1, 4096),
        70..=94 => rng.range(4097, 256 << 10),
        _ => rng.range(256 << 10, 16 << 20),
    };
    size.min(budget_left)
}

/// A file's contents: runs of a repeated text line or of random bytes.
fn write_content(path: &Path, size: u64, rng: &mut Rng) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut left = size;
    while left > 0 {
        let n = left.min(1 << 20) as usize;
        let chunk: Vec<u8> = if rng.chance(30) {
            let line = format!("ext4 tree line {}\n", rng.below(1 << 30)).into_bytes();
            line.iter().copied().cycle().take(n).collect()
        } else {
            crate::rng::stream_bytes(rng.next_u64(), 0, n)
        };
        f.write_all(&chunk)?;
        left -= n as u64;
    }
    f.flush()
}

fn write_sparse(path: &Path, rng: &mut Rng) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::create(path)?;
    f.write_all_at(&crate::rng::stream_bytes(rng.next_u64(), 0, 8192), 0)?;
    f.write_all_at(&crate::rng::stream_bytes(rng.next_u64(), 0, 12288), 4 << 20)?;
    f.set_len(12 << 20)
}

fn depth(root: &Path, p: &Path) -> usize {
    p.strip_prefix(root).map_or(0, |r| r.components().count())
}

/// Builds the tree at `dest`, which must not exist yet.
pub fn make(dest: &Path, o: TreeOptions) -> std::io::Result<()> {
    if dest.exists() {
        return Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, format!("{} exists; give a new path", dest.display())));
    }
    let shape = o.profile.shape();
    let mut rng = Rng::new(o.seed);
    std::fs::create_dir_all(dest)?;
    let mut dirs = vec![dest.to_path_buf()];
    for i in 0..shape.dirs {
        let mut parent = dirs[rng.index(dirs.len())].clone();
        if depth(dest, &parent) > 6 {
            parent = dest.to_path_buf();
        }
        let d = parent.join(format!("d{i:05}"));
        std::fs::create_dir(&d)?;
        dirs.push(d);
    }
    let mut budget = shape.budget;
    let mut files = Vec::with_capacity(shape.files);
    for i in 0..shape.files {
        let path = dirs[rng.index(dirs.len())].join(format!("f{i:06}.dat"));
        let size = file_size(&mut rng, budget);
        budget -= size;
        write_content(&path, size, &mut rng)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*rng.pick(&[0o644, 0o600, 0o755, 0o640])))?;
        files.push(path);
    }
    let big = dest.join("bigdir");
    std::fs::create_dir(&big)?;
    for i in 0..shape.bigdir {
        let name = format!("entry-{i:07}-{:08x}", rng.below(1 << 32));
        std::fs::write(big.join(name), vec![b'x'; rng.below(65) as usize])?;
    }
    make_special(dest, &files, &mut rng)?;
    for (i, path) in files.iter().take(200).step_by(7).enumerate() {
        xattr::set(path, "user.bench", format!("value-{i}").as_bytes())?;
        if i % 3 == 0 && o.big_xattrs {
            xattr::set(path, "user.big", &crate::rng::stream_bytes(rng.next_u64(), 0, 700))?;
        }
    }
    fix_times(dest)
}

fn make_special(dest: &Path, files: &[PathBuf], rng: &mut Rng) -> std::io::Result<()> {
    let special = dest.join("special");
    std::fs::create_dir(&special)?;
    for i in 0..8 {
        write_sparse(&special.join(format!("sparse{i}.img")), rng)?;
    }
    std::os::unix::fs::symlink("f000000.dat", special.join("short-link"))?;
    std::os::unix::fs::symlink(format!("/{}", ["long-target-component"; 8].join("/")), special.join("long-link"))?;
    std::os::unix::fs::symlink("../bigdir", special.join("dir-link"))?;
    std::fs::hard_link(&files[0], special.join("hardlink-a"))?;
    std::fs::hard_link(&files[0], special.join("hardlink-b"))?;
    std::fs::write(special.join("n".repeat(255)), b"longest name\n")?;
    std::fs::write(special.join("x"), b"shortest name\n")?;
    std::fs::write(special.join("üñíçødé-名前-αρχείο.txt"), "utf-8 name\n")
}

/// Sets every entry's times to [`FIXED_TIME`], deepest first, so that
/// directory times stay fixed too.
fn fix_times(dir: &Path) -> std::io::Result<()> {
    let ts = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec { tv_sec: FIXED_TIME, tv_nsec: 0 },
        last_modification: rustix::fs::Timespec { tv_sec: FIXED_TIME, tv_nsec: 0 },
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        if e.file_type()?.is_dir() {
            fix_times(&e.path())?;
        }
        rustix::fs::utimensat(rustix::fs::CWD, e.path(), &ts, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
    }
    rustix::fs::utimensat(rustix::fs::CWD, dir, &ts, rustix::fs::AtFlags::empty())?;
    Ok(())
}

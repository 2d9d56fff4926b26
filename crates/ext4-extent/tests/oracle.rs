//! Oracles from e2fsprogs and the kernel.
//!
//! * Reading: images made by `mke2fs -d` (ext4 and ext3, 1k and 4k blocks,
//!   with extent trees of depth 2, triple indirect blocks, holes) and
//!   `debugfs fallocate` (unwritten extents); each file's map as read by
//!   this crate from the raw image must equal `debugfs ex` / `stat`.
//! * Writing: a file's map is rebuilt by this crate in a scrambled order
//!   (with unwritten runs, conversions and punched holes) into the image,
//!   between `debugfs kill_file` and `debugfs undel` (which redo the block
//!   accounting by walking the new map). Then `e2fsck -fn` must be silent,
//!   `debugfs` must see the intended map, and the kernel (as root) must read
//!   the intended bytes.

use ext4_testkit::extent_check as common;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TestError, model_runs};
use ext4_extent::{Lookup, MapCtx, MapIo, MapKind, Run, tree};
use ext4_ondisk::inode::set_inode_checksum;
use ext4_ondisk::{Geometry, GroupDesc, Inode, InodeFlags, Superblock};

type Blocks = BTreeMap<u32, (u64, bool)>;

fn tool_present(name: &str) -> bool {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].iter().any(|d| Path::new(d).join(name).exists())
}

fn have_tools() -> bool {
    let missing: Vec<&str> = ["mke2fs", "debugfs", "e2fsck"].into_iter().filter(|t| !tool_present(t)).collect();
    ext4_testkit::require(missing.is_empty(), &format!("e2fsprogs tools missing: {missing:?}"))
}

fn run(cmd: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

fn debugfs(img: &Path, req: &str) -> String {
    let out = Command::new("debugfs").args(["-R", req]).arg(img).output().expect("debugfs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn debugfs_w(img: &Path, req: &str) {
    let (ok, out) = run("debugfs", &["-w", "-R", req, img.to_str().unwrap()]);
    assert!(ok && !out.contains("rror"), "debugfs -w {req}: {out}");
}

/// A scratch directory (its path, and the directory, removed on drop).
struct Scratch(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = ext4_testkit::scratch_dir(&format!("extent-{tag}"));
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        Self(dir.path().to_path_buf(), dir)
    }
}

/// The content of logical block `l` of every source file.
fn block_bytes(l: u64, bs: usize) -> Vec<u8> {
    let mut b = vec![(l % 251 + 1) as u8; bs];
    let tag = format!("block {l};");
    b[..tag.len()].copy_from_slice(tag.as_bytes());
    b
}

/// First logical block of the triple indirect range.
fn triple_start(bs: u64) -> u64 {
    let p = bs / 4;
    12 + p + p * p
}

/// Source files: name -> the logical blocks holding data.
fn source_files(bs: u64) -> Vec<(&'static str, Vec<u64>)> {
    let singles = if bs == 1024 { 700 } else { 1500 };
    // 300 contiguous blocks, then one block in two (one extent each), then a far block.
    let mut mixed: Vec<u64> = (0..300).collect();
    mixed.extend((0..singles).map(|i| 300 + 2 * i));
    mixed.push(triple_start(bs) + 5);
    let holes = vec![20, 21, 22, 300, 301, 5000];
    vec![("mixed", mixed), ("holes", holes), ("tiny", vec![0, 1, 2])]
}

fn write_sources(dir: &Path, bs: u64) {
    for (name, blocks) in source_files(bs) {
        let f = std::fs::File::create(dir.join(name)).unwrap();
        for l in blocks {
            f.write_all_at(&block_bytes(l, bs as usize), l * bs).unwrap();
        }
    }
}

/// Makes an image of the source tree.
fn mkfs(scratch: &Scratch, fs: &str, bs: u64, features: &str) -> PathBuf {
    let img = scratch.0.join(format!("{fs}-{bs}.img"));
    write_sources(&scratch.0.join("src"), bs);
    let bs_s = bs.to_string();
    let mut args = vec!["-q", "-F", "-t", fs, "-b", &bs_s];
    if !features.is_empty() {
        args.extend(["-O", features]);
    }
    let src = scratch.0.join("src");
    args.extend(["-d", src.to_str().unwrap(), img.to_str().unwrap(), "64M"]);
    let (ok, out) = run("mke2fs", &args);
    assert!(ok, "mke2fs {args:?}: {out}");
    img
}

/// A raw image with its geometry.
struct Image {
    bytes: Vec<u8>,
    geo: Geometry,
}

impl Image {
    fn open(path: &Path) -> Self {
        let bytes = std::fs::read(path).unwrap();
        let sb = Superblock::from_bytes(&bytes[1024..2048]).unwrap();
        let geo = Geometry::new(&sb).unwrap();
        Self { bytes, geo }
    }

    fn inode_offset(&self, ino: u32) -> usize {
        let (g, i) = ((ino - 1) / self.geo.inodes_per_group, (ino - 1) % self.geo.inodes_per_group);
        let bs = self.geo.block_size as usize;
        let ds = self.geo.desc_size as usize;
        let gdt = (self.geo.first_data_block as usize + 1) * bs + g as usize * ds;
        let gd = GroupDesc::parse(&self.bytes[gdt..gdt + ds], ds).unwrap();
        gd.inode_table as usize * bs + i as usize * self.geo.inode_size as usize
    }

    fn inode(&self, ino: u32) -> Inode {
        let off = self.inode_offset(ino);
        Inode::parse(&self.bytes[off..off + self.geo.inode_size as usize]).unwrap()
    }

    fn put_inode(&mut self, ino: u32, inode: &Inode) {
        let off = self.inode_offset(ino);
        let raw = &mut self.bytes[off..off + self.geo.inode_size as usize];
        inode.write(raw);
        if self.geo.metadata_csum() {
            set_inode_checksum(self.geo.csum_seed, ino, raw);
        }
    }

    fn ctx(&self, ino: u32, inode: &Inode) -> MapCtx {
        let seed = self.geo.metadata_csum().then(|| ext4_ondisk::checksum::inode_seed(self.geo.csum_seed, ino, inode.generation));
        MapCtx {
            block_size: self.geo.block_size,
            first_data_block: self.geo.first_data_block,
            blocks_count: self.geo.blocks_count,
            csum_seed: seed,
        }
    }
}

/// Map I/O on the image bytes; map blocks come from `pool`.
struct ImgIo<'a> {
    bytes: &'a mut Vec<u8>,
    bs: usize,
    pool: BTreeSet<u64>,
    freed_data: BTreeSet<u64>,
}

impl ImgIo<'_> {
    fn range(&self, block: u64) -> Result<std::ops::Range<usize>, TestError> {
        let start = block as usize * self.bs;
        if start + self.bs > self.bytes.len() {
            return Err(TestError::Io(format!("block {block} beyond the image")));
        }
        Ok(start..start + self.bs)
    }
}

impl MapIo for ImgIo<'_> {
    type Error = TestError;

    fn read_block(&mut self, block: u64, buf: &mut [u8]) -> Result<(), TestError> {
        let r = self.range(block)?;
        buf.copy_from_slice(&self.bytes[r]);
        Ok(())
    }

    fn write_block(&mut self, block: u64, data: &[u8]) -> Result<(), TestError> {
        let r = self.range(block)?;
        self.bytes[r].copy_from_slice(data);
        Ok(())
    }

    fn alloc_block(&mut self, goal: u64) -> Result<u64, TestError> {
        let b = self.pool.range(goal..).next().or(self.pool.iter().next()).copied();
        let b = b.ok_or_else(|| TestError::Io("pool exhausted".into()))?;
        self.pool.remove(&b);
        Ok(b)
    }

    fn free_blocks(&mut self, start: u64, count: u64, meta: bool) -> Result<(), TestError> {
        if meta {
            self.pool.extend(start..start + count);
        } else {
            self.freed_data.extend(start..start + count);
        }
        Ok(())
    }
}

fn inode_number(img: &Path, path: &str) -> u32 {
    let out = debugfs(img, &format!("stat {path}"));
    let tok = out.split_whitespace().skip_while(|t| *t != "Inode:").nth(1).unwrap_or_else(|| panic!("no inode for {path}: {out}"));
    tok.parse().unwrap()
}

fn num(s: &str) -> u64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

/// Leaf extents and node blocks from `debugfs ex`.
fn debugfs_extents(img: &Path, path: &str) -> (Blocks, BTreeSet<u64>) {
    let out = debugfs(img, &format!("ex {path}"));
    let (mut blocks, mut nodes) = (Blocks::new(), BTreeSet::new());
    for line in out.lines().skip(1) {
        let t: Vec<String> = line.replace('/', " / ").split_whitespace().map(String::from).collect();
        if t.len() < 11 {
            continue;
        }
        let leaf = t[0] == t[2];
        let rest = &t[6..];
        if !leaf {
            nodes.insert(num(&rest[3]));
            continue;
        }
        let (l, p, len) = (num(&rest[0]), num(&rest[3]), num(&rest[6]));
        let unwritten = rest.get(7).is_some_and(|f| f == "Uninit");
        for k in 0..len {
            blocks.insert((l + k) as u32, (p + k, unwritten));
        }
    }
    (blocks, nodes)
}

/// Data and indirect blocks from the BLOCKS section of `debugfs stat`.
fn debugfs_indirect(img: &Path, path: &str) -> (Blocks, BTreeSet<u64>) {
    let out = debugfs(img, &format!("stat {path}"));
    let text: String = out.split("BLOCKS:").nth(1).unwrap_or("").split("TOTAL:").next().unwrap_or("").replace('\n', " ");
    let (mut blocks, mut nodes) = (Blocks::new(), BTreeSet::new());
    for item in text.split(", ").map(str::trim).filter(|s| !s.is_empty()) {
        let (what, phys) = item.split_once("):").unwrap_or_else(|| panic!("odd item {item:?}"));
        let what = what.trim_start_matches('(');
        let p0 = num(phys.split('-').next().unwrap());
        if what.ends_with("IND") {
            nodes.insert(p0);
            continue;
        }
        let mut ls = what.split('-').map(num);
        let l0 = ls.next().unwrap();
        let l1 = ls.next().unwrap_or(l0);
        for k in 0..=l1 - l0 {
            blocks.insert((l0 + k) as u32, (p0 + k, false));
        }
    }
    (blocks, nodes)
}

/// The map of `path` as debugfs sees it.
fn debugfs_map(img: &Path, path: &str, kind: MapKind) -> (Blocks, BTreeSet<u64>) {
    match kind {
        MapKind::Extents => debugfs_extents(img, path),
        MapKind::Indirect => debugfs_indirect(img, path),
    }
}

/// The map of inode `ino` as this crate reads it from the image bytes.
fn crate_map(image: &mut Image, ino: u32) -> (MapKind, Vec<Run>, BTreeSet<u64>) {
    let inode = image.inode(ino);
    let kind = if inode.flags.contains(InodeFlags::EXTENTS) { MapKind::Extents } else { MapKind::Indirect };
    let ctx = image.ctx(ino, &inode);
    let bs = ctx.block_size as usize;
    let mut io = ImgIo { bytes: &mut image.bytes, bs, pool: BTreeSet::new(), freed_data: BTreeSet::new() };
    let mut runs = Vec::new();
    ext4_extent::for_each_run(kind, &inode.block, &ctx, &mut io, |r| {
        runs.push(r);
        ControlFlow::Continue(())
    })
    .unwrap();
    let mut nodes = BTreeSet::new();
    ext4_extent::for_each_map_block(kind, &inode.block, &ctx, &mut io, |b| {
        nodes.insert(b);
        ControlFlow::Continue(())
    })
    .unwrap();
    (kind, runs, nodes)
}

/// `lookup` agrees with `blocks` around every run boundary.
fn check_lookups(image: &mut Image, ino: u32, kind: MapKind, blocks: &Blocks) {
    let inode = image.inode(ino);
    let ctx = image.ctx(ino, &inode);
    let mut io = ImgIo { bytes: &mut image.bytes, bs: ctx.block_size as usize, pool: BTreeSet::new(), freed_data: BTreeSet::new() };
    let mut probes: BTreeSet<u32> = [0].into();
    for r in model_runs(blocks) {
        probes.extend([r.logical, r.logical + r.len - 1, r.logical + r.len, r.logical.saturating_sub(1)]);
    }
    for l in probes {
        let got = ext4_extent::lookup(kind, &inode.block, &ctx, &mut io, l).unwrap();
        match got {
            Lookup::Mapped(r) => {
                for k in 0..r.len {
                    assert_eq!(blocks.get(&(l + k)), Some(&(r.physical + u64::from(k), r.unwritten)), "lookup({l}) block {k}");
                }
            }
            Lookup::Hole { next } => {
                assert!(!blocks.contains_key(&l));
                assert_eq!(next, blocks.range(l..).next().map(|(&k, _)| k), "lookup({l}) next");
            }
        }
    }
}

fn expand(runs: &[Run]) -> Blocks {
    let mut b = Blocks::new();
    for r in runs {
        for k in 0..r.len {
            b.insert(r.logical + k, (r.physical + u64::from(k), r.unwritten));
        }
    }
    b
}

/// The configurations: file system type, block size, mke2fs -O argument.
const CONFIGS: [(&str, u64, &str); 4] =
    [("ext4", 1024, "metadata_csum"), ("ext4", 4096, "^metadata_csum"), ("ext3", 1024, ""), ("ext3", 4096, "")];

#[ext4_testkit::oracle_test(e2fsprogs)]
fn reads_what_e2fsprogs_wrote() {
    if !have_tools() {
        return;
    }
    for (fs, bs, features) in CONFIGS {
        let scratch = Scratch::new(&format!("read-{fs}-{bs}"));
        let img = mkfs(&scratch, fs, bs, features);
        let mut paths = vec!["/mixed", "/holes", "/tiny"];
        if fs == "ext4" {
            let empty = scratch.0.join("empty");
            std::fs::write(&empty, b"").unwrap();
            debugfs_w(&img, &format!("write {} falloc", empty.display()));
            debugfs_w(&img, "fallocate /falloc 10 59");
            debugfs_w(&img, "fallocate /falloc 100 100");
            paths.push("/falloc");
        }
        let mut image = Image::open(&img);
        let mut deepest = 0;
        for path in paths {
            let ino = inode_number(&img, path);
            let (kind, runs, nodes) = crate_map(&mut image, ino);
            let (want, want_nodes) = debugfs_map(&img, path, kind);
            assert!(!want.is_empty(), "{fs} {bs} {path}: debugfs shows no blocks");
            assert_eq!(runs, model_runs(&want), "{fs} {bs} {path}: runs");
            assert_eq!(nodes, want_nodes, "{fs} {bs} {path}: map blocks");
            check_lookups(&mut image, ino, kind, &want);
            if kind == MapKind::Extents {
                deepest = deepest.max(image.inode(ino).block[6]);
            }
        }
        if fs == "ext4" {
            assert_eq!(deepest, 2, "{fs} {bs}: the mixed file should have a depth-2 tree");
        }
    }
}

/// Checks e2fsck's verdict: exit 0 and nothing but the pass headers and summary.
fn assert_e2fsck_silent(img: &Path) {
    let out = Command::new("e2fsck").arg("-fn").arg(img).output().expect("e2fsck");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let extra: Vec<&str> = stdout.lines().filter(|l| !l.starts_with("Pass ") && !l.contains(" files (")).collect();
    assert!(out.status.success() && extra.is_empty(), "e2fsck -fn {}:\n{stdout}", img.display());
}

/// Rebuilds `/mixed`'s map with this crate: runs inserted in a scrambled
/// order, a third of them unwritten, then converted except for `kept`,
/// then `punched` ranges removed. Returns the intended map.
fn rebuild(image: &mut Image, img: &Path, ino: u32, kind: MapKind) -> Blocks {
    let (_, runs, old_nodes) = crate_map(image, ino);
    let original = expand(&runs);
    debugfs_w(img, &format!("kill_file <{ino}>"));
    *image = Image::open(img);
    let out = debugfs(img, &format!("ffb 400 {}", image.geo.blocks_count / 2));
    let extra = out.split(':').nth(1).unwrap_or("").split_whitespace().map(num);
    let data: BTreeSet<u64> = original.values().map(|v| v.0).collect();
    let pool: BTreeSet<u64> = old_nodes.iter().copied().chain(extra).filter(|b| !data.contains(b)).collect();

    let mut inode = image.inode(ino);
    let ctx = image.ctx(ino, &inode);
    let mut root = [0u8; 60];
    if kind == MapKind::Extents {
        tree::init(&mut root);
    }
    let mut io = ImgIo { bytes: &mut image.bytes, bs: ctx.block_size as usize, pool, freed_data: BTreeSet::new() };
    let extents = kind == MapKind::Extents;
    // Pieces of at most 40 blocks, in a scrambled order.
    let mut pieces: Vec<Run> = runs
        .iter()
        .flat_map(|r| {
            (0..r.len).step_by(40).map(move |o| Run {
                logical: r.logical + o,
                physical: r.physical + u64::from(o),
                len: (r.len - o).min(40),
                unwritten: false,
            })
        })
        .collect();
    let n = pieces.len();
    pieces = (0..n).map(|i| pieces[i * 7919 % n]).collect();
    for (i, p) in pieces.iter().enumerate() {
        let run = Run { unwritten: extents && i % 3 == 0, ..*p };
        ext4_extent::map_range(kind, &mut root, &ctx, &mut io, run).unwrap();
    }
    let mut want = original.clone();
    if extents {
        for (l, v) in want.iter_mut() {
            v.1 = pieces.iter().enumerate().any(|(i, p)| i % 3 == 0 && (p.logical..p.logical + p.len).contains(l));
        }
        let kept = 320..340u32;
        tree::mark_written(&mut root, &ctx, &mut io, 0, kept.start).unwrap();
        tree::mark_written(&mut root, &ctx, &mut io, kept.end, u32::MAX - kept.end).unwrap();
        want.iter_mut().filter(|(l, _)| !kept.contains(l)).for_each(|(_, v)| v.1 = false);
    }
    for punched in [100..110u32, 150..151, 400..700] {
        ext4_extent::unmap_range(kind, &mut root, &ctx, &mut io, punched.start, punched.end.into()).unwrap();
        want.retain(|l, _| !punched.contains(l));
    }
    let freed = std::mem::take(&mut io.freed_data);
    let gone: BTreeSet<u64> = data.difference(&want.values().map(|v| v.0).collect()).copied().collect();
    assert_eq!(freed, gone, "data blocks freed by the punches");
    let mut map_blocks = 0u64;
    ext4_extent::for_each_map_block(kind, &root, &ctx, &mut io, |_| {
        map_blocks += 1;
        ControlFlow::Continue(())
    })
    .unwrap();
    inode.block = root;
    inode.blocks = (want.len() as u64 + map_blocks) * u64::from(ctx.block_size / 512);
    image.put_inode(ino, &inode);
    std::fs::write(img, &image.bytes).unwrap();
    debugfs_w(img, &format!("undel <{ino}>"));
    want
}

/// Reads the file through the kernel and compares each probed block.
fn kernel_reads(img: &Path, scratch: &Scratch, want: &Blocks, bs: u64) {
    let (_, uid) = run("id", &["-u"]);
    if !ext4_testkit::require(uid.trim() == "0" && Path::new("/dev/loop-control").exists(), "kernel read check needs root and loop devices")
    {
        return;
    }
    let mnt_tmp = ext4_testkit::scratch_dir("ext4-extent-mnt");
    let mnt = mnt_tmp.path().to_path_buf();
    let (ok, out) = run("mount", &["-o", "ro,loop", img.to_str().unwrap(), mnt.to_str().unwrap()]);
    assert!(ok, "mount: {out}");
    let result = std::panic::catch_unwind(|| {
        let f = std::fs::File::open(mnt.join("mixed")).unwrap();
        let all = source_files(bs).into_iter().find(|(n, _)| *n == "mixed").unwrap().1;
        for l in all {
            let mut got = vec![0u8; bs as usize];
            f.read_exact_at(&mut got, l * bs).unwrap();
            let expect = match want.get(&(l as u32)) {
                Some((_, false)) => block_bytes(l, bs as usize),
                _ => vec![0u8; bs as usize],
            };
            assert!(got == expect, "kernel read of logical block {l} differs");
        }
    });
    // Something else may look into the mount for a moment (busy): retry.
    let mut umount = run("umount", &[mnt.to_str().unwrap()]);
    for _ in 0..20 {
        if umount.0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
        umount = run("umount", &[mnt.to_str().unwrap()]);
    }
    let (ok, out) = umount;
    let _ = std::fs::remove_dir(&mnt);
    let _ = &scratch;
    assert!(ok, "umount: {out}");
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn e2fsck_accepts_rebuilt_maps() {
    if !have_tools() {
        return;
    }
    for (fs, bs, features) in [CONFIGS[0], CONFIGS[1], CONFIGS[2]] {
        let scratch = Scratch::new(&format!("write-{fs}-{bs}"));
        let img = mkfs(&scratch, fs, bs, features);
        assert_e2fsck_silent(&img);
        let mut image = Image::open(&img);
        let ino = inode_number(&img, "/mixed");
        let kind = if fs == "ext4" { MapKind::Extents } else { MapKind::Indirect };
        let want = rebuild(&mut image, &img, ino, kind);
        assert_e2fsck_silent(&img);
        let (seen, _) = debugfs_map(&img, "/mixed", kind);
        assert_eq!(seen, want, "{fs} {bs}: debugfs reads the rebuilt map");
        kernel_reads(&img, &scratch, &want, bs);
    }
}

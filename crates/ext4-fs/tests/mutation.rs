//! Mutation test: small valid images (mke2fs -d of a tree made here, htree
//! directories from `e2fsck -D`, xattrs and a pending journal from debugfs)
//! get random bytes of their metadata flipped — superblock, group
//! descriptors, bitmaps, inode records, directory blocks, extent and
//! indirect blocks, xattr blocks, journal blocks, located by dumpe2fs and
//! debugfs — and each damaged copy is opened read-only and walked, then
//! opened read-write, written to, closed, reopened and walked. Most cases
//! open with `verify_checksums: false` so the damage gets past the
//! checksums. No case may panic, run past its budget or allocate beyond
//! `ext4_bounded_alloc::ALLOC_LIMIT`; errors are fine.
//!
//! `EXT4_MUTATION_CASES` (default 3000) sets the number of cases,
//! `EXT4_MUTATION_SEED` the seed, `EXT4_MUTATION_CASE` replays one case.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ext4_fs::{Filesystem, MemoryDevice, OpenOptions};
use ext4_testkit::fixtures::{self, Profile, TreeSize, Writer};
use ext4_testkit::hostile::{self, Limits, Outcome};
use ext4_testkit::oracle::{dumpe2fs, have_e2fsprogs};

#[global_allocator]
static ALLOC: ext4_bounded_alloc::BoundedAlloc = ext4_bounded_alloc::BoundedAlloc;

/// A kind of metadata, for choosing what to damage evenly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Superblock,
    GroupDescs,
    Bitmap,
    Inode,
    DirBlock,
    MapBlock,
    XattrBlock,
    Journal,
}

/// A damageable byte range of a template.
#[derive(Debug, Clone, Copy)]
struct Region {
    kind: Kind,
    offset: usize,
    len: usize,
}

/// A valid image and where its metadata lies.
struct Template {
    name: &'static str,
    bytes: Arc<Vec<u8>>,
    regions: Vec<Region>,
    kinds: Vec<Kind>,
}

const fn profile(name: &'static str, mke2fs_args: &'static [&'static str], size: &'static str) -> Profile {
    Profile { name, mke2fs_args, conf_defaults: "", size, tree: TreeSize::Small, writer: Writer::Mke2fs }
}

/// The templates: (profile, whether to leave a journal needing recovery).
const TEMPLATES: &[(Profile, bool)] = &[
    (profile("mut-ext4-1k", &["-t", "ext4", "-b", "1024", "-g", "1024", "-N", "512"], "4M"), false),
    (profile("mut-ext4-4k", &["-t", "ext4", "-b", "4096", "-g", "1024", "-N", "512"], "8M"), false),
    (profile("mut-ext4-1k-nocsum", &["-t", "ext4", "-b", "1024", "-g", "1024", "-N", "512", "-O", "^metadata_csum"], "4M"), false),
    (profile("mut-ext2-1k", &["-t", "ext2", "-b", "1024", "-g", "1024", "-N", "512"], "4M"), false),
    (profile("mut-ext4-4k-inline", &["-t", "ext4", "-b", "4096", "-N", "512", "-O", "inline_data"], "8M"), false),
    (profile("mut-ext4-1k-recover", &["-t", "ext4", "-b", "1024", "-g", "1024", "-N", "512"], "4M"), true),
];

/// The paths of the source tree made by [`make_tree`].
fn tree_paths() -> Vec<String> {
    let mut v: Vec<String> =
        ["/", "/small", "/medium", "/sparse", "/fast-link", "/slow-link", "/a", "/a/b", "/a/b/c", "/a/b/c/deep", "/big"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    v.extend((0..6).map(|i| format!("/big/entry-{i:04}-with-a-rather-long-name-to-fill-blocks")));
    v
}

/// A small tree with one of everything: tiny, medium and many-extent sparse
/// files, fast and slow symlinks, a deep path, a hard link and a directory
/// of 240 long names (several blocks, indexed later by `e2fsck -D`).
fn make_tree(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("a/b/c"))?;
    std::fs::create_dir_all(dir.join("big"))?;
    std::fs::write(dir.join("small"), b"small file\n")?;
    std::fs::write(dir.join("medium"), (0..40_000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>())?;
    let f = std::fs::File::create(dir.join("sparse"))?;
    for i in 0..24u64 {
        f.write_all_at(&[i as u8 + 1; 4096], i * 2 * 4096)?;
    }
    std::os::unix::fs::symlink("small", dir.join("fast-link"))?;
    std::os::unix::fs::symlink("a/b/c/".repeat(14) + "deep", dir.join("slow-link"))?;
    std::fs::write(dir.join("a/b/c/deep"), b"deep\n")?;
    std::fs::hard_link(dir.join("small"), dir.join("a/hard"))?;
    for i in 0..240 {
        std::fs::write(dir.join(format!("big/entry-{i:04}-with-a-rather-long-name-to-fill-blocks")), format!("{i}"))?;
    }
    Ok(())
}

fn run(c: &mut Command) -> std::process::Output {
    let out = c.output().expect("tool runs");
    assert!(out.status.code().is_some_and(|c| c <= 1), "{c:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Builds a template image and finds its metadata with dumpe2fs and debugfs.
fn build(p: &Profile, recover: bool, tree: &Path, work: &Path) -> Template {
    let img = work.join(format!("{}.img", p.name));
    fixtures::mke2fs(&img, p, Some(tree)).expect("mke2fs -d");
    run(Command::new("e2fsck").arg("-fyD").arg(&img));
    let value = work.join("xattr-value");
    std::fs::write(&value, vec![b'v'; 700]).unwrap();
    let cmds = work.join(format!("{}.cmds", p.name));
    let mut script = format!("ea_set /small user.small tiny\nea_set -f {} /medium user.big\nea_set /a user.dir x\n", value.display());
    std::fs::write(&cmds, &script).unwrap();
    run(Command::new("debugfs").arg("-w").arg("-f").arg(&cmds).arg(&img));
    ext4_testkit::oracle::assert_fsck_clean(&img);
    if recover {
        // Committed transactions left in the log: blocks of the last group,
        // free in this image, are overwritten by the replay; one is revoked.
        let free = last_free_blocks(&dumpe2fs(&img, false));
        script = format!("jo -c\njw -b {},{} /dev/zero\njw -r {}\njc\njo\njw -b {} /dev/zero\njc\n", free[0], free[1], free[1], free[2]);
        std::fs::write(&cmds, &script).unwrap();
        run(Command::new("debugfs").arg("-w").arg("-f").arg(&cmds).arg(&img));
    }
    let bytes = std::fs::read(&img).unwrap();
    let regions = find_regions(&img, bytes.len());
    let mut kinds: Vec<Kind> = regions.iter().map(|r| r.kind).collect();
    kinds.dedup();
    kinds.sort_by_key(|k| *k as u8);
    kinds.dedup();
    let _ = std::fs::remove_file(&img);
    Template { name: p.name, bytes: Arc::new(bytes), regions, kinds }
}

/// Three free blocks from dumpe2fs' last "Free blocks: A-B" range.
fn last_free_blocks(dump: &str) -> Vec<u64> {
    let line = dump.lines().rfind(|l| l.trim_start().starts_with("Free blocks: ") && l.contains('-')).expect("free blocks");
    let first: u64 = line.split(':').nth(1).unwrap().trim().split(['-', ',']).next().unwrap().parse().unwrap();
    vec![first, first + 1, first + 2]
}

/// Numbers in `s` after `label` up to the next non-range character: "A" or "A-B".
fn range_after(s: &str, label: &str) -> Option<(u64, u64)> {
    let i = s.find(label)? + label.len();
    let t: String = s[i..].trim_start().chars().take_while(|c| c.is_ascii_digit() || *c == '-').collect();
    let mut it = t.split('-').filter_map(|x| x.parse().ok());
    let a = it.next()?;
    Some((a, it.next().unwrap_or(a)))
}

/// Every metadata region of the image, from dumpe2fs and debugfs.
fn find_regions(img: &Path, len: usize) -> Vec<Region> {
    let head = dumpe2fs(img, true);
    let bs: usize = head.lines().find_map(|l| l.strip_prefix("Block size:")).unwrap().trim().parse().unwrap();
    let mut v = vec![Region { kind: Kind::Superblock, offset: 1024, len: 1024 }];
    let block = |kind, a: u64, b: u64, v: &mut Vec<Region>| {
        for blk in a..=b.min(a + 7) {
            v.push(Region { kind, offset: blk as usize * bs, len: bs });
        }
    };
    for l in dumpe2fs(img, false).lines() {
        if let Some((a, b)) = range_after(l, "Group descriptors at") {
            block(Kind::GroupDescs, a, b, &mut v);
        }
        for label in ["Block bitmap at", "Inode bitmap at"] {
            if let Some((a, _)) = range_after(l, label) {
                block(Kind::Bitmap, a, a, &mut v);
            }
        }
    }
    // One debugfs session for every path of the tree plus the journal.
    let mut cmds = String::new();
    let paths = tree_paths();
    for p in paths.iter().map(String::as_str).chain(["<8>"]) {
        cmds += &format!("imap {p}\nstat {p}\n");
    }
    for p in ["/", "/a", "/a/b", "/big"] {
        cmds += &format!("blocks {p}\n");
    }
    let file = img.with_extension("regions");
    std::fs::write(&file, cmds).unwrap();
    let out = Command::new("debugfs").arg("-f").arg(&file).arg(img).output().expect("debugfs runs");
    let _ = std::fs::remove_file(&file);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for sect in text.split("debugfs: ").skip(1) {
        let (cmd, body) = sect.split_once('\n').unwrap_or((sect, ""));
        if cmd.starts_with("imap") {
            if let (Some((blk, _)), Some(off)) = (range_after(body, "located at block"), body.split("offset 0x").nth(1)) {
                let off = usize::from_str_radix(off.trim(), 16).unwrap();
                let isz = 256.min(bs);
                v.push(Region { kind: Kind::Inode, offset: blk as usize * bs + off, len: isz });
            }
        } else if cmd.starts_with("stat <8>") {
            if let Some(first) = body.split("(0").nth(1).and_then(|s| range_after(s, ":")) {
                block(Kind::Journal, first.0, first.0 + 7, &mut v);
            }
        } else if cmd.starts_with("stat") {
            if let Some((acl, _)) = range_after(body, "File ACL:").filter(|a| a.0 != 0) {
                block(Kind::XattrBlock, acl, acl, &mut v);
            }
            for tok in ["(ETB0):", "(ETB1):", "(IND):", "(DIND):", "(TIND):"] {
                for part in body.split(tok).skip(1) {
                    if let Some((b, _)) = range_after(part, "") {
                        block(Kind::MapBlock, b, b, &mut v);
                    }
                }
            }
        } else if cmd.starts_with("blocks") {
            for b in body.split_whitespace().filter_map(|x| x.parse::<u64>().ok()).take(8) {
                block(Kind::DirBlock, b, b, &mut v);
            }
        }
    }
    v.retain(|r| r.offset + r.len <= len);
    v
}

/// splitmix64: a small deterministic generator (no dependency needed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Values that tend to hit edge cases when written over a count or offset.
const INTERESTING: &[u32] =
    &[0, 1, 2, 3, 7, 0xff, 0x100, 0x3ff, 0x400, 0xfff, 0x1000, 0x7fff, 0x8000, 0xffff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff];

/// Damages the image: a few random bytes, or an aligned field set to an
/// interesting value, in one region of a randomly chosen kind. Returns a
/// description of what was done.
fn mutate(t: &Template, img: &mut [u8], rng: &mut Rng) -> String {
    let kind = t.kinds[rng.below(t.kinds.len())];
    let choices: Vec<&Region> = t.regions.iter().filter(|r| r.kind == kind).collect();
    let r = choices[rng.below(choices.len())];
    let mut what = format!("{kind:?}@{}:", r.offset);
    let edits = 1 + rng.below(4);
    for _ in 0..edits {
        if rng.below(2) == 0 {
            let at = r.offset + rng.below(r.len);
            let x = (1 + rng.below(255)) as u8;
            img[at] ^= x;
            what += &format!(" [{}]^={x:#x}", at - r.offset);
        } else {
            let width = [1usize, 2, 4][rng.below(3)];
            let at = r.offset + rng.below(r.len / width) * width;
            let v = INTERESTING[rng.below(INTERESTING.len())];
            img[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
            what += &format!(" [{}]={v:#x}/{width}", at - r.offset);
        }
    }
    what
}

/// What one damaged image did: (read-only open worked, read-write open worked).
fn exercise(img: Vec<u8>, verify: bool) -> (bool, bool) {
    let lim = Limits { file_bytes: 256 << 10, inodes: 2000, ..Limits::default() };
    let ro_opts = OpenOptions { verify_checksums: verify, cache_blocks: 1024, ..OpenOptions::read_only() };
    let ro = match Filesystem::open(MemoryDevice::from_vec(img.clone()), ro_opts.clone()) {
        Ok(fs) => {
            hostile::walk(&fs, lim);
            true
        }
        Err(_) => false,
    };
    let dev = Arc::new(MemoryDevice::from_vec(img));
    let rw_opts = OpenOptions { write: true, ..ro_opts.clone() };
    let rw = match Filesystem::open(dev.clone(), rw_opts) {
        Ok(mut fs) => {
            hostile::write_workload(&mut fs);
            let _ = fs.close();
            if let Ok(fs) = Filesystem::open(MemoryDevice::from_vec(dev.to_vec()), ro_opts) {
                hostile::walk(&fs, lim);
            }
            true
        }
        Err(_) => false,
    };
    (ro, rw)
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn damaged_metadata_never_panics_hangs_or_overallocates() {
    if !ext4_testkit::require(have_e2fsprogs(), "e2fsprogs not installed") {
        return;
    }
    let work_dir = ext4_testkit::scratch_dir("mutation");
    let work: PathBuf = work_dir.path().to_path_buf();
    let tree = work.join("tree");
    make_tree(&tree).unwrap();
    let t0 = Instant::now();
    let templates: Vec<Template> = TEMPLATES.iter().map(|(p, rec)| build(p, *rec, &tree, &work)).collect();
    let _ = std::fs::remove_dir_all(&work);
    for t in &templates {
        let mut kinds = std::collections::BTreeMap::new();
        for r in &t.regions {
            *kinds.entry(format!("{:?}", r.kind)).or_insert(0) += 1;
        }
        println!("template {}: {} bytes, regions {kinds:?}", t.name, t.bytes.len());
        for k in [Kind::Superblock, Kind::GroupDescs, Kind::Bitmap, Kind::Inode, Kind::DirBlock, Kind::MapBlock, Kind::XattrBlock] {
            assert!(t.kinds.contains(&k), "{}: no {k:?} region found", t.name);
        }
    }
    println!("templates built in {} ms", hostile::ms(t0));

    let cases = env_u64("EXT4_MUTATION_CASES").unwrap_or(3000);
    let seed = env_u64("EXT4_MUTATION_SEED").unwrap_or(0x5EED_E4F5);
    let only = env_u64("EXT4_MUTATION_CASE");
    let budget = Duration::from_secs(env_u64("EXT4_MUTATION_BUDGET_SECS").unwrap_or(20));
    let start = Instant::now();
    let (mut ro_ok, mut rw_ok, mut ran) = (0u64, 0u64, 0u64);
    let mut failures = Vec::new();
    for case in 0..cases {
        if only.is_some_and(|o| o != case) {
            continue;
        }
        let mut rng = Rng(seed ^ case.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let t = &templates[rng.below(templates.len())];
        let mut img = t.bytes.to_vec();
        let what = mutate(t, &mut img, &mut rng);
        // Mostly past the checksums; some cases with them, as a user would open.
        let verify = rng.below(5) == 0;
        let name = format!("case {case} ({}, verify={verify}): {what}", t.name);
        ran += 1;
        match hostile::run_case(&name, budget, move || exercise(img, verify)) {
            Outcome::Done((ro, rw)) => {
                ro_ok += u64::from(ro);
                rw_ok += u64::from(rw);
            }
            Outcome::Panicked(m) => failures.push(format!("{name}\n    PANIC {m}")),
            Outcome::TimedOut => failures.push(format!("{name}\n    HANG (over {budget:?})")),
        }
        if failures.len() >= 20 {
            break;
        }
    }
    println!(
        "mutation: {ran} cases (seed {seed:#x}) in {:.1} s: {ro_ok} opened read-only and walked, {rw_ok} opened read-write and written, {} failures",
        start.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} case(s) crashed or hung (replay one with EXT4_MUTATION_SEED={seed} EXT4_MUTATION_CASE=N):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

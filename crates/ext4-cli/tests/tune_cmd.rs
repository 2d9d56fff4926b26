//! `ext4 tune` against tune2fs 1.47.0: each change is made by both tools
//! on copies of one image (the same fake time for both), then the two
//! `dumpe2fs` reports must be equal (less "Lifetime writes", which counts
//! each tool's own writes, and the superblock checksum that covers it),
//! `e2fsck -fn` silent on ours, and the kernel's view of our image the
//! same tree as before. The images: mke2fs layouts for the superblock
//! options, and images the kernel built (`aging::built`: htrees with
//! holes, extent trees of depth 2, shared xattr blocks, EA inodes,
//! inline data, an orphan file) for the feature changes, checksums on and
//! off over every structure among them.
//!
//! Where tune2fs leaves a filesystem e2fsck complains about, ours must be
//! clean instead: where it asks for `e2fsck -f`, ours is compared with
//! tune2fs's after that check (less what the check stamps); where it asks
//! for `e2fsck -fD` (a directory leaf without room for a checksum tail),
//! the superblocks must agree but for the state and free counts.
//!
//! `EXT4_KEEP=1` keeps the image of a change that e2fsck finds fault with
//! (in `$TMPDIR/tune-kept`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{EXT4, have_fsck};
use ext4_testkit::aging::built::kernel_built;
use ext4_testkit::aging::config::{Scale, matrix};
use ext4_testkit::oracle::{LoopMount, can_loop_mount, e2fsck_problems};
use ext4_testkit::snapshot::Snapshot;

/// The time both tools write (`E2FSPROGS_FAKE_TIME`): fixed, in the past.
const FAKE_TIME: &str = "1760000000";

fn run(program: &str, args: &[&str], image: &Path) -> Output {
    Command::new(program).env("E2FSPROGS_FAKE_TIME", FAKE_TIME).args(args).arg(image).output().expect("the tool runs")
}

/// A sparse copy of `from`.
fn copy(from: &Path, to: &Path) {
    let out = Command::new("cp").arg("--sparse=always").arg(from).arg(to).output().expect("cp runs");
    assert!(out.status.success(), "cp: {}", String::from_utf8_lossy(&out.stderr));
}

/// `dumpe2fs` of `image`, in UTC, without the lines that count each
/// tool's own writes.
fn report(image: &Path) -> String {
    let out = Command::new("dumpe2fs").env("TZ", "UTC").arg(image).output().expect("dumpe2fs runs");
    let text = String::from_utf8_lossy(&out.stdout);
    // The MMP block records who wrote it when: tune2fs the device path it
    // was given, ext4 tune its own name.
    let skip = |l: &str| ["Lifetime writes:", "Checksum:", "    mmp_update_", "    mmp_device_name:"].iter().any(|p| l.starts_with(p));
    text.lines().filter(|l| !skip(l)).map(|l| format!("{l}\n")).collect()
}

/// The first differing line of two reports, with context.
fn first_difference(a: &str, b: &str) -> Option<String> {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let i = (0..la.len().max(lb.len())).find(|&i| la.get(i) != lb.get(i))?;
    let show = |l: &[&str]| l[i.saturating_sub(2)..(i + 3).min(l.len())].join("\n");
    Some(format!("line {}:\n--- tune2fs\n{}\n--- ext4 tune\n{}", i + 1, show(&la), show(&lb)))
}

/// The kernel's view of an image's tree.
fn kernel_tree(image: &Path) -> Snapshot {
    let m = LoopMount::new(image, "ro").expect("mount");
    let s = Snapshot::from_host(m.path()).expect("walk");
    common::unmount(m);
    s
}

/// One image and the copies the two tools change.
struct Pair {
    dir: tempfile::TempDir,
    base: PathBuf,
}

impl Pair {
    fn new(base: &Path) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let own = dir.path().join("base.img");
        copy(base, &own);
        Self { dir, base: own }
    }

    /// Both tools make the change `args`; the results must agree (see the
    /// module comment). Returns our image, to chain changes on.
    fn check(&self, args: &[&str], tree: Option<&Snapshot>) -> PathBuf {
        let (a, b) = (self.dir.path().join("tune2fs.img"), self.dir.path().join("ext4.img"));
        copy(&self.base, &a);
        copy(&self.base, &b);
        let ta = run("tune2fs", args, &a);
        assert!(ta.status.success(), "tune2fs {args:?}: {}", String::from_utf8_lossy(&ta.stderr));
        let mut ours = vec!["tune"];
        ours.extend_from_slice(args);
        let tb = run(EXT4, &ours, &b);
        assert!(tb.status.success(), "ext4 tune {args:?}: {}", String::from_utf8_lossy(&tb.stderr));
        if let Some(p) = e2fsck_problems(&b) {
            if std::env::var_os("EXT4_KEEP").is_some() {
                let kept = ext4_testkit::scratch_dir("tune-kept").keep();
                eprintln!("EXT4_KEEP: images kept in {}", kept.display());
                copy(&self.base, &kept.join("base.img"));
                copy(&b, &kept.join("ours.img"));
            }
            panic!("ext4 tune {args:?}: e2fsck -fn is not silent:\n{p}");
        }
        let asked = String::from_utf8_lossy(&ta.stdout).into_owned();
        let dir_check = asked.contains("e2fsck -fD");
        let (mut ra, mut rb) = (report(&a), report(&b));
        if asked.contains("Please run e2fsck -f") && !dir_check {
            // tune2fs left work for e2fsck (entry types, freed backups)
            // that ours did: compare with tune2fs's once e2fsck did it,
            // less what the check itself stamps (times, mount count).
            let out = Command::new("e2fsck").arg("-fy").arg(&a).output().expect("e2fsck runs");
            assert!(out.status.code().is_some_and(|c| c <= 1), "e2fsck -fy after tune2fs {args:?}");
            let stamps = ["Last checked:", "Last write time:", "Mount count:", "Next check after:", "Filesystem state:"];
            let unstamp =
                |r: &str| -> String { r.lines().filter(|l| !stamps.iter().any(|p| l.starts_with(p))).map(|l| format!("{l}\n")).collect() };
            (ra, rb) = (unstamp(&report(&a)), unstamp(&rb));
        }
        if dir_check {
            // tune2fs left directories for e2fsck -fD; ours fixed them: the
            // superblock part must agree but for the state and free counts.
            let head = |r: &str| -> String {
                r.lines()
                    .take_while(|l| !l.starts_with("Group 0:"))
                    .filter(|l| !l.starts_with("Filesystem state:") && !l.starts_with("Free blocks:"))
                    .map(|l| format!("{l}\n"))
                    .collect()
            };
            if let Some(d) = first_difference(&head(&ra), &head(&rb)) {
                panic!("{args:?} (tune2fs asked for e2fsck -fD): the superblocks differ at {d}");
            }
        } else if let Some(d) = first_difference(&ra, &rb) {
            panic!("{args:?}: dumpe2fs differs at {d}");
        }
        if let Some(t) = tree {
            let now = kernel_tree(&b);
            let d = t.diff(&now);
            assert!(d.is_empty(), "{args:?}: the kernel sees another tree:\n{}", d[..d.len().min(20)].join("\n"));
        }
        b
    }

    /// Makes our result of `args` the base of the next changes.
    fn then(&mut self, args: &[&str], tree: Option<&Snapshot>) {
        let b = self.check(args, tree);
        std::fs::rename(b, &self.base).expect("rename");
    }
}

/// A kernel-built image of aging configuration `name`, checked by
/// `e2fsck -fy` (tune2fs changes only freshly checked filesystems), with
/// the kernel's view of its tree.
fn kernel_image(dir: &Path, name: &str, seed: u64) -> (PathBuf, Snapshot) {
    let cfg = matrix().into_iter().find(|c| c.name == name).expect("a configuration");
    let image = dir.join(format!("{name}.img"));
    kernel_built(&cfg, Scale::Quick, seed, &image).unwrap_or_else(|e| panic!("{name}: {e}"));
    let out = Command::new("e2fsck").arg("-fy").arg(&image).output().expect("e2fsck runs");
    assert!(out.status.code().is_some_and(|c| c <= 1), "e2fsck -fy {name}: {}", String::from_utf8_lossy(&out.stdout));
    let tree = kernel_tree(&image);
    (image, tree)
}

fn kernel_ready() -> bool {
    have_fsck() && ext4_testkit::require(can_loop_mount(), "kernel-built images need root and loop devices")
}

/// A fresh mke2fs image.
fn mke2fs(dir: &Path, args: &[&str]) -> PathBuf {
    let image = dir.join("mke2fs.img");
    let out = Command::new("mke2fs")
        .env("E2FSPROGS_FAKE_TIME", "1700000000")
        .args(["-q", "-F", "-U", "01234567-89ab-cdef-0123-456789abcdef"])
        .args(args)
        .arg(&image)
        .arg("64M")
        .output()
        .expect("mke2fs runs");
    assert!(out.status.success(), "mke2fs: {}", String::from_utf8_lossy(&out.stderr));
    image
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn superblock_options_match_tune2fs() {
    if !have_fsck() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    for layout in [&["-t", "ext4"][..], &["-t", "ext4", "-O", "^metadata_csum,uninit_bg", "-b", "4096"], &["-t", "ext2", "-I", "128"]] {
        let pair = Pair::new(&mke2fs(dir.path(), layout));
        let options: &[&[&str]] = &[
            &["-L", "a label"],
            &["-L", "a label longer than sixteen bytes"],
            &["-c", "25", "-C", "7", "-i", "2w"],
            &["-c", "0", "-i", "3m"],
            &["-e", "remount-ro", "-m", "7.5"],
            &["-r", "1000", "-u", "1000", "-g", "100"],
            &["-o", "journal_data,^acl,nobarrier"],
            &["-E", "stride=8,stripe_width=32,test_fs,mount_opts=nodelalloc,hash_alg=tea"],
            &["-M", "/mnt/somewhere", "-T", "20200101"],
            &["-E", "force_fsck"],
            &["-O", "large_dir,^dir_nlink,^extra_isize,encrypt"],
            &["-O", "casefold,stable_inodes,fast_commit"],
            &["-O", "^dir_index"],
            &["-O", "^huge_file,^filetype"],
            &["-U", "11111111-2222-3333-4444-555555555555"],
            &["-U", "clear"],
        ];
        for args in options {
            pair.check(args, None);
        }
    }
    // Backups of groups sparse_super leaves without one go free.
    Pair::new(&mke2fs(dir.path(), &["-t", "ext4", "-O", "^sparse_super,^resize_inode"])).check(&["-O", "sparse_super"], None);
    // Features the library cannot write: the superblocks alone change.
    for layout in [&["-t", "ext4", "-O", "bigalloc,quota"][..], &["-t", "ext4", "-O", "casefold,project"]] {
        let pair = Pair::new(&mke2fs(dir.path(), layout));
        for args in
            [&["-L", "lbl", "-e", "panic"][..], &["-m", "3", "-o", "^acl", "-E", "stride=4,mount_opts=x"], &["-c", "20", "-T", "20210304"]]
        {
            pair.check(args, None);
        }
    }
    let mut pair = Pair::new(&mke2fs(dir.path(), &["-t", "ext4"]));
    pair.then(&["-O", "mmp", "-E", "mmp_update_interval=7"], None);
    // -f: neither tool waits for the MMP block's interval.
    pair.check(&["-f", "-O", "^mmp"], None);
    pair.check(&["-f", "-E", "clear_mmp"], None);
    let out = run(EXT4, &["tune", "-E", "clear_mmp"], &pair.base);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("-f"), "clear_mmp without -f: {out:?}");
}

/// After checksums went on, the kernel writes to the filesystem (its
/// journal gets checksums of its own at mount) and e2fsck stays silent.
fn kernel_writes(image: &Path) {
    let m = LoopMount::new(image, "").expect("mount");
    for i in 0..40 {
        std::fs::write(m.path().join(format!("after-{i}")), vec![i as u8; 3000]).expect("write");
    }
    std::fs::create_dir(m.path().join("after-dir")).expect("mkdir");
    common::unmount(m);
    if let Some(p) = e2fsck_problems(image) {
        panic!("after the kernel wrote to {}: e2fsck -fn:\n{p}", image.display());
    }
}

/// A checksum that does not match stops a rewrite before it writes anything.
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn a_bad_checksum_stops_the_rewrite() {
    if !kernel_ready() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (image, _) = kernel_image(dir.path(), "ext4-4k", 51);
    // Damage the xattr block of x/f0 (its checksum no longer matches).
    let stat = ext4_testkit::oracle::debugfs(&image, "stat /x/f0");
    let acl: u64 = stat
        .lines()
        .find_map(|l| l.trim().strip_prefix("File ACL:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("an xattr block");
    let mut data = std::fs::read(&image).expect("read");
    data[(acl * 4096 + 100) as usize] ^= 0x40;
    std::fs::write(&image, &data).expect("write");
    let out = run(EXT4, &["tune", "-U", "55555555-2222-3333-4444-555555555555"], &image);
    assert!(!out.status.success(), "a rewrite over a bad checksum succeeded");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("xattr") || err.contains("attribute") || err.contains("checksum"), "{err}");
    assert!(std::fs::read(&image).expect("read") == data, "the refused rewrite wrote to the image");
}

/// metadata_csum off and on again over a kernel-built 1 KiB image (a
/// two-level htree with holes, depth-2 extent trees, shared xattr
/// blocks), with uninit_bg taking over or not; a new UUID rewrites every
/// checksum; dir_index off turns index blocks into leaves with tails.
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn checksums_off_and_on_match_tune2fs() {
    if !kernel_ready() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (image, tree) = kernel_image(dir.path(), "ext4-1k", 11);
    let mut pair = Pair::new(&image);
    pair.check(&["-U", "22222222-2222-3333-4444-555555555555"], Some(&tree));
    pair.check(&["-O", "^dir_index"], Some(&tree));
    pair.check(&["-O", "^metadata_csum,^uninit_bg"], Some(&tree));
    pair.then(&["-O", "^metadata_csum"], Some(&tree));
    pair.check(&["-O", "metadata_csum,^uninit_bg"], Some(&tree));
    pair.check(&["-O", "^uninit_bg"], Some(&tree));
    pair.then(&["-O", "metadata_csum"], Some(&tree));
    let ours = pair.check(&["-O", "metadata_csum_seed"], Some(&tree));
    kernel_writes(&ours);
}

/// The same over other kernel-built layouts: 128-byte inodes, no extents
/// (block maps), inline data, 32-byte descriptors, no flex_bg.
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn checksums_match_tune2fs_on_other_layouts() {
    if !kernel_ready() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, seed) in [("ino128", 21), ("noextent", 22), ("inline", 23), ("no64bit", 24), ("noflex", 25)] {
        let (image, tree) = kernel_image(dir.path(), name, seed);
        let mut pair = Pair::new(&image);
        pair.then(&["-O", "^metadata_csum"], Some(&tree));
        pair.check(&["-O", "metadata_csum"], Some(&tree));
        std::fs::remove_file(&image).expect("remove image");
    }
}

/// EA inodes carry a hash of their value seeded by the UUID: a new UUID
/// rewrites it and every entry hash that mixes it in (in inodes and in
/// xattr blocks); with metadata_csum_seed the UUID changes alone, and
/// turning the seed off afterwards rewrites everything.
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn uuid_rules_match_tune2fs_with_ea_inodes() {
    if !kernel_ready() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (image, tree) = kernel_image(dir.path(), "largedir-eainode", 31);
    let mut pair = Pair::new(&image);
    pair.check(&["-U", "33333333-2222-3333-4444-555555555555"], Some(&tree));
    pair.then(&["-O", "metadata_csum_seed"], Some(&tree));
    pair.then(&["-U", "44444444-2222-3333-4444-555555555555"], Some(&tree));
    pair.check(&["-O", "^metadata_csum_seed"], Some(&tree));
    pair.then(&["-O", "^metadata_csum"], Some(&tree));
    pair.check(&["-O", "metadata_csum"], Some(&tree));
}

/// The journal and the orphan file removed and added: on an image with
/// both, on one without a journal, and on ext2 (a block-mapped journal).
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn journal_and_orphan_file_match_tune2fs() {
    if !kernel_ready() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (image, tree) = kernel_image(dir.path(), "seed-orphanfile", 41);
    let mut pair = Pair::new(&image);
    // The orphan file's block tails follow (tune2fs 1.47.0 leaves them).
    let off = pair.check(&["-O", "^metadata_csum"], Some(&tree));
    let on = Pair::new(&off);
    on.check(&["-O", "metadata_csum"], Some(&tree));
    pair.check(&["-O", "^metadata_csum_seed", "-U", "66666666-2222-3333-4444-555555555555"], Some(&tree));
    pair.check(&["-O", "^has_journal,^orphan_file"], Some(&tree));
    pair.check(&["-E", "orphan_file_size=64K"], Some(&tree));
    pair.then(&["-O", "^orphan_file"], Some(&tree));
    pair.then(&["-O", "^has_journal"], Some(&tree));
    pair.check(&["-j"], Some(&tree));
    pair.then(&["-J", "size=8"], Some(&tree));
    pair.check(&["-O", "orphan_file"], Some(&tree));
    std::fs::remove_file(&image).expect("remove image");
    let (image, tree) = kernel_image(dir.path(), "ext2", 42);
    let pair = Pair::new(&image);
    pair.check(&["-j"], Some(&tree));
    pair.check(&["-J", "size=4", "-O", "dir_nlink,extra_isize,uninit_bg"], Some(&tree));
    pair.check(&["-O", "metadata_csum"], Some(&tree));
}

/// What tune refuses, with a message and the image unchanged: checksum
/// changes on a filesystem not freshly checked (unless forced), features
/// it cannot change, impossible values, and images that are not ext2/3/4.
#[ext4_testkit::oracle_test(e2fsprogs)]
fn refusals_leave_the_image_alone() {
    if !have_fsck() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let image = mke2fs(dir.path(), &["-t", "ext4", "-b", "4096"]);
    let before = std::fs::read(&image).expect("read");
    let refused: &[&[&str]] = &[
        &["-O", "64bit"],
        &["-O", "^extent"],
        &["-O", "no_such_feature"],
        &["-r", "99999999"],
        &["-m", "60"],
        &["-e", "sometimes"],
        &["-U", "not-a-uuid"],
        &["-j"],
        &["-J", "size=1"],
        &["-T", "yesterday"],
        // The resize inode is a file of more than 2 GiB.
        &["-O", "^large_file"],
        &["-O", "^resize_inode"],
    ];
    for args in refused {
        let mut all = vec!["tune"];
        all.extend_from_slice(args);
        let out = run(EXT4, &all, &image);
        assert!(!out.status.success(), "ext4 tune {args:?} should fail");
        assert!(!out.stderr.is_empty(), "ext4 tune {args:?}: no message");
        assert!(std::fs::read(&image).expect("read") == before, "ext4 tune {args:?} changed the image");
    }
    // Marked as mounted since its last check: checksum changes need -f.
    let out = Command::new("debugfs").args(["-w", "-R", "ssv mtime 20240101"]).arg(&image).output().expect("debugfs runs");
    assert!(out.status.success());
    let stale = std::fs::read(&image).expect("read");
    let out = run(EXT4, &["tune", "-O", "^metadata_csum"], &image);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("e2fsck -f"), "{out:?}");
    assert!(std::fs::read(&image).expect("read") == stale, "a refused change wrote to the image");
    let out = run(EXT4, &["tune", "-f", "-O", "^metadata_csum"], &image);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(e2fsck_problems(&image).is_none(), "forced change left problems");
    let junk = dir.path().join("junk.img");
    std::fs::write(&junk, vec![0x5a; 1 << 20]).expect("write");
    let out = run(EXT4, &["tune", "-L", "x"], &junk);
    assert!(!out.status.success() && !out.stderr.is_empty());
}

/// The kernel has it mounted: nothing changes underneath it.
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn a_mounted_image_is_refused() {
    if !kernel_ready() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let image = mke2fs(dir.path(), &["-t", "ext4"]);
    let m = LoopMount::new(&image, "").expect("mount");
    let out = run(EXT4, &["tune", "-L", "busy"], &image);
    common::unmount(m);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("mounted"), "{out:?}");
    assert!(!report(&image).contains("busy"), "the label changed under the kernel");
}

/// The count of an htree root of `dir` in `image`, and its index levels.
fn htree_root(image: &Path, dir: &str) -> (u32, u32) {
    let dump = ext4_testkit::oracle::debugfs(image, &format!("htree_dump {dir}"));
    let field = |key: &str| dump.lines().find_map(|l| l.trim().strip_prefix(key)).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    (field("Number of entries (count):"), field("Indirect levels:"))
}

/// A directory whose htree root the kernel filled to its limit: no room
/// for a checksum tail, so turning checksums on rebuilds the directory
/// (tune2fs asks for e2fsck -fD).
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn a_full_index_is_rebuilt() {
    if !kernel_ready() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let image = mke2fs(dir.path(), &["-t", "ext4", "-b", "1024", "-O", "^metadata_csum"]);
    let m = LoopMount::new(&image, "").expect("mount");
    let d = m.path().join("d");
    std::fs::create_dir(&d).expect("mkdir");
    let name = |n: u32| d.join(format!("a_fairly_long_file_name_to_fill_leaves_quickly_{n:06}"));
    // A 1 KiB root holds 124 entries without checksums; each leaf split adds one.
    // The root is looked at every 50 names, then after every name once it
    // is nearly full (the hash seed, and so the split points, vary per run).
    let (mut n, mut last) = (0, 0);
    loop {
        n += 1;
        std::fs::write(name(n), b"").expect("create");
        if last < 100 && n % 50 != 0 {
            continue;
        }
        let out = Command::new("sync").output().expect("sync runs");
        assert!(out.status.success());
        let (count, levels) = htree_root(&image, "/d");
        assert_eq!(levels, 0, "the root split before it was seen full (at {n} entries, {last} root entries before)");
        if count == 124 {
            break;
        }
        last = count;
    }
    common::unmount(m);
    let out = Command::new("e2fsck").arg("-fy").arg(&image).output().expect("e2fsck runs");
    assert!(out.status.code().is_some_and(|c| c <= 1));
    let tree = kernel_tree(&image);
    let pair = Pair::new(&image);
    let ours = pair.check(&["-O", "metadata_csum"], Some(&tree));
    assert_ne!(htree_root(&ours, "/d").0, 0, "the rebuilt directory is indexed");
}

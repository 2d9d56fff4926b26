//! Verdict parity with `e2fsck -fn`: `ext4_fsck::check` must call a
//! filesystem clean exactly where e2fsck exits 0, on
//!
//! * the 202 images of e2fsprogs' fsck test suite (`../shared/corpus`,
//!   skipped when absent: a fresh clone has no `../shared`);
//! * mutated images: bytes flipped in the metadata of mke2fs-made,
//!   library-made and kernel-made templates (`ext4_testkit::mutate`).
//!   `EXT4_FSCK_PARITY_CASES` sets the number of cases (default 60),
//!   `EXT4_FSCK_PARITY_SEED` the seed (printed; from the clock by default),
//!   `EXT4_FSCK_PARITY_CASE` replays one case, `EXT4_FSCK_PARITY_KEEP=DIR`
//!   keeps the images that disagree;
//! * the fixtures of `ext4_testkit::fixtures`.
//!
//! e2fsck runs under a time limit of its own (it loops forever on a few
//! damaged images); a run it cannot finish counts as "not clean".

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use ext4_fsck::{Options, Report};
use ext4_testkit::fixtures::{self, Profile, TreeSize, Writer};
use ext4_testkit::mutate::{Template, make_small_tree, mke2fs_template, mutate, small_tree_dirs, small_tree_paths};
use ext4_testkit::oracle::{LoopMount, can_loop_mount, have_e2fsprogs};
use ext4_testkit::rng::{Rng, seed_from_env};

/// Seconds e2fsck may take on one image.
const E2FSCK_LIMIT: &str = "10";

/// e2fsck's verdict: its exit status (None: it did not finish).
fn e2fsck_status(img: &Path) -> Option<i32> {
    let out = Command::new("timeout").arg(E2FSCK_LIMIT).arg("e2fsck").arg("-fn").arg(img).output().expect("e2fsck runs");
    out.status.code().filter(|&c| c != 124)
}

/// Our verdict on the image file `img`.
fn ours(img: &Path) -> Report {
    let dev = ext4_fsck_dev(img);
    ext4_fsck::check(&dev, Options::default()).expect("check runs")
}

fn ext4_fsck_dev(img: &Path) -> ext4_blockdev::MemoryDevice {
    ext4_blockdev::MemoryDevice::from_vec(std::fs::read(img).expect("image readable"))
}

/// One comparison; `Some(message)` on a mismatch.
fn compare(name: &str, img: &Path) -> Option<String> {
    let e2 = e2fsck_status(img);
    let r = ours(img);
    let e2_clean = e2 == Some(0);
    if e2_clean == r.is_clean() {
        return None;
    }
    let shown: Vec<String> = r.problems.iter().filter(|p| p.counts).take(5).map(|p| format!("{} {}", p.code, p.detail)).collect();
    Some(format!("{name}: e2fsck exit {e2:?}, ours {} {shown:?}", r.outcome.name()))
}

/// Runs `f` over `items` on two threads, collecting mismatches.
fn parallel<T: Sync>(items: &[T], f: impl Fn(&T) -> Option<String> + Sync) -> Vec<String> {
    let bad = Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if let Some(m) = f(item) {
                        bad.lock().unwrap().push(m);
                    }
                }
            });
        }
    });
    let mut v = bad.into_inner().unwrap();
    v.sort();
    v
}

fn work_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ext4-fsck-parity-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn corpus_verdicts_match_e2fsck() {
    let corpus = ext4_testkit::shared_dir().join("corpus/e2fsprogs-fsck");
    if !corpus.is_dir() {
        println!("SKIPPED: {} not present", corpus.display());
        return;
    }
    if !ext4_testkit::require(have_e2fsprogs(), "e2fsprogs not installed") {
        return;
    }
    let mut names: Vec<PathBuf> =
        std::fs::read_dir(&corpus).unwrap().flatten().map(|e| e.path()).filter(|p| p.join("image.gz").exists()).collect();
    names.sort();
    let work = work_dir("corpus");
    let bad = parallel(&names, |dir| {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let img = work.join(format!("{name}.img"));
        let out = Command::new("zcat").arg(dir.join("image.gz")).output().expect("zcat runs");
        std::fs::write(&img, out.stdout).unwrap();
        let r = compare(&name, &img);
        let _ = std::fs::remove_file(&img);
        r
    });
    let _ = std::fs::remove_dir_all(&work);
    println!("corpus: {} images, {} mismatches", names.len(), bad.len());
    assert!(bad.is_empty(), "verdicts differ from e2fsck -fn on {} corpus images:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn fixture_verdicts_match_e2fsck() {
    if !ext4_testkit::require(have_e2fsprogs(), "e2fsprogs not installed") {
        return;
    }
    let profiles: Vec<Profile> = fixtures::PROFILES.iter().copied().filter(|p| fixtures::unavailable(p).is_none()).collect();
    for p in fixtures::PROFILES {
        if let Some(why) = fixtures::unavailable(p) {
            ext4_testkit::require(false, &format!("fixture {}: {why}", p.name));
        }
    }
    let bad = parallel(&profiles, |p| {
        let (img, _) = fixtures::image(p).expect("fixture image");
        let r = ours(&img);
        if !r.is_clean() {
            return Some(format!("{}: {:?}", p.name, r.errors_left().take(5).collect::<Vec<_>>()));
        }
        compare(p.name, &img)
    });
    assert!(bad.is_empty(), "fixture verdicts differ:\n{}", bad.join("\n"));
}

const fn profile(name: &'static str, mke2fs_args: &'static [&'static str], size: &'static str) -> Profile {
    Profile { name, mke2fs_args, conf_defaults: "", size, tree: TreeSize::Small, writer: Writer::Mke2fs }
}

/// mke2fs-made templates: (profile, whether to leave a journal needing recovery).
const MKE2FS_TEMPLATES: &[(Profile, bool)] = &[
    (profile("parity-ext4-1k", &["-t", "ext4", "-b", "1024", "-g", "1024", "-N", "512"], "4M"), false),
    (
        profile("parity-ext4-4k", &["-t", "ext4", "-b", "4096", "-g", "1024", "-N", "512", "-O", "metadata_csum_seed,orphan_file"], "8M"),
        false,
    ),
    (profile("parity-ext4-1k-nocsum", &["-t", "ext4", "-b", "1024", "-g", "1024", "-N", "512", "-O", "^metadata_csum"], "4M"), false),
    (profile("parity-ext2-1k", &["-t", "ext2", "-b", "1024", "-g", "1024", "-N", "512"], "4M"), false),
    (profile("parity-ext4-4k-inline", &["-t", "ext4", "-b", "4096", "-N", "512", "-O", "inline_data"], "8M"), false),
    (profile("parity-ext4-1k-quota", &["-t", "ext4", "-b", "1024", "-g", "1024", "-N", "512", "-O", "quota,project"], "4M"), false),
    (profile("parity-ext4-1k-recover", &["-t", "ext4", "-b", "1024", "-g", "1024", "-N", "512"], "4M"), true),
];

/// A library-made template: formatted by ext4-mkfs, the tree copied in by
/// ext4-fs (journaled, not bulk), xattrs and a rename on top.
fn library_template(tree: &Path, work: &Path) -> Template {
    use ext4_fs::{Filesystem, OpenOptions, XattrMode};
    let img = work.join("parity-library.img");
    let dev = ext4_blockdev::FileDevice::create(&img, 8 << 20).unwrap();
    let mut opts = ext4_mkfs::FormatOptions::new(ext4_mkfs::FsType::Ext4);
    opts.block_size = Some(1024);
    opts.time = Some(1_700_000_000);
    ext4_mkfs::format(&dev, &opts, &mut |_| std::ops::ControlFlow::Continue(())).expect("format");
    let mut fs = Filesystem::open(dev, OpenOptions::read_write()).expect("open");
    let copy = ext4_fs::populate::CopyOptions::default();
    fs.copy_dir_contents(tree, 2, &copy, &mut |_| {}).expect("copy");
    let small = fs.lookup("/small").unwrap();
    fs.set_xattr(small, b"user.small", b"tiny", XattrMode::Any).unwrap();
    let medium = fs.lookup("/medium").unwrap();
    fs.set_xattr(medium, b"user.big", &[b'v'; 700], XattrMode::Any).unwrap();
    let a = fs.lookup("/a").unwrap();
    fs.rename_in(a, b"hard", 2, b"hard-moved", ext4_fs::RenameMode::Replace).unwrap();
    fs.close().expect("close");
    ext4_testkit::oracle::assert_fsck_clean(&img);
    let mut paths = small_tree_paths();
    paths.retain(|p| p != "/a/hard");
    let t = Template::from_image("parity-library", &img, &paths, &small_tree_dirs()).unwrap();
    let _ = std::fs::remove_file(&img);
    t
}

/// A kernel-made template: mke2fs, then the kernel copies the tree in,
/// sets xattrs and grows the big directory into an htree.
fn kernel_template(tree: &Path, work: &Path) -> Template {
    let img = work.join("parity-kernel.img");
    let p = profile("parity-kernel", &["-t", "ext4", "-b", "1024", "-N", "1024"], "8M");
    fixtures::mke2fs(&img, &p, None).unwrap();
    {
        let m = LoopMount::new(&img, "").expect("loop mount");
        let mut from = tree.as_os_str().to_owned();
        from.push("/.");
        assert!(Command::new("cp").arg("-a").arg(from).arg(m.path()).status().unwrap().success());
        xattr::set(m.path().join("small"), "user.small", b"tiny").unwrap();
        xattr::set(m.path().join("medium"), "user.big", &[b'v'; 700]).unwrap();
        for i in 240..400 {
            std::fs::write(m.path().join(format!("big/entry-{i:04}-with-a-rather-long-name-to-fill-blocks")), b"x").unwrap();
        }
        m.unmount().expect("unmount");
    }
    ext4_testkit::oracle::assert_fsck_clean(&img);
    let t = Template::from_image("parity-kernel", &img, &small_tree_paths(), &small_tree_dirs()).unwrap();
    let _ = std::fs::remove_file(&img);
    t
}

#[test]
fn mutated_verdicts_match_e2fsck() {
    if !ext4_testkit::require(have_e2fsprogs(), "e2fsprogs not installed") {
        return;
    }
    let work = work_dir("mutation");
    let tree = work.join("tree");
    make_small_tree(&tree).unwrap();
    let mut templates: Vec<Template> = MKE2FS_TEMPLATES.iter().map(|(p, rec)| mke2fs_template(p, *rec, &tree, &work)).collect();
    templates.push(library_template(&tree, &work));
    if ext4_testkit::require(can_loop_mount(), "kernel-made templates need root and loop devices") {
        templates.push(kernel_template(&tree, &work));
    }
    let cases: u64 = std::env::var("EXT4_FSCK_PARITY_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let only: Option<u64> = std::env::var("EXT4_FSCK_PARITY_CASE").ok().and_then(|s| s.parse().ok());
    let seed = seed_from_env("EXT4_FSCK_PARITY_SEED");
    let list: Vec<u64> = (0..cases).filter(|c| only.is_none_or(|o| o == *c)).collect();
    let clean = std::sync::atomic::AtomicU64::new(0);
    let bad = parallel(&list, |&case| {
        let mut rng = Rng::new(seed ^ case.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let t = &templates[rng.index(templates.len())];
        let mut bytes = t.bytes.to_vec();
        let what = mutate(t, &mut bytes, &mut rng);
        let img = work.join(format!("case-{case}.img"));
        std::fs::write(&img, &bytes).unwrap();
        let name = format!("case {case} ({}): {what}", t.name);
        let r = compare(&name, &img);
        if let (Some(_), Some(keep)) = (&r, std::env::var_os("EXT4_FSCK_PARITY_KEEP")) {
            let _ = std::fs::copy(&img, Path::new(&keep).join(format!("case-{case}.img")));
        }
        if r.is_none() && ours(&img).is_clean() {
            clean.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let _ = std::fs::remove_file(&img);
        r
    });
    let _ = std::fs::remove_dir_all(&work);
    println!("mutation parity: {} cases, {} clean by both, {} mismatches (seed {seed:#x})", list.len(), clean.into_inner(), bad.len());
    assert!(
        bad.is_empty(),
        "verdicts differ from e2fsck -fn (replay with EXT4_FSCK_PARITY_SEED={seed:#x} EXT4_FSCK_PARITY_CASE=N):\n{}",
        bad.join("\n")
    );
}

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

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ext4_fs::{Filesystem, MemoryDevice, OpenOptions};
use ext4_testkit::fixtures::{Profile, TreeSize, Writer};
use ext4_testkit::hostile::{self, Limits, Outcome};
use ext4_testkit::mutate::{Kind, Template, make_small_tree, mke2fs_template, mutate};
use ext4_testkit::oracle::have_e2fsprogs;
use ext4_testkit::rng::Rng;

#[global_allocator]
static ALLOC: ext4_bounded_alloc::BoundedAlloc = ext4_bounded_alloc::BoundedAlloc;

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
    make_small_tree(&tree).unwrap();
    let t0 = Instant::now();
    let templates: Vec<Template> = TEMPLATES.iter().map(|(p, rec)| mke2fs_template(p, *rec, &tree, &work)).collect();
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
        let mut rng = Rng::new(seed ^ case.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let t = &templates[rng.index(templates.len())];
        let mut img = t.bytes.to_vec();
        let what = mutate(t, &mut img, &mut rng);
        // Mostly past the checksums; some cases with them, as a user would open.
        let verify = rng.index(5) == 0;
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

//! The kernel-aging differential harness (`ext4_testkit::aging`): a sample
//! of the matrix with a seed that varies per run, and the regression
//! scripts of what it found. Long runs: `cargo xtask aging`.

use ext4_testkit::aging::config::{Config, Scale, matrix};
use ext4_testkit::aging::ops::Op;
use ext4_testkit::aging::{self, RunOptions, Writer};
use ext4_testkit::oracle::{can_loop_mount, have_e2fsprogs};

fn oracles() -> bool {
    ext4_testkit::require(have_e2fsprogs() && can_loop_mount(), "kernel aging needs e2fsprogs, root and loop devices")
}

fn config(name: &str) -> Config {
    matrix().into_iter().find(|c| c.name == name).expect("a configuration of the matrix")
}

fn work_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("ext4-aging-test").tempdir().expect("temp dir")
}

fn create(path: &str, len: u64, seed: u64) -> Op {
    Op::Create { path: path.into(), perm: 0o644, len, seed }
}

fn write(path: &str, offset: u64, len: u64, seed: u64) -> Op {
    Op::Write { path: path.into(), offset, len, seed, sync: false }
}

/// Kernel-made inline files grown by the library past the inline area: a
/// write beyond the end, a truncate up, a write inside. (A truncate up and
/// then a write of the same inline file loses the write on the kernel
/// side, 6.18: see `Model::random_data_op`.)
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn inline_files_of_the_kernel_grow_out_of_the_inode() {
    if !oracles() {
        return;
    }
    let dir = work_dir();
    let rounds = vec![
        (Writer::Kernel, vec![create("a", 65, 1), create("b", 54, 2), create("c", 30, 3)]),
        (Writer::Library, vec![write("a", 138, 62_722, 4), Op::Truncate { path: "b".into(), size: 518 }, write("c", 40, 10, 6)]),
    ];
    aging::replay(&config("inline"), dir.path(), &rounds).unwrap();
}

/// Issue 17's reproduction: the kernel converts /d to an htree (leaving the
/// old entry tail in the root's `dt_reserved`), the library then splits
/// its first leaf; the root's checksum must stay valid for e2fsck and the
/// kernel.
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn library_splits_a_kernel_converted_htree_root() {
    if !oracles() {
        return;
    }
    let dir = work_dir();
    let kernel: Vec<Op> = std::iter::once(Op::Mkdir { path: "d".into(), perm: 0o755 })
        .chain((1..=300).map(|i| create(&format!("d/file_with_a_fairly_long_name_number_{i}.txt"), 4, i)))
        .collect();
    let library: Vec<Op> = (0..100).map(|i| create(&format!("d/bulk_insert_{i}_with_some_padding_to_fill_blocks.txt"), 3, i)).collect();
    let rounds = vec![(Writer::Kernel, kernel), (Writer::Library, library), (Writer::Kernel, vec![create("d/after", 1, 1)])];
    aging::replay(&config("ext4-4k"), dir.path(), &rounds).unwrap();
}

/// A sample of the matrix: the 1 KiB configuration (two index levels) and
/// two more chosen by the seed, three library rounds each.
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn kernel_aging_sample() {
    if !oracles() {
        return;
    }
    let seed = ext4_testkit::rng::seed_from_env("EXT4_AGING_SEED");
    let all = matrix();
    let mut rng = ext4_testkit::rng::Rng::new(seed);
    let mut names = vec!["ext4-1k"];
    while names.len() < 3 {
        let c = rng.pick(&all).name;
        if !names.contains(&c) {
            names.push(c);
        }
    }
    let dir = work_dir();
    for name in names {
        let opts = RunOptions { seed, rounds: 3, round_ops: 300, scale: Scale::Quick, work_dir: dir.path().to_path_buf() };
        let r = aging::run(&config(name), &opts).unwrap_or_else(|e| panic!("{name} (EXT4_AGING_SEED={seed:#x}): {e}"));
        println!("{name}: {} library ops, {} kernel ops; {}", r.library_ops, r.kernel_ops, r.structures);
    }
}

/// An inline directory the library grew into `system.data`, then grown by
/// the kernel: with a hash in the body entry (as e2fsprogs writes, not the
/// kernel) the kernel lost the entry and e2fsck aborted.
#[ext4_testkit::oracle_test(e2fsprogs, loop_mount)]
fn inline_directory_grown_by_both() {
    use ext4_testkit::aging::ops::{NodeKind, RenameKind};
    if !oracles() {
        return;
    }
    let dir = work_dir();
    let long = format!("entry_002797_{}", "x".repeat(33));
    let rounds = vec![
        (Writer::Kernel, vec![Op::Mkdir { path: "d".into(), perm: 0o755 }, create("other", 5, 1)]),
        (
            Writer::Library,
            vec![
                Op::Mkdir { path: "d/n".into(), perm: 0o1775 },
                create(&format!("d/n/{long}"), 100, 2),
                Op::Rename { from: "other".into(), to: "d/n/n3007".into(), kind: RenameKind::Replace },
            ],
        ),
        (
            Writer::Kernel,
            vec![
                Op::Mknod { path: "d/n/n3089".into(), kind: NodeKind::Char, perm: 0o600, major: 6, minor: 503_868 },
                Op::Rename { from: format!("d/n/{long}"), to: "moved".into(), kind: RenameKind::Replace },
            ],
        ),
    ];
    aging::replay(&config("inline"), dir.path(), &rounds).unwrap();
}

//! Random mke2fs command lines: whenever mke2fs 1.47.0 formats, we format
//! the same bytes (except the MMP block's time); whenever it refuses, we
//! refuse too, with an error and without panicking. `plan` never panics.

mod common;

use common::*;
use ext4_mkfs::Profile;
use proptest::prelude::*;

/// One random configuration: an argument list, a size and a profile.
fn config() -> impl Strategy<Value = (Vec<String>, u64, bool)> {
    let fs_type = prop::sample::select(vec!["ext2", "ext3", "ext4"]);
    let block = prop::option::of(prop::sample::select(vec![1024u32, 2048, 4096]));
    let inode = prop::option::of(prop::sample::select(vec![128u32, 256, 512, 1024]));
    let ratio = prop::option::of(prop::sample::select(vec![4096u32, 8192, 16384, 65536]));
    let reserved = prop::option::of(0u32..=10);
    let bpg = prop::option::of(prop::sample::select(vec![1024u32, 2048, 4096, 8192]));
    let flex = prop::option::of(prop::sample::select(vec![1u32, 2, 8, 64]));
    let toggles = prop::collection::vec(
        prop::sample::select(vec![
            "^has_journal",
            "^resize_inode",
            "^flex_bg",
            "^metadata_csum",
            "uninit_bg",
            "^64bit",
            "sparse_super2",
            "metadata_csum_seed",
            "orphan_file",
            "inline_data",
            "^extent",
            "^dir_index",
            "^filetype",
            "^huge_file",
            "large_dir",
            "^resize_inode,meta_bg",
            "^sparse_super,^resize_inode",
            "^ext_attr",
            "^large_file",
            "^dir_nlink",
            "^extra_isize",
            "mmp",
            "none,has_journal",
        ]),
        0..4,
    );
    let extra = prop::option::of(prop::sample::select(vec![
        "-N 3000",
        "-N 40",
        "-J size=5",
        "-j",
        "-E stride=5",
        "-E root_owner=7:8",
        "-E lazy_itable_init=0",
        "-T news",
        "-T largefile",
        "-E resize=1G",
        "-E num_backup_sb=0",
        "-E offset=5000",
        "-L some-label",
    ]));
    let size = prop::sample::select(vec![
        104u64 << 10,
        1 << 20,
        3 << 20,
        (9 << 20) + 3072,
        70 << 20,
        (300 << 20) + 12345,
        600 << 20,
        2 << 30,
    ]);
    (fs_type, block, inode, ratio, reserved, bpg, flex, toggles, extra, size, any::<bool>()).prop_map(
        |(t, b, i, r, m, g, f, o, x, size, upstream)| {
            let mut a = vec!["-t".to_string(), t.to_string()];
            let mut push = |flag: &str, v: Option<String>| {
                if let Some(v) = v {
                    a.push(flag.to_string());
                    a.push(v);
                }
            };
            push("-b", b.map(|v| v.to_string()));
            push("-I", i.map(|v| v.to_string()));
            push("-i", r.map(|v| v.to_string()));
            push("-m", m.map(|v| v.to_string()));
            push("-g", g.map(|v| v.to_string()));
            push("-G", f.map(|v| v.to_string()));
            if !o.is_empty() {
                push("-O", Some(o.join(",")));
            }
            a.extend(x.into_iter().flat_map(|x| x.split(' ')).map(str::to_string));
            (a, size, upstream)
        },
    )
}

/// Checks one configuration; returns whether both tools formatted it.
fn check(args: &[String], size: u64, upstream: bool) -> Result<bool, TestCaseError> {
    let profile = if upstream { Profile::UPSTREAM } else { Profile::DEBIAN };
    let at = format!("{args:?} size {size} upstream {upstream}");
    if let Ok(o) = options_from_args(profile, args, None) {
        // plan never panics, whatever it says.
        let _ = ext4_mkfs::plan(size, &o);
    }
    match compare_with_mke2fs("random", size, &profile, args) {
        Outcome::Compared(problems) => prop_assert!(problems.is_empty(), "{at}:\n{}", problems.join("\n")),
        Outcome::BothRefused(_) => return Ok(false),
        Outcome::OnlyMke2fsRefused(m) => prop_assert!(false, "{at}: mke2fs refuses ({m}), we format"),
        Outcome::OnlyWeRefused(e) => prop_assert!(false, "{at}: mke2fs formats, we refuse: {e}"),
    }
    Ok(true)
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn random_command_lines_match_mke2fs() {
    use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
    if !have_e2fsprogs() {
        return;
    }
    // The default run is the same every time; the full run explores anew.
    let full = std::env::var_os("EXT4_MKFS_FULL_MATRIX").is_some();
    let cases = if full { 400 } else { 24 };
    let formatted = std::cell::Cell::new(0u32);
    let run_config = ext4_testkit::prop::config(cases, "random_command_lines");
    let mut runner = if full {
        TestRunner::new(run_config)
    } else {
        TestRunner::new_with_rng(run_config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
    };
    let result = runner.run(&config(), |(args, size, upstream)| {
        if check(&args, size, upstream)? {
            formatted.set(formatted.get() + 1);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // Many generated command lines are valid: the comparison is not vacuous
    // (about 40% are; a fifth is far below what chance gives).
    assert!(formatted.get() * 5 >= cases, "only {} of {cases} configurations formatted", formatted.get());
}

//! `cargo xtask`: what plain cargo cannot do.
//!
//! * `fixtures` — build the fixture trees and images (cached in target/fixtures).
//! * `validate` — walk every fixture through the library and compare it with
//!   its source tree, entry by entry (add `--medium` for the medium tree too).
//! * `demo` — the main job end to end on a built-in example.
//! * `ci` — what CI runs: the whole test suite (and the fuzz regressions again
//!   with overflow checks), `validate`, then `fuzz smoke --secs 10`.
//! * `bench [mkfs | fuse] [--medium] [--reps N]` — each job against its reference tool, as ratios
//!   (`fuse`: cp -a into ext4 mount, fuse2fs and the kernel).
//! * `bench layers` — criterion micro-benchmarks of the layer crates (checksums, bitmap search,
//!   extent lookup, htree hash and insert, journal commit), short runs, medians.
//! * `validate mkfs` — the whole formatter matrix against mke2fs.
//! * `aging [--config NAME]... [--rounds N] [--ops N] [--deep] [--seed S]` — kernel-aging
//!   differential runs: the kernel and the library take turns on one image
//!   while a reference copy gets every step through the kernel.
//! * `crash [--quick | --reorders N]` — crash states of every workload,
//!   recovered by the library and e2fsck (see `ext4_testkit::crash`).
//! * `fuzz <smoke | run TARGET | list>` — the cargo-fuzz targets of `fuzz/`.
//! * `fio [--size MIB] [--jobs N]` — fio --verify=crc32c through `ext4 mount`,
//!   then verify-only through a fresh mount and the kernel, e2fsck between.
//! * `pjdfstest [PATTERN...] [--keep] [--mkfs=ARGS]` — the POSIX suite pjdfstest on `ext4 mount`, against the
//!   kernel's ext4; fails on any test that passes only on the kernel.

use std::process::{Command, ExitCode};

mod aging;
mod bench;
mod crash;
mod fio;
mod fuzz;
mod pjdfstest;
mod validate;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    let result = match args.first().map(String::as_str) {
        Some("fixtures") => validate::build_fixtures(rest.contains(&"--medium")),
        Some("validate") => validate::run(&rest),
        Some("demo") => demo(),
        Some("ci") => ci(),
        Some("crash") => crash::run(&rest),
        Some("aging") => aging::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("fuzz") => fuzz::run(&rest),
        Some("fio") => fio::run(&rest),
        Some("pjdfstest") => pjdfstest::run(&rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <fixtures [--medium] | validate [--medium] | demo | ci | crash [--quick | --reorders N] | aging [--config NAME]... [--rounds N] [--ops N] [--deep] [--seed S] | bench [mkfs | fuse [--small] | layers] [--medium] [--reps N] | fuzz <smoke | run TARGET | list> | fio [--size MIB] [--jobs N] | pjdfstest [PATTERN...] [--keep] [--mkfs=ARGS]>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Result of an xtask command.
pub type Result<T = ()> = std::result::Result<T, String>;

/// Runs a command, failing with its name if it fails.
pub fn sh(cmd: &mut Command) -> Result {
    let status = cmd.status().map_err(|e| format!("{cmd:?}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{cmd:?} failed: {status}")) }
}

pub(crate) fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(ext4_testkit::workspace_root());
    c
}

/// The main job end to end: an image from a built-in tree, listed,
/// extracted, and the extraction compared with the source.
fn demo() -> Result {
    use ext4_testkit::fixtures;
    let p = fixtures::profile("ext4-default").expect("profile exists");
    println!("== building the example tree and image ({})", p.name);
    let (image, src) = fixtures::image(&p).map_err(|e| e.to_string())?;
    sh(cargo().args(["build", "--release", "-q", "-p", "ext4-cli"]))?;
    let ext4 = bench::target_dir().join("release/ext4");
    println!("== ext4 info {}", image.display());
    sh(Command::new(&ext4).arg("info").arg(&image))?;
    println!("== ext4 ls -l {} /special", image.display());
    sh(Command::new(&ext4).args(["ls", "-l"]).arg(&image).arg("/special"))?;
    let out = std::env::temp_dir().join(format!("ext4-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    println!("== ext4 get -r {} / {}", image.display(), out.display());
    sh(Command::new(&ext4).args(["get", "-r"]).arg(&image).arg("/").arg(&out))?;
    let mut extracted = ext4_testkit::snapshot::Snapshot::from_host(&out).map_err(|e| e.to_string())?;
    extracted.remove_tree(b"lost+found");
    let source = ext4_testkit::snapshot::Snapshot::from_host(&src).map_err(|e| e.to_string())?;
    let diff = source.diff(&extracted);
    let _ = std::fs::remove_dir_all(&out);
    if !diff.is_empty() {
        return Err(format!("the extraction differs from the source:\n{}", diff.join("\n")));
    }
    println!("== the extracted tree equals the source: {} entries, modes, owners, times, links, xattrs, contents", source.nodes.len());
    Ok(())
}

/// What CI runs: the test suite, the fixtures' validation, then every fuzz
/// target briefly (after its regression inputs).
fn ci() -> Result {
    sh(cargo().args(["test", "--workspace", "--release"]))?;
    // The fuzz regressions again with overflow checks, as the fuzz builds
    // have them (release tests would let an overflow wrap).
    sh(cargo().args(["test", "-p", "ext4-fs", "--test", "fuzz_regressions"]))?;
    validate::run(&[])?;
    fuzz::run(&["smoke", "--secs", "10"])
}

//! `cargo xtask`: what plain cargo cannot do.
//!
//! * `tree DEST [--profile small|medium|large] [--seed N] [--no-big-xattrs]` — a
//!   deterministic source tree (`ext4_testkit::tree`).
//! * `fixtures` — build the fixture trees and images (cached in target/fixtures).
//! * `validate` — walk every fixture through the library and compare it with
//!   its source tree, entry by entry (add `--medium` for the medium tree too).
//! * `demo` — the main job end to end on a built-in example.
//! * `ci` — what CI runs: the demo, the whole test suite (and the fuzz regressions again
//!   with overflow checks), `validate`, then `fuzz smoke --secs 10`.
//! * `bench [mkfs | fuse | fsck] [--medium] [--reps N]` — each job against its reference tool, as ratios
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
//! * `man [DIR]` — man pages of `ext4` and each subcommand, generated from
//!   its clap definitions (default DIR: target/man).
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
        Some("tree") => tree(&rest),
        Some("validate") => validate::run(&rest),
        Some("demo") => demo(),
        Some("ci") => ci(),
        Some("crash") => crash::run(&rest),
        Some("aging") => aging::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("fuzz") => fuzz::run(&rest),
        Some("fio") => fio::run(&rest),
        Some("pjdfstest") => pjdfstest::run(&rest),
        Some("man") => man(&rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <tree DEST [--profile small|medium|large] [--seed N] [--no-big-xattrs] | fixtures [--medium] | validate [--medium] | demo | ci | crash [--quick | --reorders N] | aging [--config NAME]... [--rounds N] [--ops N] [--deep] [--seed S] | bench [mkfs | fuse [--small] | fsck [--large] | layers] [--medium] [--reps N] | fuzz <smoke | run TARGET | list> | fio [--size MIB] [--jobs N] | man [DIR] | pjdfstest [PATTERN...] [--keep] [--mkfs=ARGS]>"
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

/// `cargo xtask man [DIR]`: the man pages `ext4 completions --man` generates.
fn man(args: &[&str]) -> Result {
    let dir = args.first().map_or_else(|| bench::target_dir().join("man"), std::path::PathBuf::from);
    sh(cargo().args(["build", "--release", "-q", "-p", "ext4-cli"]))?;
    sh(Command::new(bench::target_dir().join("release/ext4")).args(["completions", "--man"]).arg(&dir))?;
    println!("man pages in {} (man -l {}/ext4.1)", dir.display(), dir.display());
    Ok(())
}

/// `cargo xtask tree DEST [--profile P] [--seed N] [--no-big-xattrs]`.
fn tree(args: &[&str]) -> Result {
    use ext4_testkit::tree::{TreeOptions, TreeProfile};
    let dest = args.first().filter(|a| !a.starts_with("--")).ok_or("tree: give a destination that does not exist yet")?;
    let flag = |name: &str| args.iter().position(|a| *a == name).and_then(|i| args.get(i + 1)).copied();
    let profile = flag("--profile").unwrap_or("small");
    let profile = TreeProfile::from_name(profile).ok_or_else(|| format!("tree: unknown profile {profile} (small, medium, large)"))?;
    let seed = flag("--seed").map(|s| s.parse().map_err(|_| format!("tree: bad seed {s}"))).transpose()?.unwrap_or(1);
    let o = TreeOptions { profile, seed, big_xattrs: !args.contains(&"--no-big-xattrs") };
    ext4_testkit::tree::make(std::path::Path::new(dest), o).map_err(|e| format!("tree: {e}"))
}

/// The main job end to end on a built-in example: a generated tree is
/// formatted into an ext4 image by our formatter, edited in one `ext4
/// batch` (the same edits are made on a host copy of the tree), listed,
/// judged by e2fsck and the kernel where they are present, extracted, and
/// the extraction compared with the edited host copy.
fn demo() -> Result {
    use ext4_testkit::snapshot::Snapshot;
    use std::time::Instant;
    let start = Instant::now();
    let work_dir = ext4_testkit::scratch_dir("demo");
    let work = work_dir.path().to_path_buf();
    sh(cargo().args(["build", "--release", "-q", "-p", "ext4-cli"]))?;
    let ext4 = bench::target_dir().join("release/ext4");
    let (src, image, out) = (work.join("tree"), work.join("demo.img"), work.join("extracted"));

    step("generating the example tree (ext4_testkit::tree, small profile)");
    ext4_testkit::tree::make(&src, ext4_testkit::tree::TreeOptions::new(ext4_testkit::tree::TreeProfile::Small))
        .map_err(|e| e.to_string())?;
    let count = Snapshot::from_host(&src).map_err(|e| e.to_string())?.nodes.len();
    println!("   {count} entries in {}", src.display());

    step(&format!("ext4 mkfs -t ext4 -d {} {} 128M", src.display(), image.display()));
    sh(Command::new(&ext4).args(["mkfs", "-q", "-t", "ext4", "-d"]).arg(&src).arg(&image).arg("128M"))?;

    step("ext4 batch: mkdir, write, mv, rm, chmod, xattr, and a directory of 3,000 names");
    let script = demo_edits(&src).map_err(|e| e.to_string())?;
    let mut child = Command::new(&ext4).arg("batch").arg(&image).stdin(std::process::Stdio::piped()).spawn().map_err(|e| e.to_string())?;
    std::io::Write::write_all(child.stdin.as_mut().expect("piped"), script.as_bytes()).map_err(|e| e.to_string())?;
    drop(child.stdin.take());
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("ext4 batch failed: {status}"));
    }
    println!("   {} commands", script.lines().count());

    step(&format!("ext4 info {}", image.display()));
    sh(Command::new(&ext4).arg("info").arg(&image))?;
    step("ext4 ls -l /demo");
    sh(Command::new(&ext4).args(["ls", "-l"]).arg(&image).arg("/demo"))?;

    step("judges that are not this project");
    if ext4_testkit::oracle::have_e2fsprogs() {
        match ext4_testkit::oracle::e2fsck_problems(&image) {
            None => println!("   e2fsck -fn: clean"),
            Some(p) => return Err(format!("e2fsck -fn is not silent:\n{p}")),
        }
    } else {
        println!("   e2fsck: not installed (apt-get install e2fsprogs), not checked");
    }
    if ext4_testkit::oracle::can_loop_mount() {
        let m = ext4_testkit::oracle::LoopMount::new(&image, "ro").map_err(|e| e.to_string())?;
        let mut kernel = Snapshot::from_host(m.path()).map_err(|e| e.to_string())?;
        m.unmount().map_err(|e| e.to_string())?;
        kernel.remove_tree(b"lost+found");
        let want = Snapshot::from_host(&src).map_err(|e| e.to_string())?;
        let d = want.diff(&kernel);
        if !d.is_empty() {
            return Err(format!("the kernel sees a different tree:\n{}", d.join("\n")));
        }
        println!("   the kernel mounts it and sees the edited tree ({} entries)", kernel.nodes.len());
    } else {
        println!("   kernel mount: needs root and loop devices, not checked");
    }

    step(&format!("ext4 get -r {} / {}", image.display(), out.display()));
    sh(Command::new(&ext4).args(["get", "-r"]).arg(&image).arg("/").arg(&out))?;
    let mut extracted = Snapshot::from_host(&out).map_err(|e| e.to_string())?;
    extracted.remove_tree(b"lost+found");
    let expected = Snapshot::from_host(&src).map_err(|e| e.to_string())?;
    let diff = expected.diff(&extracted);
    let _ = std::fs::remove_dir_all(&work);
    if !diff.is_empty() {
        return Err(format!("the extraction differs from the edited tree:\n{}", diff.join("\n")));
    }
    println!(
        "== done in {:.1} s: the extracted tree equals the edited source ({} entries: names, modes, owners, times, links, xattrs, contents)",
        start.elapsed().as_secs_f64(),
        expected.nodes.len()
    );
    Ok(())
}

fn step(what: &str) {
    println!("== {what}");
}

/// The demo's edits as an `ext4 batch` script, made at the same time on the
/// host tree `src` (which then is what the image should hold). Times are
/// set explicitly so that both sides agree.
fn demo_edits(src: &std::path::Path) -> std::io::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    const T: i64 = ext4_testkit::tree::FIXED_TIME + 86_400;
    let mut s = String::new();
    let mut line = |l: String| {
        s.push_str(&l);
        s.push('\n');
    };
    std::fs::create_dir_all(src.join("demo/big"))?;
    line("mkdir -p /demo/big".into());
    std::fs::write(src.join("demo/hello.txt"), "hello from ext4-rs")?;
    line("write /demo/hello.txt 'hello from ext4-rs'".into());
    xattr::set(src.join("demo/hello.txt"), "user.demo", b"yes")?;
    line("xattr set /demo/hello.txt user.demo yes".into());
    std::fs::set_permissions(src.join("demo/hello.txt"), std::fs::Permissions::from_mode(0o600))?;
    line("chmod 600 /demo/hello.txt".into());
    std::fs::rename(src.join("special/x"), src.join("demo/x-moved"))?;
    line("mv /special/x /demo/x-moved".into());
    let gone = std::fs::read_dir(src.join("bigdir"))?.flatten().map(|e| e.file_name()).min().expect("bigdir has entries");
    std::fs::remove_file(src.join("bigdir").join(&gone))?;
    line(format!("rm /bigdir/{}", gone.to_string_lossy()));
    let mut names = Vec::new();
    for i in 0..3000 {
        let name = format!("/demo/big/name-{i:05}-with-some-length-to-fill-leaves");
        let host = src.join(&name[1..]);
        std::fs::write(&host, format!("{i}"))?;
        filetime::set_file_times(&host, filetime::FileTime::from_unix_time(T, 0), filetime::FileTime::from_unix_time(T, 0))?;
        line(format!("write {name} {i}"));
        names.push(name);
    }
    line(format!("touch -d @{T} {}", names.join(" ")));
    let dirs = ["demo/big", "demo", "bigdir", "special", ""];
    for d in dirs {
        let p = src.join(d);
        filetime::set_file_times(&p, filetime::FileTime::from_unix_time(T, 0), filetime::FileTime::from_unix_time(T, 0))?;
        line(format!("touch -d @{T} /{d}"));
    }
    for f in ["demo/hello.txt", "demo/x-moved"] {
        filetime::set_file_times(src.join(f), filetime::FileTime::from_unix_time(T, 0), filetime::FileTime::from_unix_time(T, 0))?;
        line(format!("touch -d @{T} /{f}"));
    }
    Ok(s)
}

/// What CI runs: the test suite, the fixtures' validation, then every fuzz
/// target briefly (after its regression inputs).
fn ci() -> Result {
    // The README's first command: the main job end to end, from this
    // clone alone (the tree is generated, nothing beside the clone is read).
    demo()?;
    sh(cargo().args(["test", "--workspace", "--release"]))?;
    // The fuzz regressions again with overflow checks, as the fuzz builds
    // have them (release tests would let an overflow wrap).
    sh(cargo().args(["test", "-p", "ext4-fs", "--test", "fuzz_regressions"]))?;
    validate::run(&[])?;
    fuzz::run(&["smoke", "--secs", "10"])
}

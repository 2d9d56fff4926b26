//! Probes, at build time, which oracles this machine has (e2fsprogs and
//! other tools on PATH, root, loop devices, FUSE) and hands the missing
//! ones to the macro as `EXT4_ORACLES_MISSING` (comma-separated names),
//! and every name it knows as `EXT4_ORACLE_NAMES`.
//! With `EXT4_REQUIRE_ORACLES` set (CI) nothing counts as missing, so no
//! test is ignored and `ext4_testkit::require` fails the ones that lack
//! an oracle.
//!
//! Runs again when PATH or `EXT4_REQUIRE_ORACLES` changes, or when a file
//! is added to or removed from a PATH directory (a tool installed).

use std::path::{Path, PathBuf};

/// Tools a test may name, each probed on PATH.
const TOOLS: &[&str] = &[
    "e2fsck",
    "mke2fs",
    "dumpe2fs",
    "debugfs",
    "mount",
    "losetup",
    "fio",
    "fuse2fs",
    "pjdfstest",
    "setfattr",
    "getfattr",
    "setfacl",
    "getfacl",
    "lsattr",
    "tree",
    "filefrag",
    "python3",
    "openssl",
    "gzip",
    "setpriv",
    "cp",
];

/// Capabilities a test may name: `e2fsprogs` (its four tools), `root`,
/// `loop_mount` (root, /dev/loop-control and mount), `fuse` (/dev/fuse).
const CAPABILITIES: &[&str] = &["e2fsprogs", "root", "loop_mount", "fuse"];

fn main() {
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=EXT4_REQUIRE_ORACLES");
    println!("cargo::rerun-if-changed=build.rs");
    let dirs = path_dirs();
    for d in &dirs {
        println!("cargo::rerun-if-changed={}", d.display());
    }
    let required = std::env::var_os("EXT4_REQUIRE_ORACLES").is_some_and(|v| !v.is_empty() && v != "0");
    let missing: Vec<&str> = if required { Vec::new() } else { missing(&dirs) };
    println!("cargo::rustc-env=EXT4_ORACLES_MISSING={}", missing.join(","));
    let names: Vec<&str> = CAPABILITIES.iter().chain(TOOLS).copied().collect();
    println!("cargo::rustc-env=EXT4_ORACLE_NAMES={}", names.join(","));
}

/// The existing directories of PATH.
fn path_dirs() -> Vec<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).filter(|d| d.is_dir()).collect()
}

/// The names (tools and capabilities) this machine lacks.
fn missing(dirs: &[PathBuf]) -> Vec<&'static str> {
    let has = |tool: &str| dirs.iter().any(|d| is_executable(&d.join(tool)));
    let mut out: Vec<&'static str> = TOOLS.iter().copied().filter(|t| !has(t)).collect();
    if !["e2fsck", "mke2fs", "dumpe2fs", "debugfs"].iter().all(|t| has(t)) {
        out.push("e2fsprogs");
    }
    let root = is_root();
    if !root {
        out.push("root");
    }
    if !(root && Path::new("/dev/loop-control").exists() && has("mount")) {
        out.push("loop_mount");
    }
    if !Path::new("/dev/fuse").exists() {
        out.push("fuse");
    }
    out
}

/// Whether `p` is a file with an execute bit.
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether the build runs with effective user id 0 (`Uid:` of /proc/self/status).
fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|ids| ids.split_whitespace().nth(1)).is_some_and(|euid| euid == "0")
}

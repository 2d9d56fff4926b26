//! `cargo xtask fio [--size MIB] [--jobs N]`: [`ext4_testkit::fio::check`]
//! at full size on tmpfs with a release build of `ext4`.

use std::path::{Path, PathBuf};
use std::process::Command;

use ext4_testkit::fio::{Options, check, missing};

/// `cargo xtask fio [--size MIB] [--jobs N]`: builds `ext4` and runs [`check`] on tmpfs.
pub fn run(args: &[&str]) -> Result<(), String> {
    if let Some(why) = missing() {
        return Err(why.to_string());
    }
    let value = |name: &str, default: u64| -> Result<u64, String> {
        match args.iter().position(|a| *a == name) {
            None => Ok(default),
            Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} needs a number")),
        }
    };
    let (size_mib, jobs) = (value("--size", 64)?, value("--jobs", 4)?);
    let root = ext4_testkit::workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo).args(["build", "--release", "-q", "-p", "ext4-cli"]).current_dir(&root).status();
    if !status.is_ok_and(|s| s.success()) {
        return Err("building ext4-cli failed".into());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let shm = ext4_testkit::scratch_dir_in(Path::new("/dev/shm"), "fio");
    let work = shm.path().join("work");
    let jobs = u32::try_from(jobs).map_err(|_| "--jobs is too large".to_string())?;
    check(&target.join("release/ext4"), &Options { size_mib, jobs, work })
}

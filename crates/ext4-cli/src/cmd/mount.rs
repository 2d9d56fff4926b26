//! `ext4 mount [-o ro] [-f] IMAGE DIR`: serve an image through FUSE.
//!
//! By default the command returns once the mount is up, leaving a
//! background process serving it (it re-runs itself with `-f`, detached);
//! `-f` serves in the foreground. `umount DIR` (or `fusermount3 -u DIR`)
//! ends it, and the filesystem is committed and closed cleanly.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ext4_fs::OpenOptions;
use ext4_fuse::MountOptions;

use crate::util::{CliResult, Context, fail};

/// Arguments of `ext4 mount`.
#[derive(clap::Args)]
pub struct Args {
    /// Options: `ro`, `rw`, `allow_other` (comma-separated).
    #[arg(short = 'o')]
    options: Option<String>,
    /// Stay in the foreground.
    #[arg(short = 'f', long)]
    foreground: bool,
    /// The image or device.
    image: PathBuf,
    /// The mount point.
    dir: PathBuf,
    /// The external journal device (or image) of a filesystem made with
    /// `mke2fs -J device=`.
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
}

/// Whether `dir` is a mount point now (per /proc/self/mountinfo).
fn is_mounted(dir: &Path) -> bool {
    let Ok(canon) = dir.canonicalize() else {
        return false;
    };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = canon.to_string_lossy().into_owned();
    info.lines().any(|l| l.split_whitespace().nth(4) == Some(want.as_str()))
}

/// Runs the command.
pub fn run(a: Args) -> CliResult {
    let mut opts = MountOptions { fs_name: a.image.display().to_string(), ..MountOptions::default() };
    for o in a.options.as_deref().unwrap_or("").split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => opts.read_only = true,
            "rw" => opts.read_only = false,
            "allow_other" => opts.allow_other = true,
            other => return Err(fail(format!("unknown mount option {other:?}"))),
        }
    }
    if !a.dir.is_dir() {
        return Err(fail(format!("{}: not a directory", a.dir.display())));
    }
    if !a.foreground {
        return background(&a);
    }
    let open = OpenOptions { write: !opts.read_only, ..OpenOptions::default() };
    let fs = crate::util::open(&a.image, a.journal.as_deref(), open, "opening")?;
    ext4_fuse::mount(fs, &a.dir, &opts).context(|| format!("mounting on {}", a.dir.display()))
}

/// Starts a detached `ext4 mount -f` and waits until the mount is up.
fn background(a: &Args) -> CliResult {
    let exe = std::env::current_exe().context(|| "finding the ext4 executable".into())?;
    let mut cmd = Command::new(exe);
    cmd.arg("mount").arg("-f");
    if let Some(o) = &a.options {
        cmd.arg("-o").arg(o);
    }
    if let Some(j) = &a.journal {
        cmd.arg("--journal").arg(j);
    }
    let place = crate::device::placement();
    if let Some(n) = place.partition {
        cmd.arg("--partition").arg(n.to_string());
    }
    if let Some(o) = place.offset {
        cmd.arg("--offset").arg(o.to_string());
    }
    cmd.arg(&a.image).arg(&a.dir).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().context(|| "starting the mount server".into())?;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if is_mounted(&a.dir) {
            return Ok(());
        }
        if let Some(status) = child.try_wait().context(|| "waiting for the mount server".into())? {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            return Err(fail(format!("the mount server exited ({status}): {}", err.trim())));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(fail(format!("{} did not appear as a mount point within 30 s", a.dir.display())))
}

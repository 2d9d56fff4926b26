//! One random command script, three ways (issue 18): through `ext4 batch`
//! (the library through the CLI), through `ext4 mount` (FUSE) with the
//! same system calls as the kernel side, and through a kernel loop mount
//! (the reference). Each line must end alike on all three (success or the
//! same errno); then `e2fsck -fn` is silent on both library-written images,
//! the kernel's views of the three images agree, and the library's own
//! view of the batch image equals the kernel's (times compared where the
//! script set them last).
//!
//! The file contents a script writes are known exactly (the model follows
//! every whole-file write and truncate), which judges the judge: on
//! `inline_data` filesystems Linux 6.18 now and then loses part of a file
//! written in 1 MiB `pwrite`s under this workload (a different file each
//! run of one seed, while the library's images hold what was written); such
//! a file is reported as the kernel's, not failed.

use std::path::{Path, PathBuf};

use super::config::{Config, Scale};
use super::model::Model;
use super::ops::Op;
use super::{Report, check_views, fsck, host, mke2fs, mount, script, show_errno, timed_paths, unmount};
use crate::oracle::FuseMount;
use crate::rng::Rng;

/// What to run.
#[derive(Debug, Clone)]
pub struct CliOptions {
    /// Seed of the script and of the image's UUID and hash seed.
    pub seed: u64,
    /// Random operations (besides the setup and the final times).
    pub ops: usize,
    /// The largest file a line writes.
    pub max_len: u64,
    /// Percent of new or rewritten files that are at least half `max_len`.
    pub big_percent: u64,
    /// Live file data stays below this many bytes (the rest of the image
    /// is the kernel's and the library's to spend on metadata).
    pub budget: u64,
    /// The script goes on past `ops` until it has written this many bytes
    /// of file data (at most ten times `ops` operations).
    pub min_written: u64,
    /// Where the images and the data files go.
    pub work_dir: PathBuf,
    /// The `ext4` binary.
    pub ext4: PathBuf,
}

/// Runs one configuration; the report counts the lines the library ran.
pub fn run(cfg: &Config, o: &CliOptions) -> Result<Report, String> {
    rustix::process::umask(rustix::fs::Mode::empty());
    let dir = o.work_dir.join(cfg.name);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let [batch, fuse, kernel] = ["batch", "fuse", "kernel"].map(|n| dir.join(format!("{n}.img")));
    mke2fs(cfg, Scale::Small, o.seed, &batch)?;
    for copy in [&fuse, &kernel] {
        super::copy_image(&batch, copy)?;
    }
    let mut rng = Rng::new(o.seed ^ super::name_seed(cfg.name));
    let mut model = Model::new(cfg.traits(Scale::Small));
    let mut report = Report::default();

    let km = mount(&kernel, "")?;
    let fm = FuseMount::with_journal(&o.ext4, &fuse, super::journal_of(&fuse).as_deref())
        .map_err(|e| format!("ext4 mount {}: {e}", fuse.display()))?;
    let mut lines = Vec::new();
    let mut outcomes = Vec::new();
    let mut done = Vec::new();
    let mut apply = |op: Op, model: &mut Model| -> Result<(), String> {
        let k = host::apply(km.path(), &op);
        let f = host::apply(fm.path(), &op);
        if k != f {
            return Err(format!("line {}: `{op}`: ext4 mount {}, kernel {}", lines.len() + 1, show_errno(&f), show_errno(&k)));
        }
        let line =
            script::line(&op, &data, lines.len()).map_err(|e| e.to_string())?.ok_or_else(|| format!("`{op}` has no command line"))?;
        lines.push(line);
        if k.is_ok() {
            model.apply(&op);
        }
        outcomes.push(k);
        done.push(op);
        Ok(())
    };
    for op in model.cli_setup() {
        apply(op, &mut model)?;
    }
    let mut n = 0;
    while n < o.ops || (report.bytes_written < o.min_written && n < 10 * o.ops) {
        n += 1;
        let room = o.budget.saturating_sub(model.live_bytes());
        let op = model.random_cli_op(&mut rng, o.max_len, room, o.big_percent);
        if let Op::Replace { len, .. } = op {
            report.bytes_written += len;
        }
        apply(op, &mut model)?;
    }
    for op in model.touch_times(&mut rng, 40) {
        apply(op, &mut model)?;
    }
    unmount(km)?;
    fm.unmount().map_err(|e| format!("ext4 mount: {e}"))?;

    let failed = script::run_batch(&o.ext4, &batch, &lines)?;
    for (i, (k, op)) in outcomes.iter().zip(&done).enumerate() {
        let b = failed.get(&(i + 1)).map(String::as_str);
        let want = k.as_ref().err().map(|e| ext4_fs::errno_name(*e));
        if b != want {
            return Err(format!("line {}: `{}` (`{op}`): ext4 batch {}, kernel {}", i + 1, lines[i], b.unwrap_or("ok"), show_errno(k)));
        }
        if k.is_err() {
            report.refused_alike += 1;
        }
    }
    report.library_ops = lines.len();
    for image in [&batch, &fuse] {
        if let Some(p) = fsck(image) {
            return Err(format!("e2fsck -fn {}:\n{p}", image.display()));
        }
    }
    if let Some(p) = fsck(&kernel) {
        report.reference_notes.push(format!("e2fsck on the kernel-written reference:\n{p}"));
    }
    let timed = timed_paths(&done);
    check_views(&batch, &kernel, &timed, Some(&model), &mut report, "ext4 batch vs the kernel")?;
    check_views(&fuse, &kernel, &timed, Some(&model), &mut report, "ext4 mount vs the kernel")?;
    // Only a passing run cleans up: a failing one keeps its images, its
    // script and the data files the script names.
    let _ = std::fs::remove_dir_all(&data);
    for image in [&batch, &fuse, &kernel] {
        super::remove_image(image);
    }
    let _ = std::fs::remove_file(batch.with_extension("batch"));
    let _ = std::fs::remove_dir(&dir);
    Ok(report)
}

/// The `ext4` binary of this workspace's release build (`$EXT4_BIN` overrides).
pub fn ext4_binary() -> PathBuf {
    std::env::var_os("EXT4_BIN").map(PathBuf::from).unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| crate::workspace_root().join("target"));
        target.join("release").join("ext4")
    })
}

/// Whether `path` names an executable file.
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

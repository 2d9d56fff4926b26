//! `ext4 fsck IMAGE`: check a filesystem as `e2fsck -f` does, read-only by
//! default (`-n`); the exit status is e2fsck's (0 clean, 1 repaired, 4
//! errors left, 8 operational error, 32 cancelled).

use std::io::Write;
use std::path::PathBuf;

use ext4_fsck::{Mode, Options, Problem, Report, Severity};

/// Arguments of `ext4 fsck`.
#[derive(clap::Args)]
pub struct Args {
    /// The image or device (`IMAGE@N`: its partition N).
    image: PathBuf,
    /// Change nothing (the default).
    #[arg(short = 'n', conflicts_with_all = ["yes", "preen"])]
    no: bool,
    /// Repair every problem that can be repaired.
    #[arg(short = 'y', conflicts_with = "preen")]
    yes: bool,
    /// Repair only what is safe without a human; stop at anything else.
    #[arg(short = 'p')]
    preen: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// List informational messages too (by default only problems).
    #[arg(short = 'v', long)]
    verbose: bool,
}

/// Runs the command; returns the exit status, e2fsck's.
pub fn run(a: Args) -> i32 {
    let mode = if a.yes {
        Mode::Repair
    } else if a.preen {
        Mode::Preen
    } else {
        Mode::Check
    };
    let _ = a.no;
    // IMAGE@N, --partition and --offset as every command takes them; a
    // block device through the sector-aligned raw device.
    let dev = match crate::device::Spec::image(&a.image).and_then(|spec| crate::device::open(&spec, mode == Mode::Check)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("ext4: {e}");
            return 8;
        }
    };
    let report = match ext4_fsck::check(&*dev, Options { mode, ..Options::default() }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ext4: checking {}: {e}", a.image.display());
            return 8;
        }
    };
    let mut out = std::io::stdout().lock();
    let written = if a.json { write_json(&mut out, &report) } else { write_text(&mut out, &report, &a.image, a.verbose) };
    if written.and_then(|()| out.flush()).is_err() {
        return 8;
    }
    report.exit_status()
}

/// A severity's name in reports.
fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
        Severity::Fatal => "fatal",
    }
}

/// One problem as a line of text.
fn line(p: &Problem) -> String {
    let state = if p.fixed {
        "FIXED"
    } else if p.counts {
        "ERROR"
    } else {
        match p.code.severity() {
            Severity::Info => "info",
            _ => "note",
        }
    };
    format!("{}: {state} {}: {}", p.pass.name(), p.code.name(), p.detail)
}

fn write_text(out: &mut impl Write, r: &Report, image: &std::path::Path, verbose: bool) -> std::io::Result<()> {
    if let Some(b) = r.used_backup_superblock {
        writeln!(out, "using the backup superblock at block {b}")?;
    }
    for p in &r.problems {
        if verbose || p.code.severity() != Severity::Info {
            writeln!(out, "{}", line(p))?;
        }
    }
    if let Some(why) = &r.abort_reason {
        writeln!(out, "check stopped: {why}")?;
    }
    let s = &r.stats;
    writeln!(
        out,
        "{}: {}: {}/{} files, {}/{} blocks, {} problems ({} left)",
        image.display(),
        r.outcome.name(),
        s.inodes_used,
        s.inodes_count,
        s.blocks_used,
        s.blocks_count,
        r.problems.len(),
        r.errors_left().count()
    )
}

fn write_json(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    let problems: Vec<serde_json::Value> = r
        .problems
        .iter()
        .map(|p| {
            serde_json::json!({
                "code": p.code.name(),
                "pass": p.pass.name(),
                "severity": severity_name(p.code.severity()),
                "counts": p.counts,
                "fixed": p.fixed,
                "ino": p.ino,
                "block": p.block,
                "group": p.group,
                "detail": p.detail,
            })
        })
        .collect();
    let s = &r.stats;
    let v = serde_json::json!({
        "outcome": r.outcome.name(),
        "exit_status": r.exit_status(),
        "abort_reason": r.abort_reason,
        "backup_superblock": r.used_backup_superblock,
        "problems": problems,
        "stats": {
            "inodes_used": s.inodes_used,
            "inodes_count": s.inodes_count,
            "blocks_count": s.blocks_count,
            "directories": s.directories,
            "regular_files": s.regular_files,
            "symlinks": s.symlinks,
        },
    });
    writeln!(out, "{}", serde_json::to_string_pretty(&v).unwrap_or_default())
}

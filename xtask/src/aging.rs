//! `cargo xtask aging`: kernel-aging differential runs over the
//! configuration matrix (see `ext4_testkit::aging`).
//!
//! `cargo xtask aging --cli [--config NAME]... [--ops N] [--long] [--seed S]`: one
//! random command script per configuration through `ext4 batch`, `ext4
//! mount` and the kernel (`ext4_testkit::aging::cli`); `--long` writes files
//! of 4-8 MiB often enough to write well over ten times the 64 MiB image.
//!
//! `cargo xtask aging [--config NAME]... [--rounds N] [--ops N] [--deep] [--seed S]`:
//! every configuration (or the named ones), `--rounds` library rounds of
//! `--ops` operations each, each followed by a kernel round of half as many;
//! `--deep` grows the big directory to two index levels on every block size
//! (three with `large_dir`). The seed is printed; `--seed` or
//! `EXT4_AGING_SEED` replays a run.

use std::time::Instant;

use ext4_testkit::aging::cli::{self, CliOptions};
use ext4_testkit::aging::{self, Report, RunOptions, config::Scale};

use crate::Result;

fn value<T: std::str::FromStr>(args: &[&str], flag: &str) -> Result<Option<T>> {
    match args.iter().position(|a| *a == flag) {
        None => Ok(None),
        Some(i) => {
            let v = args.get(i + 1).ok_or_else(|| format!("{flag} needs a value"))?;
            v.parse().map(Some).map_err(|_| format!("{flag}: bad value {v}"))
        }
    }
}

/// Runs the matrix (or part of it) and prints one line per configuration.
pub fn run(args: &[&str]) -> Result {
    let names: Vec<&str> = args.windows(2).filter(|w| w[0] == "--config").map(|w| w[1]).collect();
    let rounds = value(args, "--rounds")?.unwrap_or(3);
    let round_ops = value(args, "--ops")?.unwrap_or(1700);
    let scale = if args.contains(&"--deep") { Scale::Deep } else { Scale::Quick };
    let seed = match value::<String>(args, "--seed")? {
        Some(s) => ext4_testkit::rng::parse_seed(&s).ok_or_else(|| format!("--seed: bad value {s}"))?,
        None => ext4_testkit::rng::seed_from_env("EXT4_AGING_SEED"),
    };
    // Kept on failure (the images and their operation logs), removed on success.
    let work_dir = ext4_testkit::scratch_dir("aging").keep();
    let configs: Vec<_> = aging::config::matrix().into_iter().filter(|c| names.is_empty() || names.contains(&c.name)).collect();
    if configs.is_empty() {
        return Err(format!("no configuration named {names:?}"));
    }
    let cli_mode = args.contains(&"--cli");
    let long = args.contains(&"--long");
    let ext4 = cli::ext4_binary();
    if cli_mode {
        crate::sh(crate::cargo().args(["build", "--release", "-q", "-p", "ext4-cli"]))?;
    }
    let mut failed = Vec::new();
    for cfg in &configs {
        let t = Instant::now();
        let result = if cli_mode {
            let ops = value(args, "--ops")?.unwrap_or(2000);
            let (max_len, big_percent) = if long { (8 << 20, 30) } else { (1 << 20, 3) };
            let min_written = if long { 10 * (64 << 20) } else { 0 };
            let o = CliOptions {
                seed,
                ops,
                max_len,
                big_percent,
                budget: 40 << 20,
                min_written,
                work_dir: work_dir.clone(),
                ext4: ext4.clone(),
            };
            cli::run(cfg, &o)
        } else {
            aging::run(cfg, &RunOptions { seed, rounds, round_ops, scale, work_dir: work_dir.clone() })
        };
        match result {
            Ok(r) => {
                print_report(cfg.name, &r, t.elapsed().as_secs_f64());
            }
            Err(e) => {
                println!("{:<18} FAILED (seed {seed:#x}): {e}", cfg.name);
                failed.push(cfg.name);
            }
        }
    }
    if failed.is_empty() {
        let _ = std::fs::remove_dir_all(&work_dir);
        println!("aging: {} configurations passed (seed {seed:#x})", configs.len());
        Ok(())
    } else {
        Err(format!(
            "aging: {} of {} configurations failed (seed {seed:#x}): {failed:?}; their images are in {}",
            failed.len(),
            configs.len(),
            work_dir.display()
        ))
    }
}

fn print_report(name: &str, r: &Report, secs: f64) {
    let written = if r.bytes_written > 0 { format!(", {} MiB of file data", r.bytes_written >> 20) } else { String::new() };
    println!(
        "{name:<18} ok: {} library ops, {} kernel ops ({} refused alike), {} entries{written}, {secs:.0} s",
        r.library_ops, r.kernel_ops, r.refused_alike, r.entries
    );
    if !r.structures.is_empty() {
        println!("  {}", r.structures);
    }
    for n in &r.reference_notes {
        println!("  note: {n}");
    }
}

//! `cargo xtask fuzz`: the cargo-fuzz targets of `fuzz/` (their own
//! workspace), run with the nightly toolchain.
//!
//! * `fuzz smoke [--secs N]` — every target for N seconds (default 20),
//!   after replaying its committed regression inputs (`fuzz/regressions/TARGET/`).
//! * `fuzz run TARGET [--secs N] [--runs N] [--jobs N]` — a long campaign
//!   (default one hour); the corpus grows in `fuzz/corpus/TARGET`.
//! * `fuzz list` — the targets.
//!
//! Builds are optimized with debug assertions (integer overflow panics) and
//! without a sanitizer: the fuzzed crates forbid `unsafe`, so a crash is a
//! panic, a time-out or an allocation over libFuzzer's limit.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use crate::Result;

/// libFuzzer limits shared by every run: a crash beats an out-of-memory kill.
const LIMITS: &[&str] = &["-rss_limit_mb=2048", "-malloc_limit_mb=1024", "-timeout=30", "-print_final_stats=1"];

pub fn run(args: &[&str]) -> Result {
    match args.first().copied() {
        Some("smoke") => smoke(number(args, "--secs")?.unwrap_or(20)),
        Some("run") => {
            let target = args.get(1).ok_or("fuzz run needs a TARGET (see `cargo xtask fuzz list`)")?;
            campaign(target, number(args, "--secs")?.unwrap_or(3600), number(args, "--runs")?, number(args, "--jobs")?.unwrap_or(1))
        }
        Some("list") => {
            for t in targets()? {
                println!("{t}");
            }
            Ok(())
        }
        _ => Err("usage: cargo xtask fuzz <smoke [--secs N] | run TARGET [--secs N] [--runs N] [--jobs N] | list>".into()),
    }
}

fn number(args: &[&str], flag: &str) -> Result<Option<u64>> {
    match args.iter().position(|a| *a == flag) {
        None => Ok(None),
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).map(Some).ok_or_else(|| format!("{flag} needs a number")),
    }
}

fn fuzz_dir() -> PathBuf {
    ext4_testkit::workspace_root().join("fuzz")
}

/// `cargo fuzz ...` in `fuzz/`, on nightly (`+nightly` when rustup has it,
/// else `RUSTC_BOOTSTRAP=1` on the default toolchain).
fn cargo_fuzz() -> Result<Command> {
    let has = |args: &[&str]| Command::new("cargo").args(args).output().is_ok_and(|o| o.status.success());
    if !has(&["fuzz", "--version"]) {
        return Err("cargo-fuzz is not installed: `cargo install cargo-fuzz`".into());
    }
    let mut c = Command::new("cargo");
    if has(&["+nightly", "--version"]) {
        c.arg("+nightly");
    } else {
        c.env("RUSTC_BOOTSTRAP", "1");
    }
    c.arg("fuzz").current_dir(fuzz_dir());
    Ok(c)
}

fn targets() -> Result<Vec<String>> {
    let out = cargo_fuzz()?.arg("list").output().map_err(|e| format!("cargo fuzz list: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo fuzz list failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect())
}

/// Runs one libFuzzer invocation; returns the executions it reported.
fn fuzz(target: &str, corpora: &[PathBuf], extra: &[String]) -> Result<u64> {
    let mut c = cargo_fuzz()?;
    c.args(["run", "-O", "-a", "-s", "none", target]).args(corpora).arg("--").args(LIMITS).args(extra);
    let out = c.output().map_err(|e| format!("{c:?}: {e}"))?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let tail: Vec<&str> = err.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
        return Err(format!("fuzz target {target} failed ({}):\n{}", out.status, tail.join("\n")));
    }
    Ok(err.lines().filter_map(|l| l.strip_prefix("stat::number_of_executed_units:")).filter_map(|v| v.trim().parse::<u64>().ok()).sum())
}

/// Every target briefly, after its regression inputs.
fn smoke(secs: u64) -> Result {
    let start = Instant::now();
    let mut lines = Vec::new();
    for t in targets()? {
        let regressions = fuzz_dir().join("regressions").join(&t);
        let mut replayed = 0;
        if regressions.is_dir() {
            replayed = std::fs::read_dir(&regressions).map(|d| d.count()).unwrap_or(0);
            fuzz(&t, std::slice::from_ref(&regressions), &["-runs=0".into()])?;
        }
        let corpus = fuzz_dir().join("corpus").join(&t);
        std::fs::create_dir_all(&corpus).map_err(|e| e.to_string())?;
        let execs = fuzz(&t, &[corpus], &[format!("-max_total_time={secs}")])?;
        let line = format!("{t:<12} {replayed:>3} regression inputs replayed, {execs:>9} executions in {secs} s: no crash");
        println!("{line}");
        lines.push(line);
    }
    println!("fuzz smoke: {} targets passed in {:.0} s", lines.len(), start.elapsed().as_secs_f64());
    Ok(())
}

/// A long campaign on one target.
fn campaign(target: &str, secs: u64, runs: Option<u64>, jobs: u64) -> Result {
    let corpus = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&corpus).map_err(|e| e.to_string())?;
    let mut extra = vec![format!("-max_total_time={secs}")];
    if let Some(r) = runs {
        extra.push(format!("-runs={r}"));
    }
    if jobs > 1 {
        extra.push(format!("-fork={jobs}"));
    }
    let start = Instant::now();
    let execs = fuzz(target, &[corpus], &extra)?;
    println!("fuzz {target}: {execs} executions in {:.0} s, no crash", start.elapsed().as_secs_f64());
    Ok(())
}

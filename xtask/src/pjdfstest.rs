//! `cargo xtask pjdfstest [PATTERN...] [--keep] [--mkfs=ARGS]`: the POSIX conformance
//! suite pjdfstest on `ext4 mount`, with the kernel's ext4 as the reference.
//!
//! Two fresh images from `ext4 mkfs -t ext4`: one loop-mounted by the
//! kernel, one served by `ext4 mount -f -o allow_other`; pjdfstest runs on
//! both at once. Fails if a test fails on `ext4 mount` but passes on the
//! kernel, or if `e2fsck -fn` is not silent on the FUSE image afterwards.
//! Patterns are passed to pjdfstest (names to run); `--keep` keeps the work
//! directory (images, configuration, both outputs); `--mkfs="-O inline_data -b 1024"`
//! replaces `-t ext4` as the formatter's options.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ext4_testkit::oracle::{LoopMount, e2fsck_problems};

use crate::{Result, sh};

const INSTALL: &str = "apt-get install libacl1-dev acl && cargo install pjdfstest --version 0.2.2";

/// Two users the suite switches to (they must exist), and the opt-in features ext4 has.
const CONFIG: &str = r#"[dummy_auth]
entries = [["nobody", "nogroup"], ["daemon", "daemon"]]

[features]
posix_fallocate = {}
utime_now = {}
utimensat = {}
"#;

/// One test's outcome: `ok`, `FAILED` or `skipped`, and the lines pjdfstest printed under it.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    status: String,
    detail: Vec<String>,
}

/// Outcomes by test name, from pjdfstest's output.
fn parse(output: &str) -> BTreeMap<String, Outcome> {
    let mut tests: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in output.lines() {
        if let Some(detail) = line.strip_prefix('\t') {
            if let Some(o) = last.as_ref().and_then(|n| tests.get_mut(n)) {
                o.detail.push(detail.trim().to_string());
            }
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        last = match words.as_slice() {
            [name, status @ ("ok" | "FAILED" | "skipped")] => {
                tests.insert(name.to_string(), Outcome { status: status.to_string(), detail: Vec::new() });
                Some(name.to_string())
            }
            _ => None,
        };
    }
    tests
}

fn summary(tests: &BTreeMap<String, Outcome>) -> String {
    let count = |s: &str| tests.values().filter(|o| o.status == s).count();
    format!("{} passed, {} failed, {} skipped", count("ok"), count("FAILED"), count("skipped"))
}

/// Fails unless every directory above `dir` can be searched by other users
/// (the dummy users get EACCES otherwise, which is no filesystem's fault).
fn check_searchable(dir: &Path) -> Result {
    for a in dir.ancestors().skip(1) {
        let mode = std::fs::metadata(a).map_err(|e| format!("{}: {e}", a.display()))?.permissions().mode();
        if mode & 0o001 == 0 {
            return Err(format!("{} is not searchable by other users: chmod o+x it, or set TMPDIR elsewhere", a.display()));
        }
    }
    Ok(())
}

fn is_mounted(dir: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines().any(|l| l.split_whitespace().nth(4) == dir.to_str())
}

/// `ext4 mount -f` as a child; unmounts and waits for it on drop.
struct FuseMount {
    dir: PathBuf,
    server: Option<Child>,
}

impl FuseMount {
    fn new(ext4: &Path, image: &Path, dir: &Path) -> Result<Self> {
        let server = Command::new(ext4)
            .args(["mount", "-f", "-o", "allow_other"])
            .arg(image)
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting ext4 mount: {e}"))?;
        let mut m = Self { dir: dir.to_path_buf(), server: Some(server) };
        let start = Instant::now();
        while !is_mounted(dir) {
            if let Some(Ok(Some(status))) = m.server.as_mut().map(Child::try_wait) {
                m.server = None;
                return Err(format!("ext4 mount exited before the mount was up: {status}"));
            }
            if start.elapsed() > Duration::from_secs(30) {
                return Err("ext4 mount: the mount did not come up in 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(m)
    }

    /// Unmounts and waits for the server to commit and close the image.
    fn finish(mut self) -> Result {
        self.stop()
    }

    fn stop(&mut self) -> Result {
        let Some(mut server) = self.server.take() else {
            return Ok(());
        };
        for _ in 0..100 {
            if !is_mounted(&self.dir) || Command::new("umount").arg(&self.dir).output().is_ok_and(|o| o.status.success()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if is_mounted(&self.dir) {
            let _ = server.kill();
            let _ = server.wait();
            return Err(format!("{}: still mounted after 10 s of umount attempts", self.dir.display()));
        }
        let status = server.wait().map_err(|e| format!("waiting for ext4 mount: {e}"))?;
        if status.success() { Ok(()) } else { Err(format!("ext4 mount exited with {status} after the unmount")) }
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Starts pjdfstest on `dir`, its output going to `out`.
fn start_suite(config: &Path, dir: &Path, patterns: &[&str], out: &Path) -> Result<Child> {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(|e| format!("chmod {}: {e}", dir.display()))?;
    let file = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    Command::new("pjdfstest")
        .arg("-c")
        .arg(config)
        .arg("-p")
        .arg(dir)
        .args(patterns)
        .env("NO_COLOR", "1")
        .env("CLICOLOR", "0")
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("starting pjdfstest: {e}"))
}

fn finish_suite(mut child: Child, out: &Path) -> Result<BTreeMap<String, Outcome>> {
    child.wait().map_err(|e| format!("waiting for pjdfstest: {e}"))?;
    let text = std::fs::read_to_string(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let tests = parse(&text);
    if tests.is_empty() {
        return Err(format!("pjdfstest printed no results ({}):\n{text}", out.display()));
    }
    Ok(tests)
}

pub fn run(args: &[&str]) -> Result {
    if Command::new("pjdfstest").arg("--version").output().is_err() {
        return Err(format!("pjdfstest is not installed (or not on PATH); install it with:\n  {INSTALL}"));
    }
    if !ext4_testkit::oracle::can_loop_mount() || !Path::new("/dev/fuse").exists() {
        return Err("pjdfstest needs root (dummy users, loop mounts, allow_other) and /dev/fuse".into());
    }
    let keep = args.contains(&"--keep");
    let patterns: Vec<&str> = args.iter().copied().filter(|a| !a.starts_with("--")).collect();
    let mkfs_args: Vec<&str> =
        args.iter().find_map(|a| a.strip_prefix("--mkfs=")).map_or(vec!["-t", "ext4"], |m| m.split_whitespace().collect());
    sh(crate::cargo().args(["build", "--release", "-q", "-p", "ext4-cli"]))?;
    let ext4 = crate::bench::target_dir().join("release/ext4");

    // Kept with --keep, else removed at the end.
    let work = ext4_testkit::scratch_dir("pjdfstest").keep();
    std::fs::create_dir_all(work.join("fuse")).map_err(|e| format!("{}: {e}", work.display()))?;
    check_searchable(&work.join("fuse"))?;
    let config = work.join("pjdfstest.toml");
    std::fs::write(&config, CONFIG).map_err(|e| e.to_string())?;
    let (kernel_img, fuse_img) = (work.join("kernel.img"), work.join("fuse.img"));
    for img in [&kernel_img, &fuse_img] {
        sh(Command::new(&ext4).args(["mkfs", "-q"]).args(&mkfs_args).arg(img).arg("256M"))?;
    }

    let started = Instant::now();
    let kernel_mount = LoopMount::new(&kernel_img, "").map_err(|e| format!("loop-mounting {}: {e}", kernel_img.display()))?;
    check_searchable(kernel_mount.path())?;
    let fuse_mount = FuseMount::new(&ext4, &fuse_img, &work.join("fuse"))?;
    println!(
        "== pjdfstest on the kernel's ext4 ({}) and on ext4 mount ({}), at once",
        kernel_mount.path().display(),
        work.join("fuse").display()
    );
    let (kernel_out, fuse_out) = (work.join("kernel.out"), work.join("fuse.out"));
    let kernel_run = start_suite(&config, kernel_mount.path(), &patterns, &kernel_out)?;
    let fuse_run = start_suite(&config, &work.join("fuse"), &patterns, &fuse_out);
    let kernel = finish_suite(kernel_run, &kernel_out)?;
    let fuse = finish_suite(fuse_run?, &fuse_out)?;
    kernel_mount.unmount().map_err(|e| format!("unmounting the kernel's mount: {e}"))?;
    fuse_mount.finish()?;
    println!("kernel ext4:  {}", summary(&kernel));
    println!("ext4 mount:   {}   ({:.0?} for both)", summary(&fuse), started.elapsed());

    let mut regressions = Vec::new();
    for (name, k) in &kernel {
        let f = fuse.get(name).map_or("missing", |o| o.status.as_str());
        if k.status == f {
            continue;
        }
        let why = fuse.get(name).map(|o| o.detail.join(" | ")).unwrap_or_default();
        println!("  {name}: {} on the kernel, {f} on ext4 mount  {why}", k.status);
        if k.status == "ok" && f != "skipped" {
            regressions.push(name.clone());
        }
    }
    let fsck = e2fsck_problems(&fuse_img);
    match &fsck {
        None => println!("e2fsck -fn on the ext4 mount image: clean"),
        Some(p) => println!("e2fsck -fn on the ext4 mount image:\n{p}"),
    }
    if keep {
        println!("kept {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    if !regressions.is_empty() {
        return Err(format!("{} tests fail on ext4 mount but pass on the kernel: {}", regressions.len(), regressions.join(", ")));
    }
    if fsck.is_some() {
        return Err("e2fsck -fn is not silent on the image after the run".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_results_and_their_details() {
        let out = "chmod::a   ok\nlink::b   FAILED\n\tassertion failed: EMLINK\nlink::c   skipped\n\treason\n\nSummary: 1 failed, 1 skipped, 1 passed, 0 expected failures, 3 total\n";
        let t = parse(out);
        assert_eq!(t.len(), 3);
        assert_eq!(t["chmod::a"], Outcome { status: "ok".into(), detail: vec![] });
        assert_eq!(t["link::b"].detail, vec!["assertion failed: EMLINK".to_string()]);
        assert_eq!(t["link::c"].status, "skipped");
        assert_eq!(summary(&t), "1 passed, 1 failed, 1 skipped");
    }
}

//! Helpers shared by the CLI's integration tests: running the `ext4` binary
//! and the oracles around it.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use ext4_testkit::oracle::LoopMount;
use std::process::{Command, Output, Stdio};

/// The binary under test.
pub const EXT4: &str = env!("CARGO_BIN_EXE_ext4");

/// Runs `ext4 ARGS` (with `stdin` as standard input) and returns its output.
pub fn run(args: &[&dyn AsRef<std::ffi::OsStr>], stdin: Option<&[u8]>) -> Output {
    let mut c = Command::new(EXT4);
    c.args(args);
    output(c, stdin)
}

/// Runs `ext4 ARGS` as [`run`] does, with `umask` (octal) as the process's umask.
pub fn run_with_umask(args: &[&dyn AsRef<std::ffi::OsStr>], stdin: Option<&[u8]>, umask: &str) -> Output {
    let mut c = Command::new("sh");
    c.arg("-c").arg(format!("umask {umask}; exec \"$0\" \"$@\"")).arg(EXT4).args(args);
    output(c, stdin)
}

/// Runs `c` with `stdin` as standard input and returns its output.
fn output(mut c: Command, stdin: Option<&[u8]>) -> Output {
    c.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("ext4 runs");
    if let Some(data) = stdin {
        use std::io::Write;
        let mut s = child.stdin.take().expect("stdin");
        // The command may fail before reading everything; that is its business.
        let _ = s.write_all(data);
    }
    child.wait_with_output().expect("ext4 finishes")
}

/// Runs `ext4 ARGS` and panics with its stderr unless it succeeds.
pub fn ok(args: &[&dyn AsRef<std::ffi::OsStr>], stdin: Option<&[u8]>) -> Output {
    let out = run(args, stdin);
    if !out.status.success() {
        let shown: Vec<String> = args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect();
        panic!("ext4 {} failed ({:?}):\n{}", shown.join(" "), out.status, String::from_utf8_lossy(&out.stderr));
    }
    out
}

/// Whether the oracles are here (prints the skip line if not).
pub fn have_fsck() -> bool {
    ext4_testkit::require(ext4_testkit::oracle::have_e2fsprogs(), "e2fsprogs not installed")
}

/// Whether the tests run as root (FUSE and loop mounts need it).
pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Panics unless `e2fsck -fn` is silent on `image`.
pub fn assert_clean(image: &Path, when: &str) {
    if let Some(p) = ext4_testkit::oracle::e2fsck_problems(image) {
        panic!("e2fsck -fn {} {when}:\n{p}", image.display());
    }
}

/// A numeric field of `dumpe2fs -h` ("Free blocks:", "Block count:", ...).
pub fn dumpe2fs_field(image: &Path, field: &str) -> u64 {
    let text = ext4_testkit::oracle::dumpe2fs(image, true);
    let line = text.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("dumpe2fs -h has no {field:?}:\n{text}"));
    line[field.len()..].trim().parse().unwrap_or_else(|_| panic!("dumpe2fs line {line:?}"))
}

/// Unmounts, retrying for a few seconds while the mount is busy (a process
/// elsewhere on the machine walking /tmp can hold it for a moment).
pub fn unmount(m: LoopMount) {
    let dir = m.path().to_path_buf();
    let Err(first) = m.unmount() else {
        return;
    };
    for _ in 0..50 {
        let mounted = std::fs::read_to_string("/proc/mounts").unwrap().lines().any(|l| l.split(' ').nth(1) == dir.to_str());
        if !mounted {
            let _ = std::fs::remove_dir(&dir);
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
        let _ = Command::new("umount").arg(&dir).output();
    }
    panic!("{}: still mounted after retries: {first}", dir.display());
}

fn is_mounted(dir: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines().any(|l| l.split_whitespace().nth(4) == dir.to_str())
}

/// Runs `f` on `image` served by `ext4 mount -f [-o OPTIONS]` on `dir`, then
/// unmounts and waits until the server has closed the image.
pub fn with_fuse<R>(image: &Path, dir: &Path, options: &str, f: impl FnOnce(&Path) -> R) -> R {
    let mut c = Command::new(EXT4);
    c.args(["mount", "-f"]);
    if !options.is_empty() {
        c.args(["-o", options]);
    }
    let mut server = c.arg(image).arg(dir).stdin(Stdio::null()).spawn().expect("ext4 mount starts");
    let start = std::time::Instant::now();
    while !is_mounted(dir) {
        assert!(server.try_wait().unwrap().is_none(), "ext4 mount exited before mounting");
        assert!(start.elapsed() < Duration::from_secs(30), "the FUSE mount did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A failing `f` still unmounts (and its panic is re-raised after).
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(dir)));
    while is_mounted(dir) {
        if !Command::new("umount").arg(dir).status().unwrap().success() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let exited = server.wait().unwrap();
    let r = r.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    assert!(exited.success(), "ext4 mount exits cleanly after the unmount");
    r
}

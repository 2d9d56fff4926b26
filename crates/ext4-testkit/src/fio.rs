//! Data integrity under load on `ext4 mount`, judged by fio's own
//! checksums, e2fsck and the kernel (`cargo xtask fio`, and
//! `crates/ext4-cli/tests/fio_verify.rs` at a small size).
//!
//! fio writes with `--verify=crc32c` through `ext4 mount` (sequential and
//! random writers side by side, `numjobs` each, 4k/64k block sizes mixed,
//! buffered, fsync every 32 writes for the random ones) and reads every
//! block back; then the mount ends, `e2fsck -fn` must be silent, and fio
//! re-reads the same files in `--verify_only` mode through a fresh
//! `ext4 mount` (no page cache left from the writes) and through a
//! kernel loop mount. Images live on tmpfs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::oracle::{LoopMount, e2fsck_problems};

/// The size of the run.
pub struct Options {
    /// MiB each job writes.
    pub size_mib: u64,
    /// Jobs of each kind (sequential, random).
    pub jobs: u32,
    /// A directory for the image, the job file and the mount point.
    pub work: PathBuf,
}

/// A running FUSE server in the foreground (`ext4 mount -f`, `fuse2fs -f`),
/// ended by [`FuseMount::unmount`].
pub struct FuseMount {
    dir: PathBuf,
    server: Option<Child>,
}

impl FuseMount {
    /// Mounts `image` on `dir` with `ext4 mount -f [-o OPTIONS]` and waits until it is up.
    pub fn new(ext4: &Path, image: &Path, dir: &Path, options: &str) -> Result<Self, String> {
        let mut cmd = Command::new(ext4);
        cmd.arg("mount").arg("-f");
        if !options.is_empty() {
            cmd.arg("-o").arg(options);
        }
        cmd.arg(image).arg(dir);
        Self::spawn(cmd, dir)
    }

    /// Starts `server` (a foreground FUSE server mounting on `dir`) and waits until the mount is up.
    pub fn spawn(mut server: Command, dir: &Path) -> Result<Self, String> {
        let program = server.get_program().to_string_lossy().into_owned();
        let server = server.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn();
        let server = server.map_err(|e| format!("starting {program}: {e}"))?;
        let mut m = FuseMount { dir: dir.to_path_buf(), server: Some(server) };
        let start = Instant::now();
        while !is_mounted(dir) {
            let server = m.server.as_mut().expect("running");
            if let Ok(Some(status)) = server.try_wait() {
                let out = m.server.take().expect("running").wait_with_output().map_err(|e| e.to_string())?;
                return Err(format!("{program} exited ({status}): {}", String::from_utf8_lossy(&out.stderr).trim()));
            }
            if start.elapsed() > Duration::from_secs(30) {
                return Err(format!("{} did not appear as a mount point within 30 s", dir.display()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(m)
    }

    /// Unmounts and waits for the server to commit and close the image.
    pub fn unmount(mut self) -> Result<(), String> {
        umount(&self.dir)?;
        let out = self.server.take().expect("running").wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("the FUSE server failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr)))
        }
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = Command::new("umount").arg(&self.dir).output();
            let _ = s.wait();
        }
    }
}

/// Whether `dir` is a mount point now (per /proc/self/mountinfo).
pub fn is_mounted(dir: &Path) -> bool {
    let Ok(canon) = dir.canonicalize() else {
        return false;
    };
    let want = canon.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .is_ok_and(|info| info.lines().any(|l| l.split_whitespace().nth(4) == Some(want.as_str())))
}

/// `umount DIR`, retried for 10 s while busy.
pub fn umount(dir: &Path) -> Result<(), String> {
    for _ in 0..100 {
        let out = Command::new("umount").arg(dir).output().map_err(|e| format!("umount: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        if !err.contains("busy") {
            return Err(format!("umount {}: {err}", dir.display()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("umount {}: still busy after 10 s", dir.display()))
}

/// What is missing to run, if anything.
pub fn missing() -> Option<&'static str> {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if Command::new("fio").arg("--version").output().is_err() {
        Some("fio not installed (apt-get install fio)")
    } else if !root || !crate::oracle::can_loop_mount() {
        Some("needs root and loop devices")
    } else if !Path::new("/dev/fuse").exists() {
        Some("needs /dev/fuse")
    } else if !crate::oracle::have_e2fsprogs() {
        Some("e2fsprogs not installed")
    } else {
        None
    }
}

fn job_file(o: &Options) -> String {
    format!(
        "[global]\nsize={}M\ndirect=0\nioengine=psync\nbssplit=4k/50:64k/50\nverify=crc32c\nverify_fatal=1\nnumjobs={}\n\n\
         [seq]\nrw=write\n\n[rand]\nrw=randwrite\nfsync=32\n",
        o.size_mib, o.jobs
    )
}

/// Runs fio on `dir` (`extra` adds e.g. `--verify_only`); fails on any error or verify complaint.
fn fio(job: &Path, dir: &Path, extra: &[&str], what: &str) -> Result<(), String> {
    let t = Instant::now();
    // No verify state files dumped into the current directory.
    let out = Command::new("fio").arg(format!("--directory={}", dir.display())).arg("--verify_state_save=0").args(extra).arg(job).output();
    let out = out.map_err(|e| format!("fio: {e}"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let complaint = text.lines().find(|l| l.contains("verify:") || l.contains("bad magic") || l.contains("crc32c"));
    if !out.status.success() || complaint.is_some() {
        let tail: Vec<&str> = text.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
        return Err(format!("fio {what} failed ({}):\n{}", out.status, tail.join("\n")));
    }
    println!("   fio {what}: ok in {:.1?}", t.elapsed());
    Ok(())
}

fn fsck(image: &Path, when: &str) -> Result<(), String> {
    match e2fsck_problems(image) {
        None => {
            println!("   e2fsck -fn {when}: silent");
            Ok(())
        }
        Some(p) => Err(format!("e2fsck -fn {when}:\n{p}")),
    }
}

/// The whole check with the `ext4` binary at `ext4`; the work directory is
/// removed afterwards unless `EXT4_FIO_KEEP` is set.
pub fn check(ext4: &Path, o: &Options) -> Result<(), String> {
    let r = check_in(ext4, o);
    if std::env::var_os("EXT4_FIO_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&o.work);
    }
    r
}

fn check_in(ext4: &Path, o: &Options) -> Result<(), String> {
    let t0 = Instant::now();
    std::fs::create_dir_all(&o.work).map_err(|e| format!("{}: {e}", o.work.display()))?;
    let (img, mnt, job) = (o.work.join("fio.img"), o.work.join("mnt"), o.work.join("job.fio"));
    std::fs::create_dir_all(&mnt).map_err(|e| e.to_string())?;
    std::fs::write(&job, job_file(o)).map_err(|e| e.to_string())?;
    let image_mib = 2 * u64::from(o.jobs) * o.size_mib * 5 / 4 + 64;
    let _ = std::fs::remove_file(&img);
    let out = Command::new("mke2fs").args(["-q", "-F", "-t", "ext4"]).arg(&img).arg(format!("{image_mib}M")).output();
    let out = out.map_err(|e| format!("mke2fs: {e}"))?;
    if !out.status.success() {
        return Err(format!("mke2fs: {}", String::from_utf8_lossy(&out.stderr)));
    }
    println!(
        "== fio --verify=crc32c: {} sequential + {} random writers x {} MiB, image {image_mib} MiB on {}",
        o.jobs,
        o.jobs,
        o.size_mib,
        o.work.display()
    );

    let m = FuseMount::new(ext4, &img, &mnt, "")?;
    let written = fio(&job, &mnt, &[], "write + verify through ext4 mount");
    let unmounted = m.unmount();
    written?;
    unmounted?;
    fsck(&img, "after ext4 mount")?;

    // fio opens its files for writing even to verify, so the mounts are read-write.
    let m = FuseMount::new(ext4, &img, &mnt, "")?;
    let verified = fio(&job, &mnt, &["--verify_only"], "verify_only through a fresh ext4 mount");
    let unmounted = m.unmount();
    verified?;
    unmounted?;

    let m = LoopMount::new(&img, "").map_err(|e| e.to_string())?;
    let verified = fio(&job, m.path(), &["--verify_only"], "verify_only through a kernel loop mount");
    let unmounted = m.unmount().map_err(|e| e.to_string());
    verified?;
    unmounted?;
    fsck(&img, "after the kernel mount")?;
    println!("== fio: no errors, in {:.1?}", t0.elapsed());
    Ok(())
}

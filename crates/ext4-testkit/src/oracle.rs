//! The independent judges: e2fsprogs tools and the kernel.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether an e2fsprogs tool can be run.
pub fn have_tool(name: &str) -> bool {
    Command::new(name).arg("-V").output().is_ok()
}

/// Whether e2fsck, mke2fs, dumpe2fs and debugfs are all present.
pub fn have_e2fsprogs() -> bool {
    ["e2fsck", "mke2fs", "dumpe2fs", "debugfs"].iter().all(|t| have_tool(t))
}

/// Runs `e2fsck -fn` and returns its output if it found anything to say.
/// Silence means: exit status 0 and only the pass headers and summary.
pub fn e2fsck_problems(image: &Path) -> Option<String> {
    e2fsck_problems_with_journal(image, None)
}

/// [`e2fsck_problems`] for a filesystem whose journal is on the external
/// journal device (or image) `journal` (`e2fsck -j`).
///
/// e2fsck also compares the superblock's hint `s_journal_dev` with the
/// block device blkid finds for the journal's UUID; the host's blkid cache
/// trusts entries for two seconds, so a loop device a test has just
/// detached (or reattached elsewhere) would draw a "superblock hint"
/// remark that says nothing about the image. The check runs with a
/// private, empty blkid cache instead.
pub fn e2fsck_problems_with_journal(image: &Path, journal: Option<&Path>) -> Option<String> {
    let mut c = Command::new("e2fsck");
    c.arg("-fn");
    let cache_dir = crate::scratch_dir("blkid");
    let cache = cache_dir.path().join("blkid.tab");
    if let Some(j) = journal {
        c.arg("-j").arg(j).env("BLKID_FILE", &cache);
    }
    // libblkid keeps the previous cache beside it: the directory takes both.
    let out = c.arg(image).output().expect("e2fsck runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let noise = |l: &str| {
        l.is_empty()
            || l.starts_with("e2fsck ")
            || l.starts_with("Pass ")
            || l.contains(" files (")
            || l.starts_with("Checking group summary")
    };
    let extra: Vec<&str> = text.lines().filter(|l| !noise(l)).collect();
    if out.status.success() && extra.is_empty() { None } else { Some(format!("exit {:?}\n{text}", out.status.code())) }
}

/// Panics with e2fsck's output unless `e2fsck -fn` is silent on `image`.
pub fn assert_fsck_clean(image: &Path) {
    if let Some(p) = e2fsck_problems(image) {
        panic!("e2fsck -fn {} is not silent:\n{p}", image.display());
    }
}

/// Runs `debugfs -R CMD IMAGE` and returns its standard output.
pub fn debugfs(image: &Path, cmd: &str) -> String {
    let out = Command::new("debugfs").arg("-R").arg(cmd).arg(image).output().expect("debugfs runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `dumpe2fs` (with `-h` if `header_only`) and returns its output.
pub fn dumpe2fs(image: &Path, header_only: bool) -> String {
    let mut c = Command::new("dumpe2fs");
    if header_only {
        c.arg("-h");
    }
    let out = c.arg(image).output().expect("dumpe2fs runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether this process can loop-mount images (root, mount, a loop device).
pub fn can_loop_mount() -> bool {
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false);
    root && Path::new("/dev/loop-control").exists() && Command::new("mount").arg("-V").output().is_ok()
}

/// A kernel loop mount, unmounted on drop.
pub struct LoopMount {
    dir: PathBuf,
    mounted: bool,
}

impl LoopMount {
    /// Mounts `image` (with extra `-o` options) on a fresh directory.
    pub fn new(image: &Path, options: &str) -> std::io::Result<Self> {
        let dir = mount_point("mnt")?;
        let mut opts = String::from("loop");
        if !options.is_empty() {
            opts.push(',');
            opts.push_str(options);
        }
        let out = Command::new("mount").arg("-t").arg("ext4").arg("-o").arg(&opts).arg(image).arg(&dir).output()?;
        if !out.status.success() {
            let _ = std::fs::remove_dir(&dir);
            return Err(std::io::Error::other(format!("mount failed: {}", String::from_utf8_lossy(&out.stderr))));
        }
        Ok(Self { dir, mounted: true })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Unmounts now, reporting failure.
    pub fn unmount(mut self) -> std::io::Result<()> {
        self.do_unmount()
    }

    fn do_unmount(&mut self) -> std::io::Result<()> {
        if !self.mounted {
            return Ok(());
        }
        // Another process walking the mount point (or udev probing the loop
        // device) makes umount report "busy" for a moment: retry for 10 s.
        let mut tries = 0;
        loop {
            let out = Command::new("umount").arg(&self.dir).output()?;
            if out.status.success() {
                break;
            }
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            tries += 1;
            if !err.contains("busy") || tries >= 100 {
                return Err(std::io::Error::other(format!("umount failed: {err}")));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        self.mounted = false;
        let _ = std::fs::remove_dir(&self.dir);
        Ok(())
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        let _ = self.do_unmount();
    }
}

/// A loop block device over an image file (`losetup -f --show`), detached
/// on drop: the kernel and mke2fs take an external journal only as a
/// block device.
pub struct LoopDevice {
    path: PathBuf,
    attached: bool,
}

impl LoopDevice {
    /// Attaches `file` to a free loop device.
    pub fn new(file: &Path) -> std::io::Result<Self> {
        let out = Command::new("losetup").args(["-f", "--show"]).arg(file).output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!("losetup failed: {}", String::from_utf8_lossy(&out.stderr))));
        }
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Ok(Self { path, attached: true })
    }

    /// The device node (`/dev/loopN`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Detaches now, reporting failure.
    pub fn detach(mut self) -> std::io::Result<()> {
        self.do_detach()
    }

    fn do_detach(&mut self) -> std::io::Result<()> {
        if !self.attached {
            return Ok(());
        }
        let out = Command::new("losetup").arg("-d").arg(&self.path).output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!("losetup -d failed: {}", String::from_utf8_lossy(&out.stderr))));
        }
        self.attached = false;
        Ok(())
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = self.do_detach();
    }
}

/// A fresh empty directory (`tempfile`, mode 0755) to mount on, left to
/// the caller, which removes it after unmounting: dropping a `TempDir`
/// would remove everything below it, a live mount included.
fn mount_point(tag: &str) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new().prefix(&format!("ext4-{tag}-")).tempdir()?.keep();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

/// A number unique within this process.
pub fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// An `ext4 mount -f` (FUSE) of an image, served by a child process;
/// unmounted (and the child waited for, so the image is closed) on
/// [`FuseMount::unmount`] or drop.
pub struct FuseMount {
    dir: PathBuf,
    server: Option<std::process::Child>,
}

fn is_mounted(dir: &Path) -> bool {
    let want = dir.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| m.lines().any(|l| l.split_whitespace().nth(4) == Some(&want)))
}

impl FuseMount {
    /// Mounts `image` with `ext4 mount -f` (the binary at `ext4`) on a fresh directory.
    pub fn new(ext4: &Path, image: &Path) -> std::io::Result<Self> {
        Self::with_journal(ext4, image, None)
    }

    /// [`FuseMount::new`] for an image whose journal is on the external
    /// journal device (or image) `journal`.
    pub fn with_journal(ext4: &Path, image: &Path, journal: Option<&Path>) -> std::io::Result<Self> {
        let dir = mount_point("fuse")?.canonicalize()?;
        let mut c = Command::new(ext4);
        c.arg("mount").arg("-f");
        if let Some(j) = journal {
            c.arg("--journal").arg(j);
        }
        let server = c.arg(image).arg(&dir).stderr(std::process::Stdio::piped()).spawn()?;
        let mut m = Self { dir, server: Some(server) };
        let start = std::time::Instant::now();
        while !is_mounted(&m.dir) {
            let server = m.server.as_mut().expect("running");
            if let Some(status) = server.try_wait()? {
                let mut err = String::new();
                if let Some(mut e) = server.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                m.server = None;
                return Err(std::io::Error::other(format!("ext4 mount exited ({status}): {err}")));
            }
            if start.elapsed() > std::time::Duration::from_secs(30) {
                return Err(std::io::Error::other("ext4 mount did not come up in 30 s"));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(m)
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Unmounts and waits for the server; reports its failure.
    pub fn unmount(mut self) -> std::io::Result<()> {
        self.do_unmount()
    }

    fn do_unmount(&mut self) -> std::io::Result<()> {
        let Some(server) = self.server.take() else { return Ok(()) };
        let mut tries = 0;
        while is_mounted(&self.dir) {
            let out = Command::new("umount").arg(&self.dir).output()?;
            if out.status.success() {
                break;
            }
            tries += 1;
            if tries >= 100 {
                return Err(std::io::Error::other(format!("umount failed: {}", String::from_utf8_lossy(&out.stderr))));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let out = server.wait_with_output()?;
        let _ = std::fs::remove_dir(&self.dir);
        if out.status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("ext4 mount failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr))))
        }
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        let _ = self.do_unmount();
    }
}

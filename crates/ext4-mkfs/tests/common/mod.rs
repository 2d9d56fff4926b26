//! Shared test support: sparse image files, running the real mke2fs with
//! a profile generated from ours, mapping its command line to
//! [`FormatOptions`], and the e2fsprogs oracles (e2fsck, dumpe2fs).

#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;

use ext4_blockdev::{BlockDevice, FileDevice};
use ext4_mkfs::{FormatOptions, Profile};

/// The fixed values that make mke2fs reproducible.
pub const UUID: &str = "01234567-89ab-cdef-0123-456789abcdef";
pub const HASH_SEED: &str = "11111111-2222-3333-4444-555555555555";
pub const FAKE_TIME: u32 = 1_700_000_000;

/// Whether the e2fsprogs tools are installed; prints the skip line if not.
pub fn have_e2fsprogs() -> bool {
    let ok = ["mke2fs", "e2fsck", "dumpe2fs"].iter().all(|t| Command::new(t).arg("-V").output().is_ok());
    ext4_testkit::require(ok, "e2fsprogs (mke2fs, e2fsck, dumpe2fs) not installed")
}

/// Creates (or truncates) a sparse file of `len` bytes.
pub fn create_sparse(path: &Path, len: u64) {
    let f = File::create(path).expect("create image");
    f.set_len(len).expect("size image");
}

/// A path `name` in a temporary directory of its own (removed with
/// everything in it when dropped).
pub struct TempFile(PathBuf, tempfile::TempDir);

impl TempFile {
    /// The path (no file made yet).
    pub fn new(name: &str) -> TempFile {
        let dir = ext4_testkit::scratch_dir("mkfs-test");
        TempFile(dir.path().join(name), dir)
    }

    /// A new sparse file of `len` bytes.
    pub fn sparse(name: &str, len: u64) -> TempFile {
        let t = Self::new(name);
        create_sparse(t.path(), len);
        t
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

/// An image file whose zeroing and discards punch holes, as libext2fs'
/// unix I/O manager does on regular files.
pub struct SparseDevice {
    inner: FileDevice,
}

impl SparseDevice {
    /// Opens an existing image read-write.
    pub fn open(path: &Path) -> SparseDevice {
        let f = OpenOptions::new().read(true).write(true).open(path).expect("open image");
        SparseDevice { inner: FileDevice::from_file(f, false).expect("device") }
    }

    fn punch(&self, offset: u64, len: u64) -> std::io::Result<()> {
        use rustix::fs::{FallocateFlags, fallocate};
        fallocate(self.inner.file(), FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE, offset, len)?;
        Ok(())
    }
}

impl BlockDevice for SparseDevice {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> ext4_blockdev::Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> ext4_blockdev::Result<()> {
        self.inner.write_at(offset, buf)
    }
    fn flush(&self) -> ext4_blockdev::Result<()> {
        self.inner.flush()
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn write_zeroes(&self, offset: u64, len: u64) -> ext4_blockdev::Result<()> {
        ext4_blockdev::check_range(ext4_blockdev::Op::Write, offset, len as usize, self.len())?;
        self.punch(offset, len).map_err(|source| ext4_blockdev::DeviceError::Io {
            op: ext4_blockdev::Op::Write,
            offset,
            source,
        })
    }
    fn discard(&self, offset: u64, len: u64) -> ext4_blockdev::Result<()> {
        self.write_zeroes(offset, len)
    }
}

/// Writes `profile` as an mke2fs.conf and returns its path.
pub fn conf_file(profile: &Profile) -> TempFile {
    let t = TempFile::new(&format!("{}.conf", profile.name));
    std::fs::write(t.path(), profile.to_conf()).expect("write profile");
    t
}

/// Runs the real mke2fs on `image` with `args` (and the fixed UUID, hash
/// seed and time), returning its combined output on failure.
pub fn run_mke2fs(image: &Path, profile: &Profile, args: &[String], size: Option<&str>) -> Result<(), String> {
    let conf = conf_file(profile);
    let mut c = Command::new("mke2fs");
    c.env("E2FSPROGS_FAKE_TIME", FAKE_TIME.to_string()).env("MKE2FS_CONFIG", conf.path());
    c.env_remove("SOURCE_DATE_EPOCH");
    c.arg("-q").arg("-F").arg("-U").arg(UUID);
    // mke2fs 1.47.0 keeps only the last -E: merge them all into one.
    let mut ext = vec![format!("hash_seed={HASH_SEED}")];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-E" {
            ext.push(it.next().expect("-E value").clone());
        } else {
            c.arg(a);
        }
    }
    c.arg("-E").arg(ext.join(",")).arg(image);
    if let Some(s) = size {
        c.arg(s);
    }
    let out = c.output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

/// Maps an mke2fs command line to [`FormatOptions`] with the library's
/// parser, adding the fixed UUID, hash seed and time.
pub fn options_from_args(
    profile: Profile,
    args: &[String],
    size: Option<&str>,
) -> Result<FormatOptions, ext4_mkfs::MkfsError> {
    let mut all: Vec<String> = vec!["-U".into(), UUID.into(), "-E".into(), format!("hash_seed={HASH_SEED}")];
    all.extend(args.iter().cloned());
    all.push("image".into());
    all.extend(size.map(str::to_string));
    let mut o = ext4_mkfs::parse_mke2fs_args(&all)?.options;
    o.profile = profile;
    o.time = Some(FAKE_TIME);
    Ok(o)
}

/// Formats `image` with our formatter, as a sparse-aware device.
pub fn run_ours(image: &Path, opts: &FormatOptions) -> Result<ext4_mkfs::FormatReport, ext4_mkfs::MkfsError> {
    let dev = SparseDevice::open(image);
    ext4_mkfs::format(&dev, opts, &mut |_| ControlFlow::Continue(()))
}

/// `e2fsck -fn` output when it is not silent.
pub fn fsck_problems(image: &Path) -> Option<String> {
    let out = Command::new("e2fsck").arg("-fn").arg(image).output().expect("e2fsck runs");
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

/// A sparse copy of `path` from byte `offset` on, for tools that cannot be
/// told where a filesystem starts.
pub fn window_copy(path: &Path, offset: u64) -> TempFile {
    use std::io::{Read, Seek, SeekFrom, Write};
    let window = TempFile::new("window.img");
    let out = window.path().to_path_buf();
    let mut src = File::open(path).expect("open");
    let len = src.metadata().expect("stat").len() - offset;
    create_sparse(&out, len);
    let mut dst = OpenOptions::new().write(true).open(&out).expect("open window");
    src.seek(SeekFrom::Start(offset)).expect("seek");
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < len {
        let n = ((len - at) as usize).min(buf.len());
        src.read_exact(&mut buf[..n]).expect("read");
        if buf[..n].iter().any(|&b| b != 0) {
            dst.seek(SeekFrom::Start(at)).expect("seek");
            dst.write_all(&buf[..n]).expect("write");
        }
        at += n as u64;
    }
    window
}

/// `dumpe2fs` output (stdout only).
pub fn dumpe2fs(image: &Path) -> String {
    let out = Command::new("dumpe2fs").arg(image).output().expect("dumpe2fs runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// dumpe2fs lines that may differ between the two formatters, with why:
/// mke2fs writes the wall-clock time in the MMP block (and hence its checksum).
pub const DUMPE2FS_IGNORED: &[&str] = &["    mmp_update_date:", "    mmp_update_time:", "    MMP block checksum:"];

/// Compares two dumpe2fs outputs line by line (after dropping ignored
/// superblock fields) and lists the differences.
pub fn dump_differences(ours: &str, theirs: &str) -> Vec<String> {
    let keep = |l: &&str| !DUMPE2FS_IGNORED.iter().any(|k| l.starts_with(k));
    let a: Vec<&str> = ours.lines().filter(keep).collect();
    let b: Vec<&str> = theirs.lines().filter(keep).collect();
    let mut diffs = Vec::new();
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i).copied().unwrap_or("<none>"), b.get(i).copied().unwrap_or("<none>"));
        if x != y {
            diffs.push(format!("line {i}: ours   {x}\n         mke2fs {y}"));
            if diffs.len() > 20 {
                break;
            }
        }
    }
    diffs
}

/// The data segments `[start, end)` of a sparse file (`SEEK_DATA`/`SEEK_HOLE`).
fn data_segments(path: &Path) -> Vec<(u64, u64)> {
    use rustix::fs::{SeekFrom, seek};
    let f = File::open(path).expect("open");
    let size = f.metadata().expect("stat").len();
    let mut out = Vec::new();
    let mut off = 0;
    while off < size {
        let Ok(d) = seek(&f, SeekFrom::Data(off)) else { break };
        let h = seek(&f, SeekFrom::Hole(d)).unwrap_or(size);
        out.push((d, h));
        off = h;
    }
    out
}

/// The differing byte offsets of two equally long files (up to `max`),
/// reading only where either has data.
pub fn byte_differences(a: &Path, b: &Path, max: usize) -> Vec<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let (la, lb) = (std::fs::metadata(a).expect("stat").len(), std::fs::metadata(b).expect("stat").len());
    if la != lb {
        return vec![la.min(lb)];
    }
    let mut segs = data_segments(a);
    segs.extend(data_segments(b));
    segs.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (s, e) in segs {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let (mut fa, mut fb) = (File::open(a).expect("open"), File::open(b).expect("open"));
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut out = Vec::new();
    for (s, e) in merged {
        let mut off = s;
        while off < e {
            let n = ((e - off) as usize).min(ba.len());
            fa.seek(SeekFrom::Start(off)).expect("seek");
            fb.seek(SeekFrom::Start(off)).expect("seek");
            fa.read_exact(&mut ba[..n]).expect("read");
            fb.read_exact(&mut bb[..n]).expect("read");
            if ba[..n] != bb[..n] {
                for i in (0..n).filter(|&i| ba[i] != bb[i]) {
                    out.push(off + i as u64);
                    if out.len() >= max {
                        return out;
                    }
                }
            }
            off += n as u64;
        }
    }
    out
}

/// Bytes allowed to differ between mke2fs' image and ours: only the MMP
/// block's update time (mke2fs writes the wall-clock time there) and its
/// checksum. `mmp`: the MMP block's byte offset in the image.
pub fn allowed_difference(offset: u64, mmp: Option<u64>) -> Option<&'static str> {
    let rel = offset.checked_sub(mmp?)?;
    // mmp_time (bytes 8..16) and mmp_checksum (bytes 1020..1024).
    ((8..16).contains(&rel) || (1020..1024).contains(&rel))
        .then_some("mke2fs writes the wall-clock time in the MMP block")
}

/// What formatting the same command line with both tools gave.
pub enum Outcome {
    /// Both formatted: the problems found (e2fsck on ours, dumpe2fs or byte
    /// differences), empty when the images agree.
    Compared(Vec<String>),
    /// Both refused (mke2fs' message).
    BothRefused(String),
    /// mke2fs refused (its message), we formatted.
    OnlyMke2fsRefused(String),
    /// We refused (our error), mke2fs formatted.
    OnlyWeRefused(String),
}

/// Formats a sparse file of `size` bytes with mke2fs and with our
/// formatter, on the same path one after the other (so that the device
/// name in an MMP block is the same), and compares: `e2fsck -fn` on ours,
/// dumpe2fs of both, every byte.
pub fn compare_with_mke2fs(name: &str, size: u64, profile: &Profile, args: &[String]) -> Outcome {
    let ours = TempFile::new(&format!("{name}.img"));
    let theirs = TempFile::new(&format!("{name}.mke2fs"));
    let image = ours.path().to_path_buf();
    let mut args = args.to_vec();
    // mke2fs discards by default, which on a file punches holes and marks
    // the inode tables zeroed; configurations ask for it explicitly.
    let discard = args.iter().any(|a| a.contains("discard"));
    if !discard {
        args.extend(["-E".to_string(), "nodiscard".to_string()]);
    }
    create_sparse(&image, size);
    let mut mke2fs = run_mke2fs(&image, profile, &args, None);
    // A file grown by mke2fs means it wrote past the device's end (an
    // offset not a multiple of the block size can make it do so): on a
    // real device that write fails. We refuse such a format up front.
    if mke2fs.is_ok() && std::fs::metadata(&image).map(|m| m.len()).unwrap_or(0) > size {
        mke2fs = Err("mke2fs wrote past the end of the device".to_string());
    }
    std::fs::rename(&image, theirs.path()).expect("rename");
    create_sparse(&image, size);
    let ours_result = options_from_args(*profile, &args, None).and_then(|mut o| {
        o.device_name = Some(image.display().to_string());
        o.discard_zeroes_data = discard;
        run_ours(ours.path(), &o).map(|r| (o, r))
    });
    let (opts, report) = match (mke2fs, ours_result) {
        (Ok(()), Ok(r)) => r,
        (Err(m), Err(_)) => return Outcome::BothRefused(m),
        (Err(m), Ok(_)) => return Outcome::OnlyMke2fsRefused(m),
        (Ok(()), Err(e)) => return Outcome::OnlyWeRefused(e.to_string()),
    };
    let mut problems = Vec::new();
    // The oracles read the filesystem where it starts.
    let offset = opts.extended.offset.unwrap_or(0);
    let windows = (offset > 0).then(|| (window_copy(ours.path(), offset), window_copy(theirs.path(), offset)));
    let (ours_fs, theirs_fs) = match &windows {
        Some((a, b)) => (a.path(), b.path()),
        None => (ours.path(), theirs.path()),
    };
    if let Some(p) = fsck_problems(ours_fs) {
        problems.push(format!("{name}: e2fsck -fn on ours:\n{p}"));
    }
    let d = dump_differences(&dumpe2fs(ours_fs), &dumpe2fs(theirs_fs));
    if !d.is_empty() {
        problems.push(format!("{name}: dumpe2fs differs:\n{}", d.join("\n")));
    }
    let mmp = report.layout.mmp_block.map(|b| offset + b * u64::from(report.layout.block_size));
    let bytes: Vec<u64> = byte_differences(ours.path(), theirs.path(), 64)
        .into_iter()
        .filter(|&o| allowed_difference(o, mmp).is_none())
        .collect();
    if !bytes.is_empty() {
        problems.push(format!(
            "{name}: {} or more bytes differ, first at {:?}",
            bytes.len(),
            &bytes[..bytes.len().min(8)]
        ));
    }
    Outcome::Compared(problems)
}

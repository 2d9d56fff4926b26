//! Kernel-aging differential runs: the Linux kernel and the library take
//! turns writing one image (`aged.img`), while a reference copy
//! (`reference.img`) receives every step through the kernel.
//!
//! Round 0: the kernel builds every structure it makes (htree directories
//! of two levels with long names and holes, deep extent trees from punched
//! preallocations and synced interleaved appends, unwritten extents, inline
//! data, xattrs in the inode, in blocks shared by equal sets and in EA
//! inodes, symlinks of both kinds, hard links, device nodes). Then, for each
//! round, the library runs a random workload over those very structures
//! (the reference gets it through the kernel), and the kernel runs another
//! on both images. Every operation must end alike on both sides (success or
//! the same errno). After each round: `e2fsck -fn` is silent on the aged
//! image, the kernel's view of it equals its view of the reference, and the
//! library's own view equals the kernel's (times compared where the round
//! set them explicitly).

pub mod built;
pub mod cli;
pub mod config;
pub mod host;
pub mod library;
pub mod model;
pub mod ops;
pub mod script;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ext4_fs::{Filesystem, OpenOptions};

use self::config::{Config, Scale};
use self::model::Model;
use self::ops::Op;
use crate::oracle::{LoopDevice, LoopMount, e2fsck_problems_with_journal};
use crate::rng::Rng;
use crate::snapshot::Snapshot;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Seed of the whole run (operations and the images' UUID and hash seed).
    pub seed: u64,
    /// Library rounds (each followed by a kernel round).
    pub rounds: usize,
    /// Operations per library round.
    pub round_ops: usize,
    /// Directory sizes.
    pub scale: Scale,
    /// Where the two images live.
    pub work_dir: PathBuf,
}

/// What a passing run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Operations the library carried out (both outcomes equal).
    pub library_ops: usize,
    /// Operations the kernel carried out on the aged image.
    pub kernel_ops: usize,
    /// Operations that failed alike on both sides.
    pub refused_alike: usize,
    /// Entries in the tree at the end.
    pub entries: usize,
    /// What the kernel's build round made (index levels, extent depth, shared xattr blocks).
    pub structures: String,
    /// File data the run wrote (command-line runs).
    pub bytes_written: u64,
    /// Complaints of e2fsck about the kernel-only reference image (the
    /// kernel's business, reported, not failed).
    pub reference_notes: Vec<String>,
}

/// The external journal device image of `image` (`IMAGE.journal`), if the
/// configuration has one: kernel mounts attach it to a loop device, the
/// library and e2fsck are given it.
pub fn journal_of(image: &Path) -> Option<PathBuf> {
    let mut p = image.as_os_str().to_owned();
    p.push(".journal");
    let p = PathBuf::from(p);
    p.exists().then_some(p)
}

/// Copies an image, and its external journal device if it has one.
fn copy_image(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to).map_err(|e| e.to_string())?;
    if let Some(j) = journal_of(from) {
        let mut dest = to.as_os_str().to_owned();
        dest.push(".journal");
        std::fs::copy(j, dest).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Removes an image and its external journal device.
fn remove_image(image: &Path) {
    if let Some(j) = journal_of(image) {
        let _ = std::fs::remove_file(j);
    }
    let _ = std::fs::remove_file(image);
}

/// Makes the external journal device of `image` (16 MiB, `mke2fs -O
/// journal_dev`) and returns the `-J device=` argument of the loop device
/// it is attached to while the filesystem is made.
fn journal_device(cfg: &Config, seed: u64, image: &Path) -> Result<(String, LoopDevice), String> {
    let mut journal = image.as_os_str().to_owned();
    journal.push(".journal");
    let journal = PathBuf::from(journal);
    std::fs::File::create(&journal).and_then(|f| f.set_len(16 << 20)).map_err(|e| e.to_string())?;
    let uuid = format!("{:08x}-2222-4000-8000-{:012x}", seed as u32 ^ 0x5a5a_5a5a, seed >> 16 & 0xffff_ffff_ffff);
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", cfg.fs_type, "-O", "journal_dev", "-b", &cfg.block_size.to_string(), "-U", &uuid])
        .arg(&journal)
        .output()
        .map_err(|e| format!("mke2fs: {e}"))?;
    if !out.status.success() {
        return Err(format!("mke2fs -O journal_dev: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let dev = LoopDevice::new(&journal).map_err(|e| e.to_string())?;
    Ok((format!("device={}", dev.path().display()), dev))
}

fn mke2fs(cfg: &Config, scale: Scale, seed: u64, image: &Path) -> Result<(), String> {
    let (mib, inodes) = cfg.size(scale);
    remove_image(image);
    let uuid = format!("{:08x}-0000-4000-8000-{:012x}", seed as u32, seed >> 16 & 0xffff_ffff_ffff);
    let hash_seed = format!("{:08x}-1111-4111-8111-{:012x}", (seed >> 32) as u32, seed & 0xffff_ffff_ffff);
    let journal = if cfg.external_journal { Some(journal_device(cfg, seed, image)?) } else { None };
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", cfg.fs_type, "-b", &cfg.block_size.to_string()])
        .args(if inodes > 0 { vec!["-N".to_string(), inodes.to_string()] } else { Vec::new() })
        .args(cfg.args)
        .args(journal.as_ref().map(|(device, _)| vec!["-J", device]).unwrap_or_default())
        .args(["-U", &uuid, "-E", &format!("hash_seed={hash_seed},lazy_itable_init=0,lazy_journal_init=0,nodiscard")])
        .arg(image)
        .arg(format!("{mib}M"))
        .output()
        .map_err(|e| format!("mke2fs: {e}"))?;
    if !out.status.success() {
        return Err(format!("mke2fs {}: {}", cfg.name, String::from_utf8_lossy(&out.stderr)));
    }
    if let Some((_, dev)) = journal {
        dev.detach().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// One side of a step: the library on the aged image, or the kernel on a mount.
enum Side<'a> {
    Library(&'a mut Filesystem),
    Kernel(&'a Path),
}

impl Side<'_> {
    fn apply(&mut self, op: &Op) -> Result<(), host::Errno> {
        match self {
            Side::Library(fs) => library::apply(fs, op),
            Side::Kernel(root) => host::apply(root, op),
        }
    }
}

fn show_errno(r: &Result<(), host::Errno>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => format!("{} ({e})", ext4_fs::errno_name(*e)),
    }
}

/// Both sides of a round, applying each operation to both and checking
/// that they end alike; the model follows what succeeded.
struct Step<'a, 'b> {
    aged: Side<'a>,
    reference: Side<'b>,
    what: String,
    done: Vec<Op>,
    /// Every operation with its outcome, for replaying a failure by hand.
    log: Option<std::fs::File>,
}

impl Step<'_, '_> {
    fn op(&mut self, model: &mut Model, op: Op, report: &mut Report) -> Result<(), String> {
        let a = self.aged.apply(&op);
        let r = self.reference.apply(&op);
        if a != r {
            let i = self.done.len();
            return Err(format!("{}, op {i}: `{op}`: aged image {}, reference {}", self.what, show_errno(&a), show_errno(&r)));
        }
        if let Some(log) = &mut self.log {
            use std::io::Write;
            let _ = writeln!(log, "{}: {op}: {}", self.what, show_errno(&a));
        }
        match a {
            Ok(()) => model.apply(&op),
            Err(_) => report.refused_alike += 1,
        }
        self.done.push(op);
        Ok(())
    }

    /// A later round: `n` random operations, then explicit times.
    fn random(&mut self, model: &mut Model, rng: &mut Rng, n: usize, kernel: bool, report: &mut Report) -> Result<(), String> {
        for _ in 0..n {
            let op = model.random_op(rng, kernel);
            self.op(model, op, report)?;
        }
        self.times(model, rng, report)
    }

    fn times(&mut self, model: &mut Model, rng: &mut Rng, report: &mut Report) -> Result<(), String> {
        for op in model.set_times(rng, 40) {
            self.op(model, op, report)?;
        }
        Ok(())
    }
}

/// A kernel mount of an image, with its external journal device (if any)
/// on a loop device; unmounted before the device is detached.
struct Mounted {
    mount: LoopMount,
    journal: Option<LoopDevice>,
}

impl Mounted {
    fn path(&self) -> &Path {
        self.mount.path()
    }
}

fn mount(image: &Path, opts: &str) -> Result<Mounted, String> {
    let journal = journal_of(image).map(|j| LoopDevice::new(&j)).transpose().map_err(|e| format!("losetup: {e}"))?;
    let opts = match &journal {
        Some(dev) if opts.is_empty() => format!("journal_path={}", dev.path().display()),
        Some(dev) => format!("{opts},journal_path={}", dev.path().display()),
        None => opts.to_string(),
    };
    let mount = LoopMount::new(image, &opts).map_err(|e| format!("mount {}: {e}", image.display()))?;
    Ok(Mounted { mount, journal })
}

fn unmount(m: Mounted) -> Result<(), String> {
    m.mount.unmount().map_err(|e| e.to_string())?;
    m.journal.map_or(Ok(()), LoopDevice::detach).map_err(|e| e.to_string())
}

/// Opens an image through the library, with its external journal device if it has one.
fn open(image: &Path, opts: OpenOptions) -> ext4_fs::Result<Filesystem> {
    match journal_of(image) {
        Some(j) => Filesystem::open_path_with_journal(image, j, opts),
        None => Filesystem::open_path(image, opts),
    }
}

/// Paths whose times the round set last (compared exactly).
fn timed_paths(ops: &[Op]) -> BTreeSet<Vec<u8>> {
    ops.iter().filter_map(|o| if let Op::SetTimes { path, .. } = o { Some(path.as_bytes().to_vec()) } else { None }).collect()
}

fn masked(mut s: Snapshot, timed: &BTreeSet<Vec<u8>>) -> Snapshot {
    s.remove_tree(b"lost+found");
    for (p, n) in s.nodes.iter_mut() {
        if !timed.contains(p) {
            n.mtime = (0, 0);
        }
    }
    s
}

fn diff_text(what: &str, a: &Snapshot, b: &Snapshot) -> Result<(), String> {
    let d = a.diff(b);
    if d.is_empty() {
        return Ok(());
    }
    let more = if d.len() > 30 { format!("\n... and {} more", d.len() - 30) } else { String::new() };
    Err(format!("{what}: {} differences:\n{}{more}", d.len(), d[..d.len().min(30)].join("\n")))
}

/// e2fsck's complaints, less its suggestions to rebalance extent trees
/// ("could be narrower/shorter", exit 0): neither the kernel nor the library
/// merges extent leaves after punches and truncates, and the kernel's own
/// trees draw the same suggestion (seen on the reference images).
fn fsck(image: &Path) -> Option<String> {
    let out = e2fsck_problems_with_journal(image, journal_of(image).as_deref())?;
    let suggestion = |l: &str| l.contains("could be narrower") || l.contains("could be shorter") || l == "Optimize? no";
    let real = out
        .lines()
        .skip(1)
        .any(|l| !(l.is_empty() || l.starts_with("e2fsck ") || l.starts_with("Pass ") || l.contains(" files (") || suggestion(l)));
    (real || !out.starts_with("exit Some(0)")).then_some(out)
}

/// The checks after a round: e2fsck, and three views of the tree equal.
fn check(aged: &Path, reference: &Path, timed: &BTreeSet<Vec<u8>>, report: &mut Report, when: &str) -> Result<(), String> {
    let reference_fsck = fsck(reference);
    if let Some(p) = fsck(aged) {
        let r = reference_fsck.as_deref().unwrap_or("silent");
        return Err(format!("{when}: e2fsck -fn on the aged image:\n{p}\n(on the reference: {r})"));
    }
    if let Some(p) = reference_fsck {
        report.reference_notes.push(format!("{when}: e2fsck on the kernel-only reference:\n{p}"));
    }
    check_views(aged, reference, timed, None, report, when)
}

/// The kernel's view of `image` equals its view of `reference`, and the
/// library's view of `image` equals the kernel's. With `model`, a file
/// whose contents differ only on the reference, where the model knows what
/// was written and `image` holds exactly that, is the kernel's loss (a
/// note), not a failure.
fn check_views(
    image: &Path,
    reference: &Path,
    timed: &BTreeSet<Vec<u8>>,
    model: Option<&Model>,
    report: &mut Report,
    when: &str,
) -> Result<(), String> {
    let snap = |image: &Path| -> Result<Snapshot, String> {
        let m = mount(image, "ro")?;
        let s = Snapshot::from_host(m.path()).map_err(|e| format!("walking the kernel's view of {}: {e}", image.display()))?;
        unmount(m)?;
        Ok(masked(s, timed))
    };
    let kernel_image = snap(image)?;
    let mut kernel_reference = snap(reference)?;
    if let Some(model) = model {
        for (path, want) in kernel_reference.nodes.iter_mut() {
            let Some(got) = kernel_image.nodes.get(path) else { continue };
            let written = std::str::from_utf8(path).ok().and_then(|p| model.expected_sha256(p));
            if want.sha256 != got.sha256 && written.is_some() && got.sha256 == written {
                report
                    .reference_notes
                    .push(format!("{when}: the kernel's {} differs from what was written to it", String::from_utf8_lossy(path)));
                want.sha256 = got.sha256;
            }
        }
    }
    diff_text(&format!("{when}: kernel view of {} vs the reference", image.display()), &kernel_reference, &kernel_image)?;
    let fs = open(image, OpenOptions::read_only()).map_err(|e| format!("{when}: library open: {e}"))?;
    let lib = Snapshot::from_image(&fs, b"/").map_err(|e| format!("{when}: library walk: {e}"))?;
    diff_text(&format!("{when}: library view vs kernel view of {}", image.display()), &kernel_image, &masked(lib, timed))?;
    report.entries = kernel_image.nodes.len();
    Ok(())
}

fn debugfs_field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines().find_map(|l| l.trim().strip_prefix(key)).map(str::trim)
}

/// What the kernel's build round made, read by debugfs, checked against
/// what the round is for: an index of two levels where the directory is big
/// enough, extent trees of depth 2, xattr blocks shared by several inodes.
fn structures(image: &Path, cfg: &Config, scale: Scale) -> Result<String, String> {
    let dump = crate::oracle::debugfs(image, "htree_dump /big0");
    let levels = debugfs_field(&dump, "Indirect levels:").and_then(|v| v.parse::<u32>().ok()).map_or(0, |l| l + 1);
    let want_levels = match (scale, cfg.block_size, cfg.large_dir) {
        (Scale::Deep, _, true) => 3,
        (Scale::Deep, _, false) | (Scale::Quick, 1024, _) => 2,
        _ => 1,
    };
    let ex = crate::oracle::debugfs(image, "ex /frag/holes");
    let depth =
        ex.lines().nth(1).and_then(|l| l.split('/').nth(1)).and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse::<u32>().ok());
    let mut blocks = BTreeSet::new();
    for i in 0..40 {
        let stat = crate::oracle::debugfs(image, &format!("stat /x/f{i}"));
        if let Some(b) = debugfs_field(&stat, "File ACL:").and_then(|v| v.split_whitespace().next()).filter(|b| *b != "0") {
            blocks.insert(b.to_string());
        }
    }
    let text = format!("big0: {levels} index levels; frag/holes: extent depth {depth:?}; x/: 40 files on {} xattr blocks", blocks.len());
    let extents_ok = !cfg.extents() || depth == Some(2);
    if levels < want_levels || !extents_ok || blocks.is_empty() || blocks.len() > 20 {
        return Err(format!("the kernel's build round did not make the intended structures: {text}"));
    }
    Ok(text)
}

/// The operation log beside the aged image (`NAME-aged.img.ops`), appended to.
fn op_log(aged: &Path) -> Option<std::fs::File> {
    let mut p = aged.as_os_str().to_owned();
    p.push(".ops");
    std::fs::OpenOptions::new().create(true).append(true).open(p).ok()
}

/// What a round does between opening and closing its two sides.
type Body<'r> = &'r mut dyn FnMut(&mut Step<'_, '_>, &mut Model, &mut Report) -> Result<(), String>;

/// A kernel round on both images (both mounted at once); returns its operations.
fn kernel_round(
    model: &mut Model,
    aged: &Path,
    reference: &Path,
    report: &mut Report,
    what: &str,
    body: Body<'_>,
) -> Result<Vec<Op>, String> {
    let (ma, mr) = (mount(aged, "")?, mount(reference, "")?);
    let mut step = Step {
        aged: Side::Kernel(ma.path()),
        reference: Side::Kernel(mr.path()),
        what: what.to_string(),
        done: Vec::new(),
        log: op_log(aged),
    };
    body(&mut step, model, report)?;
    report.kernel_ops += step.done.len();
    let done = step.done;
    unmount(ma)?;
    unmount(mr)?;
    Ok(done)
}

/// A library round: the library on the aged image, the kernel on the reference.
fn library_round(
    model: &mut Model,
    aged: &Path,
    reference: &Path,
    report: &mut Report,
    what: &str,
    body: Body<'_>,
) -> Result<Vec<Op>, String> {
    let mr = mount(reference, "")?;
    let mut fs = open(aged, OpenOptions::read_write()).map_err(|e| format!("{what}: library open: {e}"))?;
    let mut step = Step {
        aged: Side::Library(&mut fs),
        reference: Side::Kernel(mr.path()),
        what: what.to_string(),
        done: Vec::new(),
        log: op_log(aged),
    };
    body(&mut step, model, report)?;
    report.library_ops += step.done.len();
    let done = step.done;
    fs.sync().map_err(|e| format!("{what}: library sync: {e}"))?;
    drop(fs);
    unmount(mr)?;
    Ok(done)
}

/// Who writes in a scripted round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// The kernel, on both images.
    Kernel,
    /// The library on the aged image, the kernel on the reference.
    Library,
}

/// Runs fixed rounds of operations (a regression script) on a fresh image
/// of `cfg`, with the same checks after each round as [`run`].
pub fn replay(cfg: &Config, work_dir: &Path, rounds: &[(Writer, Vec<Op>)]) -> Result<Report, String> {
    rustix::process::umask(rustix::fs::Mode::empty());
    std::fs::create_dir_all(work_dir).map_err(|e| e.to_string())?;
    let aged = work_dir.join(format!("{}-aged.img", cfg.name));
    let reference = work_dir.join(format!("{}-reference.img", cfg.name));
    mke2fs(cfg, Scale::Quick, 0, &aged)?;
    copy_image(&aged, &reference)?;
    let mut model = Model::new(cfg.traits(Scale::Quick));
    let mut report = Report::default();
    for (i, (who, ops)) in rounds.iter().enumerate() {
        let what = format!("round {i} ({who:?})");
        let mut body = |step: &mut Step<'_, '_>, model: &mut Model, report: &mut Report| {
            ops.iter().try_for_each(|op| step.op(model, op.clone(), report))
        };
        let done = match who {
            Writer::Kernel => kernel_round(&mut model, &aged, &reference, &mut report, &what, &mut body)?,
            Writer::Library => library_round(&mut model, &aged, &reference, &mut report, &what, &mut body)?,
        };
        check(&aged, &reference, &timed_paths(&done), &mut report, &format!("after {what}"))?;
    }
    Ok(report)
}

/// A number from a configuration's name, so that configurations run with
/// one seed draw different operations.
fn name_seed(name: &str) -> u64 {
    name.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
}

/// Runs one configuration.
pub fn run(cfg: &Config, opts: &RunOptions) -> Result<Report, String> {
    rustix::process::umask(rustix::fs::Mode::empty());
    let mut rng = Rng::new(opts.seed ^ name_seed(cfg.name));
    std::fs::create_dir_all(&opts.work_dir).map_err(|e| e.to_string())?;
    let aged = opts.work_dir.join(format!("{}-aged.img", cfg.name));
    let reference = opts.work_dir.join(format!("{}-reference.img", cfg.name));
    mke2fs(cfg, opts.scale, opts.seed, &aged)?;
    let _ = std::fs::remove_file(aged.with_extension("img.ops"));
    copy_image(&aged, &reference)?;
    let mut model = Model::new(cfg.traits(opts.scale));
    let mut report = Report::default();

    let done = kernel_round(&mut model, &aged, &reference, &mut report, "round 0 (kernel build)", &mut |step, model, report| {
        for op in model.build_round(&mut rng) {
            step.op(model, op, report)?;
        }
        for op in model.thin_big_dirs(&mut rng) {
            step.op(model, op, report)?;
        }
        step.times(model, &mut rng, report)
    })?;
    check(&aged, &reference, &timed_paths(&done), &mut report, "after round 0")?;
    report.structures = structures(&aged, cfg, opts.scale)?;

    for r in 1..=opts.rounds {
        let n = opts.round_ops;
        let what = format!("round {r} (library)");
        let done = library_round(&mut model, &aged, &reference, &mut report, &what, &mut |step, model, report| {
            step.random(model, &mut rng, n, false, report)
        })?;
        check(&aged, &reference, &timed_paths(&done), &mut report, &format!("after {what}"))?;
        let what = format!("round {r} (kernel)");
        let done = kernel_round(&mut model, &aged, &reference, &mut report, &what, &mut |step, model, report| {
            step.random(model, &mut rng, n / 2, true, report)
        })?;
        check(&aged, &reference, &timed_paths(&done), &mut report, &format!("after {what}"))?;
    }
    remove_image(&aged);
    remove_image(&reference);
    let _ = std::fs::remove_file(aged.with_extension("img.ops"));
    Ok(report)
}

//! The state of one check and its driver: open the filesystem, run the
//! checks before the passes, the five passes and what follows, and turn
//! what they found into a [`Report`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use ext4_blockdev::BlockDevice;

use crate::error::{CheckError, Result};
use crate::fs::{Fs, Image};
use crate::inodes::{DirTable, InodeTable};
use crate::problem::{At, Code, Pass, Problem, Severity};
use crate::report::{Outcome, Report, Stats};
use crate::runset::RunSet;
use crate::{Mode, Options, Progress};

/// Why a check stopped before its end.
#[derive(Debug)]
pub(crate) enum Stop {
    /// A problem the check cannot go past (e2fsck's fatal errors and aborts).
    Abort(String),
    /// The caller cancelled.
    Cancel,
    /// The device failed.
    Io(CheckError),
}

impl From<CheckError> for Stop {
    fn from(e: CheckError) -> Self {
        Self::Io(e)
    }
}

/// What the passes return.
pub(crate) type Flow<T = ()> = std::result::Result<T, Stop>;

/// One of the five passes.
type PassFn = for<'a, 'd, 'o> fn(&'a mut Ctx<'d, 'o>) -> Flow;

/// Most problems kept in a report; beyond, problems are only counted.
const MAX_PROBLEMS: usize = 100_000;

/// One directory block to check in pass 2 (e2fsck's `dblist` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DirBlock {
    /// The directory.
    pub ino: u32,
    /// The block (0: a hole, or the inline data).
    pub blk: u64,
    /// Logical block number in the directory.
    pub blockcnt: u32,
}

/// An htree directory's index, as pass 2 reconstructs it (e2fsck's `dx_dir_info`).
#[derive(Debug, Clone, Default)]
pub(crate) struct DxDir {
    /// Blocks the index covers (the directory's blocks when pass 1 saw it).
    pub numblocks: u32,
    /// Hash version from the root (plus 3 for unsigned).
    pub hashversion: u8,
    /// Levels, counting the root.
    pub depth: u32,
    /// Per-block information.
    pub blocks: Vec<DxBlock>,
    /// Casefolded: names hash through Unicode folding, which this checker
    /// lacks, so the index is not verified against the names.
    pub casefolded: bool,
}

/// Kind of block in an htree directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum DxKind {
    /// Not seen by pass 2.
    #[default]
    Unset,
    /// A leaf.
    Leaf,
    /// The root.
    Root,
    /// An interior node.
    Node,
}

/// One block of an htree directory (e2fsck's `dx_dirblock_info`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DxBlock {
    /// Its kind.
    pub kind: DxKind,
    /// Referenced by an index entry.
    pub referenced: bool,
    /// Referenced twice.
    pub dup_ref: bool,
    /// First entry of its parent.
    pub first: bool,
    /// Last entry of its parent.
    pub last: bool,
    /// The block whose index points here.
    pub parent: u32,
    /// The block before it in the parent's index.
    pub previous: u32,
    /// Lowest hash found in it.
    pub min_hash: u32,
    /// Highest hash found in it.
    pub max_hash: u32,
    /// Lowest hash its index entry allows.
    pub node_min_hash: u32,
    /// Highest hash its index entry allows.
    pub node_max_hash: u32,
}

/// An xattr block as pass 1 counts its references.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EaBlock {
    /// `h_refcount` minus the references found so far.
    pub remaining: i64,
    /// Quota blocks its entries charge.
    pub quota_blocks: u64,
    /// EA inodes its entries charge.
    pub quota_inodes: u64,
}

/// The state of one check.
pub(crate) struct Ctx<'d, 'o> {
    /// The filesystem.
    pub fs: Fs<'d>,
    /// What the check may change.
    pub mode: Mode,
    /// The current pass.
    pub pass: Pass,
    /// The time the checks compare with.
    pub now: i64,
    /// Problems found so far.
    pub problems: Vec<Problem>,
    /// Problems found beyond [`MAX_PROBLEMS`].
    pub dropped: u64,
    /// Preen mode met a problem it may not repair: nothing more is repaired.
    pub preen_halted: bool,
    progress: Option<&'o mut dyn FnMut(Progress)>,
    cancel: Option<&'o AtomicBool>,

    /// Inodes in use and their counts.
    pub inodes: InodeTable,
    /// Directories and their parents.
    pub dirs: DirTable,
    /// Clusters in use (e2fsck's `block_found_map`).
    pub found: RunSet,
    /// Blocks the bad blocks inode lists (`fs->badblocks`).
    pub bad_blocks: RunSet,
    /// Blocks of critical metadata (`block_metadata_map`).
    pub metadata: RunSet,
    /// Clusters claimed more than once (`block_dup_map`).
    pub dups: RunSet,
    /// Directory blocks for pass 2.
    pub dblist: Vec<DirBlock>,
    /// Htree directories.
    pub dx_dirs: BTreeMap<u32, DxDir>,
    /// Xattr blocks seen and their references.
    pub ea_blocks: BTreeMap<u64, EaBlock>,
    /// Xattr blocks referenced more often than their count says.
    pub ea_extra: BTreeMap<u64, u64>,
    /// References to each EA inode.
    pub ea_inode_refs: BTreeMap<u32, u64>,
    /// Groups whose block bitmap, inode bitmap or inode table is invalid.
    pub invalid_block_bitmap: Vec<bool>,
    /// See `invalid_block_bitmap`.
    pub invalid_inode_bitmap: Vec<bool>,
    /// See `invalid_block_bitmap`.
    pub invalid_inode_table: Vec<bool>,
    /// How many of the three flags are set (`ctx->invalid_bitmaps`).
    pub invalid_bitmaps: u32,
    /// Regular files needing `large_file`.
    pub large_files: u64,
    /// Directories needing `large_dir`.
    pub large_dirs: u64,
    /// Summary counts.
    pub stats: Stats,
    /// Quota usage counted by pass 1.
    pub quota: crate::quota::QuotaUsage,
    /// Encryption policies of the encrypted inodes.
    pub policies: crate::encrypt::Policies,
    /// A repair wrote something this round.
    pub changed: bool,
    /// A repair invalidated what the passes know: the round ends after
    /// the current pass and the check starts again.
    pub restart: bool,
    /// The in-memory superblock differs from the one on the image.
    pub sb_dirty: bool,
    /// Groups whose in-memory descriptor differs from the one on the image.
    pub gd_dirty: std::collections::BTreeSet<u32>,
    /// Repairs are held back: an earlier problem was left unrepaired, so
    /// what the pass computed may not be what the filesystem needs.
    pub hold_repairs: bool,
    /// Where the problems of the inode pass 1 is checking start.
    pub inode_start: usize,
}

impl<'d, 'o> Ctx<'d, 'o> {
    fn new(fs: Fs<'d>, mode: Mode, now: i64, progress: Option<&'o mut dyn FnMut(Progress)>, cancel: Option<&'o AtomicBool>) -> Self {
        let groups = fs.geo.group_count as usize;
        Self {
            fs,
            mode,
            pass: Pass::Super,
            now,
            problems: Vec::new(),
            dropped: 0,
            preen_halted: false,
            progress,
            cancel,
            inodes: InodeTable::default(),
            dirs: DirTable::default(),
            found: RunSet::new(),
            bad_blocks: RunSet::new(),
            metadata: RunSet::new(),
            dups: RunSet::new(),
            dblist: Vec::new(),
            dx_dirs: BTreeMap::new(),
            ea_blocks: BTreeMap::new(),
            ea_extra: BTreeMap::new(),
            ea_inode_refs: BTreeMap::new(),
            invalid_block_bitmap: vec![false; groups],
            invalid_inode_bitmap: vec![false; groups],
            invalid_inode_table: vec![false; groups],
            invalid_bitmaps: 0,
            large_files: 0,
            large_dirs: 0,
            stats: Stats::default(),
            quota: Default::default(),
            policies: Default::default(),
            changed: false,
            restart: false,
            sb_dirty: false,
            gd_dirty: Default::default(),
            hold_repairs: false,
            inode_start: 0,
        }
    }

    /// Reports a problem and returns whether to repair it (e2fsck's
    /// `fix_problem`): never in check mode; in repair mode when the repair
    /// exists; in preen mode when it also is safe without a human.
    pub(crate) fn ask(&mut self, code: Code, at: At, detail: impl Into<String>) -> bool {
        let sev = code.severity();
        let counts = match sev {
            Severity::Fatal => true,
            Severity::Error => self.pass != Pass::Super,
            Severity::Warning | Severity::Info => false,
        };
        let answer = match self.mode {
            Mode::Check => false,
            _ if self.preen_halted || sev == Severity::Info => false,
            Mode::Repair => !self.hold_repairs && crate::repair::repairable(code),
            Mode::Preen => {
                if !code.preen_ok() && sev == Severity::Error {
                    self.preen_halted = true;
                }
                code.preen_ok() && !self.hold_repairs && crate::repair::repairable(code)
            }
        };
        if self.problems.len() < MAX_PROBLEMS {
            let p = Problem {
                code,
                pass: self.pass,
                ino: at.ino,
                block: at.block,
                group: at.group,
                detail: detail.into(),
                counts,
                fixed: answer,
            };
            self.problems.push(p);
        } else {
            self.dropped += 1;
        }
        answer
    }

    /// Reports a problem that stops the check.
    pub(crate) fn fatal(&mut self, code: Code, at: At, detail: impl Into<String>) -> Stop {
        let detail = detail.into();
        self.ask(code, at, detail.clone());
        Stop::Abort(detail)
    }

    /// Tells the caller how far the check is; stops if it was cancelled.
    pub(crate) fn progress(&mut self, done: u64, total: u64) -> Flow {
        if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Stop::Cancel);
        }
        let pass = self.pass;
        if let Some(p) = self.progress.as_mut() {
            p(Progress { pass, done, total });
        }
        Ok(())
    }

    /// Marks cluster of block `b` in use; returns whether it already was.
    pub(crate) fn mark_block(&mut self, b: u64) -> bool {
        let c = self.fs.b2c(b);
        if self.found.mark(c) {
            self.dups.mark(c);
            return true;
        }
        false
    }

    /// Runs every check in e2fsck's order.
    /// A repair needs the check to start again after this pass.
    fn restarting(&self) -> bool {
        self.restart && self.mode != Mode::Check
    }

    /// Runs every check in e2fsck's order; in the repair modes, ends early
    /// when a repair asks for a restart.
    pub(crate) fn run_all(&mut self) -> Flow {
        self.pass = Pass::Super;
        crate::superblock::check_before_passes(self)?;
        let passes: [(Pass, PassFn); 5] = [
            (Pass::Inodes, crate::pass1::run),
            (Pass::Directories, crate::pass2::run),
            (Pass::Connectivity, crate::pass3::run),
            (Pass::References, crate::pass4::run),
            (Pass::Summaries, crate::pass5::run),
        ];
        for (pass, f) in passes {
            if self.restarting() {
                return Ok(());
            }
            self.pass = pass;
            f(self)?;
        }
        if self.restarting() {
            return Ok(());
        }
        self.pass = Pass::Final;
        crate::superblock::check_after_passes(self)
    }
}

/// Seconds since the epoch from the clock, or `E2FSPROGS_FAKE_TIME` as e2fsck reads it.
fn clock() -> i64 {
    if let Some(t) = std::env::var("E2FSPROGS_FAKE_TIME").ok().and_then(|s| s.parse().ok()) {
        return t;
    }
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// What one round of checks left behind.
pub(crate) struct Round<'d> {
    /// The image, with this round's repairs pending.
    pub img: Image<'d>,
    /// Problems found.
    pub problems: Vec<Problem>,
    /// Whether a repair wrote something.
    pub changed: bool,
    /// Why the round stopped early, if it did.
    pub stop: Option<Stop>,
    /// Preen mode met a problem it may not repair.
    pub preen_halted: bool,
    /// Summary counts.
    pub stats: Stats,
    /// The backup superblock in use, if any.
    pub backup_sb: Option<u64>,
}

/// One round: open the image (pending repairs included) and run every
/// check in `mode`. `Err(report)` when no superblock is usable.
pub(crate) fn round<'d, 'o>(
    img: Image<'d>,
    mode: Mode,
    now: i64,
    progress: Option<&'o mut (dyn FnMut(Progress) + 'o)>,
    cancel: Option<&'o AtomicBool>,
) -> Result<std::result::Result<Round<'d>, (Report, Image<'d>)>> {
    let mut notes = crate::open::OpenNotes::default();
    let fs = match crate::open::open(img, &mut notes)? {
        Ok(fs) => fs,
        Err((e, img)) => return Ok(Err((unusable(e), img))),
    };
    let mut ctx = Ctx::new(fs, mode, now, progress, cancel);
    if let Some(e) = notes.primary_failed {
        ctx.ask(Code::OpenFailed, At::NONE, format!("primary superblock: {}", e.describe()));
        if mode == Mode::Repair && ctx.fs.backup_sb.is_some() {
            ctx.rewrite_primary_from_backup();
        }
    }
    if let Some(why) = notes.desc_failed {
        ctx.ask(Code::CheckDescFailed, At::NONE, format!("group descriptors look bad: {why}"));
    }
    let result = ctx.run_all();
    let stop = match result {
        Ok(()) => None,
        Err(Stop::Io(e)) => return Err(e),
        Err(s) => Some(s),
    };
    if stop.is_none() {
        ctx.flush_metadata();
    }
    let mut stats = ctx.stats;
    stats.inodes_count = u64::from(ctx.fs.inodes_count());
    stats.blocks_count = ctx.fs.blocks_count();
    stats.inodes_used = ctx.inodes.iter().filter(|r| r.flags & crate::inodes::flag::USED != 0).count() as u64;
    let found = ctx.found.count_in(0, u64::MAX) * ctx.fs.ratio() + ctx.fs.first_data_block();
    stats.blocks_used = found.min(stats.blocks_count);
    let Ctx { fs, problems, changed, preen_halted, .. } = ctx;
    Ok(Ok(Round { backup_sb: fs.backup_sb, img: fs.img, problems, changed, stop, preen_halted, stats }))
}

/// The verdict of a round's problems.
fn outcome_of(r: &Round<'_>) -> (Outcome, Option<String>) {
    let (aborted, cancelled, reason) = match &r.stop {
        None => (false, false, None),
        Some(Stop::Abort(why)) => (true, false, Some(why.clone())),
        Some(Stop::Cancel) => (false, true, Some("cancelled".into())),
        Some(Stop::Io(e)) => (true, false, Some(e.to_string())),
    };
    let mut outcome = Report::decide(&r.problems, aborted, cancelled);
    if r.preen_halted && outcome == Outcome::Repaired {
        outcome = Outcome::ErrorsLeft;
    }
    (outcome, reason)
}

/// A shorter-lived handle on the caller's progress callback.
fn reborrow<'a>(p: &'a mut Option<&mut dyn FnMut(Progress)>) -> Option<&'a mut (dyn FnMut(Progress) + 'a)> {
    match p {
        Some(f) => Some(&mut **f),
        None => None,
    }
}

/// An informational problem about the run itself.
fn note(code: Code, detail: impl Into<String>) -> Problem {
    Problem { code, pass: Pass::Final, ino: None, block: None, group: None, detail: detail.into(), counts: false, fixed: false }
}

/// What identifies an error across rounds: its code and the inode and
/// group it is about (details and block numbers change as counts do).
type ErrorKey = (Code, Option<u32>, Option<u32>);

/// The keys of the errors among `problems`.
fn error_keys(problems: &[Problem]) -> std::collections::BTreeSet<ErrorKey> {
    problems.iter().filter(|p| matches!(p.code.severity(), Severity::Error | Severity::Fatal)).map(|p| (p.code, p.ino, p.group)).collect()
}

/// Checks the filesystem with the pending repairs: whether it has an error
/// it did not have before them (the repairs would make it worse: they are
/// then withdrawn, all of them). Returns the image back.
fn worse_than<'d, 'o>(
    img: Image<'d>,
    before: &std::collections::BTreeSet<ErrorKey>,
    now: i64,
    progress: Option<&'o mut (dyn FnMut(Progress) + 'o)>,
    cancel: Option<&'o AtomicBool>,
) -> Result<(Image<'d>, bool)> {
    Ok(match round(img, Mode::Check, now, progress, cancel)? {
        Ok(r) => {
            let worse = r.stop.is_some() || !error_keys(&r.problems).is_subset(before);
            (r.img, worse)
        }
        Err((_, img)) => (img, true),
    })
}

/// Most rounds of repairs before the check gives up on reaching a fixed point.
const MAX_ROUNDS: usize = 8;

/// Runs a check (see [`crate::check`]). In the repair modes, rounds of
/// checks and repairs run until a round repairs nothing; a last round in
/// check mode gives the verdict, and the repairs are committed (see
/// [`crate::commit`]).
pub(crate) fn run(dev: &dyn BlockDevice, mut opts: Options<'_>) -> Result<Report> {
    if opts.mode != Mode::Check && dev.is_read_only() {
        return Err(CheckError::ReadOnly);
    }
    let now = opts.now.unwrap_or_else(clock);
    let img = Image::new(dev, 1024);
    if opts.mode == Mode::Check {
        return Ok(match round(img, Mode::Check, now, opts.progress, opts.cancel)? {
            Ok(r) => {
                let (outcome, abort_reason) = outcome_of(&r);
                Report { problems: r.problems, outcome, abort_reason, stats: r.stats, used_backup_superblock: r.backup_sb }
            }
            Err((report, _)) => report,
        });
    }
    // As e2fsck: the journal is replayed before anything is repaired; if
    // it still needs recovery (it could not be replayed), or orphans wait,
    // nothing is.
    crate::commit::replay_journal(dev)?;
    if let Some(why) = crate::commit::not_repairable(dev)? {
        opts.mode = Mode::Check;
        let mut report = run(dev, opts)?;
        report.problems.insert(0, note(Code::RepairsWithdrawn, format!("nothing was repaired: {why}")));
        return Ok(report);
    }
    // What the filesystem has before any repair, to hold the repairs to.
    let baseline = match round(img, Mode::Check, now, reborrow(&mut opts.progress), opts.cancel)? {
        Ok(r) => r,
        Err((report, _)) => return Ok(report),
    };
    let before_keys = error_keys(&baseline.problems);
    let mut img = baseline.img;
    let mut fixed: Vec<Problem> = Vec::new();
    let mut preen_halted = false;
    for _ in 0..MAX_ROUNDS {
        let before = img.snapshot();
        let r = match round(img, opts.mode, now, reborrow(&mut opts.progress), opts.cancel)? {
            Ok(r) => r,
            Err((report, _)) => return Ok(report),
        };
        img = r.img;
        preen_halted |= r.preen_halted;
        match r.stop {
            Some(Stop::Cancel) => {
                let (outcome, abort_reason) = (Outcome::Cancelled, Some("cancelled".into()));
                fixed.extend(r.problems);
                return Ok(Report { problems: fixed, outcome, abort_reason, stats: r.stats, used_backup_superblock: r.backup_sb });
            }
            Some(_) => {
                // A round that stopped part way may have left its repairs
                // half done: they are dropped.
                img.restore(before);
                fixed.extend(r.problems.into_iter().map(|mut p| {
                    p.fixed = false;
                    p
                }));
                break;
            }
            None => {}
        }
        fixed.extend(r.problems.into_iter().filter(|p| p.fixed));
        if !r.changed || preen_halted {
            break;
        }
    }
    let mut withdrawn = false;
    if img.pending_count() > 0 {
        let (back, worse) = worse_than(img, &before_keys, now, reborrow(&mut opts.progress), opts.cancel)?;
        img = back;
        if worse {
            img.clear_pending();
            fixed.clear();
            withdrawn = true;
        }
    }
    let changed = img.pending_count() > 0;
    if changed {
        crate::commit::commit(&mut img, now)?;
    }
    let r = match round(img, Mode::Check, now, opts.progress, opts.cancel)? {
        Ok(r) => r,
        Err((report, _)) => return Ok(report),
    };
    let (mut outcome, abort_reason) = outcome_of(&r);
    if outcome == Outcome::Clean && changed {
        outcome = Outcome::Repaired;
    }
    if outcome == Outcome::Clean && preen_halted {
        outcome = Outcome::ErrorsLeft;
    }
    if withdrawn {
        fixed.push(note(
            Code::RepairsWithdrawn,
            "nothing was written: the repairs would have left an error the filesystem does not have now",
        ));
    }
    fixed.extend(r.problems.into_iter().filter(|p| !p.fixed));
    Ok(Report { problems: fixed, outcome, abort_reason, stats: r.stats, used_backup_superblock: r.backup_sb })
}

/// The report for a device whose every superblock copy is unusable.
fn unusable(e: crate::open::OpenErr) -> Report {
    let detail = e.describe();
    let p = Problem {
        code: Code::SbCorrupt,
        pass: Pass::Super,
        ino: None,
        block: None,
        group: None,
        detail: detail.clone(),
        counts: true,
        fixed: false,
    };
    Report {
        problems: vec![p],
        outcome: Outcome::Aborted,
        abort_reason: Some(detail),
        stats: Stats::default(),
        used_backup_superblock: None,
    }
}

//! The state a writable filesystem keeps between operations, split by
//! owner. Each part that an operation can change has a snapshot for the
//! undo of a failed operation and restores it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use ext4_ondisk::Timestamp;

use crate::orphan::{DEFAULT_STEP_BLOCKS, Deferred, OrphanRecord};

/// Dirty metadata blocks after which an operation boundary commits.
const DEFAULT_COMMIT_BLOCKS: usize = 4096;

/// State that exists only on a writable filesystem.
#[derive(Default)]
pub(crate) struct WriteState {
    /// The allocator's view of the running transaction.
    pub(crate) alloc: AllocState,
    /// Open handles, orphans and the work left for later steps.
    pub(crate) handles: Handles,
    /// Xattr blocks written in this session, by content hash, for sharing.
    pub(crate) xattr_share: crate::xattr_write::ShareCache,
    /// What the last lookups found absent.
    pub(crate) lookup: LookupMemo,
    /// Who writes, when, and how big a transaction may grow.
    pub(crate) session: Session,
}

/// The allocator's view of the running transaction.
#[derive(Default)]
pub(crate) struct AllocState {
    /// Groups whose descriptor changed: (block bitmap changed, inode bitmap changed).
    pub(crate) dirty_groups: BTreeMap<u32, (bool, bool)>,
    /// Blocks freed in the running transaction, applied at commit.
    pub(crate) pending_free: Vec<(u64, u64)>,
    /// Former metadata blocks freed in the running transaction (journal revokes).
    pub(crate) revoked: BTreeSet<u64>,
    /// Blocks allocated in the running transaction (start -> end): data
    /// written there goes straight to the device (nothing reaches it before
    /// the commit that maps it); other data blocks are journaled.
    pub(crate) fresh: BTreeMap<u64, u64>,
    /// The ranges freed by the transaction being committed (for revokes).
    pub(crate) freed_in_commit: Vec<(u64, u64)>,
    /// Bitmaps whose checksum was verified since opening: (group, is block bitmap).
    pub(crate) verified_bitmaps: HashSet<(u32, bool)>,
    /// Block ranges (start, count) the allocator must not hand out: during
    /// a fast-commit replay, the blocks its records map
    /// (`ext4_fc_replay_check_excluded`).
    pub(crate) excluded: Vec<(u64, u64)>,
    /// Source of generation numbers and directory spreading.
    pub(crate) next_generation: u32,
}

/// What an operation may change in [`AllocState`], as it was before.
pub(crate) struct AllocSnapshot {
    dirty_groups: BTreeMap<u32, (bool, bool)>,
    pending_free: usize,
    revoked: BTreeSet<u64>,
}

impl AllocState {
    /// Records blocks `start..start + len` as allocated in the running transaction.
    pub(crate) fn add_fresh(&mut self, start: u64, len: u64) {
        self.fresh.insert(start, start + len);
    }

    /// Whether `block` was allocated in the running transaction.
    pub(crate) fn is_fresh(&self, block: u64) -> bool {
        self.fresh.range(..=block).next_back().is_some_and(|(_, &end)| block < end)
    }

    /// The state an operation may change. (Blocks it allocated stay
    /// "fresh" after an undo: the set only decides how data is written.)
    pub(crate) fn snapshot(&self) -> AllocSnapshot {
        AllocSnapshot { dirty_groups: self.dirty_groups.clone(), pending_free: self.pending_free.len(), revoked: self.revoked.clone() }
    }

    /// Puts back what [`AllocState::snapshot`] saved.
    pub(crate) fn restore(&mut self, s: AllocSnapshot) {
        self.dirty_groups = s.dirty_groups;
        self.pending_free.truncate(s.pending_free);
        self.revoked = s.revoked;
    }
}

/// Open handles, orphans and the work left for later steps.
pub(crate) struct Handles {
    /// Unlinked inodes kept alive by an open handle: freed when the last
    /// handle is released.
    pub(crate) orphans: HashSet<u32>,
    /// Handle counts of open inodes.
    pub(crate) open: HashMap<u32, u64>,
    /// Inodes with an orphan record on disk, and where it is.
    pub(crate) orphan_records: HashMap<u32, OrphanRecord>,
    /// Work an operation left to be done in steps after it.
    pub(crate) deferred: Vec<Deferred>,
    /// Blocks freed per transaction by big truncates and deletes.
    pub(crate) step_blocks: u64,
}

impl Default for Handles {
    fn default() -> Self {
        Self {
            orphans: HashSet::new(),
            open: HashMap::new(),
            orphan_records: HashMap::new(),
            deferred: Vec::new(),
            step_blocks: DEFAULT_STEP_BLOCKS,
        }
    }
}

/// What an operation may change in [`Handles`], as it was before.
pub(crate) struct HandlesSnapshot {
    orphans: HashSet<u32>,
    orphan_records: HashMap<u32, OrphanRecord>,
    deferred: usize,
}

impl Handles {
    /// Whether `ino` is an orphan kept alive by an open handle.
    pub(crate) fn is_orphan_or_open(&self, ino: u32) -> bool {
        self.orphans.contains(&ino) || self.open.contains_key(&ino)
    }

    /// The state an operation may change (handle counts change only
    /// between operations).
    pub(crate) fn snapshot(&self) -> HandlesSnapshot {
        HandlesSnapshot { orphans: self.orphans.clone(), orphan_records: self.orphan_records.clone(), deferred: self.deferred.len() }
    }

    /// Puts back what [`Handles::snapshot`] saved.
    pub(crate) fn restore(&mut self, s: HandlesSnapshot) {
        self.orphans = s.orphans;
        self.orphan_records = s.orphan_records;
        self.deferred.truncate(s.deferred);
    }
}

/// What the last lookups found absent: a create of a name right after a
/// lookup missed it (FUSE sends LOOKUP, then MKNOD) needs no second search
/// of the directory.
#[derive(Default)]
pub(crate) struct LookupMemo {
    /// Operations finished (committed or undone) since opening: what a
    /// lookup saw stays true while this is unchanged.
    pub(crate) ops_done: u64,
    /// The last name a lookup found absent: (`ops_done` then, directory, name).
    absent: std::sync::Mutex<Option<(u64, u32, Vec<u8>)>>,
}

impl LookupMemo {
    /// Remembers that a lookup found no `name` in `dir`.
    pub(crate) fn note_absent(&self, dir: u32, name: &[u8]) {
        *self.absent.lock().unwrap_or_else(|e| e.into_inner()) = Some((self.ops_done, dir, name.to_vec()));
    }

    /// Whether a lookup found no `name` in `dir` and no operation has
    /// finished since (the operation in progress has changed nothing yet
    /// when it asks first).
    pub(crate) fn known_absent(&self, dir: u32, name: &[u8]) -> bool {
        let memo = self.absent.lock().unwrap_or_else(|e| e.into_inner());
        memo.as_ref().is_some_and(|(at, d, n)| *at == self.ops_done && *d == dir && n == name)
    }
}

/// Who writes, when, and how big a transaction may grow: set by the user
/// of the filesystem, never changed by an operation.
pub(crate) struct Session {
    /// Who performs the operations.
    pub(crate) caller: crate::caller::Caller,
    /// A fixed time for every timestamp (reproducible images), else the clock.
    pub(crate) fixed_time: Option<Timestamp>,
    /// Commit once this many metadata blocks are dirty.
    pub(crate) commit_blocks: usize,
    /// Whether file data blocks are held in the block cache (journaled
    /// overwrites): data reads then look there first.
    pub(crate) data_cached: bool,
}

impl Default for Session {
    fn default() -> Self {
        Self { caller: crate::caller::Caller::root(), fixed_time: None, commit_blocks: DEFAULT_COMMIT_BLOCKS, data_cached: false }
    }
}

//! Changing an unmounted filesystem's parameters, as tune2fs does
//! (`ext4 tune`): superblock fields (label, UUID, error behaviour,
//! reserved blocks and their owners, mount counts, check interval and
//! time, default and extended mount options, RAID hints, hash algorithm)
//! and the features tune2fs changes offline: the journal and the orphan
//! file added or removed, `metadata_csum` on or off with every checksum of
//! every structure rewritten, `metadata_csum_seed`, `uninit_bg`,
//! `dir_index`, and the flags that need no other change.
//!
//! The steps run in tune2fs' order (fields, `-o`, `-O`, `-E`, journal,
//! orphan file, UUID, checksums) on a filesystem opened in bulk mode:
//! every block goes home directly, as tune2fs writes it, because a change
//! through the journal would move the journal's sequence and features,
//! and because a checksum rewrite touches every metadata block. Such a
//! rewrite is not atomic (nor is tune2fs'): the superblock on the device
//! is marked not clean first, so that a crash midway leaves a filesystem
//! that asks for e2fsck. At the end the primary superblock, every backup
//! superblock and, when descriptors changed, every descriptor copy are
//! written as `ext2fs_flush` writes them.
//!
//! Where tune2fs leaves a filesystem e2fsck complains about, this does
//! more: `^dir_index` clears the htree flag of every directory, and
//! checksum changes rewrite the orphan file's block tails too.

mod alloc;
mod csum;
mod dirblocks;
mod features;
mod fields;
mod flush;
mod journal;
mod mmp;
mod orphan_file;
mod raw;
mod uninit;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ext4_blockdev::{BlockDevice, FileDevice};
use ext4_ondisk::superblock::{CsumKind, Geometry, STATE_ERROR, STATE_VALID};

pub use alloc::random_uuid;
pub use features::{FeatureEditError, edit_features, edit_mount_options};

use crate::error::{Error, Location, Result};
use crate::fs::{Filesystem, OpenOptions};

/// The size of a journal to add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalSize {
    /// mke2fs' default for the filesystem's size (`-j`).
    Default,
    /// This many MiB (`-J size=`).
    Mib(u64),
}

/// What to change (each `None` or `false` leaves that part alone), named
/// after tune2fs' options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tune {
    /// `-c`: mounts allowed before a check (-1: no limit).
    pub max_mount_count: Option<i16>,
    /// `-C`: the mount count.
    pub mount_count: Option<u16>,
    /// `-e`: behaviour on errors (1 continue, 2 remount read-only, 3 panic).
    pub errors: Option<u16>,
    /// `-g`: the group that may use the reserved blocks.
    pub reserved_gid: Option<u16>,
    /// `-i`: seconds between checks.
    pub check_interval: Option<u64>,
    /// `-m`: reserved blocks as a percentage of all blocks (0 to 50).
    pub reserved_percent: Option<f64>,
    /// `-r`: reserved blocks (at most half the blocks).
    pub reserved_blocks: Option<u64>,
    /// `-T`: when the filesystem was last checked (seconds since the epoch).
    pub last_checked: Option<i64>,
    /// `-u`: the user who may use the reserved blocks.
    pub reserved_uid: Option<u16>,
    /// `-L`: the volume label (at most 16 bytes; longer is cut, with a note).
    pub label: Option<Vec<u8>>,
    /// `-M`: the directory where last mounted (at most 64 bytes).
    pub last_mounted: Option<Vec<u8>>,
    /// `-o`: default mount options to set or (`^name`) clear.
    pub default_mount_options: Option<String>,
    /// `-O`: features to set or (`^name`) clear.
    pub features: Option<String>,
    /// `-E hash_alg=`: the default directory hash (0 legacy, 1 half_md4, 2 tea).
    pub hash_alg: Option<u8>,
    /// `-E mount_opts=`: the extended mount options string (under 64 bytes).
    pub mount_opts: Option<Vec<u8>>,
    /// `-E stride=`.
    pub raid_stride: Option<u16>,
    /// `-E stripe_width=`.
    pub raid_stripe_width: Option<u32>,
    /// `-E test_fs` (true) or `^test_fs` (false).
    pub test_fs: Option<bool>,
    /// `-E force_fsck`: mark the filesystem as having errors.
    pub force_fsck: bool,
    /// `-E mmp_update_interval=` (0: the default of 5 s).
    pub mmp_update_interval: Option<u16>,
    /// `-E clear_mmp` (with `force`): write a fresh, clean MMP block, for
    /// a filesystem left held by a node that is gone; nothing after the
    /// fields and options changes then, as in tune2fs.
    pub clear_mmp: bool,
    /// `-j`, `-J size=`: add a journal.
    pub journal: Option<JournalSize>,
    /// `-E orphan_file_size=`: (re)create the orphan file with this many blocks.
    pub orphan_file_blocks: Option<u64>,
    /// `-U`: the new UUID (the caller makes a random or time-based one).
    pub uuid: Option<[u8; 16]>,
    /// `-f`: change a filesystem that was not freshly checked, and skip
    /// multi-mount protection.
    pub force: bool,
}

/// Which check a change leaves the filesystem asking for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckRequest {
    /// `e2fsck -f` (the filesystem is marked not clean).
    Full,
    /// `e2fsck -fD`: directories must be rebuilt (not clean).
    Directories,
}

/// What a tune did besides what was asked.
#[derive(Debug, Clone, Default)]
pub struct Tuned {
    /// What happened along the way, one line each, as tune2fs says it.
    pub notes: Vec<String>,
    /// The check the filesystem now asks for, if any.
    pub check: Option<CheckRequest>,
}

/// Changes the filesystem in the image or device at `path` as `t` says.
pub fn tune_path(path: impl AsRef<Path>, t: &Tune) -> Result<Tuned> {
    tune(FileDevice::open(path, false)?, t)
}

/// Changes the filesystem on `dev` as `t` says, in tune2fs' order.
pub fn tune(dev: impl BlockDevice + 'static, t: &Tune) -> Result<Tuned> {
    if t.clear_mmp && !t.force {
        return Err(Error::InvalidArgument("clear_mmp must be used with force (-f)".into()));
    }
    let (sb, geo) = crate::fs::read_superblock(&dev)?;
    let writable = geo.features.unsupported_incompat().is_empty() && geo.features.unwritable_ro_compat().is_empty();
    if !writable && !geo.features.incompat.contains(ext4_ondisk::Incompat::JOURNAL_DEV) && raw::superblock_only(t, &sb) {
        return raw::tune_superblock(&dev, t);
    }
    let written = Arc::new(AtomicU64::new(0));
    let dev = Counted { inner: dev, written: written.clone() };
    let opts = OpenOptions { bulk: true, ..OpenOptions::read_write() };
    let mut fs = Filesystem::open(dev, opts)?;
    if !t.force {
        fs.mmp = crate::mmp::start(&fs)?;
    }
    let mut s = Session::new(fs, t, written);
    if let Err(e) = s.run() {
        // Nothing more goes to the device: what is only in memory is dropped.
        s.fs.read_only_reason = Some(format!("tune failed: {e}"));
        return Err(e);
    }
    s.finish()
}

/// A device that counts the bytes written through it (for `s_kbytes_written`).
struct Counted<D> {
    inner: D,
    written: Arc<AtomicU64>,
}

impl<D: BlockDevice> BlockDevice for Counted<D> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> ext4_blockdev::Result<()> {
        self.inner.read_at(offset, buf)
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> ext4_blockdev::Result<()> {
        self.written.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.inner.write_at(offset, buf)
    }

    fn flush(&self) -> ext4_blockdev::Result<()> {
        self.inner.flush()
    }

    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn sector_size(&self) -> u32 {
        self.inner.sector_size()
    }

    fn is_read_only(&self) -> bool {
        self.inner.is_read_only()
    }

    fn write_zeroes(&self, offset: u64, len: u64) -> ext4_blockdev::Result<()> {
        self.written.fetch_add(len, Ordering::Relaxed);
        self.inner.write_zeroes(offset, len)
    }

    fn discard(&self, offset: u64, len: u64) -> ext4_blockdev::Result<()> {
        self.inner.discard(offset, len)
    }
}

/// Which inodes a checksum rewrite covers (tune2fs' `REWRITE_*` flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Rewrite {
    /// EA inodes (their value hashes).
    pub(crate) ea: bool,
    /// Directories.
    pub(crate) dirs: bool,
    /// Every other inode.
    pub(crate) others: bool,
}

impl Rewrite {
    /// Every inode.
    pub(crate) const ALL: Rewrite = Rewrite { ea: true, dirs: true, others: true };

    fn any(self) -> bool {
        self.ea || self.dirs || self.others
    }

    fn merge(&mut self, o: Rewrite) {
        self.ea |= o.ea;
        self.dirs |= o.dirs;
        self.others |= o.others;
    }
}

/// The checksum scheme the filesystem had when opened.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OldCsum {
    pub(crate) kind: CsumKind,
    pub(crate) seed: u32,
}

/// A tune in progress.
pub(crate) struct Session<'t> {
    pub(crate) fs: Filesystem,
    pub(crate) t: &'t Tune,
    pub(crate) out: Tuned,
    /// Descriptors changed: every copy is written at the end (tune2fs
    /// clearing `EXT2_FLAG_SUPER_ONLY`).
    pub(crate) descs_changed: bool,
    /// The checksum rewrite the changes call for.
    pub(crate) rewrite: Rewrite,
    /// The scheme to verify existing checksums with.
    pub(crate) old: OldCsum,
    /// Blocks of a journal to add (from `-j`, `-J` or `-O has_journal`).
    pub(crate) journal_blocks: Option<JournalSize>,
    /// Blocks of an orphan file to create.
    pub(crate) orphan_file_blocks: Option<u64>,
    /// `dir_index` went without checksums: directories lose their htree flag.
    pub(crate) clear_index_flags: bool,
    /// `filetype` went on (true) or off: directory entries follow.
    pub(crate) entry_types: Option<bool>,
    /// Whether the on-disk superblock was marked not clean for a long change.
    marked_busy: bool,
    /// Whether anything is to be written (an edit that changes nothing
    /// writes nothing, as tune2fs).
    pub(crate) dirty: bool,
    /// Bytes written to the device so far.
    written: Arc<AtomicU64>,
    /// The state to leave behind (`s_state` before the busy mark).
    final_state: u16,
}

impl<'t> Session<'t> {
    fn new(fs: Filesystem, t: &'t Tune, written: Arc<AtomicU64>) -> Self {
        let old = OldCsum { kind: fs.geo.csum, seed: fs.geo.csum_seed };
        let final_state = fs.sb.s_state.get();
        Self {
            fs,
            t,
            out: Tuned::default(),
            descs_changed: false,
            rewrite: Rewrite::default(),
            old,
            journal_blocks: t.journal,
            orphan_file_blocks: None,
            clear_index_flags: false,
            entry_types: None,
            marked_busy: false,
            final_state,
            // A feature edit that changes nothing writes nothing (tune2fs
            // leaves the superblock unmarked).
            dirty: *t != Tune { features: t.features.clone(), force: t.force, ..Tune::default() },
            written,
        }
    }

    /// The steps, in tune2fs' order.
    fn fields(&mut self) -> fields::Fields<'_> {
        fields::Fields { sb: &mut self.fs.sb, t: self.t, notes: &mut self.out.notes }
    }

    fn run(&mut self) -> Result<()> {
        self.fields().set_fields()?;
        if let Some(spec) = &self.t.default_mount_options {
            let opts =
                edit_mount_options(self.fs.sb.s_default_mount_opts.get(), spec).map_err(|e| Error::InvalidArgument(e.to_string()))?;
            self.fs.sb.s_default_mount_opts.set(opts);
        }
        if let Some(spec) = &self.t.features {
            self.update_features(spec)?;
        }
        if let Some(n) = self.fields().set_extended()? {
            self.orphan_file_blocks = Some(n);
        }
        if self.t.clear_mmp {
            return self.clear_mmp();
        }
        if let Some(size) = self.journal_blocks {
            self.add_journal(size)?;
        }
        if let Some(blocks) = self.orphan_file_blocks {
            self.create_orphan_file(blocks)?;
        }
        if let Some(uuid) = self.t.uuid {
            self.set_uuid(uuid)?;
        }
        if self.rewrite.any() {
            self.rewrite_checksums(self.rewrite)?;
        }
        if self.clear_index_flags {
            self.clear_htree_flags()?;
        }
        if let Some(on) = self.entry_types {
            self.refresh_geometry(false)?;
            self.set_entry_types(on)?;
        }
        self.fields().set_late_fields();
        Ok(())
    }

    /// Requests a check afterwards, marking the filesystem not clean
    /// (`request_fsck_afterwards`, `request_dir_fsck_afterwards`).
    pub(crate) fn request_check(&mut self, what: CheckRequest) {
        self.final_state &= !STATE_VALID;
        self.fs.sb.s_state.set(self.fs.sb.s_state.get() & !STATE_VALID);
        if self.out.check != Some(CheckRequest::Directories) {
            self.out.check = Some(what);
        }
    }

    /// Refuses a change that needs a freshly checked filesystem
    /// (`check_fsck_needed`), unless forced.
    pub(crate) fn require_checked(&self, what: &str) -> Result<()> {
        let sb = &self.fs.sb;
        let state = sb.s_state.get();
        let fresh = state & STATE_VALID != 0 && state & STATE_ERROR == 0 && sb.s_lastcheck.get() >= sb.s_mtime.get();
        if fresh || self.t.force {
            return Ok(());
        }
        Err(Error::InvalidArgument(format!("{what} requires a freshly checked filesystem: run e2fsck -f first (or force the change)")))
    }

    /// Marks the superblock on the device not clean before a change that
    /// rewrites many blocks, so that a crash midway asks for a check.
    pub(crate) fn mark_busy(&mut self) -> Result<()> {
        if self.marked_busy {
            return Ok(());
        }
        self.fs.patch_superblock_on_disk(|sb| sb.s_state.set(sb.s_state.get() & !STATE_VALID))?;
        // Commits along the way write the in-memory copy: not clean either.
        self.fs.sb.s_state.set(self.fs.sb.s_state.get() & !STATE_VALID);
        self.marked_busy = true;
        Ok(())
    }

    /// Recomputes the geometry from the superblock, keeping the checksum
    /// scheme of `old` until the rewrite switches to the new one.
    pub(crate) fn refresh_geometry(&mut self, keep_old_csum: bool) -> Result<()> {
        let mut geo = Geometry::new(&self.fs.sb).map_err(|e| Error::format(&e, Location::Superblock))?;
        if keep_old_csum {
            geo.csum = self.old.kind;
            geo.csum_seed = self.old.seed;
        }
        self.fs.geo = geo;
        Ok(())
    }

    /// `s_kbytes_written` as `ext2fs_close2` counts it: what was written
    /// before the superblock and descriptors (here: so far, and the dirty
    /// blocks about to be), plus with descriptors the table and the
    /// superblock; nothing when nothing was written, or when the count is
    /// unknown (0).
    fn count_writes(&mut self) {
        if self.fs.sb.s_kbytes_written.get() == 0 {
            return;
        }
        let geo = &self.fs.geo;
        let bs = u64::from(geo.block_size);
        let table = geo.superblock_block()..=geo.superblock_block() + u64::from(geo.gdt_blocks());
        let dirty = self.fs.cache().dirty_count() as u64;
        // The superblock's block and the table are counted below, not here.
        let pending = dirty.saturating_sub(1 + u64::from(self.descs_changed) * u64::from(geo.gdt_blocks())) * bs;
        let bytes = self.written.load(Ordering::Relaxed) + pending;
        if bytes == 0 {
            return;
        }
        let mut kb = bytes >> 10;
        if self.descs_changed {
            kb += (table.count() as u64) / (bs / 1024);
        }
        let sb = &mut self.fs.sb;
        sb.s_kbytes_written.set(sb.s_kbytes_written.get() + kb);
    }

    /// `-U`: a new UUID. Without `metadata_csum_seed`, checksums seeded
    /// from the UUID (`metadata_csum`, EA inode hashes) are all rewritten;
    /// descriptors whose checksums were right get new ones.
    fn set_uuid(&mut self, uuid: [u8; 16]) -> Result<()> {
        let f = self.fs.sb.features();
        if f.compat.contains(ext4_ondisk::Compat::STABLE_INODES) {
            return Err(Error::InvalidArgument("the UUID cannot change: the filesystem has the stable_inodes feature".into()));
        }
        let seeded_by_uuid = !f.incompat.contains(ext4_ondisk::Incompat::CSUM_SEED);
        if seeded_by_uuid
            && (f.ro_compat.contains(ext4_ondisk::RoCompat::METADATA_CSUM) || f.incompat.contains(ext4_ondisk::Incompat::EA_INODE))
        {
            self.require_checked("setting the UUID of a filesystem with checksums")?;
            self.rewrite.merge(Rewrite::ALL);
        }
        if self.fs.geo.has_group_csum() {
            let descs = self.fs.stored_group_descs()?;
            if descs.iter().all(|(d, expected)| d.checksum == *expected) {
                self.descs_changed = true;
            }
        }
        self.fs.sb.s_uuid = uuid;
        Ok(())
    }

    /// Writes everything out: the superblock with its final state, the
    /// changed descriptors, then every backup, and closes.
    fn finish(mut self) -> Result<Tuned> {
        if !self.dirty {
            self.fs.close()?;
            return Ok(self.out);
        }
        self.refresh_geometry(false)?;
        self.count_writes();
        self.fs.sb.s_state.set(self.final_state | (self.fs.sb.s_state.get() & STATE_ERROR));
        let all_groups = self.descs_changed;
        self.fs.op_without_undo(|t| {
            if all_groups {
                for g in 0..t.geo.group_count {
                    t.mark_group_dirty(g, false, false);
                }
            }
            t.flush_superblock()
        })?;
        self.fs.commit()?;
        flush::write_backups(&mut self.fs, self.descs_changed)?;
        self.fs.close()?;
        Ok(self.out)
    }
}

//! [`Filesystem`]: opening a device, validating its superblock and group
//! descriptors, and reading metadata blocks through the cache.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use ext4_blockdev::{BlockDevice, FileDevice};
use ext4_ondisk::features::{FeatureSet, feature_name};
use ext4_ondisk::group_desc::{GroupDesc, verify_group_desc};
use ext4_ondisk::superblock::{Geometry, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, Superblock};
use ext4_ondisk::{Incompat, Structure};

use crate::cache::BlockCache;
use crate::error::{Error, Location, Result};
use crate::journal::{JournalOpen, JournalState};

/// How to open a filesystem.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Open for writing (the device must be writable).
    pub write: bool,
    /// Replay the journal if it needs recovery. Without replay, a filesystem
    /// that needs recovery is opened read-only and reads see the journal's
    /// newest committed copies of metadata blocks.
    pub replay_journal: bool,
    /// Verify metadata checksums on every read.
    pub verify_checksums: bool,
    /// Clean metadata blocks kept in memory.
    pub cache_blocks: usize,
    /// Filling a fresh image (`mkfs -d`): commits go home without the
    /// journal, as mke2fs writes, and operations keep no undo copies. A
    /// crash, or an operation that fails, leaves an image to be discarded:
    /// after a failure the filesystem turns read-only.
    pub bulk: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self { write: false, replay_journal: true, verify_checksums: true, cache_blocks: 8192, bulk: false }
    }
}

impl OpenOptions {
    /// Options for a read-only open.
    pub fn read_only() -> Self {
        Self::default()
    }

    /// Options for a read-write open.
    pub fn read_write() -> Self {
        Self { write: true, ..Self::default() }
    }
}

/// An open ext2/ext3/ext4 filesystem.
pub struct Filesystem {
    pub(crate) dev: Box<dyn BlockDevice>,
    pub(crate) sb: Superblock,
    pub(crate) geo: Geometry,
    pub(crate) groups: Vec<GroupDesc>,
    pub(crate) cache: Mutex<BlockCache>,
    pub(crate) opts: OpenOptions,
    pub(crate) journal: JournalState,
    /// Why the filesystem is read-only, if it is.
    pub(crate) read_only_reason: Option<String>,
    pub(crate) write: crate::txn::WriteState,
    /// The host file behind the device, when opened with [`Filesystem::open_path`].
    pub(crate) host_file: Option<std::fs::File>,
    /// The multi-mount protection block a writable open holds.
    pub(crate) mmp: Option<crate::mmp::Mmp>,
}

impl std::fmt::Debug for Filesystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filesystem").field("geometry", &self.geo).finish_non_exhaustive()
    }
}

/// Reads and validates the primary superblock of `dev`.
pub fn read_superblock(dev: &dyn BlockDevice) -> Result<(Superblock, Geometry)> {
    let mut buf = vec![0u8; SUPERBLOCK_SIZE];
    if dev.len() < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE as u64 {
        return Err(Error::InvalidArgument(format!("device of {} bytes is too small to hold a filesystem", dev.len())));
    }
    dev.read_at(SUPERBLOCK_OFFSET, &mut buf)?;
    let sb = Superblock::from_bytes(&buf).map_err(|e| Error::format(&e, Location::Superblock))?;
    if sb.s_magic.get() == ext4_ondisk::superblock::EXT4_MAGIC && sb.features().incompat.contains(Incompat::JOURNAL_DEV) {
        return Err(Error::Unsupported("this is an external journal device, not a filesystem".into()));
    }
    let geo = Geometry::new(&sb).map_err(|e| Error::format(&e, Location::Superblock))?;
    Ok((sb, geo))
}

impl Filesystem {
    /// Opens the image file or device at `path`.
    pub fn open_path(path: impl AsRef<Path>, opts: OpenOptions) -> Result<Self> {
        let dev = FileDevice::open(path, !opts.write)?;
        let host = dev.file().try_clone().ok();
        let mut fs = Self::open(dev, opts)?;
        fs.host_file = host;
        Ok(fs)
    }

    /// Opens the image file or device at `path` whose journal is on the
    /// external journal device (or image) at `journal`.
    pub fn open_path_with_journal(path: impl AsRef<Path>, journal: impl AsRef<Path>, opts: OpenOptions) -> Result<Self> {
        let dev = FileDevice::open(path, !opts.write)?;
        let host = dev.file().try_clone().ok();
        let jdev = FileDevice::open(journal, !opts.write)?;
        let mut fs = Self::open_with_journal(dev, jdev, opts)?;
        fs.host_file = host;
        Ok(fs)
    }

    /// Opens the filesystem on `dev`: validates the superblock, refuses
    /// unsupported incompat features (naming them), opens read-only when
    /// ro_compat features cannot be written, loads and checks the group
    /// descriptors, takes the multi-mount protection block of an `mmp`
    /// filesystem for a writable open (waiting its check interval, about
    /// 11 s, and refusing with [`crate::Error::Busy`] if another node uses
    /// it; not for [`OpenOptions::bulk`]), and replays the journal if needed.
    pub fn open(dev: impl BlockDevice + 'static, opts: OpenOptions) -> Result<Self> {
        Self::open_with(Box::new(dev), None, opts, JournalOpen::Normal)
    }

    /// [`Filesystem::open`] for a filesystem whose journal is on an
    /// external journal device (`mke2fs -J device=`): `journal` must be the
    /// journal device the filesystem names (`s_journal_uuid`), of its block
    /// size and used by it alone, as the kernel checks. Replay and every
    /// journaled commit go through it. A filesystem with an external
    /// journal opened without it can only be read (a log that needs
    /// recovery is then not seen: [`Filesystem::journal_ignored`]).
    pub fn open_with_journal(dev: impl BlockDevice + 'static, journal: impl BlockDevice + 'static, opts: OpenOptions) -> Result<Self> {
        Self::open_with(Box::new(dev), Some(Box::new(journal)), opts, JournalOpen::Normal)
    }

    /// [`Filesystem::open`], with the journal (on `journal`, if external)
    /// treated as `mode` says.
    pub(crate) fn open_with(
        dev: Box<dyn BlockDevice>,
        journal: Option<Box<dyn BlockDevice>>,
        opts: OpenOptions,
        mode: JournalOpen,
    ) -> Result<Self> {
        let (sb, geo) = read_superblock(&*dev)?;
        if opts.verify_checksums {
            sb.verify_checksum().map_err(|e| Error::format(&e, Location::Superblock))?;
        }
        let features = geo.features;
        let unsupported = features.unsupported_incompat();
        if !unsupported.is_empty() && mode != JournalOpen::Inspect {
            let names: Vec<String> = bits(unsupported.bits()).map(|b| feature_name(FeatureSet::Incompat, b)).collect();
            return Err(Error::Unsupported(format!("incompatible feature(s): {}", names.join(", "))));
        }
        let fs_bytes = geo.blocks_count.saturating_mul(u64::from(geo.block_size));
        if dev.len() < fs_bytes {
            return Err(Error::InvalidArgument(format!(
                "the filesystem has {} blocks of {} bytes but the device holds only {} bytes",
                geo.blocks_count,
                geo.block_size,
                dev.len()
            )));
        }
        let mut read_only_reason = None;
        let unwritable = features.unwritable_ro_compat();
        if !unwritable.is_empty() {
            let names: Vec<String> = bits(unwritable.bits()).map(|b| feature_name(FeatureSet::RoCompat, b)).collect();
            read_only_reason = Some(format!("read-only feature(s): {}", names.join(", ")));
        }
        if !opts.write {
            read_only_reason.get_or_insert_with(|| "opened read-only".into());
        } else if dev.is_read_only() {
            return Err(Error::ReadOnly);
        } else if let Some(r) = &read_only_reason {
            return Err(Error::Unsupported(format!("cannot write: {r}")));
        }
        if opts.write && journal.as_ref().is_some_and(|j| j.is_read_only()) {
            return Err(Error::ReadOnly);
        }
        let external = journal.map(|j| crate::journal_dev::attach(&sb, geo.block_size, j)).transpose()?;
        let cache = Mutex::new(BlockCache::new(opts.cache_blocks));
        let mut fs = Self {
            dev,
            sb,
            geo,
            groups: Vec::new(),
            cache,
            opts,
            journal: JournalState::default(),
            read_only_reason,
            write: Default::default(),
            host_file: None,
            mmp: None,
        };
        fs.journal.external = external;
        fs.groups = fs.load_groups()?;
        // Before anything is written (the journal's replay included).
        if fs.is_writable() && !fs.opts.bulk {
            fs.mmp = crate::mmp::start(&fs)?;
        }
        crate::journal::open_journal(&mut fs, mode)?;
        if fs.is_writable() && mode == JournalOpen::Normal {
            crate::txn::start(&mut fs)?;
            fs.process_orphans()?;
        }
        Ok(fs)
    }

    /// Reads and validates every group descriptor.
    pub(crate) fn load_groups(&self) -> Result<Vec<GroupDesc>> {
        let geo = &self.geo;
        let ds = geo.desc_size as usize;
        let mut groups = Vec::with_capacity(geo.group_count as usize);
        let mut current_block = u64::MAX;
        let mut block = Vec::new();
        for g in 0..geo.group_count {
            let b = geo.group_desc_block(g);
            if b != current_block {
                block = self.read_meta(b, |d| d.to_vec())?;
                current_block = b;
            }
            let off = (g % geo.descs_per_block) as usize * ds;
            let raw = &block[off..off + ds];
            if self.opts.verify_checksums {
                verify_group_desc(geo, g, raw).map_err(|e| Error::format(&e, Location::Group(g)))?;
            }
            let gd = GroupDesc::parse(raw, ds).map_err(|e| Error::format(&e, Location::Group(g)))?;
            self.check_group(g, &gd)?;
            groups.push(gd);
        }
        Ok(groups)
    }

    /// Checks that a group's bitmaps and inode table lie inside the
    /// filesystem (`ext4_check_descriptors`).
    fn check_group(&self, g: u32, gd: &GroupDesc) -> Result<()> {
        let geo = &self.geo;
        let first = u64::from(geo.first_data_block);
        let last = geo.blocks_count;
        let bad = |what: &str, v: u64| {
            Err(Error::corrupt(Structure::GroupDesc, Location::Group(g), format!("{what} {v} outside the filesystem")))
        };
        if gd.block_bitmap < first || gd.block_bitmap >= last {
            return bad("block bitmap", gd.block_bitmap);
        }
        if gd.inode_bitmap < first || gd.inode_bitmap >= last {
            return bad("inode bitmap", gd.inode_bitmap);
        }
        if gd.inode_table < first || gd.inode_table + u64::from(geo.inode_table_blocks) > last {
            return bad("inode table", gd.inode_table);
        }
        Ok(())
    }

    /// The validated geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    /// The superblock as currently in memory.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// The group descriptors as currently in memory.
    pub fn group_descs(&self) -> &[GroupDesc] {
        &self.groups
    }

    /// Whether writes are allowed.
    pub fn is_writable(&self) -> bool {
        self.read_only_reason.is_none()
    }

    /// Why the filesystem is read-only, if it is.
    pub fn read_only_reason(&self) -> Option<&str> {
        self.read_only_reason.as_deref()
    }

    /// The device.
    pub fn device(&self) -> &dyn BlockDevice {
        &*self.dev
    }

    /// The image file or device node the filesystem was opened from with
    /// [`Filesystem::open_path`] (device offset = file offset), for copies
    /// that bypass the library's reads, such as [`crate::DataRun::Device`]
    /// runs through `copy_file_range`. `None` for other devices.
    pub fn host_file(&self) -> Option<&std::fs::File> {
        self.host_file.as_ref()
    }

    pub(crate) fn cache(&self) -> MutexGuard<'_, BlockCache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the superblock as last written to the device (not the
    /// running transaction's copy) in place: one sector, then a flush.
    pub(crate) fn patch_superblock_on_disk(&self, f: impl FnOnce(&mut Superblock)) -> Result<()> {
        let (mut sb, _) = read_superblock(&*self.dev)?;
        f(&mut sb);
        sb.update_checksum();
        self.dev.write_at(SUPERBLOCK_OFFSET, zerocopy::IntoBytes::as_bytes(&sb))?;
        self.dev.flush()?;
        Ok(())
    }

    /// Changes feature bits at once, in memory and on the device: for the
    /// flags that live outside transactions (`needs_recovery`, `orphan_present`).
    pub(crate) fn change_features_now(&mut self, f: impl Fn(&mut ext4_ondisk::features::FeatureWords)) -> Result<()> {
        let mut w = self.sb.features();
        f(&mut w);
        self.sb.set_features(w);
        self.geo.features = w;
        self.patch_superblock_on_disk(|sb| {
            let mut w = sb.features();
            f(&mut w);
            sb.set_features(w);
        })
    }

    /// Drops every cached block (only clean ones may be cached: used at open,
    /// after the journal replay changed the device underneath).
    pub(crate) fn reset_cache(&mut self) {
        let cap = self.opts.cache_blocks;
        self.cache = Mutex::new(BlockCache::new(cap));
    }

    pub(crate) fn block_size(&self) -> usize {
        self.geo.block_size as usize
    }

    /// Calls `f` with metadata block `block`, read through the cache (and,
    /// for a read-only open of a journal needing recovery, through the
    /// journal's newest committed copy).
    pub(crate) fn read_meta<R>(&self, block: u64, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        if block >= self.geo.blocks_count {
            return Err(Error::corrupt(Structure::Superblock, Location::Block(block), "block number beyond the end of the filesystem"));
        }
        let mut cache = self.cache();
        if let Some(data) = cache.get(block) {
            return Ok(f(data));
        }
        let mut buf = vec![0u8; self.block_size()].into_boxed_slice();
        if !self.journal.read_overlay(&*self.dev, self.geo.block_size, block, &mut buf)? {
            self.dev.read_at(block * u64::from(self.geo.block_size), &mut buf)?;
        }
        Ok(f(cache.insert_clean(block, buf)))
    }

    /// Copies metadata block `block` into `buf`.
    pub(crate) fn read_meta_into(&self, block: u64, buf: &mut [u8]) -> Result<()> {
        self.read_meta(block, |d| buf.copy_from_slice(d))
    }

    /// Whether file data on the device is the newest: no journal copies
    /// to read instead (a journal not replayed) and no journaled data
    /// overwrites waiting in the cache.
    pub(crate) fn device_data_current(&self) -> bool {
        !self.journal.has_overlay() && !self.write.session.data_cached
    }

    /// Checks that `count` data blocks from `block` lie inside the filesystem.
    pub(crate) fn check_data_range(&self, block: u64, count: u64) -> Result<()> {
        if block.checked_add(count).is_none_or(|end| end > self.geo.blocks_count) {
            return Err(Error::corrupt(Structure::ExtentNode, Location::Block(block), "data block beyond the end of the filesystem"));
        }
        Ok(())
    }

    /// Reads file data starting `offset` bytes into device block `block`,
    /// straight from the device (not through the cache).
    pub(crate) fn read_data(&self, block: u64, offset: u64, buf: &mut [u8]) -> Result<()> {
        let bs = u64::from(self.geo.block_size);
        self.check_data_range(block, (offset + buf.len() as u64).div_ceil(bs))?;
        if self.device_data_current() {
            self.dev.read_at(block * bs + offset, buf)?;
            return Ok(());
        }
        // Slow path, block by block, so that the journal's copies are honoured.
        let mut pos = block * bs + offset;
        let mut done = 0;
        while done < buf.len() {
            let (b, o) = (pos / bs, pos % bs);
            let n = ((bs - o) as usize).min(buf.len() - done);
            let mut whole = vec![0u8; bs as usize];
            // Journaled overwrites not yet home live in the cache.
            let cached = self.write.session.data_cached && self.cache().get(b).map(|d| whole.copy_from_slice(d)).is_some();
            if cached || self.journal.read_overlay(&*self.dev, self.geo.block_size, b, &mut whole)? {
                buf[done..done + n].copy_from_slice(&whole[o as usize..o as usize + n]);
            } else {
                self.dev.read_at(b * bs + o, &mut buf[done..done + n])?;
            }
            done += n;
            pos += n as u64;
        }
        Ok(())
    }
}

/// The set bits of a word, as single-bit masks.
fn bits(word: u32) -> impl Iterator<Item = u32> {
    (0..32).map(|i| 1u32 << i).filter(move |b| word & b != 0)
}

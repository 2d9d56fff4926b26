//! The whole format computed in memory, step by step in mke2fs' order
//! (misc/mke2fs.c `main`): geometry, group tables, root, lost+found,
//! reserved inodes, resize inode, journal, MMP, orphan file. Nothing here
//! touches the device; [`crate::write`] writes the result.

use ext4_ondisk::checksum::{crc32c, inode_seed};
use ext4_ondisk::{Compat, GroupDescFlags, Incompat, Inode, RoCompat, Timestamp};

use crate::MkfsError;
use crate::error::Warning;
use crate::features::{has_compat, has_incompat, has_ro, set_incompat, set_ro};
use crate::journal::JournalLayout;
use crate::kbytes::Io;
use crate::mapping::{MapKind, Mapping};
use crate::model::Model;
use crate::options::FormatOptions;
use crate::resolve::{Params, resolve};
use crate::shape::{LARGE_INODE_SIZE, Shape};

/// A format being computed.
#[derive(Debug, Clone)]
pub struct Build {
    /// Resolved options.
    pub params: Params,
    /// The filesystem in memory.
    pub model: Model,
    /// Warnings so far.
    pub warnings: Vec<Warning>,
    /// Directory blocks `(owner inode, block, bytes)`, checksummed at the end.
    pub dir_blocks: Vec<(u32, u64, Vec<u8>)>,
    /// The journal, if any.
    pub journal: Option<JournalLayout>,
    /// `s_jnl_blocks`.
    pub jnl_blocks: Option<[u32; 17]>,
    /// `s_overhead_clusters`.
    pub overhead: u64,
    /// The orphan file inode (0: none).
    pub orphan_ino: u32,
    /// The MMP block (0: none).
    pub mmp_block: u64,
    /// Whether the inode tables are known to read as zeros.
    pub itable_zeroed: bool,
    /// Seed of metadata checksums.
    pub csum_seed: u32,
    /// Bytes of the filesystem on the device.
    pub fs_bytes: u64,
    /// The I/O mke2fs makes, in order, for `s_kbytes_written`.
    pub io: Vec<Io>,
    /// Whether sector 0 holds a BSD disklabel (mke2fs then leaves it).
    pub bsd_label: bool,
    /// The root directory's block.
    pub root_block: u64,
    /// The external journal device of `-J device=`, if any.
    pub(crate) external: Option<crate::external::ExternalJournal>,
}

impl Build {
    /// Resolves the options and computes the geometry.
    pub fn start(dev_len: u64, opts: &FormatOptions) -> Result<Build, MkfsError> {
        let mut params = resolve(dev_len, opts)?;
        let mut warnings = std::mem::take(&mut params.warnings);
        let shape = Shape::new(&params, &mut warnings)?;
        if shape.inodes_count < crate::shape::FIRST_INO + 1 {
            // mke2fs 1.47.0 fails half-way through such a format.
            let reason = "fewer inodes than the reserved inodes and lost+found need";
            return Err(MkfsError::TooSmall { blocks: shape.blocks_count, reason });
        }
        let fs_bytes = shape.blocks_count * shape.bs();
        let need = params.offset.saturating_add(fs_bytes);
        if need > dev_len {
            return Err(MkfsError::DeviceTooSmall { need: fs_bytes, offset: params.offset, have: dev_len });
        }
        let csum_seed = crc32c(!0, &params.uuid);
        Ok(Build {
            params,
            model: Model::new(shape),
            warnings,
            dir_blocks: Vec::new(),
            journal: None,
            jnl_blocks: None,
            overhead: 0,
            orphan_ino: 0,
            mmp_block: 0,
            itable_zeroed: false,
            csum_seed,
            fs_bytes,
            io: Vec::new(),
            bsd_label: false,
            root_block: 0,
            external: None,
        })
    }

    /// Computes the whole format. `discard_zeroes`: the device will read as
    /// zeros after the discard that precedes the format; `bsd_label`:
    /// sector 0 holds a BSD disklabel, which mke2fs leaves in place;
    /// `external`: the journal is on this external device (no internal one).
    pub(crate) fn run(
        dev_len: u64,
        opts: &FormatOptions,
        discard_zeroes: bool,
        bsd_label: bool,
        external: Option<&crate::external::ExternalJournal>,
    ) -> Result<Build, MkfsError> {
        let mut b = Build::start(dev_len, opts)?;
        b.bsd_label = bsd_label;
        b.external = external.cloned();
        let f = b.model.shape.features;
        let wants_journal = external.is_none() && (has_compat(&f, Compat::HAS_JOURNAL) || b.params.journal_size != 0);
        let journal_blocks = if wants_journal { b.figure_journal_size()? } else { None };
        // zap_sector(2, 6): the old superblock.
        b.io.push(Io::Direct(3072));
        crate::tables::allocate_tables(&mut b.model, b.params.raid_stride)?;
        let s = b.model.shape.clone();
        b.overhead = b.model.map.count_used(s.first_data_block, s.blocks_count);
        if !bsd_label {
            // zap_sector(0, 2): the boot sector.
            b.io.push(Io::Direct(1024));
        }
        b.plan_zeroing(discard_zeroes);
        if b.metadata_csum() {
            b.write_reserved_inodes();
        }
        b.create_root_dir()?;
        b.create_lost_found()?;
        b.reserve_inodes();
        if has_compat(&s.features, Compat::RESIZE_INODE) {
            b.create_resize_inode()?;
        }
        b.add_journal(journal_blocks)?;
        if has_incompat(&b.model.shape.features, Incompat::MMP) {
            b.create_mmp()?;
        }
        b.overhead += s.first_data_block;
        if has_compat(&b.model.shape.features, Compat::ORPHAN_FILE) {
            let n = b
                .params
                .orphan_file_blocks
                .unwrap_or_else(|| crate::orphan::default_orphan_file_blocks(s.blocks_count));
            if n == 0 {
                let value = "0".into();
                return Err(MkfsError::InvalidOption { option: "-E orphan_file_size", value, reason: "zero" });
            }
            b.create_orphan_file(n)?;
        }
        b.seal_dir_blocks();
        b.log_bitmap_writes();
        Ok(b)
    }

    /// `write_reserved_inodes`: inodes 1 .. first_ino - 1 as zeroed records
    /// with valid checksums.
    fn write_reserved_inodes(&mut self) {
        for ino in 1..crate::shape::FIRST_INO {
            self.model.inodes.insert(ino, Inode::empty(0));
            self.io.push(Io::WriteInodeFull(ino));
        }
    }

    /// Creates the journal, or drops has_journal (and orphan_file) when the
    /// filesystem is too small for one; with an external journal device,
    /// only sets has_journal (`ext2fs_add_journal_device`).
    fn add_journal(&mut self, blocks: Option<u32>) -> Result<(), MkfsError> {
        if self.external.is_some() {
            crate::features::set_compat(&mut self.model.shape.features, Compat::HAS_JOURNAL, true);
            return Ok(());
        }
        match blocks {
            Some(n) if has_compat(&self.model.shape.features, Compat::HAS_JOURNAL) => {
                self.create_journal(n)?;
                self.overhead += u64::from(n);
            }
            _ => {
                let f = &mut self.model.shape.features;
                crate::features::set_compat(f, Compat::HAS_JOURNAL, false);
                crate::features::set_compat(f, Compat::ORPHAN_FILE, false);
            }
        }
        Ok(())
    }

    /// `write_bitmaps` at close: each group's block then inode bitmap.
    fn log_bitmap_writes(&mut self) {
        for g in 0..self.model.shape.group_count {
            if self.writes_block_bitmap(g) {
                self.io.push(Io::WriteBlock(self.model.groups[g as usize].block_bitmap));
            }
            if self.writes_inode_bitmap(g) {
                self.io.push(Io::WriteBlock(self.model.groups[g as usize].inode_bitmap));
            }
        }
    }

    /// Whether metadata_csum is on.
    pub fn metadata_csum(&self) -> bool {
        has_ro(&self.model.shape.features, RoCompat::METADATA_CSUM)
    }

    /// The checksum seed of inode `ino` (generation 0), with metadata_csum.
    pub fn inode_csum_seed(&self, ino: u32) -> Option<u32> {
        self.metadata_csum().then(|| inode_seed(self.csum_seed, ino, 0))
    }

    /// The timestamp mke2fs writes (32 bits, no extra epoch bits).
    pub fn time_stamp(&self) -> Timestamp {
        Timestamp::from_secs(i64::from(self.params.time as i32))
    }

    /// A new inode as `ext2fs_write_new_inode` leaves it: all times now,
    /// `i_extra_isize` 32 and a creation time in large inodes.
    pub fn new_inode_record(&self, mode: u16) -> Inode {
        let large = self.model.shape.inode_size > 128;
        let mut i = Inode::empty(if large { (LARGE_INODE_SIZE - 128) as u16 } else { 0 });
        let t = self.time_stamp();
        i.mode = mode;
        i.atime = t;
        i.ctime = t;
        i.mtime = t;
        if large {
            i.crtime = t;
        }
        i
    }

    /// `ext2fs_inode_size_set`: sets the size, turning on large_file for a
    /// regular file (large_dir for a directory) of 2 GiB or more.
    pub fn set_file_size(&mut self, inode: &mut Inode, size: u64) {
        if size >= 0x8000_0000 {
            let f = &mut self.model.shape.features;
            if inode.mode & 0xF000 == 0x8000 {
                set_ro(f, RoCompat::LARGE_FILE, true);
            } else if inode.mode & 0xF000 == 0x4000 {
                set_incompat(f, Incompat::LARGEDIR, true);
            }
        }
        inode.size = size;
    }

    /// `ext2fs_find_inode_goal` for an inode with no blocks: the first block
    /// of its (flex) group.
    pub fn inode_goal(&self, ino: u32) -> u64 {
        let s = &self.model.shape;
        let mut g = s.group_of_ino(ino);
        if s.log_groups_per_flex > 0 {
            g &= !((1u32 << s.log_groups_per_flex) - 1);
        }
        s.group_first(g)
    }

    /// Stores the block map of inode `ino`, whose blocks are already
    /// allocated as `runs`, in `inode` (the direct pointers of a block map
    /// hold at most 12 blocks).
    pub fn map_blocks(&mut self, ino: u32, inode: &mut Inode, runs: &[(u32, u64, u32)]) -> Result<(), MkfsError> {
        let extents = has_incompat(&self.model.shape.features, Incompat::EXTENTS);
        let kind = if extents { MapKind::Extents } else { MapKind::Indirect };
        let mut map = Mapping::new(kind, self.model.shape.block_size);
        for &(l, p, n) in runs {
            if extents {
                map.push_extent(&mut self.model, l, p, n)?;
            } else if u64::from(l) + u64::from(n) > 12 {
                return Err(MkfsError::NoSpace { what: "a directory's direct block pointers" });
            } else {
                map.add_direct_run(l, p, n);
            }
        }
        map.finish(self, ino, inode)
    }

    /// Which inode-table blocks are zeroed (`write_inode_tables`), and the
    /// `ITABLE_ZEROED` flags.
    fn plan_zeroing(&mut self, discard_zeroes: bool) {
        let s = self.model.shape.clone();
        self.itable_zeroed = self.params.assume_prezeroed || (self.params.discard && discard_zeroes);
        let lazy = self.params.lazy_itable_init || self.itable_zeroed;
        // The end of the device, where MD RAID keeps its superblock.
        let rsv = 65536 / s.bs();
        let mut start = s.blocks_count & !(rsv.max(1) - 1);
        if start > rsv {
            start -= rsv;
        }
        if start > 0 && !self.params.assume_prezeroed {
            self.model.zero_ranges.push((start, s.blocks_count - start));
        }
        let mut run: Option<(u64, u64)> = None;
        for g in 0..s.group_count {
            let gs = &mut self.model.groups[g as usize];
            if !lazy || self.itable_zeroed {
                gs.flags |= GroupDescFlags::ITABLE_ZEROED;
            }
            if self.itable_zeroed {
                continue;
            }
            let num = if lazy {
                let used = u64::from(s.inodes_per_group - gs.itable_unused);
                (used * u64::from(s.inode_size)).div_ceil(s.bs())
            } else {
                u64::from(s.inode_blocks_per_group)
            };
            let blk = gs.inode_table;
            run = match run {
                Some((st, n)) if st + n == blk => Some((st, n + num)),
                Some((st, n)) => {
                    if n > 0 {
                        self.model.zero_ranges.push((st, n));
                    }
                    Some((blk, num))
                }
                None => Some((blk, num)),
            };
        }
        if let Some((st, n)) = run {
            if n > 0 {
                self.model.zero_ranges.push((st, n));
            }
        }
    }

    /// The MMP block (`ext2fs_mmp_init`).
    fn create_mmp(&mut self) -> Result<(), MkfsError> {
        let interval = match self.params.mmp_update_interval {
            0 => 5,
            i if i > 300 => {
                return Err(MkfsError::InvalidOption {
                    option: "-E mmp_update_interval",
                    value: i.to_string(),
                    reason: "at most 300 seconds",
                });
            }
            i => i,
        };
        self.params.mmp_update_interval = interval;
        let b = self.model.alloc_block(0)?;
        self.mmp_block = b;
        // alloc_block2 writes a zeroed block; ext2fs_mmp_write writes 1024
        // bytes directly, flushing the cache first.
        self.io.extend([Io::WriteBlock(b), Io::Direct(1024)]);
        Ok(())
    }

    /// The MMP block's bytes (`ext2fs_mmp_reset`): clean sequence, node
    /// and device names, the check interval, the format time.
    pub fn mmp_block_bytes(&self) -> Vec<u8> {
        use zerocopy::{FromBytes, IntoBytes};
        let mut m = ext4_ondisk::mmp::MmpBlock::read_from_bytes(&[0u8; 1024][..]).expect("1024 bytes");
        m.mmp_magic.set(ext4_ondisk::mmp::MMP_MAGIC);
        m.mmp_seq.set(ext4_ondisk::mmp::MMP_SEQ_CLEAN);
        m.mmp_time.set(u64::from(self.params.time));
        let node = self.params.mmp_nodename.as_bytes();
        let n = node.len().min(m.mmp_nodename.len() - 1);
        m.mmp_nodename[..n].copy_from_slice(&node[..n]);
        let dev = self.params.device_name.as_bytes();
        let n = dev.len().min(m.mmp_bdevname.len());
        m.mmp_bdevname[..n].copy_from_slice(&dev[..n]);
        m.mmp_check_interval.set(self.params.mmp_update_interval.max(5) as u16);
        if self.metadata_csum() {
            let c = m.compute_checksum(self.csum_seed);
            m.mmp_checksum.set(c);
        }
        let mut block = vec![0u8; self.model.shape.block_size as usize];
        block[..1024].copy_from_slice(m.as_bytes());
        block
    }

    /// Adds the checksum tails' checksums to directory blocks and moves them
    /// into the block list.
    fn seal_dir_blocks(&mut self) {
        for (ino, blk, mut data) in std::mem::take(&mut self.dir_blocks) {
            if let Some(seed) = self.inode_csum_seed(ino) {
                ext4_ondisk::dir::set_dir_block_checksum(seed, &mut data);
            }
            self.model.put_block(blk, data);
        }
    }
}

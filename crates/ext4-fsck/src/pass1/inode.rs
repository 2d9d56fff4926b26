//! The checks of one inode record, in e2fsck's order: checksum and
//! garbage detection of its inode table block, times, flags against
//! features, the special inodes, then type and blocks.

use ext4_ondisk::features::{Compat, Incompat, RoCompat};
use ext4_ondisk::inode::{Inode, InodeFlags, raw as iraw};
use ext4_ondisk::superblock::creator_os;

use crate::bmap::header_ok;
use crate::ctx::{Ctx, Flow};
use crate::fs::Fs;
use crate::inodes::flag;
use crate::problem::{At, Code};
use crate::xattr::{self, EaErr};

/// Sets `i_dtime` in an inode record.
fn set_dtime(raw: &mut [u8], dtime: u32) {
    ext4_ondisk::put_u32(raw, std::mem::offset_of!(ext4_ondisk::inode::InodeRaw, i_dtime), dtime);
}

/// Inodes of reserved numbers with a meaning.
const BAD_INO: u32 = 1;
const ROOT_INO: u32 = 2;
const BOOT_LOADER_INO: u32 = 5;
const RESIZE_INO: u32 = 7;
const JOURNAL_INO: u32 = 8;

/// What the scan learned about an inode table block before looking at its
/// inodes (`check_inode_block_sanity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct BlockStatus {
    /// Every inode of the block passed its checksum.
    csums_ok: bool,
    /// More than half its inodes failed their checksum or look insane.
    insane: bool,
}

/// State of the inode scan.
pub(super) struct Scan {
    /// Whether low deletion times mean orphan list remnants (false when
    /// the superblock's times are themselves tiny, as in test images).
    low_dtime_check: bool,
}

/// How a record came out of the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanErr {
    None,
    Csum,
    Garbage,
}

/// Whether an inode record's checksum matches (an all-zero record passes,
/// as in `ext2fs_inode_csum_verify`).
pub(crate) fn csum_ok(fs: &Fs<'_>, ino: u32, raw: &[u8]) -> bool {
    !fs.csum() || ext4_ondisk::inode::verify_inode_checksum(fs.csum_seed(), ino, raw).is_ok() || raw[..128].iter().all(|&b| b == 0)
}

/// `block_map_looks_insane`: more than half of `i_block` points outside the filesystem.
fn block_map_insane(fs: &Fs<'_>, i: &Inode) -> bool {
    if i.flags.intersects(InodeFlags::INLINE_DATA | InodeFlags::EXTENTS) || i.links_count == 0 {
        return false;
    }
    let t = i.mode & 0xF000;
    if t != 0x8000 && t != 0xA000 && t != 0x4000 {
        return false;
    }
    if t == 0xA000 && i.size <= 60 {
        return false;
    }
    let bad = (0..15)
        .map(|k| u64::from(ext4_ondisk::get_u32(&i.block, k * 4)))
        .filter(|&b| b != 0 && (b < fs.first_data_block() || b >= fs.blocks_count()))
        .count();
    bad > 7
}

/// `extent_head_looks_insane`.
fn extent_head_insane(i: &Inode) -> bool {
    i.flags.contains(InodeFlags::EXTENTS) && !header_ok(&i.block, 60)
}

impl Scan {
    pub(super) fn new(ctx: &Ctx<'_, '_>) -> Self {
        let sb = &ctx.fs.sb;
        let n = sb.s_inodes_count.get();
        let tiny = |t: u32| t != 0 && t < n;
        Self { low_dtime_check: !(tiny(sb.s_wtime.get()) || tiny(sb.s_mtime.get()) || tiny(sb.s_mkfs_time.get())) }
    }

    /// Status of each inode table block in `buf`, whose first inode is `first`.
    pub(super) fn block_status(&self, ctx: &Ctx<'_, '_>, buf: &[u8], first: u32, count: u32) -> Vec<BlockStatus> {
        let fs = &ctx.fs;
        let isz = fs.geo.inode_size as usize;
        let ipb = fs.bs() as usize / isz;
        let mut out = vec![BlockStatus::default(); buf.len() / fs.bs() as usize];
        if ipb < 2 {
            return out;
        }
        let (mut bad, mut fails) = (0usize, 0usize);
        let mut i = 0usize;
        while i < count as usize {
            let blk = i / ipb;
            let raw = &buf[i * isz..(i + 1) * isz];
            let ino = first + i as u32;
            let bad_csum = !csum_ok(fs, ino, raw);
            let insane = !bad_csum && iraw::parse_lenient(raw).is_ok_and(|d| extent_head_insane(&d) || block_map_insane(fs, &d));
            if bad_csum {
                fails += 1;
                bad += 1;
            } else if insane {
                bad += 1;
            }
            if bad > ipb / 2 {
                out[blk].insane = true;
                i = (blk + 1) * ipb;
                (bad, fails) = (0, 0);
                continue;
            }
            if (i + 1) % ipb == 0 {
                out[blk].csums_ok = fails == 0;
                (bad, fails) = (0, 0);
            }
            i += 1;
        }
        out
    }

    /// Checks inode `ino`, whose record is `raw` (the body of e2fsck's pass 1 loop).
    pub(super) fn inode(&mut self, ctx: &mut Ctx<'_, '_>, ino: u32, raw: Vec<u8>, st: BlockStatus) -> Flow {
        let fs = &ctx.fs;
        let mut err = if !st.csums_ok && !csum_ok(fs, ino, &raw) { ScanErr::Csum } else { ScanErr::None };
        if st.insane {
            err = ScanErr::Garbage;
        }
        let Ok(inode) = iraw::parse_lenient(&raw) else { return Ok(()) };
        let mut c = InodeCheck { ino, raw, inode, failed_csum: err != ScanErr::None, at: At::ino(ino) };
        if err == ScanErr::Garbage && c.inode.links_count > 0 {
            ctx.ask(Code::InodeIsGarbage, c.at, format!("inode {ino} seems to hold garbage"));
        }
        // An inode that fails its checksum is not rewritten field by
        // field: that would make its other fields trusted.
        let held = ctx.hold_repairs;
        ctx.hold_repairs |= c.failed_csum;
        ctx.inode_start = ctx.problems.len();
        let done = c.check(ctx, self);
        // The inode passed every other check if no error was found in it:
        // then only its checksum is wrong.
        ctx.hold_repairs = held;
        if done? { Ok(()) } else { c.finish(ctx) }
    }
}

/// One inode being checked.
pub(super) struct InodeCheck {
    pub ino: u32,
    pub raw: Vec<u8>,
    pub inode: Inode,
    pub failed_csum: bool,
    pub at: At,
}

impl InodeCheck {
    fn mode_type(&self) -> u16 {
        self.inode.mode & 0xF000
    }

    fn is_dir(&self) -> bool {
        self.mode_type() == 0x4000
    }

    fn is_reg(&self) -> bool {
        self.mode_type() == 0x8000
    }

    fn flag(&self, f: InodeFlags) -> bool {
        self.inode.flags.contains(f)
    }

    /// `FINISH_INODE_LOOP`: an inode that failed its checksum but passed
    /// every other check has only a bad checksum.
    pub(super) fn finish(&self, ctx: &mut Ctx<'_, '_>) -> Flow {
        if self.failed_csum
            && ctx.ask_inode_fix(
                Code::InodeOnlyCsumInvalid,
                self.at,
                format!("inode {} passes checks, but its checksum does not match", self.ino),
            )
        {
            // Writing the inode back sets its checksum.
            ctx.fix_inode(self.ino, |_| {})?;
        }
        Ok(())
    }

    /// The checks; `Ok(true)` when the inode needs no `finish` (cleared).
    fn check(&mut self, ctx: &mut Ctx<'_, '_>, scan: &Scan) -> Flow<bool> {
        let ino = self.ino;
        let (first_ino, inodes_count) = (ctx.fs.first_ino(), ctx.fs.inodes_count());
        if self.inode.dtime != 0
            && scan.low_dtime_check
            && self.inode.dtime < inodes_count
            && ctx.ask_inode_fix(Code::LowDtime, self.at, format!("inode {ino} was part of the orphaned inode list"))
        {
            let dtime = if self.inode.links_count != 0 { 0 } else { ctx.now as u32 };
            ctx.fix_inode(ino, |raw| set_dtime(raw, dtime))?;
        }
        if self.inode.links_count != 0 {
            ctx.inodes.entry(ino).links = self.inode.links_count;
        } else if ino >= first_ino && !quota_reserved(&ctx.fs, ino) {
            if self.inode.dtime == 0
                && self.inode.mode != 0
                && ctx.ask_inode_fix(Code::ZeroDtime, self.at, format!("deleted inode {ino} has zero dtime"))
            {
                let now = ctx.now as u32;
                ctx.fix_inode(ino, |raw| set_dtime(raw, now))?;
            }
            return Ok(false);
        }
        self.check_casefold(ctx);
        if self.flag(InodeFlags::INLINE_DATA) && self.flag(InodeFlags::EXTENTS) {
            self.inline_and_extents(ctx);
        }
        self.check_inline_flag(ctx)?;
        self.check_extent_flag(ctx);
        if let Some(done) = self.special(ctx)? {
            return Ok(done);
        }
        if self.inode.links_count == 0 {
            return Ok(false);
        }
        self.in_use(ctx)?;
        Ok(false)
    }

    fn check_casefold(&self, ctx: &mut Ctx<'_, '_>) {
        if !self.flag(InodeFlags::CASEFOLD) {
            return;
        }
        if !self.is_dir() {
            ctx.ask(Code::CasefoldNondir, self.at, format!("inode {} has the casefold flag but is not a directory", self.ino));
        }
        if !ctx.fs.incompat(Incompat::CASEFOLD) {
            ctx.ask(Code::CasefoldFeature, self.at, format!("inode {} has the casefold flag without the casefold feature", self.ino));
        }
    }

    /// Both the inline-data and extents flags (`fix_inline_data_extents_file`).
    fn inline_and_extents(&self, ctx: &mut Ctx<'_, '_>) {
        let fs = &ctx.fs;
        if !fs.incompat(Incompat::EXTENTS) && !fs.incompat(Incompat::INLINE_DATA) {
            return;
        }
        let t = self.mode_type();
        if matches!(t, 0x2000 | 0x6000 | 0x1000 | 0xC000) {
            ctx.ask(Code::SpecialExtentsIdata, self.at, format!("special file {} has the extents or inline-data flag", self.ino));
            return;
        }
        ctx.ask(Code::ExtentInlineDataFlags, self.at, format!("inode {} has both the extents and the inline-data flags", self.ino));
    }

    /// The inline-data flag: needs the feature and a `system.data` attribute.
    fn check_inline_flag(&mut self, ctx: &mut Ctx<'_, '_>) -> Flow {
        if !self.flag(InodeFlags::INLINE_DATA) || self.ino < ctx.fs.first_ino() {
            return Ok(());
        }
        if !ctx.fs.incompat(Incompat::INLINE_DATA) {
            ctx.ask(Code::InlineDataSet, self.at, format!("inode {} has inline data without the inline_data feature", self.ino));
            return Ok(());
        }
        let attrs = xattr::read_all(&ctx.fs, self.ino, &self.raw, !self.failed_csum)?;
        let found = match attrs {
            Ok(a) => a.iter().any(xattr::is_system_data),
            Err(EaErr::Other) => {
                let d = format!("inode {}: its xattrs cannot be read", self.ino);
                return Err(ctx.fatal(Code::InlineDataNoAttr, self.at, d));
            }
            Err(_) => false,
        };
        if !found {
            ctx.ask(Code::InlineDataNoAttr, self.at, format!("inode {} has inline data but no system.data attribute", self.ino));
        }
        Ok(())
    }

    /// The extents flag against the feature, and extent headers without the flag.
    fn check_extent_flag(&self, ctx: &mut Ctx<'_, '_>) {
        let extent_fs = ctx.fs.incompat(Incompat::EXTENTS);
        let counts = self.inode.links_count != 0 || matches!(self.ino, BAD_INO | ROOT_INO | JOURNAL_INO);
        if self.flag(InodeFlags::EXTENTS) && !extent_fs && counts {
            ctx.ask(Code::ExtentsSet, self.at, format!("inode {} uses extents without the extent feature", self.ino));
        }
        if extent_fs && !self.flag(InodeFlags::EXTENTS) && counts && (self.is_reg() || self.is_dir()) && header_ok(&self.inode.block, 60) {
            ctx.ask(Code::UnsetExtentFl, self.at, format!("inode {} holds an extent tree but lacks the extents flag", self.ino));
        }
    }

    /// The inodes with a reserved meaning; `Some(done)` when the loop ends here.
    fn special(&mut self, ctx: &mut Ctx<'_, '_>) -> Flow<Option<bool>> {
        let ino = self.ino;
        let sb = ctx.fs.sb.clone();
        if ino == BAD_INO {
            super::special::bad_blocks_inode(ctx, self)?;
            return Ok(Some(false));
        }
        if ino == ROOT_INO {
            if !self.is_dir() {
                ctx.ask(Code::RootNoDir, self.at, "the root inode is not a directory");
            }
            if self.inode.dtime != 0 && self.inode.links_count != 0 {
                ctx.ask(Code::RootDtime, self.at, "the root inode has a deletion time");
            }
            return Ok(None);
        }
        let not_clear = self.inode.links_count != 0 || self.inode.blocks != 0 || self.inode.block[..4] != [0; 4];
        if ino == JOURNAL_INO {
            ctx.inodes.set(ino, flag::USED);
            if sb.s_journal_inum.get() == JOURNAL_INO {
                if !self.is_reg() {
                    ctx.ask(Code::JournalBadMode, self.at, "the journal inode is not a regular file");
                }
                super::blocks::check_blocks(ctx, self, Default::default())?;
                return Ok(Some(false));
            }
            if not_clear {
                ctx.ask(Code::JournalInodeNotClear, self.at, "the journal inode is not in use but is not clear");
            }
            return Ok(None);
        }
        if quota_reserved(&ctx.fs, ino) {
            ctx.inodes.set(ino, flag::USED);
            let in_super = [sb.s_usr_quota_inum.get(), sb.s_grp_quota_inum.get(), sb.s_prj_quota_inum.get()].contains(&ino);
            if ctx.fs.ro_compat(RoCompat::QUOTA) && in_super {
                if !self.is_reg() {
                    ctx.ask(Code::QuotaBadMode, self.at, format!("quota inode {ino} is not a regular file"));
                }
                super::blocks::check_blocks(ctx, self, Default::default())?;
                return Ok(Some(false));
            }
            if not_clear {
                ctx.ask(Code::QuotaInodeNotClear, self.at, format!("quota inode {ino} is not in use but is not clear"));
            }
            return Ok(None);
        }
        if ino == sb.s_orphan_file_inum.get() {
            ctx.inodes.set(ino, flag::USED);
            if ctx.fs.compat(Compat::ORPHAN_FILE) {
                if !self.is_reg() {
                    ctx.ask(Code::OrphanFileBadMode, self.at, "the orphan file is not a regular file");
                }
                super::blocks::check_blocks(ctx, self, Default::default())?;
                return Ok(Some(false));
            }
            if not_clear {
                ctx.ask(Code::OrphanFileNotClear, self.at, "the orphan file inode is not in use but is not clear");
            }
            return Ok(None);
        }
        if ino < ctx.fs.first_ino() {
            ctx.inodes.set(ino, flag::USED);
            let bad = match ino {
                BOOT_LOADER_INO => self.is_dir(),
                RESIZE_INO => self.inode.mode != 0 && !self.is_reg(),
                _ => self.inode.mode != 0,
            };
            if bad {
                ctx.ask(Code::ReservedBadMode, self.at, format!("reserved inode {ino} has a bad mode {:#o}", self.inode.mode));
            }
            super::blocks::check_blocks(ctx, self, Default::default())?;
            return Ok(Some(false));
        }
        Ok(None)
    }

    /// An ordinary inode in use.
    fn in_use(&mut self, ctx: &mut Ctx<'_, '_>) -> Flow {
        let ino = self.ino;
        if self.inode.dtime != 0 && ctx.ask_inode_fix(Code::SetDtime, self.at, format!("inode {ino} is in use but has a deletion time")) {
            ctx.fix_inode(ino, |raw| set_dtime(raw, 0))?;
        }
        ctx.inodes.set(ino, flag::USED);
        ctx.inodes.entry(ino).ftype = super::ftype_of(self.inode.mode);
        self.mark_bad_fields(ctx);
        if self.flag(InodeFlags::IMAGIC) {
            if ctx.fs.compat(Compat::IMAGIC_INODES) {
                ctx.inodes.set(ino, flag::IMAGIC);
            } else {
                ctx.ask(Code::SetImagic, self.at, format!("inode {ino} has the imagic flag"));
            }
        }
        let ibody_quota = super::xattrs::check_inode_extra_space(ctx, self)?;
        super::special::check_is_really_dir(ctx, self)?;
        if ctx.fs.incompat(Incompat::EXTENTS)
            && self.flag(InodeFlags::EXTENTS)
            && self.mode_type() == 0xA000
            && !has_valid_blocks(&ctx.fs, &self.inode)
        {
            ctx.ask(Code::FastSymlinkExtentFl, self.at, format!("fast symlink {ino} has the extents flag"));
        }
        if ctx.fs.incompat(Incompat::CASEFOLD) && self.flag(InodeFlags::CASEFOLD) {
            ctx.inodes.set(ino, flag::CASEFOLD);
        }
        if self.flag(InodeFlags::ENCRYPT) && crate::encrypt::add_encrypted_file(ctx, ino, &self.raw, self.at)? {
            return Ok(());
        }
        self.by_type(ctx, ibody_quota)
    }

    /// Fields that make pass 2 look at the inode again (`mark_inode_bad`).
    fn mark_bad_fields(&self, ctx: &mut Ctx<'_, '_>) {
        let fs = &ctx.fs;
        let hurd = fs.sb.s_creator_os.get() == creator_os::HURD;
        let (frag, fsize) = if hurd { iraw::hurd_frag_fsize(&self.raw) } else { (0, 0) };
        let mut bad = iraw::obso_faddr(&self.raw) != 0
            || frag != 0
            || fsize != 0
            || (!fs.incompat(Incompat::LARGEDIR) && self.is_dir() && self.inode.size >> 32 != 0);
        if !hurd && !fs.incompat(Incompat::BIT64) && iraw::file_acl_high(&self.raw) != 0 {
            bad = true;
        }
        if !hurd && !fs.ro_compat(RoCompat::HUGE_FILE) && iraw::blocks_high(&self.raw) != 0 {
            bad = true;
        }
        if bad {
            ctx.inodes.set(self.ino, flag::BAD);
        }
    }

    /// The checks that depend on the file type, then the blocks.
    fn by_type(&mut self, ctx: &mut Ctx<'_, '_>, ibody_quota: super::xattrs::EaQuota) -> Flow {
        let ino = self.ino;
        let t = self.mode_type();
        let fs = &ctx.fs;
        let device_ok = super::special::check_device_inode(&self.inode);
        match t {
            0x4000 => {
                ctx.inodes.set(ino, flag::DIR);
                ctx.dirs.add(ino, if ino == ROOT_INO { ROOT_INO } else { 0 });
                ctx.stats.directories += 1;
            }
            0x8000 => {
                ctx.inodes.set(ino, flag::REG);
                ctx.stats.regular_files += 1;
            }
            0x2000 | 0x6000 | 0x1000 | 0xC000 if device_ok => {
                if self.flag(InodeFlags::EXTENTS) || self.flag(InodeFlags::INLINE_DATA) {
                    ctx.ask(Code::SpecialExtentsIdata, self.at, format!("special file {ino} has the extents or inline-data flag"));
                }
                if self.inode.flags.intersects(InodeFlags::IMMUTABLE | InodeFlags::APPEND) {
                    ctx.ask(Code::SetImmutable, self.at, format!("special file {ino} has the immutable or append-only flag"));
                }
                if self.inode.size != 0 {
                    ctx.ask(Code::SetNonzsize, self.at, format!("special file {ino} has size {}", self.inode.size));
                }
            }
            0xA000 if super::special::check_symlink(fs, ino, &self.inode, &self.raw)? => {
                if self.inode.flags.intersects(InodeFlags::IMMUTABLE | InodeFlags::APPEND) {
                    ctx.ask(Code::SetImmutable, self.at, format!("symlink {ino} has the immutable or append-only flag"));
                }
                ctx.stats.symlinks += 1;
                if self.flag(InodeFlags::INLINE_DATA) {
                    return Ok(());
                }
            }
            _ => ctx.inodes.set(ino, flag::BAD),
        }
        super::blocks::check_blocks(ctx, self, ibody_quota)
    }
}

/// Whether `ino` is a reserved quota inode number (3, 4, or the project quota inode).
pub(super) fn quota_reserved(fs: &Fs<'_>, ino: u32) -> bool {
    ino == 3 || ino == 4 || ino == fs.sb.s_prj_quota_inum.get()
}

/// `ext2fs_inode_has_valid_blocks2`: whether `i_block` holds a block map.
pub(crate) fn has_valid_blocks(fs: &Fs<'_>, i: &Inode) -> bool {
    let t = i.mode & 0xF000;
    if t != 0x4000 && t != 0x8000 && t != 0xA000 {
        return false;
    }
    if t == 0xA000 {
        if i.file_acl == 0 {
            if i.blocks == 0 {
                return false;
            }
        } else {
            let size = i.size as u32;
            if size >= 60 || (size > 4 && ext4_ondisk::get_u32(&i.block, 4) == 0) {
                return true;
            }
            return false;
        }
    }
    let _ = fs;
    !i.flags.contains(InodeFlags::INLINE_DATA)
}

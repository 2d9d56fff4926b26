//! The text report, section by section as dumpe2fs prints it: the
//! superblock (e2p's `list_super2`), the journal superblock
//! (`e2p_list_journal_super`), the MMP block and each group (`list_desc`).

use std::io::Write;

use ext4_fs::GroupReport;
use ext4_fs::jbd2::format::{self as jf, JournalSuperblock};
use ext4_fs::ondisk::mmp::MmpBlock;
use ext4_fs::ondisk::superblock::{CsumKind, Geometry, Superblock};
use ext4_fs::ondisk::{Compat, GroupDescFlags, Incompat, RoCompat};

use super::names::*;
use crate::util::format_uuid;

/// How block numbers print (`-x`: hexadecimal, 8 digits on 64bit filesystems).
#[derive(Clone, Copy)]
pub(super) struct Numbers {
    pub(super) hex: bool,
    pub(super) wide: bool,
}

impl Numbers {
    fn one(self, n: u64) -> String {
        match (self.hex, self.wide) {
            (false, _) => n.to_string(),
            (true, true) => format!("0x{n:08x}"),
            (true, false) => format!("0x{n:04x}"),
        }
    }

    fn range(self, a: u64, b: u64) -> String {
        format!("{}-{}", self.one(a), self.one(b))
    }
}

/// The superblock, as e2p's `list_super2`.
pub(super) fn list_super(w: &mut impl Write, sb: &Superblock) -> std::io::Result<()> {
    let f = sb.features();
    let block_size = 1024u64 << sb.s_log_block_size.get().min(16);
    let cluster_size = 1024u64 << sb.s_log_cluster_size.get().min(32);
    let inode_size = if sb.s_rev_level.get() == 0 { 128 } else { u64::from(sb.s_inode_size.get()) };
    let ipg = u64::from(sb.s_inodes_per_group.get());
    let label = field_str(&sb.s_volume_name);
    writeln!(w, "Filesystem volume name:   {}", if label.is_empty() { "<none>".into() } else { label })?;
    let mounted = field_str(&sb.s_last_mounted);
    writeln!(w, "Last mounted on:          {}", if mounted.is_empty() { "<not available>".into() } else { mounted })?;
    writeln!(w, "Filesystem UUID:          {}", format_uuid(&sb.s_uuid))?;
    writeln!(w, "Filesystem magic number:  0x{:04X}", sb.s_magic.get())?;
    let rev = sb.s_rev_level.get();
    let rev_name = match rev {
        0 => "original",
        1 => "dynamic",
        _ => "unknown",
    };
    writeln!(w, "Filesystem revision #:    {rev} ({rev_name})")?;
    let names = feature_names(sb);
    writeln!(w, "Filesystem features:      {}", if names.is_empty() { "(none)".into() } else { names.join(" ") })?;
    list_flags(w, sb.s_flags.get())?;
    let opts = mntopt_names(sb.s_default_mount_opts.get());
    writeln!(w, "Default mount options:    {}", if opts.is_empty() { "(none)".into() } else { opts.join(" ") })?;
    let mount_opts = field_str(&sb.s_mount_opts);
    if !mount_opts.is_empty() {
        writeln!(w, "Mount options:            {mount_opts}")?;
    }
    writeln!(w, "Filesystem state:        {}", state_text(sb.s_state.get()))?;
    writeln!(w, "Errors behavior:          {}", errors_text(sb.s_errors.get()))?;
    writeln!(w, "Filesystem OS type:       {}", os_text(sb.s_creator_os.get()))?;
    writeln!(w, "Inode count:              {}", sb.s_inodes_count.get())?;
    writeln!(w, "Block count:              {}", sb.blocks_count())?;
    writeln!(w, "Reserved block count:     {}", sb.r_blocks_count())?;
    if sb.s_overhead_clusters.get() != 0 {
        writeln!(w, "Overhead clusters:        {}", sb.s_overhead_clusters.get())?;
    }
    writeln!(w, "Free blocks:              {}", sb.free_blocks_count())?;
    writeln!(w, "Free inodes:              {}", sb.s_free_inodes_count.get())?;
    writeln!(w, "First block:              {}", sb.s_first_data_block.get())?;
    writeln!(w, "Block size:               {block_size}")?;
    let bigalloc = f.ro_compat.contains(RoCompat::BIGALLOC);
    if bigalloc {
        writeln!(w, "Cluster size:             {cluster_size}")?;
    } else {
        writeln!(w, "Fragment size:            {cluster_size}")?;
    }
    if f.incompat.contains(Incompat::BIT64) {
        writeln!(w, "Group descriptor size:    {}", sb.s_desc_size.get())?;
    }
    if sb.s_reserved_gdt_blocks.get() != 0 {
        writeln!(w, "Reserved GDT blocks:      {}", sb.s_reserved_gdt_blocks.get())?;
    }
    writeln!(w, "Blocks per group:         {}", sb.s_blocks_per_group.get())?;
    let cpg_label = if bigalloc { "Clusters per group:       " } else { "Fragments per group:      " };
    writeln!(w, "{cpg_label}{}", sb.s_clusters_per_group.get())?;
    writeln!(w, "Inodes per group:         {ipg}")?;
    writeln!(w, "Inode blocks per group:   {}", (ipg * inode_size).div_ceil(block_size) as u32)?;
    list_super_layout(w, sb)?;
    list_super_times(w, sb)?;
    list_super_ids(w, sb)?;
    list_super_errors(w, sb)?;
    list_super_tail(w, sb)
}

/// `s_flags` (printed only when nonzero).
pub(super) fn list_flags(w: &mut impl Write, flags: u32) -> std::io::Result<()> {
    if flags == 0 {
        return Ok(());
    }
    let names: String = [(1, "signed_directory_hash "), (2, "unsigned_directory_hash "), (4, "test_filesystem ")]
        .iter()
        .filter(|(b, _)| flags & b != 0)
        .map(|(_, n)| *n)
        .collect();
    writeln!(w, "Filesystem flags:         {}", if names.is_empty() { "(none)" } else { &names })
}

/// RAID, meta_bg and flex_bg geometry.
pub(super) fn list_super_layout(w: &mut impl Write, sb: &Superblock) -> std::io::Result<()> {
    if sb.s_raid_stride.get() != 0 {
        writeln!(w, "RAID stride:              {}", sb.s_raid_stride.get())?;
    }
    if sb.s_raid_stripe_width.get() != 0 {
        writeln!(w, "RAID stripe width:        {}", sb.s_raid_stripe_width.get())?;
    }
    if sb.s_first_meta_bg.get() != 0 {
        writeln!(w, "First meta block group:   {}", sb.s_first_meta_bg.get())?;
    }
    if sb.s_log_groups_per_flex != 0 {
        writeln!(w, "Flex block group size:    {}", 1u32.wrapping_shl(u32::from(sb.s_log_groups_per_flex)))?;
    }
    Ok(())
}

/// Creation, mount, write and check times, counts and intervals.
pub(super) fn list_super_times(w: &mut impl Write, sb: &Superblock) -> std::io::Result<()> {
    let t = |v: u32| ctime(i64::from(v));
    if sb.s_mkfs_time.get() != 0 {
        writeln!(w, "Filesystem created:       {}", t(sb.s_mkfs_time.get()))?;
    }
    let mtime = sb.s_mtime.get();
    writeln!(w, "Last mount time:          {}", if mtime != 0 { t(mtime) } else { "n/a".into() })?;
    writeln!(w, "Last write time:          {}", t(sb.s_wtime.get()))?;
    writeln!(w, "Mount count:              {}", sb.s_mnt_count.get())?;
    writeln!(w, "Maximum mount count:      {}", sb.s_max_mnt_count.get() as i16)?;
    writeln!(w, "Last checked:             {}", t(sb.s_lastcheck.get()))?;
    let interval = sb.s_checkinterval.get();
    writeln!(w, "Check interval:           {interval} ({})", interval_string(interval))?;
    if interval != 0 {
        let next = i64::from(sb.s_lastcheck.get()) + i64::from(interval);
        writeln!(w, "Next check after:         {}", ctime(next))?;
    }
    if sb.s_kbytes_written.get() != 0 {
        writeln!(w, "Lifetime writes:          {}", lifetime_writes(sb.s_kbytes_written.get()))?;
    }
    Ok(())
}

/// Reserved-block owners, inode numbers and sizes, journal, hash and backups.
pub(super) fn list_super_ids(w: &mut impl Write, sb: &Superblock) -> std::io::Result<()> {
    let uid = sb.s_def_resuid.get();
    let user = account_name("/etc/passwd", uid).map_or_else(|| "(user unknown)".into(), |n| format!("(user {n})"));
    writeln!(w, "Reserved blocks uid:      {uid} {user}")?;
    let gid = sb.s_def_resgid.get();
    let group = account_name("/etc/group", gid).map_or_else(|| "(group unknown)".into(), |n| format!("(group {n})"));
    writeln!(w, "Reserved blocks gid:      {gid} {group}")?;
    if sb.s_rev_level.get() >= 1 {
        writeln!(w, "First inode:              {}", sb.s_first_ino.get())?;
        writeln!(w, "Inode size:\t          {}", sb.s_inode_size.get())?;
        if sb.s_min_extra_isize.get() != 0 {
            writeln!(w, "Required extra isize:     {}", sb.s_min_extra_isize.get())?;
        }
        if sb.s_want_extra_isize.get() != 0 {
            writeln!(w, "Desired extra isize:      {}", sb.s_want_extra_isize.get())?;
        }
    }
    if !is_null(&sb.s_journal_uuid) {
        writeln!(w, "Journal UUID:             {}", format_uuid(&sb.s_journal_uuid))?;
    }
    if sb.s_journal_inum.get() != 0 {
        writeln!(w, "Journal inode:            {}", sb.s_journal_inum.get())?;
    }
    if sb.s_journal_dev.get() != 0 {
        writeln!(w, "Journal device:\t          0x{:04x}", sb.s_journal_dev.get())?;
    }
    if sb.s_last_orphan.get() != 0 {
        writeln!(w, "First orphan inode:       {}", sb.s_last_orphan.get())?;
    }
    if sb.features().compat.contains(Compat::DIR_INDEX) || sb.s_def_hash_version != 0 {
        writeln!(w, "Default directory hash:   {}", hash_name(sb.s_def_hash_version))?;
    }
    if !is_null(&sb.hash_seed_bytes()) {
        writeln!(w, "Directory Hash Seed:      {}", format_uuid(&sb.hash_seed_bytes()))?;
    }
    match sb.s_jnl_backup_type {
        0 => {}
        1 => writeln!(w, "Journal backup:           inode blocks")?,
        t => writeln!(w, "Journal backup:           type {t}")?,
    }
    let bgs = sb.s_backup_bgs.map(|b| b.get());
    if bgs != [0, 0] {
        let list: String = bgs.iter().filter(|&&b| b != 0).map(|b| format!("{b} ")).collect();
        writeln!(w, "Backup block groups:      {list}")?;
    }
    if sb.s_snapshot_inum.get() != 0 {
        writeln!(w, "Snapshot inode:           {}", sb.s_snapshot_inum.get())?;
        writeln!(w, "Snapshot ID:              {}", sb.s_snapshot_id.get())?;
        writeln!(w, "Snapshot reserved blocks: {}", sb.s_snapshot_r_blocks_count.get())?;
    }
    if sb.s_snapshot_list.get() != 0 {
        writeln!(w, "Snapshot list head:       {}", sb.s_snapshot_list.get())?;
    }
    Ok(())
}

/// The error count and the first and last recorded errors.
pub(super) fn list_super_errors(w: &mut impl Write, sb: &Superblock) -> std::io::Result<()> {
    if sb.s_error_count.get() != 0 {
        writeln!(w, "FS Error count:           {}", sb.s_error_count.get())?;
    }
    let first = ErrorInfo {
        time: sb.s_first_error_time.get(),
        func: &sb.s_first_error_func,
        line: sb.s_first_error_line.get(),
        ino: sb.s_first_error_ino.get(),
        block: sb.s_first_error_block.get(),
        errcode: sb.s_first_error_errcode,
    };
    let last = ErrorInfo {
        time: sb.s_last_error_time.get(),
        func: &sb.s_last_error_func,
        line: sb.s_last_error_line.get(),
        ino: sb.s_last_error_ino.get(),
        block: sb.s_last_error_block.get(),
        errcode: sb.s_last_error_errcode,
    };
    first.list(w, "First")?;
    last.list(w, "Last")
}

/// One recorded error.
pub(super) struct ErrorInfo<'a> {
    time: u32,
    func: &'a [u8],
    line: u32,
    ino: u32,
    block: u64,
    errcode: u8,
}

impl ErrorInfo<'_> {
    /// Prints the error with labels starting `which` ("First", "Last"),
    /// padded to dumpe2fs' column.
    fn list(&self, w: &mut impl Write, which: &str) -> std::io::Result<()> {
        if self.time == 0 {
            return Ok(());
        }
        let label = |what: &str| format!("{:<26}", format!("{which} error {what}:"));
        writeln!(w, "{}{}", label("time"), ctime(i64::from(self.time)))?;
        writeln!(w, "{}{}", label("function"), field_str(self.func))?;
        writeln!(w, "{}{}", label("line #"), self.line)?;
        if self.ino != 0 {
            writeln!(w, "{}{}", label("inode #"), self.ino)?;
        }
        if self.block != 0 {
            writeln!(w, "{}{}", label("block #"), self.block)?;
        }
        if self.errcode != 0 {
            writeln!(w, "{}{}", label("err"), errcode_name(self.errcode))?;
        }
        Ok(())
    }
}

/// MMP, quota inodes, checksums, encryption salt, encoding, orphan file.
pub(super) fn list_super_tail(w: &mut impl Write, sb: &Superblock) -> std::io::Result<()> {
    let f = sb.features();
    if f.incompat.contains(Incompat::MMP) {
        writeln!(w, "MMP block number:         {}", sb.s_mmp_block.get())?;
        writeln!(w, "MMP update interval:      {}", sb.s_mmp_interval.get())?;
    }
    for (label, ino) in [
        ("User quota inode:", sb.s_usr_quota_inum.get()),
        ("Group quota inode:", sb.s_grp_quota_inum.get()),
        ("Project quota inode:", sb.s_prj_quota_inum.get()),
    ] {
        if ino != 0 {
            writeln!(w, "{label:<26}{ino}")?;
        }
    }
    if f.ro_compat.contains(RoCompat::METADATA_CSUM) {
        let kind = if sb.s_checksum_type == 1 { "crc32c" } else { "unknown" };
        writeln!(w, "Checksum type:            {kind}")?;
        writeln!(w, "Checksum:                 0x{:08x}", sb.s_checksum.get())?;
    }
    if !is_null(&sb.s_encrypt_pw_salt) {
        writeln!(w, "Encryption PW Salt:       {}", format_uuid(&sb.s_encrypt_pw_salt))?;
    }
    if f.incompat.contains(Incompat::CSUM_SEED) {
        writeln!(w, "Checksum seed:            0x{:08x}", sb.s_checksum_seed.get())?;
    }
    if f.incompat.contains(Incompat::CASEFOLD) {
        let enc = match sb.s_encoding.get() {
            1 => "utf8-12.1".to_string(),
            e => format!("UNKNOWN_ENCODING_{e}"),
        };
        writeln!(w, "Character encoding:       {enc}")?;
    }
    if f.compat.contains(Compat::ORPHAN_FILE) {
        writeln!(w, "Orphan file inode:        {}", sb.s_orphan_file_inum.get())?;
    }
    Ok(())
}

/// The journal superblock, as e2p's `e2p_list_journal_super`.
pub(super) fn list_journal(w: &mut impl Write, jsb: &JournalSuperblock, fs_block_size: u32, fast_commit: bool) -> std::io::Result<()> {
    let names = journal_feature_names(jsb);
    writeln!(w, "Journal features:         {}", if names.is_empty() { "(none)".into() } else { names.join(" ") })?;
    let size = (jsb.s_blocksize.get() / 1024).wrapping_mul(jsb.s_maxlen.get());
    let size = if size < 8192 { format!("{size}k") } else { format!("{}M", size >> 10) };
    writeln!(w, "Total journal size:       {size}")?;
    if jsb.s_blocksize.get() != fs_block_size {
        writeln!(w, "Journal block size:       {}", jsb.s_blocksize.get())?;
    }
    let fc = fast_commit_blocks(jsb, fast_commit);
    writeln!(w, "Total journal blocks:     {}", jsb.s_maxlen.get())?;
    writeln!(w, "Max transaction length:   {}", jsb.s_maxlen.get().wrapping_sub(fc))?;
    writeln!(w, "Fast commit length:       {fc}")?;
    if jsb.s_first.get() != 1 {
        writeln!(w, "Journal first block:      {}", jsb.s_first.get())?;
    }
    writeln!(w, "Journal sequence:         0x{:08x}", jsb.s_sequence.get())?;
    writeln!(w, "Journal start:            {}", jsb.s_start.get())?;
    let users = jsb.s_nr_users.get();
    if users != 1 {
        writeln!(w, "Journal number of users:  {users}")?;
    }
    if jsb.s_feature_compat.get() & jf::COMPAT_CHECKSUM != 0 {
        writeln!(w, "Journal checksum type:    crc32")?;
    }
    if jsb.s_feature_incompat.get() & (jf::INCOMPAT_CSUM_V2 | jf::INCOMPAT_CSUM_V3) != 0 {
        let kind = if jsb.s_checksum_type == jf::CHECKSUM_CRC32C { "crc32c" } else { "unknown" };
        writeln!(w, "Journal checksum type:    {kind}")?;
        writeln!(w, "Journal checksum:         0x{:08x}", jsb.s_checksum.get())?;
    }
    if users > 1 || !is_null(&jsb.s_users[..16]) {
        for (i, u) in jsb.s_users.chunks(16).take(users.min(48) as usize).enumerate() {
            let label = if i == 0 { "Journal users:            " } else { "                          " };
            writeln!(w, "{label}{}", format_uuid(u.try_into().expect("16 bytes")))?;
        }
    }
    if jsb.s_errno.get() != 0 {
        writeln!(w, "Journal errno:            {}", jsb.s_errno.get() as i32)?;
    }
    Ok(())
}

/// The MMP block, as dumpe2fs' `print_mmp_block`.
pub(super) fn list_mmp(w: &mut impl Write, m: &MmpBlock) -> std::io::Result<()> {
    writeln!(w, "MMP_block:")?;
    writeln!(w, "    mmp_magic: 0x{:x}", m.mmp_magic.get())?;
    writeln!(w, "    mmp_check_interval: {}", m.mmp_check_interval.get())?;
    writeln!(w, "    mmp_sequence: {}", alt_hex8(m.mmp_seq.get()))?;
    writeln!(w, "    mmp_update_date: {}", ctime(m.mmp_time.get() as i64))?;
    writeln!(w, "    mmp_update_time: {}", m.mmp_time.get())?;
    writeln!(w, "    mmp_node_name: {}", field_str(&m.mmp_nodename))?;
    writeln!(w, "    mmp_device_name: {}", field_str(&m.mmp_bdevname))
}

/// Where a group's metadata block lies: `(+n)` inside the group, or
/// `(bg #g + n)` in another group of a flex_bg filesystem.
pub(super) fn rel_offset(geo: &Geometry, block: u64, itable: bool, first: u64, last: u64) -> String {
    if (first..=last).contains(&block) {
        if itable && block == first {
            return String::new();
        }
        return format!(" (+{})", (block - first) as u32);
    }
    if geo.features.incompat.contains(Incompat::FLEX_BG) {
        let (g, _) = geo.block_group(block);
        return format!(" (bg #{g} + {})", block.wrapping_sub(geo.group_first_block(g)) as u32);
    }
    String::new()
}

/// The free runs of a bitmap of `bits` entries, numbered from `base`,
/// each entry `ratio` blocks wide (dumpe2fs' `print_free`).
pub(super) fn free_ranges(bitmap: &[u8], bits: u32, base: u64, ratio: u64) -> Ranges {
    let used = |i: u32| bitmap[i as usize / 8] & (1 << (i % 8)) != 0;
    let mut out = Vec::new();
    let mut i = 0;
    while i < bits {
        if used(i) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bits && !used(i) {
            i += 1;
        }
        out.push(((u64::from(start) + base) * ratio, (u64::from(i - 1) + base) * ratio));
    }
    out
}

/// Inclusive runs `(first, last)`.
pub(super) type Ranges = Vec<(u64, u64)>;

/// The free block and inode runs of a group, as dumpe2fs numbers them.
pub(super) fn group_free(geo: &Geometry, r: &GroupReport) -> (Ranges, Ranges) {
    let ratio = u64::from(geo.cluster_ratio);
    let cpg = geo.clusters_per_group;
    let base = u64::from(geo.first_data_block) / ratio + u64::from(r.group) * u64::from(cpg);
    let blocks = free_ranges(&r.block_bitmap, cpg, base, ratio);
    let ipg = geo.inodes_per_group;
    let inodes = free_ranges(&r.inode_bitmap, ipg, 1 + u64::from(r.group) * u64::from(ipg), 1);
    (blocks, inodes)
}

pub(super) fn ranges_text(ranges: &[(u64, u64)], num: Numbers) -> String {
    let parts: Vec<String> = ranges.iter().map(|&(a, b)| if a == b { num.one(a) } else { num.range(a, b) }).collect();
    parts.join(", ")
}

/// The group's last block.
pub(super) fn group_last(geo: &Geometry, g: u32) -> u64 {
    if g + 1 == geo.group_count { geo.blocks_count - 1 } else { geo.group_first_block(g) + u64::from(geo.blocks_per_group) - 1 }
}

/// The uninit and zeroed flags dumpe2fs shows (only with group checksums).
pub(super) fn flag_names(geo: &Geometry, flags: GroupDescFlags) -> Vec<&'static str> {
    if geo.csum == CsumKind::None {
        return Vec::new();
    }
    [
        (GroupDescFlags::INODE_UNINIT, "INODE_UNINIT"),
        (GroupDescFlags::BLOCK_UNINIT, "BLOCK_UNINIT"),
        (GroupDescFlags::ITABLE_ZEROED, "ITABLE_ZEROED"),
    ]
    .into_iter()
    .filter(|(f, _)| flags.contains(*f))
    .map(|(_, n)| n)
    .collect()
}

/// One group, as dumpe2fs' `list_desc`.
pub(super) fn list_group(w: &mut impl Write, geo: &Geometry, r: &GroupReport, num: Numbers) -> std::io::Result<()> {
    let g = r.group;
    let d = &r.desc;
    let (first, last) = (geo.group_first_block(g), group_last(geo, g));
    write!(w, "Group {g}: (Blocks {})", num.range(first, last))?;
    if geo.has_group_csum() {
        write!(w, " csum 0x{:04x}", d.checksum)?;
        if d.checksum != r.expected_checksum {
            write!(w, " (EXPECTED 0x{:04x})", r.expected_checksum)?;
        }
    }
    let flags = flag_names(geo, d.flags);
    if !flags.is_empty() {
        write!(w, " [{}]", flags.join(", "))?;
    }
    writeln!(w)?;
    list_group_copies(w, geo, g, num)?;
    write!(w, "  Block bitmap at {}{}", num.one(d.block_bitmap), rel_offset(geo, d.block_bitmap, false, first, last))?;
    if geo.metadata_csum() {
        write!(w, ", csum 0x{:08x}", d.block_bitmap_csum)?;
    }
    let sep = if std::env::var_os("DUMPE2FS_IGNORE_80COL").is_some() { "," } else { "\n " };
    write!(w, "{sep} Inode bitmap at {}{}", num.one(d.inode_bitmap), rel_offset(geo, d.inode_bitmap, false, first, last))?;
    if geo.metadata_csum() {
        write!(w, ", csum 0x{:08x}", d.inode_bitmap_csum)?;
    }
    let itable_end = d.inode_table + u64::from(geo.inode_table_blocks) - 1;
    writeln!(w, "\n  Inode table at {}{}", num.range(d.inode_table, itable_end), rel_offset(geo, d.inode_table, true, first, last))?;
    let units = if geo.cluster_ratio > 1 { "clusters" } else { "blocks" };
    write!(w, "  {} free {units}, {} free inodes, {} directories", d.free_blocks_count, d.free_inodes_count, d.used_dirs_count)?;
    if d.itable_unused != 0 {
        write!(w, ", {} unused inodes", d.itable_unused)?;
    }
    let (blocks, inodes) = group_free(geo, r);
    writeln!(w, "\n  Free blocks: {}", ranges_text(&blocks, num))?;
    writeln!(w, "  Free inodes: {}", ranges_text(&inodes, num))
}

/// The superblock and descriptor copies line(s) of a group.
pub(super) fn list_group_copies(w: &mut impl Write, geo: &Geometry, g: u32, num: Numbers) -> std::io::Result<()> {
    let l = geo.group_layout(g);
    let mut has_super = g == 0 || l.super_blk.is_some();
    if has_super {
        let which = if g == 0 { "Primary" } else { "Backup" };
        write!(w, "  {which} superblock at {}", num.one(l.super_blk.unwrap_or(0)))?;
    }
    let old = u64::from(geo.old_desc_blocks());
    if let Some(d) = l.old_desc_blk {
        write!(w, ", Group descriptors at {}", num.range(d, (d + old).wrapping_sub(1)))?;
        let rsv = u64::from(geo.reserved_gdt_blocks);
        if rsv != 0 {
            write!(w, "\n  Reserved GDT blocks at {}", num.range(d + old, d + old + rsv - 1))?;
        }
    } else if let Some(d) = l.new_desc_blk {
        write!(w, "{} Group descriptor at {}", if has_super { "," } else { " " }, num.one(d))?;
        has_super = true;
    }
    if has_super {
        writeln!(w)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_runs() {
        // Bits 0, 1 and 5 used out of 8.
        assert_eq!(free_ranges(&[0b0010_0011], 8, 1, 1), vec![(3, 5), (7, 8)]);
    }
}

//! The superblock of the new filesystem, field by field as mke2fs leaves
//! it after `ext2fs_close` (primary copy), and the backup copies.

use ext4_ondisk::superblock::{EXT4_MAGIC, FLAGS_SIGNED_HASH, STATE_VALID, Superblock};
use ext4_ondisk::{Compat, Incompat, RoCompat};

use crate::build::Build;
use crate::features::{has_compat, has_incompat, has_ro};
use crate::resolve::Params;

/// `EXT2_DFL_MAX_MNT_COUNT`.
const DFL_MAX_MNT_COUNT: u16 = 20;
/// mke2fs' check interval when periodic checks are on: 180 days.
const DFL_CHECKINTERVAL: u32 = 86400 * 180;

impl Build {
    /// Whether `s_kbytes_written` starts at 1 (mke2fs does so when any
    /// ext4-only feature is on, so that the kernel keeps counting).
    pub fn counts_kbytes_written(&self) -> bool {
        let f = &self.model.shape.features;
        has_incompat(f, Incompat::FLEX_BG)
            || has_ro(f, RoCompat::HUGE_FILE)
            || has_ro(f, RoCompat::GDT_CSUM)
            || has_ro(f, RoCompat::DIR_NLINK)
            || has_ro(f, RoCompat::METADATA_CSUM)
            || has_ro(f, RoCompat::EXTRA_ISIZE)
    }

    /// `s_kbytes_written` as mke2fs leaves it (see the `kbytes` module).
    pub fn kbytes_written(&self) -> u64 {
        if !self.counts_kbytes_written() {
            return 0;
        }
        let s = &self.model.shape;
        let bytes = crate::kbytes::bytes_written(&self.model, &self.io, self.metadata_csum());
        let meta_blks = u64::from(s.desc_blocks) + 1;
        1 + (bytes >> 10) + meta_blks / (s.bs() / 1024)
    }

    /// The primary superblock, without its checksum. `kbytes_written` is the
    /// final `s_kbytes_written`.
    pub fn superblock(&self, kbytes_written: u64) -> Superblock {
        let s = &self.model.shape;
        let p = &self.params;
        let mut sb = Superblock::zeroed();
        sb.set_features(s.features);
        sb.s_inodes_count.set(s.inodes_count);
        sb.set_blocks_count(s.blocks_count);
        sb.set_r_blocks_count(s.r_blocks_count);
        sb.set_free_blocks_count(self.model.free_blocks());
        sb.s_free_inodes_count.set(s.inodes_count - self.model.inodes_used.len() as u32);
        sb.s_first_data_block.set(s.first_data_block as u32);
        sb.s_log_block_size.set(s.log_block_size);
        sb.s_log_cluster_size.set(s.log_block_size);
        sb.s_blocks_per_group.set(s.blocks_per_group);
        sb.s_clusters_per_group.set(s.blocks_per_group);
        sb.s_inodes_per_group.set(s.inodes_per_group);
        set_identity(&mut sb, p);
        sb.s_inode_size.set(s.inode_size as u16);
        sb.s_reserved_gdt_blocks.set(s.reserved_gdt_blocks as u16);
        sb.s_desc_size.set(s.s_desc_size as u16);
        sb.s_first_meta_bg.set(s.first_meta_bg);
        if let Some(e) = &self.external {
            sb.s_journal_uuid = e.uuid;
            sb.s_journal_dev.set(e.rdev);
        }
        if let Some(j) = self.jnl_blocks {
            sb.s_journal_inum.set(ext4_ondisk::ino::JOURNAL);
            sb.s_jnl_backup_type = 1;
            for (w, v) in sb.s_jnl_blocks.iter_mut().zip(j) {
                w.set(v);
            }
        }
        sb.s_min_extra_isize.set(s.extra_isize);
        sb.s_want_extra_isize.set(s.extra_isize);
        sb.s_flags.set(FLAGS_SIGNED_HASH | p.extra_flags);
        if self.mmp_block != 0 {
            sb.s_mmp_interval.set(p.mmp_update_interval as u16);
            sb.s_mmp_block.set(self.mmp_block);
        } else {
            sb.s_mmp_interval.set(p.mmp_update_interval as u16);
        }
        sb.s_log_groups_per_flex = s.log_groups_per_flex as u8;
        if has_ro(&s.features, RoCompat::METADATA_CSUM) {
            sb.s_checksum_type = ext4_ondisk::superblock::CHECKSUM_TYPE_CRC32C;
        }
        sb.s_kbytes_written.set(kbytes_written);
        sb.s_overhead_clusters.set(self.overhead as u32);
        if has_compat(&s.features, Compat::SPARSE_SUPER2) {
            sb.s_backup_bgs[0].set(s.backup_bgs[0]);
            sb.s_backup_bgs[1].set(s.backup_bgs[1]);
        }
        if has_incompat(&s.features, Incompat::CSUM_SEED) {
            sb.s_checksum_seed.set(self.csum_seed);
        }
        sb.s_orphan_file_inum.set(self.orphan_ino);
        sb
    }
}

/// The fields mke2fs sets from its options alike on a filesystem and on a
/// journal device: times, state, error behaviour, periodic checks,
/// revision, UUID, label, last-mounted directory, hash seed and version,
/// default mount options, RAID geometry.
pub(crate) fn set_identity(sb: &mut Superblock, p: &Params) {
    let t = p.time;
    sb.s_wtime.set(t);
    sb.s_magic.set(EXT4_MAGIC);
    sb.s_state.set(STATE_VALID);
    sb.s_errors.set(p.errors);
    sb.s_lastcheck.set(t);
    sb.s_mkfs_time.set(t);
    if p.periodic_fsck {
        sb.s_checkinterval.set(DFL_CHECKINTERVAL);
        let jitter: u32 = p.uuid.iter().map(|&b| u32::from(b)).sum();
        sb.s_max_mnt_count.set(DFL_MAX_MNT_COUNT + (jitter % u32::from(DFL_MAX_MNT_COUNT)) as u16);
    } else {
        sb.s_max_mnt_count.set(0xFFFF);
    }
    sb.s_rev_level.set(1);
    sb.s_first_ino.set(crate::shape::FIRST_INO);
    sb.s_uuid = p.uuid;
    sb.s_volume_name[..p.label.len()].copy_from_slice(&p.label);
    sb.s_last_mounted[..p.last_mounted.len()].copy_from_slice(&p.last_mounted);
    for (i, w) in sb.s_hash_seed.iter_mut().enumerate() {
        w.set(ext4_ondisk::get_u32(&p.hash_seed, i * 4));
    }
    sb.s_def_hash_version = p.hash_alg;
    sb.s_default_mount_opts.set(p.default_mount_opts);
    sb.s_raid_stride.set(p.raid_stride as u16);
    sb.s_raid_stripe_width.set(p.raid_stripe_width);
}

/// A backup copy of `primary` for group `g`: the group number, the state
/// without "clean" (as `ext2fs_flush` writes backups), its own checksum.
pub fn backup_superblock(primary: &Superblock, g: u32) -> Superblock {
    let mut sb = primary.clone();
    sb.s_block_group_nr.set(g.min(65535) as u16);
    sb.s_state.set(primary.s_state.get() & !STATE_VALID);
    sb.update_checksum();
    sb
}

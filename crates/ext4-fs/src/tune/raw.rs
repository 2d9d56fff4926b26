//! Superblock-only changes (label, error behaviour, reserved blocks, mount
//! counts, options, a UUID no checksum depends on) to filesystems the rest
//! of the library cannot write (`bigalloc`, `quota`, `casefold`, ...): the
//! primary and every backup superblock are rewritten, nothing else is read.

use ext4_blockdev::BlockDevice;
use ext4_ondisk::superblock::{SUPERBLOCK_OFFSET, Superblock};
use ext4_ondisk::{Incompat, RoCompat};
use zerocopy::IntoBytes;

use super::fields::Fields;
use super::{Tune, Tuned, edit_mount_options};
use crate::error::{Error, Result};

/// Whether `t` changes only the superblock of the filesystem `sb` describes.
pub(super) fn superblock_only(t: &Tune, sb: &Superblock) -> bool {
    let f = sb.features();
    let uuid_free = !f.ro_compat.intersects(RoCompat::METADATA_CSUM | RoCompat::GDT_CSUM) && !f.incompat.contains(Incompat::EA_INODE);
    let uuid_ok = t.uuid.is_none() || f.incompat.contains(Incompat::CSUM_SEED) || uuid_free;
    t.features.is_none() && t.journal.is_none() && t.orphan_file_blocks.is_none() && uuid_ok
}

/// Applies `t` to the superblock of `dev` and writes it and its backups.
pub(super) fn tune_superblock(dev: &dyn BlockDevice, t: &Tune) -> Result<Tuned> {
    let (mut sb, geo) = crate::fs::read_superblock(dev)?;
    sb.verify_checksum().map_err(|e| Error::format(&e, crate::error::Location::Superblock))?;
    let f = sb.features();
    if f.incompat.contains(Incompat::RECOVER) {
        return Err(Error::Unsupported("the journal needs recovery, which this filesystem's features keep this library from doing".into()));
    }
    if f.incompat.contains(Incompat::MMP) && !t.force {
        return Err(Error::Unsupported(
            "multi-mount protection on a filesystem this library cannot open for writing (force to skip it)".into(),
        ));
    }
    let mut out = Tuned::default();
    let mut fields = Fields { sb: &mut sb, t, notes: &mut out.notes };
    fields.set_fields()?;
    if let Some(spec) = &t.default_mount_options {
        let opts = edit_mount_options(fields.sb.s_default_mount_opts.get(), spec).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        fields.sb.s_default_mount_opts.set(opts);
    }
    fields.set_extended()?;
    if let Some(uuid) = t.uuid {
        fields.sb.s_uuid = uuid;
    }
    fields.set_late_fields();
    let now = crate::time::fixed_time_from_env().unwrap_or_else(crate::time::now);
    sb.s_wtime.set(now.secs as u32);
    sb.s_wtime_hi = (now.secs >> 32) as u8;
    sb.update_checksum();
    for g in 1..geo.group_count {
        if let Some(b) = geo.group_layout(g).super_blk {
            dev.write_at(b * u64::from(geo.block_size), sb.backup_copy(g).as_bytes())?;
        }
    }
    dev.flush()?;
    dev.write_at(SUPERBLOCK_OFFSET, sb.as_bytes())?;
    dev.flush()?;
    out.notes.push("the filesystem's features keep this library from writing anything but its superblocks: only those were changed".into());
    Ok(out)
}

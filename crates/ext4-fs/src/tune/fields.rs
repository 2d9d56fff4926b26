//! The superblock fields a tune sets directly (tune2fs' `-c -C -e -g -i -m
//! -r -T -u -L -M`, and `-E` except the orphan file), with tune2fs' limits
//! and messages.

use ext4_ondisk::superblock::{FLAGS_TEST_FILESYS, STATE_ERROR};

use ext4_ondisk::superblock::Superblock;

use super::Tune;
use crate::error::{Error, Result};

/// `EXT4_MMP_UPDATE_INTERVAL`: the interval `mmp_update_interval=0` means.
const MMP_DEFAULT_INTERVAL: u16 = 5;
/// `EXT4_MMP_MAX_UPDATE_INTERVAL`.
const MMP_MAX_INTERVAL: u16 = 300;

/// Copies `text` into a fixed-size, NUL-padded field, cut to its length.
fn set_cstr(field: &mut [u8], text: &[u8]) {
    field.fill(0);
    let n = text.len().min(field.len());
    field[..n].copy_from_slice(&text[..n]);
}

/// The superblock being tuned, the request, and the notes of what was done.
pub(super) struct Fields<'a> {
    pub(super) sb: &'a mut Superblock,
    pub(super) t: &'a Tune,
    pub(super) notes: &'a mut Vec<String>,
}

impl Fields<'_> {
    /// The plain fields, in tune2fs' order.
    pub(super) fn set_fields(&mut self) -> Result<()> {
        let t = self.t;
        let sb = &mut *self.sb;
        if let Some(c) = t.max_mount_count {
            sb.s_max_mnt_count.set(c as u16);
            self.notes.push(format!("Setting maximal mount count to {c}"));
        }
        if let Some(c) = t.mount_count {
            sb.s_mnt_count.set(c);
            self.notes.push(format!("Setting current mount count to {c}"));
        }
        if let Some(e) = t.errors {
            if !(1..=3).contains(&e) {
                return Err(Error::InvalidArgument(format!("bad error behavior {e} (1 continue, 2 remount-ro, 3 panic)")));
            }
            sb.s_errors.set(e);
            self.notes.push(format!("Setting error behavior to {e}"));
        }
        if let Some(g) = t.reserved_gid {
            sb.s_def_resgid.set(g);
            self.notes.push(format!("Setting reserved blocks gid to {g}"));
        }
        if let Some(i) = t.check_interval {
            let i = u32::try_from(i).map_err(|_| Error::InvalidArgument(format!("interval between checks is too big ({i})")))?;
            sb.s_checkinterval.set(i);
            self.notes.push(format!("Setting interval between checks to {i} seconds"));
        }
        self.set_reserved()?;
        let sb = &mut *self.sb;
        if let Some(when) = t.last_checked {
            sb.s_lastcheck.set(when as u32);
            sb.s_lastcheck_hi = (when >> 32) as u8;
            self.notes.push(format!("Setting time filesystem last checked to {when}"));
        }
        if let Some(u) = t.reserved_uid {
            sb.s_def_resuid.set(u);
            self.notes.push(format!("Setting reserved blocks uid to {u}"));
        }
        if let Some(label) = &t.label {
            if label.len() > sb.s_volume_name.len() {
                self.notes.push("Warning: label too long, truncating.".into());
            }
            set_cstr(&mut sb.s_volume_name, label);
        }
        if let Some(dir) = &t.last_mounted {
            set_cstr(&mut sb.s_last_mounted, dir);
        }
        Ok(())
    }

    /// `-m` and `-r`: the reserved block count.
    fn set_reserved(&mut self) -> Result<()> {
        let sb = &mut *self.sb;
        let blocks = sb.blocks_count();
        if let Some(p) = self.t.reserved_percent {
            if !(0.0..=50.0).contains(&p) {
                return Err(Error::InvalidArgument(format!("bad reserved block ratio {p} (0 to 50)")));
            }
            // As tune2fs computes it: in floating point, truncated.
            let n = (p * blocks as f64 / 100.0) as u64;
            sb.set_r_blocks_count(n);
            self.notes.push(format!("Setting reserved blocks percentage to {p}% ({n} blocks)"));
        }
        if let Some(n) = self.t.reserved_blocks {
            if n > blocks / 2 {
                return Err(Error::InvalidArgument(format!("reserved blocks count is too big ({n})")));
            }
            sb.set_r_blocks_count(n);
            self.notes.push(format!("Setting reserved blocks count to {n}"));
        }
        Ok(())
    }

    /// The `-E` options applied where tune2fs parses them (after `-O`);
    /// returns the orphan file size asked for, in blocks.
    pub(super) fn set_extended(&mut self) -> Result<Option<u64>> {
        let t = self.t;
        let sb = &mut *self.sb;
        if let Some(i) = t.mmp_update_interval {
            if i > MMP_MAX_INTERVAL {
                return Err(Error::InvalidArgument(format!("mmp_update_interval too big: {i}")));
            }
            let i = if i == 0 { MMP_DEFAULT_INTERVAL } else { i };
            sb.s_mmp_interval.set(i);
            self.notes.push(format!("Setting multiple mount protection update interval to {i} seconds"));
        }
        if t.force_fsck {
            sb.s_state.set(sb.s_state.get() | STATE_ERROR);
            self.notes.push("Setting filesystem error flag to force fsck.".into());
        }
        match t.test_fs {
            Some(true) => {
                sb.s_flags.set(sb.s_flags.get() | FLAGS_TEST_FILESYS);
                self.notes.push("Setting test filesystem flag".into());
            }
            Some(false) => {
                sb.s_flags.set(sb.s_flags.get() & !FLAGS_TEST_FILESYS);
                self.notes.push("Clearing test filesystem flag".into());
            }
            None => {}
        }
        if let Some(h) = t.hash_alg {
            sb.s_def_hash_version = h;
            self.notes.push(format!("Setting default hash algorithm to {h}"));
        }
        if t.orphan_file_blocks == Some(0) {
            return Err(Error::InvalidArgument("invalid size of orphan file (at least one block)".into()));
        }
        if let Some(o) = &t.mount_opts {
            if o.len() >= sb.s_mount_opts.len() {
                return Err(Error::InvalidArgument("extended mount options too long (at most 63 bytes)".into()));
            }
        }
        Ok(t.orphan_file_blocks)
    }

    /// The fields tune2fs sets last: RAID hints and the mount options string.
    pub(super) fn set_late_fields(&mut self) {
        let t = self.t;
        let sb = &mut *self.sb;
        if let Some(s) = t.raid_stride {
            sb.s_raid_stride.set(s);
            self.notes.push(format!("Setting stride size to {s}"));
        }
        if let Some(w) = t.raid_stripe_width {
            sb.s_raid_stripe_width.set(w);
            self.notes.push(format!("Setting stripe width to {w}"));
        }
        if let Some(o) = &t.mount_opts {
            set_cstr(&mut sb.s_mount_opts, o);
            self.notes.push(format!("Setting extended default mount options to '{}'", String::from_utf8_lossy(o)));
        }
    }
}

//! The copies `ext2fs_flush` writes after the primary: every backup
//! superblock (each with its group number, not clean, without
//! `needs_recovery`), and, when descriptors changed, every copy of the
//! descriptor table (old-style copies after each backup superblock, and
//! with `meta_bg` the three copies of each meta group's block).

use zerocopy::IntoBytes;

use crate::error::Result;
use crate::fs::Filesystem;

/// Writes the backups of the superblock as it is in memory (already
/// committed as the primary), and the descriptor copies if `descs_changed`.
pub(super) fn write_backups(fs: &mut Filesystem, descs_changed: bool) -> Result<()> {
    let geo = fs.geo.clone();
    let bs = u64::from(geo.block_size);
    let table = if descs_changed { primary_table(fs)? } else { Vec::new() };
    let old_blocks = geo.old_desc_blocks().min(geo.gdt_blocks()) as usize;
    for g in 0..geo.group_count {
        let l = geo.group_layout(g);
        if let (Some(b), true) = (l.super_blk, g > 0) {
            fs.dev.write_at(b * bs, fs.sb.backup_copy(g).as_bytes())?;
        }
        if table.is_empty() {
            continue;
        }
        if let Some(d) = l.old_desc_blk {
            for (i, block) in table.iter().take(old_blocks).enumerate() {
                fs.dev.write_at((d + i as u64) * bs, block)?;
            }
        }
        if let Some(d) = l.new_desc_blk {
            fs.dev.write_at(d * bs, &table[(g / geo.descs_per_block) as usize])?;
        }
    }
    fs.dev.flush()?;
    Ok(())
}

/// The primary descriptor table, block by block.
fn primary_table(fs: &Filesystem) -> Result<Vec<Vec<u8>>> {
    let geo = &fs.geo;
    (0..geo.gdt_blocks()).map(|i| fs.read_meta(geo.group_desc_block(i * geo.descs_per_block), <[u8]>::to_vec)).collect()
}

//! Superblock parse and geometry derivation: raw bytes, or bytes laid over
//! the template's valid superblock (so the fuzzer starts past the magic).
#![no_main]

use ext4_fs::ondisk::{Geometry, Superblock};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut sb = ext4_fuzz::template(mode & 2 != 0)[1024..2048].to_vec();
    if mode & 1 == 0 {
        sb.fill(0);
        sb[..rest.len().min(1024)].copy_from_slice(&rest[..rest.len().min(1024)]);
    } else {
        ext4_fuzz::apply_patches(&mut sb, rest);
    }
    let Ok(sb) = Superblock::from_bytes(&sb) else { return };
    let _ = sb.verify_checksum();
    let _ = (sb.features(), sb.blocks_count(), sb.free_blocks_count(), sb.volume_name(), sb.hash_seed());
    let Ok(geo) = Geometry::new(&sb) else { return };
    let _ = (geo.gdt_blocks(), geo.meta_bg(), geo.metadata_csum(), geo.is_64bit());
    // Group arithmetic at the edges, and one past them (saturating, no panic).
    for g in [0, 1, geo.group_count / 2, geo.group_count.saturating_sub(1), geo.group_count] {
        let _ = (geo.group_first_block(g), geo.blocks_in_group(g), geo.group_has_super(g), geo.group_desc_block(g));
        let _ = geo.group_overhead_blocks(g);
    }
    for b in [0, u64::from(geo.first_data_block), geo.blocks_count.saturating_sub(1), u64::MAX] {
        let _ = geo.block_group(b);
    }
    for ino in [0, 1, geo.first_ino, u32::MAX] {
        let _ = geo.inode_group(ino);
    }
});

//! Group descriptor parse and checksum verification (64-byte descriptors
//! with crc32c from the ext4 template, 32-byte with none from the ext2 one),
//! and a write/checksum/parse round trip.
#![no_main]

use ext4_fs::ondisk::group_desc::{GroupDesc, update_group_desc_checksum, verify_group_desc};
use ext4_fs::ondisk::{Geometry, Superblock};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let sb = Superblock::from_bytes(&ext4_fuzz::template(mode & 1 != 0)[1024..2048]).expect("template superblock");
    let geo = Geometry::new(&sb).expect("template geometry");
    let ds = geo.desc_size as usize;
    let group = ext4_fuzz::word(data, 1) % geo.group_count.max(1);
    let raw = rest.get(4..).unwrap_or(&[]);
    let _ = verify_group_desc(&geo, group, raw);
    if let Ok(gd) = GroupDesc::parse(raw, ds) {
        let mut out = vec![0u8; ds];
        gd.write(&mut out, ds);
        update_group_desc_checksum(&geo, group, &mut out);
        let again = GroupDesc::parse(&out, ds).expect("a written descriptor parses");
        assert!(verify_group_desc(&geo, group, &out).is_ok() || !geo.has_group_csum(), "fresh checksum refused");
        let _ = again;
    }
});

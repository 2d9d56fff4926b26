//! Extended attribute parsing: an xattr block (header, entries, names,
//! values, checksum, hashes) or an in-inode area.
#![no_main]

use ext4_fs::ondisk::Structure;
use ext4_fs::ondisk::xattr::{BLOCK_HEADER_SIZE, XattrEntryIter, decode_name, entry_hash, parse_block_header, verify_xattr_block};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, area)) = data.split_first() else { return };
    let (start, structure) = if mode & 1 == 0 {
        let _ = parse_block_header(area);
        let _ = verify_xattr_block(0x1234_5678, 77, area);
        (BLOCK_HEADER_SIZE, Structure::XattrBlock)
    } else {
        (4, Structure::InodeXattrs)
    };
    let mut iter = XattrEntryIter::new(area, start, structure);
    for e in iter.by_ref() {
        let Ok(e) = e else { break };
        let _ = decode_name(e.name_index, e.name);
        let base = if structure == Structure::XattrBlock { 0 } else { 4 };
        let off = base + usize::from(e.value_offs);
        let value = area.get(off..off.saturating_add(e.value_size as usize));
        let _ = entry_hash(e.name, value);
    }
    let _ = iter.end();
});

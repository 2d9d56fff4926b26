//! Directory entry iteration over one block (with and without filetype,
//! with and without a checksum tail).
#![no_main]

use ext4_fs::ondisk::dir::{DirEntryIter, has_tail, verify_dir_block};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let block_size = if mode & 1 == 0 { 1024 } else { 4096 };
    let mut block = rest.to_vec();
    block.resize(block_size, 0);
    let _ = has_tail(&block);
    let _ = verify_dir_block(0x1234_5678, &block);
    let mut n = 0;
    for e in DirEntryIter::new(&block, block_size as u32, mode & 2 != 0) {
        let Ok(e) = e else { break };
        let _ = (e.file_type(), e.is_tail(), e.slack());
        n += 1;
        assert!(n <= block_size, "more entries than bytes");
    }
});

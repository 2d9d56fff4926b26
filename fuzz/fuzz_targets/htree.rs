//! Directories over fuzz bytes through ext4-htree: listing, lookups and an
//! insert/remove, as a linear directory or an htree (first byte picks the
//! options: index, checksums, filetype, hash, large_dir).
#![no_main]

use std::ops::ControlFlow;

use ext4_fs::htree::{self, DirCtx};
use ext4_fs::ondisk::dx::HashVersion;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (mode, hash) = (data[0], data[1]);
    let block_size = if mode & 1 == 0 { 1024 } else { 4096 };
    let ctx = DirCtx {
        block_size: block_size as u32,
        csum_seed: (mode & 2 != 0).then_some(0x1234_5678),
        verify_checksums: mode & 4 != 0,
        filetype: mode & 8 != 0,
        dir_index: true,
        large_dir: mode & 16 != 0,
        hash_seed: [1, 2, 3, 4],
        default_hash: HashVersion::from_u8(hash % 6).unwrap_or(HashVersion::from_u8(1).expect("half_md4")),
        unsigned_hash: hash & 0x80 != 0,
        inodes_count: 4096,
    };
    let mut indexed = mode & 32 != 0;
    let mut io = ext4_fuzz::MemDir::new(block_size, &data[2..]);
    let mut names = Vec::new();
    let _ = htree::for_each_entry(&ctx, &mut io, indexed, |e| {
        if names.len() < 16 {
            names.push(e.name.to_vec());
        }
        ControlFlow::Continue(())
    });
    for n in &names {
        let _ = htree::lookup(&ctx, &mut io, indexed, n);
    }
    let _ = htree::lookup(&ctx, &mut io, indexed, b"absent-name");
    let _ = htree::is_empty(&ctx, &mut io, indexed);
    if mode & 64 != 0 {
        for i in 0..8 {
            let _ = htree::insert(&ctx, &mut io, &mut indexed, format!("new-entry-{i}").as_bytes(), 20 + i, 1);
        }
        if let Some(n) = names.iter().find(|n| n.as_slice() != b"." && n.as_slice() != b"..") {
            let _ = htree::remove(&ctx, &mut io, indexed, n);
        }
        let _ = htree::for_each_entry(&ctx, &mut io, indexed, |_| ControlFlow::Continue(()));
    }
});

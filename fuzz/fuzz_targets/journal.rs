//! jbd2 recovery over fuzz bytes: a journal of 1k blocks whose superblock
//! is either fuzzed too or a valid v2 superblock (so descriptor, commit and
//! revoke blocks are reached); scan, then replay into memory.
#![no_main]

use ext4_fs::jbd2::{JournalIo, MemoryJournal, recover, scan};
use libfuzzer_sys::fuzz_target;

/// A valid v2 journal superblock (big-endian, as jbd2 writes it) for a log of `len` blocks.
fn journal_superblock(len: u32, seq: u32, incompat: u32) -> Vec<u8> {
    let mut b = vec![0u8; 1024];
    let mut put = |at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    put(0, 0xC03B_3998); // h_magic
    put(4, 4); // h_blocktype: superblock v2
    put(12, 1024); // s_blocksize
    put(16, len); // s_maxlen
    put(20, 1); // s_first
    put(24, seq); // s_sequence
    put(28, 1); // s_start
    put(40, incompat); // s_feature_incompat
    b
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let blocks = 64u32;
    let mut j = MemoryJournal::new(1024, u64::from(blocks));
    if mode & 1 == 0 {
        let incompat = u32::from(mode >> 1) & 0x1f; // revoke, 64bit, async commit, csum v2/v3
        j.data[..1024].copy_from_slice(&journal_superblock(blocks, 7, incompat));
        let n = rest.len().min(j.data.len() - 1024);
        j.data[1024..1024 + n].copy_from_slice(&rest[..n]);
    } else {
        let n = rest.len().min(j.data.len());
        j.data[..n].copy_from_slice(&rest[..n]);
    }
    if let Ok(rec) = scan(&mut j, 1024) {
        let _ = (rec.needs_recovery(), rec.block_count(), rec.transactions(), rec.next_sequence());
        let blocks: Vec<u64> = rec.blocks().take(1000).collect();
        for b in blocks {
            let _ = rec.copy_of(b);
        }
    }
    let _ = j.len_blocks();
    let _ = recover(&mut j, 1024, |_b, d: &[u8]| -> Result<(), std::io::Error> {
        assert_eq!(d.len(), 1024);
        Ok(())
    });
});

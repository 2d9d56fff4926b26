//! The bodies of the fuzz targets, one function per target of
//! `fuzz_targets/` (each there is `fuzz_target!(|data| targets::NAME(data))`).
//! `crates/ext4-fs/tests/fuzz_regressions.rs` replays every committed input
//! of `fuzz/regressions/TARGET/` through [`run`] without libFuzzer, so a
//! regression input runs exactly the code the fuzzer ran.

use std::ops::ControlFlow;
use std::sync::Arc;

use ext4_fs::extent::{self, MapCtx, MapKind, Run};
use ext4_fs::htree::{self, DirCtx};
use ext4_fs::jbd2::{JournalIo, MemoryJournal, recover, scan};
use ext4_fs::ondisk::dir::{DirEntryIter, has_tail, verify_dir_block};
use ext4_fs::ondisk::dx::HashVersion;
use ext4_fs::ondisk::group_desc::{GroupDesc, update_group_desc_checksum, verify_group_desc};
use ext4_fs::ondisk::inode::verify_inode_checksum;
use ext4_fs::ondisk::xattr::{BLOCK_HEADER_SIZE, XattrEntryIter, decode_name, entry_hash, parse_block_header, verify_xattr_block};
use ext4_fs::ondisk::{Geometry, Inode, Structure, Superblock};
use ext4_fs::{Filesystem, OpenOptions};

use super::{apply_patches, apply_patches_to, template, word};
use crate::fsops::{self, Overlay};
use crate::hostile;
use crate::mem::{MemDir, MemMap};

/// A target's body.
pub type Body = fn(&[u8]);

/// Every target: (name, body). The names are the `[[bin]]`s of `fuzz/Cargo.toml`.
pub const TARGETS: &[(&str, Body)] = &[
    ("superblock", superblock),
    ("group_desc", group_desc),
    ("inode", inode),
    ("block_map", block_map),
    ("dir_block", dir_block),
    ("htree", htree),
    ("xattr", xattr),
    ("journal", journal),
    ("image", image),
    ("ops", ops),
];

/// Runs target `name` on `data`; `None` if there is no such target.
pub fn run(name: &str, data: &[u8]) -> Option<()> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| f(data))
}

/// Superblock parse and geometry derivation: raw bytes, or bytes laid over
/// the template's valid superblock (so the fuzzer starts past the magic).
pub fn superblock(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut sb = template(mode & 2 != 0)[1024..2048].to_vec();
    if mode & 1 == 0 {
        sb.fill(0);
        sb[..rest.len().min(1024)].copy_from_slice(&rest[..rest.len().min(1024)]);
    } else {
        apply_patches(&mut sb, rest);
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
}

/// Group descriptor parse and checksum verification (64-byte descriptors
/// with crc32c from the ext4 template, 32-byte with none from the ext2 one),
/// and a write/checksum/parse round trip.
pub fn group_desc(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let sb = Superblock::from_bytes(&template(mode & 1 != 0)[1024..2048]).expect("template superblock");
    let geo = Geometry::new(&sb).expect("template geometry");
    let ds = geo.desc_size as usize;
    let group = word(data, 1) % geo.group_count.max(1);
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
}

/// Inode record decode (128..1024 bytes), checksum, and a write/parse round trip.
pub fn inode(data: &[u8]) {
    let ino = word(data, 0);
    let raw = data.get(4..).unwrap_or(&[]);
    let _ = verify_inode_checksum(0x1234_5678, ino, raw);
    let Ok(inode) = Inode::parse(raw) else { return };
    let _ = (inode.file_type(), inode.permissions(), inode.has_extents(), inode.has_inline_data(), inode.device_number());
    let _ = inode.allocated_bytes(1024, true);
    let _ = inode.allocated_bytes(65536, false);
    let mut out = raw.to_vec();
    inode.write(&mut out);
    let again = Inode::parse(&out).expect("a written inode parses");
    assert_eq!(again.size, inode.size);
    assert_eq!(again.mode, inode.mode);
}

/// Block map walks over fuzz bytes: extent trees and indirect maps (first
/// byte picks), through lookup, run and map-block iteration, then a map and
/// an unmap edit on whatever the bytes describe.
pub fn block_map(data: &[u8]) {
    if data.len() < 61 {
        return;
    }
    let mode = data[0];
    let kind = if mode & 1 == 0 { MapKind::Extents } else { MapKind::Indirect };
    let block_size = if mode & 2 == 0 { 1024 } else { 4096 };
    let mut root = [0u8; 60];
    root.copy_from_slice(&data[1..61]);
    let mut io = MemMap::new(block_size, &data[61..]);
    let ctx = MapCtx {
        block_size: block_size as u32,
        first_data_block: u32::from(block_size == 1024),
        blocks_count: 1 << 20,
        csum_seed: (mode & 4 != 0).then_some(0xdead_beef),
    };
    for logical in [0u32, 1, 11, 12, 13, 268, 1000, 65_536, 1 << 24, u32::MAX] {
        let _ = extent::lookup(kind, &root, &ctx, &mut io, logical);
    }
    // Fuzzed indirect blocks full of pointers describe millions of blocks:
    // the walks stop early (the same code runs, fewer times).
    let mut runs = 0;
    let _ = extent::for_each_run(kind, &root, &ctx, &mut io, |_| {
        runs += 1;
        if runs > 10_000 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    });
    let mut map_blocks = 0;
    let _ = extent::for_each_map_block(kind, &root, &ctx, &mut io, |_| {
        map_blocks += 1;
        if map_blocks > 10_000 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    });
    if mode & 8 != 0 {
        let logical = word(data, 61) % 70_000;
        let run = Run { logical, physical: 9000, len: 1 + u32::from(mode >> 4), unwritten: false };
        let _ = extent::map_range(kind, &mut root, &ctx, &mut io, run);
        let _ = extent::unmap_range(kind, &mut root, &ctx, &mut io, logical / 2, u64::from(logical) + 40);
        let _ = extent::for_each_run(kind, &root, &ctx, &mut io, |_| ControlFlow::Continue(()));
    }
}

/// Directory entry iteration over one block (with and without filetype,
/// with and without a checksum tail).
pub fn dir_block(data: &[u8]) {
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
}

/// Directories over fuzz bytes through ext4-htree: listing, lookups and an
/// insert/remove, as a linear directory or an htree (first byte picks the
/// options: index, checksums, filetype, hash, large_dir).
pub fn htree(data: &[u8]) {
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
    let mut io = MemDir::new(block_size, &data[2..]);
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
}

/// Extended attribute parsing: an xattr block (header, entries, names,
/// values, checksum, hashes) or an in-inode area.
pub fn xattr(data: &[u8]) {
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
}

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

/// jbd2 recovery over fuzz bytes: a journal of 1k blocks whose superblock
/// is either fuzzed too or a valid v2 superblock (so descriptor, commit and
/// revoke blocks are reached); scan, then replay into memory.
pub fn journal(data: &[u8]) {
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
}

/// Whole images: byte patches laid over a valid populated template (ext4 or
/// ext2, 2 MiB of 1k blocks), opened read-only (checksums verified or not)
/// and walked whole; with the mode bit set, also opened read-write, written
/// to and closed.
pub fn image(data: &[u8]) {
    let Some((&mode, patches)) = data.split_first() else { return };
    // Copy-on-write views of the template: a run copies no whole image.
    let patched = || {
        let dev = Arc::new(Overlay::new(template(mode & 1 != 0)));
        apply_patches_to(&*dev, patches);
        dev
    };
    let opts = OpenOptions { verify_checksums: mode & 2 != 0, cache_blocks: 256, ..OpenOptions::read_only() };
    // Path calls (each a walk from the root) were most of a run's time;
    // 16 still reach every name of the root and its subdirectories.
    let lim = hostile::Limits { file_bytes: 64 << 10, inodes: 300, lookups_per_dir: 8, path_calls: 16 };
    if let Ok(fs) = Filesystem::open(patched(), opts.clone()) {
        hostile::walk(&fs, lim);
    }
    if mode & 4 != 0
        && let Ok(mut fs) = Filesystem::open(patched(), OpenOptions { write: true, ..opts })
    {
        hostile::write_workload(&mut fs);
        let _ = fs.close();
    }
}

/// Operation sequences (create, write, truncate, mkdir, unlink, rmdir,
/// rename, link, symlink, xattrs, attributes and flags, fallocate, punch
/// hole, sync, reopen) decoded with `arbitrary` and applied to a small valid
/// image (ext4 1k with a journal, ext2, or ext4 4k with inline data): every
/// operation ends in `Ok` or an ordinary error, and the result opens
/// read-only and walks without a corruption error (see
/// `crate::fsops`; `tests/ops_replay.rs` runs e2fsck on the
/// results of the committed inputs).
pub fn ops(data: &[u8]) {
    let _ = fsops::run(data);
}

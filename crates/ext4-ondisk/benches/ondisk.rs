//! Checksums and parsers every metadata read goes through: crc32c of a 4 KiB
//! block and of a 256-byte inode, the crc16 group descriptor checksum,
//! superblock and inode parsing. Run with `cargo bench -p ext4-ondisk`.

// criterion_group! declares an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ext4_ondisk::group_desc::{GroupDesc, group_desc_checksum, update_group_desc_checksum, verify_group_desc};
use ext4_ondisk::inode::{inode_checksum, set_inode_checksum, verify_inode_checksum};
use ext4_ondisk::superblock::{CHECKSUM_TYPE_CRC32C, EXT4_MAGIC, Geometry, Superblock};
use ext4_ondisk::{Compat, FileType, Incompat, Inode, InodeFlags, RoCompat, checksum};
use zerocopy::IntoBytes;

/// The superblock of a 1 GiB, 4 KiB-block ext4 (8 groups), with
/// `metadata_csum` or, without it, `gdt_csum`.
fn superblock(metadata_csum: bool) -> Superblock {
    let mut sb = Superblock::zeroed();
    sb.s_magic.set(EXT4_MAGIC);
    sb.s_rev_level.set(1);
    sb.s_log_block_size.set(2);
    sb.s_log_cluster_size.set(2);
    sb.s_blocks_count_lo.set(8 * 32768);
    sb.s_blocks_per_group.set(32768);
    sb.s_clusters_per_group.set(32768);
    sb.s_inodes_per_group.set(8192);
    sb.s_inodes_count.set(8 * 8192);
    sb.s_inode_size.set(256);
    sb.s_first_ino.set(11);
    sb.s_desc_size.set(64);
    sb.s_log_groups_per_flex = 4;
    sb.s_uuid = *b"0123456789abcdef";
    let mut w = sb.features();
    w.compat = Compat::HAS_JOURNAL | Compat::DIR_INDEX;
    w.incompat = Incompat::FILETYPE | Incompat::EXTENTS | Incompat::BIT64 | Incompat::FLEX_BG;
    w.ro_compat = RoCompat::SPARSE_SUPER | RoCompat::LARGE_FILE | RoCompat::HUGE_FILE | RoCompat::EXTRA_ISIZE;
    w.ro_compat |= if metadata_csum { RoCompat::METADATA_CSUM } else { RoCompat::GDT_CSUM };
    sb.set_features(w);
    if metadata_csum {
        sb.s_checksum_type = CHECKSUM_TYPE_CRC32C;
    }
    sb.update_checksum();
    sb
}

/// A checksummed 256-byte regular-file inode record.
fn inode_record(seed: u32, ino: u32) -> Vec<u8> {
    let mut inode = Inode::empty(32);
    inode.mode = FileType::Regular.mode_bits() | 0o644;
    inode.size = 123_456_789;
    inode.links_count = 1;
    inode.blocks = 241_128;
    inode.generation = 0x5EED_0001;
    inode.flags = InodeFlags::EXTENTS;
    let mut raw = vec![0u8; 256];
    inode.write(&mut raw);
    set_inode_checksum(seed, ino, &mut raw);
    raw
}

/// A checksummed 64-byte group descriptor of group `g`.
fn group_desc(geo: &Geometry, g: u32) -> Vec<u8> {
    let size = geo.desc_size as usize;
    let mut raw = vec![0u8; size];
    let gd = GroupDesc { block_bitmap: 1025, inode_bitmap: 1041, inode_table: 1057, free_blocks_count: 30000, ..GroupDesc::default() };
    gd.write(&mut raw, size);
    update_group_desc_checksum(geo, g, &mut raw);
    raw
}

fn checksums(c: &mut Criterion) {
    let sb = superblock(true);
    let seed = sb.csum_seed();
    let block: Vec<u8> = (0..4096u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut g = c.benchmark_group("checksum");
    g.throughput(Throughput::Bytes(4096));
    g.bench_function("crc32c_4k_block", |b| b.iter(|| checksum::crc32c(black_box(seed), black_box(&block))));
    let raw = inode_record(seed, 12);
    g.throughput(Throughput::Bytes(256));
    g.bench_function("crc32c_256b", |b| b.iter(|| checksum::crc32c(black_box(seed), black_box(&raw))));
    g.bench_function("inode_checksum_256b", |b| b.iter(|| inode_checksum(black_box(seed), black_box(12), black_box(&raw))));
    let gdt = Geometry::new(&superblock(false)).expect("valid superblock");
    let gd = group_desc(&gdt, 5);
    g.throughput(Throughput::Bytes(64));
    g.bench_function("group_desc_crc16", |b| b.iter(|| group_desc_checksum(black_box(&gdt), black_box(5), black_box(&gd))));
    let geo = Geometry::new(&sb).expect("valid superblock");
    let gd = group_desc(&geo, 5);
    g.bench_function("group_desc_crc32c", |b| b.iter(|| group_desc_checksum(black_box(&geo), black_box(5), black_box(&gd))));
    g.finish();
}

fn parsers(c: &mut Criterion) {
    let sb = superblock(true);
    let bytes = sb.as_bytes().to_vec();
    let mut g = c.benchmark_group("parse");
    g.bench_function("superblock", |b| {
        b.iter(|| {
            let sb = Superblock::from_bytes(black_box(&bytes)).expect("1024 bytes");
            sb.verify_checksum().expect("checksum");
            Geometry::new(&sb).expect("valid")
        })
    });
    let raw = inode_record(sb.csum_seed(), 12);
    let seed = sb.csum_seed();
    g.bench_function("inode_256b", |b| {
        b.iter(|| {
            verify_inode_checksum(seed, 12, black_box(&raw)).expect("checksum");
            Inode::parse(black_box(&raw)).expect("valid")
        })
    });
    let geo = Geometry::new(&sb).expect("valid superblock");
    let gd = group_desc(&geo, 5);
    g.bench_function("group_desc_64b", |b| {
        b.iter(|| {
            verify_group_desc(&geo, 5, black_box(&gd)).expect("checksum");
            GroupDesc::parse(black_box(&gd), 64).expect("valid")
        })
    });
    g.finish();
}

criterion_group!(benches, checksums, parsers);
criterion_main!(benches);

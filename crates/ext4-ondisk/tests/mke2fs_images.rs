//! Checks this crate's parsers and checksums against images made by mke2fs,
//! an independent implementation. Skipped (with a message) without mke2fs.

use std::process::Command;

use ext4_ondisk::group_desc::{GroupDesc, bitmap_csum_matches, verify_group_desc};
use ext4_ondisk::inode::verify_inode_checksum;
use ext4_ondisk::superblock::{CsumKind, Geometry, Superblock};
use ext4_ondisk::{Inode, checksum, dir, extent};

fn mke2fs(args: &[&str], size: &str) -> Option<Vec<u8>> {
    if !ext4_testkit::require(Command::new("mke2fs").arg("-V").output().is_ok(), "mke2fs not available") {
        return None;
    }
    let img = ext4_testkit::scratch_file("ondisk");
    let status = Command::new("mke2fs")
        .env("E2FSPROGS_FAKE_TIME", "1700000000")
        .env("MKE2FS_CONFIG", "/etc/mke2fs.conf")
        .args(["-q", "-F"])
        .args(args)
        .arg(&img)
        .arg(size)
        .status();
    assert!(status.is_ok_and(|s| s.success()), "mke2fs {args:?} {size} failed");
    let data = std::fs::read(&img).unwrap();
    Some(data)
}

fn check_image(data: &[u8]) {
    let sb = Superblock::from_bytes(&data[1024..]).unwrap();
    sb.verify_checksum().unwrap();
    let geo = Geometry::new(&sb).unwrap();
    let bs = geo.block_size as usize;
    let block = |b: u64| &data[b as usize * bs..(b as usize + 1) * bs];
    for g in 0..geo.group_count {
        let off = geo.group_desc_block(g) as usize * bs + (g % geo.descs_per_block) as usize * geo.desc_size as usize;
        let raw = &data[off..off + geo.desc_size as usize];
        verify_group_desc(&geo, g, raw).unwrap_or_else(|e| panic!("group {g}: {e}"));
        let gd = GroupDesc::parse(raw, geo.desc_size as usize).unwrap();
        if geo.csum == CsumKind::MetadataCsum {
            use ext4_ondisk::GroupDescFlags as F;
            if !gd.flags.contains(F::BLOCK_UNINIT) {
                let c = checksum::bitmap(geo.csum_seed, &block(gd.block_bitmap)[..geo.clusters_per_group as usize / 8]);
                assert!(bitmap_csum_matches(&geo, gd.block_bitmap_csum, c), "block bitmap {g}");
            }
            if !gd.flags.contains(F::INODE_UNINIT) {
                let c = checksum::bitmap(geo.csum_seed, &block(gd.inode_bitmap)[..geo.inodes_per_group as usize / 8]);
                assert!(bitmap_csum_matches(&geo, gd.inode_bitmap_csum, c), "inode bitmap {g}");
            }
        }
        if g == 0 {
            // Root inode (2): checksum, and its first directory block.
            let isz = geo.inode_size as usize;
            let raw = &data[gd.inode_table as usize * bs + isz..gd.inode_table as usize * bs + 2 * isz];
            if geo.csum == CsumKind::MetadataCsum {
                verify_inode_checksum(geo.csum_seed, 2, raw).unwrap();
            }
            let inode = Inode::parse(raw).unwrap();
            assert_eq!(inode.mode & 0xF000, 0x4000);
            let first = if inode.has_extents() {
                let node = extent::ExtentNode::parse(&inode.block).unwrap();
                node.extent(0).start
            } else {
                u64::from(ext4_ondisk::get_u32(&inode.block, 0))
            };
            let db = block(first);
            let names: Vec<&[u8]> =
                dir::DirEntryIter::new(db, geo.block_size, true).map(|e| e.unwrap()).filter(|e| e.inode != 0).map(|e| e.name).collect();
            assert_eq!(names, vec![&b"."[..], b"..", b"lost+found"]);
            if geo.csum == CsumKind::MetadataCsum {
                let seed = checksum::inode_seed(geo.csum_seed, 2, inode.generation);
                dir::verify_dir_block(seed, db).unwrap();
            }
        }
    }
}

#[ext4_testkit::oracle_test(mke2fs)]
fn ext4_default_profile() {
    let Some(img) = mke2fs(&["-t", "ext4"], "64M") else {
        return;
    };
    check_image(&img);
}

#[ext4_testkit::oracle_test(mke2fs)]
fn ext4_csum_seed_and_orphan_file_1k() {
    let Some(img) = mke2fs(&["-t", "ext4", "-b", "1024", "-O", "metadata_csum_seed,orphan_file"], "32M") else {
        return;
    };
    check_image(&img);
}

#[ext4_testkit::oracle_test(mke2fs)]
fn ext4_gdt_csum_128_byte_inodes() {
    let Some(img) = mke2fs(&["-t", "ext4", "-O", "^metadata_csum,uninit_bg,^64bit", "-I", "128"], "48M") else {
        return;
    };
    check_image(&img);
}

#[ext4_testkit::oracle_test(mke2fs)]
fn ext2_and_ext3() {
    let Some(img) = mke2fs(&["-t", "ext2", "-b", "1024"], "16M") else {
        return;
    };
    check_image(&img);
    let Some(img) = mke2fs(&["-t", "ext3", "-b", "2048"], "40M") else {
        return;
    };
    check_image(&img);
}

/// Bigalloc with 1 KiB blocks starts at block 0 (`s_first_data_block` 0),
/// but the superblock stays at block 1 and the descriptors follow it;
/// with `meta_bg` the first meta group's descriptors also skip the boot block.
#[ext4_testkit::oracle_test(mke2fs)]
fn bigalloc_1k_descriptors_follow_the_superblock() {
    for args in [
        &["-t", "ext4", "-b", "1024", "-O", "bigalloc", "-C", "16384"][..],
        &["-t", "ext4", "-b", "1024", "-O", "bigalloc,meta_bg,^resize_inode", "-C", "16384"],
    ] {
        let Some(img) = mke2fs(args, "256M") else {
            return;
        };
        check_image(&img);
    }
}

//! `plan` over arbitrary options: it never panics, and every layout it
//! returns is consistent: metadata inside the filesystem and in no two
//! places at once, counts that add up.

use ext4_mkfs::{FeatureEdit, FormatOptions, FsSize, FsType, Layout, Profile};
use proptest::prelude::*;

fn options() -> impl Strategy<Value = (u64, FormatOptions)> {
    let size = prop_oneof![4 => 0u64..(1 << 22), 4 => 0u64..(1 << 34), 1 => 0u64..(1 << 45)];
    let fs_type = prop::option::of(prop::sample::select(vec![FsType::Ext2, FsType::Ext3, FsType::Ext4]));
    let block = prop::option::of(prop_oneof![Just(1024u32), Just(4096), Just(65536), 0u32..100_000]);
    let inode = prop::option::of(prop_oneof![Just(128u32), Just(256), Just(1024), 0u32..70_000]);
    let ratio = prop::option::of(0u64..(1 << 27));
    let count = prop::option::of(0u64..(1 << 33));
    let bpg = prop::option::of(prop_oneof![Just(256u32), Just(8192), 0u32..600_000]);
    let flex = prop::option::of(prop_oneof![Just(1u64), Just(16), Just(1 << 20), 0u64..(1 << 33)]);
    let reserved = prop::option::of(-10.0f64..60.0);
    let features = prop::collection::vec(
        prop::sample::select(vec![
            "has_journal",
            "^has_journal",
            "^resize_inode",
            "meta_bg",
            "^flex_bg",
            "64bit",
            "^64bit",
            "^extent",
            "inline_data",
            "sparse_super2",
            "^sparse_super",
            "metadata_csum_seed",
            "orphan_file",
            "uninit_bg",
            "mmp",
            "none",
        ]),
        0..5,
    );
    let offset = prop::option::of(0u64..(1 << 30));
    let upstream = any::<bool>();
    (size, fs_type, block, inode, ratio, count, bpg, flex, reserved, features, (offset, upstream)).prop_map(
        |(size, t, b, i, r, n, g, f, m, feat, (off, up))| {
            let mut o = FormatOptions { fs_type: t, time: Some(1), ..FormatOptions::default() };
            o.profile = if up { Profile::UPSTREAM } else { Profile::DEBIAN };
            o.block_size = b;
            o.inode_size = i;
            o.inode_ratio = r;
            o.inode_count = n;
            o.blocks_per_group = g;
            o.flex_bg_size = f;
            o.reserved_percent = m;
            o.extended.offset = off;
            o.features = feat
                .iter()
                .flat_map(|f| ext4_mkfs::parse_features(f).unwrap_or_default())
                .collect::<Vec<FeatureEdit>>();
            if size % 3 == 0 {
                o.size = Some(FsSize::Bytes(size / 2));
            }
            (size, o)
        },
    )
}

/// The blocks a layout says are metadata, as `(start, len, what)`.
fn metadata(l: &Layout) -> Vec<(u64, u64, String)> {
    let mut v = Vec::new();
    for g in &l.groups {
        if let Some(s) = g.superblock {
            v.push((s, 1, format!("superblock of {}", g.group)));
        }
        if let Some((s, n)) = g.descriptors {
            v.push((s, n, format!("descriptors of {}", g.group)));
        }
        if let Some((s, n)) = g.reserved_gdt {
            v.push((s, n, format!("reserved GDT of {}", g.group)));
        }
        v.push((g.block_bitmap, 1, format!("block bitmap of {}", g.group)));
        v.push((g.inode_bitmap, 1, format!("inode bitmap of {}", g.group)));
        v.push((g.inode_table, u64::from(l.inode_table_blocks), format!("inode table of {}", g.group)));
    }
    if let Some(j) = &l.journal {
        for &(_, p, n) in &j.runs {
            v.push((p, u64::from(n), "journal".to_string()));
        }
    }
    v
}

fn check_layout(l: &Layout) -> Result<(), TestCaseError> {
    let mut m = metadata(l);
    m.sort();
    for w in m.windows(2) {
        prop_assert!(w[0].0 + w[0].1 <= w[1].0, "{} overlaps {}", w[0].2, w[1].2);
    }
    for (s, n, what) in &m {
        prop_assert!(*s >= l.first_data_block && s + n <= l.blocks_count, "{what} outside the filesystem");
    }
    let free: u64 = l.groups.iter().map(|g| g.free_blocks).sum();
    prop_assert_eq!(free, l.free_blocks);
    let free_inodes: u64 = l.groups.iter().map(|g| u64::from(g.free_inodes)).sum();
    prop_assert_eq!(free_inodes, u64::from(l.free_inodes));
    prop_assert_eq!(u64::from(l.inodes_count), u64::from(l.inodes_per_group) * l.groups.len() as u64);
    prop_assert!(l.reserved_blocks < l.blocks_count);
    Ok(())
}

proptest! {
    #![proptest_config(ext4_testkit::prop::config(
        if std::env::var_os("EXT4_MKFS_FULL_MATRIX").is_some() { 2000 } else { 96 },
        "plan_properties",
    ))]

    #[test]
    fn plan_never_panics_and_is_consistent((size, o) in options()) {
        if let Ok(l) = ext4_mkfs::plan(size, &o) {
            check_layout(&l)?;
            prop_assert!(!l.to_string().is_empty());
        }
    }
}

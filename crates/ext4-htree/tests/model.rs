//! Directory operations against a model: random inserts, removals and
//! retargets on an in-memory directory, checked after every step by
//! listing, lookups and a structural walk of the htree (hash order, leaf
//! hashes inside their index range, checksums).

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use ext4_htree::{DirCtx, DirError, name_hash};
use ext4_ondisk::dir as d;
use ext4_ondisk::dx::{self, HashVersion};
use ext4_testkit::mem::MemDir;
use proptest::prelude::*;

fn ctx(bs: u32, csum: bool, filetype: bool, hash: HashVersion) -> DirCtx {
    DirCtx {
        block_size: bs,
        csum_seed: csum.then_some(0x1234_5678),
        verify_checksums: true,
        filetype,
        dir_index: true,
        large_dir: false,
        hash_seed: [1, 2, 3, 4],
        default_hash: hash,
        unsigned_hash: false,
        inodes_count: 1 << 20,
    }
}

fn new_dir(c: &DirCtx) -> MemDir {
    MemDir::from_blocks(c.block_size as usize, vec![ext4_htree::new_dir_block(c, 2, 2)], 100_000 - 1)
}

fn listing(c: &DirCtx, dir: &mut MemDir, indexed: bool) -> BTreeMap<Vec<u8>, u32> {
    let mut seen = BTreeMap::new();
    ext4_htree::for_each_entry(c, dir, indexed, |e| {
        assert!(seen.insert(e.name.to_vec(), e.inode).is_none(), "{:?} listed twice", String::from_utf8_lossy(e.name));
        ControlFlow::Continue(())
    })
    .unwrap();
    seen
}

/// Walks the index: every leaf's names hash inside the range its index entry gives.
fn check_tree(c: &DirCtx, dir: &MemDir) {
    let csum = c.csum_seed.is_some();
    let root = &dir.blocks[0];
    let (info, entries) = dx::parse_root(root, csum).unwrap();
    if let Some(seed) = c.csum_seed {
        dx::verify_dx_block(seed, root, &entries).unwrap();
    }
    let version = HashVersion::from_u8(info.hash_version).unwrap();
    let mut referenced = vec![0u32];
    struct Tree<'a> {
        c: &'a DirCtx,
        dir: &'a MemDir,
        v: HashVersion,
    }
    fn walk(t: &Tree<'_>, block: &[u8], co: usize, levels: u8, (lo, hi): (u32, u64), refs: &mut Vec<u32>) {
        let (c, dir, v) = (t.c, t.dir, t.v);
        let csum = c.csum_seed.is_some();
        let e = if co == dx::ROOT_COUNT_OFFSET { dx::parse_root(block, csum).unwrap().1 } else { dx::parse_node(block, csum).unwrap() };
        for i in 0..usize::from(e.count) {
            let (h, b) = e.get(i);
            let start = if i == 0 { lo } else { h & !1 };
            assert!(i == 0 || start >= lo, "index hashes out of order");
            let end = if i + 1 < usize::from(e.count) { u64::from(e.get(i + 1).0 & !1) } else { hi };
            assert!(u64::from(start) <= end);
            refs.push(b);
            let child = &dir.blocks[b as usize];
            if levels > 0 {
                if let Some(seed) = c.csum_seed {
                    dx::verify_dx_block(seed, child, &dx::parse_node(child, csum).unwrap()).unwrap();
                }
                walk(t, child, dx::NODE_COUNT_OFFSET, levels - 1, (start, end), refs);
            } else {
                if let Some(seed) = c.csum_seed {
                    d::verify_dir_block(seed, child).unwrap();
                }
                let region = if csum { &child[..child.len() - d::TAIL_SIZE] } else { &child[..] };
                for de in d::DirEntryIter::new(region, c.block_size, c.filetype) {
                    let de = de.unwrap();
                    if de.inode == 0 {
                        continue;
                    }
                    let hash = name_hash(v, &c.hash_seed, de.name).unwrap().major;
                    // A continued range may hold its starting hash; otherwise [start, end).
                    assert!(hash >= start && u64::from(hash) <= end, "leaf {b}: hash {hash:#x} outside [{start:#x}, {end:#x}]");
                }
            }
        }
    }
    let tree = Tree { c, dir, v: version };
    walk(&tree, root, dx::ROOT_COUNT_OFFSET, info.indirect_levels, (0, u64::from(u32::MAX)), &mut referenced);
    referenced.sort_unstable();
    let all: Vec<u32> = (0..dir.blocks.len() as u32).collect();
    assert_eq!(referenced, all, "every block is referenced exactly once");
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u16),
    Remove(u16),
    Retarget(u16, u32),
}

fn name_of(n: u16, long: bool) -> Vec<u8> {
    if long { format!("{n:05}-{}", "x".repeat(usize::from(n % 200))).into_bytes() } else { format!("f{n}").into_bytes() }
}

fn run(c: &DirCtx, ops: &[Op], long: bool) {
    let mut dir = new_dir(c);
    let mut indexed = false;
    let mut model: BTreeMap<Vec<u8>, u32> = BTreeMap::new();
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Insert(n) => {
                // Callers look a name up before adding it (as the kernel does).
                let name = name_of(n, long);
                let found = ext4_htree::lookup(c, &mut dir, indexed, &name).unwrap().map(|f| f.inode);
                assert_eq!(found, model.get(&name).copied());
                if found.is_none() {
                    ext4_htree::insert(c, &mut dir, &mut indexed, &name, 100 + u32::from(n), 1).unwrap();
                    model.insert(name, 100 + u32::from(n));
                }
            }
            Op::Remove(n) => {
                let name = name_of(n, long);
                let r = ext4_htree::remove(c, &mut dir, indexed, &name).unwrap();
                assert_eq!(r, model.remove(&name));
            }
            Op::Retarget(n, ino) => {
                let name = name_of(n, long);
                let r = ext4_htree::replace(c, &mut dir, indexed, &name, ino, 2);
                match model.get_mut(&name) {
                    Some(v) => {
                        assert_eq!(r.unwrap(), *v);
                        *v = ino;
                    }
                    None => assert_eq!(r, Err(DirError::NotFound)),
                }
            }
        }
        if step % 16 == 0 || step + 1 == ops.len() {
            let mut expect = model.clone();
            expect.insert(b".".to_vec(), 2);
            expect.insert(b"..".to_vec(), 2);
            assert_eq!(listing(c, &mut dir, indexed), expect);
            for (name, ino) in &model {
                assert_eq!(ext4_htree::lookup(c, &mut dir, indexed, name).unwrap().map(|f| f.inode), Some(*ino));
            }
            if indexed {
                check_tree(c, &dir);
            }
        }
    }
}

fn ops(max_name: u16, len: usize) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        6 => (0..max_name).prop_map(Op::Insert),
        2 => (0..max_name).prop_map(Op::Remove),
        1 => (0..max_name, 1u32..1000).prop_map(|(n, i)| Op::Retarget(n, i)),
    ];
    proptest::collection::vec(op, 1..len)
}

proptest! {
    #![proptest_config(ext4_testkit::prop::config(24, "model"))]
    #[test]
    fn model_1k_csum(ops in ops(600, 900), long in any::<bool>()) {
        run(&ctx(1024, true, true, HashVersion::HalfMd4), &ops, long);
    }

    #[test]
    fn model_4k_plain_tea(ops in ops(400, 600), long in any::<bool>()) {
        run(&ctx(4096, false, false, HashVersion::Tea), &ops, long);
    }

    #[test]
    fn model_1k_legacy(ops in ops(300, 500)) {
        run(&ctx(1024, false, true, HashVersion::Legacy), &ops, true);
    }
}

#[test]
fn deep_tree_and_index_full() {
    // 1 KiB blocks with long names: two levels fill quickly; without large_dir the index fills.
    let mut c = ctx(1024, true, true, HashVersion::HalfMd4);
    let mut dir = new_dir(&c);
    let mut indexed = false;
    let mut n = 0u32;
    let err = loop {
        let name = format!("{n:07}-{}", "y".repeat(240));
        match ext4_htree::insert(&c, &mut dir, &mut indexed, name.as_bytes(), 100 + n, 1) {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 200_000, "index never filled");
    };
    assert_eq!(err, DirError::IndexFull);
    assert!(err.is_no_space());
    check_tree(&c, &dir);
    assert_eq!(listing(&c, &mut dir, indexed).len(), n as usize + 2);
    assert_eq!(dx::parse_root(&dir.blocks[0], true).unwrap().0.indirect_levels, 1);
    // With large_dir a third level opens.
    c.large_dir = true;
    for k in 0..2000 {
        let name = format!("z{k:07}-{}", "y".repeat(240));
        ext4_htree::insert(&c, &mut dir, &mut indexed, name.as_bytes(), 1, 1).unwrap();
    }
    assert_eq!(dx::parse_root(&dir.blocks[0], true).unwrap().0.indirect_levels, 2);
    check_tree(&c, &dir);
    assert_eq!(listing(&c, &mut dir, indexed).len(), n as usize + 2002);
}

#[test]
fn damage_is_reported_not_followed() {
    let c = ctx(1024, true, true, HashVersion::HalfMd4);
    let mut dir = new_dir(&c);
    let mut indexed = false;
    for n in 0..200u32 {
        ext4_htree::insert(&c, &mut dir, &mut indexed, format!("file-{n}").as_bytes(), 100 + n, 1).unwrap();
    }
    assert!(indexed);
    let pristine = dir.blocks.clone();
    // A flipped bit in a leaf: checksum error on lookup of a name there, no write.
    dir.blocks[1][40] ^= 1;
    let e = ext4_htree::for_each_entry(&c, &mut dir, indexed, |_| ControlFlow::Continue(())).unwrap_err();
    assert!(matches!(e, DirError::Corrupt { block: 1, checksum: true, .. }), "{e:?}");
    // A bad index count in the root.
    dir.blocks = pristine.clone();
    ext4_ondisk::put_u16(&mut dir.blocks[0], dx::ROOT_COUNT_OFFSET + 2, 0);
    let e = ext4_htree::insert(&c, &mut dir, &mut indexed, b"new", 5, 1).unwrap_err();
    assert!(e.is_corruption(), "{e:?}");
    // An index entry pointing outside the directory.
    dir.blocks = pristine.clone();
    let count = usize::from(dx::parse_root(&dir.blocks[0], true).unwrap().1.count);
    for i in 0..count {
        ext4_ondisk::put_u32(&mut dir.blocks[0], dx::ROOT_COUNT_OFFSET + 8 * i + 4, 9999);
    }
    let mut c2 = c.clone();
    c2.verify_checksums = false;
    let e = ext4_htree::lookup(&c2, &mut dir, indexed, b"file-1").unwrap_err();
    assert!(e.is_corruption(), "{e:?}");
}

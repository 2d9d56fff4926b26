//! Random sequences of file operations against an in-memory model, on ext2,
//! ext3 and ext4 images with 1 KiB and 4 KiB blocks and on bigalloc ones
//! made by mke2fs: after each sequence every file equals the model (read
//! through a fresh open) and `e2fsck -fn` is silent.
//! `PROPTEST_CASES` sets the case count; failures are kept in
//! `proptest-regressions/` and replayed first.

mod common;

use std::collections::BTreeMap;

use common::{BIGALLOC_KINDS, KINDS, Kind, assert_clean, format, have_fsck, open_ro, open_rw};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

#[derive(Debug, Clone)]
enum Op {
    Create(u8),
    Write { file: u8, offset: u32, len: u16, seed: u8 },
    Truncate { file: u8, size: u32 },
    Fallocate { file: u8, offset: u32, len: u32, keep: bool },
    Punch { file: u8, offset: u32, len: u32 },
    Unlink(u8),
    Sync,
    Reopen,
}

const MAX_OFFSET: u32 = 3 << 20;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0u8..6).prop_map(Op::Create),
        6 => (0u8..6, 0..MAX_OFFSET, 1u16..40000, any::<u8>()).prop_map(|(file, offset, len, seed)| Op::Write { file, offset, len, seed }),
        2 => (0u8..6, 0..MAX_OFFSET).prop_map(|(file, size)| Op::Truncate { file, size }),
        1 => (0u8..6, 0..MAX_OFFSET, 1..(1u32 << 20), any::<bool>()).prop_map(|(file, offset, len, keep)| Op::Fallocate { file, offset, len, keep }),
        1 => (0u8..6, 0..MAX_OFFSET, 1..(1u32 << 20)).prop_map(|(file, offset, len)| Op::Punch { file, offset, len }),
        1 => (0u8..6).prop_map(Op::Unlink),
        1 => Just(Op::Sync),
        1 => Just(Op::Reopen),
    ]
}

fn name(f: u8) -> String {
    // Files spread over the root and a subdirectory.
    if f % 2 == 0 { format!("/f{f}") } else { format!("/sub/f{f}") }
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add((i / 7) as u8).wrapping_mul(31) | 1).collect()
}

fn run_case(kind: &Kind, ops: &[Op], case: usize, fsck: bool) -> Result<(), TestCaseError> {
    let img = format(kind, 24 << 20, &format!("model{case}"));
    let mut fs = Some(open_rw(&img.path));
    fs.as_mut().unwrap().mkdir("/sub", 0o755).unwrap();
    let extents = kind.fs_type == ext4_mkfs::FsType::Ext4;
    let mut model: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
    for op in ops {
        let f = fs.as_mut().unwrap();
        match *op {
            Op::Create(n) => {
                let r = f.create(name(n), 0o644);
                prop_assert_eq!(r.is_ok(), !model.contains_key(&n), "create {:?}", r);
                model.entry(n).or_default();
            }
            Op::Write { file, offset, len, seed } => {
                let Some(data) = model.get_mut(&file) else {
                    continue;
                };
                let ino = f.lookup(name(file)).unwrap();
                let bytes = pattern(seed, len as usize);
                f.write_at(ino, u64::from(offset), &bytes).unwrap();
                let end = offset as usize + bytes.len();
                if data.len() < end {
                    data.resize(end, 0);
                }
                data[offset as usize..end].copy_from_slice(&bytes);
            }
            Op::Truncate { file, size } => {
                let Some(data) = model.get_mut(&file) else {
                    continue;
                };
                let ino = f.lookup(name(file)).unwrap();
                f.truncate(ino, u64::from(size)).unwrap();
                data.resize(size as usize, 0);
            }
            Op::Fallocate { file, offset, len, keep } => {
                let Some(data) = model.get_mut(&file) else {
                    continue;
                };
                let ino = f.lookup(name(file)).unwrap();
                let r = f.fallocate(ino, u64::from(offset), u64::from(len), keep);
                if !extents {
                    prop_assert!(r.is_err(), "fallocate on an indirect-mapped file must be refused");
                    continue;
                }
                r.unwrap();
                let end = (offset + len) as usize;
                if !keep && data.len() < end {
                    data.resize(end, 0);
                }
            }
            Op::Punch { file, offset, len } => {
                let Some(data) = model.get_mut(&file) else {
                    continue;
                };
                let ino = f.lookup(name(file)).unwrap();
                f.punch_hole(ino, u64::from(offset), u64::from(len)).unwrap();
                let end = ((offset + len) as usize).min(data.len());
                if (offset as usize) < end {
                    data[offset as usize..end].fill(0);
                }
            }
            Op::Unlink(n) => {
                let r = f.remove_file(name(n));
                prop_assert_eq!(r.is_ok(), model.remove(&n).is_some(), "unlink {:?}", r);
            }
            Op::Sync => f.sync().unwrap(),
            Op::Reopen => {
                fs.take().unwrap().close().unwrap();
                fs = Some(open_rw(&img.path));
            }
        }
    }
    fs.take().unwrap().close().unwrap();
    let fs = open_ro(&img.path);
    for (n, data) in &model {
        let got = fs.read(name(*n)).unwrap();
        prop_assert!(got == *data, "{} differs: {} bytes, expected {}", name(*n), got.len(), data.len());
    }
    let mut names: Vec<String> = fs.read_dir("/sub").unwrap().into_iter().map(|e| format!("/sub/{}", e.name_lossy())).collect();
    names.extend(fs.read_dir("/").unwrap().into_iter().filter(|e| e.name.starts_with(b"f")).map(|e| format!("/{}", e.name_lossy())));
    names.sort();
    let mut expected: Vec<String> = model.keys().map(|n| name(*n)).collect();
    expected.sort();
    prop_assert_eq!(names, expected);
    drop(fs);
    if let Some(p) = ext4_testkit::oracle::e2fsck_problems(&img.path).filter(|_| fsck) {
        return Err(TestCaseError::fail(format!("e2fsck after {ops:?}:\n{p}")));
    }
    Ok(())
}

#[test]
fn random_file_operations_match_the_model() {
    // Without e2fsck (outside CI) the model comparison still runs.
    let fsck = have_fsck();
    for kind in KINDS.iter().chain(BIGALLOC_KINDS) {
        let mut runner = TestRunner::new(ext4_testkit::prop::config(40, &format!("write_model-{}", kind.name)));
        let case = std::cell::Cell::new(0);
        runner
            .run(&proptest::collection::vec(op(), 1..30), |ops| {
                case.set(case.get() + 1);
                run_case(kind, &ops, case.get(), fsck)
            })
            .unwrap_or_else(|e| panic!("{}: {e}", kind.name));
    }
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn fresh_image_is_clean_after_open_and_close() {
    if !have_fsck() {
        return;
    }
    for kind in KINDS.iter().chain(BIGALLOC_KINDS) {
        let img = format(kind, 16 << 20, "fresh");
        open_rw(&img.path).close().unwrap();
        assert_clean(&img.path);
    }
}

/// A block overwritten through the journal (so the session caches its
/// copy), freed, then allocated again to another file and written straight
/// to the device, reads back its new data in the same session (it read the
/// stale cached copy; found by the crash explorer's `cluster-holes`).
#[ext4_testkit::oracle_test(e2fsprogs)]
fn a_reused_block_reads_its_new_data_in_the_same_session() {
    if !have_fsck() {
        return;
    }
    let img = format(&KINDS[5], 8 << 20, "reuse");
    let mut fs = open_rw(&img.path);
    let bs = 4096;
    // Where a file's data starts, per debugfs on the synced image (home blocks written).
    let device_offset = |path: &str| ext4_testkit::oracle::debugfs(&img.path, &format!("bmap {path} 0")).trim().to_string();
    let a = fs.write_file("/a", &vec![1u8; 8 * bs]).unwrap();
    fs.sync().unwrap();
    let old = device_offset("/a");
    fs.write_at(a, 0, &vec![2u8; 8 * bs]).unwrap();
    fs.sync().unwrap();
    fs.truncate(a, 0).unwrap();
    fs.sync().unwrap();
    fs.write_file("/b", &vec![3u8; 8 * bs]).unwrap();
    fs.sync().unwrap();
    assert_eq!(device_offset("/b"), old, "the freed blocks were allocated again (else this test proves nothing)");
    assert!(fs.read("/b").unwrap().iter().all(|&x| x == 3), "stale data read back");
}

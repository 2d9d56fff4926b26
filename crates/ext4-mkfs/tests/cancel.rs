//! A format cancelled from its progress callback, at any point, leaves a
//! device on which no valid ext4 superblock is found, even where a valid
//! filesystem was before.

mod common;

use std::ops::ControlFlow;

use common::*;
use ext4_blockdev::BlockDevice;
use ext4_mkfs::{FormatOptions, FsType, MkfsError, Phase};
use ext4_ondisk::{Geometry, Superblock};

const M: u64 = 1 << 20;

fn options() -> FormatOptions {
    let mut o = FormatOptions::new(FsType::Ext4);
    o.time = Some(FAKE_TIME);
    o.extended.lazy_itable_init = Some(false);
    o
}

/// Whether the device holds a primary superblock that validates.
fn has_valid_superblock(dev: &dyn BlockDevice) -> bool {
    let mut buf = [0u8; 1024];
    dev.read_at(1024, &mut buf).expect("read");
    Superblock::from_bytes(&buf).ok().and_then(|sb| Geometry::new(&sb).ok()).is_some()
}

#[test]
fn cancelling_at_any_step_leaves_no_valid_superblock() {
    let img = TempFile::sparse("cancel.img", 256 * M);
    let dev = SparseDevice::open(img.path());
    let mut calls = Vec::new();
    ext4_mkfs::format(&dev, &options(), &mut |p| {
        calls.push(p);
        ControlFlow::Continue(())
    })
    .expect("format");
    assert!(has_valid_superblock(&dev));
    assert!(calls.len() > 3, "too few progress reports: {calls:?}");
    assert!(calls.windows(2).all(|w| w[0].bytes_done <= w[1].bytes_done));
    assert_eq!(calls.last().map(|p| p.phase), Some(Phase::Superblock));

    for stop in 0..calls.len() {
        let mut n = 0;
        let r = ext4_mkfs::format(&dev, &options(), &mut |_| {
            n += 1;
            if n > stop { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        });
        assert!(matches!(r, Err(MkfsError::Cancelled)), "stop at {stop}: {r:?}");
        assert!(!has_valid_superblock(&dev), "stop at {stop}: a valid superblock remains");
        // A complete format makes it valid again for the next round.
        ext4_mkfs::format(&dev, &options(), &mut |_| ControlFlow::Continue(())).expect("format");
        assert!(has_valid_superblock(&dev));
    }
}

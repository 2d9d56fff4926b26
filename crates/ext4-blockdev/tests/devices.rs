//! Behaviour common to every device, checked on each implementation.

use ext4_blockdev::*;

fn exercise(dev: &dyn BlockDevice) {
    let len = dev.len();
    dev.write_at(10, b"hello").unwrap();
    let mut buf = [0u8; 5];
    dev.read_at(10, &mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    dev.write_zeroes(10, 3).unwrap();
    dev.read_at(10, &mut buf).unwrap();
    assert_eq!(&buf, b"\0\0\0lo");
    assert!(matches!(dev.read_at(len - 2, &mut buf), Err(DeviceError::OutOfRange { .. })));
    assert!(matches!(dev.write_at(u64::MAX - 1, b"xx"), Err(DeviceError::OutOfRange { .. })));
    dev.flush().unwrap();
}

#[test]
fn memory() {
    exercise(&MemoryDevice::new(4096));
}

#[test]
fn file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dev.img");
    let dev = FileDevice::create(&dir, 8192).unwrap();
    assert_eq!(dev.len(), 8192);
    exercise(&dev);
    drop(dev);
    let ro = FileDevice::open(&dir, true).unwrap();
    assert!(matches!(ro.write_at(0, b"x"), Err(DeviceError::ReadOnly)));
    std::fs::remove_file(&dir).unwrap();
}

#[test]
fn window() {
    let mem = MemoryDevice::new(8192);
    let w = WindowDevice::new(&mem, 1024, Some(4096)).unwrap();
    exercise(&w);
    let mut b = [0u8; 2];
    mem.read_at(1024 + 13, &mut b).unwrap();
    assert_eq!(&b, b"lo");
    assert!(WindowDevice::new(&mem, 8000, Some(4096)).is_err());
}

#[test]
fn recording_replays() {
    let rec = RecordingDevice::new(MemoryDevice::new(4096));
    exercise(&rec);
    let (inner, log) = rec.into_parts();
    assert_eq!(log.last(), Some(&RecordedOp::Flush));
    let replayed = recording_replay(&vec![0; 4096], &log);
    assert_eq!(replayed, inner.to_vec());
}

#[test]
fn faults() {
    let dev = FaultDevice::new(MemoryDevice::new(4096));
    dev.set_plan(Some(FaultPlan { op: Op::Write, nth: 1, sticky: false }));
    dev.write_at(0, b"a").unwrap();
    assert!(matches!(dev.write_at(0, b"b"), Err(DeviceError::Injected { op: Op::Write, .. })));
    dev.write_at(0, b"c").unwrap();
    dev.set_plan(Some(FaultPlan { op: Op::Flush, nth: 0, sticky: true }));
    assert!(dev.flush().is_err());
    assert!(dev.flush().is_err());
}

/// Zeroing a sparse file clears its data regions and leaves its holes
/// unallocated (a fresh image stays small on disk).
#[cfg(unix)]
#[test]
fn file_write_zeroes_keeps_holes() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("sparse.img");
    let mib = 1u64 << 20;
    let dev = FileDevice::create(&path, 64 * mib).unwrap();
    // Data at 3 MiB and at 40 MiB, holes elsewhere.
    dev.write_at(3 * mib + 100, &[0xAB; 70_000]).unwrap();
    dev.write_at(40 * mib, &[0xCD; 4096]).unwrap();
    dev.write_zeroes(mib, 50 * mib).unwrap();
    let mut buf = vec![0xFFu8; 80_000];
    for at in [3 * mib, 40 * mib - 1000] {
        dev.read_at(at, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0), "data left at {at}");
    }
    drop(dev);
    let allocated = std::fs::metadata(&path).unwrap().blocks() * 512;
    std::fs::remove_file(&path).unwrap();
    assert!(allocated <= 2 * mib, "zeroing allocated {allocated} bytes of a sparse file");
}

//! [`SectorAligned`]: any sequence of reads, writes and zeroings gives the
//! bytes a plain memory device gives, while the device under it sees only
//! whole, aligned sectors in aligned memory.

use std::sync::{Arc, Mutex};

use ext4_blockdev::*;
use proptest::prelude::*;

/// A device that checks every request reaching it against `sector`.
struct Strict {
    inner: MemoryDevice,
    sector: u64,
    bad: Arc<Mutex<Vec<String>>>,
}

impl Strict {
    fn check(&self, op: &str, offset: u64, len: usize, ptr: *const u8) {
        if offset % self.sector != 0 || len as u64 % self.sector != 0 || ptr as usize as u64 % self.sector != 0 {
            self.bad.lock().unwrap().push(format!("{op} {offset}+{len} at {ptr:?}"));
        }
    }
}

impl BlockDevice for Strict {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check("read", offset, buf.len(), buf.as_ptr());
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        self.check("write", offset, buf.len(), buf.as_ptr());
        self.inner.write_at(offset, buf)
    }
    fn flush(&self) -> Result<()> {
        Ok(())
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn write_zeroes(&self, offset: u64, len: u64) -> Result<()> {
        self.check("zero", offset, len as usize, std::ptr::null());
        self.inner.write_zeroes(offset, len)
    }
}

#[derive(Debug, Clone)]
enum Step {
    Write(u64, Vec<u8>),
    Read(u64, usize),
    Zero(u64, u64),
}

const LEN: u64 = 64 << 10;

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..LEN, proptest::collection::vec(any::<u8>(), 1..10_000)).prop_map(|(o, d)| Step::Write(o, d)),
        (0..LEN, 1..10_000usize).prop_map(|(o, n)| Step::Read(o, n)),
        (0..LEN, 1..20_000u64).prop_map(|(o, n)| Step::Zero(o, n)),
    ]
}

proptest! {
    #[test]
    fn same_bytes_whole_sectors(steps in proptest::collection::vec(step(), 1..40), big in any::<bool>()) {
        let sector = if big { 4096 } else { 512 };
        let bad = Arc::new(Mutex::new(Vec::new()));
        let strict = Strict { inner: MemoryDevice::new(LEN as usize), sector, bad: bad.clone() };
        let dev = SectorAligned::new(strict, sector as u32, true).unwrap();
        let model = MemoryDevice::new(LEN as usize);
        for s in steps {
            match s {
                Step::Write(o, d) => prop_assert_eq!(dev.write_at(o, &d).is_ok(), model.write_at(o, &d).is_ok()),
                Step::Zero(o, n) => prop_assert_eq!(dev.write_zeroes(o, n).is_ok(), model.write_zeroes(o, n).is_ok()),
                Step::Read(o, n) => {
                    let (mut a, mut b) = (vec![0; n], vec![0; n]);
                    prop_assert_eq!(dev.read_at(o, &mut a).is_ok(), model.read_at(o, &mut b).is_ok());
                    prop_assert_eq!(a, b);
                }
            }
        }
        let mut a = vec![0; LEN as usize];
        dev.read_at(0, &mut a).unwrap();
        prop_assert_eq!(a, model.to_vec());
        prop_assert!(bad.lock().unwrap().is_empty(), "unaligned requests: {:?}", bad.lock().unwrap());
    }
}

#[test]
fn sector_sizes_that_cannot_be() {
    for s in [0, 100, 511, 3000] {
        assert!(SectorAligned::new(MemoryDevice::new(8192), s, false).is_err(), "{s}");
    }
}

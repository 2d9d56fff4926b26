//! Formats an image file with mke2fs' arguments: a development aid for
//! comparing this crate with mke2fs by hand.
//!
//! `cargo run --example mkfs_image -- [--upstream] [--punch] [mke2fs flags] IMAGE [SIZE]`
//! The time comes from `E2FSPROGS_FAKE_TIME` or `SOURCE_DATE_EPOCH`;
//! `--punch` zeroes by punching holes, as libext2fs does on files.

use std::ops::ControlFlow;

use ext4_blockdev::{BlockDevice, FileDevice};

/// An image file whose zeroing punches holes.
struct PunchDevice(FileDevice);

impl BlockDevice for PunchDevice {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> ext4_blockdev::Result<()> {
        self.0.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> ext4_blockdev::Result<()> {
        self.0.write_at(offset, buf)
    }
    fn flush(&self) -> ext4_blockdev::Result<()> {
        self.0.flush()
    }
    fn len(&self) -> u64 {
        self.0.len()
    }
    fn write_zeroes(&self, offset: u64, len: u64) -> ext4_blockdev::Result<()> {
        use rustix::fs::{FallocateFlags, fallocate};
        fallocate(self.0.file(), FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE, offset, len)
            .map_err(|e| ext4_blockdev::DeviceError::Io { op: ext4_blockdev::Op::Write, offset, source: e.into() })
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let take = |args: &mut Vec<String>, flag: &str| {
        let found = args.iter().any(|a| a == flag);
        args.retain(|a| a != flag);
        found
    };
    let upstream = take(&mut args, "--upstream");
    let punch = take(&mut args, "--punch");
    let parsed = match ext4_mkfs::parse_mke2fs_args(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let mut o = parsed.options;
    o.time = ext4_mkfs::time_from_env();
    if upstream {
        o.profile = ext4_mkfs::Profile::UPSTREAM;
    }
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&parsed.device).expect("open image");
    let file_dev = FileDevice::from_file(file, false).expect("device");
    let dev: Box<dyn BlockDevice> = if punch { Box::new(PunchDevice(file_dev)) } else { Box::new(file_dev) };
    if parsed.dry_run {
        match ext4_mkfs::plan(dev.len(), &o) {
            Ok(l) => print!("{l}"),
            Err(e) => eprintln!("{e}"),
        }
        return;
    }
    let t = std::time::Instant::now();
    match ext4_mkfs::format(&*dev, &o, &mut |_| ControlFlow::Continue(())) {
        Ok(r) => println!("{} blocks, {} groups, in {:?}", r.layout.blocks_count, r.layout.groups.len(), t.elapsed()),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

//! Formats an image file with mke2fs-style arguments: a development aid
//! for comparing this crate with mke2fs by hand.
//!
//! `cargo run --example mkfs_image -- [mke2fs flags] IMAGE [SIZE]`
//! (UUID, hash seed and time come from the flags and `E2FSPROGS_FAKE_TIME`).

use std::ops::ControlFlow;

use ext4_blockdev::{BlockDevice, FileDevice};
use ext4_mkfs::{FormatOptions, FsType};

/// An image file whose zeroing punches holes (`--punch`), as libext2fs
/// does on regular files with `fallocate`.
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut o = FormatOptions { time: ext4_mkfs::time_from_env(), ..FormatOptions::default() };
    let mut positional = Vec::new();
    let mut punch = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().expect("flag value").clone();
        let r: Result<(), ext4_mkfs::MkfsError> = (|| {
            match a.as_str() {
                "-t" => o.fs_type = FsType::from_name(&val()),
                "-b" => o.block_size = val().parse().ok(),
                "-I" => o.inode_size = val().parse().ok(),
                "-N" => o.inode_count = val().parse().ok(),
                "-i" => o.inode_ratio = val().parse().ok(),
                "-g" => o.blocks_per_group = val().parse().ok(),
                "-G" => o.flex_bg_size = val().parse().ok(),
                "-m" => o.reserved_percent = val().parse().ok(),
                "-L" => o.label = Some(val()),
                "-U" => o.uuid = ext4_mkfs::parse_uuid_choice(&val())?,
                "-O" => o.features.extend(ext4_mkfs::parse_features(&val())?),
                "-E" => ext4_mkfs::merge_extended(&mut o.extended, &val())?,
                "-J" => o.journal_options = Some(ext4_mkfs::parse_journal_options(&val())?),
                "-j" => o.journal = true,
                "--upstream" => o.profile = ext4_mkfs::Profile::UPSTREAM,
                "-n" => positional.push("-n".to_string()),
                "--punch" => punch = true,
                "-q" | "-F" => {}
                other => positional.push(other.to_string()),
            }
            Ok(())
        })();
        if let Err(e) = r {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
    let dry = positional.first().is_some_and(|p| p == "-n");
    if dry {
        positional.remove(0);
    }
    let path = positional.first().expect("IMAGE");
    if let Some(s) = positional.get(1) {
        o.size = Some(ext4_mkfs::parse_size(s).expect("size"));
    }
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).expect("open image");
    let file_dev = FileDevice::from_file(file, false).expect("device");
    let dev: Box<dyn BlockDevice> = if punch { Box::new(PunchDevice(file_dev)) } else { Box::new(file_dev) };
    if dry {
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

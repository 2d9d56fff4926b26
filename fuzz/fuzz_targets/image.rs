//! Whole images: byte patches laid over a valid populated template (ext4 or
//! ext2, 2 MiB of 1k blocks), opened read-only (checksums verified or not)
//! and walked whole; with the mode bit set, also opened read-write, written
//! to and closed.
#![no_main]

use ext4_fs::{Filesystem, MemoryDevice, OpenOptions};
use ext4_fuzz::hostile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, patches)) = data.split_first() else { return };
    let mut image = ext4_fuzz::template(mode & 1 != 0).to_vec();
    ext4_fuzz::apply_patches(&mut image, patches);
    let opts = OpenOptions { verify_checksums: mode & 2 != 0, cache_blocks: 256, ..OpenOptions::read_only() };
    let lim = hostile::Limits { file_bytes: 64 << 10, inodes: 300, lookups_per_dir: 16, path_calls: 40 };
    if let Ok(fs) = Filesystem::open(MemoryDevice::from_vec(image.clone()), opts.clone()) {
        hostile::walk(&fs, lim);
    }
    if mode & 4 != 0
        && let Ok(mut fs) = Filesystem::open(MemoryDevice::from_vec(image), OpenOptions { write: true, ..opts })
    {
        hostile::write_workload(&mut fs);
        let _ = fs.close();
    }
});

//! Whole images: byte patches laid over a valid populated template (ext4 or
//! ext2, 2 MiB of 1k blocks), opened read-only (checksums verified or not)
//! and walked whole; with the mode bit set, also opened read-write, written
//! to and closed.
#![no_main]

use std::sync::Arc;

use ext4_fs::{Filesystem, OpenOptions};
use ext4_fuzz::fsops::Overlay;
use ext4_fuzz::hostile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, patches)) = data.split_first() else { return };
    // Copy-on-write views of the template: a run copies no whole image.
    let patched = || {
        let dev = Arc::new(Overlay::new(ext4_fuzz::template(mode & 1 != 0)));
        ext4_fuzz::apply_patches_to(&*dev, patches);
        dev
    };
    let opts = OpenOptions { verify_checksums: mode & 2 != 0, cache_blocks: 256, ..OpenOptions::read_only() };
    // Path calls (each a walk from the root) were most of a run's time;
    // 16 still reach every name of the root and its subdirectories.
    let lim = hostile::Limits { file_bytes: 64 << 10, inodes: 300, lookups_per_dir: 8, path_calls: 16 };
    if let Ok(fs) = Filesystem::open(patched(), opts.clone()) {
        hostile::walk(&fs, lim);
    }
    if mode & 4 != 0
        && let Ok(mut fs) = Filesystem::open(patched(), OpenOptions { write: true, ..opts })
    {
        hostile::write_workload(&mut fs);
        let _ = fs.close();
    }
});

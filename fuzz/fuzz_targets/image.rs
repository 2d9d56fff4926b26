//! Whole images: byte patches laid over a valid populated template (ext4 or
//! ext2, 2 MiB of 1k blocks), opened read-only (checksums verified or not)
//! and walked whole; with the mode bit set, also opened read-write, written
//! to and closed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ext4_testkit::fuzz::targets::image(data));

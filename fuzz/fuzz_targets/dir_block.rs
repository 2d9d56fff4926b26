//! Directory entry iteration over one block (with and without filetype,
//! with and without a checksum tail).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ext4_testkit::fuzz::targets::dir_block(data));

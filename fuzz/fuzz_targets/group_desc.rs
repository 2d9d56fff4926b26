//! Group descriptor parse and checksum verification (64-byte descriptors
//! with crc32c from the ext4 template, 32-byte with none from the ext2 one),
//! and a write/checksum/parse round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ext4_testkit::fuzz::targets::group_desc(data));

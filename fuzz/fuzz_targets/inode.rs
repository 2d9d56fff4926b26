//! Inode record decode (128..1024 bytes), checksum, and a write/parse round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ext4_testkit::fuzz::targets::inode(data));

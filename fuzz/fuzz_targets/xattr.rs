//! Extended attribute parsing: an xattr block (header, entries, names,
//! values, checksum, hashes) or an in-inode area.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ext4_testkit::fuzz::targets::xattr(data));

//! Superblock parse and geometry derivation: raw bytes, or bytes laid over
//! the template's valid superblock (so the fuzzer starts past the magic).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ext4_testkit::fuzz::targets::superblock(data));

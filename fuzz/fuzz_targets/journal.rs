//! jbd2 recovery over fuzz bytes: a journal of 1k blocks whose superblock
//! is either fuzzed too or a valid v2 superblock (so descriptor, commit and
//! revoke blocks are reached); scan, then replay into memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ext4_testkit::fuzz::targets::journal(data));

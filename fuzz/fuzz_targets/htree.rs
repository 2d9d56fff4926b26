//! Directories over fuzz bytes through ext4-htree: listing, lookups and an
//! insert/remove, as a linear directory or an htree (first byte picks the
//! options: index, checksums, filetype, hash, large_dir).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ext4_testkit::fuzz::targets::htree(data));

//! Block map walks over fuzz bytes: extent trees and indirect maps (first
//! byte picks), through lookup, run and map-block iteration, then a map and
//! an unmap edit on whatever the bytes describe.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ext4_testkit::fuzz::targets::block_map(data));

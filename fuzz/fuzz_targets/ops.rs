//! Operation sequences (create, write, truncate, mkdir, unlink, rmdir,
//! rename, link, symlink, xattrs, attributes and flags, fallocate, punch
//! hole, sync, reopen) decoded with `arbitrary` and applied to a small valid
//! image (ext4 1k with a journal, ext2, or ext4 4k with inline data): every
//! operation ends in `Ok` or an ordinary error, and the result opens
//! read-only and walks without a corruption error (see
//! `ext4_testkit::fsops`; `tests/ops_replay.rs` runs e2fsck on the
//! results of the committed inputs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ext4_testkit::fuzz::targets::ops(data));

//! fio with `--verify=crc32c` through `ext4 mount` (issue 8, item 2): four
//! sequential and four random buffered writers of 32 MiB each with mixed
//! 4k/64k blocks; then `e2fsck -fn` is silent and fio's verify-only pass
//! finds every block intact through a fresh `ext4 mount` and through a
//! kernel loop mount. The procedure is `cargo xtask fio`'s
//! (`ext4_testkit::fio`), at half its default size.

use std::path::Path;

use ext4_testkit::fio;

#[ext4_testkit::oracle_test(fio, loop_mount, fuse, e2fsprogs)]
fn fio_verifies_through_fuse_and_the_kernel() {
    if let Some(why) = fio::missing() {
        ext4_testkit::require(false, why);
        return;
    }
    let base = if Path::new("/dev/shm").is_dir() { Path::new("/dev/shm").to_path_buf() } else { std::env::temp_dir() };
    let shm = ext4_testkit::scratch_dir_in(&base, "fio-test");
    let work = shm.path().join("work");
    let opts = fio::Options { size_mib: 32, jobs: 4, work };
    if let Err(e) = fio::check(Path::new(env!("CARGO_BIN_EXE_ext4")), &opts) {
        panic!("{e}");
    }
}

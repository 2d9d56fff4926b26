//! For the default ext4 profiles (Debian's and upstream's), our image is
//! byte for byte mke2fs 1.47.0's when the UUID, hash seed and time are
//! fixed: same sizes, same bytes, every block. No field is exempt.

mod common;

use common::*;
use ext4_mkfs::Profile;

const M: u64 = 1 << 20;
const G: u64 = 1 << 30;

/// Formats a sparse file of `size` bytes with both tools (`-t ext4` and
/// nothing else but the fixed values) and returns the differing offsets.
fn differences(profile: Profile, size: u64) -> Vec<u64> {
    let theirs = TempFile::sparse("identity-mke2fs.img", size);
    let ours = TempFile::sparse("identity-ours.img", size);
    let args: Vec<String> = ["-t", "ext4", "-E", "nodiscard"].iter().map(|s| s.to_string()).collect();
    run_mke2fs(theirs.path(), &profile, &args, None).expect("mke2fs");
    let opts = options_from_args(profile, &args, None).expect("options");
    run_ours(ours.path(), &opts).expect("our format");
    assert!(fsck_problems(ours.path()).is_none(), "e2fsck complains about ours");
    byte_differences(ours.path(), theirs.path(), 16)
}

fn check(profile: Profile, sizes: &[u64]) {
    if !have_e2fsprogs() {
        return;
    }
    for &size in sizes {
        let d = differences(profile, size);
        assert!(d.is_empty(), "{} profile, {size} bytes: images differ at {d:?}", profile.name);
    }
}

#[test]
fn debian_profile_is_byte_identical() {
    check(Profile::DEBIAN, &[8 * M, 64 * M, 512 * M, 4 * G]);
}

#[test]
fn upstream_profile_is_byte_identical() {
    check(Profile::UPSTREAM, &[8 * M, 64 * M, 512 * M, 4 * G]);
}

/// Larger sizes (a depth-1 journal extent tree from 128 GiB on), in the
/// full run only.
#[test]
fn large_default_images_are_byte_identical() {
    if std::env::var_os("EXT4_MKFS_FULL_MATRIX").is_none() {
        println!("SKIPPED: large images (set EXT4_MKFS_FULL_MATRIX=1)");
        return;
    }
    check(Profile::DEBIAN, &[32 * G, 1 << 40]);
    check(Profile::UPSTREAM, &[200 * G]);
}

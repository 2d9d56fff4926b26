//! `cargo xtask validate`: every fixture through the library, compared with
//! the tree it was made from.

use ext4_fs::{Filesystem, OpenOptions};
use ext4_testkit::fixtures::{self, Profile};
use ext4_testkit::snapshot::Snapshot;

use crate::Result;

fn profiles(medium: bool) -> Vec<Profile> {
    let mut v = fixtures::PROFILES.to_vec();
    if medium {
        v.push(fixtures::MEDIUM);
    }
    v
}

/// Builds every fixture image.
pub fn build_fixtures(medium: bool) -> Result {
    for p in profiles(medium) {
        if let Some(why) = fixtures::unavailable(&p) {
            ext4_testkit::require(false, &format!("{}: {why}", p.name));
            continue;
        }
        let (img, _) = fixtures::image(&p).map_err(|e| format!("{}: {e}", p.name))?;
        println!("{}: {}", p.name, img.display());
    }
    Ok(())
}

/// Validates every fixture; `--medium` adds the medium tree. `validate mkfs`
/// runs the whole formatter matrix against mke2fs instead.
pub fn run(args: &[&str]) -> Result {
    if args.first() == Some(&"mkfs") {
        return crate::sh(
            crate::cargo()
                .args(["test", "--release", "-p", "ext4-mkfs", "--test", "mke2fs_matrix", "--", "--nocapture"])
                .env("EXT4_MKFS_FULL_MATRIX", "1"),
        );
    }
    crate::sh(crate::cargo().args(["build", "--release", "-q", "-p", "ext4-cli"]))?;
    let mut failed = Vec::new();
    for p in profiles(args.contains(&"--medium")) {
        if let Some(why) = fixtures::unavailable(&p) {
            ext4_testkit::require(false, &format!("{}: {why}", p.name));
            continue;
        }
        match validate_one(&p).and_then(|n| extract_one(&p).map(|()| n)) {
            Ok(n) => println!("ok: {} ({n} entries, zero differences read through the library and extracted by `ext4 get -r`)", p.name),
            Err(e) => {
                println!("FAILED: {}: {e}", p.name);
                failed.push(p.name);
            }
        }
    }
    if failed.is_empty() { Ok(()) } else { Err(format!("validation failed for {}", failed.join(", "))) }
}

/// Compares one fixture image with its source; returns the entry count.
pub fn validate_one(p: &Profile) -> Result<usize> {
    let (img, src) = fixtures::image(p).map_err(|e| e.to_string())?;
    let fs = Filesystem::open_path(&img, OpenOptions::read_only()).map_err(|e| e.to_string())?;
    let mut actual = Snapshot::from_image(&fs, b"/").map_err(|e| e.to_string())?;
    actual.remove_tree(b"lost+found");
    let expected = Snapshot::from_host(&src).map_err(|e| e.to_string())?;
    let diff = expected.diff(&actual);
    if diff.is_empty() {
        Ok(expected.nodes.len())
    } else {
        let n = diff.len();
        let shown: Vec<String> = diff.into_iter().take(20).collect();
        Err(format!("{n} differences:\n  {}", shown.join("\n  ")))
    }
}

/// Extracts one fixture with `ext4 get -r` and compares the extraction with its source.
pub fn extract_one(p: &Profile) -> Result {
    let (img, src) = fixtures::image(p).map_err(|e| e.to_string())?;
    let out_dir = ext4_testkit::scratch_dir(&format!("validate-{}", p.name));
    let out = out_dir.path().join("out");
    let ext4 = crate::bench::target_dir().join("release/ext4");
    crate::sh(std::process::Command::new(&ext4).args(["get", "-r"]).arg(&img).arg("/").arg(&out))?;
    let mut extracted = Snapshot::from_host(&out).map_err(|e| e.to_string())?;
    extracted.remove_tree(b"lost+found");
    let _ = std::fs::remove_dir_all(&out);
    let expected = Snapshot::from_host(&src).map_err(|e| e.to_string())?;
    let diff = expected.diff(&extracted);
    if diff.is_empty() {
        Ok(())
    } else {
        Err(format!("`ext4 get -r`: {} differences, first: {:?}", diff.len(), &diff[..diff.len().min(5)]))
    }
}

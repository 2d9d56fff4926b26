//! The fuzz targets of `fuzz/` and what they share: template images made
//! once by the library's formatter, byte patches laid over a template, and
//! the targets' bodies ([`targets`]), which `fuzz/fuzz_targets/` and
//! `crates/ext4-fs/tests/fuzz_regressions.rs` both call.

use std::ops::ControlFlow;
use std::sync::{Arc, OnceLock};

use ext4_fs::{Filesystem, MemoryDevice, OpenOptions, XattrMode};
use ext4_mkfs::{self as mkfs, FormatOptions, FsType, Profile};

pub mod targets;

/// A formatted and populated image: ext4 (1k blocks, journal, metadata_csum,
/// htree directory, extent tree of depth 1, xattr block, symlinks) or ext2
/// (indirect maps).
pub fn template(ext2: bool) -> &'static [u8] {
    static EXT4: OnceLock<Vec<u8>> = OnceLock::new();
    static EXT2: OnceLock<Vec<u8>> = OnceLock::new();
    let cell = if ext2 { &EXT2 } else { &EXT4 };
    cell.get_or_init(|| build_template(ext2))
}

fn build_template(ext2: bool) -> Vec<u8> {
    let size = 2u64 << 20;
    let dev = Arc::new(MemoryDevice::new(size as usize));
    let fs_type = if ext2 { FsType::Ext2 } else { FsType::Ext4 };
    let opts = FormatOptions::new(fs_type)
        .profile(Profile::DEBIAN)
        .size_bytes(size)
        .block_size(1024)
        .uuid([7; 16])
        .hash_seed([9; 16])
        .time(1_700_000_000);
    mkfs::format(&*dev, &opts, &mut |_| ControlFlow::Continue(())).expect("format the template");
    let mut fs = Filesystem::open(dev.clone(), OpenOptions::read_write()).expect("open the template");
    populate(&mut fs).expect("populate the template");
    fs.close().expect("close the template");
    dev.to_vec()
}

fn populate(fs: &mut Filesystem) -> ext4_fs::Result<()> {
    fs.write_file("/small", b"small file\n")?;
    let f = fs.create("/sparse", 0o644)?;
    for i in 0..12u64 {
        fs.write_at(f, i * 2048, &[i as u8 + 1; 1024])?;
    }
    fs.set_xattr(f, b"user.tiny", b"v", XattrMode::Any)?;
    fs.set_xattr(f, b"user.big", &[b'x'; 600], XattrMode::Any)?;
    fs.create_dir_all("/a/b/c", 0o755)?;
    fs.write_file("/a/b/c/deep", b"deep\n")?;
    fs.symlink("small", "/fast")?;
    // A slow symlink (over 60 bytes) resolving through 4 names, not 37.
    fs.symlink("a/b/c/".to_string() + &"/".repeat(60) + "deep", "/slow")?;
    // An htree directory of 90 names (6 leaf blocks of 1 KiB) for 9 inodes
    // (each the target of 10 links): a walk stats each inode once, and 90
    // distinct empty inodes were two thirds of a run's calls, all alike.
    fs.mkdir("/big", 0o755)?;
    for i in 0..90 {
        let name = format!("/big/entry-{i:03}-with-a-long-name");
        if i % 10 == 0 {
            fs.create(name, 0o644)?;
        } else {
            fs.hard_link(format!("/big/entry-{:03}-with-a-long-name", i - i % 10), name)?;
        }
    }
    fs.hard_link("/small", "/a/hard")?;
    Ok(())
}

/// Lays `patches` over `image`: each patch is a 3-byte little-endian offset
/// (wrapped to the image), a length byte, then that many bytes.
pub fn apply_patches(image: &mut [u8], mut patches: &[u8]) {
    while patches.len() >= 4 {
        let off = (usize::from(patches[0]) | usize::from(patches[1]) << 8 | usize::from(patches[2]) << 16) % image.len();
        let len = usize::from(patches[3]).min(patches.len() - 4).min(image.len() - off);
        image[off..off + len].copy_from_slice(&patches[4..4 + len]);
        patches = &patches[4 + len..];
    }
}

/// [`apply_patches`] over a device (a copy-on-write [`fsops::Overlay`] of
/// the template, so that a run copies no whole image).
pub fn apply_patches_to(dev: &dyn ext4_fs::BlockDevice, mut patches: &[u8]) {
    let size = dev.len() as usize;
    while patches.len() >= 4 {
        let off = (usize::from(patches[0]) | usize::from(patches[1]) << 8 | usize::from(patches[2]) << 16) % size;
        let len = usize::from(patches[3]).min(patches.len() - 4).min(size - off);
        let _ = dev.write_at(off as u64, &patches[4..4 + len]);
        patches = &patches[4 + len..];
    }
}

/// A little-endian u32 from up to four bytes of `data` at `at` (zero past the end).
pub fn word(data: &[u8], at: usize) -> u32 {
    (0..4).map(|i| u32::from(data.get(at + i).copied().unwrap_or(0)) << (8 * i)).fold(0, |a, b| a | b)
}

//! File data written straight to the device must not be shadowed by a
//! stale copy of the same block in the metadata cache: a block that held a
//! journaled overwrite (or metadata), was freed, and is reused by another
//! file reads back as the new file's data, now and after a reopen.

mod common;

use ext4_fs::{Filesystem, OpenOptions};

#[test]
fn a_reused_block_reads_as_its_new_data() {
    for kind in common::KINDS {
        let img = common::format(kind, 16 << 20, "data-cache");
        let bs = kind.block_size as usize;
        let mut fs = Filesystem::open_path(&img.path, OpenOptions::read_write()).unwrap();
        // Many small files whose blocks go through the journal when overwritten.
        let old: Vec<u8> = vec![0x40; bs];
        for i in 0..64 {
            let ino = fs.write_file(format!("/a{i}"), &old).unwrap();
            fs.sync().unwrap();
            fs.write_at(ino, 0, &old).unwrap(); // an overwrite: journaled, cached
        }
        fs.sync().unwrap();
        for i in 0..64 {
            fs.remove_file(format!("/a{i}")).unwrap();
        }
        fs.sync().unwrap();
        // New files take the freed blocks and write them straight to the device.
        for i in 0..64u8 {
            let data = vec![i ^ 0x93; bs];
            fs.write_file(format!("/b{i}"), &data).unwrap();
            let mut back = vec![0u8; bs];
            let ino = fs.lookup(format!("/b{i}")).unwrap();
            fs.read_at(ino, 0, &mut back).unwrap();
            assert!(back == data, "{}: /b{i} reads a stale block right after the write (first byte {:#x})", kind.name, back[0]);
        }
        fs.sync().unwrap();
        drop(fs);
        let fs = Filesystem::open_path(&img.path, OpenOptions::read_only()).unwrap();
        for i in 0..64u8 {
            let mut back = vec![0u8; bs];
            fs.read_at(fs.lookup(format!("/b{i}")).unwrap(), 0, &mut back).unwrap();
            assert!(back == vec![i ^ 0x93; bs], "{}: /b{i} after a reopen (first byte {:#x})", kind.name, back[0]);
        }
        if common::have_fsck() {
            ext4_testkit::oracle::assert_fsck_clean(&img.path);
        }
    }
}

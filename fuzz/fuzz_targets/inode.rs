//! Inode record decode (128..1024 bytes), checksum, and a write/parse round trip.
#![no_main]

use ext4_fs::ondisk::Inode;
use ext4_fs::ondisk::inode::verify_inode_checksum;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ino = ext4_fuzz::word(data, 0);
    let raw = data.get(4..).unwrap_or(&[]);
    let _ = verify_inode_checksum(0x1234_5678, ino, raw);
    let Ok(inode) = Inode::parse(raw) else { return };
    let _ = (inode.file_type(), inode.permissions(), inode.has_extents(), inode.has_inline_data(), inode.device_number());
    let _ = inode.allocated_bytes(1024, true);
    let _ = inode.allocated_bytes(65536, false);
    let mut out = raw.to_vec();
    inode.write(&mut out);
    let again = Inode::parse(&out).expect("a written inode parses");
    assert_eq!(again.size, inode.size);
    assert_eq!(again.mode, inode.mode);
});

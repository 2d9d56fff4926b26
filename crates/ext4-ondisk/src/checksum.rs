//! The two checksum algorithms of ext4: crc32c (`metadata_csum`) and crc16
//! (`gdt_csum`). Per-structure checksum functions live next to each structure
//! and are built from these.

/// The kernel's `crc32c(seed, data)`: CRC-32C with the given seed and no
/// final inversion, as `ext4_chksum` and e2fsprogs' `ext2fs_crc32c_le` use it.
#[inline]
pub fn crc32c(seed: u32, data: &[u8]) -> u32 {
    // crc32c_append inverts on entry and on exit; undo both.
    !crc32c::crc32c_append(!seed, data)
}

/// CRC-16 (ANSI, polynomial 0x8005 reflected) as used by `gdt_csum`.
pub fn crc16(mut crc: u16, data: &[u8]) -> u16 {
    for &b in data {
        crc = (crc >> 8) ^ CRC16_TABLE[((crc ^ u16::from(b)) & 0xff) as usize];
    }
    crc
}

const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u16;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xA001 } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// The per-inode seed of `metadata_csum`: crc32c of the inode number and the
/// generation, seeded with the filesystem seed (`ei->i_csum_seed`).
pub fn inode_seed(fs_seed: u32, ino: u32, generation: u32) -> u32 {
    // crc32c(crc32c(seed, ino), generation), as one call over both.
    let mut both = [0u8; 8];
    both[..4].copy_from_slice(&ino.to_le_bytes());
    both[4..].copy_from_slice(&generation.to_le_bytes());
    crc32c(fs_seed, &both)
}

/// Checksum of a block or inode bitmap (`ext4_{block,inode}_bitmap_csum`):
/// crc32c of the bitmap bytes that cover the group, seeded with the fs seed.
pub fn bitmap(fs_seed: u32, bitmap_bytes: &[u8]) -> u32 {
    crc32c(fs_seed, bitmap_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_standard_check_value() {
        // Standard CRC-32C of "123456789" is 0xE3069283 (seed !0, final inversion).
        assert_eq!(!crc32c(!0, b"123456789"), 0xE306_9283);
    }

    #[test]
    fn crc32c_chains() {
        let whole = crc32c(7, b"hello world");
        let part = crc32c(crc32c(7, b"hello "), b"world");
        assert_eq!(whole, part);
    }

    #[test]
    fn inode_seed_chains_the_number_then_the_generation() {
        for (seed, ino, generation) in [(0u32, 2u32, 0u32), (0xdead_beef, 12, 0x1234_5678), (!0, u32::MAX, 7)] {
            let stepwise = crc32c(crc32c(seed, &ino.to_le_bytes()), &generation.to_le_bytes());
            assert_eq!(inode_seed(seed, ino, generation), stepwise);
        }
    }

    #[test]
    fn crc16_matches_arc_check_value() {
        // CRC-16/ARC of "123456789" is 0xBB3D (init 0).
        assert_eq!(crc16(0, b"123456789"), 0xBB3D);
    }
}

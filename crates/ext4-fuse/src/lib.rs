//! FUSE adapter: mount an ext4 image through ext4-fs.

#![forbid(unsafe_code)]

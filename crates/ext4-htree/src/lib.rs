//! ext4 directory blocks: linear entries, htree index and name hashes (no I/O).

#![forbid(unsafe_code)]

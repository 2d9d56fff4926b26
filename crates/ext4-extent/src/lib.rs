//! ext4 logical-to-physical block maps: extent trees and indirect block maps (no I/O).

#![forbid(unsafe_code)]

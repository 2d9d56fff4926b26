//! The `ext4` command-line tool.

#![forbid(unsafe_code)]

fn main() {}

//! Block devices for ext4: the BlockDevice trait with file, memory, window, recording and fault-injecting devices.

#![forbid(unsafe_code)]

//! A device held in memory.

use std::sync::RwLock;

use crate::{BlockDevice, Op, Result, check_range};

/// A device whose bytes live in a `Vec<u8>`.
#[derive(Debug, Default)]
pub struct MemoryDevice {
    data: RwLock<Vec<u8>>,
}

impl MemoryDevice {
    /// A zero-filled device of `len` bytes.
    pub fn new(len: usize) -> Self {
        Self::from_vec(vec![0; len])
    }

    /// A device holding `data`.
    pub fn from_vec(data: Vec<u8>) -> Self {
        Self { data: RwLock::new(data) }
    }

    /// A copy of the current contents.
    pub fn to_vec(&self) -> Vec<u8> {
        self.data.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The contents, consuming the device.
    pub fn into_vec(self) -> Vec<u8> {
        self.data.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

impl BlockDevice for MemoryDevice {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let d = self.data.read().unwrap_or_else(|e| e.into_inner());
        check_range(Op::Read, offset, buf.len(), d.len() as u64)?;
        buf.copy_from_slice(&d[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        let mut d = self.data.write().unwrap_or_else(|e| e.into_inner());
        check_range(Op::Write, offset, buf.len(), d.len() as u64)?;
        d[offset as usize..offset as usize + buf.len()].copy_from_slice(buf);
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn len(&self) -> u64 {
        self.data.read().unwrap_or_else(|e| e.into_inner()).len() as u64
    }
}

impl From<Vec<u8>> for MemoryDevice {
    fn from(v: Vec<u8>) -> Self {
        Self::from_vec(v)
    }
}

//! A device that fails chosen operations, for fault-injection tests.

use std::fmt;
use std::sync::Mutex;

use crate::{BlockDevice, DeviceError, Result};

/// A kind of device operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Opening the device.
    Open,
    /// A read.
    Read,
    /// A write.
    Write,
    /// A flush.
    Flush,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Open => "open",
            Self::Read => "read",
            Self::Write => "write",
            Self::Flush => "flush",
        })
    }
}

/// Which operations fail: the `n`-th (0-based) of a kind, and optionally every one after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultPlan {
    /// The kind of operation to fail.
    pub op: Op,
    /// Index among operations of that kind of the first failure.
    pub nth: u64,
    /// Whether every later operation of that kind fails too (a dead device).
    pub sticky: bool,
}

#[derive(Debug, Default)]
struct Counters {
    reads: u64,
    writes: u64,
    flushes: u64,
}

/// Wraps a device and fails operations according to a [`FaultPlan`].
#[derive(Debug)]
pub struct FaultDevice<D> {
    inner: D,
    plan: Mutex<Option<FaultPlan>>,
    counters: Mutex<Counters>,
}

impl<D: BlockDevice> FaultDevice<D> {
    /// Wraps `inner` with no faults planned.
    pub fn new(inner: D) -> Self {
        Self { inner, plan: Mutex::new(None), counters: Mutex::new(Counters::default()) }
    }

    /// Sets (or clears) the plan and resets the counters.
    pub fn set_plan(&self, plan: Option<FaultPlan>) {
        *self.plan.lock().unwrap_or_else(|e| e.into_inner()) = plan;
        *self.counters.lock().unwrap_or_else(|e| e.into_inner()) = Counters::default();
    }

    /// Operations of each kind seen so far: (reads, writes, flushes).
    pub fn counts(&self) -> (u64, u64, u64) {
        let c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        (c.reads, c.writes, c.flushes)
    }

    /// The inner device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    fn check(&self, op: Op, offset: u64) -> Result<()> {
        let n = {
            let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
            let slot = match op {
                Op::Read => &mut c.reads,
                Op::Write => &mut c.writes,
                Op::Flush => &mut c.flushes,
                Op::Open => return Ok(()),
            };
            *slot += 1;
            *slot - 1
        };
        match *self.plan.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(p) if p.op == op && (n == p.nth || (p.sticky && n > p.nth)) => Err(DeviceError::Injected { op, offset }),
            _ => Ok(()),
        }
    }
}

impl<D: BlockDevice> BlockDevice for FaultDevice<D> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check(Op::Read, offset)?;
        self.inner.read_at(offset, buf)
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        self.check(Op::Write, offset)?;
        self.inner.write_at(offset, buf)
    }

    fn flush(&self) -> Result<()> {
        self.check(Op::Flush, 0)?;
        self.inner.flush()
    }

    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn sector_size(&self) -> u32 {
        self.inner.sector_size()
    }

    fn is_read_only(&self) -> bool {
        self.inner.is_read_only()
    }
}

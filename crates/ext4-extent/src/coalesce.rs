//! Joins runs reported in logical order into maximal contiguous runs.

use core::ops::ControlFlow;

use crate::Run;

/// Buffers one run and extends it while the next ones continue it logically
/// and physically in the same written state.
struct Coalesce<F> {
    pending: Option<Run>,
    f: F,
}

impl<F: FnMut(Run) -> ControlFlow<()>> Coalesce<F> {
    /// A coalescer that hands finished runs to `f`.
    fn new(f: F) -> Self {
        Self { pending: None, f }
    }

    /// Adds the next run (logically after every run pushed before).
    fn push(&mut self, run: Run) -> ControlFlow<()> {
        let Some(p) = &mut self.pending else {
            self.pending = Some(run);
            return ControlFlow::Continue(());
        };
        let continues =
            p.logical_end() == u64::from(run.logical) && p.physical + u64::from(p.len) == run.physical && p.unwritten == run.unwritten;
        if let (true, Some(len)) = (continues, p.len.checked_add(run.len)) {
            p.len = len;
            return ControlFlow::Continue(());
        }
        let done = *p;
        self.pending = Some(run);
        (self.f)(done)
    }

    /// Hands over the last run.
    fn finish(mut self) -> ControlFlow<()> {
        match self.pending.take() {
            Some(run) => (self.f)(run),
            None => ControlFlow::Continue(()),
        }
    }
}

/// Runs `walk`, which reports runs in logical order, and hands them to `f`
/// coalesced; stops the walk when `f` breaks.
pub(crate) fn coalesced<E>(
    f: impl FnMut(Run) -> ControlFlow<()>,
    walk: impl FnOnce(&mut dyn FnMut(Run) -> ControlFlow<()>) -> Result<(), E>,
) -> Result<(), E> {
    let mut runs = Coalesce::new(f);
    let mut stopped = false;
    walk(&mut |r| {
        let flow = runs.push(r);
        stopped = flow.is_break();
        flow
    })?;
    if !stopped {
        let _ = runs.finish();
    }
    Ok(())
}

//! Blocks claimed more than once (e2fsck's passes 1b to 1d): each run of
//! multiply-claimed clusters is reported; repair (cloning or deleting the
//! files) is not done by a read-only check.

use crate::ctx::{Ctx, Flow};
use crate::problem::{At, Code};

/// Reports the multiply-claimed clusters found by pass 1.
pub(super) fn run(ctx: &mut Ctx<'_, '_>) -> Flow {
    let ratio = ctx.fs.ratio();
    let runs: Vec<(u64, u64)> = ctx.dups.runs_in(0, u64::MAX).collect();
    for &(s, e) in &runs {
        let (b, n) = (s * ratio, (e - s) * ratio);
        let what = if n == 1 { format!("block {b} is") } else { format!("blocks {b}-{} are", b + n - 1) };
        ctx.ask(Code::DupBlock, At::block(b), format!("{what} claimed more than once"));
    }
    let total: u64 = runs.iter().map(|(s, e)| e - s).sum();
    ctx.ask(Code::DupFile, At::NONE, format!("{} multiply-claimed blocks are shared by files or metadata", total * ratio));
    Ok(())
}

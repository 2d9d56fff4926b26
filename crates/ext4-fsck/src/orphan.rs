//! Stub.

use crate::ctx::{Ctx, Flow};

/// Checks the orphan file.
pub(crate) fn check_orphan_file(_ctx: &mut Ctx<'_, '_>) -> Flow {
    Ok(())
}

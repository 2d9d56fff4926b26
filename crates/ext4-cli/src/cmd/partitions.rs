//! `ext4 partitions IMAGE`: the partition table of a disk image or device.

use std::path::PathBuf;

use ext4_fs::blockdev::partition;

use crate::device::describe;
use crate::util::{CliError, CliResult};

/// Arguments of `ext4 partitions`.
#[derive(clap::Args)]
pub struct Args {
    /// The disk image or device.
    image: PathBuf,
}

/// Runs the command.
pub fn run(a: Args) -> CliResult {
    let shown = a.image.display().to_string();
    let dev = crate::device::open(&crate::device::Spec::parse(&a.image), true)?;
    let table = partition::read_table(&dev).map_err(|e| CliError::new(shown.clone(), e, Some(117)))?;
    let Some(table) = table else {
        return Err(CliError::new(shown, partition::PartitionError::NoTable, Some(2)));
    };
    let mut out = crate::out::Out::new();
    out.text(&format!("{} partition table, {}-byte sectors\n", table.kind, table.sector_size))?;
    out.text(&describe(&table))?;
    out.finish()
}

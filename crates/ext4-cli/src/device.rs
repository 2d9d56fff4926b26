//! Where an IMAGE argument's filesystem lies, and the one place every
//! command opens it: a whole image file, partition N of a partitioned disk
//! image (`IMAGE@N` or `--partition N`), or the bytes from an offset on
//! (`--offset BYTES`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ext4_fs::blockdev::partition::{self, PartitionTable};
use ext4_fs::blockdev::{DeviceError, RawDevice, RawOptions, is_block_device};
use ext4_fs::{BlockDevice, FileDevice, WindowDevice};

use crate::util::{CliError, CliResult, Context, fail};

/// `--partition` and `--offset` as given to this run (they apply to IMAGE).
#[derive(Debug, Clone, Copy, Default)]
pub struct Placement {
    /// `--partition N`.
    pub partition: Option<u32>,
    /// `--offset BYTES`.
    pub offset: Option<u64>,
}

static PLACEMENT: OnceLock<Placement> = OnceLock::new();

/// Records this run's `--partition`/`--offset` (once, from `main`).
pub fn set_placement(p: Placement) {
    let _ = PLACEMENT.set(p);
}

/// This run's `--partition`/`--offset`.
pub fn placement() -> Placement {
    PLACEMENT.get().copied().unwrap_or_default()
}

/// An IMAGE argument resolved: the file, and where the filesystem lies in it.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The image file or device.
    pub file: PathBuf,
    /// Partition number.
    pub partition: Option<u32>,
    /// Byte offset of the filesystem.
    pub offset: Option<u64>,
}

impl Spec {
    /// IMAGE as given on the command line: `FILE@N` names partition N of
    /// FILE (unless a file is named `FILE@N` itself), and this run's
    /// `--partition`/`--offset` apply.
    pub fn image(arg: &Path) -> CliResult<Self> {
        let mut spec = Self::parse(arg);
        let Placement { partition, offset } = placement();
        match (spec.partition, partition) {
            (Some(_), Some(_)) => return Err(fail(format!("{}: give the partition once (@N or --partition)", arg.display()))),
            (None, Some(n)) => spec.partition = Some(n),
            _ => {}
        }
        spec.offset = offset;
        if spec.partition.is_some() && spec.offset.is_some() {
            return Err(fail("--offset and a partition exclude each other"));
        }
        if spec.partition == Some(0) {
            return Err(fail(format!("{}: partitions are numbered from 1", arg.display())));
        }
        Ok(spec)
    }

    /// A path with an optional `@N` suffix, without this run's flags (for
    /// `--journal FILE`).
    pub fn parse(arg: &Path) -> Self {
        let whole = Self { file: arg.to_path_buf(), partition: None, offset: None };
        if std::fs::symlink_metadata(arg).is_ok() {
            return whole;
        }
        let text = arg.as_os_str().to_string_lossy();
        let Some((file, n)) = text.rsplit_once('@') else { return whole };
        let digits = !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
        match n.parse::<u32>() {
            Ok(n) if digits && !file.is_empty() && Path::new(file).exists() => {
                Self { file: PathBuf::from(file), partition: Some(n), offset: None }
            }
            _ => whole,
        }
    }

    /// Whether the filesystem is the whole file.
    pub fn is_whole(&self) -> bool {
        self.partition.is_none() && self.offset.is_none()
    }

    /// Whether the filesystem is a whole image file (not a block device):
    /// opened by its path, as a plain file.
    pub fn is_whole_file(&self) -> bool {
        self.is_whole() && !is_block_device(&self.file)
    }

    /// The spec as messages show it.
    pub fn shown(&self) -> String {
        match (self.partition, self.offset) {
            (Some(n), _) => format!("{}@{n}", self.file.display()),
            (None, Some(o)) => format!("{} at offset {o}", self.file.display()),
            (None, None) => self.file.display().to_string(),
        }
    }
}

/// Opens the file of `spec` and the window where its filesystem lies: a
/// block device as a [`RawDevice`] (sector-aligned I/O; exclusive when
/// writable, so a mounted device is refused), anything else as a file.
pub fn open(spec: &Spec, read_only: bool) -> CliResult<Box<dyn BlockDevice>> {
    let shown = spec.file.display().to_string();
    if is_block_device(&spec.file) {
        let opts = if read_only { RawOptions::read_only() } else { RawOptions::read_write() };
        let dev = RawDevice::open(&spec.file, opts).map_err(|e| match e {
            DeviceError::Busy { .. } => {
                CliError::new(shown, "in use (mounted, or held by another program): not opened for writing", Some(16))
            }
            e => {
                let errno = Some(e.errno());
                CliError::new(shown, e, errno)
            }
        })?;
        return window(dev, spec);
    }
    let dev = FileDevice::open(&spec.file, read_only).context(|| format!("opening {shown}"))?;
    window(dev, spec)
}

/// The window of `dev` where the filesystem of `spec` lies.
pub fn window<D: BlockDevice + 'static>(dev: D, spec: &Spec) -> CliResult<Box<dyn BlockDevice>> {
    match (spec.partition, spec.offset) {
        (Some(n), _) => {
            let p = partition::open_partition(dev, n).map_err(|e| partition_error(spec, e))?;
            Ok(Box::new(p))
        }
        (None, Some(o)) => Ok(Box::new(WindowDevice::new(dev, o, None).context(|| format!("opening {}", spec.shown()))?)),
        (None, None) => Ok(Box::new(dev)),
    }
}

/// A partition table error on `spec`'s file.
fn partition_error(spec: &Spec, e: partition::PartitionError) -> CliError {
    use partition::PartitionError as P;
    let errno = match &e {
        P::Device(d) => Some(d.errno()),
        P::Corrupt { .. } => Some(117),
        P::NoTable | P::NoSuchPartition { .. } => Some(2),
        _ => Some(22),
    };
    CliError::new(spec.file.display().to_string(), e, errno)
}

/// What a whole image that holds no filesystem holds instead, if it is a
/// partitioned disk: the table's kind and its partitions.
pub fn partitioned_disk(file: &Path) -> Option<String> {
    let dev = open(&Spec::parse(file), true).ok()?;
    let table = partition::read_table(&dev).ok()??;
    let parts: Vec<String> = table
        .partitions
        .iter()
        .map(|p| {
            let name = if p.name.is_empty() { String::new() } else { format!(" {:?}", p.name) };
            format!("{}: {} bytes at {}, {}{name}", p.number, p.len, p.offset, p.kind)
        })
        .collect();
    let parts = if parts.is_empty() { "none".to_string() } else { parts.join("; ") };
    Some(format!("a partitioned disk ({}; partitions {parts}): name one as IMAGE@N or with --partition N", table.kind))
}

/// A table's partitions as `ext4 partitions` lists them.
pub fn describe(table: &PartitionTable) -> String {
    let mut s = format!("{:>3}  {:>14}  {:>14}  {:<10}  TYPE\n", "N", "START", "BYTES", "NAME");
    for p in &table.partitions {
        let name = if p.name.is_empty() { "-" } else { &p.name };
        s += &format!("{:>3}  {:>14}  {:>14}  {:<10}  {}\n", p.number, p.offset, p.len, name, p.kind);
    }
    s
}

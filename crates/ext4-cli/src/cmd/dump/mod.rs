//! `ext4 dump [-h] [-x] [--json] IMAGE`: the superblock, the journal
//! superblock, the MMP block and every group, as dumpe2fs prints them
//! (times in UTC), or as JSON.

mod json;
mod names;
mod text;

use std::io::Write;
use std::path::PathBuf;

use ext4_fs::Filesystem;
use ext4_fs::ondisk::Compat;

use self::json::dump_json;
use self::text::{Numbers, list_group, list_journal, list_mmp, list_super};
use crate::util::{CliResult, Context};

/// Arguments of `ext4 dump`.
#[derive(clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// Only the superblock (and the journal and MMP blocks), no groups.
    #[arg(short = 'h', long = "header-only")]
    header_only: bool,
    /// Block numbers in hexadecimal.
    #[arg(short = 'x')]
    hex: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// The image or device.
    image: PathBuf,
}

/// Runs the command.
pub fn run(a: Args) -> CliResult {
    let fs = open_for_report(&a.image)?;
    let what = || format!("dumping {}", a.image.display());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let r = if a.json { dump_json(&fs, a.header_only, &mut out) } else { dump_text(&fs, &a, &mut out) };
    match r.and_then(|()| out.flush().map_err(Failure::Io)) {
        Ok(()) => Ok(()),
        // A reader that went away (`| head`) ends the output quietly.
        Err(Failure::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(Failure::Io(e)) => Err(e).context(what),
        Err(Failure::Fs(e)) => Err(e).context(what),
    }
}

/// Why a dump stopped.
enum Failure {
    /// Writing the output failed.
    Io(std::io::Error),
    /// Reading the image failed.
    Fs(ext4_fs::Error),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<ext4_fs::Error> for Failure {
    fn from(e: ext4_fs::Error) -> Self {
        Self::Fs(e)
    }
}

type DumpResult = Result<(), Failure>;

/// Opens IMAGE (with `@N`, `--partition`, `--offset`) for a report.
fn open_for_report(image: &std::path::Path) -> CliResult<Filesystem> {
    let dev = crate::device::open(&crate::device::Spec::image(image)?, true)?;
    Filesystem::open_device_for_report(dev).context(|| format!("opening {}", image.display()))
}

/// The superblock alone, as `tune2fs -l` prints it.
pub(crate) fn list_header(image: &std::path::Path) -> CliResult {
    let fs = open_for_report(image)?;
    let sb = fs.stored_superblock().context(|| format!("reading {}", image.display()))?;
    let mut out = std::io::stdout().lock();
    match list_super(&mut out, &sb) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context(|| "writing the superblock".to_string()),
        _ => Ok(()),
    }
}

/// The text report, as dumpe2fs prints it.
fn dump_text(fs: &Filesystem, a: &Args, w: &mut impl Write) -> DumpResult {
    let sb = fs.stored_superblock()?;
    list_super(w, &sb)?;
    if sb.features().compat.contains(Compat::HAS_JOURNAL) && sb.s_journal_inum.get() != 0 {
        if let Some(jsb) = fs.journal_superblock()? {
            list_journal(w, &jsb, fs.geometry().block_size, sb.features().compat.contains(Compat::FAST_COMMIT))?;
        }
    }
    if let Some(mmp) = fs.mmp_block()? {
        list_mmp(w, &mmp)?;
    }
    // dumpe2fs ends its (empty) bad block list with a newline.
    writeln!(w)?;
    if a.header_only {
        return Ok(());
    }
    writeln!(w)?;
    let num = Numbers { hex: a.hex, wide: fs.geometry().is_64bit() };
    fs.for_each_group_report(|r| list_group(w, fs.geometry(), &r, num).map_err(Failure::Io))?;
    Ok(())
}

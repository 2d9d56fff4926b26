//! The `ext4` command-line tool: inspect ext2/ext3/ext4 images, copy files
//! in and out, edit, and format. Invoked as `mke2fs`, `mkfs.ext2`,
//! `mkfs.ext3` or `mkfs.ext4` (a symbolic link), it takes mke2fs' own
//! command line.

#![forbid(unsafe_code)]

mod build;
mod cmd;
mod device;
mod encoding;
mod errno;
mod out;
mod progress;
mod time;
mod util;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use util::{CliError, Exit};

/// What `ext4 --help` says after the command list.
const AFTER_HELP: &str = "\
Arguments: options first, then IMAGE, then paths and operands, for every
command (`ext4 chmod IMAGE MODE PATH...`, `ext4 xattr set IMAGE PATH NAME
VALUE`); a line of `ext4 batch IMAGE` is the same command without IMAGE
(`chmod MODE PATH...`). Paths inside the image are absolute; names are
bytes (any non-UTF-8 name can be given and is printed as it is, escaped
as \\xNN on a terminal). Times: @SECONDS or ISO 8601 (UTC unless a zone
is given). `--json` output shares one shape: numbers as numbers, times as
{\"rfc3339\", \"epoch\", \"nsec\"}, a name that is not UTF-8 also as
NAME_base64.

IMAGE@N (or --partition N) names partition N of a partitioned disk image
(MBR or GPT, numbered as Linux numbers them); --offset BYTES a filesystem
that starts BYTES into IMAGE. `ext4 partitions IMAGE` lists them.

Exit status: 0 success, 1 failure (the message names the errno), 2 usage
(bad arguments), 3 not found (ENOENT), 4 corrupt or not an ext2/3/4
filesystem, 5 I/O error, 6 partial (some work failed and was reported, the
rest was done: get -r, batch -k); `fsck` exits as e2fsck does. A closed
pipe on standard output ends a command quietly with status 0.";

/// Read, write and format ext2/ext3/ext4 images without a kernel driver.
#[derive(Parser)]
#[command(name = "ext4", version, about, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The filesystem is partition N of IMAGE, a partitioned disk (MBR or
    /// GPT; as IMAGE@N).
    #[arg(long, global = true, value_name = "N")]
    partition: Option<u32>,
    /// The filesystem starts BYTES into IMAGE.
    #[arg(long, global = true, value_name = "BYTES")]
    offset: Option<u64>,
}

#[derive(Subcommand)]
enum Command {
    /// Format a device or image file as ext4 (-t ext2|ext3 for the others;
    /// mke2fs options; -d DIR copies a tree in).
    Mkfs(Box<cmd::mkfs::Args>),
    /// Show the superblock summary of an image.
    Info(cmd::info::Args),
    /// List the partitions of a disk image (MBR or GPT).
    Partitions(cmd::partitions::Args),
    /// Show, replay or clear the journal.
    Journal(cmd::journal::Args),
    /// Show the superblock and every group, as dumpe2fs does (-h: superblock only).
    Dump(cmd::dump::Args),
    /// Change an unmounted filesystem's parameters and features, as tune2fs does.
    Tune(Box<cmd::tune::Args>),
    /// Check a filesystem as `e2fsck -f` does (read-only unless -y or -p);
    /// exit status as e2fsck's (0 clean, 1 repaired, 4 errors left, 8 failed).
    Fsck(cmd::fsck::Args),
    #[command(flatten)]
    Op(cmd::Op<cmd::Image>),
    /// Run many commands (one a line, from standard input) on one open image.
    ///
    /// Each line is one of the commands above without its IMAGE argument
    /// (`mkdir -p /a/b`, `write /a/f 'some text'`, `chmod 4755 /a/f`,
    /// `xattr set /a/f user.k v`, `ls -l /a`). Words are split as by a shell:
    /// 'single' and "double" quotes, backslash escapes, a backslash at the end
    /// of a line continues it; `#` starts a comment; blank lines are ignored.
    /// Words are bytes: a name that is not UTF-8 is written as it is.
    /// `write` takes TEXT or `--from FILE` (standard input holds the script).
    /// The whole script is parsed before the image is opened; the image is
    /// opened once, and committed and closed at the end. The first failing
    /// command stops the run with its line number, command, path and errno
    /// name (`--keep-going` runs the rest); what ran before stays applied.
    Batch(cmd::batch::Args),
    /// Mount an image through FUSE.
    Mount(cmd::mount::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(cmd::completions::Args),
}

/// Lets a copy hold one descriptor per level of a deep host tree (`mkfs -d`,
/// `put -r`: trees can be deeper than the usual soft limit of 1,024): the
/// soft limit on open files goes up to the hard one, as Go's runtime does.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

/// A closed pipe on standard output ends the command quietly: Rust ignores
/// SIGPIPE, so a `print!` left in a command would panic on EPIPE; this
/// makes that panic a quiet exit as well.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info.payload().downcast_ref::<String>().map(String::as_str).unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("os error 32") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// The command `ext4` is the [`Cli`] of; `cmd::completions` and xtask's man pages use it.
pub fn command() -> clap::Command {
    Cli::command()
}

fn main() -> ExitCode {
    raise_open_file_limit();
    quiet_on_broken_pipe();
    let args: Vec<OsString> = std::env::args_os().collect();
    let program = args.first().and_then(|a| std::path::Path::new(a).file_name()).map(|n| n.to_string_lossy().into_owned());
    let result = match program.as_deref().and_then(cmd::mkfs::mke2fs_type) {
        Some(fs_type) => cmd::mkfs::run_as_mke2fs(fs_type, &args[1..]),
        None => run(Cli::parse_from(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    device::set_placement(device::Placement { partition: cli.partition, offset: cli.offset });
    match cli.command {
        Command::Mkfs(a) => cmd::mkfs::run(*a),
        Command::Info(a) => cmd::info::run(a),
        Command::Partitions(a) => cmd::partitions::run(a),
        Command::Journal(a) => cmd::journal::run(a),
        Command::Dump(a) => cmd::dump::run(a),
        Command::Tune(a) => cmd::tune::run(*a),
        Command::Fsck(a) => std::process::exit(cmd::fsck::run(a)),
        Command::Op(op) => op.run(),
        Command::Batch(a) => cmd::batch::run(a),
        Command::Mount(a) => cmd::mount::run(a),
        Command::Completions(a) => cmd::completions::run(a),
    }
}

/// Prints the error and returns its exit status.
fn report(e: &CliError) -> ExitCode {
    eprintln!("ext4: {e}");
    let code: Exit = e.exit();
    ExitCode::from(code as u8)
}

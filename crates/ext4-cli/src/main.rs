//! The `ext4` command-line tool: inspect ext2/ext3/ext4 images, copy files
//! in and out, and format.

#![forbid(unsafe_code)]

mod cmd;
mod progress;
mod util;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Read, write and format ext2/ext3/ext4 images without a kernel driver.
#[derive(Parser)]
#[command(name = "ext4", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Format a device or image file (mke2fs options; -d DIR copies a tree in).
    Mkfs(Box<cmd::mkfs::Args>),
    /// Show the superblock summary of an image.
    Info(cmd::info::Args),
    /// Show, replay or clear the journal.
    Journal(cmd::journal::Args),
    /// Check a filesystem as `e2fsck -f` does (read-only unless -y or -p);
    /// exit status as e2fsck's.
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
    /// `write` takes TEXT or `--from FILE` (standard input holds the script).
    /// The whole script is parsed before the image is opened; the image is
    /// opened once, and committed and closed at the end. The first failing
    /// command stops the run with its line number, command, path and errno
    /// name (`--keep-going` runs the rest); what ran before stays applied.
    Batch(cmd::batch::Args),
    /// Mount an image through FUSE.
    Mount(cmd::mount::Args),
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

fn main() -> ExitCode {
    raise_open_file_limit();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Fsck(a) => return cmd::fsck::run(a),
        Command::Mkfs(a) => cmd::mkfs::run(*a),
        Command::Info(a) => cmd::info::run(a),
        Command::Journal(a) => cmd::journal::run(a),
        Command::Op(op) => op.run(),
        Command::Batch(a) => cmd::batch::run(a),
        Command::Mount(a) => cmd::mount::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ext4: {e}");
            ExitCode::FAILURE
        }
    }
}

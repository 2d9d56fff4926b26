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
    /// List a directory.
    Ls(cmd::ls::Args),
    /// Print a file's contents.
    Cat(cmd::cat::Args),
    /// Show everything about an inode.
    Stat(cmd::stat::Args),
    /// Copy a file or a tree out of an image.
    Get(cmd::get::Args),
    /// Copy host files or trees into an image.
    Put(cmd::put::Args),
    /// Replace a file's contents with standard input.
    Write(cmd::edit::WriteArgs),
    /// Remove files (and trees with -r).
    Rm(cmd::edit::RmArgs),
    /// Set a file's size.
    Truncate(cmd::edit::TruncateArgs),
    /// Create directories.
    Mkdir(cmd::edit::MkdirArgs),
    /// Remove empty directories.
    Rmdir(cmd::edit::RmdirArgs),
    /// Rename or move.
    Mv(cmd::edit::MvArgs),
    /// Make hard or symbolic links.
    Ln(cmd::edit::LnArgs),
    /// Make device nodes, FIFOs and sockets.
    Mknod(cmd::edit::MknodArgs),
    /// Change permissions.
    Chmod(cmd::edit::ChmodArgs),
    /// Change owners.
    Chown(cmd::edit::ChownArgs),
    /// Create files or set their times.
    Touch(cmd::edit::TouchArgs),
    /// Get, set, list and remove extended attributes.
    Xattr(cmd::xattr::Args),
    /// Mount an image through FUSE.
    Mount(cmd::mount::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Mkfs(a) => cmd::mkfs::run(*a),
        Command::Info(a) => cmd::info::run(a),
        Command::Ls(a) => cmd::ls::run(a),
        Command::Cat(a) => cmd::cat::run(a),
        Command::Stat(a) => cmd::stat::run(a),
        Command::Get(a) => cmd::get::run(a),
        Command::Put(a) => cmd::put::run(a),
        Command::Write(a) => cmd::edit::write(a),
        Command::Rm(a) => cmd::edit::rm(a),
        Command::Truncate(a) => cmd::edit::truncate(a),
        Command::Mkdir(a) => cmd::edit::mkdir(a),
        Command::Rmdir(a) => cmd::edit::rmdir(a),
        Command::Mv(a) => cmd::edit::mv(a),
        Command::Ln(a) => cmd::edit::ln(a),
        Command::Mknod(a) => cmd::edit::mknod(a),
        Command::Chmod(a) => cmd::edit::chmod(a),
        Command::Chown(a) => cmd::edit::chown(a),
        Command::Touch(a) => cmd::edit::touch(a),
        Command::Xattr(a) => cmd::xattr::run(a),
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

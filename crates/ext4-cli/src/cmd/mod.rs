//! One module per subcommand (small editing commands share `edit`), and
//! [`Op`]: the subcommands that work inside one open image, parsed and run
//! the same way standalone (`ext4 rm IMAGE PATH`) and as lines of
//! `ext4 batch IMAGE` (`rm PATH`). Every one takes its options, then
//! IMAGE, then paths and operands.

pub mod attr;
pub mod batch;
pub mod cat;
pub mod completions;
pub mod dump;
pub mod edit;
pub mod extents;
pub mod find;
pub mod fsck;
pub mod get;
pub mod info;
pub mod journal;
pub mod ls;
pub mod mkfs;
pub mod mount;
pub mod partitions;
pub mod put;
pub mod stat;
pub mod tree;
pub mod tune;
pub mod xattr;

use std::path::PathBuf;

use ext4_fs::Filesystem;

use crate::util::{CliResult, close, open_ro, open_rw};

/// The IMAGE argument of a standalone command.
#[derive(clap::Args, Clone)]
pub struct Image {
    /// The image or device.
    pub image: PathBuf,
    /// The external journal device (or image) of a filesystem made with
    /// `mke2fs -J device=`.
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
}

/// No IMAGE argument: a line of `ext4 batch`, whose image is already open.
#[derive(clap::Args, Clone)]
pub struct Open {}

/// The subcommands that read or change the inside of one image.
#[derive(clap::Subcommand)]
pub enum Op<I: clap::Args> {
    /// List a directory.
    Ls(ls::Args<I>),
    /// Print a file's contents.
    Cat(cat::Args<I>),
    /// Show everything about an inode.
    Stat(stat::Args<I>),
    /// Copy a file or a tree out of an image.
    Get(get::Args<I>),
    /// Copy host files or trees into an image.
    Put(put::Args<I>),
    /// Replace a file's contents (with TEXT, a host file, or standard input).
    Write(edit::WriteArgs<I>),
    /// Remove files (and trees with -r).
    Rm(edit::RmArgs<I>),
    /// Set a file's size.
    Truncate(edit::TruncateArgs<I>),
    /// Create directories.
    Mkdir(edit::MkdirArgs<I>),
    /// Remove empty directories.
    Rmdir(edit::RmdirArgs<I>),
    /// Rename or move.
    Mv(edit::MvArgs<I>),
    /// Make hard or symbolic links.
    Ln(edit::LnArgs<I>),
    /// Make device nodes, FIFOs and sockets.
    Mknod(edit::MknodArgs<I>),
    /// Change permissions.
    Chmod(edit::ChmodArgs<I>),
    /// Change owners.
    Chown(edit::ChownArgs<I>),
    /// Create files or set their times.
    Touch(edit::TouchArgs<I>),
    /// Get, set, list and remove extended attributes.
    Xattr(xattr::Args<I>),
    /// Change inode flags, as chattr(1): `+i`, `-a`, `=dA` (project ids: not yet).
    Chattr(attr::ChattrArgs<I>),
    /// List inode flags, as lsattr(1) (`-p`: project ids).
    Lsattr(attr::LsattrArgs<I>),
    /// Show a directory tree, as tree(1).
    Tree(tree::TreeArgs<I>),
    /// Space used by files and trees, as du(1).
    Du(tree::DuArgs<I>),
    /// A file's extents (logical, physical, length, flags) and map blocks, as debugfs `ex`.
    Extents(extents::Args<I>),
    /// Which inodes own the given blocks, as debugfs `icheck`.
    Icheck(find::IcheckArgs<I>),
    /// The names of the given inodes, as debugfs `ncheck`.
    Ncheck(find::NcheckArgs<I>),
}

impl<I: clap::Args> Op<I> {
    /// Whether the command changes the image.
    pub fn writes(&self) -> bool {
        !matches!(
            self,
            Op::Ls(_)
                | Op::Cat(_)
                | Op::Stat(_)
                | Op::Get(_)
                | Op::Lsattr(_)
                | Op::Tree(_)
                | Op::Du(_)
                | Op::Extents(_)
                | Op::Icheck(_)
                | Op::Ncheck(_)
        ) && !matches!(self, Op::Xattr(x) if !x.writes())
    }

    /// The command's image argument.
    fn slot(&self) -> &I {
        match self {
            Op::Ls(a) => &a.image,
            Op::Cat(a) => &a.image,
            Op::Stat(a) => &a.image,
            Op::Get(a) => &a.image,
            Op::Put(a) => &a.image,
            Op::Write(a) => &a.image,
            Op::Rm(a) => &a.image,
            Op::Truncate(a) => &a.image,
            Op::Mkdir(a) => &a.image,
            Op::Rmdir(a) => &a.image,
            Op::Mv(a) => &a.image,
            Op::Ln(a) => &a.image,
            Op::Mknod(a) => &a.image,
            Op::Chmod(a) => &a.image,
            Op::Chown(a) => &a.image,
            Op::Touch(a) => &a.image,
            Op::Xattr(a) => a.image(),
            Op::Chattr(a) => &a.image,
            Op::Lsattr(a) => &a.image,
            Op::Tree(a) => &a.image,
            Op::Du(a) => &a.image,
            Op::Extents(a) => &a.image,
            Op::Icheck(a) => &a.image,
            Op::Ncheck(a) => &a.image,
        }
    }

    /// Runs the command on an open filesystem (read-write if [`Op::writes`]).
    pub fn exec(&self, fs: &mut Filesystem) -> CliResult {
        match self {
            Op::Ls(a) => ls::exec(a, fs),
            Op::Cat(a) => cat::exec(a, fs),
            Op::Stat(a) => stat::exec(a, fs),
            Op::Get(a) => get::exec(a, fs),
            Op::Put(a) => put::exec(a, fs),
            Op::Write(a) => edit::write(a, fs),
            Op::Rm(a) => edit::rm(a, fs),
            Op::Truncate(a) => edit::truncate(a, fs),
            Op::Mkdir(a) => edit::mkdir(a, fs),
            Op::Rmdir(a) => edit::rmdir(a, fs),
            Op::Mv(a) => edit::mv(a, fs),
            Op::Ln(a) => edit::ln(a, fs),
            Op::Mknod(a) => edit::mknod(a, fs),
            Op::Chmod(a) => edit::chmod(a, fs),
            Op::Chown(a) => edit::chown(a, fs),
            Op::Touch(a) => edit::touch(a, fs),
            Op::Xattr(a) => xattr::exec(a, fs),
            Op::Chattr(a) => attr::chattr(a, fs),
            Op::Lsattr(a) => attr::lsattr(a, fs),
            Op::Tree(a) => tree::tree(a, fs),
            Op::Du(a) => tree::du(a, fs),
            Op::Extents(a) => extents::exec(a, fs),
            Op::Icheck(a) => find::icheck(a, fs),
            Op::Ncheck(a) => find::ncheck(a, fs),
        }
    }
}

impl Op<Image> {
    /// Runs a standalone command: opens its image (read-only unless the
    /// command writes), runs it, and commits and closes a written image.
    pub fn run(self) -> CliResult {
        let Image { image, journal } = self.slot().clone();
        if !self.writes() {
            return self.exec(&mut open_ro(&image, journal.as_deref())?);
        }
        let mut fs = open_rw(&image, journal.as_deref())?;
        self.exec(&mut fs)?;
        close(fs, &image)
    }
}

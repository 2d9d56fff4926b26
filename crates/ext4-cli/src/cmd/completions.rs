//! `ext4 completions SHELL` and `ext4 completions --man DIR`: shell
//! completion scripts and man pages, generated from the clap definitions
//! (`cargo xtask man` writes the pages).

use std::path::PathBuf;

use clap_complete::Shell;

use crate::util::{CliResult, Context};

/// Arguments of `ext4 completions`.
#[derive(clap::Args)]
pub struct Args {
    /// Write man pages (`ext4.1`, `ext4-ls.1`, ...) into this directory instead.
    #[arg(long, value_name = "DIR", conflicts_with = "shell")]
    man: Option<PathBuf>,
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum, required_unless_present = "man")]
    shell: Option<Shell>,
}

/// Runs the command.
pub fn run(a: Args) -> CliResult {
    let mut cmd = crate::command();
    if let Some(dir) = &a.man {
        std::fs::create_dir_all(dir).context(|| format!("creating {}", dir.display()))?;
        return clap_mangen::generate_to(cmd, dir).context(|| format!("writing man pages into {}", dir.display()));
    }
    let shell = a.shell.expect("clap requires SHELL without --man");
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "ext4", &mut script);
    let mut out = crate::out::Out::new();
    out.raw(&script)?;
    out.finish()
}

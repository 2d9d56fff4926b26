//! `ext4 ls [-l] IMAGE [PATH]`: list a directory.

use ext4_fs::Filesystem;

use crate::util::{CliResult, Context, format_time, mode_string, path_bytes};

/// Arguments of `ext4 ls`.
#[derive(clap::Args)]
pub struct Args<I: clap::Args> {
    /// Long listing: mode, links, owner, size, mtime, name (and symlink target).
    #[arg(short = 'l')]
    long: bool,
    /// Include `.` and `..`.
    #[arg(short = 'a')]
    all: bool,
    #[command(flatten)]
    pub(crate) image: I,
    /// The directory (default: the root).
    #[arg(default_value = "/")]
    path: String,
}

/// Runs the command.
pub fn exec<I: clap::Args>(a: &Args<I>, fs: &Filesystem) -> CliResult {
    let p = path_bytes(&a.path);
    let ino = fs.lookup(&p).context(|| a.path.clone())?;
    let md = fs.stat(ino).context(|| a.path.clone())?;
    let mut entries = if md.is_dir() {
        fs.dir_entries(ino).context(|| format!("listing {}", a.path))?
    } else {
        vec![ext4_fs::DirEntry { name: p.rsplit(|&c| c == b'/').next().unwrap_or(&p).to_vec(), ino, file_type: Some(md.file_type), pos: 0 }]
    };
    if !a.all {
        entries.retain(|e| e.name != b"." && e.name != b"..");
    }
    entries.sort_by(|x, y| x.name.cmp(&y.name));
    for e in entries {
        let name = e.name_lossy();
        if !a.long {
            println!("{name}");
            continue;
        }
        let m = fs.stat(e.ino).context(|| format!("{}/{name}", a.path))?;
        let size = if matches!(m.file_type, ext4_fs::FileType::CharDevice | ext4_fs::FileType::BlockDevice) {
            format!("{}, {}", m.rdev.0, m.rdev.1)
        } else {
            m.size.to_string()
        };
        let mut line = format!(
            "{} {:>3} {:>5} {:>5} {:>10} {} {name}",
            mode_string(m.file_type, m.permissions),
            m.nlink,
            m.uid,
            m.gid,
            size,
            &format_time(m.mtime)[..19]
        );
        if m.is_symlink() {
            let t = fs.read_link_ino(e.ino).context(|| format!("{}/{name}", a.path))?;
            line.push_str(" -> ");
            line.push_str(&String::from_utf8_lossy(&t));
        }
        println!("{line}");
    }
    Ok(())
}

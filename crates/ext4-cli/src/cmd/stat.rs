//! `ext4 stat IMAGE PATH`: everything about an inode.

use ext4_fs::Filesystem;

use crate::util::{CliResult, Context, format_time, mode_string, path_bytes};

/// Arguments of `ext4 stat`.
#[derive(clap::Args)]
pub struct Args<I: clap::Args> {
    #[command(flatten)]
    pub(crate) image: I,
    /// The file (a final symbolic link is not followed).
    path: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn exec<I: clap::Args>(a: &Args<I>, fs: &Filesystem) -> CliResult {
    let ino = fs.lookup_nofollow(path_bytes(&a.path)).context(|| a.path.clone())?;
    let m = fs.stat(ino).context(|| a.path.clone())?;
    let xattrs = fs.xattrs_ino(ino).context(|| a.path.clone())?;
    let target = if m.is_symlink() { Some(fs.read_link_ino(ino).context(|| a.path.clone())?) } else { None };
    let t = |ts: ext4_fs::Timestamp| format_time(ts);
    if a.json {
        let v = serde_json::json!({
            "ino": m.ino, "type": format!("{:?}", m.file_type), "mode": format!("{:o}", m.mode()),
            "uid": m.uid, "gid": m.gid, "size": m.size, "nlink": m.nlink, "blocks": m.blocks,
            "atime": t(m.atime), "mtime": t(m.mtime), "ctime": t(m.ctime), "crtime": m.crtime.map(t),
            "flags": format!("{:#x}", m.flags.bits()), "attributes": chattr_letters(m.flags), "generation": m.generation,
            "version": m.version, "projid": m.projid, "rdev": [m.rdev.0, m.rdev.1],
            "target": target.as_ref().map(|x| String::from_utf8_lossy(x).into_owned()),
            "xattrs": xattrs.iter().map(|x| (String::from_utf8_lossy(&x.name).into_owned(), String::from_utf8_lossy(&x.value).into_owned())).collect::<std::collections::BTreeMap<_, _>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("serializable"));
        return Ok(());
    }
    println!("  File: {}", a.path);
    println!(" Inode: {}   Type: {:?}   Mode: {:04o} ({})", m.ino, m.file_type, m.permissions, mode_string(m.file_type, m.permissions));
    println!("  Size: {}   Blocks: {} (512 B)   Links: {}", m.size, m.blocks, m.nlink);
    println!("   Uid: {}   Gid: {}   Project: {}", m.uid, m.gid, m.projid);
    println!(" Flags: {:#x} ({})   Generation: {}   Version: {}", m.flags.bits(), chattr_letters(m.flags), m.generation, m.version);
    if let Some(tg) = &target {
        println!("Target: {}", String::from_utf8_lossy(tg));
    }
    if matches!(m.file_type, ext4_fs::FileType::CharDevice | ext4_fs::FileType::BlockDevice) {
        println!("Device: {}, {}", m.rdev.0, m.rdev.1);
    }
    println!("Access: {}", t(m.atime));
    println!("Modify: {}", t(m.mtime));
    println!("Change: {}", t(m.ctime));
    if let Some(c) = m.crtime {
        println!(" Birth: {}", t(c));
    }
    for x in &xattrs {
        println!(" Xattr: {} = {:?}", String::from_utf8_lossy(&x.name), String::from_utf8_lossy(&x.value));
    }
    Ok(())
}

/// The flags as `lsattr` letters, `-` when none is set.
fn chattr_letters(f: ext4_fs::InodeFlags) -> String {
    use ext4_fs::InodeFlags as F;
    let table = [
        (F::SECRM, 's'),
        (F::UNRM, 'u'),
        (F::SYNC, 'S'),
        (F::DIRSYNC, 'D'),
        (F::IMMUTABLE, 'i'),
        (F::APPEND, 'a'),
        (F::NODUMP, 'd'),
        (F::NOATIME, 'A'),
        (F::TOPDIR, 'T'),
        (F::EXTENTS, 'e'),
        (F::INLINE_DATA, 'N'),
        (F::PROJINHERIT, 'P'),
    ];
    let s: String = table.iter().filter(|(flag, _)| f.contains(*flag)).map(|(_, c)| *c).collect();
    if s.is_empty() { "-".into() } else { s }
}

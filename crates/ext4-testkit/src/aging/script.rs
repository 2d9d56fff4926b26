//! The same operations as `ext4` command lines: a script for `ext4 batch`
//! (the library's side through the CLI), and the outcome of each line read
//! back from what `ext4 batch --keep-going` reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::ops::{NodeKind, Op, RenameKind, xattr_value};
use crate::rng::stream_bytes;

/// One `ext4 batch` line for `op`, or `None` when the CLI has no such
/// command (`pwrite` at an offset, `fallocate`, punching, `O_EXCL`
/// creation, `RENAME_NOREPLACE`). File data goes through host files made
/// under `data_dir`.
pub fn line(op: &Op, data_dir: &Path, n: usize) -> std::io::Result<Option<String>> {
    let abs = |p: &str| format!("/{p}");
    Ok(Some(match op {
        Op::Mkdir { path, perm } => format!("mkdir -m {perm:o} {}", abs(path)),
        Op::Replace { path, len, seed } => {
            let file = data_file(data_dir, n, *len, *seed)?;
            format!("write --from {} {}", file.display(), abs(path))
        }
        Op::Truncate { path, size } => format!("truncate -s {size} {}", abs(path)),
        Op::Unlink { path } => format!("rm {}", abs(path)),
        Op::Rmdir { path } => format!("rmdir {}", abs(path)),
        Op::RemoveTree { path } => format!("rm -r {}", abs(path)),
        Op::MkdirAll { path, perm } => format!("mkdir -p -m {perm:o} {}", abs(path)),
        Op::Rename { from, to, kind: RenameKind::Replace } => format!("mv -T {} {}", abs(from), abs(to)),
        Op::Rename { from, to, kind: RenameKind::Exchange } => format!("mv --exchange {} {}", abs(from), abs(to)),
        Op::Link { from, to } => format!("ln {} {}", abs(from), abs(to)),
        Op::Symlink { target, path } => format!("ln -s '{target}' {}", abs(path)),
        Op::Mknod { path, kind: NodeKind::Fifo, perm, .. } => format!("mknod -m {perm:o} {} p", abs(path)),
        Op::Mknod { path, kind: NodeKind::Socket, perm, .. } => format!("mknod -m {perm:o} {} s", abs(path)),
        Op::Mknod { path, kind, perm, major, minor } => {
            let k = if *kind == NodeKind::Char { "c" } else { "b" };
            format!("mknod -m {perm:o} {} {k} {major} {minor}", abs(path))
        }
        Op::SetXattr { path, name, len, seed } => {
            // Hex, as setfattr's `0x` prefix: a value that starts with `0s` or `0x` is no text.
            let hex: String = xattr_value(*seed, *len).iter().map(|b| format!("{b:02x}")).collect();
            format!("xattr set {} {name} 0x{hex}", abs(path))
        }
        Op::RemoveXattr { path, name } => format!("xattr rm {} {name}", abs(path)),
        Op::Chmod { path, perm } => format!("chmod {perm:o} {}", abs(path)),
        Op::Chown { path, uid, gid } => format!("chown --no-dereference {uid}:{gid} {}", abs(path)),
        Op::SetTimes { path, atime, mtime } if atime == mtime => format!("touch -h -d @{} {}", decimal_time(*mtime), abs(path)),
        _ => return Ok(None),
    }))
}

/// `SECS.NANOS` as GNU touch reads it: -1.5 is one and a half seconds before the epoch.
fn decimal_time((secs, nsec): (i64, u32)) -> String {
    if nsec == 0 {
        return secs.to_string();
    }
    if secs < 0 {
        // (secs, nsec) is secs + nsec/1e9: -2 s + 0.5 s = -1.5 s.
        let (whole, frac) = (secs + 1, 1_000_000_000 - nsec);
        let sign = if whole == 0 { "-" } else { "" };
        format!("{sign}{whole}.{frac:09}")
    } else {
        format!("{secs}.{nsec:09}")
    }
}

fn data_file(dir: &Path, n: usize, len: u64, seed: u64) -> std::io::Result<PathBuf> {
    use std::io::Write;
    let p = dir.join(format!("data{n}"));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p)?);
    let mut done = 0;
    while done < len {
        let k = (len - done).min(1 << 20);
        f.write_all(&stream_bytes(seed, done, k as usize))?;
        done += k;
    }
    f.flush()?;
    Ok(p)
}

/// Runs `ext4 batch --keep-going` over `lines` on `image`; returns the errno
/// name of each line that failed, by line number (1-based).
pub fn run_batch(ext4: &Path, image: &Path, lines: &[String]) -> Result<BTreeMap<usize, String>, String> {
    let script = image.with_extension("batch");
    std::fs::write(&script, lines.join("\n") + "\n").map_err(|e| e.to_string())?;
    let journal = super::journal_of(image).map(|j| vec!["--journal".into(), j.into_os_string()]).unwrap_or_default();
    let out = Command::new(ext4)
        .args(["batch", "--keep-going", "-f"])
        .arg(&script)
        .args(journal)
        .arg(image)
        .output()
        .map_err(|e| format!("{}: {e}", ext4.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut failed = BTreeMap::new();
    for l in stderr.lines() {
        let Some(rest) = l.strip_prefix("ext4: line ") else { continue };
        let Some((n, _)) = rest.split_once(':') else { continue };
        let errno = l
            .rsplit_once('(')
            .and_then(|(_, e)| e.strip_suffix(')'))
            .filter(|e| e.starts_with('E') && e.bytes().all(|b| b.is_ascii_uppercase()));
        // A line without an errno did not parse: the script never ran.
        let errno = errno.ok_or_else(|| format!("ext4 batch refused the script: {stderr}"))?;
        if let Ok(n) = n.parse::<usize>() {
            failed.insert(n, errno.to_string());
        }
    }
    if !out.status.success() && failed.is_empty() {
        return Err(format!("ext4 batch failed without a failing line: {stderr}"));
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::decimal_time;

    #[test]
    fn decimal_times_read_as_gnu_touch_reads_them() {
        assert_eq!(decimal_time((-2, 500_000_000)), "-1.500000000");
        assert_eq!(decimal_time((-1, 250_000_000)), "-0.750000000");
        assert_eq!(decimal_time((3, 5)), "3.000000005");
        assert_eq!(decimal_time((-7, 0)), "-7");
    }
}

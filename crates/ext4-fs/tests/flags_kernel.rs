//! `chattr` semantics against the kernel: inode flags set by the library
//! are what `lsattr` shows on a kernel mount, and the same operations on
//! immutable and append-only files and directories give the library the
//! errno the kernel gives (as root, where only the flags can refuse). The
//! two images then hold equal trees and are e2fsck-clean.

mod common;

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Command;

use common::{assert_clean, open_ro, open_rw};
use ext4_fs::{Filesystem, InodeFlags, SetAttr, Timestamp, XattrMode};
use ext4_testkit::oracle::{LoopMount, can_loop_mount, have_e2fsprogs, have_tool};
use ext4_testkit::snapshot::Snapshot;

/// One operation, done through the kernel (on a mount point) and through the library.
struct Op {
    what: &'static str,
    kernel: fn(&Path) -> std::io::Result<()>,
    library: fn(&mut Filesystem) -> ext4_fs::Result<()>,
}

fn k_err(r: std::io::Result<()>) -> i32 {
    r.err().map_or(0, |e| e.raw_os_error().unwrap_or(-1))
}

fn ino(fs: &Filesystem, p: &str) -> u32 {
    fs.lookup(p).unwrap()
}

fn ops() -> Vec<Op> {
    let mut v = Vec::new();
    for f in ["imm", "app"] {
        // Each closure names its file through a match, as fn pointers cannot capture.
        macro_rules! op {
            ($what:expr, |$m:ident| $k:expr, |$fs:ident, $p:ident| $l:expr) => {
                v.push(if f == "imm" {
                    Op {
                        what: concat!("imm: ", $what),
                        kernel: |$m| {
                            let $m = $m.join("imm");
                            $k
                        },
                        library: |$fs| {
                            let $p = "/imm";
                            $l
                        },
                    }
                } else {
                    Op {
                        what: concat!("app: ", $what),
                        kernel: |$m| {
                            let $m = $m.join("app");
                            $k
                        },
                        library: |$fs| {
                            let $p = "/app";
                            $l
                        },
                    }
                })
            };
        }
        op!("chmod", |p| std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600)), |fs, p| fs
            .set_attr(ino(fs, p), SetAttr { perm: Some(0o600), ..SetAttr::default() }));
        op!("chown", |p| std::os::unix::fs::chown(&p, Some(1), None), |fs, p| fs
            .set_attr(ino(fs, p), SetAttr { uid: Some(1), ..SetAttr::default() }));
        op!(
            "utimes",
            |p| {
                let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
                std::fs::File::open(&p)?.set_times(std::fs::FileTimes::new().set_modified(t).set_accessed(t))
            },
            |fs, p| {
                let t = Timestamp { secs: 1_000_000, nsec: 0 };
                fs.set_attr(ino(fs, p), SetAttr { atime: Some(t), mtime: Some(t), ..SetAttr::default() })
            }
        );
        op!(
            "overwrite",
            |p| {
                use std::io::Write;
                std::fs::OpenOptions::new().write(true).open(&p)?.write_all(b"X")
            },
            |fs, p| fs.write_at(ino(fs, p), 0, b"X").map(|_| ())
        );
        op!(
            "append",
            |p| {
                use std::io::Write;
                std::fs::OpenOptions::new().append(true).open(&p)?.write_all(b"tail")
            },
            |fs, p| {
                let i = ino(fs, p);
                let size = fs.stat(i)?.size;
                fs.write_at(i, size, b"tail").map(|_| ())
            }
        );
        op!("truncate", |p| std::fs::OpenOptions::new().write(true).custom_flags(0).open(&p)?.set_len(1), |fs, p| fs
            .truncate(ino(fs, p), 1));
        op!("setxattr", |p| xattr_cmd(&p, &["-n", "user.k", "-v", "v"]), |fs, p| fs.set_xattr(ino(fs, p), b"user.k", b"v", XattrMode::Any));
        op!("link", |p| std::fs::hard_link(&p, p.with_extension("lnk")), |fs, p| fs.hard_link(p, format!("{p}.lnk")));
        op!("rename", |p| std::fs::rename(&p, p.with_extension("moved")), |fs, p| fs.rename(p, format!("{p}.moved")));
        op!("unlink", |p| std::fs::remove_file(&p), |fs, p| fs.remove_file(p));
    }
    // Directories: entries may be added to an append-only directory, never removed.
    v.push(Op {
        what: "imm dir: create",
        kernel: |m| std::fs::write(m.join("dimm/new"), b"n"),
        library: |fs| fs.create("/dimm/new", 0o644).map(|_| ()),
    });
    v.push(Op { what: "imm dir: unlink", kernel: |m| std::fs::remove_file(m.join("dimm/old")), library: |fs| fs.remove_file("/dimm/old") });
    v.push(Op {
        what: "app dir: create",
        kernel: |m| std::fs::write(m.join("dapp/new"), b""),
        library: |fs| fs.create("/dapp/new", 0o644).map(|_| ()),
    });
    v.push(Op { what: "app dir: unlink", kernel: |m| std::fs::remove_file(m.join("dapp/old")), library: |fs| fs.remove_file("/dapp/old") });
    v.push(Op {
        what: "app dir: rename out",
        kernel: |m| std::fs::rename(m.join("dapp/old"), m.join("old-out")),
        library: |fs| fs.rename("/dapp/old", "/old-out"),
    });
    v
}

/// `setfattr ARGS PATH`, its failure turned back into the errno it printed.
fn xattr_cmd(p: &Path, args: &[&str]) -> std::io::Result<()> {
    let out = Command::new("setfattr").args(args).arg(p).output()?;
    if out.status.success() {
        return Ok(());
    }
    let msg = String::from_utf8_lossy(&out.stderr);
    let errno = if msg.contains("Operation not permitted") { 1 } else { -1 };
    Err(std::io::Error::from_raw_os_error(errno))
}

/// `lsattr -d` flags of a path on a mount.
fn lsattr(p: &Path) -> String {
    let out = Command::new("lsattr").arg("-d").arg(p).output().unwrap();
    assert!(out.status.success(), "lsattr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

#[ext4_testkit::oracle_test(e2fsprogs, loop_mount, lsattr, setfattr)]
fn flags_refuse_what_the_kernel_refuses() {
    if !ext4_testkit::require(
        have_e2fsprogs() && can_loop_mount() && have_tool("lsattr") && have_tool("setfattr"),
        "needs root, loop devices, e2fsprogs and attr",
    ) {
        return;
    }
    let lib_img = common::format_ext4("flags-lib", 16 << 20, 4096, 256, "");
    {
        let mut fs = open_rw(&lib_img.path);
        for p in ["/imm", "/app", "/noa"] {
            fs.write_file(p, b"hello").unwrap();
        }
        fs.mkdir("/dimm", 0o755).unwrap();
        fs.mkdir("/dapp", 0o755).unwrap();
        fs.write_file("/dimm/old", b"o").unwrap();
        fs.write_file("/dapp/old", b"o").unwrap();
        for (p, f) in [
            ("/imm", InodeFlags::IMMUTABLE),
            ("/app", InodeFlags::APPEND),
            ("/noa", InodeFlags::NOATIME),
            ("/dimm", InodeFlags::IMMUTABLE),
            ("/dapp", InodeFlags::APPEND),
        ] {
            let i = ino(&fs, p);
            let keep = fs.stat(i).unwrap().flags;
            fs.set_flags(i, keep | f).unwrap();
        }
        fs.close().unwrap();
    }
    let kernel_img = common::Scratch::new("kernel.img");
    std::fs::copy(&lib_img.path, &kernel_img.path).unwrap();

    let mut mismatches = Vec::new();
    {
        let m = LoopMount::new(&kernel_img.path, "").unwrap();
        for (p, flag) in [("imm", 'i'), ("app", 'a'), ("noa", 'A'), ("dimm", 'i'), ("dapp", 'a')] {
            let shown = lsattr(&m.path().join(p));
            assert!(shown.contains(flag), "lsattr shows {shown} for {p}, library set {flag}");
        }
        let mut fs = open_rw(&lib_img.path);
        for op in ops() {
            let k = k_err((op.kernel)(m.path()));
            let l = (op.library)(&mut fs).err().map_or(0, |e| e.errno());
            if k != l {
                mismatches.push(format!("{}: kernel errno {k}, library errno {l}", op.what));
            }
        }
        fs.close().unwrap();
        m.unmount().unwrap();
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_clean(&lib_img.path);
    assert_clean(&kernel_img.path);
    // Modification times are each writer's clock; everything else must agree.
    let tree = |img: &Path| {
        let mut t = Snapshot::from_image(&open_ro(img), b"/").unwrap();
        t.nodes.values_mut().for_each(|n| n.mtime = (0, 0));
        t
    };
    let (lib, kernel) = (tree(&lib_img.path), tree(&kernel_img.path));
    let d = kernel.diff(&lib);
    assert!(d.is_empty(), "trees differ after the same operations: {:?}", &d[..d.len().min(5)]);
}

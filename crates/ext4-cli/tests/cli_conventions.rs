//! The command line as a script sees it (issue 20): every command with
//! `--json` parses as JSON and gives back names that are not UTF-8 byte
//! for byte; xattr values round-trip in every encoding; errors name what
//! failed once, with the errno and the documented exit status; a closed
//! pipe ends a command quietly; `mkfs` makes ext4 unless told otherwise,
//! as mke2fs when invoked by its names, and leaves nothing when refused.

mod common;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{EXT4, have_fsck, ok, run};
use serde_json::Value;

/// A name that is not UTF-8 (Latin-1 "café" and a stray 0xff).
const RAW: &[u8] = b"caf\xe9-\xff";

fn os(b: &[u8]) -> OsString {
    OsString::from_vec(b.to_vec())
}

/// `ext4 ARGS` must succeed and print one JSON document.
fn json(args: &[&dyn AsRef<OsStr>]) -> Value {
    let out = ok(args, None);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The exact bytes of a `{key}`/`{key}_base64` name in a JSON object.
fn name_of(v: &Value, key: &str) -> Vec<u8> {
    match v.get(format!("{key}_base64")) {
        Some(Value::String(b)) => base64(b),
        _ => v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}")).as_bytes().to_vec(),
    }
}

/// Standard base64, decoded independently of the code under test.
fn base64(s: &str) -> Vec<u8> {
    let out = Command::new("base64").arg("-d").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    out.stdin.as_ref().unwrap().write_all(s.as_bytes()).unwrap();
    out.wait_with_output().unwrap().stdout
}

/// A fresh image made by our mkfs with a directory and a file named [`RAW`].
fn image(dir: &Path) -> std::path::PathBuf {
    let img = dir.join("img");
    ok(&[&"mkfs", &"-q", &img, &"16M"], None);
    let mut script = b"mkdir /d\nwrite /d/".to_vec();
    script.extend_from_slice(RAW);
    script.extend_from_slice(b" 'contents'\nmkdir '/");
    script.extend_from_slice(RAW);
    script.extend_from_slice(b"'\nln -s /d /link\nwrite /d/f x\nxattr set /d/f user.bin 0x00ff0a\n");
    ok(&[&"batch", &img], Some(&script));
    img
}

#[test]
fn every_json_parses_and_keeps_names_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    let file = os(&[b"/d/", RAW].concat());

    let info = json(&[&"info", &"--json", &img]);
    assert!(info["blocks"].is_u64() && info["created"]["epoch"].is_i64() && info["created"]["rfc3339"].is_string(), "{info}");

    let listing = json(&[&"ls", &"--json", &img, &"/d"]);
    let names: Vec<Vec<u8>> = listing.as_array().unwrap().iter().map(|e| name_of(e, "name")).collect();
    assert_eq!(names, vec![RAW.to_vec(), b"f".to_vec()]);
    let recursive = json(&[&"ls", &"-R", &"--json", &img, &"/"]);
    assert!(recursive.as_array().unwrap().iter().any(|e| name_of(e, "path") == [b"/d/", RAW].concat()));

    let st = json(&[&"stat", &"--json", &img, &file]);
    assert_eq!(name_of(&st, "path"), [b"/d/", RAW].concat());
    assert_eq!(
        (st["size"].as_u64(), st["type"].as_str(), st["mode"].as_u64().map(|m| m & 0o170000)),
        (Some(8), Some("file"), Some(0o100000))
    );
    assert!(st["mtime"]["nsec"].is_u64() && st["mtime"]["rfc3339"].as_str().unwrap().ends_with('Z'));
    let link = json(&[&"stat", &"--json", &img, &"/link"]);
    assert_eq!(name_of(&link, "target"), b"/d");

    let xattrs = json(&[&"xattr", &"list", &"--json", &img, &"/d/f"]);
    assert_eq!(xattrs[0]["hex"], "00ff0a");
    assert_eq!(base64(xattrs[0]["base64"].as_str().unwrap()), b"\x00\xff\n");
    let one = json(&[&"xattr", &"get", &"--json", &img, &"/d/f", &"user.bin"]);
    assert_eq!(one["size"], 3);

    let ex = json(&[&"extents", &"--json", &img, &file]);
    assert_eq!(name_of(&ex[0], "path"), [b"/d/", RAW].concat());
    let block = ex[0]["extents"][0]["physical"].as_u64().unwrap();
    assert_eq!(ex[0]["extents"][0]["length"], 1);

    let owner = json(&[&"icheck", &"--json", &img, &block.to_string()]);
    assert_eq!(owner[0]["ino"], ex[0]["ino"]);
    let names = json(&[&"ncheck", &"--json", &img, &ex[0]["ino"].to_string()]);
    assert_eq!(name_of(&names[0], "path"), [b"/d/", RAW].concat());
    let attrs = json(&[&"lsattr", &"--json", &img, &"/d"]);
    assert!(attrs.as_array().unwrap().iter().any(|e| name_of(e, "path") == [b"/d/", RAW].concat()));

    // Text output to a pipe carries the name's bytes as they are.
    let plain = ok(&[&"ls", &img, &"/"], None).stdout;
    assert!(plain.split(|&c| c == b'\n').any(|l| l == RAW), "{plain:?}");
    let tree = ok(&[&"tree", &img, &"/d"], None).stdout;
    assert!(tree.windows(RAW.len()).any(|w| w == RAW));
    assert_eq!(ok(&[&"cat", &img, &file], None).stdout, b"contents");
}

#[test]
fn xattr_values_round_trip_in_every_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    // No NUL: an argument cannot hold one (the hex form below can).
    let value: &[u8] = b"\x01 \"quoted\" \\ \xff\xfe\n";
    let set = |given: &OsStr, encoding: &str| ok(&[&"xattr", &"set", &"-e", &encoding, &img, &"/d/f", &"user.v", &given], None);
    let get = || ok(&[&"xattr", &"get", &img, &"/d/f", &"user.v"], None).stdout;
    let get_as = |e: &str| String::from_utf8(ok(&[&"xattr", &"get", &"-e", &e, &img, &"/d/f", &"user.v"], None).stdout).unwrap();

    set(&os(value), "text");
    assert_eq!(get(), value, "a raw value comes back byte for byte, without a newline");
    for e in ["text", "hex", "base64"] {
        let shown = get_as(e);
        set(OsStr::new(shown.trim_end()), "auto");
        assert_eq!(get(), value, "{e}: {shown}");
    }
    assert!(get_as("hex").starts_with("0x0120"));
    set(OsStr::new("0x00ff00"), "auto");
    assert_eq!(get(), b"\x00\xff\x00");
    set(OsStr::new("0sAP8A"), "auto");
    assert_eq!(get(), b"\x00\xff\x00");
    set(OsStr::new("0x41"), "text");
    assert_eq!(get(), b"0x41", "-e text takes the value literally");
    let out = run(&[&"xattr", &"set", &img, &"/d/f", &"user.v", &"0xZZ"], None);
    assert_eq!(out.status.code(), Some(2), "a value that does not decode is a usage error");
}

#[test]
fn errors_exit_statuses_and_pipes() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    let status = |args: &[&dyn AsRef<OsStr>]| {
        let out = run(args, None);
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let zeros = dir.path().join("zeros");
    std::fs::write(&zeros, vec![0u8; 64 << 10]).unwrap();
    let (code, err) = status(&[&"ls", &zeros]);
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("not an ext2/3/4 filesystem") && err.matches("zeros").count() == 1, "{err}");
    let missing = dir.path().join("nope");
    let (code, err) = status(&[&"ls", &missing]);
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(err.matches("nope").count(), 1, "{err}");
    assert!(err.trim_end().ends_with("(ENOENT)"), "{err}");
    let (code, err) = status(&[&"cat", &img, &"/d/none"]);
    assert_eq!(code, Some(3), "{err}");
    let (code, err) = status(&[&"cat", &img, &os(b"/d/\xffnone")]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("/d/\\xffnone") && err.matches("none").count() == 1, "a non-UTF-8 path, escaped, once: {err}");
    assert_eq!(status(&[&"chmod", &img, &"999", &"/d/f"]).0, Some(2), "a bad mode is a usage error");
    assert_eq!(status(&[&"frobnicate"]).0, Some(2));
    let (code, err) = status(&[&"batch", &"-k", &img, &"--help"]);
    assert_eq!(code, Some(0), "{err}");
    let out = run(&[&"batch", &"-k", &img], Some(b"rm /no1\nmkdir /made\n"));
    assert_eq!(out.status.code(), Some(6), "a keep-going batch with failures is partial");
    ok(&[&"stat", &img, &"/made"], None);

    // Unreadable for an ordinary user: the errno is named.
    if common::is_root() {
        let shut = dir.path().join("shut");
        std::fs::copy(&img, &shut).unwrap();
        std::fs::set_permissions(&shut, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(EXT4)
            .arg("ls")
            .arg(&shut)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.trim_end().ends_with("(EACCES)"), "{err}");
    }

    // A reader that stops early ends the command quietly.
    let big = dir.path().join("big");
    std::fs::write(&big, vec![7u8; 4 << 20]).unwrap();
    ok(&[&"put", &img, &big, &"/big"], None);
    let sh = format!("{EXT4} cat {} /big | head -c1 >/dev/null; exit ${{PIPESTATUS[0]}}", img.display());
    let out = Command::new("bash").arg("-c").arg(&sh).output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
}

/// The features line of `dumpe2fs -h`.
fn features(img: &Path) -> String {
    let text = ext4_testkit::oracle::dumpe2fs(img, true);
    text.lines().find(|l| l.starts_with("Filesystem features:")).unwrap_or_default().to_string()
}

#[ext4_testkit::oracle_test(e2fsprogs)]
fn mkfs_makes_ext4_unless_told_and_mke2fs_by_its_names() {
    if !have_fsck() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = |n: &str| dir.path().join(n);
    ok(&[&"mkfs", &"-q", &img("plain"), &"16M"], None);
    ok(&[&"mkfs", &"-q", &"-t", &"ext2", &img("two"), &"16M"], None);
    ok(&[&"mkfs", &"-q", &"--mke2fs", &img("compat"), &"16M"], None);
    let has = |f: &str, n: &str| features(&img(n)).split_whitespace().any(|w| w == f);
    assert!(has("has_journal", "plain") && has("extent", "plain") && has("metadata_csum", "plain"), "{}", features(&img("plain")));
    assert!(!has("has_journal", "two") && !has("extent", "two"));
    assert!(!has("has_journal", "compat") && !has("extent", "compat"), "--mke2fs keeps mke2fs' ext2 default");
    for (link, journal, extent) in [("mke2fs", false, false), ("mkfs.ext3", true, false), ("mkfs.ext4", true, true)] {
        let exe = dir.path().join(link);
        std::os::unix::fs::symlink(EXT4, &exe).unwrap();
        let name = format!("{link}.img");
        let out = Command::new(&exe).args(["-q", "-F"]).arg(img(&name)).arg("16M").output().unwrap();
        assert!(out.status.success(), "{link}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!((has("has_journal", &name), has("extent", &name)), (journal, extent), "{link}: {}", features(&img(&name)));
        common::assert_clean(&img(&name), link);
    }
    // A refused mkfs leaves no new file behind, before or after it made one.
    for args in [vec!["-b", "999"], vec!["-N", "99999999"], vec!["-O", "no_such_feature"]] {
        let target = img("refused");
        let mut all: Vec<&dyn AsRef<OsStr>> = vec![&"mkfs", &"-q"];
        all.extend(args.iter().map(|a| a as &dyn AsRef<OsStr>));
        all.extend([&target as &dyn AsRef<OsStr>, &"16M"]);
        let out = run(&all, None);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(!target.exists(), "{args:?} left {}", target.display());
    }
    let out = run(&[&"mkfs", &"-q", &"-d", &dir.path().join("no-such-dir"), &img("failed-copy"), &"16M"], None);
    assert!(!out.status.success() && !img("failed-copy").exists(), "a failed -d copy leaves nothing");
}

#[test]
fn touch_reads_iso_8601() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    ok(&[&"touch", &"-d", &"2023-11-15T00:13:20.25+02:00", &img, &"/d/f"], None);
    let st = json(&[&"stat", &"--json", &img, &"/d/f"]);
    assert_eq!((st["mtime"]["epoch"].as_i64(), st["mtime"]["nsec"].as_u64()), (Some(1_700_000_000), Some(250_000_000)));
    assert_eq!(st["mtime"]["rfc3339"], "2023-11-14T22:13:20.250000000Z");
}

#[test]
fn completions_and_man_pages_come_from_the_definitions() {
    let bash = String::from_utf8(ok(&[&"completions", &"bash"], None).stdout).unwrap();
    assert!(bash.contains("chattr") && bash.contains("icheck") && bash.contains("--all-root"));
    let dir = tempfile::tempdir().unwrap();
    ok(&[&"completions", &"--man", &dir.path()], None);
    let page = std::fs::read_to_string(dir.path().join("ext4-chmod.1")).unwrap();
    assert!(page.contains(".TH") && page.contains("MODE"), "{page}");
}

#[test]
fn every_editing_command_takes_names_that_are_not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    let p = |s: &[u8]| os(&[b"/".as_slice(), s].concat());
    let (a, b, c) = (p(&[RAW, b"-dir"].concat()), p(&[RAW, b"-file"].concat()), p(&[RAW, b"-node"].concat()));
    ok(&[&"mkdir", &img, &a], None);
    ok(&[&"write", &img, &b, &os(b"data \xff")], None);
    ok(&[&"mknod", &img, &c, &"p"], None);
    ok(&[&"chmod", &img, &"600", &b], None);
    ok(&[&"chown", &img, &"7:8", &b], None);
    ok(&[&"truncate", &img, &"-s", &"3", &b], None);
    ok(&[&"touch", &img, &"-d", &"@1000", &b], None);
    ok(&[&"ln", &img, &b, &os(&[a.as_encoded_bytes(), b"/hard"].concat())], None);
    ok(&[&"ln", &img, &"-s", &os(RAW), &os(&[a.as_encoded_bytes(), b"/soft"].concat())], None);
    ok(&[&"mv", &img, &c, &a], None);
    ok(&[&"xattr", &"set", &img, &b, &os(b"user.\xff"), &"v"], None);
    ok(&[&"chattr", &img, &"+d", &b], None);
    let st = json(&[&"stat", &"--json", &img, &b]);
    assert_eq!(
        (st["uid"].as_u64(), st["permissions"].as_u64(), st["size"].as_u64(), st["mtime"]["epoch"].as_i64()),
        (Some(7), Some(0o600), Some(3), Some(1000))
    );
    assert_eq!(name_of(&st["xattrs"][0], "name"), b"user.\xff");
    assert!(st["attributes"].as_str().unwrap().contains('d'));
    assert_eq!(ok(&[&"cat", &img, &b], None).stdout, b"dat");
    let listing = json(&[&"ls", &"--json", &img, &a]);
    let mut names: Vec<Vec<u8>> = listing.as_array().unwrap().iter().map(|e| name_of(e, "name")).collect();
    names.sort();
    assert_eq!(names, vec![[RAW, b"-node"].concat(), b"hard".to_vec(), b"soft".to_vec()]);
    let soft = json(&[&"stat", &"--json", &img, &os(&[a.as_encoded_bytes(), b"/soft"].concat())]);
    assert_eq!(name_of(&soft, "target"), RAW);
    ok(&[&"rm", &img, &b, &os(&[a.as_encoded_bytes(), b"/hard"].concat())], None);
    ok(&[&"rm", &"-r", &img, &a], None);
    let left: Vec<Vec<u8>> = json(&[&"ls", &"--json", &img, &"/"]).as_array().unwrap().iter().map(|e| name_of(e, "name")).collect();
    assert!(!left.iter().any(|n| n.starts_with(RAW) && n != RAW), "{left:?}");
    if have_fsck() {
        common::assert_clean(&img, "after editing names that are not UTF-8");
    }
}

//! Repository rules, checked as an ordinary test: the dependency direction
//! of docs/ARCHITECTURE.md, where byte layouts may be decoded, crate docs,
//! `forbid(unsafe_code)`, no `#[path]` includes, and scratch paths from
//! `tempfile`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// For each internal crate, the internal crates it may depend on (normal dependencies).
const ALLOWED: &[(&str, &[&str])] = &[
    ("ext4-ondisk", &[]),
    ("ext4-blockdev", &[]),
    ("ext4-alloc", &["ext4-ondisk"]),
    ("ext4-extent", &["ext4-ondisk"]),
    ("ext4-htree", &["ext4-ondisk"]),
    ("ext4-jbd2", &["ext4-ondisk", "ext4-blockdev"]),
    ("ext4-mkfs", &["ext4-ondisk", "ext4-blockdev", "ext4-alloc", "ext4-extent", "ext4-htree", "ext4-jbd2"]),
    ("ext4-fs", &["ext4-ondisk", "ext4-blockdev", "ext4-alloc", "ext4-extent", "ext4-htree", "ext4-jbd2"]),
    // A sibling of ext4-fs: it reads what the facade refuses to open.
    ("ext4-fsck", &["ext4-ondisk", "ext4-blockdev", "ext4-htree", "ext4-jbd2"]),
    ("ext4-fuse", &["ext4-fs"]),
    ("ext4-cli", &["ext4-fs", "ext4-mkfs", "ext4-fuse", "ext4-fsck"]),
    // Test support sits on top; ext4-fs, ext4-mkfs and the layer crates
    // use it as a dev-dependency (a cycle Cargo allows: their integration
    // tests and benches link the same library the kit links; their unit
    // tests must not use the kit, whose types would come from a second copy).
    ("ext4-testkit", &["ext4-fs", "ext4-mkfs", "ext4-bounded-alloc", "ext4-testkit-macros"]),
    // The hostile-image tests' global allocator: the one `unsafe` of the
    // test support, kept out of the kit, which forbids it.
    ("ext4-bounded-alloc", &[]),
    // `#[oracle_test]`, re-exported by the kit.
    ("ext4-testkit-macros", &[]),
    ("xtask", &["ext4-fs", "ext4-mkfs", "ext4-testkit"]),
];

fn metadata() -> serde_json::Value {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(ext4_testkit::workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata failed");
    serde_json::from_slice(&out.stdout).expect("valid json")
}

#[test]
fn dependency_direction() {
    let md = metadata();
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED.iter().map(|(k, v)| (*k, v.iter().copied().collect())).collect();
    let members: BTreeSet<String> = md["packages"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect();
    let mut bad = Vec::new();
    for p in md["packages"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        let Some(ok) = allowed.get(name) else {
            bad.push(format!("{name}: not listed in the tidy table (add it with its allowed dependencies)"));
            continue;
        };
        for d in p["dependencies"].as_array().unwrap() {
            let dep = d["name"].as_str().unwrap();
            let normal = d["kind"].is_null();
            if normal && members.contains(dep) && !ok.contains(dep) {
                bad.push(format!("{name} depends on {dep}, which the architecture does not allow"));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn only_ondisk_decodes_little_endian_layouts() {
    let root = ext4_testkit::workspace_root();
    let mut bad = Vec::new();
    for krate in ["ext4-alloc", "ext4-extent", "ext4-htree", "ext4-jbd2", "ext4-mkfs", "ext4-fs", "ext4-fuse", "ext4-fsck"] {
        let mut files = Vec::new();
        rust_files(&root.join("crates").join(krate).join("src"), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (i, line) in text.lines().enumerate() {
                if (line.contains("from_le_bytes") || line.contains("to_le_bytes")) && !line.contains("tidy: allow") {
                    bad.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
                }
            }
        }
    }
    assert!(bad.is_empty(), "little-endian decoding outside ext4-ondisk (use its helpers):\n{}", bad.join("\n"));
}

#[test]
fn crates_have_docs_and_forbid_unsafe() {
    let root = ext4_testkit::workspace_root();
    let mut bad = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(root.join("crates")).unwrap().flatten().map(|e| e.path()).collect();
    entries.push(root.join("xtask"));
    for dir in entries {
        let main = ["src/lib.rs", "src/main.rs"].iter().map(|f| dir.join(f)).find(|p| p.exists());
        let Some(main) = main else { continue };
        let text = std::fs::read_to_string(&main).unwrap();
        if !text.trim_start().starts_with("//!") {
            bad.push(format!("{}: no crate doc", main.display()));
        }
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        // ext4-bounded-alloc implements `GlobalAlloc` (denied, allowed on that impl).
        let exempt = ["ext4-fuse", "xtask", "ext4-bounded-alloc"];
        if !exempt.contains(&name.as_str()) && !text.contains("#![forbid(unsafe_code)]") {
            bad.push(format!("{}: missing #![forbid(unsafe_code)]", main.display()));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn no_unfinished_markers() {
    let root = ext4_testkit::workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    rust_files(&root.join("xtask"), &mut files);
    let mut bad = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let markers = [concat!("todo", "!("), concat!("unimplemented", "!("), concat!("#[", "ignore")];
            if markers.iter().any(|m| code.contains(m)) {
                bad.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// No source includes another file with `#[path]`: code shared between
/// crates (and with `fuzz/`) lives in ext4-testkit, so each file is
/// compiled as one module of one crate.
#[test]
fn no_path_includes() {
    let root = ext4_testkit::workspace_root();
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "fuzz/fuzz_targets", "fuzz/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    let marker = concat!("#[", "path");
    let bad: Vec<String> = files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.lines()
                .enumerate()
                .filter(|(_, l)| l.trim_start().starts_with(marker))
                .map(|(i, l)| format!("{}:{}: {}", f.display(), i + 1, l.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(bad.is_empty(), "#[path] includes (move shared code into ext4-testkit):\n{}", bad.join("\n"));
}

/// Scratch files and directories come from `tempfile` (through
/// `ext4_testkit::scratch_dir`/`scratch_file` or directly): unique names,
/// removed on drop even when a test fails. No hand-made paths under the
/// temporary directory, /tmp or /dev/shm in tests, benches, the kit or xtask.
#[test]
fn scratch_paths_come_from_tempfile() {
    let root = ext4_testkit::workspace_root();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        for sub in ["tests", "benches"] {
            rust_files(&entry.path().join(sub), &mut files);
        }
    }
    rust_files(&root.join("crates/ext4-testkit/src"), &mut files);
    rust_files(&root.join("xtask/src"), &mut files);
    let markers = [concat!("temp_dir()", ".join("), concat!("\"/", "tmp/"), concat!("\"/dev/", "shm\").join(")];
    let mut bad = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            if markers.iter().any(|m| line.contains(m)) {
                bad.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "hand-made scratch paths (use ext4_testkit::scratch_dir or tempfile):\n{}", bad.join("\n"));
}

/// Every normal dependency of a workspace crate is used by its sources (a
/// dependency nothing names only costs build time and misleads readers).
#[test]
fn no_unused_dependencies() {
    let md = metadata();
    let mut bad = Vec::new();
    for p in md["packages"].as_array().unwrap() {
        let manifest = Path::new(p["manifest_path"].as_str().unwrap());
        let mut files = Vec::new();
        rust_files(&manifest.parent().unwrap().join("src"), &mut files);
        let text: String = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
        for d in p["dependencies"].as_array().unwrap() {
            if !d["kind"].is_null() {
                continue;
            }
            let name = d["rename"].as_str().unwrap_or(d["name"].as_str().unwrap()).replace('-', "_");
            if !text.contains(&format!("{name}::")) && !text.contains(&format!("{name} as ")) && !text.contains(&format!("use {name}")) {
                bad.push(format!("{}: depends on {name} but no source names it", p["name"].as_str().unwrap()));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// ext4-fs changes metadata only through a transaction handle: the
/// primitives that change blocks, descriptors, the superblock or inode
/// records are methods of `Txn` (so no `&mut Filesystem` can call them),
/// a `Txn` is made only by the transaction module (`Filesystem::op` and
/// the commit path), and only that module touches the block cache's dirty
/// set. The compiler then checks every caller: a function that changes the
/// disk takes `&mut Txn`.
#[test]
fn metadata_changes_only_through_a_txn() {
    let src = ext4_testkit::workspace_root().join("crates/ext4-fs/src");
    let txn_dir = src.join("txn");
    let primitives = ["modify_meta", "write_meta", "forget_meta", "write_data", "group_mut", "sb_mut", "change_features", "write_inode"];
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let in_txn_module = f.starts_with(&txn_dir);
        let mut current_impl = String::new();
        for (i, line) in text.lines().enumerate() {
            let at = || format!("{}:{}: {}", f.display(), i + 1, line.trim());
            if line.starts_with("impl") {
                current_impl = line.to_string();
            }
            for p in primitives {
                let defines = line.contains(&format!("fn {p}(")) || line.contains(&format!("fn {p}<"));
                if defines && !current_impl.starts_with("impl Txn<") {
                    bad.push(format!("{} (`{p}` outside `impl Txn`)", at()));
                }
                if defines && p != "write_inode" && !in_txn_module {
                    bad.push(format!("{} (`{p}` belongs in txn/)", at()));
                }
            }
            let builds_txn = line.contains("Txn {") && !line.trim_start().starts_with("impl") && !line.contains("struct Txn");
            let touches_dirty_set = line.contains(".insert_dirty(") || line.contains(".take_dirty(");
            if (builds_txn || touches_dirty_set) && !in_txn_module && !f.ends_with("cache.rs") {
                bad.push(format!("{} (only the transaction module makes a Txn or touches the dirty set)", at()));
            }
        }
    }
    assert!(bad.is_empty(), "metadata changed outside a Txn:\n{}", bad.join("\n"));
}

/// The library crates build for Windows (and any non-unix target) without
/// a unix-only dependency: those sit in `cfg(unix)` target tables only.
/// `cargo tree --target` resolves a foreign target's graph without its
/// toolchain, so this holds on a Linux-only machine.
#[test]
fn library_crates_have_no_unix_only_dependency_off_unix() {
    let unix_only = ["rustix", "xattr", "libc", "nix", "fuser", "linux-raw-sys"];
    let libs =
        ["ext4-ondisk", "ext4-blockdev", "ext4-alloc", "ext4-extent", "ext4-htree", "ext4-jbd2", "ext4-mkfs", "ext4-fs", "ext4-fsck"];
    let mut bad = Vec::new();
    for krate in libs {
        let out = Command::new(env!("CARGO"))
            .args(["tree", "-p", krate, "--target", "x86_64-pc-windows-msvc", "-e", "normal", "--prefix", "none"])
            .current_dir(ext4_testkit::workspace_root())
            .output()
            .expect("cargo tree runs");
        assert!(out.status.success(), "cargo tree -p {krate}: {}", String::from_utf8_lossy(&out.stderr));
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            if unix_only.contains(&name) {
                bad.push(format!("{krate} -> {line}"));
            }
        }
    }
    assert!(bad.is_empty(), "unix-only dependencies outside cfg(unix) target tables:\n{}", bad.join("\n"));
}

/// Whether line `i` of `lines` sits under a `cfg` that limits it to unix:
/// an attribute right above it, or above one of the items or blocks that
/// enclose it (found by indentation), names `unix`, `linux` or a unix OS.
fn under_unix_cfg(lines: &[&str], i: usize) -> bool {
    let unix_cfg = |l: &str| {
        let l = l.trim_start();
        l.starts_with("#[cfg(")
            && ["unix", "target_os = \"linux\"", "target_os = \"macos\""].iter().any(|k| l.contains(k))
            && !l.contains("not(")
    };
    let indent = |l: &str| l.len() - l.trim_start().len();
    let attrs_above = |j: usize| lines[..j].iter().rev().take_while(|l| l.trim_start().starts_with("#[")).any(|l| unix_cfg(l));
    if attrs_above(i) {
        return true;
    }
    let mut level = indent(lines[i]);
    for j in (0..i).rev() {
        let l = lines[j];
        if l.trim().is_empty() || l.trim_start().starts_with("//") || l.trim_start().starts_with("#[") {
            continue;
        }
        if indent(l) < level {
            level = indent(l);
            if attrs_above(j) {
                return true;
            }
        }
    }
    false
}

/// Unix-only APIs of std and rustix in the library crates are used only
/// under a unix `cfg` (on an item, a block, or the module's declaration),
/// so the libraries keep building for Windows and other targets. (This
/// machine has only the Linux target: the text is checked instead of a
/// foreign build. Unix-only crates such as `xattr` cannot be reached off
/// unix at all: `library_crates_have_no_unix_only_dependency_off_unix`.)
#[test]
fn unix_only_apis_only_under_cfg_unix() {
    let root = ext4_testkit::workspace_root();
    let libs =
        ["ext4-ondisk", "ext4-blockdev", "ext4-alloc", "ext4-extent", "ext4-htree", "ext4-jbd2", "ext4-mkfs", "ext4-fs", "ext4-fsck"];
    let apis = ["std::os::unix", "std::os::fd", "std::os::linux", "rustix::"];
    let mut bad = Vec::new();
    for krate in libs {
        let src = root.join("crates").join(krate).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        // Modules declared under a unix cfg: every file below them is unix-only.
        let mut gated = Vec::new();
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for (i, l) in lines.iter().enumerate() {
                let t = l.trim_start().trim_start_matches("pub ").trim_start_matches("pub(crate) ");
                if let Some(name) = t.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
                    if under_unix_cfg(&lines, i) {
                        let dir = f.parent().unwrap();
                        gated.push(dir.join(format!("{name}.rs")));
                        gated.push(dir.join(name));
                    }
                }
            }
        }
        for f in &files {
            if gated.iter().any(|g| f.starts_with(g)) {
                continue;
            }
            let text = std::fs::read_to_string(f).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for (i, l) in lines.iter().enumerate() {
                let code = l.split("//").next().unwrap_or("");
                if apis.iter().any(|a| code.contains(a)) && !under_unix_cfg(&lines, i) {
                    bad.push(format!("{}:{}: {}", f.display(), i + 1, l.trim()));
                }
            }
        }
    }
    assert!(bad.is_empty(), "unix-only APIs outside a unix cfg:\n{}", bad.join("\n"));
}

//! The name hashes agree with e2fsprogs' (`debugfs dx_hash`), for every
//! algorithm, signed and unsigned, with and without a seed, for short,
//! block-spanning and high-byte names.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

use ext4_htree::name_hash;
use ext4_ondisk::dx::HashVersion;

/// Hash versions by number: debugfs only knows the signed ones by name.
const ALGS: [(HashVersion, &str); 6] = [
    (HashVersion::Legacy, "0"),
    (HashVersion::HalfMd4, "1"),
    (HashVersion::Tea, "2"),
    (HashVersion::LegacyUnsigned, "3"),
    (HashVersion::HalfMd4Unsigned, "4"),
    (HashVersion::TeaUnsigned, "5"),
];

fn names() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = vec![b"a".to_vec(), b"hello".to_vec(), b"lost+found".to_vec()];
    for len in [3, 4, 5, 15, 16, 17, 31, 32, 33, 47, 64, 65, 100, 200, 255] {
        v.push((0..len).map(|i| b'a' + (i * 7 % 26) as u8).collect());
    }
    // High bytes: signed and unsigned variants differ on these.
    v.push("héllo-wörld".as_bytes().to_vec());
    v.push((0..40).map(|i| 0x80 + i as u8).collect());
    v.push((0..255).map(|i| 0x21 + (i * 13 % 0xd0) as u8).filter(|&b| b != b'"' && b != b'\\' && b != b'#').collect());
    v
}

fn seed_words(s: &str) -> [u32; 4] {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let bytes: Vec<u8> = (0..16).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect();
    // s_hash_seed is stored as four little-endian words holding the UUID bytes.
    std::array::from_fn(|i| u32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap()))
}

#[ext4_testkit::oracle_test(debugfs)]
fn hashes_match_debugfs() {
    if !ext4_testkit::require(Command::new("debugfs").arg("-V").output().is_ok(), "debugfs not installed") {
        return;
    }
    let seeds = [None, Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")];
    let dir_tmp = ext4_testkit::scratch_dir("htree-hash");
    let dir = dir_tmp.path().to_path_buf();
    let cmds = dir.join("cmds");
    let mut expected = Vec::new();
    let mut f = std::fs::File::create(&cmds).unwrap();
    for seed in seeds {
        for (alg, alg_name) in ALGS {
            for name in names() {
                let mut line = format!("dx_hash -h {alg_name} ").into_bytes();
                if let Some(s) = seed {
                    line.extend_from_slice(format!("-s {s} ").as_bytes());
                }
                line.extend_from_slice(&name);
                line.push(b'\n');
                f.write_all(&line).unwrap();
                let words = seed.map(seed_words).unwrap_or([0; 4]);
                expected.push((name.clone(), name_hash(alg, &words, &name).unwrap(), alg_name, seed));
            }
        }
    }
    drop(f);
    let out = Command::new("debugfs").arg("-f").arg(&cmds).arg("/dev/null").output().unwrap();
    let stdout = out.stdout;
    let lines: Vec<&[u8]> = stdout.split(|&b| b == b'\n').filter(|l| l.starts_with(b"Hash of ")).collect();
    assert_eq!(lines.len(), expected.len(), "debugfs answered {} of {} requests", lines.len(), expected.len());
    for (line, (name, ours, alg, seed)) in lines.iter().zip(&expected) {
        let text = String::from_utf8_lossy(line);
        let major = u32::from_str_radix(text.split(" is 0x").nth(1).unwrap().split(' ').next().unwrap(), 16).unwrap();
        let minor = u32::from_str_radix(text.split("(minor 0x").nth(1).unwrap().trim_end_matches(')'), 16).unwrap();
        assert_eq!((ours.major, ours.minor), (major, minor), "{alg} seed {seed:?} name {:?}", std::ffi::OsStr::from_bytes(name));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

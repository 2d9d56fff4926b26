//! Operation sequences over a small valid image, shared by the `ops` fuzz
//! target (`fuzz/fuzz_targets/ops.rs`) and `tests/ops_replay.rs`.
//!
//! An input is a configuration byte (which template image) and then
//! [`Op`]s decoded with `arbitrary` until the bytes run out (at most
//! [`MAX_OPS`]). Every operation works on a few fixed paths with small
//! bounded arguments and must end in `Ok` or an ordinary error (never a
//! panic, never a corruption or device error on this sound image); at the
//! end the image is closed, opened again read-only with checksums verified
//! and walked whole, and no walk call may report corruption.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{Arc, OnceLock, RwLock};

use arbitrary::{Arbitrary, Unstructured};
use ext4_fs::blockdev::{self, check_range};
use ext4_fs::{BlockDevice, Error, Filesystem, InodeFlags, MemoryDevice, OpenOptions, RenameMode, SetAttr, Timestamp, XattrMode};
use ext4_mkfs::{self as mkfs, FormatOptions, FsType, Profile};

/// Operations decoded from one input at most.
pub const MAX_OPS: usize = 64;

/// The paths operations name (index modulo the length).
pub const PATHS: [&str; 8] = ["/a", "/b", "/c", "/d", "/d/a", "/d/b", "/d/e", "/d/e/a"];

/// Extended-attribute names (index modulo the length).
pub const XATTR_NAMES: [&[u8]; 5] = [b"user.a", b"user.bb", b"trusted.t", b"security.s", b"user.longer-name-for-the-block"];

/// One operation; sizes and offsets are scaled in [`apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
#[allow(missing_docs)] // each variant's line says what its fields mean
pub enum Op {
    /// Create a regular file.
    Create { path: u8, perm: u16 },
    /// Write `len % 16384` bytes of `byte` at `offset * 61` (or at
    /// `(offset & 0x7fff) << 20` when the top bit is set).
    WriteAt { path: u8, offset: u16, len: u16, byte: u8 },
    /// Truncate to `size * 61` bytes.
    Truncate { path: u8, size: u16 },
    /// Make a directory.
    Mkdir { path: u8, perm: u16 },
    /// Remove a non-directory.
    Unlink { path: u8 },
    /// Remove an empty directory.
    Rmdir { path: u8 },
    /// Rename (mode 0: replace, 1: no-replace, 2: exchange).
    Rename { from: u8, to: u8, mode: u8 },
    /// Hard link.
    Link { from: u8, to: u8 },
    /// A symlink whose target is `target_len` bytes (fast or slow).
    Symlink { target_len: u8, path: u8 },
    /// Set an xattr of `len % 3000` bytes of `byte` (mode 0: any, 1: create, 2: replace).
    SetXattr { path: u8, name: u8, len: u16, byte: u8, mode: u8 },
    /// Remove an xattr.
    RemoveXattr { path: u8, name: u8 },
    /// Change permissions, owner, modification time, and the user flags
    /// (bit 0 immutable, 1 append-only, 2 noatime, 3 nodump).
    SetAttr { path: u8, perm: Option<u16>, uid: Option<u16>, mtime: Option<u32>, flags: Option<u8> },
    /// Allocate `len * 16` bytes at `offset * 61`.
    Fallocate { path: u8, offset: u16, len: u16, keep_size: bool },
    /// Punch `len * 16` bytes at `offset * 61`.
    PunchHole { path: u8, offset: u16, len: u16 },
    /// Commit.
    Sync,
    /// Close and open again read-write.
    Reopen,
}

/// Number of [`Op`] variants (for the encoder of hand-made inputs).
pub const OP_VARIANTS: u64 = 16;

/// The template an input's first byte selects: ext4 with 1 KiB blocks and
/// a journal, ext2 (indirect maps), or ext4 with 4 KiB blocks and inline data.
pub fn template(config: u8) -> &'static [u8] {
    static T: [OnceLock<Vec<u8>>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = usize::from(config % 3);
    T[i].get_or_init(|| build_template(i))
}

fn build_template(i: usize) -> Vec<u8> {
    let size: u64 = 4 << 20;
    let base = |t: FsType| FormatOptions::new(t).size_bytes(size).uuid([7; 16]).hash_seed([9; 16]).time(1_700_000_000);
    let opts = match i {
        0 => base(FsType::Ext4).profile(Profile::DEBIAN).block_size(1024),
        1 => base(FsType::Ext2).profile(Profile::DEBIAN).block_size(1024),
        _ => base(FsType::Ext4).profile(Profile::UPSTREAM).block_size(4096).inode_size(256).features("inline_data").expect("inline_data"),
    };
    let dev = MemoryDevice::new(size as usize);
    mkfs::format(&dev, &opts, &mut |_| ControlFlow::Continue(())).expect("format the ops template");
    dev.to_vec()
}

/// A copy-on-write device over a static image: written 4 KiB chunks are
/// kept apart, everything else is read from the base, so a run neither
/// allocates nor copies (nor page-faults in) the whole image.
pub struct Overlay {
    base: &'static [u8],
    chunks: RwLock<HashMap<usize, Box<[u8]>>>,
}

const CHUNK: usize = 4096;

impl Overlay {
    /// A device reading `base` until written.
    pub fn new(base: &'static [u8]) -> Self {
        Self { base, chunks: RwLock::new(HashMap::new()) }
    }

    /// The current contents, whole.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = self.base.to_vec();
        for (&c, b) in self.chunks.read().unwrap_or_else(|e| e.into_inner()).iter() {
            v[c * CHUNK..c * CHUNK + b.len()].copy_from_slice(b);
        }
        v
    }

    /// Bytes `[off, off + len)` split at chunk boundaries: (chunk, offset in it, offset in the buffer, length).
    fn pieces(off: usize, len: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
        let mut done = 0;
        std::iter::from_fn(move || {
            (done < len).then(|| {
                let at = off + done;
                let n = (CHUNK - at % CHUNK).min(len - done);
                let p = (at / CHUNK, at % CHUNK, done, n);
                done += n;
                p
            })
        })
    }
}

impl BlockDevice for Overlay {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> blockdev::Result<()> {
        check_range(blockdev::Op::Read, offset, buf.len(), self.len())?;
        let chunks = self.chunks.read().unwrap_or_else(|e| e.into_inner());
        for (c, at, pos, n) in Self::pieces(offset as usize, buf.len()) {
            let src = match chunks.get(&c) {
                Some(b) => &b[at..at + n],
                None => &self.base[c * CHUNK + at..c * CHUNK + at + n],
            };
            buf[pos..pos + n].copy_from_slice(src);
        }
        Ok(())
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> blockdev::Result<()> {
        check_range(blockdev::Op::Write, offset, buf.len(), self.len())?;
        let mut chunks = self.chunks.write().unwrap_or_else(|e| e.into_inner());
        for (c, at, pos, n) in Self::pieces(offset as usize, buf.len()) {
            let base = self.base;
            let b = chunks.entry(c).or_insert_with(|| base[c * CHUNK..((c + 1) * CHUNK).min(base.len())].into());
            b[at..at + n].copy_from_slice(&buf[pos..pos + n]);
        }
        Ok(())
    }

    fn flush(&self) -> blockdev::Result<()> {
        Ok(())
    }

    fn len(&self) -> u64 {
        self.base.len() as u64
    }
}

/// Decodes an input: the configuration byte and the operations.
pub fn decode(data: &[u8]) -> (u8, Vec<Op>) {
    let Some((&config, rest)) = data.split_first() else { return (0, Vec::new()) };
    let mut u = Unstructured::new(rest);
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < MAX_OPS {
        match Op::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    (config, ops)
}

/// Encodes operations so that [`decode`] returns them (hand-made inputs).
pub fn encode(config: u8, ops: &[Op]) -> Vec<u8> {
    let mut out = vec![config];
    for op in ops {
        let (tag, fields): (u64, Vec<u8>) = match *op {
            Op::Create { path, perm } => (0, [&[path][..], &perm.to_le_bytes()].concat()),
            Op::WriteAt { path, offset, len, byte } => (1, [&[path][..], &offset.to_le_bytes(), &len.to_le_bytes(), &[byte]].concat()),
            Op::Truncate { path, size } => (2, [&[path][..], &size.to_le_bytes()].concat()),
            Op::Mkdir { path, perm } => (3, [&[path][..], &perm.to_le_bytes()].concat()),
            Op::Unlink { path } => (4, vec![path]),
            Op::Rmdir { path } => (5, vec![path]),
            Op::Rename { from, to, mode } => (6, vec![from, to, mode]),
            Op::Link { from, to } => (7, vec![from, to]),
            Op::Symlink { target_len, path } => (8, vec![target_len, path]),
            Op::SetXattr { path, name, len, byte, mode } => (9, [&[path, name][..], &len.to_le_bytes(), &[byte, mode]].concat()),
            Op::RemoveXattr { path, name } => (10, vec![path, name]),
            Op::SetAttr { path, perm, uid, mtime, flags } => {
                let mut f = vec![path];
                opt(&mut f, perm.map(|v| v.to_le_bytes().to_vec()));
                opt(&mut f, uid.map(|v| v.to_le_bytes().to_vec()));
                opt(&mut f, mtime.map(|v| v.to_le_bytes().to_vec()));
                opt(&mut f, flags.map(|v| vec![v]));
                (11, f)
            }
            Op::Fallocate { path, offset, len, keep_size } => {
                (12, [&[path][..], &offset.to_le_bytes(), &len.to_le_bytes(), &[u8::from(keep_size)]].concat())
            }
            Op::PunchHole { path, offset, len } => (13, [&[path][..], &offset.to_le_bytes(), &len.to_le_bytes()].concat()),
            Op::Sync => (14, Vec::new()),
            Op::Reopen => (15, Vec::new()),
        };
        // `arbitrary`'s derived enums pick variant (u32 * variants) >> 32.
        let t = ((tag << 32).div_ceil(OP_VARIANTS)) as u32;
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&fields);
    }
    out
}

fn opt(out: &mut Vec<u8>, v: Option<Vec<u8>>) {
    match v {
        Some(b) => {
            out.push(1);
            out.extend_from_slice(&b);
        }
        None => out.push(0),
    }
}

/// What a run did.
#[derive(Debug, Default, Clone, Copy)]
pub struct RunStats {
    /// Operations that returned `Ok`.
    pub ok: u32,
    /// Operations that returned an ordinary error.
    pub errors: u32,
}

fn path(i: u8) -> &'static str {
    PATHS[usize::from(i) % PATHS.len()]
}

fn note<T>(st: &mut RunStats, what: &Op, r: ext4_fs::Result<T>) {
    match r {
        Ok(_) => st.ok += 1,
        Err(e @ (Error::Corrupt(_) | Error::Device(_))) => panic!("{what:?} on a sound image: {e}"),
        Err(_) => st.errors += 1,
    }
}

fn ino_of(fs: &Filesystem, i: u8) -> Option<u32> {
    fs.lookup_nofollow(path(i)).ok()
}

/// Applies one operation.
pub fn apply(fs: &mut Filesystem, op: &Op, st: &mut RunStats) {
    let far = |o: u16| if o & 0x8000 != 0 { u64::from(o & 0x7fff) << 20 } else { u64::from(o) * 61 };
    match *op {
        Op::Create { path: p, perm } => note(st, op, fs.create(path(p), perm & 0o7777)),
        Op::WriteAt { path: p, offset, len, byte } => {
            if let Some(ino) = ino_of(fs, p) {
                let data = vec![byte; usize::from(len % 16384)];
                note(st, op, fs.write_at(ino, far(offset), &data));
            }
        }
        Op::Truncate { path: p, size } => {
            if let Some(ino) = ino_of(fs, p) {
                note(st, op, fs.truncate(ino, u64::from(size) * 61));
            }
        }
        Op::Mkdir { path: p, perm } => note(st, op, fs.mkdir(path(p), perm & 0o7777)),
        Op::Unlink { path: p } => note(st, op, fs.remove_file(path(p))),
        Op::Rmdir { path: p } => note(st, op, fs.remove_dir(path(p))),
        Op::Rename { from, to, mode } => {
            let mode = match mode % 3 {
                0 => RenameMode::Replace,
                1 => RenameMode::NoReplace,
                _ => RenameMode::Exchange,
            };
            note(st, op, fs.rename_with(path(from), path(to), mode));
        }
        Op::Link { from, to } => note(st, op, fs.hard_link(path(from), path(to))),
        Op::Symlink { target_len, path: p } => {
            let target: Vec<u8> = (0..usize::from(target_len).max(1)).map(|i| b"d/e/"[i % 4]).collect();
            note(st, op, fs.symlink(target, path(p)));
        }
        Op::SetXattr { path: p, name, len, byte, mode } => {
            if let Some(ino) = ino_of(fs, p) {
                let mode = match mode % 3 {
                    0 => XattrMode::Any,
                    1 => XattrMode::Create,
                    _ => XattrMode::Replace,
                };
                let name = XATTR_NAMES[usize::from(name) % XATTR_NAMES.len()];
                note(st, op, fs.set_xattr(ino, name, &vec![byte; usize::from(len % 3000)], mode));
            }
        }
        Op::RemoveXattr { path: p, name } => {
            if let Some(ino) = ino_of(fs, p) {
                note(st, op, fs.remove_xattr(ino, XATTR_NAMES[usize::from(name) % XATTR_NAMES.len()]));
            }
        }
        Op::SetAttr { path: p, perm, uid, mtime, flags } => {
            if let Some(ino) = ino_of(fs, p) {
                let a = SetAttr {
                    perm: perm.map(|m| m & 0o7777),
                    uid: uid.map(u32::from),
                    mtime: mtime.map(|s| Timestamp { secs: i64::from(s), nsec: 0 }),
                    ..SetAttr::default()
                };
                note(st, op, fs.set_attr(ino, a));
                if let Some(f) = flags {
                    let mut fl = InodeFlags::empty();
                    for (bit, flag) in
                        [InodeFlags::IMMUTABLE, InodeFlags::APPEND, InodeFlags::NOATIME, InodeFlags::NODUMP].into_iter().enumerate()
                    {
                        if f & (1 << bit) != 0 {
                            fl |= flag;
                        }
                    }
                    note(st, op, fs.set_flags(ino, fl));
                }
            }
        }
        Op::Fallocate { path: p, offset, len, keep_size } => {
            if let Some(ino) = ino_of(fs, p) {
                note(st, op, fs.fallocate(ino, u64::from(offset) * 61, u64::from(len) * 16, keep_size));
            }
        }
        Op::PunchHole { path: p, offset, len } => {
            if let Some(ino) = ino_of(fs, p) {
                note(st, op, fs.punch_hole(ino, u64::from(offset) * 61, u64::from(len) * 16));
            }
        }
        Op::Sync => note(st, op, fs.sync()),
        Op::Reopen => {}
    }
}

/// Runs an input over a copy-on-write view of its template; returns the
/// final image. Panics if an operation reports corruption, if the close
/// fails, or if the read-only walk of the result reports corruption.
pub fn run(data: &[u8]) -> (Arc<Overlay>, RunStats) {
    let (config, ops) = decode(data);
    let dev = Arc::new(Overlay::new(template(config)));
    let open = |dev: &Arc<Overlay>| Filesystem::open(dev.clone(), OpenOptions { cache_blocks: 256, ..OpenOptions::read_write() });
    let mut fs = open(&dev).expect("open the ops template");
    fs.set_fixed_time(Some(Timestamp { secs: 1_700_000_100, nsec: 0 }));
    let mut st = RunStats::default();
    for op in &ops {
        if *op == Op::Reopen {
            fs.close().expect("close before reopen");
            fs = open(&dev).expect("reopen");
            fs.set_fixed_time(Some(Timestamp { secs: 1_700_000_100, nsec: 0 }));
        } else {
            apply(&mut fs, op, &mut st);
        }
    }
    fs.close().expect("close");
    let ro =
        Filesystem::open(dev.clone(), OpenOptions { cache_blocks: 256, ..OpenOptions::read_only() }).expect("open the result read-only");
    let walk = crate::hostile::walk(&ro, crate::hostile::Limits::default());
    assert_eq!(walk.corrupt, 0, "walk of the result after {ops:?}: {:?}", walk.first_corrupt);
    drop(ro);
    (dev, st)
}

//! `ext4 extents [--json] IMAGE PATH...`: a file's block map as debugfs
//! `ex` shows it: every extent (level, logical, physical, length, flags)
//! and every index node of its tree; for an ext2/ext3 block map, its runs
//! and its indirect blocks. Map blocks are read from the device, so a
//! journal that needs recovery should be replayed first (a warning says so).

use std::ffi::OsString;
use std::ops::ControlFlow;

use ext4_fs::extent::{MapCtx, MapError, MapIo, MapKind};
use ext4_fs::ondisk::extent::ExtentNode;
use ext4_fs::{Filesystem, InodeBuf, InodeFlags};
use serde_json::json;

use crate::out::{Out, escape, json_name};
use crate::util::{CliError, CliResult, Context, path_bytes, shown};

/// Arguments of `ext4 extents`.
#[derive(clap::Args)]
pub struct Args<I: clap::Args> {
    /// Print JSON: per file `path`, `ino`, `map`, `depth`, `extents` and `nodes`.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pub(crate) image: I,
    /// Files (a final symbolic link is not followed).
    #[arg(required = true)]
    paths: Vec<OsString>,
}

/// How an inode maps its blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An extent tree.
    Extents,
    /// An ext2/ext3 indirect block map.
    Indirect,
    /// No blocks of its own: inline data, a fast symbolic link, a device.
    None,
}

/// One leaf extent (or, for indirect maps, one run of contiguous blocks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    /// Tree level of the leaf holding it (the tree's depth; 0 in the inode).
    pub level: u16,
    /// First logical block.
    pub logical: u32,
    /// First physical block.
    pub physical: u64,
    /// Blocks.
    pub len: u32,
    /// Allocated but not written.
    pub unwritten: bool,
}

/// One map block: an extent tree node below the inode, or an indirect block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// Level of the index entry that points at it (0: in the inode).
    pub level: u16,
    /// First logical block it covers (extent trees; 0 for indirect blocks).
    pub logical: u32,
    /// Its block.
    pub block: u64,
}

/// A file's whole block map.
#[derive(Debug, Default)]
pub struct FileMap {
    /// Depth of the extent tree (0: everything in the inode).
    pub depth: u16,
    /// Extents or runs, in logical order.
    pub leaves: Vec<Leaf>,
    /// Map blocks, parents before children.
    pub nodes: Vec<Node>,
}

/// Which map an inode has.
pub fn kind(ib: &InodeBuf) -> Kind {
    let ft = ib.file_type();
    let fast_symlink = ft == ext4_fs::FileType::Symlink && ib.inode.size < 60 && !ib.inode.flags.contains(InodeFlags::EXTENTS);
    if ib.inode.has_inline_data()
        || fast_symlink
        || matches!(
            ft,
            ext4_fs::FileType::CharDevice | ext4_fs::FileType::BlockDevice | ext4_fs::FileType::Fifo | ext4_fs::FileType::Socket
        )
    {
        Kind::None
    } else if ib.inode.flags.contains(InodeFlags::EXTENTS) {
        Kind::Extents
    } else {
        Kind::Indirect
    }
}

/// Reads the block map of `ib`.
pub fn read_map(fs: &Filesystem, ib: &InodeBuf) -> CliResult<FileMap> {
    match kind(ib) {
        Kind::None => Ok(FileMap::default()),
        Kind::Extents => extent_map(fs, ib),
        Kind::Indirect => indirect_map(fs, ib),
    }
}

/// Walks an extent tree depth first, recording index nodes and leaves.
fn extent_map(fs: &Filesystem, ib: &InodeBuf) -> CliResult<FileMap> {
    let root = ExtentNode::parse(&ib.inode.block).map_err(|e| corrupt(ib.ino, e.to_string()))?;
    let mut map = FileMap { depth: root.header.depth, ..FileMap::default() };
    let bs = fs.geometry().block_size as usize;
    // (node block or None for the root, its level)
    let mut todo: Vec<(Option<u64>, u16)> = vec![(None, 0)];
    let mut buf = vec![0u8; bs];
    while let Some((block, level)) = todo.pop() {
        let node = match block {
            None => root,
            Some(b) => {
                read_block(fs, b, &mut buf).context(|| format!("inode {}: reading extent block {b}", ib.ino))?;
                ExtentNode::parse(&buf).map_err(|e| corrupt(ib.ino, format!("extent block {b}: {e}")))?
            }
        };
        if usize::from(level) > 5 || node.header.depth != map.depth.saturating_sub(level) {
            return Err(corrupt(ib.ino, format!("extent node at level {level} has depth {}", node.header.depth)));
        }
        if node.is_leaf() {
            map.leaves.extend(node.extents().map(|e| Leaf {
                level,
                logical: e.logical,
                physical: e.start,
                len: e.len,
                unwritten: e.unwritten,
            }));
            continue;
        }
        let children: Vec<_> = node.indexes().collect();
        for ix in children.iter().rev() {
            todo.push((Some(ix.leaf), level + 1));
        }
        map.nodes.extend(children.iter().map(|ix| Node { level, logical: ix.logical, block: ix.leaf }));
    }
    map.nodes.sort_by_key(|n| (n.level, n.logical));
    Ok(map)
}

/// Runs and indirect blocks of an ext2/ext3 block map, through `ext4-extent`.
fn indirect_map(fs: &Filesystem, ib: &InodeBuf) -> CliResult<FileMap> {
    let geo = fs.geometry();
    let ctx =
        MapCtx { block_size: geo.block_size, first_data_block: geo.first_data_block, blocks_count: geo.blocks_count, csum_seed: None };
    let mut map = FileMap::default();
    let mut io = DeviceMap { fs };
    let what = || format!("inode {}: reading its block map", ib.ino);
    ext4_fs::extent::for_each_run(MapKind::Indirect, &ib.inode.block, &ctx, &mut io, |r| {
        map.leaves.push(Leaf { level: 0, logical: r.logical, physical: r.physical, len: r.len, unwritten: r.unwritten });
        ControlFlow::Continue(())
    })
    .map_err(map_error)
    .context(what)?;
    ext4_fs::extent::for_each_map_block(MapKind::Indirect, &ib.inode.block, &ctx, &mut io, |b| {
        map.nodes.push(Node { level: 0, logical: 0, block: b });
        ControlFlow::Continue(())
    })
    .map_err(map_error)
    .context(what)?;
    Ok(map)
}

/// Reads device block `block` into `buf`.
fn read_block(fs: &Filesystem, block: u64, buf: &mut [u8]) -> Result<(), ext4_fs::blockdev::DeviceError> {
    fs.device().read_at(block * u64::from(fs.geometry().block_size), buf)
}

/// Map blocks straight from the device, read only.
struct DeviceMap<'a> {
    fs: &'a Filesystem,
}

/// A map walk's error, as an I/O error for [`Context`].
fn map_error(e: MapWalkError) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.0)
}

/// What stopped a map walk.
#[derive(Debug)]
struct MapWalkError(String);

impl From<MapError> for MapWalkError {
    fn from(e: MapError) -> Self {
        Self(e.to_string())
    }
}

impl MapIo for DeviceMap<'_> {
    type Error = MapWalkError;

    fn read_block(&mut self, block: u64, buf: &mut [u8]) -> Result<(), MapWalkError> {
        read_block(self.fs, block, buf).map_err(|e| MapWalkError(e.to_string()))
    }

    fn write_block(&mut self, _block: u64, _data: &[u8]) -> Result<(), MapWalkError> {
        Err(MapWalkError("read only".into()))
    }

    fn alloc_block(&mut self, _goal: u64) -> Result<u64, MapWalkError> {
        Err(MapWalkError("read only".into()))
    }

    fn free_blocks(&mut self, _start: u64, _count: u64, _meta: bool) -> Result<(), MapWalkError> {
        Err(MapWalkError("read only".into()))
    }
}

/// A corrupt map of inode `ino`.
fn corrupt(ino: u32, why: String) -> CliError {
    CliError::new(format!("inode {ino}"), format!("corrupt block map: {why}"), Some(117))
}

/// Warns once when the device may not hold the newest map blocks yet.
pub fn warn_if_needs_recovery(fs: &Filesystem) {
    if fs.geometry().features.incompat.contains(ext4_fs::ondisk::features::Incompat::RECOVER) {
        eprintln!("ext4: warning: the journal needs recovery; map blocks are read from the device (run `ext4 journal replay` first)");
    }
}

/// Runs the command.
pub fn exec<I: clap::Args>(a: &Args<I>, fs: &Filesystem) -> CliResult {
    warn_if_needs_recovery(fs);
    let mut out = Out::new();
    let mut all = Vec::new();
    for p in &a.paths {
        let ino = fs.lookup_nofollow(path_bytes(p)).context(|| shown(p))?;
        let ib = fs.read_inode(ino).context(|| shown(p))?;
        let map = read_map(fs, &ib).map_err(|e| CliError { context: format!("{}: {}", shown(p), e.context), ..e })?;
        if a.json {
            all.push(file_json(p, ino, kind(&ib), &map));
        } else {
            print(&mut out, p, ino, kind(&ib), &map, a.paths.len() > 1)?;
        }
    }
    if a.json {
        out.json(&serde_json::Value::Array(all))?;
    }
    out.finish()
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Extents => "extents",
        Kind::Indirect => "indirect",
        Kind::None => "none",
    }
}

fn file_json(p: &OsString, ino: u32, k: Kind, map: &FileMap) -> serde_json::Value {
    use std::os::unix::ffi::OsStrExt;
    let mut obj = serde_json::Map::new();
    json_name(&mut obj, "path", p.as_bytes());
    obj.insert("ino".into(), json!(ino));
    obj.insert("map".into(), json!(kind_name(k)));
    obj.insert("depth".into(), json!(map.depth));
    let leaves = map
        .leaves
        .iter()
        .map(|l| json!({"level": l.level, "logical": l.logical, "physical": l.physical, "length": l.len, "unwritten": l.unwritten}));
    obj.insert("extents".into(), json!(leaves.collect::<Vec<_>>()));
    let nodes = map.nodes.iter().map(|n| json!({"level": n.level, "logical": n.logical, "block": n.block}));
    obj.insert("nodes".into(), json!(nodes.collect::<Vec<_>>()));
    serde_json::Value::Object(obj)
}

fn print(out: &mut Out, p: &OsString, ino: u32, k: Kind, map: &FileMap, heading: bool) -> CliResult {
    use std::os::unix::ffi::OsStrExt;
    if heading {
        out.line(&format!("{} (inode {ino}):", escape(p.as_bytes())))?;
    }
    if k == Kind::None {
        return out.line("no blocks of its own (inline data, a fast symbolic link or a device)");
    }
    out.line(&format!("{:>5} {:>10} {:>12} {:>8}  {}", "Level", "Logical", "Physical", "Length", "Flags"))?;
    for n in &map.nodes {
        let what = if k == Kind::Extents { "index" } else { "indirect block" };
        let logical = if k == Kind::Extents { n.logical.to_string() } else { "-".into() };
        out.line(&format!("{:>5} {logical:>10} {:>12} {:>8}  {what}", n.level, n.block, 1))?;
    }
    for l in &map.leaves {
        let flags = if l.unwritten { "unwritten" } else { "" };
        out.line(&format!("{:>5} {:>10} {:>12} {:>8}  {flags}", l.level, l.logical, l.physical, l.len))?;
    }
    Ok(())
}

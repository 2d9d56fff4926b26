//! Htree directories in pass 2: which blocks are the root and interior
//! nodes, their (hash, block) arrays, the hashes of the names in each
//! leaf, and at the end the index checked against what the leaves hold.

use ext4_htree::hash::name_hash;
use ext4_ondisk::dx::HashVersion;
use ext4_ondisk::superblock::FLAGS_UNSIGNED_HASH;

use super::{Block, State};
use crate::ctx::{Ctx, DxBlock, DxKind, Flow};
use crate::problem::{At, Code};

/// The block number bits of a dx entry (`EXT4_DX_BLOCK_MASK`).
const DX_BLOCK_MASK: u32 = 0x0fff_ffff;
/// SipHash (names carry their hash).
const HASH_SIPHASH: u8 = 6;

/// The kind of block `b` is in its htree directory, setting up its
/// bookkeeping; `None` when the directory is not indexed (`check_dir_block`).
pub(super) fn classify(ctx: &mut Ctx<'_, '_>, b: &Block) -> Flow<Option<DxKind>> {
    let ino = b.ino;
    let numblocks = match ctx.dx_dirs.get(&ino) {
        Some(dx) if dx.numblocks != 0 => dx.numblocks,
        _ => return Ok(None),
    };
    if b.blockcnt >= numblocks {
        let d = format!("htree directory {ino} has block {} beyond its index", b.blockcnt);
        return Err(ctx.fatal(Code::UnexpectedHtreeBlock, At::ino(ino), d));
    }
    let fs = &ctx.fs;
    let bs = fs.bs();
    let csum = if fs.csum() { 8 } else { 0 };
    let largedir = fs.incompat(ext4_ondisk::features::Incompat::LARGEDIR);
    let unsigned = fs.sb.s_flags.get() & FLAGS_UNSIGNED_HASH != 0;
    let buf = &b.buf;
    let rec_len = ext4_ondisk::dir::rec_len_from_disk(ext4_ondisk::get_u16(buf, 4), bs);
    let mut bad_root = false;
    let dx = ctx.dx_dirs.get_mut(&ino).expect("checked");
    let db = &mut dx.blocks[b.blockcnt as usize];
    db.kind = DxKind::Leaf;
    db.min_hash = u32::MAX;
    db.max_hash = 0;
    if b.blockcnt == 0 {
        db.kind = DxKind::Root;
        db.first = true;
        db.last = true;
        let (reserved, hv, info_len, levels) = (ext4_ondisk::get_u32(buf, 24), buf[28], buf[29], buf[30]);
        let max_levels = if largedir { 3 } else { 2 };
        bad_root = reserved != 0 || info_len < 8 || levels >= max_levels;
        dx.hashversion = if hv <= 2 && unsigned { hv + 3 } else { hv };
        dx.depth = u32::from(levels) + 1;
    } else if ext4_ondisk::get_u32(buf, 0) == 0
        && rec_len == bs
        && buf[6] == 0
        && u32::from(ext4_ondisk::get_u16(buf, 8)) == (bs - (8 + csum)) / 8
    {
        db.kind = DxKind::Node;
    }
    let kind = db.kind;
    if bad_root {
        ctx.ask(Code::HtreeBadRoot, At::ino(ino), format!("htree directory {ino} has an invalid root node"));
    }
    Ok(Some(kind))
}

/// The hash of an entry for the index bookkeeping, or `None` when it
/// cannot be computed (the previous entry's hash stays, as in e2fsck).
pub(super) fn entry_hash(ctx: &Ctx<'_, '_>, ino: u32, dot_state: u32, name: &[u8], buf_hash: Option<u32>) -> Option<u32> {
    let dx = ctx.dx_dirs.get(&ino)?;
    if dx.numblocks == 0 || dx.casefolded {
        return None;
    }
    if dx.hashversion == HASH_SIPHASH {
        return if dot_state > 1 { buf_hash } else { None };
    }
    let v = HashVersion::from_u8(dx.hashversion)?;
    if v == HashVersion::SipHash {
        return None;
    }
    let seed = ctx.fs.sb.hash_seed();
    name_hash(v, &seed, name).map(|h| h.major)
}

/// Whether the directory's index can be checked against hashes.
pub(super) fn tracks(ctx: &Ctx<'_, '_>, ino: u32) -> bool {
    ctx.dx_dirs.get(&ino).is_some_and(|d| d.numblocks != 0 && !d.casefolded)
}

/// Notes a name hash found in block `blockcnt`.
pub(super) fn note_hash(ctx: &mut Ctx<'_, '_>, ino: u32, blockcnt: u32, hash: u32) {
    if let Some(db) = ctx.dx_dirs.get_mut(&ino).and_then(|d| d.blocks.get_mut(blockcnt as usize)) {
        db.min_hash = db.min_hash.min(hash);
        db.max_hash = db.max_hash.max(hash);
    }
}

/// `parse_int_node`: a root or interior node's (hash, block) array.
pub(super) fn parse_int_node(ctx: &mut Ctx<'_, '_>, b: &Block, failed_csum: bool) -> Flow {
    let ino = b.ino;
    let at = At::ino_block(ino, b.blk);
    let Some(numblocks) = ctx.dx_dirs.get(&ino).map(|d| d.numblocks).filter(|&n| n != 0) else { return Ok(()) };
    let buf = &b.buf;
    let ent = if b.blockcnt == 0 { 24 + usize::from(buf[29]) } else { 8 };
    if failed_csum {
        let code = if b.blockcnt == 0 { Code::HtreeRootCsumInvalid } else { Code::HtreeNodeCsumInvalid };
        ctx.ask(code, at, format!("htree directory {ino} block {}: checksum does not match", b.blockcnt));
    }
    let bs = ctx.fs.bs() as usize;
    let csum = if ctx.fs.csum() { 8 } else { 0 };
    let expect_limit = (bs - (csum + ent)) / 8;
    let limit = usize::from(ext4_ondisk::get_u16(buf, ent));
    let mut count = usize::from(ext4_ondisk::get_u16(buf, ent + 2));
    if limit != expect_limit {
        ctx.ask(Code::HtreeBadLimit, at, format!("htree directory {ino} block {}: limit {limit}, expected {expect_limit}", b.blockcnt));
    }
    if count > expect_limit {
        ctx.ask(Code::HtreeBadCount, at, format!("htree directory {ino} block {}: count {count} above {expect_limit}", b.blockcnt));
        count = expect_limit;
    }
    let hash_at = |i: usize| ext4_ondisk::get_u32(buf, ent + i * 8) & !1;
    let blk_at = |i: usize| ext4_ondisk::get_u32(buf, ent + i * 8 + 4) & DX_BLOCK_MASK;
    let (mut min_hash, mut max_hash, mut hash) = (u32::MAX, 0u32, 0u32);
    for i in 0..count {
        let prev_hash = hash;
        hash = if i == 0 { 0 } else { hash_at(i) };
        let blk = blk_at(i);
        if blk >= numblocks {
            ctx.ask(Code::HtreeBadblk, at, format!("htree directory {ino} block {}: entry {i} points at block {blk}", b.blockcnt));
            continue;
        }
        if hash < prev_hash {
            ctx.ask(Code::HtreeHashOrder, at, format!("htree directory {ino} block {}: hashes out of order", b.blockcnt));
        }
        let dx = ctx.dx_dirs.get_mut(&ino).expect("checked");
        let db = &mut dx.blocks[blk as usize];
        if db.referenced {
            db.dup_ref = true;
        } else {
            db.referenced = true;
            db.parent = b.blockcnt;
        }
        db.previous = if i == 0 { 0 } else { blk_at(i - 1) };
        min_hash = min_hash.min(hash);
        max_hash = max_hash.max(hash);
        db.node_min_hash = hash;
        if i + 1 < count {
            db.node_max_hash = hash_at(i + 1);
        } else {
            db.node_max_hash = 0xffff_fffe;
            db.last = true;
        }
        if i == 0 {
            db.first = true;
        }
    }
    let dx = ctx.dx_dirs.get_mut(&ino).expect("checked");
    let db = &mut dx.blocks[b.blockcnt as usize];
    db.min_hash = min_hash;
    db.max_hash = max_hash;
    Ok(())
}

/// Pushes the hash range of first and last children up to their parents (`update_parents`).
fn update_parents(blocks: &mut [DxBlock], kind: DxKind) {
    for b in 0..blocks.len() {
        let db = blocks[b];
        if db.kind != kind {
            continue;
        }
        let p = db.parent as usize;
        if db.first {
            blocks[p].min_hash = db.min_hash;
            let prev = blocks[p].previous as usize;
            if prev != 0 && prev < blocks.len() {
                blocks[prev].node_max_hash = blocks[p].min_hash;
            }
        }
        if db.last {
            blocks[p].max_hash = db.max_hash;
        }
    }
}

/// Levels from a leaf up to the root.
fn depth(blocks: &[DxBlock], mut b: usize) -> u32 {
    let mut d = 0;
    while blocks[b].kind != DxKind::Root && d < 32000 {
        b = blocks[b].parent as usize;
        d += 1;
    }
    d
}

/// The end of pass 2: each htree index against the hashes its leaves hold.
pub(super) fn verify_all(ctx: &mut Ctx<'_, '_>, st: &State) {
    let inos: Vec<u32> = ctx.dx_dirs.keys().copied().collect();
    for ino in inos {
        if st.rehash.contains(&ino) || !tracks(ctx, ino) {
            continue;
        }
        let mut dx = ctx.dx_dirs.remove(&ino).expect("listed");
        let blocks = &mut dx.blocks;
        if blocks[0].referenced {
            blocks[0].dup_ref = true;
        } else {
            blocks[0].referenced = true;
        }
        update_parents(blocks, DxKind::Leaf);
        update_parents(blocks, DxKind::Node);
        let mut notes = Vec::new();
        for (i, db) in blocks.iter().enumerate() {
            if !db.first && db.min_hash < db.node_min_hash {
                notes.push((Code::HtreeMinHash, i, format!("min hash {:#x} below {:#x}", db.min_hash, db.node_min_hash)));
            }
            if db.kind == DxKind::Leaf && depth(blocks, i) != dx.depth {
                notes.push((Code::HtreeBadDepth, i, format!("leaf at depth {}, expected {}", depth(blocks, i), dx.depth)));
            }
            if i != 0 && db.max_hash > db.node_max_hash {
                notes.push((Code::HtreeMaxHash, i, format!("max hash {:#x} above {:#x}", db.max_hash, db.node_max_hash)));
            }
            if !db.referenced {
                notes.push((Code::HtreeNotref, i, "not referenced by the index".into()));
            } else if db.dup_ref {
                notes.push((Code::HtreeDupref, i, "referenced twice by the index".into()));
            }
        }
        let bad = !notes.is_empty();
        for (code, i, what) in notes {
            ctx.ask(code, At::ino(ino), format!("htree directory {ino} block {i}: {what}"));
        }
        if bad {
            ctx.ask(Code::HtreeClear, At::ino(ino), format!("htree directory {ino} has an invalid index"));
        }
        ctx.dx_dirs.insert(ino, dx);
    }
}

//! Extended attributes in pass 1: the in-inode area after `i_extra_isize`,
//! the xattr block (checked once, then its references counted), and EA
//! inodes (`check_ext_attr`, `check_ea_in_inode`, `check_large_ea_inode`).

use ext4_ondisk::features::Compat;
use ext4_ondisk::inode::{InodeFlags, raw as iraw};
use ext4_ondisk::xattr::{BLOCK_HEADER_SIZE, ENTRY_HEADER, XATTR_MAGIC, entry_hash, entry_hash_signed, entry_len, value_len};

use super::inode::InodeCheck;
use crate::ctx::{Ctx, EaBlock, Flow};
use crate::inodes::flag;
use crate::problem::{At, Code};
use crate::runset::RunSet;

/// Largest value an xattr block entry may hold (`EXT2_XATTR_SIZE_MAX`).
const XATTR_SIZE_MAX: u64 = 1 << 24;

/// `region_allocate`: claims `[start, start + n)` of an area of `max`
/// bytes; true on a collision (or a claim outside the area).
fn claim(region: &mut RunSet, max: u64, start: u64, n: u64) -> bool {
    if start + n > max || n == 0 || !region.is_clear(start, n) {
        return true;
    }
    region.insert(start, n);
    false
}

/// Reads a little-endian word of `buf`, zero past its end.
fn word(buf: &[u8], off: usize) -> u32 {
    if off + 4 <= buf.len() { ext4_ondisk::get_u32(buf, off) } else { 0 }
}

/// An entry's fields at `p` of `buf` (zeros past the end).
struct Entry {
    name: Vec<u8>,
    name_len: usize,
    index: u8,
    value_offs: u64,
    value_inum: u32,
    value_size: u64,
    hash: u32,
}

fn entry_at(buf: &[u8], p: usize) -> Entry {
    let byte = |o: usize| buf.get(p + o).copied().unwrap_or(0);
    let name_len = usize::from(byte(0));
    Entry {
        name: buf.get(p + ENTRY_HEADER..p + ENTRY_HEADER + name_len).unwrap_or(&[]).to_vec(),
        name_len,
        index: byte(1),
        value_offs: u64::from(byte(2)) | u64::from(byte(3)) << 8,
        value_inum: word(buf, p + 4),
        value_size: u64::from(word(buf, p + 8)),
        hash: word(buf, p + 12),
    }
}

/// Whether the stored hash of entry `e` at `p` matches its name and the
/// value at `value_at` of `buf` (unsigned or signed name bytes).
fn hash_matches(buf: &[u8], e: &Entry, value_at: usize) -> bool {
    let name = &e.name;
    let mut value = vec![0u8; value_len(e.value_size as usize)];
    if e.value_size > 0 {
        let end = (value_at + value.len()).min(buf.len());
        if value_at < end {
            value[..end - value_at].copy_from_slice(&buf[value_at..end]);
        }
    }
    let v = (e.value_size > 0).then_some(&value[..]);
    e.hash == entry_hash(name, v) || e.hash == entry_hash_signed(name, v)
}

/// What an inode's xattrs charge to its owner's quota besides its own
/// blocks: the blocks and count of the EA inodes they name (e2fsck's
/// `struct ea_quota`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct EaQuota {
    /// Blocks.
    pub blocks: u64,
    /// EA inodes.
    pub inodes: u64,
}

/// `check_inode_extra_space`: `i_extra_isize`, then the in-inode xattrs;
/// returns what their EA inodes charge.
pub(super) fn check_inode_extra_space(ctx: &mut Ctx<'_, '_>, c: &InodeCheck) -> Flow<EaQuota> {
    let isz = ctx.fs.geo.inode_size as usize;
    if isz == 128 {
        return Ok(EaQuota::default());
    }
    let extra = usize::from(iraw::extra_isize(&c.raw));
    let max = isz - 128;
    if extra != 0 && (extra < 4 || extra > max || extra & 3 != 0) {
        ctx.ask(Code::ExtraIsize, c.at, format!("inode {} has a bad extra size {extra}", c.ino));
        return Ok(EaQuota::default());
    }
    if extra + 4 >= max {
        return Ok(EaQuota::default());
    }
    let mut quota = EaQuota::default();
    if word(&c.raw, 128 + extra) == XATTR_MAGIC {
        quota = check_ea_in_inode(ctx, c, extra)?;
    }
    check_time_encoding(ctx, c);
    Ok(quota)
}

/// Times stored with the pre-1970 encoding bug (a warning: the kernel reads them either way).
fn check_time_encoding(ctx: &mut Ctx<'_, '_>, c: &InodeCheck) {
    if ctx.now >= 2 * (1i64 << 32) {
        return;
    }
    let bad = iraw::time_extras(&c.raw).iter().any(|&(base, extra)| base & (1 << 31) != 0 && extra.is_some_and(|x| x & 3 == 3));
    if bad {
        ctx.ask(Code::EaTimeOutOfRange, c.at, format!("inode {} has timestamps past 2310 (pre-1970 encoding)", c.ino));
    }
}

/// `check_ea_in_inode`: the entries of the in-inode area must not overlap,
/// fit, and hash right; the first problem is reported.
fn check_ea_in_inode(ctx: &mut Ctx<'_, '_>, c: &InodeCheck, extra: usize) -> Flow<EaQuota> {
    let isz = ctx.fs.geo.inode_size as usize;
    let area = &c.raw[128 + extra..isz];
    let storage = area.len() as u64;
    let mut region = RunSet::new();
    let mut quota = EaQuota::default();
    let mut p = 4usize;
    let mut remain = storage - 4;
    let mut problem: Option<(Code, String)> = None;
    if claim(&mut region, storage, 0, 4) {
        problem = Some((Code::InodeEaAllocCollision, "in-inode xattr header collides".into()));
    }
    while problem.is_none() && remain >= ENTRY_HEADER as u64 && word(area, p) != 0 {
        let e = entry_at(area, p);
        if claim(&mut region, storage, p as u64, entry_len(e.name_len) as u64) {
            problem = Some((Code::InodeEaAllocCollision, "in-inode xattr entries overlap".into()));
            break;
        }
        remain -= ENTRY_HEADER as u64;
        if value_len(e.name_len) as u64 > remain {
            problem = Some((Code::AttrNameLen, format!("in-inode xattr name length {} is too long", e.name_len)));
            break;
        }
        remain -= value_len(e.name_len) as u64;
        if e.value_inum == 0 {
            if e.value_size > remain {
                problem = Some((Code::AttrValueSize, format!("in-inode xattr value size {} is too large", e.value_size)));
                break;
            }
            if e.value_size > 0 && claim(&mut region, storage, 4 + e.value_offs, value_len(e.value_size as usize) as u64) {
                problem = Some((Code::InodeEaAllocCollision, "in-inode xattr values overlap".into()));
                break;
            }
            if e.hash != 0 && !hash_matches(&area[4..], &e, e.value_offs as usize) {
                problem = Some((Code::AttrHash, format!("in-inode xattr hash {:#x} does not match", e.hash)));
                break;
            }
            remain -= e.value_size;
        } else {
            match check_large_ea_inode(ctx, c, &e)? {
                Ok(q) => {
                    quota.blocks += q;
                    quota.inodes += 1;
                }
                Err(p) => {
                    problem = Some(p);
                    break;
                }
            }
        }
        p += entry_len(e.name_len);
    }
    if problem.is_none() && claim(&mut region, storage, p as u64, 4) {
        problem = Some((Code::InodeEaAllocCollision, "in-inode xattr terminator collides".into()));
    }
    if let Some((code, d)) = problem {
        ctx.ask(code, c.at, format!("inode {}: {d}", c.ino));
    }
    inc_ea_inode_refs(ctx, area, 4);
    Ok(quota)
}

/// Counts the EA inode references of the entries of `area` from `first`.
fn inc_ea_inode_refs(ctx: &mut Ctx<'_, '_>, area: &[u8], first: usize) {
    let mut p = first;
    loop {
        let e = entry_at(area, p);
        let next = p + entry_len(e.name_len);
        if p >= area.len() || next >= area.len() || word(area, p) == 0 {
            break;
        }
        if e.value_inum != 0 {
            *ctx.ea_inode_refs.entry(e.value_inum).or_default() += 1;
        }
        p = next;
    }
}

/// `check_large_ea_inode`: an entry whose value lives in an EA inode;
/// `Ok(quota blocks)` or the problem.
fn check_large_ea_inode(ctx: &mut Ctx<'_, '_>, c: &InodeCheck, e: &Entry) -> Flow<Result<u64, (Code, String)>> {
    let inum = e.value_inum;
    if inum < ctx.fs.first_ino() || inum > ctx.fs.inodes_count() {
        return Ok(Err((Code::AttrValueEaInode, format!("xattr names invalid EA inode {inum}"))));
    }
    let Some(raw) = ctx.fs.read_inode_raw(inum)? else {
        return Err(ctx.fatal(Code::AttrValueEaInode, c.at, format!("EA inode {inum} cannot be read")));
    };
    if !super::inode::csum_ok(&ctx.fs, inum, &raw) {
        return Err(ctx.fatal(Code::AttrValueEaInode, c.at, format!("EA inode {inum} fails its checksum")));
    }
    let Ok(ea) = iraw::parse_lenient(&raw) else { return Ok(Err((Code::AttrValueEaInode, format!("EA inode {inum} is unreadable")))) };
    let ea_hash = ea.atime.secs as u32;
    let mix = |h: u32| ext4_ondisk::xattr::mix_ea_inode_hash(h, ea_hash);
    let hash_ok = e.hash == mix(entry_hash(&e.name, None)) || e.hash == mix(entry_hash_signed(&e.name, None));
    let quota = if hash_ok {
        let csize = u64::from(ctx.fs.bs()) * ctx.fs.ratio();
        e.value_size.div_ceil(csize) * ctx.fs.ratio()
    } else if ea.mtime.secs as u32 == c.ino && ea.generation == c.inode.generation {
        0
    } else if !ea.flags.contains(InodeFlags::EA_INODE) {
        return Ok(Err((Code::AttrValueEaInode, format!("xattr names inode {inum}, which is not an EA inode"))));
    } else {
        return Ok(Err((Code::AttrHash, format!("xattr hash {:#x} does not match EA inode {inum}", e.hash))));
    };
    if !ea.flags.contains(InodeFlags::EA_INODE) {
        return Ok(Err((Code::AttrNoEaInodeFl, format!("EA inode {inum} lacks the EA_INODE flag"))));
    }
    Ok(Ok(quota))
}

/// `check_ext_attr`: the inode's xattr block. The first reference checks
/// the block; later ones count against `h_refcount`. Returns the quota
/// it charges, or `None` when the inode has no usable block.
pub(super) fn check_ext_attr(ctx: &mut Ctx<'_, '_>, c: &InodeCheck) -> Flow<Option<EaQuota>> {
    let blk = c.inode.file_acl;
    if blk == 0 {
        return Ok(None);
    }
    if !ctx.fs.compat(Compat::EXT_ATTR) || !ctx.fs.block_ok(blk) {
        ctx.inodes.set(c.ino, flag::BAD);
        return Ok(None);
    }
    let cluster = ctx.fs.ratio();
    if let Some(info) = ctx.ea_blocks.get_mut(&blk) {
        let q = if info.quota_blocks != 0 { info.quota_blocks } else { cluster };
        if info.remaining > 0 {
            info.remaining -= 1;
        } else {
            *ctx.ea_extra.entry(blk).or_default() += 1;
        }
        return Ok(Some(EaQuota { blocks: q, inodes: info.quota_inodes }));
    }
    let at = At::ino_block(c.ino, blk);
    let Some(block) = ctx.fs.img.block(blk)? else {
        ctx.ask(Code::ReadEaBlock, at, format!("xattr block {blk} of inode {} cannot be read", c.ino));
        return Ok(None);
    };
    let failed_csum = ctx.fs.csum() && ext4_ondisk::xattr::verify_xattr_block(ctx.fs.csum_seed(), blk, &block).is_err();
    if word(&block, 0) != XATTR_MAGIC {
        ctx.ask(Code::BadEaBlock, at, format!("xattr block {blk} of inode {} has a bad magic number", c.ino));
    }
    if word(&block, 8) != 1 {
        ctx.ask(Code::EaMultiBlock, at, format!("xattr block {blk} claims {} blocks", word(&block, 8)));
    }
    let quota = check_ea_block_entries(ctx, c, &block, at)?;
    if failed_csum
        && ctx.ask_inode_fix(Code::EaBlockOnlyCsumInvalid, at, format!("xattr block {blk} passes checks, but its checksum does not match"))
    {
        let mut b = block.clone();
        ext4_ondisk::xattr::set_xattr_block_checksum(ctx.fs.csum_seed(), blk, &mut b);
        ctx.write_block(blk, &b)?;
    }
    inc_ea_inode_refs(ctx, &block, BLOCK_HEADER_SIZE);
    let refcount = i64::from(word(&block, 4));
    ctx.ea_blocks.insert(blk, EaBlock { remaining: refcount - 1, quota_blocks: quota.0, quota_inodes: quota.1 });
    ctx.mark_block(blk);
    Ok(Some(EaQuota { blocks: quota.0, inodes: quota.1 }))
}

/// The entries of an xattr block: no overlaps, valid names, values inside
/// the block, hashes; returns (quota blocks, EA inodes).
fn check_ea_block_entries(ctx: &mut Ctx<'_, '_>, c: &InodeCheck, block: &[u8], at: At) -> Flow<(u64, u64)> {
    let bs = block.len() as u64;
    let mut region = RunSet::new();
    let mut quota = (ctx.fs.ratio(), 0u64);
    let d = |what: &str| format!("xattr block of inode {}: {what}", c.ino);
    claim(&mut region, bs, 0, BLOCK_HEADER_SIZE as u64);
    let mut p = BLOCK_HEADER_SIZE;
    while p < block.len() && word(block, p) != 0 {
        let e = entry_at(block, p);
        if claim(&mut region, bs, p as u64, entry_len(e.name_len) as u64) {
            ctx.ask(Code::EaAllocCollision, at, d("entries overlap"));
            break;
        }
        if e.index == 0 {
            ctx.ask(Code::EaBadName, at, d("an entry has name index 0"));
            break;
        }
        if e.value_inum == 0 {
            if e.value_size > XATTR_SIZE_MAX || e.value_offs + e.value_size > bs {
                ctx.ask(Code::EaBadValue, at, d("a value lies outside the block"));
                break;
            }
            if e.value_size > 0 && claim(&mut region, bs, e.value_offs, value_len(e.value_size as usize) as u64) {
                ctx.ask(Code::EaAllocCollision, at, d("values overlap"));
            }
            if !hash_matches(block, &e, e.value_offs as usize) {
                ctx.ask(Code::AttrHash, at, d(&format!("entry hash {:#x} does not match", e.hash)));
            }
        } else {
            match check_large_ea_inode(ctx, c, &e)? {
                Ok(q) => {
                    quota.0 += q;
                    quota.1 += 1;
                }
                Err((code, why)) => {
                    ctx.ask(code, at, d(&why));
                }
            }
        }
        p += entry_len(e.name_len);
    }
    if claim(&mut region, bs, p as u64, 4) {
        ctx.ask(Code::EaAllocCollision, at, d("the terminator collides"));
    }
    Ok(quota)
}

/// Xattr blocks whose `h_refcount` disagrees with the inodes that use
/// them (`adjust_extattr_refcount`).
pub(super) fn adjust_refcounts(ctx: &mut Ctx<'_, '_>) -> Flow {
    let short: Vec<(u64, i64)> = ctx.ea_blocks.iter().filter(|(_, i)| i.remaining > 0).map(|(&b, i)| (b, i.remaining)).collect();
    for (blk, left) in short {
        let Some(b) = ctx.fs.img.block(blk)? else { continue };
        let stored = word(&b, 4);
        let d = format!("xattr block {blk} has reference count {stored}, should be {}", i64::from(stored) - left);
        ctx.ask(Code::ExtattrRefcount, At::block(blk), d);
    }
    let extra: Vec<(u64, u64)> = ctx.ea_extra.iter().map(|(&b, &n)| (b, n)).collect();
    for (blk, n) in extra {
        let Some(b) = ctx.fs.img.block(blk)? else { continue };
        let stored = word(&b, 4);
        let d = format!("xattr block {blk} has reference count {stored}, should be {}", u64::from(stored) + n);
        ctx.ask(Code::ExtattrRefcount, At::block(blk), d);
    }
    Ok(())
}

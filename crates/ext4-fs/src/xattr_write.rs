//! Changing extended attributes. The inode's whole attribute set is laid
//! out again on every change: in the inode body first (in order), the rest
//! in one external block sorted as the kernel's lookup requires (by name
//! index, name length, name). A shared block (refcount > 1) is never
//! changed in place: the inode gets its own copy.
//!
//! Like the kernel (`ext4_xattr_block_cache_find`, mbcache), a new block
//! content that equals a block written earlier in this session is not
//! written again: the inode takes a reference on that block instead, up to
//! [`REFCOUNT_MAX`] sharers. Images where many files carry the same
//! attributes (SELinux labels, ACLs) then use one block for all of them.

use std::collections::HashMap;

use ext4_ondisk::xattr::{
    BLOCK_HEADER_SIZE, XATTR_MAGIC, XattrEntry, block_hash, encode_name, entry_hash, entry_len, mix_ea_inode_hash, parse_block_header,
    set_xattr_block_checksum, value_len, write_entry,
};
use ext4_ondisk::{Incompat, Structure};

use crate::error::{Error, Location, Result};
use crate::fs::Filesystem;
use crate::inode::InodeBuf;
use crate::txn::Txn;
use crate::xattr::XattrPlace;

/// Largest value the VFS accepts (`XATTR_SIZE_MAX`).
pub const XATTR_SIZE_MAX: usize = 65536;

/// Most inodes that share one xattr block (`EXT4_XATTR_REFCOUNT_MAX`).
pub const REFCOUNT_MAX: u32 = 1024;

/// Blocks registered before the cache starts over (bounds its memory).
const SHARE_CACHE_LIMIT: usize = 1 << 16;

/// Xattr blocks written in this session, by their `h_hash`: the candidates
/// for sharing. An entry is only a hint; a candidate is read and compared
/// before it is used.
#[derive(Debug, Default)]
pub(crate) struct ShareCache {
    by_hash: HashMap<u32, Vec<u64>>,
    hash_of: HashMap<u64, u32>,
}

impl ShareCache {
    fn insert(&mut self, block: u64, hash: u32) {
        self.remove(block);
        if self.hash_of.len() >= SHARE_CACHE_LIMIT {
            self.clear();
        }
        self.by_hash.entry(hash).or_default().push(block);
        self.hash_of.insert(block, hash);
    }

    fn remove(&mut self, block: u64) {
        if let Some(h) = self.hash_of.remove(&block) {
            if let Some(v) = self.by_hash.get_mut(&h) {
                v.retain(|&b| b != block);
                if v.is_empty() {
                    self.by_hash.remove(&h);
                }
            }
        }
    }

    fn candidates(&self, hash: u32) -> Vec<u64> {
        self.by_hash.get(&hash).cloned().unwrap_or_default()
    }

    pub(crate) fn clear(&mut self) {
        self.by_hash.clear();
        self.hash_of.clear();
    }
}

/// What `set_xattr` requires of an existing attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XattrMode {
    /// Create or replace.
    #[default]
    Any,
    /// Fail with `Exists` if present (`XATTR_CREATE`).
    Create,
    /// Fail with `NoAttribute` if absent (`XATTR_REPLACE`).
    Replace,
}

/// One attribute while its inode's set is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Attr {
    index: u8,
    name: Vec<u8>,
    value: Vec<u8>,
    /// The EA inode holding the value (`ea_inode`) and its value hash; 0 when
    /// the value is stored beside the entry.
    inum: u32,
    ea_hash: u32,
}

impl Attr {
    fn new(index: u8, name: &[u8], value: &[u8]) -> Self {
        Self { index, name: name.to_vec(), value: value.to_vec(), inum: 0, ea_hash: 0 }
    }

    fn key(&self) -> (u8, usize, &[u8]) {
        (self.index, self.name.len(), &self.name)
    }

    /// `e_hash`: over the name and the value, or for a value in an EA inode
    /// over the name and that inode's value hash (`ext4_xattr_hash_entry`).
    fn hash(&self) -> u32 {
        if self.inum != 0 {
            mix_ea_inode_hash(entry_hash(&self.name, None), self.ea_hash)
        } else {
            entry_hash(&self.name, Some(&self.value))
        }
    }

    /// Bytes the attribute takes in an area: its entry, and its value unless
    /// an EA inode holds it.
    fn need(&self) -> usize {
        entry_len(self.name.len()) + if self.inum != 0 { 0 } else { value_len(self.value.len()) }
    }
}

impl Filesystem {
    /// Sets attribute `name` of inode `ino` to `value`.
    pub fn set_xattr(&mut self, ino: u32, name: &[u8], value: &[u8], mode: XattrMode) -> Result<()> {
        Self::check_xattr_name(name)?;
        if value.len() > XATTR_SIZE_MAX {
            return Err(Error::TooBig("xattr value larger than 64 KiB"));
        }
        self.op(|txn| {
            let mut ib = txn.xattr_writable(ino)?;
            let (index, suffix) = encode_name(name);
            let mut attrs = txn.collect_attrs(&ib)?;
            let pos = attrs.iter().position(|a| a.index == index && a.name == suffix);
            match (pos, mode) {
                (Some(_), XattrMode::Create) => {
                    return Err(Error::Exists(String::from_utf8_lossy(name).into_owned()));
                }
                (None, XattrMode::Replace) => return Err(Error::NoAttribute),
                (Some(i), _) => attrs[i] = Attr::new(index, suffix, value),
                (None, _) => attrs.push(Attr::new(index, suffix, value)),
            }
            let at = pos.unwrap_or(attrs.len() - 1);
            if txn.geo.features.incompat.contains(Incompat::EA_INODE) && value_len(value.len()) > txn.block_size() - 56 {
                // Too big for any block (`EXT4_XATTR_MIN_LARGE_EA_SIZE`): an EA inode holds it.
                txn.move_to_ea_inode(&ib, &mut attrs[at])?;
            }
            // A layout that does not fit fails before anything is allocated,
            // but after the body in `ib` was laid out: the retry starts over.
            let unchanged = ib.clone();
            match txn.store_attrs_counted(&mut ib, attrs.clone()) {
                Err(Error::NoSpace)
                    if txn.geo.features.incompat.contains(Incompat::EA_INODE) && attrs[at].inum == 0 && !value.is_empty() =>
                {
                    // As the kernel retries: the value goes to an EA inode.
                    ib = unchanged;
                    txn.move_to_ea_inode(&ib, &mut attrs[at])?;
                    txn.store_attrs_counted(&mut ib, attrs)?;
                }
                r => r?,
            }
            ib.inode.ctime = txn.now();
            txn.write_inode(&mut ib)
        })
    }

    /// Removes attribute `name` of inode `ino`.
    pub fn remove_xattr(&mut self, ino: u32, name: &[u8]) -> Result<()> {
        Self::check_xattr_name(name)?;
        self.op(|txn| {
            let mut ib = txn.xattr_writable(ino)?;
            let (index, suffix) = encode_name(name);
            let mut attrs = txn.collect_attrs(&ib)?;
            let before = attrs.len();
            attrs.retain(|a| !(a.index == index && a.name == suffix));
            if attrs.len() == before {
                return Err(Error::NoAttribute);
            }
            txn.store_attrs_counted(&mut ib, attrs)?;
            ib.inode.ctime = txn.now();
            txn.write_inode(&mut ib)
        })
    }

    /// Reads an inode whose attributes are about to change: an immutable or
    /// append-only inode's are not (`xattr_permission`).
    fn xattr_writable(&self, ino: u32) -> Result<InodeBuf> {
        let ib = self.read_inode(ino)?;
        if ib.inode.flags.intersects(ext4_ondisk::InodeFlags::IMMUTABLE | ext4_ondisk::InodeFlags::APPEND) {
            return Err(Error::NotPermitted("the file is immutable or append-only"));
        }
        Ok(ib)
    }

    fn check_xattr_name(name: &[u8]) -> Result<()> {
        let (index, suffix) = encode_name(name);
        if index == 0 {
            return Err(Error::Unsupported(format!("xattr namespace of {:?}", String::from_utf8_lossy(name))));
        }
        if suffix.len() > 255 {
            return Err(Error::TooBig("xattr name longer than 255 bytes"));
        }
        if suffix.is_empty() && !matches!(index, 2 | 3) {
            return Err(Error::InvalidArgument("empty xattr name".into()));
        }
        if is_inline_data(index, suffix) {
            // The kernel has no handler for it: inline data is not an attribute to users.
            return Err(Error::Unsupported("system.data holds inline data".into()));
        }
        Ok(())
    }

    /// Every attribute of an inode, in-inode ones first, in on-disk order.
    fn collect_attrs(&self, ib: &InodeBuf) -> Result<Vec<Attr>> {
        let mut v = Vec::new();
        self.for_each_xattr(ib, |_, e: &XattrEntry<'_>, value| {
            let mut a = Attr::new(e.name_index, e.name, value);
            if e.value_inum != 0 {
                a.inum = e.value_inum;
                a.ea_hash = self.ea_inode_hash_of(e.value_inum)?;
            }
            v.push(a);
            Ok(())
        })?;
        Ok(v)
    }

    fn xattr_refcount(&self, ino: u32, block: u64) -> Result<u32> {
        let data = self.read_xattr_block(ino, block)?;
        let h = parse_block_header(&data).map_err(|e| Error::format(&e, Location::InodeBlock { ino, block }))?;
        Ok(h.h_refcount.get())
    }

    /// The largest `system.data` value the inode body can hold while the
    /// other attributes in the body stay there (`get_max_inline_xattr_value_size`);
    /// `None` when the body has no room for the entry at all.
    pub(crate) fn inline_value_room(&self, ib: &InodeBuf) -> Result<Option<usize>> {
        let cap = ib.xattr_area().len();
        // Magic, terminator and the `system.data` entry itself.
        let mut used = 8 + entry_len(INLINE_DATA_NAME.len());
        self.for_each_xattr(ib, |place, e, _| {
            if place == XattrPlace::Inode && !is_inline_data(e.name_index, e.name) {
                let value = if e.value_inum != 0 { 0 } else { value_len(e.value_size as usize) };
                used += entry_len(e.name.len()) + value;
            }
            Ok(())
        })?;
        Ok((used <= cap).then(|| (cap - used) & !3))
    }
}

impl Txn<'_> {
    /// [`Self::store_attrs`], keeping EA inode reference counts right: the
    /// references the inode held before (its body, and its block unless
    /// shared) are replaced by those it holds after.
    fn store_attrs_counted(&mut self, ib: &mut InodeBuf, attrs: Vec<Attr>) -> Result<()> {
        if !self.geo.features.incompat.contains(Incompat::EA_INODE) {
            return self.store_attrs(ib, attrs);
        }
        let (before, charged) = self.ea_holdings(ib)?;
        self.store_attrs(ib, attrs)?;
        let (after, charge) = self.ea_holdings(ib)?;
        self.add_blocks(ib, charge - charged)?;
        self.replace_ea_refs(&before, &after)
    }

    /// Puts `a`'s value in a new EA inode (its reference is counted when the
    /// entry is stored).
    fn move_to_ea_inode(&mut self, owner: &InodeBuf, a: &mut Attr) -> Result<()> {
        let (inum, hash) = self.create_ea_inode(owner, &a.value)?;
        a.inum = inum;
        a.ea_hash = hash;
        Ok(())
    }

    /// Lays `attrs` out in the inode body and the external block;
    /// `system.data` (inline data) comes first in the body.
    fn store_attrs(&mut self, ib: &mut InodeBuf, mut attrs: Vec<Attr>) -> Result<()> {
        attrs.sort_by_key(|a| !is_inline_data(a.index, &a.name));
        let cap = ib.xattr_area().len();
        // Room in the body: 4-byte magic, entries, 4-byte terminator, values.
        let mut used = if cap >= 8 { 8 } else { cap + 1 };
        let mut body = Vec::new();
        let mut block = Vec::new();
        for a in attrs {
            let need = a.need();
            let must_inline = is_inline_data(a.index, &a.name);
            if used + need <= cap || (must_inline && cap >= 8) {
                used += need;
                body.push(a);
            } else {
                block.push(a);
            }
        }
        if used > cap && !body.is_empty() {
            return Err(Error::NoSpace);
        }
        let area = ib.xattr_area_mut();
        write_body(area, &body);
        self.store_block(ib, block)
    }

    /// Writes the external block for `attrs` (none: the inode lets go of its block).
    fn store_block(&mut self, ib: &mut InodeBuf, mut attrs: Vec<Attr>) -> Result<()> {
        let old = ib.inode.file_acl;
        if attrs.is_empty() {
            return self.release_xattrs(ib);
        }
        attrs.sort_by(|a, b| a.key().cmp(&b.key()));
        let bs = self.block_size();
        let data = build_block(&attrs, bs).ok_or(Error::NoSpace)?;
        let hash = ext4_ondisk::get_u32(&data, 12);
        if let Some(shared) = self.find_shareable(ib.ino, old, &data, hash)? {
            if shared != old {
                self.release_xattrs(ib)?;
                self.take_reference(ib.ino, shared)?;
                self.add_blocks(ib, self.cluster_ratio() as i64)?;
                ib.inode.file_acl = shared;
            }
            return Ok(());
        }
        let in_place = old != 0 && self.xattr_refcount(ib.ino, old)? == 1;
        let target = if in_place {
            old
        } else {
            let goal = if old != 0 { old } else { self.geo.group_first_block(self.geo.inode_group(ib.ino).0) };
            let (b, _) = self.alloc_blocks(goal, 1)?;
            self.release_xattrs(ib)?;
            self.add_blocks(ib, self.cluster_ratio() as i64)?;
            ib.inode.file_acl = b;
            b
        };
        let mut data = data;
        if self.geo.metadata_csum() {
            set_xattr_block_checksum(self.geo.csum_seed, target, &mut data);
        }
        self.write_meta(target, data)?;
        self.xattr_share_mut().insert(target, hash);
        Ok(())
    }

    /// A block known to this session that holds exactly `data`'s attributes
    /// (`old` itself included) and can take one more sharer.
    fn find_shareable(&mut self, ino: u32, old: u64, data: &[u8], hash: u32) -> Result<Option<u64>> {
        for b in self.write.xattr_share.candidates(hash) {
            // Same entries and values; the header's refcount and checksum may differ.
            match self.read_xattr_block(ino, b) {
                Ok(d) if ext4_ondisk::xattr::same_block_content(&d, data) => {
                    let refs = parse_block_header(&d).map_or(u32::MAX, |h| h.h_refcount.get());
                    if b == old || refs < REFCOUNT_MAX {
                        return Ok(Some(b));
                    }
                }
                // Changed or no longer an xattr block: not a candidate any more.
                _ => self.xattr_share_mut().remove(b),
            }
        }
        Ok(None)
    }

    /// Adds one reference to shared xattr block `block`.
    fn take_reference(&mut self, ino: u32, block: u64) -> Result<()> {
        let refs = self.xattr_refcount(ino, block)?;
        let (seed, csum) = (self.geo.csum_seed, self.geo.metadata_csum());
        self.modify_meta(block, |d| {
            ext4_ondisk::put_u32(d, 4, refs + 1);
            if csum {
                set_xattr_block_checksum(seed, block, d);
            }
        })
    }

    /// Drops the inode's reference to its xattr block, freeing the block at
    /// its last reference.
    pub(crate) fn release_xattrs(&mut self, ib: &mut InodeBuf) -> Result<()> {
        let block = ib.inode.file_acl;
        if block == 0 {
            return Ok(());
        }
        let refs = self.xattr_refcount(ib.ino, block)?;
        if refs == 0 {
            return Err(Error::corrupt(Structure::XattrBlock, Location::InodeBlock { ino: ib.ino, block }, "reference count is zero"));
        }
        if refs == 1 {
            self.xattr_share_mut().remove(block);
            self.free_blocks(block, 1, true)?;
        } else {
            let seed = self.geo.csum_seed;
            let csum = self.geo.metadata_csum();
            self.modify_meta(block, |d| {
                ext4_ondisk::put_u32(d, 4, refs - 1);
                if csum {
                    set_xattr_block_checksum(seed, block, d);
                }
            })?;
        }
        // The block took a whole cluster.
        self.add_blocks(ib, -(self.cluster_ratio() as i64))?;
        ib.inode.file_acl = 0;
        Ok(())
    }

    /// Sets (`Some`) or removes (`None`) the `system.data` attribute that
    /// holds inline data past `i_block`, in the inode body (`ib` only; the
    /// caller writes the inode).
    pub(crate) fn set_inline_value(&mut self, ib: &mut InodeBuf, value: Option<&[u8]>) -> Result<()> {
        let mut attrs = self.collect_attrs(ib)?;
        attrs.retain(|a| !is_inline_data(a.index, &a.name));
        if let Some(v) = value {
            attrs.insert(0, Attr::new(INLINE_DATA_INDEX, INLINE_DATA_NAME, v));
        }
        self.store_attrs_counted(ib, attrs)
    }
}

/// `e_name_index` and name of the inline-data attribute, `system.data`.
const INLINE_DATA_INDEX: u8 = 7;
const INLINE_DATA_NAME: &[u8] = b"data";

fn is_inline_data(index: u8, name: &[u8]) -> bool {
    index == INLINE_DATA_INDEX && name == INLINE_DATA_NAME
}

/// Writes the in-inode area: magic, entries, terminator, values packed at the end.
fn write_body(area: &mut [u8], attrs: &[Attr]) {
    area.fill(0);
    if attrs.is_empty() || area.len() < 8 {
        return;
    }
    ext4_ondisk::put_u32(area, 0, XATTR_MAGIC);
    lay_out(&mut area[4..], 0, attrs, true);
}

/// Writes `attrs`' entries from `first_entry` on and their values packed at
/// the end of `region` (value offsets count from the region's start, as
/// both the in-inode area and the block want); returns the entry hashes.
///
/// In the inode body `e_hash` is 0 unless the value lives in an EA inode,
/// as `ext4_xattr_set_entry` leaves it: the kernel drops a body entry that
/// carries a hash when it later grows an inline directory's `system.data`.
fn lay_out(region: &mut [u8], first_entry: usize, attrs: &[Attr], in_body: bool) -> Vec<u32> {
    let mut value_end = region.len();
    let mut pos = first_entry;
    let mut hashes = Vec::with_capacity(attrs.len());
    for a in attrs {
        let in_area = a.inum == 0 && !a.value.is_empty();
        if in_area {
            value_end -= value_len(a.value.len());
            region[value_end..value_end + a.value.len()].copy_from_slice(&a.value);
        }
        let hash = a.hash();
        hashes.push(hash);
        let e = XattrEntry {
            offset: pos,
            name_index: a.index,
            name: &a.name,
            value_offs: if in_area { value_end as u16 } else { 0 },
            value_inum: a.inum,
            value_size: a.value.len() as u32,
            hash: if in_body && a.inum == 0 { 0 } else { hash },
        };
        write_entry(region, pos, &e);
        pos += entry_len(a.name.len());
    }
    hashes
}

/// Builds an xattr block holding `attrs` (sorted), or `None` if they do not fit.
fn build_block(attrs: &[Attr], bs: usize) -> Option<Vec<u8>> {
    let need: usize = attrs.iter().map(Attr::need).sum();
    if BLOCK_HEADER_SIZE + need + 4 > bs {
        return None;
    }
    let mut b = vec![0u8; bs];
    ext4_ondisk::put_u32(&mut b, 0, XATTR_MAGIC);
    ext4_ondisk::put_u32(&mut b, 4, 1);
    ext4_ondisk::put_u32(&mut b, 8, 1);
    let hashes = lay_out(&mut b, BLOCK_HEADER_SIZE, attrs, false);
    ext4_ondisk::put_u32(&mut b, 12, block_hash(hashes));
    Some(b)
}

//! Directory entries: create, mkdir, link, symlink, mknod, unlink, rmdir
//! and rename in every POSIX case, with link counts kept exact.

use ext4_extent::Run;
use ext4_ondisk::{FileType, Incompat, InodeFlags, RoCompat, ino};

use crate::adapters::WriteDir;
use crate::error::{Error, Result};
use crate::fs::Filesystem;
use crate::inode::InodeBuf;
use crate::layer::LayerResultExt;
use crate::node::NewNode;
use crate::path::show;
use crate::txn::Txn;

/// Most links an inode may have (`EXT4_LINK_MAX`).
pub const LINK_MAX: u16 = 65000;

/// How `rename` treats an existing target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RenameMode {
    /// Replace the target if it exists (POSIX `rename`).
    #[default]
    Replace,
    /// Fail with `Exists` if the target exists (`RENAME_NOREPLACE`).
    NoReplace,
    /// Swap source and target, which must both exist (`RENAME_EXCHANGE`).
    Exchange,
}

impl Filesystem {
    fn entry_type(&self, kind: FileType) -> u8 {
        if self.geo.features.incompat.contains(Incompat::FILETYPE) { kind.dir_entry_code() } else { 0 }
    }

    /// Reads a directory the caller is about to remove or replace an entry
    /// of: refused when immutable or append-only (`may_delete`).
    fn writable_dir(&self, dir: u32) -> Result<InodeBuf> {
        let d = self.dir_for_adding(dir)?;
        if d.inode.flags.contains(InodeFlags::APPEND) {
            return Err(Error::NotPermitted("the directory is append-only"));
        }
        Ok(d)
    }

    /// Reads a directory the caller is about to add an entry to: refused
    /// when immutable; an append-only directory takes new entries.
    fn dir_for_adding(&self, dir: u32) -> Result<InodeBuf> {
        let d = self.read_inode(dir)?;
        if !d.is_dir() {
            return Err(Error::NotADirectory(format!("inode {dir}")));
        }
        if d.inode.flags.contains(InodeFlags::IMMUTABLE) {
            return Err(Error::NotPermitted("the directory is immutable"));
        }
        Ok(d)
    }

    /// Creates a node of any type named `name` in directory `parent`.
    /// Symbolic links take their target from `link_target`.
    pub fn create_node(&mut self, parent: u32, name: &[u8], node: NewNode, link_target: Option<&[u8]>) -> Result<u32> {
        Self::check_name(name)?;
        self.op(|txn| {
            let mut dir = txn.dir_for_adding(parent)?;
            // A lookup just before (FUSE's LOOKUP, then MKNOD) already searched.
            if !txn.write.lookup.known_absent(parent, name) && txn.lookup_entry(&dir, name)?.is_some() {
                return Err(Error::Exists(show(name)));
            }
            let mut child = txn.new_inode(&dir, &node)?;
            match node.kind {
                FileType::Directory => txn.init_dir(&mut child, parent)?,
                FileType::Symlink => {
                    let target = link_target.ok_or_else(|| Error::InvalidArgument("a symbolic link needs a target".into()))?;
                    txn.init_symlink(&mut child, target)?;
                }
                _ => child.inode.links_count = 1,
            }
            txn.write_inode(&mut child)?;
            txn.add_entry(&mut dir, name, child.ino, node.kind)?;
            if node.kind == FileType::Directory {
                txn.inc_dir_links(&mut dir)?;
                txn.write_inode(&mut dir)?;
            }
            Ok(child.ino)
        })
    }

    /// Creates a hard link `name` in `parent` to inode `target`.
    pub fn link_in(&mut self, target: u32, parent: u32, name: &[u8]) -> Result<()> {
        Self::check_name(name)?;
        self.op(|txn| {
            // An existing name wins over every other error, as in `do_linkat`.
            let mut dir = txn.dir_for_adding(parent)?;
            if txn.lookup_entry(&dir, name)?.is_some() {
                return Err(Error::Exists(show(name)));
            }
            let mut t = txn.read_inode(target)?;
            if t.is_dir() {
                return Err(Error::NotPermitted("hard links to directories are not allowed"));
            }
            if t.inode.flags.intersects(InodeFlags::IMMUTABLE | InodeFlags::APPEND) {
                return Err(Error::NotPermitted("the file is immutable or append-only"));
            }
            if t.inode.links_count >= LINK_MAX {
                return Err(Error::TooManyLinks);
            }
            txn.add_entry(&mut dir, name, target, t.file_type())?;
            t.inode.links_count += 1;
            t.inode.ctime = txn.now();
            txn.write_inode(&mut t)
        })
    }

    /// Removes the non-directory entry `name` from `parent`.
    pub fn unlink_in(&mut self, parent: u32, name: &[u8]) -> Result<()> {
        self.op(|txn| {
            let mut dir = txn.writable_dir(parent)?;
            let (child, _) = txn.lookup_entry(&dir, name)?.ok_or_else(|| Error::NotFound(show(name)))?;
            let mut c = txn.read_inode(child)?;
            if c.is_dir() {
                return Err(Error::IsADirectory(show(name)));
            }
            if c.inode.flags.intersects(InodeFlags::IMMUTABLE | InodeFlags::APPEND) {
                return Err(Error::NotPermitted("the file is immutable or append-only"));
            }
            txn.remove_entry(&mut dir, name)?;
            txn.drop_link(&mut c)
        })
    }

    /// Removes the empty directory `name` from `parent`.
    pub fn rmdir_in(&mut self, parent: u32, name: &[u8]) -> Result<()> {
        if name == b"." {
            return Err(Error::InvalidArgument("cannot remove '.'".into()));
        }
        if name == b".." {
            return Err(Error::NotEmpty("..".into()));
        }
        self.op(|txn| {
            let mut dir = txn.writable_dir(parent)?;
            let (child, _) = txn.lookup_entry(&dir, name)?.ok_or_else(|| Error::NotFound(show(name)))?;
            let mut c = txn.read_inode(child)?;
            if !c.is_dir() {
                return Err(Error::NotADirectory(show(name)));
            }
            if c.inode.flags.intersects(InodeFlags::IMMUTABLE | InodeFlags::APPEND) {
                return Err(Error::NotPermitted("the directory is immutable or append-only"));
            }
            if !txn.dir_is_empty(&c)? {
                return Err(Error::NotEmpty(show(name)));
            }
            txn.remove_entry(&mut dir, name)?;
            txn.dec_dir_links(&mut dir);
            txn.write_inode(&mut dir)?;
            c.inode.links_count = 0;
            txn.release_inode(&mut c)
        })
    }

    /// Whether a directory holds only `.` and `..`.
    pub(crate) fn dir_is_empty(&self, d: &InodeBuf) -> Result<bool> {
        let mut empty = true;
        self.for_each_dir_entry(d, |e| {
            if e.name != b"." && e.name != b".." {
                empty = false;
                return std::ops::ControlFlow::Break(());
            }
            std::ops::ControlFlow::Continue(())
        })?;
        Ok(empty)
    }

    /// Whether `i_block` holds a block map (not inline data, a fast
    /// symlink's target or a device number).
    pub(crate) fn has_block_map(&self, c: &InodeBuf) -> bool {
        !c.inode.has_inline_data()
            && (c.file_type() != FileType::Symlink || !self.is_fast_symlink(c))
            && !matches!(c.file_type(), FileType::CharDevice | FileType::BlockDevice | FileType::Fifo | FileType::Socket)
    }

    /// Whether `ancestor` is `dir` or one of its ancestors (walking `..`).
    fn is_ancestor(&self, ancestor: u32, mut dir: u32) -> Result<bool> {
        for _ in 0..self.geo.inodes_count.min(1 << 20) {
            if dir == ancestor {
                return Ok(true);
            }
            if dir == ino::ROOT {
                return Ok(false);
            }
            let d = self.read_inode(dir)?;
            dir = self.lookup_entry(&d, b"..")?.map(|(i, _)| i).ok_or_else(|| Error::NotFound("..".into()))?;
        }
        Err(Error::SymlinkLoop("directory tree has a loop".into()))
    }

    /// Renames `old_parent/old_name` to `new_parent/new_name`.
    pub fn rename_in(&mut self, old_parent: u32, old_name: &[u8], new_parent: u32, new_name: &[u8], mode: RenameMode) -> Result<()> {
        Self::check_name(new_name)?;
        Self::check_name(old_name)?;
        self.op(|txn| txn.rename(old_parent, old_name, new_parent, new_name, mode))
    }
}

impl Txn<'_> {
    /// Adds entry `name -> child` to directory `dir` (written back, times updated).
    pub(crate) fn add_entry(&mut self, dir: &mut InodeBuf, name: &[u8], child: u32, kind: FileType) -> Result<()> {
        let ft = self.entry_type(kind);
        // An inline directory that is full moves to a block, then takes the entry there.
        if dir.inode.has_inline_data() && self.inline_add_entry(dir, name, child, ft)? {
            return self.touch_dir(dir);
        }
        let ctx = self.dir_ctx(dir);
        let mut indexed = self.is_indexed(dir);
        let dir_ino = dir.ino;
        ext4_htree::insert(&ctx, &mut WriteDir { fs: self, dir }, &mut indexed, name, child, ft).in_inode(dir_ino)?;
        dir.inode.flags.set(InodeFlags::INDEX, indexed);
        self.touch_dir(dir)
    }

    /// Removes entry `name` from `dir`; returns the inode it pointed to.
    pub(crate) fn remove_entry(&mut self, dir: &mut InodeBuf, name: &[u8]) -> Result<u32> {
        let removed = if dir.inode.has_inline_data() {
            self.inline_remove_entry(dir, name)?
        } else {
            let ctx = self.dir_ctx(dir);
            let indexed = self.is_indexed(dir);
            let dir_ino = dir.ino;
            ext4_htree::remove(&ctx, &mut WriteDir { fs: self, dir }, indexed, name).in_inode(dir_ino)?
        };
        let child = removed.ok_or_else(|| Error::NotFound(show(name)))?;
        self.touch_dir(dir)?;
        Ok(child)
    }

    /// Points the existing entry `name` of `dir` at `child` (a rename over it).
    fn replace_entry(&mut self, dir: &mut InodeBuf, name: &[u8], child: u32, kind: FileType) -> Result<()> {
        let ft = self.entry_type(kind);
        if dir.inode.has_inline_data() {
            return self.inline_retarget(dir, name, child, ft)?.map(drop).ok_or_else(|| Error::NotFound(show(name)));
        }
        let ctx = self.dir_ctx(dir);
        let indexed = self.is_indexed(dir);
        let dir_ino = dir.ino;
        ext4_htree::replace(&ctx, &mut WriteDir { fs: self, dir }, indexed, name, child, ft).in_inode(dir_ino)?;
        Ok(())
    }

    /// Updates a changed directory's times and writes it.
    fn touch_dir(&mut self, dir: &mut InodeBuf) -> Result<()> {
        let now = self.now();
        dir.inode.mtime = now;
        dir.inode.ctime = now;
        self.write_inode(dir)
    }

    /// Adds one link to a directory for a new subdirectory. A count may reach
    /// `LINK_MAX`; past it an indexed directory under `dir_nlink` counts 1,
    /// meaning "many", and any other refuses (`EXT4_DIR_LINK_MAX`, `ext4_inc_count`).
    fn inc_dir_links(&mut self, dir: &mut InodeBuf) -> Result<()> {
        let n = dir.inode.links_count;
        if n == 1 {
            return Ok(());
        }
        if n >= LINK_MAX {
            if !(self.geo.features.ro_compat.contains(RoCompat::DIR_NLINK) && self.is_indexed(dir)) {
                return Err(Error::TooManyLinks);
            }
            dir.inode.links_count = 1;
            return Ok(());
        }
        dir.inode.links_count = n + 1;
        Ok(())
    }

    /// Removes one subdirectory link from a directory.
    fn dec_dir_links(&mut self, dir: &mut InodeBuf) {
        let n = dir.inode.links_count;
        if n > 2 {
            dir.inode.links_count = n - 1;
        }
    }

    /// The first block of a new directory: `.` and `..`.
    pub(crate) fn init_dir(&mut self, child: &mut InodeBuf, parent: u32) -> Result<()> {
        if self.init_inline_dir(child, parent)? {
            return Ok(());
        }
        let ctx = self.dir_ctx(child);
        let block = ext4_htree::new_dir_block(&ctx, child.ino, parent);
        let (physical, _) = self.alloc_file_blocks(child, 0, 1)?;
        self.map_run(child, Run { logical: 0, physical, len: 1, unwritten: false })?;
        self.write_meta(physical, block)?;
        child.inode.size = u64::from(self.geo.block_size);
        child.inode.links_count = 2;
        Ok(())
    }

    /// A symlink's target: in `i_block` if shorter than 60 bytes, else in a block.
    fn init_symlink(&mut self, child: &mut InodeBuf, target: &[u8]) -> Result<()> {
        if target.is_empty() || target.contains(&0) {
            return Err(Error::InvalidArgument("invalid symbolic link target".into()));
        }
        if target.len() > self.block_size() - 1 || target.len() >= 4096 {
            return Err(Error::NameTooLong(target.len()));
        }
        child.inode.links_count = 1;
        child.inode.size = target.len() as u64;
        if target.len() < 60 {
            // Fast symlink: never extent-mapped (e2fsck checks this).
            child.inode.flags.remove(InodeFlags::EXTENTS);
            child.inode.block = [0; 60];
            child.inode.block[..target.len()].copy_from_slice(target);
            return Ok(());
        }
        let (physical, _) = self.alloc_file_blocks(child, 0, 1)?;
        self.map_run(child, Run { logical: 0, physical, len: 1, unwritten: false })?;
        let mut block = vec![0u8; self.block_size()];
        block[..target.len()].copy_from_slice(target);
        self.write_data(physical, 0, &block)
    }

    /// Drops one link of a non-directory; frees it at the last link unless it is open.
    fn drop_link(&mut self, c: &mut InodeBuf) -> Result<()> {
        c.inode.links_count = c.inode.links_count.saturating_sub(1);
        c.inode.ctime = self.now();
        if c.inode.links_count == 0 {
            if self.write.handles.open.contains_key(&c.ino) {
                // Open: it lives on, recorded as an orphan, until released.
                self.handles_mut().orphans.insert(c.ino);
                self.orphan_add(c)?;
            } else if self.needs_steps(c, 0)? {
                // Too big for one transaction: freed in steps after this operation.
                self.orphan_add(c)?;
                self.handles_mut().deferred.push(crate::orphan::Deferred::Release(c.ino));
            } else {
                return self.release_inode(c);
            }
        }
        self.write_inode(c)
    }

    /// Frees an unlinked inode: its data, xattr block and record.
    pub(crate) fn release_inode(&mut self, c: &mut InodeBuf) -> Result<()> {
        let was_dir = c.is_dir();
        if self.has_block_map(c) {
            self.unmap(c, 0, 1u64 << 32)?;
        }
        let ea_refs = if self.geo.features.incompat.contains(Incompat::EA_INODE) { self.ea_holdings(c)?.0 } else { Vec::new() };
        self.release_xattrs(c)?;
        self.replace_ea_refs(&ea_refs, &[])?;
        self.orphan_del(c)?;
        c.inode.size = 0;
        c.inode.links_count = 0;
        c.inode.dtime = self.now().secs as u32;
        self.write_inode(c)?;
        self.free_inode(c.ino, was_dir)
    }

    /// Checks in the kernel's order (`do_renameat2`, `lock_rename`'s trap,
    /// `vfs_rename`), so each failing case returns the errno Linux does.
    fn rename(&mut self, old_dir: u32, old_name: &[u8], new_dir: u32, new_name: &[u8], mode: RenameMode) -> Result<()> {
        let old_dir_inode = fs_dir(self, old_dir)?;
        let (src, _) = self.lookup_entry(&old_dir_inode, old_name)?.ok_or_else(|| Error::NotFound(show(old_name)))?;
        let new_dir_inode = fs_dir(self, new_dir)?;
        let dst = self.lookup_entry(&new_dir_inode, new_name)?.map(|(i, _)| i);
        match (mode, dst) {
            (RenameMode::Exchange, None) => return Err(Error::NotFound(show(new_name))),
            (RenameMode::NoReplace, Some(_)) => return Err(Error::Exists(show(new_name))),
            _ => {}
        }
        let mut old = self.read_inode(src)?;
        if old_dir != new_dir {
            if old.is_dir() && self.is_ancestor(src, new_dir)? {
                return Err(Error::InvalidArgument("cannot move a directory into itself".into()));
            }
            if let Some(target) = dst {
                if self.read_inode(target)?.is_dir() && self.is_ancestor(target, old_dir)? {
                    // The target is above the source: never empty.
                    return Err(match mode {
                        RenameMode::Exchange => Error::InvalidArgument("cannot move a directory into itself".into()),
                        _ => Error::NotEmpty(show(new_name)),
                    });
                }
            }
        }
        if dst == Some(src) {
            // Two names of one file: POSIX says do nothing.
            return Ok(());
        }
        if old.inode.flags.intersects(InodeFlags::IMMUTABLE | InodeFlags::APPEND) {
            return Err(Error::NotPermitted("the file is immutable or append-only"));
        }
        match (mode, dst) {
            (RenameMode::Exchange, Some(target)) => self.exchange(old_dir, old_name, &mut old, new_dir, new_name, target),
            (_, Some(target)) => self.replace(old_dir, old_name, &mut old, new_dir, new_name, target),
            (_, None) => self.move_to_new(old_dir, old_name, &mut old, new_dir, new_name),
        }
    }

    /// Moves `old` to a name that does not exist yet.
    fn move_to_new(&mut self, old_dir: u32, old_name: &[u8], old: &mut InodeBuf, new_dir: u32, new_name: &[u8]) -> Result<()> {
        let mut new_dir_inode = self.dir_for_adding(new_dir)?;
        if old.is_dir() && old_dir != new_dir {
            self.inc_dir_links(&mut new_dir_inode)?;
        }
        self.add_entry(&mut new_dir_inode, new_name, old.ino, old.file_type())?;
        let mut old_dir_inode = self.writable_dir(old_dir)?;
        self.remove_entry(&mut old_dir_inode, old_name)?;
        if old.is_dir() && old_dir != new_dir {
            self.dec_dir_links(&mut old_dir_inode);
            self.write_inode(&mut old_dir_inode)?;
            self.set_dotdot(old, new_dir)?;
        }
        old.inode.ctime = self.now();
        self.write_inode(old)
    }

    /// Moves `old` over an existing target `target`.
    fn replace(&mut self, old_dir: u32, old_name: &[u8], old: &mut InodeBuf, new_dir: u32, new_name: &[u8], target: u32) -> Result<()> {
        let mut new = self.read_inode(target)?;
        if new.inode.flags.intersects(InodeFlags::IMMUTABLE | InodeFlags::APPEND) {
            return Err(Error::NotPermitted("the target is immutable or append-only"));
        }
        match (old.is_dir(), new.is_dir()) {
            (true, false) => return Err(Error::NotADirectory(show(new_name))),
            (false, true) => return Err(Error::IsADirectory(show(new_name))),
            (true, true) if !self.dir_is_empty(&new)? => return Err(Error::NotEmpty(show(new_name))),
            _ => {}
        }
        let mut new_dir_inode = self.writable_dir(new_dir)?;
        self.replace_entry(&mut new_dir_inode, new_name, old.ino, old.file_type())?;
        self.touch_dir(&mut new_dir_inode)?;
        let mut old_dir_inode = self.writable_dir(old_dir)?;
        self.remove_entry(&mut old_dir_inode, old_name)?;
        if old.is_dir() {
            // The target directory'old link from its parent goes; the source'old moves.
            if old_dir != new_dir {
                self.dec_dir_links(&mut old_dir_inode);
                self.write_inode(&mut old_dir_inode)?;
                self.set_dotdot(old, new_dir)?;
            } else {
                let mut parent = self.read_inode(new_dir)?;
                self.dec_dir_links(&mut parent);
                self.write_inode(&mut parent)?;
            }
            new.inode.links_count = 0;
            self.release_inode(&mut new)?;
        } else {
            self.drop_link(&mut new)?;
        }
        old.inode.ctime = self.now();
        self.write_inode(old)
    }

    /// Swaps two existing entries.
    fn exchange(&mut self, old_dir: u32, old_name: &[u8], old: &mut InodeBuf, new_dir: u32, new_name: &[u8], target: u32) -> Result<()> {
        let mut new = self.read_inode(target)?;
        for (dir, name, ino, kind) in [(new_dir, new_name, old.ino, old.file_type()), (old_dir, old_name, new.ino, new.file_type())] {
            let mut di = self.writable_dir(dir)?;
            self.replace_entry(&mut di, name, ino, kind)?;
            self.touch_dir(&mut di)?;
        }
        if old_dir != new_dir && old.is_dir() != new.is_dir() {
            // One directory moves each way: the parents' link counts shift.
            let (gains, loses) = if old.is_dir() { (new_dir, old_dir) } else { (old_dir, new_dir) };
            let mut g = self.read_inode(gains)?;
            self.inc_dir_links(&mut g)?;
            self.write_inode(&mut g)?;
            let mut l = self.read_inode(loses)?;
            self.dec_dir_links(&mut l);
            self.write_inode(&mut l)?;
        }
        if old_dir != new_dir {
            if old.is_dir() {
                self.set_dotdot(old, new_dir)?;
            }
            if new.is_dir() {
                self.set_dotdot(&mut new, old_dir)?;
            }
        }
        let now = self.now();
        old.inode.ctime = now;
        new.inode.ctime = now;
        self.write_inode(old)?;
        self.write_inode(&mut new)
    }

    /// Points a directory's `..` at `parent`.
    fn set_dotdot(&mut self, d: &mut InodeBuf, parent: u32) -> Result<()> {
        if d.inode.has_inline_data() {
            self.inline_set_parent(d, parent);
            return Ok(());
        }
        let ctx = self.dir_ctx(d);
        let indexed = self.is_indexed(d);
        let d_ino = d.ino;
        ext4_htree::set_parent(&ctx, &mut WriteDir { fs: self, dir: d }, indexed, parent).in_inode(d_ino)
    }
}

fn fs_dir(fs: &Filesystem, dir: u32) -> Result<InodeBuf> {
    let d = fs.read_inode(dir)?;
    if !d.is_dir() {
        return Err(Error::NotADirectory(format!("inode {dir}")));
    }
    Ok(d)
}

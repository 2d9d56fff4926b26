//! POSIX ACLs: the kernel's on-disk form (`ext4_acl`, version 1, short
//! entries for the owner, group, mask and other) and the form user space
//! exchanges through `system.posix_acl_*` xattrs (`posix_acl_xattr`,
//! version 2, every entry 8 bytes). The kernel converts between them in
//! `ext4_acl_to_disk` / `ext4_acl_from_disk`; so must any mount.

use crate::{FormatError, Structure};

/// `a_version` of the on-disk form.
pub const DISK_VERSION: u32 = 1;
/// `a_version` of the user-space form.
pub const XATTR_VERSION: u32 = 2;

/// `e_tag` values.
pub const USER_OBJ: u16 = 0x01;
/// A named user.
pub const USER: u16 = 0x02;
/// The owning group.
pub const GROUP_OBJ: u16 = 0x04;
/// A named group.
pub const GROUP: u16 = 0x08;
/// The mask.
pub const MASK: u16 = 0x10;
/// Everybody else.
pub const OTHER: u16 = 0x20;

/// One ACL entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AclEntry {
    /// `e_tag`.
    pub tag: u16,
    /// `e_perm` (rwx bits).
    pub perm: u16,
    /// `e_id` for `USER` and `GROUP` entries (else unused).
    pub id: u32,
}

fn bad(detail: &'static str, value: u64) -> FormatError {
    FormatError::bad(Structure::InodeXattrs, "posix_acl", value, detail)
}

fn has_id(tag: u16) -> bool {
    tag == USER || tag == GROUP
}

fn check_tag(tag: u16) -> Result<(), FormatError> {
    match tag {
        USER_OBJ | USER | GROUP_OBJ | GROUP | MASK | OTHER => Ok(()),
        t => Err(bad("unknown ACL entry tag", t.into())),
    }
}

/// Parses the user-space form (`posix_acl_xattr`).
pub fn parse_xattr(value: &[u8]) -> Result<Vec<AclEntry>, FormatError> {
    if value.len() < 4 || (value.len() - 4) % 8 != 0 {
        return Err(bad("ACL xattr length is not 4 + 8n", value.len() as u64));
    }
    let version = crate::get_u32(value, 0);
    if version != XATTR_VERSION {
        return Err(bad("ACL xattr version is not 2", version.into()));
    }
    value[4..]
        .chunks_exact(8)
        .map(|c| {
            let tag = crate::get_u16(c, 0);
            check_tag(tag)?;
            Ok(AclEntry { tag, perm: crate::get_u16(c, 2), id: if has_id(tag) { crate::get_u32(c, 4) } else { 0 } })
        })
        .collect()
}

/// Encodes the user-space form (ids of entries without one are `u32::MAX`, as the kernel reports them).
pub fn to_xattr(entries: &[AclEntry]) -> Vec<u8> {
    let mut v = vec![0u8; 4 + 8 * entries.len()];
    crate::put_u32(&mut v, 0, XATTR_VERSION);
    for (i, e) in entries.iter().enumerate() {
        let o = 4 + 8 * i;
        crate::put_u16(&mut v, o, e.tag);
        crate::put_u16(&mut v, o + 2, e.perm);
        crate::put_u32(&mut v, o + 4, if has_id(e.tag) { e.id } else { u32::MAX });
    }
    v
}

/// Parses the on-disk form (`ext4_acl`).
pub fn parse_disk(value: &[u8]) -> Result<Vec<AclEntry>, FormatError> {
    if value.len() < 4 {
        return Err(bad("ACL shorter than its header", value.len() as u64));
    }
    let version = crate::get_u32(value, 0);
    if version != DISK_VERSION {
        return Err(bad("on-disk ACL version is not 1", version.into()));
    }
    let mut out = Vec::new();
    let mut p = 4;
    while p < value.len() {
        if p + 4 > value.len() {
            return Err(bad("ACL entry runs past the end", p as u64));
        }
        let tag = crate::get_u16(value, p);
        check_tag(tag)?;
        let perm = crate::get_u16(value, p + 2);
        if has_id(tag) {
            if p + 8 > value.len() {
                return Err(bad("ACL entry runs past the end", p as u64));
            }
            out.push(AclEntry { tag, perm, id: crate::get_u32(value, p + 4) });
            p += 8;
        } else {
            out.push(AclEntry { tag, perm, id: 0 });
            p += 4;
        }
    }
    Ok(out)
}

/// Encodes the on-disk form.
pub fn to_disk(entries: &[AclEntry]) -> Vec<u8> {
    let mut v = vec![0u8; 4];
    crate::put_u32(&mut v, 0, DISK_VERSION);
    for e in entries {
        let o = v.len();
        v.resize(o + if has_id(e.tag) { 8 } else { 4 }, 0);
        crate::put_u16(&mut v, o, e.tag);
        crate::put_u16(&mut v, o + 2, e.perm);
        if has_id(e.tag) {
            crate::put_u32(&mut v, o + 4, e.id);
        }
    }
    v
}

/// Whether `name` is one of the two ACL attributes.
pub fn is_acl_name(name: &[u8]) -> bool {
    name == b"system.posix_acl_access" || name == b"system.posix_acl_default"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_round_trip() {
        let entries = [
            AclEntry { tag: USER_OBJ, perm: 6, id: 0 },
            AclEntry { tag: USER, perm: 4, id: 1000 },
            AclEntry { tag: GROUP_OBJ, perm: 4, id: 0 },
            AclEntry { tag: GROUP, perm: 5, id: 2000 },
            AclEntry { tag: MASK, perm: 7, id: 0 },
            AclEntry { tag: OTHER, perm: 0, id: 0 },
        ];
        let disk = to_disk(&entries);
        // 4 short entries of 4 bytes and 2 full ones of 8, after a 4-byte header.
        assert_eq!(disk.len(), 4 + 4 * 4 + 2 * 8);
        assert_eq!(parse_disk(&disk).unwrap(), entries);
        let x = to_xattr(&entries);
        assert_eq!(x.len(), 4 + 6 * 8);
        assert_eq!(parse_xattr(&x).unwrap(), entries);
        assert!(parse_disk(&x).is_err());
        assert!(parse_xattr(&disk).is_err());
        assert!(parse_disk(&disk[..disk.len() - 2]).is_err());
    }
}

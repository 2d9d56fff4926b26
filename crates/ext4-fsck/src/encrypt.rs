//! Encryption policies: pass 1 reads the encryption context (`c` xattr)
//! of every inode with the encrypt flag and gives each distinct policy an
//! id; pass 2 requires the files of an encrypted directory to share its
//! policy (e2fsck's `encrypted_files.c`).
//!
//! Memory: one range per run of consecutive inodes sharing a policy, and
//! one entry per distinct policy.

use std::collections::HashMap;

use crate::ctx::{Ctx, Flow};
use crate::problem::Code;

/// A policy id, or one of the special values below.
pub(crate) type PolicyId = u32;
/// No (usable) encryption context: the inode counts as unencrypted.
pub(crate) const NO_POLICY: PolicyId = u32::MAX;
/// The context is malformed.
const CORRUPT_POLICY: PolicyId = u32::MAX - 1;
/// The context has a version this checker does not know; all such share one id.
const UNRECOGNIZED_POLICY: PolicyId = u32::MAX - 2;

/// Name index e2fsprogs gives no prefix to, under which the kernel stores
/// the encryption context (full name "c").
const CONTEXT_NAME: &[u8] = b"c";
/// Name indexes with a prefix (e2fsprogs' table); any other index has none.
const PREFIXED: [u8; 8] = [1, 2, 3, 4, 6, 7, 8, 10];

/// Policies of the encrypted inodes seen so far.
#[derive(Debug, Default)]
pub(crate) struct Policies {
    /// (first inode, last inode, policy), in inode order.
    ranges: Vec<(u32, u32, PolicyId)>,
    /// Distinct policies (their bytes without the nonce) and their ids.
    ids: HashMap<Vec<u8>, PolicyId>,
}

impl Policies {
    /// The policy of inode `ino` (`find_encryption_policy`).
    pub(crate) fn find(&self, ino: u32) -> PolicyId {
        let i = self.ranges.partition_point(|r| r.1 < ino);
        match self.ranges.get(i) {
            Some(&(first, _, p)) if first <= ino => p,
            _ => NO_POLICY,
        }
    }

    /// Records `ino`'s policy (inodes come in increasing order).
    fn append(&mut self, ino: u32, p: PolicyId) {
        if let Some(last) = self.ranges.last_mut() {
            if last.1 + 1 == ino && last.2 == p {
                last.1 = ino;
                return;
            }
        }
        self.ranges.push((ino, ino, p));
    }

    /// The id of the policy in context `v` (`fscrypt_context_to_policy`).
    fn id_of(&mut self, v: &[u8]) -> PolicyId {
        // Version 1: version, 2 modes, flags, 8-byte key descriptor, 16-byte nonce.
        // Version 2: version, 2 modes, flags, 4 reserved, 16-byte key id, 16-byte nonce.
        let policy_len = match (v.first(), v.len()) {
            (None | Some(0), _) => return CORRUPT_POLICY,
            (Some(1), 28) => 12,
            (Some(2), 40) => 24,
            (Some(1 | 2), _) => return CORRUPT_POLICY,
            _ => return UNRECOGNIZED_POLICY,
        };
        let next = self.ids.len() as PolicyId;
        *self.ids.entry(v[..policy_len].to_vec()).or_insert(next)
    }
}

/// The encryption context of inode `ino` (record `raw`), if it can be
/// read (`read_encryption_xattr`): the first attribute named "c".
fn context(ctx: &Ctx<'_, '_>, ino: u32, raw: &[u8]) -> crate::Result<Option<Vec<u8>>> {
    let Ok(attrs) = crate::xattr::read_all(&ctx.fs, ino, raw, true)? else { return Ok(None) };
    let a = attrs.into_iter().find(|a| !PREFIXED.contains(&a.index) && a.name == CONTEXT_NAME);
    // A value kept in an EA inode is not read: it counts as malformed.
    Ok(a.map(|a| a.value.unwrap_or_default()))
}

/// An inode with the encrypt flag (`add_encrypted_file`); `Ok(true)` when
/// the inode was cleared.
pub(crate) fn add_encrypted_file(ctx: &mut Ctx<'_, '_>, ino: u32, raw: &[u8], at: crate::problem::At) -> Flow<bool> {
    let p = match context(ctx, ino, raw)? {
        None => NO_POLICY,
        Some(v) => ctx.policies.id_of(&v),
    };
    match p {
        NO_POLICY => {
            ctx.ask(Code::MissingEncryptionXattr, at, format!("inode {ino} has the encrypt flag but no encryption context"));
        }
        CORRUPT_POLICY => {
            if ctx.ask(Code::CorruptEncryptionXattr, at, format!("encrypted inode {ino} has a malformed encryption context")) {
                return Ok(true);
            }
        }
        p => ctx.policies.append(ino, p),
    }
    Ok(false)
}

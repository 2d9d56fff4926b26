//! [`dump`]: the log as debugfs `logdump` walks it, for display: from the
//! log's start, block by block while the blocks carry the magic and the
//! expected transaction, each descriptor with its tags, each revoke block
//! with its records, each commit block with its time, every checksum
//! checked; then the fast-commit area's records (tag and length, the
//! `struct ext4_fc_tl` framing). Nothing here decides what a recovery
//! replays: that is [`crate::recovery`].

use ext4_ondisk::fast_commit as fc;

use crate::error::JournalError;
use crate::format::{
    BlockType, COMMIT_CHKSUM_OFFSET, COMMIT_SEC_OFFSET, FLAG_LAST_TAG, FLAG_SAME_UUID, HEADER_SIZE, Header, REVOKE_COUNT_OFFSET,
    REVOKE_HEADER_SIZE, TAG_UUID_SIZE, be32_at, be64_at, commit_block_checksum, crc32_be, data_block_checksum, descriptor_block_checksum,
    parse_tag,
};
use crate::geometry::JournalGeometry;
use crate::io::{JournalIo, read_block};

/// One tag of a descriptor block: a filesystem block and its journal copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpTag {
    /// Home block.
    pub fs_block: u64,
    /// Journal block of the copy.
    pub jblock: u64,
    /// Tag flags (`JBD2_FLAG_*`).
    pub flags: u32,
    /// Whether the copy matches the tag's checksum (`None` without csum v2/v3).
    pub checksum_ok: Option<bool>,
}

/// A block of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpBlock {
    /// A descriptor block and the copies it describes.
    Descriptor {
        /// Journal block.
        jblock: u64,
        /// Transaction.
        sequence: u32,
        /// Whether its tail checksum matches (`None` without csum v2/v3).
        checksum_ok: Option<bool>,
        /// Its tags.
        tags: Vec<DumpTag>,
    },
    /// A revoke block.
    Revoke {
        /// Journal block.
        jblock: u64,
        /// Transaction.
        sequence: u32,
        /// Whether its tail checksum matches (`None` without csum v2/v3).
        checksum_ok: Option<bool>,
        /// The revoked filesystem blocks.
        blocks: Vec<u64>,
    },
    /// A commit block.
    Commit {
        /// Journal block.
        jblock: u64,
        /// Transaction.
        sequence: u32,
        /// Commit time, seconds.
        sec: u64,
        /// Commit time, nanoseconds.
        nsec: u32,
        /// Whether its checksum (v1 over the transaction, or v2/v3 over the
        /// block) matches (`None` without journal checksums).
        checksum_ok: Option<bool>,
    },
}

/// Why the walk stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpEnd {
    /// The journal is clean (`s_start` is 0).
    Empty,
    /// A block without the jbd2 magic.
    NoMagic {
        /// Journal block.
        jblock: u64,
    },
    /// A block of another transaction.
    Sequence {
        /// Journal block.
        jblock: u64,
        /// Transaction found.
        found: u32,
        /// Transaction expected.
        expected: u32,
    },
    /// A block of an unknown type.
    UnknownType {
        /// Journal block.
        jblock: u64,
        /// `h_blocktype`.
        kind: u32,
    },
    /// The walk went once around the log.
    Lap {
        /// Journal block where it stopped.
        jblock: u64,
    },
}

/// A record of the fast-commit area (`struct ext4_fc_tl` and its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastCommitRecord {
    /// Journal block holding it.
    pub jblock: u64,
    /// Byte offset in the block.
    pub offset: usize,
    /// `fc_tag` (`EXT4_FC_TAG_*`).
    pub tag: u16,
    /// `fc_len`: bytes of the value.
    pub len: u16,
    /// The value (cut at the block's end if `len` runs past it), to be
    /// decoded with `ext4_ondisk::fast_commit::FcTag::parse`.
    pub value: Vec<u8>,
}

/// The log, walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDump {
    /// The blocks from the log's start, in order.
    pub blocks: Vec<DumpBlock>,
    /// Why the walk stopped.
    pub end: DumpEnd,
    /// The records of the fast-commit area, until the first unused one.
    pub fast_commit: Vec<FastCommitRecord>,
}

/// The kernel's name of a fast-commit tag.
pub fn fc_tag_name(tag: u16) -> &'static str {
    match tag {
        1 => "ADD_RANGE",
        2 => "DEL_RANGE",
        3 => "CREAT",
        4 => "LINK",
        5 => "UNLINK",
        6 => "INODE",
        7 => "PAD",
        8 => "TAIL",
        9 => "HEAD",
        _ => "unknown",
    }
}

/// Walks the log of a journal whose superblock is `geo` (validated).
pub fn dump(io: &mut impl JournalIo, geo: &JournalGeometry) -> Result<LogDump, JournalError> {
    let mut w = Walker { io, geo, buf: vec![0; geo.block_size as usize], data: vec![0; geo.block_size as usize], crc32: !0 };
    let (blocks, end) = if geo.start == 0 { (Vec::new(), DumpEnd::Empty) } else { w.log()? };
    let fast_commit = if geo.features.fast_commit { w.fast_commit()? } else { Vec::new() };
    Ok(LogDump { blocks, end, fast_commit })
}

struct Walker<'a, I> {
    io: &'a mut I,
    geo: &'a JournalGeometry,
    buf: Vec<u8>,
    data: Vec<u8>,
    /// The running v1 checksum of the transaction.
    crc32: u32,
}

impl<I: JournalIo> Walker<'_, I> {
    fn log(&mut self) -> Result<(Vec<DumpBlock>, DumpEnd), JournalError> {
        let (mut jblock, mut sequence, mut walked) = (self.geo.start, self.geo.sequence, 0u64);
        let mut out = Vec::new();
        loop {
            if walked >= self.geo.log_blocks() {
                return Ok((out, DumpEnd::Lap { jblock }));
            }
            read_block(self.io, jblock, &mut self.buf)?;
            let Some(h) = Header::parse(&self.buf) else { return Ok((out, DumpEnd::NoMagic { jblock })) };
            if h.h_sequence.get() != sequence {
                return Ok((out, DumpEnd::Sequence { jblock, found: h.h_sequence.get(), expected: sequence }));
            }
            let at = jblock;
            jblock = self.geo.next(jblock);
            walked += 1;
            match h.block_type() {
                Some(BlockType::Descriptor) => {
                    let block = self.descriptor(at, sequence, &mut jblock, &mut walked)?;
                    out.push(block);
                }
                Some(BlockType::Revoke) => out.push(self.revoke(at, sequence)),
                Some(BlockType::Commit) => {
                    out.push(self.commit(at, sequence));
                    sequence = sequence.wrapping_add(1);
                }
                _ => return Ok((out, DumpEnd::UnknownType { jblock: at, kind: h.h_blocktype.get() })),
            }
        }
    }

    fn tail_checksum_ok(&self) -> Option<bool> {
        let f = &self.geo.features;
        f.csum_v2_or_v3().then(|| {
            let n = self.buf.len() - crate::format::BLOCK_TAIL_SIZE;
            be32_at(&self.buf, n) == descriptor_block_checksum(self.geo.csum_seed, &self.buf)
        })
    }

    fn descriptor(&mut self, at: u64, sequence: u32, next: &mut u64, walked: &mut u64) -> Result<DumpBlock, JournalError> {
        let f = self.geo.features;
        let checksum_ok = self.tail_checksum_ok();
        if f.checksum_v1 {
            self.crc32 = crc32_be(self.crc32, &self.buf);
        }
        let size = self.buf.len() - f.tail_bytes();
        let mut pos = HEADER_SIZE;
        let mut tags = Vec::new();
        while pos + f.tag_bytes() <= size {
            let Some(t) = parse_tag(&self.buf[pos..], f.csum_v3, f.csum_v2, f.bit64) else { break };
            let jblock = *next;
            *next = self.geo.next(jblock);
            *walked += 1;
            read_block(self.io, jblock, &mut self.data)?;
            if f.checksum_v1 {
                self.crc32 = crc32_be(self.crc32, &self.data);
            }
            let checksum_ok = f.csum_v2_or_v3().then(|| {
                let sum = data_block_checksum(self.geo.csum_seed, sequence, &self.data);
                (if f.csum_v2 { sum & 0xFFFF } else { sum }) == t.checksum
            });
            tags.push(DumpTag { fs_block: t.blocknr, jblock, flags: t.flags, checksum_ok });
            pos += f.tag_bytes();
            if t.flags & FLAG_SAME_UUID == 0 {
                pos += TAG_UUID_SIZE;
            }
            if t.flags & FLAG_LAST_TAG != 0 {
                break;
            }
        }
        Ok(DumpBlock::Descriptor { jblock: at, sequence, checksum_ok, tags })
    }

    fn revoke(&mut self, at: u64, sequence: u32) -> DumpBlock {
        let f = self.geo.features;
        let count = (be32_at(&self.buf, REVOKE_COUNT_OFFSET) as usize).min(self.buf.len() - f.tail_bytes());
        let rec = f.revoke_record_bytes();
        let blocks = (REVOKE_HEADER_SIZE..)
            .step_by(rec)
            .take_while(|off| off + rec <= count)
            .map(|off| if rec == 4 { u64::from(be32_at(&self.buf, off)) } else { be64_at(&self.buf, off) })
            .collect();
        DumpBlock::Revoke { jblock: at, sequence, checksum_ok: self.tail_checksum_ok(), blocks }
    }

    fn commit(&mut self, at: u64, sequence: u32) -> DumpBlock {
        let f = self.geo.features;
        let found = be32_at(&self.buf, COMMIT_CHKSUM_OFFSET);
        let checksum_ok = if f.checksum_v1 {
            let (kind, size) = (self.buf[12], self.buf[13]);
            let ok = (kind == crate::format::CHECKSUM_CRC32 && size == crate::format::CRC32_CHKSUM_SIZE && found == self.crc32)
                || (kind == 0 && size == 0 && found == 0);
            Some(ok)
        } else if f.csum_v2_or_v3() {
            Some(found == commit_block_checksum(self.geo.csum_seed, &self.buf))
        } else {
            None
        };
        self.crc32 = !0;
        let sec = be64_at(&self.buf, COMMIT_SEC_OFFSET);
        let nsec = be32_at(&self.buf, COMMIT_SEC_OFFSET + 8);
        DumpBlock::Commit { jblock: at, sequence, sec, nsec, checksum_ok }
    }

    /// The records of the fast-commit area (`j_fc_first = j_last + 1` to
    /// the end of the journal), block by block, until a tag that no kernel
    /// writes (an unused block reads as tag 0).
    fn fast_commit(&mut self) -> Result<Vec<FastCommitRecord>, JournalError> {
        let mut out = Vec::new();
        for jblock in self.geo.last + 1..self.geo.maxlen {
            read_block(self.io, jblock, &mut self.buf)?;
            let mut offset = 0;
            while let Some((tag, len)) = fc::read_tl(&self.buf, offset) {
                if tag == 0 || tag > fc::TAG_HEAD {
                    return Ok(out);
                }
                let start = offset + fc::TL_SIZE;
                let value = self.buf[start..(start + usize::from(len)).min(self.buf.len())].to_vec();
                out.push(FastCommitRecord { jblock, offset, tag, len, value });
                if tag == fc::TAG_PAD {
                    break;
                }
                offset = start + usize::from(len);
            }
        }
        Ok(out)
    }
}

//! The fast-commit area: the journal blocks after the main log where ext4
//! appends fast commits for the running transaction, read as the kernel's
//! recovery reads it (`fc_do_one_pass` calling `ext4_fc_replay_scan`).
//!
//! Rules, in the kernel's order:
//!
//! * The area is read only when the log needs recovery, after the main
//!   passes, and holds fast commits for exactly one transaction: the first
//!   one not found in the log (`info->end_transaction`).
//! * The first used block (`j_fc_first`, one past the main log's end) must
//!   open with a HEAD record whose tid is that transaction; without a head
//!   the area is empty, and a head for another tid means it is stale:
//!   nothing is replayed. Blocks are consumed in order while records stay
//!   valid; an area valid to its last block makes the kernel read the
//!   block after it (`j_fc_last` is `s_maxlen`), which fails the recovery
//!   when the journal ends there.
//! * Records are checked for length ([`FcTag::parse`]); the crc of each
//!   fast commit covers its records since the previous tail and the tail's
//!   header and tid. Records up to the last tail whose tid and crc match are
//!   replayed. The first bad record or tail after a valid tail ends the
//!   area; one before any valid tail fails the recovery, as the kernel
//!   fails it (`-ECANCELED`, `-EFSBADCRC`), and so does a head asking for
//!   features (`-EOPNOTSUPP`).
//!
//! This module finds the records; applying them is the filesystem's work.

use ext4_ondisk::fast_commit::{FcTag, SUPPORTED_FEATURES, TAG_HEAD, TAIL_CRC_COVERED, TL_SIZE, fc_crc, read_tl};
use ext4_ondisk::{FormatError, Structure};

use crate::error::{JournalError, LogProblem};
use crate::geometry::JournalGeometry;
use crate::io::{JournalIo, read_block};

/// One record of a valid fast commit, as found in the area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FcRecord {
    /// Journal block holding it.
    pub jblock: u64,
    /// Its tag (`EXT4_FC_TAG_*`).
    pub tag: u16,
    /// Its value bytes.
    pub value: Vec<u8>,
}

impl FcRecord {
    /// The decoded record (its length was checked when the area was read).
    pub fn decode(&self, inode_size: usize) -> Result<FcTag<'_>, FormatError> {
        FcTag::parse(self.tag, &self.value, inode_size)
    }
}

/// The records to replay, in order, each fast commit ending in its tail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FastCommits {
    /// The transaction the fast commits follow.
    pub tid: u32,
    /// Records of the complete fast commits (HEAD, PAD and TAIL included).
    pub records: Vec<FcRecord>,
    /// Number of complete fast commits (valid tails).
    pub commits: usize,
}

impl FastCommits {
    /// Whether there is anything to replay.
    pub fn is_empty(&self) -> bool {
        self.commits == 0
    }
}

/// Reads the fast-commit area of a journal that needs recovery, for
/// transaction `tid` (the recovery's end sequence), on a filesystem whose
/// inodes are `inode_size` bytes. An area that is absent, stale or empty
/// gives no records.
pub fn scan(io: &mut impl JournalIo, geo: &JournalGeometry, tid: u32, inode_size: usize) -> Result<FastCommits, JournalError> {
    let mut scan = Scan { tid, inode_size, ..Scan::default() };
    if !geo.features.fast_commit || geo.start == 0 {
        return Ok(scan.finish());
    }
    let mut buf = vec![0u8; geo.block_size as usize];
    // The kernel's area runs from one past the main log's end
    // (`j_fc_first`) to `s_maxlen` itself (`j_fc_last`), a block past the
    // area: a scan that gets there reads beyond a journal of `s_maxlen`
    // blocks, and `jread` fails the recovery.
    for jblock in geo.last + 1..=geo.maxlen {
        if jblock >= io.len_blocks() {
            return Err(corrupt(jblock, tid, LogProblem::FastCommitPastJournal { len: io.len_blocks() }));
        }
        read_block(io, jblock, &mut buf)?;
        if let Step::Stop = scan.block(jblock, &buf)? {
            break;
        }
    }
    Ok(scan.finish())
}

/// Whether to read the next block.
enum Step {
    Next,
    Stop,
}

/// `struct ext4_fc_replay_state` of the scan pass.
#[derive(Default)]
struct Scan {
    tid: u32,
    inode_size: usize,
    /// Blocks consumed since the head (`fc_replay_expected_off`).
    blocks: u64,
    /// The running crc since the last tail.
    crc: u32,
    /// Records seen, and records up to the last valid tail.
    records: Vec<FcRecord>,
    valid: usize,
    commits: usize,
}

impl Scan {
    /// `ext4_fc_replay_scan` for the next block of the area.
    fn block(&mut self, jblock: u64, buf: &[u8]) -> Result<Step, JournalError> {
        // An area whose first block opens with no head holds nothing
        // (`JBD2_FC_REPLAY_STOP` is 0).
        if self.blocks == 0 && read_tl(buf, 0).is_none_or(|(tag, _)| tag != TAG_HEAD) {
            return Ok(Step::Stop);
        }
        self.blocks += 1;
        let mut pos = 0;
        while let Some((tag, len)) = read_tl(buf, pos) {
            let value = &buf[pos + TL_SIZE..];
            let parsed = match value.get(..usize::from(len)) {
                Some(v) => FcTag::parse(tag, v, self.inode_size),
                None => Err(FormatError::Truncated { structure: Structure::FastCommit, len: value.len(), need: len.into() }),
            };
            let tag_value = match parsed {
                Ok(t) => t,
                Err(e) => return self.stop_or_fail(jblock, LogProblem::FastCommitRecord { offset: pos, reason: e.to_string() }),
            };
            let record = &buf[pos..pos + TL_SIZE + usize::from(len)];
            if let Step::Stop = self.record(jblock, tag, tag_value, record)? {
                return Ok(Step::Stop);
            }
            pos += record.len();
        }
        Ok(Step::Next)
    }

    /// Handles one valid-length record (`bytes` is its header and value).
    fn record(&mut self, jblock: u64, code: u16, tag: FcTag<'_>, bytes: &[u8]) -> Result<Step, JournalError> {
        match tag {
            FcTag::Head { features, tid } => {
                if features & !SUPPORTED_FEATURES != 0 {
                    return Err(corrupt(jblock, self.tid, LogProblem::FastCommitFeatures { features }));
                }
                if tid != self.tid {
                    return Ok(Step::Stop);
                }
            }
            FcTag::Tail { tid, crc } => {
                let computed = fc_crc(self.crc, &bytes[..TL_SIZE + TAIL_CRC_COVERED]);
                self.crc = 0;
                self.keep(jblock, code, bytes);
                if tid != self.tid || crc != computed {
                    let problem = LogProblem::FastCommitTail { tid, expected_tid: self.tid, crc, computed };
                    return self.stop_or_fail(jblock, problem);
                }
                self.valid = self.records.len();
                self.commits += 1;
                return Ok(Step::Next);
            }
            _ => {}
        }
        self.crc = fc_crc(self.crc, bytes);
        self.keep(jblock, code, bytes);
        Ok(Step::Next)
    }

    fn keep(&mut self, jblock: u64, tag: u16, bytes: &[u8]) {
        self.records.push(FcRecord { jblock, tag, value: bytes[TL_SIZE..].to_vec() });
    }

    /// After a valid tail a bad record ends the area (`JBD2_FC_REPLAY_STOP`);
    /// before one it fails the recovery.
    fn stop_or_fail(&self, jblock: u64, problem: LogProblem) -> Result<Step, JournalError> {
        if self.commits > 0 { Ok(Step::Stop) } else { Err(corrupt(jblock, self.tid, problem)) }
    }

    fn finish(mut self) -> FastCommits {
        self.records.truncate(self.valid);
        FastCommits { tid: self.tid, records: self.records, commits: self.commits }
    }
}

fn corrupt(jblock: u64, sequence: u32, problem: LogProblem) -> JournalError {
    JournalError::Corrupt { jblock, sequence, problem }
}

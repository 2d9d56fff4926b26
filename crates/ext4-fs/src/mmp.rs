//! Multi-mount protection (`mmp`), as e2fsprogs' `ext2fs_mmp_start`,
//! `ext2fs_mmp_update` and `ext2fs_mmp_stop` keep it: before a writable
//! open writes anything, the MMP block must be clean, or keep the same
//! sequence through twice the check interval (no node updates it); then
//! this node writes a sequence of its own, waits the same time, checks that
//! nobody overwrote it, and holds the filesystem with the "fsck" sequence
//! (which the kernel and e2fsprogs refuse to share) until close, when the
//! clean sequence goes back. While open, the block's time is renewed at
//! commits at most once a minute, after checking that it is still ours.
//!
//! A kernel that has the filesystem mounted advances the sequence every
//! update interval (kmmpd): the open sees it change and is refused.

use std::time::{Duration, Instant};

use ext4_ondisk::mmp::{MMP_SEQ_CLEAN, MMP_SEQ_FSCK, MMP_SEQ_MAX, MmpBlock};
use ext4_ondisk::{Incompat, Structure};
use zerocopy::{FromZeros, IntoBytes};

use crate::error::{Error, Location, Result};
use crate::fs::Filesystem;

/// `EXT4_MMP_MIN_CHECK_INTERVAL`, seconds.
const MIN_CHECK_INTERVAL: u64 = 5;
/// `EXT4_MMP_MAX_UPDATE_INTERVAL`, seconds: a longer interval read from a
/// (possibly hostile) image is cut to this, so that a wait stays bounded.
const MAX_CHECK_INTERVAL: u64 = 300;
/// `EXT2_MIN_MMP_UPDATE_INTERVAL`: the block's time is renewed at most this often.
const UPDATE_EVERY: Duration = Duration::from_secs(60);
/// How often a wait looks at the block again (a change ends it at once).
const POLL: Duration = Duration::from_millis(250);

/// The MMP block this open holds.
pub(crate) struct Mmp {
    /// Device block of the MMP block.
    block: u64,
    /// What this open last wrote there.
    written: MmpBlock,
    /// When it wrote it.
    at: Instant,
}

/// Takes the MMP block of a writable open (`ext2fs_mmp_start`), or returns
/// `None` when the filesystem has no `mmp` feature.
pub(crate) fn start(fs: &Filesystem) -> Result<Option<Mmp>> {
    if !fs.geo.features.incompat.contains(Incompat::MMP) {
        return Ok(None);
    }
    let block = fs.sb.s_mmp_block.get();
    if block <= u64::from(fs.geo.first_data_block) || block >= fs.geo.blocks_count {
        return Err(Error::corrupt(Structure::Mmp, Location::Superblock, format!("s_mmp_block {block} is outside the filesystem")));
    }
    let mut m = read(fs, block)?;
    let mut interval = u64::from(fs.sb.s_mmp_interval.get()).max(MIN_CHECK_INTERVAL);
    let seq = m.mmp_seq.get();
    if seq == MMP_SEQ_FSCK {
        return Err(busy(
            &m,
            "e2fsck or another program holds it (MMP sequence \"fsck\"); if nothing does, `tune2fs -f -E clear_mmp` releases it",
        ));
    }
    if seq > MMP_SEQ_FSCK && seq != MMP_SEQ_CLEAN {
        return Err(Error::corrupt(Structure::Mmp, Location::Block(block), format!("unknown MMP sequence {seq:#x}")));
    }
    if seq != MMP_SEQ_CLEAN {
        interval = interval.max(u64::from(m.mmp_check_interval.get())).min(MAX_CHECK_INTERVAL);
        m = watch(fs, block, seq, wait_time(interval))?;
    }
    let ours = new_seq();
    m.mmp_seq.set(ours);
    m.mmp_nodename = name_field(&nodename());
    m.mmp_bdevname = name_field("ext4-rs");
    write(fs, block, &mut m)?;
    watch(fs, block, ours, wait_time(interval))?;
    m.mmp_seq.set(MMP_SEQ_FSCK);
    write(fs, block, &mut m)?;
    Ok(Some(Mmp { block, written: m, at: Instant::now() }))
}

/// Renews the block's time at most once a minute, after checking that
/// nobody else wrote it (`ext2fs_mmp_update`).
pub(crate) fn update(fs: &mut Filesystem) -> Result<()> {
    let Some(mut m) = fs.mmp.take() else { return Ok(()) };
    if m.at.elapsed() < UPDATE_EVERY {
        fs.mmp = Some(m);
        return Ok(());
    }
    let r = still_ours(fs, &m).and_then(|()| write(fs, m.block, &mut m.written));
    if r.is_ok() {
        m.at = Instant::now();
        fs.mmp = Some(m);
    }
    r
}

/// Gives the block back with the clean sequence, if it is still ours
/// (`ext2fs_mmp_stop`).
pub(crate) fn stop(fs: &mut Filesystem) -> Result<()> {
    let Some(mut m) = fs.mmp.take() else { return Ok(()) };
    still_ours(fs, &m)?;
    m.written.mmp_seq.set(MMP_SEQ_CLEAN);
    write(fs, m.block, &mut m.written)
}

/// Writes a fresh, clean MMP block at `block` (`ext2fs_mmp_reset`): this
/// host's name, the update interval of the superblock (at least 5 s),
/// the time of writing.
pub(crate) fn reset(fs: &Filesystem, block: u64) -> Result<()> {
    let mut m = MmpBlock::new_zeroed();
    m.mmp_magic.set(ext4_ondisk::mmp::MMP_MAGIC);
    m.mmp_seq.set(MMP_SEQ_CLEAN);
    m.mmp_nodename = name_field(&nodename());
    m.mmp_bdevname = name_field("ext4-rs");
    m.mmp_check_interval.set(fs.sb.s_mmp_interval.get().max(MIN_CHECK_INTERVAL as u16));
    fs.dev.write_at(block * u64::from(fs.geo.block_size), &vec![0u8; fs.block_size()])?;
    write(fs, block, &mut m)
}

/// Reads and checks the MMP block at `block` (`ext2fs_mmp_read`).
pub(crate) fn read_block(fs: &Filesystem, block: u64) -> Result<MmpBlock> {
    read(fs, block)
}

/// The wait of `ext2fs_mmp_start` for a check interval: twice it and a
/// second, at most a minute more than it.
fn wait_time(interval: u64) -> Duration {
    Duration::from_secs((2 * interval + 1).min(interval + 60))
}

/// Reads the block again and again for `wait`: a sequence other than `seq`
/// means another node is writing it.
fn watch(fs: &Filesystem, block: u64, seq: u32, wait: Duration) -> Result<MmpBlock> {
    let end = Instant::now() + wait;
    loop {
        let m = read(fs, block)?;
        if m.mmp_seq.get() != seq {
            let why =
                format!("another node updates its MMP sequence (it changed during this node's {} s check): it is in use", wait.as_secs());
            return Err(busy(&m, &why));
        }
        let now = Instant::now();
        if now >= end {
            return Ok(m);
        }
        std::thread::sleep(POLL.min(end - now));
    }
}

fn still_ours(fs: &Filesystem, m: &Mmp) -> Result<()> {
    let found = read(fs, m.block)?;
    if found.as_bytes() != m.written.as_bytes() {
        return Err(busy(&found, "another node wrote its MMP block while this one held it; changes are at risk"));
    }
    Ok(())
}

/// Reads and checks the MMP block from the device (never from the cache:
/// another node writes it).
fn read(fs: &Filesystem, block: u64) -> Result<MmpBlock> {
    let mut buf = vec![0u8; fs.block_size()];
    fs.dev.read_at(block * u64::from(fs.geo.block_size), &mut buf)?;
    let seed = fs.sb.has_metadata_csum().then(|| fs.sb.csum_seed());
    MmpBlock::parse(&buf, seed).map_err(|e| Error::format(&e, Location::Block(block)))
}

/// Writes `m` with the current time and a fresh checksum, and flushes.
fn write(fs: &Filesystem, block: u64, m: &mut MmpBlock) -> Result<()> {
    let now = crate::time::now();
    m.mmp_time.set(now.secs.max(0) as u64);
    if fs.sb.has_metadata_csum() {
        let c = m.compute_checksum(fs.sb.csum_seed());
        m.mmp_checksum.set(c);
    }
    fs.dev.write_at(block * u64::from(fs.geo.block_size), m.as_bytes())?;
    fs.dev.flush()?;
    Ok(())
}

/// The refusal of a filesystem another node holds, naming the node.
fn busy(m: &MmpBlock, why: &str) -> Error {
    let name = |b: &[u8]| String::from_utf8_lossy(&b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]).into_owned();
    Error::Busy(format!(
        "multi-mount protection: the filesystem was last taken by node {:?} (device {:?}); {why}",
        name(&m.mmp_nodename),
        name(&m.mmp_bdevname)
    ))
}

/// A sequence number for this open (`ext2fs_mmp_new_seq`): any value up to
/// `EXT4_MMP_SEQ_MAX`, different between nodes and opens.
fn new_seq() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.write_u32(std::process::id());
    (h.finish() as u32) % MMP_SEQ_MAX
}

/// This host's name, as `gethostname` gives it.
fn nodename() -> String {
    #[cfg(unix)]
    {
        rustix::system::uname().nodename().to_string_lossy().into_owned()
    }
    #[cfg(not(unix))]
    {
        "unknown host".to_string()
    }
}

/// `s` in a NUL-padded field, cut to fit.
fn name_field<const N: usize>(s: &str) -> [u8; N] {
    let mut f = [0u8; N];
    let n = s.len().min(N);
    f[..n].copy_from_slice(&s.as_bytes()[..n]);
    f
}

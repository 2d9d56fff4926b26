//! External journal devices (`mke2fs -O journal_dev`): what one holds, and
//! attaching one to the filesystem that names it in `s_journal_uuid`, with
//! the checks of the kernel's `ext4_get_dev_journal` and e2fsck.

use ext4_blockdev::BlockDevice;
use ext4_jbd2::format::JournalSuperblock;
use ext4_jbd2::{DeviceJournal, JournalGeometry};
use ext4_ondisk::Structure;
use ext4_ondisk::superblock::{JournalDevice, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, Superblock};

use crate::error::{Error, Location, Result};
use crate::journal::journal_error;

/// What an external journal device holds: its ext4 superblock (size and
/// identity) and its jbd2 superblock (users, log, features).
#[derive(Clone)]
pub struct JournalDeviceInfo {
    /// The validated numbers of its ext4 superblock.
    pub device: JournalDevice,
    /// Its ext4 superblock as stored.
    pub superblock: Superblock,
    /// Its jbd2 superblock as stored.
    pub journal: JournalSuperblock,
    /// The jbd2 superblock validated, or why it cannot be used.
    pub geometry: std::result::Result<JournalGeometry, String>,
}

impl std::fmt::Debug for JournalDeviceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalDeviceInfo").field("device", &self.device).field("geometry", &self.geometry).finish_non_exhaustive()
    }
}

impl JournalDeviceInfo {
    /// The UUIDs of the filesystems using the journal (`s_users`, `s_nr_users` of them, at most 48).
    pub fn users(&self) -> Vec<[u8; 16]> {
        let n = (self.journal.s_nr_users.get() as usize).min(self.journal.s_users.len() / 16);
        self.journal.s_users.chunks_exact(16).take(n).map(|c| c.try_into().expect("16 bytes")).collect()
    }
}

fn device_error(detail: impl Into<String>) -> Error {
    Error::corrupt(Structure::Superblock, Location::JournalDevice, detail)
}

/// Reads the ext4 superblock of `dev` if it is an external journal device:
/// `None` when it is not one (no ext4 magic, or no `journal_dev`).
fn journal_device_superblock(dev: &dyn BlockDevice) -> Result<Option<(Superblock, JournalDevice)>> {
    if dev.len() < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE as u64 {
        return Ok(None);
    }
    let mut buf = vec![0u8; SUPERBLOCK_SIZE];
    dev.read_at(SUPERBLOCK_OFFSET, &mut buf)?;
    let sb = Superblock::from_bytes(&buf).map_err(|e| Error::format(&e, Location::JournalDevice))?;
    let is_journal =
        sb.s_magic.get() == ext4_ondisk::superblock::EXT4_MAGIC && sb.features().incompat.contains(ext4_ondisk::Incompat::JOURNAL_DEV);
    if !is_journal {
        return Ok(None);
    }
    // "external journal has corrupt superblock"
    sb.verify_checksum().map_err(|e| Error::format(&e, Location::JournalDevice))?;
    let jd = JournalDevice::new(&sb).map_err(|e| Error::format(&e, Location::JournalDevice))?;
    if dev.len() / u64::from(jd.block_size) < jd.blocks_count {
        return Err(device_error(format!("the journal device has {} blocks but holds only {} bytes", jd.blocks_count, dev.len())));
    }
    Ok(Some((sb, jd)))
}

/// Reads what the external journal device `dev` holds; `None` when `dev`
/// is not one.
pub fn read_journal_device(dev: &dyn BlockDevice) -> Result<Option<JournalDeviceInfo>> {
    let Some((superblock, device)) = journal_device_superblock(dev)? else { return Ok(None) };
    let mut io = DeviceJournal::external(dev, device.block_size, device.blocks_count);
    let journal = ext4_jbd2::read_superblock(&mut io, device.block_size).map_err(journal_error)?;
    let geometry = check_log(&journal, &device).map_err(|e| e.to_string());
    Ok(Some(JournalDeviceInfo { device, superblock, journal, geometry }))
}

/// The jbd2 superblock of an external device validated: `journal_load`'s
/// checks, and a log that starts after the superblock.
fn check_log(jsb: &JournalSuperblock, jd: &JournalDevice) -> Result<JournalGeometry> {
    let geo = JournalGeometry::new(jsb, jd.block_size, jd.blocks_count).map_err(journal_error)?;
    if geo.first <= ext4_jbd2::superblock_block(jd.block_size) {
        return Err(device_error(format!("the log starts at block {}, not after the journal superblock", geo.first)));
    }
    Ok(geo)
}

/// An external journal device attached to an open filesystem.
pub(crate) struct ExternalJournal {
    /// The device.
    pub(crate) dev: Box<dyn BlockDevice>,
    /// Its blocks (the journal's length; journal block numbers are device block numbers).
    pub(crate) blocks: u64,
}

impl ExternalJournal {
    /// The journal as block I/O.
    pub(crate) fn io(&self, block_size: u32) -> DeviceJournal<'_> {
        DeviceJournal::external(&*self.dev, block_size, self.blocks)
    }
}

/// Checks that `dev` is the external journal of the filesystem whose
/// superblock is `fs_sb` (block size `block_size`), as the kernel's
/// `ext4_get_dev_journal` does: a journal device whose UUID is the one the
/// filesystem names, of the same block size, used by exactly one filesystem.
pub(crate) fn attach(fs_sb: &Superblock, block_size: u32, dev: Box<dyn BlockDevice>) -> Result<ExternalJournal> {
    let Some((_, jd)) = journal_device_superblock(&*dev)? else {
        return Err(Error::InvalidArgument("the journal device given is not an external journal (no journal_dev superblock)".into()));
    };
    if jd.uuid != fs_sb.s_journal_uuid {
        return Err(Error::InvalidArgument(format!(
            "the journal device given has UUID {}, the filesystem's journal is {}",
            uuid_text(&jd.uuid),
            uuid_text(&fs_sb.s_journal_uuid)
        )));
    }
    if jd.block_size != block_size {
        return Err(Error::InvalidArgument(format!(
            "the journal device has {}-byte blocks, the filesystem {block_size}-byte ones",
            jd.block_size
        )));
    }
    let ext = ExternalJournal { dev, blocks: jd.blocks_count };
    let jsb = ext4_jbd2::read_superblock(&mut ext.io(block_size), block_size).map_err(journal_error)?;
    let users = jsb.s_nr_users.get();
    if users != 1 {
        return Err(Error::Unsupported(format!("an external journal with {users} users (the kernel takes exactly one)")));
    }
    Ok(ext)
}

/// A UUID as text.
pub(crate) fn uuid_text(u: &[u8; 16]) -> String {
    let h: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", h[..4].concat(), h[4..6].concat(), h[6..8].concat(), h[8..10].concat(), h[10..].concat())
}

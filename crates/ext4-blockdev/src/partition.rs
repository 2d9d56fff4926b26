//! Partition tables: where each partition of a disk lies, read from an MBR
//! (with the logical partitions of an extended partition) or a GPT, and
//! partition N opened as a [`WindowDevice`].
//!
//! Partitions are numbered as Linux numbers them (`/dev/sdaN`,
//! `/dev/loop0pN`): an MBR's four slots are 1 to 4 wherever they are
//! empty, logical partitions 5 and up in the order of their chain; a GPT
//! entry's number is its index in the entry array plus one.
//!
//! A table is read with every count, offset and checksum checked first
//! (the GPT header and entry array CRC32s, the backup header when the
//! primary one is damaged); a damaged table is a [`PartitionError`], never
//! a panic, and nothing is allocated beyond [`MAX_GPT_ENTRY_BYTES`].

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, KnownLayout};

use crate::{BlockDevice, DeviceError, WindowDevice};

/// The most bytes of GPT entries read (the usual array is 16 KiB).
pub const MAX_GPT_ENTRY_BYTES: u64 = 4 << 20;

/// Logical partitions followed in an extended partition's chain at most.
const MAX_LOGICAL: u32 = 256;

/// Which kind of table a disk holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// A DOS master boot record.
    Mbr,
    /// A GUID partition table (behind a protective MBR).
    Gpt,
}

impl std::fmt::Display for TableKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Mbr => "MBR",
            Self::Gpt => "GPT",
        })
    }
}

/// What a partition says it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionType {
    /// An MBR system id (`0x83` Linux, `0x05` extended, ...).
    Mbr(u8),
    /// A GPT partition type GUID, as stored (mixed endian).
    Gpt([u8; 16]),
}

impl PartitionType {
    /// The usual name of the type, if it is a common one.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            Self::Mbr(id) => mbr_type_name(*id),
            Self::Gpt(guid) => GPT_TYPE_NAMES.iter().find(|(g, _)| *g == format_guid(guid)).map(|(_, n)| *n),
        }
    }

    /// Whether this MBR entry is an extended partition (a container of logical ones).
    pub fn is_extended(&self) -> bool {
        matches!(self, Self::Mbr(0x05 | 0x0f | 0x85))
    }
}

impl std::fmt::Display for PartitionType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Mbr(id) => write!(f, "0x{id:02x}")?,
            Self::Gpt(guid) => f.write_str(&format_guid(guid))?,
        }
        match self.name() {
            Some(n) => write!(f, " ({n})"),
            None => Ok(()),
        }
    }
}

/// The names of common MBR system ids.
fn mbr_type_name(id: u8) -> Option<&'static str> {
    Some(match id {
        0x05 | 0x0f | 0x85 => "extended",
        0x06 | 0x0e => "FAT16",
        0x07 => "NTFS/exFAT",
        0x0b | 0x0c => "FAT32",
        0x82 => "Linux swap",
        0x83 => "Linux",
        0x8e => "Linux LVM",
        0xef => "EFI System",
        0xfd => "Linux RAID",
        _ => return None,
    })
}

/// The names of common GPT type GUIDs.
const GPT_TYPE_NAMES: &[(&str, &str)] = &[
    ("0FC63DAF-8483-4772-8E79-3D69D8477DE4", "Linux filesystem"),
    ("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI System"),
    ("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "Microsoft basic data"),
    ("0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "Linux swap"),
    ("21686148-6449-6E6F-744E-656564454649", "BIOS boot"),
    ("E6D6D379-F507-44C2-A23C-238F2A3DF928", "Linux LVM"),
    ("A19D880F-05FC-4D3B-A006-743F0F84911E", "Linux RAID"),
];

/// A GUID in its usual text form: the first three fields are stored little endian.
pub fn format_guid(g: &[u8; 16]) -> String {
    let hex = |bytes: &mut dyn Iterator<Item = &u8>| bytes.map(|b| format!("{b:02X}")).collect::<String>();
    format!(
        "{}-{}-{}-{}-{}",
        hex(&mut g[0..4].iter().rev()),
        hex(&mut g[4..6].iter().rev()),
        hex(&mut g[6..8].iter().rev()),
        hex(&mut g[8..10].iter()),
        hex(&mut g[10..16].iter())
    )
}

/// One partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Its number, as Linux numbers it (from 1).
    pub number: u32,
    /// Byte offset of its first byte on the disk.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
    /// What it says it holds.
    pub kind: PartitionType,
    /// Its GPT name (empty for MBR partitions).
    pub name: String,
}

/// A disk's partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionTable {
    /// MBR or GPT.
    pub kind: TableKind,
    /// The sector size the table counts in.
    pub sector_size: u32,
    /// The partitions in number order (empty slots left out).
    pub partitions: Vec<Partition>,
}

impl PartitionTable {
    /// Partition `number`, if the table has it.
    pub fn get(&self, number: u32) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.number == number)
    }
}

/// Why a partition table could not be read or a partition opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PartitionError {
    /// The device failed.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The table is damaged.
    #[error("damaged {table} partition table: {reason}")]
    Corrupt {
        /// Which table.
        table: TableKind,
        /// What is wrong with it.
        reason: String,
    },
    /// The disk has no partition table.
    #[error("no partition table (no MBR or GPT)")]
    NoTable,
    /// The table has no partition of that number.
    #[error("no partition {number} in the {table} partition table (partitions: {})", list(available))]
    NoSuchPartition {
        /// The number asked for.
        number: u32,
        /// Which table.
        table: TableKind,
        /// The numbers it has.
        available: Vec<u32>,
    },
    /// The partition runs past the end of the disk.
    #[error("partition {number} ends at byte {end}, past the end of the disk ({device_len} bytes)")]
    PastEnd {
        /// The partition.
        number: u32,
        /// Its end, in bytes.
        end: u64,
        /// The disk's length.
        device_len: u64,
    },
}

/// `1, 2, 5` or `none`.
fn list(numbers: &[u32]) -> String {
    if numbers.is_empty() {
        return "none".into();
    }
    numbers.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

/// Result of partition table reads.
pub type Result<T, E = PartitionError> = std::result::Result<T, E>;

fn corrupt(table: TableKind, reason: impl Into<String>) -> PartitionError {
    PartitionError::Corrupt { table, reason: reason.into() }
}

/// An MBR partition entry (16 bytes at 446 + 16 * slot).
#[derive(FromBytes, KnownLayout, Immutable)]
#[repr(C)]
struct MbrEntry {
    /// 0x80 bootable, 0 not; anything else means this is no MBR.
    status: u8,
    chs_first: [u8; 3],
    /// The system id.
    kind: u8,
    chs_last: [u8; 3],
    /// First sector, relative to the table's base.
    start_lba: U32,
    /// Length in sectors.
    sectors: U32,
}
const _: () = assert!(size_of::<MbrEntry>() == 16);

/// The GPT header (92 bytes at LBA 1, and its backup at the last LBA).
#[derive(FromBytes, KnownLayout, Immutable)]
#[repr(C)]
struct GptHeader {
    signature: [u8; 8],
    revision: U32,
    header_size: U32,
    header_crc32: U32,
    reserved: U32,
    my_lba: U64,
    alternate_lba: U64,
    first_usable_lba: U64,
    last_usable_lba: U64,
    disk_guid: [u8; 16],
    entries_lba: U64,
    entry_count: U32,
    entry_size: U32,
    entries_crc32: U32,
}
const _: () = assert!(size_of::<GptHeader>() == 92);

/// A GPT partition entry (the first 128 bytes of each entry).
#[derive(FromBytes, KnownLayout, Immutable)]
#[repr(C)]
struct GptEntry {
    type_guid: [u8; 16],
    unique_guid: [u8; 16],
    first_lba: U64,
    /// Inclusive.
    last_lba: U64,
    attributes: U64,
    name: [U16; 36],
}
const _: () = assert!(size_of::<GptEntry>() == 128);

const GPT_SIGNATURE: &[u8; 8] = b"EFI PART";
const MBR_SIGNATURE: [u8; 2] = [0x55, 0xaa];
const PROTECTIVE: u8 = 0xee;

/// Reads the partition table of `dev`: `None` when sector 0 holds no MBR
/// (no boot signature, or entries whose status bytes no MBR has).
pub fn read_table(dev: &dyn BlockDevice) -> Result<Option<PartitionTable>> {
    let sector_size = dev.sector_size().max(512);
    let Some(entries) = read_mbr(dev, 0, sector_size)? else { return Ok(None) };
    if entries.iter().any(|e| e.kind == PROTECTIVE) {
        return read_gpt(dev, sector_size).map(Some);
    }
    mbr_partitions(dev, &entries, sector_size).map(Some)
}

/// Opens partition `number` of `dev` as a device of its own.
pub fn open_partition<D: BlockDevice>(dev: D, number: u32) -> Result<WindowDevice<D>> {
    let table = read_table(&dev)?.ok_or(PartitionError::NoTable)?;
    let Some(p) = table.get(number) else {
        let available = table.partitions.iter().map(|p| p.number).collect();
        return Err(PartitionError::NoSuchPartition { number, table: table.kind, available });
    };
    let end = p.offset.saturating_add(p.len);
    if end > dev.len() {
        return Err(PartitionError::PastEnd { number, end, device_len: dev.len() });
    }
    let (offset, len) = (p.offset, p.len);
    Ok(WindowDevice::new(dev, offset, Some(len))?)
}

/// The four entries of the MBR (or EBR) in the sector at `lba`, or `None`
/// when it is not one.
fn read_mbr(dev: &dyn BlockDevice, lba: u64, sector_size: u32) -> Result<Option<Vec<MbrEntry>>> {
    let mut sector = [0u8; 512];
    let Some(at) = lba.checked_mul(u64::from(sector_size)) else { return Ok(None) };
    if at.saturating_add(512) > dev.len() {
        return Ok(None);
    }
    dev.read_at(at, &mut sector)?;
    if sector[510..512] != MBR_SIGNATURE {
        return Ok(None);
    }
    let entries: Vec<MbrEntry> = sector[446..510].chunks_exact(16).filter_map(|c| MbrEntry::read_from_bytes(c).ok()).collect();
    if entries.iter().any(|e| e.status & 0x7f != 0) {
        return Ok(None);
    }
    Ok(Some(entries))
}

/// The partitions of an MBR: slots 1 to 4, then the logical partitions of
/// its extended partition from 5.
fn mbr_partitions(dev: &dyn BlockDevice, entries: &[MbrEntry], sector_size: u32) -> Result<PartitionTable> {
    let ss = u64::from(sector_size);
    let mut partitions = Vec::new();
    let mut extended = None;
    for (slot, e) in (1u32..).zip(entries) {
        if e.kind == 0 || e.sectors.get() == 0 {
            continue;
        }
        let kind = PartitionType::Mbr(e.kind);
        if kind.is_extended() && extended.is_none() {
            extended = Some(u64::from(e.start_lba.get()));
        }
        let (offset, len) = (u64::from(e.start_lba.get()) * ss, u64::from(e.sectors.get()) * ss);
        partitions.push(Partition { number: slot, offset, len, kind, name: String::new() });
    }
    if let Some(base) = extended {
        logical_partitions(dev, base, sector_size, &mut partitions)?;
    }
    Ok(PartitionTable { kind: TableKind::Mbr, sector_size, partitions })
}

/// Follows the chain of extended boot records from the extended partition
/// at sector `base`: each holds one logical partition (relative to itself)
/// and a link to the next record (relative to `base`).
fn logical_partitions(dev: &dyn BlockDevice, base: u64, sector_size: u32, out: &mut Vec<Partition>) -> Result<()> {
    let ss = u64::from(sector_size);
    let mut ebr = base;
    for number in 5..5 + MAX_LOGICAL {
        // No record where the chain points: the chain ends (as for the kernel).
        let Some(entries) = read_mbr(dev, ebr, sector_size)? else { return Ok(()) };
        let (part, link) = (&entries[0], &entries[1]);
        if part.kind != 0 && part.sectors.get() != 0 {
            let offset = (ebr + u64::from(part.start_lba.get())) * ss;
            let (len, kind) = (u64::from(part.sectors.get()) * ss, PartitionType::Mbr(part.kind));
            out.push(Partition { number, offset, len, kind, name: String::new() });
        }
        if !PartitionType::Mbr(link.kind).is_extended() || link.sectors.get() == 0 {
            return Ok(());
        }
        ebr = base + u64::from(link.start_lba.get());
    }
    Err(corrupt(TableKind::Mbr, format!("more than {MAX_LOGICAL} logical partitions (a loop in the chain?)")))
}

/// The partitions of a GPT: the primary header and entries, or the backup
/// ones when the primary are damaged. The header is looked for in sectors
/// of the device's size, then of the other usual size.
fn read_gpt(dev: &dyn BlockDevice, sector_size: u32) -> Result<PartitionTable> {
    let sizes = [sector_size, if sector_size == 512 { 4096 } else { 512 }];
    let mut first_error = None;
    for ss in sizes {
        let last_lba = (dev.len() / u64::from(ss)).saturating_sub(1);
        for lba in [1, last_lba] {
            match gpt_at(dev, lba, ss) {
                Ok(partitions) => return Ok(PartitionTable { kind: TableKind::Gpt, sector_size: ss, partitions }),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    Err(first_error.unwrap_or(PartitionError::NoTable))
}

/// The partitions of the GPT whose header is at `lba`.
fn gpt_at(dev: &dyn BlockDevice, lba: u64, sector_size: u32) -> Result<Vec<Partition>> {
    let ss = u64::from(sector_size);
    let mut sector = vec![0u8; sector_size as usize];
    let at = lba * ss;
    if lba == 0 || at + ss > dev.len() {
        return Err(corrupt(TableKind::Gpt, "the disk is too small for a GPT header"));
    }
    dev.read_at(at, &mut sector)?;
    let h = gpt_header(&sector, lba)?;
    let bytes = u64::from(h.entry_count.get()) * u64::from(h.entry_size.get());
    let start = h.entries_lba.get().checked_mul(ss).filter(|s| s.checked_add(bytes).is_some_and(|e| e <= dev.len()));
    let Some(start) = start else {
        return Err(corrupt(TableKind::Gpt, format!("entry array at LBA {} outside the disk", h.entries_lba.get())));
    };
    let mut array = vec![0u8; bytes as usize];
    dev.read_at(start, &mut array)?;
    if crc32(&array) != h.entries_crc32.get() {
        return Err(corrupt(TableKind::Gpt, "partition entry array checksum mismatch"));
    }
    gpt_entries(&array, h.entry_size.get() as usize, ss)
}

/// The checked header in `sector`, read at `lba`.
fn gpt_header(sector: &[u8], lba: u64) -> Result<GptHeader> {
    let bad = |reason: String| Err(corrupt(TableKind::Gpt, reason));
    let Ok((h, _)) = GptHeader::read_from_prefix(sector) else { return bad("short header sector".into()) };
    if &h.signature != GPT_SIGNATURE {
        return bad(format!("no \"EFI PART\" signature at LBA {lba}"));
    }
    let size = h.header_size.get() as usize;
    if !(size_of::<GptHeader>()..=sector.len()).contains(&size) {
        return bad(format!("header size {size}"));
    }
    let mut copy = sector[..size].to_vec();
    copy[16..20].fill(0);
    if crc32(&copy) != h.header_crc32.get() {
        return bad(format!("header checksum mismatch at LBA {lba}"));
    }
    if h.my_lba.get() != lba {
        return bad(format!("header at LBA {lba} says it is at LBA {}", h.my_lba.get()));
    }
    let (count, esize) = (u64::from(h.entry_count.get()), u64::from(h.entry_size.get()));
    if esize < 128 || esize % 8 != 0 || count * esize > MAX_GPT_ENTRY_BYTES {
        return bad(format!("{count} entries of {esize} bytes"));
    }
    Ok(h)
}

/// The used entries of a checked entry array.
fn gpt_entries(array: &[u8], entry_size: usize, ss: u64) -> Result<Vec<Partition>> {
    let mut out = Vec::new();
    for (number, raw) in (1u32..).zip(array.chunks_exact(entry_size)) {
        let Ok((e, _)) = GptEntry::read_from_prefix(raw) else { continue };
        if e.type_guid == [0; 16] {
            continue;
        }
        let (first, last) = (e.first_lba.get(), e.last_lba.get());
        let bounds = last.checked_add(1).and_then(|end| end.checked_mul(ss)).zip(first.checked_mul(ss));
        let Some((end, offset)) = bounds.filter(|_| first <= last) else {
            return Err(corrupt(TableKind::Gpt, format!("partition {number} runs from LBA {first} to {last}")));
        };
        let units: Vec<u16> = e.name.iter().map(|u| u.get()).take_while(|&u| u != 0).collect();
        let name = String::from_utf16_lossy(&units);
        out.push(Partition { number, offset, len: end - offset, kind: PartitionType::Gpt(e.type_guid), name });
    }
    Ok(out)
}

/// CRC-32 (IEEE 802.3, reflected), the checksum of GPT headers and entries.
fn crc32(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |crc, &b| CRC32_TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8))
}

/// The byte-at-a-time table of [`crc32`].
const CRC32_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryDevice;

    const SS: u64 = 512;
    const DISK: u64 = 4 << 20;
    const LINUX: [u8; 16] = [0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4];

    #[test]
    fn crc32_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn guid_text() {
        assert_eq!(format_guid(&LINUX), "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
        assert_eq!(PartitionType::Gpt(LINUX).name(), Some("Linux filesystem"));
    }

    fn put(b: &mut [u8], at: usize, v: &[u8]) {
        b[at..at + v.len()].copy_from_slice(v);
    }

    /// A slot of an MBR or EBR at sector `lba`.
    fn mbr_entry(disk: &mut [u8], lba: u64, slot: usize, kind: u8, start: u32, sectors: u32) {
        let at = (lba * SS) as usize + 446 + 16 * slot;
        disk[at + 4] = kind;
        put(disk, at + 8, &start.to_le_bytes());
        put(disk, at + 12, &sectors.to_le_bytes());
        put(disk, (lba * SS) as usize + 510, &MBR_SIGNATURE);
    }

    /// A GPT header at `lba` whose 128 entries of 128 bytes are at `entries`.
    fn gpt_header(disk: &mut [u8], lba: u64, alternate: u64, entries: u64) {
        let at = (lba * SS) as usize;
        let array = &disk[(entries * SS) as usize..(entries * SS) as usize + 128 * 128];
        let array_crc = crc32(array);
        let mut h = vec![0u8; 92];
        put(&mut h, 0, GPT_SIGNATURE);
        put(&mut h, 8, &0x0001_0000u32.to_le_bytes());
        put(&mut h, 12, &92u32.to_le_bytes());
        put(&mut h, 24, &lba.to_le_bytes());
        put(&mut h, 32, &alternate.to_le_bytes());
        put(&mut h, 40, &34u64.to_le_bytes());
        put(&mut h, 48, &(DISK / SS - 34).to_le_bytes());
        put(&mut h, 72, &entries.to_le_bytes());
        put(&mut h, 80, &128u32.to_le_bytes());
        put(&mut h, 84, &128u32.to_le_bytes());
        put(&mut h, 88, &array_crc.to_le_bytes());
        let crc = crc32(&h);
        put(&mut h, 16, &crc.to_le_bytes());
        put(disk, at, &h);
    }

    /// A GPT disk: partitions 1 and 3 (entry 2 left empty), primary and backup.
    fn gpt_disk() -> Vec<u8> {
        let mut d = vec![0u8; DISK as usize];
        mbr_entry(&mut d, 0, 0, PROTECTIVE, 1, (DISK / SS - 1) as u32);
        let last = DISK / SS - 1;
        for entries in [2, last - 32] {
            for (index, first, end) in [(0usize, 2048u64, 4095u64), (2, 4096, 6143)] {
                let at = (entries * SS) as usize + 128 * index;
                put(&mut d, at, &LINUX);
                put(&mut d, at + 32, &first.to_le_bytes());
                put(&mut d, at + 40, &end.to_le_bytes());
                let name: Vec<u8> = "root".encode_utf16().flat_map(u16::to_le_bytes).collect();
                put(&mut d, at + 56, &name);
            }
        }
        gpt_header(&mut d, 1, last, 2);
        gpt_header(&mut d, last, 1, last - 32);
        d
    }

    fn read(d: &[u8]) -> Result<Option<PartitionTable>> {
        read_table(&MemoryDevice::from_vec(d.to_vec()))
    }

    fn numbers(t: &PartitionTable) -> Vec<(u32, u64, u64)> {
        t.partitions.iter().map(|p| (p.number, p.offset, p.len)).collect()
    }

    #[test]
    fn gpt_numbers_offsets_names() {
        let t = read(&gpt_disk()).unwrap().unwrap();
        assert_eq!(t.kind, TableKind::Gpt);
        assert_eq!(numbers(&t), [(1, 2048 * SS, 2048 * SS), (3, 4096 * SS, 2048 * SS)]);
        assert_eq!(t.partitions[0].name, "root");
    }

    #[test]
    fn damaged_primary_gpt_falls_back_to_the_backup() {
        let good = numbers(&read(&gpt_disk()).unwrap().unwrap());
        for at in [SS as usize + 20, 2 * SS as usize + 33] {
            let mut d = gpt_disk();
            d[at] ^= 1;
            assert_eq!(numbers(&read(&d).unwrap().unwrap()), good, "byte {at} damaged");
        }
    }

    #[test]
    fn both_gpt_headers_damaged_is_an_error() {
        let mut d = gpt_disk();
        d[SS as usize + 30] ^= 1;
        d[(DISK - SS) as usize + 30] ^= 1;
        let e = read(&d).unwrap_err();
        assert!(matches!(e, PartitionError::Corrupt { table: TableKind::Gpt, .. }), "{e}");
    }

    #[test]
    fn any_damaged_byte_is_no_panic() {
        let dev = MemoryDevice::from_vec(gpt_disk());
        let ends = (0..34 * SS).chain(DISK - 33 * SS..DISK);
        for at in ends.step_by(7) {
            let mut b = [0u8];
            dev.read_at(at, &mut b).unwrap();
            dev.write_at(at, &[b[0].wrapping_add(0x5b)]).unwrap();
            let _ = read_table(&dev);
            dev.write_at(at, &b).unwrap();
        }
    }

    #[test]
    fn mbr_primaries_and_logicals_numbered_as_linux() {
        let mut d = vec![0u8; DISK as usize];
        mbr_entry(&mut d, 0, 0, 0x83, 2048, 1024);
        // Slot 2 empty: number 2 stays unused.
        mbr_entry(&mut d, 0, 2, 0x05, 4096, 4096);
        mbr_entry(&mut d, 4096, 0, 0x83, 64, 512);
        mbr_entry(&mut d, 4096, 1, 0x05, 1024, 1024);
        mbr_entry(&mut d, 5120, 0, 0x82, 64, 256);
        let t = read(&d).unwrap().unwrap();
        let want = [(1, 2048 * SS, 1024 * SS), (3, 4096 * SS, 4096 * SS), (5, 4160 * SS, 512 * SS), (6, 5184 * SS, 256 * SS)];
        assert_eq!(numbers(&t), want);
        let e = open_partition(MemoryDevice::from_vec(d), 2).unwrap_err();
        assert!(matches!(&e, PartitionError::NoSuchPartition { available, .. } if *available == [1, 3, 5, 6]), "{e}");
    }

    #[test]
    fn looping_ebr_chain_is_an_error() {
        let mut d = vec![0u8; DISK as usize];
        mbr_entry(&mut d, 0, 0, 0x0f, 4096, 4096);
        mbr_entry(&mut d, 4096, 0, 0x83, 64, 8);
        // The link points back at the same record.
        mbr_entry(&mut d, 4096, 1, 0x05, 0, 1024);
        let e = read(&d).unwrap_err();
        assert!(matches!(e, PartitionError::Corrupt { table: TableKind::Mbr, .. }), "{e}");
    }

    #[test]
    fn no_table_and_not_an_mbr() {
        assert!(read(&vec![0u8; 1 << 20]).unwrap().is_none());
        let mut d = vec![0u8; 1 << 20];
        put(&mut d, 510, &MBR_SIGNATURE);
        // A boot sector whose "status" bytes no MBR has (a FAT volume's code).
        d[446] = 0x33;
        assert!(read(&d).unwrap().is_none());
    }

    #[test]
    fn partition_past_the_end_is_refused() {
        let mut d = vec![0u8; 1 << 20];
        mbr_entry(&mut d, 0, 1, 0x83, 1024, 4096);
        let e = open_partition(MemoryDevice::from_vec(d), 2).unwrap_err();
        assert!(matches!(e, PartitionError::PastEnd { number: 2, .. }), "{e}");
    }
}

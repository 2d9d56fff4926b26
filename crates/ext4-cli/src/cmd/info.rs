//! `ext4 info IMAGE [--json]`: the superblock summary, or what an external
//! journal device holds.

use std::path::{Path, PathBuf};

use ext4_fs::JournalDeviceInfo;
use ext4_fs::ondisk::Superblock;
use ext4_fs::ondisk::superblock::CsumKind;
use serde_json::json;

use crate::out::{Out, json_time};
use crate::util::{CliResult, Context, format_time, format_uuid, open_ro};

/// Arguments of `ext4 info`.
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// The external journal device (or image) of a filesystem made with
    /// `mke2fs -J device=`.
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
    /// The image or device (a filesystem, or an external journal device).
    image: PathBuf,
}

/// Runs the command.
pub fn run(a: Args) -> CliResult {
    if let Some(info) = journal_device(&a.image)? {
        return show_journal_device(&info, a.json);
    }
    let fs = open_ro(&a.image, a.journal.as_deref())?;
    let sb = fs.superblock();
    let geo = fs.geometry();
    let st = fs.statfs();
    let features = geo.features.names();
    let csum = match geo.csum {
        CsumKind::None => "none",
        CsumKind::GdtCsum => "gdt_csum (crc16)",
        CsumKind::MetadataCsum => "metadata_csum (crc32c)",
    };
    let mkfs_time = created(sb);
    let cluster_size = u64::from(geo.block_size) * u64::from(geo.cluster_ratio);
    if a.json {
        let mut v = json!({
            "uuid": format_uuid(&sb.s_uuid),
            "block_size": geo.block_size,
            "cluster_size": cluster_size,
            "blocks": geo.blocks_count,
            "free_blocks": st.free_blocks,
            "reserved_blocks": sb.r_blocks_count(),
            "inodes": geo.inodes_count,
            "free_inodes": st.free_inodes,
            "inode_size": geo.inode_size,
            "groups": geo.group_count,
            "blocks_per_group": geo.blocks_per_group,
            "inodes_per_group": geo.inodes_per_group,
            "first_data_block": geo.first_data_block,
            "desc_size": geo.desc_size,
            "features": features,
            "checksums": csum,
            "journal_inode": sb.s_journal_inum.get(),
            "created": json_time(mkfs_time),
            "journal_uuid": external_journal(sb).then(|| format_uuid(&sb.s_journal_uuid)),
            "journal_dev": sb.s_journal_dev.get(),
            "state": sb.s_state.get(),
            "read_only_reason": fs.read_only_reason(),
        });
        crate::out::json_name(v.as_object_mut().expect("an object"), "label", sb.volume_name());
        let mut out = Out::new();
        out.json(&v)?;
        return out.finish();
    }
    let mut out = Out::new();
    out.line(&format!("UUID:              {}", format_uuid(&sb.s_uuid)))?;
    out.text("Label:             ")?;
    out.name(sb.volume_name())?;
    out.line("")?;
    out.line(&format!("Features:          {}", features.join(" ")))?;
    out.line(&format!("Checksums:         {csum}"))?;
    out.line(&format!("Block size:        {}", geo.block_size))?;
    if geo.cluster_ratio > 1 {
        out.line(&format!("Cluster size:      {cluster_size} ({} blocks)", geo.cluster_ratio))?;
    }
    out.line(&format!("Blocks:            {} ({} free, {} reserved)", geo.blocks_count, st.free_blocks, sb.r_blocks_count()))?;
    out.line(&format!("Inodes:            {} ({} free), {} bytes each", geo.inodes_count, st.free_inodes, geo.inode_size))?;
    out.line(&format!("Groups:            {} ({} blocks, {} inodes each)", geo.group_count, geo.blocks_per_group, geo.inodes_per_group))?;
    if external_journal(sb) {
        let dev = sb.s_journal_dev.get();
        out.line(&format!("Journal:           external, UUID {} (device {:#06x})", format_uuid(&sb.s_journal_uuid), dev))?;
    } else {
        out.line(&format!("Journal inode:     {}", sb.s_journal_inum.get()))?;
    }
    out.line(&format!("Created:           {} UTC", format_time(mkfs_time)))?;
    out.finish()
}

/// Whether the filesystem's journal is on an external device.
fn external_journal(sb: &Superblock) -> bool {
    sb.features().compat.contains(ext4_fs::ondisk::Compat::HAS_JOURNAL) && sb.s_journal_inum.get() == 0
}

fn created(sb: &Superblock) -> ext4_fs::Timestamp {
    ext4_fs::Timestamp::from_secs(i64::from(sb.s_mkfs_time.get()) | i64::from(sb.s_mkfs_time_hi) << 32)
}

/// What `image` holds if it is an external journal device.
fn journal_device(image: &Path) -> CliResult<Option<JournalDeviceInfo>> {
    let dev = crate::device::open(&crate::device::Spec::image(image)?, true)?;
    ext4_fs::read_journal_device(&dev).context(|| format!("reading the journal device {}", image.display()))
}

/// The summary of an external journal device.
fn show_journal_device(info: &JournalDeviceInfo, json: bool) -> CliResult {
    let sb = &info.superblock;
    let jsb = &info.journal;
    let label = String::from_utf8_lossy(sb.volume_name()).into_owned();
    let users: Vec<String> = info.users().iter().map(format_uuid).collect();
    let start = jsb.s_start.get();
    let log = match &info.geometry {
        Ok(g) if start == 0 => format!("blocks {}-{}, empty, next transaction {}", g.first, g.last - 1, g.sequence),
        Ok(g) => format!("blocks {}-{}, holds transactions from {} at block {start}", g.first, g.last - 1, g.sequence),
        Err(e) => format!("unusable: {e}"),
    };
    if json {
        let v = json!({
            "journal_device": true,
            "uuid": format_uuid(&sb.s_uuid),
            "label": label,
            "block_size": info.device.block_size,
            "blocks": info.device.blocks_count,
            "features": sb.features().names(),
            "users": users,
            "log_first": jsb.s_first.get(),
            "log_start": start,
            "sequence": jsb.s_sequence.get(),
            "log": log,
            "created": created(sb).secs,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("serializable"));
        return Ok(());
    }
    println!("External journal device (journal_dev): the journal of another filesystem, not a filesystem");
    println!("UUID:              {}", format_uuid(&sb.s_uuid));
    println!("Label:             {label}");
    println!("Features:          {}", sb.features().names().join(" "));
    println!("Block size:        {}", info.device.block_size);
    println!("Blocks:            {}", info.device.blocks_count);
    println!("Users:             {}", if users.is_empty() { "none".to_string() } else { users.join(" ") });
    println!("Log:               {log}");
    println!("Created:           {} UTC", format_time(created(sb)));
    Ok(())
}

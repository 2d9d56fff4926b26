//! `ext4 info IMAGE [--json]`: the superblock summary.

use std::path::PathBuf;

use ext4_fs::ondisk::superblock::CsumKind;
use serde_json::json;

use crate::out::{Out, json_time};
use crate::util::{CliResult, format_time, format_uuid, open_ro};

/// Arguments of `ext4 info`.
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// The image or device.
    image: PathBuf,
}

/// Runs the command.
pub fn run(a: Args) -> CliResult {
    let fs = open_ro(&a.image)?;
    let sb = fs.superblock();
    let geo = fs.geometry();
    let st = fs.statfs();
    let features = geo.features.names();
    let csum = match geo.csum {
        CsumKind::None => "none",
        CsumKind::GdtCsum => "gdt_csum (crc16)",
        CsumKind::MetadataCsum => "metadata_csum (crc32c)",
    };
    let mkfs_time = ext4_fs::Timestamp::from_secs(i64::from(sb.s_mkfs_time.get()) | i64::from(sb.s_mkfs_time_hi) << 32);
    if a.json {
        let mut v = json!({
            "uuid": format_uuid(&sb.s_uuid),
            "block_size": geo.block_size,
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
    out.line(&format!("Blocks:            {} ({} free, {} reserved)", geo.blocks_count, st.free_blocks, sb.r_blocks_count()))?;
    out.line(&format!("Inodes:            {} ({} free), {} bytes each", geo.inodes_count, st.free_inodes, geo.inode_size))?;
    out.line(&format!("Groups:            {} ({} blocks, {} inodes each)", geo.group_count, geo.blocks_per_group, geo.inodes_per_group))?;
    out.line(&format!("Journal inode:     {}", sb.s_journal_inum.get()))?;
    out.line(&format!("Created:           {} UTC", format_time(mkfs_time)))?;
    out.finish()
}

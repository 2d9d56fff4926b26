//! The report as JSON: numbers as numbers, times as epoch seconds beside
//! RFC 3339 text, ranges as `[first, last]` pairs.

use std::io::Write;

use ext4_fs::jbd2::format::JournalSuperblock;
use ext4_fs::ondisk::superblock::{Geometry, STATE_ERROR, STATE_VALID, Superblock};
use ext4_fs::ondisk::{Compat, Incompat};
use ext4_fs::{Filesystem, GroupReport};
use serde_json::{Value, json};

use super::names::*;
use super::text::{flag_names, group_free, group_last};
use super::{DumpResult, Failure};
use crate::util::format_uuid;

/// The whole report as JSON: numbers as numbers, times as epoch seconds
/// beside RFC 3339 text, ranges as `[first, last]` pairs.
pub(super) fn dump_json(fs: &Filesystem, header_only: bool, w: &mut impl Write) -> DumpResult {
    let sb = fs.stored_superblock()?;
    let mut v = json!({ "superblock": super_json(&sb) });
    if sb.features().compat.contains(Compat::HAS_JOURNAL) && sb.s_journal_inum.get() != 0 {
        if let Some(jsb) = fs.journal_superblock()? {
            v["journal"] = journal_json(&jsb, sb.features().compat.contains(Compat::FAST_COMMIT));
        }
    }
    if let Some(m) = fs.mmp_block()? {
        v["mmp"] = json!({
            "magic": m.mmp_magic.get(), "check_interval": m.mmp_check_interval.get(), "sequence": m.mmp_seq.get(),
            "update_time": m.mmp_time.get(), "update_time_rfc3339": rfc3339(m.mmp_time.get() as i64),
            "node_name": field_str(&m.mmp_nodename), "device_name": field_str(&m.mmp_bdevname),
        });
    }
    if !header_only {
        let geo = fs.geometry();
        let mut groups = Vec::new();
        fs.for_each_group_report(|r| {
            groups.push(group_json(geo, &r));
            Ok::<(), Failure>(())
        })?;
        v["groups"] = Value::Array(groups);
    }
    serde_json::to_writer_pretty(&mut *w, &v).map_err(std::io::Error::from)?;
    writeln!(w)?;
    Ok(())
}

/// A time field as two keys: epoch seconds and RFC 3339.
pub(super) fn time_json(obj: &mut serde_json::Map<String, Value>, key: &str, secs: u32) {
    obj.insert(key.into(), json!(secs));
    obj.insert(format!("{key}_rfc3339"), json!(rfc3339(i64::from(secs))));
}

pub(super) fn super_json(sb: &Superblock) -> Value {
    let f = sb.features();
    let mut v = json!({
        "volume_name": field_str(&sb.s_volume_name), "last_mounted": field_str(&sb.s_last_mounted),
        "uuid": format_uuid(&sb.s_uuid), "magic": sb.s_magic.get(), "revision": sb.s_rev_level.get(),
        "features": feature_names(sb), "flags": sb.s_flags.get(), "default_mount_options": mntopt_names(sb.s_default_mount_opts.get()),
        "mount_options": field_str(&sb.s_mount_opts), "state": sb.s_state.get(), "clean": sb.s_state.get() & STATE_VALID != 0,
        "errors_detected": sb.s_state.get() & STATE_ERROR != 0, "errors_behavior": errors_text(sb.s_errors.get()),
        "os": os_text(sb.s_creator_os.get()), "inode_count": sb.s_inodes_count.get(), "block_count": sb.blocks_count(),
        "reserved_block_count": sb.r_blocks_count(), "overhead_clusters": sb.s_overhead_clusters.get(),
        "free_blocks": sb.free_blocks_count(), "free_inodes": sb.s_free_inodes_count.get(),
    });
    let more = [
        json!({
            "first_block": sb.s_first_data_block.get(), "block_size": 1024u64 << sb.s_log_block_size.get().min(16),
            "cluster_size": 1024u64 << sb.s_log_cluster_size.get().min(32), "desc_size": sb.s_desc_size.get(),
            "reserved_gdt_blocks": sb.s_reserved_gdt_blocks.get(), "blocks_per_group": sb.s_blocks_per_group.get(),
            "clusters_per_group": sb.s_clusters_per_group.get(), "inodes_per_group": sb.s_inodes_per_group.get(),
            "raid_stride": sb.s_raid_stride.get(), "raid_stripe_width": sb.s_raid_stripe_width.get(),
            "first_meta_bg": sb.s_first_meta_bg.get(), "log_groups_per_flex": sb.s_log_groups_per_flex,
            "mount_count": sb.s_mnt_count.get(), "max_mount_count": sb.s_max_mnt_count.get() as i16,
        }),
        json!({
            "check_interval": sb.s_checkinterval.get(), "kbytes_written": sb.s_kbytes_written.get(),
            "reserved_uid": sb.s_def_resuid.get(), "reserved_gid": sb.s_def_resgid.get(), "first_inode": sb.s_first_ino.get(),
            "inode_size": sb.s_inode_size.get(), "min_extra_isize": sb.s_min_extra_isize.get(),
            "want_extra_isize": sb.s_want_extra_isize.get(), "journal_uuid": format_uuid(&sb.s_journal_uuid),
            "journal_inode": sb.s_journal_inum.get(), "journal_device": sb.s_journal_dev.get(), "first_orphan": sb.s_last_orphan.get(),
            "default_hash": hash_name(sb.s_def_hash_version), "hash_seed": format_uuid(&sb.hash_seed_bytes()),
        }),
        json!({
            "journal_backup_type": sb.s_jnl_backup_type, "backup_block_groups": sb.s_backup_bgs.map(|b| b.get()),
            "error_count": sb.s_error_count.get(), "mmp_block": sb.s_mmp_block.get(), "mmp_update_interval": sb.s_mmp_interval.get(),
            "user_quota_inode": sb.s_usr_quota_inum.get(), "group_quota_inode": sb.s_grp_quota_inum.get(),
            "project_quota_inode": sb.s_prj_quota_inum.get(), "checksum_type": sb.s_checksum_type, "checksum": sb.s_checksum.get(),
            "checksum_seed": f.incompat.contains(Incompat::CSUM_SEED).then(|| sb.s_checksum_seed.get()),
            "orphan_file_inode": sb.s_orphan_file_inum.get(),
        }),
    ];
    let obj = v.as_object_mut().expect("an object");
    for part in more {
        if let Value::Object(m) = part {
            obj.extend(m);
        }
    }
    time_json(obj, "created", sb.s_mkfs_time.get());
    time_json(obj, "last_mount_time", sb.s_mtime.get());
    time_json(obj, "last_write_time", sb.s_wtime.get());
    time_json(obj, "last_checked", sb.s_lastcheck.get());
    for (which, t, ino, block, line, code, func) in [
        (
            "first",
            sb.s_first_error_time.get(),
            sb.s_first_error_ino.get(),
            sb.s_first_error_block.get(),
            sb.s_first_error_line.get(),
            sb.s_first_error_errcode,
            &sb.s_first_error_func,
        ),
        (
            "last",
            sb.s_last_error_time.get(),
            sb.s_last_error_ino.get(),
            sb.s_last_error_block.get(),
            sb.s_last_error_line.get(),
            sb.s_last_error_errcode,
            &sb.s_last_error_func,
        ),
    ] {
        if t == 0 {
            continue;
        }
        let mut e = serde_json::Map::new();
        time_json(&mut e, "time", t);
        e.insert("function".into(), json!(field_str(func)));
        e.insert("line".into(), json!(line));
        e.insert("inode".into(), json!(ino));
        e.insert("block".into(), json!(block));
        e.insert("errcode".into(), json!(errcode_name(code)));
        obj.insert(format!("{which}_error"), Value::Object(e));
    }
    v
}

pub(super) fn journal_json(jsb: &JournalSuperblock, fast_commit: bool) -> Value {
    let fc = fast_commit_blocks(jsb, fast_commit);
    let users = jsb.s_nr_users.get();
    json!({
        "features": journal_feature_names(jsb), "block_size": jsb.s_blocksize.get(), "total_blocks": jsb.s_maxlen.get(),
        "max_transaction_length": jsb.s_maxlen.get().wrapping_sub(fc), "fast_commit_length": fc, "first_block": jsb.s_first.get(),
        "sequence": jsb.s_sequence.get(), "start": jsb.s_start.get(), "users": users,
        "user_uuids": jsb.s_users.chunks(16).take(users.min(48) as usize).map(|u| format_uuid(u.try_into().expect("16 bytes"))).collect::<Vec<_>>(),
        "checksum_type": jsb.s_checksum_type, "checksum": jsb.s_checksum.get(), "errno": jsb.s_errno.get() as i32,
    })
}

pub(super) fn group_json(geo: &Geometry, r: &GroupReport) -> Value {
    let g = r.group;
    let d = &r.desc;
    let l = geo.group_layout(g);
    let old = u64::from(geo.old_desc_blocks());
    let rsv = u64::from(geo.reserved_gdt_blocks);
    let (blocks, inodes) = group_free(geo, r);
    json!({
        "group": g, "blocks": [geo.group_first_block(g), group_last(geo, g)],
        "checksum": d.checksum, "expected_checksum": r.expected_checksum, "flags": flag_names(geo, d.flags),
        "superblock": l.super_blk, "group_descriptors": l.old_desc_blk.map(|b| [b, (b + old).wrapping_sub(1)]),
        "reserved_gdt_blocks": l.old_desc_blk.filter(|_| rsv != 0).map(|b| [b + old, b + old + rsv - 1]),
        "meta_bg_descriptor": l.new_desc_blk,
        "block_bitmap": d.block_bitmap, "block_bitmap_checksum": d.block_bitmap_csum,
        "inode_bitmap": d.inode_bitmap, "inode_bitmap_checksum": d.inode_bitmap_csum,
        "inode_table": [d.inode_table, d.inode_table + u64::from(geo.inode_table_blocks) - 1],
        "free_blocks": d.free_blocks_count, "free_inodes": d.free_inodes_count, "directories": d.used_dirs_count,
        "unused_inodes": d.itable_unused, "free_block_ranges": blocks, "free_inode_ranges": inodes,
    })
}

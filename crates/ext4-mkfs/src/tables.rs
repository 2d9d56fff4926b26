//! Placement of each group's block bitmap, inode bitmap and inode table,
//! as `ext2fs_allocate_group_table` does (lib/ext2fs/alloc_tables.c):
//! in the group itself, or packed per flex group (`flexbg_offset`).

use crate::MkfsError;
use crate::model::Model;

/// `flexbg_offset`: where to look for `elem_size` free blocks for `group`'s
/// table, preferring a continuation of the previous group's.
fn flexbg_offset(m: &Model, group: u32, start_blk: u64, rem_grp: u32, elem_size: u32) -> u64 {
    let s = &m.shape;
    let flexbg_size = s.flex_size();
    let flexbg = group / flexbg_size;
    // C computes these in `int`.
    let mut size = i64::from((i64::from(rem_grp) * i64::from(elem_size)) as i32);
    let quarter = i64::from((s.blocks_per_group / 4) as i32);
    if size > quarter {
        size = quarter;
    }
    let num = u64::from(elem_size);
    if start_blk != 0 && start_blk < s.blocks_count {
        if let Some(b) = m.get_free_blocks(start_blk, start_blk.wrapping_add(size as u64), num) {
            return b;
        }
    }
    let start_blk = s.group_first(flexbg_size * flexbg);
    let last_grp = (group | (flexbg_size - 1)).min(s.group_count - 1);
    let last_blk = s.group_last(last_grp);
    m.get_free_blocks(start_blk, last_blk, size.max(0) as u64)
        .or_else(|| m.get_free_blocks(start_blk, last_blk, num))
        .or_else(|| m.get_free_blocks(0, last_blk, num))
        .unwrap_or(0)
}

/// Allocates one bitmap block from `start` (falling back to the group start).
fn alloc_bitmap(m: &mut Model, start: u64, group_blk: u64, last_blk: u64, flex: bool) -> Result<u64, MkfsError> {
    let b = m
        .get_free_blocks(start, last_blk, 1)
        .or_else(|| m.get_free_blocks(group_blk, last_blk, 1))
        .ok_or(MkfsError::NoSpace { what: "a bitmap block" })?;
    m.map.mark(b, 1);
    if flex {
        let g = m.shape.group_of(b);
        m.clear_block_uninit(g);
    }
    Ok(b)
}

/// Places the bitmaps and inode table of `group`.
fn allocate_group_table(m: &mut Model, group: u32, stride: u32) -> Result<(), MkfsError> {
    let s = m.shape.clone();
    let mut group_blk = s.group_first(group);
    let mut last_blk = s.group_last(group);
    let itb = s.inode_blocks_per_group;
    let flexbg_size = s.flex_size();
    let (mut last_grp, mut rem_grps) = (0, 0);
    if flexbg_size > 0 {
        last_grp = (group | (flexbg_size - 1)).min(s.group_count - 1);
        rem_grps = last_grp - group + 1;
    }
    let mut start_blk = group_blk;
    if stride > 0 && flexbg_size == 0 {
        let first = m.get_free_blocks(group_blk, last_blk, 1).ok_or(MkfsError::NoSpace { what: "group tables" })?;
        start_blk = first + u64::from(itb);
        // Unsigned arithmetic as in C; a zero span (C would divide by zero) skips the shift.
        let span = last_blk.wrapping_sub(start_blk).wrapping_add(1);
        if span != 0 {
            start_blk += (u64::from(stride) * u64::from(group)) % span;
        }
        if start_blk >= last_blk {
            start_blk = group_blk;
        }
    }
    let mut table_offset = flexbg_size;
    if flexbg_size > 0 {
        let mut prev = 0;
        if group % flexbg_size != 0 {
            prev = m.groups[group as usize - 1].block_bitmap + 1;
        } else if last_grp == s.group_count - 1 {
            table_offset = last_grp & (flexbg_size - 1);
            table_offset = if table_offset == 0 { flexbg_size } else { table_offset + 1 };
        }
        start_blk = flexbg_offset(m, group, prev, rem_grps, 1);
        last_blk = s.group_last(last_grp);
    }
    let flex = flexbg_size > 0;
    let bb = alloc_bitmap(m, start_blk, group_blk, last_blk, flex)?;
    m.groups[group as usize].block_bitmap = bb;

    if flex {
        let prev = if group % flexbg_size != 0 {
            m.groups[group as usize - 1].inode_bitmap + 1
        } else {
            bb + u64::from(table_offset)
        };
        start_blk = flexbg_offset(m, group, prev, rem_grps, 1);
        last_blk = s.group_last(last_grp);
    }
    let ib = alloc_bitmap(m, start_blk, group_blk, last_blk, flex)?;
    m.groups[group as usize].inode_bitmap = ib;

    if flex {
        let prev = if group % flexbg_size != 0 {
            m.groups[group as usize - 1].inode_table + u64::from(itb)
        } else {
            ib + u64::from(table_offset)
        };
        group_blk = flexbg_offset(m, group, prev, rem_grps, itb);
        last_blk = s.group_last(last_grp);
    }
    let it = m.get_free_blocks(group_blk, last_blk, itb.into()).ok_or(MkfsError::NoSpace { what: "an inode table" })?;
    m.map.mark(it, itb.into());
    if flex {
        let mut b = it;
        while b < it + u64::from(itb) {
            let g = s.group_of(b);
            m.clear_block_uninit(g);
            b = s.group_last(g) + 1;
        }
    }
    m.groups[group as usize].inode_table = it;
    Ok(())
}

/// `ext2fs_allocate_tables`: every group's bitmaps and inode table, in order.
pub fn allocate_tables(m: &mut Model, stride: u32) -> Result<(), MkfsError> {
    for g in 0..m.shape.group_count {
        allocate_group_table(m, g, stride)?;
    }
    Ok(())
}

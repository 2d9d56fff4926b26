//! Damaged images for robustness and checker tests: a valid template
//! image, the byte ranges of its metadata (superblock, group descriptors,
//! bitmaps, inode records, directory blocks, extent and indirect blocks,
//! xattr blocks, journal blocks, located by dumpe2fs and debugfs), and a
//! mutator that flips random bytes or writes edge values into one range.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use crate::fixtures::{self, Profile};
use crate::oracle::dumpe2fs;
use crate::rng::Rng;

/// A kind of metadata, for choosing what to damage evenly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The primary superblock.
    Superblock,
    /// Group descriptor blocks.
    GroupDescs,
    /// Block and inode bitmaps.
    Bitmap,
    /// Inode records.
    Inode,
    /// Directory blocks.
    DirBlock,
    /// Extent tree and indirect blocks.
    MapBlock,
    /// Xattr blocks.
    XattrBlock,
    /// The first journal blocks.
    Journal,
}

/// A damageable byte range of a template.
#[derive(Debug, Clone, Copy)]
pub struct Region {
    /// What it holds.
    pub kind: Kind,
    /// Byte offset in the image.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
}

/// A valid image and where its metadata lies.
#[derive(Debug, Clone)]
pub struct Template {
    /// Name, for messages.
    pub name: String,
    /// The image.
    pub bytes: Arc<Vec<u8>>,
    /// Its metadata ranges.
    pub regions: Vec<Region>,
    /// The kinds present, sorted.
    pub kinds: Vec<Kind>,
}

impl Template {
    /// Reads `img` and finds its metadata; `paths` are the files and
    /// directories to locate (inode records, map and xattr blocks),
    /// `dirs` the directories whose blocks to damage.
    pub fn from_image(name: &str, img: &Path, paths: &[String], dirs: &[String]) -> std::io::Result<Self> {
        let bytes = std::fs::read(img)?;
        let regions = find_regions(img, bytes.len(), paths, dirs);
        let mut kinds: Vec<Kind> = regions.iter().map(|r| r.kind).collect();
        kinds.sort();
        kinds.dedup();
        Ok(Self { name: name.to_string(), bytes: Arc::new(bytes), regions, kinds })
    }
}

/// The paths of the tree made by [`make_small_tree`].
pub fn small_tree_paths() -> Vec<String> {
    let mut v: Vec<String> =
        ["/", "/small", "/medium", "/sparse", "/fast-link", "/slow-link", "/a", "/a/b", "/a/b/c", "/a/b/c/deep", "/big"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    v.extend((0..6).map(|i| format!("/big/entry-{i:04}-with-a-rather-long-name-to-fill-blocks")));
    v
}

/// The directories of the tree made by [`make_small_tree`].
pub fn small_tree_dirs() -> Vec<String> {
    ["/", "/a", "/a/b", "/big"].iter().map(|s| s.to_string()).collect()
}

/// A small tree with one of everything: tiny, medium and many-extent sparse
/// files, fast and slow symlinks, a deep path, a hard link and a directory
/// of 240 long names (several blocks, indexed later by `e2fsck -D`).
pub fn make_small_tree(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("a/b/c"))?;
    std::fs::create_dir_all(dir.join("big"))?;
    std::fs::write(dir.join("small"), b"small file\n")?;
    std::fs::write(dir.join("medium"), (0..40_000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>())?;
    let f = std::fs::File::create(dir.join("sparse"))?;
    for i in 0..24u64 {
        f.write_all_at(&[i as u8 + 1; 4096], i * 2 * 4096)?;
    }
    std::os::unix::fs::symlink("small", dir.join("fast-link"))?;
    std::os::unix::fs::symlink("a/b/c/".repeat(14) + "deep", dir.join("slow-link"))?;
    std::fs::write(dir.join("a/b/c/deep"), b"deep\n")?;
    std::fs::hard_link(dir.join("small"), dir.join("a/hard"))?;
    for i in 0..240 {
        std::fs::write(dir.join(format!("big/entry-{i:04}-with-a-rather-long-name-to-fill-blocks")), format!("{i}"))?;
    }
    Ok(())
}

fn run(c: &mut Command) -> std::process::Output {
    let out = c.output().expect("tool runs");
    assert!(out.status.code().is_some_and(|c| c <= 1), "{c:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Builds a template from `mke2fs -d tree` with profile `p`: directories
/// indexed by `e2fsck -fyD`, xattrs set by debugfs (one in-inode, one
/// block, one on a directory; quotas then brought up to date by e2fsck),
/// and with `recover` committed transactions
/// left in the journal.
pub fn mke2fs_template(p: &Profile, recover: bool, tree: &Path, work: &Path) -> Template {
    let img = work.join(format!("{}.img", p.name));
    fixtures::mke2fs(&img, p, Some(tree)).expect("mke2fs -d");
    run(Command::new("e2fsck").arg("-fyD").arg(&img));
    let value = work.join("xattr-value");
    std::fs::write(&value, vec![b'v'; 700]).unwrap();
    let cmds = work.join(format!("{}.cmds", p.name));
    let mut script = format!("ea_set /small user.small tiny\nea_set -f {} /medium user.big\nea_set /a user.dir x\n", value.display());
    std::fs::write(&cmds, &script).unwrap();
    run(Command::new("debugfs").arg("-w").arg("-f").arg(&cmds).arg(&img));
    if p.mke2fs_args.iter().any(|a| a.contains("quota")) {
        // debugfs does not charge the xattr block to the owner's quota.
        run(Command::new("e2fsck").arg("-fy").arg(&img));
    }
    crate::oracle::assert_fsck_clean(&img);
    if recover {
        // Committed transactions left in the log: blocks of the last group,
        // free in this image, are overwritten by the replay; one is revoked.
        let free = last_free_blocks(&dumpe2fs(&img, false));
        script = format!("jo -c\njw -b {},{} /dev/zero\njw -r {}\njc\njo\njw -b {} /dev/zero\njc\n", free[0], free[1], free[1], free[2]);
        std::fs::write(&cmds, &script).unwrap();
        run(Command::new("debugfs").arg("-w").arg("-f").arg(&cmds).arg(&img));
    }
    let t = Template::from_image(p.name, &img, &small_tree_paths(), &small_tree_dirs()).expect("template image");
    let _ = std::fs::remove_file(&img);
    t
}

/// Three free blocks from dumpe2fs' last "Free blocks: A-B" range.
fn last_free_blocks(dump: &str) -> Vec<u64> {
    let line = dump.lines().rfind(|l| l.trim_start().starts_with("Free blocks: ") && l.contains('-')).expect("free blocks");
    let first: u64 = line.split(':').nth(1).unwrap().trim().split(['-', ',']).next().unwrap().parse().unwrap();
    vec![first, first + 1, first + 2]
}

/// Numbers in `s` after `label` up to the next non-range character: "A" or "A-B".
fn range_after(s: &str, label: &str) -> Option<(u64, u64)> {
    let i = s.find(label)? + label.len();
    let t: String = s[i..].trim_start().chars().take_while(|c| c.is_ascii_digit() || *c == '-').collect();
    let mut it = t.split('-').filter_map(|x| x.parse().ok());
    let a = it.next()?;
    Some((a, it.next().unwrap_or(a)))
}

/// Every metadata region of the image, from dumpe2fs and debugfs.
pub fn find_regions(img: &Path, len: usize, paths: &[String], dirs: &[String]) -> Vec<Region> {
    let head = dumpe2fs(img, true);
    let bs: usize = head.lines().find_map(|l| l.strip_prefix("Block size:")).unwrap().trim().parse().unwrap();
    let isz: usize = head.lines().find_map(|l| l.strip_prefix("Inode size:")).map_or(128, |s| s.trim().parse().unwrap_or(128));
    let mut v = vec![Region { kind: Kind::Superblock, offset: 1024, len: 1024 }];
    let block = |kind, a: u64, b: u64, v: &mut Vec<Region>| {
        for blk in a..=b.min(a + 7) {
            v.push(Region { kind, offset: blk as usize * bs, len: bs });
        }
    };
    for l in dumpe2fs(img, false).lines() {
        if let Some((a, b)) = range_after(l, "Group descriptors at") {
            block(Kind::GroupDescs, a, b, &mut v);
        }
        for label in ["Block bitmap at", "Inode bitmap at"] {
            if let Some((a, _)) = range_after(l, label) {
                block(Kind::Bitmap, a, a, &mut v);
            }
        }
    }
    // One debugfs session for every path plus the journal.
    let mut cmds = String::new();
    for p in paths.iter().map(String::as_str).chain(["<8>"]) {
        cmds += &format!("imap {p}\nstat {p}\n");
    }
    for p in dirs {
        cmds += &format!("blocks {p}\n");
    }
    let file = img.with_extension("regions");
    std::fs::write(&file, cmds).unwrap();
    let out = Command::new("debugfs").arg("-f").arg(&file).arg(img).output().expect("debugfs runs");
    let _ = std::fs::remove_file(&file);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for sect in text.split("debugfs: ").skip(1) {
        let (cmd, body) = sect.split_once('\n').unwrap_or((sect, ""));
        if cmd.starts_with("imap") {
            if let (Some((blk, _)), Some(off)) = (range_after(body, "located at block"), body.split("offset 0x").nth(1)) {
                let off = usize::from_str_radix(off.trim(), 16).unwrap();
                v.push(Region { kind: Kind::Inode, offset: blk as usize * bs + off, len: isz.min(256).min(bs) });
            }
        } else if cmd.starts_with("stat <8>") {
            if let Some(first) = body.split("(0").nth(1).and_then(|s| range_after(s, ":")) {
                block(Kind::Journal, first.0, first.0 + 7, &mut v);
            }
        } else if cmd.starts_with("stat") {
            if let Some((acl, _)) = range_after(body, "File ACL:").filter(|a| a.0 != 0) {
                block(Kind::XattrBlock, acl, acl, &mut v);
            }
            for tok in ["(ETB0):", "(ETB1):", "(IND):", "(DIND):", "(TIND):"] {
                for part in body.split(tok).skip(1) {
                    if let Some((b, _)) = range_after(part, "") {
                        block(Kind::MapBlock, b, b, &mut v);
                    }
                }
            }
        } else if cmd.starts_with("blocks") {
            for b in body.split_whitespace().filter_map(|x| x.parse::<u64>().ok()).take(8) {
                block(Kind::DirBlock, b, b, &mut v);
            }
        }
    }
    v.retain(|r| r.offset + r.len <= len);
    v
}

/// Values that tend to hit edge cases when written over a count or offset.
const INTERESTING: &[u32] =
    &[0, 1, 2, 3, 7, 0xff, 0x100, 0x3ff, 0x400, 0xfff, 0x1000, 0x7fff, 0x8000, 0xffff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff];

/// Damages `img` (a copy of the template's bytes): a few random bytes, or
/// an aligned field set to an interesting value, in one region of a
/// randomly chosen kind. Returns a description of what was done.
pub fn mutate(t: &Template, img: &mut [u8], rng: &mut Rng) -> String {
    let kind = t.kinds[rng.index(t.kinds.len())];
    let choices: Vec<&Region> = t.regions.iter().filter(|r| r.kind == kind).collect();
    let r = choices[rng.index(choices.len())];
    let mut what = format!("{kind:?}@{}:", r.offset);
    let edits = 1 + rng.index(4);
    for _ in 0..edits {
        if rng.index(2) == 0 {
            let at = r.offset + rng.index(r.len);
            let x = (1 + rng.index(255)) as u8;
            img[at] ^= x;
            what += &format!(" [{}]^={x:#x}", at - r.offset);
        } else {
            let width = [1usize, 2, 4][rng.index(3)];
            let at = r.offset + rng.index(r.len / width) * width;
            let v = INTERESTING[rng.index(INTERESTING.len())];
            img[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
            what += &format!(" [{}]={v:#x}/{width}", at - r.offset);
        }
    }
    what
}

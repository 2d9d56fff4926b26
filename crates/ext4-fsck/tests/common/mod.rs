//! What the parity and repair tests share: e2fsck's verdict under a time
//! limit, a two-thread runner, scratch directories and the mutation
//! templates (mke2fs-, library- and kernel-made).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use ext4_testkit::fixtures::{self, Profile, TreeSize, Writer};
use ext4_testkit::mutate::{Template, mke2fs_template, small_tree_dirs, small_tree_paths};
use ext4_testkit::oracle::{LoopMount, can_loop_mount};

/// Seconds e2fsck may take on one image.
pub const E2FSCK_LIMIT: &str = "10";

/// e2fsck's verdict: its exit status (None: it did not finish).
pub fn e2fsck_status(img: &Path) -> Option<i32> {
    let out = Command::new("timeout").arg(E2FSCK_LIMIT).arg("e2fsck").arg("-fn").arg(img).output().expect("e2fsck runs");
    out.status.code().filter(|&c| c != 124)
}

/// Runs `f` over `items` on two threads, collecting mismatches.
pub fn parallel<T: Sync>(items: &[T], f: impl Fn(&T) -> Option<String> + Sync) -> Vec<String> {
    let bad = Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if let Some(m) = f(item) {
                        bad.lock().unwrap().push(m);
                    }
                }
            });
        }
    });
    let mut v = bad.into_inner().unwrap();
    v.sort();
    v
}

/// A scratch directory for this test process.
pub fn work_dir(tag: &str) -> PathBuf {
    // Kept: the callers remove it when they are done with it.
    ext4_testkit::scratch_dir(&format!("fsck-parity-{tag}")).keep()
}

/// Every mutation template: the mke2fs-made ones, a library-made one and,
/// with root and loop devices, a kernel-made one.
pub fn templates(tree: &Path, work: &Path) -> Vec<Template> {
    let mut templates: Vec<Template> = MKE2FS_TEMPLATES.iter().map(|(p, rec)| mke2fs_template(p, *rec, tree, work)).collect();
    templates.push(library_template(tree, work));
    if ext4_testkit::require(can_loop_mount(), "kernel-made templates need root and loop devices") {
        templates.push(kernel_template(tree, work));
    }
    templates
}

const fn profile(name: &'static str, mke2fs_args: &'static [&'static str], size: &'static str) -> Profile {
    Profile { name, mke2fs_args, conf_defaults: "", size, tree: TreeSize::Small, writer: Writer::Mke2fs }
}

/// mke2fs-made templates: (profile, whether to leave a journal needing recovery).
const MKE2FS_TEMPLATES: &[(Profile, bool)] = &[
    (profile("parity-ext4-1k", &["-t", "ext4", "-b", "1024", "-g", "1024", "-N", "512"], "4M"), false),
    (
        profile("parity-ext4-4k", &["-t", "ext4", "-b", "4096", "-g", "1024", "-N", "512", "-O", "metadata_csum_seed,orphan_file"], "8M"),
        false,
    ),
    (profile("parity-ext4-1k-nocsum", &["-t", "ext4", "-b", "1024", "-g", "1024", "-N", "512", "-O", "^metadata_csum"], "4M"), false),
    (profile("parity-ext2-1k", &["-t", "ext2", "-b", "1024", "-g", "1024", "-N", "512"], "4M"), false),
    (profile("parity-ext4-4k-inline", &["-t", "ext4", "-b", "4096", "-N", "512", "-O", "inline_data"], "8M"), false),
    (profile("parity-ext4-1k-quota", &["-t", "ext4", "-b", "1024", "-g", "1024", "-N", "512", "-O", "quota,project"], "4M"), false),
    (profile("parity-ext4-1k-recover", &["-t", "ext4", "-b", "1024", "-g", "1024", "-N", "512"], "4M"), true),
];

/// A library-made template: formatted by ext4-mkfs, the tree copied in by
/// ext4-fs (journaled, not bulk), xattrs and a rename on top.
fn library_template(tree: &Path, work: &Path) -> Template {
    use ext4_fs::{Filesystem, OpenOptions, XattrMode};
    let img = work.join("parity-library.img");
    let dev = ext4_blockdev::FileDevice::create(&img, 8 << 20).unwrap();
    let mut opts = ext4_mkfs::FormatOptions::new(ext4_mkfs::FsType::Ext4);
    opts.block_size = Some(1024);
    opts.time = Some(1_700_000_000);
    ext4_mkfs::format(&dev, &opts, &mut |_| std::ops::ControlFlow::Continue(())).expect("format");
    let mut fs = Filesystem::open(dev, OpenOptions::read_write()).expect("open");
    let copy = ext4_fs::populate::CopyOptions::default();
    fs.copy_dir_contents(tree, 2, &copy, &mut |_| {}).expect("copy");
    let small = fs.lookup("/small").unwrap();
    fs.set_xattr(small, b"user.small", b"tiny", XattrMode::Any).unwrap();
    let medium = fs.lookup("/medium").unwrap();
    fs.set_xattr(medium, b"user.big", &[b'v'; 700], XattrMode::Any).unwrap();
    let a = fs.lookup("/a").unwrap();
    fs.rename_in(a, b"hard", 2, b"hard-moved", ext4_fs::RenameMode::Replace).unwrap();
    fs.close().expect("close");
    ext4_testkit::oracle::assert_fsck_clean(&img);
    let mut paths = small_tree_paths();
    paths.retain(|p| p != "/a/hard");
    let t = Template::from_image("parity-library", &img, &paths, &small_tree_dirs()).unwrap();
    let _ = std::fs::remove_file(&img);
    t
}

/// A kernel-made template: mke2fs, then the kernel copies the tree in,
/// sets xattrs and grows the big directory into an htree.
fn kernel_template(tree: &Path, work: &Path) -> Template {
    let img = work.join("parity-kernel.img");
    let p = profile("parity-kernel", &["-t", "ext4", "-b", "1024", "-N", "1024"], "8M");
    fixtures::mke2fs(&img, &p, None).unwrap();
    {
        let m = LoopMount::new(&img, "").expect("loop mount");
        let mut from = tree.as_os_str().to_owned();
        from.push("/.");
        assert!(Command::new("cp").arg("-a").arg(from).arg(m.path()).status().unwrap().success());
        xattr::set(m.path().join("small"), "user.small", b"tiny").unwrap();
        xattr::set(m.path().join("medium"), "user.big", &[b'v'; 700]).unwrap();
        for i in 240..400 {
            std::fs::write(m.path().join(format!("big/entry-{i:04}-with-a-rather-long-name-to-fill-blocks")), b"x").unwrap();
        }
        m.unmount().expect("unmount");
    }
    ext4_testkit::oracle::assert_fsck_clean(&img);
    let t = Template::from_image("parity-kernel", &img, &small_tree_paths(), &small_tree_dirs()).unwrap();
    let _ = std::fs::remove_file(&img);
    t
}

//! POSIX ACLs through `ext4 mount`: `setfacl` on the FUSE mount stores the
//! kernel's on-disk form (the kernel's own mount shows the same ACL and
//! mode), `getfacl` on the FUSE mount shows what the kernel set, and e2fsck
//! stays silent.

use std::path::Path;
use std::process::Command;

fn have(tool: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("runs");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn acl_of(path: &Path) -> String {
    let text = run(Command::new("getfacl").arg("-n").arg("-c").arg("-p").arg(path));
    text.lines().filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n")
}

#[ext4_testkit::oracle_test(loop_mount, fuse, setfacl, e2fsprogs)]
fn acls_through_fuse_match_the_kernel() {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !ext4_testkit::require(
        root && Path::new("/dev/fuse").exists() && have("setfacl") && have("mke2fs") && ext4_testkit::oracle::can_loop_mount(),
        "needs root, /dev/fuse, setfacl/getfacl (apt acl), e2fsprogs and loop mounts",
    ) {
        return;
    }
    let dir_tmp = ext4_testkit::scratch_dir("ext4-fuse-acl");
    let dir = dir_tmp.path().to_path_buf();
    let img = dir.join("img");
    run(Command::new("mke2fs").args(["-q", "-F", "-t", "ext4"]).arg(&img).arg("32M"));
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let ext4 = env!("CARGO_BIN_EXE_ext4");

    // The kernel sets one ACL.
    {
        let m = ext4_testkit::oracle::LoopMount::new(&img, "").unwrap();
        std::fs::write(m.path().join("by-kernel"), b"k").unwrap();
        run(Command::new("setfacl").args(["-m", "u:1234:rwx,g:4321:r"]).arg(m.path().join("by-kernel")));
        m.unmount().unwrap();
    }
    // FUSE reads it and sets others (an extended ACL, a default ACL, one equal to the mode).
    run(Command::new(ext4).arg("mount").arg(&img).arg(&mnt));
    let fuse_view = acl_of(&mnt.join("by-kernel"));
    std::fs::write(mnt.join("by-fuse"), b"f").unwrap();
    run(Command::new("setfacl").args(["-m", "u:1000:r,g:2000:rw,o::-"]).arg(mnt.join("by-fuse")));
    std::fs::create_dir(mnt.join("dir")).unwrap();
    run(Command::new("setfacl").args(["-d", "-m", "u:77:rx"]).arg(mnt.join("dir")));
    std::fs::write(mnt.join("plain"), b"p").unwrap();
    run(Command::new("setfacl").args(["-m", "u::rw,g::r,o::r"]).arg(mnt.join("plain")));
    let fuse_acls: Vec<String> = ["by-fuse", "dir", "plain"].iter().map(|n| acl_of(&mnt.join(n))).collect();
    run(Command::new("umount").arg(&mnt));
    std::thread::sleep(std::time::Duration::from_millis(500));
    if let Some(p) = ext4_testkit::oracle::e2fsck_problems(&img) {
        panic!("e2fsck after the FUSE session:\n{p}");
    }
    let m = ext4_testkit::oracle::LoopMount::new(&img, "").unwrap();
    assert_eq!(fuse_view, acl_of(&m.path().join("by-kernel")), "the kernel's ACL as FUSE shows it");
    assert!(fuse_view.contains("user:1234:rwx") && fuse_view.contains("group:4321:r--"), "{fuse_view}");
    for (n, seen) in ["by-fuse", "dir", "plain"].iter().zip(&fuse_acls) {
        assert_eq!(&acl_of(&m.path().join(n)), seen, "{n}: the kernel sees what FUSE set");
    }
    assert!(fuse_acls[0].contains("user:1000:r--") && fuse_acls[0].contains("mask::rw-"), "{}", fuse_acls[0]);
    assert!(fuse_acls[1].contains("default:user:77:r-x"), "{}", fuse_acls[1]);
    // An ACL equal to the mode is not stored (as the kernel does).
    let xattrs = run(Command::new("getfattr").args(["-d", "-m", "-"]).arg(m.path().join("plain")));
    assert!(!xattrs.contains("posix_acl_access"), "{xattrs}");
    m.unmount().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

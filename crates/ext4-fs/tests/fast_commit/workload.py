"""A random workload for fast-commit crash images.

usage: workload.py MOUNTPOINT SEED

Builds a small tree (for one seed in seven with a directory of a few
hundred entries, indexed), makes it durable with a full commit (syncfs), then runs
random operations (creates, appends, overwrites, truncates, links, unlinks,
renames, mkdir, rmdir, symlinks, chmod, utime, fallocate), each followed by
an fsync with some probability, and most often a last stretch after a
full commit of operations the kernel commits fast, so that the last of
them reach the disk only as fast commits. Ends with EXT4_IOC_SHUTDOWN and EXT4_GOING_FLAGS_NOLOGFLUSH:
only what the fsyncs made durable survives. Prints the shutdown time in
nanoseconds. Every file is closed before it is unlinked (the kernel fails
its own recovery when a fast commit holds an open, unlinked inode).
"""

import ctypes
import fcntl
import os
import random
import struct
import sys
import time

EXT4_IOC_SHUTDOWN = 0x8004587D
NOLOGFLUSH = 2

root, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
os.chdir(root)
files, dirs, syms = [], ["."], []


def name():
    return "n%x" % rng.randrange(1 << 24)


def size():
    return rng.choice([0, rng.randrange(1, 300), rng.randrange(300, 5000), rng.randrange(5000, 70000)])


def syncfs():
    """A full commit of this filesystem only (sync() would commit every
    mounted filesystem, other tests' too)."""
    fd = os.open(".", os.O_RDONLY)
    ctypes.CDLL(None, use_errno=True).syncfs(fd)
    os.close(fd)


def fsync(path):
    if os.path.islink(path):
        path = os.path.dirname(path) or "."
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def write(path, mode, data, offset=None):
    with open(path, mode) as f:
        if offset is not None:
            f.seek(offset)
        f.write(data)


def create():
    p = os.path.join(rng.choice(dirs), name())
    write(p, "wb", rng.randbytes(size()))
    files.append(p)
    return p


def mkdir():
    p = os.path.join(rng.choice(dirs), name())
    os.mkdir(p)
    dirs.append(p)
    return p


def append():
    p = rng.choice(files)
    write(p, "ab", rng.randbytes(size()))
    return p


def overwrite():
    p = rng.choice(files)
    n = os.path.getsize(p)
    write(p, "r+b", rng.randbytes(rng.randrange(1, 9000)), rng.randrange(0, n + 1))
    return p


def truncate():
    p = rng.choice(files)
    n = os.path.getsize(p)
    os.truncate(p, rng.choice([0, rng.randrange(0, n + 1), n + rng.randrange(1, 20000)]))
    return p


def fallocate():
    p = rng.choice(files)
    with open(p, "r+b") as f:
        os.posix_fallocate(f.fileno(), rng.randrange(0, 40000), rng.randrange(1, 20000))
    return p


def link():
    src = rng.choice(files)
    p = os.path.join(rng.choice(dirs), name())
    os.link(src, p)
    files.append(p)
    return p


def unlink():
    p = rng.choice(files + syms)
    os.unlink(p)
    (files if p in files else syms).remove(p)
    return os.path.dirname(p) or "."


def rename():
    src = rng.choice(files)
    others = [f for f in files if f != src and not os.path.samefile(f, src)]
    if others and rng.random() < 0.4:
        dst = rng.choice(others)
        files.remove(dst)
    else:
        dst = os.path.join(rng.choice(dirs), name())
    os.rename(src, dst)
    files[files.index(src)] = dst
    return dst


def rename_dir():
    movable = [d for d in dirs if d != "."]
    src = rng.choice(movable)
    parents = [d for d in dirs if d != src and not d.startswith(src + "/")]
    dst = os.path.join(rng.choice(parents), name())
    os.rename(src, dst)

    def moved(p):
        return dst + p[len(src):] if p == src or p.startswith(src + "/") else p

    for lst in (files, dirs, syms):
        lst[:] = [moved(p) for p in lst]
    return dst


def rmdir():
    empty = [d for d in dirs if d != "." and not os.listdir(d)]
    p = rng.choice(empty)
    os.rmdir(p)
    dirs.remove(p)
    return os.path.dirname(p) or "."


def symlink():
    p = os.path.join(rng.choice(dirs), name())
    target = "t" * rng.choice([rng.randrange(1, 59), rng.randrange(60, 300)])
    os.symlink(target, p)
    syms.append(p)
    return p


def chmod():
    p = rng.choice(files)
    os.chmod(p, rng.randrange(0o1000))
    return p


def utime():
    p = rng.choice(files)
    t = rng.randrange(1_000_000_000, 2_000_000_000) * 1_000_000_000 + rng.randrange(1_000_000_000)
    os.utime(p, ns=(t, t + rng.randrange(1 << 30)))
    return p


OPS = [
    (create, 6, lambda: True),
    (mkdir, 2, lambda: True),
    (append, 4, lambda: files),
    (overwrite, 3, lambda: files),
    (truncate, 3, lambda: files),
    (fallocate, 1, lambda: files),
    (link, 2, lambda: files),
    (unlink, 3, lambda: files or syms),
    (rename, 3, lambda: files),
    (rename_dir, 1, lambda: len(dirs) > 1),
    (rmdir, 1, lambda: any(d != "." and not os.listdir(d) for d in dirs)),
    (symlink, 1, lambda: True),
    (chmod, 1, lambda: files),
    (utime, 1, lambda: files),
]

for _ in range(rng.randrange(3, 12)):
    rng.choice([create, create, mkdir])()
if seed % 7 == 6:
    # A directory big enough for an htree index, whose entries the
    # operations below pick most of the time.
    os.mkdir("big")
    dirs.append("big")
    for i in range(rng.randrange(200, 500)):
        p = "big/a-file-with-a-longer-name-%04d" % i
        write(p, "wb", rng.randbytes(rng.randrange(0, 100)))
        files.append(p)
syncfs()
for _ in range(rng.randrange(15, 60)):
    ops = [(f, w) for f, w, ok in OPS if ok()]
    op = rng.choices([f for f, _ in ops], [w for _, w in ops])[0]
    touched = op()
    r = rng.random()
    if r < 0.6:
        fsync(touched if rng.random() < 0.8 else (os.path.dirname(touched) or "."))
    elif r < 0.61:
        syncfs()
# A last stretch after a full commit, of operations the kernel commits
# fast (directory renames, fallocate and symlinks force full commits).
if rng.random() < 0.7:
    syncfs()
    fast = {create, mkdir, append, overwrite, truncate, link, unlink, rename, rmdir, chmod, utime}
    for _ in range(rng.randrange(1, 15)):
        ops = [(f, w) for f, w, ok in OPS if f in fast and ok()]
        op = rng.choices([f for f, _ in ops], [w for _, w in ops])[0]
        touched = op()
        # An fsync of a directory is a full commit: sync a file instead.
        if os.path.isdir(touched) and files:
            touched = rng.choice(files)
        if rng.random() < 0.8:
            fsync(touched)
if files:
    fsync(rng.choice(files))
crash = time.time_ns()
fd = os.open(".", os.O_RDONLY)
fcntl.ioctl(fd, EXT4_IOC_SHUTDOWN, struct.pack("I", NOLOGFLUSH))
os.close(fd)
print(crash)

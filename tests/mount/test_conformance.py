#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# POSIX conformance checks in the spirit of pjdfstest, for what the mount's
# model (fsmodel.py; DESIGN.md's Semantics table) allows: open / create /
# close / unlink / mkdir / rmdir / rename / readdir / stat / statfs /
# truncate and their errnos, name lengths (NAME_MAX 255 bytes; S3's
# 1024-byte keys), special characters in names, and each refusal of the
# model with its errno. Each check names the call; a failure says which
# check, what was expected and what came back.
import errno
import os
import stat
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import hpcops_test as ht  # noqa: E402

MIB = 1 << 20


class Checks:
    """Collects failed checks so one run reports all of them."""

    def __init__(self, name):
        self.name = name
        self.failed = []
        self.count = 0

    def errno(self, want, fn, *args, what):
        """fn(*args) must fail with want (an errno, or a set), or succeed
        when want is 0. Returns fn's result on success."""
        self.count += 1
        wants = want if isinstance(want, (set, frozenset)) else {want}
        try:
            r = fn(*args)
        except OSError as e:
            if e.errno not in wants:
                self.failed.append("%s: got %s, want %s" % (
                    what, errno.errorcode.get(e.errno, e.errno), names(wants)))
            return None
        if 0 not in wants:
            self.failed.append("%s: succeeded, want %s" % (what, names(wants)))
        return r

    def eq(self, got, want, what):
        self.count += 1
        if got != want:
            self.failed.append("%s: got %s, want %s" % (what, short(got), short(want)))

    def true(self, cond, what):
        self.count += 1
        if not cond:
            self.failed.append(what)

    def done(self):
        print("%s: %d checks, %d failed" % (self.name, self.count, len(self.failed)))
        if self.failed:
            raise AssertionError("%d of %d checks failed:\n  %s" % (
                len(self.failed), self.count, "\n  ".join(self.failed)))


def names(errs):
    return "|".join(sorted("OK" if e == 0 else errno.errorcode.get(e, str(e)) for e in errs))


def short(x):
    r = repr(x)
    return r if len(r) < 160 else r[:160] + "...(%d)" % len(r)


def body(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def keys(s3, bucket):
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        out.extend(o["Key"] for o in page.get("Contents", []))
    return sorted(out)


def write_new(path, data, flags=os.O_WRONLY | os.O_CREAT | os.O_EXCL):
    fd = os.open(path, flags, 0o644)
    try:
        if data:
            os.write(fd, data)
    finally:
        os.close(fd)


def read(path, flags=os.O_RDONLY):
    fd = os.open(path, flags)
    try:
        out = b""
        while True:
            b = os.read(fd, MIB)
            if not b:
                return out
            out += b
    finally:
        os.close(fd)


def setup(objects):
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("c")
    for k, v in objects.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    return s3, bucket


# ---- open, create, close, read, write ----

def test_open_create_close():
    c = Checks("open/create/close")
    s3, bucket = setup({"obj": b"0123456789", "dir/x": b"x"})
    with ht.Mount(bucket, ["--metadata-ttl", "0"]) as m:
        p = lambda *n: os.path.join(m.path, *n)  # noqa: E731
        # create, write, close: the object exists when close returns
        fd = c.errno(0, os.open, p("new"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644,
                     what="open(O_CREAT|O_EXCL) of a new name")
        if fd is not None:
            st = os.fstat(fd)
            c.eq((stat.S_ISREG(st.st_mode), st.st_size), (True, 0), "fstat of the new file")
            c.eq(os.write(fd, b"abc"), 3, "write() of 3 bytes")
            c.eq(os.fstat(fd).st_size, 3, "fstat size after the write")
            c.errno(0, os.close, fd, what="close of the new file")
            c.eq(body(s3, bucket, "new"), b"abc", "the object right after close")
            c.eq(os.stat(p("new")).st_size, 3, "stat size after close")
        # what already exists
        c.errno(errno.EEXIST, os.open, p("obj"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644,
                what="O_CREAT|O_EXCL of an existing object")
        c.errno(errno.EEXIST, os.open, p("dir"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644,
                what="O_CREAT|O_EXCL of a directory")
        c.errno(errno.EISDIR, os.open, p("dir"), os.O_WRONLY | os.O_CREAT, 0o644,
                what="O_CREAT|O_WRONLY of a directory")
        c.errno(errno.EISDIR, os.open, p("dir"), os.O_WRONLY, what="O_WRONLY of a directory")
        c.errno(errno.EISDIR, os.open, p("dir"), os.O_RDWR, what="O_RDWR of a directory")
        c.errno(errno.ENOENT, os.open, p("missing"), os.O_RDONLY, what="open of a missing name")
        c.errno(errno.ENOENT, os.open, p("nodir", "f"), os.O_WRONLY | os.O_CREAT, 0o644,
                what="create in a missing directory")
        c.errno(errno.ENOTDIR, os.open, p("obj", "f"), os.O_WRONLY | os.O_CREAT, 0o644,
                what="create under a file")
        c.errno(errno.ENOTDIR, os.open, p("obj", "f"), os.O_RDONLY, what="open under a file")
        # reads
        fd = os.open(p("obj"), os.O_RDONLY)
        try:
            c.eq(os.pread(fd, 4, 3), b"3456", "pread 4 bytes at 3")
            c.eq(os.pread(fd, 100, 8), b"89", "pread across the end")
            c.eq(os.pread(fd, 10, 10), b"", "pread at the end")
            c.eq(os.pread(fd, 10, 1000), b"", "pread past the end")
            c.eq(os.lseek(fd, 0, os.SEEK_END), 10, "lseek(SEEK_END)")
            c.eq(os.lseek(fd, 2, os.SEEK_SET), 2, "lseek(SEEK_SET)")
            c.eq(os.read(fd, 3), b"234", "read after lseek")
            c.errno(errno.EBADF, os.write, fd, b"x", what="write on an O_RDONLY fd")
            c.errno(0, os.fsync, fd, what="fsync of a read fd")
        finally:
            os.close(fd)
        fd = os.open(p("wonly"), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            c.errno(errno.EBADF, os.read, fd, 1, what="read on an O_WRONLY fd")
        finally:
            os.close(fd)
        # O_CREAT|O_TRUNC of a new name is a plain create
        write_new(p("ct"), b"created", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        c.eq(body(s3, bucket, "ct"), b"created", "O_CREAT|O_TRUNC of a new name")
        # O_RDWR|O_CREAT of a new name writes it
        write_new(p("rwc"), b"rdwr", os.O_RDWR | os.O_CREAT)
        c.eq(body(s3, bucket, "rwc"), b"rdwr", "O_RDWR|O_CREAT of a new name")
    ht.delete_bucket(bucket)
    c.done()


def test_write_rules():
    # sequential only, one writer, no reading or unlinking before close
    c = Checks("write rules")
    s3, bucket = setup({"obj": b"old"})
    with ht.Mount(bucket, ["--metadata-ttl", "0", "--allow-delete"]) as m:
        p = lambda *n: os.path.join(m.path, *n)  # noqa: E731
        fd = os.open(p("f"), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"0123456789")
            c.errno(errno.EINVAL, os.pwrite, fd, b"x", 11, what="write past the end (a hole)")
            c.errno(errno.EINVAL, os.pwrite, fd, b"x", 5, what="write back into the file")
            c.errno(errno.EINVAL, os.pwrite, fd, b"x", 0, what="write at 0 again")
            c.eq(os.pwrite(fd, b"ab", 10), 2, "write at the end after the refusals")
            c.errno(errno.EPERM, os.open, p("f"), os.O_WRONLY | os.O_TRUNC,
                    what="second open for writing (O_TRUNC)")
            c.errno(errno.EPERM, os.open, p("f"), os.O_WRONLY | os.O_CREAT, 0o644,
                    what="second open for writing (O_CREAT)")
            c.errno(errno.EBUSY, os.open, p("f"), os.O_RDONLY,
                    what="open for reading of a file being written")
            c.errno(errno.EPERM, os.unlink, p("f"), what="unlink of a file being written")
            st = os.stat(p("f"))
            c.eq((stat.S_ISREG(st.st_mode), st.st_size), (True, 12),
                 "stat of a file being written")
            c.true("f" in os.listdir(m.path), "a file being written is listed")
            c.eq(keys(s3, bucket), ["obj"], "no object before close")
            os.ftruncate(fd, 20)  # growing while writing: zeros
            c.eq(os.pwrite(fd, b"end", 20), 3, "write after a growing ftruncate")
        finally:
            os.close(fd)
        c.eq(body(s3, bucket, "f"), b"0123456789ab" + bytes(8) + b"end",
             "the object after close")
        # fsync completes: later writes EINVAL, the bytes stay
        fd = os.open(p("s"), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"synced")
            c.errno(0, os.fsync, fd, what="fsync of a file being written")
            c.eq(body(s3, bucket, "s"), b"synced", "the object after fsync")
            c.errno(errno.EINVAL, os.write, fd, b"more", what="write after fsync")
        finally:
            os.close(fd)
        c.eq(body(s3, bucket, "s"), b"synced", "the object after fsync and close")
        # writes need O_TRUNC and the opt-in on an existing object
        c.errno(errno.EPERM, os.open, p("obj"), os.O_WRONLY, what="O_WRONLY of an object")
        c.errno(errno.EPERM, os.open, p("obj"), os.O_WRONLY | os.O_TRUNC,
                what="O_TRUNC without --allow-overwrite")
        c.errno(errno.EPERM, os.open, p("obj"), os.O_WRONLY | os.O_APPEND,
                what="O_APPEND without --allow-append")
        c.eq(body(s3, bucket, "obj"), b"old", "the object after the refusals")
    ht.delete_bucket(bucket)
    c.done()


def test_overwrite_append_opt_ins():
    c = Checks("opt-ins")
    s3, bucket = setup({"o": b"old", "a": b"head-"})
    with ht.Mount(bucket, ["--metadata-ttl", "0", "--allow-overwrite", "--allow-append"]) as m:
        p = lambda *n: os.path.join(m.path, *n)  # noqa: E731
        c.errno(errno.EPERM, os.open, p("o"), os.O_WRONLY,
                what="O_WRONLY without O_TRUNC, with --allow-overwrite")
        write_new(p("o"), b"new", os.O_WRONLY | os.O_TRUNC)
        c.eq(body(s3, bucket, "o"), b"new", "O_TRUNC with --allow-overwrite")
        c.eq(read(p("o")), b"new", "read back after the overwrite")
        fd = os.open(p("o"), os.O_WRONLY | os.O_TRUNC)
        os.close(fd)
        c.eq(body(s3, bucket, "o"), b"", "O_TRUNC and close without a write empties it")
        write_new(p("a"), b"tail", os.O_WRONLY | os.O_APPEND)
        c.eq(body(s3, bucket, "a"), b"head-tail", "O_APPEND with --allow-append")
        c.eq(os.stat(p("a")).st_size, 9, "size after the append")
    ht.delete_bucket(bucket)
    c.done()


# ---- unlink ----

def test_unlink():
    c = Checks("unlink")
    s3, bucket = setup({"f": b"x", "keep": b"k", "d/g": b"g"})
    with ht.Mount(bucket, ["--metadata-ttl", "0"]) as m:
        p = lambda *n: os.path.join(m.path, *n)  # noqa: E731
        c.errno(errno.EPERM, os.unlink, p("keep"), what="unlink without --allow-delete")
        c.eq(body(s3, bucket, "keep"), b"k", "the object after a refused unlink")
    with ht.Mount(bucket, ["--metadata-ttl", "0", "--allow-delete"]) as m:
        p = lambda *n: os.path.join(m.path, *n)  # noqa: E731
        c.errno(0, os.unlink, p("f"), what="unlink with --allow-delete")
        c.errno(errno.ENOENT, os.stat, p("f"), what="stat after unlink")
        c.errno(errno.ENOENT, os.unlink, p("f"), what="unlink again")
        c.errno(errno.ENOENT, os.unlink, p("missing"), what="unlink of a missing name")
        c.errno(errno.EISDIR, os.unlink, p("d"), what="unlink of a directory")
        c.errno(errno.ENOTDIR, os.unlink, p("keep", "x"), what="unlink under a file")
        c.eq(sorted(os.listdir(m.path)), ["d", "keep"], "listing after unlink")
        # a file just written and closed can be unlinked at once
        write_new(p("w"), b"w")
        c.errno(0, os.unlink, p("w"), what="unlink right after close")
        c.errno(0, os.unlink, p("d", "g"), what="unlink of the last file of a directory")
        c.errno(errno.ENOENT, os.stat, p("d"), what="the directory of no keys is gone")
    c.eq(keys(s3, bucket), ["keep"], "keys at the end")
    ht.delete_bucket(bucket)
    c.done()


# ---- mkdir, rmdir ----

def test_mkdir_rmdir():
    c = Checks("mkdir/rmdir")
    s3, bucket = setup({"f": b"x", "full/a": b"a", "marker/": b"", "deep/in/": b""})
    with ht.Mount(bucket, ["--metadata-ttl", "0"]) as m:
        p = lambda *n: os.path.join(m.path, *n)  # noqa: E731
        c.errno(0, os.mkdir, p("new"), what="mkdir")
        st = os.stat(p("new"))
        c.eq(stat.S_IMODE(st.st_mode) if stat.S_ISDIR(st.st_mode) else None, 0o755,
             "mode of a new directory")
        c.true("new" in os.listdir(m.path), "a new directory is listed")
        c.eq(keys(s3, bucket), ["deep/in/", "f", "full/a", "marker/"],
             "mkdir writes nothing to S3")
        c.errno(errno.EEXIST, os.mkdir, p("new"), what="mkdir of an existing directory")
        c.errno(errno.EEXIST, os.mkdir, p("full"), what="mkdir of a directory from S3")
        c.errno(errno.EEXIST, os.mkdir, p("f"), what="mkdir over a file")
        c.errno(errno.ENOENT, os.mkdir, p("nodir", "x"), what="mkdir in a missing directory")
        c.errno(errno.ENOTDIR, os.mkdir, p("f", "x"), what="mkdir under a file")
        c.errno(0, os.makedirs, p("new", "a", "b"), what="mkdir -p inside a local directory")
        c.errno(errno.ENOTEMPTY, os.rmdir, p("new", "a"), what="rmdir of a local non-empty dir")
        c.errno(0, os.rmdir, p("new", "a", "b"), what="rmdir of an empty local directory")
        c.errno(errno.ENOENT, os.stat, p("new", "a", "b"), what="stat after rmdir")
        c.errno(errno.ENOTEMPTY, os.rmdir, p("full"), what="rmdir of a directory with files")
        c.errno(errno.ENOTDIR, os.rmdir, p("f"), what="rmdir of a file")
        c.errno(errno.ENOENT, os.rmdir, p("missing"), what="rmdir of a missing name")
        c.errno(errno.EPERM, os.rmdir, p("marker"),
                what="rmdir of a marker-only directory without --allow-delete")
        c.errno(errno.ENOTEMPTY, os.rmdir, p("deep"), what="rmdir of a dir holding a marker dir")
        # a file written in a local directory puts it in S3
        write_new(p("new", "a", "f"), b"in a")
        c.eq(body(s3, bucket, "new/a/f"), b"in a", "a file in a local directory")
        c.errno(errno.ENOTEMPTY, os.rmdir, p("new"), what="rmdir above a written file")
    c.eq("marker/" in keys(s3, bucket), True, "the marker after the refused rmdir")
    with ht.Mount(bucket, ["--metadata-ttl", "0", "--allow-delete"]) as m:
        p = lambda *n: os.path.join(m.path, *n)  # noqa: E731
        c.errno(0, os.rmdir, p("marker"), what="rmdir of a marker-only dir with --allow-delete")
        c.errno(errno.ENOENT, os.stat, p("marker"), what="stat after rmdir of the marker dir")
        c.errno(0, os.rmdir, p("deep", "in"), what="rmdir of a nested marker dir")
        c.errno(errno.ENOENT, os.stat, p("deep"), what="its parent had no other key")
    c.eq(keys(s3, bucket), ["f", "full/a", "new/a/f"], "keys at the end")
    ht.delete_bucket(bucket)
    c.done()


def test_local_directory_follows_s3_once_written():
    # Mountpoint (doc/SEMANTICS.md, rmdir): "As soon as a file is committed
    # to the S3 bucket by Mountpoint, the directory will be considered to
    # exist implicitly. If Mountpoint later observes that there are no
    # files existing for that directory in S3, Mountpoint will consider the
    # directory to have been deleted."
    c = Checks("local directory once written")
    s3, bucket = setup({})
    with ht.Mount(bucket, ["--metadata-ttl", "0", "--allow-delete"]) as m:
        p = lambda *n: os.path.join(m.path, *n)  # noqa: E731
        os.mkdir(p("d"))
        write_new(p("d", "f"), b"x")
        os.unlink(p("d", "f"))
        c.errno(errno.ENOENT, os.stat, p("d"), what="stat of d after its only file went")
        c.eq(sorted(os.listdir(m.path)), [], "listing after d's only file went")
        os.mkdir(p("e"))
        write_new(p("e", "f"), b"x")
        s3.delete_object(Bucket=bucket, Key="e/f")  # by another client
        c.errno(errno.ENOENT, os.stat, p("e"), what="stat of e after another client deleted e/f")
    ht.delete_bucket(bucket)
    c.done()


# ---- rename ----

def test_rename():
    c = Checks("rename")
    s3, bucket = setup({"a": b"AAA", "dir/x": b"x", "taken": b"T", "t2": b"T2"})
    with ht.Mount(bucket, ["--metadata-ttl", "0"]) as m:
        p = lambda *n: os.path.join(m.path, *n)  # noqa: E731
        c.errno(errno.EPERM, os.rename, p("a"), p("b"), what="rename without --allow-rename")
        c.errno(errno.EXDEV, os.rename, p("dir"), p("dir2"), what="rename of a directory")
        c.errno(errno.ENOENT, os.rename, p("missing"), p("b"), what="rename of a missing name")
    with ht.Mount(bucket, ["--metadata-ttl", "0", "--allow-rename"]) as m:
        p = lambda *n: os.path.join(m.path, *n)  # noqa: E731
        c.errno(0, os.rename, p("a"), p("b"), what="rename of a file")
        c.errno(errno.ENOENT, os.stat, p("a"), what="the old name after rename")
        c.eq(read(p("b")), b"AAA", "the new name's bytes")
        c.errno(0, os.rename, p("b"), p("b"), what="rename onto itself")
        c.errno(errno.EPERM, os.rename, p("b"), p("taken"),
                what="rename onto an object without --allow-overwrite")
        c.errno(errno.EISDIR, os.rename, p("b"), p("dir"), what="rename of a file onto a directory")
        c.errno(errno.ENOTDIR, os.rename, p("dir"), p("b"),
                what="rename of a directory onto a file")
        c.errno(errno.EXDEV, os.rename, p("dir"), p("dir2"),
                what="rename of a directory with --allow-rename")
        c.errno(errno.ENOENT, os.rename, p("b"), p("nodir", "b"),
                what="rename into a missing directory")
        c.errno(errno.ENAMETOOLONG, os.rename, p("b"), p("n" * 256),
                what="rename to a 256-byte name")
        os.mkdir(p("local"))
        c.errno(0, os.rename, p("b"), p("local", "b"), what="rename into a local directory")
        c.eq(body(s3, bucket, "local/b"), b"AAA", "the object after the rename")
        fd = os.open(p("w"), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"w")
            c.errno(errno.EPERM, os.rename, p("w"), p("w2"),
                    what="rename of a file being written")
        finally:
            os.close(fd)
    with ht.Mount(bucket, ["--metadata-ttl", "0", "--allow-rename", "--allow-overwrite"]) as m:
        p = lambda *n: os.path.join(m.path, *n)  # noqa: E731
        c.errno(0, os.rename, p("t2"), p("taken"),
                what="rename onto an object with --allow-overwrite")
        c.eq(read(p("taken")), b"T2", "the replaced object")
    c.eq(keys(s3, bucket), ["dir/x", "local/b", "taken", "w"], "keys at the end")
    ht.delete_bucket(bucket)
    c.done()


# ---- readdir, stat, statfs ----

def test_readdir():
    c = Checks("readdir")
    objs = {"top": b"1", "d/a": b"22", "d/b/c": b"333", "d/b/": b"", "m/": b"",
            "shadow": b"file", "shadow/in": b"dir wins", "a//b": b"hidden",
            "x/./y": b"hidden", "x/../y": b"hidden", "x/ok": b"ok", "p/" + "L" * 256: b"hidden"}
    s3, bucket = setup(objs)
    with ht.Mount(bucket, ["--metadata-ttl", "0"]) as m:
        p = lambda *n: os.path.join(m.path, *n)  # noqa: E731

        def ls(*n):
            with os.scandir(p(*n)) as it:
                return sorted((e.name, "d" if e.is_dir(follow_symlinks=False) else "f")
                              for e in it)
        c.eq(ls(), [("a", "d"), ("d", "d"), ("m", "d"), ("p", "d"), ("shadow", "d"),
                    ("top", "f"), ("x", "d")], "listing of the root")
        c.eq(ls("d"), [("a", "f"), ("b", "d")], "listing of d")
        c.eq(ls("d", "b"), [("c", "f")], "listing of d/b (its marker is not a name)")
        c.eq(ls("m"), [], "listing of a marker-only directory")
        c.eq(ls("shadow"), [("in", "f")], "a directory hides the file of its name")
        c.eq(ls("a"), [], "a//b is hidden")
        c.eq(ls("x"), [("ok", "f")], "x/./y and x/../y are hidden")
        c.eq(ls("p"), [], "a component over 255 bytes is hidden")
        c.eq(read(p("shadow", "in")), b"dir wins", "the file in the shadowing directory")
        c.errno(errno.ENOTDIR, os.listdir, p("top"), what="readdir of a file")
        c.errno(errno.ENOENT, os.listdir, p("missing"), what="readdir of a missing name")
        # raw readdir has . and .. (os.listdir drops them; ls -a shows them)
        r = subprocess.run(["ls", "-a", p("d")], stdout=subprocess.PIPE, text=True,
                           env=dict(os.environ, LC_ALL="C"))
        c.eq(r.stdout.split("\n")[:2], [".", ".."], "ls -a shows . and ..")
        # sizes from the listing agree with stat
        c.eq(sorted((e.name, e.stat().st_size) for e in os.scandir(p("d")) if e.is_file()),
             [("a", 2)], "size in the listing")
        if "hiding key" not in m.stderr_text():
            c.failed.append("no log line about the hidden keys")
    ht.delete_bucket(bucket)
    c.done()


def test_stat_and_statfs():
    c = Checks("stat/statfs")
    s3, bucket = setup({"f": b"12345", "d/x": b"x"})
    with ht.Mount(bucket, ["--metadata-ttl", "0"]) as m:
        p = lambda *n: os.path.join(m.path, *n)  # noqa: E731
        st = os.stat(p("f"))
        c.eq(stat.S_ISREG(st.st_mode), True, "a file is S_IFREG")
        c.eq(stat.S_IMODE(st.st_mode), 0o644, "file mode")
        c.eq((st.st_uid, st.st_gid), (os.getuid(), os.getgid()), "owner is the mounting user")
        c.eq(st.st_size, 5, "st_size")
        c.eq(st.st_atime == st.st_mtime == st.st_ctime, True, "atime == mtime == ctime")
        lm = s3.head_object(Bucket=bucket, Key="f")["LastModified"].timestamp()
        c.eq(abs(st.st_mtime - lm) < 2, True, "mtime is the object's Last-Modified")
        st = os.stat(p("d"))
        c.eq((stat.S_ISDIR(st.st_mode), stat.S_IMODE(st.st_mode)), (True, 0o755), "dir mode")
        st = os.stat(m.path)
        c.eq(stat.S_ISDIR(st.st_mode), True, "the root is a directory")
        c.errno(errno.ENOENT, os.stat, p("missing"), what="stat of a missing name")
        c.errno(errno.ENOTDIR, os.stat, p("f", "x"), what="stat under a file")
        sv = os.statvfs(m.path)
        c.eq(sv.f_namemax, 255, "statfs f_namemax")
        c.eq(sv.f_bsize > 0 and sv.f_blocks > 0 and sv.f_bavail > 0, True,
             "statfs has room (df, installers)")
        c.eq(sv.f_files > 0 and sv.f_favail > 0, True, "statfs has inodes")
    with ht.Mount(bucket, ["--metadata-ttl", "0", "--uid", "1234", "--gid", "4321",
                           "--file-mode", "0600", "--dir-mode", "0700"]) as m:
        st = os.stat(os.path.join(m.path, "f"))
        c.eq((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (1234, 4321, 0o600),
             "--uid --gid --file-mode")
        st = os.stat(os.path.join(m.path, "d"))
        c.eq(stat.S_IMODE(st.st_mode), 0o700, "--dir-mode")
    ht.delete_bucket(bucket)
    c.done()


# ---- truncate ----

def test_truncate():
    c = Checks("truncate")
    s3, bucket = setup({"f": b"12345", "d/x": b"x"})
    with ht.Mount(bucket, ["--metadata-ttl", "0", "--allow-overwrite"]) as m:
        p = lambda *n: os.path.join(m.path, *n)  # noqa: E731
        c.errno(errno.EPERM, os.truncate, p("f"), 2, what="truncate of an object, smaller")
        c.errno(errno.EPERM, os.truncate, p("f"), 9, what="truncate of an object, larger")
        c.errno(errno.EPERM, os.truncate, p("f"), 0,
                what="truncate to 0 of an object (use O_TRUNC)")
        c.errno({0, errno.EPERM}, os.truncate, p("f"), 5, what="truncate to its own size")
        c.eq(body(s3, bucket, "f"), b"12345", "the object after the truncates")
        c.errno(errno.ENOENT, os.truncate, p("missing"), 0, what="truncate of a missing name")
        c.errno(errno.EISDIR, os.truncate, p("d"), 0, what="truncate of a directory")
        fd = os.open(p("w"), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"ab")
            c.errno(0, os.truncate, p("w"), 6, what="truncate(path) of a file being written")
            c.eq(os.fstat(fd).st_size, 6, "size after the growing truncate")
            c.eq(os.pwrite(fd, b"z", 6), 1, "write at the new end")
        finally:
            os.close(fd)
        c.eq(body(s3, bucket, "w"), b"ab\0\0\0\0z", "the object after the truncate")
    ht.delete_bucket(bucket)
    c.done()


# ---- names ----

SPECIAL = ["with space", " lead", "trail ", "caf\u00e9", "\u65e5\u672c\u8a9e", "\U0001F600",
           "pct%41", "pct%", "plus+sign", "q?mark", "hash#", 'dq"uote', "sq'uote",
           "back\\slash", "new\nline", "tab\tx", "tilde~", "star*", "amp&", "eq=",
           "colon:", "semi;", "lt<gt>", "pipe|", "-dash", ".hidden", "a..b", "...",
           "brace{}", "brack[]", "paren()", "dollar$", "excl!", "at@", "comma,",
           "caret^", "back`tick"]


def test_special_characters_in_names():
    c = Checks("special names")
    s3, bucket = setup({})
    for n in SPECIAL:  # objects from another client
        s3.put_object(Bucket=bucket, Key="in/" + n, Body=n.encode())
    with ht.Mount(bucket, ["--metadata-ttl", "0"]) as m:
        p = lambda *n: os.path.join(m.path, *n)  # noqa: E731
        c.eq(sorted(os.listdir(p("in"))), sorted(SPECIAL), "listing of names from S3")
        for n in SPECIAL:
            c.eq(c.errno(0, read, p("in", n), what="open and read %r" % n), n.encode(),
                 "bytes of %r" % n)
        os.mkdir(p("out"))
        for n in SPECIAL:
            c.errno(0, write_new, p("out", n), n.encode() + b"!", what="create %r" % n)
            c.errno(0, os.mkdir, p("out", n + ".d"), what="mkdir %r" % (n + ".d"))
            c.errno(0, write_new, p("out", n + ".d", "f"), b"f", what="create in dir %r" % n)
        got = [k for k in keys(s3, bucket) if k.startswith("out/")]
        want = sorted(["out/" + n for n in SPECIAL] + ["out/%s.d/f" % n for n in SPECIAL])
        c.eq(got, want, "keys written for the special names (byte for byte)")
        for n in SPECIAL:
            if "out/" + n in got:
                c.eq(body(s3, bucket, "out/" + n), n.encode() + b"!", "object %r" % n)
    ht.delete_bucket(bucket)
    c.done()


def test_name_lengths():
    c = Checks("name lengths")
    s3, bucket = setup({})
    ascii255, ascii256 = "a" * 255, "a" * 256
    mb255 = "\u65e5" * 85          # 255 bytes in UTF-8
    mb256 = "\u65e5" * 85 + "x"    # 256 bytes, 86 characters
    with ht.Mount(bucket, ["--metadata-ttl", "0"]) as m:
        p = lambda *n: os.path.join(m.path, *n)  # noqa: E731
        c.errno(0, write_new, p(ascii255), b"1", what="create a 255-byte name")
        c.errno(0, write_new, p(mb255), b"2", what="create a 255-byte multibyte name")
        c.errno(0, os.mkdir, p("d" * 255), what="mkdir a 255-byte name")
        for n, what in ((ascii256, "256 bytes"), (mb256, "256 bytes in 86 characters")):
            c.errno(errno.ENAMETOOLONG, write_new, p(n), b"x", what="create, %s" % what)
            c.errno(errno.ENAMETOOLONG, os.mkdir, p(n), what="mkdir, %s" % what)
            c.errno(errno.ENAMETOOLONG, os.stat, p(n), what="stat, %s" % what)
            c.errno(errno.ENAMETOOLONG, os.mknod, p(n), 0o100644, what="mknod, %s" % what)
        c.errno(errno.ENAMETOOLONG, os.stat, p(ascii256, "x"),
                what="a 256-byte directory component")
        c.eq(sorted(keys(s3, bucket)), sorted([ascii255, mb255]), "keys written")
        c.eq(read(p(mb255)), b"2", "read of the multibyte name")
    ht.delete_bucket(bucket)
    c.done()


def deep_dirs(total):
    """Directory components (250 bytes each) whose key reaches total bytes."""
    comps = []
    while len("/".join(comps)) + 251 <= total:
        comps.append("%03d" % len(comps) + "d" * 247)
    return comps


def test_s3_key_length():
    # S3 keys are at most 1024 bytes (radosgw answers 400 past that).
    c = Checks("key length")
    s3, bucket = setup({})
    with ht.Mount(bucket, ["--metadata-ttl", "0", "--allow-rename", "-d"]) as m:
        p = lambda *n: os.path.join(m.path, *n)  # noqa: E731
        dirs = deep_dirs(1010)           # 4 x 250 + 3 slashes = 1003 bytes
        base = "/".join(dirs)
        c.errno(0, os.makedirs, p(*dirs), what="mkdir -p to 1003 bytes")
        fit = "f" * (1024 - len(base) - 1)   # key of exactly 1024 bytes
        c.errno(0, write_new, p(*dirs, fit), b"fits", what="create a 1024-byte key")
        c.eq(body(s3, bucket, base + "/" + fit), b"fits", "the 1024-byte object")
        c.errno(errno.ENAMETOOLONG, write_new, p(*dirs, fit + "g"), b"x",
                what="create a 1025-byte key")
        c.errno(errno.ENAMETOOLONG, os.mknod, p(*dirs, fit + "g"), 0o100644,
                what="mknod of a 1025-byte key")
        c.errno(errno.ENAMETOOLONG, os.rename, p(*dirs, fit), p(*dirs, fit + "g"),
                what="rename to a 1025-byte key")
        said = [ln for ln in m.stderr_text().splitlines()
                if "1024" in ln and "debug:" not in ln]
        c.true(said != [], "a log line naming S3's 1024-byte key limit")
        # past the limit: lookups answer ENOENT without asking S3
        lines = len(m.stderr_text().splitlines())
        c.errno(errno.ENOENT, os.stat, p(*dirs, "x" * 100), what="stat of a 1104-byte key")
        asked = [ln for ln in m.stderr_text().splitlines()[lines:] if "x" * 100 in ln]
        c.eq(asked, [], "requests or errors logged for a lookup past 1024 bytes")
        # mkdir stays local past the limit, as elsewhere
        c.errno(0, os.makedirs, p(*dirs, "e" * 200, "f" * 200),
                what="mkdir -p past 1024 bytes")
        st = c.errno(0, os.stat, p(*dirs, "e" * 200, "f" * 200),
                     what="stat of a local directory past 1024 bytes")
        c.eq(st is not None and stat.S_ISDIR(st.st_mode), True, "it is a directory")
        c.eq(c.errno(0, os.listdir, p(*dirs, "e" * 200), what="readdir past 1024 bytes"),
             ["f" * 200], "listing past 1024 bytes")
        c.errno(errno.ENAMETOOLONG, write_new, p(*dirs, "e" * 200, "g"), b"x",
                what="create under a local directory past 1024 bytes")
        c.errno(0, os.rmdir, p(*dirs, "e" * 200, "f" * 200), what="rmdir past 1024 bytes")
        r = subprocess.run(["mkdir", "-p", "/".join([p(*dirs)] + ["h" * 200] * 3)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        c.eq((r.returncode, r.stdout), (0, ""), "mkdir -p of a deep tree from a shell")
    c.eq(keys(s3, bucket), [base + "/" + fit], "keys at the end")
    ht.delete_bucket(bucket)
    c.done()


def test_s3_key_length_counts_the_prefix():
    c = Checks("key length under a prefix")
    s3, bucket = setup({})
    prefix = "p" * 99 + "/"            # 100 bytes
    with ht.Mount(bucket + ":" + prefix, ["--metadata-ttl", "0"]) as m:
        dirs = deep_dirs(900)          # 3 x 250 + 2 = 752 bytes under the prefix
        os.makedirs(os.path.join(m.path, *dirs))
        room = 1024 - len(prefix) - len("/".join(dirs)) - 1
        c.errno(0, write_new, os.path.join(m.path, *dirs, "f" * room), b"ok",
                what="create a key of 1024 bytes with the prefix")
        c.errno(errno.ENAMETOOLONG, write_new, os.path.join(m.path, *dirs, "f" * (room + 1)),
                b"x", what="create a key of 1025 bytes with the prefix")
    c.eq(keys(s3, bucket), [prefix + "/".join(dirs) + "/" + "f" * room], "keys at the end")
    ht.delete_bucket(bucket)
    c.done()


# ---- the model's refusals ----

def test_refusals():
    c = Checks("refusals")
    s3, bucket = setup({"f": b"x", "d/x": b"x"})
    with ht.Mount(bucket, ["--metadata-ttl", "0"]) as m:
        p = lambda *n: os.path.join(m.path, *n)  # noqa: E731
        st = os.stat(p("f"))
        c.errno(errno.EPERM, os.chmod, p("f"), 0o600, what="chmod to another mode")
        c.errno(0, os.chmod, p("f"), 0o644, what="chmod to the mode it has")
        c.errno(errno.EPERM, os.chmod, p("d"), 0o700, what="chmod of a dir to another mode")
        c.errno(0, os.chmod, p("d"), 0o755, what="chmod of a dir to the mode it has")
        c.errno(errno.EPERM, os.chown, p("f"), 4242, 4242, what="chown to another owner")
        c.errno(0, os.chown, p("f"), st.st_uid, st.st_gid, what="chown to the owner it has")
        c.errno(0, os.chown, p("f"), -1, -1, what="chown -1 -1")
        c.errno(errno.EPERM, os.utime, p("f"), (1, 1), what="utime of a closed object")
        # ENOSYS from the daemon; the kernel turns link's into EPERM
        c.errno(errno.ENOSYS, os.symlink, "f", p("sym"), what="symlink")
        c.errno(errno.EPERM, os.link, p("f"), p("hard"), what="link")
        for fn, args, what in ((os.setxattr, (p("f"), "user.k", b"v"), "setxattr"),
                               (os.getxattr, (p("f"), "user.k"), "getxattr"),
                               (os.listxattr, (p("f"),), "listxattr"),
                               (os.removexattr, (p("f"), "user.k"), "removexattr")):
            c.errno(errno.EOPNOTSUPP, fn, *args, what=what)
        c.errno(errno.EPERM, os.mkfifo, p("fifo"), what="mkfifo")
        c.errno(errno.EPERM, os.mknod, p("chr"), stat.S_IFCHR | 0o600, os.makedev(1, 3),
                what="mknod of a character device")
        c.errno(errno.EPERM, os.mknod, p("blk"), stat.S_IFBLK | 0o600, os.makedev(7, 0),
                what="mknod of a block device")
        c.errno(errno.EPERM, os.mknod, p("sock"), stat.S_IFSOCK | 0o600, what="mknod of a socket")
        fd = os.open(p("w"), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"w")
            c.errno(0, os.utime, p("w"), (1_600_000_000, 1_600_000_000),
                    what="utime of a file being written")
        finally:
            os.close(fd)
        c.eq(int(os.stat(p("w")).st_mtime), 1_600_000_000, "the kept mtime")
        c.eq(keys(s3, bucket), ["d/x", "f", "w"], "keys after the refusals")
    with ht.Mount(bucket, ["--read-only"]) as m:
        p = lambda *n: os.path.join(m.path, *n)  # noqa: E731
        c.errno(errno.EROFS, write_new, p("n"), b"x", what="create on --read-only")
        c.errno(errno.EROFS, os.mkdir, p("nd"), what="mkdir on --read-only")
        c.errno(errno.EROFS, os.unlink, p("f"), what="unlink on --read-only")
        c.eq(read(p("f")), b"x", "read on --read-only")
    ht.delete_bucket(bucket)
    c.done()


# ---- decisions beyond issue 11's table (Mountpoint's documented model) ----

def test_fsync_makes_the_object_final_and_visible():
    # Mountpoint: fsync completes the upload; the file is then an object like
    # any other (readable, deletable), even before the writer closes it.
    c = Checks("after fsync")
    s3, bucket = setup({})
    with ht.Mount(bucket, ["--metadata-ttl", "0", "--allow-delete"]) as m:
        p = lambda *n: os.path.join(m.path, *n)  # noqa: E731
        fd = os.open(p("s"), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"synced")
            os.fsync(fd)
            c.eq(c.errno(0, read, p("s"), what="read of a fsynced file before close"),
                 b"synced", "bytes of a fsynced file before close")
            c.errno(0, os.unlink, p("s"), what="unlink of a fsynced file before close")
        finally:
            os.close(fd)
    ht.delete_bucket(bucket)
    c.done()


def test_no_overwrite_of_a_file_being_read():
    # Mountpoint: "You cannot overwrite files that are currently being
    # read." Otherwise a reader of the old version sees it shrink to zero.
    c = Checks("overwrite while read")
    s3, bucket = setup({"f": b"old version of f"})
    with ht.Mount(bucket, ["--metadata-ttl", "0", "--allow-overwrite"]) as m:
        p = lambda *n: os.path.join(m.path, *n)  # noqa: E731
        rfd = os.open(p("f"), os.O_RDONLY)
        try:
            wfd = c.errno(errno.EPERM, os.open, p("f"), os.O_WRONLY | os.O_TRUNC,
                          what="O_TRUNC of a file open for reading")
            c.eq(os.pread(rfd, 100, 4), b"version of f", "the reader's bytes")
            if wfd is not None:
                os.close(wfd)
        finally:
            os.close(rfd)
        c.errno(0, write_new, p("f"), b"new", os.O_WRONLY | os.O_TRUNC,
                what="O_TRUNC once the reader closed")
        c.eq(body(s3, bucket, "f"), b"new", "the object replaced once the reader closed")
    ht.delete_bucket(bucket)
    c.done()


if __name__ == "__main__":
    ht.main()

#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Writing through hpcops-mount on radosgw: byte-exact round trips checked
# through boto3 (the ETag shows one PutObject or the part count), the shell
# patterns that close or fork in the middle of a write, 16 writers at once,
# fsync, utimens, and local directories.
#
# Sizes: 0 B .. 1 GiB (HPCOPS_TEST_BIG=0 leaves out the 1 GiB file: the
# whole round trip takes ~25 s under ASan on an idle 2-core machine).
import errno
import hashlib
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import hpcops_test as ht  # noqa: E402

MIB = 1 << 20
PART = 8 * MIB  # the default --write-part-size


class Pattern:
    """Reproducible, position-dependent bytes: chunk i is a rotation of a
    random block, so a part landing at the wrong offset changes the hash."""

    def __init__(self, seed, block=4 * MIB):
        import random
        self.base = random.Random(seed).randbytes(block)
        self.buf = memoryview(self.base + self.base)

    def chunks(self, size, chunk=MIB):
        assert chunk <= len(self.base), "chunks larger than the block"
        off = 0
        i = 0
        n = len(self.base)
        while off < size:
            k = min(chunk, size - off)
            start = (i * 4099 + off) % n
            yield self.buf[start:start + k]
            off += k
            i += 1

    def md5(self, size, chunk=MIB):
        h = hashlib.md5()
        for c in self.chunks(size, chunk):
            h.update(c)
        return h.hexdigest()


def write_file(path, pat, size, chunk=MIB):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        for c in pat.chunks(size, chunk):
            n = os.write(fd, c)
            ht.check_eq(n, len(c), "bytes accepted by write()")
    finally:
        os.close(fd)


def object_md5(s3, bucket, key):
    """(md5 of the object's bytes through a streaming GET, its ETag, size)."""
    r = s3.get_object(Bucket=bucket, Key=key)
    h = hashlib.md5()
    size = 0
    for c in r["Body"].iter_chunks(MIB):
        h.update(c)
        size += len(c)
    return h.hexdigest(), r["ETag"].strip('"'), size


def parts_of(size):
    return (size + PART - 1) // PART


def check_object(s3, bucket, key, pat, size, chunk=MIB):
    got_md5, etag, got_size = object_md5(s3, bucket, key)
    ht.check_eq(got_size, size, "size of %s in S3" % key)
    want = pat.md5(size, chunk)
    ht.check_eq(got_md5, want, "md5 of the bytes of %s" % key)
    if size <= PART:
        # one PutObject: the ETag is the md5 of the bytes
        ht.check_eq(etag, want, "ETag of %s (single PutObject)" % key)
    else:
        ht.check_eq(etag.split("-")[-1], str(parts_of(size)),
                    "part count in the ETag %s of %s" % (etag, key))


def test_round_trips():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("w")
    pat = Pattern(1)
    sizes = [(0, MIB), (1, MIB), (4095, 1), (PART - 1, 128 * 1024),
             (PART, MIB), (PART + 1, MIB), (3 * PART + 12345, 1000 * 1000),
             (256 * MIB, MIB)]
    if os.environ.get("HPCOPS_TEST_BIG", "1") != "0":
        sizes.append((1024 * MIB, MIB))
    with ht.Mount(bucket) as m:
        for size, chunk in sizes:
            write_file(os.path.join(m.path, "f%d" % size), pat, size, chunk)
        for size, chunk in sizes:
            check_object(s3, bucket, "f%d" % size, pat, size, chunk)
            st = os.stat(os.path.join(m.path, "f%d" % size))
            ht.check_eq(st.st_size, size, "st_size through the mount")
        # and read back through the mount, as a user would
        size, chunk = 3 * PART + 12345, 1000 * 1000
        with open(os.path.join(m.path, "f%d" % size), "rb") as f:
            ht.check_eq(hashlib.md5(f.read()).hexdigest(),
                        pat.md5(size, chunk), "bytes read back through the mount")
    ht.check_eq(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []), [],
                "multipart uploads left open")
    ht.delete_bucket(bucket)


def sh(cmd, cwd):
    r = subprocess.run(["bash", "-c", cmd], cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise AssertionError("%r failed with %d: %s" % (cmd, r.returncode, r.stdout))
    return r.stdout


def get(s3, bucket, key, tries=50):
    """The object's bytes. Release (unlike the opener's flush) reaches the
    daemon after close() returns, so an object finished there may take a
    moment: poll briefly for those (touch)."""
    for i in range(tries):
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            if i == tries - 1:
                raise
            time.sleep(0.1)


def test_flush_from_forked_child():
    # $(seq 15) forks a child holding the fd; its FLUSH must not complete
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("w")
    with ht.Mount(bucket) as m:
        sh("for x in $(seq 15); do echo; done > loop", m.path)
        ht.check_eq(s3.get_object(Bucket=bucket, Key="loop")["Body"].read(),
                    b"\n" * 15, "content of the loop's file")
        # a child that writes too, then the parent: both end up in the object
        sh("{ echo parent1; (echo child); echo parent2; } > mixed", m.path)
        ht.check_eq(s3.get_object(Bucket=bucket, Key="mixed")["Body"].read(),
                    b"parent1\nchild\nparent2\n", "content written by parent and child")
        # a descriptor written through dups: `echo >&3` closes a dup each time
        sh("exec 3> fd3; echo a >&3; echo b >&3; (echo c >&3); exec 3>&-", m.path)
        ht.check_eq(s3.get_object(Bucket=bucket, Key="fd3")["Body"].read(),
                    b"a\nb\nc\n", "content written through dups of fd 3")
        fd = os.open(os.path.join(m.path, "dup"), os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"one ")
        os.close(os.dup(fd))
        os.write(fd, b"two")
        os.close(fd)
        ht.check_eq(s3.get_object(Bucket=bucket, Key="dup")["Body"].read(),
                    b"one two", "content written around the close of a dup")
    ht.delete_bucket(bucket)


def test_shell_tools():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("w")
    with ht.temp_dir() as tmp, ht.Mount(bucket) as m:
        src = os.path.join(tmp, "src")
        with open(src, "wb") as f:
            f.write(os.urandom(20 * MIB + 3))
        want = open(src, "rb").read()
        sh("touch t && echo x > e && dd if=%s of=dd bs=1M status=none && "
           "cp %s cp && tee tee1 < %s > /dev/null" % (src, src, src), m.path)
        sh("exec > >(tee tee2 > /dev/null); echo via-tee; echo line2", m.path)
        ht.check_eq(get(s3, bucket, "t"), b"", "touch")
        ht.check_eq(get(s3, bucket, "e"), b"x\n", "echo x > e")
        for k in ("dd", "cp", "tee1"):
            ht.check_eq(get(s3, bucket, k), want, k)
        ht.check_eq(get(s3, bucket, "tee2"), b"via-tee\nline2\n", "exec > >(tee f)")
        # tar x: files in new directories, times and owner/mode as the
        # mount shows them (root, 0644/0755) so nothing is refused
        os.makedirs(os.path.join(tmp, "tree", "d", "e"))
        with open(os.path.join(tmp, "tree", "d", "a"), "wb") as f:
            f.write(b"a\n")
        with open(os.path.join(tmp, "tree", "d", "e", "b"), "wb") as f:
            f.write(want[:3 * MIB])
        os.chmod(os.path.join(tmp, "tree", "d", "a"), 0o644)
        os.chmod(os.path.join(tmp, "tree", "d", "e", "b"), 0o644)
        os.chmod(os.path.join(tmp, "tree", "d"), 0o755)
        os.chmod(os.path.join(tmp, "tree", "d", "e"), 0o755)
        sh("tar cf %s/t.tar -C %s/tree d" % (tmp, tmp), tmp)
        sh("tar xf %s/t.tar" % tmp, m.path)
        ht.check_eq(get(s3, bucket, "d/a"), b"a\n", "tar x: d/a")
        ht.check_eq(get(s3, bucket, "d/e/b"), want[:3 * MIB], "tar x: d/e/b")
    ht.delete_bucket(bucket)


def test_sixteen_files_at_once():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("w")
    sizes = [PART + 1 + i * 777_777 for i in range(16)]
    pats = [Pattern(100 + i, block=MIB) for i in range(16)]
    errors = []
    with ht.Mount(bucket) as m:
        def one(i):
            try:
                write_file(os.path.join(m.path, "p%02d" % i), pats[i], sizes[i])
            except BaseException as e:  # reported below
                errors.append((i, e))
        threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ht.check_eq(errors, [], "writers that failed")
        names = sorted(n for n in os.listdir(m.path))
        ht.check_eq(names, ["p%02d" % i for i in range(16)], "listing")
    for i in range(16):
        check_object(s3, bucket, "p%02d" % i, pats[i], sizes[i])
    ht.delete_bucket(bucket)


def test_round_robin_writer_small_budget():
    # One thread writing 4 files in turn, 6 MiB at a time, with a budget
    # of 16 MiB and 5 MiB parts: the files together hold more than the
    # budget in partly filled parts, and the writer waits on one file
    # before it writes the others again. It must neither hang nor lose a
    # byte (the daemon goes past the budget for the file that cannot wait,
    # and says so).
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("w")
    pats = [Pattern(200 + i, block=8 * MIB) for i in range(4)]
    size = 3 * 6 * MIB
    with ht.Mount(bucket, ["--memory-limit", "16", "--write-part-size", "5M"]) as m:
        fds = [os.open(os.path.join(m.path, "rr%d" % i),
                       os.O_WRONLY | os.O_CREAT, 0o644) for i in range(4)]
        try:
            gens = [pats[i].chunks(size, 6 * MIB) for i in range(4)]
            for _ in range(3):
                for i in range(4):
                    c = next(gens[i])
                    ht.check_eq(os.write(fds[i], c), len(c), "bytes accepted")
        finally:
            for fd in fds:
                os.close(fd)
    global PART
    saved, PART = PART, 5 * MIB
    try:
        for i in range(4):
            check_object(s3, bucket, "rr%d" % i, pats[i], size, 6 * MIB)
    finally:
        PART = saved
    ht.delete_bucket(bucket)


def test_fsync_completes_then_einval():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("w")
    with ht.Mount(bucket) as m:
        fd = os.open(os.path.join(m.path, "s"), os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"before fsync\n")
        os.fsync(fd)
        # visible now, before close
        ht.check_eq(s3.get_object(Bucket=bucket, Key="s")["Body"].read(),
                    b"before fsync\n", "object after fsync")
        try:
            os.write(fd, b"after\n")
            raise AssertionError("write after a completing fsync succeeded")
        except OSError as e:
            ht.check_eq(e.errno, errno.EINVAL, "errno of a write after fsync")
        os.close(fd)
        ht.check_eq(s3.get_object(Bucket=bucket, Key="s")["Body"].read(),
                    b"before fsync\n", "object after close")
        if "after fsync or close completed" not in m.stderr_text():
            raise AssertionError("no log line saying why the write failed")
    ht.delete_bucket(bucket)


def test_utimens_while_writing():
    ht.s3_env()
    bucket = ht.fresh_bucket("w")
    t = 1_500_000_000
    with ht.Mount(bucket) as m:
        p = os.path.join(m.path, "u")
        fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"data")
        os.utime(fd, (t, t))
        ht.check_eq(int(os.fstat(fd).st_mtime), t, "mtime while open")
        os.close(fd)
        ht.check_eq(int(os.stat(p).st_mtime), t, "mtime after close")
        # `touch -d` on a file being written (cp -p, tar x do this)
        sh("exec 3> v; echo hi >&3; touch -d @%d v; exec 3>&-" % (t + 60), m.path)
        ht.check_eq(int(os.stat(os.path.join(m.path, "v")).st_mtime), t + 60,
                    "mtime set by touch -d while open")
        # an object not being written keeps its time: EPERM, not a silent no-op
        try:
            os.utime(p, (t + 5, t + 5))
            raise AssertionError("utime of a closed object succeeded")
        except OSError as e:
            ht.check_eq(e.errno, errno.EPERM, "errno of utime on a closed object")
        # a multipart upload: the time is set after CreateMultipartUpload
        # went out (the first 8 MiB part), so the close rewrites the metadata
        pat = Pattern(7)
        big = os.path.join(m.path, "big")
        fd = os.open(big, os.O_WRONLY | os.O_CREAT, 0o644)
        for c in pat.chunks(PART + 3 * MIB):
            os.write(fd, c)
        os.utime(fd, (t + 120, t + 120))
        os.close(fd)
        # a write after utimens moves the time on, as on a local disk
        fd = os.open(os.path.join(m.path, "later"), os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"a")
        os.utime(fd, (t, t))
        os.write(fd, b"b")
        os.close(fd)
        # ... also when that write is the one that starts the multipart
        # upload (a full part waits for the next byte before it goes out)
        fd = os.open(os.path.join(m.path, "later2"), os.O_WRONLY | os.O_CREAT, 0o644)
        for c in pat.chunks(PART):
            os.write(fd, c)
        os.utime(fd, (t, t))
        os.write(fd, b"tail")
        # once fsync completed the object, its time can no longer change
        os.fsync(fd)
        try:
            os.utime(fd, (t + 7, t + 7))
            raise AssertionError("utime after a completing fsync succeeded")
        except OSError as e:
            ht.check_eq(e.errno, errno.EPERM, "errno of utime after fsync")
        os.close(fd)
    s3 = ht.s3_client()
    meta = {k: s3.head_object(Bucket=bucket, Key=k).get("Metadata", {})
            for k in ("u", "v", "big", "later", "later2")}
    ht.check_eq(meta["u"].get("mtime"), "%d.000000000" % t, "x-amz-meta-mtime of u")
    ht.check_eq(meta["v"].get("mtime"), "%d.000000000" % (t + 60),
                "x-amz-meta-mtime of v (touch -d)")
    ht.check_eq(meta["big"].get("mtime"), "%d.000000000" % (t + 120),
                "x-amz-meta-mtime of a multipart object (set after its first part)")
    ht.check_eq(meta["later"].get("mtime"), None, "no mtime kept after a later write")
    ht.check_eq(meta["later2"].get("mtime"), None,
                "no mtime kept after a later write that started the multipart upload")
    got = s3.get_object(Bucket=bucket, Key="big")["Body"].read()
    ht.check_eq(hashlib.md5(got).hexdigest(), pat.md5(PART + 3 * MIB),
                "bytes of the object whose metadata was rewritten")
    # another node (a fresh mount) sees the kept times
    with ht.Mount(bucket) as m2:
        ht.check_eq(int(os.stat(os.path.join(m2.path, "u")).st_mtime), t, "u on a 2nd mount")
        st = os.stat(os.path.join(m2.path, "big"))
        ht.check_eq((int(st.st_mtime), st.st_size), (t + 120, PART + 3 * MIB),
                    "big on a 2nd mount")
        ht.check_eq(abs(os.stat(os.path.join(m2.path, "later")).st_mtime - time.time()) < 600,
                    True, "later's mtime is the upload time")
    ht.delete_bucket(bucket)


def test_local_directories():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("w")
    with ht.Mount(bucket) as m:
        os.mkdir(os.path.join(m.path, "d"))
        os.mkdir(os.path.join(m.path, "empty"))
        ht.check_eq(sorted(os.listdir(m.path)), ["d", "empty"], "listing after mkdir")
        ht.check_eq(s3.list_objects_v2(Bucket=bucket).get("KeyCount"), 0,
                    "objects after mkdir (directories are local)")
        with open(os.path.join(m.path, "d", "f"), "wb") as f:
            f.write(b"in d\n")
        ht.check_eq(s3.get_object(Bucket=bucket, Key="d/f")["Body"].read(),
                    b"in d\n", "d/f")
        try:
            os.rmdir(os.path.join(m.path, "d"))
            raise AssertionError("rmdir of a non-empty directory succeeded")
        except OSError as e:
            ht.check_eq(e.errno, errno.ENOTEMPTY, "errno of rmdir d")
        os.rmdir(os.path.join(m.path, "empty"))
        ht.check_eq(sorted(os.listdir(m.path)), ["d"], "listing after rmdir")
        try:
            os.mkdir(os.path.join(m.path, "d"))
            raise AssertionError("mkdir of an existing directory succeeded")
        except OSError as e:
            ht.check_eq(e.errno, errno.EEXIST, "errno of mkdir d again")
    ht.delete_bucket(bucket)


if __name__ == "__main__":
    ht.main()

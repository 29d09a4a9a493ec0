#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# The opt-ins that change what exists: --allow-overwrite (others see the
# old object until the new one is complete), --allow-append (server-side
# copy of the old bytes, or read and re-sent under 5 MiB), --allow-rename
# (copy + delete), --allow-delete (unlink, rmdir of a marker-only prefix).
import errno
import hashlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import hpcops_test as ht  # noqa: E402

MIB = 1 << 20


def body(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def expect_errno(want, fn, *args, what=None):
    try:
        fn(*args)
    except OSError as e:
        ht.check_eq(errno.errorcode.get(e.errno, e.errno), errno.errorcode[want],
                    what or fn.__name__)
        return
    raise AssertionError("%s succeeded, want %s" % (what or fn.__name__,
                                                    errno.errorcode[want]))


def test_overwrite_visible_only_after_close():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("o")
    v1 = os.urandom(MIB + 5)
    v2 = os.urandom(20 * MIB + 7)
    s3.put_object(Bucket=bucket, Key="f", Body=v1)
    with ht.Mount(bucket, ["--allow-overwrite"]) as a, \
            ht.Mount(bucket, ["--metadata-ttl", "0"]) as b:
        pa, pb = os.path.join(a.path, "f"), os.path.join(b.path, "f")
        ht.check_eq(open(pb, "rb").read(), v1, "second mount before")
        fd = os.open(pa, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, v2[:12 * MIB])  # a part is out, the upload is open
            ht.check_eq(body(s3, bucket, "f"), v1, "S3 while the new version is written")
            ht.check_eq(open(pb, "rb").read(), v1, "second mount while written")
            os.write(fd, v2[12 * MIB:])
        finally:
            os.close(fd)
        ht.check_eq(body(s3, bucket, "f"), v2, "S3 after close")
        ht.check_eq(open(pb, "rb").read(), v2, "second mount after close")
        ht.check_eq(os.stat(pa).st_size, len(v2), "size on the writing mount")
        # `> f` from a shell: O_TRUNC through the same path
        with open(pa, "wb") as f:
            f.write(b"short\n")
        ht.check_eq(body(s3, bucket, "f"), b"short\n", "S3 after a short rewrite")
    ht.delete_bucket(bucket)


def test_append_small_and_large():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("a")
    small = os.urandom(3 * MIB + 1)       # < 5 MiB: read and re-sent
    large = os.urandom(12 * MIB + 3)      # >= 5 MiB: UploadPartCopy
    s3.put_object(Bucket=bucket, Key="small", Body=small)
    s3.put_object(Bucket=bucket, Key="large", Body=large)
    s3.put_object(Bucket=bucket, Key="same", Body=b"unchanged")
    etag_same = s3.head_object(Bucket=bucket, Key="same")["ETag"]
    more = os.urandom(2 * MIB + 9)
    with ht.Mount(bucket, ["--allow-append"]) as m:
        for k in ("small", "large"):
            with open(os.path.join(m.path, k), "ab") as f:
                f.write(more)
            ht.check_eq(os.stat(os.path.join(m.path, k)).st_size,
                        len({"small": small, "large": large}[k]) + len(more),
                        "size of %s through the mount" % k)
        # opened for append, nothing written: the object is left alone
        open(os.path.join(m.path, "same"), "ab").close()
        # `>>` from a shell
        with open(os.path.join(m.path, "same"), "ab") as f:
            pass
    got = body(s3, bucket, "small")
    ht.check_eq(hashlib.md5(got).hexdigest(), hashlib.md5(small + more).hexdigest(),
                "small + appended bytes")
    got = body(s3, bucket, "large")
    ht.check_eq(hashlib.md5(got).hexdigest(), hashlib.md5(large + more).hexdigest(),
                "large + appended bytes")
    # one copied part (the old 12 MiB) + one new part
    etag = s3.head_object(Bucket=bucket, Key="large")["ETag"].strip('"')
    ht.check_eq(etag.split("-")[-1], "2", "parts in the ETag %s of the appended object" % etag)
    ht.check_eq(s3.head_object(Bucket=bucket, Key="same")["ETag"], etag_same,
                "ETag of an object opened for append without writing")
    ht.delete_bucket(bucket)


def test_rename():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("r")
    data = os.urandom(9 * MIB + 1)
    s3.put_object(Bucket=bucket, Key="a", Body=data)
    s3.put_object(Bucket=bucket, Key="taken", Body=b"keep me")
    s3.put_object(Bucket=bucket, Key="dir/x", Body=b"x")
    with ht.Mount(bucket, ["--allow-rename"]) as m:
        os.rename(os.path.join(m.path, "a"), os.path.join(m.path, "b"))
        # the new name works at once through the mount
        ht.check_eq(os.stat(os.path.join(m.path, "b")).st_size, len(data), "size of b")
        with open(os.path.join(m.path, "b"), "rb") as f:
            ht.check_eq(hashlib.md5(f.read()).hexdigest(), hashlib.md5(data).hexdigest(),
                        "b read through the mount")
        expect_errno(errno.ENOENT, os.stat, os.path.join(m.path, "a"), what="stat a")
        # into a directory
        os.rename(os.path.join(m.path, "b"), os.path.join(m.path, "dir", "c"))
        # onto an existing object without --allow-overwrite
        expect_errno(errno.EPERM, os.rename, os.path.join(m.path, "dir", "c"),
                     os.path.join(m.path, "taken"), what="rename onto an existing object")
        # a directory: EXDEV, so mv copies instead
        expect_errno(errno.EXDEV, os.rename, os.path.join(m.path, "dir"),
                     os.path.join(m.path, "dir2"), what="rename of a directory")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    ht.check_eq(keys, ["dir/c", "dir/x", "taken"], "keys after the renames")
    ht.check_eq(hashlib.md5(body(s3, bucket, "dir/c")).hexdigest(),
                hashlib.md5(data).hexdigest(), "bytes of dir/c")
    ht.check_eq(body(s3, bucket, "taken"), b"keep me", "the object not replaced")
    ht.delete_bucket(bucket)


def test_delete():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("d")
    for k in ("f", "d/g", "m/"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"" if k.endswith("/") else b"x")
    with ht.Mount(bucket, ["--allow-delete"]) as m:
        os.unlink(os.path.join(m.path, "f"))
        expect_errno(errno.ENOENT, os.stat, os.path.join(m.path, "f"), what="stat f")
        ht.check_eq(sorted(os.listdir(m.path)), ["d", "m"], "listing after unlink")
        expect_errno(errno.ENOTEMPTY, os.rmdir, os.path.join(m.path, "d"),
                     what="rmdir of a non-empty directory")
        expect_errno(errno.EISDIR, os.unlink, os.path.join(m.path, "d"),
                     what="unlink of a directory")
        os.rmdir(os.path.join(m.path, "m"))  # only its marker object
        os.unlink(os.path.join(m.path, "d", "g"))
        ht.check_eq(sorted(os.listdir(m.path)), [], "listing at the end")
    ht.check_eq(s3.list_objects_v2(Bucket=bucket).get("KeyCount"), 0, "objects left")
    ht.delete_bucket(bucket)


if __name__ == "__main__":
    ht.main()

#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# What hpcops-mount refuses when writing, and how: EPERM for what the
# default semantics do not allow (with a log line naming the flag that
# would), EINVAL for out-of-order writes, EFBIG past 10,000 parts, ENOSYS /
# EOPNOTSUPP for links and xattrs, and EIO at close when a part fails for
# good, leaving neither an object nor an open multipart upload.
import errno
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import hpcops_test as ht  # noqa: E402

MIB = 1 << 20


def expect_errno(want, fn, *args, what=None):
    try:
        fn(*args)
    except OSError as e:
        ht.check_eq(errno.errorcode.get(e.errno, e.errno),
                    errno.errorcode[want], what or fn.__name__)
        return
    raise AssertionError("%s succeeded, want %s" % (what or fn.__name__,
                                                    errno.errorcode[want]))


def expect_log(m, text):
    if text not in m.stderr_text():
        raise AssertionError("no log line containing %r in:\n%s"
                             % (text, m.stderr_text()[-3000:]))


def test_eperm_without_opt_ins():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("e")
    s3.put_object(Bucket=bucket, Key="old", Body=b"old bytes\n")
    s3.put_object(Bucket=bucket, Key="dir/x", Body=b"x")
    with ht.Mount(bucket) as m:
        p = os.path.join(m.path, "old")
        expect_errno(errno.EPERM, os.open, p, os.O_WRONLY | os.O_TRUNC,
                     what="open O_TRUNC of an existing object")
        expect_log(m, "--allow-overwrite")
        expect_errno(errno.EPERM, os.open, p, os.O_WRONLY | os.O_APPEND,
                     what="open O_APPEND")
        expect_log(m, "--allow-append")
        expect_errno(errno.EPERM, os.open, p, os.O_WRONLY,
                     what="open O_WRONLY without O_TRUNC")
        expect_errno(errno.EPERM, os.truncate, p, 3, what="truncate")
        expect_errno(errno.EPERM, os.unlink, p, what="unlink")
        expect_log(m, "--allow-delete")
        expect_errno(errno.EPERM, os.rename, p, os.path.join(m.path, "new"),
                     what="rename")
        expect_log(m, "--allow-rename")
        expect_errno(errno.EPERM, os.chmod, p, 0o600, what="chmod")
        expect_errno(errno.EPERM, os.chown, p, 4242, 4242, what="chown")
        expect_errno(errno.EPERM, os.utime, p, (1, 1), what="utime of an object")
        expect_errno(errno.EPERM, os.mkfifo, os.path.join(m.path, "fifo"),
                     what="mkfifo")
        expect_errno(errno.ENOSYS, os.symlink, "old", os.path.join(m.path, "sym"),
                     what="symlink")
        # the kernel turns the daemon's ENOSYS for link into EPERM
        expect_errno(errno.EPERM, os.link, p, os.path.join(m.path, "hard"),
                     what="link")
        expect_errno(errno.EOPNOTSUPP, os.setxattr, p, "user.k", b"v",
                     what="setxattr")
        expect_errno(errno.EXDEV, os.rename, os.path.join(m.path, "dir"),
                     os.path.join(m.path, "dir2"), what="rename of a directory")
        expect_errno(errno.EPERM, os.unlink, os.path.join(m.path, "dir", "x"),
                     what="unlink in a directory")
        # nothing changed in the bucket
        ht.check_eq(s3.get_object(Bucket=bucket, Key="old")["Body"].read(),
                    b"old bytes\n", "the object after the refusals")
        keys = sorted(o["Key"] for o in
                      s3.list_objects_v2(Bucket=bucket).get("Contents", []))
        ht.check_eq(keys, ["dir/x", "old"], "keys after the refusals")
    ht.delete_bucket(bucket)


def test_out_of_order_write_einval():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("e")
    with ht.Mount(bucket) as m:
        fd = os.open(os.path.join(m.path, "f"), os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"0123456789")
        expect_errno(errno.EINVAL, os.pwrite, fd, b"ahead", 100, what="write ahead")
        expect_errno(errno.EINVAL, os.pwrite, fd, b"back", 2, what="write back")
        expect_log(m, "only sequential writes")
        os.write(fd, b"abc")  # sequential again: accepted
        os.close(fd)
        ht.check_eq(s3.get_object(Bucket=bucket, Key="f")["Body"].read(),
                    b"0123456789abc", "object after the refused writes")
    ht.delete_bucket(bucket)


def test_efbig_past_10000_parts():
    # With --write-part-size 5M (S3's smallest part) an object holds at most
    # 10,000 x 5 MiB = 50 GiB. Writing 50 GiB through radosgw would take
    # many minutes and more disk than the test cluster has, so the test
    # reaches the limit the cheap ways a user can: a write whose bytes end
    # past it (at the limit itself, page-aligned so the kernel sends it as
    # one request; the check on where a write ends comes before the order
    # check, and is the one a sequential writer crossing the limit meets),
    # and ftruncate past it (refused before any zero is sent). The bytes
    # written before stay intact and the file can still grow within the limit.
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("e")
    limit = 10000 * 5 * MIB
    with ht.Mount(bucket, ["--write-part-size", "5M"]) as m:
        fd = os.open(os.path.join(m.path, "big"), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"abc")
            expect_errno(errno.EFBIG, os.pwrite, fd, b"xy", limit,
                         what="write ending past 10,000 parts")
            expect_errno(errno.EFBIG, os.ftruncate, fd, limit + 1,
                         what="ftruncate past 10,000 parts")
            expect_log(m, "past the largest object of 10000 parts")
            os.ftruncate(fd, 6 * MIB)  # growing within the limit: zeros
            os.lseek(fd, 0, os.SEEK_END)
            os.write(fd, b"end")
        finally:
            os.close(fd)
        body = s3.get_object(Bucket=bucket, Key="big")["Body"].read()
        ht.check_eq(body, b"abc" + bytes(6 * MIB - 3) + b"end",
                    "object after EFBIG and a growing ftruncate")
    ht.delete_bucket(bucket)


def test_part_fails_for_good_eio():
    # Take the bucket's write permission away under an open multipart
    # upload: the next parts fail (AccessDenied), the upload is aborted,
    # write and close return EIO, and the bucket holds neither the object
    # nor an open multipart upload.
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("e")
    deny = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": ["s3:PutObject"],
        "Resource": ["arn:aws:s3:::%s/*" % bucket]}]}
    chunk = os.urandom(MIB)
    try:
        # a long TTL: the kernel keeps the new file's dentry that long, so
        # the failed close has to drop it for stat to say ENOENT
        with ht.Mount(bucket, ["--metadata-ttl", "60"]) as m:
            fd = os.open(os.path.join(m.path, "doomed"),
                         os.O_WRONLY | os.O_CREAT, 0o644)
            for _ in range(20):  # the upload is multipart and going
                os.write(fd, chunk)
            s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(deny))
            write_err = None
            try:
                for _ in range(200):
                    os.write(fd, chunk)
            except OSError as e:
                write_err = e.errno
            if write_err is not None:
                ht.check_eq(errno.errorcode.get(write_err), "EIO",
                            "errno of the write after the failure")
                # every later write returns it too
                expect_errno(errno.EIO, os.write, fd, b"more",
                             what="write after the failure")
            expect_errno(errno.EIO, os.close, fd, what="close")
            expect_log(m, "AccessDenied")
            expect_log(m, "aborted")
            expect_errno(errno.ENOENT, os.stat, os.path.join(m.path, "doomed"),
                         what="stat of the failed file")
    finally:
        s3.delete_bucket_policy(Bucket=bucket)
    try:
        s3.head_object(Bucket=bucket, Key="doomed")
        raise AssertionError("the failed object exists")
    except s3.exceptions.ClientError as e:
        ht.check_eq(e.response["Error"]["Code"], "404", "HEAD of the failed object")
    ht.check_eq(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []), [],
                "multipart uploads left open")
    ht.delete_bucket(bucket)


if __name__ == "__main__":
    ht.main()

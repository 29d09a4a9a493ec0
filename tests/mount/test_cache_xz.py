#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""hpcops-mount --cache-xz: a block cache shared by the nodes of a cluster.

Real FUSE mounts ("nodes", one after the other) on radosgw, all through a
counting proxy (tests/lib/faultproxy.py) in front of both buckets, so the
GET bytes of each bucket are counted apart: a second node reads a 256 MiB
object byte-exact with no byte from the source bucket; after the source
object is overwritten (new ETag) a third node reads the new bytes and never
one old block; a block object damaged in the cache bucket is detected,
read from the source instead, byte-exact; a cache bucket that does not
exist refuses the mount with a message that names it.
"""
import hashlib
import io
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import hpcops_test as ht  # noqa: E402
import faultproxy  # noqa: E402

MIB = 1024 * 1024
SIZE = 256 * MIB
BLOCK = MIB  # --cache-block-size default
N_BLOCKS = SIZE // BLOCK
KEY = "inputs/shared.bin"

_state = {}


def s3():
    if "s3" not in _state:
        _state["s3"] = ht.s3_client()
    return _state["s3"]


def buckets():
    """(source bucket, cache bucket), made once for the file."""
    if "buckets" not in _state:
        _state["buckets"] = (ht.fresh_bucket("xzsrc"), ht.fresh_bucket("xzcache"))
    return _state["buckets"]


def upload(bucket, key, data):
    from boto3.s3.transfer import TransferConfig
    s3().upload_fileobj(io.BytesIO(data), bucket, key,
                        Config=TransferConfig(multipart_chunksize=16 * MIB,
                                              max_concurrency=4))


def etag(bucket, key):
    return s3().head_object(Bucket=bucket, Key=key)["ETag"].strip('"')


def block_key(bucket, key, tag, idx, block=BLOCK):
    """The cache bucket's key of a block, as fs/cache_bucket.h lays it out."""
    h = hashlib.sha256(b"\0".join([bucket.encode(), key.encode(), tag.encode(),
                                   str(block).encode()])).hexdigest()
    return "hpcops-cache-v1/%s/%d" % (h, idx)


def cache_keys(cache):
    keys = []
    for page in s3().get_paginator("list_objects_v2").paginate(Bucket=cache):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def sha_of(path):
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while True:
            c = f.read(MIB)
            if not c:
                break
            h.update(c)
    return h.hexdigest()


def node_reads(proxy, src, cache, want_sha, extra=()):
    """One node: mount through the proxy, read KEY whole, unmount (its puts
    drain at unmount). Returns ({bucket: GET bytes}, the node's requests,
    its metrics file, its stderr)."""
    mark = len(proxy.requests)
    mfile = os.path.join(tempfile.mkdtemp(prefix="hpcops-xz-metrics-"), "m.prom")
    with ht.Mount(src, ["--read-only", "--cache-xz", cache, "--metrics-file", mfile]
                  + list(extra), endpoint=proxy.url, timeout=60) as m:
        ht.check_eq(sha_of(os.path.join(m.path, KEY)), want_sha, "bytes of " + KEY)
    proxy.quiesce(idle=0.5)
    reqs = proxy.requests[mark:]
    got = {src: 0, cache: 0}
    for r in reqs:
        b = r["path"].split("/")[1] if r["path"].count("/") >= 1 else ""
        if r["op"] == "GetObject" and b in got:
            got[b] += r["bytes_out"]
    return got, reqs, mfile, m.stderr_text()


def test_two_nodes_then_a_change_then_a_damaged_block():
    ht.s3_env()
    src, cache = buckets()
    v1 = os.urandom(SIZE)
    upload(src, KEY, v1)
    sha1 = hashlib.sha256(v1).hexdigest()
    del v1
    with faultproxy.FaultProxy(ht.s3_env().endpoint) as p:
        # node 1: a cold cache bucket: every byte from the source, every block stored
        got, _, mfile, _ = node_reads(p, src, cache, sha1)
        print("note: node 1 GET bytes: source %.1f MiB, cache bucket %.1f MiB"
              % (got[src] / MIB, got[cache] / MIB))
        if got[src] < SIZE:
            raise AssertionError("node 1 fetched %d bytes of the source, want >= %d"
                                 % (got[src], SIZE))
        tag1 = etag(src, KEY)
        stored = set(cache_keys(cache))
        want = {block_key(src, KEY, tag1, i) for i in range(N_BLOCKS)}
        skipped = ht.metric_in_file(mfile, "hpcops_fs_cache_shared_puts_skipped_total")
        if want - stored:
            raise AssertionError("%d of %d blocks missing from the cache bucket after "
                                 "node 1 (puts skipped: %s)"
                                 % (len(want - stored), N_BLOCKS, skipped))
        ht.check_eq(ht.metric_in_file(mfile, "hpcops_fs_cache_shared_puts_total"),
                    float(N_BLOCKS),
                    "node 1's count of blocks stored")

        # node 2: every block from the cache bucket, nothing from the source
        got, reqs, mfile, _ = node_reads(p, src, cache, sha1)
        print("note: node 2 GET bytes: source %d bytes, cache bucket %.1f MiB "
              "(%d GETs of blocks)" % (got[src], got[cache] / MIB,
                                       sum(1 for r in reqs if r["op"] == "GetObject")))
        ht.check_eq(got[src], 0, "node 2's GET bytes from the source bucket")
        if got[cache] < SIZE:
            raise AssertionError("node 2 got %d bytes from the cache bucket, want >= %d"
                                 % (got[cache], SIZE))
        ht.check_eq(ht.metric_in_file(mfile, "hpcops_fs_cache_shared_hits_total"), float(N_BLOCKS),
                    "node 2's shared cache hits")
        ht.check_eq(ht.metric_in_file(mfile, "hpcops_fs_prefetch_bytes_fetched_total"), 0.0,
                    "node 2's own count of bytes fetched from the source")
        # a node that read from the cache bucket stores nothing there
        ht.check_eq(sum(1 for r in reqs if r["op"] == "PutObject"), 0,
                    "node 2's PutObject requests")

        # the source object is overwritten: a new ETag, so no old block may be served
        v2 = os.urandom(SIZE)
        upload(src, KEY, v2)
        sha2 = hashlib.sha256(v2).hexdigest()
        del v2
        tag2 = etag(src, KEY)
        if tag2 == tag1:
            raise AssertionError("the overwrite kept the ETag %s" % tag1)
        got, reqs, _, _ = node_reads(p, src, cache, sha2)
        print("note: node 3 (after the change) GET bytes: source %.1f MiB, cache "
              "bucket %d bytes" % (got[src] / MIB, got[cache]))
        served = [r for r in reqs if r["op"] == "GetObject" and r["status"] == 200
                  and r["path"].split("/")[1] == cache]
        ht.check_eq(len(served), 0, "blocks node 3 got from the cache bucket")
        if got[src] < SIZE:
            raise AssertionError("node 3 fetched %d bytes of the source, want >= %d"
                                 % (got[src], SIZE))

        # one block of the new version damaged in the cache bucket: detected, not served
        bad = block_key(src, KEY, tag2, 100)
        body = s3().get_object(Bucket=cache, Key=bad)["Body"].read()
        junk = bytearray(body)
        junk[len(junk) // 2:len(junk) // 2 + 4096] = os.urandom(4096)
        s3().put_object(Bucket=cache, Key=bad, Body=bytes(junk))
        got, _, mfile, log = node_reads(p, src, cache, sha2)
        print("note: node 4 (one damaged block) GET bytes: source %.1f MiB, cache "
              "bucket %.1f MiB" % (got[src] / MIB, got[cache] / MIB))
        ht.check_eq(ht.metric_in_file(mfile, "hpcops_fs_cache_shared_damaged_total"), 1.0,
                    "damaged blocks node 4 detected")
        if not BLOCK <= got[src] <= 64 * MIB:
            raise AssertionError("node 4 fetched %d bytes of the source for one damaged "
                                 "block (want its part: 1 to 64 MiB)" % got[src])
        if "failed its check" not in log:
            raise AssertionError("node 4 did not log the damaged block:\n" + log[-3000:])


def test_missing_cache_bucket_refuses_the_mount():
    se = ht.s3_env()
    src, _ = buckets()
    mnt = tempfile.mkdtemp(prefix="hpcops-xz-ff-")
    env = dict(os.environ, AWS_ACCESS_KEY_ID=se.access_key,
               AWS_SECRET_ACCESS_KEY=se.secret_key, AWS_REGION=se.region)
    try:
        r = subprocess.run([os.environ["HPCOPS_MOUNT"], src, mnt, "--endpoint-url",
                            se.endpoint, "--force-path-style", "--cache-xz",
                            "no-such-cache-bucket-xz"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        mounted = ht.mounted(mnt)
        if mounted:
            subprocess.run(["fusermount3", "-uz", mnt])
        ht.check_eq(mounted, False, "a mount left after a refused cache bucket")
        ht.check_eq(r.returncode, 1, "exit status (stderr: %s)" % r.stderr)
        for w in ("--cache-xz no-such-cache-bucket-xz", "no such bucket"):
            if w not in r.stderr:
                raise AssertionError("message lacks %r: %s" % (w, r.stderr))
    finally:
        os.rmdir(mnt)


if __name__ == "__main__":
    ht.main()

#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""hpcops-mount through faults (issue 10): never a wrong byte, never a lost
write. A real mount on radosgw, with tests/lib/faultproxy.py between them
injecting 503s, resets, lost replies, 200-with-Error, bad GET bodies, a
deep listing document and outages; the daemon killed with -9; credentials
that expire mid-transfer (tests/doubles/creds_double.py handing out real
radosgw keys that are removed at expiry) and a credentials endpoint that
hangs. Each test prints what it injected and what it saw.

HPCOPS_TEST_BIG=0 shrinks the 1 GiB transfers to 256 MiB.
"""
import contextlib
import errno
import hashlib
import json
import mmap
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import faultproxy  # noqa: E402
import hpcops_test as ht  # noqa: E402

MIB = 1 << 20
GIB_MIB = 1024 if os.environ.get("HPCOPS_TEST_BIG", "1") != "0" else 256
BIG = GIB_MIB * MIB
_SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


# ---- data and checks, streaming (nothing of 1 GiB in memory) ----

class Pattern:
    """Reproducible, position-dependent bytes (as in test_write.py): a part
    at the wrong offset, or bytes of another range, change the hash."""

    def __init__(self, seed, block=4 * MIB):
        self.base = random.Random(seed).randbytes(block)
        self.buf = memoryview(self.base + self.base)

    def chunks(self, size, chunk=MIB):
        off = i = 0
        n = len(self.base)
        while off < size:
            k = min(chunk, size - off)
            start = (i * 4099 + off) % n
            yield self.buf[start:start + k]
            off += k
            i += 1

    def sha(self, size):
        h = hashlib.sha256()
        for c in self.chunks(size):
            h.update(c)
        return h.hexdigest()

    def bytes(self, size):
        return b"".join(bytes(c) for c in self.chunks(size))


def drop_caches():
    """Cold reads: the kernel's page cache of the mount is dropped."""
    subprocess.run(["sync"], check=False)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def write_pattern(path, pat, size, min_seconds=0, at=None, flags=0):
    """Write size bytes of pat to path, 1 MiB a write, then close.

    at: {bytes written: callable} run once when that much is written.
    min_seconds: pace the writes to last at least that long.
    Returns dict(error=OSError or None, where="write"/"close", written,
    seconds, max_gap: the longest open(), write() or close() call, in s).
    """
    out = {"error": None, "where": None, "written": 0, "max_gap": 0.0}
    at = dict(at or {})
    t0 = time.monotonic()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | flags, 0o644)
    out["max_gap"] = out["open_seconds"] = time.monotonic() - t0
    try:
        for c in pat.chunks(size):
            for mark in [m for m in at if m <= out["written"]]:
                at.pop(mark)()
            t = time.monotonic()
            n = os.write(fd, c)
            out["max_gap"] = max(out["max_gap"], time.monotonic() - t)
            if n != len(c):
                raise AssertionError("write() took %d of %d bytes" % (n, len(c)))
            out["written"] += n
            if min_seconds:
                ahead = t0 + min_seconds * out["written"] / size - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
    except OSError as e:
        out["error"], out["where"] = e, "write"
    t = time.monotonic()
    try:
        os.close(fd)
    except OSError as e:
        if out["error"] is None:
            out["error"], out["where"] = e, "close"
    out["close_seconds"] = time.monotonic() - t
    out["max_gap"] = max(out["max_gap"], out["close_seconds"])
    out["seconds"] = time.monotonic() - t0
    return out


def read_sha(path, min_seconds=0, size_hint=None):
    """(sha256, bytes, longest open() or read() in s) of a file read 1 MiB at
    a time (paced to last min_seconds when size_hint is given)."""
    h = hashlib.sha256()
    n = 0
    gap = 0.0
    t0 = time.monotonic()
    with open(path, "rb", buffering=0) as f:
        gap = time.monotonic() - t0
        while True:
            t = time.monotonic()
            c = f.read(MIB)
            gap = max(gap, time.monotonic() - t)
            if not c:
                break
            h.update(c)
            n += len(c)
            if min_seconds and size_hint:
                ahead = t0 + min_seconds * n / size_hint - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
    return h.hexdigest(), n, gap


def s3_sha(s3, bucket, key):
    """(sha256, size) of an object through boto3 straight from radosgw."""
    r = s3.get_object(Bucket=bucket, Key=key)
    h = hashlib.sha256()
    n = 0
    for c in r["Body"].iter_chunks(MIB):
        h.update(c)
        n += len(c)
    return h.hexdigest(), n


def head(s3, bucket, key):
    """The object's size, or None if it does not exist."""
    try:
        return s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    except s3.exceptions.ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchKey"):
            return None
        raise


def uploads(s3, bucket):
    """[(key, upload id)] of the multipart uploads open in the bucket."""
    return [(u["Key"], u["UploadId"]) for u in
            s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def check_no_partial(s3, bucket, key, pat, size, what):
    """The object is absent or byte-exact; return 'absent' or 'exact'."""
    n = head(s3, bucket, key)
    if n is None:
        return "absent"
    sha, got = s3_sha(s3, bucket, key)
    ht.check_eq(got, size, "%s: size of the object in S3 (a partial object)" % what)
    ht.check_eq(sha, pat.sha(size), "%s: sha256 of the object in S3" % what)
    return "exact"


def faults(p):
    return ", ".join("%s %d" % kv for kv in sorted(p.counts.items())) or "none"


def ops_seen(p):
    ops = {}
    for r in p.requests:
        ops[r["op"]] = ops.get(r["op"], 0) + 1
    return ops


def mount_args(*extra):
    return ["--allow-delete"] + list(extra)


@contextlib.contextmanager
def proxied(bucket, args=(), env=None, seed=1, check_exit=True):
    """A FaultProxy in front of radosgw and a mount through it: (p, m)."""
    with faultproxy.FaultProxy(ht.s3_env().endpoint, seed=seed) as p:
        with ht.Mount(bucket, list(args), endpoint=p.url, env=env,
                      check_exit=check_exit) as m:
            yield p, m


def noisy_rules(p503, preset):
    """p503 of every request gets a 503; preset of bodies get a reset."""
    return [
        {"match": {"op": ["UploadPart", "PutObject"]}, "action": "reset_request",
         "prob": preset, "after_bytes": 3 * MIB},
        {"match": {"op": "GetObject"}, "action": "reset_response",
         "prob": preset, "after_bytes": 300000},
        {"match": {}, "action": "503", "prob": p503},
    ]


# ---- 1 GiB through 5% 503 + 1% resets ----

def test_1gib_through_5pct_503_and_1pct_resets():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("flt")
    pat = Pattern(10)
    want = pat.sha(BIG)
    with proxied(bucket) as (p, m):
        p.set_rules(noisy_rules(0.05, 0.01))
        w = write_pattern(os.path.join(m.path, "big"), pat, BIG)
        wfaults = faults(p)
        p.reset_counts()
        if w["error"]:
            raise AssertionError("%s of %d MiB through 5%% 503 + 1%% resets failed: "
                                 "%s (faults: %s)" % (w["where"], GIB_MIB, w["error"],
                                                      wfaults))
        got, size = s3_sha(s3, bucket, "big")
        ht.check_eq((size, got), (BIG, want), "the object in S3 (boto3, direct)")
        drop_caches()
        try:
            rsha, rn, _ = read_sha(os.path.join(m.path, "big"))
        except OSError as e:
            raise AssertionError("cold read through 5%% 503 + 1%% resets: %s "
                                 "(faults: %s)" % (e, faults(p)))
        rfaults = faults(p)
    ht.check_eq((rn, rsha), (BIG, want), "bytes read back cold through the mount")
    left = uploads(s3, bucket)
    print("note: %d MiB written in %.1f s, faults injected: %s; read back cold, "
          "faults: %s; sha256 equal (mount and boto3); uploads left: %d"
          % (GIB_MIB, w["seconds"], wfaults, rfaults, len(left)))
    ht.check_eq(left, [], "multipart uploads left open")
    ht.delete_bucket(bucket)


def test_30pct_503_and_5pct_resets_loud_or_exact():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("flt")
    size = 256 * MIB
    pat = Pattern(11)
    with proxied(bucket) as (p, m):
        p.set_rules(noisy_rules(0.30, 0.05))
        w = write_pattern(os.path.join(m.path, "noisy"), pat, size)
        wfaults = faults(p)
        p.reset_counts()
        state = check_no_partial(s3, bucket, "noisy", pat, size, "30% 503 + 5% resets")
        if w["error"] is None and state != "exact":
            raise AssertionError("close() returned 0 but the object is %s" % state)
        if w["error"] is not None and w["error"].errno != errno.EIO:
            raise AssertionError("%s failed with %s, want EIO" % (w["where"], w["error"]))
        read = "not read (the write failed)"
        if state == "exact":
            drop_caches()
            try:
                rsha, rn, _ = read_sha(os.path.join(m.path, "noisy"))
                ht.check_eq((rn, rsha), (size, pat.sha(size)),
                            "bytes read back through 30% 503 + 5% resets")
                read = "read back byte-exact"
            except OSError as e:
                ht.check_eq(errno.errorcode.get(e.errno), "EIO", "errno of the read")
                read = "read back: EIO"
            read += " (faults: %s)" % faults(p)
    left = uploads(s3, bucket)
    print("note: 256 MiB through 30%% 503 + 5%% resets: faults %s; write: %s; "
          "object %s; %s; uploads left after unmount: %d"
          % (wfaults, "ok" if w["error"] is None else "%s at %s" % (
              w["error"], w["where"]), state, read, len(left)))
    ht.check_eq(left, [], "multipart uploads left open after unmount")
    ht.delete_bucket(bucket)


# ---- GET body faults ----

CASE_LIMIT_S = 60  # one read of the 24 MiB object through one fault


def test_get_body_faults_right_bytes_or_eio():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("flt")
    size = 24 * MIB
    data = Pattern(12).bytes(size)
    s3.put_object(Bucket=bucket, Key="obj", Body=data)
    # Cut bodies after 2 KiB, less than the smallest GET the mount sends (a
    # page the kernel rereads alone after an error): "every GET" must mean
    # every one. Cut at 300 KB instead, the 4 KiB rereads got through, and
    # the mount read the object a page at a time for a quarter of an hour.
    cases = [
        ("short_body", {"after_bytes": 2048}),
        ("long_body", {"extra": 4096}),
        ("replace_body", {"skip": 4096}),
        ("other_etag", {}),
        ("truncate", {"after_bytes": 2048}),
        ("reset_response", {"after_bytes": 2048}),
        ("stall", {"after_bytes": 300000, "seconds": 8}),
    ]
    bad = []
    seen = []
    # AWS_MAX_ATTEMPTS bounds the persistent cases: EIO comes in seconds
    with proxied(bucket, ["--read-only"], env={"AWS_MAX_ATTEMPTS": "3"}) as (p, m):
        path = os.path.join(m.path, "obj")
        for action, params in cases:
            for count in ((2, None) if action != "stall" else (1,)):
                rule = dict(params, action=action,
                            match={"op": "GetObject", "path_re": "/obj$"})
                if count:
                    rule["count"] = count
                p.quiesce()  # the last handle's GETs are not this case's
                p.reset_counts()
                p.set_rules([rule])
                drop_caches()
                what = "%s (%s)" % (action, "first %d GETs" % count if count
                                    else "every GET")
                t0 = time.monotonic()
                # a case that takes minutes is a failure, not a wait
                signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(
                    TimeoutError("no outcome within %d s" % CASE_LIMIT_S)))
                signal.alarm(CASE_LIMIT_S)
                try:
                    with open(path, "rb", buffering=0) as f:
                        got = f.read(size + MIB)  # one read: all of it, or less
                        while True:
                            more = f.read(MIB)
                            if not more:
                                break
                            got += more
                    outcome = "right bytes" if got == data else None
                    if got != data:
                        n = min(len(got), size)
                        diff = next((i for i in range(0, n, 4096)
                                     if got[i:i + 4096] != data[i:i + 4096]), None)
                        outcome = "WRONG: %d bytes read of %d, %s" % (
                            len(got), size, "the first %d right" % n if diff is None
                            else "other bytes from about offset %d" % diff)
                        bad.append("%s: %s" % (what, outcome))
                except TimeoutError as e:
                    outcome = str(e)
                    bad.append("%s: %s" % (what, e))
                except OSError as e:
                    outcome = errno.errorcode.get(e.errno, str(e.errno))
                    if e.errno != errno.EIO:
                        bad.append("%s: %s, want the bytes or EIO" % (what, e))
                    elif count:
                        # two bad replies, three attempts a request: a retry
                        # must have got the bytes
                        bad.append("%s: EIO, want the bytes (the fault passed)" % what)
                finally:
                    signal.alarm(0)
                seen.append("%s: %s in %.1f s, faults %s, GETs %d" % (
                    what, outcome, time.monotonic() - t0, faults(p),
                    sum(1 for r in p.requests if r["op"] == "GetObject")))
        p.set_rules([])
    print("note: 24 MiB object read cold through each GET body fault:\n  " +
          "\n  ".join(seen))
    if bad:
        raise AssertionError("reads that returned other than the bytes or EIO:\n  " +
                             "\n  ".join(bad))
    ht.delete_bucket(bucket)


# ---- lost replies (rows 4, 5) and 200-with-Error ----

def test_lost_complete_reply_on_every_attempt():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("flt")
    size = 40 * MIB
    pat = Pattern(13)
    with proxied(bucket) as (p, m):
        p.set_rules([{"match": {"op": "CompleteMultipartUpload"},
                      "action": "lose_reply"}])
        w = write_pattern(os.path.join(m.path, "f"), pat, size)
        c = faults(p)
        completes = [r for r in p.requests if r["op"] == "CompleteMultipartUpload"]
        p.set_rules([])
    print("note: lost the reply of %d CompleteMultipartUpload(s) (%s); close: %s; "
          "other requests after them: %s" % (
              len(completes), c, w["error"] or "0",
              sorted({r["op"] for r in p.requests
                      if completes and r["t"] > completes[0]["t"]})))
    if w["error"]:
        raise AssertionError("%s failed (%s), though the object is complete: %s" % (
            w["where"], w["error"],
            check_no_partial(s3, bucket, "f", pat, size, "lost Complete")))
    ht.check_eq(check_no_partial(s3, bucket, "f", pat, size, "lost Complete"),
                "exact", "the object")
    ht.check_eq(uploads(s3, bucket), [], "multipart uploads left open")
    ht.delete_bucket(bucket)


def test_lost_create_reply_no_orphan():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("flt")
    size = 40 * MIB
    pat = Pattern(14)
    with proxied(bucket) as (p, m):
        p.set_rules([{"match": {"op": "CreateMultipartUpload"},
                      "action": "lose_reply", "count": 1}])
        w = write_pattern(os.path.join(m.path, "f"), pat, size)
        c = faults(p)
        creates = [r for r in p.requests if r["op"] == "CreateMultipartUpload"]
        after_close = uploads(s3, bucket)
    left = uploads(s3, bucket)
    if left:
        print("--- daemon stderr:\n" + m.stderr_text()[-4000:])
    print("note: lost the reply of 1 CreateMultipartUpload (%s); creates sent: %d; "
          "close: %s; uploads open after close: %d, after unmount: %d"
          % (c, len(creates), w["error"] or "0", len(after_close), len(left)))
    if w["error"]:
        raise AssertionError("%s failed: %s" % (w["where"], w["error"]))
    ht.check_eq(check_no_partial(s3, bucket, "f", pat, size, "lost Create"),
                "exact", "the object")
    ht.check_eq(left, [], "multipart uploads left open after unmount (orphans)")
    ht.delete_bucket(bucket)


def test_200_with_error_on_complete_and_copy_retried():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("flt")
    size = 40 * MIB
    pat = Pattern(15)
    s3.put_object(Bucket=bucket, Key="src", Body=b"rename me\n" * 1000)
    with proxied(bucket, mount_args("--allow-rename")) as (p, m):
        p.set_rules([
            {"match": {"op": "CompleteMultipartUpload"}, "action": "error_200",
             "forward": True, "count": 1},
            {"match": {"op": "CopyObject"}, "action": "error_200",
             "forward": False, "count": 1},
            {"match": {"op": "CopyObject"}, "action": "error_200",
             "forward": True, "count": 1},
        ])
        w = write_pattern(os.path.join(m.path, "f"), pat, size)
        rename_err = None
        try:
            os.rename(os.path.join(m.path, "src"), os.path.join(m.path, "dst"))
        except OSError as e:
            rename_err = e
        c = faults(p)
        ops = ops_seen(p)
    print("note: 200-with-Error on Complete (forwarded) and CopyObject (once not "
          "forwarded, once forwarded): faults %s; Completes %d, Copies %d; close: "
          "%s; rename: %s" % (c, ops.get("CompleteMultipartUpload", 0),
                              ops.get("CopyObject", 0), w["error"] or "0",
                              rename_err or "0"))
    if w["error"] or rename_err:
        print("--- daemon stderr:\n" + m.stderr_text()[-5000:])
    if w["error"]:
        raise AssertionError("%s after a 200-with-Error Complete: %s"
                             % (w["where"], w["error"]))
    ht.check_eq(check_no_partial(s3, bucket, "f", pat, size, "200-with-Error"),
                "exact", "the object")
    if rename_err:
        raise AssertionError("rename after 200-with-Error CopyObject: %s" % rename_err)
    ht.check_eq(s3.get_object(Bucket=bucket, Key="dst")["Body"].read(),
                b"rename me\n" * 1000, "the renamed object")
    ht.check_eq(head(s3, bucket, "src"), None, "the old name after the rename")
    ht.check_eq(uploads(s3, bucket), [], "multipart uploads left open")
    ht.delete_bucket(bucket)


# ---- the server away (rows 2, 3) ----

def _outage_at(p, seconds, log):
    """A callable that starts an outage of `seconds` in the background."""
    def start():
        def run():
            p.outage(True)
            log["start"] = time.monotonic()
            try:
                time.sleep(seconds)
            finally:
                p.outage(False)
                log["end"] = time.monotonic()
        log["thread"] = threading.Thread(target=run, daemon=True)
        log["thread"].start()
    return start


def test_outage_30s_mid_upload_rides_out():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("flt")
    pat = Pattern(16)
    log = {}
    with proxied(bucket) as (p, m):
        w = write_pattern(os.path.join(m.path, "big"), pat, BIG,
                          at={BIG // 4: _outage_at(p, 30, log)})
        log["thread"].join()
        refused = sum(1 for r in p.requests if r["status"] is None)
    left = uploads(s3, bucket)
    state = check_no_partial(s3, bucket, "big", pat, BIG, "after an outage")
    print("note: radosgw away (proxy refusing and resetting) for %.1f s after %d MiB "
          "of %d; write %s after %.1f s, requests cut: %d; object %s; uploads left "
          "open after unmount: %d" % (
              log["end"] - log["start"], BIG // 4 // MIB, GIB_MIB,
              "ok" if not w["error"] else "failed at %s: %s" % (w["where"], w["error"]),
              w["seconds"], refused, state, len(left)))
    if w["error"]:
        raise AssertionError("a 30 s outage made the %s fail: %s (uploads left open: %d)"
                             % (w["where"], w["error"], len(left)))
    ht.check_eq(state, "exact", "the object")
    ht.check_eq(left, [], "multipart uploads left open")
    ht.delete_bucket(bucket)


def test_outage_longer_than_budget_loud_and_no_upload_left():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("flt")
    pat = Pattern(17)
    size = 256 * MIB
    log = {}
    with proxied(bucket, ["--max-retry-duration", "5"]) as (p, m):
        w = write_pattern(os.path.join(m.path, "doomed"), pat, size,
                          at={64 * MIB: _outage_at(p, 20, log)})
        log["thread"].join()
        during = uploads(s3, bucket)
        time.sleep(1)
    left = uploads(s3, bucket)
    state = check_no_partial(s3, bucket, "doomed", pat, size, "outage > budget")
    print("note: --max-retry-duration 5, radosgw away for 20 s after 64 MiB: %s %s "
          "(%.1f s); uploads open when the server was back: %d, after unmount: %d; "
          "object %s" % (w["where"] or "no error", w["error"] or "", w["seconds"],
                         len(during), len(left), state))
    if w["error"] is None:
        raise AssertionError("write and close succeeded through a 20 s outage with "
                             "a 5 s budget: the budget is not honoured")
    ht.check_eq(errno.errorcode.get(w["error"].errno), "EIO",
                "errno at %s" % w["where"])
    ht.check_eq(state, "absent", "the object of the failed write")
    ht.check_eq(left, [], "multipart uploads left open after unmount")
    ht.delete_bucket(bucket)


def test_aws_max_attempts_honoured():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("flt")
    s3.put_object(Bucket=bucket, Key="obj", Body=os.urandom(2 * MIB))
    with proxied(bucket, ["--read-only"], env={"AWS_MAX_ATTEMPTS": "2"}) as (p, m):
        p.set_rules([{"match": {"op": "GetObject"}, "action": "503"}])
        # O_DIRECT: no readahead, one read of the first 4 KiB
        fd = os.open(os.path.join(m.path, "obj"), os.O_RDONLY | os.O_DIRECT)
        buf = mmap.mmap(-1, 4096)
        t0 = time.monotonic()
        err = None
        try:
            os.preadv(fd, [buf], 0)
        except OSError as e:
            err = e
        took = time.monotonic() - t0
        os.close(fd)
        gets = sum(1 for r in p.requests if r["op"] == "GetObject")
        p.set_rules([])
    print("note: AWS_MAX_ATTEMPTS=2, every GET 503: read gave %s after %.1f s, "
          "GETs seen by the proxy: %d" % (err or "no error", took, gets))
    if err is None:
        raise AssertionError("the read succeeded although every GET got 503")
    ht.check_eq(errno.errorcode.get(err.errno), "EIO", "errno of the read")
    ht.check_eq(gets, 2, "GETs for the read with AWS_MAX_ATTEMPTS=2")
    if took > 5:
        raise AssertionError("the read failed after %.1f s, want a few s" % took)
    ht.delete_bucket(bucket)


# ---- the bucket check against a server that never answers (row 6) ----

@contextlib.contextmanager
def silent_server():
    """A loopback port that accepts connections and never says a word."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
                held.append(c)
            except socket.timeout:
                continue
            except OSError:
                return
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1], held
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        srv.close()


def _mount_check(bucket, endpoint, extra=(), timeout=60):
    """hpcops-mount -f against endpoint, expected to fail its bucket check;
    (status, or None if still running at timeout and killed; stderr; s)."""
    se = ht.s3_env()
    env = dict(os.environ)
    env.update(AWS_ACCESS_KEY_ID=se.access_key, AWS_SECRET_ACCESS_KEY=se.secret_key,
               AWS_REGION=se.region, AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
               AWS_CONFIG_FILE="/nonexistent")
    mnt = tempfile.mkdtemp(prefix="hpcops-flt-")
    t0 = time.monotonic()
    # -f: the check is the same as when detaching, and a timeout can kill it
    proc = subprocess.Popen([os.environ["HPCOPS_MOUNT"], bucket, mnt, "--endpoint-url",
                             endpoint, "--force-path-style", "-f"] + list(extra),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        status = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        status = None
    took = time.monotonic() - t0
    if ht.mounted(mnt):
        subprocess.run(["fusermount3", "-uz", mnt])
        raise AssertionError("a failed mount left %s mounted" % mnt)
    os.rmdir(mnt)
    return status, err, took


def test_bucket_check_against_a_silent_server_is_bounded():
    ht.s3_env()
    seen = []
    with silent_server() as (port, held):
        for extra, n in ((["--check-timeout", "3"], 3), ([], 10)):
            st, err, took = _mount_check("some-bucket", "http://127.0.0.1:%d" % port,
                                         extra, timeout=n + 10)
            seen.append((extra, n, st, err.strip(), took))
    bad = []
    for extra, n, st, err, took in seen:
        print("note: bucket check against a server that accepts and never answers, "
              "%s: exit %s after %.1f s: %s" % (" ".join(extra) or "default", st, took,
                                               err[-300:]))
        if st is None:
            bad.append("%s: still running after %.0f s (killed)" % (extra, took))
            continue
        if st == 0:
            bad.append("%s: exit 0" % extra)
        if took > n + 5:
            bad.append("%s: exited after %.1f s, want within %d + 5 s" % (extra, took, n))
        if not re.search(r"\bconnected\b", err) or "no answer" not in err or \
                not re.search(r"\b%d ?s\b" % n, err):
            bad.append("%s: the message does not say it connected and got no "
                       "answer within %d s: %r" % (extra, n, err[-300:]))
    if bad:
        raise AssertionError("\n".join(bad))


# ---- kill -9 ----

def _mount_over_dead(bucket, path, extra):
    """hpcops-mount -f on a dead mount point PATH: the listing of PATH once it
    answers (then unmounted again), or a string saying how it failed."""
    se = ht.s3_env()
    env = dict(os.environ, AWS_ACCESS_KEY_ID=se.access_key,
               AWS_SECRET_ACCESS_KEY=se.secret_key, AWS_REGION=se.region)
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([os.environ["HPCOPS_MOUNT"], bucket, path, "--endpoint-url",
                             se.endpoint, "--force-path-style", "-f"] + list(extra),
                            env=env, stdout=log, stderr=log)
    got = None
    deadline = time.monotonic() + 20
    while got is None:
        if proc.poll() is not None:
            log.seek(0)
            got = "failed: exit %d: %s" % (proc.returncode,
                                           log.read().decode(errors="replace")[-300:])
            break
        try:
            got = sorted(os.listdir(path))
        except OSError:
            if time.monotonic() > deadline:
                got = "not answering after 20 s"
                break
            time.sleep(0.1)
    if proc.poll() is None:
        subprocess.run(["fusermount3", "-u", path])
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return got


def test_kill9_mid_write_no_object_then_named_fix():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("flt")
    pat = Pattern(18)
    with ht.Mount(bucket, mount_args(), check_exit=False) as m:
        fd = os.open(os.path.join(m.path, "killed"), os.O_WRONLY | os.O_CREAT, 0o644)
        for c in pat.chunks(40 * MIB):
            os.write(fd, c)
        time.sleep(0.5)  # parts on the wire
        os.kill(m.pid, signal.SIGKILL)
        m.proc.wait()
        with contextlib.suppress(OSError):
            os.close(fd)
        obj = head(s3, bucket, "killed")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        open_ups = uploads(s3, bucket)
        try:
            os.stat(os.path.join(m.path, "killed"))
            dead = "stat worked"
        except OSError as e:
            dead = errno.errorcode.get(e.errno, str(e.errno))
        # a second mount on the same dead DIR, as a user would try
        se = ht.s3_env()
        env = dict(os.environ, AWS_ACCESS_KEY_ID=se.access_key,
                   AWS_SECRET_ACCESS_KEY=se.secret_key, AWS_REGION=se.region)
        r = subprocess.run([os.environ["HPCOPS_MOUNT"], bucket, m.path, "--endpoint-url",
                            se.endpoint, "--force-path-style"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=60)
        st, err = r.returncode, r.stderr.strip()
        if st == 0:  # it mounted over the dead one: take that mount away again
            subprocess.run(["fusermount3", "-u", m.path])
        # with --auto-unmount the new mount recovers the dead mount point
        recovered = _mount_over_dead(bucket, m.path, ["--auto-unmount"])
    print("note: kill -9 after 40 MiB written: object %s, keys %s, uploads left open "
          "%d (the daemon could not abort them); the dead mount point: %s; a new "
          "mount there: exit %d: %s; with --auto-unmount: %s"
          % ("absent" if obj is None else "%d bytes" % obj, keys, len(open_ups), dead,
             st, err[-300:], recovered))
    ht.check_eq(obj, None, "the object of the killed write")
    ht.check_eq(keys, [], "keys in the bucket after kill -9")
    ht.check_eq(dead, "ENOTCONN", "the dead mount point")
    if st == 0:
        raise AssertionError("a mount on a dead mount point exited 0")
    if "fusermount3 -u" not in err:
        raise AssertionError("the message on a dead mount point does not name the "
                             "fix (fusermount3 -u): %r" % err)
    if not isinstance(recovered, list):
        raise AssertionError("--auto-unmount on a dead mount point: %s" % recovered)
    for k, u in open_ups:
        s3.abort_multipart_upload(Bucket=bucket, Key=k, UploadId=u)
    ht.delete_bucket(bucket)


# ---- control characters in logged names (row 8) ----

def test_control_characters_escaped_in_log():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("flt")
    nl = "nl\nFORGED-1 hpcops-mount: notice: all good"
    esc = "esc\nFORGED-2 \x1b[31mred\x1b[0m"
    with ht.Mount(bucket, ["-d"]) as m:
        with open(os.path.join(m.path, nl), "wb") as f:
            f.write(b"x")
        # radosgw lists a prefix with ESC unescaped (malformed XML), so the
        # lookup may fail: any outcome, the log is what is checked
        try:
            os.stat(os.path.join(m.path, esc))
            esc_outcome = "found"
        except OSError as e:
            esc_outcome = errno.errorcode.get(e.errno, str(e.errno))
        log = m.stderr_text()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    forged = [ln for ln in log.split("\n") if ln.startswith("FORGED")]
    print("note: names with a newline and an ESC: object keys %r; stat of the ESC "
          "name: %s; log lines starting with the text after a newline: %d; raw ESC "
          "bytes in the log: %d; escaped '\\n' present: %s"
          % (keys, esc_outcome, len(forged), log.count("\x1b"), "\\n" in log))
    ht.check_eq(keys, [nl], "the object with a newline in its name")
    if forged:
        raise AssertionError("a name forged log lines: %r" % forged)
    if "\x1b" in log:
        raise AssertionError("a raw ESC in the log")
    if "\\n" not in log:
        raise AssertionError("the escaped form \\n of the names is not in the log")
    ht.delete_bucket(bucket)


# ---- a listing nested 10 million deep (row 9) ----

def _asan(pid):
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read()
    # a sanitizer's shadow memory dominates RSS: the bound is not compared
    return "libasan" in maps or "libtsan" in maps


def test_listing_nested_ten_million_deep():
    # The proxy answers every ListObjectsV2 with a ListBucketResult nested
    # 10,000,000 elements deep (70 MB): a malformed reply, not a fault of
    # the network, made by the proxy's replace_xml action.
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("flt")
    s3.put_object(Bucket=bucket, Key="d/a", Body=b"a")
    limit = 64
    with proxied(bucket, ["--memory-limit", str(limit), "--metadata-ttl", "0"]) as (p, m):
        p.set_rules([{"match": {"op": "ListObjectsV2"}, "action": "replace_xml",
                      "depth": 10_000_000}])
        t0 = time.monotonic()
        try:
            got = os.listdir(m.path)
            outcome = "listing %r" % got
        except OSError as e:
            got = None
            outcome = errno.errorcode.get(e.errno, str(e.errno))
        took = time.monotonic() - t0
        lists = sum(1 for r in p.requests if r["action"] == "replace_xml")
        rss = ht.peak_rss_kib(m.pid)
        asan = _asan(m.pid)
        alive = m.proc.poll() is None
        p.set_rules([])
        after = sorted(os.listdir(m.path)) if alive else None
        log = m.stderr_text()
    print("note: ListObjectsV2 nested 10,000,000 deep (%d replies of 70 MB): ls gave "
          "%s after %.1f s; daemon peak RSS %d KiB (--memory-limit %d MiB%s); daemon "
          "up: %s; ls afterwards: %s" % (lists, outcome, took, rss, limit,
                                         ", ASan: not compared" if asan else "",
                                         alive, after))
    bad = []
    if not alive:
        bad.append("the daemon died on a deep listing")
    if got is not None:
        if got:
            bad.append("a listing from a malformed reply: %r" % got)
        elif not re.search(r"(warning|error).*(depth|deep|nest|too large|protocol|"
                           r"malformed|limit)", log, re.I):
            bad.append("an empty listing and no error logged")
    elif outcome != "EIO":
        bad.append("ls of a malformed listing: %s, want EIO" % outcome)
    if alive and after != ["d"]:
        bad.append("ls once the listing is sane again: %r, want ['d']" % after)
    if not asan and rss > (limit + 64) * 1024:
        bad.append("peak RSS %d KiB > --memory-limit %d MiB + 64 MiB" % (rss, limit))
    if bad:
        raise AssertionError("; ".join(bad))
    ht.delete_bucket(bucket)


# ---- a file closed with reads in flight, then unmount (row 7) ----

def test_release_with_reads_in_flight_then_unmount():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("flt")
    s3.put_object(Bucket=bucket, Key="obj", Body=os.urandom(64 * MIB))
    runs = []
    for i in range(3):
        with proxied(bucket, ["--read-only"], check_exit=False) as (p, m):
            # every GET waits 0.5 s at the proxy: the prefetcher's parts are
            # in flight when the file is closed and the mount goes away
            p.set_rules([{"match": {"op": "GetObject"}, "action": "delay",
                          "seconds": 0.5}])
            f = open(os.path.join(m.path, "obj"), "rb", buffering=0)
            f.read(MIB)
            f.read(MIB)
            f.close()
            inflight = sum(1 for r in p.requests
                           if r["op"] == "GetObject" and r["status"] is None)
        log = m.stderr_text()
        runs.append((m.returncode, inflight, "LeakSanitizer" in log,
                     "ERROR: AddressSanitizer" in log or "runtime error:" in log))
        if m.returncode != 0 or "Sanitizer" in log:
            sys.stdout.write("--- daemon stderr (run %d):\n%s\n" % (i, log[-4000:]))
    print("note: 3 runs of open, read 2 MiB, close with GETs in flight, unmount: "
          "(exit status, GETs unanswered at close, LeakSanitizer report, other "
          "ASan/UBSan report) = %s" % runs)
    for st, _, lsan, asan in runs:
        if st != 0 or lsan or asan:
            raise AssertionError("the daemon exited %d%s%s" % (
                st, ", LeakSanitizer reported" if lsan else "",
                ", ASan/UBSan reported an error" if asan else ""))
    ht.delete_bucket(bucket)


# ---- credentials that expire, and a credentials endpoint that hangs ----

class CredsDouble:
    """tests/doubles/creds_double.py handing out real keys of a radosgw user."""

    def __init__(self, uid, expiry):
        exe = os.path.join(_SRC, "tests", "doubles", "creds_double.py")
        self.proc = subprocess.Popen(
            [sys.executable, exe, "--expiry", str(expiry), "--rgw-admin",
             shlex.join(ht.s3_env().rgw_admin), "--rgw-uid", uid],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise AssertionError("creds_double did not start: %r" % line)
        self.port = int(line.split()[1])
        self.url = "http://127.0.0.1:%d" % self.port

    def get(self, what):
        with urllib.request.urlopen(self.url + what, timeout=10) as r:
            return json.loads(r.read())

    def set(self, **kv):
        q = "&".join("%s=%s" % x for x in kv.items())
        urllib.request.urlopen(self.url + "/_double/set?" + q, timeout=10).read()

    def stats(self):
        return self.get("/_double/stats")

    def issued(self):
        return self.get("/_double/issued")

    def stop(self):
        self.proc.terminate()  # removes the keys still in radosgw
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextlib.contextmanager
def _creds_user():
    """(uid, boto3 client of the user, bucket it owns); both removed after."""
    uid = "fcreds-" + uuid.uuid4().hex[:8]
    ak, sk = ht.make_user(uid)
    owner = ht.s3_client(ak, sk)
    bucket = "fc-" + uuid.uuid4().hex[:16]
    owner.create_bucket(Bucket=bucket)
    try:
        yield uid, owner, bucket
    finally:
        try:
            _delete_owned(uid, owner, bucket)
        except Exception as e:  # noqa: BLE001 - do not hide the test's outcome
            print("note: cleanup of user %s: %s" % (uid, e))


def _delete_owned(uid, owner, bucket):
    """Delete the test user's bucket and the user."""
    for o in owner.list_objects_v2(Bucket=bucket).get("Contents", []):
        owner.delete_object(Bucket=bucket, Key=o["Key"])
    for u in owner.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        owner.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
    owner.delete_bucket(Bucket=bucket)
    ht.rgw_admin("user", "rm", "--uid=" + uid, "--purge-data")


def _container_env(d, ahead):
    return {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None,
            "AWS_SESSION_TOKEN": None,
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": d.url + "/v2/credentials/faults",
            "HPCOPS_CREDS_REFRESH_AHEAD": str(ahead),
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_CONFIG_FILE": "/nonexistent"}


def _secrets_in(log, issued):
    found = []
    for c in issued:
        for k in ("secret", "token"):
            if c[k] in log:
                found.append("%s of %s" % (k, c["akid"]))
    return found


def test_credentials_expire_during_1gib_write_and_read():
    ht.s3_env()
    with _creds_user() as u:
        _expire_case(*u)


def _expire_case(uid, owner, bucket):
    expiry, ahead = 10, 5
    pat = Pattern(19)
    want = pat.sha(BIG)
    pace = 20  # each way: keys turn over every 5 s, so at least 3 expire in it
    d = CredsDouble(uid, expiry)
    try:
        with ht.Mount(bucket, ["-d"], env=_container_env(d, ahead)) as m:
            tw = time.time()
            w = write_pattern(os.path.join(m.path, "big"), pat, BIG, min_seconds=pace)
            tw_end = time.time()
            if w["error"]:
                raise AssertionError("%s failed while keys expired: %s"
                                     % (w["where"], w["error"]))
            sha, size = s3_sha(owner, bucket, "big")
            ht.check_eq((size, sha), (BIG, want), "the object in S3 (boto3, direct)")
            drop_caches()
            tr = time.time()
            try:
                rsha, rn, _ = read_sha(os.path.join(m.path, "big"), min_seconds=pace,
                                       size_hint=BIG)
            except OSError as e:
                raise AssertionError("read failed while keys expired: %s" % e)
            tr_end = time.time()
            ht.check_eq((rn, rsha), (BIG, want), "bytes read back through the mount")
            log = m.stderr_text()
            stats = d.stats()
            issued = d.issued()
        # the first key expired long ago: radosgw refuses it (the double works)
        try:
            ht.s3_client(issued[0]["akid"], issued[0]["secret"]).list_objects_v2(
                Bucket=bucket, MaxKeys=1)
            old_key = "still accepted"
        except Exception as e:  # noqa: BLE001
            old_key = str(e)
    finally:
        d.stop()
    if "InvalidAccessKeyId" not in old_key:
        raise AssertionError("an expired key at radosgw: %s" % old_key)
    removed_w = sum(1 for c in issued if c["removed"] and tw < c["removed"] < tw_end)
    removed_r = sum(1 for c in issued if c["removed"] and tr < c["removed"] < tr_end)
    elapsed = tr_end - tw
    bound = int(2 * elapsed / (expiry - ahead)) + 6
    leaked = _secrets_in(log, issued)
    print("note: keys valid %d s, renewed %d s ahead (HPCOPS_CREDS_REFRESH_AHEAD); "
          "%d MiB written in %.1f s and read in %.1f s; keys handed out %d (radosgw "
          "keys created %d, removed %d; removed during the write %d, during the read "
          "%d); sha256 equal; secrets or tokens in the -d log: %d"
          % (expiry, ahead, GIB_MIB, tw_end - tw, tr_end - tr, stats["container"],
             stats["rgw_keys_created"], stats["rgw_keys_removed"], removed_w,
             removed_r, len(leaked)))
    if removed_w < 2 or removed_r < 2:
        raise AssertionError("the transfers did not span two expiries each: the test "
                             "proved nothing")
    if leaked:
        raise AssertionError("secrets in the daemon's debug log: %s" % leaked)
    if stats["container"] > bound:
        raise AssertionError("%d credential fetches in %.0f s with keys valid %d s "
                             "renewed %d s ahead: not renewed ahead of expiry but per "
                             "request (bound %d)" % (stats["container"], elapsed, expiry,
                                                     ahead, bound))


def test_credentials_endpoint_hangs_transfers_go_on():
    ht.s3_env()
    with _creds_user() as u:
        _hang_case(*u)


def _hang_case(uid, owner, bucket):
    expiry, ahead = 75, 70  # a renewal is due 5 s after the first key
    size = 256 * MIB
    pat = Pattern(20)
    d = CredsDouble(uid, expiry)
    try:
        # a small budget: write() waits for the network, so a stalled
        # transfer shows as a long write() (with 512 MiB it hides in buffers)
        with ht.Mount(bucket, ["-d", "--memory-limit", "32"],
                      env=_container_env(d, ahead)) as m:
            d.set(hang=1)
            first = d.issued()[0]["issued"]
            time.sleep(max(0, first + (expiry - ahead) + 1 - time.time()))
            w = write_pattern(os.path.join(m.path, "f"), pat, size)
            drop_caches()
            err = None
            try:
                rsha, rn, rgap = read_sha(os.path.join(m.path, "f"))
            except OSError as e:
                err = e
                rsha, rn, rgap = None, 0, 0
            valid_left = first + expiry - time.time()
            stats = d.stats()
            d.set(hang=0)
            log = m.stderr_text()
            issued = d.issued()
    finally:
        if d.proc.poll() is None:
            d.set(hang=0)
        d.stop()
    leaked = _secrets_in(log, issued)
    print("note: credentials endpoint hanging (requests held: %d) while the key stays "
          "valid (%.0f s left at the end): 256 MiB write %s in %.1f s, longest write "
          "or close %.2f s; read %s, longest read %.2f s; secrets in the log: %d"
          % (stats["hung"], valid_left, w["error"] or "ok", w["seconds"], w["max_gap"],
             err or "ok", rgap, len(leaked)))
    if stats["hung"] < 1:
        raise AssertionError("the mount never asked to renew: the test proved nothing")
    if w["error"]:
        raise AssertionError("%s failed: %s" % (w["where"], w["error"]))
    if err:
        raise AssertionError("read failed: %s" % err)
    ht.check_eq((rn, rsha), (size, pat.sha(size)), "bytes read back")
    ht.check_eq(s3_sha(owner, bucket, "f"), (pat.sha(size), size), "the object in S3")
    if w["max_gap"] > 2 or rgap > 2:
        raise AssertionError("a transfer stalled %.1f s behind the hanging credentials "
                             "endpoint (want <= 2 s)" % max(w["max_gap"], rgap))
    if leaked:
        raise AssertionError("secrets in the daemon's debug log: %s" % leaked)


if __name__ == "__main__":
    ht.main()

#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""hpcops-mount's requests as mount-s3's options say, seen by a proxy.

Each test mounts through tests/lib/faultproxy.py, which records every
request with its headers (Authorization and X-Amz-Security-Token values
redacted), runs a small workload (list, stat, write a small file that goes
up as one PutObject and a 20 MiB one that goes up as a multipart upload,
read both back) and checks the headers of what was sent:
--upload-checksums (crc32c by default, crc64nvme, md5, off),
--user-agent-prefix, --requester-pays, --expected-bucket-owner,
--storage-class, --sse aws:kms with --sse-kms-key-id. radosgw accepts the
checksums, the payer, the owner and STANDARD; it refuses STANDARD_IA (no
such placement without configuration) and SSE-KMS (no KMS), so for those
the test asserts the headers were sent and the mount answered EIO and
logged the server's refusal.
"""
import errno
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import hpcops_test as ht  # noqa: E402
import faultproxy  # noqa: E402

MIB = 1024 * 1024
BIG = 20 * MIB  # three parts of the default 8 MiB --write-part-size
SMALL = b"small file, one PutObject\n" * 40
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

_state = {}


def bucket():
    if "bucket" not in _state:
        _state["bucket"] = ht.fresh_bucket("rq")
    return _state["bucket"]


def big_data():
    if "big" not in _state:
        _state["big"] = os.urandom(BIG)
    return _state["big"]


def workload(m, tag):
    """List, stat, write SMALL and BIG under TAG/, read them back."""
    d = os.path.join(m.path, tag)
    os.listdir(m.path)
    with open(d + "-small.txt", "wb") as f:
        f.write(SMALL)
    with open(d + "-big.bin", "wb") as f:
        f.write(big_data())
    os.stat(d + "-small.txt")
    with open(d + "-small.txt", "rb") as f:
        ht.check_eq(f.read(), SMALL, "small file read back")
    with open(d + "-big.bin", "rb") as f:
        ht.check_eq(f.read() == big_data(), True, "20 MiB file read back")


def through_proxy(args, fn, check_exit=True):
    """Mount with ARGS through a recording proxy, run fn(m), unmount:
    (the requests, the daemon's stderr)."""
    with faultproxy.FaultProxy(ht.s3_env().endpoint) as p:
        with ht.Mount(bucket(), list(args), endpoint=p.url,
                      check_exit=check_exit) as m:
            fn(m)
        p.quiesce(idle=0.3)
        return p.requests, m.stderr_text()


def of(reqs, *ops):
    return [r for r in reqs if r["op"] in ops]


def need(reqs, *ops):
    """The requests of OPS, failing when there is none of one of them."""
    for op in ops:
        if not of(reqs, op):
            raise AssertionError("no %s was sent (ops seen: %s)"
                                 % (op, sorted({r["op"] for r in reqs})))
    return of(reqs, *ops)


def checksum_headers(r):
    return {k: v for k, v in r["headers"].items() if k.startswith("x-amz-checksum-")}


def _redacted(h, name, what):
    # never echo the value: it is what must not be kept
    if h.get(name) != "<redacted>":
        raise AssertionError("%s of %s recorded as %s" % (
            name, what, "absent" if name not in h else "sent (%d chars)" % len(h[name])))


def test_headers_recorded_with_secrets_redacted():
    reqs, _ = through_proxy(["--read-only"], lambda m: os.listdir(m.path))
    if not reqs:
        raise AssertionError("no request recorded")
    for r in reqs:
        h = r["headers"]
        _redacted(h, "authorization", r["op"])
        if any(k != k.lower() for k in h):
            raise AssertionError("header names not lower-cased: %s" % sorted(h))
        if "x-amz-date" not in h or "host" not in h:
            raise AssertionError("headers missing from the record: %s" % sorted(h))
    # a session token (the mount has none here): sent by hand through the proxy
    import urllib.request
    with faultproxy.FaultProxy(ht.s3_env().endpoint) as p:
        req = urllib.request.Request(p.url + "/" + bucket() + "?list-type=2", headers={
            "Authorization": "AWS4-HMAC-SHA256 not-a-real-signature",
            "X-Amz-Security-Token": "not-a-real-token", "X-Custom-Probe": "Kept As Sent"})
        try:
            urllib.request.urlopen(req, timeout=10).close()
        except OSError:
            pass  # radosgw refuses the made-up signature: only the record matters
        h = p.requests[0]["headers"]
    _redacted(h, "authorization", "a hand-made request")
    _redacted(h, "x-amz-security-token", "a hand-made request")
    ht.check_eq(h.get("x-custom-probe"), "Kept As Sent", "another header's value")


def test_upload_checksums_crc32c_by_default():
    reqs, _ = through_proxy([], lambda m: workload(m, "crc32c"))
    for r in need(reqs, "PutObject", "UploadPart"):
        ht.check_eq(sorted(checksum_headers(r)), ["x-amz-checksum-crc32c"],
                    "checksum headers of " + r["op"])
        if not re.fullmatch(r"[A-Za-z0-9+/]{6}==", r["headers"]["x-amz-checksum-crc32c"]):
            raise AssertionError("not a base64 CRC32C: %r" % r["headers"])
        ht.check_eq(r["headers"].get("content-md5"), None, "Content-MD5 of " + r["op"])
    for r in need(reqs, "CreateMultipartUpload"):
        ht.check_eq(r["headers"].get("x-amz-checksum-algorithm"), "CRC32C",
                    "x-amz-checksum-algorithm of CreateMultipartUpload")


def test_upload_checksums_crc64nvme():
    reqs, _ = through_proxy(["--upload-checksums", "crc64nvme"],
                            lambda m: workload(m, "crc64"))
    for r in need(reqs, "PutObject", "UploadPart"):
        ht.check_eq(sorted(checksum_headers(r)), ["x-amz-checksum-crc64nvme"],
                    "checksum headers of " + r["op"])
        if not re.fullmatch(r"[A-Za-z0-9+/]{11}=", r["headers"]["x-amz-checksum-crc64nvme"]):
            raise AssertionError("not a base64 CRC64: %r" % r["headers"])
    for r in need(reqs, "CreateMultipartUpload"):
        ht.check_eq(r["headers"].get("x-amz-checksum-algorithm"), "CRC64NVME",
                    "x-amz-checksum-algorithm of CreateMultipartUpload")


def test_upload_checksums_md5():
    reqs, _ = through_proxy(["--upload-checksums", "md5"], lambda m: workload(m, "md5"))
    for r in need(reqs, "PutObject", "UploadPart"):
        if not re.fullmatch(r"[A-Za-z0-9+/]{22}==", r["headers"].get("content-md5", "")):
            raise AssertionError("%s without a Content-MD5: %r" % (r["op"], r["headers"]))
        ht.check_eq(checksum_headers(r), {}, "x-amz-checksum-* of " + r["op"])
    for r in need(reqs, "CreateMultipartUpload"):
        ht.check_eq(checksum_headers(r), {}, "x-amz-checksum-* of CreateMultipartUpload")


def test_upload_checksums_off():
    reqs, _ = through_proxy(["--upload-checksums", "off"], lambda m: workload(m, "off"))
    for r in need(reqs, "PutObject", "UploadPart", "CreateMultipartUpload"):
        ht.check_eq(checksum_headers(r), {}, "x-amz-checksum-* of " + r["op"])
        ht.check_eq(r["headers"].get("content-md5"), None, "Content-MD5 of " + r["op"])


def test_user_agent_prefix():
    prefix = "hpcops-rq-test/4.2 (cluster=c7)"
    reqs, _ = through_proxy(["--user-agent-prefix", prefix], lambda m: workload(m, "ua"))
    if len(reqs) < 10:
        raise AssertionError("only %d requests seen" % len(reqs))
    for r in reqs:
        ua = r["headers"].get("user-agent", "")
        if not ua.startswith(prefix):
            raise AssertionError("%s sent User-Agent %r, want it to start with %r"
                                 % (r["op"], ua, prefix))


def test_requester_pays_on_every_request():
    reqs, _ = through_proxy(["--requester-pays"], lambda m: workload(m, "payer"))
    need(reqs, "ListObjectsV2", "HeadObject", "GetObject", "PutObject",
         "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")
    for r in reqs:
        ht.check_eq(r["headers"].get("x-amz-request-payer"), "requester",
                    "x-amz-request-payer of %s %s" % (r["op"], r["path"]))


def test_expected_bucket_owner_on_every_request():
    reqs, _ = through_proxy(["--expected-bucket-owner", "123456789012"],
                            lambda m: workload(m, "owner"))
    need(reqs, "ListObjectsV2", "HeadObject", "GetObject", "PutObject",
         "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")
    for r in reqs:
        ht.check_eq(r["headers"].get("x-amz-expected-bucket-owner"), "123456789012",
                    "x-amz-expected-bucket-owner of %s %s" % (r["op"], r["path"]))


def test_storage_class_on_new_objects():
    reqs, _ = through_proxy(["--storage-class", "STANDARD"], lambda m: workload(m, "sc"))
    for r in need(reqs, "PutObject", "CreateMultipartUpload"):
        ht.check_eq(r["headers"].get("x-amz-storage-class"), "STANDARD",
                    "x-amz-storage-class of " + r["op"])
    for r in of(reqs, "UploadPart", "GetObject", "HeadObject", "ListObjectsV2"):
        ht.check_eq(r["headers"].get("x-amz-storage-class"), None,
                    "x-amz-storage-class of " + r["op"])
    s3 = ht.s3_client()
    ht.check_eq(s3.head_object(Bucket=bucket(), Key="sc-small.txt").get("StorageClass",
                                                                          "STANDARD"),
                "STANDARD", "the object's storage class")


def _write_fails_eio(path, data):
    """Write DATA to PATH; the errno of the first failing call (write or close)."""
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        return e.errno
    return 0


def _refused(args, tag, want_headers):
    """Writes under ARGS that radosgw refuses: EIO for both files, the headers
    sent, the refusal logged with the server's status."""
    out = {}

    def fn(m):
        out["small"] = _write_fails_eio(os.path.join(m.path, tag + "-small.txt"), SMALL)
        out["big"] = _write_fails_eio(os.path.join(m.path, tag + "-big.bin"), big_data())
    reqs, log = through_proxy(args, fn)
    ht.check_eq(out["small"], errno.EIO, "errno of a refused PutObject")
    ht.check_eq(out["big"], errno.EIO, "errno of a refused multipart upload")
    for r in need(reqs, "PutObject", "CreateMultipartUpload"):
        for k, v in want_headers.items():
            ht.check_eq(r["headers"].get(k), v, "%s of %s" % (k, r["op"]))
        if r["status"] is None or r["status"] < 400:
            raise AssertionError("%s was answered %s, not refused" % (r["op"], r["status"]))
        line = [ln for ln in log.splitlines() if r["op"] in ln and "HTTP %d" % r["status"] in ln]
        if not line:
            raise AssertionError("no log line names %s's refusal (HTTP %d):\n%s"
                                 % (r["op"], r["status"], log[-3000:]))
    ht.check_eq(of(reqs, "UploadPart"), [], "parts sent after a refused CreateMultipartUpload")
    return log


def test_storage_class_radosgw_refuses_says_why():
    # radosgw has no STANDARD_IA placement unless configured: the header is
    # sent, the server refuses, the writer gets EIO and the log its error
    log = _refused(["--storage-class", "STANDARD_IA"], "ia",
                   {"x-amz-storage-class": "STANDARD_IA"})
    if "InvalidArgument" not in log:
        raise AssertionError("the log does not name radosgw's error:\n" + log[-3000:])


def test_sse_kms_headers_sent():
    # radosgw without a KMS refuses aws:kms: the headers were sent, EIO, logged
    log = _refused(["--sse", "aws:kms", "--sse-kms-key-id", KMS_KEY], "kms",
                   {"x-amz-server-side-encryption": "aws:kms",
                    "x-amz-server-side-encryption-aws-kms-key-id": KMS_KEY})
    if "InvalidRequest" not in log:
        raise AssertionError("the log does not name radosgw's error:\n" + log[-3000:])


if __name__ == "__main__":
    ht.main()

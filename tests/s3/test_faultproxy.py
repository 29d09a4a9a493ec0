#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The fault proxy (tests/lib/faultproxy.py) against radosgw: each action
does what the fault tests rely on, seen from boto3 (retries off) and from
raw HTTP on a presigned URL, and without rules it is a faithful, fast,
keep-alive pass-through (SigV4 verifies through it, bodies byte-exact)."""
import hashlib
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import faultproxy  # noqa: E402
import hpcops_test as ht  # noqa: E402

MIB = 1 << 20
_state = {}


def bucket():
    if "bucket" not in _state:
        _state["bucket"] = ht.fresh_bucket("fp")
        data = os.urandom(4 * MIB)
        ht.s3_client().put_object(Bucket=_state["bucket"], Key="obj", Body=data)
        _state["data"] = data
    return _state["bucket"]


def obj():
    bucket()
    return _state["data"]


def client(url):
    """boto3 through the proxy, no retries (each fault is seen as it is)."""
    import boto3
    from botocore.config import Config
    env = ht.s3_env()
    return boto3.client(
        "s3", endpoint_url=url, region_name=env.region,
        aws_access_key_id=env.access_key, aws_secret_access_key=env.secret_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      retries={"total_max_attempts": 1},
                      connect_timeout=5, read_timeout=30))


def presigned(p, key="obj", method="get_object"):
    """(host, port, path?query) of a presigned URL through the proxy."""
    url = client(p.url).generate_presigned_url(
        method, Params={"Bucket": bucket(), "Key": key}, ExpiresIn=600)
    u = urllib.parse.urlsplit(url)
    return u.hostname, u.port, u.path + "?" + u.query


def raw_get(p, rng=None, key="obj"):
    """GET through the proxy with http.client: (status, headers, body, error)."""
    host, port, target = presigned(p, key)
    conn = http.client.HTTPConnection(host, port, timeout=30)
    hdrs = {"Range": "bytes=%d-%d" % rng} if rng else {}
    conn.request("GET", target, headers=hdrs)
    r = conn.getresponse()
    body = b""
    err = None
    try:
        while True:
            c = r.read(65536)
            if not c:
                break
            body += c
    except http.client.IncompleteRead as e:
        body += e.partial
        err = e
    except OSError as e:
        err = e
    cl = r.getheader("Content-Length")
    if err is None and cl is not None and len(body) < int(cl):
        # http.client's read(amt) returns short at a close: name it
        err = http.client.IncompleteRead(body, int(cl) - len(body))
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body, err


def expect_raises(fn, what):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - we look at what came
        return e
    raise AssertionError("%s: no error" % what)


def test_passthrough_byte_exact_and_ops():
    env = ht.s3_env()
    from boto3.s3.transfer import TransferConfig
    size = 96 * MIB
    data = os.urandom(size)
    with faultproxy.FaultProxy(env.endpoint) as p:
        s3 = client(p.url)
        t0 = time.monotonic()
        s3.upload_fileobj(io.BytesIO(data), bucket(), "pass",
                          Config=TransferConfig(multipart_chunksize=8 * MIB,
                                                max_concurrency=4))
        t_put = time.monotonic() - t0
        h = hashlib.sha256()
        t0 = time.monotonic()
        for c in s3.get_object(Bucket=bucket(), Key="pass")["Body"].iter_chunks(MIB):
            h.update(c)
        t_get = time.monotonic() - t0
        s3.head_object(Bucket=bucket(), Key="pass")
        s3.list_objects_v2(Bucket=bucket(), Prefix="pass")
        s3.copy_object(Bucket=bucket(), Key="pass-copy",
                       CopySource={"Bucket": bucket(), "Key": "obj"})
        s3.delete_object(Bucket=bucket(), Key="pass-copy")
        mpu = s3.create_multipart_upload(Bucket=bucket(), Key="abort-me")
        s3.list_parts(Bucket=bucket(), Key="abort-me", UploadId=mpu["UploadId"])
        s3.list_multipart_uploads(Bucket=bucket())
        s3.abort_multipart_upload(Bucket=bucket(), Key="abort-me",
                                  UploadId=mpu["UploadId"])
        ops = {}
        for r in p.requests:
            ops[r["op"]] = ops.get(r["op"], 0) + 1
        conns = p.connections
        ht.check_eq(p.counts, {}, "faults injected without rules")
    ht.check_eq(h.hexdigest(), hashlib.sha256(data).hexdigest(),
                "sha256 of %d bytes through the proxy" % size)
    print("note: %d MiB through the proxy: PUT %.0f MB/s, GET %.0f MB/s, "
          "%d connections, ops %s" % (size // MIB, size / t_put / 1e6,
                                      size / t_get / 1e6, conns, ops))
    ht.check_eq(ops, {"CreateMultipartUpload": 2, "UploadPart": 12,
                      "CompleteMultipartUpload": 1, "GetObject": 1,
                      "HeadObject": 1, "ListObjectsV2": 1, "CopyObject": 1,
                      "DeleteObject": 1, "ListParts": 1,
                      "ListMultipartUploads": 1, "AbortMultipartUpload": 1},
                "operations the proxy recognised")
    # keep-alive: 4 upload threads and the rest reuse connections
    if conns > 6:
        raise AssertionError("%d client connections for %d requests: no keep-alive"
                             % (conns, sum(ops.values())))


def test_keepalive_and_chunked_request():
    env = ht.s3_env()
    with faultproxy.FaultProxy(env.endpoint) as p:
        host, port, target = presigned(p)
        conn = http.client.HTTPConnection(host, port, timeout=30)
        for _ in range(10):
            conn.request("GET", target, headers={"Range": "bytes=0-9"})
            r = conn.getresponse()
            ht.check_eq(r.read(), obj()[:10], "ranged GET on a kept connection")
        conn.close()
        ht.check_eq(p.connections, 1, "connections for 10 requests")
        # a chunked request body (as libcurl sends a PUT of unknown size):
        # radosgw answers 411 MissingContentLength to it, also without the
        # proxy; through the proxy the body is framed right (the next request
        # on the connection works) and counted. With a 503 rule the proxy
        # reads the chunked body itself.
        host, port, target = presigned(p, "chunked", "put_object")
        conn = http.client.HTTPConnection(host, port, timeout=30)
        body = [os.urandom(100000) for _ in range(5)]
        got = []
        for rules in ([], [{"match": {"op": "PutObject"}, "action": "503"}]):
            p.set_rules(rules)
            conn.request("PUT", target, body=iter(body), encode_chunked=True,
                         headers={"Transfer-Encoding": "chunked"})
            r = conn.getresponse()
            code = r.read().split(b"<Code>")[1].split(b"<")[0].decode()
            rec = [x for x in p.requests if x["op"] == "PutObject"][-1]
            got.append((r.status, code, rec["bytes_in"]))
            host2, port2, target2 = presigned(p)
            conn.request("GET", target2, headers={"Range": "bytes=0-9"})
            ht.check_eq(conn.getresponse().read(), obj()[:10],
                        "a GET after the chunked PUT on the same connection")
        conn.close()
    ht.check_eq(got, [(411, "MissingContentLength", 500000),
                      (503, "SlowDown", 500000)],
                "chunked PUT forwarded, then refused by the proxy")


def test_503_and_500():
    env = ht.s3_env()
    with faultproxy.FaultProxy(env.endpoint) as p:
        s3 = client(p.url)
        p.set_rules([{"match": {"op": "GetObject"}, "action": "503", "count": 1},
                     {"match": {"op": "HeadObject"}, "action": "500", "count": 1}])
        e = expect_raises(lambda: s3.get_object(Bucket=bucket(), Key="obj"), "503")
        ht.check_eq(e.response["Error"]["Code"], "SlowDown", "error code")
        ht.check_eq(e.response["ResponseMetadata"]["HTTPStatusCode"], 503, "status")
        e = expect_raises(lambda: s3.head_object(Bucket=bucket(), Key="obj"), "500")
        ht.check_eq(e.response["ResponseMetadata"]["HTTPStatusCode"], 500, "status")
        # count=1: the next ones pass
        ht.check_eq(s3.get_object(Bucket=bucket(), Key="obj")["Body"].read(),
                    obj(), "GET after the 503")
        s3.head_object(Bucket=bucket(), Key="obj")
        ht.check_eq(p.counts, {"503": 1, "500": 1}, "faults injected")
        # a 503 drains the request body and keeps the connection: a PUT works
        p.set_rules([{"match": {"op": "PutObject"}, "action": "503", "count": 1}])
        e = expect_raises(lambda: s3.put_object(Bucket=bucket(), Key="p503",
                                                Body=b"x" * MIB), "503 PUT")
        ht.check_eq(e.response["Error"]["Code"], "SlowDown", "PUT error code")
        recs = [r for r in p.requests if r["op"] == "PutObject"]
    e = expect_raises(lambda: ht.s3_client().head_object(Bucket=bucket(), Key="p503"),
                      "HEAD of the refused PUT")
    ht.check_eq(e.response["Error"]["Code"], "404", "the refused PUT's object")
    print("note: 503 + 500 seen by boto3; PUT refused after %d body bytes"
          % recs[0]["bytes_in"])


def test_prob_is_seeded_and_counted():
    env = ht.s3_env()
    seen = []
    for _ in range(2):
        with faultproxy.FaultProxy(env.endpoint, seed=7) as p:
            s3 = client(p.url)
            p.set_rules([{"match": {"op": "HeadObject"}, "action": "503",
                          "prob": 0.3}])
            out = []
            for _ in range(60):
                try:
                    s3.head_object(Bucket=bucket(), Key="obj")
                    out.append(0)
                except Exception:  # noqa: BLE001
                    out.append(1)
            seen.append(out)
            ht.check_eq(p.counts.get("503", 0), sum(out), "counted 503s")
    ht.check_eq(seen[0], seen[1], "the same seed, the same faults")
    if not 8 <= sum(seen[0]) <= 30:
        raise AssertionError("%d of 60 failed with prob 0.3" % sum(seen[0]))
    print("note: prob 0.3 gave %d of 60" % sum(seen[0]))


def test_reset_request():
    env = ht.s3_env()
    with faultproxy.FaultProxy(env.endpoint) as p:
        s3 = client(p.url)
        p.set_rules([{"match": {"op": "PutObject"}, "action": "reset_request",
                      "after_bytes": 65536}])
        e = expect_raises(lambda: s3.put_object(Bucket=bucket(), Key="rreq",
                                                Body=os.urandom(2 * MIB)),
                          "reset_request")
        rec = [r for r in p.requests if r["op"] == "PutObject"][0]
        ht.check_eq(p.counts, {"reset_request": 1}, "faults")
    print("note: reset_request: boto3 saw %s after %d of %d body bytes"
          % (type(e).__name__, rec["bytes_in"], 2 * MIB))
    if not 65536 <= rec["bytes_in"] < 2 * MIB:
        raise AssertionError("the proxy read %d bytes" % rec["bytes_in"])
    ht.check_eq(rec["status"], None, "status sent")
    e = expect_raises(lambda: ht.s3_client().head_object(Bucket=bucket(), Key="rreq"),
                      "HEAD")
    ht.check_eq(e.response["Error"]["Code"], "404", "object of the reset PUT")


def test_reset_response_and_truncate():
    env = ht.s3_env()
    data = obj()
    with faultproxy.FaultProxy(env.endpoint) as p:
        p.set_rules([{"match": {"op": "GetObject"}, "action": "reset_response",
                      "after_bytes": 100000, "count": 1},
                     {"match": {"op": "GetObject"}, "action": "truncate",
                      "after_bytes": 200000, "count": 1}])
        st, h, body, err = raw_get(p)
        ht.check_eq(st, 200, "status before the reset")
        ht.check_eq(int(h["content-length"]), len(data), "Content-Length")
        # the RST may discard what the client had not read yet: at most that
        if not 0 < len(body) <= 100000:
            raise AssertionError("%d bytes before the reset" % len(body))
        ht.check_eq(body, data[:len(body)], "bytes before the reset")
        if not isinstance(err, (ConnectionResetError, http.client.IncompleteRead)):
            raise AssertionError("reset_response: error %r" % err)
        st, h, body2, err2 = raw_get(p)
        ht.check_eq(int(h["content-length"]), len(data), "Content-Length (truncate)")
        ht.check_eq(body2, data[:200000], "bytes before the close")
        if not isinstance(err2, http.client.IncompleteRead):
            raise AssertionError("truncate: error %r (want a clean close)" % err2)
        # boto3 sees both as a failed read
        p.set_rules([{"match": {"op": "GetObject"}, "action": "reset_response"}])
        e = expect_raises(lambda: client(p.url).get_object(
            Bucket=bucket(), Key="obj")["Body"].read(), "boto3 read")
        ht.check_eq(p.counts, {"reset_response": 2, "truncate": 1}, "faults")
    print("note: reset after 100000 bytes (client read %d, %r), truncate after 200000 (%s), "
          "boto3: %s" % (len(body), err, type(err2).__name__, type(e).__name__))


def test_lose_reply():
    env = ht.s3_env()
    data = os.urandom(MIB)
    with faultproxy.FaultProxy(env.endpoint) as p:
        s3 = client(p.url)
        p.set_rules([{"match": {"op": "PutObject"}, "action": "lose_reply"}])
        e = expect_raises(lambda: s3.put_object(Bucket=bucket(), Key="lost",
                                                Body=data), "lose_reply")
        rec = [r for r in p.requests if r["op"] == "PutObject"][0]
        ht.check_eq(p.counts, {"lose_reply": 1}, "faults")
    ht.check_eq(rec["upstream_status"], 200, "what radosgw answered")
    ht.check_eq(rec["status"], None, "what the client got")
    got = ht.s3_client().get_object(Bucket=bucket(), Key="lost")["Body"].read()
    ht.check_eq(got, data, "the object whose reply was lost")
    print("note: lose_reply: boto3 saw %s, radosgw stored %d bytes"
          % (type(e).__name__, len(got)))


def test_error_200_complete_and_copy():
    env = ht.s3_env()
    part = os.urandom(5 * MIB)
    with faultproxy.FaultProxy(env.endpoint) as p:
        s3 = client(p.url)
        p.set_rules([{"match": {"op": "CompleteMultipartUpload"},
                      "action": "error_200", "forward": True},
                     {"match": {"op": "CopyObject"}, "action": "error_200",
                      "forward": False}])
        u = s3.create_multipart_upload(Bucket=bucket(), Key="e200")["UploadId"]
        etag = s3.upload_part(Bucket=bucket(), Key="e200", UploadId=u,
                              PartNumber=1, Body=part)["ETag"]
        # on the wire: 200 and an <Error> document (presigned, raw HTTP)
        url = s3.generate_presigned_url(
            "complete_multipart_upload", ExpiresIn=600,
            Params={"Bucket": bucket(), "Key": "e200", "UploadId": u})
        doc = ('<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s'
               '</ETag></Part></CompleteMultipartUpload>' % etag).encode()
        pu = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(pu.hostname, pu.port, timeout=30)
        conn.request("POST", pu.path + "?" + pu.query, body=doc)
        r = conn.getresponse()
        body = r.read()
        conn.close()
        ht.check_eq(r.status, 200, "status of the Complete")
        if b"<Error><Code>InternalError</Code>" not in body:
            raise AssertionError("no <Error> document in the 200: %r" % body)
        # boto3 sees an error (botocore 1.29 names it Unknown, newer InternalError)
        e2 = expect_raises(lambda: s3.copy_object(
            Bucket=bucket(), Key="e200-copy",
            CopySource={"Bucket": bucket(), "Key": "obj"}), "error_200 on Copy")
        if "InternalError" not in str(e2) and "Unknown" not in str(e2):
            raise AssertionError("boto3 on a 200-with-Error Copy: %r" % e2)
        recs = {r["op"]: r for r in p.requests}
        ht.check_eq(p.counts, {"error_200": 2}, "faults")
    ht.check_eq(recs["CompleteMultipartUpload"]["status"], 200, "status sent")
    ht.check_eq(recs["CompleteMultipartUpload"]["upstream_status"], 200,
                "Complete forwarded")
    ht.check_eq(recs["CopyObject"]["upstream_status"], None, "Copy not forwarded")
    direct = ht.s3_client()
    ht.check_eq(direct.get_object(Bucket=bucket(), Key="e200")["Body"].read(),
                part, "the object completed behind the 200-with-Error")
    e = expect_raises(lambda: direct.head_object(Bucket=bucket(), Key="e200-copy"),
                      "HEAD of the copy")
    ht.check_eq(e.response["Error"]["Code"], "404", "the copy not forwarded")


def test_short_long_replace_body():
    env = ht.s3_env()
    data = obj()
    a, b = MIB, 2 * MIB - 1
    with faultproxy.FaultProxy(env.endpoint) as p:
        p.set_rules([{"match": {"op": "GetObject"}, "action": "short_body",
                      "after_bytes": 1000, "count": 1}])
        st, h, body, err = raw_get(p, (a, b))
        ht.check_eq((st, err), (206, None), "short_body: status, error")
        ht.check_eq(int(h["content-length"]), 1000, "short_body Content-Length")
        ht.check_eq(h["content-range"], "bytes %d-%d/%d" % (a, b, len(data)),
                    "short_body Content-Range (as asked)")
        ht.check_eq(body, data[a:a + 1000], "short_body bytes")
        rec = p.requests[-1]
        ht.check_eq(rec["bytes_out"], 1000, "short_body: bytes on the wire")

        p.set_rules([{"match": {"op": "GetObject"}, "action": "long_body",
                      "extra": 4096, "count": 1}])
        st, h, body, err = raw_get(p, (a, b))
        ht.check_eq((st, err), (206, None), "long_body: status, error")
        ht.check_eq(int(h["content-length"]), MIB + 4096, "long_body Content-Length")
        ht.check_eq(body[:MIB], data[a:b + 1], "long_body: the true bytes first")
        ht.check_eq(len(body), MIB + 4096, "long_body length")

        p.set_rules([{"match": {"op": "GetObject"}, "action": "replace_body",
                      "skip": 4096, "count": 2}])
        st, h, body, err = raw_get(p, (a, b))
        ht.check_eq((st, err), (206, None), "replace_body: status, error")
        ht.check_eq(h["content-range"], "bytes %d-%d/%d" % (a + 4096, b, len(data)),
                    "replace_body Content-Range (other bytes)")
        ht.check_eq(int(h["content-length"]), MIB - 4096, "replace_body length")
        ht.check_eq(body, data[a + 4096:b + 1], "replace_body: the bytes it names")
        # a whole-object GET becomes a 206 of its tail
        st, h, body, err = raw_get(p)
        ht.check_eq(st, 206, "replace_body of a 200: status")
        ht.check_eq(h["content-range"], "bytes 4096-%d/%d" % (len(data) - 1, len(data)),
                    "replace_body of a 200: Content-Range")
        ht.check_eq(body, data[4096:], "replace_body of a 200: bytes")
        # body faults leave error replies alone (and do not count them)
        p.reset_counts()
        p.set_rules([{"match": {"op": "GetObject"}, "action": "short_body"}])
        st, h, body, err = raw_get(p, key="no-such-key")
        ht.check_eq(st, 404, "short_body on a 404")
        ht.check_eq(p.counts, {}, "faults on a 404")


def test_stall_and_delay():
    env = ht.s3_env()
    data = obj()
    with faultproxy.FaultProxy(env.endpoint) as p:
        p.set_rules([{"match": {"op": "GetObject"}, "action": "stall",
                      "after_bytes": 300000, "seconds": 2, "count": 1}])
        host, port, target = presigned(p)
        conn = http.client.HTTPConnection(host, port, timeout=30)
        conn.request("GET", target)
        r = conn.getresponse()
        first = r.read(300000)
        t0 = time.monotonic()
        rest = r.read()
        gap = time.monotonic() - t0
        conn.close()
        ht.check_eq(first + rest, data, "bytes through a stall")
        if not 1.8 <= gap < 10:
            raise AssertionError("stall of 2 s seen as %.2f s" % gap)
        p.set_rules([{"match": {"op": "HeadObject"}, "action": "delay",
                      "seconds": 1.5, "count": 1}])
        t0 = time.monotonic()
        client(p.url).head_object(Bucket=bucket(), Key="obj")
        delay = time.monotonic() - t0
        if not 1.4 <= delay < 10:
            raise AssertionError("delay of 1.5 s seen as %.2f s" % delay)
    print("note: stall 2 s seen as %.2f s, delay 1.5 s as %.2f s" % (gap, delay))


def test_replace_xml():
    env = ht.s3_env()
    with faultproxy.FaultProxy(env.endpoint) as p:
        p.set_rules([{"match": {"op": "ListObjectsV2"}, "action": "replace_xml",
                      "depth": 100000}])
        url = client(p.url).generate_presigned_url(
            "list_objects_v2", Params={"Bucket": bucket()}, ExpiresIn=600)
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        conn.request("GET", u.path + "?" + u.query)
        r = conn.getresponse()
        body = r.read()
        conn.close()
    ht.check_eq(r.status, 200, "status")
    ht.check_eq(len(body), int(r.getheader("Content-Length")), "length")
    i = body.index(b"<a>")
    ht.check_eq(body[i:i + 300000], b"<a>" * 100000, "nesting")
    ht.check_eq(body.count(b"</a>"), 100000, "closing tags")
    if not body.endswith(b"</ListBucketResult>"):
        raise AssertionError("the document does not end")


def test_outage():
    env = ht.s3_env()
    with faultproxy.FaultProxy(env.endpoint) as p:
        host, port, target = presigned(p)
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("GET", target, headers={"Range": "bytes=0-0"})
        conn.getresponse().read()
        p.outage(True)
        # an open keep-alive connection was reset
        e = expect_raises(lambda: (conn.request("GET", target),
                                   conn.getresponse().read()), "kept connection")
        conn.close()
        # and new connections are refused
        s = socket.socket()
        e2 = expect_raises(lambda: s.connect(("127.0.0.1", port)), "connect")
        s.close()
        if not isinstance(e2, ConnectionRefusedError):
            raise AssertionError("connect during the outage: %r" % e2)
        p.outage(False)
        st, h, body, err = raw_get(p, (0, 9))
        ht.check_eq((st, body), (206, obj()[:10]), "GET after the outage")
    print("note: outage: kept connection got %s, new one %s"
          % (type(e).__name__, type(e2).__name__))


def test_cli():
    env = ht.s3_env()
    rules = [{"match": {"op": "HeadObject"}, "action": "503"}]
    exe = os.path.join(os.path.dirname(__file__), "..", "lib", "faultproxy.py")
    proc = subprocess.Popen([sys.executable, exe, "--upstream", env.endpoint,
                             "--rules", json.dumps(rules), "--control-stdin"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        ht.check_eq(line.split()[0], "PORT", "first line")
        url = "http://127.0.0.1:%d" % int(line.split()[1])
        s3 = client(url)
        e = expect_raises(lambda: s3.head_object(Bucket=bucket(), Key="obj"), "503")
        ht.check_eq(e.response["ResponseMetadata"]["HTTPStatusCode"], 503, "status")
        proc.stdin.write("counts\n")
        proc.stdin.flush()
        ht.check_eq(json.loads(proc.stdout.readline())["counts"], {"503": 1},
                    "counts over stdin")
        proc.stdin.write("rules []\n")
        proc.stdin.flush()
        proc.stdout.readline()
        s3.head_object(Bucket=bucket(), Key="obj")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    ht.main()

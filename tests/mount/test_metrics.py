#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# The mount's metrics end to end: after a known workload (20 MiB written in
# three parts, 12 MiB read, one UploadPart answered 503 by the fault proxy,
# one refused unlink), the Prometheus endpoint (--prometheus-port), the
# textfile (--metrics-file) and the log lines (--log-metrics) show exactly
# those counts, and the file parses as Prometheus text with Debian's
# prometheus_client. SIGUSR1 logs a status line; SIGUSR2 switches debug
# logging on and back.
import errno
import os
import re
import signal
import socket
import sys
import tempfile
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import faultproxy  # noqa: E402
import hpcops_test as ht  # noqa: E402

MIB = 1 << 20
WRITTEN = 20 * MIB  # parts of 8, 8 and 4 MiB
READ = 12 * MIB


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def samples(text):
    """{(name, frozenset(labels)): value}, strictly: every family has a TYPE,
    no sample has a timestamp, no family comes twice."""
    out, fams = {}, set()
    for f in text_string_to_metric_families(text):
        if f.type == "unknown":
            raise AssertionError("%s: no TYPE line" % f.name)
        if f.name in fams:
            raise AssertionError("%s: two families" % f.name)
        fams.add(f.name)
        for s in f.samples:
            if s.timestamp is not None:
                raise AssertionError("%s: a timestamp" % s.name)
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(sm, name, **labels):
    return sm.get(("hpcops_" + name, frozenset(labels.items())), 0)


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        ht.check_eq(r.status, 200, "GET /metrics")
        return samples(r.read().decode())


def wait_for(what, fn, timeout=10):
    end = time.time() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.time() > end:
            raise AssertionError("no %s within %d s" % (what, timeout))
        time.sleep(0.2)


def check_counts(sm, where):
    """The workload's counts, as each exporter must show them."""
    ht.check_eq(value(sm, "fs_bytes_written_total"), WRITTEN, "bytes written (%s)" % where)
    ht.check_eq(value(sm, "fs_bytes_read_total"), READ, "bytes read (%s)" % where)
    ht.check_eq(value(sm, "fs_files_created_total"), 1, "files created (%s)" % where)
    ht.check_eq(value(sm, "fs_upload_parts_total"), 3, "parts sent (%s)" % where)
    ht.check_eq(value(sm, "fs_uploads_completed_total"), 1, "uploads completed (%s)" % where)
    ht.check_eq(value(sm, "fs_uploads_open"), 0, "uploads open (%s)" % where)
    ht.check_eq(value(sm, "s3_retries_total", op="UploadPart"), 1,
                "UploadPart retries (%s)" % where)
    ht.check_eq(value(sm, "s3_throttled_total"), 1, "throttled replies (%s)" % where)
    ht.check_eq(value(sm, "s3_requests_total", op="UploadPart", status="200"), 3,
                "UploadParts that ended 200 (%s)" % where)
    ht.check_eq(value(sm, "s3_requests_total", op="CompleteMultipartUpload", status="200"),
                1, "Completes (%s)" % where)
    ht.check_eq(value(sm, "fs_errors_total", errno="EPERM", op="unlink"), 1,
                "refused unlinks (%s)" % where)
    fetched = value(sm, "fs_prefetch_bytes_fetched_total")
    if not READ <= fetched <= READ + 2 * MIB:
        raise AssertionError("bytes fetched (%s): %d for %d read" % (where, fetched, READ))


def test_known_workload_in_endpoint_file_and_log():
    ht.s3_env()
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("met")
    src = os.urandom(READ)
    s3.put_object(Bucket=bucket, Key="input", Body=src)
    port = free_port()
    mfile = os.path.join(tempfile.mkdtemp(prefix="hpcops-metrics-"), "mount.prom")
    with faultproxy.FaultProxy(ht.s3_env().endpoint) as p:
        p.set_rules([{"match": {"op": "UploadPart"}, "action": "503", "count": 1}])
        args = ["--write-part-size", "8M", "--metrics-file", mfile,
                "--prometheus-port", str(port), "--log-metrics"]
        with ht.Mount(bucket, args, endpoint=p.url) as m:
            data = os.urandom(WRITTEN)
            with open(os.path.join(m.path, "out.bin"), "wb") as f:
                for i in range(0, WRITTEN, MIB):
                    f.write(data[i:i + MIB])
            with open(os.path.join(m.path, "input"), "rb") as f:
                ht.check_eq(f.read() == src, True, "bytes read back")
            try:
                os.unlink(os.path.join(m.path, "input"))
                raise AssertionError("unlink without --allow-delete succeeded")
            except OSError as e:
                ht.check_eq(errno.errorcode[e.errno], "EPERM", "unlink without --allow-delete")
            ht.check_eq(p.counts.get("503", 0), 1, "503s the proxy injected")

            # the endpoint: the modules' counters reach it at the next tick (1 s)
            sm = wait_for("complete counts on the endpoint", lambda: (
                lambda s: s if value(s, "fs_upload_parts_total") == 3 and
                value(s, "fs_prefetch_bytes_fetched_total") >= READ else None)(scrape(port)))
            check_counts(sm, "endpoint")

            # the log: a metrics line every 5 s with the same counts
            def logged():
                lines = [ln for ln in m.stderr_text().splitlines() if "metrics: " in ln]
                last = lines[-1] if lines else ""
                hit = re.search(r"fs_bytes_written_total=(\d+)", last)
                return last if hit and int(hit.group(1)) == WRITTEN else None
            line = wait_for("a --log-metrics line with the bytes written", logged, 12)
            for pat, want in ((r"fs_bytes_read_total=(\d+)", READ),
                              (r'fs_upload_parts_total=(\d+)', 3),
                              (r's3_retries_total\{op="UploadPart"\}=(\d+)', 1)):
                hit = re.search(pat, line)
                ht.check_eq(int(hit.group(1)) if hit else None, want, "log line: " + pat)

            # the file, rewritten every 5 s
            def in_file():
                try:
                    with open(mfile, encoding="utf-8") as f:
                        s = samples(f.read())
                except FileNotFoundError:
                    return None
                return s if value(s, "fs_upload_parts_total") == 3 else None
            check_counts(wait_for("the counts in --metrics-file", in_file, 12), "file")

            # SIGUSR1: one status line; SIGUSR2: debug on, then back
            os.kill(m.pid, signal.SIGUSR1)
            st = wait_for("a status line after SIGUSR1", lambda: re.search(
                r"status: s3://%s/ on .*: \d+ open handles, 0 uploads open \(1 completed, "
                r"0 failed, 0 aborts owed\), 12 MiB read and 20 MiB written" % bucket,
                m.stderr_text()), 5)
            ht.check_eq(bool(st), True, "status line")
            os.kill(m.pid, signal.SIGUSR2)
            wait_for("debug logging after SIGUSR2",
                     lambda: "log level now debug" in m.stderr_text(), 5)
            before = len(m.stderr_text())
            try:
                os.stat(os.path.join(m.path, "nothing-here"))
            except FileNotFoundError:
                pass
            wait_for("a debug line for a lookup", lambda: "debug:" in m.stderr_text()[before:], 5)
            os.kill(m.pid, signal.SIGUSR2)
            wait_for("logging back as started after a second SIGUSR2",
                     lambda: "log level now as started" in m.stderr_text(), 5)
    # the last file written at unmount has the same counts
    with open(mfile, encoding="utf-8") as f:
        check_counts(samples(f.read()), "file after unmount")
    got = s3.get_object(Bucket=bucket, Key="out.bin")["Body"].read()
    ht.check_eq(got == data, True, "the object written, through boto3")
    ht.check_eq(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []), [],
                "multipart uploads left")
    ht.delete_bucket(bucket)


if __name__ == "__main__":
    ht.main()

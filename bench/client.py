#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# The raw S3 clients and file readers bench/run times, one operation per
# process so its CPU time and peak RSS can be taken from wait4(). Prints one
# JSON object on stdout. Server settings come from the HPCOPS_S3_* variables
# that scripts/rgw writes.
import argparse
import concurrent.futures
import json
import os
import random
import resource
import sys
import time

GATE = {}


def s3_client(pool=16):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=os.environ["HPCOPS_S3_ENDPOINT"],
        region_name=os.environ.get("HPCOPS_S3_REGION", "us-east-1"),
        aws_access_key_id=os.environ["HPCOPS_S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["HPCOPS_S3_SECRET_KEY"],
        config=Config(
            s3={"addressing_style": "path"},
            max_pool_connections=pool,
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )


def bucket():
    return os.environ["HPCOPS_S3_BUCKET"]


def gate():
    """Start line: with --ready/--go, report ready and wait until bench/run says go, so the
    figures leave out the interpreter start and the boto3 import (a mount's start is left out too)."""
    if GATE.get("ready"):
        with open(GATE["ready"], "w"):
            pass
        while not os.path.exists(GATE["go"]):
            time.sleep(0.0005)
    GATE["t_go"] = time.time()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    GATE["cpu0"] = ru.ru_utime + ru.ru_stime


def hwm_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def drain(body, chunk=1 << 20):
    n = 0
    while True:
        b = body.read(chunk)
        if not b:
            return n
        n += len(b)


def cmd_get(a):
    """Parallel ranged GETs of one object, bytes thrown away."""
    s3 = s3_client(a.conc + 2)
    gate()
    size = s3.head_object(Bucket=bucket(), Key=a.key)["ContentLength"]
    ranges = [(o, min(o + a.part, size) - 1) for o in range(0, size, a.part)]

    def one(r):
        resp = s3.get_object(Bucket=bucket(), Key=a.key, Range="bytes=%d-%d" % r)
        return drain(resp["Body"])

    with concurrent.futures.ThreadPoolExecutor(a.conc) as ex:
        got = sum(ex.map(one, ranges))
    if got != size:
        raise SystemExit("get %s: got %d of %d bytes" % (a.key, got, size))
    return {"bytes": got}


def cmd_put(a):
    """Multipart upload with a fixed part size and concurrency (boto3's transfer manager)."""
    from boto3.s3.transfer import TransferConfig

    s3 = s3_client(a.conc + 2)
    cfg = TransferConfig(
        multipart_threshold=a.part,
        multipart_chunksize=a.part,
        max_concurrency=a.conc,
        use_threads=True,
    )
    gate()
    s3.upload_file(a.src, bucket(), a.key, Config=cfg)
    return {"bytes": os.path.getsize(a.src)}


def cmd_list(a):
    """A paged ListObjectsV2 (1,000 keys a page) over a prefix, no delimiter."""
    s3 = s3_client()
    n = pages = 0
    gate()
    t0 = time.monotonic()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket(), Prefix=a.prefix):
        pages += 1
        n += len(page.get("Contents", []))
    return {"keys": n, "pages": pages, "seconds": time.monotonic() - t0}


def cmd_smallput(a):
    """N small PutObjects one after another, as a shell loop would."""
    s3 = s3_client()
    with open(a.src, "rb") as f:
        data = f.read()
    gate()
    for i in range(1, a.n + 1):
        s3.put_object(Bucket=bucket(), Key="%s%04d" % (a.prefix, i), Body=data)
    return {"objects": a.n}


def cmd_loopput(a):
    """RANKS threads at once, each N PutObjects of its own keys one after another, as RANKS shell loops
    would; the keys are PREFIXrankRR-fI with I padded as seq -w pads it."""
    s3 = s3_client(a.ranks + 2)
    with open(a.src, "rb") as f:
        data = f.read()
    width = len(str(a.n))

    def rank(r):
        for i in range(1, a.n + 1):
            s3.put_object(Bucket=bucket(), Key="%srank%02d-f%0*d" % (a.prefix, r, width, i), Body=data)

    gate()
    with concurrent.futures.ThreadPoolExecutor(a.ranks) as ex:
        list(ex.map(rank, range(a.ranks)))
    return {"objects": a.ranks * a.n}


def offsets(seed, size, count, block):
    """COUNT distinct block-aligned offsets in an object of SIZE, the same for every contender of a round."""
    nblocks = size // block
    rng = random.Random(seed)
    return [b * block for b in rng.sample(range(nblocks), min(count, nblocks))]


def cmd_randread(a):
    """Time to first byte, then COUNT random reads of BLOCK bytes, one at a time.

    With --path: open() + pread() on a file in a mount. Otherwise ranged GETs
    of --key. The first figure is open (lookup) plus the first 4 KiB.
    """
    offs = offsets(a.seed, a.size, a.count + 1, a.block)
    first, rest = offs[0], offs[1:]
    lat = []
    if a.path:
        gate()
        t0 = time.monotonic()
        fd = os.open(a.path, os.O_RDONLY)
        b = os.pread(fd, 4096, first)
        ttfb = time.monotonic() - t0
        if len(b) != 4096:
            raise SystemExit("short first read: %d bytes" % len(b))
        t1 = time.monotonic()
        for o in rest:
            s = time.monotonic()
            got = 0
            while got < a.block:
                b = os.pread(fd, a.block - got, o + got)
                if not b:
                    raise SystemExit("short read at %d" % (o + got))
                got += len(b)
            lat.append(time.monotonic() - s)
        total = time.monotonic() - t1
        os.close(fd)
    else:
        s3 = s3_client()
        gate()
        t0 = time.monotonic()
        r = s3.get_object(Bucket=bucket(), Key=a.key, Range="bytes=%d-%d" % (first, first + 4095))
        if drain(r["Body"]) != 4096:
            raise SystemExit("short first read")
        ttfb = time.monotonic() - t0
        t1 = time.monotonic()
        for o in rest:
            s = time.monotonic()
            r = s3.get_object(Bucket=bucket(), Key=a.key, Range="bytes=%d-%d" % (o, o + a.block - 1))
            if drain(r["Body"]) != a.block:
                raise SystemExit("short read at %d" % o)
            lat.append(time.monotonic() - s)
        total = time.monotonic() - t1
    lat.sort()
    return {
        "ttfb": ttfb,
        "reads": len(rest),
        "seconds": total,
        "mbps": len(rest) * a.block / total / 1e6,
        "lat_median": lat[len(lat) // 2],
        "lat_p90": lat[int(len(lat) * 0.9)],
    }


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--ready", help="file to create when set up (with --go)")
    p.add_argument("--go", help="file whose appearance starts the timed part")
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("get")
    g.add_argument("--key", required=True)
    g.add_argument("--part", type=int, default=8 << 20)
    g.add_argument("--conc", type=int, default=8)
    u = sub.add_parser("put")
    u.add_argument("--key", required=True)
    u.add_argument("--src", required=True)
    u.add_argument("--part", type=int, default=8 << 20)
    u.add_argument("--conc", type=int, default=8)
    ls = sub.add_parser("list")
    ls.add_argument("--prefix", required=True)
    sp = sub.add_parser("smallput")
    sp.add_argument("--prefix", required=True)
    sp.add_argument("--src", required=True)
    sp.add_argument("--n", type=int, required=True)
    lp = sub.add_parser("loopput")
    lp.add_argument("--prefix", required=True)
    lp.add_argument("--src", required=True)
    lp.add_argument("--ranks", type=int, required=True)
    lp.add_argument("--n", type=int, required=True)
    rr = sub.add_parser("randread")
    rr.add_argument("--path")
    rr.add_argument("--key")
    rr.add_argument("--size", type=int, required=True)
    rr.add_argument("--count", type=int, default=64)
    rr.add_argument("--block", type=int, default=1 << 20)
    rr.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    GATE.update(ready=a.ready, go=a.go)
    fn = {"get": cmd_get, "put": cmd_put, "list": cmd_list, "smallput": cmd_smallput, "loopput": cmd_loopput,
          "randread": cmd_randread}
    out = fn[a.cmd](a)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out.update(t_go=GATE["t_go"], t_end=time.time(), cpu=ru.ru_utime + ru.ru_stime - GATE["cpu0"], hwm_mib=hwm_mib())
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()

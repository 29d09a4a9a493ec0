#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""hpcops-mount, read side: a real FUSE mount on radosgw.

Byte-exact reads (0 bytes .. HPCOPS_TEST_BIG_MIB, default 1024 MiB: whole,
at random offsets and at every part boundary of the prefetcher), a prefix
of 10,000 keys listed with attributes and no HEAD per entry, nested
prefixes, a directory shadowing a file, invalid keys hidden and logged
once, ESTALE when an object changes under an open handle, the block cache
serving the new version after a change and refetching a damaged block, the
daemon's peak RSS under --memory-limit while 4 handles read, 8 readers of
one object fetching it once (counted by a proxy and by the mount), the -o
spelling, and each fail-fast cause of the bucket check (exit status, the
message, no mount left behind).
"""
import concurrent.futures
import errno
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import hpcops_test as ht  # noqa: E402
import faultproxy  # noqa: E402

MIB = 1024 * 1024
BIG_MIB = int(os.environ.get("HPCOPS_TEST_BIG_MIB", "1024"))

_state = {}


_bucket_lock = threading.Lock()


def bucket():
    """One bucket for the read tests (made once, also when threads ask)."""
    with _bucket_lock:
        if "bucket" not in _state:
            _state["bucket"] = ht.fresh_bucket("rd")
        return _state["bucket"]


def big_object():
    """(key, bytes) of a BIG_MIB object of random bytes, uploaded once."""
    if "big" not in _state:
        data = os.urandom(BIG_MIB * MIB)
        from boto3.s3.transfer import TransferConfig
        import io
        s3().upload_fileobj(
            io.BytesIO(data), bucket(), "big/object.bin",
            Config=TransferConfig(multipart_chunksize=16 * MIB,
                                  max_concurrency=4))
        _state["big"] = ("big/object.bin", data)
    return _state["big"]


_client_lock = threading.Lock()


def s3():
    """One boto3 client (thread-safe once made; making them is not)."""
    with _client_lock:
        if "s3" not in _state:
            _state["s3"] = ht.s3_client()
        return _state["s3"]


def put(key, data, b=None):
    s3().put_object(Bucket=b or bucket(), Key=key, Body=data)


def put_many(b, keys):
    """PUT each key (body: the key) with curl -Z: radosgw is the limit, not us.

    boto3 in threads costs a CPU second per few hundred PUTs on this 2-core
    machine; curl's parallel mode costs almost nothing.
    """
    se = ht.s3_env()
    with ht.temp_dir() as d:
        cfg = os.path.join(d, "curl.cfg")
        with open(cfg, "w") as f:
            for i, k in enumerate(keys):
                body = os.path.join(d, "b%d" % i)
                with open(body, "wb") as bf:
                    bf.write(k.encode())
                f.write('upload-file = "%s"\nurl = "%s/%s/%s"\n'
                        'output = "/dev/null"\n' % (body, se.endpoint, b, k))
        subprocess.run(
            ["curl", "-sS", "--no-progress-meter", "-Z", "--parallel-max", "16", "--fail",
             "--aws-sigv4", "aws:amz:%s:s3" % se.region,
             "--user", "%s:%s" % (se.access_key, se.secret_key),
             "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-K", cfg],
            check=True, timeout=600)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def sha(b):
    return hashlib.sha256(b).hexdigest()


def test_help_lists_every_flag():
    flags = ["--region", "--endpoint-url", "--force-path-style", "--prefix",
             "--profile", "--no-sign-request", "--read-only", "--allow-other",
             "--allow-root", "--uid", "--gid", "--file-mode", "--dir-mode",
             "--foreground", "--debug", "--log-directory", "--metadata-ttl",
             "--cache", "--max-cache-size", "--read-part-size",
             "--max-threads", "--auto-unmount", "--ca-bundle",
             "--memory-limit", "-f,", "-d,", "-l,"]
    exe = os.environ["HPCOPS_MOUNT"]
    out = subprocess.run([exe, "--help"], stdout=subprocess.PIPE, text=True,
                         check=True).stdout
    for f in flags:
        if f not in out:
            raise AssertionError("--help does not explain %s:\n%s" % (f, out))
    ver = subprocess.run([exe, "--version"], stdout=subprocess.PIPE,
                         text=True, check=True).stdout
    if not ver.startswith("hpcops-mount "):
        raise AssertionError("--version printed %r" % ver)
    bad = subprocess.run([exe, "--memory-limit", "lots", "b-x", "/tmp"],
                         stderr=subprocess.PIPE, text=True)
    ht.check_eq(bad.returncode, 2, "exit status for a bad value")
    if "--memory-limit" not in bad.stderr:
        raise AssertionError("bad value message: %r" % bad.stderr)


def test_sizes_byte_exact():
    sizes = [0, 1, 4095, 4096, 65537, MIB - 1, MIB, MIB + 1, 3 * MIB + 5,
             8 * MIB, 8 * MIB + 1, 15 * MIB + 7, 33 * MIB + 17]
    rnd = random.Random(1)
    want = {}
    for s in sizes:
        want["sizes/f%d" % s] = rnd.randbytes(s)
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda kv: put(kv[0], kv[1]), want.items()))
    key, data = big_object()
    with ht.Mount(bucket(), ["--read-only", "-d"]) as m:
        for k, v in want.items():
            got = read_file(os.path.join(m.path, k))
            ht.check_eq(len(got), len(v), "size of %s" % k)
            ht.check_eq(sha(got), sha(v), "bytes of %s" % k)
            ht.check_eq(os.stat(os.path.join(m.path, k)).st_size, len(v),
                        "st_size of %s" % k)
        got = read_file(os.path.join(m.path, key))
        ht.check_eq(len(got), len(data), "size of the %d MiB object" % BIG_MIB)
        ht.check_eq(sha(got), sha(data), "bytes of the %d MiB object" % BIG_MIB)


def test_random_offsets_and_part_boundaries():
    key, data = big_object()
    n = len(data)
    rnd = random.Random(3)
    # the prefetcher's parts: 1, 2, 4 MiB then 8 MiB; the cache's 1 MiB blocks
    bounds = [MIB, 3 * MIB, 7 * MIB, 15 * MIB, 23 * MIB, 8 * MIB, 16 * MIB,
              n - 8 * MIB, n - 1, n // 2]
    reads = []
    for b in bounds:
        for d in (-4097, -1, 0, 1, 4096):
            off = max(0, min(n - 1, b + d))
            reads.append((off, rnd.choice([1, 100, 4096, 70000, MIB + 3])))
    for _ in range(150):
        reads.append((rnd.randrange(n), rnd.choice([1, 512, 4096, 131072,
                                                    MIB, 3 * MIB])))
    reads.append((n - 10, 100))   # across the end
    reads.append((n, 10))         # at the end
    reads.append((n + MIB, 10))   # past the end
    with ht.Mount(bucket(), ["--read-only", "--read-part-size", "8M"]) as m:
        fd = os.open(os.path.join(m.path, key), os.O_RDONLY)
        try:
            for off, ln in reads:
                # drop the kernel's copy so every read goes to the daemon
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                got = os.pread(fd, ln, off)
                ht.check_eq(got, data[off:off + ln],
                            "pread(%d bytes at %d)" % (ln, off))
            # a sequential reader after the seeks still gets exact bytes
            os.lseek(fd, 5 * MIB + 3, os.SEEK_SET)
            chunks = []
            while True:
                c = os.read(fd, 256 * 1024)
                if not c:
                    break
                chunks.append(c)
            ht.check_eq(sha(b"".join(chunks)), sha(data[5 * MIB + 3:]),
                        "sequential read after random seeks")
        finally:
            os.close(fd)


def readdir_seek_back(path, first, later):
    """readdir(3) @first names, telldir, read @later more, seekdir back:
    (the name read after telldir, the name read after seekdir, how many
    names one pass through the handle gave)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.opendir.restype = ctypes.c_void_p
    libc.opendir.argtypes = [ctypes.c_char_p]
    libc.readdir.restype = ctypes.c_void_p
    libc.readdir.argtypes = [ctypes.c_void_p]
    libc.telldir.restype = ctypes.c_long
    libc.telldir.argtypes = [ctypes.c_void_p]
    libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
    libc.closedir.argtypes = [ctypes.c_void_p]
    dp = libc.opendir(path.encode())
    if not dp:
        raise OSError(ctypes.get_errno(), "opendir " + path)

    def name():
        e = libc.readdir(dp)
        # glibc x86_64 struct dirent: d_ino, d_off, d_reclen, d_type, d_name
        return None if not e else ctypes.string_at(e + 19).decode()

    try:
        for _ in range(first):
            name()
        pos = libc.telldir(dp)
        want = name()
        for _ in range(later):
            name()
        libc.seekdir(dp, pos)
        got = name()
        libc.seekdir(dp, 0)
        total = 0
        while name() is not None:
            total += 1
    finally:
        libc.closedir(dp)
    return want, got, total


def test_ten_thousand_keys():
    b = ht.fresh_bucket("many")
    n = 10000
    keys = ["many/k%05d" % i for i in range(n)]
    put_many(b, keys)
    s3().put_object(Bucket=b, Key="many/zz-big", Body=b"x" * 12345)
    # a TTL longer than the listing, so what is measured is where the
    # attributes come from (the listing), not their expiry on a slow machine
    with ht.Mount(b, ["--read-only", "-d", "--metadata-ttl", "120"]) as m:
        d = os.path.join(m.path, "many")
        heads_before = m.stderr_text().count("HeadObject")
        lists_before = m.stderr_text().count("ListObjectsV2")
        t0 = time.monotonic()
        entries = {e.name: e.stat().st_size for e in os.scandir(d)}
        print("note: listed and stat'ed %d entries in %.2f s" % (
            len(entries), time.monotonic() - t0))
        log = m.stderr_text()
        heads = log.count("HeadObject") - heads_before
        lists = log.count("ListObjectsV2") - lists_before
        ht.check_eq(len(entries), n + 1, "entries listed")
        ht.check_eq(set(entries), set(k.split("/")[1] for k in keys) |
                    {"zz-big"}, "names listed")
        ht.check_eq(entries["zz-big"], 12345, "size from the listing")
        ht.check_eq(entries["k00042"], len("many/k00042"), "size of k00042")
        if heads > 5:
            raise AssertionError("listing and stat of %d entries sent %d "
                                 "HeadObject requests (want none per entry)"
                                 % (n, heads))
        if lists > 30:
            raise AssertionError("listing %d entries took %d LIST requests "
                                 "(want about %d)" % (n, lists, n // 1000))
        ht.check_eq(read_file(os.path.join(d, "k09999")), b"many/k09999",
                    "content of the last key")
        # an open directory keeps only a window of the listing (about two
        # pages): a seekdir back before it must list again and land right
        want, got, total = readdir_seek_back(d, 1500, 6000)
        ht.check_eq(got, want, "name after seekdir back 6,000 entries")
        want, got, _ = readdir_seek_back(d, 1, 6000)
        ht.check_eq((want, got), ("..", ".."), "seekdir back to just after '.'")
        ht.check_eq(total, n + 1 + 2, "entries read through one handle (with . and ..)")
    # the bucket goes with the server: deleting 10,000 keys costs a minute


def test_nested_prefixes_and_mount_prefix():
    files = {"nest/a/b/c/d.txt": b"deep", "nest/a/b/e.txt": b"mid",
             "nest/a/f.txt": b"top", "nest/g": b"g"}
    for k, v in files.items():
        put(k, v)
    with ht.Mount(bucket(), ["--read-only"]) as m:
        r = os.path.join(m.path, "nest")
        ht.check_eq(sorted(os.listdir(r)), ["a", "g"], "nest/")
        ht.check_eq(sorted(os.listdir(r + "/a")), ["b", "f.txt"], "nest/a/")
        ht.check_eq(sorted(os.listdir(r + "/a/b")), ["c", "e.txt"], "nest/a/b")
        ht.check_eq(os.listdir(r + "/a/b/c"), ["d.txt"], "nest/a/b/c")
        for k, v in files.items():
            ht.check_eq(read_file(os.path.join(m.path, k)), v, k)
        if not os.path.isdir(r + "/a/b"):
            raise AssertionError("nest/a/b is not a directory")
        try:
            os.stat(r + "/nope")
            raise AssertionError("stat of a missing name succeeded")
        except FileNotFoundError:
            pass
    # BUCKET:PREFIX/ mounts only the keys under the prefix
    with ht.Mount(bucket() + ":nest/a/", ["--read-only"]) as m:
        ht.check_eq(sorted(os.listdir(m.path)), ["b", "f.txt"], "prefix root")
        ht.check_eq(read_file(m.path + "/b/c/d.txt"), b"deep", "under prefix")


def test_directory_shadows_file():
    put("shadow/x", b"i am a file")
    put("shadow/x/inner", b"inner")
    put("shadow/y", b"plain")
    with ht.Mount(bucket(), ["--read-only"]) as m:
        r = os.path.join(m.path, "shadow")
        ht.check_eq(sorted(os.listdir(r)), ["x", "y"], "names (x once)")
        if not os.path.isdir(r + "/x"):
            raise AssertionError("x should be the directory")
        ht.check_eq(os.listdir(r + "/x"), ["inner"], "x/")
        ht.check_eq(read_file(r + "/x/inner"), b"inner", "x/inner")
        kinds = {e.name: e.is_dir() for e in os.scandir(r)}
        ht.check_eq(kinds, {"x": True, "y": False}, "kinds from readdir")


def test_invalid_keys_hidden_and_logged_once():
    bad = ["inv//empty", "inv/./dot", "inv/../dotdot",
           "inv/" + "n" * 256, "inv/" + "m" * 256 + "/deep"]
    for k in bad + ["inv/ok"]:
        put(k, b"data")
    with ht.Mount(bucket(), ["--read-only"]) as m:
        r = os.path.join(m.path, "inv")
        ht.check_eq(os.listdir(r), ["ok"], "visible names")
        ht.check_eq(os.listdir(r), ["ok"], "visible names, again")
        ht.check_eq(read_file(r + "/ok"), b"data", "valid key")
        log = m.stderr_text()
    for k in ("inv/" + "n" * 256, "inv/./"):
        c = log.count(k + "'")
        if c != 1:
            raise AssertionError("hidden key %r logged %d times (want once):"
                                 "\n%s" % (k[:40], c, log[-3000:]))


def test_estale_when_object_changes():
    key = "stale/obj"
    v1 = random.Random(11).randbytes(48 * MIB)
    v2 = random.Random(12).randbytes(48 * MIB)
    put(key, v1)
    with ht.Mount(bucket(), ["--read-only", "--read-part-size", "1M"]) as m:
        fd = os.open(os.path.join(m.path, key), os.O_RDONLY)
        try:
            ht.check_eq(os.pread(fd, MIB, 0), v1[:MIB], "first MiB of v1")
            put(key, v2)
            seen = None
            for off in range(40 * MIB, 48 * MIB, MIB):
                try:
                    got = os.pread(fd, MIB, off)
                except OSError as e:
                    seen = e.errno
                    break
                # never bytes of v2 through a handle opened on v1
                ht.check_eq(got, v1[off:off + MIB], "bytes at %d" % off)
            ht.check_eq(seen, errno.ESTALE, "errno after the object changed")
            # and it stays stale rather than switching versions
            try:
                os.pread(fd, 10, 44 * MIB)
                raise AssertionError("read after ESTALE succeeded")
            except OSError as e:
                ht.check_eq(e.errno, errno.ESTALE, "errno of a later read")
        finally:
            os.close(fd)
        # a new open sees the new version (after the metadata TTL)
        time.sleep(1.5)
        ht.check_eq(sha(read_file(os.path.join(m.path, key))), sha(v2),
                    "new open reads v2")


def test_cache_right_bytes_after_change_and_damage():
    key = "cached/obj"
    v1 = random.Random(21).randbytes(5 * MIB + 123)
    v2 = random.Random(22).randbytes(5 * MIB + 123)
    put(key, v1)
    with ht.temp_dir() as cdir:
        args = ["--read-only", "--cache", cdir, "--max-cache-size", "64"]
        with ht.Mount(bucket(), args) as m:
            ht.check_eq(sha(read_file(os.path.join(m.path, key))), sha(v1),
                        "v1 through a cold cache")
        blocks = [os.path.join(dp, f) for dp, _, fs in os.walk(cdir)
                  for f in fs]
        if len(blocks) < 6:
            raise AssertionError("cache holds %d blocks after reading 6 MiB"
                                 % len(blocks))
        # damage one block: the checksum must catch it and S3 serve the bytes
        with open(sorted(blocks)[0], "r+b") as f:
            f.seek(-10, os.SEEK_END)
            f.write(b"XXXXXXXXXX")
        with ht.Mount(bucket(), args) as m:
            ht.check_eq(sha(read_file(os.path.join(m.path, key))), sha(v1),
                        "v1 from a warm cache with one damaged block")
        put(key, v2)
        with ht.Mount(bucket(), args) as m:
            ht.check_eq(sha(read_file(os.path.join(m.path, key))), sha(v2),
                        "v2 after the object changed, same cache")
        total = sum(os.path.getsize(p) for dp, _, fs in os.walk(cdir)
                    for p in [os.path.join(dp, f) for f in fs])
        if total > 64 * MIB:
            raise AssertionError("cache holds %d bytes > --max-cache-size 64"
                                 % total)


# ---- many ranks, one input: each byte fetched once per node (issue 17) ----

def _drop_caches():
    subprocess.run(["sync"], check=False)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass  # not root: the fadvise of each reader still drops the file's pages


def _readers_at_once(paths):
    """One thread per path, started together, each reading its file whole in
    1 MiB reads: the sha256 of each, in order."""
    start = threading.Barrier(len(paths))
    out = [None] * len(paths)

    def reader(i):
        h = hashlib.sha256()
        with open(paths[i], "rb", buffering=0) as f:
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            start.wait()
            while True:
                c = f.read(MIB)
                if not c:
                    break
                h.update(c)
        out[i] = h.hexdigest()
    ts = [threading.Thread(target=reader, args=(i,)) for i in range(len(paths))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def _fetched(keys):
    """Mount through a counting proxy, read, unmount: (sha list, GET bytes the
    proxy sent, the mount's own fetched counter)."""
    b = bucket()
    mfile = os.path.join(tempfile.mkdtemp(prefix="hpcops-metrics-"), "m.prom")
    with faultproxy.FaultProxy(ht.s3_env().endpoint) as p:
        with ht.Mount(b, ["--read-only", "--metrics-file", mfile],
                      endpoint=p.url) as m:
            _drop_caches()
            got = _readers_at_once([os.path.join(m.path, k) for k in keys])
        proxy = sum(r["bytes_out"] for r in p.requests if r["op"] == "GetObject")
    own = ht.metric_in_file(mfile, "hpcops_fs_prefetch_bytes_fetched_total")
    return got, proxy, own


def test_eight_readers_of_one_object_fetch_it_once():
    size = 256 * MIB
    data = os.urandom(size)
    put("shared/one.bin", data)
    digest = sha(data)
    got, proxy, own = _fetched(["shared/one.bin"] * 8)
    for i, g in enumerate(got):
        ht.check_eq(g, digest, "bytes read by reader %d of 8" % i)
    print("note: 8 readers of one 256 MiB object at once: GET bytes through the "
          "proxy %.0f MiB (%.2fx the object), the mount's fetched counter %s MiB"
          % (proxy / MIB, proxy / size,
             "%.0f" % (own / MIB) if own is not None else "absent"))
    if proxy > 1.1 * size:
        raise AssertionError("8 readers of one object fetched %.2fx its size "
                             "(want <= 1.1x)" % (proxy / size))
    if own is None or abs(own - proxy) > 0.02 * size:
        raise AssertionError("the mount counted %s bytes fetched, the proxy saw %d"
                             % (own, proxy))


def test_eight_readers_of_eight_objects_each_fetched_once():
    size = 32 * MIB
    objs = []
    for i in range(8):
        d = os.urandom(size)
        put("shared/many-%d.bin" % i, d)
        objs.append(("shared/many-%d.bin" % i, sha(d)))
    got, proxy, own = _fetched([k for k, _ in objs])
    for (k, want), g in zip(objs, got):
        ht.check_eq(g, want, "bytes of " + k)
    print("note: 8 readers of 8 objects of 32 MiB: GET bytes %.0f MiB (%.2fx)"
          % (proxy / MIB, proxy / (8 * size)))
    if proxy > 1.1 * 8 * size:
        raise AssertionError("8 objects fetched %.2fx their size (want <= 1.1x)"
                             % (proxy / (8 * size)))


def _asan(pid):
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read()
    # a sanitizer's shadow memory dominates RSS: the bound is not compared
    return "libasan" in maps or "libtsan" in maps


def test_rss_under_memory_limit_four_readers():
    key, data = big_object()
    limit_mib = 64
    digest = sha(data)
    with ht.Mount(bucket(), ["--read-only", "--memory-limit",
                             str(limit_mib)]) as m:
        path = os.path.join(m.path, key)
        results = [None] * 4

        def reader(i):
            h = hashlib.sha256()
            with open(path, "rb", buffering=0) as f:
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
                while True:
                    c = f.read(MIB)
                    if not c:
                        break
                    h.update(c)
            results[i] = h.hexdigest()
        ts = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        asan = _asan(m.pid)
    for i, r in enumerate(results):
        ht.check_eq(r, digest, "bytes read by handle %d" % i)
    if asan:
        print("note: sanitizer build, peak RSS %d KiB not compared" % m.peak_rss_kib)
        return
    # buffers are bounded by the limit; the rest is code, libraries, curl
    bound = (limit_mib + 48) * 1024
    print("note: peak RSS %d KiB with --memory-limit %d MiB, 4 readers"
          % (m.peak_rss_kib, limit_mib))
    if m.peak_rss_kib > bound:
        raise AssertionError("peak RSS %d KiB with --memory-limit %d MiB "
                             "(bound %d KiB)" % (m.peak_rss_kib, limit_mib,
                                                 bound))


def test_mount_helper_o_options():
    """mount(8) with -o options, as from /etc/fstab.

    mount(8) runs helpers with a fixed PATH, so `-t fuse.hpcops-mount`
    needs the installed binary; the equivalent fstab spelling
    `-t fuse /path/hpcops-mount#BUCKET` runs the built one through the same
    mount.fuse3 helper, options and all.
    """
    se = ht.s3_env()
    put("helper/file", b"via mount(8)")
    exe = os.environ["HPCOPS_MOUNT"]
    with ht.temp_dir() as mnt:
        env = dict(os.environ, AWS_ACCESS_KEY_ID=se.access_key,
                   AWS_SECRET_ACCESS_KEY=se.secret_key,
                   AWS_REGION=se.region)
        opts = ("ro,nodev,nosuid,_netdev,endpoint_url=%s,force-path-style,"
                "metadata_ttl=indefinite,file_mode=0640,uid=1234,"
                "memory-limit=128" % se.endpoint)
        r = subprocess.run(["mount", "-t", "fuse", "%s#%s" % (exe, bucket()),
                            mnt, "-o", opts], env=env, stderr=subprocess.PIPE,
                           text=True, timeout=60)
        try:
            ht.check_eq(r.returncode, 0, "mount exit status (%s)" % r.stderr)
            if not ht.mounted(mnt):
                raise AssertionError("not mounted after mount(8) returned")
            st = os.stat(os.path.join(mnt, "helper/file"))
            ht.check_eq(oct(st.st_mode & 0o777), oct(0o640), "file mode")
            ht.check_eq(st.st_uid, 1234, "uid")
            ht.check_eq(read_file(os.path.join(mnt, "helper/file")),
                        b"via mount(8)", "bytes")
            try:
                open(os.path.join(mnt, "helper/new"), "wb")
                raise AssertionError("create on a ro mount succeeded")
            except OSError as e:
                ht.check_eq(e.errno, errno.EROFS, "errno of create with ro")
        finally:
            if ht.mounted(mnt):
                subprocess.run(["umount", mnt])
        if ht.mounted(mnt):
            raise AssertionError("umount left the mount")


# ---- fail fast ----

def _fail_mount(bucket_name, extra_args=(), env_over=None):
    """Run the daemon (detaching, as users run it); return (status, stderr)."""
    se = ht.s3_env()
    env = dict(os.environ)
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN",
              "AWS_WEB_IDENTITY_TOKEN_FILE"):
        env.pop(k, None)
    env.update(AWS_ACCESS_KEY_ID=se.access_key,
               AWS_SECRET_ACCESS_KEY=se.secret_key, AWS_REGION=se.region,
               AWS_EC2_METADATA_DISABLED="true",
               AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
               AWS_CONFIG_FILE="/nonexistent")
    for k, v in (env_over or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    mnt = tempfile.mkdtemp(prefix="hpcops-ff-")
    try:
        argv = [os.environ["HPCOPS_MOUNT"], bucket_name, mnt,
                "--endpoint-url", se.endpoint, "--force-path-style"] + \
            list(extra_args)
        r = subprocess.run(argv, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        if ht.mounted(mnt):
            subprocess.run(["fusermount3", "-uz", mnt])
            raise AssertionError("a failed mount left %s mounted" % mnt)
        try:
            os.listdir(mnt)
        except OSError as e:
            raise AssertionError("mount point unusable after failure: %s" % e)
        return r.returncode, r.stderr
    finally:
        os.rmdir(mnt)


def _expect_fail(status, err, words):
    if status == 0:
        raise AssertionError("exit status 0 for a failing check; stderr: %s"
                             % err)
    for w in words:
        if w not in err:
            raise AssertionError("message lacks %r: %s" % (w, err))


def test_fail_fast_no_credentials():
    st, err = _fail_mount(bucket(), env_over={"AWS_ACCESS_KEY_ID": None,
                                              "AWS_SECRET_ACCESS_KEY": None})
    _expect_fail(st, err, ["no AWS credentials", "--profile"])


def test_fail_fast_access_denied():
    ak, sk = ht.make_user("fsread-denied")
    st, err = _fail_mount(bucket(), env_over={"AWS_ACCESS_KEY_ID": ak,
                                              "AWS_SECRET_ACCESS_KEY": sk})
    _expect_fail(st, err, ["access denied", bucket()])


def test_fail_fast_signature_mismatch():
    st, err = _fail_mount(bucket(), env_over={
        "AWS_SECRET_ACCESS_KEY": "not-the-secret-key-0000000000000000000"})
    _expect_fail(st, err, ["signature mismatch", "secret"])


def test_fail_fast_no_such_bucket():
    st, err = _fail_mount("no-such-bucket-fsread")
    _expect_fail(st, err, ["no such bucket", "no-such-bucket-fsread"])


def test_fail_fast_endpoint_unreachable():
    # a port nothing listens on
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    st, err = _fail_mount(bucket(), ["--endpoint-url",
                                     "http://127.0.0.1:%d" % port])
    _expect_fail(st, err, ["endpoint unreachable", "127.0.0.1:%d" % port])


def test_fail_fast_foreground_too():
    st, err = _fail_mount("no-such-bucket-fsread", ["-f"])
    _expect_fail(st, err, ["no such bucket"])


if __name__ == "__main__":
    ht.main()

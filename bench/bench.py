#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# bench/run's engine: hpcops-mount against s3fs, rclone mount and raw S3
# clients (boto3, curl) on one radosgw, every figure the median of several
# rounds with the contenders taking turns. Prints a table; writes JSON, a
# markdown table and a gnuplot PNG. Leaves no mount, daemon or temp dir behind.
import argparse
import datetime
import json
import os
import platform
import random
import resource
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
CLIENT = os.path.join(HERE, "client.py")
PY = "/usr/bin/python3"
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30

FULL = dict(size=GiB, streams=4, flat=10000, tree=(100, 100), small=1000, rand=64, runs=3, loops=(16, 100))
QUICK = dict(size=64 * MiB, streams=4, flat=1000, tree=(10, 100), small=50, rand=16, runs=3, loops=(16, 10))
# The HPC workloads: readers of one object (shared8, shared32), checkpoint writers of objects twice --size
# (ckpt), shell loops each writing its own 64 KiB files (loops16, cfg "loops" = loops x files each).
SHARED = {"shared8": 8, "shared32": 32}
CKPT_WRITERS = 4
LOOP_FILE = 64 * KiB
# The speed issue's rule: throughput targets are judged only when one raw curl GET of 1 GiB reaches this.
JUDGE_MBPS = 600


class Skip(Exception):
    """A measurement that could not be made; the reason goes in the table and the JSON."""


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def human_size(n):
    return "%d GiB" % (n // GiB) if n % GiB == 0 else "%d MiB" % (n // MiB)


# ---------------------------------------------------------------------------
# processes, timing, cleanup


class Proc:
    """A child whose end is reaped with wait4() so its CPU time and peak RSS are known."""

    def __init__(self, argv, env=None, out=None, new_session=False, cwd=None, sample=False):
        self.argv = argv
        self.hwm = 0.0
        self.out_path = out
        outf = open(out, "wb") if out else subprocess.DEVNULL
        self.p = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=outf, stderr=subprocess.STDOUT if out else subprocess.DEVNULL,
            start_new_session=new_session, cwd=cwd)
        if out:
            outf.close()
        self.pid = self.p.pid
        self.t_start = time.monotonic()
        self.t_end = None
        self.status = None
        self.rusage = None
        self.done = threading.Event()
        LIVE_PROCS.add(self)
        threading.Thread(target=self._reap, daemon=True).start()
        if sample:
            threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self):
        while not self.done.wait(0.02):
            self.sample_hwm()

    def sample_hwm(self):
        """Peak RSS from /proc (VmHWM). wait4's ru_maxrss is no use here: it keeps the RSS
        the child had as a fork of this Python process before exec."""
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.hwm = max(self.hwm, int(line.split()[1]) / 1024.0)
        except (OSError, ValueError):
            pass
        return self.hwm

    def _reap(self):
        try:
            _, status, ru = os.wait4(self.pid, 0)
        except ChildProcessError:
            status, ru = 0, None
        self.t_end = time.monotonic()
        self.status = status
        self.rusage = ru
        self.p.returncode = os.waitstatus_to_exitcode(status)
        LIVE_PROCS.discard(self)
        self.done.set()

    @property
    def rc(self):
        return self.p.returncode

    def wait(self, timeout):
        return self.done.wait(timeout)

    def kill(self, sig=signal.SIGKILL):
        if not self.done.is_set():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def output(self, limit=2000):
        if not self.out_path or not os.path.exists(self.out_path):
            return ""
        with open(self.out_path, "rb") as f:
            data = f.read()
        return data[-limit:].decode("utf-8", "replace")

    def head(self, limit):
        """The start of the output, on one line: the first error says most."""
        if not self.out_path or not os.path.exists(self.out_path):
            return ""
        with open(self.out_path, "rb") as f:
            return f.read(limit).decode("utf-8", "replace").strip().replace("\n", " | ")

    def cpu(self):
        return self.rusage.ru_utime + self.rusage.ru_stime if self.rusage else 0.0

    def maxrss_mib(self):
        return self.hwm


LIVE_PROCS = set()
LIVE_MOUNTS = set()


def run_all(argvs, timeout, env=None, tmp=None, on_timeout=None, sample=False):
    """Start every command at once, wait for all; returns (seconds, procs). Raises Skip on failure."""
    procs = []
    t0 = time.monotonic()
    for i, argv in enumerate(argvs):
        out = os.path.join(tmp, "out.%d" % i) if tmp else None
        procs.append(Proc(argv, env=env, out=out, sample=sample))
    wait_procs(procs, t0 + timeout, timeout, on_timeout)
    return max(p.t_end for p in procs) - t0, procs


def wait_procs(procs, deadline, timeout, on_timeout):
    for p in procs:
        if not p.wait(max(0.0, deadline - time.monotonic())):
            if on_timeout:
                on_timeout()  # e.g. kill a FUSE daemon so readers in D state get ENOTCONN
            for q in procs:
                q.kill()
            for q in procs:
                q.wait(10)
            raise Skip("timed out after %d s: %s" % (timeout, " ".join(p.argv[:4])))
    for p in procs:
        if p.rc != 0:
            raise Skip("%s exited %d: %s" % (os.path.basename(p.argv[0]), p.rc, p.head(300)))


def run_clients(argvs, timeout, tmp, on_timeout=None):
    """Run client.py processes that set up, then all start together on a go file; returns
    (seconds from go to the last one done, [their JSON])."""
    procs = []
    go = os.path.join(tmp, "go")
    for i, argv in enumerate(argvs):
        argv = argv[:2] + ["--ready", os.path.join(tmp, "ready.%d" % i), "--go", go] + argv[2:]
        procs.append(Proc(argv, out=os.path.join(tmp, "out.%d" % i)))
    deadline = time.monotonic() + 120
    while not all(os.path.exists(os.path.join(tmp, "ready.%d" % i)) for i in range(len(argvs))):
        if any(p.done.is_set() for p in procs) or time.monotonic() > deadline:
            wait_procs(procs, time.monotonic() + 10, 10, None)
            raise Skip("client did not get ready")
        time.sleep(0.005)
    t_go = time.time()
    open(go, "w").close()
    wait_procs(procs, time.monotonic() + timeout, timeout, on_timeout)
    res = []
    for p in procs:
        try:
            res.append(json.loads(p.output(1 << 16).strip().splitlines()[-1]))
        except (ValueError, IndexError):
            raise Skip("client printed no result: %s" % p.output(300))
    return max(r["t_end"] for r in res) - t_go, res


def sh(argv, timeout=60, check=True, env=None):
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, env=env)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), r.returncode, r.stdout.decode()[-800:]))
    return r.stdout.decode("utf-8", "replace")


def mounted(path):
    """True when PATH is a mount point; reads mountinfo so a dead FUSE daemon cannot hang us."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == path:
                return True
    return False


def force_unmount(path):
    for argv in (["fusermount3", "-u", "-z", path], ["umount", "-l", path]):
        if not mounted(path):
            return
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)


TCK = os.sysconf("SC_CLK_TCK")


def cpu_snapshot(pids):
    """CPU seconds: (machine busy, machine total, this process and its reaped children, PIDS).
    What the machine spent beyond the last three is other helpers' work: the noise figure."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy, total = (sum(v) - v[3] - v[4]) / TCK, sum(v) / TCK
    ours = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        ours += ru.ru_utime + ru.ru_stime
    server = 0.0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                st = f.read().rsplit(")", 1)[1].split()
            server += (int(st[11]) + int(st[12])) / TCK
        except (OSError, ValueError, IndexError):
            pass
    return busy, total, ours, server


# ---------------------------------------------------------------------------
# S3 side (setup, completion polling, checks, deletes)


class Store:
    def __init__(self, env):
        sys.path.insert(0, HERE)
        import client  # noqa: E402  (the same boto3 setup the raw contender uses)

        os.environ.update({k: v for k, v in env.items() if k.startswith("HPCOPS_")})
        self.env = env
        self.bucket = env["HPCOPS_S3_BUCKET"]
        self.s3 = client.s3_client(32)
        self.deleted_bytes = 0

    def size(self, key):
        import botocore

        try:
            return self.s3.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except botocore.exceptions.ClientError:
            return None

    def wait_objects(self, keys, size, deadline):
        """Poll HEAD until every key exists with SIZE bytes; returns the time it happened."""
        pending = list(keys)
        while pending:
            if self.size(pending[0]) == size:
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise Skip("%s not complete in S3 in time (size %s)" % (pending[0], self.size(pending[0])))
            time.sleep(0.01)
        return time.monotonic()

    def listing(self, prefix):
        out = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                out[o["Key"]] = o["Size"]
        return out

    def wait_count(self, prefix, n, size, deadline):
        while True:
            got = self.listing(prefix)
            if len(got) >= n and all(s == size for s in got.values()):
                return time.monotonic()
            if time.monotonic() > deadline:
                raise Skip("only %d of %d objects under %s in S3 in time" % (len(got), n, prefix))
            time.sleep(0.05)

    def check_bytes(self, key, src, samples=4):
        """Compare a few 64 KiB windows of the object with the source file."""
        size = os.path.getsize(src)
        with open(src, "rb") as f:
            for off in [0, size - 65536] + [random.randrange(0, size - 65536) for _ in range(samples - 2)]:
                f.seek(off)
                want = f.read(65536)
                got = self.s3.get_object(Bucket=self.bucket, Key=key,
                                         Range="bytes=%d-%d" % (off, off + 65535))["Body"].read()
                if got != want:
                    raise Skip("%s: wrong bytes at offset %d" % (key, off))

    def check_whole(self, key, want):
        if self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read() != want:
            raise Skip("%s: wrong bytes" % key)

    def delete_prefix(self, prefix):
        objs = self.listing(prefix)
        keys = list(objs)
        for i in range(0, len(keys), 1000):
            self.s3.delete_objects(Bucket=self.bucket,
                                   Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
        self.deleted_bytes += sum(objs.values())
        # multipart uploads a failed contender left open
        for u in self.s3.list_multipart_uploads(Bucket=self.bucket, Prefix=prefix).get("Uploads", []):
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=u["Key"], UploadId=u["UploadId"])

    def collect_garbage(self, force=False):
        """radosgw frees deleted tail objects only at GC time (hours later by default); the OSD
        is a 20 GiB file, so the write rounds need it run now."""
        if not force and self.deleted_bytes < 3 * GiB:
            return
        admin = self.env.get("HPCOPS_RGW_ADMIN")
        if admin:
            sh(shlex.split(admin) + ["gc", "process", "--include-all"], timeout=600, check=False)
        self.deleted_bytes = 0


# ---------------------------------------------------------------------------
# contenders


class Contender:
    kind = "mount"
    version = ""
    available = True
    reason = ""

    def __init__(self, name, bench):
        self.name = name
        self.b = bench
        self.extra = []  # options of one measurement's mount (hpcops: --metrics-file)


class MountContender(Contender):
    """A FUSE filesystem run in the foreground as our child, one fresh mount per measurement."""

    def argv(self, mnt):
        raise NotImplementedError

    def env(self):
        return dict(self.b.base_env)

    def mount(self, extra=()):
        b = self.b
        self.extra = list(extra)
        self.last_log_tail = ""
        b.seq += 1
        mnt = os.path.join(b.tmp, "mnt-%s-%d" % (self.name, b.seq))
        os.makedirs(mnt)
        self.scratch = os.path.join(b.tmp, "scratch-%s-%d" % (self.name, b.seq))
        os.makedirs(self.scratch)
        self.logfile = os.path.join(b.tmp, "log-%s-%d" % (self.name, b.seq))
        self.mnt = mnt
        self.proc = Proc(self.argv(mnt), env=self.env(), out=self.logfile, new_session=True)
        LIVE_MOUNTS.add(self)
        deadline = time.monotonic() + 30
        while not mounted(mnt):
            if self.proc.done.is_set() or time.monotonic() > deadline:
                msg = self.proc.output(600).strip().replace("\n", " | ")
                self.teardown()
                raise Skip("mount failed (exit %s): %s" % (self.proc.rc, msg or "no output"))
            time.sleep(0.02)
        return mnt

    def unmount(self):
        """Unmount, wait for the daemon to exit; returns (cpu seconds, peak RSS MiB) of the daemon."""
        self.proc.sample_hwm()
        subprocess.run(["fusermount3", "-u", self.mnt], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=60)
        if not self.proc.wait(60):
            self.proc.kill(signal.SIGTERM)
            if not self.proc.wait(10):
                self.proc.kill()
                self.proc.wait(10)
        ok = self.proc.done.is_set()
        self.teardown()
        if not ok:
            raise Skip("daemon did not exit after unmount")
        return self.proc.cpu(), self.proc.maxrss_mib()

    def kill_daemon(self):
        self.proc.kill()

    def teardown(self):
        self.proc.kill()
        self.proc.wait(10)
        force_unmount(self.mnt)
        LIVE_MOUNTS.discard(self)
        for d in (self.mnt, self.scratch):
            if not mounted(d):
                shutil.rmtree(d, ignore_errors=True)
        if os.path.exists(self.logfile):
            with open(self.logfile, "rb") as f:  # kept for the JSON when the measurement failed
                f.seek(max(0, os.path.getsize(self.logfile) - 3000))
                self.last_log_tail = f.read().decode("utf-8", "replace")
            os.unlink(self.logfile)


class Hpcops(MountContender):
    def argv(self, mnt):
        e = self.b.env
        return [self.b.hpcops_bin, "-f", "--endpoint-url", e["HPCOPS_S3_ENDPOINT"], "--region",
                e["HPCOPS_S3_REGION"], "--force-path-style"] + self.b.args.hpcops_opt + self.extra + [
                    e["HPCOPS_S3_BUCKET"], mnt]

    def env(self):
        env = dict(self.b.base_env)
        env.update(AWS_ACCESS_KEY_ID=self.b.env["HPCOPS_S3_ACCESS_KEY"],
                   AWS_SECRET_ACCESS_KEY=self.b.env["HPCOPS_S3_SECRET_KEY"],
                   AWS_EC2_METADATA_DISABLED="true")
        return env


class S3fs(MountContender):
    def argv(self, mnt):
        e = self.b.env
        return ["s3fs", e["HPCOPS_S3_BUCKET"], mnt, "-f", "-o", "passwd_file=" + self.b.s3fs_passwd, "-o",
                "url=" + e["HPCOPS_S3_ENDPOINT"], "-o", "use_path_request_style", "-o", "nomixupload"]


class Rclone(MountContender):
    def argv(self, mnt):
        # --vfs-write-back 0s: upload at close instead of 5 s later (rclone's best case;
        # the default would add 5 s to every write figure).
        return ["rclone", "mount", "X:" + self.b.env["HPCOPS_S3_BUCKET"], mnt, "--config", "/dev/null",
                "--vfs-cache-mode", "writes", "--vfs-write-back", "0s", "--cache-dir", self.scratch]

    def env(self):
        e = self.b.env
        env = dict(self.b.base_env)
        env.pop("AWS_CA_BUNDLE", None)  # rclone 1.60 fails with LoadCustomCABundleError if set
        env.update(RCLONE_CONFIG_X_TYPE="s3", RCLONE_CONFIG_X_PROVIDER="Other",
                   RCLONE_CONFIG_X_ENDPOINT=e["HPCOPS_S3_ENDPOINT"],
                   RCLONE_CONFIG_X_ACCESS_KEY_ID=e["HPCOPS_S3_ACCESS_KEY"],
                   RCLONE_CONFIG_X_SECRET_ACCESS_KEY=e["HPCOPS_S3_SECRET_KEY"],
                   RCLONE_CONFIG_X_REGION=e["HPCOPS_S3_REGION"], RCLONE_CONFIG_X_FORCE_PATH_STYLE="true")
        return env


class RawBoto3(Contender):
    kind = "raw"


class RawCurl(Contender):
    kind = "raw"


# ---------------------------------------------------------------------------
# figures

# id, label, unit, better, source measurement
FIGURES = [
    ("read1", "seq read {size} cold, 1 reader", "MB/s", "higher"),
    ("read4", "seq read {size} cold, {streams} readers", "MB/s", "higher"),
    ("write1", "seq write {size} until in S3, 1 writer", "MB/s", "higher"),
    ("write4", "seq write {size} until in S3, {streams} writers", "MB/s", "higher"),
    ("rand", "random 1 MiB reads, 1 at a time", "MB/s", "higher"),
    ("ttfb", "time to first byte (open + 4 KiB)", "s", "lower"),
    ("ls_flat", "ls -l, {flat} keys in one prefix", "s", "lower"),
    ("find_flat", "find, {flat} keys in one prefix", "s", "lower"),
    ("ls_tree", "ls -lR, {tree0} prefixes x {tree1} keys", "s", "lower"),
    ("find_tree", "find, {tree0} prefixes x {tree1} keys", "s", "lower"),
    ("small", "{small} x 4 KiB files, shell loop, until in S3", "s", "lower"),
    ("shared8", "seq read {size} cold, 8 readers of one object, delivered", "MB/s", "higher"),
    ("shared32", "seq read {size} cold, 32 readers of one object, delivered", "MB/s", "higher"),
    ("fetched_shared8", "bytes fetched from S3 / object size, 8 readers of one", "x size", "lower"),
    ("fetched_shared32", "bytes fetched from S3 / object size, 32 readers of one", "x size", "lower"),
    ("ckpt", "checkpoint: {ckpt_n} writers x {ckpt} at once, until in S3", "MB/s", "higher"),
    ("loops16", "{loops0} shell loops x {loops1} x 64 KiB files at once, until in S3", "s", "lower"),
    ("loops16_rate", "{loops0} shell loops x {loops1} x 64 KiB files at once, files/s", "files/s", "higher"),
    ("cpu_read1", "CPU s per GiB, read, 1 stream", "s/GiB", "lower"),
    ("cpu_read4", "CPU s per GiB, read, {streams} streams", "s/GiB", "lower"),
    ("cpu_write1", "CPU s per GiB, write, 1 stream", "s/GiB", "lower"),
    ("cpu_write4", "CPU s per GiB, write, {streams} streams", "s/GiB", "lower"),
    ("cpu_shared8", "CPU s per GiB delivered, 8 readers of one object", "s/GiB", "lower"),
    ("cpu_shared32", "CPU s per GiB delivered, 32 readers of one object", "s/GiB", "lower"),
    ("cpu_ckpt", "CPU s per GiB, checkpoint, {ckpt_n} writers", "s/GiB", "lower"),
    ("rss_read4", "peak RSS, {streams} readers", "MiB", "lower"),
    ("rss_write4", "peak RSS, {streams} writers", "MiB", "lower"),
    ("rss_shared8", "peak RSS, 8 readers of one object", "MiB", "lower"),
    ("rss_shared32", "peak RSS, 32 readers of one object", "MiB", "lower"),
    ("rss_ckpt", "peak RSS, checkpoint, {ckpt_n} writers x {ckpt}", "MiB", "lower"),
]
# Order within a round: the figures the issues set targets on first, so a run cut short by --budget has
# the most rounds of those. The HPC workloads come last (shared8 has targets of its own).
WORKLOADS = ["read1", "write1", "ls_flat", "small", "write4", "read4", "rand", "find_flat", "ls_tree", "find_tree",
             "shared8", "ckpt", "loops16", "shared32"]


class Bench:
    def __init__(self, args):
        self.args = args
        self.cfg = dict(QUICK if args.quick else FULL)
        if args.size:
            self.cfg["size"] = args.size * MiB
        if args.runs:
            self.cfg["runs"] = args.runs
        self.cfg["ckpt"] = 2 * self.cfg["size"]  # 2 GiB in a full run, as the speed issue asks
        self.seq = 0
        self.samples = []
        self.rounds_done = 0
        self.budget_note = ""
        self.results = {}  # fig -> contender -> [values]
        self.errors = {}  # fig -> contender -> [reasons]
        self.given_up = set()  # (workload, contender) that timed out: not tried again
        self.base_env = dict(os.environ)
        self.conc = args.concurrency

    # -- setup ---------------------------------------------------------------

    def start(self):
        self.tmp = tempfile.mkdtemp(prefix="hpcops-bench.", dir="/tmp")
        self.shm = tempfile.mkdtemp(prefix="hpcops-bench.", dir="/dev/shm")
        self.logdir = os.path.join(self.tmp, "logs")
        os.makedirs(self.logdir)
        if self.args.rgw_env:
            self.rgw_dir = None
            self.env = self.read_env(self.args.rgw_env)
        else:
            self.rgw_dir = os.path.join(self.tmp, "rgw")
            log("starting radosgw (scripts/rgw) ...")
            sh([os.path.join(TOP, "scripts", "rgw"), "start", self.rgw_dir], timeout=300)
            self.env = self.read_env(os.path.join(self.rgw_dir, "env"))
        self.store = Store(self.env)
        self.server_pids = []
        pid_dir = os.path.join(self.env.get("HPCOPS_RGW_DIR", "/nonexistent"), "pids")
        for name in os.listdir(pid_dir) if os.path.isdir(pid_dir) else []:
            try:
                with open(os.path.join(pid_dir, name)) as f:
                    self.server_pids.append(int(f.read().strip()))
            except (OSError, ValueError):
                pass
        if self.args.rgw_env:  # a server we did not start: use a bucket of our own
            self.env["HPCOPS_S3_BUCKET"] = self.store.bucket = "hpcops-bench-%d" % os.getpid()
            os.environ["HPCOPS_S3_BUCKET"] = self.store.bucket
            self.store.s3.create_bucket(Bucket=self.store.bucket)
        self.base_env.update({k: v for k, v in self.env.items() if k.startswith("HPCOPS_")})
        self.s3fs_passwd = os.path.join(self.tmp, "s3fs.passwd")
        with open(self.s3fs_passwd, "w") as f:
            f.write("%s:%s\n" % (self.env["HPCOPS_S3_ACCESS_KEY"], self.env["HPCOPS_S3_SECRET_KEY"]))
        os.chmod(self.s3fs_passwd, 0o600)
        self.drop_ok = self.drop_caches()
        if not self.drop_ok:
            log("cannot write /proc/sys/vm/drop_caches: cold reads rely on fresh mounts only")

    @staticmethod
    def read_env(path):
        out = subprocess.run(["bash", "-c", 'set -a; . "$1"; env -0', "_", path], stdout=subprocess.PIPE,
                             check=True).stdout.decode()
        env = dict(kv.split("=", 1) for kv in out.split("\0") if "=" in kv)
        return {k: v for k, v in env.items() if k.startswith("HPCOPS_")}

    def drop_caches(self):
        try:
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("1\n")  # page cache only: our data, without evicting others' dentries
            return True
        except OSError:
            return False

    def make_contenders(self):
        cs = []
        want = self.args.only.split(",") if self.args.only else ["hpcops", "s3fs", "rclone", "raw-boto3", "raw-curl"]
        table = {"hpcops": Hpcops, "s3fs": S3fs, "rclone": Rclone, "raw-boto3": RawBoto3, "raw-curl": RawCurl}
        for name in want:
            if name not in table:
                raise SystemExit("bench: unknown contender %r (known: %s)" % (name, ", ".join(table)))
            cs.append(table[name](name, self))
        self.contenders = cs
        for c in cs:
            if c.name == "hpcops":
                c.version = self.hpcops_version()
            elif c.name == "s3fs":
                c.version = sh(["s3fs", "--version"], check=False).splitlines()[0]
            elif c.name == "rclone":
                c.version = sh(["rclone", "version"], check=False).splitlines()[0]
            elif c.name == "raw-boto3":
                import boto3
                import botocore

                c.version = "boto3 %s, botocore %s" % (boto3.__version__, botocore.__version__)
            elif c.name == "raw-curl":
                c.version = sh(["curl", "--version"], check=False).splitlines()[0].split(" (")[0]
            if c.kind == "mount" and c.available:
                self.probe(c)

    def hpcops_version(self):
        b = self.hpcops_bin = self.args.hpcops_bin or os.path.join(TOP, "build-bench", "fs", "hpcops-mount")
        hp = [c for c in getattr(self, "contenders", []) if c.name == "hpcops"]
        if not os.access(b, os.X_OK):
            for c in hp:
                c.available, c.reason = False, "no binary at %s (build failed?)" % b
            return ""
        out = sh([b, "--version"], check=False).strip().splitlines()
        return out[0] if out else ""

    def probe(self, c):
        """Mount once and list the root; a contender that cannot is shown as missing."""
        try:
            mnt = c.mount()
            try:
                sh(["ls", "-la", mnt], timeout=30)
            except Exception as e:
                c.kill_daemon()
                raise Skip("ls of the mount failed: %s" % e)
            finally:
                c.unmount()
        except Skip as e:
            c.available, c.reason = False, str(e)
            log("%s is missing: %s" % (c.name, e))

    def setup_data(self):
        cfg = self.cfg
        t0 = time.monotonic()
        self.src = os.path.join(self.shm, "src")
        self.random_file(self.src, cfg["size"])
        self.small_src = os.path.join(self.shm, "small")
        self.random_file(self.small_src, 4 * KiB)
        wl = self.workloads
        if "ckpt" in wl:
            self.ckpt_src = os.path.join(self.shm, "ckpt")
            self.random_file(self.ckpt_src, cfg["ckpt"])
        if "loops16" in wl:
            self.loop_src = os.path.join(self.shm, "loop")
            self.random_file(self.loop_src, LOOP_FILE)
        # read/obj0 always: the server's speed is measured on it at the start of every run
        n = cfg["streams"] if {"read1", "read4", "rand"} & set(wl) else 1
        log("uploading %d object%s of %s ..." % (n, "s" if n > 1 else "", human_size(cfg["size"])))
        self.put_objects(["read/obj%d" % i for i in range(n)], self.src)
        keys = []
        if {"ls_flat", "find_flat"} & set(wl):
            keys += ["flat/k%05d" % i for i in range(cfg["flat"])]
        if {"ls_tree", "find_tree"} & set(wl):
            a, b = cfg["tree"]
            keys += ["tree/p%03d/k%03d" % (i, j) for i in range(a) for j in range(b)]
        if keys:
            log("creating %d listing keys ..." % len(keys))
            self.put_empty(keys)
        log("data ready in %.0f s" % (time.monotonic() - t0))

    @staticmethod
    def random_file(path, size):
        with open(path, "wb") as f:
            left = size
            while left:
                n = min(left, 64 * MiB)
                f.write(os.urandom(n))
                left -= n

    def put_objects(self, keys, src):
        """Upload SRC as each of KEYS at once with plain curl PUTs (least CPU; radosgw-bound)."""
        e = self.env
        run_all([["curl", "-sS", "--fail", "-o", "/dev/null", "-T", src, "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                  "--aws-sigv4", "aws:amz:%s:s3" % e["HPCOPS_S3_REGION"], "--user",
                  "%s:%s" % (e["HPCOPS_S3_ACCESS_KEY"], e["HPCOPS_S3_SECRET_KEY"]), self.url(k)] for k in keys],
                3600, tmp=self.tmp)
        size = os.path.getsize(src)
        for k in keys:
            if self.store.size(k) != size:
                raise RuntimeError("upload of %s failed" % k)

    def put_empty(self, keys):
        """Empty objects with curl -Z: far less CPU than boto3 on a 2-core machine."""
        empty = os.path.join(self.tmp, "empty")
        open(empty, "w").close()
        cfg = os.path.join(self.tmp, "put-empty.cfg")
        with open(cfg, "w") as f:
            f.write("\nnext\n".join("\n".join(['url = "%s"' % self.url(k), 'upload-file = "%s"' % empty,
                                                  'output = "/dev/null"', "fail", "silent", "show-error"]
                                                 + self.curl_auth()) for k in keys) + "\n")
        os.chmod(cfg, 0o600)
        sh(["curl", "-s", "-Z", "--parallel-max", "16", "-K", cfg], timeout=1800)
        os.unlink(cfg)
        got = sum(len(self.store.listing(p)) for p in sorted({k.split("/")[0] + "/" for k in keys}))
        if got != len(keys):
            raise RuntimeError("created %d of %d listing keys" % (got, len(keys)))

    # -- one measurement --------------------------------------------------------

    def timeout_for(self, nbytes):
        return 120 + nbytes / (8 * 1e6)  # generous: a stuck run must not stall the suite forever

    def measure(self, wl, c, rnd):
        """Run workload WL for contender C once; returns {figure: value} plus details."""
        fn = getattr(self, "w_" + wl.rstrip("14") if wl[-1] in "14" else "w_" + wl)
        snap0 = cpu_snapshot(self.server_pids)
        la0 = os.getloadavg()[0]
        tw = time.time()
        try:
            vals, extra = fn(wl, c, rnd)
            err = None
        except Skip as e:
            vals, extra, err = {}, {"daemon_log": getattr(c, "last_log_tail", "")}, str(e)
        snap1 = cpu_snapshot(self.server_pids)
        # figures of a measurement that this contender cannot give (n/a in the table), with the reason
        not_measured = extra.pop("not_measured", {})
        d = [b - a for a, b in zip(snap0, snap1)]
        rec = dict(round=rnd, workload=wl, contender=c.name, time=tw, values=vals, error=err, loadavg1=la0,
                   wall=time.time() - tw,
                   machine_busy=d[0] / max(1e-9, d[1]), server_cpu=d[3],
                   others_busy=max(0.0, d[0] - d[2] - d[3]) / max(1e-9, d[1]))
        rec.update(extra)
        self.samples.append(rec)
        for k, v in vals.items():
            self.results.setdefault(k, {}).setdefault(c.name, []).append(v)
        for k, why in not_measured.items():
            self.errors.setdefault(k, {}).setdefault(c.name, []).append(why)
        if err:
            for k in self.figs_of(wl):
                self.errors.setdefault(k, {}).setdefault(c.name, []).append(err)
            if "timed out" in err or "not complete" in err:
                self.given_up.add((wl, c.name))
        shown = ", ".join("%s %.3g" % (k, v) for k, v in vals.items()) if not err else "FAILED: " + err[:300]
        log("  %-10s %-9s %s" % (wl, c.name, shown))

    @staticmethod
    def figs_of(wl):
        return {"read1": ["read1", "cpu_read1"], "read4": ["read4", "cpu_read4", "rss_read4"],
                "write1": ["write1", "cpu_write1"], "write4": ["write4", "cpu_write4", "rss_write4"],
                "rand": ["rand", "ttfb"],
                "shared8": ["shared8", "fetched_shared8", "cpu_shared8", "rss_shared8"],
                "shared32": ["shared32", "fetched_shared32", "cpu_shared32", "rss_shared32"],
                "ckpt": ["ckpt", "cpu_ckpt", "rss_ckpt"], "loops16": ["loops16", "loops16_rate"]}.get(wl, [wl])

    def with_mount(self, c, body, cold=False, extra_opts=()):
        """Fresh mount (with EXTRA_OPTS), BODY(mnt) -> (vals, extra); adds the daemon's CPU and RSS; always
        unmounts."""
        mnt = c.mount(extra_opts)
        try:
            if cold:
                self.drop_caches()
            vals, extra = body(mnt)
        except BaseException:
            c.kill_daemon()
            try:
                c.unmount()
            except Skip:
                pass
            raise
        cpu, rss = c.unmount()
        extra.update(daemon_cpu=cpu, daemon_rss_mib=rss, daemon_exit=c.proc.rc)
        if c.proc.rc:
            log("  (%s exited %d after the unmount)" % (c.name, c.proc.rc))
        return vals, extra

    def w_read(self, wl, c, rnd):
        n = 1 if wl == "read1" else self.cfg["streams"]
        size = self.cfg["size"]
        total = n * size
        keys = ["read/obj%d" % i for i in range(n)]
        tmo = self.timeout_for(total)
        if c.kind == "mount":
            def body(mnt):
                paths = [os.path.join(mnt, k) for k in keys]
                secs, _ = run_all([["dd", "if=" + p, "of=/dev/null", "bs=1M", "status=none"] for p in paths], tmo,
                                  tmp=self.tmp, on_timeout=c.kill_daemon)
                for p in paths:
                    self.check_file(p)
                return {wl: total / secs / 1e6}, {"seconds": secs}
            vals, extra = self.with_mount(c, body, cold=True)
            self.cpu_rss(wl, vals, extra["daemon_cpu"], extra["daemon_rss_mib"], total)
            return vals, extra
        secs, cpu, rss, _ = self.raw_get(c, keys, size, tmo)
        vals = {wl: total / secs / 1e6}
        self.cpu_rss(wl, vals, cpu, rss, total)
        return vals, {"seconds": secs}

    def raw_get(self, c, keys, size, tmo):
        """Cold full reads of KEYS (which may repeat) by raw client C, all at once, each with parallel 8 MiB
        ranged GETs; returns (seconds, client CPU s, summed peak RSS MiB, bytes received)."""
        self.drop_caches()
        tmp = tempfile.mkdtemp(dir=self.tmp)
        try:
            if c.name == "raw-boto3":
                secs, res = run_clients([[PY, CLIENT, "get", "--key", k, "--part", str(8 * MiB), "--conc",
                                          str(self.conc)] for k in keys], tmo, tmp)
                cpu, rss = sum(r["cpu"] for r in res), sum(r["hwm_mib"] for r in res)
                nbytes = sum(r["bytes"] for r in res)
            else:
                secs, procs = run_all([self.curl_get_argv(k, size, i) for i, k in enumerate(keys)], tmo, tmp=tmp,
                                      sample=True)
                nbytes = 0
                for p in procs:
                    got = sum(int(l.split()[1]) for l in p.output(1 << 20).splitlines() if l.startswith("206 "))
                    if got != size:
                        raise Skip("curl got %d of %d bytes" % (got, size))
                    nbytes += got
                cpu, rss = sum(p.cpu() for p in procs), sum(p.maxrss_mib() for p in procs)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return secs, cpu, rss, nbytes

    def cpu_rss(self, wl, vals, cpu, rss, nbytes):
        vals["cpu_" + wl] = cpu / (nbytes / GiB)
        if wl.endswith("4") or wl == "ckpt":
            vals["rss_" + wl] = rss

    def curl_auth(self):
        e = self.env
        return ['aws-sigv4 = "aws:amz:%s:s3"' % e["HPCOPS_S3_REGION"],
                'user = "%s:%s"' % (e["HPCOPS_S3_ACCESS_KEY"], e["HPCOPS_S3_SECRET_KEY"]),
                'header = "x-amz-content-sha256: UNSIGNED-PAYLOAD"']

    def url(self, key):
        return "%s/%s/%s" % (self.env["HPCOPS_S3_ENDPOINT"], self.env["HPCOPS_S3_BUCKET"], key)

    def curl_get_argv(self, key, size, i):
        """One curl process: parallel 8 MiB ranged GETs (-Z), same part size and concurrency as boto3."""
        cfg = os.path.join(self.tmp, "curl-%d.cfg" % i)
        groups = []
        for o in range(0, size, 8 * MiB):
            groups.append("\n".join(['url = "%s"' % self.url(key), 'range = "%d-%d"' % (o, min(o + 8 * MiB, size) - 1),
                                     'output = "/dev/null"', "fail", "silent", "show-error",
                                     'write-out = "%{http_code} %{size_download}\\n"'] + self.curl_auth()))
        with open(cfg, "w") as f:
            f.write("\nnext\n".join(groups) + "\n")
        os.chmod(cfg, 0o600)
        return ["curl", "-s", "-Z", "--parallel-max", str(self.conc), "-K", cfg]

    def w_write(self, wl, c, rnd):
        return self.write_run(wl, c, rnd, 1 if wl == "write1" else self.cfg["streams"], self.cfg["size"], self.src)

    def w_ckpt(self, wl, c, rnd):
        """A checkpoint: CKPT_WRITERS new files of twice --size at once, timed until all are in S3."""
        return self.write_run(wl, c, rnd, CKPT_WRITERS, self.cfg["ckpt"], self.ckpt_src)

    def write_run(self, wl, c, rnd, n, size, src):
        """N new files of SRC (SIZE bytes) written at once, timed until every object is complete in S3."""
        total = n * size
        prefix = "w-%s-%s-r%d-" % (wl, c.name, rnd)
        keys = [prefix + "f%d" % i for i in range(n)]
        tmo = self.timeout_for(total)
        try:
            if c.kind == "mount":
                def body(mnt):
                    t0 = time.monotonic()
                    secs_cp, _ = run_all([["cp", src, os.path.join(mnt, k)] for k in keys], tmo,
                                         tmp=self.tmp, on_timeout=c.kill_daemon)
                    t_done = self.store.wait_objects(keys, size, t0 + tmo)
                    return {wl: total / (t_done - t0) / 1e6}, {"seconds": t_done - t0, "seconds_cp": secs_cp}
                vals, extra = self.with_mount(c, body)
                cpu, rss = extra["daemon_cpu"], extra["daemon_rss_mib"]
            else:
                e = self.env
                tmp = tempfile.mkdtemp(dir=self.tmp)
                try:
                    if c.name == "raw-boto3":
                        secs, res = run_clients([[PY, CLIENT, "put", "--key", k, "--src", src, "--part",
                                                  str(8 * MiB), "--conc", str(self.conc)] for k in keys], tmo, tmp)
                        cpu, rss = sum(r["cpu"] for r in res), sum(r["hwm_mib"] for r in res)
                    else:  # one plain PUT per file: the fastest upload radosgw takes
                        secs, procs = run_all(
                            [["curl", "-sS", "--fail", "-o", "/dev/null", "-T", src, "-H",
                              "x-amz-content-sha256: UNSIGNED-PAYLOAD", "--aws-sigv4",
                              "aws:amz:%s:s3" % e["HPCOPS_S3_REGION"], "--user",
                              "%s:%s" % (e["HPCOPS_S3_ACCESS_KEY"], e["HPCOPS_S3_SECRET_KEY"]), self.url(k)]
                             for k in keys], tmo, tmp=tmp, sample=True)
                        cpu, rss = sum(p.cpu() for p in procs), sum(p.maxrss_mib() for p in procs)
                    # both return only once the object is complete; a HEAD confirms it
                    self.store.wait_objects(keys, size, time.monotonic() + 30)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                vals, extra = {wl: total / secs / 1e6}, {"seconds": secs}
            for k in keys:
                self.store.check_bytes(k, src)
            self.cpu_rss(wl, vals, cpu, rss, total)
            return vals, extra
        finally:
            self.store.delete_prefix(prefix)
            self.store.collect_garbage()

    def w_rand(self, wl, c, rnd):
        cfg = self.cfg
        common = ["--size", str(cfg["size"]), "--count", str(cfg["rand"]), "--seed", str(1000 + rnd)]
        if c.name == "raw-curl":
            raise Skip("not measured (curl has no random-read client here)")
        if c.kind == "mount":
            def body(mnt):
                return self.rand_run([PY, CLIENT, "randread", "--path", os.path.join(mnt, "read/obj0")] + common,
                                     c.kill_daemon)
            return self.with_mount(c, body, cold=True)
        self.drop_caches()
        return self.rand_run([PY, CLIENT, "randread", "--key", "read/obj0"] + common, None)

    def rand_run(self, argv, on_timeout):
        tmp = tempfile.mkdtemp(dir=self.tmp)
        try:
            _, res = run_clients([argv], 300, tmp, on_timeout=on_timeout)
            r = res[0]
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return {"rand": r["mbps"], "ttfb": r["ttfb"]}, {"rand_detail": r}

    def w_ls_flat(self, wl, c, rnd):
        return self.listing(wl, c, ["ls", "-l"], "flat", self.cfg["flat"])

    def w_find_flat(self, wl, c, rnd):
        return self.listing(wl, c, ["find"], "flat", self.cfg["flat"])

    def w_ls_tree(self, wl, c, rnd):
        a, b = self.cfg["tree"]
        return self.listing(wl, c, ["ls", "-lR"], "tree", a * b)

    def w_find_tree(self, wl, c, rnd):
        a, b = self.cfg["tree"]
        return self.listing(wl, c, ["find"], "tree", a * b)

    def listing(self, wl, c, cmd, prefix, nkeys):
        if c.name == "raw-curl":
            raise Skip("not measured (curl's SigV4 is refused on list queries by radosgw)")
        if c.kind == "raw":
            tmp = tempfile.mkdtemp(dir=self.tmp)
            try:
                _, res = run_clients([[PY, CLIENT, "list", "--prefix", prefix + "/"]], 300, tmp)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            r = res[0]
            if r["keys"] != nkeys:
                raise Skip("LIST returned %d of %d keys" % (r["keys"], nkeys))
            return {wl: r["seconds"]}, {"pages": r["pages"]}

        def body(mnt):
            out = os.path.join(self.tmp, "listing.out")
            t0 = time.monotonic()
            with open(out, "wb") as f:
                p = subprocess.Popen(cmd + [os.path.join(mnt, prefix)], stdout=f, stderr=subprocess.PIPE)
                try:
                    _, err = p.communicate(timeout=300)
                except subprocess.TimeoutExpired:
                    c.kill_daemon()
                    p.kill()
                    p.wait()
                    raise Skip("timed out")
            secs = time.monotonic() - t0
            with open(out, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            os.unlink(out)
            if p.returncode != 0:
                raise Skip("%s exited %d: %s" % (cmd[0], p.returncode, err.decode()[-300:]))
            names = [l for l in lines if "/k" in l or (cmd[0] == "ls" and l.startswith("-"))]
            if len(names) != nkeys:
                raise Skip("%s showed %d of %d keys" % (" ".join(cmd), len(names), nkeys))
            return {wl: secs}, {}
        vals, extra = self.with_mount(c, body)
        return vals, extra

    def w_small(self, wl, c, rnd):
        n = self.cfg["small"]
        prefix = "s-%s-r%d-" % (c.name, rnd)
        tmo = 60 + n * 0.5
        try:
            if c.kind == "mount":
                def body(mnt):
                    loop = 'for i in $(seq -w 1 %d); do cat "$1" > "$2/%s$i"; done' % (n, prefix)
                    t0 = time.monotonic()
                    secs_loop, _ = run_all([["bash", "-c", loop, "_", self.small_src, mnt]], tmo,
                                           tmp=self.tmp, on_timeout=c.kill_daemon)
                    t_done = self.store.wait_count(prefix, n, 4 * KiB, t0 + tmo)
                    return {wl: t_done - t0}, {"seconds_loop": secs_loop}
                return self.with_mount(c, body)
            if c.name == "raw-curl":
                raise Skip("not measured (the boto3 loop is the raw figure)")
            tmp = tempfile.mkdtemp(dir=self.tmp)
            try:
                secs, _ = run_clients([[PY, CLIENT, "smallput", "--prefix", prefix, "--src", self.small_src, "--n",
                                        str(n)]], tmo, tmp)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            self.store.wait_count(prefix, n, 4 * KiB, time.monotonic() + 30)
            return {wl: secs}, {}
        finally:
            self.store.delete_prefix(prefix)

    def w_shared8(self, wl, c, rnd):
        return self.shared(wl, c, rnd, SHARED[wl])

    w_shared32 = w_shared8

    def shared(self, wl, c, rnd, n):
        """N readers of the same cold object at once (ranks reading one input): MB/s delivered to all of
        them, and the bytes fetched from S3 per object size (hpcops: its own counter; s3fs and rclone:
        radosgw's count of GET bytes, only when the server is ours alone; raw: what the clients received)."""
        size = self.cfg["size"]
        key = "read/obj0"
        delivered = n * size
        tmo = self.timeout_for(delivered)
        if c.kind == "raw":  # N independent ranks, no sharing: N full reads of the object
            secs, cpu, rss, got = self.raw_get(c, [key] * n, size, tmo)
            return ({wl: delivered / secs / 1e6, "fetched_" + wl: got / size, "cpu_" + wl: cpu / (delivered / GiB),
                     "rss_" + wl: rss}, {"seconds": secs, "fetched_bytes": got})
        mfile = os.path.join(self.tmp, "metrics-%s-%d.prom" % (wl, rnd)) if c.name == "hpcops" else None
        gets = {}

        def body(mnt):
            path = os.path.join(mnt, key)
            ex = {}
            gets["start"] = self.rgw_get_bytes()
            secs, procs = run_all([["dd", "if=" + path, "of=/dev/null", "bs=1M", "status=none"]] * n, tmo,
                                  tmp=self.tmp, on_timeout=c.kill_daemon)
            t_end = time.time()
            gets["timed"] = self.rgw_get_bytes()
            if mfile:
                ex["hpcops_metrics"] = self.metrics_after(mfile, t_end)
            self.check_file(path)  # all N read the same file: one check (from the page cache, normally)
            ex.update(seconds=secs, start_spread=max(p.t_start for p in procs) - min(p.t_start for p in procs))
            return {wl: delivered / secs / 1e6}, ex
        try:
            vals, extra = self.with_mount(c, body, cold=True, extra_opts=["--metrics-file", mfile] if mfile else [])
            gets["end"] = self.rgw_get_bytes()
            # radosgw's GET bytes over the reads and over reads + check + unmount: server-wide, so
            # others' traffic is in them when the server is shared (--rgw-env)
            for k in ("timed", "end"):
                if gets["start"] is not None and gets[k] is not None:
                    extra["server_get_bytes_" + k] = gets[k] - gets["start"]
            if mfile:
                fetched = extra["hpcops_metrics"]["hpcops_fs_prefetch_bytes_fetched_total"]
                # what the file says after the unmount (the check's reads included), for the JSON
                extra["hpcops_metrics_after_unmount"] = {k: v for k, v in prom_values(mfile).items()
                                                         if k.startswith("hpcops_fs_prefetch")}
            elif self.rgw_dir and "server_get_bytes_timed" in extra:
                fetched = extra["server_get_bytes_timed"]  # the reads alone, as hpcops' figure
            else:
                fetched = None
                extra["not_measured"] = {"fetched_" + wl: "not measured (%s has no counter of its own; radosgw's "
                                         "counts every client of the server, and %s)" % (
                                             c.name, "it is shared (--rgw-env)" if not self.rgw_dir
                                             else "its admin socket did not answer")}
        finally:
            if mfile and os.path.exists(mfile):
                os.unlink(mfile)
        if fetched is not None:
            vals["fetched_" + wl] = fetched / size
            extra["fetched_bytes"] = fetched
        vals["cpu_" + wl] = extra["daemon_cpu"] / (delivered / GiB)
        vals["rss_" + wl] = extra["daemon_rss_mib"]
        return vals, extra

    @staticmethod
    def metrics_after(mfile, t):
        """hpcops' prefetch counters from the first rewrite of its --metrics-file (every 5 s) after wall time T:
        the bytes the timed reads fetched, without the check's. (Not the file written at unmount: that one
        also counts the check, and main's hpcops-mount of 2026-12-01 dies at unmount before writing it.)"""
        deadline = time.monotonic() + 15
        while True:
            try:
                if os.stat(mfile).st_mtime > t:
                    m = {k: v for k, v in prom_values(mfile).items() if k.startswith("hpcops_fs_prefetch")}
                    if "hpcops_fs_prefetch_bytes_fetched_total" in m:
                        return m
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise Skip("no hpcops_fs_prefetch_bytes_fetched_total in --metrics-file %s within 15 s" % mfile)
            time.sleep(0.1)

    def rgw_get_bytes(self):
        """radosgw's perf counter rgw.get_b (bytes of GET replies sent, all clients), from its admin socket;
        None when it cannot be read."""
        asok = os.path.join(self.env.get("HPCOPS_RGW_DIR", "/nonexistent"), "run", "client.rgw.asok")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(10)
                s.connect(asok)
                s.sendall(json.dumps({"prefix": "perf dump"}).encode() + b"\0")
                buf = b""
                while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
                    chunk = s.recv(1 << 16)
                    if not chunk:
                        break
                    buf += chunk
            return json.loads(buf[4:])["rgw"]["get_b"]
        except (OSError, ValueError, KeyError, struct.error):
            return None

    def w_loops16(self, wl, c, rnd):
        """Ranks writing their own outputs: LOOPS shell loops at once, each FILES new files of 64 KiB,
        timed until every object is listed with its size. Raw: boto3 PutObjects from one thread per rank;
        curl: one process per rank, its PUTs one after another on one connection."""
        ranks, n = self.cfg["loops"]
        total = ranks * n
        prefix = "l-%s-r%d-" % (c.name, rnd)
        width = len(str(n))  # the names seq -w gives
        names = ["%srank%02d-f%0*d" % (prefix, r, width, i) for r in range(ranks) for i in range(1, n + 1)]
        tmo = 60 + total * 0.5
        try:
            if c.kind == "mount":
                def body(mnt):
                    loop = 'for i in $(seq -w 1 %d); do cat "$1" > "$2/$3$i"; done' % n
                    t0 = time.monotonic()
                    secs_loops, _ = run_all([["bash", "-c", loop, "_", self.loop_src, mnt, "%srank%02d-f" % (
                        prefix, r)] for r in range(ranks)], tmo, tmp=self.tmp, on_timeout=c.kill_daemon)
                    t_done = self.store.wait_count(prefix, total, LOOP_FILE, t0 + tmo)
                    return {wl: t_done - t0}, {"seconds_loops": secs_loops}
                vals, extra = self.with_mount(c, body)
            else:
                tmp = tempfile.mkdtemp(dir=self.tmp)
                try:
                    if c.name == "raw-boto3":
                        secs, res = run_clients([[PY, CLIENT, "loopput", "--prefix", prefix, "--src", self.loop_src,
                                                  "--ranks", str(ranks), "--n", str(n)]], tmo, tmp)
                        extra = {"client_cpu": res[0]["cpu"], "client_rss_mib": res[0]["hwm_mib"]}
                    else:
                        secs, procs = run_all([self.curl_put_argv(names[r * n:(r + 1) * n], self.loop_src, r)
                                               for r in range(ranks)], tmo, tmp=tmp, sample=True)
                        extra = {"client_cpu": sum(p.cpu() for p in procs),
                                 "client_rss_mib": sum(p.maxrss_mib() for p in procs)}
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                # each PUT returned once its object was stored; the listing confirms it
                self.store.wait_count(prefix, total, LOOP_FILE, time.monotonic() + 30)
                vals = {wl: secs}
            with open(self.loop_src, "rb") as f:
                data = f.read()
            for k in (names[0], names[-1], random.choice(names)):
                self.store.check_whole(k, data)
            vals[wl + "_rate"] = total / vals[wl]
            return vals, extra
        finally:
            self.store.delete_prefix(prefix)

    def curl_put_argv(self, keys, src, i):
        """One curl process PUTting SRC as each of KEYS, one after another on one connection."""
        cfg = os.path.join(self.tmp, "curl-put-%d.cfg" % i)
        with open(cfg, "w") as f:
            f.write("\nnext\n".join("\n".join(['url = "%s"' % self.url(k), 'upload-file = "%s"' % src,
                                                  'output = "/dev/null"', "fail", "silent", "show-error"]
                                                 + self.curl_auth()) for k in keys) + "\n")
        os.chmod(cfg, 0o600)
        return ["curl", "-s", "-K", cfg]

    def check_file(self, path):
        """A few 64 KiB windows of a file in a mount against the source (dd, so a hung mount times out)."""
        size = self.cfg["size"]
        with open(self.src, "rb") as f:
            for off in (0, size - 65536, random.randrange(0, size // 65536) * 65536):
                got = subprocess.run(["dd", "if=" + path, "bs=64K", "skip=%d" % (off // 65536), "count=1",
                                      "status=none"], stdout=subprocess.PIPE, timeout=60).stdout
                f.seek(off)
                if got != f.read(65536):
                    raise Skip("%s: wrong bytes at offset %d" % (os.path.basename(path), off))

    def measure_server(self):
        """The server's raw speed before the workloads: one plain curl GET of read/obj0 to /dev/null, cold.
        The speed issue judges throughput targets only when one such GET of 1 GiB reaches JUDGE_MBPS."""
        size = self.cfg["size"]
        e = self.env
        argv = ["curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "-H",
                "x-amz-content-sha256: UNSIGNED-PAYLOAD", "--aws-sigv4", "aws:amz:%s:s3" % e["HPCOPS_S3_REGION"],
                "--user", "%s:%s" % (e["HPCOPS_S3_ACCESS_KEY"], e["HPCOPS_S3_SECRET_KEY"]), self.url("read/obj0")]
        self.drop_caches()
        rec = {"size": size, "mbps": None, "seconds": None, "error": None}
        snap0 = cpu_snapshot(self.server_pids)
        t0 = time.monotonic()
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=self.timeout_for(size))
            secs = time.monotonic() - t0
            out = r.stdout.decode("utf-8", "replace").strip()
            if r.returncode != 0 or out.split()[-2:] != ["200", str(size)]:
                rec["error"] = "curl exited %d: %s" % (r.returncode, out[-300:])
        except subprocess.TimeoutExpired:
            secs = time.monotonic() - t0
            rec["error"] = "timed out after %d s" % secs
        snap1 = cpu_snapshot(self.server_pids)
        d = [b - a for a, b in zip(snap0, snap1)]
        rec.update(machine_busy=d[0] / max(1e-9, d[1]), server_cpu=d[3],
                   others_busy=max(0.0, d[0] - d[2] - d[3]) / max(1e-9, d[1]))
        if not rec["error"]:
            rec.update(seconds=secs, mbps=size / secs / 1e6)
        rec["can_judge"] = bool(rec["mbps"] and size >= GiB and rec["mbps"] >= JUDGE_MBPS)
        rec["note"] = server_note(rec)
        log("server: " + rec["note"])
        return rec

    # -- the run -------------------------------------------------------------------

    def run(self):
        a = self.args
        self.workloads = a.workloads.split(",") if a.workloads else WORKLOADS
        for w in self.workloads:
            if w not in WORKLOADS:
                raise SystemExit("bench: unknown workload %r (known: %s)" % (w, ", ".join(WORKLOADS)))
        self.t_begin = time.time()
        self.start()
        self.make_contenders()
        self.setup_data()
        self.server_speed = self.measure_server()
        active = [c for c in self.contenders if c.available]
        self.rounds_done = 0
        self.budget_note = ""
        deadline = self.t_begin + a.budget * 60 if a.budget else None
        for rnd in range(self.cfg["runs"]):
            order = active[rnd % len(active):] + active[:rnd % len(active)]
            log("round %d/%d (order: %s)" % (rnd + 1, self.cfg["runs"], " ".join(c.name for c in order)))
            for wl in self.workloads:
                for c in order:
                    if (wl, c.name) in self.given_up:
                        continue
                    # stop at the deadline, or before it when this measurement took longer than what is
                    # left last round
                    last = [x["wall"] for x in self.samples if x["workload"] == wl and x["contender"] == c.name]
                    if deadline and time.time() + (last[-1] if last else 0) > deadline:
                        self.budget_note = "stopped by --budget %d min in round %d at %s" % (a.budget, rnd + 1, wl)
                        log(self.budget_note)
                        break
                    self.measure(wl, c, rnd)
                if self.budget_note:
                    break
            if self.budget_note:
                break
            self.rounds_done = rnd + 1
        self.t_end = time.time()

    def stop(self):
        """Leave nothing behind: mounts, daemons, children, temp dirs, the server."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for m in list(LIVE_MOUNTS):
            try:
                m.teardown()
            except Exception as e:
                log("cleanup of %s: %s" % (m.name, e))
        for p in list(LIVE_PROCS):
            p.kill()
        for p in list(LIVE_PROCS):
            p.wait(10)
        if getattr(self, "rgw_dir", None):
            log("stopping radosgw ...")
            subprocess.run([os.path.join(TOP, "scripts", "rgw"), "stop", self.rgw_dir], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=120)
        elif getattr(self, "store", None) and self.args.rgw_env:
            try:
                self.store.delete_prefix("")
                self.store.s3.delete_bucket(Bucket=self.store.bucket)
            except Exception as e:
                log("could not delete bench bucket: %s" % e)
        for d in (getattr(self, "shm", None), getattr(self, "tmp", None)):
            if d:
                shutil.rmtree(d, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    # -- report ----------------------------------------------------------------------

    def label(self, fig):
        lab = {f[0]: f[1] for f in FIGURES}[fig]
        c = self.cfg
        return lab.format(size=human_size(c["size"]), streams=c["streams"], flat=c["flat"], tree0=c["tree"][0],
                          tree1=c["tree"][1], small=c["small"], ckpt=human_size(c["ckpt"]), ckpt_n=CKPT_WRITERS,
                          loops0=c["loops"][0], loops1=c["loops"][1])

    def summary(self):
        figs = {}
        names = [c.name for c in self.contenders]
        for fid, _, unit, better in FIGURES:
            vals = {}
            for n in names:
                runs = self.results.get(fid, {}).get(n, [])
                errs = self.errors.get(fid, {}).get(n, [])
                vals[n] = {"median": statistics.median(runs) if runs else None, "runs": runs, "errors": errs}
            raws = [(v["median"], n) for n, v in vals.items() if n.startswith("raw-") and v["median"] is not None]
            raw = (max(raws) if better == "higher" else min(raws)) if raws else (None, None)
            h = vals.get("hpcops", {}).get("median")
            for n, v in vals.items():
                m = v["median"]
                v["vs_hpcops"] = m / h if m is not None and h else None
                v["vs_raw"] = m / raw[0] if m is not None and raw[0] else None
            if any(v["median"] is not None or v["errors"] for v in vals.values()):
                figs[fid] = {"label": self.label(fid), "unit": unit, "better": better, "raw_limit": raw[0],
                             "raw_limit_by": raw[1], "values": vals}
        return figs

    def targets(self, figs):
        def med(f, n):
            return figs.get(f, {}).get("values", {}).get(n, {}).get("median")

        def raw(f):
            return figs.get(f, {}).get("raw_limit"), figs.get(f, {}).get("raw_limit_by")

        out = []

        def add(issue, text, ok, detail):
            out.append({"issue": issue, "target": text, "met": ok, "detail": detail})

        h, s = med("read1", "hpcops"), med("read1", "s3fs")
        r, rb = raw("read1")
        add(3, "cold seq read >= 90% of parallel 8 MiB ranged GETs", None if h is None or r is None else h >= 0.9 * r,
            "hpcops %s MB/s, raw %s (%s) MB/s: %s" % (f0(h), f0(r), rb, pct(h, r)))
        add(3, "cold seq read >= 2x s3fs", None if h is None or s is None else h >= 2 * s,
            "hpcops %s MB/s, s3fs %s MB/s: %sx" % (f0(h), f0(s), f2(h / s if h and s else None)))
        h, r = med("ls_flat", "hpcops"), raw("ls_flat")[0]
        s = med("ls_flat", "s3fs")
        add(3, "ls -l of %d keys within 1.5x of a raw paged LIST" % self.cfg["flat"],
            None if h is None or r is None else h <= 1.5 * r,
            "hpcops %s s, raw LIST %s s: %sx (s3fs %s s)" % (f2(h), f2(r), f2(h / r if h and r else None), f2(s)))
        h, s = med("write1", "hpcops"), med("write1", "s3fs")
        r, rb = raw("write1")
        add(4, "seq write until in S3 >= 90% of the best raw upload", None if h is None or r is None else h >= 0.9 * r,
            "hpcops %s MB/s, raw %s (%s) MB/s: %s" % (f0(h), f0(r), rb, pct(h, r)))
        add(4, "seq write until in S3 >= 2x s3fs", None if h is None or s is None else h >= 2 * s,
            "hpcops %s MB/s, s3fs %s MB/s: %sx; CPU s/GiB hpcops %s, s3fs %s" % (
                f0(h), f0(s), f2(h / s if h and s else None), f2(med("cpu_write1", "hpcops")),
                f2(med("cpu_write1", "s3fs"))))
        h, s = med("small", "hpcops"), med("small", "s3fs")
        add(4, "%d x 4 KiB files from a shell loop >= 2x s3fs" % self.cfg["small"],
            None if h is None or s is None else s >= 2 * h,
            "hpcops %s s, s3fs %s s: %sx" % (f2(h), f2(s), f2(s / h if h and s else None)))
        h = med("rss_write4", "hpcops")
        lim = self.args.memory_limit
        add(4, "peak RSS with %d x %s written at once < --memory-limit (%d MiB) + 64 MiB" % (
            self.cfg["streams"], human_size(self.cfg["size"]), lim), None if h is None else h < lim + 64,
            "hpcops %s MiB (s3fs %s, rclone %s)" % (f0(h), f0(med("rss_write4", "s3fs")), f0(med("rss_write4", "rclone"))))
        if "ckpt" in figs:
            h = med("rss_ckpt", "hpcops")
            add(14, "checkpoint %d x %s: peak RSS < --memory-limit (%d MiB) + 64 MiB" % (
                CKPT_WRITERS, human_size(self.cfg["ckpt"]), lim), None if h is None else h < lim + 64,
                "hpcops %s MiB (s3fs %s, rclone %s)" % (f0(h), f0(med("rss_ckpt", "s3fs")),
                                                       f0(med("rss_ckpt", "rclone"))))
        size = human_size(self.cfg["size"])
        one = med("read1", "hpcops")
        for wl, n in SHARED.items():  # issue 17: many ranks, one input
            if wl not in figs:
                continue
            h, f = med(wl, "hpcops"), med("fetched_" + wl, "hpcops")
            add(17, "%d readers of one %s object: bytes fetched from S3 <= 1.1x the object" % (n, size),
                None if f is None else f <= 1.1,
                "hpcops %sx (s3fs %s, rclone %s, raw %s)" % (f2(f), f2(med("fetched_" + wl, "s3fs")),
                                                            f2(med("fetched_" + wl, "rclone")),
                                                            f2(raw("fetched_" + wl)[0])))
            add(17, "%d readers of one %s object: delivered >= 3x one reader's MB/s" % (n, size),
                None if h is None or one is None else h >= 3 * one,
                "hpcops %s MB/s, one reader (read x1) %s MB/s: %sx" % (f0(h), f0(one), f2(h / one if h and one
                                                                                          else None)))
            h = med("rss_" + wl, "hpcops")
            add(17, "%d readers of one %s object: peak RSS < --memory-limit (%d MiB) + 64 MiB" % (n, size, lim),
                None if h is None else h < lim + 64,
                "hpcops %s MiB (s3fs %s, rclone %s)" % (f0(h), f0(med("rss_" + wl, "s3fs")),
                                                       f0(med("rss_" + wl, "rclone"))))
        return out

    def machine(self):
        def first(argv):
            try:
                return sh(argv, check=False).strip().splitlines()[0]
            except Exception:
                return "?"

        mem = open("/proc/meminfo").readline().split()[1]
        cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")]
        busy = [s["others_busy"] for s in self.samples]
        return {
            "nproc": os.cpu_count(), "memory_gib": round(int(mem) / 1024 / 1024, 1), "cpu": cpu[0] if cpu else "?",
            "kernel": platform.release(), "os": first(["sh", "-c", ". /etc/os-release; echo $PRETTY_NAME"]),
            "radosgw": first(["radosgw", "--version"]), "s3fs": first(["s3fs", "--version"]),
            "rclone": first(["rclone", "version"]), "curl": first(["curl", "--version"]),
            "python3": platform.python_version(),
            "hpcops_commit": first(["git", "-C", TOP, "describe", "--always", "--dirty"]),
            "date": datetime.datetime.utcfromtimestamp(self.t_begin).strftime("%Y-%m-%d %H:%M UTC"),
            "duration_s": round(self.t_end - self.t_begin),
            "drop_caches": self.drop_ok,
            "rounds_done": self.rounds_done,
            "budget_note": self.budget_note,
            "others_busy_median": statistics.median(busy) if busy else None,
            "others_busy_max": max(busy) if busy else None,
        }

    def report(self):
        figs = self.summary()
        tg = self.targets(figs)
        doc = {
            "mode": "quick" if self.args.quick else "full",
            "machine": self.machine(),
            "config": {**self.cfg, "size_bytes": self.cfg["size"], "part_size": 8 * MiB, "concurrency": self.conc,
                       "hpcops_options": self.args.hpcops_opt, "memory_limit_mib": self.args.memory_limit,
                       "workloads": self.workloads, "shared_readers": SHARED, "ckpt_writers": CKPT_WRITERS,
                       "loop_file_bytes": LOOP_FILE, "server_own": bool(getattr(self, "rgw_dir", None))},
            "server_speed": getattr(self, "server_speed", None),
            "contenders": {c.name: {"kind": c.kind, "available": c.available, "reason": c.reason,
                                    "version": c.version} for c in self.contenders},
            "figures": figs,
            "targets": tg,
            "samples": self.samples,
        }
        out = self.args.out
        os.makedirs(out, exist_ok=True)
        base = os.path.join(out, doc["mode"])
        with open(base + ".json", "w") as f:
            json.dump(doc, f, indent=1)
        text = render_table(doc, markdown=False)
        with open(base + ".md", "w") as f:
            f.write(render_table(doc, markdown=True))
        print(text)
        try:
            chart(doc, base + ".png", self.tmp)
            log("wrote %s.json, %s.md, %s.png" % (base, base, base))
        except Exception as e:
            log("chart failed: %s (wrote %s.json, %s.md)" % (e, base, base))


# ---------------------------------------------------------------------------
# output


def f0(v):
    return "-" if v is None else "%.0f" % v


def f2(v):
    return "-" if v is None else "%.2f" % v


def pct(a, b):
    return "-" if a is None or not b else "%.0f%%" % (100.0 * a / b)


def server_note(sv):
    """The line that says what the server's speed allows this run to judge."""
    busy = "machine %s busy during it, others %s" % (pct(sv.get("machine_busy"), 1), pct(sv.get("others_busy"), 1))
    if sv.get("mbps") is None:
        what = "server speed not measured (%s)" % sv.get("error")
    else:
        what = "one raw curl GET of %s: %.0f MB/s (%s)" % (human_size(sv["size"]), sv["mbps"], busy)
    if sv.get("can_judge"):
        return what + ": >= %d MB/s, this run can judge the throughput targets" % JUDGE_MBPS
    if sv.get("mbps") is not None and sv["size"] < GiB:
        why = "the rule needs a GET of 1 GiB at >= %d MB/s" % JUDGE_MBPS
    elif sv.get("mbps") is not None:
        why = "< %d MB/s" % JUDGE_MBPS
    else:
        why = "no figure"
    return what + ": %s, so this run cannot judge throughput targets: CPU-per-GiB rows are the targets" % why


def prom_values(path):
    """The samples of a Prometheus text file (hpcops-mount --metrics-file), by series name with labels."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                if "}" in line:
                    name, rest = line.split("}", 1)
                    name += "}"
                else:
                    name, _, rest = line.partition(" ")
                try:
                    out[name.strip()] = float(rest.split()[0])
                except (ValueError, IndexError):
                    pass
    except OSError:
        pass
    return out


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "s":
        return "%.3f" % v if v < 10 else "%.1f" % v
    if unit in ("s/GiB", "x size"):
        return "%.2f" % v
    return "%.0f" % v


def render_table(doc, markdown):
    names = list(doc["contenders"])
    m = doc["machine"]
    head = ["figure", "unit"] + names
    rows = []
    for fid, f in doc["figures"].items():
        row = [f["label"], f["unit"]]
        for n in names:
            v = f["values"][n]
            if v["median"] is None:
                if not doc["contenders"][n]["available"]:
                    row.append("missing")
                elif v["errors"]:
                    row.append("failed" if not v["errors"][0].startswith("not measured") else "n/a")
                else:
                    row.append("n/a")
                continue
            cell = fmt(v["median"], f["unit"])
            h = "%.2f" % v["vs_hpcops"] if v["vs_hpcops"] is not None and n != "hpcops" else "-"
            r = "%.2f" % v["vs_raw"] if v["vs_raw"] is not None else "-"
            cell += " [%s %s]" % (h, r)
            if len(v["runs"]) < doc["config"]["runs"]:
                cell += " (n=%d)" % len(v["runs"])
            row.append(cell)
        rows.append(row)
    rounds = "median of %d rounds" % doc["config"]["runs"]
    if m.get("budget_note"):
        rounds = "median of up to %d rounds (n=... where fewer; %s)" % (m.get("rounds_done", 0) + 1, m["budget_note"])
    title = ("hpcops bench (%s): %s, %d cores, %.0f GiB, kernel %s, %s; %s, contenders alternating"
             % (doc["mode"], m["date"], m["nproc"], m["memory_gib"], m["kernel"], m["radosgw"].split(" (")[0],
                rounds))
    legend = ("cell: median [value / hpcops, value / raw limit] (raw limit = best raw client of the row; "
              "MB/s higher is better, s, s/GiB and MiB lower is better)")
    out = []
    sv = doc.get("server_speed")
    server = ["server: " + server_note(sv)] if sv else []
    if markdown:
        out += [title, ""] + (server + [""] if server else []) + [legend, "", "| " + " | ".join(head) + " |",
                                                                  "|" + "---|" * len(head)]
        out += ["| " + " | ".join(r) + " |" for r in rows]
    else:
        w = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
        out += [title] + server + [legend, ""]
        out.append("  ".join(h.ljust(w[i]) for i, h in enumerate(head)))
        out += ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)) for r in rows]
    miss = ["%s: %s" % (n, c["reason"]) for n, c in doc["contenders"].items() if not c["available"]]
    if miss:
        out += ["", "missing: " + "; ".join(miss)]
    failed = []
    for fid, f in doc["figures"].items():
        for n, v in f["values"].items():
            errs = [e for e in v["errors"] if not e.startswith("not measured")]
            if errs and doc["contenders"][n]["available"]:
                failed.append("%s %s: %s" % (fid, n, errs[0][:200]))
    item = "- " if markdown else "  "
    if failed:
        out += ["", "failures (first reason each):", ""] + [item + x for x in failed]
    issues = sorted({t["issue"] for t in doc["targets"]})
    issues = ", ".join(str(i) for i in issues[:-1]) + " and %d" % issues[-1] if len(issues) > 1 else "".join(
        str(i) for i in issues)
    out += ["", "targets (issues %s):" % issues, ""]
    if sv and not sv.get("can_judge"):
        out += [item + "throughput targets (MB/s) are not judged by this run (server speed above): the CPU-per-GiB "
                "rows are the targets", ""]
    for t in doc["targets"]:
        mark = {True: "MET ", False: "MISS", None: "n/a "}[t["met"]]
        out.append("%s[%s] #%d %s: %s" % (item, mark.strip() if markdown else mark, t["issue"], t["target"],
                                        t["detail"]))
    out.append("")
    if m.get("budget_note"):
        out.append(m["budget_note"])
    out.append("noise: other processes used %s of the machine's CPU during the median measurement (max %s); "
               "run took %d s" % (pct(m["others_busy_median"], 1), pct(m["others_busy_max"], 1), m["duration_s"]))
    sep = "\n" if not markdown else "\n"
    return sep.join(out) + "\n"


def chart(doc, png, tmp):
    """Panels: throughput, times (log scale), CPU per GiB, peak RSS and, with the shared-object
    workloads, bytes fetched per object size."""
    names = list(doc["contenders"])
    figs = doc["figures"]
    panels = [
        ("throughput, MB/s (higher is better)", ["read1", "read4", "write1", "write4", "rand", "shared8", "shared32",
                                                  "ckpt"], False),
        ("time, s (lower is better, log scale)", ["ttfb", "ls_flat", "find_flat", "ls_tree", "find_tree", "small",
                                                  "loops16"], True),
        ("daemon / client CPU s per GiB (lower is better)", ["cpu_read1", "cpu_read4", "cpu_write1", "cpu_write4",
                                                             "cpu_shared8", "cpu_shared32", "cpu_ckpt"], False),
        ("peak RSS, MiB (lower is better)", ["rss_read4", "rss_write4", "rss_shared8", "rss_shared32", "rss_ckpt"],
         False),
        ("fetched from S3 / object (lower is better)", ["fetched_shared8", "fetched_shared32"], False),
    ]
    short = {"read1": "read x1", "read4": "read x%d", "write1": "write x1", "write4": "write x%d",
             "rand": "rand 1 MiB", "ttfb": "first byte", "ls_flat": "ls -l flat", "find_flat": "find flat",
             "ls_tree": "ls -lR tree", "find_tree": "find tree", "small": "small files", "cpu_read1": "read x1",
             "cpu_read4": "read x%d", "cpu_write1": "write x1", "cpu_write4": "write x%d", "rss_read4": "read x%d",
             "rss_write4": "write x%d", "shared8": "8 of one", "shared32": "32 of one", "ckpt": "ckpt x4",
             "loops16": "16 loops", "cpu_shared8": "8 of one", "cpu_shared32": "32 of one", "cpu_ckpt": "ckpt x4",
             "rss_shared8": "8 of one", "rss_shared32": "32 of one", "rss_ckpt": "ckpt x4",
             "fetched_shared8": "8 of one", "fetched_shared32": "32 of one"}
    st = doc["config"]["streams"]
    colors = {"hpcops": "#1b9e77", "s3fs": "#d95f02", "rclone": "#7570b3", "raw-boto3": "#888888",
              "raw-curl": "#444444"}
    m = doc["machine"]
    c = doc["config"]
    gp = ['set terminal pngcairo size 1400,1400 font "DejaVu Sans,10"', 'set output "%s"' % png,
          'set datafile missing "?"', "set style data histograms", "set style histogram clustered gap 1",
          "set style fill solid 0.9 border -1", "set boxwidth 0.9", "set grid ytics",
          "set xtics nomirror", "set ytics nomirror",
          'set multiplot title "hpcops-mount vs s3fs vs rclone vs raw S3 clients on radosgw (loopback)\\n'
          '%s, %d cores, %.0f GiB, kernel %s, %s objects, median of %d rounds\\n'
          'shared machine: other processes used %s of the CPU during the median measurement%s" font ",12"' % (
              m["date"], m["nproc"], m["memory_gib"], m["kernel"], human_size(c["size"]),
              (m.get("rounds_done") or 0) + (1 if m.get("budget_note") else 0) or c["runs"], pct(m.get("others_busy_median"), 1),
              ("; " + m["budget_note"]) if m.get("budget_note") else "")]
    sv = doc.get("server_speed") or {}
    if sv.get("mbps"):  # the server's speed of this run, measured before the workloads
        gp[-1] = gp[-1].replace('" font ",12"', '; one raw curl GET of %s: %.0f MB/s" font ",12"' % (
            human_size(sv["size"]), sv["mbps"]))
    layout = [(0.0, 0.62, 1.0, 0.33), (0.0, 0.31, 1.0, 0.31), (0.0, 0.0, 0.6, 0.31), (0.6, 0.0, 0.4, 0.31)]
    if any(f in figs for f in panels[4][1]):  # a fifth panel: the bottom row in three
        layout[2:] = [(0.0, 0.0, 0.45, 0.31), (0.45, 0.0, 0.33, 0.31), (0.78, 0.0, 0.22, 0.31)]
    for pi, (title, ids, logy) in enumerate(panels):
        ids = [i for i in ids if i in figs and any(v["median"] is not None for v in figs[i]["values"].values())]
        if not ids:
            continue
        x, y, w, h = layout[pi]
        dat = os.path.join(tmp, "chart%d.dat" % pi)
        with open(dat, "w") as f:
            for i in ids:
                lab = short[i] % st if "%d" in short[i] else short[i]
                vals = [figs[i]["values"][n]["median"] for n in names]
                f.write('"%s" ' % lab + " ".join("?" if v is None else "%g" % v for v in vals) + "\n")
        gp += ["set origin %g,%g" % (x, y), "set size %g,%g" % (w, h), 'set title "%s"' % title,
               "set logscale y" if logy else "unset logscale y", "set yrange [%s:*]" % ("*" if logy else "0"),
               "set xrange [-0.6:%g]" % (len(ids) - 0.4),
               "set key %s" % ("outside top center horizontal samplen 2 width 3" if pi == 0 else "off")]
        nn = len(names)
        plots = []
        for j, n in enumerate(names):
            plots.append("'%s' using %d:xtic(1) title '%s' lc rgb '%s'" % (dat, j + 2, n, colors.get(n, "#000000")))
        # value labels above each bar
        for j, n in enumerate(names):
            off = (j - (nn - 1) / 2.0) / (nn + 1)
            fmt_ = "%.2f" if pi in (1, 2, 4) else "%.0f"
            plots.append("'%s' using ($0+%g):%d:(sprintf('%s',$%d)) with labels offset 0,0.6 font ',7' notitle" % (
                dat, off, j + 2, fmt_, j + 2))
        gp.append("plot " + ", ".join(plots))
    gp.append("unset multiplot")
    script = os.path.join(tmp, "chart.gp")
    with open(script, "w") as f:
        f.write("\n".join(gp) + "\n")
    r = subprocess.run(["gnuplot", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if r.returncode != 0 or not os.path.exists(png):
        raise RuntimeError(r.stdout.decode()[-500:])


def main():
    p = argparse.ArgumentParser(prog="bench/run", description="hpcops-mount against s3fs, rclone and raw S3 clients.")
    p.add_argument("--quick", action="store_true", help="smaller sizes (%s objects, fewer keys and files); minutes, not an hour"
                   % human_size(QUICK["size"]))
    p.add_argument("--runs", type=int, help="rounds per figure (default 3); each figure is the median")
    p.add_argument("--size", type=int, help="object size in MiB (default 1024, quick 64); the checkpoint "
                   "objects are twice this")
    p.add_argument("--only", help="comma-separated contenders: hpcops,s3fs,rclone,raw-boto3,raw-curl")
    p.add_argument("--workloads", help="comma-separated: " + ",".join(WORKLOADS))
    p.add_argument("--budget", type=int, help="minutes: stop starting measurements after this long and report "
                   "what was measured (figures with fewer rounds are marked n=...)")
    p.add_argument("--concurrency", type=int, default=8, help="parallel 8 MiB requests per stream of the raw clients")
    p.add_argument("--memory-limit", type=int, default=512, help="hpcops-mount's --memory-limit in MiB, for the "
                   "RSS target (default 512, its default)")
    p.add_argument("--hpcops-opt", action="append", default=[], help="extra option for hpcops-mount (repeatable)")
    p.add_argument("--hpcops-bin", help="hpcops-mount binary (default build-bench/fs/hpcops-mount)")
    p.add_argument("--rgw-env", help="use the running server of this scripts/rgw env file instead of starting one")
    p.add_argument("--out", default=os.path.join(HERE, "results"), help="where the JSON, table and PNG go")
    p.add_argument("--render", metavar="JSON", help="only print the table and redraw the PNG of an earlier run")
    args = p.parse_args()
    if args.render:
        with open(args.render) as f:
            doc = json.load(f)
        base = os.path.splitext(args.render)[0]
        print(render_table(doc, markdown=False))
        with open(base + ".md", "w") as f:
            f.write(render_table(doc, markdown=True))
        tmp = tempfile.mkdtemp(prefix="hpcops-bench.")
        try:
            chart(doc, base + ".png", tmp)
        finally:
            shutil.rmtree(tmp)
        return 0
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root (FUSE mounts, drop_caches, radosgw)")
    b = Bench(args)

    def on_term(sig, frm):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    # also when started from a script with '&', which leaves SIGINT ignored: Ctrl-C must clean up
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGHUP, on_term)
    ok = False
    try:
        b.run()
        ok = True
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        if b.samples:  # what was measured so far is still worth a report
            b.t_end = time.time()
            b.budget_note = "interrupted in round %d" % (b.rounds_done + 1)
            try:
                b.report()
            except Exception as e:
                log("no report: %s" % e)
    finally:
        if ok:
            try:
                b.report()
            except Exception:
                b.stop()
                raise
        b.stop()
    return 0 if ok else 130


if __name__ == "__main__":
    sys.exit(main())

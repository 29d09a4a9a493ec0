#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Model-based test: random sequences of file operations run on a real
# hpcops-mount (radosgw) and on the reference model (fsmodel.py), compared
# after every step: errno, bytes read and written, sizes, listings, and the
# bucket's keys as boto3 sees them. A fixed list of seeds runs in CI; a
# failing seed is shrunk (delta debugging, each try on a fresh bucket and
# mount) and the shortest failing sequence is printed with a replay line.
#
# Long runs:  test_model.py --seeds 100-399 [--ops 80], or --count 500 (500
#   seeds from a start taken from the clock, printed), or the same through
#   HPCOPS_MODEL_SEEDS=100-399 HPCOPS_MODEL_COUNT=500 HPCOPS_MODEL_OPS=80
# Replay:     HPCOPS_MODEL_REPLAY='<json printed by a failure>' test_model.py
import errno
import json
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
import hpcops_test as ht  # noqa: E402
import fsmodel  # noqa: E402
from fsmodel import ename, short  # noqa: E402

MIB = 1 << 20
CI_SEEDS = list(range(1, 81))
CI_OPS = 40
CHECK_EVERY = 10          # a full walk of the tree every N operations
OP_TIMEOUT = 60           # seconds one system call may take before it counts as hung
SHRINK_BUDGET = 150       # seconds of shrinking per distinct failure
SHRINK_MAX_FAILURES = 2   # distinct failures shrunk per run (others only counted)
TTL_SLEEP = 1.2           # after a change behind the mount's back with --metadata-ttl 1

NAMES = (["a", "b", "c", "d", "e.txt", "f.json"] * 4 +
         ["sp ace", "\u00fcn\u00ef", "pct%41", "plus+", "q?", "hash#", 'dq"', "sq'",
          "back\\sl", "nl\nx", "t~", "L" * 250, "M" * 251, "N" * 256])
BAD_KEY_TAILS = ["x//y", "./z", "w/..", "m/", "n/", "K" * 300 + "/f", "K" * 256, "v/./u"]

OPEN_FLAGS = {
    "r": os.O_RDONLY, "rd": os.O_RDONLY | os.O_DIRECT, "rw": os.O_RDWR,
    "w": os.O_WRONLY, "wt": os.O_WRONLY | os.O_TRUNC, "a": os.O_WRONLY | os.O_APPEND,
}
CREATE_FLAGS = {
    "w": os.O_WRONLY | os.O_CREAT, "wx": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
    "wt": os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "rwc": os.O_RDWR | os.O_CREAT,
}
REMOTE = ("put", "delete")
CHANGES = ("create", "open", "close", "fsync", "mkdir", "rmdir", "unlink", "rename",
           "mknod", "truncate", "ftruncate", "put", "delete")


def data_of(seed, n):
    return random.Random(seed).randbytes(n)


# ---- configuration per seed ----

class Config:
    def __init__(self, seed, flags, ttl, big):
        self.seed = seed
        self.flags = flags  # subset of overwrite, delete, append, rename
        self.ttl = ttl      # "0" or "1"
        self.big = big      # may write a multipart file (5 MiB parts)

    @classmethod
    def for_seed(cls, seed):
        r = random.Random(seed * 7919)
        flags = sorted(f for f in ("overwrite", "delete", "append", "rename")
                       if r.random() < 0.5)
        return cls(seed, flags, "1" if seed % 16 == 5 else "0", seed % 4 == 0)

    def mount_args(self):
        return (["--metadata-ttl", self.ttl, "--write-part-size", "5M"] +
                ["--allow-" + f for f in self.flags])

    def model(self):
        return fsmodel.Model(**{"allow_" + f: True for f in self.flags})

    def to_json(self):
        return {"seed": self.seed, "flags": self.flags, "ttl": self.ttl, "big": self.big}

    @classmethod
    def from_json(cls, j):
        return cls(j["seed"], j["flags"], j["ttl"], j["big"])


# ---- generating a sequence ----

class Generator:
    """Random operations chosen from the model's state, so that most of them
    touch what exists (and some what does not)."""

    def __init__(self, cfg, nops):
        self.cfg = cfg
        self.r = random.Random(cfg.seed)
        self.nops = nops
        self.model = cfg.model()
        self.hid = 0
        self.follow = []
        self.remote_left = 2 if cfg.ttl != "0" else 10 ** 6
        self.big_left = 1 if cfg.big else 0

    def name(self):
        return self.r.choice(NAMES)

    def some_dir(self):
        dirs = self.model.dirs()
        x = self.r.random()
        if x < 0.08:
            return self.r.choice(dirs) + ("nodir",)
        if x < 0.3:
            return max(dirs, key=len)
        return self.r.choice(dirs)

    def new_path(self):
        return self.some_dir() + (self.name(),)

    def some_file(self):
        files = self.model.files()
        if files and self.r.random() < 0.85:
            return self.r.choice(files)
        return self.new_path()

    def some_path(self):
        x = self.r.random()
        if x < 0.6:
            return self.some_file()
        if x < 0.85:
            d = self.model.dirs()
            return self.r.choice(d) if len(d) > 1 else self.new_path()
        return self.new_path()

    def handle(self, kinds):
        hs = [h for h, v in self.model.handles.items() if v.kind in kinds]
        if not hs:
            hs = list(self.model.handles)
        return self.r.choice(hs) if hs else None

    def new_hid(self):
        self.hid += 1
        return "h%d" % self.hid

    def remote_key(self):
        if self.r.random() < 0.75:
            return fsmodel.key_of(self.some_path() if self.r.random() < 0.5
                                  else self.new_path())
        base = fsmodel.key_of(self.r.choice(self.model.dirs()))
        return (base + "/" if base else "") + self.r.choice(BAD_KEY_TAILS)

    def one(self):
        r = self.r
        if self.follow:
            return self.follow.pop(0)
        nh = len(self.model.handles)
        table = [
            ("create", 14 if nh < 5 else 2), ("open", 10 if nh < 5 else 2),
            ("write", 16 if nh else 0), ("pwrite", 4 if nh else 0),
            ("read", 8 if nh else 0), ("close", (6 + 3 * nh) if nh else 0),
            ("fsync", 3 if nh else 0), ("mkdir", 7), ("rmdir", 3), ("unlink", 4),
            ("rename", 4), ("listdir", 3), ("stat", 5),
            ("put", 5 if self.remote_left > 0 else 0),
            ("delete", 3 if self.remote_left > 0 and self.model.objects else 0),
            ("truncate", 2), ("ftruncate", 1 if nh else 0), ("utime", 2), ("chmod", 1),
            ("mknod", 2), ("big", 1 if self.big_left and nh else 0)]
        total = sum(w for _, w in table)
        x = r.uniform(0, total)
        for kind, w in table:
            x -= w
            if x <= 0:
                break
        if kind == "create":
            op = ["create", self.new_path() if r.random() < 0.7 else self.some_file(),
                  self.new_hid(), r.choice(["w", "w", "wx", "wt", "rwc"])]
        elif kind == "open":
            op = ["open", self.some_file(), self.new_hid(),
                  r.choice(["r", "r", "r", "rd", "rw", "rw", "w", "wt", "wt", "a", "a"])]
        elif kind == "write":
            op = ["write", self.handle(("write",)), r.choice([1, 17, 100, 4096, 9000]),
                  r.randrange(1 << 30)]
        elif kind == "big":
            self.big_left -= 1
            op = ["write", self.handle(("write",)), 5 * MIB + r.randrange(1, MIB),
                  r.randrange(1 << 30)]
        elif kind == "pwrite":
            op = ["pwrite", self.handle(("write",)), r.choice([-1, -5, 1, 3, 100]),
                  r.choice([1, 10, 500]), r.randrange(1 << 30)]
        elif kind == "read":
            op = ["read", self.handle(("read", "rdwr")), r.choice([0, 0, 1, 10, 100, 5000]),
                  r.choice([1, 10, 4096, 100000])]
        elif kind == "close":
            h = self.handle(("write", "read", "rdwr"))
            op = ["close", h]
            hv = self.model.handles.get(h)
            if hv is not None and r.random() < 0.6:
                p = hv.path
                self.follow.append(r.choice([["stat", p], ["open", p, self.new_hid(), "r"],
                                             ["unlink", p], ["listdir", p[:-1]]]))
        elif kind == "fsync":
            op = ["fsync", self.handle(("write",))]
        elif kind == "ftruncate":
            op = ["ftruncate", self.handle(("write",)), r.choice([1, 100])]
        elif kind == "mkdir":
            op = ["mkdir", self.new_path()]
        elif kind == "rmdir":
            d = self.model.dirs()
            op = ["rmdir", r.choice(d[1:]) if len(d) > 1 and r.random() < 0.8
                  else self.some_path()]
        elif kind == "unlink":
            op = ["unlink", self.some_path()]
        elif kind == "rename":
            op = ["rename", self.some_path(),
                  self.new_path() if r.random() < 0.7 else self.some_path()]
        elif kind == "listdir":
            op = ["listdir", r.choice(self.model.dirs()) if r.random() < 0.9
                  else self.some_file()]
        elif kind == "stat":
            op = ["stat", self.some_path()]
        elif kind == "put":
            self.remote_left -= 1
            op = ["put", self.remote_key(), r.choice([0, 1, 50, 3000]), r.randrange(1 << 30)]
        elif kind == "delete":
            self.remote_left -= 1
            op = ["delete", r.choice(sorted(self.model.objects))]
        elif kind == "truncate":
            op = ["truncate", self.some_file(), r.choice([0, 1, 7, -1])]
        elif kind == "utime":
            op = ["utime", self.some_file(), 1_500_000_000 + r.randrange(10 ** 6)]
        elif kind == "chmod":
            op = ["chmod", self.some_path(), r.choice([0o644, 0o755, 0o600])]
        else:
            op = ["mknod", self.new_path()]
        return op

    def ops(self):
        out = []
        while len(out) < self.nops:
            op = self.one()
            if op is None or (len(op) > 1 and op[1] is None):
                continue
            op = [list(x) if isinstance(x, tuple) else x for x in op]
            if op[0] == "put" and not op[1]:
                op[1] = "a"
            apply_model(self.model, op)
            out.append(op)
            if len(out) % CHECK_EVERY == 0:
                out.append(["check"])
        return out


# ---- running one operation on the model and on the mount ----

def tup(p):
    return tuple(p)


def apply_model(model, op):
    """(Expect or None, the concrete call for the mount)."""
    kind = op[0]
    if kind == "create":
        return model.create(tup(op[1]), op[2], op[3]), op
    if kind == "open":
        return model.open(tup(op[1]), op[2], op[3]), op
    if kind in ("write", "pwrite"):
        hid = op[1]
        if hid not in model.handles:
            return None, None
        off = model.next_offset(hid)
        if kind == "pwrite":
            off = max(0, (off or 0) + op[2])
            n, seed = op[3], op[4]
        else:
            n, seed = op[2], op[3]
        data = data_of(seed, n)
        return model.write(hid, off, data), ["write", hid, off, data]
    if kind == "read":
        return model.read(op[1], op[2], op[3]), op
    if kind == "fsync":
        return model.fsync(op[1]), op
    if kind == "close":
        return model.close(op[1]), op
    if kind == "ftruncate":
        h = model.handles.get(op[1])
        if h is None:
            return None, None
        size = len(h.data) + op[2]
        return model.ftruncate(op[1], op[2]), ["ftruncate", op[1], size]
    if kind == "truncate":
        p = tup(op[1])
        st = model.stat(p)
        cur = st.value[1] if st.errs == {0} and st.value[0] == "f" else 0
        size = max(0, cur + op[2])
        return model.truncate(p, size), ["truncate", op[1], size]
    if kind == "utime":
        return model.utime(tup(op[1]), op[2]), op
    if kind == "chmod":
        return model.chmod(tup(op[1]), op[2]), op
    if kind == "stat":
        return model.stat(tup(op[1])), op
    if kind == "listdir":
        return model.listdir(tup(op[1])), op
    if kind == "mkdir":
        return model.mkdir(tup(op[1])), op
    if kind == "rmdir":
        return model.rmdir(tup(op[1])), op
    if kind == "unlink":
        return model.unlink(tup(op[1])), op
    if kind == "rename":
        return model.rename(tup(op[1]), tup(op[2])), op
    if kind == "mknod":
        return model.mknod(tup(op[1])), op
    if kind == "put":
        data = data_of(op[3], op[2])
        return model.put(op[1], data), ["put", op[1], data]
    if kind == "delete":
        return model.delete(op[1]), op
    if kind == "check":
        return None, None
    raise ValueError("unknown op %r" % (op,))


class Hung(Exception):
    pass


def _alarm(signum, frame):
    raise Hung("system call still running after %d s" % OP_TIMEOUT)


class Real:
    """The same operations as system calls on the mount (and boto3)."""

    def __init__(self, mnt, s3, bucket):
        self.mnt = mnt
        self.s3 = s3
        self.bucket = bucket
        self.fds = {}
        self.ran = 0  # operations run so far (for the counts printed)

    def p(self, path):
        return os.path.join(self.mnt, *path) if path else self.mnt

    def do(self, call):
        """(errno or 0, value)."""
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(OP_TIMEOUT)
        try:
            return 0, self._do(call)
        except OSError as e:
            return e.errno, None
        finally:
            signal.alarm(0)

    def _do(self, c):
        k = c[0]
        if k == "create":
            self.fds[c[2]] = os.open(self.p(c[1]), CREATE_FLAGS[c[3]], 0o644)
            return None
        if k == "open":
            self.fds[c[2]] = os.open(self.p(c[1]), OPEN_FLAGS[c[3]])
            return None
        if k == "write":
            fd = self.fds[c[1]]
            if c[2] is None:
                return os.write(fd, c[3])
            return os.pwrite(fd, c[3], c[2])
        if k == "read":
            return os.pread(self.fds[c[1]], c[3], c[2])
        if k == "fsync":
            os.fsync(self.fds[c[1]])
            return None
        if k == "close":
            os.close(self.fds.pop(c[1]))
            return None
        if k == "ftruncate":
            os.ftruncate(self.fds[c[1]], c[2])
            return None
        if k == "truncate":
            os.truncate(self.p(c[1]), c[2])
            return None
        if k == "utime":
            os.utime(self.p(c[1]), (c[2], c[2]))
            return None
        if k == "chmod":
            os.chmod(self.p(c[1]), c[2])
            return None
        if k == "stat":
            return self.stat(c[1])
        if k == "listdir":
            return self.listdir(c[1])
        if k == "mkdir":
            os.mkdir(self.p(c[1]))
            return None
        if k == "rmdir":
            os.rmdir(self.p(c[1]))
            return None
        if k == "unlink":
            os.unlink(self.p(c[1]))
            return None
        if k == "rename":
            os.rename(self.p(c[1]), self.p(c[2]))
            return None
        if k == "mknod":
            os.mknod(self.p(c[1]), 0o100644)
            return None
        if k == "put":
            self.s3.put_object(Bucket=self.bucket, Key=c[1], Body=c[2])
            return None
        if k == "delete":
            self.s3.delete_object(Bucket=self.bucket, Key=c[1])
            return None
        raise ValueError(k)

    def stat(self, path):
        import stat as st_
        st = os.stat(self.p(path))
        if st_.S_ISDIR(st.st_mode):
            return ("d",)
        return ("f", st.st_size, int(st.st_mtime))

    def listdir(self, path):
        with os.scandir(self.p(path)) as it:
            return sorted((e.name, e.is_dir(follow_symlinks=False)) for e in it)

    def close_all(self):
        for fd in self.fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds.clear()


def same(exp, err, value, call):
    """Does the mount's (err, value) satisfy exp? stat's mtime is compared
    only where the model keeps one."""
    if call[0] == "stat" and err == 0 and exp.value is not None and value is not None:
        if exp.value[0] == "f" and value[0] == "f":
            want_mtime = exp.value[2]
            value = (value[0], value[1], want_mtime if want_mtime is None else value[2])
    return exp.accepts(err, value)


# ---- one sequence ----

class Failure(Exception):
    def __init__(self, step, op, what, detail):
        super().__init__("step %s %s: %s" % (step, op and op[0], what))
        self.step = step
        self.op = op
        self.what = what
        self.detail = detail

    def signature(self):
        return (self.op[0] if self.op else "end", self.what.split(":")[0])


def show_op(op):
    return "[" + ", ".join(short(x) if not isinstance(x, list) else
                           short("/" + "/".join(x)) for x in op) + "]"


def bucket_sizes(s3, bucket):
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            out[o["Key"]] = o["Size"]
    return out


def check_bucket(model, real, step, op):
    got = bucket_sizes(real.s3, real.bucket)
    want = {k: len(o.data) for k, o in model.objects.items()}
    if got != want:
        extra = {k: v for k, v in got.items() if want.get(k) != v}
        missing = {k: v for k, v in want.items() if got.get(k) != v}
        raise Failure(step, op, "bucket differs",
                      "keys in S3 not as the model has them: %s; the model's: %s"
                      % (short(extra), short(missing)))


def check_dir(model, real, path, step, op):
    exp = model.listdir(path)
    err, val = real.do(["listdir", list(path)])
    if not exp.accepts(err, val):
        raise Failure(step, op, "listing differs: %r" % ("/" + "/".join(path)),
                      "want %s, got %s %s" % (exp.describe(), ename(err), short(val)))


def full_check(model, real, step, op):
    """Walk the whole tree: listings, sizes, bytes; a file being written
    cannot be opened for reading."""
    check_bucket(model, real, step, op)
    tree = model.tree()

    def walk(d, path):
        check_dir(model, real, path, step, op)
        for name, n in sorted(d.children.items()):
            p = path + (name,)
            if isinstance(n, fsmodel.Dir):
                walk(n, p)
                continue
            exp = model.stat(p)
            err, val = real.do(["stat", list(p)])
            if not same(exp, err, val, ["stat"]):
                raise Failure(step, op, "stat differs: %r" % ("/" + "/".join(p)),
                              "want %s, got %s %s" % (exp.describe(), ename(err), short(val)))
            try:
                signal.alarm(OP_TIMEOUT)
                with open(real.p(p), "rb") as f:
                    body, rerr = f.read(), 0
            except OSError as e:
                body, rerr = None, e.errno
            finally:
                signal.alarm(0)
            if model.busy(p):
                if rerr != errno.EBUSY:
                    raise Failure(step, op, "open of a file being written differs: %r"
                                  % ("/" + "/".join(p)),
                                  "want EBUSY, got %s" % ename(rerr))
            elif rerr != 0 or body != n.obj.data:
                raise Failure(step, op, "bytes differ: %r" % ("/" + "/".join(p)),
                              "want %s, got %s %s" % (short(n.obj.data), ename(rerr),
                                                       short(body)))
    signal.signal(signal.SIGALRM, _alarm)
    walk(tree, ())


def parents_of(call):
    k = call[0]
    if k in ("create", "open", "mkdir", "rmdir", "unlink", "mknod", "truncate"):
        return [tuple(call[1][:-1])]
    if k == "rename":
        return [tuple(call[1][:-1]), tuple(call[2][:-1])]
    return []


def run_ops(cfg, model, real, ops, log):
    """The steps of run_sequence on a live mount; returns the number run."""
    ran = 0
    s3, bucket = real.s3, real.bucket
    for i, op in enumerate(ops):
        if op[0] == "check":
            full_check(model, real, i, op)
            continue
        exp, call = apply_model(model, op)
        if exp is None:
            continue
        ran += 1
        real.ran = ran
        try:
            err, val = real.do(call)
        except Hung as e:
            raise Failure(i, op, "hung", str(e))
        except Exception as e:  # boto3 errors on put/delete
            raise Failure(i, op, "error", repr(e))
        if log:
            log("%3d %-60s want %-30s got %s %s" % (
                i, show_op(op)[:60], exp.describe()[:30], ename(err),
                short(val)[:40] if val is not None else ""))
        if not same(exp, err, val, call):
            raise Failure(i, op, "result differs: want %s, got %s"
                          % (exp.describe(), ename(err)), "got value %s" % short(val))
        if op[0] in REMOTE and cfg.ttl != "0":
            time.sleep(TTL_SLEEP)
        if op[0] in CHANGES:
            check_bucket(model, real, i, op)
            for d in parents_of(call):
                if model.lookup(d)[1] == 0:
                    check_dir(model, real, d, i, op)
    # the end: close what is open, then everything must agree
    for hid in model.open_handles():
        exp = model.close(hid)
        err, _ = real.do(["close", hid])
        if not exp.accepts(err, None):
            raise Failure(len(ops), ["close", hid], "close at the end: want %s, got %s"
                          % (exp.describe(), ename(err)), "")
    full_check(model, real, len(ops), None)
    ups = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    if ups:
        raise Failure(len(ops), None, "multipart uploads left open",
                      short([u["Key"] for u in ups]))
    return ran


def run_sequence(cfg, ops, log=None):
    """Run ops on a fresh bucket and mount. Returns (ops run, None) or raises
    Failure. log(msg) gets a line per step when given."""
    s3 = ht.s3_client()
    bucket = ht.fresh_bucket("m")
    model = cfg.model()
    ran = 0
    failure = None
    m = ht.Mount(bucket, cfg.mount_args(), check_exit=False)
    try:
        try:
            with m:
                real = Real(m.path, s3, bucket)
                try:
                    ran = run_ops(cfg, model, real, ops, log)
                except Failure as f:
                    f.stderr = m.stderr_text()
                    f.ran = real.ran
                    failure = f
                finally:
                    real.close_all()
        except AssertionError as e:  # the unmount failed, or the daemon hung in it
            if failure is None:
                failure = Failure(len(ops), None, "unmount failed",
                                  str(e).split("\ncommand:")[0])
                failure.stderr = m.stderr_text()
                failure.ran = ran
        if failure is None and m.returncode != 0:
            failure = Failure(len(ops), None, "hpcops-mount exited with %d" % m.returncode,
                              m.stderr_text()[-3000:])
            failure.ran = ran
    finally:
        try:
            ht.delete_bucket(bucket)
        except Exception:
            pass
    if failure is not None:
        raise failure
    return ran


# ---- shrinking ----

def shrink(cfg, ops, failure, budget):
    """Delta debugging (ddmin, removing chunks) over the operations up to
    the failing one, keeping only lists that fail the same way."""
    deadline = time.monotonic() + budget
    sig = failure.signature()
    best = ops[:failure.step + 1] if failure.step < len(ops) else list(ops)
    best_failure = failure
    tries = 0

    def fails(cand):
        nonlocal best_failure, tries
        tries += 1
        try:
            run_sequence(cfg, cand)
        except Failure as f:
            if f.signature() == sig:
                best_failure = f
                return True
        except Exception:
            return False
        return False

    n = 2
    while len(best) >= 2 and time.monotonic() < deadline:
        chunk = (len(best) + n - 1) // n
        reduced = False
        for i in range(0, len(best), chunk):
            if time.monotonic() >= deadline:
                break
            cand = best[:i] + best[i + chunk:]
            if cand and fails(cand):
                best = cand
                n = max(n - 1, 2)
                reduced = True
                break
        if not reduced:
            if n >= len(best):
                break
            n = min(2 * n, len(best))
    # and then the checks, one by one
    for i in reversed(range(len(best))):
        if time.monotonic() >= deadline:
            break
        if best[i][0] == "check" and len(best) > 1:
            cand = best[:i] + best[i + 1:]
            if fails(cand):
                best = cand
    return best, best_failure, tries


def report(cfg, ops, f):
    lines = ["seed %d, mount options: %s" % (cfg.seed, " ".join(cfg.mount_args())),
             "shortest failing sequence (%d operations):" % len(ops)]
    for i, op in enumerate(ops):
        mark = "  <-- %s" % f.what if i == f.step else ""
        lines.append("  %2d %s%s" % (i, show_op(op), mark))
    if f.step >= len(ops):
        lines.append("  at the end (close all, full check): %s" % f.what)
    lines.append("  %s" % f.detail)
    lines.append("replay: HPCOPS_MODEL_REPLAY='%s' %s" % (
        json.dumps({"cfg": cfg.to_json(), "ops": ops}).replace("'", "'\\''"),
        os.path.abspath(__file__)))
    err = getattr(f, "stderr", "")
    if err:
        lines.append("--- hpcops-mount stderr (last lines):")
        lines.extend(err.strip().splitlines()[-25:])
    return "\n".join(lines)


# ---- the tests ----

def parse_seeds(spec):
    out = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return out


def run_seeds(seeds, nops):
    t0 = time.monotonic()
    nseq = nran = 0
    failures = {}
    shrunk = 0
    for seed in seeds:
        cfg = Config.for_seed(seed)
        ops = Generator(cfg, nops).ops()
        nseq += 1
        try:
            nran += run_sequence(cfg, ops)
        except Failure as f:
            nran += getattr(f, "ran", 0)
            sig = f.signature()
            if sig in failures:
                failures[sig][1].append(seed)
                continue
            failures[sig] = [None, [seed]]
            if shrunk < SHRINK_MAX_FAILURES:
                shrunk += 1
                small, sf, tries = shrink(cfg, ops, f, SHRINK_BUDGET)
                failures[sig][0] = "%s\n(shrunk in %d runs)" % (report(cfg, small, sf), tries)
            else:
                failures[sig][0] = report(cfg, ops, f)
            print(failures[sig][0], flush=True)
    dt = time.monotonic() - t0
    print("model test: %d sequences, %d operations run on the mount, %.1f s; "
          "%d distinct failures" % (nseq, nran, dt, len(failures)), flush=True)
    if failures:
        raise AssertionError("the mount and the model disagree:\n" + "\n".join(
            "  %s %s: seeds %s" % (sig[0], sig[1], v[1]) for sig, v in failures.items()))


def test_model_seeds():
    ht.s3_env()
    seeds = parse_seeds(os.environ.get("HPCOPS_MODEL_SEEDS", "")) or CI_SEEDS
    count = int(os.environ.get("HPCOPS_MODEL_COUNT", "0"))
    if count:
        start = seeds[0] if os.environ.get("HPCOPS_MODEL_SEEDS") else \
            1000 + int(time.time()) % 1000000
        seeds = list(range(start, start + count))
        print("seeds %d-%d" % (seeds[0], seeds[-1]), flush=True)
    nops = int(os.environ.get("HPCOPS_MODEL_OPS", CI_OPS))
    replay = os.environ.get("HPCOPS_MODEL_REPLAY")
    if replay:
        j = json.loads(replay)
        cfg = Config.from_json(j["cfg"])
        try:
            run_sequence(cfg, j["ops"], log=print)
        except Failure as f:
            print(report(cfg, j["ops"], f))
            raise AssertionError("replayed sequence fails")
        return
    run_seeds(seeds, nops)


def test_model_catches_a_planted_bug():
    # The comparison itself must be able to fail: a model that wrongly
    # believes unlink works without --allow-delete must disagree with the
    # mount on a sequence that writes a file and unlinks it.
    ht.s3_env()
    cfg = Config(0, [], "0", False)

    class Wrong(fsmodel.Model):
        def unlink(self, path):
            self.allow_delete = True
            return super().unlink(path)
    saved = Config.model
    Config.model = lambda self: Wrong()
    try:
        ops = [["create", ["f"], "h1", "w"], ["write", "h1", 5, 1], ["close", "h1"],
               ["unlink", ["f"]]]
        try:
            run_sequence(cfg, ops)
        except Failure as f:
            ht.check_eq(f.step, 3, "step at which the planted bug is seen")
            return
        raise AssertionError("a wrong model agreed with the mount")
    finally:
        Config.model = saved


if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--seeds" in argv:
        i = argv.index("--seeds")
        os.environ["HPCOPS_MODEL_SEEDS"] = argv[i + 1]
        del argv[i:i + 2]
    if "--count" in argv:
        i = argv.index("--count")
        os.environ["HPCOPS_MODEL_COUNT"] = argv[i + 1]
        del argv[i:i + 2]
    if "--ops" in argv:
        i = argv.index("--ops")
        os.environ["HPCOPS_MODEL_OPS"] = argv[i + 1]
        del argv[i:i + 2]
    ht.main(argv)

# SPDX-License-Identifier: Apache-2.0
"""Helpers for hpcops' Python tests (suites s3, mount, launch).

Tests are plain scripts run by meson with /usr/bin/python3 (Debian's, which
has boto3). A test file looks like this:

    #!/usr/bin/python3
    import os, sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
    import hpcops_test as ht

    def test_read_back():
        env = ht.s3_env()                  # skips (77) when no radosgw
        bucket = ht.fresh_bucket()
        ht.s3_client().put_object(Bucket=bucket, Key="a", Body=b"hi")
        with ht.Mount(bucket, ["--read-only"]) as m:
            ht.check_eq(open(m.path + "/a", "rb").read(), b"hi")

    if __name__ == "__main__":
        ht.main()

main() runs every function named test_* in definition order (or only those
named on the command line), prints "ok NAME" / "FAIL NAME" with the
traceback, then "N passed, N failed, N skipped", and exits 1 when one
failed, 77 (meson: skipped) when all were skipped, else 0.

Server environment: scripts/rgw and scripts/slurm write DIR/env; scripts/test
sources both and sets HPCOPS_REQUIRE_SERVERS=1. When a needed variable is
missing, s3_env() / slurm_env() skip the whole test file (exit 77), or fail
it when HPCOPS_REQUIRE_SERVERS=1.

Register a test in tests/<suite>/meson.build like this:

    test('mount_read', find_program('/usr/bin/python3'),
         args: files('test_read.py'), env: test_env, suite: 'mount',
         is_parallel: false, timeout: 300)
"""

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid

SKIP = 77
_SRC = os.environ.get(
    "HPCOPS_SOURCE_ROOT",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))


class Skip(Exception):
    """Raised by skip(): the current test is skipped, not failed."""


def skip(why):
    """Skip the current test with a reason."""
    raise Skip(why)


def _missing_servers(what, names):
    msg = "%s not set up (missing %s): run the tests via scripts/test, or " \
          "start the server (scripts/%s start DIR) and source DIR/env" % (
              what, ", ".join(names), "rgw" if what == "radosgw" else "slurm")
    if os.environ.get("HPCOPS_REQUIRE_SERVERS") == "1":
        print("FAIL: " + msg, file=sys.stderr)
        sys.exit(1)
    print("skipped: " + msg, file=sys.stderr)
    sys.exit(SKIP)


class S3Env:
    """The radosgw test server, from the HPCOPS_S3_* variables.

    Attributes: endpoint, region, bucket (created empty by scripts/rgw),
    access_key, secret_key, rgw_dir, rgw_admin (list: argv prefix that runs
    radosgw-admin against this cluster).
    """

    def __init__(self):
        e = os.environ
        self.endpoint = e["HPCOPS_S3_ENDPOINT"]
        self.region = e["HPCOPS_S3_REGION"]
        self.bucket = e["HPCOPS_S3_BUCKET"]
        self.access_key = e["HPCOPS_S3_ACCESS_KEY"]
        self.secret_key = e["HPCOPS_S3_SECRET_KEY"]
        self.rgw_dir = e["HPCOPS_RGW_DIR"]
        self.rgw_admin = shlex.split(e["HPCOPS_RGW_ADMIN"])


_S3_VARS = ("HPCOPS_S3_ENDPOINT", "HPCOPS_S3_REGION", "HPCOPS_S3_BUCKET",
            "HPCOPS_S3_ACCESS_KEY", "HPCOPS_S3_SECRET_KEY", "HPCOPS_RGW_DIR",
            "HPCOPS_RGW_ADMIN")


def s3_env():
    """Return the S3Env; exit 77 (or 1 under HPCOPS_REQUIRE_SERVERS=1) if unset."""
    missing = [v for v in _S3_VARS if not os.environ.get(v)]
    if missing:
        _missing_servers("radosgw", missing)
    return S3Env()


def slurm_env():
    """Return HPCOPS_SLURM_DIR after checking SLURM_CONF is set; skip/fail if not.

    With SLURM_CONF in the environment, sbatch/squeue/scontrol and child
    processes talk to the test cluster. Pass --output=... to sbatch: jobs
    otherwise write slurm-%j.out in the current directory.
    """
    missing = [v for v in ("SLURM_CONF", "HPCOPS_SLURM_DIR")
               if not os.environ.get(v)]
    if missing:
        _missing_servers("Slurm", missing)
    return os.environ["HPCOPS_SLURM_DIR"]


def s3_client(access_key=None, secret_key=None):
    """A boto3 S3 client for the test server (SigV4, path-style, no retries).

    Defaults to the main test user's keys; pass others (see make_user).
    """
    import boto3
    from botocore.config import Config
    env = s3_env()
    return boto3.client(
        "s3", endpoint_url=env.endpoint, region_name=env.region,
        aws_access_key_id=access_key or env.access_key,
        aws_secret_access_key=secret_key or env.secret_key,
        config=Config(signature_version="s3v4",
                      s3={"addressing_style": "path"},
                      retries={"max_attempts": 1}))


def fresh_bucket(prefix="t"):
    """Create an empty bucket with a unique name and return the name.

    The bucket goes away with the server (scripts/rgw stop); tests need not
    delete it, but may call delete_bucket() to keep listings small.
    """
    name = "%s-%s" % (prefix, uuid.uuid4().hex[:16])
    s3_client().create_bucket(Bucket=name)
    return name


def delete_bucket(bucket):
    """Delete every object, pending multipart upload, and the bucket itself."""
    s3 = s3_client()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=bucket, Key=u["Key"],
                                  UploadId=u["UploadId"])
    s3.delete_bucket(Bucket=bucket)


def make_user(name):
    """Create (or re-create) S3 user NAME; return (access_key, secret_key).

    The user owns no bucket, so it gets AccessDenied on the test buckets.
    """
    env = s3_env()
    out = subprocess.run(
        [os.path.join(_SRC, "scripts", "rgw"), "user", env.rgw_dir, name],
        check=True, stdout=subprocess.PIPE, text=True).stdout.split()
    return out[0], out[1]


def rgw_admin(*args):
    """Run radosgw-admin ARGS against the test cluster; return its stdout."""
    return subprocess.run(s3_env().rgw_admin + list(args), check=True,
                          stdout=subprocess.PIPE, text=True).stdout


def check_eq(got, want, what=""):
    """Assert got == want with a message showing both (bytes shortened)."""
    if got != want:
        def short(x):
            r = repr(x)
            return r if len(r) < 200 else r[:200] + "... (%d long)" % len(x)
        raise AssertionError("%s: got %s, want %s" % (
            what or "value", short(got), short(want)))


def mounted(path):
    """True if PATH is a mount point in /proc/self/mountinfo."""
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            # mountinfo escapes space, tab, newline and backslash in octal
            mp = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)),
                        line.split()[4])
            if mp == path:
                return True
    return False


def metric_in_file(path, name):
    """The value of an unlabelled series in a Prometheus text file (a mount's
    --metrics-file), or None if the file or the series is not there."""
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[0] == name:
                    return float(parts[1])
    except FileNotFoundError:
        pass
    return None


def peak_rss_kib(pid):
    """The process' peak resident set size in KiB (VmHWM), or None if gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class Mount:
    """Context manager: run hpcops-mount in the foreground on a temp dir.

    with Mount(bucket, ["--allow-delete"]) as m:  m.path, m.pid, ...

    Runs $HPCOPS_MOUNT BUCKET DIR --endpoint-url E --force-path-style -f
    ARGS... (E: the radosgw endpoint, or endpoint= such as a FaultProxy's
    p.url), with the test user's keys in AWS_ACCESS_KEY_ID /
    AWS_SECRET_ACCESS_KEY and AWS_REGION set (pass env= to override or add
    variables; a value of None removes one). DIR is a fresh temp dir unless
    path= is given. Entering waits (up to timeout s) until DIR is a mount
    point; if the daemon exits first or time runs out, raises with the
    daemon's stderr. Leaving unmounts (fusermount3 -u, retried while busy,
    then -uz), waits for the daemon to exit, and raises if it exited
    non-zero (check_exit=False to allow that; m.returncode holds it).
    m.peak_rss_kib is the daemon's VmHWM read just before unmounting.
    """

    def __init__(self, bucket, args=(), path=None, env=None, timeout=20,
                 check_exit=True, endpoint=None):
        self.bucket = bucket
        self.endpoint = endpoint
        self.args = list(args)
        self.timeout = timeout
        self.check_exit = check_exit
        self._own_dir = path is None
        self.path = path or tempfile.mkdtemp(prefix="hpcops-mnt-")
        self._extra_env = env or {}
        self.proc = None
        self.pid = None
        self.returncode = None
        self.peak_rss_kib = None
        self._log = None
        self._log_text = None

    def argv(self):
        s3 = s3_env()
        exe = os.environ.get("HPCOPS_MOUNT")
        if not exe:
            raise AssertionError("HPCOPS_MOUNT is not set: run through meson "
                                 "(tests/meson.build sets it)")
        return [exe, self.bucket, self.path, "--endpoint-url",
                self.endpoint or s3.endpoint,
                "--force-path-style", "-f"] + self.args

    def stderr_text(self):
        """Everything the daemon wrote to stderr so far."""
        if self._log_text is not None:
            return self._log_text
        if self._log is None:
            return ""
        with open(self._log.name, errors="replace") as f:
            return f.read()

    def _fail(self, why):
        raise AssertionError("%s\ncommand: %s\n--- daemon stderr:\n%s" % (
            why, " ".join(shlex.quote(a) for a in self.argv()),
            self.stderr_text()[-6000:]))

    def __enter__(self):
        s3 = s3_env()
        env = dict(os.environ)
        for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN",
                  "AWS_WEB_IDENTITY_TOKEN_FILE"):
            env.pop(k, None)
        env.update(AWS_ACCESS_KEY_ID=s3.access_key,
                   AWS_SECRET_ACCESS_KEY=s3.secret_key,
                   AWS_REGION=s3.region)
        for k, v in self._extra_env.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        self._log = tempfile.NamedTemporaryFile(prefix="hpcops-mount-",
                                                suffix=".log", delete=False)
        self.proc = subprocess.Popen(self.argv(), env=env,
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log)
        self.pid = self.proc.pid
        deadline = time.monotonic() + self.timeout
        while not mounted(self.path):
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                self._cleanup_files()
                self._fail("hpcops-mount exited with status %d before "
                           "mounting %s" % (self.returncode, self.path))
            if time.monotonic() > deadline:
                self.proc.terminate()
                self._stop(unmount=False)
                self._cleanup_files()
                self._fail("%s not mounted after %d s" % (self.path,
                                                          self.timeout))
            time.sleep(0.05)
        return self

    def _stop(self, unmount=True):
        """Unmount and reap the daemon; return an error string or None."""
        err = None
        if unmount and mounted(self.path):
            for _ in range(50):
                r = subprocess.run(["fusermount3", "-u", self.path],
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
                if r.returncode == 0 or not mounted(self.path):
                    break
                time.sleep(0.1)  # busy: an fd still open for a moment
            else:
                err = "fusermount3 -u %s failed: %s; used -uz" % (
                    self.path, r.stdout.strip())
                subprocess.run(["fusermount3", "-uz", self.path])
        try:
            self.returncode = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.returncode = self.proc.wait()
            err = (err + "; " if err else "") + \
                "hpcops-mount did not exit within 30 s after unmount (killed)"
        if mounted(self.path):  # the daemon was killed with the mount live
            subprocess.run(["fusermount3", "-uz", self.path])
        return err

    def _cleanup_files(self):
        """Keep the daemon's stderr in memory; remove the log and our dir."""
        if self._log is not None and self._log_text is None:
            self._log_text = self.stderr_text()
            self._log.close()
            with contextlib.suppress(OSError):
                os.unlink(self._log.name)
        if self._own_dir:
            with contextlib.suppress(OSError):
                os.rmdir(self.path)

    def __exit__(self, exc_type, exc, tb):
        self.peak_rss_kib = peak_rss_kib(self.pid)
        err = self._stop()
        self._cleanup_files()
        if exc_type is not None:
            # the test already failed: add the daemon's view, keep its error
            sys.stderr.write("--- hpcops-mount stderr:\n%s\n"
                             % self.stderr_text()[-6000:])
            return False
        if err:
            self._fail(err)
        if self.check_exit and self.returncode != 0:
            self._fail("hpcops-mount exited with status %d after unmount"
                       % self.returncode)
        return False


@contextlib.contextmanager
def temp_dir(prefix="hpcops-t-"):
    """A temporary directory, removed afterwards."""
    d = tempfile.mkdtemp(prefix=prefix)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main(argv=None):
    """Run the caller's test_* functions; print a summary; exit 0/1/77."""
    argv = sys.argv[1:] if argv is None else argv
    mod = sys.modules["__main__"]
    tests = [(n, f) for n, f in vars(mod).items()
             if n.startswith("test_") and callable(f)]
    if argv:
        unknown = set(argv) - {n for n, _ in tests}
        if unknown:
            print("no such test: %s" % ", ".join(sorted(unknown)))
            sys.exit(2)
        tests = [(n, f) for n, f in tests if n in argv]
    passed = failed = skipped = 0
    for name, fn in tests:
        t0 = time.monotonic()
        try:
            fn()
        except Skip as e:
            skipped += 1
            print("skip %s: %s" % (name, e), flush=True)
            continue
        except SystemExit:
            raise  # s3_env()/slurm_env() deciding for the whole file
        except BaseException:
            failed += 1
            print("FAIL %s (%.1f s)" % (name, time.monotonic() - t0))
            traceback.print_exc(file=sys.stdout)
            sys.stdout.flush()
            if isinstance(sys.exc_info()[1], KeyboardInterrupt):
                break
            continue
        passed += 1
        print("ok %s (%.1f s)" % (name, time.monotonic() - t0), flush=True)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    if failed:
        sys.exit(1)
    if skipped and not passed:
        sys.exit(SKIP)
    sys.exit(0)

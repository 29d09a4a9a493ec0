# SPDX-License-Identifier: Apache-2.0
"""Plumbing for the launch suite: the CloudFormation double, running
hpcops-launch with the test servers' endpoints, and what a user checks
afterwards (records in the bucket, the stack gone, no jobs left in Slurm)."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import hpcops_test as ht  # noqa: E402

SRC = os.environ.get("HPCOPS_SOURCE_ROOT",
                     os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
TEMPLATE = os.path.join(SRC, "scripts", "cluster-template.yaml")
WORKLOAD = os.path.join(SRC, "scripts", "example-workload.sh")
DOUBLE = os.path.join(SRC, "tests", "doubles", "cfn_double.py")


def launch_exe():
    exe = os.environ.get("HPCOPS_LAUNCH")
    if not exe:
        raise AssertionError("HPCOPS_LAUNCH is not set: run through meson")
    return exe


class Double:
    """The CloudFormation double on a free loopback port (context manager).

    d.url, d.dir; d.control(**kw) scripts failures; d.requests() is the
    request log; d.cfn() a boto3 client on it (the user's view)."""

    def __init__(self, control=None, mount=False):
        self.dir = tempfile.mkdtemp(prefix="hpcops-cfn-")
        self.mount = mount  # play the compute nodes' hpcops-mount step
        self.proc = None
        self.url = None
        if control:
            self.control(**control)

    def control(self, **kw):
        path = os.path.join(self.dir, "control.json")
        cur = {}
        if os.path.exists(path):
            with open(path) as f:
                cur = json.load(f)
        cur.update(kw)
        with open(path + ".tmp", "w") as f:
            json.dump(cur, f)
        os.replace(path + ".tmp", path)

    def __enter__(self):
        env = dict(os.environ)
        env["HPCOPS_LAUNCH"] = launch_exe()
        self.log = open(os.path.join(self.dir, "double.log"), "ab")
        argv = ["/usr/bin/python3", DOUBLE, "--dir", self.dir]
        if self.mount:
            if not os.environ.get("HPCOPS_MOUNT"):
                raise AssertionError("HPCOPS_MOUNT is not set: run through meson")
            argv += ["--mount-command", os.environ["HPCOPS_MOUNT"]]
        self.proc = subprocess.Popen(argv,
                                     env=env, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        port_file = os.path.join(self.dir, "port")
        deadline = time.monotonic() + 60  # python starts slowly on a loaded machine
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("CloudFormation double did not start:\n" + self.tail())
            time.sleep(0.05)
        with open(port_file) as f:
            self.url = "http://127.0.0.1:%d" % int(f.read())
        return self

    def tail(self, name="double.log", n=4000):
        try:
            with open(os.path.join(self.dir, name), errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def head_node_log(self, stack):
        return self.tail("head-node-%s.log" % stack, 8000)

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if exc[0] is not None:
            sys.stderr.write("--- double log:\n%s\n" % self.tail())
        subprocess.run(["rm", "-rf", self.dir])
        return False

    def requests(self):
        out = []
        try:
            with open(os.path.join(self.dir, "requests.jsonl")) as f:
                for line in f:
                    out.append(json.loads(line))
        except OSError:
            pass
        return out

    def cfn(self):
        import boto3
        from botocore.config import Config
        s3 = ht.s3_env()
        return boto3.client("cloudformation", endpoint_url=self.url, region_name=s3.region,
                            aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key,
                            config=Config(retries={"max_attempts": 1}))

    def stacks(self):
        import urllib.request
        with urllib.request.urlopen(self.url + "/_double/stacks") as r:
            return json.load(r)


def launch_env(double=None):
    s3 = ht.s3_env()
    env = dict(os.environ)
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
              "AWS_ENDPOINT_URL", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
              "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        env.pop(k, None)
    env.update(AWS_ACCESS_KEY_ID=s3.access_key, AWS_SECRET_ACCESS_KEY=s3.secret_key,
               AWS_REGION=s3.region, AWS_ENDPOINT_URL_S3=s3.endpoint,
               AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    if double:
        env.update(AWS_ENDPOINT_URL_CLOUDFORMATION=double.url, AWS_ENDPOINT_URL_STS=double.url)
    return env


def run(args, double=None, timeout=200, check_rc=None):
    """Run hpcops-launch ARGS; return the CompletedProcess (text)."""
    p = subprocess.run([launch_exe()] + args, env=launch_env(double), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    if check_rc is not None and p.returncode != check_rc:
        raise AssertionError("hpcops-launch %s exited %d, want %d\n--- stdout:\n%s\n--- stderr:\n%s"
                             % (" ".join(args[:2]), p.returncode, check_rc, p.stdout[-4000:],
                                p.stderr[-6000:]))
    return p


def cfn_args(stack, bucket, mount_dir, extra=()):
    return ["run", "--stack-name", stack, "--template", TEMPLATE, "--bucket", bucket,
            "--parameter", "MountDir=" + mount_dir, "--poll-seconds", "0.3",
            "--max-minutes", "2"] + list(extra)


def json_out(p):
    try:
        return json.loads(p.stdout)
    except ValueError:
        raise AssertionError("stdout is not JSON:\n%s\n--- stderr:\n%s" % (p.stdout, p.stderr))


def get_json(bucket, key):
    body = ht.s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return json.loads(body)


def job_records(bucket, run_id):
    s3 = ht.s3_client()
    prefix = "_hpcops/runs/%s/jobs/" % run_id
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return sorted((get_json(bucket, k) for k in keys), key=lambda r: int(r["job_id"]))


def run_record(bucket, run_id):
    return get_json(bucket, "_hpcops/runs/%s/run.json" % run_id)


def check_stack_deleted(double, name):
    """What a user checks: describe-stacks says the stack does not exist."""
    from botocore.exceptions import ClientError
    try:
        st = double.cfn().describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as e:
        msg = e.response["Error"]["Message"]
        if "does not exist" not in msg:
            raise
        return
    raise AssertionError("stack %s still exists: %s" % (name, st["StackStatus"]))


def slurm_jobs_of(run_id):
    """Job ids still known to squeue (pending or running) for this run."""
    out = subprocess.run(["squeue", "-h", "-o", "%A|%k"], stdout=subprocess.PIPE, text=True,
                         check=True).stdout
    return [line.split("|")[0] for line in out.splitlines()
            if ("hpcops-run=%s" % run_id) in line]


def cancel_run_jobs(run_id):
    ids = slurm_jobs_of(run_id)
    if ids:
        subprocess.run(["scancel"] + ids)


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out after %d s waiting for %s" % (timeout, what))


def run_id_of(p):
    """The run id from `run`'s human stdout ("Run ID (...)") or JSON."""
    for line in p.stdout.splitlines():
        if line.startswith("Run "):
            return line.split()[1]
    return json_out(p)["run_id"]


@contextlib.contextmanager
def plain_dir():
    with ht.temp_dir("hpcops-out-") as d:
        yield d


def sigterm(proc):
    proc.send_signal(signal.SIGTERM)

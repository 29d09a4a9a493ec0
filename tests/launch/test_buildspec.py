#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# scripts/buildspec.yml run as CodeBuild runs it (codebuild_local.py: its
# phases' commands in one shell session, the project's environment over the
# buildspec's, CODEBUILD_* variables, artifacts collected), in a copy of the
# repository as CodePipeline hands it over (no .git), with CodeBuild's
# container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, served by
# tests/doubles/creds_double.py) and no other AWS credentials, against the
# CloudFormation double, the real radosgw and the real local Slurm.
# The first build compiles hpcops from the packaged tarball (as the
# buildspec does on CodeBuild); the second reuses that install.
import atexit
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import uuid

import yaml

sys.path.insert(0, os.path.dirname(__file__))
import codebuild_local as cb  # noqa: E402
import launch_lib as ll  # noqa: E402
from launch_lib import ht  # noqa: E402

SRC = ll.SRC
BUILDSPEC = "scripts/buildspec.yml"
NAME = "hpcops-t"                       # the pipeline template's Name
ROLE = "arn:aws:iam::123456789012:role/hpcops/hpcops-t-DeploymentRole-TEST"
WORK = tempfile.mkdtemp(prefix="hpcops-buildspec-")
PREFIX = os.path.join(WORK, "prefix")   # HPCOPS_PREFIX, shared by both builds
atexit.register(shutil.rmtree, WORK, True)


def source_tree(dest, specs):
    """The repository as CodePipeline's source artifact holds it: the files
    git knows (with their working-tree contents), no .git; plus the specs."""
    out = subprocess.run(["git", "-C", SRC, "ls-files", "-z", "--cached", "--others",
                          "--exclude-standard"], stdout=subprocess.PIPE, check=True).stdout
    for rel in sorted(set(out.decode().split("\0")) - {""}):
        src = os.path.join(SRC, rel)
        if not os.path.isfile(src):
            continue  # deleted in the working tree
        dst = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst)
    os.makedirs(os.path.join(dest, "ci"), exist_ok=True)
    for name, spec in specs.items():
        with open(os.path.join(dest, "ci", name), "w") as f:
            json.dump(spec, f, indent=1)


class CredsDouble:
    """creds_double.py handing out the radosgw user's keys as container
    credentials (the CloudFormation double and radosgw know only those)."""

    def __init__(self, s3):
        self.s3 = s3

    def __enter__(self):
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(SRC, "tests", "doubles", "creds_double.py"),
             "--region", self.s3.region, "--container-creds",
             "%s:%s" % (self.s3.access_key, self.s3.secret_key)],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            raise AssertionError("creds_double did not start: %r" % line)
        self.host = "127.0.0.1:%d" % int(line.split()[1])
        return self

    def stats(self):
        import urllib.request
        with urllib.request.urlopen("http://%s/_double/stats" % self.host) as r:
            return json.load(r)

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        return False


def codebuild_env(s3, double, creds, bucket, src, build_number, spec, home):
    """What CodeBuild sets in the build container, plus the project's
    environment variables the pipeline template sets."""
    build_id = "%s-launch:%s" % (NAME, uuid.uuid4())
    env = {
        # the container
        "PATH": os.environ["PATH"], "HOME": home, "LANG": "C.UTF-8", "TMPDIR": home,
        "AWS_REGION": s3.region, "AWS_DEFAULT_REGION": s3.region,
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/%s" % uuid.uuid4(),
        "CODEBUILD_BUILD_ID": build_id,
        "CODEBUILD_BUILD_ARN": "arn:aws:codebuild:%s:123456789012:build/%s" % (s3.region, build_id),
        "CODEBUILD_BUILD_NUMBER": str(build_number),
        "CODEBUILD_BUILD_IMAGE": "aws/codebuild/standard:7.0",
        "CODEBUILD_INITIATOR": "codepipeline/%s" % NAME,
        "CODEBUILD_SRC_DIR": src,
        "CODEBUILD_SOURCE_VERSION": "arn:aws:s3:::%s/%s/SourceOutp/%s.zip" % (bucket, NAME,
                                                                              uuid.uuid4().hex[:7]),
        "CODEBUILD_RESOLVED_SOURCE_VERSION": uuid.uuid4().hex,
        "CODEBUILD_START_TIME": "1764633600000",
        "CODEBUILD_LOG_PATH": build_id.split(":")[1],
        "CODEBUILD_KMS_KEY_ID": "arn:aws:kms:%s:123456789012:alias/aws/s3" % s3.region,
        # the project (scripts/pipeline-template.yaml, LaunchProject)
        "HPCOPS_NAME": NAME, "HPCOPS_BUCKET": bucket, "HPCOPS_SPEC": spec,
        "HPCOPS_SUBNET_ID": "subnet-0feedbeef", "HPCOPS_MAX_MINUTES": "2",
        "HPCOPS_DEPLOYMENT_ROLE_ARN": ROLE,
        "HPCOPS_PREFIX": PREFIX,  # the default /opt/hpcops is the build container's
        # this machine in place of AWS: endpoints, no IMDS, no config files,
        # the container endpoint on loopback (shared/creds's test host)
        "AWS_ENDPOINT_URL_S3": s3.endpoint,
        "AWS_ENDPOINT_URL_CLOUDFORMATION": double.url, "AWS_ENDPOINT_URL_STS": double.url,
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "HPCOPS_TEST_CONTAINER_CREDENTIALS_HOST": creds.host,
    }
    for k in ("SLURM_CONF", "HPCOPS_SLURM_DIR"):  # the head node's Slurm (the double runs it)
        if k in os.environ:
            env[k] = os.environ[k]
    return env


def spec_for(mnt, workloads):
    return {"provider": "cloudformation", "template": "scripts/cluster-template.yaml",
            "parameters": {"MountDir": mnt}, "mount_dir": mnt, "poll_seconds": 0.3,
            "workloads": workloads}


def run_build(label, mount):
    s3 = ht.s3_env()
    ht.slurm_env()
    bucket = ht.fresh_bucket("pipe")
    number = 100 + int(uuid.uuid4().int % 900000)
    stack = "%s-run-%d" % (NAME, number)
    run_id = "cb-%d" % number
    src = os.path.join(WORK, label, "src")
    home = os.path.join(WORK, label, "home")
    os.makedirs(src)
    os.makedirs(home)
    mnt = os.path.join(WORK, "mnt")  # one for both builds: the same source, the same tarball
    os.makedirs(mnt, exist_ok=True)
    # both builds get the same source (both specs), so the same tarball
    source_tree(src, {"good.json": spec_for(mnt, [{"name": "example", "command": ll.WORKLOAD}]),
                      "failing.json": spec_for(mnt, [{"name": "fine", "command": "true"},
                                                     {"name": "broken",
                                                      "command": "echo oops >&2; exit 3"}])})
    with CredsDouble(s3) as creds, ll.Double(mount=mount) as d:
        env = codebuild_env(s3, d, creds, bucket, src, number, "ci/%s.json" % label, home)
        res = cb.run(os.path.join(src, BUILDSPEC), src, env, os.path.join(WORK, label, "artifacts"),
                     os.path.join(WORK, label, "build.log"), timeout=800)
        try:
            ll.check_stack_deleted(d, stack)
            ht.check_eq(ht.mounted(mnt), False, "bucket still mounted at %s" % mnt)
            # hpcops got its credentials from CodeBuild's container endpoint, nowhere else
            if creds.stats()["container"] < 1:
                raise AssertionError("no request to the container credentials endpoint")
            creates = [r for r in d.requests() if r["action"] == "CreateStack" and r["status"] == 200]
            ht.check_eq([(r["stack"], r["role"]) for r in creates][:1], [(stack, ROLE)],
                        "CreateStack (stack, service role)")
        except AssertionError:
            sys.stderr.write("--- build log:\n%s\n--- head node:\n%s\n" % (
                res.log[-12000:], d.head_node_log(stack)))
            raise
    return res, bucket, stack, run_id, os.path.join(WORK, label, "artifacts")


def read_run_json(res, artifacts):
    ht.check_eq(res.artifacts, ["run.json"], "artifacts")
    with open(os.path.join(artifacts, "run.json")) as f:
        return json.load(f)


def test_good_run_exits_0_keeps_run_json_and_deletes_the_stack():
    res, bucket, stack, run_id, arts = run_build("good", True)
    try:
        ht.check_eq(res.phases, {"install": "SUCCEEDED", "pre_build": "SUCCEEDED",
                                 "build": "SUCCEEDED", "post_build": "SUCCEEDED"}, "phases")
        ht.check_eq(res.status, "SUCCEEDED", "build status")
        ht.check_eq(res.command_status('"$HPCOPS_PREFIX/bin/hpcops-launch" run'), 0, "exit status")
        doc = read_run_json(res, arts)
        ht.check_eq((doc["result"], doc["exit_code"], doc["stack_deleted"]), ("succeeded", 0, True),
                    "run.json result")
        ht.check_eq((doc["run_id"], doc["stack_name"], doc["bucket"]), (run_id, stack, bucket),
                    "run.json names")
        ht.check_eq([(j["name"], j["state"], j["exit_code"]) for j in doc["jobs"]],
                    [("example", "COMPLETED", 0)], "jobs")
        ht.check_eq(len(doc["outputs"]), 1, "outputs %s" % doc["outputs"])
        ht.check_eq(res.exported, {"HPCOPS_RUN_ID": run_id, "HPCOPS_STACK_NAME": stack,
                                   "HPCOPS_EXIT": "0"}, "exported variables")
        # nothing the alarm counts, not even CodeBuild's echo of the commands
        if "HPCOPS_STACK_LEFT" in res.log:
            raise AssertionError("the alarm's term is in a good run's log")
        # the stack name is one the CodeBuild role may create (pipeline template)
        if not fnmatch.fnmatch(stack, "%s-run-*" % NAME):
            raise AssertionError("stack %s outside the CodeBuild role's stack/NAME-run-*" % stack)
        # the flags reached hpcops-launch: its stored spec has them
        spec = ll.get_json(bucket, "_hpcops/runs/%s/spec.json" % run_id)
        boot = "s3://%s/bootstrap/%s/hpcops-node.sh" % (bucket, run_id)
        ht.check_eq((spec["parameters"].get("SubnetId"), spec["parameters"].get("HpcopsBootstrap"),
                     spec.get("role_arn"), spec.get("max_minutes")),
                    ("subnet-0feedbeef", boot, ROLE, 2), "stored spec")
        # the node bootstrap was published for this run, pointing at its tarball
        s3 = ht.s3_client()
        body = s3.get_object(Bucket=bucket, Key="bootstrap/%s/hpcops-node.sh" % run_id)["Body"].read()
        if b"\nSOURCE_KEY=bootstrap/%s/hpcops-src.tar.gz\n" % run_id.encode() not in body:
            raise AssertionError("published bootstrap does not install this run's tarball")
        tgz = os.path.join(WORK, "published.tar.gz")
        s3.download_file(bucket, "bootstrap/%s/hpcops-src.tar.gz" % run_id, tgz)
        with tarfile.open(tgz) as t:
            names = t.getnames()
        for want in ("meson.build", "launcher/main.c", "scripts/buildspec.yml", "ci/good.json"):
            if not any(n.split("/", 1)[-1] == want for n in names):
                raise AssertionError("%s not in the published tarball" % want)
        # the build built hpcops into the prefix, from that tarball
        with open(os.path.join(PREFIX, "share", "hpcops", "installed-from")) as f:
            stamp = f.read()
        if "source=" not in stamp or "hpcops-src.tar.gz" not in stamp:
            raise AssertionError("install stamp: %s" % stamp)
    except AssertionError:
        sys.stderr.write("--- build log:\n%s\n" % res.log[-12000:])
        raise
    ht.delete_bucket(bucket)


def test_failing_workload_fails_the_build_and_deletes_the_stack():
    res, bucket, stack, run_id, arts = run_build("failing", False)
    try:
        ht.check_eq(res.phases, {"install": "SUCCEEDED", "pre_build": "SUCCEEDED",
                                 "build": "FAILED", "post_build": "SUCCEEDED"}, "phases")
        ht.check_eq(res.status, "FAILED", "build status")
        ht.check_eq(res.command_status('"$HPCOPS_PREFIX/bin/hpcops-launch" run'), 1,
                    "exit status (hpcops-launch's, passed through)")
        if "not rebuilding" not in res.log:
            raise AssertionError("the same source was built again")
        doc = read_run_json(res, arts)
        ht.check_eq((doc["result"], doc["exit_code"], doc["stack_deleted"]), ("job_failed", 1, True),
                    "run.json result")
        jobs = {j["name"]: (j["state"], j["exit_code"]) for j in doc["jobs"]}
        ht.check_eq(jobs, {"fine": ("COMPLETED", 0), "broken": ("FAILED", 3)}, "jobs")
        ht.check_eq(res.exported.get("HPCOPS_EXIT"), "1", "exported HPCOPS_EXIT")
        if "hpcops-pipeline: result job_failed, stack deleted: True" not in res.log:
            raise AssertionError("post_build summary missing")
    except AssertionError:
        sys.stderr.write("--- build log:\n%s\n" % res.log[-12000:])
        raise
    ht.delete_bucket(bucket)


def test_exit_6_prints_what_the_alarm_counts():
    """Exit status 6 is the stack left behind: post_build's command for it,
    run as CodeBuild runs it after a build that exited 6, prints the term the
    template's metric filter counts, and the command's own text (which
    CodeBuild logs too) does not contain it."""
    import cfn_check
    doc, errs = cfn_check.load(os.path.join(SRC, "scripts", "pipeline-template.yaml"))
    ht.check_eq(errs, [], "template load")
    term = doc["Resources"]["StackLeftMetricFilter"]["Properties"]["FilterPattern"].strip('"')
    mf = doc["Resources"]["StackLeftMetricFilter"]["Properties"]["MetricTransformations"][0]
    al = doc["Resources"]["StackLeftAlarm"]["Properties"]
    ht.check_eq((al["Namespace"], al["MetricName"]), (mf["MetricNamespace"], mf["MetricName"]),
                "the alarm watches the filter's metric")
    with open(os.path.join(SRC, BUILDSPEC)) as f:
        bs = yaml.safe_load(f)
    text = "\n".join(c for ph in bs["phases"].values() for c in ph.get("commands") or [])
    if term in text:
        raise AssertionError("%s is in the buildspec's commands: CodeBuild's echo of them would "
                             "count on every build" % term)
    cmds = [c for c in bs["phases"]["post_build"]["commands"] if "HPCOPS_EXIT" in c]
    ht.check_eq(len(cmds), 1, "post_build commands looking at HPCOPS_EXIT")
    d = os.path.join(WORK, "exit6")
    os.makedirs(d)
    one = os.path.join(d, "buildspec.yml")
    for rc, counted in ((6, True), (1, False), (0, False)):
        with open(one, "w") as f:
            yaml.safe_dump({"version": 0.2, "env": {"shell": "bash"},
                            "phases": {"build": {"commands": ["HPCOPS_EXIT=%d" % rc, "(exit %d)" % rc]},
                                       "post_build": {"commands": cmds}}}, f)
        res = cb.run(one, d, {"PATH": os.environ["PATH"], "HPCOPS_STACK_NAME": "hpcops-t-run-7",
                              "HPCOPS_RUN_ID": "cb-7", "HPCOPS_DEPLOYMENT_ROLE_ARN": ROLE},
                     os.path.join(d, "art"), os.path.join(d, "log"), timeout=60)
        ht.check_eq(res.phases.get("post_build"), "SUCCEEDED", "post_build after exit %d" % rc)
        lines = [ln for ln in res.log.splitlines() if term in ln]
        if counted:
            ht.check_eq(len(lines), 1, "lines the alarm counts after exit 6:\n%s" % res.log)
            for want in ("stack=hpcops-t-run-7", "run=cb-7", "hpcops-launch down --stack-name "
                         "hpcops-t-run-7 --role-arn " + ROLE):
                if want not in lines[0]:
                    raise AssertionError("%r not in %r" % (want, lines[0]))
        else:
            ht.check_eq(lines, [], "lines the alarm counts after exit %d" % rc)


if __name__ == "__main__":
    ht.main()

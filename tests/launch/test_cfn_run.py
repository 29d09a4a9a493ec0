#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# hpcops-launch run end to end against the CloudFormation double (the one
# stand-in), the real radosgw and the real local Slurm: the double plays the
# head node and runs the template's `hpcops-launch submit`.
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import launch_lib as ll  # noqa: E402
from launch_lib import ht  # noqa: E402


def setup():
    ht.s3_env()
    ht.slurm_env()
    return ht.fresh_bucket("launch")


def test_good_run_outputs_through_the_mount():
    bucket = setup()
    # the double plays the template's compute-node step: hpcops-mount BUCKET MountDir
    with ll.plain_dir() as mnt, ll.Double(mount=True) as d:
        p = ll.run(ll.cfn_args("good", bucket, mnt, [
            "--workload", "first=" + ll.WORKLOAD, "--workload", "second=" + ll.WORKLOAD,
            "--json"]), d)
        if p.returncode != 0:
            raise AssertionError("exit %d\n%s\n%s\n--- head node:\n%s\n--- compute:\n%s" % (
                p.returncode, p.stdout, p.stderr[-5000:], d.head_node_log("good"),
                d.tail("compute-good.log")))
        # the cluster's mount went with the stack
        ht.check_eq(ht.mounted(mnt), False, "bucket still mounted at %s" % mnt)
        if "(compute node)" not in d.tail("compute-good.log"):
            raise AssertionError("the double did not mount: " + d.tail("compute-good.log"))
        doc = ll.json_out(p)
        ht.check_eq(doc["result"], "succeeded", "result")
        ht.check_eq(doc["stack_deleted"], True, "stack_deleted")
        run_id = doc["run_id"]
        ll.check_stack_deleted(d, "good")
        recs = ll.job_records(bucket, run_id)
        ht.check_eq(sorted(r["name"] for r in recs), ["first", "second"], "job records")
        for r in recs:
            ht.check_eq((r["state"], r["exit_code"]), ("COMPLETED", 0), "job %s" % r["name"])
            if not r["start"] or not r["end"] or r["end"] < r["start"] or not r["node"]:
                raise AssertionError("bad times/node in %s" % r)
        run = ll.run_record(bucket, run_id)
        ht.check_eq(run["state"], "COMPLETED", "run record state")
        ht.check_eq(run["written_by"], "teardown", "run record writer")
        # the outputs went through the mount into the bucket
        s3 = ht.s3_client()
        outs = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="output-")
                .get("Contents", [])]
        ht.check_eq(len(outs), 2, "output objects %s" % outs)
        ht.check_eq(sorted(o["key"] for o in doc["outputs"]), sorted(outs), "reported outputs")
        for k in outs:
            text = s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode()
            if "Cluster Stack Name good. Run %s" % run_id not in text:
                raise AssertionError("output %s says %r" % (k, text))
        # the log directory exists as an object, so every node's own mount sees it
        marker = s3.head_object(Bucket=bucket, Key="_hpcops/runs/%s/logs/" % run_id)
        ht.check_eq(marker["ContentLength"], 0, "logs/ marker size")
        # Slurm's output files went through the mount too
        for r in recs:
            key = "_hpcops/runs/%s/logs/%s-%s.err" % (run_id, r["name"], r["job_id"])
            log = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
            if "job %s (%s) COMPLETED, exit code 0" % (r["name"], r["job_id"]) not in log:
                raise AssertionError("%s says %r" % (key, log))
        # the teardown job deleted the stack with the termination role's credentials
        deletes = [r for r in d.requests() if r["action"] == "DeleteStack" and r["status"] == 200]
        if not any(r.get("key") == "temporary" for r in deletes):
            raise AssertionError("no DeleteStack with the termination role: %s" % deletes)
        assume = [r for r in d.requests() if r["action"] == "AssumeRole" and r["status"] == 200]
        ht.check_eq(len(assume) >= 1, True, "AssumeRole calls")


def test_failing_workload_exits_nonzero_and_deletes():
    bucket = setup()
    with ll.Double() as d, ll.plain_dir() as out:
        p = ll.run(ll.cfn_args("failing", bucket, out, [
            "--workload", "fine=true", "--workload", "broken=echo oops >&2; exit 3"]), d,
            check_rc=1)
        run_id = ll.run_id_of(p)
        ll.check_stack_deleted(d, "failing")
        recs = {r["name"]: r for r in ll.job_records(bucket, run_id)}
        ht.check_eq((recs["broken"]["state"], recs["broken"]["exit_code"]), ("FAILED", 3), "broken")
        ht.check_eq((recs["fine"]["state"], recs["fine"]["exit_code"]), ("COMPLETED", 0), "fine")
        ht.check_eq(ll.run_record(bucket, run_id)["state"], "FAILED", "run record")
        if "broken" not in p.stdout or "FAILED" not in p.stdout:
            raise AssertionError("report does not show the failed job:\n" + p.stdout)


def test_stuck_workload_past_budget_deletes_stack():
    bucket = setup()
    with ll.Double() as d, ll.plain_dir() as out:
        p = ll.run(ll.cfn_args("stuck", bucket, out, [
            "--workload", "stuck=sleep 600", "--max-minutes", "0.25"]), d, check_rc=4)
        run_id = ll.run_id_of(p)
        try:
            if "budget of 0.25 minutes exceeded" not in p.stderr:
                raise AssertionError("no budget message:\n" + p.stderr[-3000:])
            ll.check_stack_deleted(d, "stuck")
            # the cluster went with the stack: nothing of this run left in Slurm
            ll.wait_for(lambda: not ll.slurm_jobs_of(run_id), 30, "the run's jobs to be gone")
            recs = ll.job_records(bucket, run_id)
            ht.check_eq([r["state"] for r in recs], ["CANCELLED"], "job records %s" % recs)
            ht.check_eq(ll.run_record(bucket, run_id)["state"], "BUDGET_EXCEEDED", "run record")
        finally:
            ll.cancel_run_jobs(run_id)


def test_create_failed_prints_nested_reason_and_deletes():
    bucket = setup()
    why = "Failed to receive 1 resource signal(s) within the specified duration"
    with ll.Double({"fail_create": {"nested": True, "reason": why}}) as d, ll.plain_dir() as out:
        p = ll.run(ll.cfn_args("broken", bucket, out, ["--workload", "w=true"]), d, check_rc=3)
        for want in ("failed to create", "PclusterCluster", "HeadNodeWaitCondition", why):
            if want not in p.stderr:
                raise AssertionError("%r not in stderr:\n%s" % (want, p.stderr[-4000:]))
        ll.check_stack_deleted(d, "broken")
        # the rollback happened and the stack was deleted, nested stack included
        for st in d.stacks():
            ht.check_eq(st["StackStatus"], "DELETE_COMPLETE", "stack %s" % st["StackName"])
        ht.check_eq(d.head_node_log("broken"), "", "head node output (must not have run)")


def test_create_failed_top_level_resource():
    bucket = setup()
    why = "Resource handler returned message: \"The role is not authorized\""
    with ll.Double({"fail_create": {"resource": "NodePolicy", "reason": why}}) as d, \
            ll.plain_dir() as out:
        p = ll.run(ll.cfn_args("badpolicy", bucket, out, ["--workload", "w=true", "--json"]), d,
                   check_rc=3)
        doc = ll.json_out(p)
        ht.check_eq(doc["result"], "create_failed", "result")
        if "NodePolicy (AWS::IAM::ManagedPolicy)" not in doc["reason"] or why not in doc["reason"]:
            raise AssertionError("reason: %r" % doc["reason"])
        ht.check_eq(doc["stack_deleted"], True, "stack_deleted")
        ll.check_stack_deleted(d, "badpolicy")


def test_sigterm_during_wait_deletes_stack():
    bucket = setup()
    with ll.Double() as d, ll.plain_dir() as out:
        proc = subprocess.Popen([ll.launch_exe()] + ll.cfn_args("interrupted", bucket, out, [
            "--workload", "long=sleep 600", "--run-id", "sigterm-test-%d" % os.getpid()]),
            env=ll.launch_env(d), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        run_id = "sigterm-test-%d" % os.getpid()
        try:
            ll.wait_for(lambda: any(r["state"] == "RUNNING"
                                    for r in ll.job_records(bucket, run_id)),
                        90, "the workload to run")
            proc.terminate()
            stdout, stderr = proc.communicate(timeout=120)
            if proc.returncode != 5:
                raise AssertionError("exit %d, want 5\n%s\n%s" % (proc.returncode, stdout,
                                                                    stderr[-4000:]))
            if "interrupted" not in stderr:
                raise AssertionError("no interrupt message:\n" + stderr[-3000:])
            ll.check_stack_deleted(d, "interrupted")
            ll.wait_for(lambda: not ll.slurm_jobs_of(run_id), 30, "the run's jobs to be gone")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
            ll.cancel_run_jobs(run_id)


def test_sigterm_while_creating_deletes_stack():
    bucket = setup()
    with ll.Double({"step_seconds": 1.0}) as d, ll.plain_dir() as out:
        proc = subprocess.Popen([ll.launch_exe()] + ll.cfn_args("early", bucket, out, [
            "--workload", "w=true"]), env=ll.launch_env(d), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            ll.wait_for(lambda: any(s["StackName"] == "early" and
                                    s["StackStatus"] == "CREATE_IN_PROGRESS"
                                    for s in d.stacks()), 60, "the stack to be creating")
            proc.terminate()
            stdout, stderr = proc.communicate(timeout=120)
            if proc.returncode != 5:
                raise AssertionError("exit %d, want 5\n%s" % (proc.returncode, stderr[-3000:]))
            ll.check_stack_deleted(d, "early")
            ht.check_eq(d.head_node_log("early"), "", "head node output (must not have run)")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def test_up_then_wait_then_status():
    bucket = setup()
    with ll.Double() as d, ll.plain_dir() as out:
        up = ll.json_out(ll.run(["up", "--stack-name", "split", "--template", ll.TEMPLATE,
                                 "--bucket", bucket, "--parameter", "MountDir=" + out,
                                 "--poll-seconds", "0.3", "--workload", "w=exit 4", "--json"],
                                d, check_rc=0))
        run_id = up["run_id"]
        w = ll.run(["wait", "--stack-name", "split", "--run-id", run_id, "--bucket", bucket,
                    "--poll-seconds", "0.3", "--max-minutes", "2"], d, check_rc=1)
        if "w (FAILED, exit 4)" not in w.stdout:
            raise AssertionError("wait's report:\n" + w.stdout)
        ll.check_stack_deleted(d, "split")
        st = ll.json_out(ll.run(["status", "--stack-name", "split", "--run-id", run_id,
                                 "--bucket", bucket, "--json"], d, check_rc=0))
        ht.check_eq(st["stack_status"], "DELETE_COMPLETE", "stack status")
        ht.check_eq(st["run"]["state"], "FAILED", "run state")
        ht.check_eq([(j["name"], j["state"], j["exit_code"]) for j in st["jobs"]],
                    [("w", "FAILED", 4)], "jobs")


def test_throttled_api_is_retried():
    bucket = setup()
    with ll.Double({"throttle": 3, "server_error": 1}) as d, ll.plain_dir() as out:
        ll.run(ll.cfn_args("throttled", bucket, out, ["--workload", "w=true"]), d, check_rc=0)
        codes = [r.get("code") for r in d.requests()]
        ht.check_eq(codes.count("Throttling"), 3, "Throttling answers")
        ht.check_eq(codes.count("InternalFailure"), 1, "503 answers")
        ll.check_stack_deleted(d, "throttled")


def test_template_over_51200_bytes_goes_by_url():
    bucket = setup()
    with ll.Double() as d, ll.plain_dir() as out:
        big = os.path.join(out, "big-template.yaml")
        with open(ll.TEMPLATE) as f:
            text = f.read()
        with open(big, "w") as f:
            f.write(text + "".join("# padding line %05d to pass CloudFormation's 51,200-byte "
                                   "TemplateBody limit\n" % i for i in range(800)))
        if os.path.getsize(big) <= 51200:
            raise AssertionError("padding too small")
        p = ll.run(["run", "--stack-name", "big", "--template", big, "--bucket", bucket,
                    "--parameter", "MountDir=" + out, "--poll-seconds", "0.3",
                    "--workload", "w=true"], d, check_rc=0)
        run_id = ll.run_id_of(p)
        # CloudFormation fetched it from the bucket: the copy there is the file
        body = ht.s3_client().get_object(Bucket=bucket, Key="_hpcops/runs/%s/template" % run_id)[
            "Body"].read()
        with open(big, "rb") as f:
            ht.check_eq(body, f.read(), "template in the bucket")
        ll.check_stack_deleted(d, "big")


def test_wrong_secret_is_refused_and_reported():
    ht.s3_env()
    with ll.Double() as d:
        env = ll.launch_env(d)
        env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
        p = subprocess.run([ll.launch_exe(), "status", "--stack-name", "any"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        ht.check_eq(p.returncode, 3, "exit status")
        if "SignatureDoesNotMatch" not in p.stderr or "HTTP 403" not in p.stderr:
            raise AssertionError("stderr: %s" % p.stderr)
        ht.check_eq([r.get("code") for r in d.requests()], ["SignatureDoesNotMatch"], "requests")


def test_up_is_idempotent_and_down_deletes():
    bucket = setup()
    with ll.Double() as d, ll.plain_dir() as out:
        args = ["up", "--stack-name", "twice", "--template", ll.TEMPLATE, "--bucket", bucket,
                "--parameter", "MountDir=" + out, "--run-id", "idem-1", "--poll-seconds", "0.3",
                "--workload", "w=sleep 600", "--json"]
        a = ll.json_out(ll.run(args, d, check_rc=0))
        b = ll.json_out(ll.run(args, d, check_rc=0))
        ht.check_eq(a["stack_id"], b["stack_id"], "stack id of a repeated up")
        ht.check_eq(len([s for s in d.stacks() if s["StackName"] == "twice"]), 1, "stacks")
        st = ll.run(["status", "--stack-name", "twice", "--json"], d, check_rc=0)
        ht.check_eq(ll.json_out(st)["stack_status"], "CREATE_COMPLETE", "status")
        ll.run(["down", "--stack-name", "twice", "--poll-seconds", "0.3"], d, check_rc=0)
        ll.check_stack_deleted(d, "twice")
        ll.cancel_run_jobs("idem-1")
        p = ll.run(["down", "--stack-name", "twice"], d, check_rc=0)
        if "already deleted" not in p.stderr:
            raise AssertionError("down of a missing stack: %s" % p.stderr)


if __name__ == "__main__":
    ht.main()

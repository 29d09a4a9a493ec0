#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# What a real CloudFormation does to a failing run, against the double (the
# one stand-in; real radosgw, real Slurm): a failed creation deletes itself
# (OnFailure=DELETE), a DeleteStack refused during a slow rollback is
# waited out, a forced deletion that retains a resource fails the run and
# names it, --keep-on-failure keeps a failed stack only until the budget,
# and --dry-run creates nothing at all.
import json
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
    return ht.fresh_bucket("cfnfail")


def bucket_keys(bucket):
    return [o["Key"] for o in ht.s3_client().list_objects_v2(Bucket=bucket).get("Contents", [])]


def calls(d, action):
    return [r for r in d.requests() if r["action"] == action]


def test_dry_run_creates_nothing():
    bucket = setup()
    with ll.Double() as d, ll.plain_dir() as out:
        p = ll.run(ll.cfn_args("dry", bucket, out, [
            "--workload", "first=echo one", "--workload", "second=./solve --n 4",
            "--tag", "team=cfd", "--run-id", "dry-1", "--dry-run"]), d, check_rc=0)
        for want in ("Dry run: nothing is created", "CreateStack dry in",
                     "OnFailure: DELETE", "ClientRequestToken: hpcops-dry-1",
                     "MountDir=" + out, "RunId=dry-1   (filled in by hpcops)",
                     "ArtifactBucketName=%s   (filled in by hpcops)" % bucket,
                     "capabilities: CAPABILITY_IAM CAPABILITY_NAMED_IAM",
                     "tags: team=cfd hpcops:run-id=dry-1",
                     "sbatch --parsable '--job-name=first' '--comment=hpcops-stack=dry "
                     "hpcops-run=dry-1' '--output=%s/_hpcops/runs/dry-1/logs/first-%%j.out'" % out,
                     "'--job-name=second'", "'./solve --n 4'",
                     "'--dependency=afterany:<JOBID-first>:<JOBID-second>' "
                     "'--kill-on-invalid-dep=yes'",
                     " teardown --run-id 'dry-1' --bucket '%s'" % bucket):
            if want not in p.stdout:
                raise AssertionError("%r not in the dry run:\n%s" % (want, p.stdout))
        doc = ll.json_out(ll.run(ll.cfn_args("dry", bucket, out, [
            "--workload", "first=true", "--keep-on-failure", "--dry-run", "--json"]), d,
            check_rc=0))
        ht.check_eq((doc["dry_run"], doc["stack"]["on_failure"], doc["stack"]["stack_name"]),
                    (True, "DO_NOTHING", "dry"), "JSON dry run")
        ht.check_eq([j["name"] for j in doc["sbatch"]], ["first", "hpcops-teardown"], "sbatch")
        ht.check_eq(doc["stack"]["parameters"]["RunId"], doc["run_id"], "RunId")
        # nothing created: not a single request to CloudFormation, nothing in the bucket
        ht.check_eq(d.requests(), [], "requests to CloudFormation")
        ht.check_eq(d.stacks(), [], "stacks")
        ht.check_eq(bucket_keys(bucket), [], "objects in the bucket")
        # nor in Slurm, with --provider slurm
        p = ll.run(["run", "--provider", "slurm", "--bucket", bucket, "--log-dir", out,
                    "--run-id", "dry-2", "--workload", "w=exit 3", "--dry-run"], check_rc=0)
        if "sbatch --parsable '--job-name=w'" not in p.stdout or "'exit 3'" not in p.stdout:
            raise AssertionError(p.stdout)
        ht.check_eq(ll.slurm_jobs_of("dry-2"), [], "Slurm jobs of the dry run")
        ht.check_eq(bucket_keys(bucket), [], "objects in the bucket")


def test_failed_creation_deletes_itself():
    bucket = setup()
    why = "Resource handler returned message: \"subnet-0 does not exist\""
    with ll.Double({"fail_create": {"resource": "NodePolicy", "reason": why},
                    "step_seconds": 0.2}) as d, ll.plain_dir() as out:
        p = ll.run(ll.cfn_args("selfdel", bucket, out, ["--workload", "w=true", "--json"]), d,
                   check_rc=3)
        doc = ll.json_out(p)
        ht.check_eq((doc["result"], doc["stack_deleted"]), ("create_failed", True), "result")
        ht.check_eq([c.get("on_failure") for c in calls(d, "CreateStack")], ["DELETE"],
                    "CreateStack OnFailure")
        ll.check_stack_deleted(d, "selfdel")
        ht.check_eq([s["StackStatus"] for s in d.stacks()],
                    ["DELETE_COMPLETE"] * len(d.stacks()), "every stack")
        run = ll.run_record(bucket, doc["run_id"])
        ht.check_eq((run["state"], run["written_by"], run["stack_deleted"]), ("FAILED", "up", True),
                    "run record")
        if why not in run["reason"]:
            raise AssertionError("run record reason: %r" % run["reason"])


def test_slow_rollback_is_waited_out_then_deleted():
    """A stack the pipeline's own CloudFormation action made (OnFailure
    default: ROLLBACK) fails inside the cluster and rolls back slowly;
    `wait` follows it: CloudFormation refuses DeleteStack while
    ROLLBACK_IN_PROGRESS, hpcops waits it out and deletes it."""
    bucket = setup()
    with ll.Double({"fail_create": {"resource": "HeadNodeWaitCondition", "nested": True,
                                    "reason": "WaitCondition timed out"},
                    "step_seconds": 0.05, "rollback_seconds": 0.6}) as d, \
            ll.plain_dir() as out:
        with open(ll.TEMPLATE) as f:
            body = f.read()
        st = d.cfn().create_stack(
            StackName="rolling", TemplateBody=body, Capabilities=["CAPABILITY_IAM"],
            Parameters=[{"ParameterKey": "ArtifactBucketName", "ParameterValue": bucket},
                        {"ParameterKey": "RunId", "ParameterValue": "roll-1"},
                        {"ParameterKey": "MountDir", "ParameterValue": out}])
        p = ll.run(["wait", "--stack-name", "rolling", "--run-id", "roll-1", "--bucket", bucket,
                    "--poll-seconds", "0.3", "--max-minutes", "2"], d, check_rc=3)
        deletes = calls(d, "DeleteStack")
        refused = [r for r in deletes if r.get("code") == "ValidationError" and
                   "cannot be deleted while in status ROLLBACK_IN_PROGRESS" in r["message"]]
        if not refused:
            raise AssertionError("no refused DeleteStack: %s\n%s" % (deletes, p.stderr[-3000:]))
        accepted = [r for r in deletes if r["status"] == 200]
        if not accepted or accepted[-1]["time"] < refused[0]["time"]:
            raise AssertionError("no DeleteStack after the rollback: %s" % deletes)
        if "refused the deletion while ROLLBACK_IN_PROGRESS" not in p.stderr:
            raise AssertionError("no word of the wait:\n" + p.stderr[-3000:])
        ll.check_stack_deleted(d, "rolling")
        final = d.cfn().describe_stacks(StackName=st["StackId"])["Stacks"][0]["StackStatus"]
        ht.check_eq(final, "DELETE_COMPLETE", "the stack, by id")
        if "Stack rolling: deleted" not in p.stdout:
            raise AssertionError(p.stdout)


def test_forced_deletion_with_retained_resource_fails_and_names_it():
    bucket = setup()
    with ll.Double({"delete_failed": 1}) as d, ll.plain_dir() as out:
        p = ll.run(ll.cfn_args("sticky", bucket, out, ["--workload", "w=true"]), d,
                   check_rc=6)
        run_id = ll.run_id_of(p)
        forced = [r for r in calls(d, "DeleteStack") if r.get("mode") == "FORCE_DELETE_STACK"
                  and r["status"] == 200]
        ht.check_eq(len(forced), 1, "forced DeleteStack calls")
        ll.check_stack_deleted(d, "sticky")
        # what CloudFormation says it could not delete
        sid = [s["StackId"] for s in d.stacks() if s["StackName"] == "sticky"][0]
        evs = d.cfn().describe_stack_events(StackName=sid)["StackEvents"]
        failed = [e for e in evs if e["ResourceStatus"] == "DELETE_FAILED" and
                  e.get("PhysicalResourceId") != sid]
        ht.check_eq(len(failed), 1, "resources that failed to delete")
        e = failed[0]
        want = "RETAINED %s (%s) %s: %s" % (e["LogicalResourceId"], e["ResourceType"],
                                           e["PhysicalResourceId"], e["ResourceStatusReason"])
        if want not in p.stdout:
            raise AssertionError("%r not in the report:\n%s" % (want, p.stdout))
        if "may still cost money" not in p.stdout:
            raise AssertionError(p.stdout)
        run = ll.run_record(bucket, run_id)
        ht.check_eq(run["retained_resources"], [{
            "logical_id": e["LogicalResourceId"], "type": e["ResourceType"],
            "physical_id": e["PhysicalResourceId"], "reason": e["ResourceStatusReason"]}],
            "run record's retained resources")
        ht.check_eq(run["stack_deleted"], True, "run record stack_deleted")
        # the jobs themselves were fine: the exit status is the retained resource's
        ht.check_eq(run["state"], "COMPLETED", "run state")


def test_keep_on_failure_keeps_the_stack_until_the_budget():
    bucket = setup()
    budget_s = 24
    with ll.Double({"fail_create": {"resource": "NodePolicy", "reason": "quota"}}) as d, \
            ll.plain_dir() as out:
        t0 = time.time()
        proc = subprocess.Popen([ll.launch_exe()] + ll.cfn_args("kept", bucket, out, [
            "--workload", "w=true", "--keep-on-failure", "--max-minutes", str(budget_s / 60)]),
            env=ll.launch_env(d), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            seen = ll.wait_for(lambda: [s for s in d.stacks() if s["StackName"] == "kept" and
                                        s["StackStatus"] == "CREATE_FAILED"], 60,
                               "the stack to fail")
            # kept, with its resources, while the budget lasts
            time.sleep(max(0, t0 + budget_s - 6 - time.time()))
            ht.check_eq([s["StackStatus"] for s in d.stacks() if s["StackName"] == "kept"],
                        ["CREATE_FAILED"], "the stack %s before the budget" % seen)
            ht.check_eq(calls(d, "DeleteStack"), [], "DeleteStack before the budget")
            stdout, stderr = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        ht.check_eq(proc.returncode, 3, "exit status (stderr %s)" % stderr[-2000:])
        ht.check_eq([c.get("on_failure") for c in calls(d, "CreateStack")], ["DO_NOTHING"],
                    "CreateStack OnFailure")
        first_delete = calls(d, "DeleteStack")[0]["time"]
        t_del = time.mktime(time.strptime(first_delete[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
        if t_del < t0 + budget_s - 1:
            raise AssertionError("deleted %.1f s after the start, before the %d s budget"
                                 % (t_del - t0, budget_s))
        if "keeping the failed stack kept for debugging" not in stderr:
            raise AssertionError(stderr[-3000:])
        ll.check_stack_deleted(d, "kept")


if __name__ == "__main__":
    ht.main()

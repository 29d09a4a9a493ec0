#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Job records against the real local Slurm (--provider slurm, no stack):
# what a user reads in the bucket after success, failure and scancel.
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import launch_lib as ll  # noqa: E402
from launch_lib import ht  # noqa: E402


def slurm_run(bucket, logdir, workloads, extra=()):
    args = ["run", "--provider", "slurm", "--bucket", bucket, "--log-dir", logdir,
            "--poll-seconds", "0.3", "--max-minutes", "2"]
    for w in workloads:
        args += ["--workload", w]
    return args + list(extra)


def test_success_record():
    ht.slurm_env()
    bucket = ht.fresh_bucket("slurm")
    with ll.plain_dir() as logs:
        p = ll.run(slurm_run(bucket, logs, ["hello=echo hello from $HPCOPS_JOB_NAME"],
                             ["--json"]), check_rc=0)
        doc = ll.json_out(p)
        ht.check_eq(doc["result"], "succeeded", "result")
        ht.check_eq(doc["stack_name"], None, "stack (none with --provider slurm)")
        recs = ll.job_records(bucket, doc["run_id"])
        ht.check_eq(len(recs), 1, "job records")
        r = recs[0]
        ht.check_eq((r["name"], r["state"], r["exit_code"], r["node"]),
                    ("hello", "COMPLETED", 0, "localhost"), "record")
        ht.check_eq(r["run_id"], doc["run_id"], "run id in the record")
        if not (r["start"] and r["end"] and r["start"] <= r["end"]):
            raise AssertionError("times: %s" % r)
        # the job id is Slurm's: scontrol knows it as this job
        out = subprocess.run(["scontrol", "-o", "show", "job", r["job_id"]],
                             stdout=subprocess.PIPE, text=True, check=True).stdout
        if "JobName=hello" not in out or "JobState=COMPLETED" not in out:
            raise AssertionError("scontrol: %s" % out)
        with open(os.path.join(logs, "hello-%s.out" % r["job_id"])) as f:
            ht.check_eq(f.read().strip(), "hello from hello", "job output")
        run = ll.run_record(bucket, doc["run_id"])
        ht.check_eq((run["state"], [j["state"] for j in run["jobs"]]), ("COMPLETED", ["COMPLETED"]),
                    "run record")


def test_failure_record():
    ht.slurm_env()
    bucket = ht.fresh_bucket("slurm")
    with ll.plain_dir() as logs:
        p = ll.run(slurm_run(bucket, logs, ["bad=exit 7", "missing=/no/such/program"]),
                   check_rc=1)
        run_id = ll.run_id_of(p)
        recs = {r["name"]: r for r in ll.job_records(bucket, run_id)}
        ht.check_eq((recs["bad"]["state"], recs["bad"]["exit_code"]), ("FAILED", 7), "bad")
        ht.check_eq((recs["missing"]["state"], recs["missing"]["exit_code"]), ("FAILED", 127),
                    "missing")
        ht.check_eq(ll.run_record(bucket, run_id)["state"], "FAILED", "run record")
        for want in ("bad", "FAILED", "Result: job_failed"):
            if want not in p.stdout:
                raise AssertionError("%r not in the report:\n%s" % (want, p.stdout))


def test_cancelled_record():
    ht.slurm_env()
    bucket = ht.fresh_bucket("slurm")
    run_id = "cancel-%d" % os.getpid()
    with ll.plain_dir() as logs:
        proc = subprocess.Popen([ll.launch_exe()] + slurm_run(
            bucket, logs, ["sleeper=sleep 600"], ["--run-id", run_id]),
            env=ll.launch_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            rec = ll.wait_for(lambda: [r for r in ll.job_records(bucket, run_id)
                                       if r["state"] == "RUNNING"], 60, "the job to run")[0]
            subprocess.run(["scancel", rec["job_id"]], check=True)   # the user cancels it
            stdout, stderr = proc.communicate(timeout=90)
            ht.check_eq(proc.returncode, 1, "exit status (stderr: %s)" % stderr[-2000:])
            r = ll.job_records(bucket, run_id)[0]
            ht.check_eq((r["state"], r["exit_code"]), ("CANCELLED", 143), "record")
            run = ll.run_record(bucket, run_id)
            ht.check_eq((run["state"], run["jobs"][0]["state"]), ("FAILED", "CANCELLED"),
                        "run record")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
            ll.cancel_run_jobs(run_id)


def test_cancelled_while_pending_is_recorded_by_teardown():
    ht.slurm_env()
    bucket = ht.fresh_bucket("slurm")
    run_id = "pending-%d" % os.getpid()
    with ll.plain_dir() as logs:
        # held jobs never start: only the teardown job can write their record
        proc = subprocess.Popen([ll.launch_exe()] + slurm_run(
            bucket, logs, [], ["--run-id", run_id]) +
            ["--spec", write_spec(logs, {"workloads": [{"name": "held", "command": "true",
                                                        "sbatch_args": ["--hold"]}]})],
            env=ll.launch_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            ll.wait_for(lambda: ll.slurm_jobs_of(run_id), 30, "the held job")
            time.sleep(0.5)
            held = [j for j in ll.slurm_jobs_of(run_id)]
            subprocess.run(["scancel", "--name", "held", "--state", "PENDING"], check=True)
            stdout, stderr = proc.communicate(timeout=90)
            ht.check_eq(proc.returncode, 1, "exit status (stderr: %s)" % stderr[-2000:])
            recs = ll.job_records(bucket, run_id)
            ht.check_eq([(r["name"], r["state"], r.get("written_by"))
                         for r in recs], [("held", "CANCELLED", "teardown")],
                        "records (jobs %s)" % held)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
            ll.cancel_run_jobs(run_id)


def write_spec(d, doc):
    import json
    path = os.path.join(d, "spec.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


if __name__ == "__main__":
    ht.main()

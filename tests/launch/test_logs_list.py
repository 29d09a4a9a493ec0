#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# A pipeline owner after a failed run, with the real radosgw, a real
# hpcops-mount and the real local Slurm: the report shows the last lines of
# the failed job's log and where the rest is; `logs` prints that job's Slurm
# output from the bucket (and follows a running job's); `list` shows the
# runs recorded in the bucket, newest first.
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import launch_lib as ll  # noqa: E402
from launch_lib import ht  # noqa: E402

BROKEN = "echo 'reading case1'; echo 'solver diverged at step 17' >&2; exit 3"


def slurm_run(bucket, extra):
    return ["run", "--provider", "slurm", "--bucket", bucket, "--poll-seconds", "0.3",
            "--max-minutes", "2"] + extra


def test_failed_job_log_in_report_and_logs():
    ht.slurm_env()
    bucket = ht.fresh_bucket("logs")
    s3 = ht.s3_client()
    # the bucket mounted where the jobs write: Slurm's output files go through it
    with ht.Mount(bucket) as m:
        p = ll.run(slurm_run(bucket, ["--mount-dir", m.path, "--workload", "fine=echo all good",
                                      "--workload", "broken=" + BROKEN]), check_rc=1)
        run_id = ll.run_id_of(p)
        recs = {r["name"]: r for r in ll.job_records(bucket, run_id)}
        jid = recs["broken"]["job_id"]
        prefix = "_hpcops/runs/%s/logs/" % run_id
        err_key, out_key = prefix + "broken-%s.err" % jid, prefix + "broken-%s.out" % jid
        # the report: the failed job's last lines, and where the rest is
        for want in ("Log of failed job broken (%s):" % jid,
                     "s3://%s/%s" % (bucket, err_key), "| solver diverged at step 17",
                     "s3://%s/%s" % (bucket, out_key), "| reading case1",
                     "all of it: hpcops-launch logs %s broken --bucket %s" % (run_id, bucket)):
            if want not in p.stdout:
                raise AssertionError("%r not in the report:\n%s" % (want, p.stdout))
        if "Log of failed job fine" in p.stdout:
            raise AssertionError("a successful job's log in the report:\n" + p.stdout)
    err_obj = s3.get_object(Bucket=bucket, Key=err_key)["Body"].read().decode()
    out_obj = s3.get_object(Bucket=bucket, Key=out_key)["Body"].read().decode()

    # logs RUN JOB: that job's output, byte for byte what is in the bucket
    p = ll.run(["logs", run_id, "broken", "--bucket", bucket], check_rc=0)
    want = ("==> s3://%s/%s (job %s, broken, stdout) <==\n%s\n"
            "==> s3://%s/%s (job %s, broken, stderr) <==\n%s" % (
                bucket, out_key, jid, out_obj, bucket, err_key, jid, err_obj))
    ht.check_eq(p.stdout, want, "logs RUN broken")
    if "solver diverged at step 17" not in err_obj or out_obj != "reading case1\n":
        raise AssertionError("objects: %r %r" % (out_obj, err_obj))
    # by job id too; every job (and the teardown) without JOB
    ht.check_eq(ll.run(["logs", run_id, jid, "--bucket", bucket], check_rc=0).stdout, want,
                "logs RUN JOBID")
    every = ll.run(["logs", run_id, "--bucket", bucket], check_rc=0).stdout
    for w in ("all good", "solver diverged", "teardown-"):
        if w not in every:
            raise AssertionError("%r not in `logs RUN`:\n%s" % (w, every))
    # --lines 1: the last line of each file
    p = ll.run(["logs", run_id, "broken", "--lines", "1", "--bucket", bucket], check_rc=0)
    body = [line for line in p.stdout.splitlines() if not line.startswith("==>") and line]
    ht.check_eq(body, ["reading case1", err_obj.rstrip("\n").split("\n")[-1]], "--lines 1")
    # --json
    doc = ll.json_out(ll.run(["logs", run_id, "broken", "--bucket", bucket, "--json"],
                             check_rc=0))
    ht.check_eq([(x["stream"], x["text"], x["size"]) for x in doc["logs"]],
                [("out", out_obj, len(out_obj)), ("err", err_obj, len(err_obj))], "JSON logs")
    # a job with no log, a run that does not exist: exit 3, JSON errors
    for args, code, msg in (([run_id, "nosuch"], "not_found", "no log of job nosuch"),
                            (["no-such-run"], "not_found", "no run no-such-run")):
        p = ll.run(["logs"] + args + ["--bucket", bucket, "--json"], check_rc=3)
        doc = ll.json_out(p)
        ht.check_eq(doc["error"]["code"], code, "error code of logs %s" % args)
        if msg not in doc["error"]["message"]:
            raise AssertionError(doc)


def test_logs_follow_a_running_job():
    ht.slurm_env()
    bucket = ht.fresh_bucket("logs")
    run_id = "follow-%d" % os.getpid()
    with ll.plain_dir() as logdir:
        # a shared directory for the logs (--log-dir), where Slurm appends as the job runs
        runp = subprocess.Popen([ll.launch_exe()] + slurm_run(bucket, [
            "--log-dir", logdir, "--run-id", run_id,
            "--workload", "ticker=for i in 1 2 3; do echo tick $i; sleep 2; done"]),
            env=ll.launch_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        follow = None
        try:
            ll.wait_for(lambda: [r for r in ll.job_records(bucket, run_id)
                                 if r["state"] == "RUNNING"], 60, "the job to run")
            follow = subprocess.Popen([ll.launch_exe(), "logs", run_id, "ticker", "--follow",
                                       "--log-dir", logdir, "--bucket", bucket,
                                       "--poll-seconds", "0.3"],
                                      env=ll.launch_env(), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
            first = follow.stdout.readline() + follow.stdout.readline()
            # printed while the job still runs
            states = [r["state"] for r in ll.job_records(bucket, run_id)]
            if "tick 1" not in first or states != ["RUNNING"]:
                raise AssertionError("follow said %r while the job was %s" % (first, states))
            rest, err = follow.communicate(timeout=60)
            ht.check_eq(follow.returncode, 0, "logs --follow exit (stderr %s)" % err)
            ht.check_eq([line for line in (first + rest).splitlines() if line.startswith("tick")],
                        ["tick 1", "tick 2", "tick 3"], "followed output")
            runp.communicate(timeout=60)
            ht.check_eq(runp.returncode, 0, "run")
        finally:
            for proc in (runp, follow):
                if proc and proc.poll() is None:
                    proc.kill()
                    proc.communicate()
            ll.cancel_run_jobs(run_id)


def test_list_shows_runs_newest_first():
    ht.slurm_env()
    bucket = ht.fresh_bucket("list")
    # names whose alphabetical order is not their time order
    order = [("zeta-run", "exit 0"), ("alpha-run", "exit 2"), ("mid-run", "true")]
    with ll.plain_dir() as logs:
        for rid, cmd in order:
            ll.run(slurm_run(bucket, ["--log-dir", logs, "--run-id", rid,
                                      "--workload", "w=" + cmd]),
                   check_rc=1 if cmd == "exit 2" else 0)
            time.sleep(1.1)  # S3 times are whole seconds
    p = ll.run(["list", "--bucket", bucket], check_rc=0)
    rows = [line.split() for line in p.stdout.splitlines()[1:]]
    ht.check_eq([r[0] for r in rows], ["mid-run", "alpha-run", "zeta-run"], "run order")
    ht.check_eq([r[1] for r in rows], ["COMPLETED", "FAILED", "COMPLETED"], "states")
    ht.check_eq(rows[1][4:7], ["1", "(1", "failed)"], "jobs column of the failed run")
    doc = ll.json_out(ll.run(["list", "--bucket", bucket, "--json"], check_rc=0))
    ht.check_eq([r["run_id"] for r in doc["runs"]], ["mid-run", "alpha-run", "zeta-run"],
                "JSON order")
    for r in doc["runs"]:
        rec = ll.run_record(bucket, r["run_id"])
        ht.check_eq((r["state"], r["end"], r["jobs"], r["stack_name"]),
                    (rec["state"], rec["end"], 1, None), "row of %s" % r["run_id"])
        if not r["start"] or r["start"] > r["end"]:
            raise AssertionError(r)
    starts = [r["start"] for r in doc["runs"]]
    ht.check_eq(starts, sorted(starts, reverse=True), "starts, newest first")
    ht.check_eq([r["jobs_failed"] for r in doc["runs"]], [0, 1, 0], "failed jobs")
    doc = ll.json_out(ll.run(["list", "--bucket", bucket, "--json", "--limit", "2"],
                             check_rc=0))
    ht.check_eq(([r["run_id"] for r in doc["runs"]], doc["total"]),
                (["mid-run", "alpha-run"], 3), "--limit 2")


if __name__ == "__main__":
    ht.main()

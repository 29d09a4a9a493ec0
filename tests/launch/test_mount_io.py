#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Job records carry what each job did through the mount on its node, from
# the mount's Prometheus metrics file (hpcops-mount --metrics-file, rewritten
# atomically every few seconds). The mount's side lands separately, so the
# test plays it: a thread rewrites the file in the exposition format from
# counters the workloads bump (the I/O they "did"), with the noise a real
# file has (HELP/TYPE lines, other metrics, labels, timestamps). Real Slurm,
# real radosgw.
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import launch_lib as ll  # noqa: E402
from launch_lib import ht  # noqa: E402


class FakeMountMetrics:
    """Rewrites PATH every 1.5 s, as a mount does every few seconds (tmp
    file + rename), from the lines workloads append to LEDGER: "written N",
    "read N", "created N", "error ERRNO"."""

    BASE = {"written": 10_000_000_000, "read": 7_000_000, "created": 4242}

    def __init__(self, d):
        self.path = os.path.join(d, "mount.prom")
        self.ledger = os.path.join(d, "ledger")
        open(self.ledger, "w").close()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def counters(self):
        c = dict(self.BASE)
        errs = {"EIO": 3}
        with open(self.ledger) as f:
            for line in f:
                parts = line.split()
                if len(parts) != 2:
                    continue
                if parts[0] == "error":
                    errs[parts[1]] = errs.get(parts[1], 0) + 1
                else:
                    c[parts[0]] += int(parts[1])
        return c, errs

    def text(self):
        c, errs = self.counters()
        lines = [
            "# HELP hpcops_fs_bytes_written_total Bytes written through the mount.",
            "# TYPE hpcops_fs_bytes_written_total counter",
            'hpcops_fs_bytes_written_total{mount="/ArtifactBucket"} %d %d' % (
                c["written"], int(time.time() * 1000)),
            "# TYPE hpcops_fs_bytes_read_total counter",
            'hpcops_fs_bytes_read_total{mount="/ArtifactBucket",bucket="b"} %d' % c["read"],
            "hpcops_fs_bytes_read_totalx 99",
            "# a comment { with braces } 12",
            "hpcops_fs_files_created_total %d" % c["created"],
            "# TYPE hpcops_fs_errors_total counter",
        ] + ['hpcops_fs_errors_total{errno="%s",op="write"} %d' % (k, v) for k, v in errs.items()] + [
            'hpcops_fs_requests_total{op="PUT",status="200"} 123456',
            "hpcops_fs_inflight 3",
            'hpcops_fs_ttfb_seconds_bucket{le="+Inf"} 17',
            "hpcops_fs_bytes_written_total_created 1.7e9",
            "",
        ]
        return "\n".join(lines)

    def write(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(self.text())
        os.replace(tmp, self.path)

    def loop(self):
        while not self.stop.wait(1.5):
            self.write()

    def __enter__(self):
        self.write()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        return False


def slurm_run(bucket, logs, extra):
    return ["run", "--provider", "slurm", "--bucket", bucket, "--log-dir", logs,
            "--poll-seconds", "0.3", "--max-minutes", "3"] + extra


def test_job_alone_on_its_node_gets_exact_counts():
    ht.slurm_env()
    bucket = ht.fresh_bucket("mio")
    with ll.plain_dir() as d, FakeMountMetrics(d) as mm:
        io = ("echo 'written 4096' >> {l}; echo 'read 1000' >> {l}; sleep 1; "
              "echo 'created 2' >> {l}; echo 'written 10' >> {l}; echo 'error EIO' >> {l}; "
              "echo 'error ENOSPC' >> {l}").format(l=mm.ledger)
        p = ll.run(slurm_run(bucket, d, ["--mount-metrics", mm.path, "--workload", "w=" + io,
                                         "--json"]), check_rc=0)
        doc = ll.json_out(p)
        rec = ll.job_records(bucket, doc["run_id"])[0]
        got = rec.get("mount_io")
        ht.check_eq({k: got.get(k) for k in ("bytes_written", "bytes_read", "files_created",
                                             "errors", "errors_by_errno", "exact",
                                             "metrics_file")},
                    {"bytes_written": 4106, "bytes_read": 1000, "files_created": 2, "errors": 2,
                     "errors_by_errno": {"EIO": 1, "ENOSPC": 1}, "exact": True,
                     "metrics_file": mm.path}, "mount_io of the job record (%s)" % got)
        # the run record and the report carry it too
        ht.check_eq(ll.run_record(bucket, doc["run_id"])["jobs"][0]["mount_io"], got,
                    "run record")
        ht.check_eq(doc["jobs"][0]["mount_io"], got, "report")


def test_jobs_sharing_a_node_are_not_exact():
    ht.slurm_env()
    bucket = ht.fresh_bucket("mio")
    with ll.plain_dir() as d, FakeMountMetrics(d) as mm:
        a = "echo 'written 100' >> {l}; sleep 4".format(l=mm.ledger)
        b = "echo 'written 23' >> {l}; sleep 4".format(l=mm.ledger)
        env = ll.launch_env()
        env["HPCOPS_MOUNT_METRICS"] = mm.path  # the node's setting, not the spec's
        import subprocess
        p = subprocess.run([ll.launch_exe()] + slurm_run(bucket, d, [
            "--workload", "a=" + a, "--workload", "b=" + b, "--json"]),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=200)
        ht.check_eq(p.returncode, 0, "exit (stderr %s)" % p.stderr[-2000:])
        recs = {r["name"]: r for r in ll.job_records(bucket, ll.json_out(p)["run_id"])}
        starts = sorted(r["start"] for r in recs.values())
        for name, r in recs.items():
            io = r["mount_io"]
            ht.check_eq(io["exact"], False, "exact of %s (%s; starts %s)" % (name, io, starts))
            if "another job ran on" not in io.get("note", ""):
                raise AssertionError("no note on why: %s" % io)
            # both jobs' writes are in each job's counts: the node's mount counted them
            if io["bytes_written"] != 123:
                raise AssertionError("%s: %s" % (name, io))


def test_missing_metrics_file_is_said_not_invented():
    ht.slurm_env()
    bucket = ht.fresh_bucket("mio")
    with ll.plain_dir() as d:
        p = ll.run(slurm_run(bucket, d, ["--mount-metrics", os.path.join(d, "none.prom"),
                                         "--workload", "w=true", "--json"]), check_rc=0)
        rec = ll.job_records(bucket, ll.json_out(p)["run_id"])[0]
        io = rec["mount_io"]
        if "bytes_written" in io or "error" not in io:
            raise AssertionError(io)
        # without a metrics file configured, no mount_io at all
        p = ll.run(slurm_run(bucket, d, ["--workload", "w=true", "--json"]), check_rc=0)
        rec = ll.job_records(bucket, ll.json_out(p)["run_id"])[0]
        ht.check_eq(rec.get("mount_io"), None, "mount_io without a metrics file")


if __name__ == "__main__":
    ht.main()

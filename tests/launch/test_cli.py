#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# hpcops-launch's command line as a user meets it: help for each command
# with the exit codes, and clear errors (exit 2) for bad flags and specs.
# Needs no server.
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import launch_lib as ll  # noqa: E402
from launch_lib import ht  # noqa: E402


def launch(*args):
    env = dict(os.environ)
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return subprocess.run([ll.launch_exe()] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=30, env=env)


def test_help_of_every_command_documents_exit_codes():
    top = launch("--help")
    ht.check_eq(top.returncode, 0, "--help status")
    for cmd in ("run", "validate", "logs", "list", "up", "wait", "down", "status", "submit"):
        if cmd not in top.stdout:
            raise AssertionError("%s missing from --help" % cmd)
        p = launch(cmd, "--help")
        ht.check_eq(p.returncode, 0, "%s --help status" % cmd)
        for want in ("usage: hpcops-launch " + cmd, "Exit status", "4  budget", "--max-minutes",
                     "--json", "AWS_ENDPOINT_URL_CLOUDFORMATION"):
            if want not in p.stdout:
                raise AssertionError("%r not in `%s --help`" % (want, cmd))


def test_unknown_command_and_flag():
    p = launch("launch")
    ht.check_eq(p.returncode, 2, "unknown command")
    if 'unknown command "launch"' not in p.stderr:
        raise AssertionError(p.stderr)
    p = launch("run", "--max-minutes", "soon")
    ht.check_eq(p.returncode, 2, "bad number")
    if '--max-minutes "soon" is not a number' not in p.stderr:
        raise AssertionError(p.stderr)


def test_missing_pieces_say_what_to_add():
    cases = [
        (["run", "--workload", "a=true"], "bucket: missing: give --bucket"),
        (["run", "--bucket", "b", "--workload", "a=true"], "stack_name: missing: give --stack-name"),
        (["run", "--bucket", "b", "--stack-name", "s", "--workload", "a=true"],
         "template: give exactly one of --template FILE or --template-url"),
        (["run", "--provider", "slurm", "--bucket", "b"], "workloads: none: add --workload"),
        (["run", "--provider", "slurm", "--bucket", "b", "--workload", "x"],
         "expected NAME=COMMAND"),
        (["run", "--provider", "slurm", "--bucket", "b", "--workload", "a b=true"],
         "workloads[0].name: \"a b\" must be 1-64 letters"),
        (["run", "--provider", "slurm", "--bucket", "b", "--workload", "a=true",
          "--workload", "a=false"], "workloads[1].name: two workloads are named \"a\""),
        (["run", "--provider", "slurm", "--bucket", "b", "--workload", "a=true",
          "--max-minutes", "0"], "max_minutes: 0 is not a budget"),
        (["run", "--provider", "cloud", "--bucket", "b"], "use cloudformation or slurm"),
        (["run", "--bucket", "b", "--stack-name", "1bad", "--template", "t",
          "--workload", "a=true"], "stack_name: \"1bad\": CloudFormation wants a letter first"),
        (["wait", "--bucket", "b"], "give --run-id"),
        (["down"], "give --stack-name"),
        (["up", "--provider", "slurm", "--bucket", "b"], "nothing to do with --provider slurm"),
    ]
    for args, want in cases:
        p = launch(*args)
        if p.returncode != 2 or want not in p.stderr:
            raise AssertionError("%s: exit %d, stderr %r; want 2 and %r" % (
                args, p.returncode, p.stderr, want))


def test_bad_spec_files():
    with ht.temp_dir() as d:
        def spec(text):
            path = os.path.join(d, "spec.json")
            with open(path, "w") as f:
                f.write(text)
            return path
        cases = [
            ('{"bucket": "b", "workload": []}', 'workload: unknown field "workload"'),
            ('{"bucket": "b",', "line 1"),
            ('{"bucket": 5}', 'bucket: must be a string'),
            ('{"workloads": [{"name": "a"}]}', 'workloads[0].command: required'),
            ('{"workloads": [{"name": "a", "command": "x", "nodes": 0}]}',
             'workloads[0].nodes: must be a positive integer'),
            ('{"max_minutes": "ten"}', 'max_minutes: must be a number'),
            ('{"provider": "k8s"}', 'provider: "k8s": use "cloudformation" or "slurm"'),
        ]
        for text, want in cases:
            p = launch("run", "--spec", spec(text))
            if p.returncode != 2 or want not in p.stderr:
                raise AssertionError("%s: exit %d, stderr %r; want 2 and %r" % (
                    text, p.returncode, p.stderr, want))
        p = launch("run", "--spec", os.path.join(d, "nope.json"))
        if p.returncode != 2 or "cannot read launch spec" not in p.stderr:
            raise AssertionError(p.stderr)
        # flags win over the spec
        path = spec(json.dumps({"bucket": "b", "provider": "slurm",
                                "workloads": [{"name": "a", "command": "true"}],
                                "max_minutes": 5}))
        p = launch("run", "--spec", path, "--max-minutes", "-1")
        if p.returncode != 2 or "max_minutes: -1 is not a budget" not in p.stderr:
            raise AssertionError(p.stderr)


def test_closed_pipes_are_errors_not_a_kill():
    """stdout and stderr read by nobody (a CI step that stopped reading, a
    pager that quit): the launcher must end with its own exit status, not be
    killed by SIGPIPE before it can clean up."""
    env = dict(os.environ, AWS_EC2_METADATA_DISABLED="true", AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
               AWS_SECRET_ACCESS_KEY="not-used", AWS_REGION="us-east-1",
               AWS_MAX_ATTEMPTS="2")
    # Port 1 on loopback refuses at once: `down` reports an error on stderr
    # (after 2 attempts, not the 20 s a request may retry a refused endpoint).
    p = subprocess.Popen([ll.launch_exe(), "down", "--stack-name", "s",
                          "--cloudformation-endpoint-url", "http://127.0.0.1:1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    p.stdout.close()
    p.stderr.close()
    rc = p.wait(timeout=60)
    if rc < 0:
        raise AssertionError("hpcops-launch was killed by signal %d" % -rc)
    if rc == 0:
        raise AssertionError("down against a refused endpoint exited 0")


def test_errors_are_json_under_json():
    """--json anywhere on the line: an error is one JSON document on stdout,
    {"error": {"code", "message"}}, with the same exit status; the human line
    still goes to stderr."""
    env = dict(os.environ, AWS_EC2_METADATA_DISABLED="true", AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
               AWS_SECRET_ACCESS_KEY="not-used", AWS_REGION="us-east-1",
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    refused = "http://127.0.0.1:1"  # loopback port 1 refuses at once
    with ht.temp_dir() as d:
        bad_spec = os.path.join(d, "spec.json")
        with open(bad_spec, "w") as f:
            f.write('{"bucket": 5, "workloads": [{"name": "a"}]}')
        cases = [
            (["nope", "--json"], 2, "usage_error", 'unknown command "nope"'),
            (["run", "--json", "--max-minutes", "soon"], 2, "usage_error",
             '--max-minutes "soon" is not a number'),
            (["run", "--bogus", "--json"], 2, "usage_error", 'unknown option "--bogus"'),
            (["status", "--json", "--bucket"], 2, "usage_error", 'option "--bucket" needs a value'),
            (["run", "--json", "--workload", "a=true"], 2, "usage_error", "bucket: missing"),
            (["run", "--json", "--spec", bad_spec], 2, "usage_error", "bucket: must be a string"),
            (["logs", "--json", "--bucket", "b"], 2, "usage_error", "which run?"),
            (["list", "--json"], 2, "usage_error", "give --bucket"),
            (["submit", "--json"], 2, "usage_error", "needs --run-id"),
            (["validate", "--json", "--local", "--spec", bad_spec], 2, "invalid_spec", ""),
            (["status", "--json", "--stack-name", "s", "--cloudformation-endpoint-url", refused],
             3, "aws_error", "DescribeStacks"),
            (["down", "--json", "--stack-name", "s", "--poll-seconds", "0.1",
              "--cloudformation-endpoint-url", refused], 6, "stack_left", "DescribeStacks"),
        ]
        for args, rc, code, msg in cases:
            p = subprocess.run([ll.launch_exe()] + args, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=60, env=env)
            try:
                doc = json.loads(p.stdout)
            except ValueError:
                raise AssertionError("%s: stdout is not one JSON document: %r" % (args, p.stdout))
            if p.returncode != rc or doc.get("error", {}).get("code") != code or \
                    msg not in doc["error"].get("message", "") or doc.get("exit_code") != rc:
                raise AssertionError("%s: exit %d, document %s; want %d, %s, %r" % (
                    args, p.returncode, doc, rc, code, msg))
            if not p.stderr.strip():
                raise AssertionError("%s: nothing on stderr" % args)
        # validate's document lists every problem, not just the first
        p = subprocess.run([ll.launch_exe(), "validate", "--json", "--local", "--spec", bad_spec],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        paths = sorted(x["path"] for x in json.loads(p.stdout)["problems"])
        ht.check_eq(paths, ["bucket", "stack_name", "template", "workloads[0].command"],
                    "validate problems")


if __name__ == "__main__":
    ht.main()

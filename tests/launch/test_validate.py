#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# hpcops-launch validate as a pipeline author meets it: every problem of a
# launch spec and its template at once, each with its field path, then
# CloudFormation's ValidateTemplate (the double parses the template and
# answers its parameters and capabilities), and nothing created.
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import launch_lib as ll  # noqa: E402
from launch_lib import ht  # noqa: E402


def write(d, name, text):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def template_with(extra_params="", extra_resources=""):
    """The cluster template with more parameters / resources planted in it."""
    with open(ll.TEMPLATE) as f:
        text = f.read()
    if extra_params:
        text = text.replace("\nParameters:\n", "\nParameters:\n" + extra_params, 1)
    if extra_resources:
        text = text.replace("\nResources:\n", "\nResources:\n" + extra_resources, 1)
    return text


def validate(args, double=None, rc=None):
    p = ll.run(["validate"] + args, double, timeout=60)
    if rc is not None and p.returncode != rc:
        raise AssertionError("validate exited %d, want %d\n--- stdout:\n%s\n--- stderr:\n%s"
                             % (p.returncode, rc, p.stdout, p.stderr))
    return p


def test_every_planted_problem_is_reported_with_its_path():
    ht.s3_env()
    with ht.temp_dir() as d, ll.Double() as dbl:
        tmpl = write(d, "t.yaml", template_with(
            extra_params="  ExtraRequired:\n    Type: String\n"))
        spec = write(d, "spec.json", json.dumps({
            "stack_name": "1bad",
            "template": tmpl,
            "bucket": "b",
            "bukcet": "typo",
            "max_minutes": -5,
            "parameters": {"NoSuchParam": "x"},
            "capabilities": ["CAPABILITY_AUTO_EXPAND"],
            "tags": {"team": {"a": 1}},
            "workloads": [
                {"name": "ok", "command": "true"},
                {"name": "no command"},
                {"name": "dup", "command": "true", "nodes": 0},
                {"name": "dup", "command": ["x", 3]},
            ]}))
        p = validate(["--spec", spec], dbl, rc=2)
        want = [
            'bukcet: unknown field "bukcet"',
            "max_minutes: -5 is not a budget",
            'stack_name: "1bad": CloudFormation wants a letter first',
            "tags.team: must be a string or a number",
            "workloads[1].command: required",
            'workloads[1].name: "no command" must be 1-64 letters',
            "workloads[2].nodes: must be a positive integer",
            "workloads[3].command[1]: must be a string",
            'workloads[3].name: two workloads are named "dup" (also workloads[2])',
            # from ValidateTemplate's answer
            "parameters.NoSuchParam: the template has no parameter NoSuchParam",
            "parameters.ExtraRequired: the template's parameter ExtraRequired has no Default",
            "capabilities: the template needs CAPABILITY_IAM",
        ]
        lines = [line.strip() for line in p.stdout.splitlines()]
        for w in want:
            if not any(line.startswith(w) for line in lines):
                raise AssertionError("%r not reported:\n%s" % (w, p.stdout))
        if "%d problem(s)" % len(want) not in p.stdout:
            raise AssertionError("problem count (want %d):\n%s" % (len(want), p.stdout))
        calls = [r["action"] for r in dbl.requests()]
        ht.check_eq(calls, ["ValidateTemplate"], "requests to CloudFormation")
        ht.check_eq(dbl.stacks(), [], "stacks (validate creates none)")

        # the same under --json: one document, every problem with source and path
        doc = ll.json_out(validate(["--spec", spec, "--json"], dbl, rc=2))
        ht.check_eq(doc["valid"], False, "valid")
        ht.check_eq(doc["error"]["code"], "invalid_spec", "error code")
        paths = sorted(x["path"] for x in doc["problems"])
        ht.check_eq(paths, sorted(w.split(":")[0] for w in want), "problem paths")
        srcs = {x["path"]: x["source"] for x in doc["problems"]}
        ht.check_eq(srcs["parameters.NoSuchParam"], "cloudformation", "source of a cross-check")
        ht.check_eq(srcs["bukcet"], "spec", "source of a spec problem")


def test_template_error_only_cloudformation_sees():
    ht.s3_env()
    with ht.temp_dir() as d, ll.Double() as dbl:
        # a Ref to nothing: fine YAML, refused by ValidateTemplate
        tmpl = write(d, "t.yaml", template_with(extra_resources=(
            "  Orphan:\n    Type: AWS::SNS::Topic\n    Properties:\n"
            "      TopicName: !Ref NoSuchThing\n")))
        p = validate(["--template", tmpl, "--stack-name", "ok", "--bucket", "b",
                      "--workload", "w=true"], dbl, rc=2)
        want = ("template: ValidateTemplate: Template format error: Unresolved resource "
                "dependencies [NoSuchThing]")
        if want not in p.stdout:
            raise AssertionError("%r not reported:\n%s" % (want, p.stdout))
        # --local: the same template passes the local checks, and nobody is asked
        n = len(dbl.requests())
        p = validate(["--template", tmpl, "--stack-name", "ok", "--bucket", "b",
                      "--workload", "w=true", "--local"], dbl, rc=0)
        ht.check_eq(len(dbl.requests()), n, "requests with --local")


def test_local_template_checks():
    with ht.temp_dir() as d:
        tmpl = write(d, "t.yaml", "AWSTemplateFormatVersion: '2010-09-09'\n"
                     "Outptus:\n  X:\n    Value: 1\nResources:\n\tBad:\n    Type: AWS::SNS::Topic\n")
        p = validate(["--template", tmpl, "--stack-name", "ok", "--bucket", "b",
                      "--workload", "w=true", "--local"], rc=2)
        for w in ('template: %s: line 2: unknown top-level section "Outptus"' % tmpl,
                  "template: %s: line 6: a tab in the indentation" % tmpl):
            if w not in p.stdout:
                raise AssertionError("%r not reported:\n%s" % (w, p.stdout))
        js = write(d, "t.json", '{"Resources": {}, "Output": 1}')
        p = validate(["--template", js, "--stack-name", "ok", "--bucket", "b",
                      "--workload", "w=true", "--local"], rc=2)
        for w in ('unknown top-level section "Output"', "no Resources"):
            if w not in p.stdout:
                raise AssertionError("%r not reported:\n%s" % (w, p.stdout))
        p = validate(["--template", os.path.join(d, "none.yaml"), "--stack-name", "ok",
                      "--bucket", "b", "--workload", "w=true", "--local"], rc=2)
        if "template: cannot read template" not in p.stdout:
            raise AssertionError(p.stdout)


def test_good_spec_is_valid():
    ht.s3_env()
    with ht.temp_dir() as d, ll.Double() as dbl:
        spec = write(d, "spec.json", json.dumps({
            "stack_name": "good", "template": ll.TEMPLATE, "bucket": "b",
            "parameters": {"SubnetId": "subnet-1"},
            "workloads": [{"name": "a", "command": "true"}]}))
        p = validate(["--spec", spec], dbl, rc=0)
        for w in ("no problems found", "ValidateTemplate: accepted",
                  "parameter SubnetId = subnet-1", "parameter MountDir = /ArtifactBucket (default)",
                  "needs CAPABILITY_IAM", "Result: valid"):
            if w not in p.stdout:
                raise AssertionError("%r not in:\n%s" % (w, p.stdout))
        doc = ll.json_out(validate(["--spec", spec, "--json"], dbl, rc=0))
        ht.check_eq((doc["valid"], doc["problems"], doc["template"]["validated_by_cloudformation"]),
                    (True, [], True), "JSON")
        ht.check_eq(doc["template"]["capabilities_required"], ["CAPABILITY_IAM"], "capabilities")
        ht.check_eq(dbl.stacks(), [], "stacks")


if __name__ == "__main__":
    ht.main()

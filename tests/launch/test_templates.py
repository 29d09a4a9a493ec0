#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# The pipeline as code, checked before CloudFormation sees it (no servers):
# both templates through cfn_check.py (CloudFormation's resource
# specification, intrinsics, IAM policies, least privilege) and through
# cfn-lint when it is installed; each check fails on the error planted in
# tests/data/cfn-bad/ (each fixture lists what must be reported: `# expect:`);
# the launch specs against the spec's fields and the template's parameters;
# the least-privilege shape both templates promise; the GitHub Actions example.
import json
import os
import re
import shutil
import subprocess
import sys

import yaml

sys.path.insert(0, os.path.dirname(__file__))
import cfn_check  # noqa: E402
import launch_lib as ll  # noqa: E402
from launch_lib import ht  # noqa: E402

SRC = ll.SRC
CLUSTER = os.path.join(SRC, "scripts", "cluster-template.yaml")
PIPELINE = os.path.join(SRC, "scripts", "pipeline-template.yaml")
BAD = os.path.join(SRC, "tests", "data", "cfn-bad")
SPECS = [os.path.join(SRC, "launcher", "example-spec.json"),
         os.path.join(SRC, "scripts", "pipeline-spec.json")]
GHA = os.path.join(SRC, "scripts", "github-actions-example.yml")


def load(path):
    doc, errs = cfn_check.load(path)
    ht.check_eq(errs, [], "loading %s" % path)
    return doc


def expectations(path):
    with open(path) as f:
        return [m.group(1).strip() for m in re.finditer(r"^# expect: (.*)$", f.read(), re.M)]


# ------------------------------------------------------------------ the launch spec

SPEC_FIELDS = {"provider": str, "stack_name": str, "region": str, "template": str, "template_url": str,
               "parameters": dict, "capabilities": list, "tags": dict, "role_arn": str,
               "termination_role": str, "bucket": str, "mount_dir": str, "outputs_prefix": str,
               "run_id": str, "max_minutes": (int, float), "poll_seconds": (int, float),
               "workloads": list}
WORKLOAD_FIELDS = {"name": str, "command": (str, list), "time_limit": str, "nodes": int,
                   "sbatch_args": list, "env": dict}
# filled in by hpcops-launch (up) when the template has them
FILLED = {"RunId", "ArtifactBucketName"}


def check_launch_spec(path):
    """Errors of a launch spec (the fields of launcher/README.md), its
    template's existence and parameters."""
    errs = []
    with open(path) as f:
        try:
            s = json.load(f)
        except ValueError as e:
            return ["not JSON: %s" % e]
    for k, v in s.items():
        if k not in SPEC_FIELDS:
            errs.append("unknown field %s (known: %s)" % (k, ", ".join(sorted(SPEC_FIELDS))))
        elif not isinstance(v, SPEC_FIELDS[k]) or isinstance(v, bool):
            errs.append("%s must be %s" % (k, SPEC_FIELDS[k]))
    if s.get("provider", "cloudformation") not in ("cloudformation", "slurm"):
        errs.append("provider must be cloudformation or slurm")
    if "max_minutes" in s and not 0 < s["max_minutes"] <= 525600:
        errs.append("max_minutes must be above 0 and at most 525600")
    if "poll_seconds" in s and not 0.05 <= s["poll_seconds"] <= 3600:
        errs.append("poll_seconds must be 0.05 to 3600")
    names = set()
    for i, w in enumerate(s.get("workloads") or []):
        for k, v in w.items():
            if k not in WORKLOAD_FIELDS:
                errs.append("workloads[%d]: unknown field %s" % (i, k))
            elif not isinstance(v, WORKLOAD_FIELDS[k]) or isinstance(v, bool):
                errs.append("workloads[%d].%s must be %s" % (i, k, WORKLOAD_FIELDS[k]))
        n = w.get("name")
        if not isinstance(n, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", n):
            errs.append("workloads[%d]: name must be 1-64 of A-Z a-z 0-9 . _ -" % i)
        elif n in names:
            errs.append("workloads[%d]: name %s is not unique" % (i, n))
        names.add(n)
        if "command" not in w:
            errs.append("workloads[%d]: needs command" % i)
    if s.get("provider", "cloudformation") == "cloudformation":
        if ("template" in s) == ("template_url" in s):
            errs.append("needs exactly one of template and template_url")
        t = s.get("template")
        if isinstance(t, str):
            tp = os.path.join(SRC, t)
            if not os.path.isfile(tp):
                errs.append("template %s does not exist (relative to the repository)" % t)
            else:
                tparams = (load(tp).get("Parameters") or {})
                for k, v in (s.get("parameters") or {}).items():
                    if k not in tparams:
                        errs.append("parameter %s is not one of %s's: %s" % (k, t, ", ".join(tparams)))
                    elif not isinstance(v, (str, int, float, bool)):
                        errs.append("parameter %s must be a string, number or boolean" % k)
                for k, p in tparams.items():
                    if "Default" not in p and k not in FILLED and k not in (s.get("parameters") or {}):
                        errs.append("template parameter %s has no Default and no value" % k)
    return errs


# ------------------------------------------------------------------ tests

def test_both_templates_pass_every_check():
    for path in (CLUSTER, PIPELINE):
        ht.check_eq(cfn_check.check_file(path), [], "cfn_check %s" % os.path.basename(path))


def test_vendored_spec_covers_the_templates_and_says_where_it_came_from():
    spec, iam = cfn_check.load_data()
    if "@aws-cdk/aws-service-spec@" not in spec["source"]:
        raise AssertionError("resource-spec.json does not name its source: %s" % spec["source"])
    with open(os.path.join(SRC, "tests", "data", "cfn-spec", "iam.json")) as f:
        if "cfn-lint" not in json.load(f)["source"]:
            raise AssertionError("iam.json does not name its source")
    for path in (CLUSTER, PIPELINE):
        for name, r in load(path)["Resources"].items():
            t = r["Type"]
            if t.startswith("AWS::") and t not in spec["resources"]:
                raise AssertionError("%s (%s) not in resource-spec.json: run tests/data/cfn-spec/trim.py"
                                     % (t, name))


def test_each_planted_error_is_caught():
    fixtures = sorted(f for f in os.listdir(BAD) if f.endswith(".yaml"))
    if len(fixtures) < 20:
        raise AssertionError("only %d fixtures in %s" % (len(fixtures), BAD))
    spec, iam = cfn_check.load_data()
    for f in fixtures:
        path = os.path.join(BAD, f)
        want = expectations(path)
        if not want:
            raise AssertionError("%s says nothing it expects (# expect: ...)" % f)
        errs = cfn_check.check_file(path, spec, iam)
        for w in want:
            if not any(w in e for e in errs):
                raise AssertionError("%s: %r not reported; got:\n  %s" % (f, w, "\n  ".join(errs)))
        # nothing else is wrong with the fixture: it tests what it says
        other = [e for e in errs if not any(w in e for w in want)]
        ht.check_eq(other, [], "%s: errors besides the planted one" % f)


def test_main_cluster_template_fails_the_trust_check():
    """What this catches on main today: TerminationRole trusted the account."""
    doc = load(CLUSTER)
    doc["Resources"]["TerminationRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0][
        "Principal"] = {"AWS": {"Fn::Sub": "arn:aws:iam::${AWS::AccountId}:root"}}
    spec, iam = cfn_check.load_data()
    errs = cfn_check.Checker(doc, spec, iam).run()
    if not any("account-wide trust" in e for e in errs):
        raise AssertionError("the account-wide trust passed: %s" % errs)


def test_cfn_lint_when_installed():
    """cfn-lint (on the machine image's pip) is a second opinion with the full
    registry schemas: value ranges, enums, more rules."""
    exe = shutil.which("cfn-lint")
    if not exe:
        ht.skip("cfn-lint is not installed")
    p = subprocess.run([exe, CLUSTER, PIPELINE], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=100)
    if p.returncode != 0:
        raise AssertionError("cfn-lint exit %d:\n%s" % (p.returncode, p.stdout))
    # and it fails on a planted error too (so this check can fail)
    p = subprocess.run([exe, os.path.join(BAD, "bad-property.yaml")], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=100)
    if p.returncode == 0 or "AssumeRolePolicy" not in p.stdout:
        raise AssertionError("cfn-lint passed a wrong property name:\n%s" % p.stdout)


def test_launch_specs():
    for path in SPECS:
        ht.check_eq(check_launch_spec(path), [], "spec %s" % path)
    planted = {"spec-unknown-field.json": ["unknown field max_minute"],
               "spec-bad-parameter.json": ["parameter SubnetID is not one of"],
               "spec-bad-workload.json": ["name w is not unique", "workloads[1].nodes must be"],
               "spec-missing-template.json": ["template scripts/no-such-template.yaml does not exist",
                                              "max_minutes must be above 0"]}
    for f, want in planted.items():
        errs = check_launch_spec(os.path.join(BAD, f))
        for w in want:
            if not any(w in e for e in errs):
                raise AssertionError("%s: %r not reported: %s" % (f, w, errs))


def test_termination_role_is_trusted_by_the_compute_nodes_only():
    doc = load(CLUSTER)
    res = doc["Resources"]
    tr = res["TerminationRole"]["Properties"]
    stmts = tr["AssumeRolePolicyDocument"]["Statement"]
    ht.check_eq(len(stmts), 1, "trust statements")
    ht.check_eq(stmts[0]["Principal"], {"AWS": {"Fn::GetAtt": ["ComputeNodeRole", "Arn"]}}, "trusted")
    queue = res["PclusterCluster"]["Properties"]["ClusterConfiguration"]["Scheduling"]["SlurmQueues"][0]
    ht.check_eq(queue["Iam"], {"InstanceRole": {"Fn::GetAtt": ["ComputeNodeRole", "Arn"]}},
                "the compute queue runs with the trusted role")
    cn = res["ComputeNodeRole"]["Properties"]
    ht.check_eq(cn["AssumeRolePolicyDocument"]["Statement"][0]["Principal"],
                {"Service": {"Fn::Sub": "ec2.${AWS::URLSuffix}"}}, "node role is an instance role")
    ht.check_eq(cn["Path"], "/parallelcluster/", "ParallelCluster may pass only role/parallelcluster/*")
    ht.check_eq(res["NodePolicy"]["Properties"]["Path"], "/parallelcluster/",
                "ParallelCluster may attach only policy/parallelcluster/*")
    pol = tr["Policies"]
    ht.check_eq(len(pol), 1, "termination role policies")
    st = pol[0]["PolicyDocument"]["Statement"]
    ht.check_eq([(s["Effect"], sorted(s["Action"]), s["Resource"]) for s in st],
                [("Allow", ["cloudformation:DeleteStack", "cloudformation:DescribeStackEvents",
                            "cloudformation:DescribeStacks"],
                  {"Fn::Sub": "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}"
                              ":stack/${AWS::StackName}/*"})], "this stack only")
    assume = res["AssumeTerminationRole"]["Properties"]
    ht.check_eq((assume["Roles"], assume["PolicyDocument"]["Statement"][0]["Resource"]),
                ([{"Ref": "ComputeNodeRole"}], {"Fn::GetAtt": ["TerminationRole", "Arn"]}),
                "who may assume it")


def test_pipeline_template_promises():
    doc = load(PIPELINE)
    res = doc["Resources"]
    # the CodeBuild timeout is the budget plus build and deletion time
    p = doc["Parameters"]["MaxMinutes"]
    rows = doc["Mappings"]["Budget"]
    for m in p["AllowedValues"]:
        t = rows[str(m)]["TimeoutInMinutes"]
        ht.check_eq(t, 20 + m + 45, "CodeBuild timeout for a budget of %d minutes" % m)
        if not 5 <= t <= 480:
            raise AssertionError("TimeoutInMinutes %d outside CodeBuild's 5-480" % t)
    proj = res["LaunchProject"]["Properties"]
    ht.check_eq(proj["TimeoutInMinutes"], {"Fn::FindInMap": ["Budget", {"Ref": "MaxMinutes"},
                                                             "TimeoutInMinutes"]}, "timeout")
    ht.check_eq(proj["Source"]["BuildSpec"], "scripts/buildspec.yml", "buildspec")
    if not os.path.isfile(os.path.join(SRC, proj["Source"]["BuildSpec"])):
        raise AssertionError("the project's buildspec is not in the repository")
    # the buildspec gets every variable it needs from the project
    with open(os.path.join(SRC, "scripts", "buildspec.yml")) as f:
        bs = yaml.safe_load(f)
    cmds = "\n".join(c for ph in bs["phases"].values() for c in ph.get("commands") or [])
    used = set(re.findall(r"\$\{?(HPCOPS_[A-Z_]+)", cmds))
    given = {v["Name"] for v in proj["Environment"]["EnvironmentVariables"]} | set(bs["env"]["variables"])
    assigned = set(re.findall(r"^\s*(HPCOPS_[A-Z_]+)=", cmds, re.M))
    ht.check_eq(sorted(used - given - assigned), [], "variables the buildspec uses but nobody sets")
    # CodeBuild's role: stacks of this pipeline only, PassRole of the deployment role only
    stmts = {s["Sid"]: s for s in res["CodeBuildRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"]}
    cfn = stmts["ClusterStacksOfThisPipeline"]
    ht.check_eq(sorted(cfn["Action"]), ["cloudformation:CreateStack", "cloudformation:DeleteStack",
                                        "cloudformation:DescribeStackEvents",
                                        "cloudformation:DescribeStacks", "cloudformation:TagResource"],
                "CodeBuild's CloudFormation actions")
    if "stack/${Name}-run-*/*" not in cfn["Resource"]["Fn::Sub"]:
        raise AssertionError("CodeBuild's stacks: %s" % cfn["Resource"])
    if "${HPCOPS_NAME}-run-${CODEBUILD_BUILD_NUMBER}" not in cmds:
        raise AssertionError("the buildspec's stack name is not NAME-run-BUILD")
    passes = [s for s in stmts.values() if "iam:PassRole" in cfn_check.as_list(s["Action"])]
    ht.check_eq([s["Resource"] for s in passes], [{"Fn::GetAtt": ["DeploymentRole", "Arn"]}], "PassRole")
    for sid, s in stmts.items():
        if any(a.startswith("s3:") for a in cfn_check.as_list(s["Action"])):
            for r in cfn_check.as_list(s["Resource"]):
                if not r["Fn::Sub"].startswith("arn:${AWS::Partition}:s3:::${ArtifactBucketName}"):
                    raise AssertionError("%s: S3 outside the artifact bucket: %s" % (sid, r))
    # the deployment role is trusted by CloudFormation only
    trust = res["DeploymentRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    ht.check_eq([s["Principal"] for s in trust], [{"Service": "cloudformation.amazonaws.com"}], "deployer")
    # a source stage and the build stage running the project
    stages = res["Pipeline"]["Properties"]["Stages"]
    ht.check_eq([s["Name"] for s in stages], ["Source", "Launch"], "stages")
    act = stages[1]["Actions"][0]
    ht.check_eq((act["ActionTypeId"]["Provider"], act["Configuration"]["ProjectName"]),
                ("CodeBuild", {"Ref": "LaunchProject"}), "the build action")
    for out in ("PipelineName", "ArtifactBucket"):
        if out not in doc["Outputs"]:
            raise AssertionError("no output %s" % out)


def test_github_actions_example():
    with open(GHA) as f:
        wf = yaml.safe_load(f)
    ht.check_eq(wf["permissions"].get("id-token"), "write", "id-token permission (OIDC)")
    steps = [s for j in wf["jobs"].values() for s in j["steps"]]
    runs = [s for s in steps if "hpcops-launch" in s.get("run", "")]
    ht.check_eq(len(runs), 1, "steps running hpcops-launch")
    step = runs[0]
    env = dict(next(iter(wf["jobs"].values())).get("env") or {})
    env.update(step.get("env") or {})
    script = step["run"]
    for v in ("AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        if v not in env and v not in script:
            raise AssertionError("%s not set for the run step" % v)
    for want in ("ACTIONS_ID_TOKEN_REQUEST_URL", "audience=sts.amazonaws.com", "--json", "run.json"):
        if want not in script:
            raise AssertionError("the run step lacks %s" % want)
    # the step's shell script parses
    p = subprocess.run(["bash", "-n"], input=re.sub(r"\$\{\{[^}]*\}\}", "X", script), text=True,
                       stderr=subprocess.PIPE)
    ht.check_eq((p.returncode, p.stderr), (0, ""), "bash -n of the run step")


if __name__ == "__main__":
    ht.main()

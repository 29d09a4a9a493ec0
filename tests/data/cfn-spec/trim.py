#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Regenerates resource-spec.json, the CloudFormation resource specification
# trimmed to the resource types hpcops' templates use, from the pinned npm
# package @aws-cdk/aws-service-spec (Apache-2.0; its db.json.gz is built from
# CloudFormation's published resource schemas). tests/launch/cfn_check.py
# reads the trimmed file, so the tests need neither npm nor a network.
#
# It also writes iam.json: the IAM actions (with the resource types each
# applies to) and the resource types' ARN formats of the services in
# IAM_SERVICES, from cfn-lint's data/AdditionalSpecs/Policies.json (cfn-lint
# CFNLINT_VERSION, MIT-0, built from AWS's Service Authorization Reference;
# cfn-lint is on the machine image's pip, `pip 3.11 cfn-lint`).
#
# usage: tests/data/cfn-spec/trim.py [--db db.json.gz] [--policies Policies.json] [TEMPLATE...]
#   Without --db it runs `npm pack @aws-cdk/aws-service-spec@VERSION` in a
#   temporary directory (the npm registry is the only network it needs).
#   Without --policies it asks `python3.11 -c "import cfnlint"` where it is.
#   The types are those of the TEMPLATEs' Resources (default: both templates
#   in scripts/) plus EXTRA_TYPES below; Custom:: types are not in the spec.
import argparse
import gzip
import json
import os
import subprocess
import sys
import tarfile
import tempfile

import yaml

PACKAGE = "@aws-cdk/aws-service-spec"
VERSION = "0.1.216"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
TEMPLATES = [os.path.join(ROOT, "scripts", "cluster-template.yaml"),
             os.path.join(ROOT, "scripts", "pipeline-template.yaml")]
# used by the negative fixtures in tests/data/cfn-bad/ only
EXTRA_TYPES = []
CFNLINT_VERSION = "1.51.0"
IAM_SERVICES = ["cloudformation", "cloudwatch", "codebuild", "codeconnections", "codepipeline",
                "codestar-connections", "ec2", "events", "iam", "lambda", "logs", "s3", "sns", "sts"]


class AnyTag(yaml.SafeLoader):
    pass


AnyTag.add_multi_constructor("!", lambda loader, suffix, node: None)


def template_types(paths):
    types = set(EXTRA_TYPES)
    for p in paths:
        with open(p) as f:
            doc = yaml.load(f, Loader=AnyTag)
        for r in (doc.get("Resources") or {}).values():
            t = r.get("Type", "")
            if t.startswith("AWS::"):
                types.add(t)
    return sorted(types)


def fetch_db(tmp):
    subprocess.run(["npm", "pack", "--silent", "%s@%s" % (PACKAGE, VERSION)], cwd=tmp, check=True,
                   stdout=subprocess.DEVNULL)
    tgz = next(f for f in os.listdir(tmp) if f.endswith(".tgz"))
    with tarfile.open(os.path.join(tmp, tgz)) as t:
        t.extract("package/db.json.gz", tmp)
    return os.path.join(tmp, "package", "db.json.gz")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", help="db.json.gz of %s@%s (default: npm pack it)" % (PACKAGE, VERSION))
    ap.add_argument("--policies", help="cfn-lint %s data/AdditionalSpecs/Policies.json" % CFNLINT_VERSION)
    ap.add_argument("--out", default=os.path.join(HERE, "resource-spec.json"))
    ap.add_argument("--iam-out", default=os.path.join(HERE, "iam.json"))
    ap.add_argument("templates", nargs="*", default=TEMPLATES)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with gzip.open(a.db or fetch_db(tmp)) as f:
            db = json.load(f)
    resources = {e["cloudFormationType"]: e for e in db["schema"]["resource"]["entities"]}
    typedefs = {e["$id"]: e for e in db["schema"]["typeDefinition"]["entities"]}
    out_res, out_types = {}, {}

    def conv(t, owner):
        k = t["type"]
        if k == "ref":
            td = typedefs[t["reference"]["$ref"]]
            name = "%s.%s" % (owner, td["name"])
            if name not in out_types:
                out_types[name] = {}  # placeholder against recursion
                out_types[name] = {"properties": props(td["properties"], owner)}
            return {"type": "ref", "name": name}
        if k in ("array", "map"):
            return {"type": k, "element": conv(t["element"], owner)}
        if k == "union":
            return {"type": "union", "types": [conv(x, owner) for x in t["types"]]}
        return {"type": k}

    def props(ps, owner):
        out = {}
        for name, p in sorted(ps.items()):
            d = {"type": conv(p["type"], owner)}
            if p.get("required"):
                d["required"] = True
            if p.get("scrutinizable"):
                d["policy"] = p["scrutinizable"]
            out[name] = d
        return out

    for t in template_types(a.templates):
        if t not in resources:
            sys.exit("trim.py: %s is not in %s@%s" % (t, PACKAGE, VERSION))
        e = resources[t]
        out_res[t] = {"properties": props(e["properties"], t),
                      "attributes": sorted(e.get("attributes", {}))}
        if e.get("arnTemplate"):
            out_res[t]["arn"] = e["arnTemplate"]
    doc = {"source": "%s@%s db.json.gz (npm), trimmed by tests/data/cfn-spec/trim.py" % (PACKAGE, VERSION),
           "resources": out_res, "types": dict(sorted(out_types.items()))}
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")
    print("wrote %s: %d resource types, %d property types" % (a.out, len(out_res), len(out_types)))
    iam(a)


def iam(a):
    path = a.policies
    if not path:
        code = ("import cfnlint, os; from cfnlint.version import __version__ as v; "
                "print(v, os.path.dirname(cfnlint.__file__))")
        py = subprocess.run(["python3.11", "-c", code], stdout=subprocess.PIPE, text=True,
                            check=True).stdout.split()
        if py[0] != CFNLINT_VERSION:
            sys.exit("trim.py: cfn-lint %s found, want %s (or pass --policies)" % (py[0], CFNLINT_VERSION))
        path = os.path.join(py[1], "data", "AdditionalSpecs", "Policies.json")
    with open(path) as f:
        pol = json.load(f)
    out = {}
    for svc in IAM_SERVICES:
        d = pol[svc]
        out[svc] = {"actions": {k: sorted(v.get("Resources", [])) for k, v in sorted(d["Actions"].items())},
                    "resources": {k: v.get("ARNFormats", []) for k, v in sorted(d["Resources"].items())}}
    doc = {"source": "cfn-lint %s data/AdditionalSpecs/Policies.json, trimmed to %d services by "
                     "tests/data/cfn-spec/trim.py" % (CFNLINT_VERSION, len(out)),
           "services": out}
    with open(a.iam_out, "w") as f:
        json.dump(doc, f, indent=0, sort_keys=True)
        f.write("\n")
    print("wrote %s: %d services, %d actions" % (a.iam_out, len(out),
                                                  sum(len(v["actions"]) for v in out.values())))


if __name__ == "__main__":
    main()

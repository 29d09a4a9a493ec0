#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# CloudFormation test double (plus the STS AssumeRole it needs), on loopback.
# No offline CloudFormation exists, so this is the one stand-in the tests use:
# it checks SigV4 signatures and required parameters, walks stacks through
# real status transitions with realistic StackEvents, and at CREATE_COMPLETE
# plays the head node: it runs the template's OnNodeConfigured `submit`
# command (hpcops-launch) against the real local Slurm and the real bucket.
#
# usage: cfn_double.py --dir DIR [--port N] [--head-node-command CMD]
#   Writes DIR/port when listening, logs every request to DIR/requests.jsonl,
#   the head node's output to DIR/head-node-STACK.log. With --mount-command
#   (hpcops-mount) it also plays the compute nodes' `mount BUCKET DIR` step
#   at CREATE_COMPLETE and unmounts when the stack is deleted.
#   Re-reads DIR/control.json before each request; keys (all optional):
#     step_seconds    time per resource transition (default 0.1)
#     throttle        the next N requests answer Throttling "Rate exceeded"
#     server_error    the next N requests answer HTTP 503 InternalFailure
#     fail_create     {"resource": LOGICAL-ID, "reason": TEXT, "nested": bool}
#                     nested: the failure happens inside the cluster's stack
#     delete_failed   the next N DeleteStack walks end in DELETE_FAILED (one
#                     resource, a security group, role or bucket if there is
#                     one, cannot be deleted; FORCE_DELETE_STACK retains it)
#     rollback_seconds  time per resource while a failed creation rolls back
#                     (default step_seconds): DeleteStack is refused while
#                     the stack is ROLLBACK_IN_PROGRESS, as in CloudFormation
#   A counter is consumed by writing the decremented value back.
# CreateStack honours OnFailure (ROLLBACK, the default; DELETE; DO_NOTHING).
# ValidateTemplate parses the template, refuses unknown sections and
# unresolved Ref/GetAtt/Sub names, and answers its Parameters (with
# defaults), Description, Capabilities and CapabilitiesReason.
# Credentials accepted: --access-key/--secret-key (default from
# HPCOPS_S3_ACCESS_KEY/HPCOPS_S3_SECRET_KEY), and temporary ones it issued
# through AssumeRole of a stack's termination role, which may only
# DescribeStacks/DescribeStackEvents/DeleteStack on that one stack.

import argparse
import datetime
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

import yaml

ACCOUNT = "123456789012"
CFN_NS = "http://cloudformation.amazonaws.com/doc/2010-05-15/"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
LOCK = threading.RLock()
STACKS = {}        # stack id -> Stack
TEMP_CREDS = {}    # access key -> {"secret", "token", "stack_id", "role"}
ARGS = None


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


class ApiError(Exception):
    def __init__(self, status, code, message, sender=True):
        super().__init__(message)
        self.status, self.code, self.message, self.sender = status, code, message, sender


# ---------------------------------------------------------------- control

def control_take(key):
    """Return the control value for key; counters are decremented on disk."""
    path = os.path.join(ARGS.dir, "control.json")
    with LOCK:
        try:
            with open(path) as f:
                ctl = json.load(f)
        except (OSError, ValueError):
            return None
        v = ctl.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            ctl[key] = v - 1
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(ctl, f)
            os.replace(tmp, path)
        return v


def control_get(key, default=None):
    try:
        with open(os.path.join(ARGS.dir, "control.json")) as f:
            return json.load(f).get(key, default)
    except (OSError, ValueError):
        return default


def log_request(entry):
    with LOCK:
        with open(os.path.join(ARGS.dir, "requests.jsonl"), "a") as f:
            f.write(json.dumps(entry) + "\n")


# ---------------------------------------------------------------- templates

class Tagged:
    def __init__(self, tag, value):
        self.tag, self.value = tag, value


class CfnLoader(yaml.SafeLoader):
    pass


def _tag_ctor(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        v = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        v = loader.construct_sequence(node, deep=True)
    else:
        v = loader.construct_mapping(node, deep=True)
    name = suffix
    if name == "GetAtt" and isinstance(v, str):
        v = v.split(".", 1)
    return Tagged("Ref" if name == "Ref" else "Fn::" + name, v)


CfnLoader.add_multi_constructor("!", _tag_ctor)


def parse_template(body):
    try:
        doc = json.loads(body)
    except ValueError:
        try:
            doc = yaml.load(body, Loader=CfnLoader)
        except yaml.YAMLError as e:
            raise ApiError(400, "ValidationError", "Template format error: %s" % str(e).splitlines()[0])
    if not isinstance(doc, dict) or not isinstance(doc.get("Resources"), dict) or not doc["Resources"]:
        raise ApiError(400, "ValidationError",
                       "Template format error: At least one Resources member must be defined.")
    return doc


def resolve(v, ctx):
    """Evaluate the intrinsic functions the cluster template uses."""
    if isinstance(v, Tagged):
        v = {v.tag: v.value}
    if isinstance(v, list):
        return [resolve(x, ctx) for x in v]
    if not isinstance(v, dict):
        return v
    if len(v) == 1:
        (k, arg), = v.items()
        if k == "Ref":
            return ctx_ref(ctx, resolve(arg, ctx))
        if k == "Fn::GetAtt":
            arg = resolve(arg, ctx)
            return ctx_getatt(ctx, arg[0], arg[1])
        if k == "Fn::Sub":
            if isinstance(arg, list):
                tmpl, extra = arg[0], resolve(arg[1], ctx)
            else:
                tmpl, extra = arg, {}

            def sub(m):
                name = m.group(1)
                if name in extra:
                    return str(extra[name])
                if "." in name and not name.startswith("AWS::"):
                    r, a = name.split(".", 1)
                    return str(ctx_getatt(ctx, r, a))
                return str(ctx_ref(ctx, name))
            return re.sub(r"\$\{([^}!]+)\}", sub, tmpl)
        if k == "Fn::Join":
            sep, items = arg[0], resolve(arg[1], ctx)
            return sep.join(str(x) for x in items)
        if k == "Fn::Select":
            return resolve(arg[1], ctx)[int(resolve(arg[0], ctx))]
    return {k: resolve(x, ctx) for k, x in v.items()}


SECTIONS = {"AWSTemplateFormatVersion", "Description", "Metadata", "Parameters", "Rules", "Mappings",
            "Conditions", "Transform", "Resources", "Outputs"}
PSEUDO = {"AWS::StackName", "AWS::Region", "AWS::AccountId", "AWS::StackId", "AWS::Partition",
          "AWS::URLSuffix", "AWS::NoValue", "AWS::NotificationARNs"}


def needed_capability(tmpl):
    iam = [r for r, v in tmpl["Resources"].items() if isinstance(v, dict) and
           str(v.get("Type", "")).startswith("AWS::IAM::")]
    if not iam:
        return None
    named = any("RoleName" in (tmpl["Resources"][r].get("Properties") or {}) for r in iam)
    return "CAPABILITY_NAMED_IAM" if named else "CAPABILITY_IAM"


def validate_template(tmpl):
    """What ValidateTemplate refuses: unknown sections, names no Ref can resolve."""
    bad = sorted(k for k in tmpl if k not in SECTIONS)
    if bad:
        raise ApiError(400, "ValidationError", "Template format error: Invalid template property or "
                       "properties [%s]" % ", ".join(bad))
    known = set(tmpl["Resources"]) | set(tmpl.get("Parameters") or {}) | PSEUDO
    refs = set()

    def walk(v):
        if isinstance(v, Tagged):
            v = {v.tag: v.value}
        if isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for k, x in v.items():
                if k == "Ref" and isinstance(x, str):
                    refs.add(x)
                elif k == "Fn::GetAtt":
                    arg = x.split(".", 1) if isinstance(x, str) else x
                    if isinstance(arg, list) and arg and isinstance(arg[0], str):
                        refs.add(arg[0])
                elif k == "Fn::Sub":
                    tmpl_s, extra = (x[0], x[1]) if isinstance(x, list) else (x, {})
                    if isinstance(tmpl_s, str):
                        for name in re.findall(r"\$\{([^}!]+)\}", tmpl_s):
                            if name not in (extra or {}):
                                refs.add(name.split(".", 1)[0] if not name.startswith("AWS::") else name)
                    walk(extra)
                else:
                    walk(x)
    walk(tmpl["Resources"])
    walk(tmpl.get("Outputs") or {})
    missing = sorted(refs - known)
    if missing:
        raise ApiError(400, "ValidationError", "Template format error: Unresolved resource dependencies "
                       "[%s] in the Resources block of the template" % ", ".join(missing))


def ctx_ref(ctx, name):
    st = ctx
    pseudo = {"AWS::StackName": st.name, "AWS::Region": ARGS.region, "AWS::AccountId": ACCOUNT,
              "AWS::StackId": st.stack_id, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
              "AWS::NoValue": ""}
    if name in pseudo:
        return pseudo[name]
    if name in st.params:
        return st.params[name]
    if name in st.physical:
        return st.physical[name]
    return name


def ctx_getatt(ctx, res, attr):
    if attr == "Arn":
        return ctx.arn_of(res)
    return "%s.%s" % (ctx.physical.get(res, res), attr)


# ---------------------------------------------------------------- stacks

class Stack:
    def __init__(self, name, template, params, tags, token, role, on_failure, parent=None):
        self.name = name
        self.stack_id = "arn:aws:cloudformation:%s:%s:stack/%s/%s" % (
            ARGS.region, ACCOUNT, name, uuid.uuid4())
        self.template = template
        self.params = params
        self.tags = tags
        self.token = token
        self.role = role
        self.on_failure = on_failure or "ROLLBACK"
        self.parent = parent
        self.status = "CREATE_IN_PROGRESS"
        self.reason = ""
        self.created = now()
        self.deleted = None
        self.events = []            # oldest first
        self.physical = {}          # logical id -> physical id
        self.types = {}             # logical id -> type
        self.children = {}          # logical id -> child Stack
        self.delete_requested = None  # None or {"force": bool, "token": str}
        self.head_node = None       # Popen of the head node command
        self.mounts = []            # (dir, Popen) of the compute nodes' hpcops-mount
        self.outputs = []

    def arn_of(self, res):
        t = self.types.get(res, "")
        pid = self.physical.get(res, res)
        if t == "AWS::IAM::Role":
            return "arn:aws:iam::%s:role/%s" % (ACCOUNT, pid)
        if t == "AWS::S3::Bucket":
            return "arn:aws:s3:::%s" % pid
        return pid

    def event(self, logical, rtype, status, reason="", physical=None):
        with LOCK:
            self.events.append({
                "StackId": self.stack_id, "EventId": str(uuid.uuid4()), "StackName": self.name,
                "LogicalResourceId": logical, "PhysicalResourceId": physical if physical is not None else "",
                "ResourceType": rtype, "Timestamp": iso(now()), "ResourceStatus": status,
                "ResourceStatusReason": reason, "ClientRequestToken": self.token or ""})

    def stack_event(self, status, reason=""):
        with LOCK:
            self.status = status
            self.reason = reason
        self.event(self.name, "AWS::CloudFormation::Stack", status, reason, self.stack_id)


def step(rollback=False):
    secs = control_get("step_seconds", 0.1)
    if rollback:
        secs = control_get("rollback_seconds", secs)
    time.sleep(float(secs))


def physical_id(stack, logical, rtype):
    if rtype == "AWS::IAM::Role":
        return "%s-%s-%s" % (stack.name, logical, uuid.uuid4().hex[:12].upper())
    if rtype in ("AWS::CloudFormation::Stack", "Custom::PclusterCluster"):
        return None  # the child stack's id, set when it is made
    return "%s-%s-%s" % (stack.name, logical, uuid.uuid4().hex[:8])


PROVIDER_RESOURCES = [
    ("PclusterLambdaRole", "AWS::IAM::Role"),
    ("PclusterLayer", "AWS::Lambda::LayerVersion"),
    ("PclusterProviderFunction", "AWS::Lambda::Function"),
]

CLUSTER_RESOURCES = [
    ("HeadNodeSecurityGroup", "AWS::EC2::SecurityGroup"),
    ("ComputeSecurityGroup", "AWS::EC2::SecurityGroup"),
    ("HeadNode", "AWS::EC2::Instance"),
    ("HeadNodeWaitCondition", "AWS::CloudFormation::WaitCondition"),
    ("ComputeFleet", "Custom::ComputeFleet"),
]


def create_walk(stack, fail):
    """Create every resource in order; returns True on success."""
    res = stack.template["Resources"]
    done = []
    failed = None
    for logical, spec in res.items():
        rtype = spec.get("Type", "AWS::CloudFormation::CustomResource") if isinstance(spec, dict) else "?"
        stack.types[logical] = rtype
        if stack.delete_requested:
            failed = (logical, "Resource creation cancelled")
            break
        stack.event(logical, rtype, "CREATE_IN_PROGRESS")
        step()
        if rtype in ("AWS::CloudFormation::Stack", "Custom::PclusterCluster"):
            props = resolve(spec.get("Properties", {}), stack)
            cname = props.get("ClusterName") if isinstance(props, dict) else None
            cname = cname or "%s-%s-%s" % (stack.name, logical, uuid.uuid4().hex[:8].upper())
            child_fail = fail if fail and fail.get("nested") and rtype == fail.get(
                "via", "Custom::PclusterCluster") else None
            kids = CLUSTER_RESOURCES if rtype == "Custom::PclusterCluster" else PROVIDER_RESOURCES
            child = Stack(cname, {"Resources": {k: {"Type": t} for k, t in kids}},
                          {}, stack.tags, stack.token, None, "DO_NOTHING", parent=stack)
            with LOCK:
                STACKS[child.stack_id] = child
                stack.children[logical] = child
                stack.physical[logical] = child.stack_id
            stack.event(logical, rtype, "CREATE_IN_PROGRESS", "Resource creation Initiated", child.stack_id)
            child.stack_event("CREATE_IN_PROGRESS", "User Initiated")
            ok = create_walk(child, child_fail)
            if not ok:
                first = next(e for e in child.events if e["ResourceStatus"] == "CREATE_FAILED")
                child.stack_event("CREATE_FAILED", "The following resource(s) failed to create: [%s]. "
                                  % first["LogicalResourceId"])
                if rtype == "Custom::PclusterCluster":
                    why = ("Cluster creation failed: stack %s is in CREATE_FAILED, see its events."
                           % child.name)
                else:
                    why = ("Embedded stack %s was not successfully created: The following resource(s) "
                           "failed to create: [%s]. " % (child.stack_id, first["LogicalResourceId"]))
                stack.event(logical, rtype, "CREATE_FAILED", why, child.stack_id)
                failed = (logical, why)
                done.append(logical)
                break
            child.stack_event("CREATE_COMPLETE")
            stack.event(logical, rtype, "CREATE_COMPLETE", "", child.stack_id)
        else:
            pid = physical_id(stack, logical, rtype)
            stack.physical[logical] = pid
            target = fail.get("resource") if fail else None
            if fail and fail.get("nested"):
                if stack.parent is None:
                    target = None  # the top stack fails through its cluster resource
                elif target not in stack.template["Resources"]:
                    target = "HeadNodeWaitCondition"
            if logical == target:
                reason = fail.get("reason", "Resource handler returned message: \"scripted failure\"")
                stack.event(logical, rtype, "CREATE_FAILED", reason, "")
                failed = (logical, reason)
                done.append(logical)
                break
            stack.event(logical, rtype, "CREATE_IN_PROGRESS", "Resource creation Initiated", pid)
            step()
            stack.event(logical, rtype, "CREATE_COMPLETE", "", pid)
        done.append(logical)
    stack.created_resources = done
    return failed is None


def delete_walk(stack, force, rollback=False):
    """Delete resources in reverse order; returns True when all went."""
    names = list(getattr(stack, "created_resources", list(stack.template["Resources"].keys())))
    ok = True
    failing = control_take("delete_failed") if not force and stack.parent is None else None
    fail_one = bool(failing)
    for logical in reversed(names):
        rtype = stack.types.get(logical, "AWS::CloudFormation::CustomResource")
        pid = stack.physical.get(logical, "")
        prev = [e for e in stack.events if e["LogicalResourceId"] == logical]
        if prev and prev[-1]["ResourceStatus"] in ("DELETE_COMPLETE", "DELETE_SKIPPED"):
            continue
        if force and prev and prev[-1]["ResourceStatus"] == "DELETE_FAILED":
            stack.event(logical, rtype, "DELETE_SKIPPED", "", pid)
            continue
        stack.event(logical, rtype, "DELETE_IN_PROGRESS", "", pid)
        step(rollback)
        child = stack.children.get(logical)
        if child and child.status != "DELETE_COMPLETE":
            child.stack_event("DELETE_IN_PROGRESS", "User Initiated")
            delete_walk(child, force, rollback)
            child.stack_event("DELETE_COMPLETE")
            child.deleted = now()
        if fail_one and rtype in ("AWS::EC2::SecurityGroup", "AWS::IAM::Role", "AWS::S3::Bucket") or \
           fail_one and logical == names[0]:
            stack.event(logical, rtype, "DELETE_FAILED",
                        "Resource handler returned message: \"resource %s has a dependent object "
                        "(Service: Ec2, Status Code: 400)\"" % pid, pid)
            fail_one = False
            ok = False
            continue
        stack.event(logical, rtype, "DELETE_COMPLETE", "", pid)
    return ok


def kill_cluster(stack):
    """The cluster's instances go with the stack: stop its head node command
    and cancel the Slurm jobs it submitted (tagged with the stack's name)."""
    p = stack.head_node
    if p is not None and p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except OSError:
            pass
    try:
        out = subprocess.run(["squeue", "-h", "-o", "%A|%k"], capture_output=True, text=True,
                             timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return
    ids = [line.split("|", 1)[0] for line in out.splitlines()
           if "|" in line and ("hpcops-stack=%s " % stack.name) in line.split("|", 1)[1] + " "]
    if ids:
        subprocess.run(["scancel"] + ids, capture_output=True, timeout=20)
        # give the jobs' wrappers a moment to write through the mount before it goes
        for _ in range(50):
            out = subprocess.run(["squeue", "-h", "-o", "%A"], capture_output=True, text=True,
                                 timeout=20).stdout.split()
            if not set(ids) & set(out):
                break
            time.sleep(0.1)
    unmount_compute(stack)


def mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if mp == path:
                return True
    return False


def mount_compute(stack, props, log):
    """Play the compute nodes' OnNodeConfigured `mount BUCKET DIR` step with
    hpcops-mount (--mount-command), as the template asks."""
    if not ARGS.mount_command:
        return
    queues = (props.get("ClusterConfiguration", {}).get("Scheduling", {}).get("SlurmQueues") or [])
    for q in queues:
        seq = (q.get("CustomActions", {}).get("OnNodeConfigured", {}).get("Sequence") or [])
        for item in seq:
            args = [str(a) for a in item.get("Args", [])]
            if len(args) != 3 or args[0] != "mount" or any(d == args[2] for d, _ in stack.mounts):
                continue
            bucket, where = args[1], args[2]
            argv = [ARGS.mount_command, bucket, where, "--endpoint-url",
                    os.environ.get("HPCOPS_S3_ENDPOINT", ""), "--force-path-style", "-f"]
            env = dict(os.environ, AWS_ACCESS_KEY_ID=ARGS.access_key,
                       AWS_SECRET_ACCESS_KEY=ARGS.secret_key, AWS_REGION=ARGS.region)
            log.write(("+ (compute node) %s\n" % " ".join(argv)).encode())
            log.flush()
            p = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env,
                                 start_new_session=True)
            stack.mounts.append((where, p))
            for _ in range(400):
                if mounted(where) or p.poll() is not None:
                    break
                time.sleep(0.05)


def unmount_compute(stack):
    while stack.mounts:
        where, p = stack.mounts.pop()
        for _ in range(100):
            if not mounted(where):
                break
            if subprocess.run(["fusermount3", "-u", where], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        if mounted(where):
            subprocess.run(["fusermount3", "-uz", where], capture_output=True)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_head_node(stack):
    """Play the head node's OnNodeConfigured: run its `submit` sequence step."""
    try:
        hn = stack.template["Resources"]
        cluster = next(v for v in hn.values()
                       if isinstance(v, dict) and v.get("Type") == "Custom::PclusterCluster")
        props = resolve(cluster.get("Properties", {}), stack)
        seq = props["ClusterConfiguration"]["HeadNode"]["CustomActions"]["OnNodeConfigured"]["Sequence"]
    except (StopIteration, KeyError, TypeError):
        return
    cmd = ARGS.head_node_command or os.environ.get("HPCOPS_LAUNCH")
    with open(os.path.join(ARGS.dir, "compute-%s.log" % stack.name), "ab") as log:
        mount_compute(stack, props, log)
    for item in seq:
        args = [str(a) for a in item.get("Args", [])]
        if not args or args[0] != "submit" or not cmd:
            continue
        env = dict(os.environ)
        env["AWS_ENDPOINT_URL_CLOUDFORMATION"] = ARGS.url
        env["AWS_ENDPOINT_URL_STS"] = ARGS.url
        env["AWS_REGION"] = ARGS.region
        env["AWS_ACCESS_KEY_ID"] = ARGS.access_key
        env["AWS_SECRET_ACCESS_KEY"] = ARGS.secret_key
        env.pop("AWS_SESSION_TOKEN", None)
        if os.environ.get("HPCOPS_S3_ENDPOINT"):
            env["AWS_ENDPOINT_URL_S3"] = os.environ["HPCOPS_S3_ENDPOINT"]
        log = open(os.path.join(ARGS.dir, "head-node-%s.log" % stack.name), "ab")
        log.write(("+ %s %s\n" % (cmd, " ".join(args))).encode())
        log.flush()
        stack.head_node = subprocess.Popen(cmd.split() + args, stdout=log, stderr=log,
                                           stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        log.close()


def lifecycle(stack, fail):
    stack.stack_event("CREATE_IN_PROGRESS", "User Initiated")
    ok = create_walk(stack, fail)
    if ok and not stack.delete_requested:
        stack.stack_event("CREATE_COMPLETE")
        run_head_node(stack)
        while True:
            with LOCK:
                req = stack.delete_requested
            if req:
                break
            time.sleep(0.05)
        delete_lifecycle(stack)
        return
    first = next((e for e in stack.events if e["ResourceStatus"] == "CREATE_FAILED"), None)
    name = first["LogicalResourceId"] if first else "?"
    if stack.delete_requested:
        delete_lifecycle(stack)
        return
    if stack.on_failure == "DO_NOTHING":
        stack.stack_event("CREATE_FAILED", "The following resource(s) failed to create: [%s]. " % name)
    elif stack.on_failure == "DELETE":
        stack.stack_event("CREATE_FAILED", "The following resource(s) failed to create: [%s]. "
                          "Delete requested by user." % name)
        with LOCK:
            stack.delete_requested = {"force": False}
        delete_lifecycle(stack)
        return
    else:
        stack.stack_event("ROLLBACK_IN_PROGRESS", "The following resource(s) failed to create: [%s]. "
                          "Rollback requested by user." % name)
        delete_walk(stack, True, rollback=True)
        stack.stack_event("ROLLBACK_COMPLETE")
    while True:
        with LOCK:
            req = stack.delete_requested
        if req:
            break
        time.sleep(0.05)
    delete_lifecycle(stack)


def delete_lifecycle(stack):
    while True:
        with LOCK:
            req = stack.delete_requested
            stack.delete_requested = None
        force = bool(req and req.get("force"))
        stack.stack_event("DELETE_IN_PROGRESS", "User Initiated")
        kill_cluster(stack)
        if delete_walk(stack, force):
            stack.stack_event("DELETE_COMPLETE")
            with LOCK:
                stack.deleted = now()
            return
        failed = [e["LogicalResourceId"] for e in stack.events if e["ResourceStatus"] == "DELETE_FAILED"]
        stack.stack_event("DELETE_FAILED", "The following resource(s) failed to delete: [%s]. "
                          % ", ".join(sorted(set(failed))))
        while True:
            with LOCK:
                if stack.delete_requested:
                    break
            time.sleep(0.05)


# ---------------------------------------------------------------- signature check

def verify_sigv4(method, path, query, headers, body):
    """Returns (access key, service) or raises ApiError as AWS would."""
    auth = headers.get("authorization", "")
    m = re.match(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,\s*"
                 r"SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})$", auth)
    if not m:
        if not auth:
            raise ApiError(403, "MissingAuthenticationToken", "Request is missing Authentication Token")
        raise ApiError(400, "IncompleteSignature", "Authorization header is not a valid SigV4 header: %s"
                       % auth[:40])
    akid, day, region, service, signed, sig = m.groups()
    amzdate = headers.get("x-amz-date", "")
    if not re.match(r"\d{8}T\d{6}Z$", amzdate) or amzdate[:8] != day:
        raise ApiError(400, "IncompleteSignature", "X-Amz-Date is missing or does not match the credential scope")
    t = datetime.datetime.strptime(amzdate, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    if abs((now() - t).total_seconds()) > 300:
        raise ApiError(403, "SignatureDoesNotMatch", "Signature expired: %s is now earlier or later than "
                       "the 5 minutes allowed" % amzdate)
    if region != ARGS.region:
        raise ApiError(403, "SignatureDoesNotMatch", "Credential should be scoped to a valid region, not '%s'. "
                       % region)
    if service not in ("cloudformation", "sts"):
        raise ApiError(403, "SignatureDoesNotMatch", "Credential should be scoped to correct service: "
                       "'cloudformation'.")
    names = signed.split(";")
    if "host" not in names:
        raise ApiError(403, "SignatureDoesNotMatch", "'Host' must be a signed header")
    tmp = TEMP_CREDS.get(akid)
    if akid == ARGS.access_key:
        secret = ARGS.secret_key
    elif tmp:
        secret = tmp["secret"]
        if headers.get("x-amz-security-token") != tmp["token"]:
            raise ApiError(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
    else:
        raise ApiError(403, "InvalidClientTokenId", "The security token included in the request is invalid.")

    def enc(s):
        return urllib.parse.quote(s, safe="-_.~")
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    cq = "&".join(sorted("%s=%s" % (enc(k), enc(v)) for k, v in pairs))
    ch = ""
    for n in names:
        if n not in headers:
            raise ApiError(403, "SignatureDoesNotMatch", "Signed header %s is missing" % n)
        ch += "%s:%s\n" % (n, re.sub(r"\s+", " ", headers[n].strip()))
    canon = "\n".join([method, urllib.parse.quote(urllib.parse.unquote(path) or "/", safe="/-_.~"),
                       cq, ch, signed, hashlib.sha256(body).hexdigest()])
    scope = "%s/%s/%s/aws4_request" % (day, region, service)
    sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope, hashlib.sha256(canon.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    want = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, sig):
        raise ApiError(403, "SignatureDoesNotMatch",
                       "The request signature we calculated does not match the signature you provided. "
                       "Check your AWS Secret Access Key and signing method. Consult the service "
                       "documentation for details.")
    return akid, service


# ---------------------------------------------------------------- API

def members(p, prefix, fields):
    out, i = [], 1
    while True:
        row = {f: p.get("%s.member.%d.%s" % (prefix, i, f)) for f in fields} if fields else \
            p.get("%s.member.%d" % (prefix, i))
        if (fields and all(v is None for v in row.values())) or (not fields and row is None):
            return out
        out.append(row)
        i += 1


def require(p, *names):
    for n in names:
        if not p.get(n):
            raise ApiError(400, "ValidationError",
                           "1 validation error detected: Value null at '%s' failed to satisfy constraint: "
                           "Member must not be null" % (n[0].lower() + n[1:]))


def find_stack(name_or_id, include_deleted=True):
    with LOCK:
        if name_or_id.startswith("arn:"):
            st = STACKS.get(name_or_id)
            if st and (include_deleted or st.status != "DELETE_COMPLETE"):
                return st
            return None
        for st in STACKS.values():
            if st.name == name_or_id and st.status != "DELETE_COMPLETE":
                return st
    return None


def not_exist(name):
    return ApiError(400, "ValidationError", "Stack with id %s does not exist" % name)


def check_scope(akid, action, stack):
    tmp = TEMP_CREDS.get(akid)
    if not tmp:
        return
    allowed = action in ("DeleteStack", "DescribeStacks", "DescribeStackEvents")
    if not allowed or stack is None or (stack.stack_id != tmp["stack_id"]):
        raise ApiError(403, "AccessDenied", "User: arn:aws:sts::%s:assumed-role/%s/%s is not authorized "
                       "to perform: cloudformation:%s on resource: %s because no identity-based policy "
                       "allows the cloudformation:%s action" % (
                           ACCOUNT, tmp["role"], tmp["session"], action,
                           stack.stack_id if stack else "*", action))


def fetch_template_url(url):
    import boto3
    u = urllib.parse.urlparse(url)
    parts = u.path.lstrip("/").split("/", 1)
    if len(parts) != 2:
        raise ApiError(400, "ValidationError", "TemplateURL must be a supported URL.")
    s3 = boto3.client("s3", endpoint_url="%s://%s" % (u.scheme, u.netloc),
                      region_name=os.environ.get("HPCOPS_S3_REGION", "us-east-1"),
                      aws_access_key_id=os.environ.get("HPCOPS_S3_ACCESS_KEY"),
                      aws_secret_access_key=os.environ.get("HPCOPS_S3_SECRET_KEY"))
    try:
        return s3.get_object(Bucket=parts[0], Key=urllib.parse.unquote(parts[1]))["Body"].read().decode()
    except Exception as e:  # any S3 failure is the template's URL being wrong
        raise ApiError(400, "ValidationError", "S3 error: Access Denied or no such object: %s (%s)" % (url, e))


def stack_xml(st):
    x = "<member><StackName>%s</StackName><StackId>%s</StackId><CreationTime>%s</CreationTime>" % (
        escape(st.name), escape(st.stack_id), iso(st.created))
    if st.deleted:
        x += "<DeletionTime>%s</DeletionTime>" % iso(st.deleted)
    x += "<StackStatus>%s</StackStatus>" % st.status
    if st.reason:
        x += "<StackStatusReason>%s</StackStatusReason>" % escape(st.reason)
    x += "<Parameters>%s</Parameters>" % "".join(
        "<member><ParameterKey>%s</ParameterKey><ParameterValue>%s</ParameterValue></member>" % (
            escape(k), escape(str(v))) for k, v in st.params.items())
    x += "<Tags>%s</Tags>" % "".join("<member><Key>%s</Key><Value>%s</Value></member>" % (
        escape(t["Key"] or ""), escape(t["Value"] or "")) for t in st.tags)
    outs = st.template.get("Outputs") or {}
    if st.status in ("CREATE_COMPLETE", "DELETE_IN_PROGRESS", "DELETE_FAILED"):
        x += "<Outputs>%s</Outputs>" % "".join(
            "<member><OutputKey>%s</OutputKey><OutputValue>%s</OutputValue></member>" % (
                escape(k), escape(str(resolve(v.get("Value"), st)))) for k, v in outs.items())
    if st.parent:
        x += "<ParentId>%s</ParentId><RootId>%s</RootId>" % (st.parent.stack_id, st.parent.stack_id)
    if st.role:
        x += "<RoleARN>%s</RoleARN>" % escape(st.role)
    return x + "<DisableRollback>false</DisableRollback></member>"


def api(action, p, akid, service):
    if service == "sts":
        if action != "AssumeRole":
            raise ApiError(400, "InvalidAction", "Could not find operation %s for version 2011-06-15" % action)
        require(p, "RoleArn", "RoleSessionName")
        role = p["RoleArn"]
        with LOCK:
            st = next((s for s in STACKS.values() if s.status not in ("DELETE_COMPLETE",) and
                       any(s.arn_of(r) == role for r in s.physical)), None)
        if st is None or akid != ARGS.access_key:
            raise ApiError(403, "AccessDenied", "User: arn:aws:iam::%s:user/test is not authorized to perform: "
                           "sts:AssumeRole on resource: %s" % (ACCOUNT, role))
        key = "ASIA" + uuid.uuid4().hex[:16].upper()
        cred = {"secret": uuid.uuid4().hex + uuid.uuid4().hex[:8], "token": "FwoG" + uuid.uuid4().hex * 3,
                "stack_id": st.stack_id, "role": role.rsplit("/", 1)[-1], "session": p["RoleSessionName"]}
        with LOCK:
            TEMP_CREDS[key] = cred
        exp = iso(now() + datetime.timedelta(seconds=int(p.get("DurationSeconds") or 3600)))
        return STS_NS, ("<AssumeRoleResult><Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s"
                        "</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s</Expiration>"
                        "</Credentials><AssumedRoleUser><Arn>arn:aws:sts::%s:assumed-role/%s/%s</Arn>"
                        "<AssumedRoleId>AROA%s:%s</AssumedRoleId></AssumedRoleUser></AssumeRoleResult>" % (
                            key, cred["secret"], cred["token"], exp, ACCOUNT, cred["role"],
                            escape(cred["session"]), uuid.uuid4().hex[:12].upper(), escape(cred["session"])))
    if p.get("Version") != "2010-05-15":
        raise ApiError(400, "InvalidParameterValue", "Version must be 2010-05-15, got %r" % p.get("Version"))

    if action == "CreateStack":
        check_scope(akid, action, None)
        require(p, "StackName")
        name = p["StackName"]
        if not re.match(r"^[A-Za-z][-A-Za-z0-9]{0,127}$", name):
            raise ApiError(400, "ValidationError", "1 validation error detected: Value '%s' at 'stackName' "
                           "failed to satisfy constraint: Member must satisfy regular expression pattern: "
                           "[a-zA-Z][-a-zA-Z0-9]*" % name)
        token = p.get("ClientRequestToken")
        existing = find_stack(name, include_deleted=False)
        if existing:
            if token and existing.token == token:
                return CFN_NS, "<CreateStackResult><StackId>%s</StackId></CreateStackResult>" % existing.stack_id
            raise ApiError(400, "AlreadyExistsException", "Stack [%s] already exists" % name)
        body, url = p.get("TemplateBody"), p.get("TemplateURL")
        if bool(body) == bool(url):
            raise ApiError(400, "ValidationError", "Exactly one of TemplateBody or TemplateUrl must be specified.")
        if body and len(body.encode()) > 51200:
            raise ApiError(400, "ValidationError", "1 validation error detected: Value at 'templateBody' failed "
                           "to satisfy constraint: Member must have length less than or equal to 51200")
        tmpl = parse_template(body if body else fetch_template_url(url))
        given = {m["ParameterKey"]: m["ParameterValue"] for m in
                 members(p, "Parameters", ["ParameterKey", "ParameterValue", "UsePreviousValue"])}
        params = {}
        for k, spec in (tmpl.get("Parameters") or {}).items():
            if k in given:
                v = given.pop(k)
                allowed = spec.get("AllowedValues")
                if allowed and v not in [str(a) for a in allowed]:
                    raise ApiError(400, "ValidationError", "Parameter '%s' must be one of AllowedValues" % k)
                params[k] = v
            elif "Default" in spec:
                params[k] = str(spec["Default"])
            else:
                raise ApiError(400, "ValidationError", "Parameters: [%s] must have values" % k)
        if given:
            raise ApiError(400, "ValidationError", "Parameters: [%s] do not exist in the template"
                           % ", ".join(sorted(given)))
        caps = set(members(p, "Capabilities", None))
        need = needed_capability(tmpl)
        if need and not (need in caps or "CAPABILITY_NAMED_IAM" in caps):
            raise ApiError(400, "InsufficientCapabilitiesException", "Requires capabilities : [%s]" % need)
        on_failure = p.get("OnFailure")
        if on_failure is not None and on_failure not in ("DO_NOTHING", "ROLLBACK", "DELETE"):
            raise ApiError(400, "ValidationError", "1 validation error detected: Value '%s' at 'onFailure' "
                           "failed to satisfy constraint: Member must satisfy enum value set: "
                           "[DO_NOTHING, ROLLBACK, DELETE]" % on_failure)
        tags = members(p, "Tags", ["Key", "Value"])
        st = Stack(name, tmpl, params, tags, token, p.get("RoleARN"), p.get("OnFailure"))
        fail = control_get("fail_create")
        with LOCK:
            STACKS[st.stack_id] = st
        threading.Thread(target=lifecycle, args=(st, fail), daemon=True).start()
        return CFN_NS, "<CreateStackResult><StackId>%s</StackId></CreateStackResult>" % st.stack_id

    if action == "ValidateTemplate":
        check_scope(akid, action, None)
        body, url = p.get("TemplateBody"), p.get("TemplateURL")
        if bool(body) == bool(url):
            raise ApiError(400, "ValidationError", "Exactly one of TemplateBody or TemplateUrl must be specified.")
        if body and len(body.encode()) > 51200:
            raise ApiError(400, "ValidationError", "1 validation error detected: Value at 'templateBody' failed "
                           "to satisfy constraint: Member must have length less than or equal to 51200")
        tmpl = parse_template(body if body else fetch_template_url(url))
        validate_template(tmpl)
        x = "<Parameters>%s</Parameters>" % "".join(
            "<member><ParameterKey>%s</ParameterKey>%s<NoEcho>%s</NoEcho>%s</member>" % (
                escape(k), ("<DefaultValue>%s</DefaultValue>" % escape(str(v["Default"])))
                if isinstance(v, dict) and "Default" in v else "",
                "true" if isinstance(v, dict) and str(v.get("NoEcho", "")).lower() == "true" else "false",
                ("<Description>%s</Description>" % escape(str(v["Description"])))
                if isinstance(v, dict) and "Description" in v else "")
            for k, v in (tmpl.get("Parameters") or {}).items())
        if "Description" in tmpl:
            x += "<Description>%s</Description>" % escape(str(tmpl["Description"]))
        need = needed_capability(tmpl)
        if need:
            types = sorted({str(v.get("Type")) for v in tmpl["Resources"].values()
                            if isinstance(v, dict) and str(v.get("Type", "")).startswith("AWS::IAM::")})
            x += "<Capabilities><member>%s</member></Capabilities>" % need
            x += "<CapabilitiesReason>The following resource(s) require capabilities: [%s]" \
                 "</CapabilitiesReason>" % escape(", ".join(types))
        return CFN_NS, "<ValidateTemplateResult>%s</ValidateTemplateResult>" % x

    if action == "DescribeStacks":
        name = p.get("StackName")
        if name:
            st = find_stack(name)
            if not st:
                raise not_exist(name)
            check_scope(akid, action, st)
            sel = [st]
        else:
            check_scope(akid, action, None)
            with LOCK:
                sel = [s for s in STACKS.values() if s.status != "DELETE_COMPLETE"]
        with LOCK:
            x = "".join(stack_xml(s) for s in sel)
        return CFN_NS, "<DescribeStacksResult><Stacks>%s</Stacks></DescribeStacksResult>" % x

    if action == "DescribeStackEvents":
        require(p, "StackName")
        st = find_stack(p["StackName"])
        if not st:
            raise not_exist(p["StackName"])
        check_scope(akid, action, st)
        with LOCK:
            evs = list(reversed(st.events))
        start = int(p.get("NextToken") or 0)
        page = evs[start:start + 50]
        nxt = "<NextToken>%d</NextToken>" % (start + 50) if start + 50 < len(evs) else ""
        x = "".join("<member>%s</member>" % "".join(
            "<%s>%s</%s>" % (k, escape(v), k) for k, v in e.items() if v != "") for e in page)
        return CFN_NS, "<DescribeStackEventsResult><StackEvents>%s</StackEvents>%s</DescribeStackEventsResult>" % (
            x, nxt)

    if action == "DeleteStack":
        require(p, "StackName")
        st = find_stack(p["StackName"])
        check_scope(akid, action, st)
        if st is None or st.status == "DELETE_COMPLETE":
            return CFN_NS, ""   # as AWS: deleting a stack that is not there succeeds
        mode = p.get("DeletionMode") or "STANDARD"
        if mode not in ("STANDARD", "FORCE_DELETE_STACK"):
            raise ApiError(400, "ValidationError", "DeletionMode must be STANDARD or FORCE_DELETE_STACK")
        with LOCK:
            if mode == "FORCE_DELETE_STACK" and st.status != "DELETE_FAILED":
                raise ApiError(400, "ValidationError", "Invalid operation on stack [%s]: DeletionMode "
                               "FORCE_DELETE_STACK is only allowed for stacks in DELETE_FAILED state" % st.stack_id)
            if st.status == "DELETE_IN_PROGRESS" or st.delete_requested:
                return CFN_NS, ""
            # CloudFormation runs one operation at a time: a rollback must end first
            if st.status.endswith("_IN_PROGRESS") and st.status != "CREATE_IN_PROGRESS":
                raise ApiError(400, "ValidationError", "Stack [%s] cannot be deleted while in status %s"
                               % (p["StackName"], st.status))
            st.delete_requested = {"force": mode == "FORCE_DELETE_STACK", "role": p.get("RoleARN")}
        return CFN_NS, ""

    if action == "DescribeStackResources":
        require(p, "StackName")
        st = find_stack(p["StackName"])
        if not st:
            raise not_exist(p["StackName"])
        check_scope(akid, action, st)
        with LOCK:
            rows = []
            for logical in st.types:
                evs = [e for e in st.events if e["LogicalResourceId"] == logical]
                if evs:
                    e = evs[-1]
                    rows.append("<member><LogicalResourceId>%s</LogicalResourceId><PhysicalResourceId>%s"
                                "</PhysicalResourceId><ResourceType>%s</ResourceType><ResourceStatus>%s"
                                "</ResourceStatus><StackName>%s</StackName><StackId>%s</StackId></member>" % (
                                    escape(logical), escape(e["PhysicalResourceId"]), escape(e["ResourceType"]),
                                    e["ResourceStatus"], escape(st.name), escape(st.stack_id)))
        return CFN_NS, "<DescribeStackResourcesResult><StackResources>%s</StackResources>" \
                       "</DescribeStackResourcesResult>" % "".join(rows)

    raise ApiError(400, "InvalidAction", "The action %s is not valid for this web service." % action)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def reply(self, status, body, ctype="text/xml"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", self.reqid)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.reqid = str(uuid.uuid4())
        if self.path == "/_double/stacks":
            with LOCK:
                out = [{"StackName": s.name, "StackId": s.stack_id, "StackStatus": s.status,
                        "Parent": s.parent.stack_id if s.parent else None} for s in STACKS.values()]
            return self.reply(200, json.dumps(out), "application/json")
        self.handle_api(b"")

    def do_POST(self):
        self.reqid = str(uuid.uuid4())
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        self.handle_api(body)

    def handle_api(self, body):
        u = urllib.parse.urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        params = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        if self.command == "POST":
            ct = headers.get("content-type", "")
            if not ct.startswith("application/x-www-form-urlencoded"):
                return self.error(ApiError(400, "ValidationError",
                                           "Content-Type must be application/x-www-form-urlencoded"), "?", CFN_NS)
            params.update(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        action = params.get("Action", "")
        entry = {"time": iso(now()), "action": action, "stack": params.get("StackName"),
                 "mode": params.get("DeletionMode"), "role": params.get("RoleARN"),
                 "on_failure": params.get("OnFailure")}
        ns = CFN_NS
        try:
            akid, service = verify_sigv4(self.command, u.path, u.query, headers, body)
            ns = STS_NS if service == "sts" else CFN_NS
            entry["key"] = "temporary" if akid in TEMP_CREDS else "user"
            if not action:
                raise ApiError(400, "MissingAction", "Missing Action")
            if control_take("throttle"):
                raise ApiError(400, "Throttling", "Rate exceeded")
            if control_take("server_error"):
                raise ApiError(503, "InternalFailure", "The request processing has failed because of an "
                               "unknown error, exception or failure.", sender=False)
            ns, result = api(action, params, akid, service)
            entry["status"] = 200
            log_request(entry)
            x = '<?xml version="1.0" encoding="UTF-8"?>\n<%sResponse xmlns="%s">%s<ResponseMetadata>' \
                '<RequestId>%s</RequestId></ResponseMetadata></%sResponse>\n' % (
                    action, ns, result, self.reqid, action)
            self.reply(200, x)
        except ApiError as e:
            entry["status"], entry["code"], entry["message"] = e.status, e.code, e.message
            log_request(entry)
            self.error(e, action, ns)
        except Exception as e:  # a bug in the double: say so loudly
            entry["status"], entry["code"] = 500, "InternalFailure"
            log_request(entry)
            import traceback
            traceback.print_exc()
            self.error(ApiError(500, "InternalFailure", "double bug: %s" % e, sender=False), action, ns)

    def error(self, e, action, ns):
        x = '<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="%s"><Error><Type>%s</Type>' \
            '<Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>\n' % (
                ns, "Sender" if e.sender else "Receiver", e.code, escape(e.message), self.reqid)
        self.reply(e.status, x)


def main():
    global ARGS
    ap = argparse.ArgumentParser(description="CloudFormation test double")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--region", default=os.environ.get("HPCOPS_S3_REGION", "us-east-1"))
    ap.add_argument("--access-key", default=os.environ.get("HPCOPS_S3_ACCESS_KEY", "AKIDEXAMPLE"))
    ap.add_argument("--secret-key", default=os.environ.get("HPCOPS_S3_SECRET_KEY",
                                                           "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"))
    ap.add_argument("--head-node-command", default=None,
                    help="command run for the OnNodeConfigured `submit` step (default $HPCOPS_LAUNCH)")
    ap.add_argument("--mount-command", default=None,
                    help="hpcops-mount, to play the compute nodes' `mount BUCKET DIR` step "
                         "(default: not played)")
    ARGS = ap.parse_args()
    os.makedirs(ARGS.dir, exist_ok=True)
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    srv.daemon_threads = True
    ARGS.url = "http://127.0.0.1:%d" % srv.server_address[1]
    with open(os.path.join(ARGS.dir, "port.tmp"), "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.replace(os.path.join(ARGS.dir, "port.tmp"), os.path.join(ARGS.dir, "port"))

    def stop(*_):
        with LOCK:
            for st in STACKS.values():
                if st.head_node is not None and st.head_node.poll() is None:
                    try:
                        os.killpg(st.head_node.pid, signal.SIGTERM)
                    except OSError:
                        pass
                unmount_compute(st)
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""cfn_check: checks a CloudFormation template before CloudFormation sees it.

    cfn_check.py TEMPLATE...      prints one line per error, exit 1 if any

What it checks, each error naming the place (Resources.X.Properties.Y...):
- YAML with CloudFormation's short-form tags (!Ref, !GetAtt, !Sub, !If,
  !Equals, !Join, !Select, !Split, !FindInMap, !Base64, !Cidr, !ImportValue,
  !Not, !And, !Or, !Condition, !GetAZs); an unknown tag or Fn:: name, a
  duplicate key, an intrinsic function of the wrong shape;
- every Ref, GetAtt, ${} of Sub, Condition and FindInMap resolves: to a
  parameter, resource, pseudo parameter, condition, mapping entry (for a
  FindInMap keyed by a parameter: an entry for each of its AllowedValues),
  and GetAtt to an attribute the resource type has;
- resource types, property names (with a suggestion), required properties
  and value shapes against CloudFormation's resource specification, trimmed
  to the types used: tests/data/cfn-spec/resource-spec.json (from the npm
  package @aws-cdk/aws-service-spec, see trim.py there);
- IAM policy documents well formed (Version, Statement, Effect, Action,
  Resource, Principal, Condition operators, unique Sids) and every action a
  real one (tests/data/cfn-spec/iam.json, from cfn-lint's Policies.json);
- least privilege in every Allow: no wildcard in an action; Resource "*"
  only for actions that take no resource; no wildcard region or account, no
  ARN whose name is a wildcard where a name fits; each action applies to one
  of the statement's resources; no "*" principal and no account-wide trust
  (arn:aws:iam::ACCOUNT:root) in a trust policy.
"""
import difflib
import json
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "cfn-spec")

SHORT_TAGS = ["Ref", "GetAtt", "Sub", "If", "Equals", "Join", "Select", "Split", "FindInMap", "Base64",
              "Cidr", "ImportValue", "Not", "And", "Or", "Condition", "GetAZs"]
FUNCS = {"Ref", "Condition"} | {"Fn::" + t for t in SHORT_TAGS if t not in ("Ref", "Condition")}
CONDITION_FUNCS = {"Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition"}
RULE_FUNCS = {"Fn::Contains", "Fn::EachMemberEquals", "Fn::EachMemberIn", "Fn::RefAll", "Fn::ValueOf",
              "Fn::ValueOfAll"}
PSEUDO = {"AWS::AccountId": "123456789012", "AWS::NotificationARNs": "arn:aws:sns:us-east-1:123456789012:n",
          "AWS::NoValue": "", "AWS::Partition": "aws", "AWS::Region": "us-east-1",
          "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/stackname/0",
          "AWS::StackName": "stackname", "AWS::URLSuffix": "amazonaws.com"}
TOP_KEYS = {"AWSTemplateFormatVersion", "Description", "Metadata", "Parameters", "Rules", "Mappings",
            "Conditions", "Transform", "Resources", "Outputs"}
PARAM_KEYS = {"Type", "Default", "Description", "AllowedValues", "AllowedPattern", "MinLength", "MaxLength",
              "MinValue", "MaxValue", "ConstraintDescription", "NoEcho"}
PARAM_TYPES = re.compile(r"^(String|Number|List<Number>|CommaDelimitedList|AWS::[A-Za-z0-9:]+|"
                         r"List<AWS::[A-Za-z0-9:]+>|AWS::SSM::Parameter::Value<[^>]+>)$")
RESOURCE_KEYS = {"Type", "Properties", "DependsOn", "Condition", "DeletionPolicy", "UpdateReplacePolicy",
                 "Metadata", "CreationPolicy", "UpdatePolicy"}
OUTPUT_KEYS = {"Description", "Value", "Export", "Condition"}
STATEMENT_KEYS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource",
                  "NotResource", "Condition"}
COND_OPS = re.compile(r"^(For(Any|All)Value:)?(String(Not)?Equals(IgnoreCase)?|String(Not)?Like|"
                      r"Numeric(Not)?Equals|Numeric(Less|Greater)Than(Equals)?|Date(Not)?Equals|"
                      r"Date(Less|Greater)Than(Equals)?|Bool|BinaryEquals|(Not)?IpAddress|Arn(Not)?Equals|"
                      r"Arn(Not)?Like)(IfExists)?$|^Null$")
TRUST_ACTIONS = {"sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", "sts:AssumeRoleWithSAML",
                 "sts:TagSession", "sts:SetSourceIdentity"}
# Resource types whose ids nobody knows when the policy is written: their
# ARNs may end in a bare * (region and account still pinned).
UNNAMEABLE = {("ec2", "instance")}
# ARNs an action takes that the Service Authorization Reference does not
# model: a template with a transform needs CreateChangeSet on the transform.
EXTRA_ARNS = {("cloudformation", "createchangeset"):
              [r"arn:[a-z-]+:cloudformation:[a-z0-9-]+:aws:transform/[A-Za-z0-9:-]+"]}
POLICY_PLACES = {"AWS::IAM::Role": [("AssumeRolePolicyDocument", "trust"), ("Policies[].PolicyDocument",
                                                                             "identity")],
                 "AWS::IAM::ManagedPolicy": [("PolicyDocument", "identity")],
                 "AWS::IAM::Policy": [("PolicyDocument", "identity")],
                 "AWS::S3::BucketPolicy": [("PolicyDocument", "resource")],
                 "AWS::SNS::TopicPolicy": [("PolicyDocument", "resource")]}


# ------------------------------------------------------------------ loading

class Loader(yaml.SafeLoader):
    """SafeLoader with CloudFormation's tags; records unknown tags and
    duplicate keys as errors instead of failing or hiding them."""
    errors = None


def _line(node):
    return "line %d" % (node.start_mark.line + 1)


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        v = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        v = loader.construct_sequence(node, deep=True)
    else:
        v = loader.construct_mapping(node, deep=True)
    if suffix not in SHORT_TAGS:
        near = difflib.get_close_matches(suffix, SHORT_TAGS, 1)
        loader.errors.append("%s: unknown tag !%s%s" % (_line(node), suffix,
                                                       " (did you mean !%s?)" % near[0] if near else ""))
        return {"!" + suffix: v}
    if suffix == "GetAtt" and isinstance(v, str):
        v = v.split(".", 1)
    if suffix in ("Ref", "Condition"):
        return {suffix: v}
    return {"Fn::" + suffix: v}


def _mapping(loader, node, deep=False):
    seen = set()
    for k, _ in node.value:
        key = loader.construct_object(k, deep=True)
        if isinstance(key, str) and key in seen:
            loader.errors.append("%s: duplicate key %s" % (_line(k), key))
        seen.add(key if isinstance(key, (str, int, float, bool)) else id(key))
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


Loader.add_multi_constructor("!", _tag)
Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                       lambda loader, node: _mapping(loader, node, True))


def load(path):
    """(document, errors) for a template file, YAML or JSON."""
    with open(path) as f:
        text = f.read()
    loader = Loader(text)
    loader.errors = []
    try:
        doc = loader.get_single_data()
    except yaml.YAMLError as e:
        return None, ["YAML: %s" % str(e).replace("\n", " ")]
    finally:
        loader.dispose()
    return doc, loader.errors


def load_data():
    with open(os.path.join(DATA, "resource-spec.json")) as f:
        spec = json.load(f)
    with open(os.path.join(DATA, "iam.json")) as f:
        iam = json.load(f)["services"]
    return spec, iam


# ------------------------------------------------------------------ helpers

def is_func(v):
    return isinstance(v, dict) and len(v) == 1 and next(iter(v)) in FUNCS | RULE_FUNCS


def sub_vars(s):
    """The ${} variables of a Sub string (${!x} is a literal ${x})."""
    return [m.group(1) for m in re.finditer(r"\$\{([^}]*)\}", s) if not m.group(1).startswith("!")]


def as_list(v):
    return v if isinstance(v, list) else [v]


class Checker:
    def __init__(self, doc, spec, iam):
        self.doc = doc
        self.spec = spec
        self.iam = iam
        self.errors = []
        self.params = {}
        self.resources = {}
        self.conditions = {}
        self.mappings = {}

    def err(self, path, msg):
        self.errors.append("%s: %s" % (path, msg))

    # -------------------------------------------------------------- top

    def run(self):
        d = self.doc
        if not isinstance(d, dict):
            self.err("template", "not a mapping")
            return self.errors
        for k in d:
            if k not in TOP_KEYS:
                self.err(k, "unknown top-level section")
        if d.get("AWSTemplateFormatVersion", "2010-09-09") != "2010-09-09":
            self.err("AWSTemplateFormatVersion", "must be 2010-09-09")
        self.params = d.get("Parameters") or {}
        self.resources = d.get("Resources") or {}
        self.conditions = d.get("Conditions") or {}
        self.mappings = d.get("Mappings") or {}
        if not self.resources:
            self.err("Resources", "at least one resource is needed")
        self.check_parameters()
        self.check_mappings()
        for name, c in self.conditions.items():
            self.check_condition(c, "Conditions.%s" % name)
        for name, r in (d.get("Rules") or {}).items():
            self.check_rule(r, "Rules.%s" % name)
        for name, r in self.resources.items():
            self.check_resource(name, r)
        for name, o in (d.get("Outputs") or {}).items():
            self.check_output(name, o)
        return self.errors

    def check_parameters(self):
        for name, p in self.params.items():
            path = "Parameters.%s" % name
            if name in self.resources:
                self.err(path, "a parameter and a resource have the same name")
            if not isinstance(p, dict):
                self.err(path, "must be a mapping")
                continue
            for k in p:
                if k not in PARAM_KEYS:
                    self.err(path, "unknown parameter attribute %s" % k)
            t = p.get("Type")
            if not isinstance(t, str) or not PARAM_TYPES.match(t):
                self.err(path, "bad or missing Type %r" % (t,))
            if "Default" in p:
                dv = str(p["Default"]).lower() if isinstance(p["Default"], bool) else str(p["Default"])
                allowed = [str(a) for a in p.get("AllowedValues") or []]
                if allowed and dv not in allowed:
                    self.err(path, "Default %r is not one of AllowedValues %s" % (dv, allowed))
                pat = p.get("AllowedPattern")
                if pat and t == "String" and not re.fullmatch(pat, dv):
                    self.err(path, "Default %r does not match AllowedPattern %s" % (dv, pat))

    def check_mappings(self):
        for name, m in self.mappings.items():
            if not isinstance(m, dict) or not all(isinstance(v, dict) for v in m.values()):
                self.err("Mappings.%s" % name, "must map keys to mappings of values")

    def check_rule(self, r, path):
        if not isinstance(r, dict) or "Assertions" not in r:
            self.err(path, "a rule needs Assertions")
            return
        if "RuleCondition" in r:
            self.check_condition(r["RuleCondition"], path + ".RuleCondition", rules=True)
        for i, a in enumerate(r["Assertions"] or []):
            if not isinstance(a, dict) or "Assert" not in a:
                self.err("%s.Assertions[%d]" % (path, i), "needs Assert")
                continue
            self.check_condition(a["Assert"], "%s.Assertions[%d].Assert" % (path, i), rules=True)

    def check_condition(self, c, path, rules=False):
        """A condition expression: Fn::Equals/Not/And/Or/Condition."""
        allowed = CONDITION_FUNCS | (RULE_FUNCS if rules else set())
        if not (isinstance(c, dict) and len(c) == 1 and next(iter(c)) in allowed):
            self.err(path, "a condition must be one of %s" % ", ".join(sorted(allowed)))
            self.walk(c, path)
            return
        self.walk(c, path, in_condition=True)

    def check_output(self, name, o):
        path = "Outputs.%s" % name
        if not isinstance(o, dict) or "Value" not in o:
            self.err(path, "an output needs Value")
            return
        for k in o:
            if k not in OUTPUT_KEYS:
                self.err(path, "unknown output attribute %s" % k)
        if "Condition" in o and o["Condition"] not in self.conditions:
            self.err(path + ".Condition", "no condition named %s" % o["Condition"])
        self.walk(o["Value"], path + ".Value")
        if "Export" in o:
            self.walk(o["Export"], path + ".Export")

    # -------------------------------------------------------------- intrinsics

    def walk(self, v, path, in_condition=False):
        """Check every intrinsic function in v."""
        if isinstance(v, list):
            for i, x in enumerate(v):
                self.walk(x, "%s[%d]" % (path, i), in_condition)
            return
        if not isinstance(v, dict):
            return
        fn = [k for k in v if isinstance(k, str) and (k.startswith("Fn::") or k == "Ref")]
        for k in v:
            if isinstance(k, str) and k.startswith("!"):
                return  # an unknown tag, reported when loading
        for k in fn:
            if k not in FUNCS and not (in_condition and k in RULE_FUNCS):
                near = difflib.get_close_matches(k, sorted(FUNCS), 1)
                self.err(path, "unknown intrinsic function %s%s" % (k, " (did you mean %s?)" % near[0]
                                                                    if near else ""))
                return
        if fn:
            if len(v) != 1:
                self.err(path, "%s must be the only key of its mapping" % fn[0])
                return
            self.intrinsic(fn[0], v[fn[0]], path + "." + fn[0], in_condition)
            return
        if len(v) == 1 and "Condition" in v and in_condition:
            self.intrinsic("Condition", v["Condition"], path + ".Condition", in_condition)
            return
        for k, x in v.items():
            self.walk(x, "%s.%s" % (path, k), in_condition)

    def intrinsic(self, fn, a, path, in_condition):
        def shape(ok, what):
            if not ok:
                self.err(path, "%s takes %s" % (fn, what))
            return ok

        if fn == "Ref":
            if shape(isinstance(a, str), "a name"):
                self.check_ref(a, path)
        elif fn == "Condition":
            if shape(isinstance(a, str), "a condition name") and a not in self.conditions:
                self.err(path, "no condition named %s" % a)
        elif fn == "Fn::GetAtt":
            if shape(isinstance(a, list) and len(a) == 2 and isinstance(a[0], str),
                     "[resource, attribute] or resource.attribute"):
                if isinstance(a[1], str):
                    self.check_getatt(a[0], a[1], path)
                else:
                    self.walk(a[1], path)
        elif fn == "Fn::Sub":
            if isinstance(a, str):
                self.check_sub(a, {}, path)
            elif shape(isinstance(a, list) and len(a) == 2 and isinstance(a[0], str) and
                       isinstance(a[1], dict), "a string or [string, {variables}]"):
                for k, x in a[1].items():
                    self.walk(x, "%s.%s" % (path, k), in_condition)
                self.check_sub(a[0], a[1], path)
        elif fn == "Fn::If":
            if shape(isinstance(a, list) and len(a) == 3 and isinstance(a[0], str),
                     "[condition, value if true, value if false]"):
                if a[0] not in self.conditions:
                    self.err(path, "no condition named %s" % a[0])
                self.walk(a[1], path + "[1]", in_condition)
                self.walk(a[2], path + "[2]", in_condition)
        elif fn == "Fn::Equals":
            if shape(isinstance(a, list) and len(a) == 2, "two values"):
                self.walk(a, path, in_condition)
        elif fn == "Fn::Not":
            if shape(isinstance(a, list) and len(a) == 1, "a list of one condition"):
                self.check_condition(a[0], path + "[0]")
        elif fn in ("Fn::And", "Fn::Or"):
            if shape(isinstance(a, list) and 2 <= len(a) <= 10, "2 to 10 conditions"):
                for i, c in enumerate(a):
                    self.check_condition(c, "%s[%d]" % (path, i))
        elif fn == "Fn::Join":
            if shape(isinstance(a, list) and len(a) == 2 and isinstance(a[0], str),
                     "[delimiter, list]"):
                if not isinstance(a[1], list) and not is_func(a[1]):
                    self.err(path, "Fn::Join's second argument must be a list")
                self.walk(a[1], path + "[1]", in_condition)
        elif fn == "Fn::Select":
            if shape(isinstance(a, list) and len(a) == 2, "[index, list]"):
                self.walk(a, path, in_condition)
        elif fn == "Fn::Split":
            if shape(isinstance(a, list) and len(a) == 2 and isinstance(a[0], str),
                     "[delimiter, string]"):
                self.walk(a[1], path + "[1]", in_condition)
        elif fn == "Fn::FindInMap":
            if shape(isinstance(a, list) and len(a) == 3, "[map, top-level key, second-level key]"):
                self.check_findinmap(a, path)
        elif fn == "Fn::Cidr":
            if shape(isinstance(a, list) and len(a) == 3, "[ip block, count, cidr bits]"):
                self.walk(a, path, in_condition)
        elif fn in ("Fn::Base64", "Fn::ImportValue", "Fn::GetAZs"):
            self.walk(a, path, in_condition)
        elif fn in RULE_FUNCS:
            self.walk(a, path, in_condition)

    def check_ref(self, name, path):
        if name in self.params or name in self.resources or name in PSEUDO:
            return
        cands = list(self.params) + list(self.resources) + list(PSEUDO)
        near = difflib.get_close_matches(name, cands, 1)
        self.err(path, "Ref to nothing: %s is no parameter, resource or pseudo parameter%s" % (
            name, " (did you mean %s?)" % near[0] if near else ""))

    def check_getatt(self, res, attr, path):
        r = self.resources.get(res)
        if not isinstance(r, dict):
            near = difflib.get_close_matches(res, list(self.resources), 1)
            self.err(path, "GetAtt of %s: no such resource%s" % (res, " (did you mean %s?)" % near[0]
                                                                 if near else ""))
            return
        t = r.get("Type", "")
        if t.startswith("Custom::") or t == "AWS::CloudFormation::CustomResource":
            return
        if t == "AWS::CloudFormation::Stack" and attr.startswith("Outputs."):
            return
        rs = self.spec["resources"].get(t)
        if rs is None:
            return  # the type itself is reported
        if attr not in rs["attributes"]:
            self.err(path, "GetAtt %s.%s: %s has no attribute %s (it has %s)" % (
                res, attr, t, attr, ", ".join(rs["attributes"]) or "none"))

    def check_sub(self, s, extra, path):
        for var in sub_vars(s):
            if var in extra:
                continue
            if "." in var and not var.startswith("AWS::"):
                res, attr = var.split(".", 1)
                self.check_getatt(res, attr, path + " ${%s}" % var)
            else:
                self.check_ref(var, path + " ${%s}" % var)

    def check_findinmap(self, a, path):
        mname, top, second = a
        for i, x in enumerate(a):
            self.walk(x, "%s[%d]" % (path, i))
        if not isinstance(mname, str):
            return
        m = self.mappings.get(mname)
        if m is None:
            self.err(path, "no mapping named %s" % mname)
            return
        tops = None
        if isinstance(top, (str, int)):
            tops = [str(top)]
        elif isinstance(top, dict) and isinstance(top.get("Ref"), str) and top["Ref"] in self.params:
            allowed = self.params[top["Ref"]].get("AllowedValues")
            if allowed:
                tops = [str(x) for x in allowed]
        for t in tops or []:
            if t not in {str(k) for k in m}:
                self.err(path, "mapping %s has no key %s%s" % (
                    mname, t, " (an AllowedValue of %s)" % top["Ref"] if isinstance(top, dict) else ""))
            elif isinstance(second, (str, int)) and str(second) not in {
                    str(k) for k in m[next(k for k in m if str(k) == t)]}:
                self.err(path, "mapping %s.%s has no key %s" % (mname, t, second))

    # -------------------------------------------------------------- resources

    def check_resource(self, name, r):
        path = "Resources.%s" % name
        if not isinstance(r, dict):
            self.err(path, "must be a mapping")
            return
        for k in r:
            if k not in RESOURCE_KEYS:
                near = difflib.get_close_matches(k, sorted(RESOURCE_KEYS), 1)
                self.err(path, "unknown resource attribute %s%s" % (k, " (did you mean %s?)" % near[0]
                                                                   if near else ""))
        if "Condition" in r and r["Condition"] not in self.conditions:
            self.err(path + ".Condition", "no condition named %s" % r["Condition"])
        for dep in as_list(r.get("DependsOn", [])):
            if dep not in self.resources:
                self.err(path + ".DependsOn", "no resource named %s" % dep)
        t = r.get("Type")
        props = r.get("Properties", {})
        self.walk(props, path + ".Properties")
        if not isinstance(t, str):
            self.err(path, "needs a Type")
            return
        if t.startswith("Custom::") or t == "AWS::CloudFormation::CustomResource":
            if not isinstance(props, dict) or "ServiceToken" not in props:
                self.err(path + ".Properties", "a custom resource needs ServiceToken")
            return
        rs = self.spec["resources"].get(t)
        if rs is None:
            near = difflib.get_close_matches(t, list(self.spec["resources"]), 1)
            self.err(path + ".Type", "unknown resource type %s%s (known: the types of %s)" % (
                t, " (did you mean %s?)" % near[0] if near else "", "tests/data/cfn-spec/resource-spec.json;"
                " a real new type: add it with trim.py"))
            return
        if not isinstance(props, dict):
            self.err(path + ".Properties", "must be a mapping")
            return
        self.check_props(props, rs["properties"], t, path + ".Properties")
        for place, kind in POLICY_PLACES.get(t, []):
            if place.endswith("[].PolicyDocument"):
                for i, p in enumerate(as_list(props.get(place.split("[")[0], []))):
                    for alt in self.branches(p):
                        if isinstance(alt, dict) and "PolicyDocument" in alt:
                            self.check_policy(alt["PolicyDocument"], kind,
                                              "%s.Properties.%s[%d].PolicyDocument" % (
                                                  path, place.split("[")[0], i))
            elif place in props:
                self.check_policy(props[place], kind, "%s.Properties.%s" % (path, place))

    def branches(self, v):
        """The values v can take: both sides of an Fn::If, none for NoValue."""
        if isinstance(v, dict) and len(v) == 1 and "Fn::If" in v and isinstance(v["Fn::If"], list) \
                and len(v["Fn::If"]) == 3:
            return self.branches(v["Fn::If"][1]) + self.branches(v["Fn::If"][2])
        if v == {"Ref": "AWS::NoValue"}:
            return []
        return [v]

    def check_props(self, d, props, owner, path):
        for k, v in d.items():
            if k not in props:
                near = difflib.get_close_matches(k, list(props), 1)
                self.err("%s.%s" % (path, k), "unknown property %s of %s%s" % (
                    k, owner, " (did you mean %s?)" % near[0] if near else ""))
                continue
            for alt in self.branches(v):
                self.check_value(alt, props[k]["type"], "%s.%s" % (path, k))
        for k, p in props.items():
            if p.get("required") and k not in d:
                self.err(path, "%s needs property %s" % (owner, k))

    def check_value(self, v, t, path):
        if is_func(v) or (isinstance(v, dict) and len(v) == 1 and str(next(iter(v))).startswith(
                ("Fn::", "!"))):
            return  # its result is not typed here; the function itself was walked (or reported)
        k = t["type"]
        if k == "union":
            for sub in t["types"]:
                saved = self.errors
                self.errors = []
                self.check_value(v, sub, path)
                ok, self.errors = not self.errors, saved
                if ok:
                    return
            self.err(path, "value fits none of the property's types")
            return
        if k in ("string",):
            if isinstance(v, (dict, list)):
                self.err(path, "must be a string, not a %s" % ("list" if isinstance(v, list) else "mapping"))
        elif k in ("integer", "number"):
            if isinstance(v, bool) or not (isinstance(v, (int, float)) or
                                           (isinstance(v, str) and re.fullmatch(r"-?[0-9.]+", v))):
                self.err(path, "must be a number, not %r" % (v,))
        elif k == "boolean":
            if not (isinstance(v, bool) or v in ("true", "false", "True", "False")):
                self.err(path, "must be a boolean, not %r" % (v,))
        elif k == "tag":
            if not isinstance(v, dict) or set(v) != {"Key", "Value"}:
                self.err(path, "a tag is {Key, Value}")
        elif k == "array":
            if not isinstance(v, list):
                self.err(path, "must be a list")
                return
            for i, x in enumerate(v):
                for alt in self.branches(x):
                    self.check_value(alt, t["element"], "%s[%d]" % (path, i))
        elif k == "map":
            if not isinstance(v, dict):
                self.err(path, "must be a mapping")
                return
            for kk, x in v.items():
                for alt in self.branches(x):
                    self.check_value(alt, t["element"], "%s.%s" % (path, kk))
        elif k == "ref":
            if not isinstance(v, dict):
                self.err(path, "must be a mapping (%s)" % t["name"])
                return
            self.check_props(v, self.spec["types"][t["name"]]["properties"], t["name"], path)
        # json: anything

    # -------------------------------------------------------------- IAM

    def render(self, v):
        """The strings v can be, intrinsics replaced by stand-in values; None
        for a value that cannot be known (a Ref to a parameter without
        Default, an import)."""
        if isinstance(v, (str, int, float)):
            return [str(v)]
        if isinstance(v, list) or not isinstance(v, dict) or len(v) != 1:
            return None
        (fn, a), = v.items()
        if fn == "Fn::If" and isinstance(a, list) and len(a) == 3:
            out = []
            for x in self.branches(v):
                r = self.render(x)
                if r is None:
                    return None
                out += r
            return out
        if fn == "Ref":
            return self.ref_value(a)
        if fn == "Fn::GetAtt" and isinstance(a, list) and len(a) == 2:
            return self.getatt_value(a[0], a[1])
        if fn == "Fn::Sub":
            s, extra = (a, {}) if isinstance(a, str) else (a[0], a[1])
            outs = [s]
            for var in sub_vars(s):
                if var in extra:
                    vals = self.render(extra[var])
                elif "." in var and not var.startswith("AWS::"):
                    vals = self.getatt_value(*var.split(".", 1))
                else:
                    vals = self.ref_value(var)
                if vals is None:
                    return None
                outs = [o.replace("${%s}" % var, x) for o in outs for x in vals]
            return outs
        if fn == "Fn::Join" and isinstance(a, list) and len(a) == 2 and isinstance(a[1], list):
            parts = [self.render(x) for x in a[1]]
            if any(p is None for p in parts):
                return None
            return [a[0].join(p[0] for p in parts)]
        return None

    def ref_value(self, name):
        if name in PSEUDO:
            return [PSEUDO[name]]
        if name in self.params:
            d = self.params[name].get("Default")
            return [str(d)] if d not in (None, "") else None  # the caller's value
        r = self.resources.get(name)
        if isinstance(r, dict):
            if r.get("Type") == "AWS::IAM::ManagedPolicy":
                return self.getatt_value(name, "PolicyArn")
            return ["r-%s" % name.lower()]
        return None

    def getatt_value(self, res, attr):
        r = self.resources.get(res)
        if not isinstance(r, dict):
            return None
        t = r.get("Type", "")
        tmpl = (self.spec["resources"].get(t) or {}).get("arn")
        if not tmpl or attr not in ("Arn", "PolicyArn", "TopicArn"):
            return ["a-%s-%s" % (res.lower(), attr.lower())]
        vals = {"Partition": "aws", "Region": "us-east-1", "Account": "123456789012"}
        return [re.sub(r"\$\{([^}]+)\}", lambda m: vals.get(m.group(1), "n-" + res.lower()), tmpl)]

    def check_policy(self, doc, kind, path):
        if isinstance(doc, str):
            try:
                doc = json.loads(doc)
            except ValueError:
                self.err(path, "a policy document string must be JSON")
                return
        if not isinstance(doc, dict) or is_func(doc):
            self.err(path, "a policy document must be a literal mapping, not %s" % (
                next(iter(doc)) if is_func(doc) else type(doc).__name__))
            return
        for k in doc:
            if k not in ("Version", "Id", "Statement"):
                self.err(path, "unknown policy element %s" % k)
        if doc.get("Version") != "2012-10-17":
            self.err(path + ".Version", "must be \"2012-10-17\" (got %r)" % (doc.get("Version"),))
        stmts = doc.get("Statement")
        if stmts is None:
            self.err(path, "a policy needs Statement")
            return
        sids = set()
        for i, s in enumerate(as_list(stmts)):
            for alt in self.branches(s):
                self.check_statement(alt, kind, "%s.Statement[%d]" % (path, i), sids)

    def check_statement(self, s, kind, path, sids):
        if not isinstance(s, dict):
            self.err(path, "a statement must be a mapping")
            return
        for k in s:
            if k not in STATEMENT_KEYS:
                near = difflib.get_close_matches(k, sorted(STATEMENT_KEYS), 1)
                self.err(path, "unknown statement element %s%s" % (k, " (did you mean %s?)" % near[0]
                                                                   if near else ""))
        if "Sid" in s:
            if not isinstance(s["Sid"], str) or not re.fullmatch(r"[A-Za-z0-9]+", s["Sid"]):
                self.err(path + ".Sid", "a Sid is letters and digits")
            elif s["Sid"] in sids:
                self.err(path + ".Sid", "duplicate Sid %s" % s["Sid"])
            sids.add(s.get("Sid"))
        eff = s.get("Effect")
        if eff not in ("Allow", "Deny"):
            self.err(path + ".Effect", "must be Allow or Deny (got %r)" % (eff,))
        if ("Action" in s) == ("NotAction" in s):
            self.err(path, "needs exactly one of Action and NotAction")
        if kind == "trust":
            if "Resource" in s or "NotResource" in s:
                self.err(path, "a trust policy names no Resource")
            if "Principal" not in s:
                self.err(path, "a trust policy statement needs Principal")
        else:
            if ("Resource" in s) == ("NotResource" in s):
                self.err(path, "needs exactly one of Resource and NotResource")
            if kind == "identity" and ("Principal" in s or "NotPrincipal" in s):
                self.err(path, "an identity policy names no Principal")
            if kind == "resource" and "Principal" not in s and "NotPrincipal" not in s:
                self.err(path, "a resource policy statement needs Principal")
        if "Condition" in s:
            self.check_iam_condition(s["Condition"], path + ".Condition")
        actions = self.check_actions(s.get("Action", s.get("NotAction")), kind, path)
        allow = eff == "Allow"
        if allow and ("NotAction" in s or "NotResource" in s or "NotPrincipal" in s):
            self.err(path, "an Allow with NotAction/NotResource/NotPrincipal grants everything else: "
                           "name what is allowed")
        if "Principal" in s:
            self.check_principal(s["Principal"], kind, allow, path + ".Principal")
        if allow and "Resource" in s and actions is not None:
            self.check_resources(s["Resource"], actions, path + ".Resource")

    def check_iam_condition(self, c, path):
        if not isinstance(c, dict):
            self.err(path, "a Condition maps operators to {key: values}")
            return
        for op, kv in c.items():
            if not COND_OPS.match(str(op)):
                self.err(path, "unknown condition operator %s" % op)
            if not isinstance(kv, dict) or not kv:
                self.err("%s.%s" % (path, op), "must map condition keys to values")

    def check_actions(self, a, kind, path):
        """The (service, action) pairs of the statement, or None if malformed."""
        if a is None:
            return None
        out = []
        for x in as_list(a):
            if not isinstance(x, str):
                self.err(path + ".Action", "an action must be a literal string, not %r" % (x,))
                return None
            if x == "*" or not re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9*?]+", x):
                if x != "*":
                    self.err(path + ".Action", "%r is not SERVICE:Action" % x)
                    return None
            if "*" in x or "?" in x:
                self.err(path + ".Action", "wildcard action %s: name the actions (least privilege)" % x)
                out.append(None)
                continue
            svc, name = x.split(":", 1)
            if kind == "trust" and x not in TRUST_ACTIONS:
                self.err(path + ".Action", "%s in a trust policy (expected %s)" % (
                    x, ", ".join(sorted(TRUST_ACTIONS))))
            sd = self.iam.get(svc)
            if sd is None:
                self.err(path + ".Action", "service %s is not in tests/data/cfn-spec/iam.json (add it to "
                                           "IAM_SERVICES in trim.py if it is real)" % svc)
                out.append(None)
                continue
            if name.lower() not in sd["actions"]:
                near = difflib.get_close_matches(name.lower(), list(sd["actions"]), 1)
                self.err(path + ".Action", "%s: no such action%s" % (x, " (did you mean %s:%s?)" % (
                    svc, near[0]) if near else ""))
                out.append(None)
                continue
            out.append((svc, name.lower()))
        return out

    def check_principal(self, p, kind, allow, path):
        if p == "*" or p == {"AWS": "*"}:
            if allow:
                self.err(path, "Principal * lets anyone in")
            return
        if not isinstance(p, dict):
            self.err(path, "a Principal is * or {AWS|Service|Federated|CanonicalUser: ...}")
            return
        for k, v in p.items():
            if k not in ("AWS", "Service", "Federated", "CanonicalUser"):
                self.err(path, "unknown principal type %s" % k)
                continue
            for x in as_list(v):
                vals = self.render(x)
                for s in vals or []:
                    if k == "AWS":
                        if s == "*":
                            self.err(path, "AWS principal *: anyone")
                        elif re.fullmatch(r"[0-9]{12}", s) or re.fullmatch(r"arn:[a-z-]+:iam::[0-9]{12}:root",
                                                                          s):
                            self.err(path, "account-wide trust (%s): every principal of the account whose "
                                           "policy allows it may assume this role; trust the role that "
                                           "needs it" % s)
                    elif k == "Service" and not re.fullmatch(r"[a-z0-9.-]+\.amazonaws\.com(\.cn)?", s):
                        self.err(path, "%r is not a service principal (NAME.amazonaws.com)" % s)

    def check_resources(self, res, actions, path):
        rendered = []
        for x in as_list(res):
            vals = self.render(x)
            if vals is None:
                rendered.append(None)  # a name we cannot see: trusted to be one
                continue
            rendered += vals
        known = [a for a in actions if a is not None]
        needs_star = [a for a in known if not self.iam[a[0]]["actions"][a[1]]]
        takes_res = [a for a in known if self.iam[a[0]]["actions"][a[1]]]
        matched = set()
        for r in rendered:
            if r is None:
                matched.update(takes_res)
                continue
            if r == "*":
                matched.update(takes_res)  # it covers them, too widely
                if takes_res:
                    self.err(path, "Resource * for %s, which take%s a resource: name it (least "
                                   "privilege)" % (", ".join("%s:%s" % a for a in takes_res),
                                                   "s" if len(takes_res) == 1 else ""))
                continue
            m = re.fullmatch(r"arn:([^:]*):([^:]*):([^:]*):([^:]*):(.*)", r)
            if not m:
                self.err(path, "%r is not an ARN" % r)
                continue
            part, svc, region, account, rest = m.groups()
            if "*" in part or "*" in svc or region == "*" or account == "*" or \
                    "*" in region or "*" in account:
                self.err(path, "%s: wildcard partition, service, region or account" % r)
            if not rest or rest.startswith("*"):
                self.err(path, "%s: wildcard where a name fits" % r)
            else:
                toks = [t for t in re.split(r"[/:]", rest) if t]
                if svc == "s3":
                    name_tok = toks[0]
                elif svc == "iam":
                    name_tok = toks[-1] if len(toks) > 1 else ""
                else:
                    name_tok = toks[1] if len(toks) > 1 else ""
                rtype = toks[0] if toks else ""
                if name_tok.startswith("*") and (svc, rtype) not in UNNAMEABLE:
                    self.err(path, "%s: the %s name is a wildcard where a name fits" % (r, rtype or svc))
            hit = [a for a in takes_res if self.arn_fits(r, a)]
            if not hit and not needs_star and known:
                self.err(path, "%s: none of the statement's actions (%s) applies to it" % (
                    r, ", ".join("%s:%s" % a for a in known)))
            matched.update(hit)
        for a in takes_res:
            if a not in matched:
                self.err(path, "%s:%s applies to none of the statement's resources" % a)

    def arn_fits(self, arn, action):
        svc, name = action
        sd = self.iam[svc]
        pats = list(EXTRA_ARNS.get(action, []))
        for rt in sd["actions"][name]:
            fmts = sd["resources"].get(rt) or sd["resources"].get(rt.lower()) or \
                next((v for k, v in sd["resources"].items() if k.lower() == rt.lower()), [])
            for f in fmts:
                if svc == "s3" and rt.lower() == "bucket":
                    f = "arn:${Partition}:s3:::[^/]+"
                elif svc == "s3" and rt.lower() == "object":
                    f = "arn:${Partition}:s3:::[^/]+/.+"
                rx = re.escape(f).replace(r"\.\*", ".*").replace(r"\[\^/\]\+", "[^/]+").replace(
                    r"\.\+", ".+")
                rx = re.sub(r"\\\$\\\{Partition\\\}", "aws[a-z-]*", rx)
                # a wildcard region or account is reported by itself
                rx = re.sub(r"\\\$\\\{Region\\\}", "[a-z0-9*-]+", rx)
                rx = re.sub(r"\\\$\\\{Account\\\}", "([0-9]{12}|[*])", rx)
                rx = re.sub(r"\\\$\\\{[A-Za-z]+\\\}", "[^:/]+", rx)
                pats.append(rx)
        return any(re.fullmatch(p, arn) for p in pats)


def check_file(path, spec=None, iam=None):
    """Errors of one template, each 'PATH: message'."""
    if spec is None:
        spec, iam = load_data()
    doc, errs = load(path)
    if doc is None:
        return errs
    return errs + Checker(doc, spec, iam).run()


def main(argv):
    if not argv:
        sys.stderr.write(__doc__)
        return 2
    spec, iam = load_data()
    bad = 0
    for p in argv:
        errs = check_file(p, spec, iam)
        for e in errs:
            print("%s: %s" % (p, e))
        bad += len(errs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

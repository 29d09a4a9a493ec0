#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""No two modules of shared/ and fs/ depend on each other (suite unit).

Every .c and .h of shared/ and fs/ is read for its #include "..." lines. A
file belongs to the module of its name (foo.c and foo.h are module foo)
unless GROUPS below puts it in another. Module A depends on B when a file of
A includes a header of B. A cycle (A -> B -> A, or longer) fails the test,
naming the modules and the include lines that close it. An include must
resolve to a header of shared/ or of the including file's own directory:
shared/ sees only shared/ (it knows nothing of the filesystem).

ALLOWED lists the dependencies the check skips, each with its reason. Keep
it short: a cycle is fixed by moving what both sides need below both.
"""

import collections
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import hpcops_test as ht  # noqa: E402

SRC = os.environ.get("HPCOPS_SOURCE_ROOT",
                     os.path.join(os.path.dirname(__file__), "..", ".."))
DIRS = ("shared", "fs")

# Files that are part of a module with another name: "dir/file" -> module.
GROUPS = {
    # The S3 client: s3.h is its API, the s3_*.c and s3_*.h its parts.
    **{"shared/" + f: "s3" for f in (
        "s3_error.c", "s3_ops.c", "s3_paginator.c", "s3_paginator.h",
        "s3_request.c", "s3_request.h", "s3_test.h", "s3_xml.c", "s3_xml.h")},
    # The credential chain: creds.h is its API; creds_private.h is shared by
    # its sources (files, metadata endpoints) and the provider. creds_value
    # (struct creds itself) is a module of its own, below the chain and STS.
    **{"shared/" + f: "creds" for f in (
        "creds_private.h", "creds_util.c", "creds_files.c", "creds_metadata.c")},
    # The metrics registry and its two outputs (text export, HTTP endpoint).
    **{"shared/" + f: "metrics" for f in (
        "metrics_private.h", "metrics_export.c", "metrics_http.c")},
    # The environment half of the command line, private to fs/options*.c.
    "fs/options_env.c": "options",
    "fs/options_env.h": "options",
    # The S3 implementation of the backend table (backend.h).
    "fs/backend_s3.c": "backend",
}

# Dependencies the check skips: (from module, to module) -> why.
ALLOWED = {}

INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)


def module_of(rel):
    """'shared/creds_files.c' -> 'shared/creds'."""
    d, f = rel.split("/", 1)
    return "%s/%s" % (d, GROUPS.get(rel, os.path.splitext(f)[0]))


def read_graph(root):
    """{module: {module: [(file, header), ...]}}, and a list of problems."""
    files = {}
    for d in DIRS:
        p = os.path.join(root, d)
        for f in sorted(os.listdir(p)):
            if f.endswith((".c", ".h")):
                files["%s/%s" % (d, f)] = os.path.join(p, f)
    graph = collections.defaultdict(lambda: collections.defaultdict(list))
    problems = []
    for rel, path in files.items():
        d = rel.split("/", 1)[0]
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        for inc in INCLUDE.findall(text):
            # the compiler's order: the file's own directory, then shared/
            target = next((c for c in ("%s/%s" % (d, inc), "shared/" + inc)
                           if c in files), None)
            if target is None:
                problems.append('%s includes "%s", which is no header of %s%s' % (
                    rel, inc, d + "/", "" if d == "shared" else " or shared/"))
                continue
            a, b = module_of(rel), module_of(target)
            if a != b:
                graph[a][b].append((rel, inc))
    return graph, problems


def find_cycles(graph, allowed):
    """Each cycle once, as a list of modules [A, B, ..., A]."""
    edges = {a: sorted(b for b in bs if (a, b) not in allowed)
             for a, bs in graph.items()}
    cycles, seen = [], set()
    # A cycle through the smallest module on it, found from that module:
    # each cycle is reported once, whichever module it is entered from.
    for start in sorted(edges):
        stack = [(start, iter(edges.get(start, ())))]
        path = [start]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                path.pop()
                continue
            if nxt == start:
                key = tuple(path)
                if key not in seen:
                    seen.add(key)
                    cycles.append(path + [start])
            elif nxt > start and nxt not in path:
                stack.append((nxt, iter(edges.get(nxt, ()))))
                path.append(nxt)
    return cycles


def describe(graph, cycle):
    steps = []
    for a, b in zip(cycle, cycle[1:]):
        why = ", ".join('%s includes "%s"' % w for w in graph[a][b][:2])
        steps.append("  %s -> %s (%s)" % (a, b, why))
    return " -> ".join(cycle) + "\n" + "\n".join(steps)


def test_no_include_cycles():
    graph, problems = read_graph(SRC)
    if problems:
        raise AssertionError("includes the check cannot place:\n  " + "\n  ".join(problems))
    if len(graph) < 10:
        raise AssertionError("only %d modules depend on others: is %s the source tree?" % (
            len(graph), SRC))
    cycles = find_cycles(graph, ALLOWED)
    if cycles:
        raise AssertionError(
            "modules that depend on each other (move what both need below both, or "
            "give a reason in ALLOWED):\n" + "\n".join(describe(graph, c) for c in cycles))


def test_allowed_entries_are_needed():
    """An allowance for a dependency that is gone goes too; GROUPS names real files."""
    graph, _ = read_graph(SRC)
    stale = sorted(e for e in ALLOWED if e[1] not in graph.get(e[0], {}))
    if stale:
        raise AssertionError("ALLOWED names dependencies that no longer exist: %s" % stale)
    unknown = sorted(f for f in GROUPS if not os.path.exists(os.path.join(SRC, f)))
    if unknown:
        raise AssertionError("GROUPS names files that do not exist: %s" % unknown)


def test_a_cycle_is_found():
    """The check itself: a made-up tree with a cycle of three and one of two."""
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "shared"))
        os.makedirs(os.path.join(d, "fs"))
        tree = {
            "shared/a.c": '#include "a.h"\n#include "b.h"\n',
            "shared/a.h": "",
            "shared/b.h": '#include "c.h"\n',
            "shared/c.c": '#include "a.h"\n',
            "shared/c.h": "",
            "fs/p.c": '#include "q.h"\n#include "a.h"\n',
            "fs/p.h": "",
            "fs/q.h": ' #  include "p.h"\n',
        }
        for rel, text in tree.items():
            with open(os.path.join(d, rel), "w") as fh:
                fh.write(text)
        graph, problems = read_graph(d)
        ht.check_eq(problems, [], "problems")
        cycles = find_cycles(graph, {})
        ht.check_eq(sorted(cycles), [["fs/p", "fs/q", "fs/p"],
                                     ["shared/a", "shared/b", "shared/c", "shared/a"]],
                    "cycles")
        text = describe(graph, ["fs/p", "fs/q", "fs/p"])
        if 'fs/q.h includes "p.h"' not in text:
            raise AssertionError("the description names no include line:\n" + text)
        # an allowance breaks the cycle it names, and only that one
        ht.check_eq(find_cycles(graph, {("fs/q", "fs/p"): "x"}),
                    [["shared/a", "shared/b", "shared/c", "shared/a"]], "allowed")
        # shared/ cannot see fs/
        with open(os.path.join(d, "shared", "c.c"), "a") as fh:
            fh.write('#include "p.h"\n')
        _, problems = read_graph(d)
        ht.check_eq(len(problems), 1, "shared/ including a header of fs/")


if __name__ == "__main__":
    ht.main()

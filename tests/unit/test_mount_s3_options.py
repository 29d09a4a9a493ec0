#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""hpcops-mount takes every mount-s3 option (suite unit: no network).

tests/data/mount-s3-options.tsv lists mount-s3's options, the environment it
and the AWS SDKs read, and the fstab words, each with an example value and
what `hpcops-mount --print-config` must then show. Every row runs in flag
form, -o form (and short form where there is one); an option refused as
unknown fails the test. tests/data/mount-s3-cases.tsv holds command lines
mount-s3 accepts or refuses, with the exit status and message hpcops-mount
must give. --help and the TSV must list the same options.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import hpcops_test as ht  # noqa: E402

SRC = os.environ.get("HPCOPS_SOURCE_ROOT",
                     os.path.join(os.path.dirname(__file__), "..", ".."))
BUCKET = "example-bucket"


def exe():
    e = os.environ.get("HPCOPS_MOUNT")
    if not e:
        raise AssertionError("HPCOPS_MOUNT is not set: run through meson")
    return e


def read_tsv(name):
    rows = []
    with open(os.path.join(SRC, "tests", "data", name)) as f:
        header = None
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            cells = line.split("\t")
            if header is None:
                header = cells
                continue
            if len(cells) != len(header):
                raise AssertionError("%s: %d cells, want %d: %r" % (
                    name, len(cells), len(header), line))
            rows.append(dict(zip(header, cells)))
    return rows


def clean_env(home, extra=()):
    """Only what a test sets: no AWS_* from the developer's shell or CI."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home,
           "AWS_CONFIG_FILE": "/nonexistent", "LC_ALL": "C",
           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
           "AWS_EC2_METADATA_DISABLED": "true"}
    for kv in extra:
        k, _, v = kv.partition("=")
        env[k] = v
    return env


def run(args, env):
    return subprocess.run([exe(), "--print-config"] + args, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=30)


def lookup(doc, path):
    cur = doc
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise KeyError(path)
        cur = cur[part]
    return cur


def check(doc, checks, what):
    """checks: 'PATH=JSON ; PATH~TEXT'."""
    if checks == "-":
        return
    for c in checks.split(" ; "):
        m = re.match(r"^([A-Za-z0-9_.-]+?)(=|~)(.*)$", c)
        if not m:
            raise AssertionError("%s: bad check %r" % (what, c))
        path, op, want = m.groups()
        try:
            got = lookup(doc, path)
        except KeyError:
            raise AssertionError("%s: no %s in --print-config output" % (what, path))
        if op == "=":
            ht.check_eq(got, json.loads(want), "%s: %s" % (what, path))
        elif want not in json.dumps(got):
            raise AssertionError("%s: %s is %r, want it to contain %r" % (
                what, path, got, want))


def run_ok(args, env, what):
    r = run(args, env)
    if r.returncode != 0:
        raise AssertionError("%s: exit %d: %s\ncommand: %s" % (
            what, r.returncode, r.stderr.strip(), " ".join([exe()] + args)))
    try:
        return json.loads(r.stdout)
    except ValueError:
        raise AssertionError("%s: --print-config printed no JSON: %r" % (
            what, r.stdout[:500]))


def requires_flags(req):
    """'cache=/x,sse=aws:kms' -> ['--cache', '/x', '--sse', 'aws:kms']."""
    out = []
    if req == "-":
        return out
    for w in req.split(","):
        k, eq, v = w.partition("=")
        out += ["--" + k] + ([v] if eq else [])
    return out


def test_every_option_flag_and_o_form():
    rows = read_tsv("mount-s3-options.tsv")
    n = 0
    with ht.temp_dir() as d:
        mnt = os.path.join(d, "mnt")
        os.mkdir(mnt)
        env = clean_env(d)
        for r in rows:
            if r["kind"] not in ("option", "hidden", "hpcops"):
                continue
            name, ex, req = r["name"], r["example"], r["requires"]
            flag = ["--" + name] + ([] if r["syntax"] == "FLAG" else [ex])
            forms = {"flag": flag + requires_flags(req) + [BUCKET, mnt]}
            if name != "print-config":
                word = name if r["syntax"] == "FLAG" else "%s=%s" % (
                    name, ex.replace(",", "\\,"))
                words = [word] + ([] if req == "-" else req.split(","))
                forms["-o"] = [BUCKET, mnt, "-o", ",".join(words)]
                # '-' and '_' are alike in -o, as in other FUSE filesystems
                forms["-o with _"] = [BUCKET, mnt, "-o",
                                      ",".join(w.split("=")[0].replace("-", "_") +
                                               w[len(w.split("=")[0]):]
                                               for w in words)]
                forms["--name=value"] = ["--%s=%s" % (name, "true" if r["syntax"] == "FLAG"
                                                      else ex)] + requires_flags(req) + \
                    [BUCKET, mnt]
            if r["short"] != "-":
                forms["short"] = [r["short"]] + ([] if r["syntax"] == "FLAG" else [ex]) + \
                    [BUCKET, mnt]
            for form, args in forms.items():
                doc = run_ok(args, env, "--%s (%s)" % (name, form))
                check(doc, r["checks"], "--%s (%s)" % (name, form))
                n += 1
    print("note: %d option forms checked" % n)


def test_fstab_words():
    with ht.temp_dir() as d:
        mnt = os.path.join(d, "mnt")
        os.mkdir(mnt)
        for r in read_tsv("mount-s3-options.tsv"):
            if r["kind"] != "fstab":
                continue
            doc = run_ok([BUCKET, mnt, "-o", r["name"]], clean_env(d), "-o " + r["name"])
            check(doc, r["checks"], "-o " + r["name"])


def test_environment():
    with ht.temp_dir() as d:
        mnt = os.path.join(d, "mnt")
        os.mkdir(mnt)
        for r in read_tsv("mount-s3-options.tsv"):
            if r["kind"] != "env":
                continue
            extra = ["%s=%s" % (r["name"], r["example"])]
            if r["requires"] != "-":
                extra += r["requires"].split(",")
            doc = run_ok([BUCKET, mnt], clean_env(d, extra), r["name"])
            check(doc, r["checks"], r["name"])


def test_cases():
    n = 0
    with ht.temp_dir() as d:
        mnt = os.path.join(d, "mnt")
        os.mkdir(mnt)
        for c in read_tsv("mount-s3-cases.tsv"):
            args = [a.replace("{DIR}", mnt) for a in c["args"].split(" ")]
            extra = [] if c["env"] == "-" else c["env"].split(" ")
            r = run(args, clean_env(d, extra))
            what = "%s (%s)" % (c["args"], c["env"])
            ht.check_eq(r.returncode, int(c["exit"]),
                        "exit status of %s; stderr: %s" % (what, r.stderr.strip()))
            if r.returncode == 0:
                check(json.loads(r.stdout), c["expect"], what)
            elif c["expect"] not in r.stderr:
                raise AssertionError("%s: stderr %r lacks %r" % (
                    what, r.stderr.strip(), c["expect"]))
            n += 1
    print("note: %d command lines checked" % n)


def test_help_and_tsv_list_the_same_options():
    out = subprocess.run([exe(), "--help"], stdout=subprocess.PIPE, text=True,
                         check=True).stdout
    in_help = set(re.findall(r"^\s+(?:-\w, )?--([a-z0-9-]+)", out, re.M)) - \
        {"help", "version"}
    rows = read_tsv("mount-s3-options.tsv")
    shown = {r["name"] for r in rows if r["kind"] in ("option", "hpcops")}
    hidden = {r["name"] for r in rows if r["kind"] == "hidden"}
    if in_help - shown:
        raise AssertionError("in --help but not in mount-s3-options.tsv: %s" %
                             sorted(in_help - shown))
    if shown - in_help:
        raise AssertionError("in mount-s3-options.tsv but not in --help: %s" %
                             sorted(shown - in_help))
    if hidden & in_help:
        raise AssertionError("hidden options shown in --help: %s" % sorted(hidden & in_help))
    if "radosgw 16" not in out or "md5" not in out:
        raise AssertionError("--help does not say md5 is for radosgw 16")


def test_invoked_as_mount_s3():
    """argv[0] mount-s3 (the -Dmount_s3_name=true symlink) takes the same lines."""
    with ht.temp_dir() as d:
        mnt = os.path.join(d, "mnt")
        os.mkdir(mnt)
        link = os.path.join(d, "mount-s3")
        os.symlink(exe(), link)
        r = subprocess.run([link, "--print-config", "--allow-root", "--read-only", "--debug",
                            BUCKET, mnt], env=clean_env(d), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        ht.check_eq(r.returncode, 0, "exit status (%s)" % r.stderr)
        doc = json.loads(r.stdout)
        ht.check_eq(doc["invoked_as"], "mount-s3", "invoked_as")
        check(doc, "options.allow-root=true ; options.read-only=true ; options.debug=true",
              "mount-s3 recipe line")
        r = subprocess.run([link, "--no-such-flag", BUCKET, mnt], env=clean_env(d),
                           stderr=subprocess.PIPE, text=True, timeout=30)
        ht.check_eq(r.returncode, 2, "exit status of an unknown flag")
        if not r.stderr.startswith("mount-s3: "):
            raise AssertionError("messages should name the program as called: %r" % r.stderr)


def test_mount_helper_fake_and_sloppy():
    """As /sbin/mount.fuse.hpcops-mount, mount(8)'s -f (fake), -s, -n, -v, -t work."""
    with ht.temp_dir() as d:
        mnt = os.path.join(d, "mnt")
        os.mkdir(mnt)
        link = os.path.join(d, "mount.fuse.hpcops-mount")
        os.symlink(exe(), link)
        r = subprocess.run([link, BUCKET, mnt, "-f", "-n", "-v", "-o", "rw,allow_delete",
                            "-t", "fuse.hpcops-mount"], env=clean_env(d),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=30)
        ht.check_eq(r.returncode, 0, "mount -f through the helper (%s)" % r.stderr)
        if ht.mounted(mnt):
            raise AssertionError("-f (fake) mounted")
        r = subprocess.run([link, BUCKET, mnt, "-f", "-o", "rw,frobnicate"],
                           env=clean_env(d), stderr=subprocess.PIPE, text=True, timeout=30)
        ht.check_eq(r.returncode, 2, "an unknown -o word without -s")
        r = subprocess.run([link, BUCKET, mnt, "-f", "-s", "-o", "rw,frobnicate"],
                           env=clean_env(d), stderr=subprocess.PIPE, text=True, timeout=30)
        ht.check_eq(r.returncode, 0, "an unknown -o word with -s (%s)" % r.stderr)


def test_fd_mount_point_checks():
    """/dev/fd/N must be an open /dev/fuse descriptor, read-write, as in mount-s3."""
    with ht.temp_dir() as d:
        try:
            fd = os.open("/dev/fuse", os.O_RDWR)
        except OSError as e:
            ht.skip("cannot open /dev/fuse: %s" % e)
        null = os.open("/dev/null", os.O_RDONLY)
        try:
            def go(path, extra=()):
                return subprocess.run([exe(), BUCKET, path] + list(extra),
                                      env=clean_env(d), pass_fds=(fd, null),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, timeout=30)
            r = go("/dev/fd/%d" % null)
            ht.check_eq(r.returncode, 1, "exit status for a /dev/null fd")
            if "/dev/fuse file descriptor" not in r.stderr:
                raise AssertionError("message for a /dev/null fd: %r" % r.stderr)
            r = go("/dev/fd/%d" % fd, ["--auto-unmount"])
            ht.check_eq(r.returncode, 1, "exit status for --auto-unmount with an fd")
            if "ignored with FUSE fd mount point" not in r.stderr:
                raise AssertionError("message for --auto-unmount with an fd: %r" % r.stderr)
            r = go("/dev/fd/%d" % fd, ["--print-config"])
            ht.check_eq(r.returncode, 0, "print-config with an fd (%s)" % r.stderr)
            doc = json.loads(r.stdout)
            ht.check_eq(doc["mount_fd"], fd, "mount_fd")
            ht.check_eq(doc["mount_point"], "/dev/fd/%d" % fd, "mount_point")
            ht.check_eq(doc["warnings"], [], "warnings")
        finally:
            os.close(fd)
            os.close(null)


def test_mount_point_refusals_exit_1():
    with ht.temp_dir() as d:
        f = os.path.join(d, "file")
        open(f, "w").close()
        for path, text in ((os.path.join(d, "nope"), "does not exist"),
                           (f, "is not a directory"), ("/proc", "already mounted")):
            r = subprocess.run([exe(), BUCKET, path], env=clean_env(d),
                               stderr=subprocess.PIPE, text=True, timeout=30)
            ht.check_eq(r.returncode, 1, "exit status for %s (%s)" % (path, r.stderr))
            if text not in r.stderr:
                raise AssertionError("message for %s: %r" % (path, r.stderr))


if __name__ == "__main__":
    ht.main()

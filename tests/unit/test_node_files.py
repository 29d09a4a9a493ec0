#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The files a node gets besides the binaries (suite unit: no network).

- hpcops-mount(1) and hpcops-launch(1), built from man/*.scd: every option
  of --help is in the man page's OPTIONS and the other way round (and the
  commands of hpcops-launch);
- hpcops-mount@.service passes `systemd-analyze verify`;
- `meson install` puts binaries, the mount(8) helper link, the unit, the
  example environment file and the man pages where they belong, and with
  -Dmount_s3_name=true the mount-s3 names.
"""

import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import hpcops_test as ht  # noqa: E402

SRC = os.environ.get("HPCOPS_SOURCE_ROOT",
                     os.path.join(os.path.dirname(__file__), "..", ".."))

# Options and commands the man page may document before `hpcops-launch --help`
# has them (while they are being added); empty when the two agree.
PENDING_LAUNCH_OPTIONS = set()
PENDING_LAUNCH_COMMANDS = set()


def man_page(name):
    d = os.environ.get("HPCOPS_MAN_DIR")
    if not d:
        if os.environ.get("HPCOPS_REQUIRE_SERVERS") == "1":
            raise AssertionError("scdoc not found at configure time: no man pages "
                                 "(scripts/deps installs scdoc)")
        ht.skip("built without man pages (no scdoc)")
    with open(os.path.join(d, name)) as f:
        return f.read()


def man_section(roff, title):
    m = re.search(r"^\.SH %s\n(.*?)(?=^\.SH |\Z)" % re.escape(title), roff, re.M | re.S)
    if not m:
        raise AssertionError("no %s section in the man page" % title)
    return m.group(1)


def man_defined(roff, title):
    """Options (or commands) a man page section defines: its item headers."""
    out = set()
    lines = man_section(roff, title).splitlines()
    for line, nxt in zip(lines, lines[1:] + [""]):
        # an item is a bold header line followed by its indented text
        if line.startswith("\\fB") and nxt.startswith(".RS"):
            out |= set(re.findall(r"\\fB([^\\]+)\\fR", line))
    return {w.replace("\\-", "-") for w in out}


def help_options(text):
    """Options a --help text defines: the left column of lines starting '  -'."""
    out = set()
    for line in text.splitlines():
        if not re.match(r"^ {2,}-", line):
            continue
        left = re.split(r"\s{2,}", line.strip())[0]
        out |= set(re.findall(r"(?<![\w-])(--?[A-Za-z0-9][A-Za-z0-9-]*)", left))
    return out


def run_help(exe, *args):
    return subprocess.run([exe] + list(args), stdout=subprocess.PIPE, text=True,
                          check=True, timeout=30).stdout


def test_hpcops_mount_man_page_matches_help():
    roff = man_page("hpcops-mount.1")
    in_man = man_defined(roff, "OPTIONS")
    in_help = help_options(run_help(os.environ["HPCOPS_MOUNT"], "--help"))
    if in_help - in_man:
        raise AssertionError("in hpcops-mount --help, not in hpcops-mount(1): %s" %
                             sorted(in_help - in_man))
    if in_man - in_help:
        raise AssertionError("in hpcops-mount(1), not in --help: %s" %
                             sorted(in_man - in_help))
    print("note: %d options in both" % len(in_man))


def test_hpcops_launch_man_page_matches_help():
    exe = os.environ["HPCOPS_LAUNCH"]
    roff = man_page("hpcops-launch.1")
    top = run_help(exe, "--help")
    cmds = set(re.findall(r"^  ([a-z]+)\s{2,}", top.split("Commands:")[1].split("\n\n")[0],
                          re.M))
    in_help = help_options(top)
    for c in cmds:
        in_help |= help_options(run_help(exe, c, "--help"))
    in_man = man_defined(roff, "OPTIONS")
    man_cmds = man_defined(roff, "COMMANDS")
    missing = in_help - in_man
    extra = in_man - in_help - PENDING_LAUNCH_OPTIONS
    if missing or extra:
        raise AssertionError("hpcops-launch options: not in the man page %s; only in the "
                             "man page %s" % (sorted(missing), sorted(extra)))
    if cmds - man_cmds or man_cmds - cmds - PENDING_LAUNCH_COMMANDS:
        raise AssertionError("hpcops-launch commands: not in the man page %s; only in the "
                             "man page %s" % (sorted(cmds - man_cmds),
                                              sorted(man_cmds - cmds - PENDING_LAUNCH_COMMANDS)))
    pending = (PENDING_LAUNCH_OPTIONS - in_help) | (PENDING_LAUNCH_COMMANDS - cmds)
    if pending:
        print("note: documented, not yet in --help (another branch): %s" % sorted(pending))


def test_systemd_unit_verifies():
    unit = os.environ.get("HPCOPS_SYSTEMD_UNIT")
    if not shutil.which("systemd-analyze"):
        ht.skip("systemd-analyze is not installed (Debian package systemd)")
    with ht.temp_dir() as d:
        text = open(unit).read()
        if "ExecStartPre=-" not in text or "-uz %f" not in text:
            raise AssertionError("the unit does not clear a dead mount before starting")
        for want in ("Restart=on-failure", "Type=forking", "After=network-online.target",
                     "EnvironmentFile=/etc/hpcops/mount.d/%i.env"):
            if want not in text:
                raise AssertionError("the unit lacks %s" % want)
        # verify checks that ExecStart exists: point it at the binary just built
        exe = os.environ["HPCOPS_MOUNT"]
        text = re.sub(r"^ExecStart=\S+", "ExecStart=" + exe, text, flags=re.M)
        path = os.path.join(d, "hpcops-mount@.service")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", path],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=60)
        if "Failed to" in r.stdout and "sysinit.target" in r.stdout:
            ht.skip("systemd-analyze cannot load the default units here: %s" % r.stdout)
        ht.check_eq(r.returncode, 0, "systemd-analyze verify exit status (%s)" % r.stdout)
        ht.check_eq(r.stdout.strip(), "", "systemd-analyze verify messages")


def install(build, destdir, *meson_opts):
    if meson_opts:
        subprocess.run(["meson", "configure", build] + list(meson_opts), check=True,
                       stdout=subprocess.DEVNULL, timeout=120)
    r = subprocess.run(["meson", "install", "-C", build, "--destdir", destdir, "--quiet"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=600)
    if r.returncode:
        raise AssertionError("meson install failed:\n%s" % r.stdout[-3000:])


def test_meson_install_layout():
    """A separate build dir with -Dtests=false, installed into a DESTDIR."""
    if not shutil.which("meson"):
        ht.skip("meson not installed")
    with ht.temp_dir() as d:
        build = os.path.join(d, "build")
        r = subprocess.run(["meson", "setup", build, SRC, "--prefix", "/usr", "-Dtests=false",
                            "--buildtype", "plain"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=300)
        if r.returncode:
            raise AssertionError("meson setup failed:\n%s" % r.stdout[-3000:])
        root = os.path.join(d, "root")
        install(build, root)
        want = ["usr/bin/hpcops-mount", "usr/bin/hpcops-launch",
                "usr/lib/systemd/system/hpcops-mount@.service",
                "usr/share/hpcops/hpcops-mount.env.example"]
        if os.environ.get("HPCOPS_MAN_DIR"):
            want += ["usr/share/man/man1/hpcops-mount.1", "usr/share/man/man1/hpcops-launch.1"]
        for w in want:
            if not os.path.isfile(os.path.join(root, w)):
                raise AssertionError("meson install did not install /%s" % w)
        link = os.path.join(root, "usr/sbin/mount.fuse.hpcops-mount")
        ht.check_eq(os.readlink(link), "/usr/bin/hpcops-mount", "mount(8) helper link")
        if os.path.lexists(os.path.join(root, "usr/bin/mount-s3")):
            raise AssertionError("mount-s3 installed without -Dmount_s3_name=true")
        unit = open(os.path.join(root, "usr/lib/systemd/system/hpcops-mount@.service")).read()
        if "ExecStart=/usr/bin/hpcops-mount " not in unit:
            raise AssertionError("the unit does not run the installed binary:\n%s" % unit)
        root2 = os.path.join(d, "root2")
        install(build, root2, "-Dmount_s3_name=true")
        ht.check_eq(os.readlink(os.path.join(root2, "usr/bin/mount-s3")), "hpcops-mount",
                    "mount-s3 link")
        ht.check_eq(os.readlink(os.path.join(root2, "usr/sbin/mount.mount-s3")),
                    "/usr/bin/hpcops-mount", "mount.mount-s3 link")


if __name__ == "__main__":
    ht.main()

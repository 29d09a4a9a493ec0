#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""hpcops-mount where mount-s3 was (suite mount: real FUSE mounts on radosgw).

- the bucket as s3://BUCKET/PREFIX/;
- DIR as /dev/fd/N: /dev/fuse opened and mounted with mount(2) by this
  test, as a privileged helper (a CSI driver) does, the daemon given the fd;
- the ParallelCluster recipe's line `mount-s3 --allow-root --read-only
  --debug BUCKET DIR`, run through a `mount-s3` symlink, detaching;
- `mount -t fuse.hpcops-mount` through mount(8) both ways it finds the
  program: mount.fuse3 and the fixed PATH (here /usr/local/bin, replaced in
  a private mount namespace), and /sbin/mount.fuse.hpcops-mount (an overlay
  on /usr/sbin in a private namespace), plus an /etc/fstab line;
- hpcops-mount@.service's commands, run as systemd runs them, after the
  daemon was killed: the dead mount is cleared and the bucket mounted again.
"""

import ctypes
import errno
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import hpcops_test as ht  # noqa: E402

MS_NOSUID, MS_NODEV = 2, 4
_state = {}


def bucket():
    if "bucket" not in _state:
        b = ht.fresh_bucket("dropin")
        s3 = ht.s3_client()
        s3.put_object(Bucket=b, Key="top.txt", Body=b"top\n")
        s3.put_object(Bucket=b, Key="pre/in.txt", Body=b"inside the prefix\n")
        s3.put_object(Bucket=b, Key="pre/sub/deep.txt", Body=b"deep\n")
        _state["bucket"] = b
    return _state["bucket"]


def daemon_env(extra=None):
    """The daemon's environment: the test user's keys, the endpoint in AWS_ENDPOINT_URL."""
    se = ht.s3_env()
    env = dict(os.environ)
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN",
              "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL_S3"):
        env.pop(k, None)
    env.update(AWS_ACCESS_KEY_ID=se.access_key, AWS_SECRET_ACCESS_KEY=se.secret_key,
               AWS_REGION=se.region, AWS_ENDPOINT_URL=se.endpoint,
               AWS_EC2_METADATA_DISABLED="true")
    env.update(extra or {})
    return env


def daemons_on(mnt):
    """PIDs of hpcops-mount processes whose command line names @mnt."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if mnt.encode() in argv and any(b"hpcops-mount" in a or b"mount-s3" in a
                                        or b"mount.fuse" in a for a in argv[:1]):
            out.append(int(pid))
    return out


def wait_gone(pids, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [p for p in pids if os.path.exists("/proc/%d" % p)]:
            return True
        time.sleep(0.1)
    return False


def unmount(mnt):
    for _ in range(50):
        if not ht.mounted(mnt):
            return
        if subprocess.run(["fusermount3", "-u", mnt], stderr=subprocess.DEVNULL).returncode == 0:
            return
        time.sleep(0.1)
    subprocess.run(["fusermount3", "-uz", mnt], stderr=subprocess.DEVNULL)


def read(path, timeout=30):
    """Read a file in a child, so a hung mount fails the test instead of blocking it."""
    r = subprocess.run(["cat", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    if r.returncode:
        raise AssertionError("cat %s: %s" % (path, r.stderr.decode().strip()))
    return r.stdout


def test_s3_uri_with_prefix():
    b = bucket()
    with ht.Mount("s3://%s/pre/" % b, ["--read-only"]) as m:
        ht.check_eq(sorted(os.listdir(m.path)), ["in.txt", "sub"], "names under the prefix")
        ht.check_eq(read(os.path.join(m.path, "sub", "deep.txt")), b"deep\n", "bytes")
    with ht.Mount("s3://%s" % b, ["--read-only"]) as m:
        ht.check_eq(sorted(os.listdir(m.path)), ["pre", "top.txt"], "names of the bucket")


def test_dev_fd_mount_by_a_privileged_helper():
    """Open /dev/fuse, mount(2) it with fd=N, hand N to the daemon, unmount."""
    se = ht.s3_env()
    b = bucket()
    libc = ctypes.CDLL(None, use_errno=True)
    with ht.temp_dir() as mnt:
        fd = os.open("/dev/fuse", os.O_RDWR)
        try:
            data = "fd=%d,rootmode=40000,user_id=%d,group_id=%d,default_permissions" % (
                fd, os.getuid(), os.getgid())
            if libc.mount(b"hpcops-fd-test", mnt.encode(), b"fuse.hpcops-mount",
                          MS_NOSUID | MS_NODEV, data.encode()) != 0:
                e = ctypes.get_errno()
                raise AssertionError("mount(2) of /dev/fuse: %s" % os.strerror(e))
            log = tempfile.TemporaryFile()
            p = subprocess.Popen([os.environ["HPCOPS_MOUNT"], "--endpoint-url", se.endpoint,
                                  "--force-path-style", "-f", "--read-only",
                                  "%s:pre/" % b, "/dev/fd/%d" % fd],
                                 env=daemon_env(), pass_fds=(fd,), stdout=log, stderr=log)
        finally:
            os.close(fd)  # step 4 of mount-s3's recipe: the helper closes its copy
        try:
            ht.check_eq(read(os.path.join(mnt, "in.txt")), b"inside the prefix\n",
                        "bytes through the fd mount")
            try:
                open(os.path.join(mnt, "new.txt"), "wb")
                raise AssertionError("create on --read-only succeeded")
            except OSError as e:
                ht.check_eq(e.errno, errno.EROFS, "errno of create with --read-only")
        finally:
            if libc.umount2(mnt.encode(), 0) != 0:
                libc.umount2(mnt.encode(), 2)  # MNT_DETACH
            try:
                rc = p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
            log.seek(0)
            out = log.read().decode(errors="replace")
            if ht.mounted("/dev/fuse"):
                # a daemon that took /dev/fd/N for a path resolves it to
                # /dev/fuse and mounts over the device: undo that at once
                subprocess.run(["fusermount3", "-uz", "/dev/fuse"])
                raise AssertionError("the daemon mounted over /dev/fuse (it resolved "
                                     "/dev/fd/%d as a path): %s" % (fd, out[-2000:]))
        ht.check_eq(rc, 0, "daemon exit status after the helper unmounted (%s)" % out[-2000:])
        if ht.mounted(mnt):
            raise AssertionError("still mounted")


def test_parallelcluster_recipe_line_as_mount_s3():
    """`mount-s3 --allow-root --read-only --debug BUCKET DIR`, exactly, detaching."""
    b = bucket()
    with ht.temp_dir() as d:
        mnt = os.path.join(d, "ArtifactBucket")
        os.mkdir(mnt)
        link = os.path.join(d, "mount-s3")
        os.symlink(os.environ["HPCOPS_MOUNT"], link)
        r = subprocess.run([link, "--allow-root", "--read-only", "--debug", b, mnt],
                           env=daemon_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        pids = daemons_on(mnt)
        try:
            ht.check_eq(r.returncode, 0, "mount-s3 exit status (%s)" % r.stderr)
            if not ht.mounted(mnt):
                raise AssertionError("mount-s3 returned 0 and nothing is mounted")
            ht.check_eq(read(os.path.join(mnt, "top.txt")), b"top\n", "bytes")
            try:
                open(os.path.join(mnt, "new.txt"), "wb")
                raise AssertionError("create on --read-only succeeded")
            except OSError as e:
                ht.check_eq(e.errno, errno.EROFS, "errno of create with --read-only")
        finally:
            unmount(mnt)
        if not wait_gone(pids):
            raise AssertionError("the daemon did not exit after unmount: %s" % pids)


def in_private_namespace(script, env):
    """Run bash @script in a private mount namespace; return (status, output)."""
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-euc", script],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=180)
    return r.returncode, r.stdout


NS_CHECK = r"""
cleanup() { umount "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true; }
trap cleanup EXIT
%(mount)s
grep -q " $MNT fuse.hpcops-mount " /proc/self/mounts || { echo "NOT MOUNTED"; exit 3; }
echo "BYTES=$(cat "$MNT/in.txt")"
if touch "$MNT/new.txt" 2>/dev/null; then echo "WRITABLE"; fi
umount "$MNT"
for i in $(seq 300); do
  pgrep -f "hpcops-mount.* $MNT" >/dev/null || pgrep -f "mount.fuse.hpcops-mount.* $MNT" >/dev/null || break
  sleep 0.1
done
echo "DONE"
"""


def check_ns_output(rc, out, what):
    ht.check_eq(rc, 0, "%s: exit status; output:\n%s" % (what, out))
    if "BYTES=inside the prefix" not in out:
        raise AssertionError("%s: wrong bytes or none:\n%s" % (what, out))
    if "WRITABLE" in out:
        raise AssertionError("%s: ro was not applied:\n%s" % (what, out))
    if "DONE" not in out:
        raise AssertionError("%s: did not finish:\n%s" % (what, out))


def mount_opts():
    se = ht.s3_env()
    return "ro,nosuid,nodev,_netdev,endpoint_url=%s,force_path_style,region=%s" % (
        se.endpoint, se.region)


def test_mount8_type_through_mount_fuse3_and_path():
    """mount -t fuse.hpcops-mount: mount.fuse3 finds hpcops-mount in /usr/local/bin."""
    b = bucket()
    with ht.temp_dir() as d:
        mnt, binv = os.path.join(d, "mnt"), os.path.join(d, "bin")
        os.mkdir(mnt)
        os.mkdir(binv)
        os.symlink(os.environ["HPCOPS_MOUNT"], os.path.join(binv, "hpcops-mount"))
        script = ("MNT=%s\n" % shlex.quote(mnt)) + NS_CHECK % {"mount": (
            "mount --bind %s /usr/local/bin\n"
            "[ ! -e /usr/sbin/mount.fuse.hpcops-mount ] || "
            "{ echo 'a mount.fuse.hpcops-mount is installed: not this path'; exit 4; }\n"
            "mount -t fuse.hpcops-mount %s \"$MNT\" -o %s\n" % (
                shlex.quote(binv), shlex.quote("s3://%s/pre/" % b), shlex.quote(mount_opts())))}
        rc, out = in_private_namespace(script, daemon_env())
        if rc == 4:
            ht.skip(out.strip())
        check_ns_output(rc, out, "mount -t fuse.hpcops-mount via mount.fuse3")


def test_mount8_helper_link_and_fstab():
    """/sbin/mount.fuse.hpcops-mount run by mount(8) itself, and an /etc/fstab line."""
    b = bucket()
    with ht.temp_dir() as d:
        mnt = os.path.join(d, "mnt")
        for sub in ("mnt", "upper", "work"):
            os.mkdir(os.path.join(d, sub))
        fstab = os.path.join(d, "fstab")
        with open(fstab, "w") as f:
            f.write("%s:pre/ %s fuse.hpcops-mount %s 0 0\n" % (b, mnt, mount_opts()))
        head = (
            "mount -t overlay overlay -o lowerdir=/usr/sbin,upperdir=%(d)s/upper,"
            "workdir=%(d)s/work /usr/sbin || { echo 'no overlayfs here'; exit 4; }\n"
            "ln -sf %(exe)s /usr/sbin/mount.fuse.hpcops-mount\n"
            # nothing in PATH: only the helper link can be what mount(8) runs
            "mount -t tmpfs none /usr/local/bin\n" % {
                "d": shlex.quote(d), "exe": shlex.quote(os.environ["HPCOPS_MOUNT"])})
        for what, cmd in (
                ("mount -t fuse.hpcops-mount via /sbin/mount.fuse.hpcops-mount",
                 "mount -t fuse.hpcops-mount %s \"$MNT\" -o %s\n" % (
                     shlex.quote("%s:pre/" % b), shlex.quote(mount_opts()))),
                ("mount DIR from an fstab line",
                 "mount --bind %s /etc/fstab\nmount \"$MNT\"\n" % shlex.quote(fstab))):
            script = ("MNT=%s\n" % shlex.quote(mnt)) + NS_CHECK % {"mount": head + cmd}
            rc, out = in_private_namespace(script, daemon_env())
            if rc == 4:
                ht.skip(out.strip())
            check_ns_output(rc, out, what)


def unit_commands(unit_text, mnt, instance):
    """ExecStartPre/ExecStart/ExecStop of the unit with %f/%i expanded, in order."""
    cmds = []
    for line in unit_text.splitlines():
        m = re.match(r"^(ExecStartPre|ExecStart|ExecStop|ExecStopPost)=(.*)$", line)
        if m:
            cmds.append((m.group(1), m.group(2).replace("%f", mnt).replace("%i", instance)))
    return cmds


def systemd_expand(cmd, env):
    """Exec line to argv as systemd does: '-' prefix, $VAR split, ${VAR} one word."""
    tolerate = cmd.startswith("-")
    argv = []
    for w in shlex.split(cmd.lstrip("-")):
        m = re.match(r"^\$(\w+)$", w)
        if m:
            argv += env.get(m.group(1), "").split()
        else:
            argv.append(re.sub(r"\$\{(\w+)\}", lambda x: env.get(x.group(1), ""), w))
    return tolerate, argv


def run_unit(cmds, phase, env, exe):
    for kind, cmd in cmds:
        if kind not in phase:
            continue
        tolerate, argv = systemd_expand(cmd, env)
        if argv[0].endswith("/hpcops-mount"):
            argv[0] = exe  # the unit names the installed path; run the built binary
        r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        if r.returncode and not tolerate:
            return r.returncode, "%s failed: %s" % (" ".join(argv), r.stdout)
    return 0, ""


def test_systemd_unit_commands_recover_from_a_crash():
    se = ht.s3_env()
    b = bucket()
    unit = open(os.environ["HPCOPS_SYSTEMD_UNIT"]).read()
    with ht.temp_dir() as d:
        mnt = os.path.join(d, "data")
        instance = subprocess.run(["systemd-escape", "--path", mnt], stdout=subprocess.PIPE,
                                  text=True, check=True).stdout.strip()
        cmds = unit_commands(unit, mnt, instance)
        # the environment file of the instance, as systemd reads it
        envfile = {"HPCOPS_BUCKET": "s3://%s/pre/" % b,
                   "HPCOPS_MOUNT_OPTIONS": "--read-only --endpoint-url %s --force-path-style"
                                           % se.endpoint}
        env = daemon_env(envfile)
        exe = os.environ["HPCOPS_MOUNT"]
        try:
            rc, why = run_unit(cmds, ("ExecStartPre", "ExecStart"), env, exe)
            ht.check_eq(rc, 0, "first start: %s" % why)
            ht.check_eq(read(os.path.join(mnt, "in.txt")), b"inside the prefix\n", "bytes")
            pids = daemons_on(mnt)
            if not pids:
                raise AssertionError("no daemon found for %s" % mnt)
            for p in pids:
                os.kill(p, signal.SIGKILL)  # the daemon crashes
            wait_gone(pids)
            try:
                os.stat(os.path.join(mnt, "in.txt"))
                raise AssertionError("the mount still answers after the daemon was killed")
            except OSError as e:
                ht.check_eq(e.errno, errno.ENOTCONN, "errno on the dead mount")
            # without the unit's ExecStartPre hpcops-mount refuses the dead mount point
            r = subprocess.run([exe] + envfile["HPCOPS_MOUNT_OPTIONS"].split() +
                               [envfile["HPCOPS_BUCKET"], mnt], env=env,
                               stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               timeout=60)
            ht.check_eq(r.returncode, 1, "mounting on the dead mount point")
            if "dead FUSE mount" not in r.stderr or "fusermount3 -u" not in r.stderr:
                raise AssertionError("message on a dead mount point: %r" % r.stderr)
            # Restart=on-failure: systemd runs the start commands again
            rc, why = run_unit(cmds, ("ExecStartPre", "ExecStart"), env, exe)
            ht.check_eq(rc, 0, "restart after the crash: %s" % why)
            ht.check_eq(read(os.path.join(mnt, "in.txt")), b"inside the prefix\n",
                        "bytes after the restart")
            pids = daemons_on(mnt)
            rc, why = run_unit(cmds, ("ExecStop", "ExecStopPost"), env, exe)
            ht.check_eq(rc, 0, "stop: %s" % why)
            if ht.mounted(mnt):
                raise AssertionError("still mounted after ExecStop")
            if not wait_gone(pids):
                raise AssertionError("the daemon did not exit after ExecStop")
        finally:
            if ht.mounted(mnt):
                subprocess.run(["fusermount3", "-uz", mnt])
            for p in daemons_on(mnt):
                os.kill(p, signal.SIGKILL)


if __name__ == "__main__":
    ht.main()

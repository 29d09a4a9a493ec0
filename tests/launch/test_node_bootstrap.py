#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# scripts/hpcops-node.sh, the cluster template's node bootstrap, as a node
# runs it: the source tarball made by `hpcops-node.sh package` is put in the
# bucket (radosgw), the bootstrap fetches it with boto3 through
# AWS_ENDPOINT_URL_S3, builds and installs into a temporary prefix, and runs
# the head node's step. A second run of the same tarball does not rebuild;
# a missing tarball is a clear error. Needs radosgw; builds hpcops once
# (about 15 s of CPU, more wall time on a loaded machine).
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import hpcops_test as ht  # noqa: E402

SRC = os.environ.get("HPCOPS_SOURCE_ROOT",
                     os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
NODE = os.path.join(SRC, "scripts", "hpcops-node.sh")
KEY = "bootstrap/hpcops-src.tar.gz"  # where the bootstrap looks in the step's bucket


def repo_version():
    with open(os.path.join(SRC, "meson.build")) as f:
        m = re.search(r"version\s*:\s*'([^']+)'", f.read())
    return m.group(1)


def node_env(prefix, tmp, source=None):
    """A node's environment: S3 credentials and endpoint, nothing else of AWS."""
    env = ht.s3_env()
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("AWS_") and k not in ("HPCOPS_SOURCE", "HPCOPS_PREFIX")}
    e.update(AWS_ACCESS_KEY_ID=env.access_key, AWS_SECRET_ACCESS_KEY=env.secret_key,
             AWS_REGION=env.region, AWS_ENDPOINT_URL_S3=env.endpoint,
             AWS_EC2_METADATA_DISABLED="true", HPCOPS_PREFIX=prefix, TMPDIR=tmp,
             # the system files (/sbin/mount.fuse.hpcops-mount, the unit) go
             # here, not into this machine's /usr/sbin and /etc
             HPCOPS_SYSROOT=os.path.join(tmp, "sysroot"))
    e.pop("HPCOPS_MOUNT_S3_NAME", None)
    if source:
        e["HPCOPS_SOURCE"] = source
    return e


def bootstrap(env, *args, timeout=900):
    return subprocess.run([NODE] + list(args), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)


def check(p, want_rc, what):
    if p.returncode != want_rc:
        raise AssertionError("%s: exit %d, wanted %d\nstdout:\n%s\nstderr:\n%s" % (
            what, p.returncode, want_rc, p.stdout, p.stderr[-4000:]))


def test_package_upload_install_and_run_the_head_node_step():
    ht.s3_env()
    if subprocess.run(["git", "-C", SRC, "rev-parse", "HEAD"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode != 0:
        ht.skip("%s is not a git checkout: `package` needs git archive" % SRC)
    ver = repo_version()
    with ht.temp_dir("hpcops-t-node-") as tmp:
        tarball = os.path.join(tmp, "hpcops-src.tar.gz")
        p = subprocess.run([NODE, "package", tarball], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=120)
        check(p, 0, "package")
        listing = subprocess.run(["tar", "-tzf", tarball], stdout=subprocess.PIPE,
                                 text=True, check=True).stdout.split()
        for want in ("hpcops-%s/meson.build" % ver, "hpcops-%s/launcher/main.c" % ver,
                     "hpcops-%s/fs/meson.build" % ver):
            if want not in listing:
                raise AssertionError("%s not in the packaged tarball" % want)

        bucket = ht.fresh_bucket("node")
        ht.s3_client().upload_file(tarball, bucket, KEY)
        prefix = os.path.join(tmp, "prefix")

        # As the template's head node runs it: no HPCOPS_SOURCE, the tarball
        # is found next to the bootstrap in the bucket the step names.
        p = bootstrap(node_env(prefix, tmp), "submit", "--bucket", bucket, "--help")
        check(p, 0, "bootstrap submit --help")
        if not p.stdout.startswith("usage: hpcops-launch submit"):
            raise AssertionError("the step did not run hpcops-launch submit:\n" + p.stdout)
        if "fetching s3://%s/%s" % (bucket, KEY) not in p.stderr:
            raise AssertionError("not fetched from the step's bucket:\n" + p.stderr)
        if "building hpcops %s" % ver not in p.stderr:
            raise AssertionError("no build on a fresh prefix:\n" + p.stderr)

        exe = os.path.join(prefix, "bin", "hpcops-launch")
        v = subprocess.run([exe, "--version"], stdout=subprocess.PIPE, text=True, check=True)
        ht.check_eq(v.stdout.strip(), "hpcops-launch %s" % ver, "installed --version")
        for f in ("bin/hpcops-mount", "scripts/example-workload.sh"):
            if not os.access(os.path.join(prefix, f), os.X_OK):
                raise AssertionError("%s not installed (executable) in the prefix" % f)
        mtime = os.stat(exe).st_mtime_ns
        check_system_files(prefix, os.path.join(tmp, "sysroot"))

        # Same tarball again, named explicitly: no rebuild, the step runs.
        p = bootstrap(node_env(prefix, tmp, "s3://%s/%s" % (bucket, KEY)),
                      "launch", "--version")
        check(p, 0, "bootstrap launch --version")
        ht.check_eq(p.stdout.strip(), "hpcops-launch %s" % ver, "step output")
        if "not rebuilding" not in p.stderr:
            raise AssertionError("rebuilt an installed tarball:\n" + p.stderr)
        ht.check_eq(os.stat(exe).st_mtime_ns, mtime, "hpcops-launch untouched")
        leftovers = [d for d in os.listdir(tmp) if d.startswith("hpcops-node.")]
        ht.check_eq(leftovers, [], "build directories left in TMPDIR")
        ht.delete_bucket(bucket)


def check_system_files(prefix, sysroot):
    """What mount(8), fstab and systemd need beyond the prefix."""
    exe = os.path.join(prefix, "bin", "hpcops-mount")
    link = os.path.join(sysroot, "usr", "sbin", "mount.fuse.hpcops-mount")
    ht.check_eq(os.readlink(link), exe, "/sbin/mount.fuse.hpcops-mount")
    unit = os.path.join(sysroot, "etc", "systemd", "system", "hpcops-mount@.service")
    with open(unit) as f:
        if "ExecStart=%s " % exe not in f.read():
            raise AssertionError("the installed unit does not run %s" % exe)
    for page in ("hpcops-mount.1", "hpcops-launch.1"):
        if not os.path.isfile(os.path.join(prefix, "share", "man", "man1", page)):
            raise AssertionError("man page %s not installed" % page)


def test_mount_service_step_writes_the_instance():
    """mount-service BUCKET DIR OPTS: the environment file of the unit's instance."""
    ht.s3_env()
    if subprocess.run(["git", "-C", SRC, "rev-parse", "HEAD"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode != 0:
        ht.skip("%s is not a git checkout: `package` needs git archive" % SRC)
    with ht.temp_dir("hpcops-t-node-") as tmp:
        tarball = os.path.join(tmp, "hpcops-src.tar.gz")
        check(subprocess.run([NODE, "package", tarball], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, timeout=120), 0, "package")
        prefix = os.path.join(tmp, "prefix")
        env = node_env(prefix, tmp, tarball)
        env["HPCOPS_MOUNT_S3_NAME"] = "true"
        p = bootstrap(env, "mount-service", "s3://my-bucket/results/", "/mnt/data",
                      "--allow-other", "--metadata-ttl", "5")
        check(p, 0, "mount-service")
        sysroot = os.path.join(tmp, "sysroot")
        check_system_files(prefix, sysroot)
        envf = os.path.join(sysroot, "etc", "hpcops", "mount.d", "mnt-data.env")
        with open(envf) as f:
            text = f.read()
        for want in ("HPCOPS_BUCKET=s3://my-bucket/results/\n",
                     'HPCOPS_MOUNT_OPTIONS="--allow-other --metadata-ttl 5"\n'):
            if want not in text:
                raise AssertionError("%s lacks %r:\n%s" % (envf, want, text))
        for name, where in (("mount-s3", "usr/local/bin"), ("mount.mount-s3", "usr/sbin")):
            ht.check_eq(os.readlink(os.path.join(sysroot, where, name)),
                        os.path.join(prefix, "bin", "hpcops-mount"), name)
        if not os.path.islink(os.path.join(prefix, "bin", "mount-s3")):
            raise AssertionError("HPCOPS_MOUNT_S3_NAME=true did not install PREFIX/bin/mount-s3")
        if "systemctl enable --now hpcops-mount@mnt-data.service" not in p.stderr:
            raise AssertionError("no word on how to start the unit:\n" + p.stderr)


def test_missing_tarball_is_a_clear_error():
    ht.s3_env()
    bucket = ht.fresh_bucket("node")
    with ht.temp_dir("hpcops-t-node-") as tmp:
        prefix = os.path.join(tmp, "prefix")
        p = bootstrap(node_env(prefix, tmp), "mount", bucket, os.path.join(tmp, "mnt"),
                      timeout=120)
        check(p, 1, "bootstrap with no tarball in the bucket")
        want = "s3://%s/%s does not exist" % (bucket, KEY)
        if want not in p.stderr or "hpcops-node.sh package" not in p.stderr:
            raise AssertionError("unclear message:\n" + p.stderr)
        if os.path.exists(os.path.join(prefix, "bin")) or os.path.exists(
                os.path.join(tmp, "mnt")):
            raise AssertionError("something was installed or mounted without a tarball")
    ht.delete_bucket(bucket)


if __name__ == "__main__":
    ht.main()

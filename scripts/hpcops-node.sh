#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# hpcops-node.sh: the cluster template's node bootstrap (HpcopsBootstrap).
# ParallelCluster runs it as root from OnNodeConfigured with the template's
# arguments. It installs hpcops on the node (Debian/Ubuntu packages, the
# source tarball from S3 fetched with python3-boto3, a meson build into
# HPCOPS_PREFIX), then runs the node's step:
#   head node:      hpcops-node.sh submit --run-id RUN --bucket B ...
#                   -> exec PREFIX/bin/hpcops-launch submit --run-id RUN --bucket B ...
#   compute nodes:  hpcops-node.sh mount BUCKET DIR [hpcops-mount options]
#                   -> exec PREFIX/bin/hpcops-mount [options] BUCKET DIR
#                   or mount-service BUCKET DIR [options]: the same through
#                   hpcops-mount@.service (kept across reboots and crashes)
# and, on a developer's machine, packages the source tarball it installs:
#   scripts/hpcops-node.sh package OUT.tar.gz [REV]
# and publishes both into a bucket (what scripts/buildspec.yml does per run):
#   scripts/hpcops-node.sh publish BUCKET TARBALL [PREFIX]
# Run it with --help for the whole usage. Idempotent: a node whose install
# came from the same tarball (same sha256 and version) is not rebuilt.
set -euo pipefail

PREFIX=${HPCOPS_PREFIX:-/opt/hpcops}
# The mount's Prometheus metrics file on every node: hpcops-mount rewrites it,
# the job wrapper reads it before and after each job (its I/O in the record).
METRICS=${HPCOPS_MOUNT_METRICS:-/run/hpcops/mount-metrics.prom}
DEFAULT_SOURCE=s3://hpcops-artifacts/bootstrap/hpcops-src.tar.gz
SOURCE_KEY=bootstrap/hpcops-src.tar.gz
ME=hpcops-node

# The build section of scripts/deps, plus what this script itself uses.
BUILD_PACKAGES=(
	gcc meson ninja-build pkg-config git
	libfuse3-dev fuse3 libcurl4-openssl-dev libxml2-dev libssl-dev
	libjansson-dev libcmocka-dev
	python3 python3-boto3 python3-botocore ca-certificates
	scdoc
)

say() { echo "$ME: $*" >&2; }
die() {
	echo "$ME: error: $*" >&2
	exit 1
}

usage() {
	cat <<EOF
usage: hpcops-node.sh STEP [ARGS...]

Installs hpcops on this node (into \$HPCOPS_PREFIX, default /opt/hpcops),
then runs STEP. The cluster template (scripts/cluster-template.yaml) calls it
from OnNodeConfigured through its HpcopsBootstrap parameter.

Steps:
  submit ARGS...            install, then exec hpcops-launch submit ARGS...
                            (the head node: sbatch the run's workloads)
  mount BUCKET DIR [OPTS]   install, mkdir -p DIR, then exec
                            hpcops-mount [OPTS] BUCKET DIR (compute nodes);
                            nothing to do if DIR is already a mount point
  mount-service BUCKET DIR [OPTS]
                            install, write /etc/hpcops/mount.d/INSTANCE.env
                            and enable hpcops-mount@INSTANCE.service (INSTANCE
                            = systemd-escape --path DIR): mounted at boot,
                            restarted after a crash
  launch ARGS...            install, then exec hpcops-launch ARGS...
  install                   install only
  package OUT.tar.gz [REV]  (in a git checkout) write the source tarball
                            this script installs: git archive of REV
                            (default HEAD), committed files only
  publish BUCKET TARBALL [PREFIX]
                            upload TARBALL to s3://BUCKET/PREFIX/hpcops-src.tar.gz
                            and this script, set to install that tarball, to
                            s3://BUCKET/PREFIX/hpcops-node.sh (PREFIX default
                            bootstrap); prints the latter: the template's
                            HpcopsBootstrap
  -h, --help                this help

Environment:
  HPCOPS_PREFIX   install prefix (default /opt/hpcops); every node of a
                  cluster must use the same one (jobs run PREFIX/bin/...)
  HPCOPS_MOUNT_S3_NAME=true   also install hpcops-mount as mount-s3
                  (/usr/local/bin/mount-s3, /sbin/mount.mount-s3), for
                  recipes written for Mountpoint
  HPCOPS_SYSROOT  where the system files go (default /): the mount(8)
                  helper /sbin/mount.fuse.hpcops-mount, the unit in
                  /etc/systemd/system, /etc/hpcops/mount.d/
  HPCOPS_SOURCE   the source tarball: s3://BUCKET/KEY or a local file.
                  Default: s3://B/$SOURCE_KEY where B is the step's bucket
                  (submit --bucket B, mount B), else $DEFAULT_SOURCE
  AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL   S3 endpoint for the download
  AWS_REGION, AWS_ACCESS_KEY_ID, AWS_PROFILE, ...   as for boto3; on EC2
                  the instance profile's credentials are used
  HPCOPS_MOUNT_METRICS  the mount's metrics file (default
                  /run/hpcops/mount-metrics.prom): \`mount\` passes it as
                  --metrics-file, \`submit\` hands it to the jobs, whose records
                  then carry their I/O through the mount (when the installed
                  hpcops-mount has --metrics-file)

Publish (once per hpcops version):
  scripts/hpcops-node.sh package hpcops-src.tar.gz
  aws s3 cp hpcops-src.tar.gz s3://B/$SOURCE_KEY
  aws s3 cp scripts/hpcops-node.sh s3://B/bootstrap/hpcops-node.sh
and give the stack --parameter HpcopsBootstrap=s3://B/bootstrap/hpcops-node.sh.
EOF
}

# ------------------------------------------------------------------ package

# package OUT [REV]: git archive of REV as a .tar.gz with one top directory.
package() {
	local out=${1:-} rev=${2:-HEAD} root ver
	[ -n "$out" ] || die "package: give the output file, e.g. package hpcops-src.tar.gz"
	command -v git >/dev/null || die "package: git is not installed (apt-get install git)"
	root=$(git -C "$(dirname "$(readlink -f "$0")")" rev-parse --show-toplevel 2>/dev/null) ||
		die "package: $0 is not inside a git checkout of hpcops: run it from the repository"
	git -C "$root" rev-parse --verify --quiet "$rev^{commit}" >/dev/null ||
		die "package: \"$rev\" is not a commit in $root"
	ver=$(git -C "$root" show "$rev:meson.build" | meson_version) ||
		die "package: no project version in $rev:meson.build"
	if [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ] &&
		[ "$rev" = HEAD ]; then
		say "note: the tree has uncommitted changes; the tarball holds HEAD only"
	fi
	git -C "$root" archive --format=tar --prefix="hpcops-$ver/" "$rev" | gzip -n >"$out.part"
	mv -f "$out.part" "$out"
	say "wrote $out: hpcops $ver, $(git -C "$root" rev-parse --short "$rev"), $(stat -c %s "$out") bytes"
	say "publish: aws s3 cp $out s3://BUCKET/$SOURCE_KEY; aws s3 cp $root/scripts/hpcops-node.sh s3://BUCKET/bootstrap/hpcops-node.sh"
}

# meson_version: the project version from a meson.build on stdin.
meson_version() {
	local v
	v=$(sed -n "s/^[[:space:]]*version[[:space:]]*:[[:space:]]*'\([^']*\)'.*/\1/p" | head -n 1)
	[ -n "$v" ] || return 1
	echo "$v"
}

# ------------------------------------------------------------------ publish

# publish BUCKET TARBALL [PREFIX]: the tarball and a copy of this script whose
# default source is that tarball, side by side under PREFIX, with boto3.
publish() {
	local bucket=${1:-} tarball=${2:-} prefix=${3:-bootstrap} self
	if [ -z "$bucket" ] || [ -z "$tarball" ]; then
		die "publish: give BUCKET TARBALL [PREFIX], e.g. publish my-bucket hpcops-src.tar.gz"
	fi
	[ -f "$tarball" ] || die "publish: $tarball: no such file (make it with: package $tarball)"
	prefix=${prefix%/}
	self=$(mktemp "${TMPDIR:-/tmp}/hpcops-node.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -f '$self'" EXIT
	sed "s|^SOURCE_KEY=.*|SOURCE_KEY=$prefix/hpcops-src.tar.gz|" "$(readlink -f "$0")" >"$self"
	grep -qx "SOURCE_KEY=$prefix/hpcops-src.tar.gz" "$self" ||
		die "publish: could not set SOURCE_KEY in the published copy"
	/usr/bin/python3 - "$bucket" "$prefix" "$tarball" "$self" <<'EOF'
import os
import sys

import boto3
import botocore.exceptions
from botocore.config import Config

bucket, prefix, tarball, script = sys.argv[1:5]
# CodeBuild's container credentials are AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
# on 169.254.170.2, which botocore does not let move; tests point hpcops at
# their credentials double with HPCOPS_TEST_CONTAINER_CREDENTIALS_HOST (as
# shared/creds does), so follow it here through botocore's FULL_URI.
rel = os.environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
host = os.environ.get("HPCOPS_TEST_CONTAINER_CREDENTIALS_HOST")
if rel and host:
    os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://%s%s" % (host, rel)
    del os.environ["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"]
# botocore before 1.31 ignores AWS_ENDPOINT_URL_*: resolve it here as the SDKs do.
endpoint = None
if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() != "true":
    endpoint = (os.environ.get("AWS_ENDPOINT_URL_S3")
                or os.environ.get("AWS_ENDPOINT_URL") or None)
cfg = Config(retries={"max_attempts": 8, "mode": "standard"},
             s3={"addressing_style": "path" if endpoint else "auto"})
s3 = boto3.session.Session().client("s3", endpoint_url=endpoint, config=cfg)
for path, key in ((tarball, prefix + "/hpcops-src.tar.gz"), (script, prefix + "/hpcops-node.sh")):
    try:
        s3.upload_file(path, bucket, key)
    except botocore.exceptions.NoCredentialsError:
        sys.exit("hpcops-node: error: no AWS credentials to write s3://%s/%s" % (bucket, key))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError,
            boto3.exceptions.S3UploadFailedError, OSError) as e:
        sys.exit("hpcops-node: error: could not write s3://%s/%s: %s (the role needs "
                 "s3:PutObject on it)" % (bucket, key, e))
    sys.stderr.write("hpcops-node: published s3://%s/%s\n" % (bucket, key))
print("s3://%s/%s/hpcops-node.sh" % (bucket, prefix))
EOF
	rm -f "$self"
	trap - EXIT
}

# ------------------------------------------------------------------ install

# Debian packages: install the missing ones (root only). Other systems:
# check that the tools are there and say what is missing.
ensure_packages() {
	local missing=() p
	if command -v dpkg-query >/dev/null && command -v apt-get >/dev/null; then
		for p in "${BUILD_PACKAGES[@]}"; do
			dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
				missing+=("$p")
		done
		[ ${#missing[@]} -eq 0 ] && return 0
		[ "$(id -u)" -eq 0 ] ||
			die "missing Debian packages: ${missing[*]}: run as root (ParallelCluster does) or install them first"
		say "installing ${#missing[@]} Debian packages: ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq || die "apt-get update failed: check the node's network and apt sources"
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
			die "apt-get install ${missing[*]} failed (see the messages above)"
		return 0
	fi
	for p in cc meson ninja pkg-config; do
		command -v "$p" >/dev/null || missing+=("$p")
	done
	/usr/bin/python3 -c 'import boto3' 2>/dev/null || missing+=("python3 boto3")
	[ ${#missing[@]} -eq 0 ] ||
		die "this node has no apt-get (not Debian/Ubuntu) and lacks: ${missing[*]}. Use an Ubuntu image (ParallelCluster Image Os ubuntu2204/ubuntu2404) or an AMI with the build tools, fuse3, libcurl, libxml2, OpenSSL and jansson development files"
}

# fetch SOURCE OUT: copy the tarball (s3://BUCKET/KEY or a local file) to OUT.
fetch() {
	local src=$1 out=$2
	case $src in
	s3://*) ;;
	*)
		[ -f "$src" ] || die "HPCOPS_SOURCE=$src: no such file (give s3://BUCKET/KEY or a local .tar.gz)"
		cp -- "$src" "$out"
		return 0
		;;
	esac
	say "fetching $src"
	/usr/bin/python3 - "$src" "$out" <<'EOF'
import os
import sys

import boto3
import botocore.exceptions
from botocore.config import Config

url, out = sys.argv[1], sys.argv[2]
bucket, _, key = url[len("s3://"):].partition("/")
if not bucket or not key:
    sys.exit("hpcops-node: error: %s: expected s3://BUCKET/KEY" % url)
# botocore before 1.31 ignores AWS_ENDPOINT_URL_*: resolve it here as the SDKs do.
endpoint = None
if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() != "true":
    endpoint = (os.environ.get("AWS_ENDPOINT_URL_S3")
                or os.environ.get("AWS_ENDPOINT_URL") or None)
cfg = Config(retries={"max_attempts": 8, "mode": "standard"},
             s3={"addressing_style": "path" if endpoint else "auto"})
where = " (endpoint %s)" % endpoint if endpoint else ""
try:
    s3 = boto3.session.Session().client("s3", endpoint_url=endpoint, config=cfg)
    s3.download_file(bucket, key, out + ".part")
except botocore.exceptions.NoCredentialsError:
    sys.exit("hpcops-node: error: no AWS credentials to read %s: on EC2 the node's "
             "instance profile provides them; elsewhere set AWS_ACCESS_KEY_ID and "
             "AWS_SECRET_ACCESS_KEY or AWS_PROFILE" % url)
except botocore.exceptions.ClientError as e:
    code = str(e.response.get("Error", {}).get("Code", "?"))
    if code in ("404", "NoSuchKey", "NoSuchBucket"):
        sys.exit("hpcops-node: error: %s does not exist%s: package the source with "
                 "`scripts/hpcops-node.sh package hpcops-src.tar.gz` and upload it "
                 "there, or set HPCOPS_SOURCE" % (url, where))
    if code in ("403", "AccessDenied"):
        sys.exit("hpcops-node: error: access denied reading %s%s: the node's role "
                 "needs s3:GetObject on it (the template's NodePolicy allows the "
                 "artifact bucket)" % (url, where))
    sys.exit("hpcops-node: error: could not read %s%s: %s" % (url, where, e))
except (botocore.exceptions.BotoCoreError, OSError) as e:
    sys.exit("hpcops-node: error: could not read %s%s: %s" % (url, where, e))
os.replace(out + ".part", out)
EOF
}

# install_hpcops SOURCE: build and install unless this tarball is installed.
install_hpcops() {
	local src=$1 work sum ver stamp="$PREFIX/share/hpcops/installed-from"
	ensure_packages
	mkdir -p "$PREFIX/share/hpcops" || die "cannot create $PREFIX (HPCOPS_PREFIX): run as root or choose another prefix"
	# One install at a time on a node; closed before the step runs.
	exec 9>"$PREFIX/share/hpcops/.lock"
	flock 9
	work=$(mktemp -d "${TMPDIR:-/var/tmp}/hpcops-node.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf '$work'" EXIT
	fetch "$src" "$work/src.tar.gz"
	sum=$(sha256sum "$work/src.tar.gz" | cut -d' ' -f1)
	mkdir "$work/src"
	tar -xzf "$work/src.tar.gz" -C "$work/src" --strip-components=1 ||
		die "$src is not a .tar.gz of the hpcops source (make one with: scripts/hpcops-node.sh package OUT.tar.gz)"
	if [ ! -f "$work/src/meson.build" ] || [ ! -d "$work/src/launcher" ]; then
		die "$src holds no hpcops source tree (meson.build, launcher/): make it with scripts/hpcops-node.sh package"
	fi
	ver=$(meson_version <"$work/src/meson.build") || die "$src: no project version in meson.build"

	if [ -f "$stamp" ] && grep -qx "sha256=$sum" "$stamp" &&
		[ -x "$PREFIX/bin/hpcops-mount" ] &&
		{ [ "$(mount_s3_name)" = false ] || [ -L "$PREFIX/bin/mount-s3" ]; } &&
		[ "$("$PREFIX/bin/hpcops-launch" --version 2>/dev/null)" = "hpcops-launch $ver" ]; then
		say "hpcops $ver already installed in $PREFIX from this tarball: not rebuilding"
	else
		say "building hpcops $ver into $PREFIX"
		meson setup "$work/build" "$work/src" --prefix "$PREFIX" --buildtype release \
			-Dtests=false --wrap-mode=nodownload -Dmount_s3_name="$(mount_s3_name)" \
			>"$work/setup.log" 2>&1 || {
			tail -n 30 "$work/setup.log" >&2
			die "meson setup failed (above); are all build packages installed?"
		}
		ninja -C "$work/build" >"$work/build.log" 2>&1 || {
			tail -n 40 "$work/build.log" >&2
			die "the build failed (above)"
		}
		meson install -C "$work/build" --quiet >"$work/install.log" 2>&1 || {
			tail -n 20 "$work/install.log" >&2
			die "meson install into $PREFIX failed (above)"
		}
		# The example workload, where launcher/example-spec.json expects it.
		install -D -m 0755 "$work/src/scripts/example-workload.sh" \
			"$PREFIX/scripts/example-workload.sh"
		[ "$("$PREFIX/bin/hpcops-launch" --version)" = "hpcops-launch $ver" ] ||
			die "installed $PREFIX/bin/hpcops-launch does not report version $ver"
		printf 'version=%s\nsha256=%s\nsource=%s\ninstalled=%s\n' "$ver" "$sum" "$src" \
			"$(date -u +%FT%TZ)" >"$stamp.part"
		mv -f "$stamp.part" "$stamp"
		say "installed hpcops $ver: $PREFIX/bin/hpcops-launch, $PREFIX/bin/hpcops-mount"
	fi
	rm -rf "$work"
	trap - EXIT
	integrate_system
	exec 9>&-
}

mount_s3_name() {
	case ${HPCOPS_MOUNT_S3_NAME:-} in
	1 | true | yes) echo true ;;
	*) echo false ;;
	esac
}

# link LINK TARGET: a symlink, replaced only if it is ours or a dangling one.
link() {
	local l=$1 t=$2
	mkdir -p "$(dirname "$l")" || die "cannot create $(dirname "$l")"
	if [ -e "$l" ] && [ ! -L "$l" ]; then
		say "note: $l exists and is not a link: leaving it"
		return 0
	fi
	ln -sfn "$t" "$l" || die "cannot link $l -> $t"
}

# integrate_system: what mount(8), fstab and systemd need beyond PREFIX
# (root only). mount(8) runs /sbin/mount.fuse.hpcops-mount itself; without
# it mount.fuse3 looks for hpcops-mount in a fixed PATH that PREFIX/bin is
# not in. The unit template goes where systemd reads it.
integrate_system() {
	local root=${HPCOPS_SYSROOT:-} unit="$PREFIX/lib/systemd/system/hpcops-mount@.service"
	if [ "$(id -u)" -ne 0 ] && [ -z "$root" ]; then
		say "not root: skipping /sbin/mount.fuse.hpcops-mount and the systemd unit"
		return 0
	fi
	link "$root/usr/sbin/mount.fuse.hpcops-mount" "$PREFIX/bin/hpcops-mount"
	if [ "$(mount_s3_name)" = true ]; then
		link "$root/usr/local/bin/mount-s3" "$PREFIX/bin/hpcops-mount"
		link "$root/usr/sbin/mount.mount-s3" "$PREFIX/bin/hpcops-mount"
	fi
	if [ -f "$unit" ]; then
		mkdir -p "$root/etc/systemd/system" "$root/etc/hpcops/mount.d" ||
			die "cannot create $root/etc/systemd/system"
		install -m 0644 "$unit" "$root/etc/systemd/system/hpcops-mount@.service" ||
			die "cannot install the unit into $root/etc/systemd/system"
		if [ -z "$root" ] && [ -d /run/systemd/system ]; then
			systemctl daemon-reload || say "warning: systemctl daemon-reload failed"
		fi
	fi
}

# mount_service BUCKET DIR [OPTS]: the instance's environment file, then
# enable --now (systemd must be running).
mount_service() {
	local bucket=$1 dir=$2 root=${HPCOPS_SYSROOT:-} inst envf q=()
	shift 2
	command -v systemd-escape >/dev/null || die "systemd-escape not found: is this a systemd host?"
	inst=$(systemd-escape --path "$dir") || die "cannot escape $dir as a unit instance"
	envf="$root/etc/hpcops/mount.d/$inst.env"
	mkdir -p "$(dirname "$envf")" || die "cannot create $(dirname "$envf")"
	for a in "$@"; do
		case $a in
		*[[:space:]\\\"\']*) die "option \"$a\" has a space or quote: not possible in $envf" ;;
		esac
		q+=("$a")
	done
	{
		echo "# written by hpcops-node.sh mount-service: hpcops-mount@$inst.service mounts"
		echo "# HPCOPS_BUCKET at $dir"
		echo "HPCOPS_BUCKET=$bucket"
		echo "HPCOPS_MOUNT_OPTIONS=\"${q[*]}\""
		for v in AWS_REGION AWS_ENDPOINT_URL_S3 AWS_ENDPOINT_URL AWS_CA_BUNDLE AWS_PROFILE; do
			[ -n "${!v:-}" ] && echo "$v=${!v}"
		done
		true
	} >"$envf.part" && mv -f "$envf.part" "$envf" || die "cannot write $envf"
	say "wrote $envf"
	if [ -n "$root" ] || [ ! -d /run/systemd/system ]; then
		say "systemd is not running here: start it with systemctl enable --now hpcops-mount@$inst.service"
		return 0
	fi
	systemctl enable --now "hpcops-mount@$inst.service" ||
		die "systemctl enable --now hpcops-mount@$inst.service failed: see journalctl -u hpcops-mount@$inst.service"
}

# step_bucket ARGS...: the bucket a submit step names (--bucket B / --bucket=B).
step_bucket() {
	while [ $# -gt 0 ]; do
		case $1 in
		--bucket) [ $# -ge 2 ] && echo "$2" && return 0 ;;
		--bucket=*) echo "${1#--bucket=}" && return 0 ;;
		esac
		shift
	done
	return 0
}

# source_for BUCKET: HPCOPS_SOURCE, else the tarball next to the bootstrap in BUCKET.
source_for() {
	local b=${1%%:*}
	if [ -n "${HPCOPS_SOURCE:-}" ]; then
		echo "$HPCOPS_SOURCE"
	elif [ -n "$b" ]; then
		echo "s3://$b/$SOURCE_KEY"
	else
		echo "$DEFAULT_SOURCE"
	fi
}

# ------------------------------------------------------------------ metrics

# Does the installed hpcops-mount write a metrics file (--metrics-file)?
mount_has_metrics() {
	"$PREFIX/bin/hpcops-mount" --help 2>/dev/null | grep -q -- '--metrics-file'
}

# ------------------------------------------------------------------ main

[ $# -ge 1 ] || {
	usage >&2
	exit 2
}
step=$1
shift
case $step in
-h | --help | help)
	usage
	exit 0
	;;
package)
	package "$@"
	;;
publish)
	publish "$@"
	;;
install)
	[ $# -eq 0 ] || die "install takes no arguments (see --help)"
	install_hpcops "$(source_for "")"
	;;
submit)
	install_hpcops "$(source_for "$(step_bucket "$@")")"
	# sbatch passes the environment on: each job wrapper reads the mount's counters
	if mount_has_metrics; then
		export HPCOPS_MOUNT_METRICS=$METRICS
	fi
	say "running: hpcops-launch submit $*"
	exec "$PREFIX/bin/hpcops-launch" submit "$@"
	;;
launch)
	install_hpcops "$(source_for "$(step_bucket "$@")")"
	say "running: hpcops-launch $*"
	exec "$PREFIX/bin/hpcops-launch" "$@"
	;;
mount)
	[ $# -ge 2 ] || die "mount needs BUCKET DIR [hpcops-mount options], e.g. mount my-bucket /ArtifactBucket"
	bucket=$1 dir=$2
	shift 2
	install_hpcops "$(source_for "$bucket")"
	if mountpoint -q "$dir" 2>/dev/null; then
		say "$dir is already a mount point: leaving it as it is"
		exit 0
	fi
	mkdir -p "$dir" || die "cannot create the mount point $dir"
	metrics=()
	case " $* " in
	*" --metrics-file "* | *" --metrics-file="*) ;;
	*)
		if mount_has_metrics; then
			mkdir -p "$(dirname "$METRICS")" || die "cannot create $(dirname "$METRICS")"
			metrics=(--metrics-file "$METRICS")
		fi
		;;
	esac
	say "running: hpcops-mount ${metrics[*]} $* $bucket $dir"
	exec "$PREFIX/bin/hpcops-mount" "${metrics[@]}" "$@" "$bucket" "$dir"
	;;
mount-service)
	[ $# -ge 2 ] || die "mount-service needs BUCKET DIR [hpcops-mount options]"
	bucket=$1 dir=$2
	shift 2
	install_hpcops "$(source_for "$bucket")"
	mount_service "$bucket" "$dir" "$@"
	;;
*)
	echo "$ME: unknown step \"$step\": use submit, mount, mount-service, launch, install, package or publish" >&2
	usage >&2
	exit 2
	;;
esac

# SPDX-License-Identifier: Apache-2.0
"""Runs a buildspec (version 0.2) the way CodeBuild runs it on Linux, for
tests: no container, the source directory and environment are the caller's.

What it does as CodeBuild does:
- env.variables of the buildspec are defaults; the project's environment
  variables (the `env` given here) win over them;
- phases install, pre_build, build, post_build in that order; the commands
  of all phases run in one shell session (buildspec 0.2): a variable set or
  a directory changed by one command is there for the next, also across
  phases; each command's exit status is checked, a failing command ends its
  phase (on-failure ABORT, the default; CONTINUE goes on); `finally`
  commands run after the phase's commands either way;
- a failed install or pre_build ends the build (no build, no post_build); a
  failed build phase still runs post_build, with CODEBUILD_BUILD_SUCCEEDING=0;
- artifacts.files are collected after the phases (UPLOAD_ARTIFACTS is
  attempted even when the build failed); none found fails the build;
- env.exported-variables are read from the session at the end.

How the one session is kept: each command runs in its own bash (so that
`exit N` in a command ends that command, with status N) which starts from
the session's saved variables, functions and working directory and saves
them again when it ends.
"""
import fnmatch
import glob
import os
import shlex
import shutil
import subprocess
import tempfile
import time

import yaml

PHASES = ["install", "pre_build", "build", "post_build"]
SKIP_VARS = ("BASH*|SHELLOPTS|BASHOPTS|EUID|UID|PPID|FUNCNAME|GROUPS|DIRSTACK|PIPESTATUS|RANDOM|"
             "SRANDOM|SECONDS|LINENO|HISTCMD|EPOCHREALTIME|EPOCHSECONDS|COMP_*|__cb_*|_|PWD|OLDPWD|"
             "SHLVL|HOSTNAME|HOSTTYPE|MACHTYPE|OSTYPE|OPTERR|OPTIND|IFS|PS1|PS2|PS4|HISTFILE*|"
             "COLUMNS|LINES|MAILCHECK")

WRAPPER = r'''
__cb_state=%(state)s
__cb_cwd=%(cwd)s
. "$__cb_state"
cd "$(cat "$__cb_cwd")" || exit 1
__cb_save() {
	__cb_rc=$?
	{
		for __cb_n in $(compgen -v); do
			case $__cb_n in %(skip)s) continue ;; esac
			declare -p "$__cb_n" 2>/dev/null
		done
		declare -f
	} >"$__cb_state.new"
	mv -f "$__cb_state.new" "$__cb_state"
	pwd >"$__cb_cwd"
	exit $__cb_rc
}
trap __cb_save EXIT
'''


class Result:
    def __init__(self):
        self.phases = {}        # phase -> "SUCCEEDED" | "FAILED" | "SKIPPED"
        self.commands = []      # (phase, command, exit status)
        self.status = "SUCCEEDED"
        self.artifacts = []     # files copied into artifacts_dir
        self.artifacts_dir = None
        self.exported = {}
        self.log = ""

    def command_status(self, needle):
        """Exit status of the first command containing needle."""
        for _, cmd, rc in self.commands:
            if needle in cmd:
                return rc
        raise AssertionError("no command containing %r ran" % needle)


def run(buildspec, src_dir, env, artifacts_dir, log_path, timeout=900):
    with open(buildspec) as f:
        spec = yaml.safe_load(f)
    if str(spec.get("version")) != "0.2":
        raise AssertionError("buildspec version %r: only 0.2 is run here" % spec.get("version"))
    benv = spec.get("env") or {}
    shell = benv.get("shell", "bash")
    if shell not in ("bash", "/bin/bash"):
        raise AssertionError("env.shell %r: only bash is run here" % shell)
    variables = {k: str(v) for k, v in (benv.get("variables") or {}).items()}
    variables.update(env)  # the project's environment wins over the buildspec's
    variables["CODEBUILD_BUILD_SUCCEEDING"] = "1"
    res = Result()
    res.artifacts_dir = artifacts_dir
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="codebuild-") as tmp, open(log_path, "w") as log:
        state, cwd = os.path.join(tmp, "state"), os.path.join(tmp, "cwd")
        with open(state, "w") as f:
            for k, v in variables.items():
                f.write("export %s=%s\n" % (k, shlex.quote(v)))
        with open(cwd, "w") as f:
            f.write(src_dir + "\n")

        def command(phase, cmd):
            script = os.path.join(tmp, "cmd.sh")
            with open(script, "w") as f:
                f.write(WRAPPER % {"state": shlex.quote(state), "cwd": shlex.quote(cwd), "skip": SKIP_VARS})
                f.write(cmd if cmd.endswith("\n") else cmd + "\n")
            log.write("[Container] Running command %s\n" % cmd.rstrip("\n"))
            log.flush()
            left = deadline - time.monotonic()
            p = subprocess.Popen(["/bin/bash", "--noprofile", "--norc", script], env={}, stdout=log,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
            try:
                rc = p.wait(timeout=max(left, 1))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, 15)
                p.wait()
                rc = -15
                log.write("[Container] Build timed out\n")
            res.commands.append((phase, cmd, rc))
            if rc != 0:
                log.write("[Container] Command did not exit successfully %s exit status %d\n"
                          % (cmd.rstrip("\n"), rc))
            log.flush()
            return rc

        def set_var(name, value):
            with open(state, "a") as f:
                f.write("export %s=%s\n" % (name, shlex.quote(value)))

        failed = stop = False
        for phase in PHASES:
            ph = (spec.get("phases") or {}).get(phase)
            if not ph:
                continue
            if stop or (failed and phase != "post_build"):
                res.phases[phase] = "SKIPPED"
                continue
            log.write("[Container] Entering phase %s\n" % phase.upper())
            ok = True
            for cmd in ph.get("commands") or []:
                if command(phase, cmd) != 0:
                    ok = False
                    if ph.get("on-failure", "ABORT") != "CONTINUE":
                        break
            fin = ph.get("finally") or []
            for cmd in fin.get("commands") or [] if isinstance(fin, dict) else fin:
                if command(phase, cmd) != 0:
                    ok = False
            res.phases[phase] = "SUCCEEDED" if ok else "FAILED"
            log.write("[Container] Phase complete: %s State: %s\n" % (phase.upper(), res.phases[phase]))
            if not ok:
                failed = True
                set_var("CODEBUILD_BUILD_SUCCEEDING", "0")
                stop = phase != "build"  # a failed install/pre_build (or post_build) ends the build
        if failed:
            res.status = "FAILED"
        # UPLOAD_ARTIFACTS, attempted whatever happened
        arts = spec.get("artifacts") or {}
        files = arts.get("files") or []
        if files:
            os.makedirs(artifacts_dir, exist_ok=True)
            base = os.path.join(src_dir, arts.get("base-directory", ""))
            found = []
            for pat in files:
                for m in glob.glob(os.path.join(base, pat), recursive=True):
                    if os.path.isfile(m) and not any(fnmatch.fnmatch(os.path.relpath(m, base), x)
                                                     for x in arts.get("exclude-paths") or []):
                        found.append(m)
            discard = str(arts.get("discard-paths", "no")).lower() in ("yes", "true")
            for m in found:
                rel = os.path.basename(m) if discard else os.path.relpath(m, base)
                dst = os.path.join(artifacts_dir, rel)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copy2(m, dst)
                res.artifacts.append(rel)
            if not found:
                log.write("[Container] Phase complete: UPLOAD_ARTIFACTS State: FAILED: no matching "
                          "artifact paths found\n")
                res.status = "FAILED"
        names = benv.get("exported-variables") or []
        if names:
            out = subprocess.run(["/bin/bash", "--noprofile", "--norc", "-c",
                                  ". %s; for n in %s; do printf '%%s=%%s\\0' \"$n\" \"${!n}\"; done"
                                  % (shlex.quote(state), " ".join(names))],
                                 env={}, stdout=subprocess.PIPE, text=True).stdout
            for item in out.split("\0"):
                if "=" in item:
                    k, v = item.split("=", 1)
                    res.exported[k] = v
    with open(log_path) as f:
        res.log = f.read()
    return res

# SPDX-License-Identifier: Apache-2.0
# Shell helpers shared by scripts/rgw and scripts/slurm: progress messages,
# free loopback ports, and daemons tracked by pid files under one directory.
# Source it; it defines functions only.

# say MSG...: a progress line on stderr, prefixed with the script's name.
say() { echo "${HPCOPS_SCRIPT:-${0##*/}}: $*" >&2; }

# die MSG...: say it and exit 1 (the caller's EXIT trap cleans up).
die() {
	say "error: $*"
	exit 1
}

# port_is_free PORT: true when nothing listens on 127.0.0.1:PORT (or any address).
port_is_free() {
	/usr/bin/python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

# free_port [EXCLUDE...]: print a free TCP port in 20000-32767, below the
# kernel's ephemeral range, so outgoing connections never take it later.
# Random choice keeps concurrent instances apart; EXCLUDE lists ports this
# caller already picked but has not bound yet.
free_port() {
	local p i x taken
	for i in $(seq 200); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
		taken=0
		for x in "$@"; do [ "$x" = "$p" ] && taken=1; done
		[ $taken = 0 ] && port_is_free "$p" && {
			echo "$p"
			return 0
		}
	done
	die "no free loopback port found in 20000-32767"
}

# spawn DIR NAME CMD...: start CMD in the background in its own session,
# stdout/stderr to DIR/log/NAME.out, pid to DIR/pids/NAME.
spawn() {
	local dir=$1 name=$2
	shift 2
	mkdir -p "$dir/log" "$dir/pids"
	setsid "$@" </dev/null >>"$dir/log/$name.out" 2>&1 &
	echo $! >"$dir/pids/$name"
	disown $! # no "Killed" job notices when stop_pids kills it
}

# pid_ours DIR PIDFILE: print the pid in PIDFILE if that process is still
# alive and its command line names DIR (so a recycled pid is never ours).
pid_ours() {
	local dir=$1 f=$2 pid
	[ -f "$f" ] || return 1
	pid=$(cat "$f" 2>/dev/null) || return 1
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	[ -r "/proc/$pid/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir" || return 1
	echo "$pid"
}

# alive DIR NAME: true while the daemon recorded as NAME runs.
alive() { pid_ours "$1" "$1/pids/$2" >/dev/null; }

# stop_pids DIR GRACE NAME...: SIGTERM the named daemons, wait up to GRACE
# seconds for all of them, then SIGKILL what is left and wait for it to go.
# GRACE 0 sends SIGKILL at once (for daemons whose state is thrown away).
# Only processes whose command line names DIR are signalled (see pid_ours).
stop_pids() {
	local dir=$1 grace=$2 name pid i
	shift 2
	local pids=()
	for name in "$@"; do
		pid=$(pid_ours "$dir" "$dir/pids/$name") || continue
		pids+=("$pid")
	done
	[ ${#pids[@]} -gt 0 ] || return 0
	if [ "$grace" != 0 ]; then
		kill -TERM "${pids[@]}" 2>/dev/null || true
		wait_gone $((grace * 10)) "${pids[@]}" && return 0
	fi
	kill -KILL "${pids[@]}" 2>/dev/null || true
	wait_gone 100 "${pids[@]}"
}

# wait_gone TENTHS PID...: wait up to TENTHS/10 s until no PID exists.
wait_gone() {
	local n=$1 i pid left
	shift
	for i in $(seq "$n"); do
		left=0
		for pid in "$@"; do
			# a zombie still answers kill -0; count it as gone
			[ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && left=1
		done
		[ $left = 0 ] && return 0
		sleep 0.1
	done
	return 1
}

# show_logs DIR FILE...: the last lines of each existing log, on stderr.
show_logs() {
	local dir=$1 f
	shift
	for f in "$@"; do
		[ -s "$dir/$f" ] || continue
		echo "----- tail of $dir/$f" >&2
		tail -n 25 "$dir/$f" >&2
	done
}

# elapsed START: seconds since START (a $SECONDS-style epoch in ms from now_ms).
now_ms() { date +%s%3N; }
elapsed() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

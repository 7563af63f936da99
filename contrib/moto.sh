#!/usr/bin/env bash
# contrib/moto.sh: start and stop a moto server (an AWS emulator in Python)
# on a free 127.0.0.1 port, for the tests that need an independent SigV4
# verifier (moto checks signatures against its own IAM users).
#
#   contrib/moto.sh start DIR [INITIAL_NO_AUTH_ACTION_COUNT]
#       Starts moto, waits (bounded) until it answers, writes DIR/port,
#       DIR/pid and DIR/log, and prints the endpoint URL on stdout.  With a
#       count N, moto accepts the first N calls without checking them and
#       verifies the SigV4 signature (and IAM policy) of every call after.
#   contrib/moto.sh stop DIR
#       Stops the server started in DIR (idempotent).
#
# Environment: DYNFS_PYTHON (default python3) is the interpreter that has
# moto installed; DYNFS_MOTO_START_TIMEOUT (seconds, default 60).
set -euo pipefail

PY="${DYNFS_PYTHON:-python3}"
START_TIMEOUT="${DYNFS_MOTO_START_TIMEOUT:-60}"

die() {
	printf 'moto.sh: %s\n' "$*" >&2
	exit 1
}

usage() {
	printf 'usage: %s start DIR [INITIAL_NO_AUTH_ACTION_COUNT] | stop DIR\n' "$0" >&2
	exit 2
}

free_port() {
	"$PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# The pid in DIR/pid, only when it still names our moto server (a stale
# pid may have been reused by an unrelated process).
live_pid() {
	local dir="$1" pid
	[[ -f "$dir/pid" ]] || return 1
	pid="$(cat "$dir/pid")"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	[[ -r "/proc/$pid/cmdline" ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'moto.server' || return 1
	printf '%s\n' "$pid"
}

stop_server() {
	local dir="$1" pid i
	if pid="$(live_pid "$dir")"; then
		kill "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -9 "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$dir/pid" "$dir/port"
}

start_server() {
	local dir="$1" count="${2:-}" port pid attempt deadline
	if [[ -n "$count" && ! "$count" =~ ^[0-9]+$ ]]; then
		die "INITIAL_NO_AUTH_ACTION_COUNT must be a number, not '$count'"
	fi
	if ! "$PY" -c 'import moto.server' 2>/dev/null; then
		die "moto is not installed for $PY ('$PY -c \"import moto.server\"' failed); install it (pip install 'moto[server]') or set DYNFS_PYTHON to an interpreter that has it. PyPI is not reachable from these machines, so this cannot be fixed automatically."
	fi
	command -v curl >/dev/null || die "curl is required (contrib/install-deps.sh installs it)"
	mkdir -p "$dir"
	dir="$(cd "$dir" && pwd)"
	if pid="$(live_pid "$dir")" && [[ -f "$dir/port" ]]; then
		die "a moto server (pid $pid) is already running for $dir; stop it first"
	fi

	for attempt in 1 2 3; do
		port="$(free_port)"
		# Only 127.0.0.1.  The server's output goes to DIR/log so that it
		# never holds the caller's stdout/stderr open.
		if [[ -n "$count" ]]; then
			INITIAL_NO_AUTH_ACTION_COUNT="$count" \
				"$PY" -m moto.server -H 127.0.0.1 -p "$port" \
				>"$dir/log" 2>&1 </dev/null &
		else
			env -u INITIAL_NO_AUTH_ACTION_COUNT \
				"$PY" -m moto.server -H 127.0.0.1 -p "$port" \
				>"$dir/log" 2>&1 </dev/null &
		fi
		pid=$!
		printf '%s\n' "$pid" >"$dir/pid"
		deadline=$((SECONDS + START_TIMEOUT))
		while ((SECONDS < deadline)); do
			if ! kill -0 "$pid" 2>/dev/null; then
				break
			fi
			# /moto-api/ requests do not count against the no-auth budget.
			if curl -sf -o /dev/null --max-time 2 \
				"http://127.0.0.1:$port/moto-api/data.json"; then
				printf '%s\n' "$port" >"$dir/port"
				printf 'http://127.0.0.1:%s\n' "$port"
				return 0
			fi
			sleep 0.2
		done
		if kill -0 "$pid" 2>/dev/null; then
			stop_server "$dir"
			die "moto did not answer on 127.0.0.1:$port within ${START_TIMEOUT}s (log: $dir/log)"
		fi
		# It exited: most likely the port was taken in between; try again.
		wait "$pid" 2>/dev/null || true
		rm -f "$dir/pid"
		printf 'moto.sh: moto exited at start (attempt %d), retrying\n' "$attempt" >&2
	done
	tail -n 20 "$dir/log" >&2 || true
	die "moto failed to start (log: $dir/log)"
}

[[ $# -ge 2 ]] || usage
case "$1" in
start)
	[[ $# -le 3 ]] || usage
	start_server "$2" "${3:-}"
	;;
stop)
	[[ $# -eq 2 ]] || usage
	stop_server "$2"
	;;
*)
	usage
	;;
esac

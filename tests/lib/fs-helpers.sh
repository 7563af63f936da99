# shellcheck shell=bash
# shellcheck disable=SC2034 # FH_* and TL_MNT are read by the tests and common.sh
# tests/lib/fs-helpers.sh: helpers of the filesystem tests
# (tests/mount/test_fs_*.sh).  Source it after tests/lib/common.sh:
#
#     set -euo pipefail
#     . "$DYNFS_SOURCE_ROOT/tests/lib/common.sh"
#     . "$DYNFS_SOURCE_ROOT/tests/lib/fs-helpers.sh"
#     fh_setup                       # DynamoDB Local, dummy keys, $FH_WORK
#     ddbc create-table things pk:S  # the independent checker
#     fh_mount m1 cache_ttl=1        # $FH_MNT, $FH_T (= $FH_MNT/tables)
#     check_eq "what" "$expected" "$seen"
#     fh_unmount                     # fusermount3 -u, daemon exits 0, no sanitizer report
#     fh_summary                     # "NAME: N passed, M failed"; the exit status
#
# A failed check does not stop the script: `fail` prints what was expected
# and what was seen, counts it, and the script goes on, so one run shows
# everything that is missing.  fh_summary exits 1 when anything failed.
# Problems of the test rig itself (DynamoDB Local does not start, the
# checker fails, the mount never appears) end the script at once.
#
# Every command run against the mount goes through fh_run (or the check_*
# helpers built on it), which bounds it with timeout(1), so a hung FUSE
# request fails the check instead of hanging the suite.

FH_PASSED=0
FH_FAILED=0
FH_CHECKER="$DYNFS_SOURCE_ROOT/tests/lib/ddbcheck.mjs"
# Seconds any single command against the mount may take.
FH_OP_TIMEOUT="${FH_OP_TIMEOUT:-30}"

# UTF-8 for the tools (sed, grep, vim on unicode names); every sort that a
# comparison depends on sets LC_ALL=C itself.
export LC_ALL=C.UTF-8
unset LANG LANGUAGE || true

# --- results ---------------------------------------------------------------
# Print TEXT as an indented block, control bytes made visible (cat -v).
fh_block() {
	if [[ -z "$1" ]]; then
		printf '    (empty)\n'
	else
		printf '%s\n' "$1" | head -n 60 | cat -v | sed 's/^/    | /'
	fi
}

# fail MESSAGE [EXPECTED SEEN]: one failed check.
fail() {
	FH_FAILED=$((FH_FAILED + 1))
	printf '%s: FAIL: %s\n' "$TL_NAME" "$1" >&2
	if (($# >= 3)); then
		{
			printf '  expected:\n'
			fh_block "$2"
			printf '  seen:\n'
			fh_block "$3"
		} >&2
	fi
}

pass() {
	FH_PASSED=$((FH_PASSED + 1))
	printf '%s: ok: %s\n' "$TL_NAME" "$1" >&2
}

# A broken test rig: report and stop now.
fh_fatal() {
	printf '%s: FATAL: %s\n' "$TL_NAME" "$*" >&2
	printf '%s: %d passed, %d failed, stopped early\n' "$TL_NAME" "$FH_PASSED" "$((FH_FAILED + 1))" >&2
	exit 1
}

fh_summary() {
	printf '%s: %d passed, %d failed\n' "$TL_NAME" "$FH_PASSED" "$FH_FAILED" >&2
	((FH_PASSED > 0)) || fh_fatal "no check ran"
	((FH_FAILED == 0)) || exit 1
	exit 0
}

# check_eq WHAT EXPECTED SEEN: exact string equality.
check_eq() {
	if [[ "$2" == "$3" ]]; then
		pass "$1"
	else
		fail "$1" "$2" "$3"
	fi
}

# check_contains WHAT NEEDLE HAYSTACK (fixed string).
check_contains() {
	if [[ "$3" == *"$2"* ]]; then
		pass "$1"
	else
		fail "$1: the text does not contain '$2'" "$2" "$3"
	fi
}

# --- running commands against the mount ---------------------------------------
# fh_run CMD...: run CMD (bounded by FH_OP_TIMEOUT), stdin from /dev/null;
# sets FH_RC, FH_OUT (stdout, exact, trailing newlines kept) and FH_ERR.
FH_RC=0
FH_OUT=
FH_ERR=
fh_run() {
	FH_RC=0
	timeout -k 3 "$FH_OP_TIMEOUT" "$@" >"$FH_WORK/run.out" 2>"$FH_WORK/run.err" \
		</dev/null || FH_RC=$?
	FH_OUT="$(cat "$FH_WORK/run.out"; printf x)"
	FH_OUT="${FH_OUT%x}"
	FH_ERR="$(cat "$FH_WORK/run.err")"
}

# fh_sh SCRIPT ARGS...: fh_run bash -c SCRIPT with ARGS as $1...
fh_sh() {
	local script="$1"
	shift
	fh_run bash -c "$script" fh "$@"
}

# Describe how the last fh_run ended, for messages.
fh_how() {
	case "$FH_RC" in
	0) printf 'exit 0' ;;
	124 | 137) printf 'timed out after %ss' "$FH_OP_TIMEOUT" ;;
	*) printf 'exit %s' "$FH_RC" ;;
	esac
	[[ -z "$FH_ERR" ]] || printf ', stderr: %s' "$(head -c 400 <<<"$FH_ERR" | cat -v)"
}

# check_ok WHAT CMD...: CMD exits 0.
check_ok() {
	local what="$1"
	shift
	fh_run "$@"
	if [[ "$FH_RC" == 0 ]]; then
		pass "$what"
	else
		fail "$what: expected success, got $(fh_how)"
	fi
}

# check_sh_ok WHAT SCRIPT ARGS...
check_sh_ok() {
	local what="$1" script="$2"
	shift 2
	check_ok "$what" bash -c "$script" fh "$@"
}

# check_fails WHAT ERRTEXT CMD...: CMD exits non-zero (not by the timeout)
# and its stderr contains ERRTEXT (e.g. "Invalid argument").
check_fails() {
	local what="$1" text="$2"
	shift 2
	fh_run "$@"
	if [[ "$FH_RC" == 0 ]]; then
		fail "$what: expected a failure with '$text', the command succeeded${FH_ERR:+ (stderr: $FH_ERR)}"
	elif [[ "$FH_RC" == 124 || "$FH_RC" == 137 ]]; then
		fail "$what: expected a failure with '$text', $(fh_how)"
	elif [[ "$FH_ERR" != *"$text"* ]]; then
		fail "$what: failed, but not with '$text'" "$text" "$FH_ERR"
	else
		pass "$what"
	fi
}

# check_sh_fails WHAT ERRTEXT SCRIPT ARGS...
check_sh_fails() {
	local what="$1" text="$2" script="$3"
	shift 3
	check_fails "$what" "$text" bash -c "$script" fh "$@"
}

# --- system calls with their errno (python3) ------------------------------------
# fh_py OP ARGS...: one system call sequence, prints its outcome as words:
#   stat PATH                       OK | ENOENT ...
#   open_excl PATH                  open(O_CREAT|O_EXCL|O_WRONLY): OK | EEXIST ...
#   create PATH                     open(O_CREAT|O_WRONLY|O_TRUNC) then close
#   read PATH                       open(O_RDONLY) + read
#   rename FROM TO                  rename(2): OK | EXDEV ...
#   write_close PATH SRC            open(O_WRONLY|O_CREAT|O_TRUNC), write SRC's bytes, close:
#                                   "write=OK close=EINVAL"
#   write_fsync PATH SRC            the same with fsync before the close:
#                                   "write=OK fsync=EINVAL close=..."
# Sets FH_PY to the printed words (FH_RC/FH_ERR as for fh_run).
FH_PY_SRC='
import errno, os, sys

def name(e):
    return errno.errorcode.get(e.errno, str(e.errno))

def step(label, f):
    try:
        r = f()
        return label + "=OK", r
    except OSError as e:
        return label + "=" + name(e), None

op, args = sys.argv[1], sys.argv[2:]
try:
    if op == "stat":
        os.stat(args[0]); print("OK")
    elif op == "open_excl":
        fd = os.open(args[0], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        os.close(fd); print("OK")
    elif op == "create":
        fd = os.open(args[0], os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        os.close(fd); print("OK")
    elif op == "read":
        fd = os.open(args[0], os.O_RDONLY)
        os.read(fd, 1 << 20); os.close(fd); print("OK")
    elif op == "rename":
        os.rename(args[0], args[1]); print("OK")
    elif op in ("write_close", "write_fsync"):
        data = open(args[1], "rb").read()
        fd = os.open(args[0], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        words = []
        w, _ = step("write", lambda: os.write(fd, data))
        words.append(w)
        if op == "write_fsync":
            w, _ = step("fsync", lambda: os.fsync(fd))
            words.append(w)
        w, _ = step("close", lambda: os.close(fd))
        words.append(w)
        print(" ".join(words))
    else:
        sys.exit("fh_py: unknown op " + op)
except OSError as e:
    print(name(e))
'
FH_PY=
fh_py() {
	fh_run python3 -c "$FH_PY_SRC" "$@"
	FH_PY="${FH_OUT%$'\n'}"
	[[ "$FH_RC" == 0 ]] || FH_PY="python3 failed: $(fh_how)"
}

# check_py WHAT EXPECTED OP ARGS...: fh_py's words equal EXPECTED.
check_py() {
	local what="$1" want="$2"
	shift 2
	fh_py "$@"
	check_eq "$what" "$want" "$FH_PY"
}

# --- the checker -------------------------------------------------------------
# ddbc ARGS...: tests/lib/ddbcheck.mjs (see its header).  A checker failure
# is a rig failure: the script stops.
# Writes are written back: the checker first waits until the mount has
# sent everything (MOUNT/.dynfs/stats says pending_writes 0).
ddbc() {
	fh_settle
	node "$FH_CHECKER" "$@" || fh_fatal "the checker failed: ddbcheck $*"
}

# fh_settle [MOUNT]: wait (up to 30 s) until MOUNT (default $FH_MNT) has no
# write waiting to be sent.
fh_settle() {
	local mnt="${1:-${FH_MNT:-}}" i
	[[ -n "$mnt" && -r "$mnt/.dynfs/stats" ]] || return 0
	for ((i = 0; i < 300; i++)); do
		grep -q '^pending_writes 0$' "$mnt/.dynfs/stats" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "writes still pending in $mnt after 30 s: $(grep pending "$mnt/.dynfs/stats")"
}

# ddb_get TABLE KEYJSON [--plain]: the item (typed, sorted, 2-space) or "null".
ddb_get() {
	ddbc get "$@"
}

# --- DynamoDB Local and the mount ------------------------------------------------
# fh_setup: check the tools, make $FH_WORK, isolate AWS settings, set dummy
# keys, start DynamoDB Local ($FH_EP, also DYNFS_TEST_DDB_ENDPOINT).
fh_setup() {
	local t
	tl_require_bin
	tl_require_fuse
	for t in node jq python3 curl java timeout; do
		command -v "$t" >/dev/null || tl_die "$t is missing (contrib/install-deps.sh installs it)"
	done
	if [[ ! -d "$DYNFS_SOURCE_ROOT/tests/node_modules/@aws-sdk/client-dynamodb" ]]; then
		tl_log "installing tests/node_modules (npm ci)"
		npm ci --prefix "$DYNFS_SOURCE_ROOT/tests" --no-audit --no-fund >&2 ||
			tl_die "npm ci --prefix tests failed"
	fi
	tl_mktemp_dir
	FH_WORK="$TL_TMP"
	[[ -n "$FH_WORK" && -d "$FH_WORK" ]] || tl_die "tl_mktemp_dir made no directory"
	mkdir -p "$FH_WORK/home"
	export HOME="$FH_WORK/home"
	tl_aws_isolate "$FH_WORK"
	# DynamoDB Local runs with -sharedDb; dynfs and the checker use the
	# same dummy keys anyway.
	export AWS_ACCESS_KEY_ID=AKIADYNFSFSTEST00000
	export AWS_SECRET_ACCESS_KEY=dynfs-fs-test-dummy-secret
	export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
	unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN || true

	local ddb_local="$DYNFS_SOURCE_ROOT/contrib/dynamodb-local.sh"
	[[ -x "$ddb_local" ]] || tl_die "$ddb_local is missing"
	FH_EP="$("$ddb_local" start "$FH_WORK/ddb")" || tl_die "contrib/dynamodb-local.sh start failed"
	tl_cleanup_push "'$ddb_local' stop '$FH_WORK/ddb'"
	[[ "$FH_EP" == http://127.0.0.1:* ]] || tl_die "unexpected DynamoDB Local endpoint '$FH_EP'"
	export DYNFS_TEST_DDB_ENDPOINT="$FH_EP"
	tl_log "DynamoDB Local at $FH_EP"
}

# fh_mount NAME [OPTIONS]: mount dynfs at $FH_WORK/NAME with
# -f -o endpoint=...,region=us-east-1[,OPTIONS]; the daemon's stderr goes
# to $FH_WORK/NAME.log ($FH_LOG).  Sets FH_MNT and FH_T (its tables/).
FH_MNT=
FH_T=
FH_LOG=
fh_mount() {
	local name="$1" opts="${2:-}"
	FH_MNT="$FH_WORK/$name"
	FH_T="$FH_MNT/tables"
	FH_LOG="$FH_WORK/$name.log"
	mkdir -p "$FH_MNT"
	TL_MNT="$FH_MNT"
	tl_start_daemon "$FH_WORK/$name.out" "$FH_LOG" -f \
		-o "endpoint=$FH_EP,region=us-east-1${opts:+,$opts}" "$FH_MNT"
	if ! tl_mount_wait "$FH_MNT" 30; then
		tail -n 30 "$FH_LOG" >&2 || true
		(tl_check_sanitizers "$FH_LOG" "$FH_WORK/$name.out") || true
		fh_fatal "dynfs did not mount at $FH_MNT (options '$opts') within 30 s"
	fi
	tl_log "mounted $FH_MNT${opts:+ with -o $opts}"
}

# fh_unmount: fusermount3 -u; the daemon must exit 0 within 30 s and its
# output must hold no sanitizer or valgrind report.  Each of these is a
# check of its own.
fh_unmount() {
	local mnt="$FH_MNT"
	if fusermount3 -u "$mnt" 2>"$FH_WORK/umount.err"; then
		pass "fusermount3 -u $(basename "$mnt")"
	else
		fail "fusermount3 -u $mnt failed: $(cat "$FH_WORK/umount.err")"
		fusermount3 -uz "$mnt" 2>/dev/null || true
	fi
	if ! tl_wait_exit "$TL_DAEMON_PID" 30; then
		fail "the daemon did not exit within 30 s of the unmount"
		tl_kill_child "$TL_DAEMON_PID"
	elif [[ "$TL_EXIT" != 0 ]]; then
		fail "the daemon's exit status after the unmount" "0" "$TL_EXIT"
		tail -n 20 "$FH_LOG" >&2 || true
	else
		pass "the daemon exited with 0"
	fi
	if tl_is_mounted "$mnt"; then
		fail "$mnt is still mounted after fusermount3 -u"
		tl_unmount "$mnt"
	fi
	fh_check_log
}

# The daemon's output holds no sanitizer or valgrind report (checked at
# every unmount; tl_check_sanitizers prints the report).
fh_check_log() {
	if (tl_check_sanitizers "$FH_LOG" "${FH_LOG%.log}.out"); then
		pass "no sanitizer/valgrind report in $(basename "$FH_LOG")"
	else
		fail "sanitizer or valgrind report in $FH_LOG (printed above)"
	fi
}

# --- listings --------------------------------------------------------------------
# fh_ls DIR: `ls -A DIR`, one name a line, byte order; sets FH_RC.
fh_ls() {
	fh_run ls -A "$1"
	[[ "$FH_RC" == 0 ]] || { printf 'ls failed: %s' "$(fh_how)"; return 0; }
	printf '%s' "$FH_OUT" | LC_ALL=C sort
}

# sorted LINES...: the arguments one a line, byte order.
sorted() {
	printf '%s\n' "$@" | LC_ALL=C sort
}

# check_ls WHAT DIR NAME...: `ls -A DIR` shows exactly NAMEs (none: empty).
check_ls() {
	local what="$1" dir="$2" want seen
	shift 2
	if (($# == 0)); then want=""; else want="$(sorted "$@")"; fi
	seen="$(fh_ls "$dir")"
	check_eq "$what" "$want" "$seen"
}

# fh_wait_until SECONDS CMD...: poll CMD (quietly) until it succeeds.
fh_wait_until() {
	tl_wait_for "$@" >/dev/null 2>&1
}

# cat_is PATH TEXT: reading PATH through the mount gives exactly TEXT
# (used as a poll condition).
cat_is() {
	local got
	got="$(timeout -k 2 10 cat -- "$1" 2>/dev/null; printf x)" || return 1
	[[ "${got%x}" == "$2" ]]
}

# --- the fault-injecting proxy (tests/lib/faultproxy.py) ------------------------
# fh_start_faultproxy [ARGS...]: start the proxy in front of DynamoDB Local
# ($DYNFS_TEST_DDB_ENDPOINT) on a free port, seed 1 unless ARGS give one;
# sets FH_PROXY (its URL) and FH_PROXY_PID, and stops it at exit.  Its log
# is $FH_WORK/proxy.log.
FH_PROXY=
FH_PROXY_PID=
fh_start_faultproxy() {
	rm -f "$FH_WORK/proxy.port"
	python3 "$DYNFS_SOURCE_ROOT/tests/lib/faultproxy.py" --upstream "$DYNFS_TEST_DDB_ENDPOINT" \
		--port-file "$FH_WORK/proxy.port" --seed 1 --log "$FH_WORK/proxy.log" "$@" \
		</dev/null >"$FH_WORK/proxy.out" 2>"$FH_WORK/proxy.err" &
	FH_PROXY_PID=$!
	tl_cleanup_push "tl_kill_child $FH_PROXY_PID"
	tl_wait_for 20 test -s "$FH_WORK/proxy.port" || {
		cat "$FH_WORK/proxy.err" >&2
		fh_fatal "the fault proxy wrote no port file within 20 s"
	}
	FH_PROXY="http://127.0.0.1:$(cat "$FH_WORK/proxy.port")"
	tl_log "faultproxy at $FH_PROXY (pid $FH_PROXY_PID)"
}

# fh_fault PATH [JSON]: the proxy's control endpoint (GET, or POST of
# JSON); prints the answer.  A failure is a rig failure.
fh_fault() {
	if (($# == 1)); then
		curl -sS --max-time 10 "$FH_PROXY$1" || fh_fatal "fault proxy control $1 failed"
	else
		curl -sS --max-time 10 -X POST "$FH_PROXY$1" --data "$2" ||
			fh_fatal "fault proxy control $1 $2 failed"
	fi
}

#!/usr/bin/env bash
# dynfs against moto with SigV4 verification on: wrong keys are refused
# before anything is mounted, with the one-line 403 message; the IAM
# user's key and an assume-role session both mount and list the table;
# with -d the daemon logs requests but never a secret key or token.
set -euo pipefail
. "${DYNFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/moto-auth.sh"

tl_require_bin
tl_require_fuse

tl_mktemp_dir
work="$TL_TMP"
TL_MNT="$work/mnt"
mkdir -p "$TL_MNT" "$work/home"
export HOME="$work/home"
tl_cleanup_push "tl_unmount '$TL_MNT'"

tl_moto_auth_start "$work/moto-state"
ep="$DYNFS_TEST_MOTO_ENDPOINT"
opts="region=us-east-1,endpoint=$ep"
unset AWS_REGION AWS_DEFAULT_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY \
	AWS_SESSION_TOKEN AWS_SECURITY_TOKEN || true
tl_log "moto at $ep"

run_with_keys() { # AK SK TOKEN -- dynfs args...
	local ak="$1" sk="$2" token="$3"
	shift 4
	if [[ -n "$token" ]]; then
		AWS_ACCESS_KEY_ID="$ak" AWS_SECRET_ACCESS_KEY="$sk" AWS_SESSION_TOKEN="$token" \
			tl_run_dynfs "$work/out" "$work/err" "$@"
	else
		AWS_ACCESS_KEY_ID="$ak" AWS_SECRET_ACCESS_KEY="$sk" \
			tl_run_dynfs "$work/out" "$work/err" "$@"
	fi
}

expect_refused() { # NAME AK SK TOKEN
	local name="$1"
	run_with_keys "$2" "$3" "$4" -- -o "$opts" "$TL_MNT"
	tl_check_sanitizers "$work/err" "$work/out"
	[[ "$TL_RC" == 1 ]] || {
		cat "$work/err" >&2
		tl_die "$name: exit status $TL_RC, expected 1"
	}
	tl_assert_one_line "$work/err" "dynfs: the endpoint rejected the credentials (403 "
	# "(403 Type): message", as the issue words it: the status and
	# the service's error type, then its words.
	grep -Eq '^dynfs: the endpoint rejected the credentials \(403 [A-Za-z]+\): .' "$work/err" ||
		tl_die "$name: the line does not name the error type: $(cat "$work/err")"
	tl_assert_not_mounted "$TL_MNT"
	tl_assert_absent "$work/err" "$work/out" -- "$3" "$4"
	tl_pass "$name: $(cut -c1-120 "$work/err")"
}

# mount_and_list NAME AK SK TOKEN FLAG: mount in the foreground (FLAG is
# -f or -d), wait for tables/ to list the moto table, unmount, and require
# a clean exit and clean output.
mount_and_list() {
	local name="$1" ak="$2" sk="$3" token="$4" flag="$5" listing
	local out="$work/$name.out" err="$work/$name.err"
	if [[ -n "$token" ]]; then
		AWS_ACCESS_KEY_ID="$ak" AWS_SECRET_ACCESS_KEY="$sk" AWS_SESSION_TOKEN="$token" \
			tl_start_daemon "$out" "$err" "$flag" -o "$opts" "$TL_MNT"
	else
		AWS_ACCESS_KEY_ID="$ak" AWS_SECRET_ACCESS_KEY="$sk" \
			tl_start_daemon "$out" "$err" "$flag" -o "$opts" "$TL_MNT"
	fi
	if ! tl_mount_wait "$TL_MNT" 30; then
		tail -n 30 "$err" >&2 || true
		tl_check_sanitizers "$err" "$out"
		tl_die "$name: not mounted with a listable tables/ within 30 s"
	fi
	tl_wait_listing "$TL_MNT/tables" "$DYNFS_TEST_MOTO_TABLE" 30 ||
		tl_die "$name: ls tables/ gave '$TL_LISTING', expected '$DYNFS_TEST_MOTO_TABLE' (waited 30 s)"
	listing="$TL_LISTING"
	[[ -d "$TL_MNT/tables/$DYNFS_TEST_MOTO_TABLE" ]] ||
		tl_die "$name: tables/$DYNFS_TEST_MOTO_TABLE is not a directory"
	tl_unmount_and_wait "$TL_MNT" 30
	tl_check_sanitizers "$err" "$out"
	tl_assert_absent "$err" "$out" -- "$sk" "$token"
	if [[ "$flag" == -d ]]; then
		grep -q 'ListTables' "$err" ||
			tl_die "$name: -d did not log the ListTables request"
	fi
	tl_pass "$name: mounted, listed '$listing', unmounted cleanly"
}

# Refusals: nothing is mounted, one line naming the 403 and its type.
wrong_sk="${DYNFS_TEST_SK%?}"
if [[ "${DYNFS_TEST_SK: -1}" == A ]]; then wrong_sk+=B; else wrong_sk+=A; fi
expect_refused "wrong secret key" "$DYNFS_TEST_AK" "$wrong_sk" ""
grep -q '403 SignatureDoesNotMatch' "$work/err" ||
	tl_die "wrong secret key: expected SignatureDoesNotMatch: $(cat "$work/err")"
expect_refused "unknown access key" "AKIAUNKNOWNDYNFS0000" "$DYNFS_TEST_SK" ""
expect_refused "wrong session token" "$DYNFS_TEST_STS_AK" "$DYNFS_TEST_STS_SK" \
	"${DYNFS_TEST_STS_TOKEN}X"

# With the right keys an unknown -o option is still refused by name.
run_with_keys "$DYNFS_TEST_AK" "$DYNFS_TEST_SK" "" -- \
	-o "$opts,bogus_option=1" "$TL_MNT"
tl_check_sanitizers "$work/err" "$work/out"
[[ "$TL_RC" == 1 ]] || tl_die "unknown option with good keys: exit status $TL_RC, expected 1"
tl_assert_one_line "$work/err" ""
grep -q 'bogus_option' "$work/err" || tl_die "unknown option: the line does not name it"
tl_assert_not_mounted "$TL_MNT"
tl_pass "unknown option with good keys: $(cat "$work/err")"

# Mounts: the IAM user's key, then the role session; both with -d, whose
# output must show the requests and never the secrets.
mount_and_list user-key "$DYNFS_TEST_AK" "$DYNFS_TEST_SK" "" -f
mount_and_list user-key-debug "$DYNFS_TEST_AK" "$DYNFS_TEST_SK" "" -d
mount_and_list assumed-role-debug "$DYNFS_TEST_STS_AK" "$DYNFS_TEST_STS_SK" \
	"$DYNFS_TEST_STS_TOKEN" -d

tl_log "all moto auth checks passed"

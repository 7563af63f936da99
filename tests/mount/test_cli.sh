#!/usr/bin/env bash
# The dynfs command line without a server: --help, --version, and every
# failure before the mount is exit status 1, exactly one line on stderr
# (starting "dynfs: " where dynfs itself speaks), and nothing mounted.
set -euo pipefail
. "${DYNFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

tl_require_bin

tl_mktemp_dir
work="$TL_TMP"
TL_MNT="$work/mnt"
mkdir -p "$TL_MNT" "$work/home"
tl_cleanup_push "tl_unmount '$TL_MNT'"

# A clean, predictable environment: no config files, no keys, no region,
# no instance metadata, no endpoint from the caller.
tl_aws_isolate "$work"
export HOME="$work/home"
unset AWS_REGION AWS_DEFAULT_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY \
	AWS_SESSION_TOKEN AWS_SECURITY_TOKEN || true

closed="$(tl_closed_port)" || tl_die "no free port found"
dead_ep="http://127.0.0.1:$closed"
out="$work/out"
err="$work/err"

# check_failure NAME PREFIX: the last dynfs run failed the contracted way.
check_failure() {
	local name="$1" prefix="$2"
	tl_check_sanitizers "$err" "$out"
	[[ "$TL_RC" == 1 ]] || {
		cat "$err" >&2
		tl_die "$name: exit status $TL_RC, expected 1"
	}
	tl_assert_one_line "$err" "$prefix"
	tl_assert_not_mounted "$TL_MNT"
	tl_pass "$name: $(head -n 1 "$err")"
}

# --help: usage on stdout, status 0.
tl_run_dynfs "$out" "$err" --help
tl_check_sanitizers "$err" "$out"
[[ "$TL_RC" == 0 ]] || tl_die "--help: exit status $TL_RC, expected 0"
grep -qi 'usage' "$out" || tl_die "--help: no usage on stdout"
grep -q 'MOUNTPOINT' "$out" || tl_die "--help: usage does not name MOUNTPOINT"
grep -q 'region=' "$out" || tl_die "--help: does not document -o region="
grep -q 'endpoint=' "$out" || tl_die "--help: does not document -o endpoint="
tl_assert_not_mounted "$TL_MNT"
tl_pass "--help"

# --version: "dynfs VERSION" with the project's version, status 0.
version="$(sed -n "s/^[[:space:]]*version[[:space:]]*:[[:space:]]*'\([^']*\)'.*/\1/p" \
	"$DYNFS_SOURCE_ROOT/meson.build" | head -n 1)"
[[ -n "$version" ]] || tl_die "cannot read the version from meson.build"
tl_run_dynfs "$out" "$err" --version
tl_check_sanitizers "$err" "$out"
[[ "$TL_RC" == 0 ]] || tl_die "--version: exit status $TL_RC, expected 0"
first="$(head -n 1 "$out")"
[[ "$first" == "dynfs $version" ]] ||
	tl_die "--version: first line '$first', expected 'dynfs $version'"
tl_pass "--version: $first"

# Missing mountpoint (everything else valid-looking).
AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=AKIADUMMY AWS_SECRET_ACCESS_KEY=dummy \
	tl_run_dynfs "$out" "$err" -o "endpoint=$dead_ep"
check_failure "missing mountpoint" "dynfs: "

# An unknown -o option.  libfuse may be the one to reject it, so only
# "one line that names it" is required of the text.
AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=AKIADUMMY AWS_SECRET_ACCESS_KEY=dummy \
	tl_run_dynfs "$out" "$err" -o "endpoint=$dead_ep,bogus_option=1" "$TL_MNT"
check_failure "unknown -o option" ""
grep -q 'bogus_option' "$err" || tl_die "unknown -o option: the line does not name it"

# No region anywhere (keys and endpoint present).
AWS_ACCESS_KEY_ID=AKIADUMMY AWS_SECRET_ACCESS_KEY=dummy \
	tl_run_dynfs "$out" "$err" -o "endpoint=$dead_ep" "$TL_MNT"
check_failure "no region" "dynfs: no region: set AWS_REGION or -o region=NAME"
[[ "$(cat "$err")" == "dynfs: no region: set AWS_REGION or -o region=NAME" ]] ||
	tl_die "no region: unexpected text: $(cat "$err")"

# No credentials anywhere (region and endpoint present).
tl_run_dynfs "$out" "$err" -o "region=us-east-1,endpoint=$dead_ep" "$TL_MNT"
check_failure "no credentials" "dynfs: no credentials: "

# A profile named with -o profile= that no file holds.
AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=AKIADUMMY AWS_SECRET_ACCESS_KEY=dummy \
	tl_run_dynfs "$out" "$err" -o "profile=no-such-profile,endpoint=$dead_ep" "$TL_MNT"
check_failure "unknown profile" "dynfs: "
grep -q 'no-such-profile' "$err" || tl_die "unknown profile: the line does not name it"

# An endpoint nobody listens on.
AWS_ACCESS_KEY_ID=AKIADUMMY AWS_SECRET_ACCESS_KEY=dummy-secret-never-printed \
	tl_run_dynfs "$out" "$err" -o "region=us-east-1,endpoint=$dead_ep" "$TL_MNT"
check_failure "unreachable endpoint" "dynfs: cannot reach $dead_ep ("
tl_assert_absent "$out" "$err" -- dummy-secret-never-printed

# The same through the environment's endpoint variable.
AWS_ENDPOINT_URL_DYNAMODB="$dead_ep" AWS_REGION=us-east-1 \
	AWS_ACCESS_KEY_ID=AKIADUMMY AWS_SECRET_ACCESS_KEY=dummy \
	tl_run_dynfs "$out" "$err" "$TL_MNT"
check_failure "unreachable endpoint (AWS_ENDPOINT_URL_DYNAMODB)" "dynfs: cannot reach $dead_ep ("

# A mountpoint that does not exist: still one line and status 1.
AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=AKIADUMMY AWS_SECRET_ACCESS_KEY=dummy \
	tl_run_dynfs "$out" "$err" -o "endpoint=$dead_ep" "$work/no/such/dir"
check_failure "missing mountpoint directory" ""

tl_log "all CLI checks passed"

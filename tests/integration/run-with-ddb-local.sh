#!/usr/bin/env bash
# run-with-ddb-local.sh PROGRAM [ARGS...]: start a fresh DynamoDB Local
# (contrib/dynamodb-local.sh) in a temporary directory, export
# DYNFS_TEST_DDB_ENDPOINT=http://127.0.0.1:PORT, AWS_REGION and dummy keys,
# run PROGRAM, then check with independent clients (the AWS SDK for
# JavaScript, and the AWS CLI when installed) that the item PROGRAM left
# in dynfs_it_check reads back identical to what our client read.
# DynamoDB Local is stopped whatever happens; the exit status is
# PROGRAM's (77, a skip, passes through), or 1 when a check failed.
set -euo pipefail

if [[ -z "${DYNFS_SOURCE_ROOT:-}" ]]; then
	DYNFS_SOURCE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fi
root="$DYNFS_SOURCE_ROOT"
ddb_local="$root/contrib/dynamodb-local.sh"
name="$(basename "$0" .sh)"

log() {
	printf '%s: %s\n' "$name" "$*" >&2
}

if [[ $# -lt 1 ]]; then
	echo "usage: $0 PROGRAM [ARGS...]" >&2
	exit 2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/dynfs-ddb-local.XXXXXX")"
main_pid="$BASHPID"
child=

cleanup() {
	local rc=$?
	# Only this shell cleans up, not a command substitution's subshell.
	[[ "$BASHPID" == "$main_pid" ]] || return "$rc"
	# A signal came while PROGRAM ran: it goes too.
	if [[ -n "$child" ]] && kill -0 "$child" 2>/dev/null; then
		kill "$child" 2>/dev/null || true
		wait "$child" 2>/dev/null || true
	fi
	"$ddb_local" stop "$work/ddb" >/dev/null 2>&1 || true
	rm -rf --one-file-system -- "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

ep="$("$ddb_local" start "$work/ddb")" || {
	log "DynamoDB Local did not start"
	exit 1
}
log "DynamoDB Local at $ep"

# Dummy keys and empty config files: the user's own AWS setup must not
# leak in (a profile, an endpoint override, instance metadata).
: >"$work/aws-config"
: >"$work/aws-credentials"
export AWS_CONFIG_FILE="$work/aws-config"
export AWS_SHARED_CREDENTIALS_FILE="$work/aws-credentials"
export AWS_ACCESS_KEY_ID=AKIADYNFSTESTLOCAL00
export AWS_SECRET_ACCESS_KEY=dynfs-test-local-secret
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE \
	AWS_ENDPOINT_URL AWS_ENDPOINT_URL_DYNAMODB AWS_CA_BUNDLE || true
export DYNFS_TEST_DDB_ENDPOINT="$ep"
export DYNFS_TEST_DDB_CHECK_FILE="$work/check-item.json"

# In the background and waited for, because bash runs a trap only after
# a foreground command ends: a TERM now stops PROGRAM and DynamoDB Local
# at once.
rc=0
"$@" &
child=$!
wait "$child" || rc=$?
child=
if [[ $rc -ne 0 ]]; then
	if [[ $rc -ne 77 ]]; then
		log "$1 exited with $rc; last lines of the DynamoDB Local log:"
		tail -n 20 "$work/ddb/log" >&2 || true
	fi
	exit "$rc"
fi

# The item our client wrote, as an independent client reads it.
[[ -s "$DYNFS_TEST_DDB_CHECK_FILE" ]] || {
	log "FAIL: $1 left no $DYNFS_TEST_DDB_CHECK_FILE"
	exit 1
}
command -v node >/dev/null || {
	log "FAIL: node is missing (needed for the AWS SDK check)"
	exit 1
}
if [[ ! -d "$root/tests/node_modules/@aws-sdk/client-dynamodb" ]]; then
	npm ci --prefix "$root/tests" --no-audit --no-fund >&2
fi
# --no-warnings: the SDK warns about future node versions on stderr.
node --no-warnings "$root/tests/integration/check-ddb-local.mjs" || {
	log "FAIL: the AWS SDK for JavaScript reads the item differently"
	exit 1
}

if command -v aws >/dev/null && command -v python3 >/dev/null; then
	aws dynamodb get-item --endpoint-url "$ep" --table-name dynfs_it_check \
		--key '{"pk":{"S":"check"},"sk":{"S":"item"}}' --consistent-read \
		--output json >"$work/cli-item.json" || {
		log "FAIL: aws dynamodb get-item failed"
		exit 1
	}
	python3 - "$work/cli-item.json" "$DYNFS_TEST_DDB_CHECK_FILE" <<'EOF' || {
import json, sys
cli = json.load(open(sys.argv[1]))["Item"]
ours = json.load(open(sys.argv[2]))
if cli != ours:
    print("aws cli:", json.dumps(cli, sort_keys=True), file=sys.stderr)
    print("dynfs:  ", json.dumps(ours, sort_keys=True), file=sys.stderr)
    sys.exit(1)
# The 38 digits, as text, in both.
big = "12345678901234567890123456789012345678"
if cli["big"]["N"] != big or ours["big"]["N"] != big:
    sys.exit(1)
EOF
		log "FAIL: the AWS CLI reads the item differently"
		exit 1
	}
	log "ok: the AWS CLI reads the same item"
else
	log "the AWS CLI or python3 is missing: CLI check skipped"
fi
exit 0

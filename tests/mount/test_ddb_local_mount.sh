#!/usr/bin/env bash
# dynfs against DynamoDB Local: three tables made with the AWS CLI appear
# in tables/ exactly as the CLI's own list-tables names them (the CLI is
# the independent checker), and fusermount3 -u ends the daemon with 0.
set -euo pipefail
. "${DYNFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

tl_require_bin
tl_require_fuse
tl_require_aws

tl_mktemp_dir
work="$TL_TMP"
TL_MNT="$work/mnt"
mkdir -p "$TL_MNT" "$work/home"
export HOME="$work/home"
tl_aws_isolate "$work"
tl_cleanup_push "tl_unmount '$TL_MNT'"

ddb_local="$DYNFS_SOURCE_ROOT/contrib/dynamodb-local.sh"
[[ -x "$ddb_local" ]] || tl_die "$ddb_local is missing"
ep="$("$ddb_local" start "$work/ddb")" || tl_die "contrib/dynamodb-local.sh start failed"
tl_cleanup_push "'$ddb_local' stop '$work/ddb'"
[[ "$ep" == http://127.0.0.1:* ]] || tl_die "unexpected DynamoDB Local endpoint '$ep'"
tl_log "DynamoDB Local at $ep"

# DynamoDB Local keeps one namespace per access key and region: dynfs and
# the CLI use the same ones.
export AWS_ACCESS_KEY_ID=AKIADYNFSLOCALTEST00
export AWS_SECRET_ACCESS_KEY=dynfs-local-test-secret
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN || true

cli() {
	aws --endpoint-url "$ep" "$@"
}

# Every character a table name may hold: letters, digits, '_', '-', '.'.
tables=(alpha Beta-2 gamma.3_x)
for t in "${tables[@]}"; do
	cli dynamodb create-table --table-name "$t" \
		--attribute-definitions AttributeName=pk,AttributeType=S \
		--key-schema AttributeName=pk,KeyType=HASH \
		--billing-mode PAY_PER_REQUEST >/dev/null ||
		tl_die "create-table $t failed"
done
# One item, so the table is not only a name.
cli dynamodb put-item --table-name alpha \
	--item '{"pk":{"S":"one"},"n":{"N":"1"}}' >/dev/null || tl_die "put-item failed"

expected="$(cli dynamodb list-tables --query 'TableNames[]' --output text |
	tr '\t' '\n' | sed '/^$/d' | LC_ALL=C sort)"
[[ "$(wc -l <<<"$expected")" == 3 ]] || tl_die "the CLI lists: $expected"

out="$work/dynfs.out"
err="$work/dynfs.err"
tl_start_daemon "$out" "$err" -f -o "region=us-east-1,endpoint=$ep" "$TL_MNT"
if ! tl_mount_wait "$TL_MNT" 30; then
	tail -n 30 "$err" >&2 || true
	tl_check_sanitizers "$err" "$out"
	tl_die "not mounted with a listable tables/ within 30 s"
fi

if ! tl_wait_listing "$TL_MNT/tables" "$expected" 30; then
	printf 'expected (aws dynamodb list-tables):\n%s\nactual (ls tables/):\n%s\n' \
		"$expected" "$TL_LISTING" >&2
	tl_die "ls tables/ differs from list-tables (waited 30 s)"
fi
actual="$TL_LISTING"
for t in "${tables[@]}"; do
	[[ -d "$TL_MNT/tables/$t" ]] || tl_die "tables/$t is not a directory"
done
tl_pass "ls tables/ matches list-tables: $(tr '\n' ' ' <<<"$actual")"

tl_unmount_and_wait "$TL_MNT" 30
tl_check_sanitizers "$err" "$out"
tl_assert_absent "$err" "$out" -- "$AWS_SECRET_ACCESS_KEY"
tl_pass "fusermount3 -u: the daemon exited with 0"

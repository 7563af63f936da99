#!/usr/bin/env bash
# contrib/demo.sh: see dynfs work in a minute, with no AWS account.
#
#   contrib/demo.sh [MOUNTPOINT]   build dynfs, start DynamoDB Local, seed
#                                  the demo tables, mount (default
#                                  /tmp/dynfs-demo/mnt)
#   contrib/demo.sh stop           unmount and stop DynamoDB Local
#
# Running it again is fine: the build is incremental, DynamoDB Local is
# reused while it runs, the seed overwrites the same items, and the mount
# is redone with the freshly built binary.  Everything stays on 127.0.0.1.
# DYNFS_DEMO_BUILD names the build directory (default build), and
# DYNFS_DEMO_DIR the state directory (default $XDG_RUNTIME_DIR/dynfs-demo,
# else /tmp/dynfs-demo).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="${DYNFS_DEMO_DIR:-${XDG_RUNTIME_DIR:-/tmp}/dynfs-demo}"
default_mnt=/tmp/dynfs-demo/mnt
build="${DYNFS_DEMO_BUILD:-build}" # the meson build directory to use
ddb_local="$root/contrib/dynamodb-local.sh"

# Dummy keys: DynamoDB Local accepts any, and keeps one namespace per key
# and region, so the seed and the mount use the same ones.
export AWS_ACCESS_KEY_ID=AKIADYNFSDEMO0000000
export AWS_SECRET_ACCESS_KEY=dynfs-demo-secret
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
unset AWS_SESSION_TOKEN AWS_PROFILE || true

say() {
	printf 'demo: %s\n' "$*" >&2
}

die() {
	printf 'demo: error: %s\n' "$*" >&2
	exit 1
}

is_mounted() {
	local p
	p="$(realpath -m -- "$1")"
	awk -v p="$p" '$5 == p { f = 1 } END { exit !f }' /proc/self/mountinfo
}

unmount() {
	local mnt="$1" i
	is_mounted "$mnt" || return 0
	fusermount3 -u "$mnt" 2>/dev/null || {
		say "$mnt is busy; detaching it lazily"
		fusermount3 -uz "$mnt"
	}
	for ((i = 0; i < 50; i++)); do
		is_mounted "$mnt" || return 0
		sleep 0.1
	done
	die "could not unmount $mnt"
}

# The endpoint of a DynamoDB Local started earlier and still answering.
running_endpoint() {
	[[ -f "$state/ddb/pid" ]] || return 1
	"$ddb_local" status "$state/ddb" 2>/dev/null
}

stop() {
	if [[ -f "$state/mountpoint" ]]; then
		local mnt
		mnt="$(cat "$state/mountpoint")"
		unmount "$mnt"
		say "unmounted $mnt"
		rm -f "$state/mountpoint"
	fi
	if [[ -f "$state/ddb/pid" ]]; then
		"$ddb_local" stop "$state/ddb" || true
		say "stopped DynamoDB Local"
	fi
	"$root/contrib/apis-demo.sh" stop "$state/apis" >/dev/null 2>&1 || true
	say "stopped"
}

start() {
	local mnt="${1:-$default_mnt}" ep i
	[[ "$mnt" != -* ]] || die "usage: contrib/demo.sh [MOUNTPOINT] | stop"
	mkdir -p "$state"

	say "installing what is missing (contrib/install-deps.sh)"
	"$root/contrib/install-deps.sh"

	say "building dynfs in $root/$build"
	cd "$root"
	if [[ ! -f "$build/build.ninja" ]]; then
		meson setup "$build" >/dev/null
	fi
	meson compile -C "$build" >/dev/null || meson compile -C "$build"
	[[ -x "$build/dynfs" ]] || die "$build/dynfs was not built"

	if ep="$(running_endpoint)"; then
		say "DynamoDB Local already running at $ep"
	else
		[[ -x "$ddb_local" ]] || die "$ddb_local is missing"
		"$ddb_local" stop "$state/ddb" >/dev/null 2>&1 || true
		ep="$("$ddb_local" start "$state/ddb")" || die "DynamoDB Local did not start"
		say "DynamoDB Local started at $ep"
	fi

	say "seeding the demo tables (contrib/demo-data)"
	NODE_NO_WARNINGS=1 node "$root/contrib/demo-data/seed.cjs" "$ep" >&2

	# --- APIs and functions -------------------------------------------
	# moto (management APIs) and tests/apigw-emu (invocations, Lambda
	# Invoke), with the demo APIs and functions defined in them.
	say "starting the API Gateway and Lambda emulators (contrib/apis-demo.sh)"
	"$root/contrib/apis-demo.sh" stop "$state/apis" >/dev/null 2>&1 || true
	"$root/contrib/apis-demo.sh" start "$state/apis" >&2 ||
		die "the API Gateway and Lambda emulators did not start"
	# shellcheck disable=SC1091 # written by apis-demo.sh
	. "$state/apis/env"

	mkdir -p "$mnt"
	if [[ -f "$state/mountpoint" ]]; then
		unmount "$(cat "$state/mountpoint")"
	fi
	unmount "$mnt"
	AWS_ENDPOINT_URL_API_GATEWAY="$DYNFS_DEMO_MOTO_ENDPOINT" \
	AWS_ENDPOINT_URL_APIGATEWAYV2="$DYNFS_DEMO_MOTO_ENDPOINT" \
	AWS_ENDPOINT_URL_LAMBDA="$DYNFS_DEMO_LAMBDA_ENDPOINT" \
		"$build/dynfs" -o "region=us-east-1,endpoint=$ep,cache_dir=$state/cache,apis_connect=$DYNFS_DEMO_APIS_CONNECT,apis_cafile=$DYNFS_DEMO_APIS_CAFILE" "$mnt" ||
		die "dynfs did not mount (see the line above)"
	printf '%s\n' "$(realpath "$mnt")" >"$state/mountpoint"
	for ((i = 0; i < 100; i++)); do
		ls "$mnt/tables" >/dev/null 2>&1 && break
		sleep 0.2
	done
	ls "$mnt/tables" >/dev/null 2>&1 || die "$mnt/tables cannot be listed"

	cat <<EOF

dynfs is mounted at $mnt (DynamoDB Local at $ep).

Look around:
    ls $mnt/tables
    ls $mnt/tables/users
    ls $mnt/tables/orders
    vim $mnt/tables/users/u001.json

APIs and functions:
    ls $mnt/apis $mnt/functions
    cat $mnt/apis/inventory/\$default/items/42/GET
    printf '{"name":"dynfs"}' > $mnt/functions/hello; cat $mnt/functions/hello
    cat $mnt/.dynfs/stats

The same data through the AWS CLI:
    AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \\
        aws --region us-east-1 --endpoint-url $ep dynamodb scan --table-name users

Stop (unmount and stop DynamoDB Local):
    contrib/demo.sh stop
EOF
}

case "${1:-}" in
stop)
	[[ $# -eq 1 ]] || die "usage: contrib/demo.sh stop"
	stop
	;;
-h | --help)
	sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
	;;
*)
	[[ $# -le 1 ]] || die "usage: contrib/demo.sh [MOUNTPOINT] | stop"
	start "${1:-}"
	;;
esac

#!/usr/bin/env bash
# contrib/apis-demo.sh: API Gateway and Lambda for the README demo, with
# no AWS account -- moto (the management APIs) and tests/apigw-emu (API
# invocations over HTTPS/wss and Lambda Invoke), on free 127.0.0.1 ports.
#
#   contrib/apis-demo.sh start DIR   make a test CA, start moto and the
#                                    emulator, define the demo APIs and
#                                    functions (tests/apigw-emu/
#                                    define-apis.mjs), write DIR/env
#   contrib/apis-demo.sh stop DIR    stop both (idempotent)
#   contrib/apis-demo.sh status DIR  0 and DIR/env's path while it runs
#
# DIR/env is a shell file (`. DIR/env`) of exported variables:
#   DYNFS_DEMO_MOTO_ENDPOINT    http://127.0.0.1:PORT  (moto)
#   DYNFS_DEMO_APIS_CONNECT     127.0.0.1:PORT  (-o apis_connect=)
#   DYNFS_DEMO_APIS_CAFILE      DIR/certs/ca.pem  (-o apis_cafile=)
#   DYNFS_DEMO_LAMBDA_ENDPOINT  http://127.0.0.1:PORT  (Lambda API)
#   DYNFS_DEMO_BACKEND          http://127.0.0.1:PORT  (the HTTP back end)
#   DYNFS_DEMO_REGION           us-east-1
#   DYNFS_DEMO_ACCESS_KEY_ID, DYNFS_DEMO_SECRET_ACCESS_KEY
#                               the only keys the emulator accepts
#   DYNFS_DEMO_API_SHOP, DYNFS_DEMO_API_SHOP2, DYNFS_DEMO_API_INVENTORY,
#   DYNFS_DEMO_API_CHAT         the API ids
#
# The emulator accepts the keys in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
# when they are set at start (contrib/demo.sh sets its dummy ones), else
# AKIADYNFSDEMO0000000 / dynfs-demo-secret.  Logs: DIR/moto/log and
# DIR/emu/log.  DYNFS_APIS_DEMO_TIMEOUT: seconds to wait for the emulator
# (default 30).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
emu="$root/tests/apigw-emu"
region=us-east-1
timeout="${DYNFS_APIS_DEMO_TIMEOUT:-30}"

die() {
	printf 'apis-demo: %s\n' "$*" >&2
	exit 1
}

usage() {
	printf 'usage: %s start|stop|status DIR\n' "$0" >&2
	exit 2
}

# The emulator's pid from DIR/emu/pid, only while it is still our server.
emu_pid() {
	local dir="$1" pid
	[[ -f "$dir/emu/pid" ]] || return 1
	pid="$(cat "$dir/emu/pid")"
	[[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/cmdline" ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'apigw-emu/server.mjs' || return 1
	printf '%s\n' "$pid"
}

stop_all() {
	local dir="$1" pid i
	if pid="$(emu_pid "$dir")"; then
		kill "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
	fi
	rm -f "$dir/emu/pid" "$dir/emu/ports" "$dir/env"
	if [[ -d "$dir/moto" ]]; then
		"$root/contrib/moto.sh" stop "$dir/moto" || true
	fi
}

start_all() {
	local dir="$1" moto_ep pid k v ids i
	command -v node >/dev/null || die "node is missing (contrib/install-deps.sh installs it)"
	[[ -d "$root/tests/node_modules/ws" ]] ||
		die "tests/node_modules is missing (contrib/install-deps.sh runs npm ci)"
	mkdir -p "$dir/emu"
	dir="$(cd "$dir" && pwd)"
	if pid="$(emu_pid "$dir")"; then
		die "already running in $dir (emulator pid $pid); stop it first"
	fi
	local ak="${AWS_ACCESS_KEY_ID:-AKIADYNFSDEMO0000000}"
	local sk="${AWS_SECRET_ACCESS_KEY:-dynfs-demo-secret}"

	"$emu/make-certs.sh" "$dir/certs" "$region" || die "could not make the test certificates"
	moto_ep="$("$root/contrib/moto.sh" start "$dir/moto")" || die "moto did not start"

	rm -f "$dir/emu/ports"
	EMU_ACCESS_KEY_ID="$ak" EMU_SECRET_ACCESS_KEY="$sk" EMU_SESSION_TOKEN='' \
		AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true \
		node "$emu/server.mjs" --moto "$moto_ep" \
		--cert "$dir/certs/server.pem" --key "$dir/certs/server.key" \
		--region "$region" --port-file "$dir/emu/ports" \
		>"$dir/emu/log" 2>&1 </dev/null &
	pid=$!
	printf '%s\n' "$pid" >"$dir/emu/pid"
	for ((i = 0; i < timeout * 5; i++)); do
		[[ -s "$dir/emu/ports" ]] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if [[ ! -s "$dir/emu/ports" ]]; then
		tail -n 20 "$dir/emu/log" >&2 || true
		stop_all "$dir"
		die "the emulator did not start (log: $dir/emu/log)"
	fi
	local https='' lambda='' backend=''
	while IFS='=' read -r k v; do
		case "$k" in
		https) https="$v" ;;
		lambda) lambda="$v" ;;
		backend) backend="$v" ;;
		esac
	done <"$dir/emu/ports"

	if ! ids="$(AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true node "$emu/define-apis.mjs" \
		--moto "$moto_ep" --backend "http://127.0.0.1:$backend" --region "$region")"; then
		stop_all "$dir"
		die "defining the demo APIs failed"
	fi
	# shellcheck disable=SC2034 # set by the eval, not all of them used
	local SHOP_ID='' SHOP2_ID='' INVENTORY_ID='' CHAT_ID='' LAMBDA_ROLE_ARN='' FUNCTIONS=''
	eval "$ids"

	{
		printf '# written by contrib/apis-demo.sh start %q\n' "$dir"
		printf 'export DYNFS_DEMO_MOTO_ENDPOINT=%q\n' "$moto_ep"
		printf 'export DYNFS_DEMO_APIS_CONNECT=%q\n' "127.0.0.1:$https"
		printf 'export DYNFS_DEMO_APIS_CAFILE=%q\n' "$dir/certs/ca.pem"
		printf 'export DYNFS_DEMO_LAMBDA_ENDPOINT=%q\n' "http://127.0.0.1:$lambda"
		printf 'export DYNFS_DEMO_BACKEND=%q\n' "http://127.0.0.1:$backend"
		printf 'export DYNFS_DEMO_REGION=%q\n' "$region"
		printf 'export DYNFS_DEMO_ACCESS_KEY_ID=%q\n' "$ak"
		printf 'export DYNFS_DEMO_SECRET_ACCESS_KEY=%q\n' "$sk"
		printf 'export DYNFS_DEMO_API_SHOP=%q\n' "$SHOP_ID"
		printf 'export DYNFS_DEMO_API_SHOP2=%q\n' "$SHOP2_ID"
		printf 'export DYNFS_DEMO_API_INVENTORY=%q\n' "$INVENTORY_ID"
		printf 'export DYNFS_DEMO_API_CHAT=%q\n' "$CHAT_ID"
	} >"$dir/env.tmp"
	mv "$dir/env.tmp" "$dir/env"
	printf 'apis-demo: moto at %s, emulator at 127.0.0.1:%s (Lambda at 127.0.0.1:%s); settings in %s\n' \
		"$moto_ep" "$https" "$lambda" "$dir/env" >&2
}

[[ $# -eq 2 ]] || usage
case "$1" in
start) start_all "$2" ;;
stop) stop_all "$2" ;;
status)
	emu_pid "$2" >/dev/null && [[ -f "$2/env" ]] || exit 1
	printf '%s\n' "$(cd "$2" && pwd)/env"
	;;
*) usage ;;
esac

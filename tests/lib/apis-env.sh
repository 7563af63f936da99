# shellcheck shell=bash
# tests/lib/apis-env.sh: the API Gateway and Lambda test environment --
# moto for the management APIs, and tests/apigw-emu (ours) for what moto
# does not serve: execute-api invocations (HTTPS and WebSocket) and Lambda
# Invoke.  Source it after tests/lib/common.sh; docs/testing-apis.md
# describes the emulator.
#
#   tl_apis_start DIR   make a test CA and server certificate (openssl),
#                       start moto (contrib/moto.sh, no authentication) and
#                       the emulator (with its HTTP back end), each stopped
#                       by the cleanup stack; isolate the AWS CLI
#                       (tl_aws_isolate) and export:
#     DYNFS_TEST_MOTO_ENDPOINT    http://127.0.0.1:PORT (moto: API Gateway
#                                 v1/v2 management, Lambda, IAM, STS)
#     DYNFS_TEST_APIS_CONNECT     127.0.0.1:PORT, the emulator's HTTPS (and
#                                 wss) port, for -o apis_connect= and for
#                                 curl --connect-to ::127.0.0.1:PORT
#     DYNFS_TEST_APIS_CAFILE      the test CA (PEM), for -o apis_cafile=
#     DYNFS_TEST_APIS_HTTP        127.0.0.1:PORT, the same without TLS
#     DYNFS_TEST_LAMBDA_ENDPOINT  http://127.0.0.1:PORT, the Lambda API
#                                 (Invoke emulated, the rest is moto's)
#     DYNFS_TEST_BACKEND          http://127.0.0.1:PORT, the HTTP back end
#     DYNFS_TEST_APIS_LOG         the emulator's log (one line a request)
#     DYNFS_TEST_APIS_DIR         DIR
#     DYNFS_TEST_APIS_AK, DYNFS_TEST_APIS_SK   the emulator's credentials,
#     AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY the same (no session token)
#     AWS_REGION=us-east-1, AWS_DEFAULT_REGION=us-east-1
#                       With DYNFS_TEST_APIS_TOKEN set before the call, the
#                       emulator also requires that session token, and
#                       AWS_SESSION_TOKEN is exported with it.
#   tl_apis_define      define the standard APIs and functions in moto
#                       (tests/apigw-emu/define-apis.mjs) and export
#     DYNFS_TEST_API_SHOP, DYNFS_TEST_API_SHOP2, DYNFS_TEST_API_INVENTORY,
#     DYNFS_TEST_API_CHAT (API ids), DYNFS_TEST_LAMBDA_ROLE_ARN and
#     DYNFS_TEST_FUNCTIONS ("echo fail hello")
#   tl_apis_host ID             ID.execute-api.us-east-1.amazonaws.com
#   tl_apis_curl ARGS...        curl -sS through the emulator, trusting
#                               the test CA
#   tl_apis_curl_signed ARGS... the same, SigV4-signed for execute-api
#   tl_apis_ws URL ARGS...      tests/apigw-emu/wsclient.mjs through the
#                               emulator (see that file for ARGS)
#   tl_apis_show_log            the emulator's last log lines, to stderr
#
# shellcheck disable=SC2034 # the exported variables are read by the tests

DYNFS_TEST_APIS_AK=AKIADYNFSAPISTEST000
DYNFS_TEST_APIS_SK=dynfs-apis-test-secret-key
DYNFS_TEST_APIS_REGION=us-east-1
TL_APIS_EMU="$DYNFS_SOURCE_ROOT/tests/apigw-emu"

# tl_apis_certs DIR: DIR/ca.pem (a test CA) and DIR/server.pem +
# DIR/server.key (tests/apigw-emu/make-certs.sh).
tl_apis_certs() {
	command -v openssl >/dev/null || tl_die "openssl is missing (contrib/install-deps.sh installs it)"
	"$TL_APIS_EMU/make-certs.sh" "$1" "$DYNFS_TEST_APIS_REGION" ||
		tl_die "could not make the test certificates"
}

tl_apis_start() {
	local dir="$1" pid k v
	command -v node >/dev/null || tl_die "node is missing (contrib/install-deps.sh installs it)"
	command -v curl >/dev/null || tl_die "curl is missing (contrib/install-deps.sh installs it)"
	[[ -d "$DYNFS_SOURCE_ROOT/tests/node_modules/ws" ]] ||
		tl_die "tests/node_modules is not installed (contrib/install-deps.sh runs npm ci)"
	mkdir -p "$dir" "$dir/emu"
	dir="$(cd "$dir" && pwd)"
	tl_aws_isolate "$dir"
	unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN

	tl_apis_certs "$dir/certs"

	DYNFS_TEST_MOTO_ENDPOINT="$("$DYNFS_SOURCE_ROOT/contrib/moto.sh" start "$dir/moto")" ||
		tl_die "contrib/moto.sh start failed"
	tl_cleanup_push "'$DYNFS_SOURCE_ROOT/contrib/moto.sh' stop '$dir/moto'"

	rm -f "$dir/emu/ports"
	EMU_ACCESS_KEY_ID="$DYNFS_TEST_APIS_AK" EMU_SECRET_ACCESS_KEY="$DYNFS_TEST_APIS_SK" \
		EMU_SESSION_TOKEN="${DYNFS_TEST_APIS_TOKEN:-}" \
		node "$TL_APIS_EMU/server.mjs" --moto "$DYNFS_TEST_MOTO_ENDPOINT" \
		--cert "$dir/certs/server.pem" --key "$dir/certs/server.key" \
		--region "$DYNFS_TEST_APIS_REGION" --port-file "$dir/emu/ports" \
		>"$dir/emu/log" 2>&1 </dev/null &
	pid=$!
	tl_cleanup_push "tl_kill_child $pid"
	DYNFS_TEST_APIS_LOG="$dir/emu/log"
	if ! tl_wait_for 30 eval "[[ -s '$dir/emu/ports' ]] || ! tl_pid_running $pid"; then
		tl_apis_show_log
		tl_die "the emulator wrote no ports within 30s"
	fi
	if [[ ! -s "$dir/emu/ports" ]]; then
		tl_apis_show_log
		tl_die "the emulator exited at start"
	fi
	local https='' http='' lambda='' backend=''
	while IFS='=' read -r k v; do
		case "$k" in
		https) https="$v" ;;
		http) http="$v" ;;
		lambda) lambda="$v" ;;
		backend) backend="$v" ;;
		esac
	done <"$dir/emu/ports"
	[[ -n "$https" && -n "$http" && -n "$lambda" && -n "$backend" ]] ||
		tl_die "the emulator's port file is incomplete: $(tr '\n' ' ' <"$dir/emu/ports")"

	DYNFS_TEST_APIS_CONNECT="127.0.0.1:$https"
	DYNFS_TEST_APIS_HTTP="127.0.0.1:$http"
	DYNFS_TEST_APIS_CAFILE="$dir/certs/ca.pem"
	DYNFS_TEST_LAMBDA_ENDPOINT="http://127.0.0.1:$lambda"
	DYNFS_TEST_BACKEND="http://127.0.0.1:$backend"
	DYNFS_TEST_APIS_DIR="$dir"
	AWS_ACCESS_KEY_ID="$DYNFS_TEST_APIS_AK"
	AWS_SECRET_ACCESS_KEY="$DYNFS_TEST_APIS_SK"
	AWS_REGION="$DYNFS_TEST_APIS_REGION"
	AWS_DEFAULT_REGION="$DYNFS_TEST_APIS_REGION"
	if [[ -n "${DYNFS_TEST_APIS_TOKEN:-}" ]]; then
		export AWS_SESSION_TOKEN="$DYNFS_TEST_APIS_TOKEN"
	fi
	export DYNFS_TEST_MOTO_ENDPOINT DYNFS_TEST_APIS_CONNECT DYNFS_TEST_APIS_HTTP \
		DYNFS_TEST_APIS_CAFILE DYNFS_TEST_LAMBDA_ENDPOINT DYNFS_TEST_BACKEND \
		DYNFS_TEST_APIS_LOG DYNFS_TEST_APIS_DIR DYNFS_TEST_APIS_AK DYNFS_TEST_APIS_SK \
		AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION AWS_DEFAULT_REGION
	# The SDK for JavaScript would warn about Node 20 on every call.
	export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
}

tl_apis_define() {
	local out
	out="$(node "$TL_APIS_EMU/define-apis.mjs" --moto "$DYNFS_TEST_MOTO_ENDPOINT" \
		--backend "$DYNFS_TEST_BACKEND" --region "$DYNFS_TEST_APIS_REGION" \
		2>"$DYNFS_TEST_APIS_DIR/define-apis.log")" || {
		cat "$DYNFS_TEST_APIS_DIR/define-apis.log" >&2
		tl_die "define-apis.mjs failed"
	}
	local SHOP_ID='' SHOP2_ID='' INVENTORY_ID='' CHAT_ID='' LAMBDA_ROLE_ARN='' FUNCTIONS=''
	# The output is NAME='value' lines with plain ids.
	eval "$out"
	[[ -n "$SHOP_ID" && -n "$SHOP2_ID" && -n "$INVENTORY_ID" && -n "$CHAT_ID" ]] ||
		tl_die "define-apis.mjs printed no API ids: $out"
	DYNFS_TEST_API_SHOP="$SHOP_ID"
	DYNFS_TEST_API_SHOP2="$SHOP2_ID"
	DYNFS_TEST_API_INVENTORY="$INVENTORY_ID"
	DYNFS_TEST_API_CHAT="$CHAT_ID"
	DYNFS_TEST_LAMBDA_ROLE_ARN="$LAMBDA_ROLE_ARN"
	DYNFS_TEST_FUNCTIONS="$FUNCTIONS"
	export DYNFS_TEST_API_SHOP DYNFS_TEST_API_SHOP2 DYNFS_TEST_API_INVENTORY \
		DYNFS_TEST_API_CHAT DYNFS_TEST_LAMBDA_ROLE_ARN DYNFS_TEST_FUNCTIONS
}

tl_apis_host() {
	printf '%s.execute-api.%s.amazonaws.com\n' "$1" "$DYNFS_TEST_APIS_REGION"
}

tl_apis_curl() {
	curl -sS --max-time 30 --connect-to "::$DYNFS_TEST_APIS_CONNECT" \
		--cacert "$DYNFS_TEST_APIS_CAFILE" "$@"
}

tl_apis_curl_signed() {
	tl_apis_curl --aws-sigv4 "aws:amz:$DYNFS_TEST_APIS_REGION:execute-api" \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" "$@"
}

tl_apis_ws() {
	local url="$1"
	shift
	node "$TL_APIS_EMU/wsclient.mjs" "$url" --connect "$DYNFS_TEST_APIS_CONNECT" \
		--cafile "$DYNFS_TEST_APIS_CAFILE" "$@"
}

tl_apis_show_log() {
	[[ -n "${DYNFS_TEST_APIS_LOG:-}" && -f "$DYNFS_TEST_APIS_LOG" ]] || return 0
	printf '%s: the emulator log (%s), last lines:\n' "$TL_NAME" "$DYNFS_TEST_APIS_LOG" >&2
	tail -n 40 "$DYNFS_TEST_APIS_LOG" >&2
}

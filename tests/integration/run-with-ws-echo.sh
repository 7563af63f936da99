#!/usr/bin/env bash
# run-with-ws-echo.sh TEST [ARGS...]: make a throwaway CA and a server
# certificate for localhost, 127.0.0.1 and *.execute-api.us-east-1.amazonaws.com,
# start tests/lib/ws-echo.mjs with them on free 127.0.0.1 ports, export
#   DYNFS_TEST_WS_PORT       the wss:// port
#   DYNFS_TEST_WS_HTTP_PORT  the ws:// port
#   DYNFS_TEST_WS_CA         the CA certificate (PEM)
#   DYNFS_TEST_WS_CLOSED_PORT a port nothing listens on
#   DYNFS_TEST_WS_REGION, DYNFS_TEST_WS_AK/SK, DYNFS_TEST_WS_STS_AK/SK/TOKEN
#                            the keys the server accepts for /iam paths
# and the isolated AWS config of tl_aws_isolate, run TEST, and stop the
# server whatever happens.
set -euo pipefail

if [[ -z "${DYNFS_SOURCE_ROOT:-}" ]]; then
	DYNFS_SOURCE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fi
# shellcheck source=/dev/null
. "$DYNFS_SOURCE_ROOT/tests/lib/common.sh"

[[ $# -ge 1 ]] || tl_die "usage: $0 TEST [ARGS...]"
command -v node >/dev/null || tl_die "node is missing"
command -v openssl >/dev/null || tl_die "the openssl CLI is missing"

tl_mktemp_dir
work="$TL_TMP"

# --- certificates ----------------------------------------------------------
mkdir -p "$work/pki"
(
	cd "$work/pki"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -keyout ca.key -out ca.pem -days 2 \
		-subj "/CN=dynfs ws-echo test CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -keyout server.key -out server.csr -subj "/CN=localhost"
	cat >server.ext <<'EOF'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:*.execute-api.us-east-1.amazonaws.com
EOF
	openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key \
		-CAcreateserial -days 2 -extfile server.ext -out server.pem
) >"$work/pki/log" 2>&1 || {
	cat "$work/pki/log" >&2
	tl_die "making the test certificates failed"
}

# --- keys the server accepts (test values, not real ones) ------------------
tl_aws_isolate "$work"
export DYNFS_TEST_WS_REGION=us-east-1
export DYNFS_TEST_WS_AK=AKIDWSECHOTEST000001
export DYNFS_TEST_WS_SK=ws-echo-test-secret-key-0000000000000001
export DYNFS_TEST_WS_STS_AK=ASIAWSECHOTEST000002
export DYNFS_TEST_WS_STS_SK=ws-echo-test-secret-key-0000000000000002
export DYNFS_TEST_WS_STS_TOKEN='ws-echo/test+session=token/0002'

# --- the server ------------------------------------------------------------
node "$DYNFS_SOURCE_ROOT/tests/lib/ws-echo.mjs" --cert "$work/pki/server.pem" \
	--key "$work/pki/server.key" --port-file "$work/ports" \
	>"$work/ws-echo.log" 2>&1 &
echo_pid=$!
tl_cleanup_push "kill $echo_pid; wait $echo_pid"

if ! tl_wait_for 30 test -s "$work/ports"; then
	cat "$work/ws-echo.log" >&2 || true
	tl_die "ws-echo did not start"
fi
read -r DYNFS_TEST_WS_PORT DYNFS_TEST_WS_HTTP_PORT <"$work/ports"
export DYNFS_TEST_WS_PORT DYNFS_TEST_WS_HTTP_PORT
export DYNFS_TEST_WS_CA="$work/pki/ca.pem"
DYNFS_TEST_WS_CLOSED_PORT="$(tl_closed_port)" || tl_die "no closed port found"
export DYNFS_TEST_WS_CLOSED_PORT
tl_log "ws-echo on wss://127.0.0.1:$DYNFS_TEST_WS_PORT and ws://127.0.0.1:$DYNFS_TEST_WS_HTTP_PORT"

rc=0
"$@" || rc=$?
if [[ $rc -ne 0 ]]; then
	tl_log "test exited with $rc; last lines of the ws-echo log:"
	tail -n 20 "$work/ws-echo.log" >&2 || true
fi
exit "$rc"

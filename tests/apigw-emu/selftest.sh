#!/usr/bin/env bash
# tests/apigw-emu/selftest.sh: checks the execute-api/Lambda emulator
# against independent clients -- curl (with its own SigV4 signer), the AWS
# CLI (botocore's signer), botocore's query-string presigner and the `ws`
# client with @smithy/signature-v4's presign -- so that the dynfs tests can
# trust it.  Starts everything through tests/lib/apis-env.sh; exits
# non-zero when any check failed (all checks run; each failure is listed).
set -euo pipefail

# shellcheck source=tests/lib/common.sh
. "${DYNFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
# shellcheck source=tests/lib/apis-env.sh
. "$DYNFS_SOURCE_ROOT/tests/lib/apis-env.sh"

command -v jq >/dev/null || tl_die "jq is missing (contrib/install-deps.sh installs it)"
tl_require_aws

tl_mktemp_dir
tl_apis_start "$TL_TMP"
tl_apis_define
tl_log "emulator at $DYNFS_TEST_APIS_CONNECT, moto at $DYNFS_TEST_MOTO_ENDPOINT"

FAILED=0
fail() {
	printf '%s: FAIL: %s\n' "$TL_NAME" "$*" >&2
	FAILED=$((FAILED + 1))
}

B="$TL_TMP/body"
HD="$TL_TMP/headers"

# req STATUS DESC CURLFN ARGS...: run CURLFN (tl_apis_curl or
# tl_apis_curl_signed) writing the body to $B and headers to $HD; the
# HTTP status must be STATUS.  0 when it was.
req() {
	local want="$1" desc="$2" fn="$3" got
	shift 3
	got="$("$fn" -o "$B" -D "$HD" -w '%{http_code}' "$@" 2>"$TL_TMP/curl.err")" || got="curl-error:$(cat "$TL_TMP/curl.err")"
	if [[ "$got" != "$want" ]]; then
		fail "$desc: HTTP $got, expected $want; body: $(head -c 300 "$B" 2>/dev/null)"
		return 1
	fi
	return 0
}

# jq_is DESC FILTER EXPECTED: jq -r FILTER on $B prints EXPECTED.
jq_is() {
	local got
	got="$(jq -r "$2" <"$B" 2>&1)" || got="(not JSON: $(head -c 200 "$B"))"
	[[ "$got" == "$3" ]] || fail "$1: $2 is '$got', expected '$3'"
}

# header_is DESC NAME VALUE: the response header NAME (any case) is VALUE.
header_is() {
	local got
	got="$(tr -d '\r' <"$HD" | awk -v n="$(tr '[:upper:]' '[:lower:]' <<<"$2")" -F': ' 'tolower($1) == n { print $2 }' | tail -n 1)"
	[[ "$got" == "$3" ]] || fail "$1: header $2 is '$got', expected '$3'"
}

MISMATCH='The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.'
SHOP="https://$(tl_apis_host "$DYNFS_TEST_API_SHOP")"
SHOP2="https://$(tl_apis_host "$DYNFS_TEST_API_SHOP2")"
INV="https://$(tl_apis_host "$DYNFS_TEST_API_INVENTORY")"
CHAT="wss://$(tl_apis_host "$DYNFS_TEST_API_CHAT")"

# --- REST API: MOCK, stages, unknown routes --------------------------------
for st in prod dev; do
	if req 200 "GET /$st/orders (MOCK)" tl_apis_curl "$SHOP/$st/orders"; then
		jq_is "GET /$st/orders" '.orders[0].item' book
		header_is "GET /$st/orders" content-type application/json
	fi
done
if req 403 "unknown route" tl_apis_curl "$SHOP/prod/nothing/here"; then
	jq_is "unknown route" .message 'Missing Authentication Token'
	header_is "unknown route" x-amzn-ErrorType MissingAuthenticationTokenException
fi
req 403 "unknown stage" tl_apis_curl "$SHOP/beta/orders" &&
	jq_is "unknown stage" .message 'Missing Authentication Token'
req 403 "method without a definition" tl_apis_curl -X DELETE "$SHOP/prod/orders" &&
	jq_is "method without a definition" .message 'Missing Authentication Token'
if req 404 "MOCK 404" tl_apis_curl "$SHOP/prod/missing"; then
	jq_is "MOCK 404" .message 'no such thing'
fi
if req 500 "MOCK 500" tl_apis_curl "$SHOP/prod/boom"; then
	jq_is "MOCK 500" .message boom
fi
req 200 "second API named shop" tl_apis_curl "$SHOP2/prod/ping" && jq_is "second shop" .pong true

# --- AWS_IAM routes ----------------------------------------------------------
if req 200 "signed GET /orders/{id}" tl_apis_curl_signed "$SHOP/prod/orders/42?x=1"; then
	jq_is "signed GET path" .path /orders/42
	jq_is "signed GET query" .query x=1
	jq_is "signed GET method" .method GET
fi
if req 403 "unsigned GET /orders/{id}" tl_apis_curl "$SHOP/prod/orders/42"; then
	jq_is "unsigned" .message 'Missing Authentication Token'
	header_is "unsigned" x-amzn-ErrorType MissingAuthenticationTokenException
fi
if req 403 "wrong secret" tl_apis_curl --aws-sigv4 "aws:amz:us-east-1:execute-api" \
	--user "$AWS_ACCESS_KEY_ID:not-the-secret" "$SHOP/prod/orders/42"; then
	jq_is "wrong secret" .message "$MISMATCH"
	header_is "wrong secret" x-amzn-ErrorType InvalidSignatureException
fi
req 403 "unknown key" tl_apis_curl --aws-sigv4 "aws:amz:us-east-1:execute-api" \
	--user "AKIAUNKNOWNKEY000000:$AWS_SECRET_ACCESS_KEY" "$SHOP/prod/orders/42" &&
	header_is "unknown key" x-amzn-ErrorType UnrecognizedClientException
req 403 "wrong service in scope" tl_apis_curl --aws-sigv4 "aws:amz:us-east-1:lambda" \
	--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" "$SHOP/prod/orders/42"
req 403 "tampered signed request (other path)" tl_apis_curl \
	-H "x-amz-date: $(date -u +%Y%m%dT%H%M%SZ)" \
	-H "Authorization: AWS4-HMAC-SHA256 Credential=$AWS_ACCESS_KEY_ID/$(date -u +%Y%m%d)/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000" \
	"$SHOP/prod/orders/42" && jq_is "tampered" .message "$MISMATCH"
req 200 "signed MOCK /private" tl_apis_curl_signed "$SHOP/prod/private" &&
	jq_is "signed /private" .secret 'only for signed callers'
req 403 "unsigned MOCK /private" tl_apis_curl "$SHOP/prod/private"

# An independent signer with a harder request: botocore (the AWS CLI's
# library, shipped with moto), unsorted and repeated query parameters,
# percent-encoded path and query.
cat >"$TL_TMP/botosign.py" <<'EOF'
import http.client, socket, ssl, sys
from urllib.parse import urlsplit
import botocore.auth, botocore.awsrequest, botocore.credentials
url, connect, ca, ak, sk, method, body = sys.argv[1:8]
creds = botocore.credentials.Credentials(ak, sk)
hdrs = {'content-type': 'application/json'} if body else {}
req = botocore.awsrequest.AWSRequest(method=method, url=url, data=body.encode() or None, headers=hdrs)
botocore.auth.SigV4Auth(creds, 'execute-api', 'us-east-1').add_auth(req)
p = req.prepare()
u = urlsplit(p.url)
host, port = connect.rsplit(':', 1)
ctx = ssl.create_default_context(cafile=ca)
c = http.client.HTTPSConnection(host, int(port), context=ctx)
c.sock = ctx.wrap_socket(socket.create_connection((host, int(port))), server_hostname=u.hostname)
c.putrequest(method, u.path + ('?' + u.query if u.query else ''), skip_host=True, skip_accept_encoding=True)
for k, v in p.headers.items():
    c.putheader(k, v)
c.putheader('Host', u.hostname)
c.endheaders(p.body)
r = c.getresponse()
sys.stdout.write(r.read().decode())
sys.stderr.write(str(r.status))
EOF
botosign() {
	local status
	status="$(python3 "$TL_TMP/botosign.py" "$1" "$DYNFS_TEST_APIS_CONNECT" "$DYNFS_TEST_APIS_CAFILE" \
		"$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$2" "${3:-}" 2>&1 >"$B")" || status="python-error: $status"
	printf '%s' "$status"
}
st="$(botosign "$SHOP/prod/orders/a%20b?z=1&a=x%20y&a=b&e=" GET)"
if [[ "$st" == 200 ]]; then
	jq_is "botocore-signed path" .path '/orders/a%20b'
	jq_is "botocore-signed query" '.queryParams.a | join(",")' 'x y,b'
else
	fail "botocore-signed GET: $st $(head -c 300 "$B")"
fi
st="$(botosign "$INV/secure?q=%2B%2F" GET)"
[[ "$st" == 200 ]] || fail "botocore-signed HTTP API route: $st $(head -c 300 "$B")"

# --- HTTP_PROXY: methods, path parameters, query strings, bodies ---------------
if req 200 "POST /orders/{id}" tl_apis_curl -X POST -H 'content-type: application/json' \
	--data-binary '{"qty": 3}' "$SHOP/dev/orders/7?q=1&q=2"; then
	jq_is "POST method" .method POST
	jq_is "POST path" .path /orders/7
	jq_is "POST query" .query 'q=1&q=2'
	jq_is "POST body" .body '{"qty": 3}'
	jq_is "POST content-type" '.headers["content-type"]' application/json
fi
if req 200 "GET /search" tl_apis_curl "$SHOP/prod/search?q=red%20shoes&sort=asc"; then
	jq_is "search query" .queryParams.q 'red shoes'
	jq_is "search sort" .queryParams.sort asc
	jq_is "search path" .path /search
fi

# --- HTTP API ---------------------------------------------------------------------
req 200 "HTTP API GET /items/{id}" tl_apis_curl "$INV/items/5?x=y" && {
	jq_is "items path" .path /items/5
	jq_is "items query" .query x=y
}
req 200 "HTTP API ANY /things/{proxy+}" tl_apis_curl -X DELETE "$INV/things/a/b/c" && {
	jq_is "proxy+ path" .path /things/a/b/c
	jq_is "proxy+ method" .method DELETE
}
req 200 "HTTP API \$default route" tl_apis_curl -X PUT --data-binary x "$INV/whatever/else" &&
	jq_is "\$default" .path /default
req 403 "HTTP API unsigned AWS_IAM route" tl_apis_curl "$INV/secure"
req 200 "HTTP API signed AWS_IAM route" tl_apis_curl_signed "$INV/secure" && jq_is "secure" .path /secure
# streaming and slow answers of the back end
got="$(tl_apis_curl "$INV/things/big?bytes=1000000" | md5sum)"
want="$(seq -f '%015.0f' 0 62499 | md5sum)" # 62500 lines of 16 bytes
[[ "$got" == "$want" ]] || fail "/things/big: the bytes differ"
t0=$(date +%s%N)
req 200 "slow back end" tl_apis_curl "$INV/things/slow?ms=400"
t1=$(date +%s%N)
(((t1 - t0) / 1000000 >= 400)) || fail "slow back end answered in $(((t1 - t0) / 1000000)) ms, before 400 ms"

# An API defined after the emulator started, with the AWS CLI: an HTTP API
# with a named stage (so unknown paths are 404) and a Lambda proxy route
# (payload 2.0).
api="$(aws --endpoint-url "$DYNFS_TEST_MOTO_ENDPOINT" apigatewayv2 create-api --name late \
	--protocol-type HTTP --query ApiId --output text)"
integ="$(aws --endpoint-url "$DYNFS_TEST_MOTO_ENDPOINT" apigatewayv2 create-integration --api-id "$api" \
	--integration-type AWS_PROXY --payload-format-version 2.0 \
	--integration-uri "arn:aws:lambda:us-east-1:123456789012:function:hello" \
	--query IntegrationId --output text)"
aws --endpoint-url "$DYNFS_TEST_MOTO_ENDPOINT" apigatewayv2 create-route --api-id "$api" \
	--route-key 'GET /hello' --target "integrations/$integ" >/dev/null
aws --endpoint-url "$DYNFS_TEST_MOTO_ENDPOINT" apigatewayv2 create-stage --api-id "$api" \
	--stage-name v1 >/dev/null
LATE="https://$(tl_apis_host "$api")"
req 200 "late API, Lambda proxy 2.0" tl_apis_curl "$LATE/v1/hello?name=ann" &&
	jq_is "late API greeting" .greeting 'Hello, ann!'
req 404 "HTTP API unknown route" tl_apis_curl "$LATE/v1/nothing" && jq_is "HTTP 404" .message 'Not Found'
req 404 "HTTP API unknown stage" tl_apis_curl "$LATE/v2/hello"
req 200 "REST Lambda proxy" tl_apis_curl "$SHOP2/prod/hello?name=bob" && {
	jq_is "REST Lambda proxy" .greeting 'Hello, bob!'
	header_is "REST Lambda proxy" x-function hello
}
req 403 "unknown API id" tl_apis_curl "https://$(tl_apis_host nosuchapi0)/prod/orders"

# --- WebSocket ---------------------------------------------------------------------
out="$(tl_apis_ws "$CHAT/prod" hello 2>&1)" && rc=0 || rc=$?
[[ "$rc" == 3 && "$out" == 'HTTP 403 '*'Missing Authentication Token'* ]] ||
	fail "unsigned \$connect: rc $rc, output '$out'"
out="$(AWS_SECRET_ACCESS_KEY=wrong tl_apis_ws "$CHAT/prod" --presign hello 2>&1)" && rc=0 || rc=$?
[[ "$rc" == 3 && "$out" == 'HTTP 403 '*'does not match'* ]] ||
	fail "wrongly presigned \$connect: rc $rc, output '$out'"
out="$(tl_apis_ws "$CHAT/prod" --presign 'hello there' '{"action":"echo","times":3}' --expect 4 2>&1)" && rc=0 || rc=$?
want='hello there
{"action":"echo","times":3,"seq":1}
{"action":"echo","times":3,"seq":2}
{"action":"echo","times":3,"seq":3}'
[[ "$rc" == 0 && "$out" == "$want" ]] || fail "WebSocket echo: rc $rc, output '$out'"
out="$(tl_apis_ws "$CHAT/prod" --presign '{"times":1,"close":true}' --expect 2 2>&1)" && rc=0 || rc=$?
[[ "$rc" == 4 && "$out" == *'"seq":1}'*'CLOSE 1000'* ]] || fail "WebSocket close on request: rc $rc, output '$out'"
out="$(tl_apis_ws "$CHAT/beta" --presign x 2>&1)" && rc=0 || rc=$?
[[ "$rc" == 3 && "$out" == 'HTTP 403 '* ]] || fail "WebSocket unknown stage: rc $rc, output '$out'"
# botocore's presigned URL, the raw handshake
cat >"$TL_TMP/botopresign.py" <<'EOF'
import base64, os, socket, ssl, sys
from urllib.parse import urlsplit
import botocore.auth, botocore.awsrequest, botocore.credentials
url, connect, ca, ak, sk = sys.argv[1:6]
req = botocore.awsrequest.AWSRequest(method='GET', url=url)
botocore.auth.SigV4QueryAuth(botocore.credentials.Credentials(ak, sk), 'execute-api', 'us-east-1', expires=60).add_auth(req)
u = urlsplit(req.prepare().url)
host, port = connect.rsplit(':', 1)
s = ssl.create_default_context(cafile=ca).wrap_socket(socket.create_connection((host, int(port))), server_hostname=u.hostname)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall(f"GET {u.path}?{u.query} HTTP/1.1\r\nHost: {u.hostname}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
print(s.recv(4096).decode('latin-1').split('\r\n')[0])
EOF
out="$(python3 "$TL_TMP/botopresign.py" "$CHAT/prod" "$DYNFS_TEST_APIS_CONNECT" "$DYNFS_TEST_APIS_CAFILE" \
	"$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" 2>&1)" || true
[[ "$out" == 'HTTP/1.1 101 '* ]] || fail "botocore-presigned WebSocket handshake: '$out'"

# --- Lambda --------------------------------------------------------------------------
LAWS=(aws --endpoint-url "$DYNFS_TEST_LAMBDA_ENDPOINT" lambda)
out="$("${LAWS[@]}" list-functions --query 'Functions[].FunctionName' --output text 2>&1)" ||
	fail "list-functions through the emulator: $out"
[[ "$(tr '\t' '\n' <<<"$out" | sort | tr '\n' ' ')" == 'echo fail hello ' ]] ||
	fail "list-functions: '$out'"
if "${LAWS[@]}" invoke --function-name echo --payload '{"a": [1, "two"]}' --log-type Tail \
	"$TL_TMP/out.json" >"$TL_TMP/meta.json" 2>"$TL_TMP/aws.err"; then
	[[ "$(jq -c . "$TL_TMP/out.json")" == '{"a":[1,"two"]}' ]] || fail "invoke echo: $(cat "$TL_TMP/out.json")"
	[[ "$(jq -r '.StatusCode, (.FunctionError // "none")' "$TL_TMP/meta.json" | tr '\n' ' ')" == '200 none ' ]] ||
		fail "invoke echo metadata: $(cat "$TL_TMP/meta.json")"
	tail="$(jq -r .LogResult "$TL_TMP/meta.json" | base64 -d)"
	[[ "$tail" == 'START RequestId: '*$'\t''INFO'$'\t''echo echo'*'END RequestId: '*'REPORT RequestId: '*'Duration: '* ]] ||
		fail "invoke echo log tail: '$tail'"
else
	fail "invoke echo: $(cat "$TL_TMP/aws.err")"
fi
if "${LAWS[@]}" invoke --function-name fail "$TL_TMP/out.json" >"$TL_TMP/meta.json" 2>"$TL_TMP/aws.err"; then
	[[ "$(jq -r .FunctionError "$TL_TMP/meta.json")" == Unhandled ]] || fail "invoke fail metadata: $(cat "$TL_TMP/meta.json")"
	[[ "$(jq -r '.errorType, .errorMessage, (.trace | type)' "$TL_TMP/out.json" | tr '\n' '|')" == 'Error|this function always fails|array|' ]] ||
		fail "invoke fail payload: $(cat "$TL_TMP/out.json")"
else
	fail "invoke fail: $(cat "$TL_TMP/aws.err")"
fi
if ! "${LAWS[@]}" invoke --function-name hello --payload '{"name": "dynfs"}' "$TL_TMP/out.json" >/dev/null 2>&1 ||
	[[ "$(jq -r .greeting "$TL_TMP/out.json")" != 'Hello, dynfs!' ]]; then
	fail "invoke hello: $(cat "$TL_TMP/out.json" 2>/dev/null)"
fi
if "${LAWS[@]}" invoke --function-name nosuch "$TL_TMP/out.json" >/dev/null 2>"$TL_TMP/aws.err"; then
	fail "invoke of a missing function succeeded"
else
	grep -q 'ResourceNotFoundException' "$TL_TMP/aws.err" || fail "invoke nosuch: $(cat "$TL_TMP/aws.err")"
fi
if AWS_SECRET_ACCESS_KEY=wrong "${LAWS[@]}" invoke --function-name echo "$TL_TMP/out.json" >/dev/null 2>"$TL_TMP/aws.err"; then
	fail "invoke with a wrong secret succeeded"
else
	grep -q 'InvalidSignatureException' "$TL_TMP/aws.err" || fail "invoke, wrong secret: $(cat "$TL_TMP/aws.err")"
fi
# curl's signer, straight to the Invoke path
st="$(curl -sS -o "$B" -D "$HD" -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:lambda" \
	--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H 'content-type: application/json' \
	--data-binary '{"x": 1}' "$DYNFS_TEST_LAMBDA_ENDPOINT/2015-03-31/functions/echo/invocations")" || st=curl-error
[[ "$st" == 200 && "$(jq -c . "$B")" == '{"x":1}' ]] || fail "curl-signed invoke: $st $(head -c 200 "$B")"
st="$(curl -sS -o "$B" -D "$HD" -w '%{http_code}' -X POST --data-binary '{}' \
	"$DYNFS_TEST_LAMBDA_ENDPOINT/2015-03-31/functions/echo/invocations")" || st=curl-error
if [[ "$st" == 403 ]]; then
	header_is "unsigned invoke" x-amzn-ErrorType MissingAuthenticationTokenException
else
	fail "unsigned invoke: $st"
fi

if ((FAILED > 0)); then
	tl_apis_show_log
	tl_die "$FAILED check(s) failed"
fi
tl_pass "the emulator behaves (REST, HTTP and WebSocket APIs, SigV4, Lambda)"

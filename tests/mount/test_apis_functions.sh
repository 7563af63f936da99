#!/usr/bin/env bash
# functions/ (docs/apis.md): every Lambda function is a file; cat invokes
# with {}, printf > f; cat f and exec 3<>f invoke with a payload, jq reads
# the result, a function error shows its payload and fails the read's end
# (EIO), user.dynfs.log holds the log tail, two shells invoke at once.
# Expectations come from the functions themselves
# (tests/apigw-emu/functions) and the emulator's request log.
# shellcheck disable=SC2016 # single-quoted scripts for bash -c are deliberate
set -euo pipefail
. "${DYNFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/fs-helpers.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/apis-env.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/apis-fs.sh"

af_setup
af_mount m1
F="$AF_FNS"

# shellcheck disable=SC2086 # the list is words
check_ls "functions/ lists every function (ListFunctions)" "$F" $DYNFS_TEST_FUNCTIONS
check_py "an unknown function is ENOENT" ENOENT stat "$F/nosuch"
fh_run stat -c %F "$F/echo"
check_eq "a function is a regular file" "regular empty file" "${FH_OUT%$'\n'}"

fh_run cat "$F/hello"
check_eq "cat invokes with {}" '{"greeting":"Hello, world!"}' "$FH_OUT"
fh_sh 'printf "{\"name\":\"bob\"}" > "$1"; cat "$1"' "$F/hello"
check_eq "printf > f; cat f: invoked with that payload" '{"greeting":"Hello, bob!"}' "$FH_OUT"
fh_sh 'exec 3<>"$1"; printf "{\"x\":[1,2]}" >&3; cat <&3' "$F/echo"
check_eq "exec 3<>f; write; read" '{"x":[1,2]}' "$FH_OUT"
fh_sh 'jq -n "{a: {b: 3}}" > "$1"; jq .a.b "$1"' "$F/echo"
check_eq "jq -n ... > f; jq . f" 3 "${FH_OUT%$'\n'}"
fh_sh 'printf "%s\n" ann bo | xargs -I{} sh -c '"'"'printf "{\"name\":\"%s\"}" "$1" > "$2"; cat "$2"; echo'"'"' sh {} "$1"' "$F/hello"
check_eq "xargs, one invocation a line" $'{"greeting":"Hello, ann!"}\n{"greeting":"Hello, bo!"}' "${FH_OUT%$'\n'}"
if grep -q "POST [^ ]* /2015-03-31/functions/hello/invocations" "$DYNFS_TEST_APIS_LOG"; then
	pass "Lambda Invoke reached the emulator"
else
	fail "the emulator log shows no Invoke of hello"
	tl_apis_show_log
fi

fh_sh 'cat "$1"; echo " rc=$?"' "$F/fail"
check_contains "a function error: its payload is readable" '"errorMessage":"this function always fails"' "$FH_OUT"
check_contains "and cat exits 1" " rc=1" "$FH_OUT"
check_contains "with EIO" "Input/output error" "$FH_ERR"
fh_sh 'printf "{\"type\":\"TypeError\",\"message\":\"bad\"}" > "$1"; cat "$1" 2>/dev/null | jq -r .errorType' "$F/fail"
check_eq "the error payload of printf > f; cat f | jq" TypeError "$(head -n 1 <<<"$FH_OUT")"
fh_sh 'cat "$1" >/dev/null 2>&1; af_xa get "$1" user.dynfs.headers; af_xa get "$1" user.dynfs.log' "$F/fail"
check_contains "user.dynfs.headers names the function error" "x-amz-function-error: Unhandled" "$FH_OUT"
check_contains "user.dynfs.log holds the log tail" "fail: about to throw" "$FH_OUT"
fh_sh 'cat "$1" >/dev/null; af_xa get "$1" user.dynfs.log; af_xa get "$1" user.dynfs.status' "$F/hello"
check_contains "user.dynfs.log of a good call" "hello: greeting world" "$FH_OUT"
check_contains "user.dynfs.status" "HTTP/1.1 200 OK" "$FH_OUT"

conc() {
	local who="$1" i
	for i in 1 2 3 4 5 6; do
		printf '{"who":"%s%d"}' "$who" "$i" >"$F/echo"
		cat "$F/echo"
		echo
	done
}
conc A >"$FH_WORK/A.out" 2>&1 &
pa=$!
conc B >"$FH_WORK/B.out" 2>&1 &
pb=$!
tl_wait_exit "$pa" 120 || fh_fatal "shell A did not finish"
tl_wait_exit "$pb" 120 || fh_fatal "shell B did not finish"
check_eq "shell A got its own six results" "$(for i in $(seq 1 6); do printf '{"who":"A%d"}\n' "$i"; done)" "$(cat "$FH_WORK/A.out")"
check_eq "shell B got its own six results" "$(for i in $(seq 1 6); do printf '{"who":"B%d"}\n' "$i"; done)" "$(cat "$FH_WORK/B.out")"
fh_unmount

# The endpoints from AWS_ENDPOINT_URL_<SERVICE>, as the AWS CLI reads them;
# a Lambda endpoint that answers nothing fails the listing, not the mount.
port="$(tl_closed_port)"
AF_ENV_ENDPOINTS=1 AWS_ENDPOINT_URL_API_GATEWAY="$DYNFS_TEST_MOTO_ENDPOINT" \
	AWS_ENDPOINT_URL_APIGATEWAYV2="$DYNFS_TEST_MOTO_ENDPOINT" \
	AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$port" af_mount m2
check_ls "AWS_ENDPOINT_URL_API_GATEWAY and ..._APIGATEWAYV2 are used" "$AF_APIS" \
	chat inventory "shop~$DYNFS_TEST_API_SHOP" "shop~$DYNFS_TEST_API_SHOP2"
fh_run ls "$AF_FNS"
check_contains "AWS_ENDPOINT_URL_LAMBDA is used: nothing listens there" "reading directory" "$FH_ERR"
check_ok "the failure is logged with curl's words" grep -q "apis: listing /functions failed: .*$port" "$FH_LOG"
fh_unmount
AF_ENV_ENDPOINTS=1 AWS_ENDPOINT_URL_LAMBDA="$DYNFS_TEST_LAMBDA_ENDPOINT" \
	AWS_ENDPOINT_URL_API_GATEWAY="http://127.0.0.1:$port" af_mount m3 "lambda_endpoint=http://127.0.0.1:$port"
fh_run ls "$AF_FNS"
check_contains "-o lambda_endpoint= wins over the environment" "reading directory" "$FH_ERR"
check_ok "(the log says where)" grep -q "apis: listing /functions failed: .*$port" "$FH_LOG"
fh_unmount
fh_summary

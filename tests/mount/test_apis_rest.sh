#!/usr/bin/env bash
# apis/ for REST APIs (docs/apis.md): the tree (two APIs named "shop" show
# as shop~ID), path parameters and query strings, IAM-signed and unsigned
# routes, error statuses and the exit status a script sees, the session
# rules (cat; printf > POST; cat POST; exec 3<>POST; tee; xargs; jq),
# two shells invoking at once, the response and request-header xattrs,
# apis_header=, a large streamed response, the -d log, and a 403 when the
# secret key is wrong.  Expectations come from curl against the emulator
# (its own SigV4 signer) and from the back end's echo of what it received.
# shellcheck disable=SC2016,SC2317 # single-quoted bash -c scripts; poll functions called indirectly
set -euo pipefail
. "${DYNFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/fs-helpers.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/apis-env.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/apis-fs.sh"

af_setup
af_mount m1

SHOP="shop~$DYNFS_TEST_API_SHOP"
SHOP2="shop~$DYNFS_TEST_API_SHOP2"
P="$AF_APIS/$SHOP/prod"
HOST="$(tl_apis_host "$DYNFS_TEST_API_SHOP")"

# --- the tree -------------------------------------------------------------------
check_ls "apis/ lists every API; the two named shop show as shop~ID" "$AF_APIS" \
	chat inventory "$SHOP" "$SHOP2"
check_ls "an API lists its stages" "$AF_APIS/$SHOP" dev prod
check_ls "a stage lists the top resources" "$P" boom missing orders private search
check_ls "a resource lists its methods and the {id} directory" "$P/orders" GET '{id}'
check_ls "{id}/ lists its methods" "$P/orders/{id}" GET POST
check_ls "a path parameter takes any name" "$P/orders/42" GET POST
check_ls "the other shop" "$AF_APIS/$SHOP2/prod" hello ping
fh_run stat -c %F "$P/orders/42/GET"
check_eq "a METHOD is a regular file" "regular empty file" "${FH_OUT%$'\n'}"
fh_run stat -c %F "$P/orders/42"
check_eq "a path part is a directory" "directory" "${FH_OUT%$'\n'}"
check_py "an unknown API is ENOENT" ENOENT stat "$AF_APIS/nosuch"
check_py "shop alone is ambiguous, so ENOENT" ENOENT stat "$AF_APIS/shop"
check_py "an unknown stage is ENOENT" ENOENT stat "$AF_APIS/$SHOP/beta"
check_py "a method the resource lacks is ENOENT" ENOENT stat "$P/search/PUT"
fh_run stat -c %F "$P/orders/PUT"
check_eq "under orders/, PUT is a value of {id}" "directory" "${FH_OUT%$'\n'}"
check_py "a path no route has is ENOENT" ENOENT stat "$P/nothere/GET"
check_py "create of a new name is refused" EPERM create "$P/search/NEW"

# --- invoking ---------------------------------------------------------------------
want="$(tl_apis_curl "https://$HOST/prod/orders")"
fh_run cat "$P/orders/GET"
check_eq "cat GET prints what curl gets" "$want" "$FH_OUT"
check_eq "cat GET exits 0" 0 "$FH_RC"

fh_run jq -r '.orders[1].item' "$P/orders/GET"
check_eq "jq reads a METHOD file" pen "${FH_OUT%$'\n'}"

# An AWS_IAM route: signed, as curl --aws-sigv4 signs it.
fh_run cat "$P/orders/42/GET"
af_json "a path parameter reaches the back end" '[.method, .path]' '["GET","/orders/42"]'
af_json "the AWS_IAM route was signed with the mount's key" \
	'.headers.authorization | startswith("AWS4-HMAC-SHA256 Credential='"$DYNFS_TEST_APIS_AK"'/")' true
mine="$(jq -c '[.method, .path, .query]' <<<"$FH_OUT")"
ref="$(tl_apis_curl_signed "https://$HOST/prod/orders/42" | jq -c '[.method, .path, .query]')"
check_eq "the same as curl's signed request" "$ref" "$mine"
fh_run cat "$P/private/GET"
check_eq "a signed MOCK route answers" '{"secret": "only for signed callers"}' "$FH_OUT"

fh_run cat "$P/search/GET?q=red&n=2"
af_json "a query string rides in the name" '[.path, .query, .queryParams]' \
	'["/search","q=red&n=2",{"q":"red","n":"2"}]'
af_json "a NONE route is not signed" '.headers.authorization' null

# Errors: the body is shown, then the read's end fails.
fh_sh 'cat "$1"; echo " rc=$?"' "$P/missing/GET"
check_eq "404: the body, then cat exits 1" '{"message": "no such thing"} rc=1' "${FH_OUT%$'\n'}"
check_contains "404 is ENOENT" "No such file or directory" "$FH_ERR"
fh_sh 'cat "$1"; echo " rc=$?"' "$P/boom/GET"
check_eq "500: the body, then cat exits 1" '{"message": "boom"} rc=1' "${FH_OUT%$'\n'}"
check_contains "500 is EIO" "Input/output error" "$FH_ERR"
fh_sh 'if cat "$1" >/dev/null 2>&1; then echo ok; else echo failed; fi' "$P/boom/GET"
check_eq "a script can test the outcome" failed "${FH_OUT%$'\n'}"
fh_sh 'head -c 3 "$1"; echo " rc=$?"' "$P/missing/GET"
check_eq "a reader that stops early hears of the 404 at close" '{"m rc=1' "${FH_OUT%$'\n'}"

# --- sessions -------------------------------------------------------------------------
fh_sh 'printf "{\"a\":1}" > "$1"; cat "$1"' "$P/orders/7/POST"
af_json "printf > POST; cat POST: the response to that body" '[.method, .path, .body]' \
	'["POST","/orders/7","{\"a\":1}"]'
fh_sh 'exec 3<>"$1"; printf "{\"b\":2}" >&3; cat <&3' "$P/orders/8/POST"
af_json "exec 3<>POST; write; read: the response to that body" '.body' '"{\"b\":2}"'
fh_sh 'printf "{\"c\":3}" > "$1"; cat "$1" >/dev/null; cat "$1"' "$P/orders/9/POST"
af_json "a kept response is read once; the next read sends again, bodiless" '.body' '""'
fh_sh 'echo "{\"t\":1}" | tee "$1" >/dev/null; cat "$1"' "$P/orders/10/POST"
af_json "tee POST; cat POST" '.body' '"{\"t\":1}\n"'
fh_sh 'printf "{\"d\":4}" > "$1"; timeout 10 cat "$1"' "$P/orders/11/POST"
af_json "a wrapper (timeout) between the shell and the reader" '.body' '"{\"d\":4}"'
fh_sh 'printf "{\"e\":5}" > "$1"; jq -c .body "$1"' "$P/orders/12/POST"
check_eq "jq reads the kept response" '"{\"e\":5}"' "${FH_OUT%$'\n'}"
fh_sh 'printf "%s\n" 5 6 | xargs -I{} cat "$1/orders/{}/GET" | jq -r .path' "$P"
check_eq "xargs cat over path parameters" $'/orders/5\n/orders/6' "${FH_OUT%$'\n'}"
fh_sh 'printf "%s\n" "{\"x\":1}" "{\"x\":2}" | xargs -d "\n" -I{} sh -c '"'"'printf %s "$1" > "$2"; cat "$2"'"'"' sh {} "$1" | jq -r .body' "$P/orders/13/POST"
check_eq "xargs running printf > POST; cat POST per line" $'{"x":1}\n{"x":2}' "${FH_OUT%$'\n'}"

# Another shell does not see this shell's response.
fh_sh 'printf "{\"mine\":1}" > "$1"; bash -c '"'"'cat "$1"'"'"' other "$1" >/dev/null; cat "$1"' "$P/orders/14/POST"
af_json "a child shell reading takes it (it is this shell's)" '.body' '""'
fh_run bash -c 'printf "{\"s\":1}" > "$1"' s1 "$P/orders/15/POST"
fh_run bash -c 'cat "$1"' s2 "$P/orders/15/POST"
af_json "another shell's later cat sends its own request" '.body' '""'

# Two shells at once, each printf > POST; cat POST, ten times.
conc() {
	local who="$1" i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		printf '{"who":"%s%d"}' "$who" "$i" >"$P/orders/1/POST"
		# shellcheck disable=SC2002 # cat is the reader under test
		cat "$P/orders/1/POST" | jq -r .body
	done
}
conc A >"$FH_WORK/A.out" 2>&1 &
pa=$!
conc B >"$FH_WORK/B.out" 2>&1 &
pb=$!
tl_wait_exit "$pa" 120 || fh_fatal "shell A did not finish"
tl_wait_exit "$pb" 120 || fh_fatal "shell B did not finish"
check_eq "shell A got its own ten responses" "$(for i in $(seq 1 10); do printf '{"who":"A%d"}\n' "$i"; done)" "$(cat "$FH_WORK/A.out")"
check_eq "shell B got its own ten responses" "$(for i in $(seq 1 10); do printf '{"who":"B%d"}\n' "$i"; done)" "$(cat "$FH_WORK/B.out")"

# --- xattrs -------------------------------------------------------------------------------
fh_sh 'cat "$1" >/dev/null; af_xa get "$1" user.dynfs.status; echo; af_xa get "$1" user.dynfs.headers' "$P/orders/GET"
check_eq "user.dynfs.status after cat GET" "HTTP/1.1 200 OK" "$(head -n 1 <<<"$FH_OUT")"
check_contains "user.dynfs.headers after cat GET" "Content-Type: application/json" "$FH_OUT"
fh_sh 'cat "$1" >/dev/null 2>&1; af_xa get "$1" user.dynfs.status' "$P/missing/GET"
check_eq "user.dynfs.status of a 404" "HTTP/1.1 404 Not Found" "$FH_OUT"
fh_sh 'printf "{}" > "$1"; af_xa get "$1" user.dynfs.status' "$P/orders/16/POST"
check_eq "user.dynfs.status after printf > POST" "HTTP/1.1 200 OK" "$FH_OUT"
fh_run python3 -c "$AF_XA_PY" get "$P/orders/GET" user.dynfs.status
check_contains "an unrelated process has no status" "No data available" "$FH_ERR"

fh_sh 'af_xa set "$1" user.dynfs.header.content-type application/json &&
	af_xa set "$1" user.dynfs.header.X-Order-Note "gift wrap" &&
	af_xa list "$1" | sort; af_xa get "$1" user.dynfs.header.content-type; echo' "$P/orders/17/POST"
check_eq "request headers as xattrs" $'user.dynfs.header.X-Order-Note\nuser.dynfs.header.content-type\napplication/json' "${FH_OUT%$'\n'}"
fh_sh 'printf "{}" > "$1"; cat "$1"' "$P/orders/17/POST"
af_json "the back end received them" '[.headers["content-type"], .headers["x-order-note"]]' \
	'["application/json","gift wrap"]'
fh_sh 'cat "$1"' "$P/orders/17/POST?x=1"
af_json "they apply with a query string too" '.headers["x-order-note"]' '"gift wrap"'
fh_sh 'af_xa rm "$1" user.dynfs.header.X-Order-Note; printf "{}" > "$1"; cat "$1"' "$P/orders/17/POST"
af_json "a removed header is not sent" '.headers["x-order-note"]' null
fh_sh 'af_xa set "$1" user.dynfs.header.bad:name x' "$P/orders/17/POST"
check_contains "a bad header name is refused" "Invalid argument" "$FH_ERR"

# --- a large response streams --------------------------------------------------------------
bytes=$((24 * 1024 * 1024 + 5))
want="$(seq -f '%015.0f' 0 $((bytes / 16 + 1)) | head -c "$bytes" | md5sum)"
fh_sh 'cat "$1" | md5sum' "$P/orders/big/GET?bytes=$bytes"
check_eq "a 24 MiB response arrives whole" "$want" "${FH_OUT%$'\n'}"
fh_sh 'head -c 100 "$1" | wc -c' "$P/orders/big/GET?bytes=$bytes"
check_eq "a reader may stop early" 100 "${FH_OUT//[!0-9]/}"

# --- the -d log ---------------------------------------------------------------------------
log_has() { grep -qF -- "$1" "$FH_LOG"; }
if fh_wait_until 5 log_has "apis: GET /apis/$SHOP/prod/missing/GET -> HTTP/1.1 404 Not Found"; then
	pass "the -d log has the status line of each call"
else
	fail "the -d log lacks 'apis: GET .../missing/GET -> HTTP/1.1 404 Not Found'"
fi
check_ok "the -d log has the response headers" grep -q "apis: response headers: .*Content-Type: application/json" "$FH_LOG"
if grep -qF -- "$DYNFS_TEST_APIS_SK" "$FH_LOG"; then
	fail "the secret key appears in the -d log"
else
	pass "the secret key never reaches the -d log"
fi
fh_unmount

# --- a wrong secret key: 403 on AWS_IAM routes; apis_header= ----------------------------------
AWS_SECRET_ACCESS_KEY=not-the-right-secret af_mount m2 'apis_header=X-Dynfs-Test:a\,b,apis_header=X-Other: 2'
P="$AF_APIS/$SHOP/prod"
fh_sh 'cat "$1"; echo " rc=$?"' "$P/private/GET"
check_contains "a wrongly signed call: the 403 body" "signature" "$FH_OUT"
check_contains "and cat exits 1" " rc=1" "$FH_OUT"
check_contains "403 is EACCES" "Permission denied" "$FH_ERR"
fh_sh 'cat "$1" >/dev/null 2>&1; af_xa get "$1" user.dynfs.status' "$P/private/GET"
check_eq "user.dynfs.status of the 403" "HTTP/1.1 403 Forbidden" "$FH_OUT"
fh_run cat "$P/search/GET"
check_eq "an unsigned route still works" 0 "$FH_RC"
af_json "apis_header= headers are sent (with an escaped comma)" \
	'[.headers["x-dynfs-test"], .headers["x-other"]]' '["a,b","2"]'
fh_unmount
fh_summary

#!/usr/bin/env bash
# apis/ for HTTP APIs (docs/apis.md): the $default stage (no stage segment
# in the URL), the $default route (any path and method no other route
# takes), ANY /things/{proxy+} (every METHOD file, any depth), GET
# /items/{id}, an AWS_IAM route, query strings, xattrs.  Expectations come
# from the back end's echo, the emulator's request log and curl.
# shellcheck disable=SC2016,SC2317 # single-quoted bash -c scripts; poll functions called indirectly
set -euo pipefail
. "${DYNFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/fs-helpers.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/apis-env.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/apis-fs.sh"

af_setup
af_mount m1 apis_ttl=2

I="$AF_APIS/inventory/\$default"
HOST="$(tl_apis_host "$DYNFS_TEST_API_INVENTORY")"
ALL=(DELETE GET HEAD OPTIONS PATCH POST PUT)

check_ls "the HTTP API's one stage is \$default" "$AF_APIS/inventory" '$default'
check_ls "the stage root: routes, and every METHOD (the \$default route)" "$I" \
	"${ALL[@]}" items secure things
check_ls "items/ shows {id}" "$I/items" "${ALL[@]}" '{id}'
check_ls "things/ shows {proxy+}" "$I/things" "${ALL[@]}" '{proxy+}'
check_ls "any path is a directory under \$default" "$I/no/such/route" "${ALL[@]}"

fh_run cat "$I/items/5/GET"
af_json "GET /items/{id}" '[.method, .path]' '["GET","/items/5"]'
log_has() { grep -qF -- "$1" "$DYNFS_TEST_APIS_LOG"; }
if fh_wait_until 5 log_has "GET $HOST /items/5 -> 200"; then
	pass "the \$default stage puts no stage segment in the URL (emulator log)"
else
	fail "the emulator log has no 'GET $HOST /items/5 -> 200'"
	tl_apis_show_log
fi
fh_run cat "$I/items/5/GET?verbose=1&x=%20y"
af_json "a query string, sent as written" '[.query, .queryParams]' '["verbose=1&x=%20y",{"verbose":"1","x":" y"}]'

fh_run cat "$I/things/a/b/c/DELETE"
af_json "ANY /things/{proxy+} takes DELETE at any depth" '[.method, .path]' '["DELETE","/things/a/b/c"]'
fh_sh 'printf "{\"n\":1}" > "$1"; cat "$1"' "$I/things/x/PUT"
af_json "PUT with a body through {proxy+}" '[.method, .path, .body]' '["PUT","/things/x","{\"n\":1}"]'

fh_run cat "$I/nothing/here/PATCH"
af_json "the \$default route takes any other path and method" '[.method, .path]' '["PATCH","/default"]'
fh_run cat "$I/GET"
af_json "GET at the root goes to \$default" '[.method, .path]' '["GET","/default"]'
fh_run cat "$I/items/5/POST"
af_json "a method GET /items/{id} lacks goes to \$default" '[.method, .path]' '["POST","/default"]'
fh_run cat "$I/items/HEAD"
check_eq "HEAD: an empty body" "" "$FH_OUT"

fh_run cat "$I/secure/GET"
af_json "the AWS_IAM route is signed" '.headers.authorization | startswith("AWS4-HMAC-SHA256")' true
ref="$(tl_apis_curl_signed "https://$HOST/secure" | jq -c '[.method, .path]')"
af_json "as curl --aws-sigv4 gets it" '[.method, .path]' "$ref"

fh_sh 'cat "$1" >/dev/null; af_xa get "$1" user.dynfs.status; echo; af_xa get "$1" user.dynfs.headers' "$I/items/7/GET"
check_eq "user.dynfs.status" "HTTP/1.1 200 OK" "$(head -n 1 <<<"$FH_OUT")"
check_contains "user.dynfs.headers (the back end's own header)" "x-backend: dynfs-test-backend" "$FH_OUT"

fh_sh 'cat "$1"; echo " rc=$?"' "$I/things/status/404/GET"
check_contains "a 404 from the back end: cat exits 1" " rc=1" "$FH_OUT"
check_contains "as ENOENT" "No such file or directory" "$FH_ERR"
fh_sh 'cat "$1" >/dev/null; echo "rc=$?"' "$I/things/status/503/GET"
check_contains "a 503: cat exits 1" "rc=1" "$FH_OUT"
check_contains "as EIO" "Input/output error" "$FH_ERR"

# Listings are cached for apis_ttl (2 s here) and then fetched again.
# The first pair of ls fetches (the steps above may have taken longer
# than apis_ttl on a loaded machine); the second must not.
ls "$I" >/dev/null; ls "$I/items" >/dev/null
n1="$(grep -c 'apigateway GET /v2/apis/.*/routes' "$FH_LOG" || true)"
ls "$I" >/dev/null; ls "$I/items" >/dev/null
n2="$(grep -c 'apigateway GET /v2/apis/.*/routes' "$FH_LOG" || true)"
check_eq "within apis_ttl the routes are not fetched again" "$n1" "$n2"
sleep 2.5
ls "$I" >/dev/null
n3="$(grep -c 'apigateway GET /v2/apis/.*/routes' "$FH_LOG" || true)"
check_eq "after apis_ttl they are" "$((n2 + 1))" "$n3"

# --- more APIs, made with the AWS CLI in moto: names that need escaping, a
# REST API with a method on / and ANY /{proxy+} ------------------------------
tl_require_aws
awsm() { aws --endpoint-url "$DYNFS_TEST_MOTO_ENDPOINT" --output text "$@"; }
awsm apigateway create-rest-api --name 'odd/name' --query id >/dev/null
awsm apigateway create-rest-api --name '.dot~x%' --query id >/dev/null
rid="$(awsm apigateway create-rest-api --name rootapi --query id)"
root="$(awsm apigateway get-resources --rest-api-id "$rid" --query 'items[0].id')"
proxy="$(awsm apigateway create-resource --rest-api-id "$rid" --parent-id "$root" --path-part '{proxy+}' --query id)"
mockm() { # RESOURCE METHOD WORD: answers {"at": "WORD"}
	awsm apigateway put-method --rest-api-id "$rid" --resource-id "$1" --http-method "$2" --authorization-type NONE >/dev/null
	awsm apigateway put-integration --rest-api-id "$rid" --resource-id "$1" --http-method "$2" --type MOCK \
		--request-templates '{"application/json":"{\"statusCode\": 200}"}' >/dev/null
	awsm apigateway put-method-response --rest-api-id "$rid" --resource-id "$1" --http-method "$2" --status-code 200 >/dev/null
	awsm apigateway put-integration-response --rest-api-id "$rid" --resource-id "$1" --http-method "$2" --status-code 200 \
		--selection-pattern '' --response-templates "{\"application/json\":\"{\\\"at\\\": \\\"$3\\\"}\"}" >/dev/null
}
mockm "$root" GET root
mockm "$proxy" ANY proxy
awsm apigateway create-deployment --rest-api-id "$rid" --stage-name v1 >/dev/null
sleep 2.5 # apis_ttl
want="$(sorted chat inventory "shop~$DYNFS_TEST_API_SHOP" "shop~$DYNFS_TEST_API_SHOP2" 'odd%2Fname' '%2Edot%7Ex%25' rootapi)"
check_eq "API names with '/', a leading '.', '~' and '%' are escaped" "$want" "$(fh_ls "$AF_APIS")"
check_ls "a REST stage with a method on / and {proxy+}" "$AF_APIS/rootapi/v1" GET '{proxy+}'
check_ls "ANY shows every METHOD" "$AF_APIS/rootapi/v1/{proxy+}" "${ALL[@]}"
fh_run cat "$AF_APIS/rootapi/v1/GET"
check_eq "GET / at the stage root" '{"at": "root"}' "$FH_OUT"
fh_run cat "$AF_APIS/rootapi/v1/a/b/c/PATCH"
check_eq "ANY /{proxy+} at depth 3" '{"at": "proxy"}' "$FH_OUT"
fh_run stat -c %F "$AF_APIS/rootapi/v1/POST"
check_eq "no POST on /, so POST there is a {proxy+} directory" directory "${FH_OUT%$'\n'}"
fh_run cat "$AF_APIS/rootapi/v1/POST/POST"
check_eq "and POST/POST is POST /POST" '{"at": "proxy"}' "$FH_OUT"
fh_unmount
fh_summary

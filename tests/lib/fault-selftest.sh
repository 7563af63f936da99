#!/usr/bin/env bash
# tests/lib/fault-selftest.sh: the self-test of tests/lib/faultproxy.py.
#
# Starts DynamoDB Local and the proxy in front of it (both on free ports of
# 127.0.0.1), then checks with the AWS SDK for JavaScript v3 (endpoint =
# the proxy, one attempt per call unless said otherwise) and curl that:
#   - with every rate 0, everything passes through (keep-alive on both
#     sides), and the stats count it;
#   - each fault kind happens and the client sees it as it would see
#     DynamoDB's: throttle, throttling, error500 (typed errors the SDK
#     recognises), reset_before (no write), reset_after (the write is
#     applied, the client sees a reset), delay, down (and back up);
#   - settings change at run time through /__fault, `only` and `next`
#     select which requests are hit, the same seed gives the same faults,
#     bad settings are refused, the stats count per kind and per target;
#   - with mixed rates and the SDK's retries, every write lands.
# Ends with "N passed, N failed"; exits 1 on any failure.
set -euo pipefail
. "${DYNFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

PASSED=0
FAILED=0
ok() {
	PASSED=$((PASSED + 1))
	printf '%s: ok: %s\n' "$TL_NAME" "$1" >&2
}
bad() {
	FAILED=$((FAILED + 1))
	printf '%s: FAIL: %s\n' "$TL_NAME" "$1" >&2
	if (($# >= 3)); then
		printf '  expected: %s\n  seen:     %s\n' "$2" "$3" >&2
	fi
}
expect_eq() { # WHAT EXPECTED SEEN
	if [[ "$2" == "$3" ]]; then ok "$1"; else bad "$1" "$2" "$3"; fi
}
summary() {
	printf '%s: %d passed, %d failed\n' "$TL_NAME" "$PASSED" "$FAILED" >&2
	printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
	((PASSED > 0 && FAILED == 0))
}

for t in node python3 curl jq java; do
	command -v "$t" >/dev/null || tl_die "$t is missing (contrib/install-deps.sh installs it)"
done
[[ -d "$DYNFS_SOURCE_ROOT/tests/node_modules/@aws-sdk/client-dynamodb" ]] ||
	npm ci --prefix "$DYNFS_SOURCE_ROOT/tests" --no-audit --no-fund >&2 ||
	tl_die "npm ci --prefix tests failed"

tl_mktemp_dir
W="$TL_TMP"
mkdir -p "$W/home"
export HOME="$W/home"
tl_aws_isolate "$W"
export AWS_ACCESS_KEY_ID=AKIADYNFSFAULTTEST00
export AWS_SECRET_ACCESS_KEY=dynfs-fault-selftest-dummy
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true NODE_NO_WARNINGS=1
unset AWS_SESSION_TOKEN || true

DDB_LOCAL="$DYNFS_SOURCE_ROOT/contrib/dynamodb-local.sh"
DDB_EP="$("$DDB_LOCAL" start "$W/ddb")" || tl_die "DynamoDB Local did not start"
tl_cleanup_push "'$DDB_LOCAL' stop '$W/ddb'"
tl_log "DynamoDB Local at $DDB_EP"

# --- the proxy ---------------------------------------------------------------
python3 "$DYNFS_SOURCE_ROOT/tests/lib/faultproxy.py" --upstream "$DDB_EP" \
	--port-file "$W/proxy.port" --seed 7 --log "$W/proxy.log" \
	</dev/null >"$W/proxy.out" 2>"$W/proxy.err" &
PROXY_PID=$!
tl_cleanup_push "tl_kill_child $PROXY_PID"
tl_wait_for 20 test -s "$W/proxy.port" || {
	cat "$W/proxy.err" >&2
	tl_die "the proxy wrote no port file within 20 s"
}
PORT="$(cat "$W/proxy.port")"
PROXY="http://127.0.0.1:$PORT"
tl_log "faultproxy at $PROXY (pid $PROXY_PID)"

# ctl [METHOD] PATH [JSON]: the control endpoint; prints the answer.
ctl() {
	if (($# == 1)); then
		curl -sS --max-time 10 "$PROXY$1"
	else
		curl -sS --max-time 10 -X POST "$PROXY$1" --data "$2"
	fi
}
setf() { # JSON: clear, then apply
	ctl /__fault "$(jq -c '{clear: true} + .' <<<"$1")" >/dev/null || tl_die "cannot set $1"
}
stat_of() { # JQ-EXPR: a figure from /__fault/stats
	ctl /__fault/stats | jq -r "$1"
}

# --- the SDK client ------------------------------------------------------------
# node "$W/sdk.cjs" CMD ARGS: one line of JSON per call made.  ENDPOINT is
# the proxy unless DIRECT=1; ATTEMPTS (default 1) is the SDK's maxAttempts.
cat >"$W/sdk.cjs" <<'EOF'
const {
	DynamoDBClient, CreateTableCommand, PutItemCommand, GetItemCommand,
	BatchWriteItemCommand, ScanCommand, ListTablesCommand,
} = require('@aws-sdk/client-dynamodb');
const { NodeHttpHandler } = require('@smithy/node-http-handler');
const http = require('node:http');

const endpoint = process.env.DIRECT === '1' ? process.env.DDB_DIRECT : process.env.DDB_PROXY;
const attempts = Number(process.env.ATTEMPTS || 1);
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
const c = new DynamoDBClient({
	endpoint, region: 'us-east-1', maxAttempts: attempts,
	credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY },
	requestHandler: new NodeHttpHandler({ httpAgent: agent, requestTimeout: 30000, connectionTimeout: 5000 }),
});

// What the client saw: ok, or the fault kind it looks like.
function classify(e) {
	if (!e) return 'ok';
	const status = e.$metadata && e.$metadata.httpStatusCode;
	if (e.name === 'ProvisionedThroughputExceededException' && status === 400) return 'throttle';
	if (e.name === 'ThrottlingException' && status === 400) return 'throttling';
	if (e.name === 'InternalServerError' && status === 500) return 'error500';
	const text = `${e.code || ''} ${e.name || ''} ${e.message || ''}`;
	if (/ECONNRESET|socket hang up|EPIPE/.test(text)) return 'reset';
	return `other:${e.name}:${e.code || ''}:${(e.message || '').slice(0, 80)}`;
}

async function call(cmd) {
	const t0 = process.hrtime.bigint();
	let err = null;
	let out = null;
	try {
		out = await c.send(cmd);
	} catch (e) {
		err = e;
	}
	const ms = Number(process.hrtime.bigint() - t0) / 1e6;
	return {
		result: classify(err), ms: Math.round(ms),
		attempts: (err ? err.$metadata : out.$metadata)?.attempts ?? null, out,
	};
}

function print(r) {
	const { out, ...rest } = r;
	process.stdout.write(JSON.stringify(rest) + '\n');
}

function item(k, i) {
	return { pk: { S: k }, n: { N: String(i) }, note: { S: `value of ${k}` } };
}

async function main() {
	const [cmd, ...a] = process.argv.slice(2);
	switch (cmd) {
	case 'create':
		print(await call(new CreateTableCommand({
			TableName: a[0], BillingMode: 'PAY_PER_REQUEST',
			AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
			KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
		})));
		break;
	case 'list':
		print(await call(new ListTablesCommand({})));
		break;
	case 'put': // TABLE KEY
		print(await call(new PutItemCommand({ TableName: a[0], Item: item(a[1], 1) })));
		break;
	case 'puts': // TABLE PREFIX N: N sequential PutItems
		for (let i = 0; i < Number(a[2]); i++)
			print(await call(new PutItemCommand({ TableName: a[0], Item: item(`${a[1]}${i}`, i) })));
		break;
	case 'batch': { // TABLE PREFIX N: BatchWriteItem in 25s, unprocessed retried
		let failed = 0;
		for (let i = 0; i < Number(a[2]); i += 25) {
			let reqs = { [a[0]]: [] };
			for (let j = i; j < Math.min(i + 25, Number(a[2])); j++)
				reqs[a[0]].push({ PutRequest: { Item: item(`${a[1]}${j}`, j) } });
			for (let tries = 0; reqs && Object.keys(reqs).length && tries < 50; tries++) {
				const r = await call(new BatchWriteItemCommand({ RequestItems: reqs }));
				if (r.result !== 'ok') { failed++; if (attempts === 1) { print(r); continue; } break; }
				reqs = r.out.UnprocessedItems;
			}
		}
		process.stdout.write(JSON.stringify({ result: failed ? 'failed' : 'ok', failed }) + '\n');
		break;
	}
	case 'get': { // TABLE KEY -> found | missing
		const r = await call(new GetItemCommand({ TableName: a[0], Key: { pk: { S: a[1] } }, ConsistentRead: true }));
		process.stdout.write(JSON.stringify({ result: r.result, found: !!(r.out && r.out.Item) }) + '\n');
		break;
	}
	case 'count': { // TABLE: scanned count
		let n = 0;
		let start;
		do {
			const r = await call(new ScanCommand({ TableName: a[0], Select: 'COUNT', ExclusiveStartKey: start }));
			if (r.result !== 'ok') { print(r); process.exit(1); }
			n += r.out.Count;
			start = r.out.LastEvaluatedKey;
		} while (start);
		process.stdout.write(JSON.stringify({ result: 'ok', count: n }) + '\n');
		break;
	}
	default:
		throw new Error(`unknown command ${cmd}`);
	}
}
main().then(() => { c.destroy(); agent.destroy(); }, (e) => { console.error(e); process.exit(2); });
EOF

sdk() { # CMD ARGS...: via the proxy
	DDB_PROXY="$PROXY" DDB_DIRECT="$DDB_EP" NODE_PATH="$DYNFS_SOURCE_ROOT/tests/node_modules" \
		timeout -k 5 120 node "$W/sdk.cjs" "$@"
}
sdk_direct() { # CMD ARGS...: straight to DynamoDB Local
	DIRECT=1 sdk "$@"
}
field() { # JQ-FILTER: on every line of stdin, joined with spaces
	jq -r "$1" | paste -sd' ' -
}

CURL_H=(-H 'content-type: application/x-amz-json-1.0'
	-H 'authorization: AWS4-HMAC-SHA256 Credential=AKIADYNFSFAULTTEST00/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0')

# =============================================================================
# 1. rates 0: everything passes through
setf '{}'
expect_eq "create a table through the proxy" ok "$(sdk create tbl1 | field .result)"
expect_eq "20 PutItems through the proxy, all ok" "$(printf 'ok %.0s' {1..20} | sed 's/ $//')" \
	"$(sdk puts tbl1 a 20 | field .result)"
expect_eq "BatchWriteItem of 100 items through the proxy" ok "$(sdk batch tbl1 b 100 | field .result)"
expect_eq "DynamoDB Local holds the 120 items" 120 "$(sdk_direct count tbl1 | field .count)"
expect_eq "Scan COUNT through the proxy agrees" 120 "$(sdk count tbl1 | field .count)"
expect_eq "with rates 0 nothing was injected" 0 "$(stat_of '[.injected[]] | add')"
expect_eq "with rates 0 every request was forwarded and passed" true \
	"$(stat_of '.requests == .forwarded and .forwarded == .passed and .requests > 0')"
expect_eq "per target: 20 PutItems counted" 20 \
	"$(stat_of '.by_target["DynamoDB_20120810.PutItem"].passed')"
expect_eq "per target: 4 BatchWriteItems counted" 4 \
	"$(stat_of '.by_target["DynamoDB_20120810.BatchWriteItem"].requests')"

# curl: two requests in one invocation share one connection (keep-alive),
# and the answer is DynamoDB Local's own.
out="$(curl -sS --max-time 10 "${CURL_H[@]}" -H 'x-amz-target: DynamoDB_20120810.ListTables' \
	-d '{}' -w ' %{http_code} %{num_connects}\n' "$PROXY/" \
	-H 'x-amz-target: DynamoDB_20120810.ListTables' -d '{}' "$PROXY/" 2>&1)" || true
expect_eq "curl: ListTables twice on one kept-alive connection" \
	'{"TableNames":["tbl1"]} 200 1
{"TableNames":["tbl1"]} 200 0' "$out"
direct="$(curl -sS --max-time 10 "${CURL_H[@]}" -H 'x-amz-target: DynamoDB_20120810.DescribeTable' \
	-d '{"TableName":"tbl1"}' "$DDB_EP/" | jq -S 'del(.Table.TableSizeBytes, .Table.ItemCount)')"
proxied="$(curl -sS --max-time 10 "${CURL_H[@]}" -H 'x-amz-target: DynamoDB_20120810.DescribeTable' \
	-d '{"TableName":"tbl1"}' "$PROXY/" | jq -S 'del(.Table.TableSizeBytes, .Table.ItemCount)')"
expect_eq "curl: DescribeTable through the proxy equals the direct answer" "$direct" "$proxied"
code="$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "${CURL_H[@]}" \
	-H 'x-amz-target: DynamoDB_20120810.GetItem' -d '{"TableName":"nope","Key":{"pk":{"S":"x"}}}' "$PROXY/")"
expect_eq "curl: DynamoDB's own 400 passes through" 400 "$code"

# =============================================================================
# 2. each fault kind
setf '{"throttle": 1}'
expect_eq "throttle: the SDK sees ProvisionedThroughputExceededException (400)" throttle \
	"$(sdk put tbl1 th1 | field .result)"
expect_eq "throttle: nothing was written" false "$(sdk_direct get tbl1 th1 | field .found)"
ctl /__fault/stats/reset >/dev/null
expect_eq "throttle: the SDK retries it (3 attempts, all throttled)" "throttle 3" \
	"$(ATTEMPTS=3 sdk put tbl1 th2 | field '"\(.result) \(.attempts)"')"
expect_eq "throttle: the stats count the 3" 3 "$(stat_of .injected.throttle)"
body="$(curl -sS --max-time 10 "${CURL_H[@]}" -H 'x-amz-target: DynamoDB_20120810.PutItem' \
	-d '{"TableName":"tbl1","Item":{"pk":{"S":"c1"}}}' -w '\n%{http_code} %{content_type}' "$PROXY/")"
expect_eq "throttle: curl sees the 400 with the JSON 1.0 error body" \
	'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException
400 application/x-amz-json-1.0' "$(head -n 1 <<<"$body" | jq -r .__type; tail -n 1 <<<"$body")"

setf '{"throttling": 1}'
expect_eq "throttling: the SDK sees ThrottlingException (400)" throttling "$(sdk put tbl1 tg1 | field .result)"

setf '{"error500": 1}'
expect_eq "error500: the SDK sees InternalServerError (500)" error500 "$(sdk put tbl1 e1 | field .result)"
expect_eq "error500: nothing was written" false "$(sdk_direct get tbl1 e1 | field .found)"
code="$(curl -sS --max-time 10 -o "$W/body" -w '%{http_code}' "${CURL_H[@]}" \
	-H 'x-amz-target: DynamoDB_20120810.ListTables' -d '{}' "$PROXY/")"
expect_eq "error500: curl sees 500 InternalServerError" "500 com.amazonaws.dynamodb.v20120810#InternalServerError" \
	"$code $(jq -r .__type "$W/body")"

ctl /__fault/stats/reset >/dev/null
setf '{"reset_before": 1}'
expect_eq "reset_before: the SDK sees a connection reset" reset "$(sdk put tbl1 rb1 | field .result)"
expect_eq "reset_before: the write never reached DynamoDB" false "$(sdk_direct get tbl1 rb1 | field .found)"
rc=0
curl -sS --max-time 10 -o /dev/null "${CURL_H[@]}" -H 'x-amz-target: DynamoDB_20120810.ListTables' \
	-d '{}' "$PROXY/" 2>"$W/curl.err" || rc=$?
expect_eq "reset_before: curl fails with 56 (connection reset)" 56 "$rc"
expect_eq "reset_before: counted, nothing forwarded" "2 0" "$(stat_of '"\(.injected.reset_before) \(.forwarded)"')"

ctl /__fault/stats/reset >/dev/null
setf '{"reset_after": 1}'
expect_eq "reset_after: the SDK sees a connection reset" reset "$(sdk put tbl1 ra1 | field .result)"
expect_eq "reset_after: yet the write was applied" true "$(sdk_direct get tbl1 ra1 | field .found)"
expect_eq "reset_after: counted as injected and forwarded" "1 1 0" \
	"$(stat_of '"\(.injected.reset_after) \(.forwarded) \(.passed)"')"
rc=0
curl -sS --max-time 10 -o /dev/null "${CURL_H[@]}" -H 'x-amz-target: DynamoDB_20120810.PutItem' \
	-d '{"TableName":"tbl1","Item":{"pk":{"S":"ra-curl"}}}' "$PROXY/" 2>"$W/curl.err" || rc=$?
expect_eq "reset_after: curl fails with 56 (connection reset)" 56 "$rc"
expect_eq "reset_after: curl's write was applied" true "$(sdk_direct get tbl1 ra-curl | field .found)"

setf '{"delay": 1, "delay_ms": 400}'
ms="$(sdk put tbl1 d1 | jq -r 'select(.result == "ok") | .ms')"
if [[ -n "$ms" ]] && ((ms >= 400)); then ok "delay: the call succeeded and took ${ms} ms (>= 400)"; else
	bad "delay: expected ok and >= 400 ms" ">= 400" "${ms:-failed}"; fi
expect_eq "delay: counted" 1 "$(stat_of .injected.delay)"
setf '{}'
ms="$(sdk put tbl1 d2 | jq -r 'select(.result == "ok") | .ms')"
if [[ -n "$ms" ]] && ((ms < 400)); then ok "no delay once cleared (${ms} ms)"; else
	bad "no delay once cleared" "< 400" "${ms:-failed}"; fi

# down, switched while a client keeps its connection: curl with two
# requests is not enough, so use the control endpoint between SDK runs.
ctl /__fault/stats/reset >/dev/null
ctl /__fault/down >/dev/null
expect_eq "down: the SDK's call is reset" reset "$(sdk put tbl1 dn1 | field .result)"
rc=0
curl -sS --max-time 10 -o /dev/null "${CURL_H[@]}" -H 'x-amz-target: DynamoDB_20120810.ListTables' \
	-d '{}' "$PROXY/" 2>/dev/null || rc=$?
expect_eq "down: curl's call is reset (56)" 56 "$rc"
expect_eq "down: the control endpoint still answers" true "$(ctl /__fault | jq .down)"
expect_eq "down: nothing was forwarded" "2 0" "$(stat_of '"\(.injected.down) \(.forwarded)"')"
ctl /__fault/up >/dev/null
expect_eq "up again: calls pass" ok "$(sdk put tbl1 up1 | field .result)"
expect_eq "down: the write made while down never happened" false "$(sdk_direct get tbl1 dn1 | field .found)"

# =============================================================================
# 3. selection, determinism, settings
setf '{"throttle": 1, "only": ["BatchWriteItem"]}'
expect_eq "only: PutItem passes while only BatchWriteItem is hit" ok "$(sdk put tbl1 o1 | field .result)"
expect_eq "only: BatchWriteItem is throttled" throttle "$(sdk batch tbl1 ob 1 | jq -rs ".[0].result")"

setf '{"next": ["error500", "pass", "throttle"]}'
expect_eq "next: the scripted faults come in order, then rates (0) apply" \
	"error500 ok throttle ok ok" "$(sdk puts tbl1 nx 5 | field .result)"

setf '{"seed": 42, "throttle": 0.3, "error500": 0.2}'
run1="$(sdk puts tbl1 s 30 | field .result)"
setf '{"seed": 42, "throttle": 0.3, "error500": 0.2}'
run2="$(sdk puts tbl1 s 30 | field .result)"
expect_eq "seed: the same seed gives the same faults" "$run1" "$run2"
if [[ "$run1" == *throttle* && "$run1" == *error500* && "$run1" == *ok* ]]; then
	ok "seed: a 30-call run with rates 0.3/0.2 mixes throttle, error500 and ok"
else
	bad "seed: the run does not mix the kinds" "throttle, error500 and ok" "$run1"
fi

code="$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X POST "$PROXY/__fault" -d '{"throttle": 2}')"
expect_eq "a rate over 1 is refused (400)" 400 "$code"
code="$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X POST "$PROXY/__fault" -d '{"throttle": 0.6, "error500": 0.6}')"
expect_eq "rates adding up past 1 are refused (400)" 400 "$code"
code="$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X POST "$PROXY/__fault" -d '{"bogus": 1}')"
expect_eq "an unknown setting is refused (400)" 400 "$code"
code="$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X POST "$PROXY/__fault" -d 'not json')"
expect_eq "a body that is not JSON is refused (400)" 400 "$code"
expect_eq "refused settings changed nothing" "0.3 0.2" "$(ctl /__fault | jq -r '"\(.throttle) \(.error500)"')"

# =============================================================================
# 4. a mixed workload with the SDK's retries: every write lands
ctl /__fault/stats/reset >/dev/null
setf '{"seed": 3, "throttle": 0.1, "throttling": 0.05, "error500": 0.05,
	"reset_before": 0.05, "reset_after": 0.05, "delay": 0.1, "delay_ms": 20}'
expect_eq "create the table for the mixed workload (direct)" ok "$(sdk_direct create tbl2 | field .result)"
res="$(ATTEMPTS=10 sdk batch tbl2 m 500 | field .result)"
expect_eq "mixed faults, SDK retries: BatchWriteItem of 500 items succeeds" ok "$res"
res="$(ATTEMPTS=10 sdk puts tbl2 p 100 | jq -r .result | sort | uniq -c | awk '{print $2 "=" $1}' | paste -sd' ' -)"
expect_eq "mixed faults, SDK retries: 100 PutItems succeed" "ok=100" "$res"
setf '{}'
expect_eq "mixed faults: DynamoDB Local holds all 600 items" 600 "$(sdk_direct count tbl2 | field .count)"
kinds="$(stat_of '[.injected | to_entries[] | select(.key != "down" and .value > 0) | .key] | sort | join(" ")')"
expect_eq "mixed faults: every kind was injected at least once" \
	"delay error500 reset_after reset_before throttle throttling" "$kinds"
expect_eq "mixed faults: per-target counts add up to the totals" true \
	"$(stat_of '([.by_target[] | .throttle // 0] | add) == .injected.throttle and
		([.by_target[] | .requests] | add) == .requests')"

# The proxy is still healthy after all that.
expect_eq "the proxy still runs" 0 "$(tl_pid_running "$PROXY_PID" && echo 0 || echo 1)"
if grep -q Traceback "$W/proxy.err"; then
	bad "the proxy printed a traceback" "" "$(head -c 600 "$W/proxy.err")"
else
	ok "the proxy printed no traceback"
fi

summary

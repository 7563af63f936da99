#!/usr/bin/env bash
# The write-back cache, basics: close() returns before DynamoDB has the
# item and the item arrives within writeback_delay; fsync(2) waits until
# it is in DynamoDB; 20 saves of one item coalesce into far fewer
# requests; 100 new items go out in BatchWriteItem requests of 25; rm and
# mv go through the queue in order; fusermount3 -u drains the queue;
# .dynfs/stats is read-only and has every documented field; the -d log has
# "dynamodb <Operation> <table>: ..." lines and never the secret key; the
# cache directory is 0700 and its journal 0600; a second mount on the same
# cache_dir fails with one line and exit 1.  Every result is checked with
# the independent checker (the node one, directly where the test must not
# wait for the queue to drain).
# shellcheck disable=SC2016,SC2119 # single-quoted bash -c scripts; fh_settle takes no args here
set -euo pipefail
. "${DYNFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/fs-helpers.sh"

fh_setup

STAT_FIELDS="requests retries throttles errors bytes_out bytes_in requests_PutItem
requests_BatchWriteItem requests_GetItem requests_Scan cache_hits cache_misses
listing_hits listing_misses cached_keys pending_writes inflight_writes writes_sent
write_batches writes_coalesced write_conflicts write_failures write_throttled
write_concurrency journal_bytes"

# now ARGS...: the checker right now, without waiting for the queue.
now() {
	node "$FH_CHECKER" "$@" || fh_fatal "the checker failed: ddbcheck $*"
}

# now_plain TABLE PK: the item as compact plain JSON, or null.
now_plain() {
	now get "$1" "{\"pk\":{\"S\":\"$2\"}}" --plain | jq -S -c .
}

# stat NAME: a figure of $FH_MNT/.dynfs/stats (empty when missing).
sv() {
	awk -v n="$1" '$1 == n { print $2 }' "$FH_MNT/.dynfs/stats" 2>/dev/null
}

now_ms() {
	date +%s%3N
}

# --- close returns first, the item follows within writeback_delay --------------
check_close_then_send() {
	local t0 t1 seen
	t0="$(now_ms)"
	fh_sh 'printf "{\"v\": \"later\"}\n" > "$1"' "$FH_T/wbt/late.json"
	t1="$(now_ms)"
	check_eq "printf > late.json returned 0" 0 "$FH_RC"
	if ((t1 - t0 < 1500)); then
		pass "close() returned quickly ($((t1 - t0)) ms) with writeback_delay=3000"
	else
		fail "close() took $((t1 - t0)) ms with writeback_delay=3000 (should not wait for DynamoDB)"
	fi
	check_eq "checker (right after close): DynamoDB does not have late yet" null "$(now_plain wbt late)"
	seen=null
	# Generous: under ASan on a loaded CI machine each checker run
	# alone can take a second.
	while (($(now_ms) - t0 < 10000)); do
		seen="$(now_plain wbt late)"
		[[ "$seen" == null ]] || break
		sleep 0.2
	done
	t1="$(now_ms)"
	check_eq "checker: late arrived within 10 s (seen after $((t1 - t0)) ms)" \
		'{"pk":"late","v":"later"}' "$seen"
}

# --- 20 saves of one item coalesce ------------------------------------------------
check_coalesce() {
	local before after i
	fh_run cat "$FH_T/wbt/co.json"
	check_eq "cat co.json (made by the checker)" 0 "$FH_RC"
	fh_settle
	before=$(($(sv requests_PutItem) + $(sv requests_BatchWriteItem)))
	fh_sh 'for i in $(seq 1 20); do printf "{\"n\": %d}\n" "$i" > "$1" || exit 1; done' \
		"$FH_T/wbt/co.json"
	check_eq "20 saves of co.json returned 0" 0 "$FH_RC"
	fh_settle
	after=$(($(sv requests_PutItem) + $(sv requests_BatchWriteItem)))
	# Up to 6: on a slow machine the 20 saves may span two or three
	# delays; without coalescing there would be 20.
	if ((after - before >= 1 && after - before <= 6)); then
		pass "20 saves coalesced into $((after - before)) write request(s)"
	else
		fail "20 saves of one item: PutItem+BatchWriteItem grew by $((after - before)) (want 1..6)"
	fi
	check_eq "checker: co holds the last save" '{"n":20,"pk":"co"}' "$(now_plain wbt co)"
	i="$(sv writes_coalesced)"
	if [[ -n "$i" ]] && ((i >= 10)); then
		pass "stats: writes_coalesced $i (>= 10)"
	else
		fail "stats: writes_coalesced should be >= 10 after 20 saves in one delay" ">= 10" "$i"
	fi
}

# --- 100 new items batch -------------------------------------------------------------
check_batch() {
	local before after i bad
	mkdir -p "$FH_WORK/src"
	for ((i = 0; i < 100; i++)); do
		printf '{"i": %d, "s": "batch %d"}\n' "$i" "$i" >"$FH_WORK/src/b$i.json"
	done
	fh_settle
	before="$(sv requests_BatchWriteItem)"
	check_ok "cp of 100 new files" bash -c 'cp "$1"/*.json "$2"/' fh "$FH_WORK/src" "$FH_T/wbt"
	fh_settle
	after="$(sv requests_BatchWriteItem)"
	if ((after - before >= 4 && after - before <= 8)); then
		pass "100 new items went out in $((after - before)) BatchWriteItem requests"
	else
		fail "100 new items: requests_BatchWriteItem grew by $((after - before)) (want about 4)" 4 "$((after - before))"
	fi
	bad="$(now scan wbt | jq -c 'select(.pk.S | test("^b[0-9]+$")) |
		select(.i.N != (.pk.S | ltrimstr("b")) or .s.S != "batch \(.i.N)" or (keys | length) != 3)' | head -n 3)"
	check_eq "checker: every batched item holds what was copied" "" "$bad"
	check_eq "checker: exactly 100 batched items" 100 \
		"$(now scan wbt | jq -r 'select(.pk.S | test("^b[0-9]+$")) | .pk.S' | wc -l)"
}

# --- rm and mv in order -------------------------------------------------------------
check_order() {
	fh_sh 'printf "{\"v\": \"a\"}\n" > "$1/a.json" && mv "$1/a.json" "$1/b.json" && rm "$1/b.json"' "$FH_T/wbt"
	check_eq "create a, mv a b, rm b: all returned 0" 0 "$FH_RC"
	fh_sh 'printf "{\"v\": 1}\n" > "$1/c.json" && rm "$1/c.json" && printf "{\"v\": 2}\n" > "$1/c.json"' "$FH_T/wbt"
	check_eq "create c, rm c, create c again: all returned 0" 0 "$FH_RC"
	fh_settle
	check_eq "checker: neither a nor b exists" "null null" "$(now_plain wbt a) $(now_plain wbt b)"
	check_eq "checker: c holds the second version" '{"pk":"c","v":2}' "$(now_plain wbt c)"
	# A rename of an existing item through the queue.
	check_ok "mv mvsrc.json mvdst.json" mv "$FH_T/wbt/mvsrc.json" "$FH_T/wbt/mvdst.json"
	fh_settle
	check_eq "checker: mvsrc gone, mvdst has its attributes" \
		'null {"pk":"mvdst","v":"moving"}' "$(now_plain wbt mvsrc) $(now_plain wbt mvdst)"
}

# --- .dynfs/stats ------------------------------------------------------------------------
check_stats_file() {
	local f missing="" seen
	fh_py write_close "$FH_MNT/.dynfs/stats" "$FH_WORK/src/b0.json"
	case "$FH_PY" in
	EACCES | EPERM | "write=OK close=EACCES" | "write=EACCES close=OK" | "write=EPERM close=OK")
		pass "writing .dynfs/stats is refused ($FH_PY)" ;;
	*) fail "writing .dynfs/stats should fail with EACCES or EPERM" "EACCES|EPERM" "$FH_PY" ;;
	esac
	fh_run stat -c '%a' "$FH_MNT/.dynfs/stats"
	check_eq ".dynfs/stats has no write permission bits" 444 "${FH_OUT%$'\n'}"
	fh_run cat "$FH_MNT/.dynfs/stats"
	for f in $STAT_FIELDS; do
		grep -Eq "^$f [0-9]+$" <<<"$FH_OUT" || missing+=" $f"
	done
	check_eq ".dynfs/stats has every documented field as 'name number'" "" "$missing"
	seen="$(grep -Ev '^[A-Za-z0-9_]+ -?[0-9]+$' <<<"$FH_OUT" || true)"
	check_eq ".dynfs/stats: every line is 'name number'" "" "$seen"
	seen="$(sv pending_writes) $(sv inflight_writes)"
	check_eq "stats: nothing pending or in flight once settled" "0 0" "$seen"
	f="$(sv writes_sent)"
	if [[ -n "$f" ]] && ((f >= 100)); then
		pass "stats: writes_sent $f (>= 100)"
	else
		fail "stats: writes_sent should count the writes sent" ">= 100" "$f"
	fi
	f="$(sv requests_BatchWriteItem)"
	if [[ -n "$f" ]] && ((f >= 4)); then
		pass "stats: requests_BatchWriteItem $f"
	else
		fail "stats: requests_BatchWriteItem" ">= 4" "$f"
	fi
}

# --- the -d log, the cache directory, a second mount ----------------------------------
check_log_and_dir() {
	local dir="$1" rc
	# A BatchWriteItem may span tables: its line may name none.
	if grep -Eq 'dynamodb BatchWriteItem( wbt)?: [0-9]+ \([0-9]+ attempts?, [0-9.]+ ms\)' "$FH_LOG"; then
		pass "-d log: a 'dynamodb BatchWriteItem: STATUS (n attempts, ms)' line"
	else
		fail "-d log: no 'dynamodb BatchWriteItem: <status> (<n> attempts, <ms> ms)' line" \
			"dynamodb BatchWriteItem: ..." "$(grep -m 5 'dynamodb ' "$FH_LOG")"
	fi
	if grep -Eq 'dynamodb PutItem wbt: [0-9]+ \([0-9]+ attempts?, [0-9.]+ ms\)' "$FH_LOG"; then
		pass "-d log: a 'dynamodb PutItem wbt: STATUS (n attempts, ms)' line naming the table"
	else
		fail "-d log: no 'dynamodb PutItem wbt: <status> (<n> attempts, <ms> ms)' line" \
			"dynamodb PutItem wbt: ..." "$(grep -m 5 'dynamodb ' "$FH_LOG")"
	fi
	if grep -qF -- "$AWS_SECRET_ACCESS_KEY" "$FH_LOG" "${FH_LOG%.log}.out"; then
		fail "-d log: the secret access key appears in the daemon's output"
	else
		pass "-d log: the secret access key never appears"
	fi
	check_eq "cache_dir mode" 700 "$(stat -c %a "$dir" 2>&1)"
	check_eq "cache_dir/journal mode" 600 "$(stat -c %a "$dir/journal" 2>&1)"

	# A second mount on the same cache_dir.
	mkdir -p "$FH_WORK/second"
	tl_cleanup_push "tl_unmount '$FH_WORK/second'"
	DYNFS_TEST_TIMEOUT=20 tl_run_dynfs "$FH_WORK/second.out" "$FH_WORK/second.err" -f \
		-o "endpoint=$FH_EP,region=us-east-1,cache_dir=$dir" "$FH_WORK/second"
	rc="$TL_RC"
	check_eq "a second mount on the same cache_dir exits 1" 1 "$rc"
	check_eq "a second mount on the same cache_dir prints one line" 1 \
		"$(tl_line_count "$FH_WORK/second.err")"
	check_contains "the line names the cache directory" "$dir" "$(cat "$FH_WORK/second.err")"
	if tl_is_mounted "$FH_WORK/second"; then
		fail "the second mount left something mounted"
		tl_unmount "$FH_WORK/second"
	else
		pass "the second mount mounted nothing"
	fi
	check_eq "the first mount still works" 0 "$(sv pending_writes)"
}

# --- fsync waits; unmount drains --------------------------------------------------------------
FSYNC_PY='
import os, sys, time
t0 = time.monotonic()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, sys.argv[2].encode())
try:
    os.fsync(fd)
    r = "OK"
except OSError as e:
    r = "errno %d" % e.errno
os.close(fd)
print(r, int((time.monotonic() - t0) * 1000))
'
check_fsync() {
	local res ms
	fh_run python3 -c "$FSYNC_PY" "$FH_T/wbt/fs.json" '{"v": "synced"}'
	res="${FH_OUT%% *}"
	ms="${FH_OUT#* }"
	ms="${ms%$'\n'}"
	check_eq "python: write + fsync returned 0 (writeback_delay=60000)" OK "$res"
	check_eq "checker (right after fsync): fs is in DynamoDB" '{"pk":"fs","v":"synced"}' "$(now_plain wbt fs)"
	if [[ "$ms" =~ ^[0-9]+$ ]] && ((ms < 10000)); then
		pass "fsync did not wait for the 60 s delay ($ms ms)"
	else
		fail "fsync took too long or failed" "< 10000 ms" "$FH_OUT"
	fi
}

check_drain() {
	local i bad
	fh_sh 'for i in $(seq 1 30); do printf "{\"d\": %d}\n" "$i" > "$1/d$i.json" || exit 1; done' "$FH_T/wbt"
	check_eq "30 writes with writeback_delay=60000 returned 0" 0 "$FH_RC"
	# A full batch (25) goes at once; the other 5 wait for the 60 s delay.
	i="$(now scan wbt | jq -r 'select(.pk.S | test("^d[0-9]+$")) | .pk.S' | wc -l)"
	if ((i < 30)); then
		pass "checker: $i of the 30 are in DynamoDB before the unmount (a full batch goes at once)"
	else
		fail "checker: all 30 were sent before the unmount (the last 5 should wait 60 s)" "< 30" "$i"
	fi
	i="$(sv pending_writes)"
	if [[ -n "$i" ]] && ((i >= 5)); then
		pass "stats: $i writes pending before the unmount"
	else
		fail "stats: pending_writes before the unmount" ">= 5" "$i"
	fi
	fh_unmount
	bad="$(now scan wbt | jq -c 'select(.pk.S | test("^d[0-9]+$")) | select(.pk.S != "d\(.d.N)")')"
	check_eq "checker: after the unmount every item holds what was written" "" "$bad"
	check_eq "checker: all 30 items are in DynamoDB after the unmount" 30 \
		"$(now scan wbt | jq -r 'select(.pk.S | test("^d[0-9]+$")) | .pk.S' | wc -l)"
	i="$(grep -c 'replayed' "$FH_LOG" || true)"
	check_eq "the drained mount left nothing to replay (no 'replayed' line)" 0 "$i"
}

ddbc create-table wbt pk:S
ddbc put-many wbt <<'EOF'
{"pk":{"S":"co"},"n":{"N":"0"}}
{"pk":{"S":"mvsrc"},"v":{"S":"moving"}}
EOF

fh_mount m1 "debug,writeback_delay=3000,cache_dir=$FH_WORK/cache1"
check_close_then_send
check_coalesce
check_batch
check_order
check_stats_file
check_log_and_dir "$FH_WORK/cache1"
fh_unmount

fh_mount m2 "writeback_delay=60000,cache_dir=$FH_WORK/cache2"
check_fsync
check_drain
# The drained journal leaves nothing behind for the next mount.
fh_mount m3 "cache_dir=$FH_WORK/cache2"
if grep -q 'replayed' "$FH_LOG"; then
	fail "a mount after a drained unmount replayed writes" "" "$(grep replayed "$FH_LOG")"
else
	pass "a mount after a drained unmount replays nothing"
fi
fh_unmount
fh_summary

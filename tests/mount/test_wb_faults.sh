#!/usr/bin/env bash
# The write-back queue under faults: dynfs talks to DynamoDB Local through
# tests/lib/faultproxy.py (seeded), which throttles, answers 500, resets
# connections before and after forwarding and delays requests, while 4
# writers in parallel make 300 new items (cp), 50 edits, 20 rm and 10 mv,
# with ls and cat in between.  Every write's close() must return 0; ls and
# cat may fail (EIO) while faults are injected -- a read whose retries all
# hit faults has nothing to fall back on -- and such failures are only
# counted.  Once the faults are cleared and the queue has drained, the
# checker (straight to DynamoDB Local) must find exactly the expected
# items: nothing lost, nothing duplicated, nothing else changed.  The
# proxy's stats must show every fault kind injected, and .dynfs/stats must
# show retries, throttles and the queue reacting (write_throttled, or
# write_concurrency going down).
# Then "down": every request is reset.  New files are still written (each
# close within 2 s), an item read before still reads, an item never read
# fails with EIO within 30 s, and once the proxy is up again every write
# made while down reaches DynamoDB within 60 s.
# shellcheck disable=SC2016,SC2317 # single-quoted bash -c scripts; functions run via bash -c
set -euo pipefail
. "${DYNFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/fs-helpers.sh"

fh_setup
DDB_EP="$FH_EP"
W="$FH_WORK"

now() {
	node "$FH_CHECKER" "$@" || fh_fatal "the checker failed: ddbcheck $*"
}

sv() {
	awk -v n="$1" '$1 == n { print $2 }' "$FH_MNT/.dynfs/stats" 2>/dev/null
}

now_ms() {
	date +%s%3N
}

TYPED='def typed: if type == "string" then {S: .}
	elif type == "number" then {N: tostring}
	elif type == "boolean" then {BOOL: .}
	elif type == "null" then {NULL: true}
	elif type == "array" then {L: map(typed)}
	else {M: map_values(typed)} end;'

table_state() {
	now scan "$1" | jq -S -c . | LC_ALL=C sort
}

# --- the items before, the texts, the state expected after ---------------------------
prepare() {
	local i
	ddbc create-table flt pk:S
	ddbc create-table fltb pk:S
	ddbc put fltb '{"pk":{"S":"u1"},"v":{"S":"never read"}}'
	{
		for ((i = 1; i <= 50; i++)); do
			printf '{"pk":{"S":"e%d"},"v":{"S":"orig %d"},"n":{"N":"%d"}}\n' "$i" "$i" "$i"
		done
		for ((i = 1; i <= 20; i++)); do
			printf '{"pk":{"S":"r%d"},"v":{"S":"remove %d"}}\n' "$i" "$i"
		done
		for ((i = 1; i <= 10; i++)); do
			printf '{"pk":{"S":"m%d"},"v":{"S":"move %d"},"ss":{"SS":["a","b"]}}\n' "$i" "$i"
		done
		for ((i = 1; i <= 10; i++)); do
			printf '{"pk":{"S":"k%d"},"v":{"S":"keep %d"}}\n' "$i" "$i"
		done
	} >"$W/pre.items"
	ddbc put-many flt <"$W/pre.items"
	table_state flt >"$W/pre.state"
	mkdir -p "$W/srcA" "$W/srcB" "$W/edits"
	for ((i = 1; i <= 300; i++)); do
		printf '{"s": "new %d", "i": %d, "t": true, "l": [%d, "x"], "m": {"z": null}}\n' "$i" "$i" "$i" \
			>"$W/src$( ((i <= 150)) && echo A || echo B)/n$i.json"
	done
	for ((i = 1; i <= 50; i++)); do
		printf '{"v": "edited %d", "n": %d, "f": 0.25}\n' "$i" "$((i * 7))" >"$W/edits/e$i.json"
	done
	{
		grep -E '"pk":\{"S":"k' "$W/pre.state"
		grep -E '"pk":\{"S":"m' "$W/pre.state" | jq -S -c '.pk.S |= sub("^m"; "mv")'
		for f in "$W"/srcA/*.json "$W"/srcB/*.json "$W"/edits/*.json; do
			jq -S -c --arg k "$(basename "$f" .json)" "$TYPED"' map_values(typed) + {pk: {S: $k}}' "$f"
		done
	} | LC_ALL=C sort >"$W/want.state"
}

# --- the writers (run with bash -c; failures of writes and of reads go to
# separate files) --------------------------------------------------------------------------
copier() { # SRC DIR FAILS
	cp "$1"/*.json "$2"/ 2>>"$3.err" || echo "cp $1" >>"$3"
}
editor() { # EDITS DIR FAILS RFAILS
	local i
	for ((i = 1; i <= 50; i++)); do
		cp "$1/e$i.json" "$2/e$i.json" 2>>"$3.err" || echo "edit e$i" >>"$3"
		if ((i % 10 == 0)); then
			ls "$2" >/dev/null 2>>"$4.err" || echo "ls after e$i" >>"$4"
			cat "$2/k$((i / 10)).json" >/dev/null 2>>"$4.err" || echo "cat k$((i / 10))" >>"$4"
		fi
	done
}
remover() { # DIR FAILS RFAILS
	local i
	for ((i = 1; i <= 20; i++)); do
		rm "$1/r$i.json" 2>>"$2.err" || echo "rm r$i" >>"$2"
	done
	ls "$1" >/dev/null 2>>"$3.err" || echo "ls after rm" >>"$3"
	for ((i = 1; i <= 10; i++)); do
		mv "$1/m$i.json" "$1/mv$i.json" 2>>"$2.err" || echo "mv m$i" >>"$2"
	done
	cat "$1/mv1.json" >/dev/null 2>>"$3.err" || echo "cat mv1" >>"$3"
}

PIDS=()
run_bg() {
	timeout -k 5 100 bash -c "$(declare -f copier editor remover); \"\$@\"" fh "$@" &
	PIDS+=($!)
}

# Smallest write_concurrency seen while the workload runs.
watch_concurrency() { # OUT
	local v min=999
	while [[ -e "$W/watch.on" ]]; do
		v="$(awk '$1 == "write_concurrency" { print $2 }' "$FH_MNT/.dynfs/stats" 2>/dev/null)"
		[[ -n "$v" ]] && ((v < min)) && min="$v"
		printf '%s\n' "$min" >"$1"
		sleep 0.1
	done
}

check_faulted_workload() {
	local fails="$W/fails" rfails="$W/rfails" pid bad=0 t0 i kinds v n
	: >"$fails"
	: >"$rfails"
	# Bases: every item to change is read before the faults start.
	fh_sh 'ls "$1" >/dev/null && for f in "$1"/e*.json "$1"/r*.json "$1"/m*.json "$1"/k*.json; do cat "$f" >/dev/null || exit 1; done' \
		"$FH_T/flt"
	check_eq "read the items to change (no faults yet)" 0 "$FH_RC"
	fh_fault /__fault/stats/reset >/dev/null
	# Each fault kind once first (deterministic), then the seeded rates.
	fh_fault /__fault '{"clear": true, "seed": 11, "throttle": 0.2, "error500": 0.05,
		"reset_before": 0.05, "reset_after": 0.05, "delay": 0.1, "delay_ms": 50,
		"next": ["throttle", "error500", "reset_before", "reset_after", "delay"]}' >/dev/null
	touch "$W/watch.on"
	watch_concurrency "$W/minconc" &
	local watcher=$!
	t0="$(now_ms)"
	run_bg copier "$W/srcA" "$FH_T/flt" "$fails"
	run_bg copier "$W/srcB" "$FH_T/flt" "$fails"
	run_bg editor "$W/edits" "$FH_T/flt" "$fails" "$rfails"
	run_bg remover "$FH_T/flt" "$fails" "$rfails"
	for pid in "${PIDS[@]}"; do
		wait "$pid" || bad=$((bad + 1))
	done
	PIDS=()
	tl_log "the faulted workload took $(($(now_ms) - t0)) ms"
	check_eq "the 4 writers finished within 100 s" 0 "$bad"
	check_eq "under faults every write's close() returned 0" "" "$(cat "$fails" "$fails.err" | head -c 800)"
	n="$(wc -l <"$rfails")"
	tl_log "ls/cat failures under faults (tolerated): $n"
	[[ -s "$rfails.err" ]] && sed 's/^/    read failure: /' "$rfails.err" | head -n 5 >&2
	check_eq "the only tolerated read failure is EIO" "" \
		"$(grep -v 'Input/output error' "$rfails.err" | head -c 400 || true)"

	# Clear the faults; the queue drains (its backoff is at most 30 s).
	fh_fault /__fault/clear >/dev/null
	if tl_wait_for 60 grep -q '^pending_writes 0$' "$FH_MNT/.dynfs/stats"; then
		pass "the queue drained within 60 s of clearing the faults ($(($(now_ms) - t0)) ms after the start)"
	else
		fail "writes still pending 60 s after the faults were cleared: $(grep pending "$FH_MNT/.dynfs/stats")"
	fi
	rm -f "$W/watch.on"
	wait "$watcher" 2>/dev/null || true

	local seen
	seen="$(table_state flt)"
	if [[ "$seen" == "$(cat "$W/want.state")" ]]; then
		pass "checker: exactly the expected 375 items: nothing lost, duplicated or changed otherwise"
	else
		fail "checker: the table is not what the writes made (diff expected seen below)"
		diff "$W/want.state" <(printf '%s\n' "$seen") | head -n 30 | sed 's/^/    /' >&2 || true
	fi
	check_eq "checker: item count" "$(wc -l <"$W/want.state")" "$(now count flt)"

	fh_fault /__fault/stats >"$W/proxy.stats"
	kinds="$(jq -r '[.injected | to_entries[] | select(.value > 0) | .key] | sort | join(" ")' "$W/proxy.stats")"
	check_eq "proxy: every fault kind was injected" "delay error500 reset_after reset_before throttle" "$kinds"
	tl_log "proxy stats: $(jq -c '.injected' "$W/proxy.stats"), requests $(jq .requests "$W/proxy.stats")"
	for v in retries throttles; do
		n="$(sv "$v")"
		if [[ -n "$n" ]] && ((n > 0)); then pass "stats: $v $n"; else fail "stats: $v" "> 0" "$n"; fi
	done
	n="$(sv write_throttled)"
	v="$(cat "$W/minconc" 2>/dev/null || echo 999)"
	tl_log "under the mixed faults: write_throttled $n, lowest write_concurrency seen $v"
	tl_log "dynfs stats: $(grep -E '^(requests|retries|throttles|errors|writes_sent|write_batches|write_failures|write_conflicts|write_throttled|write_concurrency) ' \
		"$FH_MNT/.dynfs/stats" | paste -sd' ' -)"
	check_eq "stats: no write failed or conflicted" "0 0" "$(sv write_failures) $(sv write_conflicts)"
}

# --- a write throttled past svc's retries -----------------------------------------------
# Six throttles in a row on PutItem: one save's request fails twice after
# all its attempts (3 each), goes back to the queue, and the queue halves
# its concurrency (write_throttled, write_concurrency); then it lands.
check_throttled_write() {
	local n0 minc
	n0="$(sv write_throttled)"
	fh_fault /__fault '{"clear": true, "only": ["PutItem"],
		"next": ["throttle", "throttle", "throttle", "throttle", "throttle", "throttle"]}' >/dev/null
	printf '{"v": "throttled"}\n' >"$W/k2.json"
	rm -f "$W/minconc"
	touch "$W/watch.on"
	watch_concurrency "$W/minconc" &
	local watcher=$!
	FH_OP_TIMEOUT=40 check_py "a save whose PutItem is throttled 6 times: fsync still 0" \
		"write=OK fsync=OK close=OK" write_fsync "$FH_T/flt/k2.json" "$W/k2.json"
	rm -f "$W/watch.on"
	wait "$watcher" 2>/dev/null || true
	minc="$(cat "$W/minconc" 2>/dev/null || echo 999)"
	check_eq "checker: k2 holds the throttled save" '{"pk":"k2","v":"throttled"}' \
		"$(now get flt '{"pk":{"S":"k2"}}' --plain | jq -S -c .)"
	n="$(sv write_throttled)"
	if [[ -n "$n" ]] && ((n > n0)); then
		pass "stats: write_throttled grew ($n0 -> $n; lowest write_concurrency seen $minc)"
	else
		fail "stats: write_throttled after a write throttled past its retries" "> $n0" "$n (lowest write_concurrency $minc)"
	fi
	check_eq "proxy: the 6 throttles were injected" 6 "$(fh_fault /__fault/stats | jq '.injected.throttle')"
	fh_fault /__fault/clear >/dev/null
}

# --- down ----------------------------------------------------------------------------------
check_down() {
	local i t0 t1 slow="" seen="" want=""
	# fltb/u1 was never read or listed through the mount.
	fh_run cat "$FH_T/flt/k1.json"
	check_eq "cat k1 before going down" 0 "$FH_RC"
	fh_fault /__fault/down >/dev/null
	for ((i = 1; i <= 5; i++)); do
		t0="$(now_ms)"
		fh_sh 'env printf "{\"w\": %d}\n" "$2" > "$1"' "$FH_T/flt/w$i.json" "$i"
		t1="$(now_ms)"
		if [[ "$FH_RC" == 0 ]]; then want+="${want:+ }w$i $i"; else slow+=" w$i:$(fh_how)"; fi
		((t1 - t0 < 2000)) || slow+=" w$i:$((t1 - t0))ms"
	done
	check_eq "down: 5 new files written, each close() 0 within 2 s" "" "$slow"
	fh_run cat "$FH_T/flt/k1.json"
	check_eq "down: cat of an item read before still works" '"keep 1"' "$(jq -c .v <<<"$FH_OUT" 2>&1)"
	t0="$(now_ms)"
	FH_OP_TIMEOUT=45 check_fails "down: cat of a never-read item fails with EIO" "Input/output error" \
		cat "$FH_T/fltb/u1.json"
	t1="$(now_ms)"
	if ((t1 - t0 < 30000)); then
		pass "down: the never-read item failed within $((t1 - t0)) ms (< 30 s)"
	else
		fail "down: the never-read item took $((t1 - t0)) ms to fail (want < 30 s)"
	fi
	check_eq "checker: none of the writes made while down is in DynamoDB" 0 \
		"$(now scan flt | jq -r 'select(.pk.S | test("^w[0-9]$")) | .pk.S' | wc -l)"
	fh_fault /__fault/up >/dev/null
	t0="$(now_ms)"
	# Only the writes whose close() returned 0 must land (all 5, if the
	# check above passed); none landing is a failure too.
	[[ -n "$want" ]] || fail "down: no write made while down returned 0, so none can land"
	for ((i = 0; i < 120 && ${#want} > 0; i++)); do
		seen="$(now scan flt | jq -r 'select(.pk.S | test("^w[0-9]$")) | "\(.pk.S) \(.w.N)"' | LC_ALL=C sort | paste -sd' ' -)"
		[[ "$seen" == "$want" ]] && break
		(($(now_ms) - t0 < 60000)) || break
		sleep 0.5
	done
	check_eq "checker: within 60 s of up every write made while down is in DynamoDB ($(($(now_ms) - t0)) ms)" \
		"$want" "$seen"
}

prepare
fh_start_faultproxy --seed 11
FH_EP="$FH_PROXY"
fh_mount mf "cache_dir=$W/cache"
FH_EP="$DDB_EP"
check_faulted_workload
fh_fault /__fault/stats/reset >/dev/null
check_throttled_write
check_down
fh_fault /__fault/clear >/dev/null
fh_unmount
if grep -q Traceback "$W/proxy.err"; then
	fail "the proxy printed a traceback" "" "$(head -c 600 "$W/proxy.err")"
fi
fh_summary

#!/usr/bin/env bash
# The write-back journal survives kill -9: a burst of closed writes
# (creates by cp, edits of existing items, rm, mv) that dynfs has not sent
# yet is replayed by the next mount with the same cache_dir, and the
# checker then finds every write exactly as saved (contents and types,
# deletes gone, moves done) and nothing else changed.  A replay never puts
# an older version over a newer one: an item changed by another writer
# between the crash and the remount keeps that writer's content, one
# conflict line is logged, and the local text is in cache_dir/conflicts/.
#
# Two rounds:
#   1. straight to DynamoDB Local with writeback_delay=60000 and a burst
#      of fewer than 25 writes (25 waiting writes make a full batch, which
#      is sent at once: docs/write-back.md);
#   2. through tests/lib/faultproxy.py switched to "down" before the
#      burst, so that a large burst (200 creates, 20 edits, 10 rm, 5 mv)
#      stays pending too; the remount goes straight to DynamoDB Local.
# shellcheck disable=SC2016,SC2119 # single-quoted bash -c scripts; fh_settle takes no args here
set -euo pipefail
. "${DYNFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/fs-helpers.sh"

fh_setup
DDB_EP="$FH_EP"

# now ARGS...: the checker right now, without waiting for the queue.
now() {
	node "$FH_CHECKER" "$@" || fh_fatal "the checker failed: ddbcheck $*"
}

sv() {
	awk -v n="$1" '$1 == n { print $2 }' "$FH_MNT/.dynfs/stats" 2>/dev/null
}

# Plain JSON -> DynamoDB's typed form, as dynfs's plain mode maps it.
TYPED='def typed: if type == "string" then {S: .}
	elif type == "number" then {N: tostring}
	elif type == "boolean" then {BOOL: .}
	elif type == "null" then {NULL: true}
	elif type == "array" then {L: map(typed)}
	else {M: map_values(typed)} end;'

# table_state TABLE: the checker's scan, one canonical compact line an item.
table_state() {
	now scan "$1" | jq -S -c . | LC_ALL=C sort
}

# check_state WHAT TABLE EXPECTED-FILE: the table holds exactly those items.
check_state() {
	local what="$1" table="$2" want="$3" seen
	seen="$(table_state "$table")"
	if [[ "$seen" == "$(cat "$want")" ]]; then
		pass "$what"
	else
		fail "$what (diff expected seen below)"
		diff <(cat "$want") <(printf '%s\n' "$seen") | head -n 30 | sed 's/^/    /' >&2 || true
	fi
}

# kill_daemon: kill -9 the mounted daemon and lazily unmount its dead mount.
kill_daemon() {
	local pid="$TL_DAEMON_PID"
	kill -9 "$pid" 2>/dev/null || true
	if tl_wait_exit "$pid" 10; then
		pass "kill -9 of the daemon (pid $pid)"
	else
		fail "the daemon (pid $pid) did not die from kill -9"
	fi
	fusermount3 -u -z "$FH_MNT" 2>/dev/null || true
	tl_wait_for 10 eval "! tl_is_mounted '$FH_MNT'" || fail "$FH_MNT still mounted after fusermount3 -u -z"
}

# crash_round R TABLE PROXY NNEW NEDIT NRM NMV
crash_round() {
	local r="$1" table="$2" proxy="$3" nnew="$4" nedit="$5" nrm="$6" nmv="$7"
	local cache="$FH_WORK/cache$r" w="$FH_WORK/r$r" i t0 t1 pending other path n
	mkdir -p "$w/src"
	tl_log "round $r: $nnew creates, $nedit edits, $nrm rm, $nmv mv${proxy:+ (proxy down)}"
	ddbc create-table "$table" pk:S
	{
		for ((i = 1; i <= nedit; i++)); do
			printf '{"pk":{"S":"e%d"},"v":{"S":"orig %d"},"n":{"N":"%d"},"ok":{"BOOL":false}}\n' "$i" "$i" "$i"
		done
		for ((i = 1; i <= nrm; i++)); do
			printf '{"pk":{"S":"r%d"},"v":{"S":"remove %d"}}\n' "$i" "$i"
		done
		for ((i = 1; i <= nmv; i++)); do
			printf '{"pk":{"S":"m%d"},"v":{"S":"move %d"},"l":{"L":[{"N":"%d"},{"S":"x"}]},"ss":{"SS":["a","b"]}}\n' "$i" "$i" "$i"
		done
		for ((i = 1; i <= 5; i++)); do
			printf '{"pk":{"S":"k%d"},"v":{"S":"keep %d"},"ns":{"NS":["1","2.5"]}}\n' "$i" "$i"
		done
	} >"$w/pre.items"
	ddbc put-many "$table" <"$w/pre.items"
	table_state "$table" >"$w/pre.state"

	# The burst's texts, and the state expected after the replay.
	for ((i = 1; i <= nnew; i++)); do
		printf '{"s": "new %d", "i": %d, "f": 1.5, "t": true, "z": null, "l": [%d, "y"], "m": {"a": "b", "c": [false]}}\n' \
			"$i" "$i" "$i" >"$w/src/n$i.json"
	done
	for ((i = 1; i <= nedit; i++)); do
		printf '{"v": "edited %d", "n": %d, "ok": true, "extra": {"k": [1, 2]}}\n' "$i" "$((i + 1000))" >"$w/e$i.json"
	done
	{
		# untouched: k*; moved: m* as mv*, with their attributes (types kept)
		grep -E '"pk":\{"S":"k' "$w/pre.state"
		grep -E '"pk":\{"S":"m' "$w/pre.state" | jq -S -c '.pk.S |= sub("^m"; "mv")'
		for ((i = 1; i <= nnew; i++)); do
			jq -S -c --arg k "n$i" "$TYPED"' map_values(typed) + {pk: {S: $k}}' "$w/src/n$i.json"
		done
		# e1 is changed by another writer before the remount: that stays.
		printf '{"pk":{"S":"e1"},"v":{"S":"other writer"},"n":{"N":"7"}}\n' | jq -S -c .
		for ((i = 2; i <= nedit; i++)); do
			jq -S -c --arg k "e$i" "$TYPED"' map_values(typed) + {pk: {S: $k}}' "$w/e$i.json"
		done
	} | LC_ALL=C sort >"$w/want.state"

	FH_EP="${proxy:-$DDB_EP}"
	fh_mount "m$r" "writeback_delay=60000,cache_dir=$cache"
	FH_EP="$DDB_EP"
	# Read what will be edited, removed and moved (the base of each write).
	fh_sh 'ls "$1" >/dev/null && for f in "$1"/e*.json "$1"/r*.json "$1"/m*.json; do cat "$f" >/dev/null || exit 1; done' \
		"$FH_T/$table"
	check_eq "round $r: listing and reading the items to change" 0 "$FH_RC"
	if [[ -n "$proxy" ]]; then
		fh_fault /__fault/down >/dev/null
		pass "round $r: the proxy is down: nothing reaches DynamoDB from now on"
	fi

	t0="$(date +%s%3N)"
	check_sh_ok "round $r: cp of $nnew new files" 'cp "$1"/*.json "$2"/' "$w/src" "$FH_T/$table"
	check_sh_ok "round $r: $nedit edits" 'for i in $(seq 1 "$3"); do cp "$1/e$i.json" "$2/e$i.json" || exit 1; done' \
		"$w" "$FH_T/$table" "$nedit"
	check_sh_ok "round $r: $nrm rm" 'for i in $(seq 1 "$2"); do rm "$1/r$i.json" || exit 1; done' \
		"$FH_T/$table" "$nrm"
	check_sh_ok "round $r: $nmv mv" 'for i in $(seq 1 "$2"); do mv "$1/m$i.json" "$1/mv$i.json" || exit 1; done' \
		"$FH_T/$table" "$nmv"
	t1="$(date +%s%3N)"
	tl_log "round $r: the burst took $((t1 - t0)) ms"
	pending="$(sv pending_writes)"
	if [[ -n "$pending" ]] && ((pending > 0)); then
		pass "round $r: $pending writes pending after the burst"
	else
		fail "round $r: pending_writes after the burst" "> 0" "$pending"
	fi
	check_state "round $r: checker: DynamoDB has none of the burst yet" "$table" "$w/pre.state"

	# Another writer changes e1 while its edit is pending.
	now put "$table" '{"pk":{"S":"e1"},"v":{"S":"other writer"},"n":{"N":"7"}}'
	kill_daemon
	{
		grep -v '"pk":{"S":"e1"}' "$w/pre.state"
		printf '{"n":{"N":"7"},"pk":{"S":"e1"},"v":{"S":"other writer"}}\n'
	} | LC_ALL=C sort >"$w/crashed.state"
	check_state "round $r: checker: still none of the burst after the crash" "$table" "$w/crashed.state"
	if [[ -s "$cache/journal" ]]; then
		pass "round $r: the journal holds the burst ($(stat -c %s "$cache/journal") bytes)"
	else
		fail "round $r: the journal is empty after the crash"
	fi

	# The remount replays before serving.
	fh_mount "m$r-again" "cache_dir=$cache"
	n="$(grep -Eo "replayed [0-9]+ writes left in $cache/journal by an earlier mount" "$FH_LOG" | awk '{print $2}')"
	if [[ -n "$n" ]] && ((n > 0)); then
		pass "round $r: the remount logged 'replayed $n writes left in $cache/journal by an earlier mount'"
	else
		fail "round $r: no 'replayed N writes left in $cache/journal' line" "replayed N writes ..." \
			"$(grep -v '^ ' "$FH_LOG" | head -n 5)"
	fi
	fh_settle
	check_state "round $r: checker: every closed write landed as saved, nothing else changed" "$table" "$w/want.state"

	# The conflict on e1.
	other="$(grep -c "conflict: changed elsewhere since read: table $table, key .*e1.*: your version is kept in $cache/conflicts/" "$FH_LOG" || true)"
	check_eq "round $r: one conflict line for e1 in the log" 1 "$other"
	path="$(grep -o "conflict: changed elsewhere since read: table $table, key .*e1.*: your version is kept in .*" "$FH_LOG" |
		head -n 1 | sed 's/.*your version is kept in //')"
	if [[ -n "$path" && -f "$path" ]]; then
		pass "round $r: the conflict file $(basename "$path") exists"
		check_eq "round $r: the conflict file holds the local edit of e1" \
			"$(jq -S -c '. + {pk: "e1"}' "$w/e1.json")" "$(jq -S -c '. + {pk: "e1"}' "$path" 2>&1)"
		if [[ "$(basename "$path")" =~ ^$table\.[0-9]+\.[0-9]+\.json$ ]]; then
			pass "round $r: the conflict file is named $table.SEQ.TIME.json"
		else
			fail "round $r: conflict file name" "$table.SEQ.TIME.json" "$(basename "$path")"
		fi
	else
		fail "round $r: the conflict file named in the log does not exist" "a file in $cache/conflicts" "$path"
	fi
	check_eq "round $r: cache_dir/conflicts holds exactly one file" 1 "$(find "$cache/conflicts" -type f 2>/dev/null | wc -l)"
	check_eq "round $r: stats: write_conflicts" 1 "$(sv write_conflicts)"
	# Reads through the mount agree with DynamoDB.
	fh_run jq -c .v "$FH_T/$table/e1.json"
	case "$FH_ERR" in
	*"Stale file handle"*) fh_run jq -c .v "$FH_T/$table/e1.json" ;; # the one ESTALE
	esac
	check_eq "round $r: cat e1 through the mount shows the other writer's item" '"other writer"' "${FH_OUT%$'\n'}"
	fh_unmount
}

crash_round 1 crash1 "" 9 6 3 2

fh_start_faultproxy
crash_round 2 crash2 "$FH_PROXY" 200 20 10 5

check_state "checker: round 2 left round 1's table alone" crash1 "$FH_WORK/r1/want.state"
fh_summary

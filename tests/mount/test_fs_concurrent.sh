#!/usr/bin/env bash
# Concurrent writers to different items (issue 3, Tests): 8 background
# shell loops each write 20 distinct items into one table while 2 loops
# list it, and 4 more loops write 10 items each into two shared partition
# directories of a sort-key table.  Every write must succeed, and the
# checker must find exactly the 160 (and 80 + 2) items, each with the
# contents its writer gave it.
# shellcheck disable=SC2016,SC2317 # single-quoted bash -c scripts; functions run via bash -c
set -euo pipefail
. "${DYNFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/fs-helpers.sh"

fh_setup

WRITERS=8
PER_WRITER=20

make_tables() {
	ddbc create-table conc pk:S
	ddbc create-table concp pk:S sk:N
	ddbc put-many concp <<'EOF'
{"pk":{"S":"p0"},"sk":{"N":"0"},"seed":{"BOOL":true}}
{"pk":{"S":"p1"},"sk":{"N":"0"},"seed":{"BOOL":true}}
EOF
}

# One writer: items w<W>-<I>.json, written by /usr/bin/printf (which, unlike
# the builtin, reports a failed close).  Failures go to a file.
writer() { # DIR W COUNT FAILFILE
	local dir="$1" w="$2" n="$3" failfile="$4" i
	for ((i = 1; i <= n; i++)); do
		env printf '{"writer": %d, "seq": %d, "text": "item %d-%d"}\n' "$w" "$i" "$w" "$i" \
			2>>"$failfile.err" >"$dir/w$w-$i.json" || echo "w$w-$i.json" >>"$failfile"
	done
}

# A writer into a partition directory of the sort-key table.
part_writer() { # DIR W COUNT FAILFILE
	local dir="$1" w="$2" n="$3" failfile="$4" i
	for ((i = 1; i <= n; i++)); do
		env printf '{"writer": %d, "seq": %d}\n' "$w" "$i" \
			2>>"$failfile.err" >"$dir/p$((w % 2))/$((w * 100 + i)).json" ||
			echo "p$((w % 2))/$((w * 100 + i)).json" >>"$failfile"
	done
}

lister() { # DIR ROUNDS FAILFILE
	local i
	for ((i = 0; i < $2; i++)); do
		ls "$1" >/dev/null 2>>"$3.err" || echo "ls round $i" >>"$3"
	done
}

# run_bg NAME FUNC ARGS...: FUNC in the background, bounded; its pid is
# added to PIDS.
PIDS=()
run_bg() {
	local name="$1"
	shift
	timeout -k 5 120 bash -c "$(declare -f writer part_writer lister); \"\$@\"" "$name" "$@" &
	PIDS+=($!)
}

wait_all() {
	local pid rc bad=0
	for pid in "${PIDS[@]}"; do
		rc=0
		wait "$pid" || rc=$?
		((rc == 0)) || bad=$((bad + 1))
	done
	PIDS=()
	return "$bad"
}

check_parallel_items() {
	local fails="$FH_WORK/fails" w seen bad
	: >"$fails"
	for ((w = 1; w <= WRITERS; w++)); do
		run_bg "writer$w" writer "$FH_T/conc" "$w" "$PER_WRITER" "$fails"
	done
	run_bg lister1 lister "$FH_T/conc" 30 "$fails"
	run_bg lister2 lister "$FH_T/conc" 30 "$fails"
	if wait_all; then
		pass "the $WRITERS writers and 2 listers finished within 120 s"
	else
		fail "some writer or lister was killed by its 120 s bound"
	fi
	check_eq "every concurrent write and listing succeeded" "" \
		"$(cat "$fails" "$fails.err" 2>/dev/null | head -c 800)"

	check_eq "checker: exactly $((WRITERS * PER_WRITER)) items" "$((WRITERS * PER_WRITER))" "$(ddbc count conc)"
	ddbc scan conc >"$FH_WORK/conc.scan"
	bad="$(jq -c 'select(.pk.S != "w\(.writer.N)-\(.seq.N)" or .text.S != "item \(.writer.N)-\(.seq.N)"
		or (keys | length) != 4)' "$FH_WORK/conc.scan" | head -n 5)"
	check_eq "checker: every item holds what its writer wrote" "" "$bad"
	seen="$(jq -r '.pk.S' "$FH_WORK/conc.scan" | LC_ALL=C sort)"
	check_eq "checker: the keys are exactly w1-1 .. w8-20" \
		"$(for ((w = 1; w <= WRITERS; w++)); do seq -f "w$w-%g" 1 "$PER_WRITER"; done | LC_ALL=C sort)" "$seen"
	fh_sh 'ls "$1" | wc -l' "$FH_T/conc"
	check_eq "ls through the mount shows all $((WRITERS * PER_WRITER)) items" \
		"$((WRITERS * PER_WRITER))" "${FH_OUT%$'\n'}"
}

check_parallel_partitions() {
	local fails="$FH_WORK/pfails" w bad
	: >"$fails"
	for ((w = 1; w <= 4; w++)); do
		run_bg "pwriter$w" part_writer "$FH_T/concp" "$w" 10 "$fails"
	done
	if wait_all; then
		pass "the 4 partition writers finished within 120 s"
	else
		fail "some partition writer was killed by its 120 s bound"
	fi
	check_eq "every concurrent write into the shared partitions succeeded" "" \
		"$(cat "$fails" "$fails.err" 2>/dev/null | head -c 800)"
	check_eq "checker: 40 new items + 2 seeds" 42 "$(ddbc count concp)"
	bad="$(ddbc scan concp | jq -c 'select(.seed == null and
		(.pk.S != "p\((.writer.N | tonumber) % 2)" or .sk.N != "\((.writer.N | tonumber) * 100 + (.seq.N | tonumber))"))' |
		head -n 5)"
	check_eq "checker: every partition item holds what its writer wrote" "" "$bad"
	fh_sh 'ls "$1/p0" | wc -l; ls "$1/p1" | wc -l' "$FH_T/concp"
	check_eq "ls of the two partitions: 21 items each" $'21\n21\n' "$FH_OUT"
}

make_tables
fh_mount mnt
check_parallel_items
check_parallel_partitions
fh_unmount
fh_summary

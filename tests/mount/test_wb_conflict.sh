#!/usr/bin/env bash
# Write-back conflicts: a save is conditional on the item being as the
# mount last read it, so a change made elsewhere is never silently
# overwritten.  An item read through the mount (cat) and then changed by
# the checker (another writer):
#   - a save with fsync gets ESTALE from fsync(2);
#   - a plain `printf > file` closes with 0, and the next cat of the file
#     fails once with "Stale file handle";
# either way the item stays as the checker wrote it, and the local text is
# kept in cache_dir/conflicts/ and named by one log line.  Two mounts (own
# cache_dirs) saving one item at once: exactly one wins, the other gets
# ESTALE and keeps its text in its conflicts/, nothing is lost silently.
# With -o version_attr=ver each save increments ver (1, 2, ...), and a
# change elsewhere that bumped ver makes the next save conflict.  With
# -o strict_create a new file goes as a PutItem conditional on absence (no
# BatchGetItem check, no BatchWriteItem): 30 new files land, one PutItem
# each, and a file created over an item made elsewhere after the mount saw
# it absent gets ESTALE, its text kept.  Mounts use cache_ttl=60 so that
# "last read" stays the cat's image.
# shellcheck disable=SC2016,SC2119 # single-quoted bash -c scripts; fh_settle takes no args here
set -euo pipefail
. "${DYNFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/fs-helpers.sh"

fh_setup

now() {
	node "$FH_CHECKER" "$@" || fh_fatal "the checker failed: ddbcheck $*"
}

# now_plain TABLE PK: the item as compact plain JSON, or null.
now_plain() {
	now get "$1" "{\"pk\":{\"S\":\"$2\"}}" --plain | jq -S -c .
}

# sv NAME [MOUNT]: a figure of .dynfs/stats; 0 when it is not listed.
sv() {
	awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }' "${2:-$FH_MNT}/.dynfs/stats" 2>/dev/null
}

# The conflict line naming TABLE and PK in LOG; prints the kept file's path.
conflict_path() { # LOG TABLE PK
	grep -o "conflict: changed elsewhere since read: table $2, key [^ ]*\"$3\"[^ ]*: your version is kept in .*" "$1" |
		tail -n 1 | sed 's/.*your version is kept in //' || true
}

# check_kept WHAT LOG CACHE TABLE PK TEXT [JQ]: one conflict line for PK
# names a file in CACHE/conflicts/ that holds TEXT (as JSON, key added, JQ
# applied to both).
check_kept() {
	local what="$1" log="$2" cache="$3" table="$4" pk="$5" text="$6" f="${7:-.}" path n
	n="$(grep -c "conflict: changed elsewhere since read: table $table, key [^ ]*\"$pk\"[^ ]*:" "$log" || true)"
	check_eq "$what: one conflict line in the log" 1 "$n"
	path="$(conflict_path "$log" "$table" "$pk")"
	if [[ -n "$path" && "$path" == "$cache/conflicts/$table."*.json && -f "$path" ]]; then
		pass "$what: the log names $path"
		check_eq "$what: the kept file holds the local text" \
			"$(jq -S -c --arg k "$pk" ". + {pk: \$k} | $f" <<<"$text")" \
			"$(jq -S -c --arg k "$pk" ". + {pk: \$k} | $f" "$path" 2>&1)"
	else
		fail "$what: no file in $cache/conflicts/ named by a conflict line" \
			"$cache/conflicts/$table.SEQ.TIME.json" "${path:-$(grep -m 3 conflict "$log")}"
	fi
}

# --- one mount against the checker ------------------------------------------------
check_fsync_conflict() {
	local cache="$FH_WORK/cacheA"
	fh_run cat "$FH_T/cft/x1.json"
	check_eq "cat x1 through the mount" 0 "$FH_RC"
	now put cft '{"pk":{"S":"x1"},"v":{"S":"theirs"}}'
	printf '{"v": "mine"}\n' >"$FH_WORK/mine.json"
	fh_py write_fsync "$FH_T/cft/x1.json" "$FH_WORK/mine.json"
	check_eq "save after a change elsewhere: fsync fails with ESTALE" "write=OK fsync=ESTALE close=OK" "$FH_PY"
	check_eq "checker: x1 stays as the other writer made it" '{"pk":"x1","v":"theirs"}' "$(now_plain cft x1)"
	check_kept "fsync conflict" "$FH_LOG" "$cache" cft x1 '{"v": "mine"}'
	fh_py stat "$FH_T/cft/x1.json"
	check_eq "the ESTALE went to fsync: a stat afterwards is fine" OK "$FH_PY"
}

check_close_conflict() {
	local cache="$FH_WORK/cacheA" n0
	n0="$(sv write_conflicts)"
	fh_run cat "$FH_T/cft/x2.json"
	check_eq "cat x2 through the mount" 0 "$FH_RC"
	now put cft '{"pk":{"S":"x2"},"v":{"S":"theirs 2"}}'
	fh_sh 'printf "{\"v\": \"mine 2\"}\n" > "$1"' "$FH_T/cft/x2.json"
	check_eq "printf > x2.json after a change elsewhere: close returns 0" 0 "$FH_RC"
	fh_settle
	check_eq "stats: write_conflicts grew by 1" "$((n0 + 1))" "$(sv write_conflicts)"
	check_fails "the next cat of x2.json fails with ESTALE" "Stale file handle" cat "$FH_T/cft/x2.json"
	fh_run cat "$FH_T/cft/x2.json"
	check_eq "ESTALE is reported once: the cat after it works" 0 "$FH_RC"
	check_eq "... and shows the other writer's item" '"theirs 2"' "$(jq -c .v <<<"$FH_OUT" 2>&1)"
	check_eq "checker: x2 stays as the other writer made it" '{"pk":"x2","v":"theirs 2"}' "$(now_plain cft x2)"
	check_kept "close conflict" "$FH_LOG" "$cache" cft x2 '{"v": "mine 2"}'
}

# --- two mounts -------------------------------------------------------------------------
check_two_mounts() {
	local m1 m2 p1 p2 l1 l2 o1 o2 winner loser wlog llog wcache lcache item
	fh_mount b1 "cache_ttl=60,cache_dir=$FH_WORK/cacheB1"
	m1="$FH_MNT" p1="$TL_DAEMON_PID" l1="$FH_LOG"
	fh_mount b2 "cache_ttl=60,cache_dir=$FH_WORK/cacheB2"
	m2="$FH_MNT" p2="$TL_DAEMON_PID" l2="$FH_LOG"
	check_sh_ok "both mounts read y" 'cat "$1" "$2" >/dev/null' "$m1/tables/cft/y.json" "$m2/tables/cft/y.json"
	printf '{"v": "from b1"}\n' >"$FH_WORK/b1.json"
	printf '{"v": "from b2"}\n' >"$FH_WORK/b2.json"
	# Both saves at once (each: open, write, fsync, close).
	timeout -k 3 40 python3 -c "$FH_PY_SRC" write_fsync "$m1/tables/cft/y.json" "$FH_WORK/b1.json" \
		>"$FH_WORK/o1" 2>&1 &
	local j1=$!
	timeout -k 3 40 python3 -c "$FH_PY_SRC" write_fsync "$m2/tables/cft/y.json" "$FH_WORK/b2.json" \
		>"$FH_WORK/o2" 2>&1 &
	local j2=$!
	wait "$j1" || true
	wait "$j2" || true
	o1="$(cat "$FH_WORK/o1")" o2="$(cat "$FH_WORK/o2")"
	item="$(now_plain cft y)"
	if [[ "$o1" == "write=OK fsync=OK close=OK" && "$o2" == "write=OK fsync=ESTALE close=OK" ]]; then
		winner=b1 loser=b2 wlog="$l1" llog="$l2" lcache="$FH_WORK/cacheB2" wcache="$FH_WORK/cacheB1"
	elif [[ "$o2" == "write=OK fsync=OK close=OK" && "$o1" == "write=OK fsync=ESTALE close=OK" ]]; then
		winner=b2 loser=b1 wlog="$l2" llog="$l1" lcache="$FH_WORK/cacheB1" wcache="$FH_WORK/cacheB2"
	fi
	if [[ -n "${winner:-}" ]]; then
		pass "two mounts save y at once: $winner wins, $loser gets ESTALE from fsync"
		check_eq "checker: y holds the winner's ($winner) text" "{\"pk\":\"y\",\"v\":\"from $winner\"}" "$item"
		check_kept "the loser ($loser)" "$llog" "$lcache" cft y "{\"v\": \"from $loser\"}"
		check_eq "the winner ($winner) logged no conflict and kept nothing" "0 0" \
			"$(grep -c 'conflict:' "$wlog" || true) $(find "$wcache/conflicts" -type f 2>/dev/null | wc -l)"
	else
		fail "two mounts save y at once: exactly one fsync should succeed, the other fail with ESTALE" \
			"write=OK fsync=OK close=OK / write=OK fsync=ESTALE close=OK" "b1: $o1 / b2: $o2 (DynamoDB: $item)"
	fi
	FH_MNT="$m2" TL_DAEMON_PID="$p2" FH_LOG="$l2"
	fh_unmount
	FH_MNT="$m1" TL_DAEMON_PID="$p1" FH_LOG="$l1"
	fh_unmount
}

# --- version_attr -----------------------------------------------------------------------
check_version_attr() {
	local cache="$FH_WORK/cacheC"
	fh_mount vc "cache_ttl=60,version_attr=ver,cache_dir=$cache"
	fh_run cat "$FH_T/cft/z.json"
	check_eq "version_attr: cat z" 0 "$FH_RC"
	printf '{"v": "b"}\n' >"$FH_WORK/zb.json"
	check_py "version_attr: first save (fsync) succeeds" "write=OK fsync=OK close=OK" \
		write_fsync "$FH_T/cft/z.json" "$FH_WORK/zb.json"
	check_eq "checker: the first save set ver 1" '{"pk":"z","v":"b","ver":1}' "$(now_plain cft z)"
	printf '{"v": "c"}\n' >"$FH_WORK/zc.json"
	check_py "version_attr: second save (fsync) succeeds" "write=OK fsync=OK close=OK" \
		write_fsync "$FH_T/cft/z.json" "$FH_WORK/zc.json"
	check_eq "checker: the second save set ver 2" '{"pk":"z","v":"c","ver":2}' "$(now_plain cft z)"
	fh_run jq -c .ver "$FH_T/cft/z.json"
	check_eq "version_attr: the mount shows ver 2" 2 "${FH_OUT%$'\n'}"
	# Another writer bumps ver only.
	now put cft '{"pk":{"S":"z"},"v":{"S":"c"},"ver":{"N":"3"}}'
	printf '{"v": "d", "ver": 2}\n' >"$FH_WORK/zd.json"
	check_py "version_attr: a save after ver was bumped elsewhere: fsync ESTALE" "write=OK fsync=ESTALE close=OK" \
		write_fsync "$FH_T/cft/z.json" "$FH_WORK/zd.json"
	check_eq "checker: z stays as the other writer made it" '{"pk":"z","v":"c","ver":3}' "$(now_plain cft z)"
	check_kept "version_attr conflict" "$FH_LOG" "$cache" cft z '{"v": "d"}' 'del(.ver)'
	fh_unmount
}

# --- strict_create -----------------------------------------------------------------------
check_strict_create() {
	local cache="$FH_WORK/cacheD" i want="" got
	fh_mount sc "cache_ttl=60,strict_create,cache_dir=$cache"
	check_fails "strict_create: s0 is absent for the mount" "No such file" stat "$FH_T/cft/s0.json"
	now put cft '{"pk":{"S":"s0"},"v":{"S":"theirs"}}'
	printf '{"v": "mine"}\n' >"$FH_WORK/s0.json"
	check_py "strict_create: a create over an item made elsewhere meanwhile: fsync ESTALE" \
		"write=OK fsync=ESTALE close=OK" write_fsync "$FH_T/cft/s0.json" "$FH_WORK/s0.json"
	check_eq "checker: s0 stays as the other writer made it" '{"pk":"s0","v":"theirs"}' "$(now_plain cft s0)"
	check_kept "strict_create conflict" "$FH_LOG" "$cache" cft s0 '{"v": "mine"}'
	mkdir -p "$FH_WORK/snew"
	for ((i = 1; i <= 30; i++)); do
		printf '{"v": %d}\n' "$i" >"$FH_WORK/snew/s$i.json"
		want+="s$i $i"$'\n'
	done
	check_sh_ok "strict_create: cp of 30 new files" 'cp "$1"/*.json "$2"/' "$FH_WORK/snew" "$FH_T/cft"
	fh_settle
	check_eq "strict_create: one PutItem per create (31), no BatchWriteItem, no BatchGetItem" "31 0 0" \
		"$(sv requests_PutItem) $(sv requests_BatchWriteItem) $(sv requests_BatchGetItem)"
	got="$(now scan cft | jq -r 'select(.pk.S | test("^s[0-9]+$")) | "\(.pk.S) \(.v.N)"' | grep -v '^s0 ' | LC_ALL=C sort -V)"
	check_eq "checker: the 30 new items landed as written" "$(LC_ALL=C sort -V <<<"${want%$'\n'}")" "$got"
	fh_unmount
}

ddbc create-table cft pk:S
ddbc put-many cft <<'EOF'
{"pk":{"S":"x1"},"v":{"S":"orig"}}
{"pk":{"S":"x2"},"v":{"S":"orig 2"}}
{"pk":{"S":"y"},"v":{"S":"orig y"}}
{"pk":{"S":"z"},"v":{"S":"a"}}
EOF

fh_mount ma "cache_ttl=60,cache_dir=$FH_WORK/cacheA"
check_fsync_conflict
check_close_conflict
fh_unmount
check_two_mounts
check_version_attr
check_strict_create
fh_summary

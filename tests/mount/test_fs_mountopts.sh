#!/usr/bin/env bash
# Mount options, freshness and unmount (issue 3): with -o ro every write
# (create, overwrite, rm, mv, mkdir, touch, sed -i, scratch files) fails
# with EROFS and DynamoDB is untouched, while reads work; changes made by
# another client (the checker) appear within cache_ttl seconds, both at
# the default (at most 5) and with -o cache_ttl=1: a changed item, a new
# item, a deleted item, a new partition; and fusermount3 -u right after a
# burst of writes flushes every one of them before the daemon exits.
# shellcheck disable=SC2016,SC2317 # single-quoted bash -c scripts; poll functions called indirectly
set -euo pipefail
. "${DYNFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/fs-helpers.sh"

fh_setup

# Slack on top of cache_ttl for the polls below (the poll interval, the
# checker's own start-up, a slow machine).
SLACK=2

make_tables() {
	ddbc create-table fresh pk:S
	ddbc create-table freshs pk:S sk:N
	ddbc create-table flush pk:S
	ddbc put-many fresh <<'EOF'
{"pk":{"S":"r"},"v":{"N":"1"}}
{"pk":{"S":"f"},"v":{"N":"1"}}
{"pk":{"S":"gone"},"v":{"N":"1"}}
EOF
	ddbc put freshs '{"pk":{"S":"p"},"sk":{"N":"1"},"v":{"N":"1"}}'
}

now_ms() {
	date +%s%3N
}

# --- -o ro -------------------------------------------------------------------------------
check_read_only() {
	local before
	before="$(ddbc scan fresh)"
	fh_run jq -c .v "$FH_T/fresh/r.json"
	check_eq "-o ro: reading an item works" $'1\n' "$FH_OUT"
	printf '{"v": 9}\n' >"$FH_WORK/v9.json"
	check_sh_fails "-o ro: creating an item is EROFS" "Read-only file system" \
		'printf "{}\n" > "$1"' "$FH_T/fresh/new.json"
	check_fails "-o ro: cp onto an item is EROFS" "Read-only file system" \
		cp "$FH_WORK/v9.json" "$FH_T/fresh/r.json"
	check_fails "-o ro: rm is EROFS" "Read-only file system" rm "$FH_T/fresh/r.json"
	check_fails "-o ro: mv is EROFS" "Read-only file system" mv "$FH_T/fresh/r.json" "$FH_T/fresh/r2.json"
	check_fails "-o ro: mkdir of a partition is EROFS" "Read-only file system" mkdir "$FH_T/freshs/q"
	check_fails "-o ro: rmdir is EROFS" "Read-only file system" rmdir "$FH_T/freshs/p"
	check_fails "-o ro: touch is EROFS" "Read-only file system" touch "$FH_T/fresh/r.json"
	check_fails "-o ro: sed -i is refused" "Read-only file system" sed -i 's/1/2/' "$FH_T/fresh/r.json"
	check_sh_fails "-o ro: a scratch file is EROFS too" "Read-only file system" \
		'echo x > "$1"' "$FH_T/fresh/notes.txt"
	check_eq "checker: -o ro left DynamoDB untouched" "$before" "$(ddbc scan fresh)"
}

# --- freshness ----------------------------------------------------------------------------
# check_fresh WHAT TTL CMD...: CMD (a poll condition) becomes true within
# TTL + SLACK seconds; reports how long it took.
check_fresh() {
	local what="$1" ttl="$2" t0 t1
	shift 2
	t0="$(now_ms)"
	if fh_wait_until "$((ttl + SLACK))" "$@"; then
		t1="$(now_ms)"
		pass "$what (after $((t1 - t0)) ms; cache_ttl $ttl s)"
	else
		fail "$what: not seen within cache_ttl $ttl s + ${SLACK} s"
	fi
}

item_v_is() { # PATH V
	local got
	got="$(timeout -k 2 10 jq -c .v "$1" 2>/dev/null)" || return 1
	[[ "$got" == "$2" ]]
}

listed() { # DIR NAME
	timeout -k 2 10 ls -A "$1" 2>/dev/null | grep -qxF -- "$2"
}

not_listed() { # DIR NAME
	local out
	out="$(timeout -k 2 10 ls -A "$1" 2>/dev/null)" || return 1
	! grep -qxF -- "$2" <<<"$out"
}

missing() { # PATH
	! timeout -k 2 10 cat "$1" >/dev/null 2>&1 && [[ ! -e "$1" ]]
}

# st_size agrees with what cat reads (after the item grew elsewhere).
size_consistent() { # PATH
	local s c
	s="$(timeout -k 2 10 stat -c %s "$1" 2>/dev/null)" || return 1
	c="$(timeout -k 2 10 cat "$1" 2>/dev/null | wc -c)" || return 1
	[[ "$s" == "$c" ]]
}

check_freshness() { # TTL OLD NEW
	local ttl="$1" old="$2" v="$3"
	# Prime dynfs's and the kernel's caches (and make sure the change
	# below is a change: the item reads the old value first).
	fh_run jq -c .v "$FH_T/fresh/f.json"
	check_eq "before the change, f.json reads v=$old" "$old"$'\n' "$FH_OUT"
	fh_run ls -A "$FH_T/fresh"
	fh_run ls -A "$FH_T/freshs"
	ddbc put fresh "{\"pk\":{\"S\":\"f\"},\"v\":{\"N\":\"$v\"},\"more\":{\"S\":\"a longer item than before\"}}"
	check_fresh "an item changed by another client reads new (v=$v)" "$ttl" \
		item_v_is "$FH_T/fresh/f.json" "$v"
	check_fresh "st_size follows the changed item" "$ttl" size_consistent "$FH_T/fresh/f.json"
	ddbc put fresh "{\"pk\":{\"S\":\"new$v\"},\"v\":{\"N\":\"$v\"}}"
	check_fresh "an item created by another client is listed" "$ttl" listed "$FH_T/fresh" "new$v.json"
	check_fresh "and can be read" "$ttl" item_v_is "$FH_T/fresh/new$v.json" "$v"
	ddbc put freshs "{\"pk\":{\"S\":\"np$v\"},\"sk\":{\"N\":\"1\"}}"
	check_fresh "a partition created by another client is listed" "$ttl" listed "$FH_T/freshs" "np$v"
}

check_deletion_seen() { # TTL
	local ttl="$1"
	fh_run jq -c .v "$FH_T/fresh/gone.json"
	check_eq "before the deletion, gone.json reads v=1" $'1\n' "$FH_OUT"
	ddbc delete fresh '{"pk":{"S":"gone"}}'
	check_fresh "an item deleted by another client is ENOENT" "$ttl" missing "$FH_T/fresh/gone.json"
	check_fresh "and no longer listed" "$ttl" not_listed "$FH_T/fresh" gone.json
}

# --- unmount flushes ---------------------------------------------------------------------
check_unmount_flushes() {
	local i fails=0
	for ((i = 1; i <= 20; i++)); do
		printf '{"n": %d, "text": "flush %d"}\n' "$i" "$i" >"$FH_WORK/flush$i.json"
		timeout -k 2 20 cp "$FH_WORK/flush$i.json" "$FH_T/flush/f$i.json" 2>>"$FH_WORK/flush.err" ||
			fails=$((fails + 1))
	done
	check_eq "20 writes right before the unmount succeeded" "0" "$fails$(head -c 300 "$FH_WORK/flush.err")"
	# Unmount at once: nothing waits for a background flush.
	fh_unmount
	check_eq "checker: every write made before fusermount3 -u is in DynamoDB" 20 "$(ddbc count flush)"
	check_eq "checker: with its contents" "" \
		"$(ddbc scan flush | jq -c 'select(.pk.S != "f\(.n.N)" or .text.S != "flush \(.n.N)")' | head -n 3)"
}

make_tables

fh_mount ro ro
check_read_only
check_freshness 5 1 2
fh_unmount

fh_mount ttl1 cache_ttl=1
check_freshness 1 2 3
check_deletion_seen 1
check_unmount_flushes
fh_summary

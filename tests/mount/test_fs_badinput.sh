#!/usr/bin/env bash
# Bad input loses nothing (issue 3, "Bad input and errors"): invalid JSON,
# a body that is not an object, a key attribute that contradicts the name
# (or has the wrong type), and an item over 400 KB (EFBIG, "File too
# large").  For each, the writer's command fails (tee, cp and cat report a
# failed close; python sees close() and fsync() fail), the daemon's log
# names the file, and the checker shows the item exactly as it was.  After
# all that, a good write to the same file still works.
# shellcheck disable=SC2016 # single-quoted scripts for bash -c are deliberate
set -euo pipefail
. "${DYNFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/fs-helpers.sh"

fh_setup

KEEP='{"pk":{"S":"keep"},"v":{"N":"1"},"tags":{"SS":["a","b"]},"b":{"B":"AAECA/7/"}}'
KEEP_KEY='{"pk":{"S":"keep"}}'

make_tables() {
	ddbc create-table bad pk:S
	ddbc create-table badsk pk:S sk:N
	ddbc put bad "$KEEP"
	ddbc put badsk '{"pk":{"S":"p"},"sk":{"N":"1"},"v":{"S":"one"}}'
}

# check_match WHAT GLOB SEEN: SEEN matches the shell pattern GLOB.
check_match() {
	# shellcheck disable=SC2053 # the pattern is the point
	if [[ "$3" == $2 ]]; then
		pass "$1 ($3)"
	else
		fail "$1" "$2" "$3"
	fi
}

# The checker's item, compact and sorted.
snapshot() {
	ddb_get "$1" "$2" | jq -S -c .
}

# check_unchanged WHAT: the checker still sees the original item "keep".
check_unchanged() {
	check_eq "checker: item 'keep' unchanged after $1" "$(jq -S -c . <<<"$KEEP")" "$(snapshot bad "$KEEP_KEY")"
}

# check_logged WHAT BEFORE: the daemon's log gained a line naming keep.json.
check_logged() {
	local what="$1" before="$2" now
	now="$(grep -c 'keep\.json' "$FH_LOG" || true)"
	if ((now > before)); then
		pass "the log names the file after $what"
	else
		fail "the log does not name keep.json after $what" "a new line with keep.json" \
			"$(tail -n 5 "$FH_LOG")"
	fi
}

log_mark() {
	grep -c 'keep\.json' "$FH_LOG" || true
}

# bad_write WHAT ERRTEXT BODYFILE TOOL: write BODYFILE to bad/keep.json
# with TOOL (tee, cp or cat) and expect it to fail.
bad_write() {
	local what="$1" text="$2" body="$3" tool="$4" mark
	mark="$(log_mark)"
	case "$tool" in
	tee) check_sh_fails "$what: tee fails" "$text" 'tee "$1" < "$2" > /dev/null' "$FH_T/bad/keep.json" "$body" ;;
	cp) check_fails "$what: cp fails" "$text" cp "$body" "$FH_T/bad/keep.json" ;;
	cat) check_sh_fails "$what: cat > file fails" "$text" 'cat "$2" > "$1"' "$FH_T/bad/keep.json" "$body" ;;
	esac
	check_unchanged "$what ($tool)"
	check_logged "$what ($tool)" "$mark"
}

body() { # NAME TEXT: a local file holding TEXT
	printf '%s' "$2" >"$FH_WORK/$1"
	printf '%s' "$FH_WORK/$1"
}

# First a write that must work: the item's own text written back.  It
# makes every "the command fails" check below mean something.
check_baseline() {
	check_ok "baseline: writing the item's own text back with cp works" \
		cp "$(body own.json "$(ddbc plain "$KEEP")")" "$FH_T/bad/keep.json"
	check_unchanged "writing its own text back"
}

check_invalid_json() {
	local f
	f="$(body invalid.json '{"v": 2, "tags": ["a",')"
	bad_write "invalid JSON" "" "$f" tee
	bad_write "invalid JSON" "" "$f" cp
	bad_write "invalid JSON" "" "$f" cat
	f="$(body trailing.json '{"v": 2} {"v": 3}')"
	bad_write "two JSON values" "" "$f" cp
	# The system calls themselves: fsync() and close() report the error
	# (which errno is not part of the contract; that it fails is).
	f="$(body invalid2.json '{not json}')"
	fh_py write_fsync "$FH_T/bad/keep.json" "$f"
	check_match "invalid JSON: fsync() returns an error" "write=* fsync=E* close=*" "$FH_PY"
	check_unchanged "fsync of invalid JSON"
	fh_py write_close "$FH_T/bad/keep.json" "$f"
	check_match "invalid JSON: close() returns an error" "write=* close=E*" "$FH_PY"
	check_unchanged "close of invalid JSON"
}

check_not_object() {
	local text
	for text in '[1, 2, 3]' '"a string"' '42' 'null' 'true'; do
		bad_write "a body that is not an object ($text)" "" "$(body notobj.json "$text")" cp
	done
}

check_key_mismatch() {
	bad_write "a key attribute contradicting the name" "" \
		"$(body mismatch.json '{"pk": "other", "v": 3}')" cp
	check_eq "checker: no item was made under the body's key" null "$(snapshot bad '{"pk":{"S":"other"}}')"
	bad_write "a key attribute of the wrong type" "" "$(body wrongtype.json '{"pk": 5, "v": 3}')" cp
	# A sort-key table: both key attributes are checked.
	check_fails "a sort key contradicting the name: cp fails" "" \
		cp "$(body sk.json '{"pk": "p", "sk": 2, "v": "two"}')" "$FH_T/badsk/p/1.json"
	check_eq "checker: the sort-key item is unchanged" \
		'{"pk":{"S":"p"},"sk":{"N":"1"},"v":{"S":"one"}}' "$(snapshot badsk '{"pk":{"S":"p"},"sk":{"N":"1"}}')"
	check_eq "checker: no item under the body's sort key" null \
		"$(snapshot badsk '{"pk":{"S":"p"},"sk":{"N":"2"}}')"
}

check_too_large() {
	local f
	# 450 KB of string: over DynamoDB's 400 KB item limit.
	f="$FH_WORK/big.json"
	{ printf '{"v": 2, "pad": "'; head -c 460800 /dev/zero | tr '\0' x; printf '"}\n'; } >"$f"
	bad_write "an item over 400 KB" "File too large" "$f" cp
	bad_write "an item over 400 KB" "File too large" "$f" tee
	fh_py write_close "$FH_T/bad/keep.json" "$f"
	check_match "an item over 400 KB: write() or close() is EFBIG" "*EFBIG*" "$FH_PY"
	check_unchanged "an item over 400 KB (python)"
	check_fails "a new item over 400 KB: cp fails with EFBIG" "File too large" cp "$f" "$FH_T/bad/huge.json"
	check_eq "checker: the new over-size item does not exist" null "$(snapshot bad '{"pk":{"S":"huge"}}')"
}

check_good_write_after() {
	check_ok "a good write to the same file still works" \
		cp "$(body good.json '{"v": 5, "tags": ["a", "b", "c"], "b": "AAECA/7/"}')" "$FH_T/bad/keep.json"
	check_eq "checker: the good write landed, types kept" \
		'{"b":{"B":"AAECA/7/"},"pk":{"S":"keep"},"tags":{"SS":["a","b","c"]},"v":{"N":"5"}}' \
		"$(ddb_get bad "$KEEP_KEY" | jq -S -c '.tags.SS |= sort')"
}

make_tables
fh_mount mnt
check_baseline
check_invalid_json
check_not_object
check_key_mismatch
check_too_large
check_good_write_after
fh_unmount
fh_summary

#!/usr/bin/env bash
# Creating, deleting and moving (issue 3): cp makes a new item from a file
# (key from the name, natural types) and cp --backup leaves its backup as a
# scratch file; mv renames an item in one rename(2) (old key gone, new key
# present with the item's attributes and types, an existing target
# replaced) within a directory, across partitions and across tables; rm
# deletes; mkdir makes an empty partition, rmdir removes an empty one and
# refuses a full one; O_CREAT|O_EXCL on an existing item is EEXIST; scratch
# files (no .json, dot-names, file~, #file#) never reach DynamoDB, a
# scratch file renamed onto <key>.json saves the item, and scratch files
# vanish at unmount.  The checker verifies every step.
# shellcheck disable=SC2016 # single-quoted scripts for bash -c are deliberate
set -euo pipefail
. "${DYNFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/fs-helpers.sh"

fh_setup

CANON='walk(if type == "object" then
	(if has("SS") then .SS |= sort elif has("NS") then .NS |= sort
	 elif has("BS") then .BS |= sort else . end) else . end)'

make_tables() {
	ddbc create-table items pk:S
	ddbc create-table parts pk:S sk:S
	ddbc create-table other pk:S
	ddbc create-table fresh pk:S
	ddbc put-many items <<'EOF'
{"pk":{"S":"a"},"v":{"S":"a"},"tags":{"SS":["x","y"]}}
{"pk":{"S":"m1"},"v":{"S":"moved"},"ns":{"NS":["1","2"]},"b":{"B":"AAECA/7/"}}
{"pk":{"S":"r1"},"v":{"S":"replacer"}}
{"pk":{"S":"r2"},"v":{"S":"replaced"}}
{"pk":{"S":"d"},"v":{"S":"delete me"}}
{"pk":{"S":"x"},"v":{"S":"cross"},"tags":{"SS":["t"]}}
{"pk":{"S":"keep"},"v":{"S":"keep"}}
EOF
	ddbc put-many parts <<'EOF'
{"pk":{"S":"p1"},"sk":{"S":"s1"},"v":{"S":"p1s1"},"tags":{"SS":["q","r"]}}
{"pk":{"S":"p1"},"sk":{"S":"s2"},"v":{"S":"p1s2"}}
{"pk":{"S":"p2"},"sk":{"S":"s1"},"v":{"S":"p2s1"}}
EOF
}

# bulk: a table of BULK_N items for check_xattr_ls, made by the checker.
BULK_N=200
make_bulk_table() {
	local i
	ddbc create-table bulk pk:S
	for ((i = 1; i <= BULK_N; i++)); do
		printf '{"pk":{"S":"k%03d"},"v":{"N":"%d"}}\n' "$i" "$i"
	done >"$FH_WORK/bulk.items"
	ddbc put-many bulk <"$FH_WORK/bulk.items"
	[[ "$(ddbc count bulk)" == "$BULK_N" ]] || fh_fatal "the checker did not make $BULK_N items in bulk"
}

# item TABLE KEYJSON: the checker's item, compact, sorted, sets in order.
item() {
	ddb_get "$1" "$2" | jq -S -c "$CANON"
}

# want ITEMJSON: the same canonical form of a typed item written here.
want() {
	jq -S -c "$CANON" <<<"$1"
}

local_file() { # NAME BODY: a file outside the mount
	printf '%s\n' "$2" >"$FH_WORK/$1"
	printf '%s' "$FH_WORK/$1"
}

check_excl() {
	# First thing after the mount: the kernel has never looked the name up.
	check_py "O_CREAT|O_EXCL on an existing item is EEXIST" EEXIST open_excl "$FH_T/items/keep.json"
	check_sh_fails "bash noclobber refuses to overwrite an existing item" \
		"cannot overwrite existing file" 'set -C; echo "{}" > "$1"' "$FH_T/items/keep.json"
	check_eq "checker: the existing item is untouched" \
		"$(want '{"pk":{"S":"keep"},"v":{"S":"keep"}}')" "$(item items '{"pk":{"S":"keep"}}')"
}

check_cp() {
	check_ok "cp a file to items/new.json" cp "$(local_file n.json '{"v":"copied","l":["u","v"]}')" \
		"$FH_T/items/new.json"
	check_eq "checker: cp made the item, key from the name, natural types" \
		"$(want '{"pk":{"S":"new"},"v":{"S":"copied"},"l":{"L":[{"S":"u"},{"S":"v"}]}}')" \
		"$(item items '{"pk":{"S":"new"}}')"
	check_ok "cp a file whose body holds the matching key" \
		cp "$(local_file n2.json '{"pk":"new2","v":2}')" "$FH_T/items/new2.json"
	check_eq "checker: the item with the key in its body" \
		"$(want '{"pk":{"S":"new2"},"v":{"N":"2"}}')" "$(item items '{"pk":{"S":"new2"}}')"
	check_ok "cp a file into a partition" cp "$(local_file s3.json '{"v":"p2s3"}')" \
		"$FH_T/parts/p2/s3.json"
	check_eq "checker: the item in the partition" \
		"$(want '{"pk":{"S":"p2"},"sk":{"S":"s3"},"v":{"S":"p2s3"}}')" \
		"$(item parts '{"pk":{"S":"p2"},"sk":{"S":"s3"}}')"
	check_ok "cp --backup=simple onto an existing item" cp --backup=simple \
		"$(local_file a.json '{"v":"a2","tags":["x","z"]}')" "$FH_T/items/a.json"
	check_eq "checker: the item was replaced, its SS kept" \
		"$(want '{"pk":{"S":"a"},"v":{"S":"a2"},"tags":{"SS":["x","z"]}}')" "$(item items '{"pk":{"S":"a"}}')"
	fh_run cat "$FH_T/items/a.json~"
	check_eq "the backup a.json~ is a scratch file holding the old text" \
		"$(ddbc plain '{"pk":{"S":"a"},"v":{"S":"a"},"tags":{"SS":["x","y"]}}')"$'\n' "$FH_OUT"
}

check_mv() {
	check_ok "mv items/m1.json items/m2.json" mv "$FH_T/items/m1.json" "$FH_T/items/m2.json"
	check_eq "checker: after mv the old key is gone" null "$(item items '{"pk":{"S":"m1"}}')"
	check_eq "checker: after mv the new key holds the item, types kept" \
		"$(want '{"pk":{"S":"m2"},"v":{"S":"moved"},"ns":{"NS":["1","2"]},"b":{"B":"AAECA/7/"}}')" \
		"$(item items '{"pk":{"S":"m2"}}')"
	fh_run ls -A "$FH_T/items"
	if grep -qx m2.json <<<"$FH_OUT" && ! grep -qx m1.json <<<"$FH_OUT"; then
		pass "ls after mv shows m2.json and not m1.json"
	else
		fail "ls after mv" "m2.json, no m1.json" "$FH_OUT"
	fi

	check_ok "mv onto an existing item replaces it" mv "$FH_T/items/r1.json" "$FH_T/items/r2.json"
	check_eq "checker: the replaced target holds the moved item" \
		"$(want '{"pk":{"S":"r2"},"v":{"S":"replacer"}}')" "$(item items '{"pk":{"S":"r2"}}')"
	check_eq "checker: the source of the replacing mv is gone" null "$(item items '{"pk":{"S":"r1"}}')"

	# rename(2) itself, so mv's copy-and-delete fallback cannot hide an
	# EXDEV: the move must be one operation.
	check_py "rename(2) across partitions" OK rename "$FH_T/parts/p1/s1.json" "$FH_T/parts/p2/s9.json"
	check_eq "checker: the item moved across partitions, key from the new name, SS kept" \
		"$(want '{"pk":{"S":"p2"},"sk":{"S":"s9"},"v":{"S":"p1s1"},"tags":{"SS":["q","r"]}}')" \
		"$(item parts '{"pk":{"S":"p2"},"sk":{"S":"s9"}}')"
	check_eq "checker: the old partition's item is gone" null "$(item parts '{"pk":{"S":"p1"},"sk":{"S":"s1"}}')"

	check_ok "mkdir parts/p3" mkdir "$FH_T/parts/p3"
	check_ok "mv parts/p1/s2.json parts/p3/s2.json" mv "$FH_T/parts/p1/s2.json" "$FH_T/parts/p3/s2.json"
	check_eq "checker: mv into a new partition" \
		"$(want '{"pk":{"S":"p3"},"sk":{"S":"s2"},"v":{"S":"p1s2"}}')" \
		"$(item parts '{"pk":{"S":"p3"},"sk":{"S":"s2"}}')"
	check_eq "checker: its old key is gone" null "$(item parts '{"pk":{"S":"p1"},"sk":{"S":"s2"}}')"

	check_py "rename(2) across tables with the same key schema" OK \
		rename "$FH_T/items/x.json" "$FH_T/other/x.json"
	check_eq "checker: the item is in the other table" \
		"$(want '{"pk":{"S":"x"},"v":{"S":"cross"},"tags":{"SS":["t"]}}')" "$(item other '{"pk":{"S":"x"}}')"
	check_eq "checker: and gone from the first" null "$(item items '{"pk":{"S":"x"}}')"

	check_py "rename(2) of a missing item is ENOENT" ENOENT \
		rename "$FH_T/items/nope.json" "$FH_T/items/nope2.json"
}

check_rm() {
	check_ok "rm items/d.json" rm "$FH_T/items/d.json"
	check_eq "checker: rm deleted the item" null "$(item items '{"pk":{"S":"d"}}')"
	check_fails "rm of a missing item is ENOENT" "No such file" rm "$FH_T/items/d.json"
	fh_run ls -A "$FH_T/items"
	if grep -qx d.json <<<"$FH_OUT"; then
		fail "ls after rm still shows d.json" "no d.json" "$FH_OUT"
	else
		pass "ls after rm does not show d.json"
	fi
}

check_partitions() {
	local before
	before="$(ddbc count parts)"
	check_ok "mkdir parts/newp" mkdir "$FH_T/parts/newp"
	fh_run test -d "$FH_T/parts/newp"
	check_eq "the new partition is a directory" 0 "$FH_RC"
	check_ls "the new partition is empty" "$FH_T/parts/newp"
	fh_run ls "$FH_T/parts"
	check_contains "ls parts lists the new partition" $'newp\n' "$FH_OUT"
	check_ok "rmdir of the empty partition" rmdir "$FH_T/parts/newp"
	fh_run ls "$FH_T/parts"
	if grep -qx newp <<<"$FH_OUT"; then
		fail "ls after rmdir still shows newp" "no newp" "$FH_OUT"
	else
		pass "ls after rmdir does not show newp"
	fi
	check_eq "checker: mkdir and rmdir made no item" "$before" "$(ddbc count parts)"

	check_ok "mkdir parts/newp2" mkdir "$FH_T/parts/newp2"
	check_ok "cp a file into the new partition" cp "$(local_file k.json '{"v":"k"}')" \
		"$FH_T/parts/newp2/k.json"
	check_eq "checker: the item in the new partition" \
		"$(want '{"pk":{"S":"newp2"},"sk":{"S":"k"},"v":{"S":"k"}}')" \
		"$(item parts '{"pk":{"S":"newp2"},"sk":{"S":"k"}}')"
	check_fails "rmdir of a partition with items is ENOTEMPTY" "Directory not empty" rmdir "$FH_T/parts/p2"
	check_eq "checker: the refused rmdir deleted nothing" \
		'{"pk":{"S":"p2"},"sk":{"S":"s1"},"v":{"S":"p2s1"}}' "$(item parts '{"pk":{"S":"p2"},"sk":{"S":"s1"}}')"
}

check_scratch() {
	local before name
	before="$(ddbc count items)"
	for name in notes.txt .hidden.json 'keep.json~' '#keep.json#' 4913 .keep.json.swp; do
		check_sh_ok "write the scratch file '$name'" 'printf "scratch %s\n" "$2" > "$1/$2"' \
			"$FH_T/items" "$name"
		fh_run cat "$FH_T/items/$name"
		check_eq "read the scratch file '$name' back" "scratch $name"$'\n' "$FH_OUT"
	done
	check_ok "rm a scratch file" rm "$FH_T/items/4913"
	check_eq "checker: scratch files never reach DynamoDB" "$before" "$(ddbc count items)"
	check_sh_ok "write a scratch file and rename it onto a new <key>.json" \
		'printf "{\"v\":\"from scratch\"}\n" > "$1/fromscratch.tmp" && mv "$1/fromscratch.tmp" "$1/fromscratch.json"' \
		"$FH_T/items"
	check_eq "checker: the rename of a scratch file onto <key>.json saved the item" \
		"$(want '{"pk":{"S":"fromscratch"},"v":{"S":"from scratch"}}')" "$(item items '{"pk":{"S":"fromscratch"}}')"
}

# A file being created is listed while still open (before its first save)
# and exactly once after close.
check_created_listed() {
	local out
	out="$(timeout 20 python3 - "$FH_T/fresh" <<'PY' 2>&1
import os, sys
d = sys.argv[1]
fd = os.open(os.path.join(d, "new.json"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
os.write(fd, b'{"v": "fresh"}')
print("open:", os.listdir(d).count("new.json"))
os.close(fd)
print("closed:", os.listdir(d).count("new.json"))
PY
)" || true
	check_eq "a new file is listed once while open and once after close" \
		$'open: 1\nclosed: 1' "$out"
	check_eq "checker: closing the new file made the item" \
		"$(want '{"pk":{"S":"new"},"v":{"S":"fresh"}}')" "$(item fresh '{"pk":{"S":"new"}}')"
}

# GNU ls -l asks lgetxattr(security.selinux) and getxattr(system.posix_acl_access)
# of every file, but remembers "not supported" per st_dev: with EOPNOTSUPP it
# asks once per mount, with ENODATA twice per file.  A fresh ls -l of a table
# of BULK_N items under strace must make a handful of calls, all EOPNOTSUPP.
# strace that cannot run (no strace, ptrace forbidden) fails the check.
check_xattr_ls() {
	local trace="$FH_WORK/ls-l.strace" calls n bad
	if ! strace -o /dev/null true 2>"$FH_WORK/strace.err"; then
		fail "strace cannot run here, so ls -l's getxattr calls cannot be counted: $(head -c 400 "$FH_WORK/strace.err")"
		return 0
	fi
	fh_run strace -f -e trace=getxattr,lgetxattr,fgetxattr -o "$trace" ls -l "$FH_T/bulk"
	if [[ "$FH_RC" != 0 ]]; then
		fail "strace ls -l tables/bulk: expected success, got $(fh_how)"
		return 0
	fi
	check_eq "strace ls -l tables/bulk lists all $BULK_N items" "$BULK_N" "$(grep -c '\.json$' <<<"$FH_OUT")"
	calls="$(grep -E '^[0-9]+ +[lf]?getxattr\(' "$trace" || true)"
	n="$(grep -c . <<<"$calls" || true)"
	tl_log "ls -l of $BULK_N items made $n getxattr-family calls"
	if ((n >= 1 && n <= 4)); then
		pass "ls -l of $BULK_N items makes $n getxattr calls (at most 4, not 2 per file)"
	else
		fail "getxattr-family calls of ls -l over $BULK_N items (strace log $trace)" "1 to 4" \
			"$n:"$'\n'"$(head -n 10 <<<"$calls")"
	fi
	bad="$(grep -v -- '= -1 EOPNOTSUPP ' <<<"$calls" || true)"
	check_eq "every getxattr of ls -l answered EOPNOTSUPP" "" "$bad"
}

# security.* and system.* xattrs of an item are EOPNOTSUPP (errno 95), not
# ENODATA; user.* ones on tables/ stay ENODATA.
XATTR_PY='
import errno, os, sys
for name in sys.argv[2:]:
    try:
        os.getxattr(sys.argv[1], name)
        print(name, "OK")
    except OSError as e:
        print(name, "EOPNOTSUPP" if e.errno == errno.EOPNOTSUPP
              else errno.errorcode.get(e.errno, str(e.errno)))
'
check_xattr_errnos() {
	fh_run python3 -c "$XATTR_PY" "$FH_T/bulk/k001.json" \
		security.selinux system.posix_acl_access user.dynfs.none
	check_eq "getxattr of security.selinux and system.posix_acl_access on an item" \
		$'security.selinux EOPNOTSUPP\nsystem.posix_acl_access EOPNOTSUPP\nuser.dynfs.none ENODATA\n' \
		"$FH_OUT${FH_ERR:+ stderr: $FH_ERR}"
}

check_final_state() {
	check_eq "checker: items holds exactly the expected keys" \
		'["a","fromscratch","keep","m2","new","new2","r2"]' \
		"$(ddbc scan items | jq -s -c 'map(.pk.S) | sort')"
	check_eq "checker: parts holds exactly the expected keys" \
		'[["newp2","k"],["p2","s1"],["p2","s3"],["p2","s9"],["p3","s2"]]' \
		"$(ddbc scan parts | jq -s -c 'map([.pk.S, .sk.S]) | sort')"
	check_eq "checker: other holds the moved item" '["x"]' "$(ddbc scan other | jq -s -c 'map(.pk.S)')"
}

make_tables
make_bulk_table
fh_mount mnt
check_excl
check_xattr_ls
check_xattr_errnos
check_cp
check_mv
check_rm
check_partitions
check_scratch
check_created_listed
fh_unmount
check_final_state

# Scratch files live in the cache only: gone after a remount.
fh_mount again
check_ls "after a remount only the items are left (scratch files vanished)" "$FH_T/items" \
	a.json fromscratch.json keep.json m2.json new.json new2.json r2.json
fh_unmount
fh_summary

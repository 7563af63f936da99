#!/usr/bin/env bash
# The layout of the mount (issue 3, "Tables and items", "Reading an item"):
# tables/ lists every table (ListTables, paginated); a partition-only table
# lists <key>.json; a sort-key table lists one directory per partition
# value, each listing <sort>.json (Scan and Query pagination included);
# cat gives the plain rendering, stat's size is the length of what cat
# reads, ls -l, find, grep -r and jq work, mtime is stable, missing names
# are ENOENT.  Every expectation comes from the independent checker
# (tests/lib/ddbcheck.mjs, AWS SDK v3), never from dynfs itself.
# shellcheck disable=SC2016 # single-quoted scripts for bash -c are deliberate
set -euo pipefail
. "${DYNFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/fs-helpers.sh"

fh_setup

# --- the tables, made and filled by the checker -----------------------------------
make_tables() {
	ddbc create-table solo pk:S
	ddbc create-table dual pk:S sk:N
	ddbc create-table empty_t pk:S
	ddbc create-table bigscan pk:S
	ddbc create-table bigquery pk:S sk:N
	# More than one ListTables page (100 names a page).
	ddbc create-tables pg 101 pk:S

	ddbc put-many solo <<'EOF'
{"pk":{"S":"k1"},"name":{"S":"first"},"n":{"N":"1"},"text":{"S":"a haystack needle here"}}
{"pk":{"S":"k2"},"name":{"S":"second"},"tags":{"SS":["b","a"]},"m":{"M":{"deep":{"L":[{"N":"2.50"},{"S":"x"}]}}}}
{"pk":{"S":"k3"},"bin":{"B":"AAECA/7/"},"flag":{"BOOL":true},"nothing":{"NULL":true}}
{"pk":{"S":"k4"}}
EOF
	ddbc put-many dual <<'EOF'
{"pk":{"S":"alice"},"sk":{"N":"1"},"v":{"S":"a1"}}
{"pk":{"S":"alice"},"sk":{"N":"2"},"v":{"S":"a2"}}
{"pk":{"S":"alice"},"sk":{"N":"10"},"v":{"S":"a10"}}
{"pk":{"S":"bob"},"sk":{"N":"1"},"v":{"S":"b1"}}
{"pk":{"S":"bob"},"sk":{"N":"2"},"text":{"S":"one more haystack needle"}}
{"pk":{"S":"carol"},"sk":{"N":"-5"},"v":{"N":"-5"}}
EOF
	# 150 items of ~10 KB: 1.5 MB, so a Scan (and a Query of one
	# partition) takes more than one 1 MB page.
	local pad i
	pad="$(head -c 10000 /dev/zero | tr '\0' x)"
	for i in $(seq 1 150); do
		printf '{"pk":{"S":"item-%03d"},"pad":{"S":"%s"}}\n' "$i" "$pad"
	done | ddbc put-many bigscan
	{
		for i in $(seq 1 150); do
			printf '{"pk":{"S":"p"},"sk":{"N":"%d"},"pad":{"S":"%s"}}\n' "$i" "$pad"
		done
		printf '{"pk":{"S":"q"},"sk":{"N":"7"}}\n'
	} | ddbc put-many bigquery
}

# --- checks --------------------------------------------------------------------------
check_tables_listing() {
	local want seen
	want="$(ddbc list-tables)"
	seen="$(fh_ls "$FH_T")"
	check_eq "ls tables/ lists every table ($(wc -l <<<"$want") of them, ListTables paginated)" "$want" "$seen"
	check_ls "ls of an empty table is empty" "$FH_T/empty_t"
	fh_run test -d "$FH_T/solo"
	check_eq "tables/solo is a directory" 0 "$FH_RC"
}

check_partition_only_table() {
	check_ls "ls of a partition-only table lists <key>.json" "$FH_T/solo" \
		k1.json k2.json k3.json k4.json
	fh_run stat -c %F "$FH_T/solo/k1.json"
	check_eq "an item is a regular file" "regular file" "${FH_OUT%$'\n'}"
}

check_sort_key_table() {
	check_ls "ls of a sort-key table lists the partition values" "$FH_T/dual" alice bob carol
	fh_run stat -c %F "$FH_T/dual/alice"
	check_eq "a partition is a directory" "directory" "${FH_OUT%$'\n'}"
	check_ls "ls of a partition lists <sort>.json" "$FH_T/dual/alice" 1.json 2.json 10.json
	check_ls "ls of another partition" "$FH_T/dual/bob" 1.json 2.json
	check_ls "a negative number sort key is its own text" "$FH_T/dual/carol" -5.json
}

check_paginated_listings() {
	local want
	want="$(for i in $(seq 1 150); do printf 'item-%03d.json\n' "$i"; done | LC_ALL=C sort)"
	check_eq "ls of a 1.5 MB table lists all 150 items (Scan pagination)" "$want" "$(fh_ls "$FH_T/bigscan")"
	check_ls "ls of a 1.5 MB sort-key table lists its 2 partitions" "$FH_T/bigquery" p q
	want="$(for i in $(seq 1 150); do printf '%d.json\n' "$i"; done | LC_ALL=C sort)"
	check_eq "ls of a 1.5 MB partition lists all 150 items (Query pagination)" "$want" "$(fh_ls "$FH_T/bigquery/p")"
}

# cat of each item is the checker's plain rendering, and st_size is the
# length of that text.
check_item_text() { # TABLE KEYJSON PATH
	local table="$1" key="$2" path="$3" want size
	want="$(ddb_get "$table" "$key" --plain)"$'\n'
	fh_run cat "$path"
	if [[ "$FH_RC" != 0 ]]; then
		fail "cat ${path#"$FH_T"/}: $(fh_how)"
		return 0
	fi
	check_eq "cat ${path#"$FH_T"/} is the plain rendering" "$want" "$FH_OUT"
	fh_run stat -c %s "$path"
	size="${FH_OUT%$'\n'}"
	check_eq "stat size of ${path#"$FH_T"/} equals wc -c of cat" "$(printf '%s' "$want" | wc -c)" "$size"
	fh_sh 'cat "$1" | wc -c' "$path"
	check_eq "wc -c of ${path#"$FH_T"/} equals its stat size" "$size" "${FH_OUT%$'\n'}"
}

check_items() {
	local k
	for k in k1 k2 k3 k4; do
		check_item_text solo "{\"pk\":{\"S\":\"$k\"}}" "$FH_T/solo/$k.json"
	done
	check_item_text dual '{"pk":{"S":"alice"},"sk":{"N":"10"}}' "$FH_T/dual/alice/10.json"
	check_item_text dual '{"pk":{"S":"bob"},"sk":{"N":"2"}}' "$FH_T/dual/bob/2.json"
	check_item_text dual '{"pk":{"S":"carol"},"sk":{"N":"-5"}}' "$FH_T/dual/carol/-5.json"
	check_item_text bigquery '{"pk":{"S":"p"},"sk":{"N":"150"}}' "$FH_T/bigquery/p/150.json"
}

check_ls_l() {
	local line bad="" n=0 name size want_size
	fh_run ls -l "$FH_T/solo"
	if [[ "$FH_RC" != 0 ]]; then
		fail "ls -l tables/solo: $(fh_how)"
	else
		while read -r line; do
			[[ -z "$line" || "$line" == total* ]] && continue
			n=$((n + 1))
			[[ "$line" == -* ]] || bad+="not a regular file: $line"$'\n'
			# perms links owner group size month day time name
			read -r _ _ _ _ size _ _ _ name <<<"$line"
			want_size="$(stat -c %s "$FH_T/solo/$name" 2>/dev/null || echo '?')"
			[[ "$size" == "$want_size" ]] || bad+="$name: ls -l size $size, stat size $want_size"$'\n'
		done <<<"$FH_OUT"
		check_eq "ls -l tables/solo: 4 regular files with their sizes" "4 files" "$n files${bad:+ $bad}"
	fi
	fh_run ls -l "$FH_T/dual"
	if [[ "$FH_RC" != 0 ]]; then
		fail "ls -l tables/dual: $(fh_how)"
	else
		check_eq "ls -l tables/dual: 3 directories" "3" "$(grep -c '^d' <<<"$FH_OUT" || true)"
	fi
	fh_run ls -lR "$FH_T/dual"
	check_eq "ls -lR tables/dual shows 6 regular files" "6" "$(grep -c '^-' <<<"$FH_OUT" || true)"
}

check_find_grep_jq() {
	local want seen
	fh_sh 'cd "$1" && find dual -name "*.json"' "$FH_T"
	want="$(sorted dual/alice/1.json dual/alice/2.json dual/alice/10.json \
		dual/bob/1.json dual/bob/2.json dual/carol/-5.json)"
	check_eq "find tables/dual -name '*.json'" "$want" "$(printf '%s' "$FH_OUT" | LC_ALL=C sort)"

	fh_sh 'cd "$1" && find . -name "*.json" | wc -l' "$FH_T"
	check_eq "find tables -name '*.json' counts every item (4+6+150+151)" "311" "${FH_OUT%$'\n'}"

	fh_sh 'cd "$1" && grep -rl "haystack needle" solo dual empty_t' "$FH_T"
	seen="$(printf '%s' "$FH_OUT" | LC_ALL=C sort)"
	check_eq "grep -rl finds the items holding the text" "$(sorted dual/bob/2.json solo/k1.json)" "$seen"

	fh_run jq -r '.name' "$FH_T/solo/k2.json"
	check_eq "jq -r .name of an item" $'second\n' "$FH_OUT"
	fh_run jq -c '.m.deep' "$FH_T/solo/k2.json"
	check_eq "jq -c of a nested value" $'[2.5,"x"]\n' "$FH_OUT"
}

check_mtime_stable() {
	local t1 t2
	fh_run stat -c %Y "$FH_T/solo/k1.json"
	t1="$FH_OUT"
	if [[ "$FH_RC" != 0 || -z "$t1" ]]; then
		fail "stat solo/k1.json for its mtime: $(fh_how)"
		return 0
	fi
	# Beyond cache_ttl=1: the item is read again from DynamoDB.
	sleep 2.5
	ls "$FH_T/solo" >/dev/null 2>&1 || true
	fh_run stat -c %Y "$FH_T/solo/k1.json"
	t2="$FH_OUT"
	check_eq "mtime of an unchanged item is stable across cache expiry" "$t1" "$t2"
}

check_missing() {
	check_fails "cat of a missing item is ENOENT" "No such file" cat "$FH_T/solo/nope.json"
	check_fails "ls of a missing table is ENOENT" "No such file" ls "$FH_T/no_such_table"
	check_fails "cat in a missing partition is ENOENT" "No such file" cat "$FH_T/dual/nobody/1.json"
	check_fails "cat of a missing sort key is ENOENT" "No such file" cat "$FH_T/dual/alice/99.json"
}

make_tables
fh_mount mnt cache_ttl=1
check_tables_listing
check_partition_only_table
check_sort_key_table
check_paginated_listings
check_items
check_ls_l
check_find_grep_jq
check_mtime_stable
check_missing
fh_unmount
fh_summary

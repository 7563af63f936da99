#!/usr/bin/env bash
# Set types surviving an edit (issue 3, "Writing an item"): an item with
# SS, NS, B and sets nested in M and L is edited through the mount with
# `sed -i`, with vim in ex mode (`vim -Nu NONE -es -c ... -c wq`), and
# with `jq ... > tmp && mv tmp FILE`; the checker must then see the edited
# values with their SS/NS/B types kept at every depth, L and S untouched,
# and values that no longer fit a set or binary take the natural type.
# The editors' scratch files (vim's swap file and 4913 probe, sed's
# temporary file, the jq temporary) never become items and are gone after.
# shellcheck disable=SC2016 # single-quoted scripts for bash -c are deliberate
set -euo pipefail
. "${DYNFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/fs-helpers.sh"

fh_setup
command -v vim >/dev/null || tl_die "vim is missing (contrib/install-deps.sh installs it)"

# The item every editor starts from (KEY replaced by the item's key).
BASE='{"pk":{"S":"KEY"},"tags":{"SS":["a","b","c"]},"nums":{"NS":["1","2","3"]},
 "blob":{"B":"AAECA/7/"},
 "nested":{"M":{"inner":{"SS":["x","y"]},
   "deep":{"L":[{"M":{"ns":{"NS":["5","6"]},"bb":{"B":"eHl6"}}}]}}},
 "plain":{"L":[{"S":"p"},{"S":"q"}]},"word":{"S":"AAAA"},"count":{"N":"1"}}'

CANON='walk(if type == "object" then
	(if has("SS") then .SS |= sort elif has("NS") then .NS |= sort
	 elif has("BS") then .BS |= sort else . end) else . end)'

base_for() {
	jq -c --arg k "$1" '.pk.S = $k' <<<"$BASE"
}

make_tables() {
	local k
	ddbc create-table sets pk:S
	for k in e-sed e-vim e-jq e-drift; do
		base_for "$k"
	done | ddbc put-many sets
}

# check_item_is WHAT KEY JQ_EDIT: the checker's item equals BASE for KEY
# with JQ_EDIT applied (typed JSON), set member order aside.
check_item_is() {
	local what="$1" key="$2" edit="$3" want seen
	want="$(base_for "$key" | jq -S -c "$edit | $CANON")"
	seen="$(ddb_get sets "{\"pk\":{\"S\":\"$key\"}}" | jq -S -c "$CANON")"
	check_eq "checker: $what" "$want" "$seen"
	# The attributes the issue names, one by one, for a precise report.
	local path
	for path in .tags .nums .blob .nested.M.inner .nested.M.deep.L[0].M.ns .nested.M.deep.L[0].M.bb .plain .word; do
		[[ "$want" == "$seen" ]] && break
		check_eq "checker: $key attribute $path (type and value)" \
			"$(jq -c "$path" <<<"$want")" "$(jq -c "$path" <<<"$seen" 2>&1)"
	done
}

# After an edit, reading through the mount gives the checker's rendering.
check_reads_back() {
	local key="$1"
	fh_run cat "$FH_T/sets/$key.json"
	check_eq "cat sets/$key.json after the edit is the checker's plain rendering" \
		"$(ddb_get sets "{\"pk\":{\"S\":\"$key\"}}" --plain)"$'\n' "$FH_OUT"
}

edit_with_sed() {
	check_ok "sed -i edits sets/e-sed.json" sed -i \
		-e 's/"c"$/"d"/' -e 's/"count": 1,/"count": 2,/' -e 's/^\( *\)3$/\14/' \
		-e 's/"y"$/"yy"/' -e 's/^\( *\)6$/\17/' -e 's|"AAECA/7/"|"AAECA/7+"|' \
		"$FH_T/sets/e-sed.json"
	check_item_is "sed -i keeps SS, NS and B (top level and nested)" e-sed \
		'.tags.SS = ["a","b","d"] | .count.N = "2" | .nums.NS = ["1","2","4"]
		 | .nested.M.inner.SS = ["x","yy"] | .nested.M.deep.L[0].M.ns.NS = ["5","7"]
		 | .blob.B = "AAECA/7+"'
	check_reads_back e-sed
}

edit_with_vim() {
	check_ok "vim -Nu NONE -es edits sets/e-vim.json" \
		vim -Nu NONE -es -c '%s/"a",$/"aa",/' -c '%s/"x",$/"xx",/' \
		-c '%s/^\( *\)2,$/\122,/' -c wq "$FH_T/sets/e-vim.json"
	check_item_is "vim keeps SS, NS and B (top level and nested)" e-vim \
		'.tags.SS = ["aa","b","c"] | .nested.M.inner.SS = ["xx","y"] | .nums.NS = ["1","22","3"]'
	check_reads_back e-vim
}

edit_with_jq() {
	check_sh_ok "jq ... > tmp && mv tmp sets/e-jq.json" \
		'jq ".tags += [\"e\"] | .nested.deep[0].ns += [7] | .count += 1" "$1/e-jq.json" \
			> "$1/e-jq.json.tmp" && mv "$1/e-jq.json.tmp" "$1/e-jq.json"' "$FH_T/sets"
	check_item_is "jq + mv keeps SS, NS and B (top level and nested)" e-jq \
		'.tags.SS = ["a","b","c","e"] | .nested.M.deep.L[0].M.ns.NS = ["5","6","7"] | .count.N = "2"'
	check_reads_back e-jq
}

# Values that no longer fit the old type take the natural one.
edit_type_drift() {
	check_sh_ok "jq changes values so they no longer fit SS, NS or B, cp writes them back" \
		'jq ".tags = [\"a\",\"a\"] | .nums = [1,\"x\"] | .blob = \"not base64!\" | .word = \"BBBB\"" \
			"$1/e-drift.json" > "$2" && cp "$2" "$1/e-drift.json"' "$FH_T/sets" "$FH_WORK/drift.json"
	check_item_is "values that no longer fit take the natural type (L, S); S stays S" e-drift \
		'.tags = {"L":[{"S":"a"},{"S":"a"}]} | .nums = {"L":[{"N":"1"},{"S":"x"}]}
		 | .blob = {"S":"not base64!"} | .word.S = "BBBB"'
}

check_no_leftovers() {
	check_ls "no scratch file is left after the editors finished" "$FH_T/sets" \
		e-drift.json e-jq.json e-sed.json e-vim.json
	check_eq "checker: the table still holds exactly the 4 items" 4 "$(ddbc count sets)"
}

make_tables
fh_mount mnt
edit_with_sed
edit_with_vim
edit_with_jq
edit_type_drift
check_no_leftovers
fh_unmount
fh_summary

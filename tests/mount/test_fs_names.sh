#!/usr/bin/env bash
# Key to file name (issue 3, "Key to file name"): string keys with "/",
# "%", a leading ".", unicode, control bytes, "\" and '"'; number keys in
# DynamoDB's own text; binary keys in base64url without padding; partition
# directories and sort-key files of the same encoding; long keys under a
# reversible fallback.  Both directions: items made by the checker appear
# under the exact expected names, and files created through the mount
# under those names become items with the exact expected keys (checked
# with the checker).  Names that do not decode: ENOENT on lookup, EINVAL on
# create, and nothing reaches DynamoDB.
# shellcheck disable=SC2016 # single-quoted scripts for bash -c are deliberate
set -euo pipefail
. "${DYNFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/fs-helpers.sh"

fh_setup

LONG1="$(printf 'k%.0s' $(seq 1 300))"
LONG2="$(printf 'k%.0s' $(seq 1 299))j"

# String keys (as JSON string literals, jq -c style) and their names.
S_KEYS=(
	'"a/b"' '"100%"' '"%2F"' '".hidden"' '"..."' '"mid.dot."'
	'"café ☃ 日本 😀"' '"tab\there"' '"ctl\u0001\u001f\u007f"' '"nl\n"'
	'"sp ace"' '"back\\slash\"quote"' '"x"'
)
S_NAMES=(
	'a%2Fb.json' '100%25.json' '%252F.json' '%2Ehidden.json' '%2E...json' 'mid.dot..json'
	'café ☃ 日本 😀.json' 'tab%09here.json' 'ctl%01%1F%7F.json' 'nl%0A.json'
	'sp ace.json' 'back\slash"quote.json' 'x.json'
)
# Number keys: what the checker puts, and the name (DynamoDB's text; for
# the two extreme exponents that text is read from DynamoDB in
# number_names, as the contract says "DynamoDB's own text").
N_PUT=('42' '-3' '1.5' '1E+2' '0.001' '12345678901234567890123456789012345678'
	'-0.5' '9.9999999999999999999999999999999999999E+125' '1E-130')
N_NAMES=('42.json' '-3.json' '1.5.json' '100.json' '0.001.json'
	'12345678901234567890123456789012345678.json' '-0.5.json' HUGE TINY)
number_names() {
	local scan
	scan="$(ddbc scan nums)"
	N_NAMES[7]="$(jq -r 'select(.i.N == "7") | .pk.N' <<<"$scan").json"
	N_NAMES[8]="$(jq -r 'select(.i.N == "8") | .pk.N' <<<"$scan").json"
	[[ "${N_NAMES[7]}" != .json && "${N_NAMES[8]}" != .json ]] ||
		fh_fatal "the checker did not find the extreme-exponent keys"
}
# Binary keys: standard base64 (what DynamoDB's JSON carries), the name.
B_PUT=('++++' '/w==' 'AAEC' 'aGVsbG8=' '+/8=')
B_NAMES=('----.json' '_w.json' 'AAEC.json' 'aGVsbG8.json' '-_8.json')

make_tables() {
	local i
	ddbc create-table strs pk:S
	ddbc create-table nums pk:N
	ddbc create-table bins pk:B
	ddbc create-table pairs pk:S sk:S
	ddbc create-table mixed pk:N sk:B
	{
		for i in "${!S_KEYS[@]}"; do
			printf '{"pk":{"S":%s},"i":{"N":"%d"}}\n' "${S_KEYS[$i]}" "$i"
		done
		printf '{"pk":{"S":"%s"},"which":{"S":"long1"}}\n' "$LONG1"
		printf '{"pk":{"S":"%s"},"which":{"S":"long2"}}\n' "$LONG2"
	} | ddbc put-many strs
	for i in "${!N_PUT[@]}"; do
		printf '{"pk":{"N":"%s"},"i":{"N":"%d"}}\n' "${N_PUT[$i]}" "$i"
	done | ddbc put-many nums
	for i in "${!B_PUT[@]}"; do
		printf '{"pk":{"B":"%s"},"i":{"N":"%d"}}\n' "${B_PUT[$i]}" "$i"
	done | ddbc put-many bins
	ddbc put-many pairs <<'EOF'
{"pk":{"S":"a/b"},"sk":{"S":"c%d"},"v":{"S":"1"}}
{"pk":{"S":".p"},"sk":{"S":".s"},"v":{"S":"2"}}
{"pk":{"S":"ü"},"sk":{"S":"x\ty"},"v":{"S":"3"}}
EOF
	ddbc put-many mixed <<'EOF'
{"pk":{"N":"7"},"sk":{"B":"/w=="},"v":{"S":"1"}}
{"pk":{"N":"-1.5"},"sk":{"B":"AAEC"},"v":{"S":"2"}}
EOF
}

# --- items made by the checker, seen through the mount ----------------------------------
# check_named_item PATH JQFILTER WANT: cat PATH works and jq -c FILTER of it is WANT.
check_named_item() {
	local path="$1" filter="$2" want="$3" seen
	fh_run cat "$path"
	if [[ "$FH_RC" != 0 ]]; then
		fail "cat '${path#"$FH_T"/}': $(fh_how)"
		return 0
	fi
	seen="$(jq -c "$filter" <<<"$FH_OUT" 2>&1)" || seen="not JSON: $seen"
	check_eq "'${path#"$FH_T"/}' holds $filter = $want" "$want" "$seen"
}

check_string_names() {
	local i seen long=()
	seen="$(fh_ls "$FH_T/strs")"
	# Every short key is listed under its exact name ...
	check_eq "string keys: ls shows each escaped name" "$(sorted "${S_NAMES[@]}")" \
		"$(grep -xF -f <(printf '%s\n' "${S_NAMES[@]}") <<<"$seen" || true)"
	for i in "${!S_NAMES[@]}"; do
		check_named_item "$FH_T/strs/${S_NAMES[$i]}" .pk "${S_KEYS[$i]}"
	done
	# ... and the two long keys get two more names, each at most 255 bytes, distinct,
	# ending in .json, each reading back its own full key.
	mapfile -t long < <(grep -vxF -f <(printf '%s\n' "${S_NAMES[@]}") <<<"$seen" || true)
	check_eq "two long keys are listed under two more names" 2 "${#long[@]}"
	for i in "${long[@]}"; do
		if ((${#i} > 0)) && [[ "$i" == *.json ]] && (($(printf '%s' "$i" | wc -c) <= 255)); then
			pass "long-key name '${i:0:40}...' is a .json name of at most 255 bytes"
		else
			fail "long-key name is not a .json name of at most 255 bytes" "<=255 bytes, *.json" "$i"
		fi
		fh_run cat "$FH_T/strs/$i"
		case "$(jq -r .which <<<"$FH_OUT" 2>/dev/null)" in
		long1) check_eq "long key 1 reads back in full" "\"$LONG1\"" "$(jq -c .pk <<<"$FH_OUT")" ;;
		long2) check_eq "long key 2 reads back in full" "\"$LONG2\"" "$(jq -c .pk <<<"$FH_OUT")" ;;
		*) fail "cat of long-key name '$i' gives neither long item: $(fh_how)" ;;
		esac
	done
}

check_number_and_binary_names() {
	local i
	check_ls "number keys: ls shows DynamoDB's text of each number" "$FH_T/nums" "${N_NAMES[@]}"
	for i in "${!N_NAMES[@]}"; do
		check_named_item "$FH_T/nums/${N_NAMES[$i]}" .i "$i"
	done
	fh_run cat "$FH_T/nums/100.json"
	check_eq "a number key reads back as DynamoDB's number" "100" "$(jq -c .pk <<<"$FH_OUT" 2>&1)"
	check_ls "binary keys: ls shows base64url without padding" "$FH_T/bins" "${B_NAMES[@]}"
	for i in "${!B_NAMES[@]}"; do
		check_named_item "$FH_T/bins/${B_NAMES[$i]}" '[.pk,.i]' "[\"${B_PUT[$i]}\",$i]"
	done
}

check_partition_names() {
	check_ls "string partitions: escaped directory names" "$FH_T/pairs" 'a%2Fb' '%2Ep' 'ü'
	check_ls "string sort keys: escaped file names" "$FH_T/pairs/a%2Fb" 'c%25d.json'
	check_ls "leading-dot sort key" "$FH_T/pairs/%2Ep" '%2Es.json'
	check_ls "control byte in a sort key" "$FH_T/pairs/ü" 'x%09y.json'
	check_named_item "$FH_T/pairs/a%2Fb/c%25d.json" '[.pk,.sk,.v]' '["a/b","c%d","1"]'
	check_named_item "$FH_T/pairs/%2Ep/%2Es.json" '[.pk,.sk]' '[".p",".s"]'
	check_named_item "$FH_T/pairs/ü/x%09y.json" '[.pk,.sk]' '["ü","x\ty"]'
	check_ls "number partitions" "$FH_T/mixed" 7 -1.5
	check_ls "binary sort key under a number partition" "$FH_T/mixed/7" '_w.json'
	check_named_item "$FH_T/mixed/-1.5/AAEC.json" '[.pk,.sk,.v]' '[-1.5,"AAEC","2"]'
}

# --- files created through the mount, checked as items ---------------------------------------
# create_item PATH BODY: write BODY to PATH with cp (which reports close errors).
create_item() {
	local path="$1" body="$2"
	printf '%s\n' "$body" >"$FH_WORK/body.json"
	check_ok "create '${path#"$FH_T"/}' with cp" cp "$FH_WORK/body.json" "$path"
}

# check_key_written TABLE KEYJSON WANT_V: the checker finds the item with
# exactly that key, and its v attribute is WANT_V (typed, compact).
check_key_written() {
	local table="$1" key="$2" want="$3" seen
	seen="$(ddb_get "$table" "$key" | jq -c '.v')"
	check_eq "checker: $table item $key has v" "$want" "$seen"
}

check_created_names() {
	create_item "$FH_T/strs/new%2Fslash.json" '{"v":"slash"}'
	create_item "$FH_T/strs/p%25c.json" '{"v":"pct"}'
	create_item "$FH_T/strs/%2Elead.json" '{"v":"dot"}'
	create_item "$FH_T/strs/ünï✓ 😀.json" '{"v":"uni"}'
	create_item "$FH_T/strs/c%01%1F%7Fd.json" '{"v":"ctl"}'
	create_item "$FH_T/strs/a%0Ab.json" '{"v":"nl"}'
	create_item "$FH_T/strs/withkey.json" '{"pk":"withkey","v":"k"}'
	check_key_written strs '{"pk":{"S":"new/slash"}}' '{"S":"slash"}'
	check_key_written strs '{"pk":{"S":"p%c"}}' '{"S":"pct"}'
	check_key_written strs '{"pk":{"S":".lead"}}' '{"S":"dot"}'
	check_key_written strs '{"pk":{"S":"ünï✓ 😀"}}' '{"S":"uni"}'
	check_key_written strs '{"pk":{"S":"c\u0001\u001f\u007fd"}}' '{"S":"ctl"}'
	check_key_written strs '{"pk":{"S":"a\nb"}}' '{"S":"nl"}'
	check_key_written strs '{"pk":{"S":"withkey"}}' '{"S":"k"}'
	check_eq "checker: strs holds exactly the 15 + 7 items" 22 "$(ddbc count strs)"

	create_item "$FH_T/nums/7.json" '{"v":"seven"}'
	create_item "$FH_T/nums/-0.25.json" '{"v":"neg"}'
	create_item "$FH_T/nums/98765432109876543210987654321098765432.json" '{"v":"big"}'
	check_key_written nums '{"pk":{"N":"7"}}' '{"S":"seven"}'
	check_key_written nums '{"pk":{"N":"-0.25"}}' '{"S":"neg"}'
	check_key_written nums '{"pk":{"N":"98765432109876543210987654321098765432"}}' '{"S":"big"}'
	# The exact digits of the key as stored.
	check_eq "checker: the 38-digit key was stored digit for digit" \
		'"98765432109876543210987654321098765432"' \
		"$(ddbc scan nums | jq -c 'select(.v.S == "big") | .pk.N')"

	create_item "$FH_T/bins/AQID.json" '{"v":"bin1"}'
	create_item "$FH_T/bins/--8.json" '{"v":"bin2"}'
	check_key_written bins '{"pk":{"B":"AQID"}}' '{"S":"bin1"}'
	check_key_written bins '{"pk":{"B":"++8="}}' '{"S":"bin2"}'

	check_ok "mkdir of a new escaped partition" mkdir "$FH_T/pairs/new%2Fpart"
	create_item "$FH_T/pairs/new%2Fpart/s%25k.json" '{"v":"p1"}'
	create_item "$FH_T/pairs/a%2Fb/n%0A.json" '{"v":"p2"}'
	check_key_written pairs '{"pk":{"S":"new/part"},"sk":{"S":"s%k"}}' '{"S":"p1"}'
	check_key_written pairs '{"pk":{"S":"a/b"},"sk":{"S":"n\n"}}' '{"S":"p2"}'
	check_ok "mkdir of a new number partition" mkdir "$FH_T/mixed/8"
	create_item "$FH_T/mixed/8/AAEC.json" '{"v":"m1"}'
	check_key_written mixed '{"pk":{"N":"8"},"sk":{"B":"AAEC"}}' '{"S":"m1"}'

	local created=('new%2Fslash.json' 'p%25c.json' '%2Elead.json' 'ünï✓ 😀.json'
		'c%01%1F%7Fd.json' 'a%0Ab.json' 'withkey.json')
	check_eq "the created string names are listed as written" "$(sorted "${created[@]}")" \
		"$(fh_ls "$FH_T/strs" | grep -xF -f <(printf '%s\n' "${created[@]}") || true)"
}

# --- names that do not decode ---------------------------------------------------------------
# check_bad_name DIR NAME: lookup is ENOENT, create is EINVAL.
check_bad_name() {
	local dir="$1" name="$2" shown
	shown="$(printf '%s' "${dir#"$FH_T"/}/$name" | cat -v)"
	check_fails "cat '$shown' (does not decode) is ENOENT" "No such file or directory" \
		cat "$dir/$name"
	check_py "stat '$shown' is ENOENT" ENOENT stat "$dir/$name"
	check_sh_fails "creating '$shown' (does not decode) is EINVAL" "Invalid argument" \
		'printf "{}\n" > "$1"' "$dir/$name"
	check_py "open(O_CREAT) of '$shown' is EINVAL" EINVAL create "$dir/$name"
}

check_bad_names() {
	local before_s before_n before_b before_p before_m
	before_s="$(ddbc count strs)"
	before_n="$(ddbc count nums)"
	before_b="$(ddbc count bins)"
	before_p="$(ddbc count pairs)"
	before_m="$(ddbc count mixed)"
	check_bad_name "$FH_T/strs" '%ZZ.json'
	check_bad_name "$FH_T/strs" 'bad%2.json'
	check_bad_name "$FH_T/strs" 'end%.json'
	check_bad_name "$FH_T/strs" $'raw\ttab.json'
	check_bad_name "$FH_T/strs" $'\xff\xfe.json'
	check_bad_name "$FH_T/nums" 'abc.json'
	check_bad_name "$FH_T/nums" '1.2.3.json'
	check_bad_name "$FH_T/nums" 'NaN.json'
	check_bad_name "$FH_T/nums" '--1.json'
	check_bad_name "$FH_T/bins" '!!.json'
	check_bad_name "$FH_T/bins" 'A.json'
	check_bad_name "$FH_T/bins" '++++.json'
	check_bad_name "$FH_T/bins" 'YQ==.json'
	check_bad_name "$FH_T/pairs/a%2Fb" '%ZZ.json'
	check_bad_name "$FH_T/mixed/7" '!!.json'
	check_fails "ls of a partition that does not decode is ENOENT" "No such file" ls "$FH_T/pairs/%ZZ"
	check_fails "mkdir of a partition that does not decode is EINVAL" "Invalid argument" \
		mkdir "$FH_T/pairs/%ZZ"
	check_fails "ls of a number partition that does not decode is ENOENT" "No such file" \
		ls "$FH_T/mixed/abc"
	check_fails "mkdir of a number partition that does not decode is EINVAL" "Invalid argument" \
		mkdir "$FH_T/mixed/abc"
	check_eq "checker: no item reached DynamoDB from the bad names" \
		"$before_s $before_n $before_b $before_p $before_m" \
		"$(ddbc count strs) $(ddbc count nums) $(ddbc count bins) $(ddbc count pairs) $(ddbc count mixed)"
}

make_tables
number_names
fh_mount mnt
check_string_names
check_number_and_binary_names
check_partition_names
check_created_names
check_bad_names
fh_unmount
fh_summary

#!/usr/bin/env bash
# Every attribute type (issue 3, "Reading an item", "Writing an item"): an
# item with S, N, B, BOOL, NULL, M, L, SS, NS and BS, nested, reads as the
# issue's plain-JSON table says, byte for byte the text `jq -S --indent 2 .`
# prints (sorted keys, 2-space indent, trailing newline); 38-digit numbers
# and the extreme exponents read back with DynamoDB's exact digits and,
# written through the mount, reach DynamoDB digit for digit (checked with
# the checker); new attributes take their natural type; writing back what
# was read changes nothing; -o json=dynamodb gives the checker's typed Item
# in the same layout.
# shellcheck disable=SC2016 # single-quoted scripts for bash -c are deliberate
set -euo pipefail
. "${DYNFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/fs-helpers.sh"

fh_setup

BIG=12345678901234567890123456789012345678
NEGBIG=-0.12345678901234567890123456789012345678
HUGE_IN=9.9999999999999999999999999999999999999E+125
NEGEXP_IN=-1.2345678901234567890123456789012345678E-100

ALL_TYPED='{"pk":{"S":"all"},
 "s":{"S":"héllo \"q\" \\ / \t\n\u0001\u007f ☃"},
 "s_empty":{"S":""},
 "n_int":{"N":"42"},"n_neg":{"N":"-7"},"n_frac":{"N":"3.25"},"n_exp":{"N":"1E+2"},"n_small":{"N":"0.001"},
 "b":{"B":"AAECA/7/"},
 "t":{"BOOL":true},"f":{"BOOL":false},"z":{"NULL":true},
 "m":{"M":{"z":{"S":"last"},"a":{"N":"1"},"Ä":{"BOOL":true},
   "nested":{"M":{"l":{"L":[{"S":"x"},{"N":"2"},{"NULL":true},{"M":{}},{"L":[]},{"B":"eHl6"}]}}}}},
 "m_empty":{"M":{}},
 "l":{"L":[{"S":"b"},{"N":"1"},{"BOOL":false},{"NULL":true},{"L":[{"S":"in"}]},
   {"M":{"k":{"S":"v"},"ss":{"SS":["q","p"]}}},{"B":"AAECA/7/"}]},
 "l_empty":{"L":[]},
 "ss":{"SS":["pear","apple","Zeta","äpfel"]},
 "ns":{"NS":["7.25","1","3","2.5"]},
 "bs":{"BS":["eHl6","YWJj","YWJk"]}}'

# The issue's table applied by hand: S string, N number, B base64 string,
# BOOL, NULL, M object, L array, SS/NS/BS arrays with sorted members.  The
# numbers here are small, so jq prints them exactly.
ALL_PLAIN='{"pk":"all",
 "s":"héllo \"q\" \\ / \t\n\u0001\u007f ☃",
 "s_empty":"",
 "n_int":42,"n_neg":-7,"n_frac":3.25,"n_exp":100,"n_small":0.001,
 "b":"AAECA/7/",
 "t":true,"f":false,"z":null,
 "m":{"z":"last","a":1,"Ä":true,"nested":{"l":["x",2,null,{},[],"eHl6"]}},
 "m_empty":{},
 "l":["b",1,false,null,["in"],{"k":"v","ss":["p","q"]},"AAECA/7/"],
 "l_empty":[],
 "ss":["Zeta","apple","pear","äpfel"],
 "ns":[1,2.5,3,7.25],
 "bs":["YWJj","YWJk","eHl6"]}'

# Set members in a fixed order, for comparing typed items where the
# member order is not part of the contract.
CANON='walk(if type == "object" then
	(if has("SS") then .SS |= sort elif has("NS") then .NS |= sort
	 elif has("BS") then .BS |= sort else . end) else . end)'

make_tables() {
	ddbc create-table types pk:S
	ddbc put types "$ALL_TYPED"
	ddbc put types "{\"pk\":{\"S\":\"big\"},\"big\":{\"N\":\"$BIG\"},\"negbig\":{\"N\":\"$NEGBIG\"},
		\"huge\":{\"N\":\"$HUGE_IN\"},\"tiny\":{\"N\":\"1E-130\"},\"negexp\":{\"N\":\"$NEGEXP_IN\"},
		\"ns\":{\"NS\":[\"$BIG\",\"1E-130\"]}}"
	# The reference for the numbers written through the mount: the same
	# literals, normalized by DynamoDB itself.
	ddbc put types "{\"pk\":{\"S\":\"refbig\"},\"big\":{\"N\":\"$BIG\"},\"negbig\":{\"N\":\"$NEGBIG\"},
		\"huge\":{\"N\":\"$HUGE_IN\"},\"tiny\":{\"N\":\"1E-130\"},\"negexp\":{\"N\":\"$NEGEXP_IN\"},
		\"deep\":{\"M\":{\"l\":{\"L\":[{\"N\":\"12345678901234567890123456789012345679\"}]}}}}"
}

# --- plain rendering ---------------------------------------------------------------
check_all_types_plain() {
	local want attr
	want="$(jq -S --indent 2 . <<<"$ALL_PLAIN")"$'\n'
	check_eq "the checker's plain rendering agrees with jq -S --indent 2 (oracle self-check)" \
		"$want" "$(ddb_get types '{"pk":{"S":"all"}}' --plain)"$'\n'
	fh_run cat "$FH_T/types/all.json"
	if [[ "$FH_RC" != 0 ]]; then
		fail "cat types/all.json: $(fh_how)"
		return 0
	fi
	check_eq "every type renders byte-identical to jq -S --indent 2 of the issue's table" "$want" "$FH_OUT"
	# Attribute by attribute, so a failure names the type.
	for attr in s s_empty n_int n_neg n_frac n_exp n_small b t f z m m_empty l l_empty ss ns bs; do
		check_eq "plain rendering of attribute '$attr'" \
			"$(jq -S -c --arg a "$attr" '.[$a]' <<<"$ALL_PLAIN")" \
			"$(jq -S -c --arg a "$attr" '.[$a]' <<<"$FH_OUT" 2>&1)"
	done
	fh_run stat -c %s "$FH_T/types/all.json"
	check_eq "st_size is the byte length of the text" "$(printf '%s' "$want" | wc -c)" "${FH_OUT%$'\n'}"
}

check_big_numbers_plain() {
	local typed want
	typed="$(ddb_get types '{"pk":{"S":"big"}}')"
	check_eq "checker: DynamoDB keeps the 38-digit integer" "\"$BIG\"" "$(jq -c .big.N <<<"$typed")"
	check_eq "checker: DynamoDB keeps the 38-digit fraction" "\"$NEGBIG\"" "$(jq -c .negbig.N <<<"$typed")"
	# The expected text, with DynamoDB's own text of each number.
	want="{
  \"big\": $(jq -r .big.N <<<"$typed"),
  \"huge\": $(jq -r .huge.N <<<"$typed"),
  \"negbig\": $(jq -r .negbig.N <<<"$typed"),
  \"negexp\": $(jq -r .negexp.N <<<"$typed"),
  \"ns\": [
    $(jq -r .tiny.N <<<"$typed"),
    $BIG
  ],
  \"pk\": \"big\",
  \"tiny\": $(jq -r .tiny.N <<<"$typed")
}
"
	fh_run cat "$FH_T/types/big.json"
	check_eq "38-digit numbers and extreme exponents read with DynamoDB's exact digits" "$want" "$FH_OUT"
	check_eq "and the checker's plain rendering says the same (oracle self-check)" \
		"$want" "$(ddb_get types '{"pk":{"S":"big"}}' --plain)"$'\n'
}

# --- writing -------------------------------------------------------------------------
check_big_numbers_written() {
	local seen ref
	cat >"$FH_WORK/wbig.json" <<EOF
{"big": $BIG, "negbig": $NEGBIG, "huge": $HUGE_IN, "tiny": 1E-130,
 "negexp": $NEGEXP_IN, "deep": {"l": [12345678901234567890123456789012345679]}}
EOF
	check_ok "cp a file with 38-digit numbers to types/wbig.json" \
		cp "$FH_WORK/wbig.json" "$FH_T/types/wbig.json"
	seen="$(ddb_get types '{"pk":{"S":"wbig"}}' | jq -S -c 'del(.pk)')"
	ref="$(ddb_get types '{"pk":{"S":"refbig"}}' | jq -S -c 'del(.pk)')"
	check_eq "checker: numbers written through the mount are DynamoDB's, digit for digit" "$ref" "$seen"
	check_eq "checker: the 38-digit integer came through exactly" "\"$BIG\"" "$(jq -c .big.N <<<"$seen")"
	check_eq "checker: a 38-digit number nested in M and L came through exactly" \
		'"12345678901234567890123456789012345679"' "$(jq -c '.deep.M.l.L[0].N' <<<"$seen")"
	# And reading it back through the mount gives the same digits.
	fh_run cat "$FH_T/types/wbig.json"
	check_contains "cat of the written item shows the 38-digit integer" "\"big\": $BIG," "$FH_OUT"
	check_contains "cat of the written item shows the 38-digit fraction" "\"negbig\": $NEGBIG," "$FH_OUT"
}

check_natural_types() {
	local want seen
	printf '%s\n' '{"s":"x","n":1.5,"t":true,"z":null,"m":{"a":[1,"b"]},"l":[],
		"arr":["a","b"],"nums":[1,2],"b64":"AAECA/7/","o":{}}' >"$FH_WORK/natural.json"
	check_ok "cp a new item with every JSON type" cp "$FH_WORK/natural.json" "$FH_T/types/natural.json"
	want='{"arr":{"L":[{"S":"a"},{"S":"b"}]},"b64":{"S":"AAECA/7/"},"l":{"L":[]},"m":{"M":{"a":{"L":[{"N":"1"},{"S":"b"}]}}},"n":{"N":"1.5"},"nums":{"L":[{"N":"1"},{"N":"2"}]},"o":{"M":{}},"pk":{"S":"natural"},"s":{"S":"x"},"t":{"BOOL":true},"z":{"NULL":true}}'
	seen="$(ddb_get types '{"pk":{"S":"natural"}}' | jq -S -c .)"
	check_eq "checker: new attributes take the natural type (arrays are L, strings S)" "$want" "$seen"
}

# Writing back exactly what was read changes nothing: every type, set and
# nested binary is kept (the type-preserving parser on a whole item).
check_round_trip() { # KEY
	local key="$1" before after
	before="$(ddb_get types "{\"pk\":{\"S\":\"$key\"}}" | jq -S -c "$CANON")"
	if ! timeout 20 cat "$FH_T/types/$key.json" >"$FH_WORK/rt.json" 2>"$FH_WORK/rt.err"; then
		fail "cat types/$key.json for the round trip: $(cat "$FH_WORK/rt.err")"
		return 0
	fi
	check_ok "cp what cat read back onto types/$key.json" cp "$FH_WORK/rt.json" "$FH_T/types/$key.json"
	after="$(ddb_get types "{\"pk\":{\"S\":\"$key\"}}" | jq -S -c "$CANON")"
	check_eq "checker: item '$key' is unchanged after writing back its own text" "$before" "$after"
}

# --- -o json=dynamodb --------------------------------------------------------------------
check_dynamodb_json() { # KEY
	local key="$1" want
	want="$(ddb_get types "{\"pk\":{\"S\":\"$key\"}}")"$'\n'
	fh_run cat "$FH_T/types/$key.json"
	if [[ "$FH_RC" != 0 ]]; then
		fail "cat types/$key.json with -o json=dynamodb: $(fh_how)"
		return 0
	fi
	if [[ "$FH_OUT" == "$want" ]]; then
		pass "-o json=dynamodb: '$key' is byte-identical to the checker's typed Item"
	else
		# Set member order is not part of the contract: accept another
		# order only if the text is otherwise laid out as jq -S --indent 2.
		local layout canon_seen canon_want
		layout="$(jq -S --indent 2 . <<<"$FH_OUT" 2>&1)"$'\n'
		canon_seen="$(jq -S -c "$CANON" <<<"$FH_OUT" 2>&1)"
		canon_want="$(jq -S -c "$CANON" <<<"$want")"
		if [[ "$layout" == "$FH_OUT" && "$canon_seen" == "$canon_want" ]]; then
			pass "-o json=dynamodb: '$key' is the checker's typed Item (set members in another order)"
		else
			fail "-o json=dynamodb: '$key' differs from the checker's typed Item" "$want" "$FH_OUT"
		fi
	fi
	fh_run stat -c %s "$FH_T/types/$key.json"
	check_eq "-o json=dynamodb: st_size of '$key' is the byte length of its text" \
		"$(printf '%s' "$want" | wc -c)" "${FH_OUT%$'\n'}"
}

make_tables
fh_mount plain cache_ttl=1
check_all_types_plain
check_big_numbers_plain
check_big_numbers_written
check_natural_types
check_round_trip all
check_round_trip big
fh_unmount

fh_mount typed json=dynamodb
check_dynamodb_json all
check_dynamodb_json big
check_dynamodb_json natural
fh_unmount
fh_summary

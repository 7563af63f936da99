#!/usr/bin/env bash
# The cache's memory bound (docs/cache-memory.md): a table whose items take
# several times -o cache_size lists completely and correctly (every name,
# every size, every text, checked against the independent checker), while
# MOUNT/.dynfs/stats says the cache's counted bytes never exceed the cap
# and records were dropped; a fresh listing still vouches for the members
# whose records were dropped (stat costs no GetItem), serves a second ls
# without a Scan, and reads of dropped items fetch them again; writes
# through the small cache land; when the listings kept exceed the cache
# the oldest is dropped and lists again; a listing too large to keep (its
# names alone over half the cache) is still complete and within the cap,
# concurrent reads of its dropped items share BatchGetItem requests, and
# closing it after one entry stops its Scan.
# shellcheck disable=SC2016 # single-quoted scripts for bash -c are deliberate
set -euo pipefail
. "${DYNFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/fs-helpers.sh"

fh_setup

N=2500
PAD="$(printf 'x%.0s' $(seq 1 300))"

# A figure of $FH_MNT/.dynfs/stats.
sv() {
	awk -v n="$1" '$1 == n { print $2 }' "$FH_MNT/.dynfs/stats"
}

check_within_cap() { # WHEN
	local bytes max
	bytes="$(sv cached_bytes)"
	max="$(sv cache_max_bytes)"
	if [[ -n "$bytes" && -n "$max" ]] && ((bytes <= max)); then
		pass "$1: cached_bytes $bytes <= cache_max_bytes $max"
	else
		fail "$1: cached_bytes over the cap" "<= $max" "$bytes"
	fi
}

ddbc create-table big pk:S
for ((i = 0; i < N; i++)); do
	printf '{"pk":{"S":"item-%05d"},"n":{"N":"%d"},"pad":{"S":"%s"},"l":{"L":[{"N":"%d.50"},{"BOOL":true}]}}\n' \
		"$i" "$i" "$PAD" "$i"
done | ddbc put-many big
want_names="$(for ((i = 0; i < N; i++)); do printf 'item-%05d.json\n' "$i"; done)"
# Two more tables of as many (small) items, listed after big.
for t in big2 big3; do
	ddbc create-table "$t" pk:S
	for ((i = 0; i < N; i++)); do
		printf '{"pk":{"S":"item-%05d"},"n":{"N":"%d"}}\n' "$i" "$i"
	done | ddbc put-many "$t"
done

# 1 MB holds a few hundred of these records, not 2500; cache_ttl long
# enough that the listing stays fresh for every check below.
fh_mount m1 cache_size=1,cache_ttl=120

fh_run ls -l "$FH_T/big"
check_eq "ls -l of $N items with cache_size=1 succeeds" 0 "$FH_RC"
check_eq "ls -l shows every item" "$want_names" \
	"$(printf '%s' "$FH_OUT" | awk 'NR > 1 { print $NF }' | LC_ALL=C sort)"
check_within_cap "after the listing"
dropped="$(sv evictions)"
if ((dropped > 0)) && (($(sv cached_keys) < N)); then
	pass "records were dropped to stay within the cap ($dropped dropped, $(sv cached_keys) kept)"
else
	fail "no record was dropped with $N items in 1 MB (evictions $dropped, cached_keys $(sv cached_keys))"
fi

# The listing vouches for members whose records were dropped.
gets="$(sv requests_GetItem)"
check_sh_ok "stat of 250 listed names" \
	'for i in $(seq 0 10 "$2"); do stat -c %s "$1/$(printf "item-%05d.json" "$i")" >/dev/null || exit 1; done' \
	"$FH_T/big" "$((N - 1))"
check_eq "stat of listed names costs no GetItem" "$gets" "$(sv requests_GetItem)"
scans="$(sv requests_Scan)"
fh_run ls -A "$FH_T/big"
check_eq "a second ls within cache_ttl is complete" "$want_names" "$(printf '%s' "$FH_OUT" | LC_ALL=C sort)"
check_eq "and costs no Scan" "$scans" "$(sv requests_Scan)"

# Every item's text: st_size equals what is read, the text is the item.
fh_run python3 -c '
import json, os, sys
d, n = sys.argv[1], int(sys.argv[2])
bad = []
for i in range(n):
    p = os.path.join(d, "item-%05d.json" % i)
    size = os.stat(p).st_size
    data = open(p, "rb").read()
    v = json.loads(data)
    if size != len(data) or v.get("pk") != "item-%05d" % i or v.get("n") != i \
            or len(v.get("pad", "")) != 300:
        bad.append("%s: size %d, read %d, %r" % (p, size, len(data), data[:60]))
print(len(bad))
print("\n".join(bad[:5]))
' "$FH_T/big" "$N"
check_eq "every item file reads its item, st_size its length" "0" "$(head -n 1 <<<"$FH_OUT")"
check_within_cap "after reading every item"
for k in 0 1234 2499; do
	key="$(printf 'item-%05d' "$k")"
	fh_run cat "$FH_T/big/$key.json"
	check_eq "$key.json is the checker's plain rendering" \
		"$(ddbc get big "{\"pk\":{\"S\":\"$key\"}}" --plain)"$'\n' "$FH_OUT"
done

# Writes through the small cache.
printf '{"n": -1, "note": "written through a 1 MB cache"}\n' >"$FH_WORK/new.json"
check_ok "cp of a new item into the big table" cp "$FH_WORK/new.json" "$FH_T/big/zz-new.json"
fh_run jq -c .note "$FH_T/big/zz-new.json"
check_eq "it reads back" '"written through a 1 MB cache"'$'\n' "$FH_OUT"
check_eq "checker: it is in DynamoDB" '{"n":-1,"note":"written through a 1 MB cache","pk":"zz-new"}' \
	"$(ddbc get big '{"pk":{"S":"zz-new"}}' --plain | jq -S -c .)"
check_eq "ls shows it with the rest" "$((N + 1))" "$(ls -A "$FH_T/big" | wc -l)"
check_within_cap "after the write"

# Three listings whose names alone exceed the cache: the oldest is
# dropped whole, and listing it again is still complete.
small_names="$(for ((i = 0; i < N; i++)); do printf 'item-%05d.json\n' "$i"; done)"
for t in big2 big3; do
	fh_run ls -A "$FH_T/$t"
	check_eq "ls of $t ($N items) is complete" "$small_names" "$(printf '%s' "$FH_OUT" | LC_ALL=C sort)"
	check_within_cap "after listing $t"
done
if (($(sv listings_dropped) >= 1)); then
	pass "the oldest listing was dropped ($(sv listings_dropped))"
else
	fail "three listings over the cap, and none was dropped" ">= 1" "$(sv listings_dropped)"
fi
fh_run ls -A "$FH_T/big"
check_eq "the dropped listing lists again, complete" "$want_names"$'\nzz-new.json' \
	"$(printf '%s' "$FH_OUT" | LC_ALL=C sort)"
check_within_cap "after listing it again"
fh_unmount

# A listing whose members alone would take half the cache is handed out
# but not kept: still complete and correct, still within the cap.
N2=6000
for ((i = N; i < N2; i++)); do
	printf '{"pk":{"S":"item-%05d"},"n":{"N":"%d"},"pad":{"S":"%s"},"l":{"L":[{"N":"%d.50"},{"BOOL":true}]}}\n' \
		"$i" "$i" "$PAD" "$i"
done | ddbc put-many big
want_names="$(for ((i = 0; i < N2; i++)); do printf 'item-%05d.json\n' "$i"; done; echo zz-new.json)"
fh_mount m2 cache_size=1,cache_ttl=120
fh_run ls -l "$FH_T/big"
check_eq "ls -l of $((N2 + 1)) items, a listing larger than half the cache" "$want_names" \
	"$(printf '%s' "$FH_OUT" | awk 'NR > 1 { print $NF }' | LC_ALL=C sort)"
check_within_cap "after a listing too large to keep"
fh_run ls -A "$FH_T/big"
check_eq "listing it again is complete too" "$want_names" "$(printf '%s' "$FH_OUT" | LC_ALL=C sort)"
check_eq "each listing was a Scan of its own (none was kept)" 2 "$(sv listing_misses)"
fh_run stat -c %s "$FH_T/big/item-05999.json" "$FH_T/big/item-00007.json"
check_eq "stat of names of the large listing" 0 "$FH_RC"
check_py "a name not in the table is ENOENT" ENOENT stat "$FH_T/big/item-99999.json"
check_within_cap "after the lookups"

# Reads that come at once, of items no kept listing holds (xargs -P 8):
# they share BatchGetItem requests (cache/getq.c), and every text is the
# checker's.
for ((i = 0; i < N2; i += 15)); do
	printf '%s/item-%05d.json\n' "$FH_T/big" "$i"
done >"$FH_WORK/paths"
nk="$(wc -l <"$FH_WORK/paths")"
g0="$(sv requests_GetItem)" b0="$(sv requests_BatchGetItem)"
fh_run xargs -a "$FH_WORK/paths" -P 8 -n 10 cat
check_eq "$nk items read by 8 readers at once" 0 "$FH_RC"
check_eq "each text is the item the checker reads" \
	"$(ddbc scan big | jq -S -c 'select(.pk.S | test("^item-")) |
		select((.pk.S[5:] | tonumber) % 15 == 0) |
		{pk: .pk.S, n: (.n.N | tonumber), pad: .pad.S,
		 l: [(.l.L[0].N | tonumber), .l.L[1].BOOL]}' | LC_ALL=C sort)" \
	"$(printf '%s' "$FH_OUT" | jq -S -c . | LC_ALL=C sort)"
g1="$(sv requests_GetItem)" b1="$(sv requests_BatchGetItem)"
if ((${b1:-0} - ${b0:-0} >= 1 && g1 - g0 + b1 - b0 < nk)); then
	pass "concurrent reads were batched: $((g1 - g0)) GetItem + $((b1 - b0)) BatchGetItem for $nk reads"
else
	fail "concurrent reads were not batched" "BatchGetItem >= 1, fewer requests than $nk reads" \
		"GetItem $((g1 - g0)), BatchGetItem $((${b1:-0} - ${b0:-0}))"
fi
check_within_cap "after the concurrent reads"

# A directory closed after its first entries (ls | head, find -quit) ends
# its Scan at the next page instead of reading the whole table: a full
# listing of these 6001 items takes at least 24 pages.
s0="$(sv requests_Scan)"
fh_run python3 -c 'import os, sys
it = os.scandir(sys.argv[1]); next(it); it.close()' "$FH_T/big"
check_eq "open, read one entry, close" 0 "$FH_RC"
sleep 1 # RELEASEDIR reaches the daemon after close() returns
s1="$(sv requests_Scan)"
sleep 1
s2="$(sv requests_Scan)"
if ((s1 - s0 <= 12 && s2 == s1)); then
	pass "closing the directory early stopped its Scan after $((s1 - s0)) pages"
else
	fail "closing the directory early did not stop its Scan" "<= 12 pages, then none" \
		"$((s1 - s0)) pages, then $((s2 - s1)) more"
fi
fh_run ls -A "$FH_T/big"
check_eq "the next listing is complete" "$want_names" "$(printf '%s' "$FH_OUT" | LC_ALL=C sort)"
fh_unmount
fh_summary

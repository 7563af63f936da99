#!/usr/bin/env bash
# contrib/bench.sh: dynfs against the AWS SDK for JavaScript v3 and the AWS
# CLI, on one DynamoDB Local with the same data.  Not a test: it prints
# figures and ratios, writes OUT/results.csv, OUT/raw.csv and OUT/bench.png.
#
#   contrib/bench.sh [--quick] [--out DIR] [--sizes 1000,10000,100000]
#                    [--items N] [--runs N] [--big-runs N] [--cache-size MB]
#                    [--dynfs PATH] [--mount-opts OPTS] [--no-cli]
#                    [--no-floor] [--only c | --only LETTERS]
#
#   (a) ls -l of an N-item table from a fresh mount   vs  a paginated SDK Scan
#   (b) reading every item file from a fresh mount    vs  the same SDK Scan
#   (c) cp of N JSON files into an empty table, until flushed
#                                                     vs  SDK BatchWriteItem, 4 in flight
#   (d) (a) at every size of --sizes, and the daemon's peak RSS (VmHWM)
#
# The FUSE floor: (b) and (c) are also run on floorfs (contrib/floorfs.c,
# built next to dynfs), a FUSE filesystem that answers from memory with
# every round-trip saving on, so the report shows what FUSE alone costs
# here: (b) with the texts pushed into the page cache (OPEN and RELEASE
# per file) and without (OPEN, READ, RELEASE, as dynfs does); (c) with
# bytes dropped, and with an fdatasync per close as dynfs's journal does.
# --no-floor skips it.
#
# --only c measures (c) alone: no table is loaded, (a), (b) and (d) are
# skipped, and only (c) is reported (summary.txt, results.csv; no plot).
# --only with other letters of abcd (e.g. abd) measures those figures;
# (a) always runs with them (the ratios of (b) and (d) need its SDK
# Scan), (d) adds --sizes, and what was skipped is reported as nan.
#
# Each figure is the median of --runs runs (default 3; --big-runs, default
# 1, for tables of 100,000 items or more).  The SDK runs in a new node
# process for every measurement (tests/lib/bench-sdk.mjs); the CLI is
# `aws dynamodb scan` (it follows the pages itself) and
# `aws dynamodb batch-write-item`, 4 at once.  docs/benchmarks.md explains
# the figures.  Everything runs on 127.0.0.1, on free ports, and everything
# started is stopped at exit.
#
# dynfs: --dynfs PATH, else DYNFS_BIN, else build/dynfs.  Options of the
# write-back cache (cache_size) are used only when `dynfs --help` lists them.
set -euo pipefail

usage() {
	sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-0}"
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DYNFS_SOURCE_ROOT="$ROOT"

QUICK=0
OUT=
SIZES=
ITEMS=
RUNS=
BIG_RUNS=1
CACHE_MB=64
DYNFS="${DYNFS_BIN:-$ROOT/build/dynfs}"
MOUNT_OPTS=
CLI=1
FLOOR=1
ONLY=
while (($#)); do
	case "$1" in
	--quick) QUICK=1 ;;
	--out) OUT="${2:?--out needs a directory}"; shift ;;
	--out=*) OUT="${1#*=}" ;;
	--sizes) SIZES="${2:?--sizes needs a list}"; shift ;;
	--sizes=*) SIZES="${1#*=}" ;;
	--items) ITEMS="${2:?--items needs a number}"; shift ;;
	--items=*) ITEMS="${1#*=}" ;;
	--runs) RUNS="${2:?--runs needs a number}"; shift ;;
	--runs=*) RUNS="${1#*=}" ;;
	--big-runs) BIG_RUNS="${2:?}"; shift ;;
	--big-runs=*) BIG_RUNS="${1#*=}" ;;
	--cache-size) CACHE_MB="${2:?}"; shift ;;
	--cache-size=*) CACHE_MB="${1#*=}" ;;
	--dynfs) DYNFS="${2:?}"; shift ;;
	--dynfs=*) DYNFS="${1#*=}" ;;
	--mount-opts) MOUNT_OPTS="${2:?}"; shift ;;
	--mount-opts=*) MOUNT_OPTS="${1#*=}" ;;
	--no-cli) CLI=0 ;;
	--no-floor) FLOOR=0 ;;
	--only) ONLY="${2:?--only needs a figure}"; shift ;;
	--only=*) ONLY="${1#*=}" ;;
	-h | --help) usage 0 ;;
	*) printf 'bench: unknown argument %s\n' "$1" >&2; usage 2 ;;
	esac
	shift
done

if ((QUICK)); then
	: "${ITEMS:=1000}" "${SIZES:=200,1000,3000}" "${RUNS:=1}"
else
	: "${ITEMS:=10000}" "${SIZES:=1000,10000,100000}" "${RUNS:=3}"
fi
: "${OUT:=$ROOT/build/bench}"

. "$ROOT/tests/lib/common.sh"
TL_NAME=bench

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

[[ -z "$ONLY" || "$ONLY" =~ ^[abcd]+$ ]] || die "--only takes letters of abcd (c alone, or e.g. abd), not '$ONLY'"
# want X: figure X is measured (every figure without --only).
want() { [[ -z "$ONLY" || "$ONLY" == *"$1"* ]]; }
for v in ITEMS RUNS BIG_RUNS CACHE_MB; do
	[[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--${v,,} must be a positive number (got '${!v}')"
done
IFS=, read -r -a SIZE_LIST <<<"$SIZES"
for s in "${SIZE_LIST[@]}"; do
	[[ "$s" =~ ^[1-9][0-9]*$ ]] || die "--sizes must be a comma list of positive numbers (got '$SIZES')"
done
# The main size is always measured at (a), and listed once.
mapfile -t SIZE_LIST < <(printf '%s\n' "${SIZE_LIST[@]}" "$ITEMS" | sort -n -u)

((BASH_VERSINFO[0] >= 5)) || die "bash 5 is needed (EPOCHREALTIME)"
[[ -x "$DYNFS" ]] || die "no dynfs at $DYNFS (build it, or give --dynfs PATH / DYNFS_BIN)"
DYNFS="$(realpath "$DYNFS")"
[[ -c /dev/fuse ]] || die "/dev/fuse is missing"
for t in node java fusermount3 curl; do
	command -v "$t" >/dev/null || die "$t is missing (contrib/install-deps.sh installs it)"
done
if ((CLI)) && ! command -v aws >/dev/null; then
	say "the aws CLI is missing: the CLI figures are skipped"
	CLI=0
fi
GNUPLOT=1
command -v gnuplot >/dev/null || { say "gnuplot is missing: no plot"; GNUPLOT=0; }
[[ -d "$ROOT/tests/node_modules/@aws-sdk/client-dynamodb" ]] ||
	npm ci --prefix "$ROOT/tests" --no-audit --no-fund >&2 || die "npm ci --prefix tests failed"

mkdir -p "$OUT"
OUT="$(realpath "$OUT")"

FLOORFS="$(dirname "$DYNFS")/floorfs"
if ((FLOOR)) && [[ ! -x "$FLOORFS" ]]; then
	say "no floorfs next to $DYNFS: the FUSE floor is skipped"
	FLOOR=0
fi

# --- the rig -------------------------------------------------------------------
tl_mktemp_dir
WORK="$TL_TMP"
mkdir -p "$WORK/home" "$WORK/mnt"
export HOME="$WORK/home"
tl_aws_isolate "$WORK"
export AWS_MAX_ATTEMPTS=5
export AWS_ACCESS_KEY_ID=AKIADYNFSBENCH000000
export AWS_SECRET_ACCESS_KEY=dynfs-bench-dummy-secret
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true NODE_NO_WARNINGS=1
unset AWS_SESSION_TOKEN || true

DDB_LOCAL="$ROOT/contrib/dynamodb-local.sh"
EP="$("$DDB_LOCAL" start "$WORK/ddb")" || die "DynamoDB Local did not start"
tl_cleanup_push "'$DDB_LOCAL' stop '$WORK/ddb'"
export BENCH_ENDPOINT="$EP"
SDK="$ROOT/tests/lib/bench-sdk.mjs"
MNT="$WORK/mnt"
TL_MNT="$MNT"

# Options of the write-back cache, when this dynfs has them.
HELP="$("$DYNFS" --help 2>&1 || true)"
has_opt() { grep -q -- "-o $1=" <<<"$HELP"; }
DOPTS="endpoint=$EP,region=us-east-1"
HAS_CACHE_SIZE=0
if has_opt cache_size; then
	HAS_CACHE_SIZE=1
	DOPTS+=",cache_size=$CACHE_MB"
fi
[[ -z "$MOUNT_OPTS" ]] || DOPTS+=",$MOUNT_OPTS"

sdk() { timeout -k 5 1800 node "$SDK" "$@"; }
awsddb() { timeout -k 5 1800 aws --endpoint-url "$EP" --region us-east-1 dynamodb "$@"; }

# --- the daemon ------------------------------------------------------------------
DPID=
cleanup_daemon() {
	tl_unmount "$MNT"
	[[ -z "$DPID" ]] || tl_kill_child "$DPID"
	DPID=
}
tl_cleanup_push cleanup_daemon

# await_mount PID MNT LOG WHAT PROBE...: wait until MNT is mounted and
# the command PROBE succeeds; die with LOG's tail if the daemon PID exits
# or 60 s pass.
await_mount() {
	local pid="$1" mnt="$2" log="$3" what="$4" deadline=$((SECONDS + 60))
	shift 4
	until tl_is_mounted "$mnt" && "$@" >/dev/null 2>&1; do
		if ! tl_pid_running "$pid" || ((SECONDS >= deadline)); then
			tail -n 20 "$log" >&2 || true
			die "$what did not mount"
		fi
		sleep 0.05
	done
}

mount_dynfs() {
	"$DYNFS" -f -o "$DOPTS" "$MNT" </dev/null >>"$WORK/dynfs.out" 2>>"$WORK/dynfs.log" &
	DPID=$!
	await_mount "$DPID" "$MNT" "$WORK/dynfs.log" "dynfs (-o $DOPTS)" ls "$MNT/tables"
}

# Peak RSS of the daemon so far, in MB.
daemon_rss_mb() {
	awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$DPID/status" 2>/dev/null || echo nan
}

unmount_dynfs() {
	fusermount3 -u "$MNT" || { fusermount3 -uz "$MNT" 2>/dev/null || true; }
	if ! tl_wait_exit "$DPID" 600; then
		say "the daemon did not exit within 600 s of the unmount; killing it"
		tl_kill_child "$DPID"
	elif [[ "$TL_EXIT" != 0 ]]; then
		say "warning: the daemon exited with status $TL_EXIT (see $WORK/dynfs.log)"
	fi
	DPID=
}

# --- the FUSE floor (floorfs) -----------------------------------------------------
FPID=
FMNT=
cleanup_floor() {
	[[ -z "$FMNT" ]] || tl_unmount "$FMNT"
	[[ -z "$FPID" ]] || tl_kill_child "$FPID"
	FPID=
}
tl_cleanup_push cleanup_floor

mount_floor() { # OPTS
	FMNT="$WORK/fmnt"
	mkdir -p "$FMNT"
	# -s: one thread answers every request, which measured faster for
	# these one-file-at-a-time workloads than libfuse's thread pool.
	"$FLOORFS" -f -s -o "$1" "$FMNT" </dev/null 2>>"$WORK/floorfs.log" &
	FPID=$!
	# statfs, not ls: a listing would fill the caches before the timing.
	await_mount "$FPID" "$FMNT" "$WORK/floorfs.log" "floorfs (-o $1)" stat -f "$FMNT"
}

unmount_floor() {
	fusermount3 -u "$FMNT" || { fusermount3 -uz "$FMNT" 2>/dev/null || true; }
	tl_wait_exit "$FPID" 60 || tl_kill_child "$FPID"
	FPID=
}

# (b) on floorfs: N files of SIZE bytes, from a fresh mount.
floor_read() { # N SIZE RUN
	local how
	for how in prefill read; do
		mount_floor "items=$1,item_size=$2$([[ $how == prefill ]] && printf ,prefill)"
		start_clock
		find "$FMNT" -name '*.json' -print0 | xargs -0 cat >/dev/null 2>"$WORK/read.err" ||
			say "warning: reading floorfs failed: $(head -c 300 "$WORK/read.err")"
		record read "$1" "floor_$how" "$3" "$(stop_clock)"
		unmount_floor
	done
}

# (c) on floorfs: cp of the files of SRC into a fresh mount.
floor_copy() { # N SRC RUN
	local how
	for how in drop fsync; do
		rm -f "$WORK/floor.journal"
		mount_floor "items=0$([[ $how == fsync ]] && printf ,journal=%s "$WORK/floor.journal")"
		start_clock
		find "$2" -maxdepth 1 -name '*.json' -print0 | xargs -0 cp -t "$FMNT/" 2>"$WORK/cp.err" ||
			say "warning: cp into floorfs failed: $(head -c 300 "$WORK/cp.err")"
		record cp "$1" "floor_$how" "$3" "$(stop_clock)"
		unmount_floor
	done
}

# --- figures -----------------------------------------------------------------------
T0=
start_clock() { T0="$EPOCHREALTIME"; }
stop_clock() { awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }

printf 'measurement,items,tool,run,value,unit\n' >"$OUT/raw.csv"
declare -A MED # "measurement items tool" -> median
declare -A NRUNS
record() { # MEASUREMENT ITEMS TOOL RUN VALUE [UNIT]
	printf '%s,%s,%s,%s,%s,%s\n' "$1" "$2" "$3" "$4" "$5" "${6:-s}" >>"$OUT/raw.csv"
	printf '  %-6s %7s items  %-6s run %s: %s %s\n' "$1" "$2" "$3" "$4" "$5" "${6:-s}" >&2
}
# Median of the recorded runs of MEASUREMENT ITEMS TOOL into MED.
settle() {
	local m
	m="$(awk -F, -v a="$1" -v b="$2" -v c="$3" '$1 == a && $2 == b && $3 == c { print $5 }' "$OUT/raw.csv" |
		sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan";
			else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')"
	MED["$1 $2 $3"]="$m"
	NRUNS["$1 $2 $3"]="$(awk -F, -v a="$1" -v b="$2" -v c="$3" '$1 == a && $2 == b && $3 == c' "$OUT/raw.csv" | wc -l)"
}
runs_for() { # ITEMS
	if (($1 >= 100000)); then echo "$BIG_RUNS"; else echo "$RUNS"; fi
}

# (a)/(d): ls -l from a fresh mount, the SDK Scan, the CLI scan; the
# tools take turns within each run, so a drift of the machine hits all.
bench_list() {
	local n="$1" t r runs lines got
	t="bench_$n"
	runs="$(runs_for "$n")"
	for ((r = 1; r <= runs; r++)); do
		mount_dynfs
		start_clock
		ls -l "$MNT/tables/$t" >"$WORK/ls.out" 2>"$WORK/ls.err" || say "ls -l failed: $(head -c 300 "$WORK/ls.err")"
		record ls "$n" dynfs "$r" "$(stop_clock)"
		lines="$(($(wc -l <"$WORK/ls.out") - 1))"
		((lines == n)) || say "warning: ls -l showed $lines items, not $n"
		record rss_ls "$n" dynfs "$r" "$(daemon_rss_mb)" MB
		unmount_dynfs

		start_clock
		got="$(sdk scan "$t")" || die "the SDK scan of $t failed"
		record scan "$n" sdk "$r" "$(stop_clock)"
		[[ "$got" == "items $n "* ]] || say "warning: the SDK scan saw '$got', not $n items"

		if ((CLI)); then
			start_clock
			awsddb scan --table-name "$t" --output json >"$WORK/cli.out" || die "aws dynamodb scan failed"
			record scan "$n" cli "$r" "$(stop_clock)"
			got="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Count"])' "$WORK/cli.out" 2>/dev/null || echo '?')"
			[[ "$got" == "$n" ]] || say "warning: the CLI scan counted '$got', not $n"
		fi
	done
	settle ls "$n" dynfs
	settle rss_ls "$n" dynfs
	settle scan "$n" sdk
	((CLI)) && settle scan "$n" cli
	return 0
}

# (b): every item file read from a fresh mount.
bench_read() {
	local n="$1" t r rc size=
	t="bench_$n"
	for ((r = 1; r <= RUNS; r++)); do
		mount_dynfs
		start_clock
		rc=0
		find "$MNT/tables/$t" -name '*.json' -print0 | xargs -0 cat >/dev/null 2>"$WORK/read.err" || rc=$?
		record read "$n" dynfs "$r" "$(stop_clock)"
		((rc == 0)) || say "warning: reading the files failed ($rc): $(head -c 300 "$WORK/read.err")"
		record rss_read "$n" dynfs "$r" "$(daemon_rss_mb)" MB
		# The floor's files get the mean size of the items' texts.
		[[ -n "$size" ]] || size="$(find "$MNT/tables/$t" -name '*.json' -printf '%s\n' |
			awk '{ s += $1 } END { if (NR) printf "%d", s / NR }')"
		unmount_dynfs
		if ((FLOOR)); then floor_read "$n" "${size:-400}" "$r"; fi
	done
	settle read "$n" dynfs
	settle rss_read "$n" dynfs
	settle read "$n" floor_prefill
	settle read "$n" floor_read
}

# Wait until the daemon says it has nothing left to write (the write-back
# cache's stats file); 1 when there is no such file.
STATS_SEEN=0
wait_flushed() {
	local f="$MNT/.dynfs/stats" deadline=$((SECONDS + 1800))
	[[ -f "$f" ]] || return 1
	STATS_SEEN=1
	until grep -Eiq 'pending[ _]writes[^0-9]*0([^0-9]|$)' "$f" 2>/dev/null; do
		((SECONDS < deadline)) || { say "warning: $f never said 'pending writes 0'"; return 0; }
		sleep 0.02
	done
}

check_count() { # TABLE N WHO
	local got
	got="$(sdk count "$1")" || got='?'
	[[ "$got" == "$2" ]] || say "warning: after $3, the SDK counts $got items in $1, not $2"
	[[ "$got" == "$2" ]]
}

# (c): cp of N files into an empty table, until flushed.
bench_copy() {
	local n="$1" t=bench_cp r
	sdk gen "$WORK/cpsrc" "$n"
	for ((r = 1; r <= RUNS; r++)); do
		sdk reset "$t"
		mount_dynfs
		start_clock
		find "$WORK/cpsrc" -maxdepth 1 -name '*.json' -print0 |
			xargs -0 cp -t "$MNT/tables/$t/" 2>"$WORK/cp.err" ||
			say "warning: cp failed: $(head -c 300 "$WORK/cp.err")"
		if wait_flushed; then
			record cp "$n" dynfs "$r" "$(stop_clock)"
			record rss_cp "$n" dynfs "$r" "$(daemon_rss_mb)" MB
			unmount_dynfs
		else
			local rss
			rss="$(daemon_rss_mb)"
			unmount_dynfs # fusermount3 -u, then the daemon drains and exits
			record cp "$n" dynfs "$r" "$(stop_clock)"
			record rss_cp "$n" dynfs "$r" "$rss" MB
		fi
		check_count "$t" "$n" "dynfs cp" || record cp_missing "$n" dynfs "$r" 1 flag
		if ((FLOOR)); then floor_copy "$n" "$WORK/cpsrc" "$r"; fi
	done
	for ((r = 1; r <= RUNS; r++)); do
		sdk reset "$t"
		start_clock
		sdk write-dir "$t" "$WORK/cpsrc" 4 || die "the SDK's BatchWriteItem failed"
		record cp "$n" sdk "$r" "$(stop_clock)"
		check_count "$t" "$n" "the SDK's BatchWriteItem" || true
	done
	if ((CLI)); then
		sdk cli-batches "$WORK/cpsrc" "$WORK/clibatches" "$t"
		for ((r = 1; r <= RUNS; r++)); do
			sdk reset "$t"
			start_clock
			find "$WORK/clibatches" -name 'batch-*.json' -print0 |
				xargs -0 -P 4 -I '{}' timeout -k 5 600 aws --endpoint-url "$EP" --region us-east-1 \
					dynamodb batch-write-item --request-items 'file://{}' --output json >/dev/null ||
				say "warning: some aws dynamodb batch-write-item failed"
			record cp "$n" cli "$r" "$(stop_clock)"
			check_count "$t" "$n" "the CLI's batch-write-item" || true
		done
	fi
	settle cp "$n" dynfs
	settle rss_cp "$n" dynfs
	settle cp "$n" sdk
	settle cp "$n" floor_drop
	settle cp "$n" floor_fsync
	((CLI)) && settle cp "$n" cli
	return 0
}

# --- run ----------------------------------------------------------------------------
say "dynfs $DYNFS (-o $DOPTS)"
say "DynamoDB Local $EP; sizes ${SIZE_LIST[*]}; main size $ITEMS; runs $RUNS (big: $BIG_RUNS); CLI $([[ $CLI == 1 ]] && echo yes || echo no)"
((HAS_CACHE_SIZE)) || say "this dynfs has no -o cache_size: the RSS goal is reported against $CACHE_MB MB anyway"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || b + 0 == 0) print "nan"; else printf "%.2f", a / b }'; }
meets() { awk -v r="$1" -v g="$2" 'BEGIN { if (r == "nan") print "?"; else print (r + 0 <= g + 0 ? "yes" : "NO") }'; }

# The floor's rows of results.csv and of the summary, for the figures
# given (b, c): how fast a FUSE filesystem that does nothing is here.
# Each row: figure letter, measurement, floor tool, baseline, label.
FLOOR_ROWS=(
	"b read floor_prefill scan (b) read all, texts prefilled: OPEN+RELEASE"
	"b read floor_read scan (b) read all, with READ (as dynfs)"
	"c cp floor_drop cp (c) cp, bytes dropped"
	"c cp floor_fsync cp (c) cp, fdatasync per close (as dynfs)"
)
floor_csv() { # N LETTERS
	local n="$1" row fig m tool base label
	((FLOOR)) || return 0
	for row in "${FLOOR_ROWS[@]}"; do
		read -r fig m tool base label <<<"$row"
		[[ "$2" == *"$fig"* ]] || continue
		printf '%s,%s,%s,%s,s,%s,%s,,\n' "$([[ $fig == b ]] && echo b_read || echo c_cp)" "$n" "$tool" \
			"${MED["$m $n $tool"]}" "${NRUNS["$m $n $tool"]}" "$(ratio "${MED["$m $n $tool"]}" "${MED["$base $n sdk"]}")"
	done
}
floor_summary() { # N LETTERS
	local n="$1" row fig m tool base label
	((FLOOR)) || return 0
	printf '\nThe FUSE floor: floorfs, a FUSE filesystem that answers from memory\n'
	printf '%-46s %8s %8s %9s %6s %11s\n' figure floor sdk floor/sdk goal dynfs/floor
	for row in "${FLOOR_ROWS[@]}"; do
		read -r fig m tool base label <<<"$row"
		[[ "$2" == *"$fig"* ]] || continue
		printf '%-46s %8s %8s %9s %6s %11s\n' "$label" "${MED["$m $n $tool"]}" "${MED["$base $n sdk"]}" \
			"$(ratio "${MED["$m $n $tool"]}" "${MED["$base $n sdk"]}")" "$([[ $fig == b ]] && echo '<=1.2' || echo '<=1.0')" \
			"$(ratio "${MED["$m $n dynfs"]}" "${MED["$m $n $tool"]}")"
	done
}

if [[ "$ONLY" == c ]]; then
	# Warm-up, not timed: DynamoDB Local's JIT for what both tools do
	# (BatchWriteItem; dynfs's BatchGetItem and Scan), node's caches, the
	# page cache of the dynfs binary.  Without it the first dynfs run is
	# 1-2 s slower than the others (the full run's (a) and (b) warm up).
	say "warming up"
	sdk gen "$WORK/cpsrc" "$ITEMS"
	sdk reset bench_cp
	sdk write-dir bench_cp "$WORK/cpsrc" 4 || die "the SDK's BatchWriteItem failed"
	sdk reset bench_cp
	mount_dynfs
	find "$WORK/cpsrc" -maxdepth 1 -name '*.json' -print0 |
		xargs -0 cp -t "$MNT/tables/bench_cp/" 2>/dev/null || true
	wait_flushed || true
	unmount_dynfs
	say "(c) copying $ITEMS files in"
	bench_copy "$ITEMS"
	N="$ITEMS"
	RC="$(ratio "${MED["cp $N dynfs"]}" "${MED["cp $N sdk"]}")"
	{
		printf 'measurement,items,tool,median,unit,runs,ratio_vs_sdk,goal,meets_goal\n'
		printf 'c_cp,%s,dynfs,%s,s,%s,%s,1.0,%s\n' "$N" "${MED["cp $N dynfs"]}" "${NRUNS["cp $N dynfs"]}" "$RC" "$(meets "$RC" 1.0)"
		printf 'c_cp,%s,sdk_batch4,%s,s,%s,1,,\n' "$N" "${MED["cp $N sdk"]}" "${NRUNS["cp $N sdk"]}"
		((CLI)) && printf 'c_cp,%s,cli_batch4,%s,s,%s,%s,,\n' "$N" "${MED["cp $N cli"]}" "${NRUNS["cp $N cli"]}" \
			"$(ratio "${MED["cp $N cli"]}" "${MED["cp $N sdk"]}")"
		printf 'c_rss_cp,%s,dynfs,%s,MB,%s,,,\n' "$N" "${MED["rss_cp $N dynfs"]}" "${NRUNS["rss_cp $N dynfs"]}"
		floor_csv "$N" c
		true
	} >"$OUT/results.csv"
	{
		printf '\ndynfs benchmark, (c) only  (%s items; medians of %s runs; %s)\n' "$N" "$RUNS" "$(date -u +%Y-%m-%dT%H:%MZ)"
		printf 'dynfs: %s  -o %s\n' "$DYNFS" "${DOPTS/endpoint=$EP,/}"
		((STATS_SEEN)) && printf '(c) timed until MOUNT/.dynfs/stats said pending writes 0\n' ||
			printf '(c) timed until fusermount3 -u returned and the daemon exited (no MOUNT/.dynfs/stats)\n'
		printf '\n%-40s %10s %10s %10s %8s %7s %5s\n' figure dynfs sdk cli ratio goal ok
		printf '%-40s %10s %10s %10s %8s %7s %5s\n' "(c) cp until flushed vs Batch x4 (s)" \
			"${MED["cp $N dynfs"]}" "${MED["cp $N sdk"]}" "$( ((CLI)) && printf '%s' "${MED["cp $N cli"]}" || printf nan)" \
			"$RC" "<=1.0" "$(meets "$RC" 1.0)"
		printf '%-40s %10s MB\n' "(c) daemon peak RSS" "${MED["rss_cp $N dynfs"]}"
		floor_summary "$N" c
		printf '\nresults: %s/results.csv (medians), %s/raw.csv (every run)\n' "$OUT" "$OUT"
	} | tee "$OUT/summary.txt"
	exit 0
fi

# Without (d), (a) is measured at the main size only.
want d || SIZE_LIST=("$ITEMS")
for n in "${SIZE_LIST[@]}"; do
	say "loading bench_$n ($n items)"
	start_clock
	sdk reset "bench_$n"
	sdk load "bench_$n" "$n" 8 || die "loading bench_$n failed"
	say "  loaded in $(stop_clock) s"
done
# Warm-up, not timed: DynamoDB Local's JIT, node's and the CLI's caches,
# the page cache of the dynfs binary.
say "warming up"
for n in "${SIZE_LIST[@]}"; do
	sdk scan "bench_$n" >/dev/null
done
mount_dynfs
ls -l "$MNT/tables/bench_${SIZE_LIST[0]}" >/dev/null 2>&1 || true
unmount_dynfs
((CLI == 0)) || awsddb list-tables >/dev/null

for n in "${SIZE_LIST[@]}"; do
	say "(a/d) listing $n items"
	bench_list "$n"
done
if want b; then
	say "(b) reading $ITEMS items"
	bench_read "$ITEMS"
else
	MED["read $ITEMS dynfs"]=nan MED["rss_read $ITEMS dynfs"]=nan
	NRUNS["read $ITEMS dynfs"]=0 NRUNS["rss_read $ITEMS dynfs"]=0
fi
if want c; then
	say "(c) copying $ITEMS files in"
	bench_copy "$ITEMS"
else
	for k in "cp $ITEMS dynfs" "rss_cp $ITEMS dynfs" "cp $ITEMS sdk" "cp $ITEMS cli"; do
		MED["$k"]=nan NRUNS["$k"]=0
	done
fi

# --- report --------------------------------------------------------------------------
FLOOR_FIGS="$(want b && printf b)$(want c && printf c)"

N="$ITEMS"
BIG="${SIZE_LIST[-1]}"
RA="$(ratio "${MED["ls $N dynfs"]}" "${MED["scan $N sdk"]}")"
RB="$(ratio "${MED["read $N dynfs"]}" "${MED["scan $N sdk"]}")"
RC="$(ratio "${MED["cp $N dynfs"]}" "${MED["cp $N sdk"]}")"
RSS="${MED["rss_ls $BIG dynfs"]}"
RSS_GOAL=$((CACHE_MB + 64))
cli_of() { if ((CLI)); then printf '%s' "${MED["$1"]}"; else printf 'nan'; fi; }

{
	printf 'measurement,items,tool,median,unit,runs,ratio_vs_sdk,goal,meets_goal\n'
	for n in "${SIZE_LIST[@]}"; do
		r="$(ratio "${MED["ls $n dynfs"]}" "${MED["scan $n sdk"]}")"
		printf 'a_ls,%s,dynfs,%s,s,%s,%s,0.8,%s\n' "$n" "${MED["ls $n dynfs"]}" "${NRUNS["ls $n dynfs"]}" "$r" "$(meets "$r" 0.8)"
		printf 'a_ls,%s,sdk_scan,%s,s,%s,1,,\n' "$n" "${MED["scan $n sdk"]}" "${NRUNS["scan $n sdk"]}"
		((CLI)) && printf 'a_ls,%s,cli_scan,%s,s,%s,%s,,\n' "$n" "${MED["scan $n cli"]}" "${NRUNS["scan $n cli"]}" \
			"$(ratio "${MED["scan $n cli"]}" "${MED["scan $n sdk"]}")"
		printf 'd_rss_ls,%s,dynfs,%s,MB,%s,,%s,%s\n' "$n" "${MED["rss_ls $n dynfs"]}" "${NRUNS["rss_ls $n dynfs"]}" \
			"$RSS_GOAL" "$(awk -v v="${MED["rss_ls $n dynfs"]}" -v g="$RSS_GOAL" 'BEGIN { print (v + 0 <= g ? "yes" : "NO") }')"
	done
	printf 'b_read,%s,dynfs,%s,s,%s,%s,1.2,%s\n' "$N" "${MED["read $N dynfs"]}" "${NRUNS["read $N dynfs"]}" "$RB" "$(meets "$RB" 1.2)"
	printf 'b_read,%s,sdk_scan,%s,s,%s,1,,\n' "$N" "${MED["scan $N sdk"]}" "${NRUNS["scan $N sdk"]}"
	((CLI)) && printf 'b_read,%s,cli_scan,%s,s,%s,%s,,\n' "$N" "${MED["scan $N cli"]}" "${NRUNS["scan $N cli"]}" \
		"$(ratio "${MED["scan $N cli"]}" "${MED["scan $N sdk"]}")"
	printf 'c_cp,%s,dynfs,%s,s,%s,%s,1.0,%s\n' "$N" "${MED["cp $N dynfs"]}" "${NRUNS["cp $N dynfs"]}" "$RC" "$(meets "$RC" 1.0)"
	printf 'c_cp,%s,sdk_batch4,%s,s,%s,1,,\n' "$N" "${MED["cp $N sdk"]}" "${NRUNS["cp $N sdk"]}"
	((CLI)) && printf 'c_cp,%s,cli_batch4,%s,s,%s,%s,,\n' "$N" "${MED["cp $N cli"]}" "${NRUNS["cp $N cli"]}" \
		"$(ratio "${MED["cp $N cli"]}" "${MED["cp $N sdk"]}")"
	printf 'b_rss_read,%s,dynfs,%s,MB,%s,,,\n' "$N" "${MED["rss_read $N dynfs"]}" "${NRUNS["rss_read $N dynfs"]}"
	printf 'c_rss_cp,%s,dynfs,%s,MB,%s,,,\n' "$N" "${MED["rss_cp $N dynfs"]}" "${NRUNS["rss_cp $N dynfs"]}"
	floor_csv "$N" "$FLOOR_FIGS"
	true
} >"$OUT/results.csv"

{
	printf '\ndynfs benchmark  (%s items; medians of %s runs, %s at >= 100k; %s)\n' "$N" "$RUNS" "$BIG_RUNS" "$(date -u +%Y-%m-%dT%H:%MZ)"
	printf 'dynfs: %s  -o %s\n' "$DYNFS" "${DOPTS/endpoint=$EP,/}"
	((STATS_SEEN)) && printf '(c) timed until MOUNT/.dynfs/stats said pending writes 0\n' ||
		printf '(c) timed until fusermount3 -u returned and the daemon exited (no MOUNT/.dynfs/stats)\n'
	printf '\n%-40s %10s %10s %10s %8s %7s %5s\n' figure dynfs sdk cli ratio goal ok
	printf '%-40s %10s %10s %10s %8s %7s %5s\n' "(a) ls -l, fresh mount vs Scan (s)" \
		"${MED["ls $N dynfs"]}" "${MED["scan $N sdk"]}" "$(cli_of "scan $N cli")" "$RA" "<=0.8" "$(meets "$RA" 0.8)"
	printf '%-40s %10s %10s %10s %8s %7s %5s\n' "(b) read all, fresh mount vs Scan (s)" \
		"${MED["read $N dynfs"]}" "${MED["scan $N sdk"]}" "$(cli_of "scan $N cli")" "$RB" "<=1.2" "$(meets "$RB" 1.2)"
	printf '%-40s %10s %10s %10s %8s %7s %5s\n' "(c) cp until flushed vs Batch x4 (s)" \
		"${MED["cp $N dynfs"]}" "${MED["cp $N sdk"]}" "$(cli_of "cp $N cli")" "$RC" "<=1.0" "$(meets "$RC" 1.0)"
	printf '\n(d) ls -l by table size (s), and the daemon peak RSS (VmHWM, MB)%s\n' \
		"$( ((HAS_CACHE_SIZE)) && printf ' with -o cache_size=%s' "$CACHE_MB" || printf ' (this dynfs has no cache_size)')"
	printf '%-10s %10s %10s %10s %8s %10s\n' items dynfs sdk cli ratio "rss MB"
	for n in "${SIZE_LIST[@]}"; do
		printf '%-10s %10s %10s %10s %8s %10s\n' "$n" "${MED["ls $n dynfs"]}" "${MED["scan $n sdk"]}" \
			"$(cli_of "scan $n cli")" "$(ratio "${MED["ls $n dynfs"]}" "${MED["scan $n sdk"]}")" "${MED["rss_ls $n dynfs"]}"
	done
	printf '%-40s %10s MB   goal <= %s MB (cache_size + 64)  %s\n' "(d) peak RSS at $BIG items" "$RSS" "$RSS_GOAL" \
		"$(awk -v v="$RSS" -v g="$RSS_GOAL" 'BEGIN { print (v + 0 <= g ? "yes" : "NO") }')"
	floor_summary "$N" "$FLOOR_FIGS"
	printf '\nresults: %s/results.csv (medians), %s/raw.csv (every run)\n' "$OUT" "$OUT"
} | tee "$OUT/summary.txt"

# --- plot ------------------------------------------------------------------------------
if ((GNUPLOT)); then
	for n in "${SIZE_LIST[@]}"; do
		printf '%s %s %s %s\n' "$n" "${MED["ls $n dynfs"]}" "${MED["scan $n sdk"]}" "$(cli_of "scan $n cli")"
	done >"$OUT/ls_by_size.dat"
	{
		printf '"(a) ls -l" %s 0.8\n' "$RA"
		printf '"(b) read all" %s 1.2\n' "$RB"
		printf '"(c) cp" %s 1.0\n' "$RC"
	} >"$OUT/ratios.dat"
	clicurve=
	((CLI)) && clicurve=", '$OUT/ls_by_size.dat' using 1:4 with linespoints lw 2 pt 9 title 'AWS CLI scan'"
	if gnuplot >"$WORK/gnuplot.log" 2>&1 <<EOF; then
set terminal pngcairo size 1200,500 font ',10'
set output '$OUT/bench.png'
set datafile missing 'nan'
set multiplot layout 1,2 title 'dynfs benchmark ($N items, DynamoDB Local)'
set title '(a)/(d) ls -l from a fresh mount vs a full Scan'
set logscale xy
set xlabel 'items in the table'
set ylabel 'seconds (median)'
set key bottom right
set grid
plot '$OUT/ls_by_size.dat' using 1:2 with linespoints lw 2 pt 7 title 'dynfs ls -l', \
     '$OUT/ls_by_size.dat' using 1:3 with linespoints lw 2 pt 5 title 'SDK v3 Scan (new node process)'$clicurve
unset logscale
set title 'dynfs time / SDK time (lower is better)'
set xlabel ''
set ylabel 'ratio'
set style data histograms
set style fill solid 0.6 border -1
set boxwidth 0.6
set yrange [0:*]
set offsets 0, 0, graph 0.1, 0
set key top left
plot '$OUT/ratios.dat' using 2:xtic(1) title 'dynfs / SDK' lc rgb '#3070b0', \
     '' using 0:3 with points pt 7 ps 2 lc rgb '#c03030' title 'goal (at most)', \
     '' using 0:2:(sprintf('%.2f', \$2)) with labels offset 0,0.8 notitle
unset multiplot
EOF
		say "plot: $OUT/bench.png"
	else
		say "gnuplot failed: $(head -c 400 "$WORK/gnuplot.log")"
	fi
fi

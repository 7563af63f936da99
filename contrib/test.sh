#!/usr/bin/env bash
# contrib/test.sh: THE one command that runs every dynfs test (.ci/run runs
# exactly this).
#
#   0. contrib/install-deps.sh
#   1. build-test: -Dwerror=true; every suite (unit, integration, mount)
#   2. build-asan: AddressSanitizer + UndefinedBehaviorSanitizer (with
#      LeakSanitizer), -Dwerror=true; every suite again
#   3. build-test's unit suite under valgrind memcheck, then the mount
#      suite with the dynfs daemon under valgrind
#
# Prints a summary and, as its last line, "N passed, N failed" (totals of
# the three runs; a build step that fails counts as one failure).  Exits
# non-zero when anything failed.  Extra arguments are passed to every
# `meson test` (e.g. --suite unit); DYNFS_TEST_STAGES=1,3 picks stages.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

stages="${DYNFS_TEST_STAGES:-1,2,3}"
jobs="${DYNFS_TEST_JOBS:-$(nproc 2>/dev/null || echo 2)}"
t0=$SECONDS
total_pass=0
total_fail=0
total_skip=0
summary=()
failed_lines=()

banner() {
	printf '\n===== %s =====\n' "$*"
}

want_stage() {
	[[ ",$stages," == *",$1,"* ]]
}

note() { # LABEL PASS FAIL SKIP SECONDS [EXTRA]
	total_pass=$((total_pass + $2))
	total_fail=$((total_fail + $3))
	total_skip=$((total_skip + $4))
	summary+=("$(printf '%-34s %4d passed, %3d failed, %3d skipped  (%ds)%s' \
		"$1" "$2" "$3" "$4" "$5" "${6:+  $6}")")
}

# setup_build DIR OPTIONS...: meson setup, reusing DIR when it exists.
setup_build() {
	local dir="$1"
	shift
	if [[ -f "$dir/build.ninja" ]]; then
		meson setup --reconfigure "$dir" "$@" ||
			meson setup --wipe "$dir" "$@"
	else
		rm -rf "$dir"
		meson setup "$dir" "$@"
	fi
}

# build LABEL DIR OPTIONS...: setup and compile; counts a failure itself.
build() {
	local label="$1" dir="$2" t=$SECONDS
	shift 2
	banner "$label: meson setup $dir $*"
	if ! setup_build "$dir" "$@"; then
		note "$label: meson setup" 0 1 0 $((SECONDS - t)) "FAILED"
		return 1
	fi
	banner "$label: compile"
	if ! meson compile -C "$dir" -j "$jobs"; then
		note "$label: compile" 0 1 0 $((SECONDS - t)) "FAILED"
		return 1
	fi
	return 0
}

# run_tests LABEL DIR LOGBASE MESON-TEST-ARGS...: run meson test and count
# the results from its JSON log.
run_tests() {
	local label="$1" dir="$2" logbase="$3" t=$SECONDS rc=0 log pass fail skip
	shift 3
	# meson adds "-<wrapper>" to the log's name when a wrapper is used.
	rm -f "$dir/meson-logs/$logbase".json "$dir/meson-logs/$logbase"-*.json
	banner "$label: meson test $*"
	meson test -C "$dir" --no-rebuild --print-errorlogs --logbase "$logbase" \
		--num-processes "$jobs" "$@" || rc=$?
	# shellcheck disable=SC2012 # names are ours, no odd characters
	log="$(ls -t "$dir/meson-logs/$logbase".json "$dir/meson-logs/$logbase"-*.json \
		2>/dev/null | head -n 1)" || true
	if [[ -z "$log" || ! -s "$log" ]]; then
		note "$label" 0 1 0 $((SECONDS - t)) "meson test did not run (status $rc)"
		return
	fi
	pass="$(jq -s '[.[] | select(.result == "OK" or .result == "EXPECTEDFAIL")] | length' "$log")"
	skip="$(jq -s '[.[] | select(.result == "SKIP")] | length' "$log")"
	fail="$(jq -s '[.[] | select(.result != "OK" and .result != "EXPECTEDFAIL" and .result != "SKIP")] | length' "$log")"
	if [[ "$rc" != 0 && "$fail" == 0 ]]; then
		fail=1 # meson test failed without a failed test: count it
	fi
	note "$label" "$pass" "$fail" "$skip" $((SECONDS - t))
	if [[ "$fail" != 0 ]]; then
		summary+=("$(jq -r -s '.[] | select(.result != "OK" and .result != "EXPECTEDFAIL" and .result != "SKIP") | "    \(.result): \(.name)"' "$log")")
		# CI keeps only the end of the output: the summary repeats
		# each failed test's own failure lines (and what follows
		# them), so one run is enough to see why.
		failed_lines+=("$(jq -r -s '.[] | select(.result != "OK" and .result != "EXPECTEDFAIL" and .result != "SKIP") | "--- \(.name) (\(.result))\n\(.stdout // "")\(.stderr // "")"' "$log" |
			grep -E -A6 '^--- |FAIL|FATAL|ERROR|[Ee]rror:|runtime error|Assertion|^==[0-9]+==|timed out' |
			head -n 60 || true)")
	fi
}

banner "install-deps"
if ! contrib/install-deps.sh; then
	note "install-deps" 0 1 0 0 "FAILED"
fi
command -v jq >/dev/null || {
	echo "contrib/test.sh: jq is required" >&2
	exit 1
}

# Every test source must be registered in its meson.build: meson does not
# glob, and a test that is never run passes silently.
unregistered=()
for f in tests/unit/test_*.c tests/integration/test_*.c tests/mount/test_*.sh; do
	[[ -e "$f" ]] || continue
	stem="$(basename "$f")"
	stem="${stem#test_}"
	stem="${stem%.*}"
	if ! grep -Eq "'(test_)?${stem}(\.c|\.sh)?'" "$(dirname "$f")/meson.build"; then
		unregistered+=("$f")
	fi
done
if ((${#unregistered[@]} > 0)); then
	note "test registration" 0 "${#unregistered[@]}" 0 0 "not in meson.build: ${unregistered[*]}"
fi

# Sanitizer settings for stage 2 (the mount tests also grep the daemon's
# stderr for any report, see tests/lib/common.sh).
lsan_supp="$root/tests/lsan.supp"
export_sanitizer_env() {
	export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:print_summary=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
	export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:print_summary=1"
	local lsan="print_suppressions=0"
	[[ -f "$lsan_supp" ]] && lsan="suppressions=$lsan_supp:$lsan"
	export LSAN_OPTIONS="$lsan"
}

# 1. The plain build, warnings as errors, every suite.
if want_stage 1; then
	if build "1 build-test" build-test -Dwerror=true; then
		run_tests "1 build-test: all suites" build-test testlog-all "$@"
	fi
fi

# 2. ASan + UBSan (+ LSan), every suite but 'rig' (the emulator's and the
# fault proxy's self-tests run no dynfs code).
if want_stage 2; then
	if build "2 build-asan" build-asan -Db_sanitize=address,undefined \
		-Db_lundef=false -Dwerror=true; then
		export_sanitizer_env
		run_tests "2 build-asan: all suites but the rig's" build-asan \
			testlog-asan --no-suite rig --timeout-multiplier 2 "$@"
		unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
	fi
fi

# 3. valgrind memcheck (definite leaks are errors): the unit suite, and
# the daemon in the mount suite.
if want_stage 3; then
	if [[ -f build-test/build.ninja ]] || build "3 build-test" build-test -Dwerror=true; then
		if ! meson compile -C build-test -j "$jobs" >/dev/null; then
			note "3 valgrind: compile" 0 1 0 0 "FAILED"
		else
			vg="valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite --track-origins=yes --quiet"
			[[ -f "$root/tests/valgrind.supp" ]] && vg+=" --suppressions=$root/tests/valgrind.supp"
			run_tests "3 valgrind: unit" build-test testlog-valgrind \
				--suite unit --timeout-multiplier 10 --wrapper "$vg" "$@"
			# The mount tests run the daemon itself under valgrind
			# (tests/lib/common.sh: DYNFS_TEST_WRAPPER) and fail on
			# any report in its output or a non-zero exit.
			# Only the tests in suite 'vg' (a cross-section of the
			# mount suite: every subsystem once) keep the whole run
			# within CI's 15 minutes.
			DYNFS_TEST_WRAPPER="$vg" run_tests "3 valgrind: mount (daemon)" \
				build-test testlog-valgrind-mount --suite vg \
				--timeout-multiplier 3 "$@"
		fi
	fi
fi

if ((${#failed_lines[@]} > 0)); then
	banner "why the failed tests failed"
	printf '%s\n' "${failed_lines[@]}"
fi
banner "summary"
for line in "${summary[@]}"; do
	printf '%s\n' "$line"
done
elapsed=$((SECONDS - t0))
printf 'total time %dm%02ds; %d skipped\n' $((elapsed / 60)) $((elapsed % 60)) "$total_skip"
printf '%d passed, %d failed\n' "$total_pass" "$total_fail"
[[ "$total_fail" == 0 ]]

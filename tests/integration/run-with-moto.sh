#!/usr/bin/env bash
# run-with-moto.sh TEST [ARGS...]: start moto with SigV4 verification on
# (tests/lib/moto-auth.sh makes the IAM user, role and a table), export
# DYNFS_TEST_MOTO_ENDPOINT, DYNFS_TEST_AK/SK, DYNFS_TEST_STS_AK/SK/TOKEN and
# DYNFS_TEST_MOTO_TABLE, run TEST, and stop moto whatever happens.
set -euo pipefail

if [[ -z "${DYNFS_SOURCE_ROOT:-}" ]]; then
	DYNFS_SOURCE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fi
# shellcheck source=/dev/null
. "$DYNFS_SOURCE_ROOT/tests/lib/common.sh"
# shellcheck source=/dev/null
. "$DYNFS_SOURCE_ROOT/tests/lib/moto-auth.sh"

[[ $# -ge 1 ]] || tl_die "usage: $0 TEST [ARGS...]"

tl_mktemp_dir
work="$TL_TMP"
tl_moto_auth_start "$work"
tl_log "moto at $DYNFS_TEST_MOTO_ENDPOINT with authentication on"

rc=0
"$@" || rc=$?
if [[ $rc -ne 0 ]]; then
	tl_log "test exited with $rc; last lines of the moto log:"
	tail -n 20 "$work/moto/log" >&2 || true
fi
exit "$rc"

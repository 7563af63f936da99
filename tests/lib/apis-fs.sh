# shellcheck shell=bash
# shellcheck disable=SC2034 # AF_* and TL_MNT are read by the tests and common.sh
# shellcheck disable=SC2089,SC2090 # AF_XA_PY is a python program, passed whole
# tests/lib/apis-fs.sh: helpers of the apis/ and functions/ mount tests
# (tests/mount/test_apis_*.sh).  Source it after common.sh, fs-helpers.sh
# and apis-env.sh:
#
#     af_setup               DynamoDB Local (a mount needs it), moto and the
#                            execute-api / Lambda emulator, the test APIs
#     af_mount NAME [OPTS]   mount at $FH_WORK/NAME with -d and the
#                            emulator's endpoints (apis_connect, apis_cafile,
#                            apigw_endpoint, apigwv2_endpoint,
#                            lambda_endpoint; none of these three with
#                            AF_ENV_ENDPOINTS=1); the daemon's stderr (the -d
#                            log) is $FH_LOG.  Sets FH_MNT, AF_APIS, AF_FNS.
#     af_xa get|set|list|rm FILE [NAME [VALUE]]
#                            extended attributes through python3 (no attr
#                            package needed), as getfattr/setfattr would
#
# Response xattrs follow the per-process rule of docs/apis.md: the reader
# must be the process that invoked, its parent, or its sibling.  So a check
# runs the invocation and the xattr read in one `fh_sh` script, where both
# are children of the same shell (fh_run's timeout(1) would sit between).

AF_XA_PY='
import os, sys
op, path = sys.argv[1], sys.argv[2]
try:
    if op == "get":
        sys.stdout.write(os.getxattr(path, sys.argv[3]).decode())
    elif op == "set":
        os.setxattr(path, sys.argv[3], sys.argv[4].encode())
    elif op == "list":
        for n in os.listxattr(path):
            print(n)
    elif op == "rm":
        os.removexattr(path, sys.argv[3])
except OSError as e:
    sys.stderr.write("xattr: " + os.strerror(e.errno) + "\n")
    sys.exit(1)
'
export AF_XA_PY

af_xa() {
	python3 -c "$AF_XA_PY" "$@"
}
export -f af_xa

af_setup() {
	fh_setup
	tl_apis_start "$FH_WORK/apis"
	tl_apis_define
	tl_log "APIs: shop $DYNFS_TEST_API_SHOP, shop $DYNFS_TEST_API_SHOP2, inventory $DYNFS_TEST_API_INVENTORY, chat $DYNFS_TEST_API_CHAT"
}

FH_MNT=
FH_LOG=
AF_APIS=
AF_FNS=
af_mount() {
	local name="$1" opts="${2:-}" all
	all="endpoint=$FH_EP,region=us-east-1"
	all+=",apis_connect=$DYNFS_TEST_APIS_CONNECT,apis_cafile=$DYNFS_TEST_APIS_CAFILE"
	# AF_ENV_ENDPOINTS=1: the endpoints come from the environment.
	if [[ "${AF_ENV_ENDPOINTS:-0}" != 1 ]]; then
		all+=",apigw_endpoint=$DYNFS_TEST_MOTO_ENDPOINT,apigwv2_endpoint=$DYNFS_TEST_MOTO_ENDPOINT"
		all+=",lambda_endpoint=$DYNFS_TEST_LAMBDA_ENDPOINT"
	fi
	all+="${opts:+,$opts}"
	FH_MNT="$FH_WORK/$name"
	FH_T="$FH_MNT/tables"
	FH_LOG="$FH_WORK/$name.log"
	AF_APIS="$FH_MNT/apis"
	AF_FNS="$FH_MNT/functions"
	mkdir -p "$FH_MNT"
	TL_MNT="$FH_MNT"
	tl_start_daemon "$FH_WORK/$name.out" "$FH_LOG" -d -o "$all" "$FH_MNT"
	if ! tl_mount_wait "$FH_MNT" 30; then
		tail -n 30 "$FH_LOG" >&2 || true
		fh_fatal "dynfs did not mount at $FH_MNT (options '$opts') within 30 s"
	fi
	tl_log "mounted $FH_MNT${opts:+ with -o $opts}"
}

# af_json WHAT FILTER EXPECTED: jq -c FILTER of $FH_OUT equals EXPECTED.
af_json() {
	local got
	got="$(jq -c "$2" <<<"$FH_OUT" 2>&1)" || got="not JSON: $(head -c 300 <<<"$FH_OUT")"
	check_eq "$1" "$3" "$got"
}

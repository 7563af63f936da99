#!/usr/bin/env bash
# WebSocket APIs (docs/apis.md): apis/chat/prod/socket is one connection
# per open (presigned, as the chat API's $connect is AWS_IAM): each write
# sends one message, read returns the messages newline-delimited and
# blocks like a pipe, close disconnects; poll(2) says when a message is
# there.  The emulator's echo route answers; its log shows the
# connections.
# shellcheck disable=SC2016 # single-quoted scripts for bash -c are deliberate
set -euo pipefail
. "${DYNFS_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/fs-helpers.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/apis-env.sh"
. "$DYNFS_SOURCE_ROOT/tests/lib/apis-fs.sh"

af_setup
af_mount m1
S="$AF_APIS/chat/prod/socket"

check_ls "the WebSocket API's stage" "$AF_APIS/chat" prod
check_ls "a stage holds the socket file" "$AF_APIS/chat/prod" socket

fh_sh 'exec 3<>"$1"; echo "{\"action\":\"echo\",\"x\":1}" >&3; head -n1 <&3' "$S"
check_eq "exec 3<>socket; echo >&3; head -n1 <&3" '{"action":"echo","x":1}' "${FH_OUT%$'\n'}"
fh_sh 'exec 3<>"$1"; echo "{\"times\":3}" >&3; head -n3 <&3; echo "{\"action\":\"echo\",\"y\":2}" >&3; head -n1 <&3' "$S"
check_eq "several answers, then another round trip on the same connection" \
	$'{"times":3,"seq":1}\n{"times":3,"seq":2}\n{"times":3,"seq":3}\n{"action":"echo","y":2}' "${FH_OUT%$'\n'}"
fh_sh 'exec 3<>"$1"; echo "{\"times\":2,\"close\":true}" >&3; cat <&3; echo "rc=$?"' "$S"
check_eq "the server closing ends cat with status 0" \
	$'{"times":2,"close":true,"seq":1}\n{"times":2,"close":true,"seq":2}\nrc=0' "${FH_OUT%$'\n'}"

# A listening reader: cat blocks between messages that come later.
fh_sh 'exec 3<>"$1"; echo "{\"times\":3,\"delayMs\":300}" >&3; timeout 3 cat <&3; echo "rc=$?"' "$S"
check_eq "answers that come later reach a blocked cat; it blocks on until stopped" \
	$'{"times":3,"delayMs":300,"seq":1}\n{"times":3,"delayMs":300,"seq":2}\n{"times":3,"delayMs":300,"seq":3}\nrc=124' "${FH_OUT%$'\n'}"
# (Write first: a read blocked on the descriptor would hold the kernel's
# position lock of that open file, and the write would wait for it;
# docs/apis.md, "Limits".)
fh_sh 'exec 3<>"$1"; echo "{\"times\":2}" >&3; while read -r line <&3; do echo "got $line"; [[ $line == *seq\":2* ]] && break; done' "$S"
check_eq "bash's read builtin, line by line" $'got {"times":2,"seq":1}\ngot {"times":2,"seq":2}' "${FH_OUT%$'\n'}"

fh_run timeout 2 cat "$S"
check_eq "cat socket blocks like a pipe (timeout ends it)" 124 "$FH_RC"
check_ok "the mount still answers after an interrupted read" ls "$AF_APIS/chat/prod"

# poll(2) and select(2): not readable before an answer; readable once one
# came, also when it comes while poll sleeps (the daemon notifies the
# kernel); not readable again once read; always writable.
AW_POLL_PY='
import os, select, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
p = select.poll()
p.register(fd, select.POLLIN)
out = ["idle:" + ("in" if p.poll(300) else "none")]
os.write(fd, b"{\"times\":1,\"delayMs\":400}\n")
t0 = time.monotonic()
ev = p.poll(10000)
waited = time.monotonic() - t0
out.append("later:" + ("in" if ev and ev[0][1] & select.POLLIN else "none"))
out.append("slept:" + ("yes" if waited >= 0.2 else "no %.3f" % waited))
out.append(os.read(fd, 4096).decode().strip())
out.append("drained:" + ("in" if select.select([fd], [], [], 0.2)[0] else "none"))
os.write(fd, b"{\"action\":\"echo\",\"sel\":1}\n")
r = select.select([fd], [], [], 10)[0]
w = select.select([], [fd], [], 0)[1]
out.append("select:" + ("r" if r else "-") + ("w" if w else "-"))
out.append(os.read(fd, 4096).decode().strip())
os.close(fd)
fd = os.open(sys.argv[2], os.O_RDONLY)
r, w, _ = select.select([fd], [fd], [], 0)
out.append("stats:" + ("r" if r else "-") + ("w" if w else "-"))
print("\n".join(out))
'
fh_run python3 -c "$AW_POLL_PY" "$S" "$FH_MNT/.dynfs/stats"
check_eq "poll and select on a socket descriptor (and on a plain file)" \
	$'idle:none\nlater:in\nslept:yes\n{"times":1,"delayMs":400,"seq":1}\ndrained:none\nselect:rw\n{"action":"echo","sel":1}\nstats:rw' \
	"${FH_OUT%$'\n'}$( [[ $FH_RC == 0 ]] || echo " ($(fh_how))")"

# Two connections at once, one closed while the other goes on (the
# valgrind stage checks the daemon for leaks at its exit).
fh_sh 'exec 3<>"$1" 4<>"$1"
echo "{\"action\":\"echo\",\"c\":3}" >&3; head -n1 <&3
echo "{\"action\":\"echo\",\"c\":4}" >&4; head -n1 <&4
exec 3>&-
echo "{\"action\":\"echo\",\"c\":4,\"alone\":1}" >&4; head -n1 <&4' "$S"
check_eq "two connections at once; closing one leaves the other" \
	$'{"action":"echo","c":3}\n{"action":"echo","c":4}\n{"action":"echo","c":4,"alone":1}' "${FH_OUT%$'\n'}"
HOST="$(tl_apis_host "$DYNFS_TEST_API_CHAT")"
# The chat API's $connect is AWS_IAM: the emulator accepts only a good
# presigned URL (the wrong key below is refused).
if grep -q "ws $HOST /prod -> 101 connection" "$DYNFS_TEST_APIS_LOG"; then
	pass "the emulator accepted the presigned connections (its log)"
else
	fail "the emulator log shows no presigned connection to $HOST/prod"
	tl_apis_show_log
fi
if grep -q "ws connection .* closed" "$DYNFS_TEST_APIS_LOG"; then
	pass "close disconnects (the emulator's log)"
else
	fail "the emulator log shows no closed connection"
fi
fh_unmount

AWS_SECRET_ACCESS_KEY=not-the-right-secret af_mount m2
fh_sh 'exec 3<>"$1"' "$AF_APIS/chat/prod/socket"
check_contains "a presigned \$connect with a wrong key is refused (EACCES)" "Permission denied" "$FH_ERR"
fh_unmount
fh_summary

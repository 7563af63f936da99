#!/bin/sh
# tests/apigw-emu/make-certs.sh DIR [REGION]: a throw-away test CA and a
# server certificate for the emulator, with the openssl CLI (EC P-256,
# valid 2 days):
#   DIR/ca.pem                    the CA (give it to curl --cacert and to
#                                 dynfs -o apis_cafile=)
#   DIR/server.pem, DIR/server.key for *.execute-api.REGION.amazonaws.com,
#                                 lambda.REGION.amazonaws.com, localhost
#                                 and 127.0.0.1
# REGION defaults to us-east-1.  openssl's output goes to DIR/openssl.log.
set -eu
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 DIR [REGION]" >&2
	exit 2
fi
dir=$1
r=${2:-us-east-1}
command -v openssl >/dev/null 2>&1 || {
	echo "make-certs: openssl is missing (contrib/install-deps.sh installs it)" >&2
	exit 1
}
mkdir -p "$dir"
fail() {
	echo "make-certs: $1 (see $dir/openssl.log)" >&2
	exit 1
}
: >"$dir/openssl.log"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$dir/ca.key" -out "$dir/ca.pem" -days 2 \
	-subj "/CN=dynfs test CA" \
	-addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" >>"$dir/openssl.log" 2>&1 ||
	fail "could not make the test CA"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$dir/server.key" -out "$dir/server.csr" \
	-subj "/CN=*.execute-api.$r.amazonaws.com" >>"$dir/openssl.log" 2>&1 ||
	fail "could not make the server key"
cat >"$dir/server.ext" <<EXT
subjectAltName=DNS:*.execute-api.$r.amazonaws.com,DNS:lambda.$r.amazonaws.com,DNS:localhost,IP:127.0.0.1
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
EXT
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
	-CAcreateserial -out "$dir/server.pem" -days 2 \
	-extfile "$dir/server.ext" >>"$dir/openssl.log" 2>&1 ||
	fail "could not sign the server certificate"

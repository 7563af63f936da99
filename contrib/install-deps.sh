#!/usr/bin/env bash
# contrib/install-deps.sh: install what building and testing dynfs needs on
# Debian 12, only what is missing; safe to run again and again.
#
#   Debian packages  build tools and libraries, FUSE, valgrind, the AWS CLI,
#                    jq, curl, python3; Java 17 only when there is no
#                    `java`; Node.js and npm only when there is no `node`.
#   npm              tests/node_modules (DynamoDB Local and the AWS SDK for
#                    JavaScript) from tests/package-lock.json, when missing
#                    or older than the lock file.
#   moto             (Python) is checked, not installed: PyPI is not
#                    reachable from these machines.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

say() {
	printf 'install-deps: %s\n' "$*" >&2
}

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

packages=(
	meson ninja-build pkg-config gcc
	libfuse3-dev fuse3
	libcurl4-openssl-dev libssl-dev libjansson-dev libcmocka-dev zlib1g-dev
	valgrind strace awscli jq vim-nox curl python3 ca-certificates
	libwebsockets-dev openssl gnuplot-nox
)

need=()
for p in "${packages[@]}"; do
	installed "$p" || need+=("$p")
done
if ! command -v java >/dev/null 2>&1; then
	need+=(openjdk-17-jre-headless)
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	installed nodejs || need+=(nodejs)
	installed npm || need+=(npm)
fi

if ((${#need[@]} > 0)); then
	sudo=()
	if [[ "$(id -u)" != 0 ]]; then
		command -v sudo >/dev/null 2>&1 || {
			say "missing packages (${need[*]}) and not root, no sudo"
			exit 1
		}
		sudo=(sudo)
	fi
	say "installing: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update -q >/dev/null
	"${sudo[@]}" apt-get install -y -q --no-install-recommends "${need[@]}" \
		</dev/null >/dev/null
else
	say "Debian packages: all present"
fi

# The Node.js test dependencies.
lock="$root/tests/package-lock.json"
stamp="$root/tests/node_modules/.package-lock.json"
if [[ -f "$lock" ]]; then
	if [[ ! -f "$stamp" || "$lock" -nt "$stamp" ]]; then
		say "npm ci in tests/"
		npm ci --prefix "$root/tests" --no-audit --no-fund --loglevel=error \
			</dev/null >&2
	else
		say "tests/node_modules: up to date"
	fi
fi

# Things that cannot be installed from here: report them loudly; the tests
# that need them fail with the same words rather than being skipped.
if python3 -c 'import moto.server' >/dev/null 2>&1; then
	say "moto: $(python3 -c 'import moto; print(moto.__version__)' 2>/dev/null) (python3: $(command -v python3))"
else
	say "WARNING: python moto is not installed for $(command -v python3 || echo python3)."
	say "WARNING: PyPI is not reachable from these machines, so it cannot be installed here;"
	say "WARNING: the moto tests (integration/moto_sign, mount/moto_auth) will FAIL."
fi
if [[ ! -c /dev/fuse ]]; then
	say "WARNING: /dev/fuse is missing: the mount tests will FAIL."
fi

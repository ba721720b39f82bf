#!/bin/sh
# Installs everything the build, `make run` and `make test` need, from
# Debian's packages and the npm registry only. Idempotent and
# non-interactive: packages already present are not touched.
set -eu
cd "$(dirname "$0")/.."

PKGS="build-essential cmake pkg-config clang clang-format clang-tidy cppcheck
 libclang-rt-14-dev
 libgrpc-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler protobuf-compiler-grpc
 golang-github-gogo-googleapis-dev grpc-proto
 libnghttp2-dev nghttp2-client libhttp-parser-dev libevent-dev libssl-dev openssl
 libjansson-dev libhiredis-dev libcmocka-dev libcurl4-openssl-dev zlib1g-dev libyaml-dev
 curl ca-certificates procps psmisc
 python3-grpcio python3-protobuf python3-pytest python3-numpy python3-jsonschema python3-h2 python3-yaml python3-torch libopenblas0-pthread"

# Node.js and npm: Debian's, unless the machine already has a node and npm
# (from another source, whose packages would conflict with Debian's).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PKGS="$PKGS nodejs npm"
fi

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "deps: installing$missing"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
else
  echo "deps: Debian packages present"
fi

# Real clients for the integration tests: buf curl (gRPC via reflection) and
# the official openai SDK, pinned by package-lock.json.
if [ ! -x tests/integration/node_modules/.bin/buf ] || [ ! -d tests/integration/node_modules/openai ]; then
  (cd tests/integration && npm ci --no-audit --no-fund)
fi
echo "deps: ok"

#!/bin/sh
# Serves the echo handler of test_http_server on a port and runs the raw-frame
# HTTP/2 abuse checks against it. Usage: run.sh BUILD_DIR [PORT]
set -e
build=${1:?build dir}
port=${2:-18080}
here=$(dirname "$0")
"$build/test_http_server" --serve "$port" 2>/dev/null &
pid=$!
trap 'kill $pid' EXIT
sleep 0.5
/usr/bin/python3 "$here/h2_floods.py" "$port"

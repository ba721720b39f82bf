#!/usr/bin/env bash
# A profile-guided build of the gateway: an instrumented build serves a short
# training load (chat at 4 and 32 connections, embeddings, streamed chat) in
# front of the C mock upstream; the same build folder is then rebuilt with
# the profile (gcc -fprofile-use, with link-time optimisation as make build
# does). The compiler then lays out and inlines for the request path it saw,
# and moves the rest out of the way: see README, Performance.
#   tests/bench/pgo.sh [BUILD_DIR]        (default build-pgo) -> ./ai-gateway-pgo
# Needs what make build needs, and wrk. About two minutes on 2 cores.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
B=${1:-$ROOT/build-pgo}
MOCK=19831 HTTP=18831 GRPC=29831
command -v wrk >/dev/null || { echo "pgo: wrk missing" >&2; exit 1; }
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
bench_init pgo
make -s -C "$HERE" OUT="$HERE/bin" >/dev/null

# 1. instrumented (counters updated atomically: the gateway has threads)
gen="-fprofile-generate -fprofile-update=atomic"
rm -rf "$B"
cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGW_TESTS=OFF \
  -DCMAKE_C_FLAGS="$gen" -DCMAKE_CXX_FLAGS="$gen" -DCMAKE_EXE_LINKER_FLAGS=-fprofile-generate >/dev/null
cmake --build "$B" -j "$(nproc)" >/dev/null

# 2. training
printf '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":64}' >"$TMP/chat.json"
printf '{"model":"text-embedding-3-small","input":"The food was delicious and the waiter was kind."}' >"$TMP/emb.json"
"$HERE/bin/mock_upstream" $MOCK 1 >/dev/null 2>&1 &
PIDS+=("$!")
env TARGET_API_URL=http://127.0.0.1:$MOCK/v1 TARGET_API_KEY=sk-mock PORT=$HTTP GRPC_PORT=$GRPC \
  WORKERS=1 MAX_CONNS_PER_IP=0 LOG_LEVEL=warn "$B/ai-gateway" >"$TMP/gw.log" 2>&1 &
GW=$!
PIDS+=("$GW")
bench_wait_chat $HTTP "$TMP/chat.json" ||
  { echo "pgo: the instrumented gateway did not answer" >&2; cat "$TMP/gw.log" >&2; exit 1; }
load() { # connections seconds body path
  BODY_FILE=$3 wrk -t1 -c"$1" -d"$2"s -s "$HERE/post.lua" http://127.0.0.1:$HTTP"$4" | awk '/requests in/{print "pgo: " $1 " requests"}'
}
load 4 4 "$TMP/chat.json" /v1/chat/completions
load 32 3 "$TMP/chat.json" /v1/chat/completions
load 8 2 "$TMP/emb.json" /v1/embeddings
"$HERE/bin/sse_client" 127.0.0.1 $HTTP /v1/chat/completions 8 2 | sed 's/^/pgo: /'
kill -TERM "$GW" # the counters are written at exit
wait "$GW" || true
n=$(find "$B" -name '*.gcda' | wc -l)
[ "$n" -gt 0 ] || { echo "pgo: no profile was written" >&2; exit 1; }
echo "pgo: profile of $n objects"

# 3. the same folder rebuilt with the profile (code it never ran is optimised as usual)
use="-fprofile-use -fprofile-partial-training -Wno-missing-profile"
cmake -S "$ROOT" -B "$B" -DCMAKE_C_FLAGS="$use" -DCMAKE_CXX_FLAGS="$use" -DCMAKE_EXE_LINKER_FLAGS= >/dev/null
cmake --build "$B" -j "$(nproc)" >/dev/null
cp "$B/ai-gateway" "$ROOT/ai-gateway-pgo"
echo "pgo: $ROOT/ai-gateway-pgo"

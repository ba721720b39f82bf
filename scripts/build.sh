#!/usr/bin/env bash
# The release gateway (make build, the Dockerfile): RelWithDebInfo, link-time
# optimised and profile-guided. An instrumented build serves a short training
# load in front of the C mock upstream (tests/bench/mock_upstream.c): chat over
# HTTP/1.1 at 4 and 32 connections, embeddings, a conversation in Chinese
# (tests/bench/conv_zh.json: markdown, UTF-8), streamed chat, chat over h2c
# and on the gRPC port; the same folder is then rebuilt with that profile, so
# the compiler lays out and inlines for the request path it saw and moves the
# rest out of the way (code the training never ran is optimised as usual).
# About twice a plain build's time; the profile is kept and the training rerun
# only when a source file changed.
#
#   scripts/build.sh [BUILD_DIR [OUT]]     (build, ./ai-gateway)
#   PGO=auto  train; if the training fails, warn and build without a profile
#   PGO=1     train; if the training fails, fail (CI)
#   PGO=0     no training: link-time optimisation only (quick rebuilds)
# Needs what make deps installs: cmake, a C compiler, h2load (nghttp2-client),
# curl and protoc.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$ROOT/build}
case $B in /*) ;; *) B=$PWD/$B ;; esac
OUT=${2:-$ROOT/ai-gateway}
PGO=${PGO:-auto}
JOBS=${JOBS:-$(nproc)}
# Loopback ports of the training run: the mock, the gateway's HTTP and gRPC.
MOCK=${PGO_PORT_BASE:-19871} HTTP=$((${PGO_PORT_BASE:-19871} + 1)) GRPC=$((${PGO_PORT_BASE:-19871} + 2))

say() { echo "build: $*" >&2; }

# configure FLAGS LINK_FLAGS: the folder's flags (changing them rebuilds every object)
configure() {
  cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGW_TESTS=OFF \
    -DCMAKE_C_FLAGS="$1" -DCMAKE_CXX_FLAGS="$1" -DCMAKE_EXE_LINKER_FLAGS="$2" >/dev/null
}
compile() { cmake --build "$B" -j "$JOBS"; }
finish() {
  cp "$B/ai-gateway" "$OUT.tmp" && mv "$OUT.tmp" "$OUT"
  say "$OUT ($1)"
}

# What the profile was taken from: every file the gateway and the training are
# built from, and the compiler.
inputs_key() {
  (
    cd "$ROOT"
    find CMakeLists.txt cmake proto server transcoder scripts/build.sh \
      tests/bench/mock_upstream.c tests/bench/sse_client.c tests/bench/conv_zh.json -type f -print0 |
      LC_ALL=C sort -z | xargs -0 sha1sum
    ${CC:-cc} --version | head -1
  ) | sha1sum | cut -d' ' -f1
}

# train_load NAME SECONDS CONNS BODY URL [h2load options]: fails unless every
# request succeeded with a 2xx
train_load() {
  local out
  out=$(h2load -D "$2" -c "$3" -m 1 -d "$4" "${@:6}" "$5" 2>&1)
  echo "$out" | awk -v n="$1" '
    /^requests:/ { ok = ($8 > 0 && $10 == 0 && $12 == 0); done = $8 }
    /^status codes:/ { ok2 = ($3 == done && $7 == 0 && $9 == 0) }
    END { print "build: training " n ": " done " requests"; exit !(ok && ok2) }' >&2
}

# train: runs the instrumented $B/ai-gateway under load; its counters are
# written to $B's .gcda files when it exits.
train() {
  local t=$B/pgo-train gw rc=0
  rm -rf "$t" && mkdir -p "$t"
  for c in h2load curl protoc; do
    command -v $c >/dev/null || { say "training needs $c (make deps)"; return 1; }
  done
  make -s -C "$ROOT/tests/bench" OUT="$t" "$t/mock_upstream" "$t/sse_client" >/dev/null || return 1
  printf '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":64}' >"$t/chat.json"
  printf '{"model":"text-embedding-3-small","input":"The food was delicious and the waiter was kind."}' >"$t/emb.json"
  # a gRPC message: a 5-byte frame header (uncompressed, 4-byte length) and the protobuf
  printf 'model: "gpt-4o-mini"\nmessages { role: "user" content { text: "Say hello." } }\n' |
    protoc --encode=aigateway.v1.ChatCompletionRequest --descriptor_set_in="$B/gen/descriptor_set.pb" >"$t/req.pb" ||
    return 1
  local n
  n=$(wc -c <"$t/req.pb")
  # shellcheck disable=SC2059 # the format is the frame header
  { printf "\\000\\000\\000\\000\\$(printf %03o "$n")"; cat "$t/req.pb"; } >"$t/req.grpc"

  "$t/mock_upstream" "$MOCK" 1 >"$t/mock.log" 2>&1 &
  local mock=$!
  # a clean environment: the user's CONFIG_FILE, REDIS_URL and the like stay out
  env -i PATH="$PATH" TARGET_API_URL="http://127.0.0.1:$MOCK/v1" TARGET_API_KEY=sk-train \
    PORT=$HTTP GRPC_PORT=$GRPC WORKERS=1 MAX_CONNS_PER_IP=0 LOG_LEVEL=warn \
    "$B/ai-gateway" >"$t/gw.log" 2>&1 &
  gw=$!
  local i up=0
  for ((i = 0; i < 100; i++)); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
      -d @"$t/chat.json" http://127.0.0.1:$HTTP/v1/chat/completions)" = 200 ] && { up=1; break; }
    kill -0 $gw 2>/dev/null || break
    sleep 0.1
  done
  if [ $up = 1 ]; then
    local j=(-H 'content-type: application/json') g=(-H 'content-type: application/grpc' -H 'te: trailers')
    train_load "chat, HTTP/1.1, 4 connections" 3 4 "$t/chat.json" http://127.0.0.1:$HTTP/v1/chat/completions --h1 "${j[@]}" &&
      train_load "chat, HTTP/1.1, 32 connections" 2 32 "$t/chat.json" http://127.0.0.1:$HTTP/v1/chat/completions --h1 "${j[@]}" &&
      train_load "embeddings, HTTP/1.1" 2 8 "$t/emb.json" http://127.0.0.1:$HTTP/v1/embeddings --h1 "${j[@]}" &&
      train_load "a conversation in Chinese, HTTP/1.1" 1 8 "$ROOT/tests/bench/conv_zh.json" \
        http://127.0.0.1:$HTTP/v1/chat/completions --h1 "${j[@]}" &&
      train_load "chat, h2c" 1 8 "$t/chat.json" http://127.0.0.1:$HTTP/v1/chat/completions "${j[@]}" &&
      train_load "chat, gRPC" 1 8 "$t/req.grpc" http://127.0.0.1:$GRPC/aigateway.v1.Inference/CreateChatCompletion "${g[@]}" &&
      "$t/sse_client" 127.0.0.1 $HTTP /v1/chat/completions 8 2 | sed 's/^/build: training streams: /' >&2 || rc=1
  else
    say "the instrumented gateway did not answer"
    rc=1
  fi
  kill -TERM $gw 2>/dev/null || true
  wait $gw || { say "the instrumented gateway exited with $?"; rc=1; }
  kill $mock 2>/dev/null || true
  wait $mock 2>/dev/null || true
  [ $rc = 0 ] || { sed 's/^/build: gateway: /' "$t/gw.log" | tail -20 >&2; return 1; }
  [ -n "$(find "$B" -name '*.gcda' -print -quit)" ] || { say "no profile was written"; return 1; }
}

# The profile is gcc's (.gcda files beside the objects; clang's differs).
if [ "$PGO" != 0 ] && ! ${CC:-cc} -v 2>&1 | grep -q '^gcc version'; then
  [ "$PGO" = 1 ] && { say "PGO=1 needs gcc as CC"; exit 1; }
  say "WARNING: ${CC:-cc} is not gcc: building without a profile"
  PGO=0
fi
if [ "$PGO" = 0 ]; then
  configure "" ""
  compile
  rm -f "$B/pgo.key"
  finish "link-time optimised, no profile"
  exit 0
fi

key=$(inputs_key)
use="-fprofile-use -fprofile-partial-training -Wno-missing-profile"
if [ -f "$B/pgo.key" ] && [ "$(cat "$B/pgo.key")" = "$key" ]; then
  compile # the profile matches the sources: nothing to retrain
  finish "profile-guided, profile kept"
  exit 0
fi

rm -f "$B/pgo.key"
[ -d "$B" ] && find "$B" -name '*.gcda' -delete
# instrumented; counters updated atomically, as the gateway has threads
configure "-fprofile-generate -fprofile-update=atomic" -fprofile-generate
compile
if train; then
  configure "$use" ""
  compile
  echo "$key" >"$B/pgo.key"
  finish "profile-guided"
else
  [ "$PGO" = 1 ] && { say "the training failed (PGO=1)"; exit 1; }
  say "WARNING: the training failed; building without a profile (slower at low concurrency)"
  configure "" ""
  compile
  finish "link-time optimised, no profile: the training failed"
fi

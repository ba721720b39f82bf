#!/usr/bin/env bash
# Packs the benchmark's programs into one folder that runs on another x86-64
# Linux machine without the project's packages (a lent many-core machine):
#   tests/bench/bundle.sh DIR      then, there: tests/bench/many_core.sh DIR
# DIR gets bin/ (the gateway, nginx, wrk, h2load, taskset, the C mock, the SSE
# client, the gRPC echo server), lib/ (every shared library they load, glibc
# and its loader included: many_core.sh starts each program through
# lib/ld-linux-x86-64.so.2, so the other machine's own libraries never mix in)
# and data/ (request bodies, the gRPC-framed requests, post.lua, nginx.conf.in).
#   GW_BIN  the gateway binary (default: ./ai-gateway, a `make build`)
#   GW_BASE_BIN, GW_BASE_COMMIT  a second gateway (and its commit) to run beside
#           it as "gwbase" (a before/after in one run); same libraries
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PEERS=$ROOT/../shared/bench/peers
DIR=${1:?usage: bundle.sh DIR}
GW_BIN=${GW_BIN:-$ROOT/ai-gateway}
DS=$ROOT/build/gen/descriptor_set.pb

for t in wrk h2load nginx taskset protoc; do
  command -v $t >/dev/null || { echo "bundle: $t missing (apt-get install -y wrk nghttp2-client nginx-light util-linux protobuf-compiler)" >&2; exit 1; }
done
[ -x "$GW_BIN" ] && [ -f "$DS" ] || { echo "bundle: no gateway at $GW_BIN or no $DS (make build)" >&2; exit 1; }
make -s -C "$HERE" >/dev/null

rm -rf "$DIR"; mkdir -p "$DIR/bin" "$DIR/lib" "$DIR/data"
progs=("$GW_BIN" "$HERE/bin/mock_upstream" "$HERE/bin/sse_client" "$HERE/bin/grpc_echo"
       "$(command -v wrk)" "$(command -v h2load)" "$(command -v nginx)" "$(command -v taskset)")
for p in "${progs[@]}"; do
  cp -L "$p" "$DIR/bin/"
  # "libX.so => /path (addr)" and the loader's own "/lib64/ld-linux... (addr)"
  ldd "$p" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | while read -r lib; do
    [ -e "$DIR/lib/$(basename "$lib")" ] || cp -L "$lib" "$DIR/lib/"
  done
done
strip --strip-debug "$DIR/bin/ai-gateway"
if [ -n "${GW_BASE_BIN:-}" ]; then
  cp -L "$GW_BASE_BIN" "$DIR/bin/ai-gateway-base"
  strip --strip-debug "$DIR/bin/ai-gateway-base"
  echo "${GW_BASE_COMMIT:-unknown}" >"$DIR/data/base_commit"
fi

printf '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":64}' >"$DIR/data/chat.json"
printf '{"model":"text-embedding-3-small","input":"The food was delicious and the waiter was kind."}' >"$DIR/data/emb.json"
printf 'model: "gpt-4o-mini"\nmessages { role: "system" content { text: "You are a helpful assistant." } }\nmessages { role: "user" content { text: "Say hello in one short sentence." } }\nmax_tokens { value: 64 }\n' |
  protoc --encode=aigateway.v1.ChatCompletionRequest --descriptor_set_in="$DS" >"$DIR/data/req.pb"
# gRPC framing: a zero flag byte and the big-endian length, then the message
n=$(stat -c %s "$DIR/data/req.pb")
{ printf '\0'; printf "\\x$(printf %02x $((n >> 24 & 255)))\\x$(printf %02x $((n >> 16 & 255)))\\x$(printf %02x $((n >> 8 & 255)))\\x$(printf %02x $((n & 255)))"; cat "$DIR/data/req.pb"; } >"$DIR/data/req.grpc"
printf '\0\0\0\0\0' >"$DIR/data/list.grpc" # an empty ListModelsRequest, framed
cp "$HERE/post.lua" "$DIR/data/"
cp "$PEERS/nginx.conf.in" "$DIR/data/"
git -C "$ROOT" rev-parse --short HEAD >"$DIR/data/commit"
sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$ROOT/build/CMakeCache.txt" >"$DIR/data/build_type" 2>/dev/null || true
du -sh "$DIR" >&2

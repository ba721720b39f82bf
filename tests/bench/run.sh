#!/usr/bin/env bash
# The benchmark suite: the gateway against direct (the C mock), nginx proxy_pass
# and the Portkey gateway, side by side in one run; writes tests/bench/RESULTS.md.
#   GW_BIN        the gateway binary (default: ./ai-gateway at the repo root)
#   BENCH_DUR     seconds per wrk/h2load/stream measurement (5)
#   BENCH_ROUNDS  turns per scenario, the median is kept (1; 3 for a quieter table)
#   BENCH_STREAMS open SSE streams of the many-streams scenario (10000)
#   BENCH_CURVE   connection counts of the cost-growth curve ("1 4 16 64 256 1024")
#   BENCH_QUICK=1 only chat (1/32 conns) and streaming: a quick check
#   GW_WORKERS    gateway workers (1: nginx runs 1 worker; the same core for all)
#   SUT_CPU / LOAD_CPU  cores for the system under test / load generator + mock (1 / 0)
#   BENCH_POLL_US BUSY_POLL_US of the extra "gateway, polling" target of the hop table (1000)
# Every process it starts is stopped on exit, by its pid (background starts call
# taskset directly, never a shell function, so that $! is the process itself).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PEERS=$(cd "$ROOT/../shared/bench/peers" 2>/dev/null && pwd || true)
BIN=$HERE/bin
GW_BIN=${GW_BIN:-$ROOT/ai-gateway}
DUR=${BENCH_DUR:-5}
ROUNDS=${BENCH_ROUNDS:-1}
NSTREAMS=${BENCH_STREAMS:-10000}
CURVE=${BENCH_CURVE:-"1 4 16 64 256 1024"}
QUICK=${BENCH_QUICK:-0}
GW_WORKERS=${GW_WORKERS:-1}
SUT_CPU=${SUT_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
# Listening ports stay below the kernel's ephemeral range (32768-60999 here):
# with thousands of client and upstream connections open, a port such as
# 50051 can already be some connection's local port, and the bind fails.
MOCK_PORT=9000 GW_PORT=8080 GW_GRPC=29051 NGINX_PORT=8088 PORTKEY_PORT=8787 ECHO_PORT=29071
# The hop table's extra targets: a polling gateway, and nginx and the gateway
# on the load generator's core.
GWPOLL_PORT=8081 GWPOLL_GRPC=29052 GW0_PORT=8082 GW0_GRPC=29053 NGINX0_PORT=8089
GWCORE_PORT=8083 GWCORE_GRPC=29054
# A gateway whose chat model is served by an Anthropic backend (the mock's /v1/messages).
GWANTH_PORT=8084 GWANTH_GRPC=29055
POLL_US=${BENCH_POLL_US:-1000}
OUT=$HERE/RESULTS.md
TMP=$(mktemp -d /tmp/aigw-bench.XXXXXX)
export PEERS_DIR=${PEERS_DIR:-/tmp/aigw-peers}
PIDS=()

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(nproc)" -ge 2 ] || { SUT_CPU=0; LOAD_CPU=0; }
pin_sut() { taskset -c "$SUT_CPU" "$@"; }
pin_load() { taskset -c "$LOAD_CPU" "$@"; }

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$PEERS" ] && "$PEERS/stop.sh" >/dev/null 2>&1 || true
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }

for t in wrk h2load taskset curl protoc; do command -v $t >/dev/null || { echo "bench: $t missing (apt-get install -y wrk nghttp2-client util-linux curl protobuf-compiler)" >&2; exit 1; }; done
[ -x "$GW_BIN" ] || { echo "bench: no gateway binary at $GW_BIN (make build)" >&2; exit 1; }
# The build type of the binary's CMake directory (./ai-gateway comes from build/):
# a Debug (-O0) gateway measures the compiler, not the design.
GW_DIR=$(dirname "$GW_BIN"); [ "$GW_BIN" = "$ROOT/ai-gateway" ] && GW_DIR=$ROOT/build
BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$GW_DIR/CMakeCache.txt" 2>/dev/null)
case "$BUILD_TYPE" in
  Release|RelWithDebInfo|MinSizeRel) ;;
  *) echo "bench: warning: $GW_BIN is a '${BUILD_TYPE:-unknown}' build; numbers need Release or RelWithDebInfo" >&2 ;;
esac
make -s -C "$HERE" >/dev/null

# ---- processes ------------------------------------------------------------------
start_mock() {
  taskset -c "$LOAD_CPU" "$BIN/mock_upstream" $MOCK_PORT 1 >"$TMP/mock.log" 2>&1 &
  MOCK_PID=$!; PIDS+=($MOCK_PID); wait_port $MOCK_PORT
}
start_gw() {
  TARGET_API_URL=http://127.0.0.1:$MOCK_PORT/v1 TARGET_API_KEY=sk-mock PORT=$GW_PORT GRPC_PORT=$GW_GRPC \
    WORKERS=$GW_WORKERS MAX_CONNS_PER_IP=0 LOG_LEVEL=warn taskset -c "$SUT_CPU" "$GW_BIN" >"$TMP/gw.log" 2>&1 &
  GW_PID=$!; PIDS+=($GW_PID); wait_port $GW_PORT
  for _ in $(seq 1 100); do
    curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$GW_PORT/v1/models | grep -q 200 && break; sleep 0.05
  done
}
stop_gw() { kill "$GW_PID" 2>/dev/null || true; wait "$GW_PID" 2>/dev/null || true; }
# start_gw_extra CPU PORT GRPC_PORT [VAR=value ...]: one more gateway (not stopped before exit)
start_gw_extra() {
  local cpu=$1 port=$2 gport=$3; shift 3
  env TARGET_API_URL=http://127.0.0.1:$MOCK_PORT/v1 TARGET_API_KEY=sk-mock PORT=$port GRPC_PORT=$gport \
    WORKERS=$GW_WORKERS MAX_CONNS_PER_IP=0 LOG_LEVEL=warn "$@" taskset -c "$cpu" "$GW_BIN" >"$TMP/gw-$port.log" 2>&1 &
  PIDS+=($!); wait_port "$port"
  for _ in $(seq 1 100); do
    curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$port/v1/models | grep -q 200 && break; sleep 0.05
  done
}
# nginx on the load core, configured as the peers' (../shared/bench/peers/nginx.conf.in)
HAVE_NGINX0=0
start_nginx0() {
  [ -n "$PEERS" ] && [ -f "$PEERS/nginx.conf.in" ] && command -v nginx >/dev/null || return 0
  local d=$TMP/nginx0; mkdir -p "$d/logs" "$d/tmp"
  sed -e "s#@DIR@#$d#g" -e "s#@UPSTREAM@#127.0.0.1:$MOCK_PORT#g" -e "s#@PORT@#$NGINX0_PORT#g" \
      -e "s#@WORKERS@#1#g" "$PEERS/nginx.conf.in" >"$d/nginx.conf"
  taskset -c "$LOAD_CPU" nginx -p "$d" -c "$d/nginx.conf" -g 'daemon off;' >/dev/null 2>"$d/logs/stderr.log" &
  PIDS+=($!); wait_port $NGINX0_PORT && HAVE_NGINX0=1
}
HAVE_PEERS=0
start_peers() {
  [ -n "$PEERS" ] || return 0
  if UPSTREAM=127.0.0.1:$MOCK_PORT NGINX_PORT=$NGINX_PORT PORTKEY_PORT=$PORTKEY_PORT \
       pin_sut "$PEERS/start.sh" >"$TMP/peers.log" 2>&1; then HAVE_PEERS=1; fi
  PORTKEY_PID=$(awk '$1 == "portkey" {print $2}' "$PEERS_DIR/pids" 2>/dev/null || true)
}

# Portkey (node) goes on answering its backlog after the load generator stops:
# after a run at 256 connections it burned cpu 1, which it shares with the next
# target, for another 0.5 s of a 3 s window. settle PID waits until the process
# has used no CPU for 200 ms (at most 10 s) before the next target runs.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo gone; }
settle() {
  local last now
  last=$(cpu_ticks "$1")
  for _ in $(seq 1 50); do
    sleep 0.2
    now=$(cpu_ticks "$1")
    [ "$now" = "$last" ] && return 0
    last=$now
  done
}
settle_peer() { [ "$1" = portkey ] && [ -n "${PORTKEY_PID:-}" ] && settle "$PORTKEY_PID" || true; }

# ---- measurements ------------------------------------------------------------------
URL_direct=http://127.0.0.1:$MOCK_PORT
URL_nginx=http://127.0.0.1:$NGINX_PORT
URL_portkey=http://127.0.0.1:$PORTKEY_PORT
URL_gateway=http://127.0.0.1:$GW_PORT
URL_gwpoll=http://127.0.0.1:$GWPOLL_PORT
URL_gw0=http://127.0.0.1:$GW0_PORT
URL_nginx0=http://127.0.0.1:$NGINX0_PORT
targets() { if [ $HAVE_PEERS = 1 ]; then echo "${1:-direct nginx portkey gateway}"; else echo "direct gateway"; fi; }

# wrk_one NAME PATH CONNS BODYFILE DUR -> "rps p50_us p99_us errors"
wrk_one() {
  local name=$1 path=$2 c=$3 body=$4 d=$5 pk=0 thr=1
  case $name in portkey) pk=1;; esac
  [ "$c" -ge 64 ] && thr=2 || true
  local out
  out=$(PORTKEY=$pk BODY_FILE=$body PORTKEY_HOST=http://127.0.0.1:$MOCK_PORT/v1 \
        pin_load wrk -t$thr -c"$c" -d"${d}s" --timeout 10s --latency -s "$HERE/post.lua" "$(eval echo \$URL_$name)$path" 2>&1)
  awk 'function us(v){ if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; if (v ~ /s$/) return (v+0)*1e6; return v }
       /Requests\/sec/{r=$2} $1=="50%"{a=us($2)} $1=="99%"{b=us($2)}
       /Non-2xx/{e+=$NF} /Socket errors/{e+=$4+$6+$8+$10}
       END{printf "%.0f %.0f %.0f %d\n", r, a, b, e}' <<<"$out"
  settle_peer "$name"
}
# wrk_scn SCENARIO PATH CONNS BODYFILE [TARGETS]: in turns, ROUNDS times; median by req/s
wrk_scn() {
  local scn=$1 path=$2 c=$3 body=$4 tg=${5:-$(targets)}
  for r in $(seq 1 "$ROUNDS"); do for t in $tg; do
    echo "$(wrk_one "$t" "$path" "$c" "$body" "$DUR")" >>"$TMP/$scn.$t"
  done; done
  for t in $tg; do sort -n "$TMP/$scn.$t" | awk -v n="$t" -v s="$scn" '{a[NR]=$0} END{print s, n, a[int((NR+1)/2)]}' >>"$TMP/rows"; done
}
# sse_scn SCENARIO CONNS MODEL [TARGETS] -> rows "scn target ev/s ttfb50 ttfb99 relay50 relay99 errors"
sse_scn() {
  local scn=$1 c=$2 model=$3 tg=${4:-$(targets)}
  for r in $(seq 1 "$ROUNDS"); do for t in $tg; do
    local port pk=""
    port=$(eval echo \$URL_$t); port=${port##*:}
    [ "$t" = portkey ] && pk=http://127.0.0.1:$MOCK_PORT/v1
    SSE_PORTKEY_HOST=$pk SSE_MODEL=$model pin_load "$BIN/sse_client" 127.0.0.1 "$port" /v1/chat/completions "$c" "$DUR" \
      | sed 's/[a-z_0-9]*=//g' | awk '{print $5, $6, $7, $8, $9, $3+$4}' >>"$TMP/$scn.$t"
    settle_peer "$t"
  done; done
  for t in $tg; do sort -n -k2 "$TMP/$scn.$t" | awk -v n="$t" -v s="$scn" '{a[NR]=$0} END{print s, n, a[int((NR+1)/2)]}' >>"$TMP/sse"; done
}
# h2_one NAME URL CONNS STREAMS_PER_CONN DATAFILE [grpc] -> "rps mean_us errors bytes_per_req"
h2_one() {
  local hdr=()
  [ "${6:-}" = grpc ] && hdr=(-H 'content-type: application/grpc' -H 'te: trailers') || hdr=(-H 'content-type: application/json')
  local out
  out=$(pin_load h2load -D "$DUR" --warm-up-time=1 -c "$3" -m "$4" -d "$5" "${hdr[@]}" "$2" 2>&1)
  awk '/finished in/{r=$4} /^requests:/{e=$10+$12} /time for request:/{m=$6} /^traffic:/{t=$3; gsub(/[()]/,"",t)}
       /^requests:/{d=$8}
       function us(v){ if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; return (v+0)*1e6 }
       END{printf "%.0f %.0f %d %.0f\n", r, us(m), e, (d>0? t/d : 0)}' <<<"$out"
}

RSS_kib() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
HWM_kib() { awk '/^VmHWM/{print $2}' "/proc/$1/status"; }

# ---- the run ---------------------------------------------------------------------
: >"$TMP/rows"; : >"$TMP/sse"; : >"$TMP/h2"; : >"$TMP/curve"
head -c 102400 /dev/zero | tr '\0' 'a' >"$TMP/big.txt"
printf '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":64}' >"$TMP/chat.json"
printf '{"model":"text-embedding-3-small","input":"The food was delicious and the waiter was kind."}' >"$TMP/emb.json"
printf '{"model":"text-embedding-3-small","input":"The food was delicious and the waiter was kind.","encoding_format":"base64"}' >"$TMP/emb64.json"
printf '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"%s"}],"max_tokens":64}' "$(cat "$TMP/big.txt")" >"$TMP/big.json"

echo "bench: starting mock, peers, gateway ($GW_BIN, WORKERS=$GW_WORKERS)" >&2
start_mock
start_peers
start_gw
for t in $(targets); do wrk_one "$t" /v1/chat/completions 8 "$TMP/chat.json" 1 >/dev/null; done # warm-up

echo "bench: chat" >&2
for c in 1 32 256; do
  [ "$QUICK" = 1 ] && [ $c = 256 ] && continue
  wrk_scn "chat-c$c" /v1/chat/completions $c "$TMP/chat.json"
done
echo "bench: streaming" >&2
sse_scn "sse-relay-c1" 1 delay-1000
sse_scn "sse-thru-c32" 32 gpt-4o-mini

# One hop's cost at one connection, separated from where the hop runs: the
# default pinning puts the proxy on another vCPU than the client and the mock,
# so every hop also pays a cross-CPU wake-up of a sleeping vCPU; on the load
# core itself (gw0, nginx0) it pays a context switch instead; a polling
# gateway (BUSY_POLL_US) does not sleep between the hops it serves.
echo "bench: one hop's cost" >&2
start_gw_extra "$SUT_CPU" $GWPOLL_PORT $GWPOLL_GRPC BUSY_POLL_US=$POLL_US
start_gw_extra "$LOAD_CPU" $GW0_PORT $GW0_GRPC
# The gRPC port served by gRPC core's server instead of the gateway's own.
start_gw_extra "$SUT_CPU" $GWCORE_PORT $GWCORE_GRPC GRPC_SERVER=core
start_nginx0
HOP_T="direct gateway gwpoll gw0"
[ $HAVE_PEERS = 1 ] && HOP_T="direct nginx gateway gwpoll gw0"
[ $HAVE_NGINX0 = 1 ] && HOP_T="$HOP_T nginx0"
wrk_scn "hop-c1" /v1/chat/completions 1 "$TMP/chat.json" "$HOP_T"
sse_scn "hop-sse" 1 delay-1000 "$HOP_T"
if [ "$QUICK" != 1 ]; then
  echo "bench: embeddings, 100 KB prompts" >&2
  wrk_scn "emb-c32" /v1/embeddings 32 "$TMP/emb.json"
  wrk_scn "emb64-c32" /v1/embeddings 32 "$TMP/emb64.json"
  wrk_scn "big-c8" /v1/chat/completions 8 "$TMP/big.json"

  # The chat translated for Anthropic's Messages API: the gateway and Portkey
  # take the OpenAI request and call the mock's /v1/messages (Portkey with
  # x-portkey-provider: anthropic); direct and nginx carry the same request
  # already in Anthropic's shape there: a hop that translates nothing.
  echo "bench: chat to an Anthropic backend" >&2
  printf '{"backends":[{"name":"claude","provider":"anthropic","target":"http://127.0.0.1:%s","api_key_env":"MOCK_KEY"}],"models":[{"name":"gpt-4o-mini","backend":"claude","upstream_model":"claude-mock"}]}' \
    $MOCK_PORT >"$TMP/anthropic.conf.json"
  printf '{"model":"claude-mock","system":"You are a helpful assistant.","messages":[{"role":"user","content":[{"type":"text","text":"Say hello in one short sentence."}]}],"max_tokens":64}' >"$TMP/anth.json"
  start_gw_extra "$SUT_CPU" $GWANTH_PORT $GWANTH_GRPC CONFIG_FILE="$TMP/anthropic.conf.json" MOCK_KEY=sk-mock
  for r in $(seq 1 "$ROUNDS"); do for t in $(targets); do
    case $t in
    direct | nginx) o=$(wrk_one "$t" /v1/messages 32 "$TMP/anth.json" "$DUR") ;;
    portkey) o=$(PORTKEY_PROVIDER=anthropic wrk_one portkey /v1/chat/completions 32 "$TMP/chat.json" "$DUR") ;;
    gateway) o=$(URL_gateway=http://127.0.0.1:$GWANTH_PORT wrk_one gateway /v1/chat/completions 32 "$TMP/chat.json" "$DUR") ;;
    esac
    echo "$o" >>"$TMP/anthropic-c32.$t"
  done; done
  for t in $(targets); do sort -n "$TMP/anthropic-c32.$t" | awk -v n="$t" '{a[NR]=$0} END{print "anthropic-c32", n, a[int((NR+1)/2)]}' >>"$TMP/rows"; done

  echo "bench: h2c and gRPC" >&2
  echo "$(h2_one gateway $URL_gateway/v1/chat/completions 32 1 "$TMP/chat.json")" | sed 's/^/h2c-chat-c32 gateway /' >>"$TMP/h2"
  DS=""
  for d in "$ROOT/build/gen/descriptor_set.pb" "$(dirname "$GW_BIN")/gen/descriptor_set.pb" "$ROOT"/build*/gen/descriptor_set.pb; do [ -f "$d" ] && { DS=$d; break; }; done
  if [ -n "$DS" ]; then
    printf 'model: "gpt-4o-mini"\nmessages { role: "system" content { text: "You are a helpful assistant." } }\nmessages { role: "user" content { text: "Say hello in one short sentence." } }\nmax_tokens { value: 64 }\n' \
      | protoc --encode=aigateway.v1.ChatCompletionRequest --descriptor_set_in="$DS" >"$TMP/req.pb"
    python3 -c "import struct,sys; d=open(sys.argv[1],'rb').read(); sys.stdout.buffer.write(b'\0'+struct.pack('>I',len(d))+d)" "$TMP/req.pb" >"$TMP/req.grpc"
    printf '\0\0\0\0\0' >"$TMP/list.grpc" # an empty ListModelsRequest, framed
    taskset -c "$SUT_CPU" "$BIN/grpc_echo" $ECHO_PORT 1 >"$TMP/echo.log" 2>&1 &
    ECHO_PID=$!; PIDS+=($ECHO_PID); wait_port $ECHO_PORT
    for r in $(seq 1 "$ROUNDS"); do
      echo "$(h2_one echo http://127.0.0.1:$ECHO_PORT/bench.Echo/Echo 32 1 "$TMP/req.grpc" grpc)" >>"$TMP/g.echo"
      echo "$(h2_one gateway http://127.0.0.1:$GW_GRPC/aigateway.v1.Inference/CreateChatCompletion 32 1 "$TMP/req.grpc" grpc)" >>"$TMP/g.gw"
      echo "$(h2_one gateway http://127.0.0.1:$GW_GRPC/aigateway.v1.Inference/ListModels 32 1 "$TMP/list.grpc" grpc)" >>"$TMP/g.list"
      # The same calls to a gateway whose gRPC port is gRPC core's server
      # (GRPC_SERVER=core) instead of its own (transcoder/grpc.c, the default).
      echo "$(h2_one gateway http://127.0.0.1:$GWCORE_GRPC/aigateway.v1.Inference/CreateChatCompletion 32 1 "$TMP/req.grpc" grpc)" >>"$TMP/g.gwc"
      echo "$(h2_one gateway http://127.0.0.1:$GWCORE_GRPC/aigateway.v1.Inference/ListModels 32 1 "$TMP/list.grpc" grpc)" >>"$TMP/g.listc"
    done
    kill $ECHO_PID 2>/dev/null || true
    sort -n "$TMP/g.echo" | awk '{a[NR]=$0} END{print "grpc-unary-c32 echo", a[int((NR+1)/2)]}' >>"$TMP/h2"
    sort -n "$TMP/g.gw" | awk '{a[NR]=$0} END{print "grpc-unary-c32 gateway", a[int((NR+1)/2)]}' >>"$TMP/h2"
    sort -n "$TMP/g.list" | awk '{a[NR]=$0} END{print "grpc-unary-builtin-c32 gateway", a[int((NR+1)/2)]}' >>"$TMP/h2"
    echo "$(h2_one gateway http://127.0.0.1:$GW_GRPC/aigateway.v1.Inference/StreamChatCompletion 32 1 "$TMP/req.grpc" grpc)" | sed 's/^/grpc-stream-c32 gateway /' >>"$TMP/h2"
    sort -n "$TMP/g.gwc" | awk '{a[NR]=$0} END{print "grpc-unary-c32 gateway-grpc-core", a[int((NR+1)/2)]}' >>"$TMP/h2"
    sort -n "$TMP/g.listc" | awk '{a[NR]=$0} END{print "grpc-unary-builtin-c32 gateway-grpc-core", a[int((NR+1)/2)]}' >>"$TMP/h2"
    echo "$(h2_one gateway http://127.0.0.1:$GWCORE_GRPC/aigateway.v1.Inference/StreamChatCompletion 32 1 "$TMP/req.grpc" grpc)" | sed 's/^/grpc-stream-c32 gateway-grpc-core /' >>"$TMP/h2"
  fi

  echo "bench: cost-growth curve" >&2
  for c in $CURVE; do
    for t in $(targets "direct nginx gateway"); do
      # TCP connects during the run less wrk's own: the proxy's upstream connects
      # (a pool that closes what it needs again shows here).
      nstat -n >/dev/null 2>&1 || true
      r=$(wrk_one "$t" /v1/chat/completions "$c" "$TMP/chat.json" "$(( DUR > 3 ? 3 : DUR ))")
      o=$(nstat 2>/dev/null | awk '/TcpActiveOpens/{print $2}')
      up=—; [ -n "$o" ] && up=$(( o > c ? o - c : 0 )) # — without nstat (iproute2)
      echo "$c $t $r $up" >>"$TMP/curve"
    done
  done

  echo "bench: $NSTREAMS open SSE streams" >&2
  stop_gw; start_gw
  for _ in 1 2 3; do curl -s -o /dev/null -H 'content-type: application/json' -d @"$TMP/chat.json" $URL_gateway/v1/chat/completions; done
  RSS0=$(RSS_kib $GW_PID)
  SSE_MODEL=delay-200000 pin_load "$BIN/sse_client" 127.0.0.1 $GW_PORT /v1/chat/completions "$NSTREAMS" 30 1 \
     >"$TMP/many.out" 2>"$TMP/many.err" || true
  HWM=$(HWM_kib $GW_PID)
  MANY=$(sed 's/[a-z_0-9]*=//g' "$TMP/many.out")
  stop_gw

  echo "bench: https upstream (tests/bench/tls.sh)" >&2
  SUT_CPU=$SUT_CPU LOAD_CPU=$LOAD_CPU CONNS=32 ROUNDS=$ROUNDS DUR=$DUR "$HERE/tls.sh" "$GW_BIN" \
    >"$TMP/tls" 2>"$TMP/tls.err" || echo "bench: tls.sh failed: $(tail -1 "$TMP/tls.err")" >&2
fi

# ---- RESULTS.md --------------------------------------------------------------------
row() { awk -v s="$1" -v t="$2" '$1==s && $2==t{$1="";$2=""; print substr($0,3)}' "${3:-$TMP/rows}"; }
f1() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a==""||b==""||b==0) print "—"; else printf "%.2f×", a/b }'; }
met() { if awk "BEGIN{exit !($1)}"; then echo "**met**"; else echo "**missed**"; fi; }
{
echo "# Benchmark results"
echo
echo "Generated by \`make bench\` ($(date -u '+%Y-%m-%d %H:%M UTC')). Numbers from one run: compare the"
echo "ratios, not absolute numbers across runs (the machine is shared and noisy)."
echo
echo "- machine: $(nproc) cores, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
echo "- commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet -- . ':!tests/bench/RESULTS.md' 2>/dev/null || echo ' (+ uncommitted changes)')"
echo "- gateway: \`$GW_BIN\` (${BUILD_TYPE:-unknown build type}), WORKERS=$GW_WORKERS, pinned to cpu $SUT_CPU (taskset). nginx 1 worker and Portkey (node) pinned to cpu $SUT_CPU too."
echo "- load generators (wrk -t1, -t2 from 64 conns; h2load; sse_client) and the C mock upstream (1 thread): cpu $LOAD_CPU."
echo "- BENCH_DUR=${DUR}s per measurement, BENCH_ROUNDS=$ROUNDS (turns A B C D …, median kept; after each Portkey run the next waits until Portkey is idle). Peers: $([ $HAVE_PEERS = 1 ] && echo "nginx + Portkey 1.15.2 from ../shared/bench/peers" || echo "not available, direct and gateway only")."
echo
echo "Commands: \`wrk -t1 -cC -dDs --latency -s tests/bench/post.lua URL\` (BODY_FILE = the request body);"
echo "\`tests/bench/bin/sse_client 127.0.0.1 PORT /v1/chat/completions C D\`; \`h2load -D D -c 32 -m 1 -d BODY URL\`"
echo "(gRPC: a 5-byte-framed ChatCompletionRequest with \`content-type: application/grpc\`); the mock: \`tests/bench/bin/mock_upstream 9000 1\`."
echo
echo "## HTTP/1.1 (wrk): req/s, latency in µs"
echo
echo "| scenario | target | req/s | p50 | p99 | errors | req/s vs direct | vs nginx | vs Portkey |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
for s in chat-c1 chat-c32 chat-c256 emb-c32 emb64-c32 big-c8 anthropic-c32; do
  for t in $(targets); do
    r=$(row $s $t); [ -n "$r" ] || continue
    set -- $r
    d=$(row $s direct | cut -d' ' -f1); n=$(row $s nginx | cut -d' ' -f1); p=$(row $s portkey | cut -d' ' -f1)
    echo "| $s | $t | $1 | $2 | $3 | $4 | $(f1 $1 "$d") | $(f1 $1 "$n") | $(f1 $1 "$p") |"
  done
done
echo
echo "chat = OpenAI chat completion (0.2 KB request, 0.4 KB answer); emb = embeddings (256 floats, as"
echo "JSON numbers: the gateway prints each one; the mock sends 64 different vectors in turn);"
echo "emb64 = the same with \"encoding_format\":\"base64\" (the official SDKs' default; no number printed);"
echo "big = a 100 KB prompt, 8 connections. anthropic = the chat to an Anthropic backend (the mock's"
echo "/v1/messages): the gateway and Portkey translate the OpenAI request and the Message answer;"
echo "direct and nginx send the same request already in Anthropic's shape (nothing translated)."
echo
echo "## Streaming (sse_client): 21 events per stream"
echo
echo "| scenario | target | events/s | TTFB p50 | TTFB p99 | relay p50 | relay p99 | errors |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
while read -r s t a b c d e f; do echo "| $s | $t | $a | $b | $c | $d | $e | $f |"; done <"$TMP/sse"
echo
echo "sse-relay-c1: one connection, the mock paces events 1 ms apart (model delay-1000): TTFB is request →"
echo "first event, relay is the one-way delay of each event from the mock's write (stamped in its id) to"
echo "the client's read. sse-thru-c32: 32 connections, the mock sends all events at once."
echo
echo "## One hop's cost at one connection (chat p50, streaming TTFB and relay p50, µs)"
echo
echo "| target | runs on | chat p50 | added | TTFB p50 | added | relay p50 | added |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
hd=$(row hop-c1 direct); hs=$(awk '$1=="hop-sse" && $2=="direct"' "$TMP/sse")
for t in $HOP_T; do
  case $t in direct) where="cpu $LOAD_CPU (mock and client)";; nginx) where="cpu $SUT_CPU";; gateway) where="cpu $SUT_CPU";;
    gwpoll) where="cpu $SUT_CPU, BUSY_POLL_US=$POLL_US";; gw0|nginx0) where="cpu $LOAD_CPU, with mock and client";; esac
  case $t in gwpoll) name="gateway, polling";; gw0) name="gateway";; nginx0) name="nginx";; *) name=$t;; esac
  r=$(row hop-c1 $t); e=$(awk -v t=$t '$1=="hop-sse" && $2==t' "$TMP/sse")
  [ -n "$r" ] && [ -n "$e" ] || continue
  echo "$r|$hd|$e|$hs" | awk -F'|' -v n="$name" -v w="$where" '{split($1,a," "); split($2,d," "); split($3,b," "); split($4,c," ");
    printf "| %s | %s | %d | +%d | %.0f | +%.0f | %.0f | +%.0f |\n", n, w, a[2], a[2]-d[2], b[4], b[4]-c[4], b[6], b[6]-c[6]}'
done
echo
echo "Same scenarios as chat-c1 and sse-relay-c1, in turns in this one run. \"added\" is over direct."
echo "On the default pinning every hop wakes a sleeping vCPU on the other core (on this VM that,"
echo "not the proxy's work, is most of the added time: compare the two placements of nginx)."
if [ "$QUICK" != 1 ]; then
echo
echo "## h2c and gRPC (h2load, 32 connections, 1 stream each)"
echo
echo "| scenario | target | req/s | mean µs | errors | bytes/req |"
echo "|---|---|---:|---:|---:|---:|"
while read -r s t a b c d; do echo "| $s | $t | $a | $b | $c | $d |"; done <"$TMP/h2"
echo
echo "## Cost growth (chat, wrk ${DUR}s capped at 3 s): req/s and p99 µs"
echo
UP=$(targets "nginx gateway"); [ $HAVE_PEERS = 1 ] || UP=gateway
printf '| conns |'; for t in $(targets "direct nginx gateway"); do printf ' %s req/s | %s p99 |' $t $t; done
printf ' gateway/nginx req/s |'; for t in $UP; do printf ' %s upstream connects |' $t; done; echo
printf '|---:|'; for t in $(targets "direct nginx gateway"); do printf -- '---:|---:|'; done; printf -- '---:|'
for t in $UP; do printf -- '---:|'; done; echo
for c in $CURVE; do
  printf '| %s |' $c
  for t in $(targets "direct nginx gateway"); do awk -v c=$c -v t=$t '$1==c && $2==t{printf " %s | %s |", $3, $5}' "$TMP/curve"; done
  g=$(awk -v c=$c '$1==c && $2=="gateway"{print $3}' "$TMP/curve"); n=$(awk -v c=$c '$1==c && $2=="nginx"{print $3}' "$TMP/curve")
  printf ' %s |' "$(f1 "$g" "$n")"
  for t in $UP; do awk -v c=$c -v t=$t '$1==c && $2==t{printf " %s |", $7}' "$TMP/curve"; done
  echo
done
echo
echo "Upstream connects: TCP connections opened during the run (nstat TcpActiveOpens) less the"
echo "client's own; a pool that keeps its connections opens about as many as the connections."
echo
echo "## $NSTREAMS concurrent SSE streams through the gateway"
echo
set -- ${MANY:-0 0 0 0 0 0 0 0 0}
echo "streams completed $1 of $NSTREAMS, dropped $4, errors $3; gateway RSS before ${RSS0:-?} KiB, peak ${HWM:-?} KiB:"
PER=$(awk -v a="${RSS0:-0}" -v b="${HWM:-0}" -v n="$NSTREAMS" 'BEGIN{printf "%.1f", (b-a)/n}')
echo "**$PER KiB per stream**. ($(cat "$TMP/many.err" 2>/dev/null | tr '\n' ' ')each stream: 21 events 200 ms apart.)"
if [ -s "$TMP/tls" ]; then
echo
echo "## An https:// upstream (tests/bench/tls.sh): chat, 32 connections"
echo
echo "| target | req/s | p50 | p99 | CPU µs per request | CPU vs nginx |"
echo "|---|---:|---:|---:|---:|---:|"
awk 'NR>1 && $1 ~ /^[0-9]+$/ {n[$2]++; q[$2,n[$2]]=$3; a[$2,n[$2]]=$4; b[$2,n[$2]]=$5; c[$2,n[$2]]=$6; if (!($2 in seen)) {seen[$2]=1; order[++k]=$2}}
  function med(arr, t,   i, j, v, m, x) { m=n[t]; for (i=1;i<=m;i++) v[i]=arr[t,i]+0;
    for (i=1;i<=m;i++) for (j=i+1;j<=m;j++) if (v[j]<v[i]) {x=v[i]; v[i]=v[j]; v[j]=x}; return v[int((m+1)/2)] }
  END { nc=med(c, "nginx"); for (i=1;i<=k;i++) { t=order[i];
    printf "| %s | %.0f | %s | %s | %.1f | %s |\n", t, med(q,t), a[t,int((n[t]+1)/2)], b[t,int((n[t]+1)/2)], med(c,t),
      (nc ? sprintf("%.2f×", med(c,t)/nc) : "—") } }' "$TMP/tls"
echo
echo "Medians of $ROUNDS rounds. nginx = \`proxy_pass https://\` with a keep-alive pool; native = the gateway's"
echo "own client (the default); curl-h1 / curl-h2 = \`UPSTREAM_CLIENT=curl\` to an upstream that offers"
echo "HTTP/1.1 only / HTTP/2 too (curl prefers HTTP/2, as cloud providers offer). The upstream is nginx"
echo "terminating TLS in front of the mock, on cpu $LOAD_CPU with the load, which caps req/s: the CPU column"
echo "(the system's own time on cpu $SUT_CPU) is the measure. p50/p99 are from the middle round."
fi
fi
echo
echo "## Targets"
echo
echo "| target | measured | verdict |"
echo "|---|---|---|"
g32=$(row chat-c32 gateway); n32=$(row chat-c32 nginx); p32=$(row chat-c32 portkey)
g1=$(row chat-c1 gateway); d1=$(row chat-c1 direct)
if [ -n "$n32" ]; then
  set -- $g32; G=$1 GP50=$2 GP99=$3 GE=$4; set -- $n32; N=$1 NP50=$2 NP99=$3
  echo "| chat c=32 ≥ 1.0× nginx req/s | $(f1 $G $N) | $(met "$G >= $N && $GE == 0") |"
  echo "| chat c=32 p50/p99 ≤ nginx's | $GP50/$GP99 µs vs $NP50/$NP99 µs | $(met "$GP50 <= $NP50 && $GP99 <= $NP99") |"
  [ -n "$p32" ] && { set -- $p32; echo "| chat c=32 ≥ 30× Portkey req/s | $(f1 $G $1) | $(met "$G >= 30 * $1") |"; }
fi
set -- $g1; G1=$1 GP=$2; set -- $d1; DP=$2
echo "| chat c=1 added p50 over direct ≤ 25 µs | $((GP - DP)) µs ($GP vs $DP) | $(met "$GP - $DP <= 25") |"
gs=$(awk '$1=="sse-relay-c1" && $2=="gateway"' "$TMP/sse"); ds=$(awk '$1=="sse-relay-c1" && $2=="direct"' "$TMP/sse")
if [ -n "$gs" ] && [ -n "$ds" ]; then
  set -- $gs; GT=$4 GR=$6; set -- $ds; DT=$4 DR=$6
  echo "| streaming TTFB within 50 µs of direct | +$(awk "BEGIN{printf \"%.0f\", $GT-$DT}") µs ($GT vs $DT) | $(met "$GT - $DT <= 50") |"
  echo "| relaying an event adds ≤ 10 µs (p50) | +$(awk "BEGIN{printf \"%.0f\", $GR-$DR}") µs ($GR vs $DR) | $(met "$GR - $DR <= 10") |"
fi
for t in gwpoll gw0; do
  r=$(row hop-c1 $t); e=$(awk -v t=$t '$1=="hop-sse" && $2==t' "$TMP/sse")
  [ -n "$r" ] && [ -n "$hd" ] && [ -n "$e" ] && [ -n "$hs" ] || continue
  [ $t = gwpoll ] && how="polling (BUSY_POLL_US=$POLL_US), cpu $SUT_CPU" || how="on the load core (cpu $LOAD_CPU)"
  set -- $r; GP=$2; set -- $hd; DP=$2; set -- $e; GT=$4 GR=$6; set -- $hs; DT=$4 DR=$6
  echo "| the same three, gateway $how | c=1 +$((GP - DP)) µs, TTFB +$(awk "BEGIN{printf \"%.0f\", $GT-$DT}") µs, relay +$(awk "BEGIN{printf \"%.0f\", $GR-$DR}") µs | $(met "$GP - $DP <= 25") / $(met "$GT - $DT <= 50") / $(met "$GR - $DR <= 10") |"
done
if [ "$QUICK" != 1 ]; then
  set -- ${MANY:-0 0 0 0 0 0 0 0 0}
  echo "| $NSTREAMS SSE streams, ≤ 16 KiB each, none dropped | $PER KiB, $1 completed, $4 dropped | $(met "$PER <= 16 && $4 == 0 && $1 == $NSTREAMS") |"
  ge=$(awk '$1=="grpc-unary-c32" && $2=="gateway"{print $3}' "$TMP/h2"); ee=$(awk '$1=="grpc-unary-c32" && $2=="echo"{print $3}' "$TMP/h2")
  [ -n "$ge" ] && [ -n "$ee" ] && echo "| gRPC unary ≥ 0.8× bare gRPC-core echo | $(f1 $ge $ee) ($ge vs $ee req/s) | $(met "$ge >= 0.8 * $ee") |"
  gl=$(awk '$1=="grpc-unary-builtin-c32" && $2=="gateway"{print $3}' "$TMP/h2")
  [ -n "$gl" ] && [ -n "$ee" ] && echo "| gRPC built-in unary (ListModels, no upstream) ≥ 0.8× bare gRPC-core echo | $(f1 $gl $ee) ($gl vs $ee req/s) | $(met "$gl >= 0.8 * $ee") |"
  gc=$(awk '$1=="grpc-unary-c32" && $2=="gateway-grpc-core"{print $3}' "$TMP/h2")
  [ -n "$gc" ] && [ -n "$ee" ] && echo "| the same with gRPC core serving the gRPC port (GRPC_SERVER=core) | $(f1 $gc $ee) ($gc vs $ee req/s) | $(met "$gc >= 0.8 * $ee") |"
fi
} >"$OUT"
echo "bench: wrote $OUT" >&2
cat "$OUT"

#!/usr/bin/env bash
# gRPC unary A/B: two gateway binaries next to the bare gRPC-core echo server
# (grpc_echo), in alternating rounds, so that a noisy machine hits all of them
# alike. For each round and target:
#   req/s     h2load -D $DUR -c32 -m1, 5-byte-framed protobuf, application/grpc
#   cpu_us    CPU time of the server per call (perf stat task-clock over $N calls)
#   cs        context switches of the server per call (same run)
# and, with IR=1, user-space instructions per call once per target
# (valgrind --tool=callgrind over $IR_N calls after a warm-up; robust to noise,
# blind to the kernel).
#   tests/bench/grpc_ab.sh BEFORE_BIN AFTER_BIN
#   ROUNDS (3)  DUR (5)  N (30000)  IR (0)  IR_N (5000)  SUT_CPU (1)  LOAD_CPU (0)
#   HTTP_PORT (0)  1: also the same two calls on B's HTTP port (b-list-h, b-chat-h)
#   A_SERVER, B_SERVER: GRPC_SERVER for A and B (native: the gateway's own HTTP/2
#                  server, the default; core: gRPC core's), e.g. A_SERVER=core to
#                  compare the two servers with one binary
# Scenarios: aigateway.v1.Inference/ListModels (built in, no upstream) and
# CreateChatCompletion through to the HTTP mock upstream (tests/bench/bin/
# mock_upstream); one worker each (WORKERS=1), like run.sh.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=$HERE/bin
A=${1:?before binary}
B=${2:?after binary}
ROUNDS=${ROUNDS:-3} DUR=${DUR:-5} N=${N:-30000} IR=${IR:-0} IR_N=${IR_N:-5000}
SUT_CPU=${SUT_CPU:-1} LOAD_CPU=${LOAD_CPU:-0} HTTP_PORT=${HTTP_PORT:-0}
A_SERVER=${A_SERVER:-native} B_SERVER=${B_SERVER:-native}
MOCK=19400 A_HTTP=19480 A_GRPC=19451 B_HTTP=19481 B_GRPC=19452 ECHO=19471 IR_PORT=19461
TMP=$(mktemp -d /tmp/aigw-grpc-ab.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }
make -s -C "$HERE" >/dev/null

# Request bodies: an empty ListModelsRequest and the chat request of run.sh.
printf '\0\0\0\0\0' >"$TMP/list.grpc"
printf 'model: "gpt-4o-mini"\nmessages { role: "system" content { text: "You are a helpful assistant." } }\nmessages { role: "user" content { text: "Say hello in one short sentence." } }\nmax_tokens { value: 64 }\n' |
  protoc -I "$ROOT/proto" -I /usr/share/gocode/src/github.com/gogo/googleapis -I /usr/include \
    --encode=aigateway.v1.ChatCompletionRequest "$ROOT/proto/aigateway/v1/inference.proto" >"$TMP/chat.pb"
/usr/bin/python3 -c "import struct,sys; d=open(sys.argv[1],'rb').read(); sys.stdout.buffer.write(b'\0'+struct.pack('>I',len(d))+d)" "$TMP/chat.pb" >"$TMP/chat.grpc"

gw_env() { # HTTP_PORT GRPC_PORT
  echo TARGET_API_URL=http://127.0.0.1:$MOCK/v1 TARGET_API_KEY=sk-mock PORT=$1 GRPC_PORT=$2 \
    WORKERS=1 MAX_CONNS_PER_IP=0 LOG_LEVEL=warn
}
taskset -c "$LOAD_CPU" "$BIN/mock_upstream" $MOCK 1 >"$TMP/mock.log" 2>&1 &
PIDS+=($!)
taskset -c "$SUT_CPU" "$BIN/grpc_echo" $ECHO 1 >"$TMP/echo.log" 2>&1 &
ECHO_PID=$!; PIDS+=($!)
env $(gw_env $A_HTTP $A_GRPC) GRPC_SERVER=$A_SERVER taskset -c "$SUT_CPU" "$A" >"$TMP/a.log" 2>&1 &
A_PID=$!; PIDS+=($!)
env $(gw_env $B_HTTP $B_GRPC) GRPC_SERVER=$B_SERVER taskset -c "$SUT_CPU" "$B" >"$TMP/b.log" 2>&1 &
B_PID=$!; PIDS+=($!)
for p in $MOCK $ECHO $A_GRPC $B_GRPC; do wait_port $p; done
sleep 1

h2() { taskset -c "$LOAD_CPU" h2load "$@" -c32 -m1 -H 'content-type: application/grpc' -H 'te: trailers'; }
# rps PORT PATH BODY
rps() {
  h2 -D "$DUR" --warm-up-time=1 -d "$TMP/$3" "http://127.0.0.1:$1$2" 2>&1 |
    awk '/finished in/{r=$4} /^requests:/{if ($8 != $2) bad=1} END{print (bad ? "ERR" : r)}'
}
# cpu PID PORT PATH BODY -> "cpu_us_per_call cs_per_call"
cpu() {
  perf stat -x, -e task-clock,context-switches -p "$1" -o "$TMP/ps" &
  local pp=$!
  sleep 0.3
  h2 -n "$N" -d "$TMP/$4" "http://127.0.0.1:$2$3" >"$TMP/h2.out" 2>&1
  kill -INT $pp; wait $pp 2>/dev/null || true
  grep -q "$N succeeded" "$TMP/h2.out" || echo "warning: not all calls succeeded" >&2
  awk -F, -v n="$N" '/task-clock/{t=$1} /context-switches/{c=$1} END{printf "%.1f %.2f", t*1000/n, c/n}' "$TMP/ps"
}
LIST=/aigateway.v1.Inference/ListModels CHAT=/aigateway.v1.Inference/CreateChatCompletion
printf '%-6s %-12s %10s %8s %8s\n' round target req/s cpu_us cs/call
for r in $(seq 1 "$ROUNDS"); do
  for t in echo a-list b-list a-chat b-chat $([ "$HTTP_PORT" = 1 ] && echo b-list-h b-chat-h); do
    case $t in
      echo) pid=$ECHO_PID port=$ECHO path=/bench.Echo/Echo body=list.grpc ;;
      a-list) pid=$A_PID port=$A_GRPC path=$LIST body=list.grpc ;;
      b-list) pid=$B_PID port=$B_GRPC path=$LIST body=list.grpc ;;
      a-chat) pid=$A_PID port=$A_GRPC path=$CHAT body=chat.grpc ;;
      b-chat) pid=$B_PID port=$B_GRPC path=$CHAT body=chat.grpc ;;
      b-list-h) pid=$B_PID port=$B_HTTP path=$LIST body=list.grpc ;;
      b-chat-h) pid=$B_PID port=$B_HTTP path=$CHAT body=chat.grpc ;;
    esac
    printf '%-6s %-12s %10s %8s %8s\n' "$r" "$t" "$(rps $port $path $body)" $(cpu $pid $port $path $body)
  done
done

[ "$IR" = 1 ] || exit 0
# ir LABEL PATH BODY ENV -- server argv : Ir per call under callgrind
ir() {
  local label=$1 path=$2 body=$3 envs=$4; shift 5
  local out="$TMP/cg.$label"
  env $envs valgrind --tool=callgrind --callgrind-out-file="$out" --instr-atstart=no "$@" >"$TMP/vg.$label.log" 2>&1 &
  local vp=$!
  wait_port $IR_PORT; sleep 2
  h2 -n 500 -d "$TMP/$body" "http://127.0.0.1:$IR_PORT$path" >/dev/null
  callgrind_control -i on $vp >/dev/null 2>&1
  h2 -n "$IR_N" -d "$TMP/$body" "http://127.0.0.1:$IR_PORT$path" | grep -q "$IR_N succeeded" || echo "warning: $label: failures" >&2
  callgrind_control -i off $vp >/dev/null 2>&1
  callgrind_control -d $vp >/dev/null 2>&1
  sleep 1; kill $vp; wait $vp 2>/dev/null || true
  local tot
  tot=$(cat "$out".* | awk '/^totals:/{s+=$2} END{print s}')
  printf '%-12s Ir/call %d\n' "$label" $((tot / IR_N))
}
ir echo /bench.Echo/Echo list.grpc "" -- "$BIN/grpc_echo" $IR_PORT 1
for s in a b; do
  bin=$A; [ $s = b ] && bin=$B
  srv=$A_SERVER; [ $s = b ] && srv=$B_SERVER
  ir $s-list $LIST list.grpc "$(gw_env 19482 $IR_PORT) GRPC_SERVER=$srv" -- "$bin"
  ir $s-chat $CHAT chat.grpc "$(gw_env 19482 $IR_PORT) GRPC_SERVER=$srv" -- "$bin"
done

#!/usr/bin/env bash
# Many client connections: nginx (the peers' configuration) and two gateway
# binaries in front of the C mock, in alternating rounds of wrk, with the TCP
# connections each run opened (TcpActiveOpens; wrk's own CONNS are in it, the
# rest are upstream connects). A proxy whose upstream pool closes what it
# will need again shows as thousands of connects per run.
#   tests/bench/conns.sh GW_A GW_B
#   CONNS (1024)  ROUNDS (3)  DUR (3)  THREADS (wrk, 2)
# One gateway worker and one nginx worker pinned to cpu 1; mock and wrk on
# cpu 0. Needs wrk, nginx, nstat (iproute2) and ../shared/bench/peers.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
A=${1:?gateway binary A}
B=${2:?gateway binary B}
CONNS=${CONNS:-1024} ROUNDS=${ROUNDS:-3} DUR=${DUR:-3} THREADS=${THREADS:-2}
MOCK=19811 NGINX=18810 PA=18811 PB=18812
PEERS=$ROOT/../shared/bench/peers
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
bench_init conns
for t in wrk nginx nstat taskset; do command -v $t >/dev/null || { echo "conns: $t missing" >&2; exit 1; }; done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
make -s -C "$HERE" >/dev/null
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

printf '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}],"max_tokens":64}' >"$TMP/body"
taskset -c 0 "$HERE/bin/mock_upstream" $MOCK 1 >/dev/null 2>&1 &
PIDS+=($!)
PEERS_CONF=$PEERS/nginx.conf.in bench_nginx nginx $MOCK $NGINX 'daemon off;'
bench_gateway 1 "$A" $PA 28811 $MOCK
bench_gateway 1 "$B" $PB 28812 $MOCK
for p in $MOCK $NGINX $PA $PB; do wait_port "$p" || { echo "conns: port $p never opened" >&2; exit 1; }; done
sleep 1

printf '%-6s %-6s %10s %9s %9s %9s\n' round target req/s p50 p99 connects
for r in $(seq 1 "$ROUNDS"); do
  for t in nginx A B; do
    case $t in nginx) port=$NGINX ;; A) port=$PA ;; B) port=$PB ;; esac
    nstat -n >/dev/null
    out=$(BODY_FILE="$TMP/body" taskset -c 0 wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --timeout 10s \
      --latency -s "$HERE/post.lua" "http://127.0.0.1:$port/v1/chat/completions" 2>&1)
    opens=$(nstat | awk '/TcpActiveOpens/{print $2}')
    echo "$out" | awk -v r="$r" -v t="$t" -v o="${opens:-0}" '
      /Requests\/sec/{q=$2} $1=="50%"{a=$2} $1=="99%"{b=$2} /Non-2xx|Socket errors/{e=1}
      END{printf "%-6s %-6s %10s %9s %9s %9s%s\n", r, t, q, a, b, o, (e ? "  (errors)" : "")}'
  done
done

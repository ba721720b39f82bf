#!/usr/bin/env bash
# Where a request's CPU goes, the gateway beside nginx: both run (one worker
# each, pinned to cpu 1) in front of the C mock, and wrk (cpu 0, with the
# mock) loads them in alternating rounds; each round reads the proxy's user
# and system CPU time from /proc before and after, divided by the requests
# served. At low connection counts both are CPU-bound on cpu 1, so the split
# says which side of the system call line a difference in req/s comes from.
#   tests/bench/cpu.sh [CONNS] [ROUNDS] [DUR]     (defaults 4, 3, 4 s)
#   GW_BIN (./ai-gateway); nginx with ../shared/bench/peers/nginx.conf.in.
# Prints a line per round: req/s, wrk's p50 and p99 (µs), user and system µs per
# request, minor faults.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CONNS=${1:-4}
ROUNDS=${2:-3}
DUR=${3:-4}
GW=${GW_BIN:-$ROOT/ai-gateway}
PEERS_CONF=$ROOT/../shared/bench/peers/nginx.conf.in
MOCK=19841 PG=18841 PN=18842
for t in wrk nginx taskset; do
  command -v $t >/dev/null || { echo "cpu: $t missing" >&2; exit 1; }
done
[ -f "$PEERS_CONF" ] || { echo "cpu: $PEERS_CONF missing" >&2; exit 1; }
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
bench_init cpu
make -s -C "$HERE" OUT="$HERE/bin" >/dev/null
printf '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":64}' >"$TMP/chat.json"

taskset -c 0 "$HERE/bin/mock_upstream" $MOCK 1 >/dev/null 2>&1 &
PIDS+=($!)
# one process: its CPU time is the proxy's, with no master to add in
bench_nginx px $MOCK $PN 'daemon off; master_process off;'
NG=$NGINX_PID
bench_gateway 1 "$GW" $PG 29841 $MOCK
GWP=$GW_PID
for port in $PG $PN; do
  bench_wait_chat "$port" "$TMP/chat.json" ||
    { echo "cpu: nothing answers on $port" >&2; cat "$TMP/gw-$PG.log" "$TMP/px/nginx.log" >&2; exit 1; }
done

ticks() { awk '{print $14, $15, $10}' "/proc/$1/stat"; } # utime stime minflt
HZ=$(getconf CLK_TCK)
echo "cpu: chat, $CONNS connections, $ROUNDS rounds of ${DUR}s; µs per request"
for r in $(seq 1 "$ROUNDS"); do
  for who in gateway nginx; do
    pid=$GWP port=$PG
    [ $who = nginx ] && pid=$NG port=$PN
    BODY_FILE=$TMP/chat.json taskset -c 0 wrk -t1 -c"$CONNS" -d1s -s "$HERE/post.lua" \
      http://127.0.0.1:$port/v1/chat/completions >/dev/null
    read -r u0 s0 f0 <<<"$(ticks $pid)"
    read -r n _ p50 p99 _ <<<"$(BODY_FILE=$TMP/chat.json taskset -c 0 wrk -t1 -c"$CONNS" -d"${DUR}s" --latency \
      -s "$HERE/post.lua" http://127.0.0.1:$port/v1/chat/completions | bench_wrk_summary)"
    read -r u1 s1 f1 <<<"$(ticks $pid)"
    awk -v who=$who -v r="$r" -v n="$n" -v d="$DUR" -v u=$((u1 - u0)) -v s=$((s1 - s0)) \
      -v f=$((f1 - f0)) -v hz="$HZ" -v p50="$p50" -v p99="$p99" 'BEGIN {
        printf "round %d %-7s %8.0f req/s  p50 %5.0f  p99 %5.0f  user %5.2f  sys %5.2f  total %5.2f  minflt %d\n",
          r, who, n / d, p50, p99, u / hz * 1e6 / n, s / hz * 1e6 / n, (u + s) / hz * 1e6 / n, f }'
  done
done

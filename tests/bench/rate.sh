#!/usr/bin/env bash
# Latency at an equal, fixed rate: the gateway beside nginx (one worker each,
# pinned to cpu 1; the C mock and h2load on cpu 0), in alternating rounds of
# `h2load --h1 -c CONNS --rps RPS` (RPS requests per second per connection).
# wrk is closed-loop: a faster proxy gets more requests and also loads the
# load generator's core harder, so its p99 is not measured at the same load
# as the slower one's. Here both serve the same rate. h2load prints no
# percentiles: min, max, mean and sd of the time for a request.
#   tests/bench/rate.sh [CONNS] [RPS] [ROUNDS] [DUR]     (32, 700, 3, 4 s)
#   GW_BIN (./ai-gateway); nginx with ../shared/bench/peers/nginx.conf.in.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
CONNS=${1:-32} RPS=${2:-700} ROUNDS=${3:-3} DUR=${4:-4}
GW=${GW_BIN:-$HERE/../../ai-gateway}
MOCK=19861 PG=18861 PN=18862
for t in h2load nginx taskset; do command -v $t >/dev/null || { echo "rate: $t missing" >&2; exit 1; }; done
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
bench_init rate
make -s -C "$HERE" OUT="$HERE/bin" >/dev/null
printf '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}],"max_tokens":64}' >"$TMP/chat.json"
taskset -c 0 "$HERE/bin/mock_upstream" $MOCK 1 >/dev/null 2>&1 &
PIDS+=("$!")
bench_gateway 1 "$GW" $PG 28861 $MOCK
bench_nginx px $MOCK $PN "daemon off;"
for p in $PG $PN; do
  bench_wait_chat "$p" "$TMP/chat.json" || { echo "rate: nothing answers on $p" >&2; exit 1; }
done
echo "rate: chat, $CONNS connections x $RPS req/s, $ROUNDS rounds of ${DUR}s; time for a request"
for r in $(seq 1 "$ROUNDS"); do
  for who in gateway nginx; do
    p=$PG
    [ $who = nginx ] && p=$PN
    taskset -c 0 h2load --h1 -c "$CONNS" -m 1 -D "$DUR" --rps "$RPS" -d "$TMP/chat.json" \
      -H 'content-type: application/json' "http://127.0.0.1:$p/v1/chat/completions" |
      awk -v w=$who -v r="$r" '/^finished/ {rps = $4} /^requests:/ {bad = $10 + $12 + $14}
        /^time for request:/ {printf "round %d %-7s %8.0f req/s  min %7s  max %7s  mean %7s  sd %7s  failed %d\n",
          r, w, rps, $4, $5, $6, $7, bad}'
  done
done

#!/bin/bash
# Side by side on one machine, alternating 3 rounds of wrk -c32 4 s: the C mock direct,
# nginx (1 worker), the gateway with UPSTREAM_CLIENT=curl and with the native client (the
# default; WORKERS=1). Then 3 alternating rounds of SSE streams (sse_client -c32 4 s) through
# both gateways, with the gateway's CPU time and voluntary context switches per stream.
# Needs make build, make -C tests/bench, nginx, and BODY in /tmp/body.json (a chat request).
cd "$(dirname "$0")/../.."
B=tests/bench/bin
taskset -c 0 $B/mock_upstream 19700 1 > /tmp/abm.log 2>&1 & M=$!
sleep 0.3
mkdir -p /tmp/abng/logs /tmp/abng/tmp
sed -e "s#@DIR@#/tmp/abng#g" -e "s#@UPSTREAM@#127.0.0.1:19700#g" -e "s#@PORT@#18788#g" -e "s#@WORKERS@#1#g" ../shared/bench/peers/nginx.conf.in > /tmp/abng/nginx.conf
taskset -c 1 nginx -p /tmp/abng -c /tmp/abng/nginx.conf -g 'daemon off;' 2>/tmp/abng/err.log & N=$!
UPSTREAM_CLIENT=curl TARGET_API_URL=http://127.0.0.1:19700/v1 TARGET_API_KEY=x PORT=18701 GRPC_PORT=29701 WORKERS=1 LOG_LEVEL=warn taskset -c 1 ./ai-gateway > /tmp/abg1.log 2>&1 & G1=$!
UPSTREAM_CLIENT=native TARGET_API_URL=http://127.0.0.1:19700/v1 TARGET_API_KEY=x PORT=18702 GRPC_PORT=29702 WORKERS=1 LOG_LEVEL=warn taskset -c 1 ./ai-gateway > /tmp/abg2.log 2>&1 & G2=$!
sleep 2
for p in 18701 18702; do for i in $(seq 50); do curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' -d @/tmp/body.json http://127.0.0.1:$p/v1/chat/completions | grep -q 200 && break; sleep 0.1; done; done
export BODY_FILE=/tmp/body.json
for r in 1 2 3; do
  for t in "direct 19700" "nginx 18788" "gw-curl 18701" "gw-native 18702"; do
    set -- $t
    out=$(taskset -c 0 wrk -t1 -c32 -d4s --latency -s tests/bench/post.lua http://127.0.0.1:$2/v1/chat/completions 2>&1)
    rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
    p50=$(echo "$out" | awk '$1=="50%"{print $2}')
    p99=$(echo "$out" | awk '$1=="99%"{print $2}')
    non=$(echo "$out" | awk '/Non-2xx/{print $4}')
    echo "round $r $1 rps=$rps p50=$p50 p99=$p99 non2xx=${non:-0}"
  done
done
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
csw() { cat /proc/"$1"/task/*/status | awk '/^voluntary_ctxt/{t+=$2} END{print t}'; }
for r in 1 2 3; do
  for t in "gw-curl 18701 $G1" "gw-native 18702 $G2"; do
    set -- $t
    c0=$(cpu "$3"); s0=$(csw "$3")
    out=$(taskset -c 0 $B/sse_client 127.0.0.1 "$2" /v1/chat/completions 32 4 2>/dev/null)
    c1=$(cpu "$3"); s1=$(csw "$3")
    n=$(echo "$out" | sed -n 's/.*streams=\([0-9]*\).*/\1/p')
    echo "sse round $r $1 $(echo "$out" | awk '{print $1, $5, $6}')" \
      "cpu_us/stream=$(((c1 - c0) * 10000 / ${n:-1}))" \
      "ctxsw/stream=$(awk -v a="$s0" -v b="$s1" -v n="${n:-1}" 'BEGIN{printf "%.2f", (b-a)/n}')"
  done
done
kill $M $N $G1 $G2; wait 2>/dev/null

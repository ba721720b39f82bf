#!/bin/bash
# Side by side on one machine, alternating 3 rounds of wrk -c32 4 s: the C mock direct,
# nginx (1 worker), the gateway with curl and with UPSTREAM_CLIENT=native (WORKERS=1).
# Needs make build, make -C tests/bench, nginx, and BODY in /tmp/body.json (a chat request).
cd "$(dirname "$0")/../.."
B=tests/bench/bin
taskset -c 0 $B/mock_upstream 19700 1 > /tmp/abm.log 2>&1 & M=$!
sleep 0.3
mkdir -p /tmp/abng/logs /tmp/abng/tmp
sed -e "s#@DIR@#/tmp/abng#g" -e "s#@UPSTREAM@#127.0.0.1:19700#g" -e "s#@PORT@#18788#g" -e "s#@WORKERS@#1#g" ../shared/bench/peers/nginx.conf.in > /tmp/abng/nginx.conf
taskset -c 1 nginx -p /tmp/abng -c /tmp/abng/nginx.conf -g 'daemon off;' 2>/tmp/abng/err.log & N=$!
TARGET_API_URL=http://127.0.0.1:19700/v1 TARGET_API_KEY=x PORT=18701 GRPC_PORT=50701 WORKERS=1 LOG_LEVEL=warn taskset -c 1 ./ai-gateway > /tmp/abg1.log 2>&1 & G1=$!
UPSTREAM_CLIENT=native TARGET_API_URL=http://127.0.0.1:19700/v1 TARGET_API_KEY=x PORT=18702 GRPC_PORT=50702 WORKERS=1 LOG_LEVEL=warn taskset -c 1 ./ai-gateway > /tmp/abg2.log 2>&1 & G2=$!
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
kill $M $N $G1 $G2; wait 2>/dev/null

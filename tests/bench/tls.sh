#!/usr/bin/env bash
# An https:// upstream, the path every cloud provider takes: nginx
# (proxy_pass https with a keep-alive pool, the reference) and gateways
# with the native client and with UPSTREAM_CLIENT=curl, in alternating
# rounds of wrk against plain-http fronts. The upstream is the C mock
# behind an nginx that terminates TLS (HTTP/1.1, and HTTP/2 for curl, which
# prefers it), with a certificate made for the run and trusted through
# SSL_CERT_FILE.
#   tests/bench/tls.sh [GW_BIN]
#   CONNS (32)  ROUNDS (3)  DUR (3)  SUT_CPU (1)  LOAD_CPU (0)
# The systems under test run on SUT_CPU, one worker each; wrk, the mock and
# the TLS terminator share LOAD_CPU, which is then the bottleneck: compare the
# "cpu us/req" column (the system's own CPU time per request, from
# /proc/PID/stat) more than req/s. Needs wrk, nginx, openssl, taskset.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
GW=${1:-$ROOT/ai-gateway}
CONNS=${CONNS:-32} ROUNDS=${ROUNDS:-3} DUR=${DUR:-3} SUT_CPU=${SUT_CPU:-1} LOAD_CPU=${LOAD_CPU:-0}
MOCK=19821 TLS1=19822 TLS2=19823 NGINX=18820 NATIVE=18821 CURL=18822 CURL2=18823
TMP=$(mktemp -d /tmp/aigw-tls.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
for t in wrk nginx openssl taskset; do command -v $t >/dev/null || { echo "tls: $t missing" >&2; exit 1; }; done
make -s -C "$HERE" >/dev/null
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=aigw-bench -addext subjectAltName=IP:127.0.0.1,DNS:aigw-bench \
  -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null
printf '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}],"max_tokens":64}' >"$TMP/body"

taskset -c $LOAD_CPU "$HERE/bin/mock_upstream" $MOCK 1 >/dev/null 2>&1 &
PIDS+=($!)
nginx_conf() { # $1: folder, $2: the server blocks
  mkdir -p "$1/logs" "$1/tmp"
  cat >"$1/nginx.conf" <<EOF
worker_processes 1;
pid $1/nginx.pid;
error_log $1/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $1/tmp/body; proxy_temp_path $1/tmp/proxy; fastcgi_temp_path $1/tmp/f;
  uwsgi_temp_path $1/tmp/u; scgi_temp_path $1/tmp/s;
  keepalive_requests 1000000; keepalive_timeout 65s;
  $2
}
EOF
}
# The upstream: TLS in front of the mock.
nginx_conf "$TMP/term" "
  upstream mock { server 127.0.0.1:$MOCK; keepalive 256; }
  server {
    listen 127.0.0.1:$TLS1 ssl; listen 127.0.0.1:$TLS2 ssl http2;
    ssl_certificate $TMP/cert.pem; ssl_certificate_key $TMP/key.pem;
    location / { proxy_pass http://mock; proxy_http_version 1.1; proxy_set_header Connection \"\";
                 proxy_buffering off; }
  }"
taskset -c $LOAD_CPU nginx -p "$TMP/term" -c "$TMP/term/nginx.conf" -g 'daemon off;' 2>/dev/null &
PIDS+=($!)
# The reference: nginx as the proxy, to the same https upstream.
nginx_conf "$TMP/ref" "
  upstream up { server 127.0.0.1:$TLS1; keepalive 256; }
  server {
    listen 127.0.0.1:$NGINX backlog=4096;
    location / { proxy_pass https://up; proxy_http_version 1.1; proxy_set_header Connection \"\";
                 proxy_ssl_verify on; proxy_ssl_name aigw-bench; proxy_ssl_trusted_certificate $TMP/cert.pem;
                 proxy_ssl_session_reuse on; proxy_buffering off; proxy_request_buffering off; }
  }"
taskset -c $SUT_CPU nginx -p "$TMP/ref" -c "$TMP/ref/nginx.conf" -g 'daemon off;' 2>/dev/null &
PIDS+=($!)
NGINX_PID=$!
start() { # port, upstream port, extra env
  env $3 SSL_CERT_FILE="$TMP/cert.pem" TARGET_API_URL=https://127.0.0.1:$2/v1 TARGET_API_KEY=sk-mock \
    PORT=$1 GRPC_PORT=$(($1 + 10000)) WORKERS=1 MAX_CONNS_PER_IP=0 LOG_LEVEL=warn \
    taskset -c $SUT_CPU "$GW" >"$TMP/gw-$1.log" 2>&1 &
  PIDS+=($!)
}
start $NATIVE $TLS1 ""
NATIVE_PID=$!
start $CURL $TLS1 UPSTREAM_CLIENT=curl
CURL_PID=$!
start $CURL2 $TLS2 UPSTREAM_CLIENT=curl
CURL2_PID=$!
for p in $MOCK $TLS1 $TLS2 $NGINX $NATIVE $CURL $CURL2; do
  wait_port $p || { echo "tls: port $p never opened" >&2; exit 1; }
done
sleep 1

# CPU ticks of a process and its children (nginx: the worker is a child).
ticks() {
  local t=0 p
  for p in $1 $(pgrep -P "$1" || true); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo $t
}
hz=$(getconf CLK_TCK)
printf '%-6s %-22s %10s %9s %9s %12s\n' round target req/s p50 p99 "cpu us/req"
for r in $(seq 1 "$ROUNDS"); do
  for t in nginx native curl-h1 curl-h2; do
    case $t in
    nginx) port=$NGINX pid=$NGINX_PID ;;
    native) port=$NATIVE pid=$NATIVE_PID ;;
    curl-h1) port=$CURL pid=$CURL_PID ;;
    curl-h2) port=$CURL2 pid=$CURL2_PID ;;
    esac
    [ "$r" = 1 ] && BODY_FILE="$TMP/body" taskset -c $LOAD_CPU wrk -t1 -c"$CONNS" -d1s -s "$HERE/post.lua" \
      "http://127.0.0.1:$port/v1/chat/completions" >/dev/null 2>&1 # warm: connections, handshakes
    t0=$(ticks $pid)
    out=$(BODY_FILE="$TMP/body" taskset -c $LOAD_CPU wrk -t1 -c"$CONNS" -d"${DUR}s" --latency \
      -s "$HERE/post.lua" "http://127.0.0.1:$port/v1/chat/completions" 2>&1)
    t1=$(ticks $pid)
    echo "$out" | awk -v r="$r" -v t="$t" -v dt=$((t1 - t0)) -v hz="$hz" '
      /requests in/{n=$1} /Requests\/sec/{q=$2} $1=="50%"{a=$2} $1=="99%"{b=$2} /Non-2xx|Socket errors/{e=1}
      END{printf "%-6s %-22s %10s %9s %9s %12.1f%s\n", r, t, q, a, b, (n ? dt * 1e6 / hz / n : 0),
          (e ? "  (errors)" : "")}'
  done
done
for d in ref term; do
  [ -s "$TMP/$d/logs/error.log" ] && { echo "nginx ($d) error log, last lines:" >&2; tail -3 "$TMP/$d/logs/error.log" >&2; }
done
true

# shellcheck shell=bash
# Shared by the bench scripts (sourced): a scratch folder, the processes to
# stop when the script ends, and the wait for a proxy to answer.
#   . "$HERE/lib.sh"; bench_init NAME     -> $TMP, PIDS+=("$!") after each start

bench_init() {
  TMP=$(mktemp -d "/tmp/aigw-$1.XXXXXX")
  PIDS=()
  trap bench_cleanup EXIT INT TERM
}

bench_cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}

# bench_wait_chat PORT BODY_FILE [TRIES] [PAUSE]: until a POST of BODY_FILE to
# /v1/chat/completions on PORT answers 200 (default 100 tries 0.1 s apart).
bench_wait_chat() {
  local i
  for ((i = 0; i < ${3:-100}; i++)); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
      -d @"$2" "http://127.0.0.1:$1/v1/chat/completions")" = 200 ] && return 0
    sleep "${4:-0.1}"
  done
  return 1
}

# bench_gateway CPU BIN PORT GRPC_PORT MOCK_PORT: the gateway BIN (one worker,
# pinned to CPU) in front of the C mock on MOCK_PORT, in the background; its
# log in $TMP/gw-PORT.log, its pid in $GW_PID and PIDS.
bench_gateway() {
  env TARGET_API_URL="http://127.0.0.1:$5/v1" TARGET_API_KEY=sk-mock PORT="$3" GRPC_PORT="$4" WORKERS=1 \
    MAX_CONNS_PER_IP=0 LOG_LEVEL=warn taskset -c "$1" "$2" >"$TMP/gw-$3.log" 2>&1 &
  GW_PID=$!
  PIDS+=("$GW_PID")
}

# bench_nginx NAME UPSTREAM_PORT PORT GLOBALS: nginx with the peers'
# configuration (one worker, proxy_pass to a keep-alive pool of the
# upstream) in $TMP/NAME, pinned to cpu 1, in the background; its pid in
# $NGINX_PID and PIDS. GLOBALS: nginx -g ("daemon off;" and more).
bench_nginx() {
  local dir=$TMP/$1 conf=${PEERS_CONF:-$HERE/../../../shared/bench/peers/nginx.conf.in}
  mkdir -p "$dir/logs" "$dir/tmp"
  sed -e "s#@DIR@#$dir#g" -e "s#@UPSTREAM@#127.0.0.1:$2#g" -e "s#@PORT@#$3#g" \
    -e "s#@WORKERS@#1#g" "$conf" >"$dir/nginx.conf"
  taskset -c 1 nginx -p "$dir" -c "$dir/nginx.conf" -g "$4" >"$dir/nginx.log" 2>&1 &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
}

# wrk --latency's output (stdin) -> "REQUESTS REQ_PER_S P50_US P99_US NON_2XX"
bench_wrk_summary() {
  awk 'function us(v) { return v ~ /ms$/ ? v * 1000 : v ~ /us$/ ? v + 0 : v * 1e6 }
    / 50% / { a = us($2) } / 99% / { b = us($2) } /requests in/ { n = $1 }
    /Requests\/sec/ { r = $2 } /Non-2xx/ { e = $NF }
    END { print n, r, a, b, e + 0 }'
}

# bench_conv_zh_py OUT: tests/bench/conv_zh.json as Python's json.dumps writes it
# (ensure_ascii, the openai package's default: every non-ASCII character a
# \uXXXX escape), into OUT
bench_conv_zh_py() {
  /usr/bin/python3 -c 'import json, sys; sys.stdout.write(json.dumps(json.load(open(sys.argv[1], encoding="utf-8"))))' \
    "$HERE/conv_zh.json" >"$1"
}

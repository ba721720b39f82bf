#!/usr/bin/env bash
# The benchmark on a machine with many cores and none of the project's packages
# (a lent machine): direct (the C mock), nginx proxy_pass and the gateway, side
# by side, from the folder tests/bench/bundle.sh made.
#   tests/bench/many_core.sh BUNDLE > report.md
#   CORES   cores (and workers) of each proxy in the "many" layout (4)
#   DUR     seconds per measurement (3);  ROUNDS  turns, median kept (2)
#   LAYOUTS which layouts to run ("one many")
#   SCENARIOS  only these (default all): chat-c1 chat-c32 sse-c1 cpu chat-c256
#           chat-c1024 emb-c32 sse-c32 grpc (a before/after on a few, more ROUNDS)
# A second gateway binary in BUNDLE/bin/ai-gateway-base (bundle.sh GW_BASE_BIN=)
# runs beside the first as target "gwbase": a before/after in the same run.
# Layouts: "one": each proxy 1 worker on cpu 0, the mock on cpu 1, the load on
# cpu 2 (the 2-vCPU make bench, with the client off the mock's core). "many":
# each proxy CORES workers on cpus 0..CORES-1, the mock CORES threads on the
# next CORES cpus, the load generators on the rest. Proxies take turns: only
# one of them is measured at a time, all of them always running.
# Portkey is not run here (it needs node and its packages; see make bench).
set -eu
B=$(cd "${1:?usage: many_core.sh BUNDLE}" && pwd)
CORES=${CORES:-4} DUR=${DUR:-3} ROUNDS=${ROUNDS:-2} LAYOUTS=${LAYOUTS:-"one many"}
L=("$B/lib/ld-linux-x86-64.so.2" --library-path "$B/lib")
TS=("${L[@]}" "$B/bin/taskset")
D=$B/data
TMP=$(mktemp -d /tmp/aigw-mc.XXXXXX)
MOCK_PORT=9000 GW_PORT=8080 GW_GRPC=29051 NGINX_PORT=8088 ECHO_PORT=29071 BASE_PORT=8081 BASE_GRPC=29052
TG="direct nginx gateway"
[ -x "$B/bin/ai-gateway-base" ] && TG="$TG gwbase"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }
NCPU=$(nproc)

start_all() { # SUT_CPUS MOCK_CPUS WORKERS
  local sut=$1 mock=$2 w=$3
  "${TS[@]}" -c "$mock" "${L[@]}" "$B/bin/mock_upstream" $MOCK_PORT "$w" >"$TMP/mock.log" 2>&1 &
  PIDS+=($!); wait_port $MOCK_PORT
  mkdir -p "$TMP/nginx/logs" "$TMP/nginx/tmp"
  sed -e "s#@DIR@#$TMP/nginx#g" -e "s#@UPSTREAM@#127.0.0.1:$MOCK_PORT#g" -e "s#@PORT@#$NGINX_PORT#g" \
      -e "s#@WORKERS@#$w#g" "$D/nginx.conf.in" >"$TMP/nginx/nginx.conf"
  "${TS[@]}" -c "$sut" "${L[@]}" "$B/bin/nginx" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' \
    >/dev/null 2>"$TMP/nginx/stderr.log" &
  PIDS+=($!); PID_nginx=$!; wait_port $NGINX_PORT
  TARGET_API_URL=http://127.0.0.1:$MOCK_PORT/v1 TARGET_API_KEY=sk-mock PORT=$GW_PORT GRPC_PORT=$GW_GRPC \
    WORKERS=$w MAX_CONNS_PER_IP=0 LOG_LEVEL=warn "${TS[@]}" -c "$sut" "${L[@]}" "$B/bin/ai-gateway" >"$TMP/gw.log" 2>&1 &
  PIDS+=($!); PID_gateway=$!; wait_port $GW_PORT
  if [ -x "$B/bin/ai-gateway-base" ]; then
    TARGET_API_URL=http://127.0.0.1:$MOCK_PORT/v1 TARGET_API_KEY=sk-mock PORT=$BASE_PORT GRPC_PORT=$BASE_GRPC \
      WORKERS=$w MAX_CONNS_PER_IP=0 LOG_LEVEL=warn "${TS[@]}" -c "$sut" "${L[@]}" "$B/bin/ai-gateway-base" >"$TMP/gwb.log" 2>&1 &
    PIDS+=($!); PID_gwbase=$!; wait_port $BASE_PORT
  fi
  "${TS[@]}" -c "$sut" "${L[@]}" "$B/bin/grpc_echo" $ECHO_PORT "$w" >"$TMP/echo.log" 2>&1 &
  PIDS+=($!); wait_port $ECHO_PORT
}
stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}
port_of() { case $1 in direct) echo $MOCK_PORT;; nginx) echo $NGINX_PORT;; gateway) echo $GW_PORT;; gwbase) echo $BASE_PORT;; esac; }

# wrk_one TARGET PATH CONNS BODY THREADS -> "rps p50_us p99_us errors"
wrk_one() {
  local out
  out=$(BODY_FILE=$4 "${TS[@]}" -c "$LOAD" "${L[@]}" "$B/bin/wrk" -t"$5" -c"$3" -d"${DUR}s" --timeout 10s --latency \
        -s "$D/post.lua" "http://127.0.0.1:$(port_of "$1")$2" 2>&1)
  awk 'function us(v){ if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; if (v ~ /s$/) return (v+0)*1e6; return v }
       /Requests\/sec/{r=$2} $1=="50%"{a=us($2)} $1=="99%"{b=us($2)}
       /Non-2xx/{e+=$NF} /Socket errors/{e+=$4+$6+$8+$10}
       END{printf "%.0f %.0f %.0f %d\n", r, a, b, e}' <<<"$out"
}
# the targets in round $1's order: every other round backwards, so that no
# target always runs right after the same other one
turn() { if [ $(($1 % 2)) = 1 ]; then echo "$TG"; else echo "$TG" | tr ' ' '\n' | tac | tr '\n' ' '; fi; }
wanted() { [ -z "${SCENARIOS:-}" ] || [[ " $SCENARIOS " == *" $1 "* ]]; }
# median of ROUNDS lines of FILE by column K
median() { sort -n -k"$2" "$1" | awk '{a[NR]=$0} END{print a[int((NR+1)/2)]}'; }
# chat LAYOUT SCN PATH CONNS BODY THREADS: the three targets in turns
wrk_scn() {
  local lay=$1 scn=$2 i t
  wanted "$scn" || return 0
  for i in $(seq 1 "$ROUNDS"); do for t in $(turn "$i"); do
    wrk_one "$t" "$3" "$4" "$5" "$6" >>"$TMP/$lay.$scn.$t"
  done; done
  for t in $TG; do echo "$lay $scn $t $(median "$TMP/$lay.$scn.$t" 1)" >>"$TMP/rows"; done
}
# sse_scn LAYOUT SCN CONNS MODEL -> "ev/s ttfb50 ttfb99 relay50 relay99 errors"
sse_scn() {
  local lay=$1 scn=$2 i t
  wanted "$scn" || return 0
  for i in $(seq 1 "$ROUNDS"); do for t in $(turn "$i"); do
    SSE_MODEL=$4 "${TS[@]}" -c "$LOAD" "${L[@]}" "$B/bin/sse_client" 127.0.0.1 "$(port_of $t)" /v1/chat/completions "$3" "$DUR" |
      sed 's/[a-z_0-9]*=//g' | awk '{print $5, $6, $7, $8, $9, $3+$4}' >>"$TMP/$lay.$scn.$t"
  done; done
  for t in $TG; do echo "$lay $scn $t $(median "$TMP/$lay.$scn.$t" 2)" >>"$TMP/rows"; done
}
# h2_one URL CONNS THREADS DATA -> "rps errors"
h2_one() {
  local out
  out=$("${TS[@]}" -c "$LOAD" "${L[@]}" "$B/bin/h2load" -D "$DUR" --warm-up-time=1 -t "$3" -c "$2" -m 1 -d "$4" \
        -H 'content-type: application/grpc' -H 'te: trailers' "$1" 2>&1)
  awk '/finished in/{r=$4} /^requests:/{e=$10+$12} END{printf "%.0f %d\n", r, e}' <<<"$out"
}
# CPU time a proxy spends per request: user and system ticks of all its
# processes and threads (/proc/PID/stat; nginx's workers are the master's
# children), over one wrk run. USER_HZ is 100 on x86-64 Linux.
proxy_pids() { local p=$1; echo "$p"; awk -v pp="$p" '$4 == pp {print $1}' /proc/[0-9]*/stat 2>/dev/null; }
ticks() { for p in "$@"; do cat "/proc/$p/stat" 2>/dev/null; done | awk '{u += $14; s += $15} END {print u + 0, s + 0}'; }
# cpu_scn LAYOUT CONNS THREADS -> rows "LAYOUT cpu-cC TARGET rps user_us sys_us" (us per request)
cpu_scn() {
  local lay=$1 t pids u0 s0 u1 s1 r
  wanted cpu || return 0
  for t in $TG; do
    [ "$t" = direct ] && continue
    case $t in nginx) pids=$(proxy_pids "$PID_nginx") ;; gateway) pids=$(proxy_pids "$PID_gateway") ;;
      gwbase) pids=$(proxy_pids "$PID_gwbase") ;; esac
    read -r u0 s0 < <(ticks $pids) # one word per pid
    r=$(wrk_one "$t" /v1/chat/completions "$2" "$D/chat.json" "$3")
    read -r u1 s1 < <(ticks $pids)
    echo "$lay cpu-c$2 $t $(awk -v r="${r%% *}" -v d="$DUR" -v u="$((u1 - u0))" -v s="$((s1 - s0))" \
      'BEGIN { n = r * d; if (n < 1) n = 1; printf "%.0f %.2f %.2f", r, u * 1e4 / n, s * 1e4 / n }')" >>"$TMP/rows"
  done
}
grpc_scn() {
  local lay=$1 c=$2 thr=$3
  wanted grpc || return 0
  for _ in $(seq 1 "$ROUNDS"); do
    h2_one http://127.0.0.1:$ECHO_PORT/bench.Echo/Echo "$c" "$thr" "$D/req.grpc" >>"$TMP/$lay.grpc.echo"
    h2_one http://127.0.0.1:$GW_GRPC/aigateway.v1.Inference/CreateChatCompletion "$c" "$thr" "$D/req.grpc" >>"$TMP/$lay.grpc.chat"
    h2_one http://127.0.0.1:$GW_GRPC/aigateway.v1.Inference/ListModels "$c" "$thr" "$D/list.grpc" >>"$TMP/$lay.grpc.list"
    [ -x "$B/bin/ai-gateway-base" ] &&
      h2_one http://127.0.0.1:$BASE_GRPC/aigateway.v1.Inference/CreateChatCompletion "$c" "$thr" "$D/req.grpc" >>"$TMP/$lay.grpc.basechat"
  done
  for t in echo chat list basechat; do
    [ -f "$TMP/$lay.grpc.$t" ] || continue
    echo "$lay grpc-c$c $t $(median "$TMP/$lay.grpc.$t" 1)" >>"$TMP/rows"
  done
}

: >"$TMP/rows"
for lay in $LAYOUTS; do
  if [ "$lay" = one ]; then SUT=0 MOCK=1 LOAD=2-$((NCPU - 1)) W=1 T32=1 T256=2
  else SUT=0-$((CORES - 1)) MOCK=$CORES-$((2 * CORES - 1)) LOAD=$((2 * CORES))-$((NCPU - 1)) W=$CORES
       T32=$(( (NCPU - 2 * CORES) / 2 )); T256=$((NCPU - 2 * CORES)); fi
  # fewer cpus than the layout wants (a trial run on a small machine): the load shares the last one
  [ $((NCPU - 1)) -ge "${LOAD%-*}" ] || LOAD=$((NCPU - 1))
  [ "$T32" -ge 1 ] || T32=1; [ "$T256" -ge 1 ] || T256=1
  eval "SUT_$lay=\$SUT MOCK_$lay=\$MOCK LOAD_$lay=\$LOAD W_$lay=\$W T32_$lay=\$T32 T256_$lay=\$T256"
  echo "many_core: layout $lay (proxies cpu $SUT, mock $MOCK, load $LOAD)" >&2
  start_all "$SUT" "$MOCK" "$W"
  for t in $TG; do wrk_one $t /v1/chat/completions 8 "$D/chat.json" 1 >/dev/null; done # warm-up
  wrk_scn "$lay" chat-c1 /v1/chat/completions 1 "$D/chat.json" 1
  wrk_scn "$lay" chat-c32 /v1/chat/completions 32 "$D/chat.json" "$T32"
  sse_scn "$lay" sse-c1 1 delay-1000
  cpu_scn "$lay" 32 "$T32"
  if [ "$lay" = many ]; then
    wrk_scn "$lay" chat-c256 /v1/chat/completions 256 "$D/chat.json" "$T256"
    wrk_scn "$lay" chat-c1024 /v1/chat/completions 1024 "$D/chat.json" "$T256"
    wrk_scn "$lay" emb-c32 /v1/embeddings 32 "$D/emb.json" "$T32"
    sse_scn "$lay" sse-c32 32 gpt-4o-mini
    grpc_scn "$lay" 64 "$T32"
  else
    grpc_scn "$lay" 32 1
  fi
  stop_all
done

# ---- report ------------------------------------------------------------------------
row() { awk -v l="$1" -v s="$2" -v t="$3" '$1==l && $2==s && $3==t{$1=$2=$3=""; print substr($0,4)}' "$TMP/rows"; }
col() { row "$1" "$2" "$3" | awk -v k="$4" '{print $k}'; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN{ printf "%+.0f", a - b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo "# Many-core benchmark (tests/bench/many_core.sh)"
echo
echo "- $(date -u +%Y-%m-%dT%H:%MZ), commit $(cat "$D/commit"), gateway build $(cat "$D/build_type" 2>/dev/null || echo unknown)$([ -f "$D/base_commit" ] && echo "; gwbase: commit $(cat "$D/base_commit")")"
echo "- machine: $NCPU cpus, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo), kernel $(uname -r), cpuidle $(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo none)"
echo "- DUR=${DUR}s ROUNDS=$ROUNDS (median); wrk/h2load/sse_client and the mock pinned apart from the proxies"
for lay in $LAYOUTS; do
  eval "SUT=\$SUT_$lay MOCK=\$MOCK_$lay LOAD=\$LOAD_$lay W=\$W_$lay"
  echo
  echo "## Layout \"$lay\": nginx and the gateway $W worker(s) on cpu $SUT, mock on $MOCK, load on $LOAD"
  echo
  echo "| scenario | target | req/s | / nginx | p50 us | p99 us | errors |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  for sc in chat-c1 chat-c32 chat-c256 chat-c1024 emb-c32; do
    [ -n "$(row "$lay" $sc gateway)" ] || continue
    for t in $TG; do
      set -- $(row "$lay" $sc $t)
      echo "| $sc | $t | $1 | $(ratio "$1" "$(col "$lay" $sc nginx 1)") | $2 | $3 | $4 |"
    done
  done
  d=$(col "$lay" chat-c1 direct 2) n=$(col "$lay" chat-c1 nginx 2) g=$(col "$lay" chat-c1 gateway 2)
  echo
  b=$(col "$lay" chat-c1 gwbase 2)
  [ -n "$g" ] && echo "One connection, added p50 over direct: nginx $(sub "$n" "$d") us, gateway $(sub "$g" "$d") us${b:+, gwbase $(sub "$b" "$d") us} (target <= 25)."
  if [ -n "$(row "$lay" sse-c1 gateway)$(row "$lay" sse-c32 gateway)" ]; then
  echo
  echo "| streaming | events/s | TTFB p50/p99 us | relay p50/p99 us | errors |"
  echo "|---|---:|---|---|---|"
  fi
  for s in sse-c1 sse-c32; do for t in $TG; do
    r=$(row "$lay" $s $t); [ -n "$r" ] || continue
    set -- $r
    echo "| $s $t | $1 | $2/$3 | $4/$5 | $6 |"
  done; done
  d=$(col "$lay" sse-c1 direct 2) n=$(col "$lay" sse-c1 nginx 2) g=$(col "$lay" sse-c1 gateway 2)
  dr=$(col "$lay" sse-c1 direct 4) nr=$(col "$lay" sse-c1 nginx 4) gr=$(col "$lay" sse-c1 gateway 4)
  [ -n "$g" ] && echo
  [ -n "$g" ] && echo "Added over direct, TTFB p50: nginx $(sub "$n" "$d") us, gateway $(sub "$g" "$d") us (target <= 50); relay p50: nginx $(sub "$nr" "$dr") us, gateway $(sub "$gr" "$dr") us (target <= 10)."
  cpu=$(awk -v l="$lay" '$1 == l && $2 ~ /^cpu-/ {printf " %s %s + %s = %.1f (%s req/s);", $3, $5, $6, $5 + $6, $4}' "$TMP/rows")
  [ -n "$cpu" ] && printf '\nCPU per request at 32 connections (user + system us, all threads, one wrk run each):%s\n' "$cpu"
  c=$(awk -v l="$lay" '$1==l && $2 ~ /^grpc-/{print $2; exit}' "$TMP/rows")
  [ -n "$c" ] || continue
  echo
  e=$(col "$lay" "$c" echo 1) ch=$(col "$lay" "$c" chat 1) li=$(col "$lay" "$c" list 1)
  bc=$(col "$lay" "$c" basechat 1)
  echo "gRPC unary ($c, h2load): bare echo $e req/s; gateway CreateChatCompletion to the HTTP mock $ch ($(ratio "$ch" "$e")x echo)${bc:+, gwbase $bc ($(ratio "$bc" "$e")x)}; built-in ListModels $li ($(ratio "$li" "$e")x); errors $(col "$lay" "$c" echo 2)/$(col "$lay" "$c" chat 2)/$(col "$lay" "$c" list 2)."
done
echo
echo "Raw rows (layout scenario target values):"
echo '```'
cat "$TMP/rows"
echo '```'

#!/usr/bin/env bash
# Side by side: two gateway binaries in front of the C mock, in alternating
# rounds of wrk, so that a change is measured against its base on the same
# host at the same time (single make bench runs swing by 20% on 2 shared
# vCPUs). Each gateway runs one worker pinned to cpu 0; the mock and wrk share
# cpu 1. Prints one line per round (req/s, wrk's p50 and p99) and the medians.
#   tests/bench/ab.sh GW_A GW_B [SCENARIO] [ROUNDS] [DUR]
#   SCENARIO: chat | conv (a 10 KB conversation, conv.json) | conv-zh (a Chinese one,
#   conv_zh.json, as UTF-8) | conv-zh-py (the same as Python's json.dumps writes it:
#   \uXXXX escapes) | big (a 100 KB prompt,
#   as make bench's big-c8) | emb | emb64 | emb-text (an upstream configured with
#   embedding_encoding: float, the mock's shortest float text; MOCK_EMB_TEXT=double
#   for 17 digits) | anthropic | gemini | azure (chat to a backend of that provider: the
#   mock answers in its wire format)
#   | sse (streamed chat, make bench's sse-thru-c32: the mock sends
#   its 21 events at once; tests/bench/bin/sse_client, events/s and relay p50/p99
#   in place of req/s and latency, plus the gateway's CPU time per event)
#   (default emb), ROUNDS 3, DUR 4 (seconds);
#   CONNS=N (environment) the connections of each wrk run (32)
#   AB_BODY=FILE (environment) the request body instead of the scenario's (its
#   model gpt-4o-mini): AB_BODY=tests/bench/conv.json ... anthropic, say
# Needs wrk and taskset; builds the mock with make -C tests/bench. Its gRPC
# sibling, with CPU time and instructions per call, is grpc_ab.sh.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
A=${1:?gateway binary A}
B=${2:?gateway binary B}
SCN=${3:-emb}
ROUNDS=${4:-3}
DUR=${5:-4}
CONNS=${CONNS:-32}
MOCK=19801 PA=18801 PB=18802
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
bench_init ab
make -s -C "$HERE" OUT="$HERE/bin" >/dev/null
case $SCN in
chat)
  path=/v1/chat/completions
  printf '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}],"max_tokens":64}' >"$TMP/body"
  ;;
conv)
  path=/v1/chat/completions
  cp "$HERE/conv.json" "$TMP/body"
  ;;
conv-zh) # a Chinese conversation as UTF-8 (JavaScript's JSON.stringify)
  path=/v1/chat/completions
  cp "$HERE/conv_zh.json" "$TMP/body"
  ;;
conv-zh-py) # the same with \uXXXX escapes (Python's json.dumps)
  path=/v1/chat/completions
  bench_conv_zh_py "$TMP/body"
  ;;
big)
  path=/v1/chat/completions
  printf '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"%s"}],"max_tokens":64}' \
    "$(head -c 102400 /dev/zero | tr '\0' a)" >"$TMP/body"
  ;;
emb | emb64 | emb-text)
  path=/v1/embeddings
  fmt=; [ "$SCN" = emb64 ] && fmt=',"encoding_format":"base64"'
  printf '{"model":"text-embedding-3-small","input":"The food was delicious."%s}' "$fmt" >"$TMP/body"
  if [ "$SCN" = emb-text ]; then # an upstream without base64: its float text is read
    printf '{"backends":[{"name":"up","provider":"openai","target":"http://127.0.0.1:%s/v1","api_key_env":"MOCK_KEY","embedding_encoding":"float"}],"models":[{"name":"text-embedding-3-small","backend":"up"}]}' \
      "$MOCK" >"$TMP/config.json"
    export CONFIG_FILE="$TMP/config.json" MOCK_KEY=sk-mock
  fi
  ;;
anthropic | gemini | azure) # the chat of |chat| translated for the provider's API, in its
  # wire format from the mock (/v1/messages, /v1beta/models/...:generateContent, /openai/deployments/...)
  path=/v1/chat/completions
  printf '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}],"max_tokens":64}' >"$TMP/body"
  suffix=; [ "$SCN" = gemini ] && suffix=/v1beta
  printf '{"backends":[{"name":"up","provider":"%s","target":"http://127.0.0.1:%s%s","api_key_env":"MOCK_KEY"}],"models":[{"name":"gpt-4o-mini","backend":"up","upstream_model":"%s-mock"}]}' \
    "$SCN" "$MOCK" "$suffix" "$SCN" >"$TMP/config.json"
  export CONFIG_FILE="$TMP/config.json" MOCK_KEY=sk-mock
  ;;
sse) path=/v1/chat/completions
  printf '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}],"max_tokens":64}' >"$TMP/body"
  ;;
*) echo "ab: unknown scenario $SCN" >&2; exit 2 ;;
esac
[ -n "${AB_BODY:-}" ] && cp "$AB_BODY" "$TMP/body"
taskset -c 1 "$HERE/bin/mock_upstream" $MOCK 1 >/dev/null 2>&1 &
PIDS+=($!)
bench_gateway 0 "$A" $PA 28801 $MOCK
PID_A=$GW_PID
bench_gateway 0 "$B" $PB 28802 $MOCK
PID_B=$GW_PID
for p in $PA $PB; do
  for _ in $(seq 1 50); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
         -d @"$TMP/body" "http://127.0.0.1:$p$path")" = 200 ] && break
    sleep 0.2
  done
done
# cpu_ticks PID: user and system clock ticks the process has used
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# load PORT SECONDS -> "COUNT RATE P50_US P99_US ERRORS" (requests, or events for sse)
load() {
  if [ "$SCN" = sse ]; then
    taskset -c 1 "$HERE/bin/sse_client" 127.0.0.1 "$1" $path "$CONNS" "$2" |
      awk '{for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        print v["events"], v["ev_per_s"], v["relay_p50_us"], v["relay_p99_us"], v["errors"] + v["dropped"]}'
  else
    BODY_FILE="$TMP/body" taskset -c 1 wrk -t1 -c"$CONNS" -d"$2s" --latency -s "$HERE/post.lua" \
      "http://127.0.0.1:$1$path" | bench_wrk_summary
  fi
}
unit=req; [ "$SCN" = sse ] && unit=ev
for p in $PA $PB; do load "$p" 1 >/dev/null; done # warm-up: connections, arenas, caches
for r in $(seq 1 "$ROUNDS"); do
  for p in $PA $PB; do
    name=A pid=$PID_A; [ "$p" = $PB ] && name=B pid=$PID_B
    t0=$(cpu_ticks "$pid")
    read -r n rps p50 p99 err <<<"$(load "$p" "$DUR")"
    cpu=$(awk -v t="$(($(cpu_ticks "$pid") - t0))" -v hz="$(getconf CLK_TCK)" -v n="$n" \
      'BEGIN { printf "%.2f", n ? t / hz * 1e6 / n : 0 }')
    echo "$SCN round $r $name $rps $unit/s p50 $p50 p99 $p99 us, cpu $cpu us/$unit$([ "$err" = 0 ] || echo ", $err errors")"
    echo "$rps $p50 $p99 $cpu" >>"$TMP/$name"
  done
done
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
for name in A B; do
  printf '%s %s median %.0f %s/s, p50 %s p99 %s us, cpu %s us/%s\n' "$SCN" $name \
    "$(cut -d' ' -f1 "$TMP/$name" | median)" $unit "$(cut -d' ' -f2 "$TMP/$name" | median)" \
    "$(cut -d' ' -f3 "$TMP/$name" | median)" "$(cut -d' ' -f4 "$TMP/$name" | median)" $unit
done

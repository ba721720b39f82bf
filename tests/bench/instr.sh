#!/usr/bin/env bash
# Instructions the gateway spends per unit of work, counted with callgrind:
# deterministic where timings on a shared machine are not, and blind to the
# kernel. The gateway (WORKERS=1) runs under valgrind in front of the C mock
# upstream; after a warm-up the counters are zeroed, a fixed load runs, and
# the total is divided by the work done.
#   tests/bench/instr.sh MODE [GW_BIN]
#     MODE: chat | conv | conv-zh | conv-zh-py | tls | emb | emb64 | sse | h2c | grpc | grpc-http | anthropic | gemini | bedrock | azure
#           | anthropic-sse | gemini-sse | bedrock-sse | azure-sse | nginx | nginx-emb
#     chat  proxied chat completions, wrk -c1 for 6 s    -> per request
#     conv  the same with a 10 KB conversation (tests/bench/conv.json: a system
#           prompt and ten turns, some with escapes)
#     conv-zh   a Chinese one (tests/bench/conv_zh.json, 8 KB: markdown answers with
#           newlines and code) as UTF-8, as JavaScript's JSON.stringify sends it
#     conv-zh-py  the same with every non-ASCII character a \uXXXX escape (13 KB),
#           as Python's json.dumps (the openai package) sends it
#     tls   the same to an https:// upstream (nginx terminating TLS in front of
#           the mock; a certificate made for the run, trusted via SSL_CERT_FILE)
#     emb   /v1/embeddings (256 floats), wrk -c1 for 6 s -> per request
#     emb64 the same with "encoding_format":"base64" (the official SDKs' default)
#     emb-text  emb from an upstream without base64 (embedding_encoding: float):
#           the mock's floats in their shortest text, or with MOCK_EMB_TEXT=double
#           as Python servers write them (up to 17 digits)
#     sse   streamed chat completions (21 events 1 ms apart), sse_client c=1 5 s -> per event
#     h2c   the chat of |chat| over h2c (prior knowledge), h2load -n 4000 -c1 -> per request
#     grpc  CreateChatCompletion on the gRPC port, h2load -n 2000 -c1 -> per call
#           (served as GRPC_SERVER in the environment says: native, the default,
#           or core; GRPC_SERVER=core tests/bench/instr.sh grpc measures gRPC core's)
#     grpc-http  the same call on the HTTP port (always the gateway's own server)
#     anthropic, gemini, bedrock, azure   the chat of |chat| translated for a
#           provider: the upstream is a mock of its wire format (Anthropic,
#           Gemini, Azure OpenAI: the C mock's /v1/messages,
#           /v1beta/models/...:generateContent, /openai/deployments/...; Bedrock:
#           the Python mock, tests/integration/mock_bedrock.py, /usr/bin/python3,
#           a few hundred requests a second at most, so the gateway's exit weighs
#           on its count; signed with AWS's documented example keys), wrk -c1 6 s
#           -> per request
#     anthropic-sse, gemini-sse, bedrock-sse, azure-sse   the same streamed
#           ("stream":true; the C mock sends 20 text deltas, 21 Gemini responses
#           or Azure's filter chunk and 20 deltas; the Bedrock mock cuts the echoed
#           answer into deltas) -> per stream
#     nginx, nginx-emb   the reference, not the gateway: nginx (one process,
#           master_process off) with the peers' configuration
#           (../shared/bench/peers/nginx.conf.in: proxy_pass to a keep-alive
#           pool, buffering off) under callgrind, the load of chat / emb
# INSTR_BODY=file sends that request body instead (HTTP/1.1 modes: a 100 KB
# prompt to the anthropic mode, say).
# INSTR_CONNS=N runs wrk with N connections instead of 1 (HTTP/1.1 modes):
# the count per request with the loop's batching, as at c32 in make bench.
# GW_BIN defaults to ./ai-gateway (make build: RelWithDebInfo). OUT=file keeps
# the callgrind profile (callgrind_annotate OUT). Needs valgrind, wrk, h2load.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MODE=${1:?mode: chat, conv, conv-zh, conv-zh-py, tls, emb, emb64, emb-text, sse, h2c, grpc, grpc-http, anthropic|gemini|bedrock|azure[-sse], nginx, nginx-emb}
GW=${2:-$ROOT/ai-gateway}
OUT=${OUT:-$(mktemp /tmp/aigw-instr.XXXXXX)}
MOCK=19790 HTTP=18790 GRPC=29790
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
bench_init instr-run
for t in valgrind callgrind_control callgrind_annotate wrk h2load protoc; do
  command -v $t >/dev/null || { echo "instr: $t missing" >&2; exit 1; }
done
make -s -C "$HERE" OUT="$HERE/bin" >/dev/null # (OUT is the Makefile's folder too)

printf '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":64}' >"$TMP/chat.json"
printf '{"model":"text-embedding-3-small","input":"The food was delicious and the waiter was kind."}' >"$TMP/emb.json"
printf '{"model":"text-embedding-3-small","input":"The food was delicious and the waiter was kind.","encoding_format":"base64"}' >"$TMP/emb64.json"
bench_conv_zh_py "$TMP/conv_zh_py.json"

"$HERE/bin/mock_upstream" $MOCK 1 >/dev/null 2>&1 &
PIDS+=($!)
UPSTREAM=http://127.0.0.1:$MOCK/v1
GW_ENV=()
case $MODE in
anthropic | anthropic-sse | gemini | gemini-sse | bedrock | bedrock-sse | azure | azure-sse)
  PROVIDER=${MODE%-sse}
  case $PROVIDER in
  anthropic) make_mock="MockAnthropic(api_key='sk-mock')" ;;
  gemini) make_mock="MockGemini(api_key='sk-mock')" ;;
  bedrock) make_mock="MockBedrock()" ;; # AWS's documented example keys
  azure) make_mock="MockAzure(api_key='sk-mock')" ;;
  esac
  if [ "$PROVIDER" != bedrock ]; then # the C mock speaks Anthropic's, Gemini's and Azure's APIs too
    target=http://127.0.0.1:$MOCK
  else
    /usr/bin/python3 -c "import sys, time; sys.path.insert(0, '$ROOT/tests/integration')
from mock_$PROVIDER import *
m = $make_mock; m.start(); print(m.port, flush=True); time.sleep(1e9)" >"$TMP/mock.port" &
    PIDS+=($!)
    for _ in $(seq 1 100); do [ -s "$TMP/mock.port" ] && break; sleep 0.1; done
    target=http://127.0.0.1:$(cat "$TMP/mock.port")
  fi
  [ "$PROVIDER" = gemini ] && target=$target/v1beta
  auth='"api_key_env":"MOCK_KEY"'
  [ "$PROVIDER" = bedrock ] &&
    auth='"region":"us-east-1","access_key_id_env":"MOCK_AKID","secret_access_key_env":"MOCK_SECRET"'
  printf '{"backends":[{"name":"up","provider":"%s","target":"%s",%s}],"models":[{"name":"gpt-4o-mini","backend":"up","upstream_model":"%s-echo"}]}' \
    "$PROVIDER" "$target" "$auth" "$PROVIDER" >"$TMP/config.json"
  GW_ENV=(CONFIG_FILE="$TMP/config.json" MOCK_KEY=sk-mock MOCK_AKID=AKIDEXAMPLE
    MOCK_SECRET=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY)
  sed 's/"max_tokens":64}/"max_tokens":64,"stream":true}/' "$TMP/chat.json" >"$TMP/chat-sse.json"
  ;;
esac
if [ "$MODE" = emb-text ]; then
  printf '{"backends":[{"name":"up","provider":"openai","target":"%s","api_key_env":"MOCK_KEY","embedding_encoding":"float"}],"models":[{"name":"gpt-4o-mini","backend":"up"},{"name":"text-embedding-3-small","backend":"up"}]}' \
    "$UPSTREAM" >"$TMP/config.json"
  GW_ENV=(CONFIG_FILE="$TMP/config.json" MOCK_KEY=sk-mock)
fi
if [ "$MODE" = tls ]; then
  command -v nginx >/dev/null && command -v openssl >/dev/null ||
    { echo "instr: tls needs nginx and openssl" >&2; exit 1; }
  TLSPORT=19791
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=aigw-instr -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null
  mkdir -p "$TMP/ng/logs" "$TMP/ng/tmp"
  cat >"$TMP/ng/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/ng/nginx.pid;
error_log $TMP/ng/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $TMP/ng/tmp/b; proxy_temp_path $TMP/ng/tmp/p; fastcgi_temp_path $TMP/ng/tmp/f;
  uwsgi_temp_path $TMP/ng/tmp/u; scgi_temp_path $TMP/ng/tmp/s;
  keepalive_requests 1000000;
  upstream mock { server 127.0.0.1:$MOCK; keepalive 16; }
  server {
    listen 127.0.0.1:$TLSPORT ssl;
    ssl_certificate $TMP/cert.pem; ssl_certificate_key $TMP/key.pem;
    location / { proxy_pass http://mock; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
  nginx -p "$TMP/ng" -c "$TMP/ng/nginx.conf" -g 'daemon off;' 2>/dev/null &
  PIDS+=($!)
  UPSTREAM=https://127.0.0.1:$TLSPORT/v1
  export SSL_CERT_FILE=$TMP/cert.pem
fi
case $MODE in
nginx | nginx-emb)
  PEERS_CONF=$ROOT/../shared/bench/peers/nginx.conf.in
  command -v nginx >/dev/null && [ -f "$PEERS_CONF" ] ||
    { echo "instr: $MODE needs nginx and $PEERS_CONF" >&2; exit 1; }
  mkdir -p "$TMP/px/logs" "$TMP/px/tmp"
  sed -e "s#@DIR@#$TMP/px#g" -e "s#@UPSTREAM@#127.0.0.1:$MOCK#g" -e "s#@PORT@#$HTTP#g" \
    -e "s#@WORKERS@#1#g" "$PEERS_CONF" >"$TMP/px/nginx.conf"
  valgrind --tool=callgrind --callgrind-out-file="$OUT" nginx -p "$TMP/px" -c "$TMP/px/nginx.conf" \
    -g 'daemon off; master_process off;' >"$TMP/gw.log" 2>&1 &
  ;;
*)
  env TARGET_API_URL=$UPSTREAM TARGET_API_KEY=sk-mock PORT=$HTTP GRPC_PORT=$GRPC WORKERS=1 \
    MAX_CONNS_PER_IP=0 LOG_LEVEL=warn "${GW_ENV[@]}" valgrind --tool=callgrind --callgrind-out-file="$OUT" "$GW" \
    >"$TMP/gw.log" 2>&1 &
  ;;
esac
VG=$!
PIDS+=($VG)
bench_wait_chat $HTTP "$TMP/chat.json" 120 0.5 ||
  { echo "instr: the gateway did not answer" >&2; cat "$TMP/gw.log" >&2; exit 1; }

grpc_body() {
  local ds=
  for d in "$ROOT/build/gen/descriptor_set.pb" "$(dirname "$GW")/gen/descriptor_set.pb"; do
    [ -f "$d" ] && { ds=$d; break; }
  done
  [ -n "$ds" ] || { echo "instr: no descriptor_set.pb (make build)" >&2; exit 1; }
  printf 'model: "gpt-4o-mini"\nmessages { role: "user" content { text: "Say hello." } }\n' |
    protoc --encode=aigateway.v1.ChatCompletionRequest --descriptor_set_in="$ds" >"$TMP/req.pb"
  python3 -c "import struct,sys; d=open(sys.argv[1],'rb').read(); sys.stdout.buffer.write(b'\0'+struct.pack('>I',len(d))+d)" \
    "$TMP/req.pb" >"$TMP/req.grpc"
}
load() { # $1: warm-up or measure; prints the units of work done
  local n=${1}
  case $MODE in
  chat | conv* | tls | emb | emb64 | emb-text | anthropic* | gemini* | bedrock* | azure* | nginx | nginx-emb)
    local body=$TMP/chat.json path=/v1/chat/completions
    case $MODE in
    conv) body=$HERE/conv.json ;;
    conv-zh) body=$HERE/conv_zh.json ;;
    conv-zh-py) body=$TMP/conv_zh_py.json ;;
    emb | emb64) body=$TMP/$MODE.json path=/v1/embeddings ;;
    emb-text) body=$TMP/emb.json path=/v1/embeddings ;;
    nginx-emb) body=$TMP/emb.json path=/v1/embeddings ;;
    *-sse) body=$TMP/chat-sse.json ;;
    esac
    body=${INSTR_BODY:-$body}
    BODY_FILE=$body wrk -t1 -c${INSTR_CONNS:-1} -d"$([ "$n" = warm ] && echo 1 || echo 6)"s -s "$HERE/post.lua" \
      http://127.0.0.1:$HTTP$path | awk '/requests in/{print $1}'
    ;;
  sse)
    SSE_MODEL=delay-1000 "$HERE/bin/sse_client" 127.0.0.1 $HTTP /v1/chat/completions 1 \
      "$([ "$n" = warm ] && echo 1 || echo 5)" | sed 's/.*events=\([0-9]*\).*/\1/'
    ;;
  h2c)
    h2load -n "$([ "$n" = warm ] && echo 200 || echo 4000)" -c 1 -m 1 -d "$TMP/chat.json" \
      -H 'content-type: application/json' \
      http://127.0.0.1:$HTTP/v1/chat/completions | awk '/^requests:/{print $8}'
    ;;
  grpc | grpc-http)
    [ -f "$TMP/req.grpc" ] || grpc_body
    h2load -n "$([ "$n" = warm ] && echo 200 || echo 2000)" -c 1 -m 1 -d "$TMP/req.grpc" \
      -H 'content-type: application/grpc' -H 'te: trailers' \
      http://127.0.0.1:$([ $MODE = grpc ] && echo $GRPC || echo $HTTP)/aigateway.v1.Inference/CreateChatCompletion |
      awk '/^requests:/{print $8}'
    ;;
  *) echo "instr: unknown mode $MODE" >&2; exit 2 ;;
  esac
}
load warm >/dev/null
callgrind_control -z $VG >/dev/null
UNITS=$(load measure)
kill -TERM $VG
while kill -0 $VG 2>/dev/null; do sleep 0.5; done
TOTAL=$(callgrind_annotate "$OUT" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}')
unit=request; [ $MODE = sse ] && unit=event; [ ${MODE%-http} = grpc ] && unit=call
case $MODE in *-sse) unit=stream ;; esac
[ -n "$UNITS" ] && [ "$UNITS" -gt 0 ] || { echo "instr: no work done" >&2; exit 1; }
echo "$MODE: $UNITS ${unit}s, $((TOTAL / UNITS)) instructions per $unit (profile: $OUT)"

-- wrk script of the benchmark suite: POSTs the JSON body of $BODY_FILE.
-- env: PORTKEY=1 adds Portkey's routing headers (PORTKEY_HOST: the upstream base URL,
-- PORTKEY_PROVIDER: the provider it translates for, openai by default).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-mock"
if os.getenv("PORTKEY") == "1" then
  wrk.headers["x-portkey-provider"] = os.getenv("PORTKEY_PROVIDER") or "openai"
  wrk.headers["x-portkey-custom-host"] = os.getenv("PORTKEY_HOST") or "http://127.0.0.1:9000/v1"
end
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.body = f:read("*a")
f:close()

-- wrk script of the benchmark suite: POSTs the JSON body of $BODY_FILE.
-- env: PORTKEY=1 adds Portkey's routing headers (PORTKEY_HOST: the upstream base URL).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-mock"
if os.getenv("PORTKEY") == "1" then
  wrk.headers["x-portkey-provider"] = "openai"
  wrk.headers["x-portkey-custom-host"] = os.getenv("PORTKEY_HOST") or "http://127.0.0.1:9000/v1"
end
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.body = f:read("*a")
f:close()

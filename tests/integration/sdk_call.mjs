// One call through the official OpenAI SDK, described on the command line;
// prints what the SDK gave back as JSON, for the provider tests.
// usage: node sdk_call.mjs BASE_URL '{"params": {...chat params...}, "maxRetries": 0}'
// Output: {"result": completion} for a unary call, {"chunks": [...]} for a
// stream (params.stream true), or {"error": {status, message, type, code,
// param, chunks}} when the SDK raised.
import OpenAI from "openai";

const [baseURL, specJson] = process.argv.slice(2);
const spec = JSON.parse(specJson);
const client = new OpenAI({
  baseURL, apiKey: "sk-client-secret-not-for-upstream", maxRetries: spec.maxRetries ?? 0,
});
const out = {};
const chunks = [];
try {
  if (spec.params.stream) {
    const stream = await client.chat.completions.create(spec.params);
    for await (const chunk of stream) chunks.push(chunk);
    out.chunks = chunks;
  } else {
    out.result = await client.chat.completions.create(spec.params);
  }
} catch (e) {
  out.error = {
    status: e.status ?? null, message: e.message, type: e.type ?? null, code: e.code ?? null,
    param: e.param ?? null, chunks, name: e.constructor?.name,
  };
}
console.log(JSON.stringify(out));

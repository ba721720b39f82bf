// The official SDK calling a tool-using model through the gateway, unary and
// streamed; prints the tool calls it got back as JSON.
// usage: node sdk_tools.mjs BASE_URL MODEL
import OpenAI from "openai";

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "sk-client-secret-not-for-upstream", maxRetries: 0 });
const tools = [{
  type: "function",
  function: {
    name: "get_weather", description: "Weather for a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
}];
const messages = [{ role: "user", content: "Weather in Paris?" }];
const out = {};
const r = await client.chat.completions.create({ model, messages, tools, tool_choice: "auto" });
out.unary = { finish: r.choices[0].finish_reason, tool_calls: r.choices[0].message.tool_calls };

const stream = await client.chat.completions.create({ model, messages, tools, stream: true });
const calls = {};
let finish = null;
for await (const chunk of stream) {
  for (const c of chunk.choices) {
    for (const tc of c.delta?.tool_calls ?? []) {
      const cur = (calls[tc.index] ??= { id: "", name: "", arguments: "" });
      if (tc.id) cur.id = tc.id;
      if (tc.function?.name) cur.name += tc.function.name;
      if (tc.function?.arguments) cur.arguments += tc.function.arguments;
    }
    if (c.finish_reason) finish = c.finish_reason;
  }
}
out.stream = { finish, calls: Object.values(calls) };
console.log(JSON.stringify(out));

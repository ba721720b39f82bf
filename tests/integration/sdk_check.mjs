// Drives the official `openai` npm SDK against the gateway and prints what
// it got as one JSON object on stdout; the Python tests assert on it.
// usage: node sdk_check.mjs BASE_URL MODEL [EMBED_MODEL]
import OpenAI from "openai";

const [baseURL, model, embedModel] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "sk-client-secret-not-for-upstream", maxRetries: 0 });
const out = {};

async function step(name, fn) {
  try {
    out[name] = await fn();
  } catch (e) {
    out[name] = { error: { status: e.status ?? null, message: String(e.message), code: e.code ?? null, type: e.type ?? null } };
  }
}

await step("models", async () => (await client.models.list()).data.map((m) => m.id));

await step("chat", async () => {
  const r = await client.chat.completions.create({
    model, messages: [{ role: "user", content: "hello from the sdk" }], temperature: 0,
  });
  return { content: r.choices[0].message.content, finish: r.choices[0].finish_reason, usage: r.usage, object: r.object };
});

await step("chat_stream", async () => {
  const stream = await client.chat.completions.create({
    model, messages: [{ role: "user", content: "one two three four" }], stream: true,
    stream_options: { include_usage: true },
  });
  const t0 = Date.now();
  const pieces = [], times = [];
  let usage = null, finish = null;
  for await (const chunk of stream) {
    times.push(Date.now() - t0);
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta?.content) pieces.push(c.delta.content);
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  return { text: pieces.join(""), pieces: pieces.length, usage, finish, times };
});

await step("completion", async () => {
  const r = await client.completions.create({ model, prompt: "say this back", max_tokens: 16 });
  return { text: r.choices[0].text, object: r.object, finish: r.choices[0].finish_reason };
});

await step("completion_stream", async () => {
  const stream = await client.completions.create({ model, prompt: "a b c", stream: true });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
  return { text };
});

const em = embedModel || model;
await step("embeddings_base64_default", async () => {
  const r = await client.embeddings.create({ model: em, input: ["same", "same", "other"] });
  return { n: r.data.length, dims: r.data[0].embedding.length, vectors: r.data.map((d) => Array.from(d.embedding)) };
});

await step("embeddings_float", async () => {
  const r = await client.embeddings.create({ model: em, input: "same", encoding_format: "float" });
  return { dims: r.data[0].embedding.length, vector: r.data[0].embedding };
});

await step("not_found", async () => {
  await client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] });
  return "no error";
});

console.log(JSON.stringify(out));

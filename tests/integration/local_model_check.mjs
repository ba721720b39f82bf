// Drives the official `openai` npm SDK against the gateway serving the local
// tiny-lm model and prints what it got as one JSON object on stdout; the
// Python test (test_local_model.py) asserts on it.
// usage: node local_model_check.mjs BASE_URL MODEL
import OpenAI from "openai";

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "sk-local", maxRetries: 0 });
const out = {};
const prompt = [{ role: "user", content: "Once upon a time" }];

async function step(name, fn) {
  try {
    out[name] = await fn();
  } catch (e) {
    out[name] = { error: { status: e.status ?? null, message: String(e.message) } };
  }
}

async function text(extra) {
  const r = await client.chat.completions.create({ model, messages: prompt, ...extra });
  return { content: r.choices[0].message.content, finish: r.choices[0].finish_reason, usage: r.usage };
}

await step("stream", async () => {
  const stream = await client.chat.completions.create({
    model, messages: prompt, stream: true, max_tokens: 12, temperature: 0,
  });
  const chunks = [];
  let finish = null;
  for await (const c of stream) {
    const ch = c.choices[0];
    if (!ch) continue;
    if (ch.delta?.content) chunks.push({ content: ch.delta.content, at: Date.now() });
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  return { chunks, finish, text: chunks.map((c) => c.content).join("") };
});

await step("seed_a", () => text({ seed: 7, temperature: 1.0, max_tokens: 24 }));
await step("seed_b", () => text({ seed: 7, temperature: 1.0, max_tokens: 24 }));
await step("seed_c", () => text({ seed: 8, temperature: 1.0, max_tokens: 24 }));
await step("max_tokens", () => text({ max_tokens: 5, temperature: 0 }));
await step("greedy", () => text({ max_tokens: 24, temperature: 0 }));
if (out.greedy.content) {
  // A stop sequence taken from the middle of the greedy text.
  const g = out.greedy.content;
  const at = Math.max(1, Math.floor(g.length / 2));
  const stop = g.slice(at, at + 3);
  await step("stop", async () => ({ stop, prefix: g.slice(0, g.indexOf(stop)),
                                    ...(await text({ max_tokens: 24, temperature: 0, stop: [stop] })) }));
}
await step("embeddings", async () => {
  const r = await client.embeddings.create({
    model, input: ["the cat sat on the mat", "the cat sat on the mat", "ships sail across the ocean at night"],
  });
  return r.data.map((d) => d.embedding);
});

console.log(JSON.stringify(out));

// A second gRPC client implementation against the gateway: grpc-js, over
// Node's own HTTP/2 (not gRPC core, which grpcio and the gateway's GRPC_SERVER=core
// share). Stubs come from proto/ through proto-loader.
// usage: node grpc_js_check.mjs HOST:PORT PROTO_ROOT
// Prints JSON: {unary, stream, notFound, deadline}.
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const [target, protoRoot] = process.argv.slice(2);
const def = protoLoader.loadSync("aigateway/v1/inference.proto",
  {
    includeDirs: [protoRoot, "/usr/share/gocode/src/github.com/gogo/googleapis", "/usr/include"],
    keepCase: true, longs: String, enums: String, defaults: false, oneofs: true,
  });
const pkg = grpc.loadPackageDefinition(def);
const client = new pkg.aigateway.v1.Inference(target, grpc.credentials.createInsecure());

const chat = (text, model = "echo") => ({
  model, messages: [{ role: "user", content: { text } }],
});
const deadline = (ms) => new Date(Date.now() + ms);

const unary = (req, ms) => new Promise((resolve) => {
  client.CreateChatCompletion(req, new grpc.Metadata(), { deadline: deadline(ms) },
    (err, resp) => resolve(err ? { code: err.code, details: err.details } : { resp }));
});

const stream = (req, ms) => new Promise((resolve) => {
  const chunks = [];
  const call = client.StreamChatCompletion(req, new grpc.Metadata(), { deadline: deadline(ms) });
  call.on("data", (c) => chunks.push(c));
  call.on("error", (err) => resolve({ code: err.code, details: err.details, chunks }));
  call.on("end", () => resolve({ code: 0, chunks }));
});

const out = {};
const u = await unary(chat("grpc-js says hi"), 10000);
out.unary = u.resp ? u.resp.choices[0].message.content.text : u;
const s = await stream(chat("one two three"), 10000);
out.stream = {
  code: s.code,
  text: s.chunks.flatMap((c) => c.choices || []).map((c) => c.delta?.content?.value ?? "").join(""),
};
out.notFound = await unary(chat("x", "no-such-model"), 10000);
const words = Array.from({ length: 200 }, (_, i) => `w${i}`).join(" ");
const d = await stream(chat(words), 300);
out.deadline = { code: d.code };
client.close();
console.log(JSON.stringify(out));

// Drives the gateway with the official `openai` Node SDK.
// Usage: node openai_node.mjs BASE_URL API_KEY   (exits non-zero on the first failure)
import assert from "node:assert/strict";
import OpenAI from "openai";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });
const messages = [{ role: "user", content: "Say hello in five words." }];

const { data: resp, response } = await client.chat.completions
  .create({ model: "demo", messages })
  .withResponse();
assert.equal(response.headers.get("x-switchyard-provider"), "mock");
assert.ok(response.headers.get("x-request-id"));
assert.equal(resp.model, "demo");
assert.ok(resp.choices[0].message.content);
assert.ok(resp.usage.total_tokens > 0);

const stream = await client.chat.completions.create({
  model: "demo",
  messages,
  stream: true,
  stream_options: { include_usage: true },
});
let text = "";
let last;
for await (const chunk of stream) {
  assert.equal(chunk.model, "demo");
  if (chunk.choices.length) text += chunk.choices[0].delta.content ?? "";
  last = chunk;
}
assert.ok(text.trim().length > 0);
assert.ok(last.usage && last.usage.total_tokens > 0);

const echo = await client.chat.completions.create({
  model: "demo",
  messages,
  future_param: { x: 1 },
  mock: { echo: true },
});
const received = JSON.parse(echo.choices[0].message.content);
assert.deepEqual(received.body.future_param, { x: 1 });
assert.equal(received.body.model, "mock-gpt");

const emb = await client.embeddings.create({ model: "demo", input: ["alpha", "beta"] });
assert.equal(emb.data.length, 2);
assert.ok(emb.data[0].embedding.length > 0);

const ids = [];
for await (const m of client.models.list()) ids.push(m.id);
assert.ok(ids.includes("demo"));

await assert.rejects(
  client.chat.completions.create({ model: "no-such-alias", messages }),
  (e) => e instanceof OpenAI.NotFoundError && e.message.includes("demo"),
);
await assert.rejects(
  new OpenAI({ baseURL, apiKey: "sk-wrong", maxRetries: 0 }).models.list(),
  (e) => e instanceof OpenAI.AuthenticationError,
);

await assert.rejects(async () => {
  const s = await client.chat.completions.create({
    model: "demo",
    messages,
    stream: true,
    mock: { disconnect_after_chunks: 2 },
  });
  for await (const _ of s) {
    // drain
  }
}, (e) => e instanceof OpenAI.APIError);

console.log("node sdk ok");

// The official openai-node SDK against a Footnote server: `node client.mjs <base-url>`.
// Prints one JSON object of observations; tests/contract/test_client_matrix.py asserts on it.
import OpenAI from "openai";

const base = process.argv[2];
if (!base) {
  console.error("usage: node client.mjs <footnote-base-url>");
  process.exit(2);
}
const question = process.argv[3] ?? "Were Scott Derrickson and Ed Wood of the same nationality?";
const messages = [{ role: "user", content: question }];
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0, timeout: 30000 });
const out = { sdk: OpenAI.VERSION ?? null };

// Non-streaming: the completion plus Footnote's extra fields.
const completion = await client.chat.completions.create({ model: "speed", messages });
out.completion = {
  object: completion.object,
  content: completion.choices[0].message.content,
  finish_reason: completion.choices[0].finish_reason,
  annotations: (completion.choices[0].message.annotations ?? []).length,
  basis_fields: completion.basis.map((b) => b.field),
  citations: completion.citations.length,
  total_tokens: completion.usage.total_tokens,
};

// Streaming with include_usage: deltas, then the final choices-less chunk with the basis.
const stream = await client.chat.completions.create({
  model: "speed",
  messages,
  stream: true,
  stream_options: { include_usage: true },
});
let text = "";
let chunks = 0;
let nullUsage = 0;
let last = null;
for await (const chunk of stream) {
  chunks += 1;
  if (chunk.usage === null) nullUsage += 1;
  if (chunk.choices.length) text += chunk.choices[0].delta.content ?? "";
  last = chunk;
}
out.stream = {
  chunks,
  null_usage: nullUsage,
  text,
  last_choices: last.choices.length,
  last_total_tokens: last.usage.total_tokens,
  last_basis_fields: last.basis.map((b) => b.field),
};

// Errors arrive as the SDK's typed errors with OpenAI's fields.
async function failure(params) {
  try {
    await client.chat.completions.create({ messages, ...params });
    return { raised: false };
  } catch (err) {
    return {
      raised: true,
      name: err.constructor.name,
      api_error: err instanceof OpenAI.APIError,
      status: err.status ?? null,
      code: err.code ?? null,
      param: err.param ?? null,
      type: err.type ?? null,
    };
  }
}
out.errors = {
  unknown_model: await failure({ model: "gpt-9" }),
  bad_temperature: await failure({ model: "speed", temperature: 7 }),
  image_part: await failure({
    model: "speed",
    messages: [
      {
        role: "user",
        content: [
          { type: "text", text: question },
          { type: "image_url", image_url: { url: "https://example.com/x.png" } },
        ],
      },
    ],
  }),
};

// Parallel's examples use the bare host as baseURL; the SDK then posts /chat/completions.
const parallel = new OpenAI({ baseURL: base, apiKey: "unused", maxRetries: 0, timeout: 30000 });
const viaParallel = await parallel.chat.completions.create({ model: "base", messages });
out.parallel = { basis_fields: viaParallel.basis.map((b) => b.field) };

console.log(JSON.stringify(out));

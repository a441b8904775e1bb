// One call through an official SDK, as an application would make it, for the
// agent-client tests (tests/src/agents.rs):
//
//   DEXTO_API_KEY=… node sdk-call.mjs anthropic|openai --base-url URL
//       [--model M] [--prompt P] [--max-tokens N] [--stream]
//       [--auth api-key|auth-token] [--max-retries N]
//
// anthropic: `messages.create` / `messages.stream` (@anthropic-ai/sdk);
// openai: `responses.create` / `responses.stream` (openai). The key comes from
// the environment, never argv (argv is visible to every process). Prints one
// JSON line: {"text", "response", "events"} on success, {"error": {"status",
// "body"}} and exit 1 on an API error. The SDKs are loaded from the cached
// install in $DEXTO_AGENTS_DIR (scripts/env.sh), not from this directory.
import { createRequire } from "node:module";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    "base-url": { type: "string" },
    model: { type: "string" },
    prompt: { type: "string", default: "say hi" },
    "max-tokens": { type: "string", default: "64" },
    stream: { type: "boolean", default: false },
    auth: { type: "string", default: "api-key" },
    // The SDKs retry 5xx/429 twice by default; tests ask for what they assert.
    "max-retries": { type: "string", default: "0" },
  },
});
const [dialect] = positionals;
const agentsDir = process.env.DEXTO_AGENTS_DIR;
const key = process.env.DEXTO_API_KEY;
if (!["anthropic", "openai"].includes(dialect) || !values["base-url"] || !agentsDir || !key) {
  console.error("usage: DEXTO_AGENTS_DIR=… DEXTO_API_KEY=… sdk-call.mjs anthropic|openai --base-url URL [options]");
  process.exit(2);
}
const require = createRequire(join(agentsDir, "package.json"));
const maxTokens = Number(values["max-tokens"]);
const maxRetries = Number(values["max-retries"]);

// `create`, or with --stream the SDK's stream helper: every event's type, then
// the response it assembled (`final` names the helper's method for it).
async function call(resource, params, final) {
  if (!values.stream) return { response: await resource.create(params), events: [] };
  const stream = resource.stream(params);
  const events = [];
  for await (const event of stream) events.push(event.type);
  return { response: await stream[final](), events };
}

async function anthropic() {
  const { Anthropic } = require("@anthropic-ai/sdk");
  const auth = values.auth === "auth-token" ? { authToken: key, apiKey: null } : { apiKey: key, authToken: null };
  const client = new Anthropic({ baseURL: values["base-url"], maxRetries, ...auth });
  const params = {
    model: values.model ?? "claude-sonnet-4-5",
    max_tokens: maxTokens,
    messages: [{ role: "user", content: values.prompt }],
  };
  const { response, events } = await call(client.messages, params, "finalMessage");
  const text = response.content.filter((b) => b.type === "text").map((b) => b.text).join("");
  return { text, response, events };
}

async function openai() {
  const { OpenAI } = require("openai");
  const client = new OpenAI({ baseURL: values["base-url"], apiKey: key, maxRetries });
  const params = { model: values.model ?? "openai/gpt-4o-mini", input: values.prompt, max_output_tokens: maxTokens };
  const { response, events } = await call(client.responses, params, "finalResponse");
  return { text: response.output_text, response, events };
}

try {
  const result = await (dialect === "anthropic" ? anthropic() : openai());
  console.log(JSON.stringify(result));
} catch (err) {
  // APIError (both SDKs): the HTTP status and the parsed error body.
  if (err && typeof err.status === "number") {
    console.log(JSON.stringify({ error: { status: err.status, body: err.error ?? null } }));
    process.exit(1);
  }
  throw err;
}

// CPU milliseconds per chat request of each local process (docs/ARCHITECTURE.md,
// "Benchmark → Where the CPU goes"). Against a running `npm run dev` (started
// with STACK_VARS=$'RATE_LIMIT_PER_MINUTE=0\nMAX_CONCURRENT_REQUESTS=0' so one
// user may go fast), or the bench's floor (FLOOR=http://127.0.0.1:PORT, key
// sk-floor-u1):
//
//   PIDS=<workerd>,<proxy workerd>,<wrangler node> node tools/profile/cpu-per-request.mjs [N] [clients] [stream]
//
// Reads utime+stime of each pid from /proc around N calls (after a warm-up).
import fs from "node:fs";

const session = process.env.FLOOR
  ? { base_url: process.env.FLOOR, api_key: "sk-floor-u1" }
  : JSON.parse(fs.readFileSync(new URL("../../.dev/session.json", import.meta.url)));
const [n, clients] = [Number(process.argv[2] ?? 3000), Number(process.argv[3] ?? 32)];
const stream = process.argv[4] === "stream";
const pids = (process.env.PIDS ?? "").split(",").filter(Boolean).map(Number);
if (pids.length === 0) throw new Error("set PIDS to the processes to measure (comma-separated)");

const ticksPerSecond = 100; // USER_HZ on Linux
const cpuMs = () => pids.map((pid) => {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
});
const body = JSON.stringify({ model: "openai/gpt-4o-mini", max_tokens: 16, stream, messages: [{ role: "user", content: "hello" }] });
async function call() {
  const r = await fetch(`${session.base_url}/v1/chat/completions`, {
    method: "POST",
    // identity: as the bench's client, which asks for no compression (miniflare
    // would gzip a JSON reply for a client that accepts it, as Cloudflare's edge does).
    headers: { authorization: `Bearer ${session.api_key}`, "content-type": "application/json", "accept-encoding": "identity" },
    body,
  });
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`status ${r.status}`);
}

for (let i = 0; i < 300; i++) await call(); // V8 tiers the wasm up
const before = cpuMs();
const started = Date.now();
let left = n;
let failed = 0;
await Promise.all(Array.from({ length: clients }, async () => {
  while (left-- > 0) await call().catch(() => failed++);
}));
const seconds = (Date.now() - started) / 1000;
await new Promise((r) => setTimeout(r, 1500)); // the projection after the last calls
const after = cpuMs();
const perRequest = pids.map((pid, i) => `${pid}: ${((after[i] - before[i]) / n).toFixed(2)} ms`);
console.log(`${n} calls, ${clients} clients, ${(n / seconds).toFixed(0)} req/s, ${failed} failed; CPU per request: ${perRequest.join(", ")}`);

// The floor of the gateway's design on this runtime (tools/bench-floor/wrangler.toml):
// POST /v1/chat/completions with `Authorization: Bearer sk-floor-<user>` goes
// to <user>'s Durable Object, which writes a hold row, calls the upstream with
// the client's body unchanged, writes a settlement row (a stream: after its
// last byte) and answers. No key lookup (the user is in the key), no D1, no
// parsing, pricing or metering: whatever the gateway spends beyond this is its
// own work. GET /floor/stats tells the bench how many holds were settled.
import { DurableObject } from "cloudflare:workers";

const KEY_PREFIX = "sk-floor-";
const ROUTES = new Set(["POST /v1/chat/completions", "GET /floor/stats"]);

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (!ROUTES.has(`${request.method} ${pathname}`)) return new Response("not found", { status: 404 });
    const auth = request.headers.get("Authorization") ?? "";
    const user = auth.startsWith(`Bearer ${KEY_PREFIX}`) ? auth.slice(`Bearer ${KEY_PREFIX}`.length) : "";
    if (!user) return new Response("unauthorized", { status: 401 });
    return env.WALLET.get(env.WALLET.idFromName(user)).fetch(request);
  },
};

export class FloorWallet extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS holds (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
                   CREATE TABLE IF NOT EXISTS settlements (id TEXT PRIMARY KEY, status INTEGER NOT NULL, created_at INTEGER NOT NULL)`);
  }

  async fetch(request) {
    if (request.method === "GET") return Response.json(this.stats());
    const body = await request.arrayBuffer();
    const id = crypto.randomUUID();
    this.sql.exec("INSERT INTO holds (id, created_at) VALUES (?, ?)", id, Date.now());
    let upstream;
    try {
      upstream = await fetch(`${this.env.UPSTREAM_BASE}/chat/completions`, {
        method: "POST",
        headers: { Authorization: `Bearer ${this.env.UPSTREAM_KEY}`, "Content-Type": "application/json" },
        body,
      });
    } catch {
      this.settle(id, 502);
      return new Response("upstream unavailable", { status: 502 });
    }
    const headers = { "Content-Type": upstream.headers.get("Content-Type") ?? "application/json" };
    if (!headers["Content-Type"].startsWith("text/event-stream")) {
      const reply = await upstream.arrayBuffer();
      this.settle(id, upstream.status);
      return new Response(reply, { status: upstream.status, headers });
    }
    // Bytes pass through natively (no JS per chunk); settle once the upstream has ended.
    const { readable, writable } = new IdentityTransformStream();
    const settled = upstream.body.pipeTo(writable).then(
      () => this.settle(id, upstream.status),
      () => this.settle(id, 499),
    );
    this.ctx.waitUntil(settled);
    return new Response(readable, { status: upstream.status, headers });
  }

  settle(id, status) {
    this.sql.exec("INSERT INTO settlements (id, status, created_at) VALUES (?, ?, ?)", id, status, Date.now());
  }

  stats() {
    const count = (table) => this.sql.exec(`SELECT COUNT(*) AS n FROM ${table}`).one().n;
    return { holds: count("holds"), settlements: count("settlements") };
  }
}

// Seeds the local gateway for `npm run dev`: a dev user, a fresh API key, the
// wallet topped up to $10, then prints them and writes .dev/session.json.
// Usage: node dev-seed.mjs BASE_URL SESSION_JSON
// (env: ADMIN_TOKEN, OPENROUTER_BASE_URL; DEV_CHAIN_JSON, the local chain's
// line from scripts/chain.sh, when dev.sh started one)
import { createHmac } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";

const [base, sessionPath] = process.argv.slice(2);
const adminToken = process.env.ADMIN_TOKEN;
const userId = "dev-user";
// A valid address: the Dexto CLI validates the email of a `login --token` session.
const DEV_EMAIL = "dev@example.com";
const TEN_USD_MICROS = 10_000_000;

async function admin(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  return { status: res.status, json };
}

const created = await admin("POST", "/admin/users", { id: userId, email: DEV_EMAIL });
if (created.status !== 201 && !/already exists/.test(created.json?.error?.message ?? "")) {
  throw new Error(`creating the dev user failed: ${JSON.stringify(created.json)}`);
}
const key = await admin("POST", `/admin/users/${userId}/keys`, { name: `dev ${new Date().toISOString()}` });
if (key.status !== 201) throw new Error(`creating a key failed: ${JSON.stringify(key.json)}`);
const user = await admin("GET", `/admin/users/${userId}`);
const missing = TEN_USD_MICROS - user.json.balance_micros;
if (missing > 0) {
  const credit = await admin("POST", `/admin/users/${userId}/credits`, {
    amount_usd: (missing / 1e6).toFixed(6),
    reason: "dev top-up to $10",
    // Stable for a retry of this top-up, new for the next one.
    idempotency_key: `dev-topup-${user.json.ledger_totals?.entries ?? 0}`,
  });
  if (credit.status !== 200) throw new Error(`crediting failed: ${JSON.stringify(credit.json)}`);
}

// A Supabase-style session token for the dev user (HS256, dev secret), so every
// session-authenticated endpoint can be called locally without Supabase.
const issuer = `${process.env.SUPABASE_URL.replace(/\/$/, "")}/auth/v1`;
const b64url = (s) => Buffer.from(s).toString("base64url");
const now = Math.floor(Date.now() / 1000);
const claims = { sub: userId, email: DEV_EMAIL, aud: "authenticated", role: "authenticated", iss: issuer, iat: now, exp: now + 24 * 3600 };
const unsigned = `${b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64url(JSON.stringify(claims))}`;
const sessionToken = `${unsigned}.${createHmac("sha256", process.env.SUPABASE_JWT_SECRET).update(unsigned).digest("base64url")}`;

const session = {
  base_url: base,
  api_key: key.json.key,
  key_id: key.json.id,
  user_id: userId,
  admin_token: adminToken,
  session_token: sessionToken,
  supabase_url: process.env.SUPABASE_URL,
  supabase_issuer: issuer,
  supabase_audience: "authenticated",
  stripe_webhook_secret: process.env.STRIPE_WEBHOOK_SECRET,
  upstream: process.env.OPENROUTER_BASE_URL,
  dashboard_url: `${base}/dashboard`,
};
// {rpc_url, chain_id, token, treasury, accounts: [{address, private_key}]}
if (process.env.DEV_CHAIN_JSON) session.chain = JSON.parse(readFileSync(process.env.DEV_CHAIN_JSON, "utf8"));
const chain = session.chain;
const chainNote = chain
  ? `
  Local chain: ${chain.rpc_url} (chain id ${chain.chain_id}); USDC ${chain.token}, treasury ${chain.treasury}
  ${chain.accounts[0].address} and ${chain.accounts.length - 1} more dev accounts hold 1,000 USDC each (keys in ${sessionPath})
`
  : "";
writeFileSync(sessionPath, JSON.stringify(session, null, 2) + "\n", { mode: 0o600 });
console.log(`
Dexto gateway ready on ${base}
  DEXTO_API_KEY=${session.api_key}
  user ${userId}, wallet $10.00; session token and admin token in ${sessionPath}

  Dashboard: ${base}/dashboard
${process.env.DEV_SIGN_IN_NOTE ?? ""}

  curl -s ${base}/v1/chat/completions \\
    -H "Authorization: Bearer ${session.api_key}" -H "Content-Type: application/json" \\
    -d '{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}'
${chainNote}`);

// A stand-in paid resource for the tests (tests/tests/x402_facilitator.rs):
// `GET /paid` costs --amount base units of --asset in the `exact` scheme, paid
// to --pay-to. Built only from @x402/core's resource-server helpers
// (x402HTTPResourceServer over an HTTPFacilitatorClient) and @x402/evm's exact
// server scheme: it answers 402 with PAYMENT-REQUIRED, verifies a
// PAYMENT-SIGNATURE through the facilitator, settles it there and answers 200
// with PAYMENT-RESPONSE. It also shows the last payment it was paid with
// (`GET /last-payment`: {paymentPayload, paymentRequirements}), so a test can
// replay it. Binds 127.0.0.1 on a free port, prints ONE JSON line {"url"},
// exits when its parent does.
//
// Usage: node demo-resource.mjs --facilitator URL --network eip155:N --asset 0x… --pay-to 0x… --amount N
//          [--name "USD Coin (Dexto local)"] [--version 2]
//   --name/--version  the token's EIP-712 domain: the exact scheme signs and checks against it
// Needs $DEXTO_X402_DIR (scripts/env.sh).
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { join } from "node:path";

const args = parseArgs(process.argv.slice(2));
for (const k of ["facilitator", "network", "asset", "pay-to", "amount"]) if (!args[k]) fail(`--${k} is required`);
const require = createRequire(join(process.env.DEXTO_X402_DIR ?? fail("DEXTO_X402_DIR is not set: source scripts/env.sh"), "node_modules", "_"));
const { HTTPFacilitatorClient, x402ResourceServer, x402HTTPResourceServer } = require("@x402/core/server");
const { ExactEvmScheme } = require("@x402/evm/exact/server");

const price = { asset: args.asset, amount: args.amount, extra: { name: args.name ?? "USD Coin (Dexto local)", version: args.version ?? "2" } };
const routes = {
  "GET /paid": {
    accepts: { scheme: "exact", network: args.network, payTo: args["pay-to"], price, maxTimeoutSeconds: 60 },
    description: "a stand-in paid resource",
    mimeType: "application/json",
  },
};
const resourceServer = new x402ResourceServer(new HTTPFacilitatorClient({ url: args.facilitator })).register(args.network, new ExactEvmScheme());
const httpServer = new x402HTTPResourceServer(resourceServer, routes);
await httpServer.initialize(); // asks the facilitator what it supports
let lastPayment = null;

const server = createServer(async (req, res) => {
  const url = new URL(req.url, `http://${req.headers.host}`);
  const send = (status, headers, body) => {
    const given = Object.keys(headers ?? {}).some((k) => k.toLowerCase() === "content-type");
    res.writeHead(status, given ? headers : { "content-type": "application/json", ...headers });
    res.end(typeof body === "string" ? body : JSON.stringify(body ?? {}));
  };
  try {
    if (url.pathname === "/last-payment") return send(200, {}, lastPayment);
    const adapter = {
      getHeader: (name) => req.headers[name.toLowerCase()],
      getMethod: () => req.method,
      getPath: () => url.pathname,
      getUrl: () => url.href,
      getAcceptHeader: () => req.headers.accept ?? "",
      getUserAgent: () => req.headers["user-agent"] ?? "",
    };
    const context = { adapter, path: url.pathname, method: req.method };
    const result = await httpServer.processHTTPRequest(context);
    if (result.type === "no-payment-required") return send(404, {}, { error: "not found" });
    if (result.type === "payment-error") return send(result.response.status, result.response.headers, result.response.body);
    // Verified: settle, then serve (what a paid resource does after its work).
    lastPayment = { paymentPayload: result.paymentPayload, paymentRequirements: result.paymentRequirements };
    const settled = await httpServer.processSettlement(result.paymentPayload, result.paymentRequirements, result.declaredExtensions, { request: context });
    if (!settled.success) return send(settled.response.status, settled.response.headers, settled.response.body);
    send(200, settled.headers, { paid: true, payer: settled.payer, transaction: settled.transaction });
  } catch (e) {
    console.error(`demo-resource: ${req.method} ${req.url}: ${e.stack ?? e}`);
    send(500, {}, { error: String(e.message ?? e) });
  }
});
server.listen(0, "127.0.0.1", () => process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` }) + "\n"));

const parent = process.ppid;
setInterval(() => process.ppid !== parent && process.exit(0), 500).unref();
for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"]) process.on(signal, () => process.exit(0));

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || argv[i + 1] === undefined) fail("usage: demo-resource.mjs --facilitator URL --network eip155:N --asset 0x… --pay-to 0x… --amount N");
    out[argv[i].slice(2)] = argv[i + 1];
  }
  return out;
}

function fail(message) {
  console.error(`demo-resource: ${message}`);
  process.exit(1);
}

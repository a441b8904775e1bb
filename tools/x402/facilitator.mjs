// A local x402 (v2) facilitator for the local chain, as `npm run dev` and the
// integration tests run it. The scheme logic is the packages' own
// (@x402/core's x402Facilitator with @x402/evm's exact and upto schemes); this
// file only serves it over HTTP, as the standard facilitator endpoints:
//   POST /verify    {x402Version, paymentPayload, paymentRequirements} → VerifyResponse
//   POST /settle    same body                                          → SettleResponse
//   GET  /supported                                                    → {kinds, extensions, signers}
//   PUT  /__faults {"settle_unavailable": bool}  (tests: /settle answers 503 while set)
// A refused payment is a 200 with isValid/success false (what @x402/core's
// HTTPFacilitatorClient expects); a malformed request a 400, a failure a 500.
// Binds 127.0.0.1 on a free port, prints ONE JSON line {"url", "network",
// "signer", "schemes"} once it serves, and exits when its parent does.
//
// Usage: node facilitator.mjs --rpc-url URL --chain-id N --key 0x…
//   --key  the facilitator's account: it submits settlements and pays their gas
// Needs $DEXTO_X402_DIR (scripts/env.sh; installed by scripts/bootstrap.sh).
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { join } from "node:path";

const args = parseArgs(process.argv.slice(2), ["rpc-url", "chain-id", "key"]);
const chainId = Number(args["chain-id"]);
if (!Number.isSafeInteger(chainId) || chainId <= 0) fail(`bad --chain-id: ${args["chain-id"]}`);
const network = `eip155:${chainId}`;
const require = createRequire(join(process.env.DEXTO_X402_DIR ?? fail("DEXTO_X402_DIR is not set: source scripts/env.sh"), "node_modules", "_"));
const { createWalletClient, http, publicActions } = require("viem");
const { privateKeyToAccount } = require("viem/accounts");
const { x402Facilitator } = require("@x402/core/facilitator");
const { toFacilitatorEvmSigner, PERMIT2_ADDRESS, x402UptoPermit2ProxyAddress } = require("@x402/evm");
const { ExactEvmScheme } = require("@x402/evm/exact/facilitator");
const { UptoEvmScheme } = require("@x402/evm/upto/facilitator");

const account = privateKeyToAccount(args.key);
const chain = { id: chainId, name: "dexto-local", nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [args["rpc-url"]] } } };
const client = createWalletClient({ account, chain, transport: http(args["rpc-url"]), pollingInterval: 20 }).extend(publicActions);
const signer = toFacilitatorEvmSigner(
  {
    address: account.address,
    readContract: (a) => client.readContract(a),
    verifyTypedData: (a) => client.verifyTypedData(a),
    writeContract: (a) => client.writeContract(a),
    sendTransaction: (a) => client.sendTransaction(a),
    waitForTransactionReceipt: (a) => client.waitForTransactionReceipt(a),
    getCode: (a) => client.getCode(a),
  },
  { confirmationTimeoutMs: 30_000 }, // anvil mines at once; a stuck receipt is a bug to see
);

const facilitator = new x402Facilitator().register(network, new ExactEvmScheme(signer));
const schemes = ["exact"];
// upto settles through Permit2 and x402's upto proxy at their canonical
// addresses; without their code a settle would "succeed" against an empty
// account, so the scheme is offered only where both are deployed.
if (await hasCode(PERMIT2_ADDRESS) && await hasCode(x402UptoPermit2ProxyAddress)) {
  facilitator.register(network, new UptoEvmScheme(signer));
  schemes.push("upto");
}

// Test faults (PUT /__faults): off unless a test turns them on.
let faults = {};

// One account submits every settlement: one at a time (each waits for its
// receipt), or two concurrent ones would be sent with the same nonce.
let settling = Promise.resolve();
function oneAtATime(work) {
  const run = settling.then(work, work);
  settling = run.catch(() => {});
  return run;
}

const server = createServer(async (req, res) => {
  const reply = (status, body) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body, (_, v) => (typeof v === "bigint" ? v.toString() : v)));
  };
  try {
    if (req.method === "GET" && req.url === "/supported") return reply(200, facilitator.getSupported());
    // Fault switch for the tests (an outage of settlement): PUT /__faults {"settle_unavailable": true}.
    if (req.method === "PUT" && req.url === "/__faults") {
      faults = JSON.parse((await readBody(req)) || "{}");
      return reply(200, faults);
    }
    if (req.method === "POST" && req.url === "/settle" && faults.settle_unavailable) {
      await readBody(req);
      return reply(503, { error: "settlement unavailable (test fault)" });
    }
    const action = req.method === "POST" && { "/verify": "verify", "/settle": "settle" }[req.url];
    if (!action) return reply(404, { error: "not found: POST /verify, POST /settle, GET /supported" });
    let body;
    try {
      body = JSON.parse(await readBody(req));
    } catch {
      return reply(400, { error: "the body must be JSON: {x402Version, paymentPayload, paymentRequirements}" });
    }
    if (!body?.paymentPayload || !body?.paymentRequirements) return reply(400, { error: "paymentPayload and paymentRequirements are required" });
    // A scheme or network this facilitator does not settle is a refused
    // payment (as hosted facilitators answer it), not a failure.
    const { scheme, network: wanted } = body.paymentRequirements;
    if (!facilitator.getSupported().kinds.some((k) => k.scheme === scheme && k.network === wanted)) {
      const reason = "unsupported_scheme";
      return reply(200, action === "verify" ? { isValid: false, invalidReason: reason } : { success: false, errorReason: reason, transaction: "", network: wanted });
    }
    const run = () => facilitator[action](body.paymentPayload, body.paymentRequirements);
    reply(200, await (action === "settle" ? oneAtATime(run) : run()));
  } catch (e) {
    console.error(`facilitator: ${req.method} ${req.url}: ${e.stack ?? e}`);
    reply(500, { error: String(e.message ?? e) });
  }
});
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address();
  process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${port}`, network, signer: account.address, schemes }) + "\n");
});

// Dies with its parent (npm run dev, a test's watchdog): re-parented means orphaned.
const parent = process.ppid;
setInterval(() => process.ppid !== parent && process.exit(0), 500).unref();
for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"]) process.on(signal, () => process.exit(0));

async function hasCode(address) {
  const code = await client.getCode({ address });
  return code !== undefined && code !== "0x";
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c)).on("end", () => resolve(Buffer.concat(chunks).toString("utf8"))).on("error", reject);
  });
}

function parseArgs(argv, required) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || argv[i + 1] === undefined) fail(`usage: facilitator.mjs ${required.map((k) => `--${k} …`).join(" ")}`);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  for (const k of required) if (!out[k]) fail(`--${k} is required`);
  return out;
}

function fail(message) {
  console.error(`facilitator: ${message}`);
  process.exit(1);
}

// An x402 (v2) client nobody here wrote: @x402/fetch's wrapFetchWithPayment
// with @x402/evm's client schemes and a viem account. Calls URL; on a 402 it
// signs a payment for what the server asks (within --max) and retries, as an
// agent would. Prints ONE JSON line:
//   {"status", "body" (JSON if it parses, else text), "payment_response" (the
//    decoded PAYMENT-RESPONSE header, or null)}
// plus "refused" (why) when it got a 402 it would not or could not pay.
// Exits 0 whenever it got an answer; 1 if it could not reach URL.
//
// Usage: node pay.mjs URL [--scheme exact|upto] [--key 0x…] [--max N] [--rpc-url URL]
//          [--method POST] [--body JSON] [--header K:V]…
//   --scheme   which scheme it is willing to pay with (default exact)
//   --key      the payer's private key (default: the first funded account of
//              `npm run dev`'s chain, .dev/chain.json)
//   --max      the most it pays for one request, in the asset's base units
//              (default 1000000: 1 USDC)
//   --rpc-url  a node to read allowances from (upto's Permit2 approval)
// Needs $DEXTO_X402_DIR (scripts/env.sh).
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const { url, options } = parseArgs(process.argv.slice(2));
const require = createRequire(join(process.env.DEXTO_X402_DIR ?? fail("DEXTO_X402_DIR is not set: source scripts/env.sh"), "node_modules", "_"));
const { createPublicClient, http } = require("viem");
const { privateKeyToAccount } = require("viem/accounts");
const { wrapFetchWithPayment, x402Client, decodePaymentResponseHeader } = require("@x402/fetch");
const { toClientEvmSigner } = require("@x402/evm");
const { registerExactEvmScheme } = require("@x402/evm/exact/client");
const { UptoEvmScheme } = require("@x402/evm/upto/client");

const account = privateKeyToAccount(options.key ?? devKey());
const signer = options["rpc-url"] ? toClientEvmSigner(account, createPublicClient({ transport: http(options["rpc-url"]) })) : account;
const max = BigInt(options.max ?? 1_000_000);
// Our token is no default asset of the SDK's spend controls: any asset is
// allowed, and --max caps every payment instead.
const client = new x402Client().setSpendControls({ allowedAssets: true, maxAmountPerPayment: false });
const scheme = options.scheme ?? "exact";
if (scheme === "exact") registerExactEvmScheme(client, { signer });
else if (scheme === "upto") client.register("eip155:*", new UptoEvmScheme(signer));
else fail(`--scheme must be exact or upto, not ${scheme}`);
client.registerPolicy((_version, requirements) => requirements.filter((r) => r.scheme === scheme && BigInt(r.amount) <= max));

const headers = Object.fromEntries(options.header.map((h) => [h.slice(0, h.indexOf(":")).trim(), h.slice(h.indexOf(":") + 1).trim()]));
if (options.body !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === "content-type")) headers["content-type"] = "application/json";
// The last answer seen, so a 402 the client refuses to pay is still reported.
let last;
const recordingFetch = async (input, init) => {
  const response = await fetch(input, init);
  last = response.clone();
  return response;
};
try {
  const response = await wrapFetchWithPayment(recordingFetch, client)(url, { method: options.method ?? (options.body ? "POST" : "GET"), headers, body: options.body });
  console.log(JSON.stringify(await report(response)));
} catch (e) {
  if (last?.status !== 402) fail(e.stack ?? String(e));
  console.log(JSON.stringify({ ...(await report(last)), refused: String(e.message ?? e) }));
}

async function report(response) {
  const paymentHeader = response.headers.get("payment-response");
  return {
    status: response.status,
    body: parseOr(await response.text()),
    payment_response: paymentHeader ? decodePaymentResponseHeader(paymentHeader) : null,
  };
}

function parseOr(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/// `npm run dev`'s chain names its funded accounts and their keys.
function devKey() {
  const chainJson = join(dirname(fileURLToPath(import.meta.url)), "../../.dev/chain.json");
  if (!existsSync(chainJson)) fail("no --key, and no .dev/chain.json (is `npm run dev` running?)");
  return JSON.parse(readFileSync(chainJson, "utf8")).accounts[0].private_key;
}

function parseArgs(argv) {
  const usage = "usage: pay.mjs URL [--scheme exact|upto] [--key 0x…] [--max N] [--rpc-url URL] [--method M] [--body JSON] [--header K:V]…";
  const options = { header: [] };
  let url;
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith("--")) {
      if (url) fail(usage);
      url = argv[i];
      continue;
    }
    const [name, value] = [argv[i].slice(2), argv[++i]];
    if (value === undefined) fail(usage);
    if (name === "header") options.header.push(value);
    else options[name] = value;
  }
  if (!url) fail(usage);
  return { url, options };
}

function fail(message) {
  console.error(`pay: ${message}`);
  process.exit(1);
}

// The local chain for `npm run dev` and the integration tests: starts anvil (a
// real Ethereum node) on a free port, deploys DextoUSD (contracts/DextoUSD.sol,
// compiled by solc-js; the artifact is cached by source hash), mints test USDC
// to anvil's first default accounts, then prints ONE JSON line on stdout:
//   {"rpc_url", "chain_id", "token", "treasury", "accounts": [{"address", "private_key"}],
//    "facilitator": {"address", "private_key"}}
// (also written to --out FILE) and keeps anvil running until it is told to stop.
// Run through scripts/chain.sh, which sources env.sh for $DEXTO_CHAIN_DIR (the
// pinned anvil, solc and viem installed by scripts/bootstrap.sh) and the pinned node.
//
// Usage: node tools/chain/start.mjs [--chain-id N] [--out FILE] [--log FILE]
//   --chain-id  default $EVM_CHAIN_ID, else 8453 (Base's, so local ids look like production)
//   --log       anvil's own output (default: discarded)
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const SOURCE = join(HERE, "../../contracts/DextoUSD.sol");
const FUNDED_ACCOUNTS = 5; // anvil's default accounts 0..4 get test USDC (0 also deploys)
const TREASURY_ACCOUNT = 9; // the last default account: unlocked, starts with no USDC
const FACILITATOR_ACCOUNT = 8; // pays the gas of x402 settlements (tools/x402/facilitator.mjs); no USDC
const MINT_BASE_UNITS = 1_000_000_000n; // 1,000 USDC at 6 decimals
const READY_WITHIN_MS = 30_000;

const args = parseArgs(process.argv.slice(2));
const chainId = Number(args["chain-id"] ?? process.env.EVM_CHAIN_ID ?? 8453);
if (!Number.isSafeInteger(chainId) || chainId <= 0) fail(`bad chain id: ${args["chain-id"] ?? process.env.EVM_CHAIN_ID}`);
const toolsDir = process.env.DEXTO_CHAIN_DIR;
if (!toolsDir || !existsSync(join(toolsDir, "node_modules"))) fail("DEXTO_CHAIN_DIR is not installed: run scripts/bootstrap.sh");
// The packages live in the tools cache, not beside this file.
const require = createRequire(join(toolsDir, "node_modules", "_"));

// anvil writes its accounts and their keys here once it is up.
const configOut = join(tmpdir(), `dexto-anvil-${process.pid}.json`);
const anvil = spawn(anvilBinary(), ["--host", "127.0.0.1", "--port", "0", "--chain-id", String(chainId), "--config-out", configOut], {
  stdio: ["ignore", "pipe", "inherit"],
});
const stop = () => anvil.kill("SIGTERM");
process.on("SIGTERM", stop).on("SIGINT", stop).on("SIGHUP", stop).on("exit", stop);
anvil.on("exit", (code, signal) => process.exit(code ?? (signal ? 0 : 1)));

try {
  const artifact = compiled(); // while anvil starts
  const rpcUrl = await listening(anvil, args.log);
  await until(async () => (await rpc(rpcUrl, "eth_chainId")) === `0x${chainId.toString(16)}`);
  const config = JSON.parse(readFileSync(configOut, "utf8"));
  rmSync(configOut);
  const chain = await deployAndFund(rpcUrl, artifact, config);
  const line = JSON.stringify(chain);
  if (args.out) {
    writeFileSync(`${args.out}.tmp`, line + "\n");
    renameSync(`${args.out}.tmp`, args.out);
  }
  process.stdout.write(line + "\n");
} catch (e) {
  console.error(`chain: ${e.stack ?? e}`);
  process.exit(1);
}

/// DextoUSD's ABI and bytecode: from the cache when this source was compiled
/// by this solc before (40 test stacks compile once), else solc-js now.
function compiled() {
  const solc = require("solc");
  const source = readFileSync(SOURCE, "utf8");
  const input = {
    language: "Solidity",
    sources: { "DextoUSD.sol": { content: source } },
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: "prague",
      outputSelection: { "DextoUSD.sol": { DextoUSD: ["abi", "evm.bytecode.object"] } },
    },
  };
  const key = createHash("sha256").update(solc.version()).update(JSON.stringify(input)).digest("hex").slice(0, 16);
  const cached = join(toolsDir, "artifacts", `DextoUSD-${key}.json`);
  if (existsSync(cached)) return JSON.parse(readFileSync(cached, "utf8"));
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors ?? []).filter((e) => e.severity === "error");
  if (errors.length) fail(`solc: ${errors.map((e) => e.formattedMessage).join("\n")}`);
  const contract = output.contracts["DextoUSD.sol"].DextoUSD;
  const artifact = { abi: contract.abi, bytecode: `0x${contract.evm.bytecode.object}` };
  mkdirSync(dirname(cached), { recursive: true });
  writeFileSync(`${cached}.${process.pid}`, JSON.stringify(artifact)); // rename: readers never see half a file
  renameSync(`${cached}.${process.pid}`, cached);
  return artifact;
}

async function deployAndFund(rpcUrl, { abi, bytecode }, config) {
  const { createPublicClient, createWalletClient, getAddress, http } = require("viem");
  const transport = http(rpcUrl);
  const chain = { id: chainId, name: "dexto-local", nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [rpcUrl] } } };
  const publicClient = createPublicClient({ chain, transport, pollingInterval: 20 });
  // anvil's accounts are unlocked: the node signs (eth_sendTransaction).
  const deployer = getAddress(config.available_accounts[0]);
  const wallet = createWalletClient({ chain, transport, account: deployer });
  const mined = async (hash) => {
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new Error(`transaction ${hash} reverted`);
    return receipt;
  };
  const token = (await mined(await wallet.deployContract({ abi, bytecode }))).contractAddress;
  const accounts = config.available_accounts.slice(0, FUNDED_ACCOUNTS).map((address, i) => ({
    address: getAddress(address),
    private_key: config.private_keys[i],
  }));
  for (const { address } of accounts) {
    await mined(await wallet.writeContract({ address: token, abi, functionName: "mint", args: [address, MINT_BASE_UNITS] }));
  }
  const treasury = getAddress(config.available_accounts[TREASURY_ACCOUNT]);
  const facilitator = { address: getAddress(config.available_accounts[FACILITATOR_ACCOUNT]), private_key: config.private_keys[FACILITATOR_ACCOUNT] };
  return { rpc_url: rpcUrl, chain_id: chainId, token: getAddress(token), treasury, accounts, facilitator };
}

/// The native binary from anvil's per-platform npm package (no node wrapper
/// in between, so stopping anvil is one signal to one process).
function anvilBinary() {
  const arch = { x64: "amd64", arm64: "arm64" }[process.arch];
  const exe = process.platform === "win32" ? "anvil.exe" : "anvil";
  try {
    return require.resolve(`@foundry-rs/anvil-${process.platform}-${arch}/bin/${exe}`);
  } catch {
    return join(toolsDir, "node_modules", ".bin", exe);
  }
}

/// anvil binds port 0 and says where: "Listening on 127.0.0.1:PORT". Its later
/// output (one line per RPC call) keeps draining into the log, or nowhere.
function listening(child, logPath) {
  const log = logPath ? createWriteStream(logPath, { flags: "a" }) : null;
  return new Promise((resolve, reject) => {
    child.on("exit", () => reject(new Error("anvil exited before listening")));
    createInterface({ input: child.stdout }).on("line", (line) => {
      log?.write(line + "\n");
      const m = line.match(/Listening on (\S+:\d+)/);
      if (m) resolve(`http://${m[1]}`);
    });
  });
}

async function rpc(url, method, params = []) {
  const r = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  const body = await r.json();
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result;
}

/// Polls `check` (errors count as "not yet") until it holds, or fails at the deadline.
async function until(check) {
  const deadline = Date.now() + READY_WITHIN_MS;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`anvil not answering eth_chainId within ${READY_WITHIN_MS} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || argv[i + 1] === undefined) fail(`usage: start.mjs [--chain-id N] [--out FILE] [--log FILE]`);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  return out;
}

function fail(message) {
  console.error(`chain: ${message}`);
  process.exit(1);
}

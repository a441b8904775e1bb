// Signs an EIP-3009 TransferWithAuthorization with viem, as an x402 client
// does, for the tests (tests/tests/local_chain.rs): Rust submits it, so the
// signing stays in the library real clients use.
// Usage: node sign-authorization.mjs '{"private_key", "domain": {"name", "version",
//   "chain_id", "verifying_contract"}, "to", "value", "valid_after", "valid_before", "nonce"}'
// Prints {"from", "v", "r", "s"}. Needs $DEXTO_CHAIN_DIR (scripts/env.sh).
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(join(process.env.DEXTO_CHAIN_DIR, "node_modules", "_"));
const { parseSignature } = require("viem");
const { privateKeyToAccount } = require("viem/accounts");

const input = JSON.parse(process.argv[2]);
const account = privateKeyToAccount(input.private_key);
const signature = await account.signTypedData({
  domain: {
    name: input.domain.name,
    version: input.domain.version,
    chainId: input.domain.chain_id,
    verifyingContract: input.domain.verifying_contract,
  },
  types: {
    TransferWithAuthorization: [
      { name: "from", type: "address" },
      { name: "to", type: "address" },
      { name: "value", type: "uint256" },
      { name: "validAfter", type: "uint256" },
      { name: "validBefore", type: "uint256" },
      { name: "nonce", type: "bytes32" },
    ],
  },
  primaryType: "TransferWithAuthorization",
  message: {
    from: account.address,
    to: input.to,
    value: BigInt(input.value),
    validAfter: BigInt(input.valid_after),
    validBefore: BigInt(input.valid_before),
    nonce: input.nonce,
  },
});
const { r, s, v } = parseSignature(signature);
console.log(JSON.stringify({ from: account.address, v: Number(v), r, s }));

// The dashboard's only script (served from our origin; the CSP allows no
// other). Everything works without it except copying, the live wait for a
// payment and signing in with a wallet: copy buttons, confirmation before
// revoking, polling the top-up status until the webhook has credited the
// account, and Sign-In with Ethereum (EIP-4361) through the browser's wallet.
"use strict";

document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const text = document.getElementById(button.dataset.copy)?.textContent ?? "";
  const status = button.parentElement.querySelector(".copied");
  try {
    await navigator.clipboard.writeText(text);
    if (status) status.textContent = "Copied.";
  } catch {
    if (status) status.textContent = "Copy failed: select the key and copy it by hand.";
  }
});

document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

const pending = document.getElementById("topup-pending");
if (pending) {
  const session = pending.dataset.session;
  let tries = 0;
  const poll = async () => {
    tries += 1;
    try {
      const res = await fetch(`/dashboard/settings/billing/status?session_id=${encodeURIComponent(session)}`, { credentials: "same-origin" });
      const body = await res.json();
      if (body.status !== "pending") {
        window.location.reload();
        return;
      }
    } catch {
      // Keep waiting; the Refresh link is there too.
    }
    if (tries < 120) {
      setTimeout(poll, 1000);
    } else {
      pending.querySelector("p").textContent = "This is taking longer than usual. Refresh in a minute; your payment is safe.";
    }
  };
  setTimeout(poll, 1000);
}

// Sign-In with Ethereum: the wallet (EIP-1193, `window.ethereum`) shares an
// address and signs an EIP-4361 message laid out exactly as the server parses
// it (shared/src/chain/siwe.rs); the dashboard turns the signature into a
// session. The address must be EIP-55 checksummed, hence Keccak-256 here.
const MASK64 = (1n << 64n) - 1n;
const rotl64 = (v, n) => ((v << n) | (v >> (64n - n))) & MASK64;

// Keccak-f[1600] on 25 BigInt lanes (lane x, y at x + 5y), after the Keccak
// team's "readable and compact" reference.
function keccakF(a) {
  let lfsr = 1;
  for (let round = 0; round < 24; round++) {
    const c = [0, 1, 2, 3, 4].map((x) => a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20]);
    for (let x = 0; x < 5; x++) {
      const d = c[(x + 4) % 5] ^ rotl64(c[(x + 1) % 5], 1n);
      for (let y = 0; y < 25; y += 5) a[x + y] ^= d;
    }
    let [x, y, current] = [1, 0, a[1]];
    for (let t = 0; t < 24; t++) {
      [x, y] = [y, (2 * x + 3 * y) % 5];
      const next = a[x + 5 * y];
      a[x + 5 * y] = rotl64(current, BigInt((((t + 1) * (t + 2)) / 2) % 64));
      current = next;
    }
    for (let y = 0; y < 25; y += 5) {
      const row = a.slice(y, y + 5);
      for (let x = 0; x < 5; x++) a[x + y] = row[x] ^ (~row[(x + 1) % 5] & MASK64 & row[(x + 2) % 5]);
    }
    for (let j = 0; j < 7; j++) {
      const bit = lfsr & 1;
      lfsr = lfsr & 0x80 ? ((lfsr << 1) ^ 0x71) & 0xff : lfsr << 1;
      if (bit) a[0] ^= 1n << BigInt((1 << j) - 1);
    }
  }
}

// Keccak-256 (Ethereum's: original padding 0x01), as lowercase hex.
function keccak256Hex(bytes) {
  const rate = 136;
  const padded = new Uint8Array(Math.floor(bytes.length / rate + 1) * rate);
  padded.set(bytes);
  padded[bytes.length] ^= 0x01;
  padded[padded.length - 1] ^= 0x80;
  const state = new Array(25).fill(0n);
  for (let block = 0; block < padded.length; block += rate) {
    for (let i = 0; i < rate / 8; i++) {
      let lane = 0n;
      for (let b = 7; b >= 0; b--) lane = (lane << 8n) | BigInt(padded[block + 8 * i + b]);
      state[i] ^= lane;
    }
    keccakF(state);
  }
  let hex = "";
  for (let i = 0; i < 4; i++) for (let b = 0; b < 8; b++) hex += Number((state[i] >> BigInt(8 * b)) & 0xffn).toString(16).padStart(2, "0");
  return hex;
}

// EIP-55: a letter is upper case where the hash of the lowercase address has a nibble >= 8.
function checksummed(address) {
  const lower = address.toLowerCase().replace(/^0x/, "");
  if (!/^[0-9a-f]{40}$/.test(lower)) throw new Error("The wallet gave an address that is not an Ethereum address.");
  const hash = keccak256Hex(new TextEncoder().encode(lower));
  return "0x" + [...lower].map((ch, i) => (parseInt(hash[i], 16) >= 8 ? ch.toUpperCase() : ch)).join("");
}

function siweMessage({ domain, address, statement, uri, chainId, nonce, issuedAt }) {
  return `${domain} wants you to sign in with your Ethereum account:\n${address}\n\n${statement}\n\n` +
    `URI: ${uri}\nVersion: 1\nChain ID: ${chainId}\nNonce: ${nonce}\nIssued At: ${issuedAt}`;
}

const utf8Hex = (text) => "0x" + Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, "0")).join("");

async function jsonOrError(response, fallback) {
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error?.message ?? fallback);
  return body;
}

// Has the wallet sign an EIP-4361 message over a fresh nonce: `{message, signature}`.
async function walletSignature(say, statement) {
  const wallet = window.ethereum;
  if (!wallet?.request) {
    throw new Error("This needs a wallet in this browser (an extension such as MetaMask, or your wallet app's browser). None was found.");
  }
  say("Approve the request in your wallet…", false);
  const [account] = await wallet.request({ method: "eth_requestAccounts" });
  if (!account) throw new Error("The wallet shared no account.");
  const challenge = await jsonOrError(await fetch("/api/auth/siwe/nonce"), "Could not reach the server; try again.");
  const message = siweMessage({
    domain: window.location.host,
    address: checksummed(account),
    statement,
    uri: `${window.location.origin}/dashboard`,
    chainId: challenge.chain_id,
    nonce: challenge.nonce,
    issuedAt: new Date().toISOString(),
  });
  say("Sign the message in your wallet…", false);
  const signature = await wallet.request({ method: "personal_sign", params: [utf8Hex(message), account] });
  return { message, signature };
}

// A button that has the wallet sign, then posts `{message, signature, …extra}`
// to `path` and hands the JSON answer to `done`.
function walletButton(id, path, extra, failed, done) {
  const button = document.getElementById(id);
  if (!button) return;
  const status = document.getElementById(`${id}-status`);
  const say = (text, isError) => {
    status.textContent = text;
    status.className = isError ? "error" : "notice";
  };
  button.hidden = false;
  button.addEventListener("click", async () => {
    if (!window.ethereum?.request) {
      say("Signing with Ethereum needs a wallet in this browser (an extension such as MetaMask, or your wallet app's browser). None was found.", true);
      return;
    }
    button.disabled = true;
    try {
      // A link names the account (the server requires it); a sign-in does not.
      const signed = await walletSignature(say, button.dataset.statement ?? "Sign in to Dexto.");
      const answer = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ ...signed, ...extra(button) }),
      });
      done(await jsonOrError(answer, failed));
    } catch (e) {
      // EIP-1193's 4001: the user said no in the wallet.
      say(e?.code === 4001 ? "You declined in your wallet; nothing was signed." : (e?.message ?? failed), true);
      button.disabled = false;
    }
  });
}

walletButton("siwe", "/dashboard/auth/siwe", (b) => ({ next: b.dataset.next }), "Signing in failed; try again.", ({ next }) => window.location.assign(next));
walletButton("siwe-link", "/dashboard/settings/billing/wallet", (b) => ({ csrf: b.dataset.csrf }), "Linking the wallet failed; try again.", () => window.location.reload());

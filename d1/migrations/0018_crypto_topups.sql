-- USDC top-ups verified on chain: every Transfer of the configured token to
-- the treasury that the gateway has seen (by a user's confirm or by the
-- chain scan), and how far the scan has read.

-- status: unclaimed (sender linked to no account) → pending (an account,
-- not final yet) → crediting (claimed for one account; the wallet credit is
-- under way) → credited; dropped (the chain no longer shows it, never credited).
CREATE TABLE crypto_transfers (
    chain_id       INTEGER NOT NULL,
    tx_hash        TEXT NOT NULL,                 -- lower-case 0x…
    log_index      INTEGER NOT NULL,
    token          TEXT NOT NULL,                 -- checksummed
    from_address   TEXT NOT NULL,                 -- checksummed
    to_address     TEXT NOT NULL,
    amount_micros  INTEGER NOT NULL,              -- USDC base units = micro-USD
    block_number   INTEGER NOT NULL,
    block_hash     TEXT NOT NULL,
    user_id        TEXT REFERENCES users (id),    -- NULL while unclaimed
    status         TEXT NOT NULL CHECK (status IN ('unclaimed', 'pending', 'crediting', 'credited', 'dropped')),
    seen_at        INTEGER NOT NULL,
    credited_at    INTEGER,
    PRIMARY KEY (chain_id, tx_hash, log_index)
);
CREATE INDEX crypto_transfers_user ON crypto_transfers (user_id, seen_at);
CREATE INDEX crypto_transfers_status ON crypto_transfers (status);
CREATE INDEX crypto_transfers_from ON crypto_transfers (from_address, status);

CREATE TABLE chain_checkpoints (
    chain_id         INTEGER NOT NULL,
    token            TEXT NOT NULL,
    treasury         TEXT NOT NULL,
    scanned_through  INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (chain_id, token, treasury)
);

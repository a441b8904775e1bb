-- Dexto gateway schema. Money is integer micro-USD (1 USD = 1_000_000) everywhere.
-- Timestamps are integer Unix milliseconds (UTC).
--
-- Ownership (see docs/ARCHITECTURE.md): the wallet Durable Object is the source of
-- truth for a user's balance and open holds; it writes `balances`, `credit_ledger`
-- and `usage_ledger` here through its outbox, in one D1 batch per entry, idempotent
-- on the entry's unique reference.

CREATE TABLE users (
    id          TEXT PRIMARY KEY,              -- Supabase user id (uuid) or admin-chosen id
    email       TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX users_email ON users (email);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id),
    key_hash      TEXT NOT NULL UNIQUE,         -- lowercase hex SHA-256 of the full key; plaintext never stored
    key_prefix    TEXT NOT NULL,                -- display: prefix + '…' + last4
    key_last4     TEXT NOT NULL,
    name          TEXT NOT NULL,
    scopes        TEXT NOT NULL DEFAULT 'gateway:use',  -- space-separated
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX api_keys_user ON api_keys (user_id, status);

-- Mirror of the wallet Durable Object's balance; `version` is the DO's sequence
-- number so an older outbox flush can never overwrite a newer balance.
CREATE TABLE balances (
    user_id         TEXT PRIMARY KEY REFERENCES users (id),
    balance_micros  INTEGER NOT NULL DEFAULT 0,
    version         INTEGER NOT NULL DEFAULT 0,
    frozen          INTEGER NOT NULL DEFAULT 0,
    updated_at      INTEGER NOT NULL
);

-- One row per metered request (billed or not). Append-only.
CREATE TABLE usage_ledger (
    request_id              TEXT PRIMARY KEY,
    user_id                 TEXT NOT NULL,
    key_id                  TEXT NOT NULL,
    model                   TEXT NOT NULL,
    generation_id           TEXT,
    prompt_tokens           INTEGER NOT NULL DEFAULT 0,
    completion_tokens       INTEGER NOT NULL DEFAULT 0,
    cached_tokens           INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens        INTEGER NOT NULL DEFAULT 0,
    provider_cost_micros    INTEGER NOT NULL DEFAULT 0,
    user_price_micros       INTEGER NOT NULL DEFAULT 0,
    price_basis             TEXT NOT NULL,     -- reported_cost | price_table | estimate
    billing_status          TEXT NOT NULL CHECK (billing_status IN ('billed', 'needs_review', 'refunded')),
    upstream_status         INTEGER,
    stream                  INTEGER NOT NULL DEFAULT 0,
    cancelled               INTEGER NOT NULL DEFAULT 0,
    session_id              TEXT,
    client_source           TEXT,
    client_version          TEXT,
    latency_ms              INTEGER NOT NULL DEFAULT 0,
    created_at              INTEGER NOT NULL
);
CREATE INDEX usage_user_time ON usage_ledger (user_id, created_at DESC, request_id);
CREATE INDEX usage_user_model_time ON usage_ledger (user_id, model, created_at);
CREATE INDEX usage_user_key_time ON usage_ledger (user_id, key_id, created_at);
CREATE INDEX usage_review ON usage_ledger (billing_status) WHERE billing_status <> 'billed';

-- Every change of a wallet balance: credits (positive) and debits (negative).
-- `reference` is unique: replays of the same credit/debit are no-ops.
CREATE TABLE credit_ledger (
    id                    TEXT PRIMARY KEY,
    user_id               TEXT NOT NULL,
    seq                   INTEGER NOT NULL,   -- wallet DO sequence number (total order per user)
    kind                  TEXT NOT NULL,      -- usage | admin_credit | topup | refund | dispute | intro_credit | subscription
    amount_micros         INTEGER NOT NULL,   -- signed
    balance_after_micros  INTEGER NOT NULL,
    reference             TEXT NOT NULL UNIQUE,
    reason                TEXT,
    created_at            INTEGER NOT NULL
);
CREATE INDEX credit_user_seq ON credit_ledger (user_id, seq);

-- Per-user OpenRouter keys, AES-256-GCM encrypted (nonce per value).
CREATE TABLE upstream_keys (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id),
    provider         TEXT NOT NULL DEFAULT 'openrouter',
    upstream_hash    TEXT NOT NULL,            -- OpenRouter key hash (management id), not secret
    ciphertext       TEXT NOT NULL,            -- base64(nonce || ciphertext || tag)
    enc_key_id       TEXT NOT NULL,            -- which ENCRYPTION_KEY sealed it (rotation)
    limit_micros     INTEGER,
    limit_synced_at  INTEGER,
    status           TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired')),
    created_at       INTEGER NOT NULL,
    retired_at       INTEGER
);
CREATE UNIQUE INDEX upstream_keys_active ON upstream_keys (user_id) WHERE status = 'active';

CREATE TABLE stripe_transactions (
    id                   TEXT PRIMARY KEY,     -- Checkout Session id (cs_…)
    user_id              TEXT NOT NULL,
    kind                 TEXT NOT NULL DEFAULT 'checkout',
    amount_minor         INTEGER NOT NULL,     -- Stripe minor units
    currency             TEXT NOT NULL,
    credit_micros        INTEGER NOT NULL DEFAULT 0,
    status               TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'failed', 'refunded', 'disputed')),
    payment_intent       TEXT,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE INDEX stripe_tx_user ON stripe_transactions (user_id, created_at);
CREATE INDEX stripe_tx_pi ON stripe_transactions (payment_intent);

CREATE TABLE processed_webhook_events (
    event_id      TEXT PRIMARY KEY,
    event_type    TEXT NOT NULL,
    processed_at  INTEGER NOT NULL
);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    actor       TEXT NOT NULL,                 -- admin | user:<id> | system | stripe
    action      TEXT NOT NULL,
    subject     TEXT,
    detail      TEXT,                          -- JSON, never secrets
    created_at  INTEGER NOT NULL
);
CREATE INDEX audit_subject ON audit_log (subject, created_at);

CREATE TABLE allowed_models (
    model_id      TEXT PRIMARY KEY,
    markup_bps    INTEGER,                     -- per-model markup in basis points (10000 = 1.0x); NULL = default
    created_at    INTEGER NOT NULL
);

-- Direct OpenRouter keys (BYOK path): a key a user calls OpenRouter with
-- themselves, separate from the managed one in upstream_keys, sealed like it,
-- funded from the wallet. Its `limit` upstream is a target derived from the
-- moves below (Σ funds − Σ reclaims and revokes, pending ones included), so
-- setting it is idempotent and reconciliation can re-apply it.

CREATE TABLE direct_keys (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id),
    upstream_hash  TEXT NOT NULL,            -- OpenRouter key hash (management id), not secret
    ciphertext     TEXT NOT NULL,            -- base64(nonce || ciphertext || tag)
    enc_key_id     TEXT NOT NULL,            -- which ENCRYPTION_KEY sealed it
    label          TEXT NOT NULL,            -- OpenRouter's display label (sk-or-v1-abc...xyz)
    status         TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at     INTEGER NOT NULL,
    revoked_at     INTEGER,
    checked_at     INTEGER                   -- last reconciliation look (least recent first)
);
CREATE UNIQUE INDEX direct_keys_active ON direct_keys (user_id) WHERE status = 'active';
CREATE INDEX direct_keys_revoked ON direct_keys (status, revoked_at);

-- One row per money move between the wallet and a direct key. `id` is the
-- move's unique reference: the wallet's /credit reference is derived from it
-- (direct_fund:<id>, direct_reclaim:<id>, direct_revoke:<id>), so completing
-- a move twice moves money once. pending → done; reconciliation completes
-- pending moves.
CREATE TABLE direct_key_moves (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id),
    key_id         TEXT NOT NULL REFERENCES direct_keys (id),
    kind           TEXT NOT NULL CHECK (kind IN ('fund', 'reclaim', 'revoke')),
    amount_micros  INTEGER NOT NULL CHECK (amount_micros >= 0),
    state          TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    created_at     INTEGER NOT NULL,
    done_at        INTEGER
);
CREATE INDEX direct_key_moves_key ON direct_key_moves (key_id, kind);
CREATE INDEX direct_key_moves_pending ON direct_key_moves (state) WHERE state = 'pending';

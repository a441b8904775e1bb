-- Sign-In with Ethereum (EIP-4361): single-use nonces, the addresses that
-- belong to each account, and the sessions a signature opens.

-- A nonce is issued by GET /api/auth/siwe/nonce and consumed by the first
-- sign-in (or link) that names it, within its lifetime.
CREATE TABLE siwe_nonces (
    nonce       TEXT PRIMARY KEY,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX siwe_nonces_expiry ON siwe_nonces (expires_at);

-- One address belongs to one account. A wallet-first account (users.id =
-- 'eth:' + the checksummed address) owns the address it was created by.
CREATE TABLE wallet_addresses (
    address     TEXT PRIMARY KEY,             -- EIP-55 checksummed
    user_id     TEXT NOT NULL REFERENCES users (id),
    linked_at   INTEGER NOT NULL
);
CREATE INDEX wallet_addresses_user ON wallet_addresses (user_id);

-- A session opened by a signature: its access tokens name it (`sid`), its
-- refresh token is stored as a SHA-256 and rotates on each use.
CREATE TABLE auth_sessions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id),
    address       TEXT NOT NULL,
    refresh_hash  TEXT NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id);

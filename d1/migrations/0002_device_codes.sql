-- Device login (RFC 8628 style, Dexto CLI 1.6.9+). One row per started login.
-- The device code is a bearer secret held by the CLI: only its SHA-256 is stored.
-- Every state change is one guarded UPDATE (D1 has no interactive transactions):
--   pending → approved | denied   (the signed-in user, by user code)
--   approved → consumed           (the first poll after approval; mints exactly once)
-- Rows are deleted a day after they expire (by the next start).

CREATE TABLE device_codes (
    device_code_hash  TEXT PRIMARY KEY,          -- lowercase hex SHA-256 of the device code
    user_code         TEXT NOT NULL UNIQUE,      -- canonical `XXXX-XXXX`, Crockford base32 (40 bits)
    client            TEXT NOT NULL,             -- what the CLI said it is (`dexto-cli`), for audit
    status            TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied', 'consumed')),
    user_id           TEXT REFERENCES users (id),  -- who approved or denied it
    interval_secs     INTEGER NOT NULL DEFAULT 5,  -- minimum seconds between polls
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,          -- created_at + DEVICE_CODE_TTL_SECONDS (default 600)
    last_poll_at      INTEGER,                   -- last poll that was not refused as too fast
    decided_at        INTEGER,
    consumed_at       INTEGER
);
CREATE INDEX device_codes_expiry ON device_codes (expires_at);

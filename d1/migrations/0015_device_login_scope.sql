-- Device login shows who is asking before approval, and hands the
-- 1.6.9–1.7.x CLIs a narrow device token instead of a session.
-- What the start request said and where it came from, for the approval page
-- (and audit); deleted with the row a day after expiry.
ALTER TABLE device_codes ADD COLUMN client_version TEXT;   -- X-Dexto-Version / body / User-Agent, if sent
ALTER TABLE device_codes ADD COLUMN client_ip TEXT;        -- CF-Connecting-IP of the start request
ALTER TABLE device_codes ADD COLUMN client_country TEXT;   -- request.cf.country, where the platform gives it

-- Device tokens (`dxd_…`): only their SHA-256 is stored. A token may issue
-- one key: `key_claimed_at` is set by the one guarded UPDATE that claims it.
CREATE TABLE device_tokens (
    token_hash      TEXT PRIMARY KEY,             -- lowercase hex SHA-256 of the token
    user_id         TEXT NOT NULL REFERENCES users (id),
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,             -- created_at + DEVICE_TOKEN_TTL_SECS (600)
    key_claimed_at  INTEGER                       -- when it issued its one key
);
CREATE INDEX device_tokens_expiry ON device_tokens (expires_at);

-- Per-key settings: an expiry (refused like a revoked key after it) and the
-- models the key may call (space-separated ids; NULL = every allowed model).
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
ALTER TABLE api_keys ADD COLUMN allowed_models TEXT;

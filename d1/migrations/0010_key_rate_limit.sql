-- A key's own rate limit (requests per minute; NULL = only the user's limit).
ALTER TABLE api_keys ADD COLUMN rate_limit_per_minute INTEGER;

-- Rotation keeps a key's rights and happens once: the replacement names the
-- key it replaces (at most one replacement per key), and the replaced key names
-- its successor. Both written in one D1 batch with the old key's revocation.
ALTER TABLE api_keys ADD COLUMN replaces TEXT;
ALTER TABLE api_keys ADD COLUMN replaced_by TEXT;
CREATE UNIQUE INDEX api_keys_one_replacement ON api_keys (replaces) WHERE replaces IS NOT NULL;

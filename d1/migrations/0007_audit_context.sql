-- Audit entries say whose account they concern, which request made them and
-- from where, so operators can filter them and users can read their own.
ALTER TABLE audit_log ADD COLUMN user_id TEXT;
ALTER TABLE audit_log ADD COLUMN request_id TEXT;
ALTER TABLE audit_log ADD COLUMN client_ip TEXT;
CREATE INDEX audit_user ON audit_log (user_id, id);
CREATE INDEX audit_action ON audit_log (action, id);

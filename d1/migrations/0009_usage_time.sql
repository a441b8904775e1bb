-- Operator metrics (`GET /admin/metrics`) read a time range across all users.
CREATE INDEX usage_time ON usage_ledger (created_at);

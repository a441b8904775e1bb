-- Indexes for the usage history's session and status filters (dexto-usage,
-- shared/src/usage_query.rs). With them every history filter is a range read
-- of one user's matching rows, newest first, instead of a walk through the
-- user's whole history until enough rows match (a rare session or
-- `needs_review` would otherwise cost a full per-user scan).
CREATE INDEX usage_user_session_time ON usage_ledger (user_id, session_id, created_at);
CREATE INDEX usage_user_status_time ON usage_ledger (user_id, billing_status, created_at);

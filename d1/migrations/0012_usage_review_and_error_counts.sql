-- Reconciliation of `needs_review` usage against OpenRouter's generation
-- records (functions/chat/src/usage_review.rs). The row keeps its original
-- amounts and `billing_status`: a resolution is recorded beside them.
--   markup_bps         the markup the charge was priced with (written by the
--                      wallet from now on; NULL on older rows, which cannot be
--                      re-priced exactly and are reported as unverifiable)
--   review_checked_at  last time reconciliation looked at the row (visit order)
--   resolved_at        when the true price was settled (NULL: still open)
--   review_outcome     exact | refunded | undercharged
--   true_price_micros  what the generation record prices the request at
--   true_cost_micros   the provider cost the record reports (what the upstream
--                      key was charged: for comparing with its spending)
--   corrected_micros   credited back to the wallet (`usage_correction:<request id>`)
ALTER TABLE usage_ledger ADD COLUMN markup_bps INTEGER;
ALTER TABLE usage_ledger ADD COLUMN review_checked_at INTEGER;
ALTER TABLE usage_ledger ADD COLUMN resolved_at INTEGER;
ALTER TABLE usage_ledger ADD COLUMN review_outcome TEXT;
ALTER TABLE usage_ledger ADD COLUMN true_price_micros INTEGER;
ALTER TABLE usage_ledger ADD COLUMN true_cost_micros INTEGER;
ALTER TABLE usage_ledger ADD COLUMN corrected_micros INTEGER;
-- The open review queue only: least recently checked first.
CREATE INDEX usage_review_queue ON usage_ledger (review_checked_at, created_at)
    WHERE billing_status = 'needs_review' AND resolved_at IS NULL;

-- Refused chat requests by UTC day, HTTP status and error code (never billed,
-- so never in usage_ledger). Written by the chat Worker after the response,
-- coalesced per isolate (functions/chat/src/error_counts.rs).
CREATE TABLE error_counts (
    day     TEXT NOT NULL,      -- YYYY-MM-DD (UTC)
    status  INTEGER NOT NULL,
    code    TEXT NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (day, status, code)
) WITHOUT ROWID;

-- Reconciliation with Stripe reads the checkout sessions credited in its
-- look-back window every hour: by creation time, not a scan of every payment.
CREATE INDEX stripe_tx_created ON stripe_transactions (created_at);

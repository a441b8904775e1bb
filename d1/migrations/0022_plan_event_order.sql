-- Stripe delivers subscription events out of order: the `created` time (ms)
-- of the last `customer.subscription.*` event applied to the user's plan
-- state; older ones are ignored (functions/billing/src/plans.rs).
ALTER TABLE user_plans ADD COLUMN subscription_event_at INTEGER;

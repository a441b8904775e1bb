-- Plans: monthly subscriptions with included credit (docs/ARCHITECTURE.md,
-- "Plans"). Plans are data an operator defines (`/admin/plans`); `free` is
-- what an account without a subscription has.
CREATE TABLE plans (
    id                     TEXT PRIMARY KEY,
    name                   TEXT NOT NULL,
    stripe_price_id        TEXT UNIQUE,          -- NULL for free
    price_minor            INTEGER NOT NULL DEFAULT 0,
    currency               TEXT NOT NULL DEFAULT 'usd',
    included_micros        INTEGER NOT NULL DEFAULT 0,
    rollover               INTEGER NOT NULL DEFAULT 0,
    rollover_cap_micros    INTEGER NOT NULL DEFAULT 0,
    rate_limit_per_minute  INTEGER,
    max_concurrent         INTEGER,
    monthly_cap_micros     INTEGER,
    models                 TEXT,                 -- JSON list, NULL = every model
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);
INSERT INTO plans (id, name, created_at, updated_at) VALUES ('free', 'Free', 0, 0);

-- A user's plan. No row = the free plan. `status`: active | past_due |
-- canceling (ends at period_end) ; `next_plan_id`: a downgrade waiting for
-- the period end. Periods are Stripe's, in Unix ms.
CREATE TABLE user_plans (
    user_id          TEXT PRIMARY KEY,
    plan_id          TEXT NOT NULL,
    subscription_id  TEXT,
    status           TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'past_due', 'canceling')),
    period_start     INTEGER,
    period_end       INTEGER,
    grace_until      INTEGER,
    next_plan_id     TEXT,
    customer_id      TEXT,                       -- Stripe customer (the billing portal)
    checked_at       INTEGER,                    -- last compared with Stripe's subscription (reconciliation)
    expired_end      INTEGER,                    -- the last period end whose expiry was applied
    updated_at       INTEGER NOT NULL
);
CREATE INDEX user_plans_period_end ON user_plans (period_end);
CREATE INDEX user_plans_subscription ON user_plans (subscription_id);

-- The included bucket of the one balance: how much of each ledger row moved
-- it, and the mirror's included part (purchased = balance − included).
ALTER TABLE credit_ledger ADD COLUMN included_micros INTEGER NOT NULL DEFAULT 0;
ALTER TABLE balances ADD COLUMN included_micros INTEGER NOT NULL DEFAULT 0;

-- Subscriptions whose paid invoices grant monthly credit; a deleted
-- subscription stops the grants.
CREATE TABLE subscriptions (
    id          TEXT PRIMARY KEY,          -- Stripe subscription id (sub_…)
    user_id     TEXT NOT NULL,
    customer    TEXT,
    status      TEXT NOT NULL CHECK (status IN ('active', 'canceled')),
    updated_at  INTEGER NOT NULL
);
CREATE INDEX subscriptions_user ON subscriptions (user_id);

-- One row per Stripe dispute, so dispute events are applied by the dispute's
-- own state, not by arrival order: a `charge.dispute.created` redelivered after
-- `charge.dispute.closed` finds the dispute closed and changes nothing. The
-- wallet is frozen while any of the user's disputes is open.
CREATE TABLE stripe_disputes (
    id              TEXT PRIMARY KEY,          -- dp_…
    user_id         TEXT NOT NULL,
    transaction_id  TEXT NOT NULL,
    status          TEXT NOT NULL,             -- Stripe's dispute status at the last event
    closed          INTEGER NOT NULL DEFAULT 0,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX stripe_disputes_open ON stripe_disputes (user_id) WHERE closed = 0;
